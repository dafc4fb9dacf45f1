//! A table's span batches cut into slices: the unit of work of a scan that reads spans
//! back from their source (the `attributes` column, the `messages` table).
//!
//! Slices are zero-copy views of the index's batches, bounded in rows and in bytes of
//! source spans, so that what one slice reads stays small whatever the dataset's size.

use std::sync::Arc;

use arrow_array::cast::AsArray;
use arrow_array::types::UInt32Type;
use arrow_array::RecordBatch;
use arrow_schema::SchemaRef;
use datafusion::arrow::compute::filter_record_batch;
use datafusion::catalog::Session;
use datafusion::common::DFSchema;
use datafusion::error::{DataFusionError, Result as DfResult};
use datafusion::logical_expr::{Expr, TableProviderFilterPushDown};
use datafusion::physical_expr::LexOrdering;
use datafusion::physical_expr::PhysicalExpr;
use datafusion::physical_plan::streaming::{PartitionStream, StreamingTableExec};
use datafusion::physical_plan::ExecutionPlan;

/// Bytes of source spans one slice reads at most (a single larger span is a slice alone).
/// What a slice reads (its attributes, its messages) becomes one `Utf8` array, which
/// cannot pass 2 GiB, and the memory a scan holds is a few slices: LLM spans of a megabyte
/// each would make a slice of 8,192 rows 8 GB.
pub(crate) const SLICE_BYTES: usize = 64 << 20;

/// Where slices are cut: after `rows` rows, or before a row that would take them past
/// `bytes` bytes of source spans.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Cut {
    /// Rows in a slice at most.
    pub(crate) rows: usize,
    /// Bytes of source spans in a slice at most.
    pub(crate) bytes: usize,
}

/// A slice of a segment's batch (with the segment's number): the unit of work of a scan
/// that reads the source.
pub(crate) type Slice = (u32, RecordBatch);

/// The batches of every segment, in index order, cut into zero-copy slices (so one slice's
/// attributes stay small), stopping after `cap` rows.
pub(crate) fn slices(segments: &[Vec<RecordBatch>], cut: Cut, cap: Option<usize>) -> Vec<Slice> {
    let rows = cut.rows.max(1);
    let mut left = cap.unwrap_or(usize::MAX);
    let mut out = Vec::new();
    for (s, batches) in segments.iter().enumerate() {
        for batch in batches {
            let sizes = batch
                .column_by_name("byte_len")
                .and_then(|c| c.as_primitive_opt::<UInt32Type>());
            let size = |row: usize| sizes.map_or(0, |a| a.value(row) as usize);
            let mut start = 0;
            while start < batch.num_rows() && left > 0 {
                let most = rows.min(batch.num_rows() - start).min(left);
                let mut len = 1;
                let mut bytes = size(start);
                while len < most && bytes + size(start + len) <= cut.bytes {
                    bytes += size(start + len);
                    len += 1;
                }
                out.push((s as u32, batch.slice(start, len)));
                start += len;
                left -= len;
            }
        }
    }
    out
}

/// Deals slices to up to `n` partitions in contiguous runs, so that one partition (as in
/// export) keeps the index order and several read the sources in parallel.
pub(crate) fn split(slices: Vec<Slice>, n: usize) -> Vec<Vec<Slice>> {
    if slices.is_empty() {
        return vec![Vec::new()];
    }
    let per = slices.len().div_ceil(n.max(1));
    let mut parts = Vec::new();
    let mut rest = slices.into_iter().peekable();
    while rest.peek().is_some() {
        parts.push(rest.by_ref().take(per).collect());
    }
    parts
}

/// How a scan over slices takes a query's filters: those `pushable` are also applied to the
/// spans before their source is read (inexactly: DataFusion filters above the scan too),
/// the others only above it.
pub(crate) fn pushdown(
    filters: &[&Expr],
    pushable: fn(&Expr) -> bool,
) -> Vec<TableProviderFilterPushDown> {
    filters
        .iter()
        .map(|f| {
            if pushable(f) {
                TableProviderFilterPushDown::Inexact
            } else {
                TableProviderFilterPushDown::Unsupported
            }
        })
        .collect()
}

/// The `pushable` filters, planned against the index's span columns; one that does not plan
/// there (a subquery, say) is left to the filter above the scan.
pub(crate) fn span_predicates(
    state: &dyn Session,
    filters: &[Expr],
    pushable: fn(&Expr) -> bool,
) -> DfResult<Vec<Arc<dyn PhysicalExpr>>> {
    let span_schema = DFSchema::try_from(halo_index::span_schema())?;
    Ok(filters
        .iter()
        .filter(|f| pushable(f))
        .filter_map(|f| state.create_physical_expr(f.clone(), &span_schema).ok())
        .collect())
}

