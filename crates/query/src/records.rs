//! Reading one trace's spans: rows of the span tables and their raw JSON.

use halo_index::{Dataset, SpanColumns, TraceSummary};
use halo_trace::{parse_line, RawSpan};

use crate::QueryError;

/// One span of a trace, as the index knows it (facts and heads, no full payloads).
#[derive(Debug, Clone, Default, PartialEq)]
#[allow(missing_docs)]
pub struct SpanRecord {
    pub segment: u32,
    pub row: u32,
    pub span_id: String,
    pub parent_span_id: String,
    pub name: String,
    pub otel_kind: String,
    pub kind: String,
    pub start_ns: i64,
    pub end_ns: i64,
    pub duration_ms: f64,
    pub status_code: String,
    pub status_message: String,
    pub is_error: bool,
    pub service_name: Option<String>,
    pub model: Option<String>,
    pub agent_name: Option<String>,
    pub tool_name: Option<String>,
    pub input_tokens: Option<i64>,
    pub output_tokens: Option<i64>,
    pub total_tokens: Option<i64>,
    pub error_type: Option<String>,
    pub error_message: Option<String>,
    pub tool_args: Option<String>,
    pub tool_result: Option<String>,
    pub input_head: Option<String>,
    pub output_head: Option<String>,
    pub requested_tools: Vec<String>,
    pub finish_reason: Option<String>,
    pub refusal: Option<String>,
    pub line: u64,
    pub byte_offset: u64,
    pub byte_len: u32,
    pub record_offset: u64,
    pub record_len: u32,
}

fn own(v: Option<&str>) -> Option<String> {
    v.map(str::to_string)
}

impl SpanRecord {
    fn read(c: &SpanColumns<'_>, i: usize, segment: u32, row: u32) -> SpanRecord {
        SpanRecord {
            segment,
            row,
            span_id: c.span_id.value(i).to_string(),
            parent_span_id: c.parent_span_id.value(i).to_string(),
            name: c.name.value(i).to_string(),
            otel_kind: c.otel_kind.value(i).to_string(),
            kind: c.kind.value(i).to_string(),
            start_ns: c.start_time.value(i),
            end_ns: c.end_time.value(i),
            duration_ms: c.duration_ms.value(i),
            status_code: c.status_code.value(i).to_string(),
            status_message: c.status_message.value(i).to_string(),
            is_error: c.is_error.value(i),
            service_name: own(SpanColumns::opt(c.service_name, i)),
            model: own(SpanColumns::opt(c.model, i)),
            agent_name: own(SpanColumns::opt(c.agent_name, i)),
            tool_name: own(SpanColumns::opt(c.tool_name, i)),
            input_tokens: SpanColumns::opt_i64(c.input_tokens, i),
            output_tokens: SpanColumns::opt_i64(c.output_tokens, i),
            total_tokens: SpanColumns::opt_i64(c.total_tokens, i),
            error_type: own(SpanColumns::opt(c.error_type, i)),
            error_message: own(SpanColumns::opt(c.error_message, i)),
            tool_args: own(SpanColumns::opt(c.tool_args, i)),
            tool_result: own(SpanColumns::opt(c.tool_result, i)),
            input_head: own(SpanColumns::opt(c.input_head, i)),
            output_head: own(SpanColumns::opt(c.output_head, i)),
            requested_tools: SpanColumns::list(c.requested_tools, i),
            finish_reason: own(SpanColumns::opt(c.finish_reason, i)),
            refusal: own(SpanColumns::opt(c.refusal, i)),
            line: c.line.value(i),
            byte_offset: c.byte_offset.value(i),
            byte_len: c.byte_len.value(i),
            record_offset: c.record_offset.value(i),
            record_len: c.record_len.value(i),
        }
    }
}

/// Looks a trace up, or says it does not exist. A hex id given in upper case finds the
/// trace its lower-case spelling names (hex ids are read in lower case).
pub fn find_trace<'d>(ds: &'d Dataset, trace_id: &str) -> Result<&'d TraceSummary, QueryError> {
    ds.trace(&same_id(trace_id))
        .ok_or_else(|| QueryError::UnknownTrace(trace_id.to_string()))
}

/// An id as the index holds it: hex in lower case, anything else as given.
pub(crate) fn same_id(id: &str) -> std::borrow::Cow<'_, str> {
    halo_trace::span::lower_hex_id(std::borrow::Cow::Borrowed(id))
}

/// The spans of a trace, ordered by start time (file order among equals).
pub fn spans_of(ds: &Dataset, trace: &TraceSummary) -> Result<Vec<SpanRecord>, QueryError> {
    let mut out = Vec::with_capacity(trace.span_count as usize);
    for part in &trace.parts {
        let table = ds.span_table(part.segment)?;
        for &row in &part.rows {
            let Some((batch, i)) = table.locate(row) else {
                continue;
            };
            let c = SpanColumns::new(batch).map_err(|e| QueryError::Internal(e.0))?;
            out.push(SpanRecord::read(&c, i, part.segment, row));
        }
    }
    out.sort_by_key(|s| s.start_ns);
    Ok(out)
}

/// The raw bytes of a span's own JSON (for OTLP, the span object inside its line).
pub fn raw_span_json(ds: &Dataset, span: &SpanRecord) -> Result<String, QueryError> {
    let range = span.byte_offset..span.byte_offset + u64::from(span.byte_len);
    let raw = ds
        .source_bytes(span.segment, range)?
        .ok_or_else(|| source_changed(ds, span))?;
    Ok(String::from_utf8_lossy(&raw).into_owned())
}

/// The parsed span, with every attribute, read again from its source line.
pub fn full_span(ds: &Dataset, span: &SpanRecord) -> Result<RawSpan<'static>, QueryError> {
    let range = span.record_offset..span.record_offset + u64::from(span.record_len);
    let raw = ds
        .source_bytes(span.segment, range)?
        .ok_or_else(|| source_changed(ds, span))?;
    let text = std::str::from_utf8(&raw).map_err(|_| source_changed(ds, span))?;
    let parsed = parse_line(text).map_err(|_| source_changed(ds, span))?;
    let within = (span.byte_offset - span.record_offset) as usize;
    parsed
        .spans
        .into_iter()
        // Where the index says, with the id it says: a line edited in place keeps its
        // offsets, not its ids.
        .find(|(s, r)| {
            s.span_id == span.span_id && (r.start == within || parsed_len_matches(r, span))
        })
        .map(|(s, _)| s.into_owned())
        .ok_or_else(|| source_changed(ds, span))
}

/// The error for a span whose line no longer holds it; the index is marked out of date,
/// so that running the command again rebuilds it (its fingerprint did not show the
/// change, or it would not have been reused).
fn source_changed(ds: &Dataset, span: &SpanRecord) -> QueryError {
    ds.mark_out_of_date(span.segment);
    QueryError::SourceChanged(span.line)
}

fn parsed_len_matches(r: &std::ops::Range<usize>, span: &SpanRecord) -> bool {
    r.len() == span.byte_len as usize
}
