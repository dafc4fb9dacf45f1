//! `get_dataset_overview`: what is in the dataset (or the part a filter selects).

use std::collections::HashMap;
use std::sync::Arc;

use halo_index::{Dataset, TraceSummary};
use halo_trace::time::format_rfc3339_nanos;
use serde::Serialize;

use crate::filter::TraceFilters;
use crate::scan::{ScanBudget, ScanInfo};
use crate::select::select;
use crate::QueryError;

/// Version of the [`Overview`] JSON.
pub const OVERVIEW_SCHEMA_VERSION: u32 = 1;

/// How many sample trace ids an overview lists.
pub const SAMPLE_TRACE_IDS: usize = 20;

/// How many error groups the taxonomy lists.
pub const TAXONOMY_GROUPS: usize = 20;

/// A name and how many traces have it.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct NameCount {
    /// The name.
    pub name: String,
    /// Traces with it.
    pub trace_count: u64,
}

/// One tool over the selected traces.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct ToolStats {
    /// Tool name.
    pub name: String,
    /// Tool spans.
    pub calls: u64,
    /// Failed tool spans.
    pub errors: u64,
    /// errors / calls.
    pub error_rate: f64,
    /// Traces that called it.
    pub trace_count: u64,
}

/// One group of the error taxonomy.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct ErrorGroup {
    /// What failed and the masked message (`tool list_files: No such file ... <path>`).
    pub group: String,
    /// Error spans in the group.
    pub span_count: u64,
    /// Traces with at least one.
    pub trace_count: u64,
    /// Up to five example traces.
    pub sample_trace_ids: Vec<String>,
}

/// Distribution of a per-trace number.
#[derive(Debug, Clone, Serialize, PartialEq, Default)]
pub struct Distribution {
    /// Smallest.
    pub min: f64,
    /// Median.
    pub p50: f64,
    /// 90th percentile.
    pub p90: f64,
    /// 99th percentile.
    pub p99: f64,
    /// Largest.
    pub max: f64,
}

impl Distribution {
    /// The distribution of some values.
    pub fn of_values(values: Vec<f64>) -> Distribution {
        Distribution::of(values)
    }

    fn of(mut values: Vec<f64>) -> Distribution {
        if values.is_empty() {
            return Distribution::default();
        }
        values.sort_by(|a, b| a.total_cmp(b));
        let at = |q: f64| values[((values.len() - 1) as f64 * q).round() as usize];
        Distribution {
            min: values[0],
            p50: at(0.5),
            p90: at(0.9),
            p99: at(0.99),
            max: values[values.len() - 1],
        }
    }
}

/// How many problems an overview lists word for word: enough to see what is wrong with
/// the data, few enough not to crowd an agent's context.
pub const OVERVIEW_PROBLEMS: usize = 10;

/// The answer of `get_dataset_overview` / `halo overview`.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Overview {
    /// [`OVERVIEW_SCHEMA_VERSION`].
    pub schema_version: u32,
    /// Traces selected.
    pub total_traces: u64,
    /// Spans in them.
    pub total_spans: u64,
    /// Traces with an error span.
    pub error_trace_count: u64,
    /// Error spans.
    pub error_span_count: u64,
    /// Error spans of kind TOOL.
    pub tool_error_span_count: u64,
    /// Traces with a failed tool span.
    pub tool_error_trace_count: u64,
    /// LLM spans.
    pub llm_call_count: u64,
    /// Tool spans.
    pub tool_call_count: u64,
    /// Input tokens.
    pub total_input_tokens: i64,
    /// Output tokens.
    pub total_output_tokens: i64,
    /// All tokens.
    pub total_tokens: i64,
    /// Cost, where the data carries it.
    pub total_cost: Option<f64>,
    /// How many spans carry a cost: what `total_cost` covers, next to `llm_call_count`.
    pub priced_span_count: u64,
    /// Bytes of span JSON.
    pub raw_jsonl_bytes: u64,
    /// Earliest start.
    pub start_time: Option<String>,
    /// Latest end.
    pub end_time: Option<String>,
    /// Services by trace count.
    pub services: Vec<NameCount>,
    /// Models by trace count.
    pub models: Vec<NameCount>,
    /// Agents by trace count.
    pub agents: Vec<NameCount>,
    /// Projects by trace count.
    pub projects: Vec<NameCount>,
    /// Distinct sessions.
    pub session_count: u64,
    /// Tools by calls.
    pub tools: Vec<ToolStats>,
    /// Trace durations in milliseconds.
    pub duration_ms: Distribution,
    /// Spans per trace.
    pub spans_per_trace: Distribution,
    /// Top error groups.
    pub error_taxonomy: Vec<ErrorGroup>,
    /// Example traces: errors first, then others.
    pub sample_trace_ids: Vec<String>,
    /// Spans whose parent is missing.
    pub missing_parent_span_count: u64,
    /// Spans with a repeated id.
    pub duplicate_span_count: u64,
    /// Files in the dataset.
    pub file_count: u64,
    /// Lines skipped as unreadable.
    pub skipped_lines: u64,
    /// Problems found while indexing.
    pub problem_count: u64,
    /// The first [`OVERVIEW_PROBLEMS`] of them (kind, file, line, message);
    /// `halo index --json` lists more.
    pub problems: Vec<halo_ingest::Problem>,
    /// The regex scan, when a regex filter ran.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scan: Option<ScanInfo>,
}

