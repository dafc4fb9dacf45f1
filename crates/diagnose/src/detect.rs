//! The whole-dataset pass: per-trace detectors in parallel, then outlier thresholds,
//! grouping into findings, descriptions and ranking.

use std::collections::{BTreeMap, HashMap, HashSet};

use halo_index::{Dataset, TraceSummary};
use halo_trace::time::format_rfc3339_nanos;
use rayon::prelude::*;

use crate::model::{
    DatasetStats, Diagnosis, Example, Finding, FindingKey, Mode, ModeSummary,
    DIAGNOSIS_SCHEMA_VERSION,
};
use crate::scan::{self, MeasureKind, SegmentView, TraceContext, TraceOut};
use crate::stats::{median_mad, quantile};
use crate::{DiagnoseError, DiagnoseOptions};

/// The outlier limit of one group of measurements.
#[derive(Debug, Clone, Copy)]
struct Limit {
    median: f64,
    limit: f64,
}

fn limit_of(values: &mut [f64], kind: MeasureKind, opts: &DiagnoseOptions) -> Option<Limit> {
    let (median, mad) = median_mad(values)?;
    let floor = match kind {
        MeasureKind::LlmLatency => opts.min_llm_outlier_ms,
        MeasureKind::ToolLatency => opts.min_tool_outlier_ms,
        MeasureKind::LlmTokens => opts.min_outlier_tokens,
    };
    let limit = (median * opts.outlier_factor)
        .max(median + opts.outlier_mads * 1.4826 * mad)
        .max(floor);
    Some(Limit { median, limit })
}

#[derive(Debug, Default)]
struct Acc<'a> {
    traces: Vec<(usize, Vec<&'a str>)>,
    argument: Option<String>,
    spans: usize,
    worst: f64,
    /// Where the cause was seen (tools, or models for provider failures), with the
    /// traces each was seen in.
    places: Vec<(String, usize)>,
    /// Per affected trace, what its first failing span shows.
    details: HashMap<usize, String>,
    /// The agents of the failing spans, once per span.
    agents: Vec<&'a str>,
}

impl<'a> Acc<'a> {
    /// Takes in the findings of another tool (or model) with the same cause.
    fn absorb(&mut self, place: String, other: Acc<'a>) {
        self.places.push((place, other.traces.len()));
        self.merge(other);
    }

    /// Takes in the findings of `other`, seen in the same place.
    fn merge(&mut self, other: Acc<'a>) {
        self.spans += other.spans;
        self.worst = self.worst.max(other.worst);
        if self.argument.is_none() {
            self.argument = other.argument;
        }
        self.traces.extend(other.traces);
        for (t, d) in other.details {
            self.details.entry(t).or_insert(d);
        }
        self.agents.extend(other.agents);
        // One trace may have failed on several of the tools: it is one affected trace.
        self.traces.sort_by_key(|(t, _)| *t);
        self.traces.dedup_by(|later, kept| {
            if later.0 != kept.0 {
                return false;
            }
            kept.1.append(&mut later.1);
            true
        });
    }
}

/// Where a template has a word that varies, what it becomes.
const VARYING_WORD: &str = "<name>";
/// The place of the varying word while templates are compared (no template holds it).
const BLANK: &str = "\u{0}";

