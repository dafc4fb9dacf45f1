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

    /// The trace of the span that holds byte `offset` of line `line`, where `regex`
    /// matched: `None` for a line that holds no span (it was skipped as unreadable). In
    /// OTLP, an offset outside every span (in the resource, say) gives the trace of the
    /// line's first span that matches on its own, if any.
    pub(crate) fn at(
        &mut self,
        segment: u32,
        data: &[u8],
        line: Range<usize>,
        offset: usize,
        regex: &Regex,
    ) -> Result<Option<String>, QueryError> {
        let otlp = halo_trace::looks_like_otlp(&data[line.clone()]);
        let table = self.table(segment)?;
        let row = match otlp {
            true => table.row_at_offset(offset as u64),
            false => {
                let rows = table.rows_starting_in(line.start as u64..line.end as u64);
                (!rows.is_empty()).then_some(rows.start)
            }
        };
        if let Some(found) = row.and_then(|row| span_of_row(&table, row)) {
            return Ok(Some(found.1));
        }
        if !otlp {
            return Ok(None);
        }
        Ok(self
            .matching(segment, data, line, regex)?
            .into_iter()
            .next())
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
