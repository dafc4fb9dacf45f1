//! The ids of the traces a filter set selects, for analyses that take a set of traces.

use halo_index::Dataset;

use crate::filter::TraceFilters;
use crate::scan::{ScanBudget, ScanInfo};
use crate::select::select;
use crate::QueryError;

/// The ids of every trace `filters` select, in dataset order, and what a `regex_pattern`
/// scan covered when one ran (`None` without a regex). When the scan stopped at the
/// budget, the ids are those found so far and the [`ScanInfo`] says it is incomplete.
///
/// The same selection as [`crate::count_traces`] and [`crate::query_traces`], without
/// paging: the way to hand "the traces of these filters" to a whole-set analysis such as
/// the offline diagnosis.
pub fn select_trace_ids(
    ds: &Dataset,
    filters: &TraceFilters,
    budget: ScanBudget,
) -> Result<(Vec<String>, Option<ScanInfo>), QueryError> {
    let (indices, scan) = select(ds, filters, budget)?;
    let traces = ds.traces();
    Ok((
        indices
            .into_iter()
            .map(|i| traces[i].trace_id.clone())
            .collect(),
        scan,
    ))
}
