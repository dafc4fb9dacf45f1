//! `search_trace` and `search_span`: bounded regex matches inside one trace's raw span JSON.

use halo_index::Dataset;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::filter::compile_regex;
use crate::records::{find_trace, raw_span_json, spans_of, SpanRecord};
use crate::QueryError;

/// Version of the [`SearchResult`] JSON.
pub const SEARCH_SCHEMA_VERSION: u32 = 1;
/// Default characters of context on each side of a match.
pub const DEFAULT_CONTEXT_CHARS: usize = 200;
/// Default and largest number of matches returned.
pub const DEFAULT_MAX_MATCHES: usize = 20;
/// Largest `max_matches`.
pub const MAX_MATCHES: usize = 500;
/// Largest `context_chars`.
pub const MAX_CONTEXT_CHARS: usize = 2_000;

fn default_context() -> usize {
    DEFAULT_CONTEXT_CHARS
}

fn default_max() -> usize {
    DEFAULT_MAX_MATCHES
}

/// Arguments of `search_trace`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct SearchTraceArgs {
    /// The trace.
    pub trace_id: String,
    /// A regular expression (Rust syntax) over each span's raw JSON.
    pub pattern: String,
    /// Characters of context on each side (default 200, at most 2000).
    #[serde(default = "default_context")]
    pub context_chars: usize,
    /// Most matches to return (default 20, at most 500).
    #[serde(default = "default_max")]
    pub max_matches: usize,
}

/// Arguments of `search_span`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct SearchSpanArgs {
    /// The trace.
    pub trace_id: String,
    /// The span.
    pub span_id: String,
    /// A regular expression (Rust syntax) over the span's raw JSON.
    pub pattern: String,
    /// Characters of context on each side (default 200, at most 2000).
    #[serde(default = "default_context")]
    pub context_chars: usize,
    /// Most matches to return (default 20, at most 500).
    #[serde(default = "default_max")]
    pub max_matches: usize,
}

/// One match.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct SearchMatch {
    /// Span id.
    pub span_id: String,
    /// Span name.
    pub span_name: String,
    /// Semantic kind.
    pub span_kind: String,
    /// `OK`, `ERROR` or `UNSET`.
    pub status: String,
    /// The matched text.
    #[serde(rename = "match")]
    pub matched: String,
    /// The match with context around it.
    pub context: String,
    /// Byte offset of the match in the span's JSON.
    pub offset: usize,
    /// Byte offset of the match in `context` (not in the JSON: renderers use it to mark
    /// this match, where the context may hold the same text earlier).
    #[serde(skip)]
    pub context_offset: usize,
}

/// The answer of `search_trace` / `search_span` / `halo search`.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct SearchResult {
    /// [`SEARCH_SCHEMA_VERSION`].
    pub schema_version: u32,
    /// Trace id.
    pub trace_id: String,
    /// The pattern.
    pub pattern: String,
    /// Matches in all.
    pub total_matches: u64,
    /// Spans with a match.
    pub matching_span_count: u64,
    /// Whether more matches exist than were returned.
    pub has_more: bool,
    /// The first matches, in span start order.
    pub matches: Vec<SearchMatch>,
}

fn floor_char(s: &str, mut i: usize) -> usize {
    while i > 0 && !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

fn ceil_char(s: &str, mut i: usize) -> usize {
    while i < s.len() && !s.is_char_boundary(i) {
        i += 1;
    }
    i
}

fn check_bounds(context: usize, max: usize) -> Result<(), QueryError> {
    if context > MAX_CONTEXT_CHARS {
        return Err(QueryError::BadArgument {
            name: "context_chars".into(),
            message: format!("{context} is above {MAX_CONTEXT_CHARS}"),
        });
    }
    if max == 0 || max > MAX_MATCHES {
        return Err(QueryError::BadArgument {
            name: "max_matches".into(),
            message: format!("{max} is outside 1..={MAX_MATCHES}"),
        });
    }
    Ok(())
}

fn search(
    ds: &Dataset,
    trace_id: &str,
    spans: Vec<SpanRecord>,
    pattern: &str,
    context: usize,
    max: usize,
) -> Result<SearchResult, QueryError> {
    check_bounds(context, max)?;
    let regex = compile_regex(pattern)?;
    let mut result = SearchResult {
        schema_version: SEARCH_SCHEMA_VERSION,
        trace_id: trace_id.to_string(),
        pattern: pattern.to_string(),
        total_matches: 0,
        matching_span_count: 0,
        has_more: false,
        matches: Vec::new(),
    };
    for span in &spans {
        let json = raw_span_json(ds, span)?;
        let mut any = false;
        for m in regex.find_iter(json.as_bytes()) {
            any = true;
            result.total_matches += 1;
            if result.matches.len() >= max {
                result.has_more = true;
                continue;
            }
            let (start, end) = (floor_char(&json, m.start()), ceil_char(&json, m.end()));
            let window =
                crate::context_window::context_window(json.as_bytes(), start..end, context);
            let (from, to) = (window.start, window.end);
            result.matches.push(SearchMatch {
                span_id: span.span_id.clone(),
                span_name: span.name.clone(),
                span_kind: span.kind.clone(),
                status: span.status_code.clone(),
                matched: json[start..end].to_string(),
                context: json[from..to].to_string(),
                offset: m.start(),
                context_offset: start - from,
            });
        }
        result.matching_span_count += u64::from(any);
    }
    Ok(result)
}

/// Searches every span of a trace.
pub fn search_trace(ds: &Dataset, args: &SearchTraceArgs) -> Result<SearchResult, QueryError> {
    let trace = find_trace(ds, &args.trace_id)?;
    let spans = spans_of(ds, trace)?;
    search(
        ds,
        &args.trace_id,
        spans,
        &args.pattern,
        args.context_chars,
        args.max_matches,
    )
}

/// Searches one span of a trace.
pub fn search_span(ds: &Dataset, args: &SearchSpanArgs) -> Result<SearchResult, QueryError> {
    let trace = find_trace(ds, &args.trace_id)?;
    let spans: Vec<SpanRecord> = spans_of(ds, trace)?
        .into_iter()
        .filter(|s| s.span_id == args.span_id)
        .collect();
    if spans.is_empty() {
        return Err(QueryError::UnknownSpan {
            trace_id: args.trace_id.clone(),
            span_id: args.span_id.clone(),
        });
    }
    search(
        ds,
        &args.trace_id,
        spans,
        &args.pattern,
        args.context_chars,
        args.max_matches,
    )
}
