//! Run-vs-run comparison of two diagnoses (before and after a harness change).

use std::collections::BTreeMap;
use std::fmt::Write;

use serde::{Deserialize, Serialize};

use crate::model::{Diagnosis, FindingKey, Mode};
use crate::render::{counted, md_cell, md_code, pct, thousands};
use crate::stats::fisher_exact;

/// Version of the JSON rendering of [`DiffReport`].
pub const DIFF_SCHEMA_VERSION: u32 = 2;

/// Significance level for verdicts.
pub const ALPHA: f64 = 0.05;

/// What happened to a finding between the two runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// The rate went up significantly.
    Worse,
    /// Absent before, present after, and the rise is significant.
    New,
    /// Present before, absent after, and the drop is significant.
    Fixed,
    /// The rate went down significantly but the finding remains.
    Improved,
    /// No significant change.
    Unchanged,
}

impl Verdict {
    /// The stable identifier.
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Worse => "worse",
            Verdict::New => "new",
            Verdict::Fixed => "fixed",
            Verdict::Improved => "improved",
            Verdict::Unchanged => "unchanged",
        }
    }
}

/// One finding (or one whole mode) before and after.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FindingDiff {
    /// The matched identity (mode, tool, model, template).
    #[serde(flatten)]
    pub key: FindingKey,
    /// `key.id()`.
    pub id: String,
    /// The finding's title (from the run that has it, after preferred).
    pub title: String,
    /// Affected traces before.
    pub before_traces: usize,
    /// Affected share before.
    pub before_rate: f64,
    /// Affected traces after.
    pub after_traces: usize,
    /// Affected share after.
    pub after_rate: f64,
    /// `after_rate - before_rate`.
    pub change: f64,
    /// Two-sided Fisher's exact p-value of the 2x2 table affected/unaffected x before/after.
    pub p_value: f64,
    /// The p-value adjusted for testing every row of its table at once (Benjamini-Hochberg
    /// over the findings, and over the modes): with a hundred findings compared, a few
    /// would pass [`ALPHA`] by chance alone.
    #[serde(default = "one")]
    pub q_value: f64,
    /// The verdict: `q_value` at [`ALPHA`].
    pub verdict: Verdict,
    /// The verdict as shown to people ([`FindingDiff::label`]): also says which way an
    /// `unchanged` row moved when it would be significant alone (`fewer, n.s.`,
    /// `more, n.s.`), and when it vanished or appeared on too few traces (`gone, n.s.`,
    /// `new, n.s.`).
    #[serde(default)]
    pub label: String,
    /// Up to [`EXAMPLES`] affected traces of the run before, to open with `halo view`.
    #[serde(default)]
    pub examples_before: Vec<String>,
    /// Up to [`EXAMPLES`] affected traces of the run after: where to look at a new or
    /// worse finding.
    #[serde(default)]
    pub examples_after: Vec<String>,
}

/// How many example traces a row names per run.
pub(crate) const EXAMPLES: usize = 3;

fn one() -> f64 {
    1.0
}

/// The label of a finding absent after, on too few traces for a significant drop.
const GONE: &str = "gone, n.s.";

/// The label of a finding absent before, on too few traces for a significant rise.
const NEW_NS: &str = "new, n.s.";

/// The label of a drop that is significant alone but not once every row is counted.
const FEWER_NS: &str = "fewer, n.s.";

/// The label of a rise that is significant alone but not once every row is counted.
const MORE_NS: &str = "more, n.s.";

impl FindingDiff {
    /// The verdict as shown to people: `gone, n.s.` (`new, n.s.`) for a finding absent
    /// after (before) but on too few traces for the change to be significant: its verdict
    /// stays `unchanged`, which alone would read as "nothing happened".
    pub fn label(&self) -> &'static str {
        match self.verdict {
            Verdict::Unchanged if self.after_traces == 0 && self.before_traces > 0 => GONE,
            Verdict::Unchanged if self.before_traces == 0 && self.after_traces > 0 => NEW_NS,
            Verdict::Unchanged if self.p_value < ALPHA && self.after_rate < self.before_rate => {
                FEWER_NS
            }
            Verdict::Unchanged if self.p_value < ALPHA && self.after_rate > self.before_rate => {
                MORE_NS
            }
            v => v.as_str(),
        }
    }
}

