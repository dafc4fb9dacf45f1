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
/// limit), then the spans' own status and error messages (so `429` finds the code), read
/// in one pass over the error spans of the span tables.
fn with_error_message(
    ds: &Dataset,
    candidates: Vec<usize>,
    needle: &str,
) -> Result<Vec<usize>, QueryError> {
    let traces = ds.traces();
    let contains = |text: &str| text.contains(needle) || text.to_lowercase().contains(needle);
    let by_group = |i: &usize| traces[*i].error_groups.iter().any(|g| contains(&g.group));
    if candidates.iter().all(by_group) {
        return Ok(candidates);
    }
    let mut with_message: std::collections::HashSet<String> = Default::default();
    for segment in 0..ds.segment_count() {
        let table = ds.span_table(segment)?;
        for batch in table.batches() {
            let c = halo_index::SpanColumns::new(batch).map_err(|e| QueryError::Internal(e.0))?;
            for r in 0..c.len() {
                if !c.is_error.value(r) {
                    continue;
                }
                let error = halo_index::SpanColumns::opt(c.error_message, r).unwrap_or("");
                if contains(c.status_message.value(r)) || contains(error) {
                    with_message.insert(c.trace_id.value(r).to_string());
                }
            }
        }
    }
    Ok(candidates
        .into_iter()
        .filter(|i| by_group(i) || with_message.contains(&traces[*i].trace_id))
        .collect())
}
