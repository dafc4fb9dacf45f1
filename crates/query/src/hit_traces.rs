//! Which traces a regex hit in the raw data belongs to.
//!
//! A scan finds matching lines; the span table, which knows every span's byte range, says
//! which spans a line holds. In the canonical format that is the line's one span (none for
//! a line skipped as unreadable). An OTLP line holds many spans of possibly many traces,
//! so each of them is matched on its own. Ids come from the table, decoded, never from
//! the text around a match.

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
    /// whose own JSON matches `regex` (found with a prefilter, the line may hold none).
    pub(crate) fn matching(
        &mut self,
        segment: u32,
        data: &[u8],
        line: Range<usize>,
        regex: &Regex,
    ) -> Result<Vec<String>, QueryError> {
        let table = self.table(segment)?;
        let mut found = Vec::new();
        for row in self.rows_of_line(&table, segment, data, line.clone())? {
            let Some(span) = span_of_row(&table, row) else {
                continue;
            };
            if data
                .get(span.bytes)
                .is_some_and(|json| regex.is_match(json))
            {
                found.push(span.trace_id.to_string());
            }
        }
        Ok(found)
    }

    /// Every span starting in line `line` whose own JSON matches `regex`, in file order,
    /// with its first match (byte range of `data`). Unlike [`HitTraces::matching`], this
    /// finds where the match is, which costs more than knowing that there is one.
    pub(crate) fn matching_spans(
        &mut self,
        segment: u32,
        data: &[u8],
        line: Range<usize>,
        regex: &Regex,
    ) -> Result<Vec<SpanHit>, QueryError> {
        let table = self.table(segment)?;
        let mut found = Vec::new();
        for row in self.rows_of_line(&table, segment, data, line.clone())? {
            let Some(span) = span_of_row(&table, row) else {
                continue;
            };
            let Some(m) = data
                .get(span.bytes.clone())
                .and_then(|json| regex.find(json))
            else {
                continue;
            };
            let at = span.bytes.start;
            found.push(SpanHit {
                trace_id: span.trace_id.to_string(),
                span_id: span.span_id.to_string(),
                matched: at + m.start()..at + m.end(),
            });
        }
        Ok(found)
    }

    /// The span that holds byte `offset` of line `line`, where `regex` matched: `None`
    /// for a line that holds no span (it was skipped as unreadable). In OTLP, an offset
    /// outside every span (in the resource, say) gives the line's first span that matches
    /// on its own, if any.
    pub(crate) fn at(
        &mut self,
        segment: u32,
        data: &[u8],
        line: Range<usize>,
        offset: usize,
        regex: &Regex,
    ) -> Result<Option<SpanIds>, QueryError> {
        let otlp = halo_trace::looks_like_otlp(&data[line.clone()]);
        let table = self.table(segment)?;
        let row = match otlp {
            true => table.row_at_offset(offset as u64),
            false => {
                let rows = self.rows_of_line(&table, segment, data, line.clone())?;
                (!rows.is_empty()).then_some(rows.start)
            }
        };
        if let Some(found) = row.and_then(|row| span_of_row(&table, row)) {
            return Ok(Some(SpanIds {
                trace_id: found.trace_id.to_string(),
                span_id: found.span_id.to_string(),
            }));
        }
        if !otlp {
            return Ok(None);
        }
        Ok(self
            .matching_spans(segment, data, line, regex)?
            .into_iter()
            .next()
            .map(|hit| SpanIds {
                trace_id: hit.trace_id,
                span_id: hit.span_id,
            }))
    }
}

impl HitTraces<'_> {
    /// The rows of the spans in line `line`, checked against the line: a canonical line
    /// holds one span that starts where the line does, or none when it was skipped as
    /// unreadable. A file edited without a change its fingerprint sees (same size and
    /// time) breaks that, and its hits would map to no span or the wrong one: the index is
    /// marked out of date and the answer refused, as `view` refuses a moved span.
    fn rows_of_line(
        &self,
        table: &SpanTable,
        segment: u32,
        data: &[u8],
        line: Range<usize>,
    ) -> Result<Range<u32>, QueryError> {
        let rows = table.rows_starting_in(line.start as u64..line.end as u64);
        let text = &data[line.clone()];
        if halo_trace::looks_like_otlp(text) {
            return Ok(rows);
        }
        let holds = match rows.len() {
            0 => {
                // A skipped line does not read as a span; one that does was never indexed.
                std::str::from_utf8(text)
                    .ok()
                    .and_then(|t| halo_trace::parse_line(t).ok())
                    .is_none_or(|parsed| parsed.spans.is_empty())
            }
            1 => span_of_row(table, rows.start).is_some_and(|span| {
                let lead = data[line.start..span.bytes.start.max(line.start)]
                    .iter()
                    .all(|b| b.is_ascii_whitespace() || *b >= 0x80);
                span.bytes.start >= line.start && span.bytes.end <= line.end && lead
            }),
            _ => false,
        };
        if holds {
            return Ok(rows);
        }
        self.ds.mark_out_of_date(segment);
        let seg = self.ds.segment_info(segment);
        let before = &data[(seg.bytes.start as usize).min(line.start)..line.start];
        let line_no = seg.first_line + memchr::memchr_iter(b'\n', before).count() as u64;
        Err(QueryError::SourceChanged(line_no))
    }
}

/// The ids of a span, decoded from the span table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SpanIds {
    pub(crate) trace_id: String,
    pub(crate) span_id: String,
}

/// A span whose own JSON matches, and where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SpanHit {
    pub(crate) trace_id: String,
    pub(crate) span_id: String,
    /// The span's first match, as a byte range of the segment's data.
    pub(crate) matched: Range<usize>,
}

/// A span table row: where its JSON is and its ids.
struct RowSpan<'t> {
    bytes: Range<usize>,
    trace_id: &'t str,
    span_id: &'t str,
}

/// A row's span bytes and ids.
fn span_of_row(table: &SpanTable, row: u32) -> Option<RowSpan<'_>> {
    let (batch, i) = table.locate(row)?;
    let c = SpanColumns::new(batch).ok()?;
    let start = c.byte_offset.value(i) as usize;
    Some(RowSpan {
        bytes: start..start + c.byte_len.value(i) as usize,
        trace_id: c.trace_id.value(i),
        span_id: c.span_id.value(i),
    })
}