/// Folds tool errors of one tool whose templates differ in one word only ("City Paris not
/// found", "City Lyon not found": names the masking of numbers and quoted strings does not
/// catch) into one finding, with that word as `<name>`. The first word (an exception's
/// type) never varies, and templates of fewer than three words are left alone.
fn merge_one_word_variants(acc: BTreeMap<FindingKey, Acc<'_>>) -> BTreeMap<FindingKey, Acc<'_>> {
    // Per tool: each template with one word blanked, and the templates that give it.
    let mut skeletons: BTreeMap<(Option<String>, Vec<&str>), Vec<&str>> = BTreeMap::new();
    for key in acc.keys().filter(|k| k.mode == Mode::ToolError) {
        let Some(template) = key.template.as_deref() else {
            continue;
        };
        let words: Vec<&str> = template.split(' ').collect();
        // After an exception's type (`ValueError:`), the message's first word is
        // capitalized like a name: it may not vary either.
        let first = match words.first() {
            Some(w) if w.ends_with(':') && crate::signals::is_exception_type(&w[..w.len() - 1]) => {
                2
            }
            _ => 1,
        };
        if words.len() < first + 2 {
            continue;
        }
        for i in first..words.len() {
            if words[i].is_empty() || words[i].starts_with('<') {
                continue;
            }
            let mut blanked = words.clone();
            blanked[i] = BLANK;
            skeletons
                .entry((key.tool.clone(), blanked))
                .or_default()
                .push(template);
        }
    }
    // Largest groups first; a template joins one group at most.
    type Group<'t> = ((Option<String>, Vec<&'t str>), Vec<&'t str>);
    let mut groups: Vec<Group<'_>> = skeletons
        .into_iter()
        .filter(|(_, templates)| templates.len() >= 2)
        .collect();
    groups.sort_by(|a, b| b.1.len().cmp(&a.1.len()).then(a.0.cmp(&b.0)));
    let mut renamed: HashMap<(Option<String>, String), String> = HashMap::new();
    for ((tool, blanked), templates) in groups {
        let free: Vec<&str> = templates
            .into_iter()
            .filter(|t| !renamed.contains_key(&(tool.clone(), t.to_string())))
            .collect();
        // The word that varies must look like a name or an id ("Paris", "r114",
        // "acme/web"): "Invalid recipient address" and "Invalid sender address" are two
        // causes.
        let at = blanked.iter().position(|w| *w == BLANK).unwrap_or(0);
        let names = free
            .iter()
            .all(|t| t.split(' ').nth(at).is_some_and(looks_like_a_name));
        if free.len() < 2 || !names {
            continue;
        }
        let merged = blanked
            .iter()
            .map(|w| if *w == BLANK { VARYING_WORD } else { w })
            .collect::<Vec<_>>()
            .join(" ");
        for t in free {
            renamed.insert((tool.clone(), t.to_string()), merged.clone());
        }
    }
    if renamed.is_empty() {
        return acc;
    }
    // A name of several words ("City New York not found") joins the cause its one-word
    // peers made ("City <name> not found").
    let patterns: Vec<(Option<String>, String)> = renamed
        .iter()
        .map(|((tool, _), merged)| (tool.clone(), merged.clone()))
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect();
    for key in acc.keys().filter(|k| k.mode == Mode::ToolError) {
        let Some(template) = key.template.as_deref() else {
            continue;
        };
        if renamed.contains_key(&(key.tool.clone(), template.to_string())) {
            continue;
        }
        let fits = patterns
            .iter()
            .find(|(tool, pattern)| *tool == key.tool && fills_with_a_name(pattern, template));
        if let Some((tool, pattern)) = fits {
            renamed.insert((tool.clone(), template.to_string()), pattern.clone());
        }
    }
    let mut out: BTreeMap<FindingKey, Acc<'_>> = BTreeMap::new();
    for (key, a) in acc {
        let new_template = key
            .template
            .as_ref()
            .and_then(|t| renamed.get(&(key.tool.clone(), t.clone())).cloned());
        let key = match new_template {
            Some(template) if key.mode == Mode::ToolError => FindingKey {
                template: Some(template),
                ..key
            },
            _ => key,
        };
        match out.get_mut(&key) {
            Some(kept) => kept.merge(a),
            None => {
                out.insert(key, a);
            }
        }
    }
    out
}

/// Whether `template` is `pattern` with its `<name>` filled by two or three name-like
/// words.
fn fills_with_a_name(pattern: &str, template: &str) -> bool {
    let Some((before, after)) = pattern.split_once(VARYING_WORD) else {
        return false;
    };
    let Some(middle) = template
        .strip_prefix(before)
        .and_then(|rest| rest.strip_suffix(after))
    else {
        return false;
    };
    let words: Vec<&str> = middle.split(' ').collect();
    (2..=3).contains(&words.len()) && words.iter().all(|w| looks_like_a_name(w))
}

/// Whether a word reads as a name or an id rather than a plain word: capitalized, or
/// holding a digit or an id's punctuation.
fn looks_like_a_name(word: &str) -> bool {
    word.chars().next().is_some_and(char::is_uppercase)
        || word
            .chars()
            .any(|c| c.is_ascii_digit() || matches!(c, '/' | '_' | '-' | '.' | '@' | ':'))
}