/// The verdict of a change from `b` affected traces (rate `rb`) to `a` (rate `ra`) whose
/// significance is `q`.
fn verdict_of(b: usize, a: usize, rb: f64, ra: f64, q: f64) -> Verdict {
    if q >= ALPHA {
        Verdict::Unchanged
    } else if b == 0 {
        Verdict::New
    } else if a == 0 {
        Verdict::Fixed
    } else if ra < rb {
        Verdict::Improved
    } else {
        Verdict::Worse
    }
}

/// Benjamini-Hochberg: each row's p-value adjusted for the whole table, and the verdicts
/// decided on it.
fn adjust_for_many(rows: &mut [FindingDiff]) {
    let m = rows.len();
    let mut order: Vec<usize> = (0..m).collect();
    order.sort_by(|&x, &y| rows[x].p_value.total_cmp(&rows[y].p_value));
    let mut running = 1.0f64;
    for (rank, &i) in order.iter().enumerate().rev() {
        running = running.min(rows[i].p_value * m as f64 / (rank + 1) as f64);
        rows[i].q_value = running.min(1.0);
    }
    for r in rows.iter_mut() {
        r.verdict = verdict_of(
            r.before_traces,
            r.after_traces,
            r.before_rate,
            r.after_rate,
            r.q_value,
        );
        r.label = r.label().to_string();
    }
}

/// One whole-run number before and after.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MetricDiff {
    /// Metric name.
    pub name: String,
    /// Value before.
    pub before: f64,
    /// Value after.
    pub after: f64,
    /// `after - before`.
    pub change: f64,
    /// `change / before`, when `before` is not zero.
    pub relative_change: Option<f64>,
    /// Fisher's exact p-value, for rates.
    pub p_value: Option<f64>,
}

/// The result of [`diff`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DiffReport {
    /// [`DIFF_SCHEMA_VERSION`].
    pub schema_version: u32,
    /// Sources of the run before.
    pub before_sources: Vec<String>,
    /// Sources of the run after.
    pub after_sources: Vec<String>,
    /// Traces before.
    pub before_traces: usize,
    /// Traces after.
    pub after_traces: usize,
    /// Input problems while indexing the run before (skipped lines and others).
    #[serde(default)]
    pub before_problem_count: u64,
    /// Input problems while indexing the run after.
    #[serde(default)]
    pub after_problem_count: u64,
    /// The significance level used.
    pub alpha: f64,
    /// Whole-run numbers: error rate, failure rate, turns, tool calls, tokens, durations.
    pub metrics: Vec<MetricDiff>,
    /// Per mode (all findings of a mode together).
    pub modes: Vec<FindingDiff>,
    /// Per finding, matched by mode, tool, model and template; worst news first.
    pub findings: Vec<FindingDiff>,
}

/// One row of the finding table: the traces of each run, the tools or models involved,
/// a title.
#[derive(Default)]
struct Row<'d> {
    traces: [std::collections::BTreeSet<&'d str>; 2],
    places: std::collections::BTreeSet<&'d str>,
    title: String,
}

impl Row<'_> {
    /// A cause compared across tools (or models) is titled by the cause and the places
    /// seen in either run; the title of one run alone would name only its own.
    fn title_for(&self, key: &FindingKey) -> String {
        if !shares_causes(key.mode) {
            return self.title.clone();
        }
        let places: Vec<String> = self.places.iter().map(|p| md_code(p)).collect();
        let shown = places
            .iter()
            .take(4)
            .cloned()
            .collect::<Vec<_>>()
            .join(", ");
        let on = match places.len() {
            0 => String::new(),
            n if n > 4 => format!(" on {shown} and {} more", n - 4),
            _ => format!(" on {shown}"),
        };
        match key.template.as_deref() {
            Some(template) => format!("{}{on}: {}", key.mode.label(), md_code(template)),
            None => format!("{}{on}", key.mode.label()),
        }
    }
}

/// Whether a mode's findings are per cause and tool (or model), so that one run may show a
/// cause on one tool and the other on several.
fn shares_causes(mode: Mode) -> bool {
    matches!(
        mode,
        Mode::ToolError | Mode::InvalidToolArgs | Mode::ProviderError | Mode::RepeatedToolLoop
    )
}