impl Default for Overview {
    /// An overview of nothing, in the current schema: what a build starts from.
    fn default() -> Overview {
        Overview {
            schema_version: OVERVIEW_SCHEMA_VERSION,
            total_traces: 0,
            total_spans: 0,
            error_trace_count: 0,
            error_span_count: 0,
            tool_error_span_count: 0,
            tool_error_trace_count: 0,
            llm_call_count: 0,
            tool_call_count: 0,
            total_input_tokens: 0,
            total_output_tokens: 0,
            total_tokens: 0,
            total_cost: None,
            priced_span_count: 0,
            raw_jsonl_bytes: 0,
            start_time: None,
            end_time: None,
            services: Vec::new(),
            models: Vec::new(),
            agents: Vec::new(),
            projects: Vec::new(),
            session_count: 0,
            tools: Vec::new(),
            duration_ms: Distribution::default(),
            spans_per_trace: Distribution::default(),
            error_taxonomy: Vec::new(),
            sample_trace_ids: Vec::new(),
            missing_parent_span_count: 0,
            duplicate_span_count: 0,
            file_count: 0,
            skipped_lines: 0,
            problem_count: 0,
            problems: Vec::new(),
            scan: None,
        }
    }
}

fn ranked(counts: HashMap<Arc<str>, u64>) -> Vec<NameCount> {
    let mut v: Vec<NameCount> = counts
        .into_iter()
        .map(|(n, c)| NameCount {
            name: n.to_string(),
            trace_count: c,
        })
        .collect();
    v.sort_by(|a, b| {
        b.trace_count
            .cmp(&a.trace_count)
            .then_with(|| a.name.cmp(&b.name))
    });
    v
}

/// Summarizes the traces that `filters` selects.
pub fn overview(
    ds: &Dataset,
    filters: &TraceFilters,
    budget: ScanBudget,
) -> Result<Overview, QueryError> {
    let (selected, scan) = select(ds, filters, budget)?;
    let traces = ds.traces();
    Ok(summarize(ds, selected.iter().map(|&i| &traces[i]), scan))
}