/// The part of a finding's key that names where a cause was seen (the tool of a tool
/// error, an argument problem or a repeated-call loop, the model of a provider failure),
/// for the modes whose causes can be shared: the masked error template, argument problem
/// or failure kind (a loop is one cause wherever it happens).
fn where_seen(key: &FindingKey) -> Option<&String> {
    match key.mode {
        Mode::ToolError | Mode::InvalidToolArgs | Mode::RepeatedToolLoop => key.tool.as_ref(),
        Mode::ProviderError => key.model.as_ref(),
        _ => None,
    }
}

/// Folds the findings of one cause seen on several tools (or models) into one finding
/// that names none and lists them: "unexpected argument 'verbose'" on twelve tools, or a
/// rate limit on every model, is one systemic problem with one fix, not twelve small
/// findings that each rank too low to be read.
fn merge_causes_across_tools(acc: BTreeMap<FindingKey, Acc<'_>>) -> BTreeMap<FindingKey, Acc<'_>> {
    let mut places_per_cause: HashMap<(Mode, Option<String>), usize> = HashMap::new();
    for key in acc.keys() {
        if where_seen(key).is_some() {
            *places_per_cause
                .entry((key.mode, key.template.clone()))
                .or_default() += 1;
        }
    }
    let mut out: BTreeMap<FindingKey, Acc<'_>> = BTreeMap::new();
    for (key, mut a) in acc {
        let shared = places_per_cause
            .get(&(key.mode, key.template.clone()))
            .is_some_and(|&n| n >= 2)
            && key
                .template
                .as_deref()
                .is_none_or(crate::signals::names_a_cause);
        match where_seen(&key).cloned() {
            Some(place) if shared => {
                let merged = FindingKey {
                    tool: None,
                    model: None,
                    ..key
                };
                out.entry(merged).or_default().absorb(place, a);
            }
            place => {
                if let Some(place) = place {
                    a.places.push((place, a.traces.len()));
                }
                out.insert(key, a);
            }
        }
    }
    for a in out.values_mut() {
        a.places.sort_by(|x, y| y.1.cmp(&x.1).then(x.0.cmp(&y.0)));
    }
    out
}

/// Diagnoses the dataset (see the crate documentation).
pub(crate) fn run(ds: &Dataset, opts: &DiagnoseOptions) -> Result<Diagnosis, DiagnoseError> {
    let all = ds.traces();
    let selected: Vec<usize> = match &opts.trace_ids {
        Some(ids) => (0..all.len())
            .filter(|&i| ids.contains(&all[i].trace_id))
            .collect(),
        None => (0..all.len()).collect(),
    };
    let tables = (0..ds.segment_count())
        .into_par_iter()
        .map(|s| ds.span_table(s))
        .collect::<Result<Vec<_>, _>>()?;
    let views = tables
        .iter()
        .map(SegmentView::new)
        .collect::<Result<Vec<_>, _>>()
        .map_err(DiagnoseError::Corrupt)?;

    // Peers: the share of runs of each root span name that call a tool at all.
    let calls_tools = |i: usize| f64::from(u8::from(all[i].tool_call_count > 0));
    let mut by_root: HashMap<&str, Vec<f64>> = HashMap::new();
    for &i in &selected {
        by_root
            .entry(all[i].root_span_name.as_str())
            .or_default()
            .push(calls_tools(i));
    }
    let share = |v: &[f64]| v.iter().sum::<f64>() / v.len().max(1) as f64;
    let global_tool_share = share(&selected.iter().map(|&i| calls_tools(i)).collect::<Vec<_>>());
    let peer_tool_share: HashMap<String, f64> = by_root
        .into_iter()
        .filter(|(_, v)| v.len() >= 5)
        .map(|(k, v)| (k.to_string(), share(&v)))
        .collect();
    let ctx = TraceContext {
        repeat_threshold: opts.repeat_threshold.max(2),
        refusal_loop_threshold: opts.refusal_loop_threshold.max(2),
        peer_tool_share: &peer_tool_share,
        global_tool_share,
    };

    let mut outs: Vec<TraceOut<'_>> = selected
        .par_iter()
        .map(|&i| {
            let spans = scan::spans_of(&all[i], &views);
            scan::analyze(&all[i], &spans, &ctx)
        })
        .collect();

    // Outlier limits per group; small groups use the pooled limit of their kind.
    let mut groups: HashMap<(MeasureKind, &str), Vec<f64>> = HashMap::new();
    let mut pooled: HashMap<MeasureKind, Vec<f64>> = HashMap::new();
    for o in &outs {
        for m in &o.measures {
            groups.entry((m.kind, m.group)).or_default().push(m.value);
            pooled.entry(m.kind).or_default().push(m.value);
        }
    }
    let pooled_limits: HashMap<MeasureKind, Limit> = pooled
        .into_iter()
        .filter_map(|(k, mut v)| limit_of(&mut v, k, opts).map(|l| (k, l)))
        .collect();
    let limits: HashMap<(MeasureKind, &str), Limit> = groups
        .into_iter()
        .filter_map(|((k, g), mut v)| {
            let l = if v.len() >= opts.min_group_samples {
                limit_of(&mut v, k, opts)
            } else {
                pooled_limits.get(&k).copied()
            };
            l.map(|l| ((k, g), l))
        })
        .collect();

    let mut acc: BTreeMap<FindingKey, Acc<'_>> = BTreeMap::new();
    let mut medians: HashMap<FindingKey, f64> = HashMap::new();
    for (n, o) in outs.iter_mut().enumerate() {
        let trace = selected[n];
        let mut extra: Vec<(FindingKey, &str, f64, f64)> = Vec::new();
        for m in &o.measures {
            let Some(l) = limits.get(&(m.kind, m.group)) else {
                continue;
            };
            if m.value > l.limit {
                let key = match m.kind {
                    MeasureKind::LlmLatency => FindingKey {
                        mode: Mode::LatencyOutlier,
                        tool: None,
                        model: Some(m.group.to_string()),
                        template: None,
                    },
                    MeasureKind::ToolLatency => FindingKey {
                        mode: Mode::LatencyOutlier,
                        tool: Some(m.group.to_string()),
                        model: None,
                        template: None,
                    },
                    MeasureKind::LlmTokens => FindingKey {
                        mode: Mode::TokenOutlier,
                        tool: None,
                        model: Some(m.group.to_string()),
                        template: None,
                    },
                };
                extra.push((key, m.span, m.value, l.median));
            }
        }
        for (key, span, value, median) in extra {
            medians.insert(key.clone(), median);
            // The evidence says how far out it is.
            let detail = match key.mode {
                Mode::TokenOutlier => format!(
                    "{} tokens (peers' median {:.0})",
                    crate::render::thousands(value as u64),
                    median
                ),
                _ => format!(
                    "{} (peers' median {})",
                    crate::describe::ms(value),
                    crate::describe::ms(median)
                ),
            };
            let a = acc.entry(key.clone()).or_default();
            a.details.entry(trace).or_insert(detail);
            a.worst = a.worst.max(value);
            match a.traces.last_mut() {
                Some((t, spans)) if *t == trace => spans.push(span),
                _ => a.traces.push((trace, vec![span])),
            }
            a.spans += 1;
        }
        for h in o.hits.drain(..) {
            let a = acc.entry(h.key).or_default();
            a.spans += h.spans.len();
            if a.argument.is_none() {
                a.argument = h.argument;
            }
            a.traces.push((trace, h.spans));
            if let Some(d) = h.detail {
                a.details.entry(trace).or_insert(d);
            }
            a.agents.extend(h.agents);
        }
    }

    let acc = merge_causes_across_tools(merge_one_word_variants(acc));
    let mut stats = dataset_stats(all, &selected, &acc);
    stats.skipped_lines = ds.skipped_lines();
    stats.problem_count = ds.problem_count();
    let total = selected.len().max(1);
    let mut findings: Vec<Finding> = acc
        .into_iter()
        .map(|(key, a)| {
            let median = medians.get(&key).copied();
            finding(all, key, a, total, median, opts)
        })
        .collect();
    findings.sort_by(|a, b| {
        b.impact
            .total_cmp(&a.impact)
            .then(b.trace_count.cmp(&a.trace_count))
            .then(a.id.cmp(&b.id))
    });
    let modes = mode_summaries(&findings, total);
    Ok(Diagnosis {
        schema_version: DIAGNOSIS_SCHEMA_VERSION,
        sources: ds.sources().map(|p| p.display().to_string()).collect(),
        command_options: Vec::new(),
        stats,
        modes,
        findings,
    })
}

fn mode_summaries(findings: &[Finding], total: usize) -> Vec<ModeSummary> {
    let mut out: Vec<ModeSummary> = Mode::ALL
        .into_iter()
        .filter_map(|mode| {
            let of_mode: Vec<&Finding> = findings.iter().filter(|f| f.key.mode == mode).collect();
            let top = of_mode.first()?;
            let traces: HashSet<&str> = of_mode
                .iter()
                .flat_map(|f| f.trace_ids.iter().map(String::as_str))
                .collect();
            let share = traces.len() as f64 / total as f64;
            Some(ModeSummary {
                mode,
                trace_count: traces.len(),
                share,
                findings: of_mode.len(),
                top_finding: top.id.clone(),
                impact: (share * 100.0 * mode.severity() * 100.0).round() / 100.0,
            })
        })
        .collect();
    out.sort_by(|a, b| {
        b.impact
            .total_cmp(&a.impact)
            .then(b.trace_count.cmp(&a.trace_count))
            .then(a.mode.cmp(&b.mode))
    });
    out
}

fn top_names<'t>(names: impl Iterator<Item = &'t str>) -> Vec<String> {
    let mut counts: HashMap<&str, usize> = HashMap::new();
    for n in names {
        *counts.entry(n).or_default() += 1;
    }
    let mut v: Vec<(&str, usize)> = counts.into_iter().collect();
    v.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
    v.into_iter().take(5).map(|(n, _)| n.to_string()).collect()
}

