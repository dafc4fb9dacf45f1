//! Choosing the traces a filter set selects.

use std::time::Instant;

use halo_index::Dataset;

use crate::filter::TraceFilters;
use crate::records::{raw_span_json, spans_of};
use crate::scan::{matching_trace_ids, ScanBudget, ScanInfo};
use crate::QueryError;

/// Below this share of the dataset's bytes, a regex is checked trace by trace instead of
/// scanning everything.
const PER_TRACE_SHARE: f64 = 0.2;

/// Indices (into `ds.traces()`) of the traces the filters select, in dataset order, and what
/// a regex scan covered when one ran.
pub(crate) fn select(
    ds: &Dataset,
    filters: &TraceFilters,
    budget: ScanBudget,
) -> Result<(Vec<usize>, Option<ScanInfo>), QueryError> {
    let compiled = filters.compile()?;
    let traces = ds.traces();
    let mut candidates: Vec<usize> = (0..traces.len())
        .filter(|&i| compiled.matches_rollup(&traces[i]))
        .collect();
    if let Some(needle) = compiled.status_message() {
        candidates = with_error_message(ds, candidates, needle)?;
    }
    let Some(regex) = &compiled.regex else {
        return Ok((candidates, None));
    };
    let total: u64 = traces.iter().map(|t| t.raw_bytes).sum();
    let selected: u64 = candidates.iter().map(|&i| traces[i].raw_bytes).sum();
    if (selected as f64) < PER_TRACE_SHARE * total as f64 {
        let started = Instant::now();
        let mut kept = Vec::new();
        let mut scanned = 0u64;
        let mut complete = true;
        for i in candidates {
            if started.elapsed() > budget.time {
                complete = false;
                break;
            }
            let t = &traces[i];
            scanned += t.raw_bytes;
            for span in spans_of(ds, t)? {
                if regex.is_match(raw_span_json(ds, &span)?.as_bytes()) {
                    kept.push(i);
                    break;
                }
            }
        }
        let info = ScanInfo {
            complete,
            stopped_by: (!complete).then_some(crate::scan::StopReason::TimeBudget),
            scanned_bytes: scanned,
            total_bytes: selected,
            elapsed_ms: started.elapsed().as_secs_f64() * 1e3,
        };
        return Ok((kept, Some(info)));
    }
    let (ids, info) = matching_trace_ids(ds, regex, budget)?;
    let kept = candidates
        .into_iter()
        .filter(|&i| ids.contains(traces[i].trace_id.as_bytes()))
        .collect();
    Ok((kept, Some(info)))
}

/// The traces among `candidates` with an error span whose message contains `needle`
/// (lowercase): an error group's label first (masked, so `rate limit` finds every rate
/// limit), then the spans' own status and error messages (so `429` finds the code).
fn with_error_message(
    ds: &Dataset,
    candidates: Vec<usize>,
    needle: &str,
) -> Result<Vec<usize>, QueryError> {
    let traces = ds.traces();
    let contains = |text: &str| text.to_lowercase().contains(needle);
    let mut kept = Vec::new();
    'traces: for i in candidates {
        let t = &traces[i];
        if t.error_groups.iter().any(|g| contains(&g.group)) {
            kept.push(i);
            continue;
        }
        for part in &t.parts {
            let table = ds.span_table(part.segment)?;
            for &row in &part.rows {
                let Some((batch, r)) = table.locate(row) else {
                    continue;
                };
                let c =
                    halo_index::SpanColumns::new(batch).map_err(|e| QueryError::Internal(e.0))?;
                if !c.is_error.value(r) {
                    continue;
                }
                let status = c.status_message.value(r);
                let error = halo_index::SpanColumns::opt(c.error_message, r).unwrap_or("");
                if contains(status) || contains(error) {
                    kept.push(i);
                    continue 'traces;
                }
            }
        }
    }
    Ok(kept)
}