/// The row a finding is compared under. A cause the diagnosis may report per tool or for
/// several tools at once (depending on how many it was seen on in that run) is compared
/// as the cause: otherwise fixing it on one of two tools would read as "fixed" plus "new".
fn row_key(key: &FindingKey) -> FindingKey {
    // As in the diagnosis: a template with no words left (`KeyError: <str>`) names no
    // cause shared across tools, so its rows stay per tool.
    let names_a_cause = key
        .template
        .as_deref()
        .is_none_or(crate::signals::names_a_cause);
    if shares_causes(key.mode) && names_a_cause {
        FindingKey {
            tool: None,
            model: None,
            ..key.clone()
        }
    } else {
        key.clone()
    }
}

/// The first [`EXAMPLES`] of a run's affected traces (in id order, so that runs of the
/// same data name the same ones).
fn examples<'t>(traces: impl IntoIterator<Item = &'t str>) -> Vec<String> {
    traces
        .into_iter()
        .take(EXAMPLES)
        .map(String::from)
        .collect()
}

fn compare(
    key: FindingKey,
    title: String,
    b: usize,
    nb: usize,
    a: usize,
    na: usize,
) -> FindingDiff {
    let rate = |k: usize, n: usize| if n == 0 { 0.0 } else { k as f64 / n as f64 };
    let (rb, ra) = (rate(b, nb), rate(a, na));
    let p = fisher_exact(
        b as u64,
        nb.saturating_sub(b) as u64,
        a as u64,
        na.saturating_sub(a) as u64,
    );
    let verdict = verdict_of(b, a, rb, ra, p);
    let mut row = FindingDiff {
        id: key.id(),
        key,
        title,
        before_traces: b,
        before_rate: rb,
        after_traces: a,
        after_rate: ra,
        change: halo_trace::round_nine(ra - rb),
        p_value: p,
        q_value: p,
        verdict,
        label: String::new(),
        examples_before: Vec::new(),
        examples_after: Vec::new(),
    };
    row.label = row.label().to_string();
    row
}

fn metric(name: &str, before: f64, after: f64, p_value: Option<f64>) -> MetricDiff {
    MetricDiff {
        name: name.to_string(),
        before: halo_trace::round_nine(before),
        after: halo_trace::round_nine(after),
        change: halo_trace::round_nine(after - before),
        relative_change: (before != 0.0).then(|| halo_trace::round_nine((after - before) / before)),
        p_value,
    }
}

fn sort(v: &mut [FindingDiff]) {
    v.sort_by(|x, y| {
        x.verdict
            .cmp(&y.verdict)
            .then(x.p_value.total_cmp(&y.p_value))
            .then((y.before_traces + y.after_traces).cmp(&(x.before_traces + x.after_traces)))
            .then(x.id.cmp(&y.id))
    });
}

