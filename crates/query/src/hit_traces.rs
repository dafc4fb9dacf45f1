//! Which traces a regex hit in the raw data belongs to.
//!
//! A scan finds matching lines. In the canonical format a line is one span, whose
//! `trace_id` is read straight from the text (decoded, escapes and all), so a count needs
//! no span table. An OTLP line holds many spans of possibly many traces in any key order,
//! so its spans are taken from the span table, which knows each span's byte range, and
//! each is matched on its own.

use std::ops::Range;
use std::sync::Arc;

use halo_index::span_table::SpanTable;
use halo_index::span_view::SpanColumns;
use halo_index::Dataset;
use regex::bytes::Regex;

use crate::QueryError;

/// Maps hits to traces, loading a segment's span table only when one of its OTLP lines
/// has a hit.
pub(crate) struct HitTraces<'d> {
    ds: &'d Dataset,
    tables: Vec<Option<Arc<SpanTable>>>,
}

impl<'d> HitTraces<'d> {
    pub(crate) fn new(ds: &'d Dataset) -> HitTraces<'d> {
        HitTraces {
            ds,
            tables: vec![None; ds.segment_count() as usize],
        }
    }

    fn table(&mut self, segment: u32) -> Result<Arc<SpanTable>, QueryError> {
        let slot = &mut self.tables[segment as usize];
        if let Some(t) = slot {
            return Ok(t.clone());
        }
        let t = self.ds.span_table(segment)?;
        *slot = Some(t.clone());
        Ok(t)
    }

    /// The traces with a span in line `line` (byte range of `data`, segment `segment`)
    /// whose JSON matches `regex`.
    pub(crate) fn matching(
        &mut self,
        segment: u32,
        data: &[u8],
        line: Range<usize>,
        regex: &Regex,
    ) -> Result<Vec<String>, QueryError> {
        let text = &data[line.clone()];
        if !halo_trace::looks_like_otlp(text) {
            return Ok(canonical_trace_id(text).into_iter().collect());
        }
        let table = self.table(segment)?;
        let mut found = Vec::new();
        for row in table.rows_starting_in(line.start as u64..line.end as u64) {
            let Some((span, trace_id)) = span_of_row(&table, row) else {
                continue;
            };
            if data.get(span).is_some_and(|json| regex.is_match(json)) {
                found.push(trace_id);
            }
        }
        Ok(found)
    }

    /// The trace of the span that holds byte `offset` of line `line`: in OTLP, `None` when
    /// the offset lies outside every span (in the resource, say).
    pub(crate) fn at(
        &mut self,
        segment: u32,
        data: &[u8],
        line: Range<usize>,
        offset: usize,
    ) -> Result<Option<String>, QueryError> {
        let text = &data[line];
        if !halo_trace::looks_like_otlp(text) {
            return Ok(canonical_trace_id(text));
        }
        let table = self.table(segment)?;
        Ok(table
            .row_at_offset(offset as u64)
            .and_then(|row| span_of_row(&table, row))
            .map(|(_, trace_id)| trace_id))
    }
}

/// A row's span bytes and trace id.
fn span_of_row(table: &SpanTable, row: u32) -> Option<(Range<usize>, String)> {
    let (batch, i) = table.locate(row)?;
    let c = SpanColumns::new(batch).ok()?;
    let start = c.byte_offset.value(i) as usize;
    let span = start..start + c.byte_len.value(i) as usize;
    Some((span, c.trace_id.value(i).to_string()))
}

/// The decoded value of the first `"trace_id"` key of a canonical line (the top-level one:
/// the format writes it first, and a nested object's key would be escaped inside a
/// string).
pub(crate) fn canonical_trace_id(line: &[u8]) -> Option<String> {
    const KEY: &[u8] = b"\"trace_id\"";
    let mut from = 0;
    while let Some(at) = memchr::memmem::find(&line[from..], KEY) {
        let after = from + at + KEY.len();
        let rest = &line[after..];
        let colon = rest.iter().position(|b| !b.is_ascii_whitespace())?;
        if rest[colon] == b':' {
            let mut values = serde_json::Deserializer::from_slice(&rest[colon + 1..])
                .into_iter::<serde_json::Value>();
            // Only the value itself is read: the stream stops after it.
            return match values.next() {
                Some(Ok(serde_json::Value::String(id))) => Some(id),
                _ => None,
            };
        }
        from = after;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_ids_are_decoded_whatever_they_hold() {
        for (line, id) in [
            (r#"{"trace_id":"t-1","span_id":"s"}"#, "t-1"),
            (r#"{"trace_id" : "t-2", "span_id":"s"}"#, "t-2"),
            (r#"{"trace_id":"t-\"q","span_id":"s"}"#, "t-\"q"),
            (r#"{"trace_id":"t-\u00fcn\u00ef","span_id":"s"}"#, "t-ünï"),
            (r#"{"trace_id":"back\\slash"}"#, "back\\slash"),
        ] {
            assert_eq!(
                canonical_trace_id(line.as_bytes()).as_deref(),
                Some(id),
                "{line}"
            );
        }
        // A key mentioned inside a string is escaped, so it is not taken for the key.
        let nested = r#"{"name":"has \"trace_id\": \"fake\"","trace_id":"real"}"#;
        assert_eq!(
            canonical_trace_id(nested.as_bytes()).as_deref(),
            Some("real")
        );
        assert_eq!(canonical_trace_id(br#"{"span_id":"s"}"#), None);
    }
}