fn finding(
    all: &[TraceSummary],
    key: FindingKey,
    mut a: Acc<'_>,
    total: usize,
    median: Option<f64>,
    opts: &DiagnoseOptions,
) -> Finding {
    a.traces.sort_by(|x, y| {
        all[x.0]
            .start_ns
            .cmp(&all[y.0].start_ns)
            .then(all[x.0].trace_id.cmp(&all[y.0].trace_id))
    });
    let n = a.traces.len();
    let max_examples = opts.max_examples.max(1);
    let picks: Vec<usize> = if n <= max_examples {
        (0..n).collect()
    } else {
        (0..max_examples)
            .map(|k| k * (n - 1) / (max_examples - 1).max(1))
            .collect()
    };
    let examples = picks
        .into_iter()
        .map(|k| {
            let (t, spans) = &a.traces[k];
            Example {
                trace_id: all[*t].trace_id.clone(),
                span_ids: spans.iter().take(5).map(|s| s.to_string()).collect(),
                detail: a.details.get(t).cloned(),
            }
        })
        .collect();
    let mut trace_ids: Vec<String> = a
        .traces
        .iter()
        .map(|(t, _)| all[*t].trace_id.clone())
        .collect();
    trace_ids.sort_unstable();
    trace_ids.dedup();
    let first = a.traces.first().map(|(t, _)| all[*t].start_ns).unwrap_or(0);
    let last = a.traces.last().map(|(t, _)| all[*t].start_ns).unwrap_or(0);
    let services = top_names(
        a.traces
            .iter()
            .flat_map(|(t, _)| all[*t].services.iter().map(|s| s.as_ref())),
    );
    let models = top_names(a.traces.iter().flat_map(|(t, _)| {
        all[*t]
            .models
            .iter()
            .map(|s| halo_trace::model_family(s.as_ref()))
    }));
    // The agents whose own spans failed; the whole traces' agents only when the spans
    // name none (in a multi-agent run, the others did not make the failing call).
    let agents = if a.agents.is_empty() {
        top_names(
            a.traces
                .iter()
                .flat_map(|(t, _)| all[*t].agents.iter().map(|s| s.as_ref())),
        )
    } else {
        top_names(a.agents.iter().copied())
    };
    let share = trace_ids.len() as f64 / total as f64;
    let example_ids: Vec<&str> = a
        .traces
        .iter()
        .take(2)
        .map(|(t, _)| all[*t].trace_id.as_str())
        .collect();
    let places: Vec<String> = a.places.iter().map(|(t, _)| t.clone()).collect();
    let mut text = crate::describe::describe(
        &key,
        &places,
        a.argument.as_deref(),
        crate::describe::Numbers {
            traces: trace_ids.len(),
            spans: a.spans,
            median,
            worst: a.worst,
            refusal_loop_threshold: opts.refusal_loop_threshold.max(2),
        },
    );
    if !example_ids.is_empty() {
        text.deeper = format!(
            "{} Start with trace {}.",
            text.deeper,
            example_ids.join(" and ")
        );
    }
    let impact = (share * 100.0 * key.mode.severity() * 100.0).round() / 100.0;
    Finding {
        id: key.id(),
        title: text.title,
        signal: text.signal,
        argument: a.argument,
        trace_count: trace_ids.len(),
        share,
        span_count: a.spans,
        services,
        models,
        agents,
        tools: match key.mode {
            Mode::ProviderError => Vec::new(),
            _ if places.is_empty() => key.tool.iter().cloned().collect(),
            _ => places.clone(),
        },
        failing_models: match key.mode {
            Mode::ProviderError => places,
            _ => Vec::new(),
        },
        first_seen: format_rfc3339_nanos(first),
        last_seen: format_rfc3339_nanos(last),
        examples,
        trace_ids,
        fix: text.fix,
        deeper_prompt: text.deeper,
        impact,
        key,
    }
}