/// Compares two diagnoses: per finding (matched by mode, tool, model and template; tool
/// errors, argument problems and provider failures by their cause, over all tools and
/// models) and per
/// mode the affected rate before and after, its change, Fisher's exact p-value and a verdict
/// (fixed, improved, unchanged, worse, new), plus whole-run numbers (error rate, failure
/// rate, turns, tool calls, tokens, durations).
pub fn diff(before: &Diagnosis, after: &Diagnosis) -> DiffReport {
    let (nb, na) = (before.stats.traces, after.stats.traces);
    let mut rows: BTreeMap<FindingKey, Row<'_>> = BTreeMap::new();
    for (side, d) in [(0, before), (1, after)] {
        for f in &d.findings {
            let row = rows.entry(row_key(&f.key)).or_default();
            row.traces[side].extend(f.trace_ids.iter().map(String::as_str));
            row.places
                .extend(f.tools.iter().chain(&f.failing_models).map(String::as_str));
            row.places.extend(f.key.tool.as_deref());
            row.places.extend(f.key.model.as_deref());
            // The run after names the finding, as it is now.
            if side == 1 || row.title.is_empty() {
                row.title = f.title.clone();
            }
        }
    }
    let mut findings: Vec<FindingDiff> = rows
        .into_iter()
        .map(|(k, row)| {
            let title = row.title_for(&k);
            FindingDiff {
                examples_before: examples(row.traces[0].iter().copied()),
                examples_after: examples(row.traces[1].iter().copied()),
                ..compare(k, title, row.traces[0].len(), nb, row.traces[1].len(), na)
            }
        })
        .collect();
    adjust_for_many(&mut findings);
    sort(&mut findings);
    let mut modes: Vec<FindingDiff> = Mode::ALL
        .into_iter()
        .filter_map(|m| {
            let (b, a) = (before.traces_with(m), after.traces_with(m));
            (b.len() + a.len() > 0).then(|| FindingDiff {
                examples_before: examples(b.iter().map(String::as_str)),
                examples_after: examples(a.iter().map(String::as_str)),
                ..compare(
                    FindingKey::new(m),
                    m.label().to_string(),
                    b.len(),
                    nb,
                    a.len(),
                    na,
                )
            })
        })
        .collect();
    adjust_for_many(&mut modes);
    sort(&mut modes);
    let (sb, sa) = (&before.stats, &after.stats);
    let rate_p = |kb: usize, ka: usize| {
        Some(fisher_exact(
            kb as u64,
            nb.saturating_sub(kb) as u64,
            ka as u64,
            na.saturating_sub(ka) as u64,
        ))
    };
    let rate = |k: usize, n: usize| if n == 0 { 0.0 } else { k as f64 / n as f64 };
    let metrics = vec![
        metric(
            "error_rate",
            rate(sb.error_traces, nb),
            rate(sa.error_traces, na),
            rate_p(sb.error_traces, sa.error_traces),
        ),
        metric(
            "failure_rate",
            rate(sb.failing_traces, nb),
            rate(sa.failing_traces, na),
            rate_p(sb.failing_traces, sa.failing_traces),
        ),
        metric(
            "turns_per_trace",
            sb.mean_llm_calls,
            sa.mean_llm_calls,
            None,
        ),
        metric(
            "tool_calls_per_trace",
            sb.mean_tool_calls,
            sa.mean_tool_calls,
            None,
        ),
        metric("tokens_per_trace", sb.mean_tokens, sa.mean_tokens, None),
        metric(
            "p50_duration_ms",
            sb.p50_duration_ms,
            sa.p50_duration_ms,
            None,
        ),
        metric(
            "p90_duration_ms",
            sb.p90_duration_ms,
            sa.p90_duration_ms,
            None,
        ),
        metric(
            "mean_duration_ms",
            sb.mean_duration_ms,
            sa.mean_duration_ms,
            None,
        ),
    ];
    DiffReport {
        schema_version: DIFF_SCHEMA_VERSION,
        before_sources: before.sources.clone(),
        after_sources: after.sources.clone(),
        before_traces: nb,
        after_traces: na,
        before_problem_count: before.stats.problem_count,
        after_problem_count: after.stats.problem_count,
        alpha: ALPHA,
        metrics,
        modes,
        findings,
    }
}

fn p_text(p: f64) -> String {
    if p < 1e-4 {
        "<0.0001".to_string()
    } else {
        format!("{p:.4}")
    }
}

fn signed_pct(change: f64) -> String {
    format!("{:+.1} pp", change * 100.0)
}

fn metric_value(name: &str, v: f64) -> String {
    if name.ends_with("_rate") {
        pct(v)
    } else if name.ends_with("_ms") {
        format!("{:.0} ms", v)
    } else {
        format!("{v:.2}")
    }
}

