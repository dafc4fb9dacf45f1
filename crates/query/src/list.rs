//! `query_traces` and `count_traces`.

use halo_index::{Dataset, TraceSummary};
use halo_trace::time::format_rfc3339_nanos;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::filter::TraceFilters;
use crate::scan::{ScanBudget, ScanInfo};
use crate::select::select;
use crate::QueryError;

/// Version of the [`TraceList`] JSON.
pub const TRACE_LIST_SCHEMA_VERSION: u32 = 1;
/// Version of the [`TraceCount`] JSON.
pub const TRACE_COUNT_SCHEMA_VERSION: u32 = 1;
/// Most traces one page may hold.
pub const MAX_LIMIT: usize = 500;

/// What to order traces by.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum SortKey {
    /// Start time (the default).
    #[default]
    Start,
    /// Duration.
    Duration,
    /// Total tokens.
    Tokens,
    /// Error spans.
    Errors,
    /// Span count.
    Spans,
}

impl std::str::FromStr for SortKey {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "start" | "start_time" => Ok(SortKey::Start),
            "duration" => Ok(SortKey::Duration),
            "tokens" => Ok(SortKey::Tokens),
            "errors" | "error_count" => Ok(SortKey::Errors),
            "spans" | "span_count" => Ok(SortKey::Spans),
            _ => Err(format!(
                "unknown sort key {s:?} (start, duration, tokens, errors, spans)"
            )),
        }
    }
}

fn default_limit() -> usize {
    50
}

/// Arguments of `query_traces`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct QueryArgs {
    /// Which traces.
    #[serde(default)]
    pub filters: TraceFilters,
    /// Page size (at most 500).
    #[serde(default = "default_limit")]
    pub limit: usize,
    /// Traces to skip.
    #[serde(default)]
    pub offset: usize,
    /// Order.
    #[serde(default)]
    pub sort: SortKey,
    /// Largest first (default: true for duration, tokens, errors and spans; false for start).
    #[serde(default)]
    pub descending: Option<bool>,
}

impl Default for QueryArgs {
    fn default() -> Self {
        QueryArgs {
            filters: TraceFilters::default(),
            limit: default_limit(),
            offset: 0,
            sort: SortKey::Start,
            descending: None,
        }
    }
}

/// Calls and errors of one tool in a trace.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct TraceTool {
    /// Tool name.
    pub name: String,
    /// Calls.
    pub calls: u32,
    /// Failed calls.
    pub errors: u32,
}

/// One trace in a list.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct TraceRow {
    /// Trace id.
    pub trace_id: String,
    /// Start.
    pub start_time: String,
    /// End.
    pub end_time: String,
    /// Duration.
    pub duration_ms: f64,
    /// Spans.
    pub span_count: u32,
    /// Root span name.
    pub root_span_name: String,
    /// Any error span.
    pub has_errors: bool,
    /// Error spans.
    pub error_span_count: u32,
    /// Failed tool spans.
    pub tool_error_span_count: u32,
    /// Services.
    pub service_names: Vec<String>,
    /// Models.
    pub model_names: Vec<String>,
    /// Agents.
    pub agent_names: Vec<String>,
    /// Tools called.
    pub tools: Vec<TraceTool>,
    /// Input tokens.
    pub total_input_tokens: i64,
    /// Output tokens.
    pub total_output_tokens: i64,
    /// Total tokens.
    pub total_tokens: i64,
    /// Cost, where known.
    pub cost: Option<f64>,
    /// Project.
    pub project_id: Option<String>,
    /// Session.
    pub session_id: Option<String>,
    /// User.
    pub user_id: Option<String>,
    /// Outcome marker.
    pub outcome: Option<String>,
    /// Bytes of its span JSON.
    pub raw_jsonl_bytes: u64,
    /// Error groups, for a glance at what failed.
    pub error_groups: Vec<String>,
}

