//! `search_trace` and `search_span`: bounded regex matches inside one trace's raw span JSON.

use halo_index::Dataset;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::filter::compile_regex;
use crate::records::{find_trace, raw_span_json, same_id, spans_of, SpanRecord};
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
/// Characters of one match that a record holds: a pattern like `A+` may match a whole
/// 100 MB value, and one record must still fit any answer. The rest is marked with the
/// match's original length; `view_spans` reads the value whole.
pub const MAX_MATCH_CHARS: usize = 1_000;

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
    /// Matches to pass over before the first one returned (paging: the previous answer's
    /// `next_offset`).
    #[serde(default)]
    pub offset: usize,
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
    /// Matches to pass over before the first one returned (paging: the previous answer's
    /// `next_offset`).
    #[serde(default)]
    pub offset: usize,
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
    /// The matched text: its first [`MAX_MATCH_CHARS`] characters and a marker giving
    /// its original length when it is longer.
    #[serde(rename = "match")]
    pub matched: String,
    /// The match (cut as in `match`) with context around it.
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
    /// Matches passed over before the first returned (the `offset` asked for).
    pub offset: usize,
    /// Whether more matches exist after those returned.
    pub has_more: bool,
    /// The `offset` that returns the matches after these, when there are more.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_offset: Option<u64>,
    /// The matches from `offset` on, in span start order.
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
    check_context(context)?;
    if max == 0 || max > MAX_MATCHES {
        return Err(QueryError::BadArgument {
            name: "max_matches".into(),
            message: format!("{max} is outside 1..={MAX_MATCHES}"),
        });
    }
    Ok(())
}

/// Refuses context past [`MAX_CONTEXT_CHARS`] (search and grep alike).
pub(crate) fn check_context(context: usize) -> Result<(), QueryError> {
    if context > MAX_CONTEXT_CHARS {
        return Err(QueryError::BadArgument {
            name: "context_chars".into(),
            message: format!("{context} is above {MAX_CONTEXT_CHARS}"),
        });
    }
    Ok(())
}

/// How one search is bounded.
struct Page {
    context: usize,
    max: usize,
    offset: usize,
}

/// The match `json[start..end]` as a record holds it: cut to [`MAX_MATCH_CHARS`] with a
/// marker, so that no single record outgrows an answer.
pub(crate) fn shown_match(json: &str, start: usize, end: usize) -> (String, usize) {
    let text = &json[start..end];
    let Some((cut, _)) = text.char_indices().nth(MAX_MATCH_CHARS) else {
        return (text.to_string(), end);
    };
    let chars = text.chars().count();
    (
        format!("{}…[truncated: original {chars} chars]", &text[..cut]),
        start + cut,
    )
}

fn search(
    ds: &Dataset,
    trace_id: &str,
    spans: Vec<SpanRecord>,
    pattern: &str,
    page: Page,
) -> Result<SearchResult, QueryError> {
    let Page {
        context,
        max,
        offset,
    } = page;
    check_bounds(context, max)?;
    let regex = compile_regex(pattern)?;
    let mut result = SearchResult {
        schema_version: SEARCH_SCHEMA_VERSION,
        trace_id: trace_id.to_string(),
        pattern: pattern.to_string(),
        total_matches: 0,
        matching_span_count: 0,
        offset,
        has_more: false,
        next_offset: None,
        matches: Vec::new(),
    };
    for span in &spans {
        let json = raw_span_json(ds, span)?;
        let mut any = false;
        for m in regex.find_iter(json.as_bytes()) {
            any = true;
            result.total_matches += 1;
            if result.total_matches <= offset as u64 {
                continue;
            }
            if result.matches.len() >= max {
                if !result.has_more {
                    result.has_more = true;
                    result.next_offset = Some(result.total_matches - 1);
                }
                continue;
            }
            let (start, end) = (floor_char(&json, m.start()), ceil_char(&json, m.end()));
            let window =
                crate::context_window::context_window(json.as_bytes(), start..end, context);
            let (from, to) = (window.start, window.end);
            let (matched, shown_end) = shown_match(&json, start, end);
            let context = if shown_end == end {
                json[from..to].to_string()
            } else {
                // The cut match between its context on either side.
                format!("{}{matched}{}", &json[from..start], &json[end..to])
            };
            result.matches.push(SearchMatch {
                span_id: span.span_id.clone(),
                // Once per match: a megabyte name would be repeated in every one.
                span_name: halo_trace::clip(&span.name, MAX_MATCH_CHARS).into_owned(),
                span_kind: span.kind.clone(),
                status: span.status_code.clone(),
                matched,
                context,
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
        Page {
            context: args.context_chars,
            max: args.max_matches,
            offset: args.offset,
        },
    )
}

/// Searches one span of a trace.
pub fn search_span(ds: &Dataset, args: &SearchSpanArgs) -> Result<SearchResult, QueryError> {
    let trace = find_trace(ds, &args.trace_id)?;
    let spans: Vec<SpanRecord> = spans_of(ds, trace)?
        .into_iter()
        .filter(|s| s.span_id == same_id(&args.span_id))
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
        Page {
            context: args.context_chars,
            max: args.max_matches,
            offset: args.offset,
        },
    )
}