impl DiffReport {
    /// The JSON rendering (pretty-printed, with `schema_version`).
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self)
            .unwrap_or_else(|e| format!("{{\"error\":{:?}}}", e.to_string()))
    }

    /// How many findings got each verdict.
    pub fn verdict_counts(&self) -> BTreeMap<Verdict, usize> {
        counts(&self.findings)
    }

    /// The verdicts in one line, modes first (whole modes have the traces to show a
    /// change; a single finding often has too few):
    /// `modes: fixed 2 · improved 0 · unchanged 1 · worse 0 · new 0; findings: fixed 3 · …`,
    /// with those gone but not significantly so counted apart, as their rows show them.
    pub fn verdict_line(&self) -> String {
        let line = |rows: &[FindingDiff]| {
            let c = counts(rows);
            let counted = [
                Verdict::Fixed,
                Verdict::Improved,
                Verdict::Unchanged,
                Verdict::Worse,
                Verdict::New,
            ]
            .iter()
            .map(|v| format!("{} {}", v.as_str(), c.get(v).copied().unwrap_or(0)))
            .collect::<Vec<_>>()
            .join(" · ");
            let moved: Vec<String> = [
                (GONE, "gone"),
                (NEW_NS, "new"),
                (FEWER_NS, "fewer"),
                (MORE_NS, "more"),
            ]
            .iter()
            .filter_map(|(label, word)| {
                let n = rows.iter().filter(|f| f.label() == *label).count();
                (n > 0).then(|| format!("{n} {word}"))
            })
            .collect();
            if moved.is_empty() {
                counted
            } else {
                format!(
                    "{counted} (of the unchanged, {} without significance over all rows)",
                    moved.join(", ")
                )
            }
        };
        format!(
            "modes: {}; findings: {}",
            line(&self.modes),
            line(&self.findings)
        )
    }

    /// A terminal rendering: overall numbers, every mode, and the findings whose verdict is
    /// not `unchanged` (at most `rows` of them).
    pub fn render_summary(&self, rows: usize) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "before {} · after {} · {}",
            counted(self.before_traces, "trace", "traces"),
            counted(self.after_traces, "trace", "traces"),
            self.verdict_line()
        );
        if self.before_problem_count + self.after_problem_count > 0 {
            let _ = writeln!(
                out,
                "input problems: {} before, {} after (skipped lines and others; `halo index --json` lists them)",
                self.before_problem_count, self.after_problem_count
            );
        }
        let _ = writeln!(
            out,
            "\n{:<22} {:>12} {:>12} {:>10} {:>8}",
            "metric", "before", "after", "change", "p"
        );
        for m in &self.metrics {
            let change = change_text(m);
            let _ = writeln!(
                out,
                "{:<22} {:>12} {:>12} {:>10} {:>8}",
                m.name,
                metric_value(&m.name, m.before),
                metric_value(&m.name, m.after),
                change,
                m.p_value.map(p_text).unwrap_or_default()
            );
        }
        let row = |out: &mut String, f: &FindingDiff, name: &str| {
            let _ = writeln!(
                out,
                "{:<12} {:>14} {:>14} {:>9} {:>8} {:>8}  {}",
                f.label(),
                format!(
                    "{} ({})",
                    thousands(f.before_traces as u64),
                    pct(f.before_rate)
                ),
                format!(
                    "{} ({})",
                    thousands(f.after_traces as u64),
                    pct(f.after_rate)
                ),
                signed_pct(f.change),
                p_text(f.p_value),
                p_text(f.q_value),
                name
            );
        };
        if !self.modes.is_empty() {
            let _ = writeln!(
                out,
                "\n{:<12} {:>14} {:>14} {:>9} {:>8} {:>8}  mode",
                "verdict", "before", "after", "change", "p", "q"
            );
            for f in &self.modes {
                row(&mut out, f, f.key.mode.as_str());
            }
        }
        // Every row that moved (significant or not, said by its label), surest first.
        let mut changed: Vec<&FindingDiff> = self
            .findings
            .iter()
            .filter(|f| f.label() != Verdict::Unchanged.as_str())
            .collect();
        changed.sort_by(|x, y| x.p_value.total_cmp(&y.p_value));
        if !changed.is_empty() {
            let _ = writeln!(
                out,
                "\n{:<12} {:>14} {:>14} {:>9} {:>8} {:>8}  finding",
                "verdict", "before", "after", "change", "p", "q"
            );
            for f in changed.iter().take(rows) {
                row(&mut out, f, &f.title.replace('`', ""));
            }
            if changed.len() > rows {
                let _ = writeln!(out, "  … {} more (--json lists all)", changed.len() - rows);
            }
        }
        out
    }

    /// The Markdown rendering: overall numbers, per-mode and per-finding tables.
    pub fn to_markdown(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(out, "# HALO run-vs-run diff\n");
        let _ = writeln!(
            out,
            "Before: {} ({}) · After: {} ({})\n",
            counted(self.before_traces, "trace", "traces"),
            self.before_sources.join(", "),
            counted(self.after_traces, "trace", "traces"),
            self.after_sources.join(", ")
        );
        let _ = writeln!(
            out,
            "Verdicts: {}. They use Fisher's exact test at q < {}, where q is p adjusted for \
             comparing every row at once (Benjamini-Hochberg), so that chance differences among \
             many findings do not read as news.\n",
            self.verdict_line(),
            self.alpha
        );
        if self.before_problem_count + self.after_problem_count > 0 {
            let _ = writeln!(
                out,
                "**Input problems:** {} before, {} after (skipped lines, whose spans are not \
                 compared, and others; `halo index --json` lists them).\n",
                self.before_problem_count, self.after_problem_count
            );
        }
        let _ = writeln!(out, "## Overall\n");
        let _ = writeln!(out, "| metric | before | after | change | p |");
        let _ = writeln!(out, "|---|---:|---:|---:|---:|");
        for m in &self.metrics {
            let change = change_text(m);
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} | {} |",
                m.name,
                metric_value(&m.name, m.before),
                metric_value(&m.name, m.after),
                change,
                m.p_value.map(p_text).unwrap_or_default()
            );
        }
        for (title, rows) in [("By mode", &self.modes), ("By finding", &self.findings)] {
            let _ = writeln!(out, "\n## {title}\n");
            if rows.is_empty() {
                let _ = writeln!(out, "No findings in either run.");
                continue;
            }
            let _ = writeln!(
                out,
                "| verdict | finding | before | after | change | p | q (decides) | example traces |"
            );
            let _ = writeln!(out, "|---|---|---:|---:|---:|---:|---:|---|");
            for f in rows.iter() {
                // A mode's title already names it; a finding's says which mode it is of.
                let name = match f.key == FindingKey::new(f.key.mode) {
                    true => md_cell(&f.title),
                    false => format!("{} (`{}`)", md_cell(&f.title), f.key.mode),
                };
                let _ = writeln!(
                    out,
                    "| {} | {} | {} ({}) | {} ({}) | {} | {} | {} | {} |",
                    f.label(),
                    name,
                    thousands(f.before_traces as u64),
                    pct(f.before_rate),
                    thousands(f.after_traces as u64),
                    pct(f.after_rate),
                    signed_pct(f.change),
                    p_text(f.p_value),
                    p_text(f.q_value),
                    example_cell(f)
                );
            }
        }
        // Titles hold trace text (tool names): escaped, like every report.
        halo_trace::printable(&out).into_owned()
    }
}

