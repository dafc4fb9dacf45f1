//! A segment's span table, loaded from its Arrow IPC file.

use std::path::Path;
use std::sync::Arc;

use arrow_array::RecordBatch;

use crate::span_view::{ShapeError, SpanColumns};
use crate::IndexError;

/// The span table of one segment: its record batches and where each batch starts.
#[derive(Debug)]
pub struct SpanTable {
    batches: Vec<RecordBatch>,
    starts: Vec<u32>,
    /// Each batch's first and last span start offset, for the searches by offset: read
    /// from the columns once here rather than at every step of every search (a regex
    /// count maps each hit to its spans that way).
    offset_bounds: Vec<(u64, u64)>,
    rows: u32,
}

impl SpanTable {
    /// Reads a span table file, checking its shape.
    pub fn read(path: &Path) -> Result<SpanTable, IndexError> {
        let corrupt = |message: String| IndexError::Corrupt {
            path: path.to_path_buf(),
            message,
        };
        // Memory-mapped, not read: the batches point into the map, so a span table of
        // hundreds of megabytes loads without copying it onto the heap.
        let batches = crate::ipc_file::read_batches(path)?;
        for batch in &batches {
            SpanColumns::new(batch).map_err(|ShapeError(m)| corrupt(m))?;
        }
        Ok(SpanTable::from_batches(batches))
    }

    /// Wraps batches already in memory.
    pub fn from_batches(batches: Vec<RecordBatch>) -> SpanTable {
        let mut starts = Vec::with_capacity(batches.len());
        let mut offset_bounds = Vec::with_capacity(batches.len());
        let mut rows = 0u32;
        for b in &batches {
            starts.push(rows);
            rows += b.num_rows() as u32;
            // An empty batch (or one of the wrong shape, which `read` refuses) starts
            // after every offset and ends before every one.
            offset_bounds.push(SpanColumns::new(b).map_or((u64::MAX, 0), |c| {
                let values = c.byte_offset.values();
                (
                    values.first().copied().unwrap_or(u64::MAX),
                    values.last().copied().unwrap_or(0),
                )
            }));
        }
        SpanTable {
            batches,
            starts,
            offset_bounds,
            rows,
        }
    }

    /// The batches, in row order.
    pub fn batches(&self) -> &[RecordBatch] {
        &self.batches
    }

    /// Total rows.
    pub fn num_rows(&self) -> u32 {
        self.rows
    }

    /// The batch holding `row` and the row's index inside it.
    pub fn locate(&self, row: u32) -> Option<(&RecordBatch, usize)> {
        if row >= self.rows {
            return None;
        }
        let b = self.starts.partition_point(|&s| s <= row) - 1;
        Some((&self.batches[b], (row - self.starts[b]) as usize))
    }

    /// The segment row whose span JSON contains byte `offset` of the data, if any (rows are
    /// in file order, so this is a binary search over span offsets).
    pub fn row_at_offset(&self, offset: u64) -> Option<u32> {
        // Find the last batch whose first span starts at or before `offset`.
        let b = self
            .offset_bounds
            .partition_point(|&(first, _)| first <= offset);
        if b == 0 {
            return None;
        }
        let batch = &self.batches[b - 1];
        let c = SpanColumns::new(batch).ok()?;
        let i = c.byte_offset.values().partition_point(|&o| o <= offset);
        if i == 0 {
            return None;
        }
        let i = i - 1;
        let end = c.byte_offset.value(i) + u64::from(c.byte_len.value(i));
        (offset < end).then(|| self.starts[b - 1] + i as u32)
    }
}

impl SpanTable {
    /// The rows whose span JSON starts within `bytes` of the data: all the spans of one
    /// line, say (rows are in file order, so two binary searches).
    pub fn rows_starting_in(&self, bytes: std::ops::Range<u64>) -> std::ops::Range<u32> {
        self.first_row_from(bytes.start)..self.first_row_from(bytes.end)
    }

    /// The first row whose span starts at or after `offset` (`num_rows` when none does).
    fn first_row_from(&self, offset: u64) -> u32 {
        // Batches are never empty; the first batch whose last span starts at or after
        // `offset` holds the answer.
        let b = self
            .offset_bounds
            .partition_point(|&(_, last)| last < offset);
        let Some(batch) = self.batches.get(b) else {
            return self.rows;
        };
        let Ok(c) = SpanColumns::new(batch) else {
            return self.rows;
        };
        self.starts[b] + c.byte_offset.values().partition_point(|&o| o < offset) as u32
    }
}

/// A shared span table.
pub type SharedSpanTable = Arc<SpanTable>;