fn dataset_stats(
    all: &[TraceSummary],
    selected: &[usize],
    acc: &BTreeMap<FindingKey, Acc<'_>>,
) -> DatasetStats {
    let n = selected.len();
    let failing: HashSet<usize> = acc
        .values()
        .flat_map(|a| a.traces.iter().map(|(t, _)| *t))
        .collect();
    // A trace's errors are explained by a finding about errors: being slow, looping or
    // refusing as well says nothing about why it failed.
    let explained: HashSet<usize> = acc
        .iter()
        .filter(|(key, _)| {
            matches!(
                key.mode,
                Mode::HallucinatedTool
                    | Mode::InvalidToolArgs
                    | Mode::ToolError
                    | Mode::ProviderError
                    | Mode::TurnExhaustion
            )
        })
        .flat_map(|(_, a)| a.traces.iter().map(|(t, _)| *t))
        .collect();
    let mut durations: Vec<f64> = selected.iter().map(|&i| all[i].duration_ms()).collect();
    let mut s = DatasetStats {
        traces: n,
        failing_traces: failing.len(),
        ..Default::default()
    };
    let mut first = i64::MAX;
    let mut last = i64::MIN;
    for &i in selected {
        let t = &all[i];
        s.spans += u64::from(t.span_count);
        s.error_traces += usize::from(t.error_span_count > 0);
        if t.error_span_count > 0 && !explained.contains(&i) {
            s.unexplained_error_traces += 1;
            if s.unexplained_examples.len() < 5 {
                s.unexplained_examples.push(crate::model::UnexplainedTrace {
                    trace_id: t.trace_id.to_string(),
                    error: t
                        .error_groups
                        .iter()
                        .max_by_key(|g| g.spans)
                        .map(|g| g.group.to_string())
                        .unwrap_or_default(),
                });
            }
        }
        s.llm_calls += u64::from(t.llm_call_count);
        s.tool_calls += u64::from(t.tool_call_count);
        s.total_tokens = s.total_tokens.saturating_add(t.total_tokens);
        if let Some(c) = t.cost {
            s.cost = Some(halo_trace::add_costs(s.cost.unwrap_or(0.0), c));
        }
        first = first.min(t.start_ns);
        last = last.max(t.end_ns);
    }
    if n > 0 {
        let nf = n as f64;
        s.mean_llm_calls = s.llm_calls as f64 / nf;
        s.mean_tool_calls = s.tool_calls as f64 / nf;
        s.mean_tokens = s.total_tokens as f64 / nf;
        // Summed in whole nanoseconds, so the mean does not depend on the order of the
        // traces (a float sum does, in its last digits, and reports are compared by bytes).
        let total_ns: i128 = selected
            .iter()
            .map(|&i| (i128::from(all[i].end_ns) - i128::from(all[i].start_ns)).max(0))
            .sum();
        s.mean_duration_ms = total_ns as f64 / nf / 1e6;
        s.p50_duration_ms = quantile(&mut durations, 0.5).unwrap_or(0.0);
        s.p90_duration_ms = quantile(&mut durations, 0.9).unwrap_or(0.0);
        s.first_seen = format_rfc3339_nanos(first);
        s.last_seen = format_rfc3339_nanos(last);
    }
    // The same sum `halo overview` shows, without the binary noise of many prices.
    s.cost = s.cost.map(halo_trace::round_nine);
    s
}