/// A row's example traces, the run after's first (where a new or worse finding is seen),
/// each ready for `halo view AFTER ID` (or BEFORE).
fn example_cell(f: &FindingDiff) -> String {
    let ids = |ids: &[String]| {
        ids.iter()
            .map(|id| md_code(id))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let mut parts = Vec::new();
    if !f.examples_after.is_empty() {
        parts.push(format!("after: {}", ids(&f.examples_after)));
    }
    if !f.examples_before.is_empty() {
        parts.push(format!("before: {}", ids(&f.examples_before)));
    }
    // In a table a `|` ends the cell, inside a code span too.
    parts.join("; ").replace('|', "\\|")
}

fn counts(rows: &[FindingDiff]) -> BTreeMap<Verdict, usize> {
    let mut m = BTreeMap::new();
    for f in rows {
        *m.entry(f.verdict).or_default() += 1;
    }
    m
}

/// How a metric moved: points for rates, a relative change where one is defined.
fn change_text(m: &MetricDiff) -> String {
    if m.name.ends_with("_rate") {
        signed_pct(m.change)
    } else {
        match m.relative_change {
            Some(r) => format!("{:+.1}%", r * 100.0),
            None => format!("{:+.2}", m.change),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Mode;

    #[test]
    fn metric_changes_carry_no_binary_noise() {
        // 0.22 - 0.3 is -0.07999999999999999 in binary floating point.
        let m = metric("error rate", 0.3, 0.22, None);
        assert_eq!(m.change, -0.08);
        assert_eq!(m.relative_change, Some(-0.266666667));
        assert_eq!(serde_json::to_value(&m).unwrap()["change"], -0.08);
    }

    #[test]
    fn rows_that_moved_without_significance_say_which_way() {
        let row = |b, a| {
            let mut rows = vec![compare(
                FindingKey::new(Mode::ToolError),
                "t".into(),
                b,
                300,
                a,
                300,
            )];
            // Counted among many rows, a lone p of 0.01 is no longer significant.
            rows.extend(
                (0..20)
                    .map(|_| compare(FindingKey::new(Mode::Refusal), "r".into(), 5, 300, 5, 300)),
            );
            adjust_for_many(&mut rows);
            rows.swap_remove(0)
        };
        let fewer = row(24, 9);
        assert_eq!(fewer.verdict, Verdict::Unchanged, "{fewer:?}");
        assert_eq!(fewer.label, "fewer, n.s.");
        let more = row(1, 10);
        assert_eq!(more.label, "more, n.s.");
        assert_eq!(row(5, 6).label, "unchanged");
        assert_eq!(row(3, 0).label, "gone, n.s.");
        let json = serde_json::to_value(&fewer).unwrap();
        assert_eq!(json["label"], "fewer, n.s.");
        assert_eq!(json["verdict"], "unchanged");
    }
}