fn summarize<'t>(
    ds: &Dataset,
    traces: impl Iterator<Item = &'t TraceSummary>,
    scan: Option<ScanInfo>,
) -> Overview {
    let mut o = Overview {
        file_count: ds.reports().len() as u64,
        skipped_lines: ds.skipped_lines(),
        problem_count: ds.problem_count(),
        problems: ds
            .problems()
            .iter()
            .take(OVERVIEW_PROBLEMS)
            .cloned()
            .collect(),
        scan,
        ..Overview::default()
    };
    let (mut services, mut models, mut agents) = (HashMap::new(), HashMap::new(), HashMap::new());
    let mut projects: HashMap<Arc<str>, u64> = HashMap::new();
    let mut sessions = std::collections::HashSet::new();
    let mut tools: HashMap<Arc<str>, (u64, u64, u64)> = HashMap::new();
    let mut groups: HashMap<Arc<str>, (u64, u64, Vec<String>)> = HashMap::new();
    let mut durations = Vec::new();
    let mut span_counts = Vec::new();
    let (mut start, mut end) = (i64::MAX, i64::MIN);
    let mut error_samples = Vec::new();
    let mut other_samples = Vec::new();
    for t in traces {
        o.total_traces += 1;
        o.total_spans += u64::from(t.span_count);
        o.error_span_count += u64::from(t.error_span_count);
        o.tool_error_span_count += u64::from(t.tool_error_span_count);
        o.llm_call_count += u64::from(t.llm_call_count);
        o.tool_call_count += u64::from(t.tool_call_count);
        o.total_input_tokens = o.total_input_tokens.saturating_add(t.input_tokens);
        o.total_output_tokens = o.total_output_tokens.saturating_add(t.output_tokens);
        o.total_tokens = o.total_tokens.saturating_add(t.total_tokens);
        o.raw_jsonl_bytes += t.raw_bytes;
        o.missing_parent_span_count += u64::from(t.missing_parent_count);
        o.duplicate_span_count += u64::from(t.duplicate_span_count);
        o.priced_span_count += u64::from(t.priced_span_count);
        if let Some(c) = t.cost {
            o.total_cost = Some(halo_trace::add_costs(o.total_cost.unwrap_or(0.0), c));
        }
        if t.has_errors() {
            o.error_trace_count += 1;
            if error_samples.len() < SAMPLE_TRACE_IDS {
                error_samples.push(t.trace_id.clone());
            }
        } else if other_samples.len() < SAMPLE_TRACE_IDS {
            other_samples.push(t.trace_id.clone());
        }
        if t.tool_error_span_count > 0 {
            o.tool_error_trace_count += 1;
        }
        start = start.min(t.start_ns);
        end = end.max(t.end_ns);
        for (map, names) in [
            (&mut services, &t.services),
            (&mut models, &t.models),
            (&mut agents, &t.agents),
        ] {
            for n in names {
                *map.entry(n.clone()).or_insert(0u64) += 1;
            }
        }
        if let Some(p) = &t.project_id {
            *projects.entry(Arc::from(p.as_str())).or_insert(0) += 1;
        }
        if let Some(s) = &t.session_id {
            sessions.insert(s.clone());
        }
        for u in &t.tools {
            let e = tools.entry(u.name.clone()).or_insert((0, 0, 0));
            e.0 += u64::from(u.calls);
            e.1 += u64::from(u.errors);
            e.2 += 1;
        }
        for g in &t.error_groups {
            let e = groups.entry(g.group.clone()).or_insert((0, 0, Vec::new()));
            e.0 += u64::from(g.spans);
            e.1 += 1;
            if e.2.len() < 5 {
                e.2.push(t.trace_id.clone());
            }
        }
        durations.push(t.duration_ms());
        span_counts.push(f64::from(t.span_count));
    }
    if o.total_traces > 0 {
        o.start_time = Some(format_rfc3339_nanos(start));
        o.end_time = Some(format_rfc3339_nanos(end));
    }
    // A sum of many prices picks up binary noise (1.0002819999999997): no provider
    // prices below a billionth of a unit.
    o.total_cost = o.total_cost.map(halo_trace::round_nine);
    o.services = ranked(services);
    o.models = ranked(models);
    o.agents = ranked(agents);
    o.projects = ranked(projects);
    o.session_count = sessions.len() as u64;
    let mut tools: Vec<ToolStats> = tools
        .into_iter()
        .map(|(n, (calls, errors, traces))| ToolStats {
            name: n.to_string(),
            calls,
            errors,
            error_rate: if calls == 0 {
                0.0
            } else {
                errors as f64 / calls as f64
            },
            trace_count: traces,
        })
        .collect();
    tools.sort_by(|a, b| b.calls.cmp(&a.calls).then_with(|| a.name.cmp(&b.name)));
    o.tools = tools;
    let mut taxonomy: Vec<ErrorGroup> = groups
        .into_iter()
        .map(|(g, (spans, traces, samples))| ErrorGroup {
            group: g.to_string(),
            span_count: spans,
            trace_count: traces,
            sample_trace_ids: samples,
        })
        .collect();
    taxonomy.sort_by(|a, b| {
        b.trace_count
            .cmp(&a.trace_count)
            .then(b.span_count.cmp(&a.span_count))
            .then_with(|| a.group.cmp(&b.group))
    });
    taxonomy.truncate(TAXONOMY_GROUPS);
    o.error_taxonomy = taxonomy;
    o.duration_ms = Distribution::of(durations);
    o.spans_per_trace = Distribution::of(span_counts);
    let half = SAMPLE_TRACE_IDS / 2;
    let take_errors = error_samples
        .len()
        .min(half.max(SAMPLE_TRACE_IDS.saturating_sub(other_samples.len())));
    o.sample_trace_ids = error_samples.into_iter().take(take_errors).collect();
    let rest = SAMPLE_TRACE_IDS - o.sample_trace_ids.len();
    o.sample_trace_ids
        .extend(other_samples.into_iter().take(rest));
    o
}