/// The scan of `partitions`, which DataFusion may not assume sorted by any column.
pub(crate) fn unordered_scan(
    schema: SchemaRef,
    partitions: Vec<Arc<dyn PartitionStream>>,
    projection: Option<&Vec<usize>>,
    limit: Option<usize>,
) -> DfResult<Arc<dyn ExecutionPlan>> {
    let exec = StreamingTableExec::try_new(
        schema,
        partitions,
        projection,
        None::<LexOrdering>,
        false,
        limit,
    )?;
    Ok(Arc::new(exec))
}

/// The rows of `batch` that pass `predicates`; `None` when none pass.
pub(crate) fn passing(
    batch: RecordBatch,
    predicates: &[Arc<dyn PhysicalExpr>],
) -> DfResult<Option<RecordBatch>> {
    filtered(batch, predicates, false)
}

/// The rows of `batch` that pass `hints`, filters that only spare work (an operator above
/// applies them again): one that fails to evaluate on these rows is passed over, not the
/// query's failure.
pub(crate) fn passing_hints(
    batch: RecordBatch,
    hints: &[Arc<dyn PhysicalExpr>],
) -> DfResult<Option<RecordBatch>> {
    filtered(batch, hints, true)
}

/// The rows of `batch` that pass every one of `filters`; with `hints`, a filter that
/// cannot be evaluated is passed over instead of failing.
fn filtered(
    mut batch: RecordBatch,
    filters: &[Arc<dyn PhysicalExpr>],
    hints: bool,
) -> DfResult<Option<RecordBatch>> {
    for filter in filters {
        let mask = filter
            .evaluate(&batch)
            .and_then(|v| v.into_array(batch.num_rows()));
        let mask = match mask {
            Ok(mask) => mask,
            Err(_) if hints => continue,
            Err(e) => return Err(e),
        };
        let Some(mask) = mask.as_boolean_opt() else {
            if hints {
                continue;
            }
            return Err(DataFusionError::Internal(format!(
                "filter {filter} is not boolean"
            )));
        };
        batch = filter_record_batch(&batch, mask)?;
        if batch.num_rows() == 0 {
            return Ok(None);
        }
    }
    Ok(Some(batch))
}

#[cfg(test)]
mod tests {
    use arrow_array::ArrayRef;

    use super::*;

    #[test]
    fn slices_are_capped_and_split_in_order() {
        let rows = |b: &RecordBatch| -> Vec<i32> {
            b.column(0)
                .as_primitive::<arrow_array::types::Int32Type>()
                .values()
                .to_vec()
        };
        let batch = RecordBatch::try_from_iter([(
            "x",
            Arc::new(arrow_array::Int32Array::from_iter_values(0..25)) as ArrayRef,
        )])
        .unwrap();
        let segments = [vec![batch.clone()], vec![batch]];
        let by_rows = Cut {
            rows: 10,
            bytes: usize::MAX,
        };
        let all = slices(&segments, by_rows, None);
        let shape: Vec<(u32, usize)> = all.iter().map(|(s, b)| (*s, b.num_rows())).collect();
        assert_eq!(shape, [(0, 10), (0, 10), (0, 5), (1, 10), (1, 10), (1, 5)]);
        let capped = slices(&segments, by_rows, Some(12));
        let shape: Vec<(u32, usize)> = capped.iter().map(|(s, b)| (*s, b.num_rows())).collect();
        assert_eq!(shape, [(0, 10), (0, 2)]);

        let parts = split(all.clone(), 4);
        assert_eq!(parts.len(), 3);
        let joined: Vec<i32> = parts.iter().flatten().flat_map(|(_, b)| rows(b)).collect();
        let expected: Vec<i32> = all.iter().flat_map(|(_, b)| rows(b)).collect();
        assert_eq!(joined, expected, "contiguous runs keep the order");
        assert_eq!(split(all, 1).len(), 1);
        assert_eq!(
            split(Vec::new(), 4).len(),
            1,
            "one empty partition, not none"
        );
    }

    #[test]
    fn slices_are_cut_by_bytes_of_source_spans_too() {
        // Spans of 10, 10, 50, 10, 10, 10 bytes; slices of at most 25 bytes or 4 rows.
        let sizes = [10u32, 10, 50, 10, 10, 10, 10, 10];
        let batch = RecordBatch::try_from_iter([(
            "byte_len",
            Arc::new(arrow_array::UInt32Array::from(sizes.to_vec())) as ArrayRef,
        )])
        .unwrap();
        let cut = Cut { rows: 4, bytes: 25 };
        let shape: Vec<usize> = slices(&[vec![batch.clone()]], cut, None)
            .iter()
            .map(|(_, b)| b.num_rows())
            .collect();
        assert_eq!(
            shape,
            [2, 1, 2, 2, 1],
            "a span over the limit is a slice alone"
        );
        let cut = Cut {
            rows: 4,
            bytes: usize::MAX,
        };
        let shape: Vec<usize> = slices(&[vec![batch]], cut, None)
            .iter()
            .map(|(_, b)| b.num_rows())
            .collect();
        assert_eq!(shape, [4, 4]);
    }
}