impl TraceRow {
    /// The row for a rollup.
    pub fn of(t: &TraceSummary) -> TraceRow {
        let names = |v: &[std::sync::Arc<str>]| v.iter().map(|s| s.to_string()).collect();
        TraceRow {
            trace_id: t.trace_id.clone(),
            start_time: format_rfc3339_nanos(t.start_ns),
            end_time: format_rfc3339_nanos(t.end_ns),
            duration_ms: t.duration_ms(),
            span_count: t.span_count,
            root_span_name: t.root_span_name.clone(),
            has_errors: t.has_errors(),
            error_span_count: t.error_span_count,
            tool_error_span_count: t.tool_error_span_count,
            service_names: names(&t.services),
            model_names: names(&t.models),
            agent_names: names(&t.agents),
            tools: t
                .tools
                .iter()
                .map(|u| TraceTool {
                    name: u.name.to_string(),
                    calls: u.calls,
                    errors: u.errors,
                })
                .collect(),
            total_input_tokens: t.input_tokens,
            total_output_tokens: t.output_tokens,
            total_tokens: t.total_tokens,
            cost: t.cost,
            project_id: t.project_id.clone(),
            session_id: t.session_id.clone(),
            user_id: t.user_id.clone(),
            outcome: t.outcome.clone(),
            raw_jsonl_bytes: t.raw_bytes,
            error_groups: t.error_groups.iter().map(|g| g.group.to_string()).collect(),
        }
    }
}

/// The answer of `query_traces` / `halo query`.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct TraceList {
    /// [`TRACE_LIST_SCHEMA_VERSION`].
    pub schema_version: u32,
    /// Traces selected in all.
    pub total: u64,
    /// Skipped.
    pub offset: usize,
    /// Page size.
    pub limit: usize,
    /// Whether more pages follow.
    pub has_more: bool,
    /// This page.
    pub traces: Vec<TraceRow>,
    /// The regex scan, when a regex filter ran.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scan: Option<ScanInfo>,
}

/// The answer of `count_traces` / `halo count`.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct TraceCount {
    /// [`TRACE_COUNT_SCHEMA_VERSION`].
    pub schema_version: u32,
    /// Traces selected.
    pub total: u64,
    /// The regex scan, when a regex filter ran.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scan: Option<ScanInfo>,
}

/// Lists the traces `args.filters` selects, sorted and paged.
pub fn query_traces(
    ds: &Dataset,
    args: &QueryArgs,
    budget: ScanBudget,
) -> Result<TraceList, QueryError> {
    if args.limit == 0 || args.limit > MAX_LIMIT {
        return Err(QueryError::BadArgument {
            name: "limit".into(),
            message: format!("{} is outside 1..={MAX_LIMIT}", args.limit),
        });
    }
    let (mut selected, scan) = select(ds, &args.filters, budget)?;
    let traces = ds.traces();
    let descending = args.descending.unwrap_or(args.sort != SortKey::Start);
    let key = |i: &usize| -> f64 {
        let t = &traces[*i];
        match args.sort {
            SortKey::Start => t.start_ns as f64,
            SortKey::Duration => t.duration_ms(),
            SortKey::Tokens => t.total_tokens as f64,
            SortKey::Errors => f64::from(t.error_span_count),
            SortKey::Spans => f64::from(t.span_count),
        }
    };
    selected.sort_by(|a, b| {
        let o = key(a).total_cmp(&key(b));
        let o = if descending { o.reverse() } else { o };
        o.then_with(|| traces[*a].trace_id.cmp(&traces[*b].trace_id))
    });
    let total = selected.len();
    let page: Vec<TraceRow> = selected
        .iter()
        .skip(args.offset)
        .take(args.limit)
        .map(|&i| TraceRow::of(&traces[i]))
        .collect();
    Ok(TraceList {
        schema_version: TRACE_LIST_SCHEMA_VERSION,
        total: total as u64,
        offset: args.offset,
        limit: args.limit,
        has_more: args.offset + page.len() < total,
        traces: page,
        scan,
    })
}

/// Counts the traces `filters` selects.
pub fn count_traces(
    ds: &Dataset,
    filters: &TraceFilters,
    budget: ScanBudget,
) -> Result<TraceCount, QueryError> {
    let (selected, scan) = select(ds, filters, budget)?;
    Ok(TraceCount {
        schema_version: TRACE_COUNT_SCHEMA_VERSION,
        total: selected.len() as u64,
        scan,
    })
}
