//! The rows of the `messages` table, gathered into record batches of bounded size.
//!
//! Arrow's `Utf8` arrays address their text with 32-bit offsets: one array cannot hold more
//! than 2 GiB, and appending past that panics. A dataset's messages can hold more, so the
//! rows are cut into batches of about [`BATCH_BYTES`] of text each.

use std::sync::Arc;

use arrow_array::builder::{Int32Builder, Int64Builder, ListBuilder, StringBuilder};
use arrow_array::{ArrayRef, RecordBatch};

use crate::messages::messages_schema;
use crate::SqlError;

/// Bytes of text gathered before a batch is closed: far below the 2 GiB an array can hold,
/// and small enough that a scan's batches stay a modest part of its memory.
pub(crate) const BATCH_BYTES: usize = 64 << 20;

/// The most text one array (and so one row) can hold.
const ARRAY_BYTES: usize = i32::MAX as usize;

/// One message, as a row.
pub(crate) struct MessageRow<'a> {
    pub(crate) trace_id: &'a str,
    pub(crate) span_id: &'a str,
    pub(crate) direction: &'a str,
    pub(crate) position: i32,
    pub(crate) role: &'a str,
    pub(crate) content: &'a str,
    /// Characters of the whole message (`content` may be its head).
    pub(crate) content_chars: i64,
    pub(crate) tool_call_id: Option<&'a str>,
    pub(crate) tool_calls: Vec<&'a str>,
}

impl MessageRow<'_> {
    /// The bytes of text the row adds to its batch.
    fn text_bytes(&self) -> usize {
        self.trace_id.len()
            + self.span_id.len()
            + self.direction.len()
            + self.role.len()
            + self.content.len()
            + self.tool_call_id.map_or(0, str::len)
            + self.tool_calls.iter().map(|c| c.len()).sum::<usize>()
    }
}

/// Rows gathered into batches of at most about `limit` bytes of text each.
pub(crate) struct MessageBatches {
    limit: usize,
    done: Vec<RecordBatch>,
    rows: usize,
    bytes: usize,
    trace_id: StringBuilder,
    span_id: StringBuilder,
    direction: StringBuilder,
    position: Int32Builder,
    role: StringBuilder,
    content: StringBuilder,
    content_chars: Int64Builder,
    tool_call_id: StringBuilder,
    tool_calls: ListBuilder<StringBuilder>,
}

impl MessageBatches {
    /// No rows yet; a batch is closed before it would pass `limit` bytes of text.
    pub(crate) fn new(limit: usize) -> MessageBatches {
        MessageBatches {
            limit: limit.clamp(1, ARRAY_BYTES),
            done: Vec::new(),
            rows: 0,
            bytes: 0,
            trace_id: StringBuilder::new(),
            span_id: StringBuilder::new(),
            direction: StringBuilder::new(),
            position: Int32Builder::new(),
            role: StringBuilder::new(),
            content: StringBuilder::new(),
            content_chars: Int64Builder::new(),
            tool_call_id: StringBuilder::new(),
            tool_calls: ListBuilder::new(StringBuilder::new()),
        }
    }

    /// Adds one row, first closing the batch if the row would take it past the limit.
    pub(crate) fn push(&mut self, row: &MessageRow<'_>) -> Result<(), SqlError> {
        let size = row.text_bytes();
        if size > ARRAY_BYTES {
            return Err(SqlError::Query(format!(
                "messages table: a message of span {} in trace {} holds {size} bytes of text, more than a table row can",
                row.span_id, row.trace_id
            )));
        }
        if self.rows > 0 && self.bytes + size > self.limit {
            self.close()?;
        }
        self.trace_id.append_value(row.trace_id);
        self.span_id.append_value(row.span_id);
        self.direction.append_value(row.direction);
        self.position.append_value(row.position);
        self.role.append_value(row.role);
        self.content.append_value(row.content);
        self.content_chars.append_value(row.content_chars);
        self.tool_call_id.append_option(row.tool_call_id);
        for call in &row.tool_calls {
            self.tool_calls.values().append_value(call);
        }
        self.tool_calls.append(true);
        self.rows += 1;
        self.bytes += size;
        Ok(())
    }

    /// Every batch, in row order.
    pub(crate) fn finish(mut self) -> Result<Vec<RecordBatch>, SqlError> {
        if self.rows > 0 {
            self.close()?;
        }
        Ok(self.done)
    }

    fn close(&mut self) -> Result<(), SqlError> {
        let columns: Vec<ArrayRef> = vec![
            Arc::new(self.trace_id.finish()),
            Arc::new(self.span_id.finish()),
            Arc::new(self.direction.finish()),
            Arc::new(self.position.finish()),
            Arc::new(self.role.finish()),
            Arc::new(self.content.finish()),
            Arc::new(self.tool_call_id.finish()),
            Arc::new(self.tool_calls.finish()),
            Arc::new(self.content_chars.finish()),
        ];
        let batch = RecordBatch::try_new(messages_schema(), columns)
            .map_err(|e| SqlError::Query(format!("messages table: {e}")))?;
        self.done.push(batch);
        self.rows = 0;
        self.bytes = 0;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use arrow_array::cast::AsArray;

    use super::*;

    fn row<'a>(span_id: &'a str, content: &'a str) -> MessageRow<'a> {
        MessageRow {
            trace_id: "t",
            span_id,
            direction: "input",
            position: 0,
            role: "user",
            content,
            content_chars: content.chars().count() as i64,
            tool_call_id: None,
            tool_calls: vec!["grep"],
        }
    }

    #[test]
    fn batches_close_before_the_limit_and_keep_every_row_in_order() {
        let content = "x".repeat(100);
        let ids: Vec<String> = (0..25).map(|i| format!("s{i:02}")).collect();
        // A row is 117 bytes of text: four fit in 500.
        let mut b = MessageBatches::new(500);
        for id in &ids {
            b.push(&row(id, &content)).unwrap();
        }
        let batches = b.finish().unwrap();
        let sizes: Vec<usize> = batches.iter().map(|b| b.num_rows()).collect();
        assert_eq!(sizes, [4, 4, 4, 4, 4, 4, 1]);
        let spans: Vec<&str> = batches
            .iter()
            .flat_map(|b| b.column(1).as_string::<i32>().iter().flatten())
            .collect();
        assert_eq!(spans, ids.iter().map(String::as_str).collect::<Vec<_>>());

        // A row larger than the limit still goes in, alone.
        let mut b = MessageBatches::new(10);
        b.push(&row("a", &content)).unwrap();
        b.push(&row("b", &content)).unwrap();
        assert_eq!(b.finish().unwrap().len(), 2);
        assert!(MessageBatches::new(10).finish().unwrap().is_empty());
    }
}
