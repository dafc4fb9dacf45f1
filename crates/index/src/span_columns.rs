//! The columnar span table: one row per span, Arrow arrays, written per chunk.
//!
//! This is the layout an SQL engine reads directly (`spans` table): ids, tree, times,
//! status, the normalized semantic facts, payload heads and where the span lives in its
//! source file. Column names are part of the SQL contract; change them only with
//! [`crate::FORMAT_VERSION`].

use std::cell::Cell;
use std::sync::{Arc, OnceLock};

use arrow_array::{Array, ArrayRef, ListArray, RecordBatch, StringArray};
use arrow_schema::{DataType, Field, FieldRef, Schema, SchemaRef, TimeUnit};
use halo_trace::{RawSpan, SpanFacts, StatusCode};

use crate::lent_columns::{AnyColumn, FlagColumn, Lent, NumberColumn, TextColumn, TextListColumn};

/// Column names of the span table, in order.
pub mod col {
    #![allow(missing_docs)]
    pub const TRACE_ID: &str = "trace_id";
    pub const SPAN_ID: &str = "span_id";
    pub const PARENT_SPAN_ID: &str = "parent_span_id";
    pub const NAME: &str = "name";
    pub const OTEL_KIND: &str = "otel_kind";
    pub const KIND: &str = "kind";
    pub const START_TIME: &str = "start_time";
    pub const END_TIME: &str = "end_time";
    pub const DURATION_MS: &str = "duration_ms";
    pub const STATUS_CODE: &str = "status_code";
    pub const STATUS_MESSAGE: &str = "status_message";
    pub const IS_ERROR: &str = "is_error";
    pub const SERVICE_NAME: &str = "service_name";
    pub const MODEL: &str = "model";
    pub const AGENT_NAME: &str = "agent_name";
    pub const AGENT_ID: &str = "agent_id";
    pub const TOOL_NAME: &str = "tool_name";
    pub const INPUT_TOKENS: &str = "input_tokens";
    pub const OUTPUT_TOKENS: &str = "output_tokens";
    pub const TOTAL_TOKENS: &str = "total_tokens";
    pub const COST: &str = "cost";
    pub const ERROR_TYPE: &str = "error_type";
    pub const ERROR_MESSAGE: &str = "error_message";
    pub const HTTP_STATUS: &str = "http_status";
    pub const TOOL_ARGS: &str = "tool_args";
    pub const TOOL_RESULT: &str = "tool_result";
    pub const INPUT_HEAD: &str = "input_head";
    pub const OUTPUT_HEAD: &str = "output_head";
    pub const DECLARED_TOOLS: &str = "declared_tools";
    pub const REQUESTED_TOOLS: &str = "requested_tools";
    pub const FINISH_REASON: &str = "finish_reason";
    pub const REFUSAL: &str = "refusal";
    pub const SESSION_ID: &str = "session_id";
    pub const USER_ID: &str = "user_id";
    pub const PROJECT_ID: &str = "project_id";
    pub const OUTCOME: &str = "outcome";
    pub const LINE: &str = "line";
    pub const BYTE_OFFSET: &str = "byte_offset";
    pub const BYTE_LEN: &str = "byte_len";
    pub const RECORD_OFFSET: &str = "record_offset";
    pub const RECORD_LEN: &str = "record_len";
}

fn utf8(name: &str) -> Field {
    Field::new(name, DataType::Utf8, true)
}

fn string_list(name: &str) -> Field {
    Field::new(name, DataType::List(list_item()), true)
}

/// The items of the span table's list columns: one field, shared by the schema and the
/// arrays built for it.
fn list_item() -> FieldRef {
    static ITEM: OnceLock<FieldRef> = OnceLock::new();
    ITEM.get_or_init(|| Arc::new(Field::new("item", DataType::Utf8, true)))
        .clone()
}

/// The span table's schema.
pub fn span_schema() -> SchemaRef {
    static SCHEMA: OnceLock<SchemaRef> = OnceLock::new();
    SCHEMA
        .get_or_init(|| {
            let ts = DataType::Timestamp(TimeUnit::Nanosecond, Some("UTC".into()));
            Arc::new(Schema::new(vec![
                Field::new(col::TRACE_ID, DataType::Utf8, false),
                Field::new(col::SPAN_ID, DataType::Utf8, false),
                Field::new(col::PARENT_SPAN_ID, DataType::Utf8, false),
                Field::new(col::NAME, DataType::Utf8, false),
                Field::new(col::OTEL_KIND, DataType::Utf8, false),
                Field::new(col::KIND, DataType::Utf8, false),
                Field::new(col::START_TIME, ts.clone(), false),
                Field::new(col::END_TIME, ts, false),
                Field::new(col::DURATION_MS, DataType::Float64, false),
                Field::new(col::STATUS_CODE, DataType::Utf8, false),
                Field::new(col::STATUS_MESSAGE, DataType::Utf8, false),
                Field::new(col::IS_ERROR, DataType::Boolean, false),
                utf8(col::SERVICE_NAME),
                utf8(col::MODEL),
                utf8(col::AGENT_NAME),
                utf8(col::AGENT_ID),
                utf8(col::TOOL_NAME),
                Field::new(col::INPUT_TOKENS, DataType::Int64, true),
                Field::new(col::OUTPUT_TOKENS, DataType::Int64, true),
                Field::new(col::TOTAL_TOKENS, DataType::Int64, true),
                Field::new(col::COST, DataType::Float64, true),
                utf8(col::ERROR_TYPE),
                utf8(col::ERROR_MESSAGE),
                Field::new(col::HTTP_STATUS, DataType::Int64, true),
                utf8(col::TOOL_ARGS),
                utf8(col::TOOL_RESULT),
                utf8(col::INPUT_HEAD),
                utf8(col::OUTPUT_HEAD),
                string_list(col::DECLARED_TOOLS),
                string_list(col::REQUESTED_TOOLS),
                utf8(col::FINISH_REASON),
                utf8(col::REFUSAL),
                utf8(col::SESSION_ID),
                utf8(col::USER_ID),
                utf8(col::PROJECT_ID),
                utf8(col::OUTCOME),
                Field::new(col::LINE, DataType::UInt64, false),
                Field::new(col::BYTE_OFFSET, DataType::UInt64, false),
                Field::new(col::BYTE_LEN, DataType::UInt32, false),
                Field::new(col::RECORD_OFFSET, DataType::UInt64, false),
                Field::new(col::RECORD_LEN, DataType::UInt32, false),
            ]))
        })
        .clone()
}

/// Where a span's JSON lives in its source file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SpanLocation {
    /// 1-based line number (relative to the chunk while building).
    pub line: u64,
    /// Offset of the span's own JSON object.
    pub byte_offset: u64,
    /// Length of the span's own JSON object.
    pub byte_len: u32,
    /// Offset of the whole line (an OTLP line holds many spans).
    pub record_offset: u64,
    /// Length of the whole line.
    pub record_len: u32,
}

/// Appends spans to Arrow builders, one chunk at a time.
/// The number of columns of the span table.
const COLUMNS: usize = 41;

/// How much a chunk's batch will hold, estimated from the last batch built on the same
/// thread and scaled to the chunk's size. Forty builders grown from empty copied their
/// data about once more on the way (2% of a build's instructions); a wrong guess only
/// costs a reallocation or some unused room.
#[derive(Debug, Clone, Copy)]
pub(crate) struct BatchRoom {
    rows: usize,
    /// Per column in schema order: text bytes (string and list columns), and the items
    /// of list columns.
    bytes: [usize; COLUMNS],
    items: [usize; COLUMNS],
}

thread_local! {
    /// The last batch this thread built, and the bytes of the chunk it came from.
    static LAST_BATCH: Cell<Option<(usize, BatchRoom)>> = const { Cell::new(None) };
}

impl BatchRoom {
    /// What a builder gets with nothing known: Arrow's default room.
    const UNKNOWN: BatchRoom = BatchRoom {
        rows: 1024,
        bytes: [1024; COLUMNS],
        items: [1024; COLUMNS],
    };

    /// The room for a chunk of `chunk_bytes`, scaled from the last batch built on this
    /// thread, with an eighth more for chunks denser than the last.
    pub(crate) fn for_chunk(chunk_bytes: usize) -> BatchRoom {
        let Some((last_bytes, last)) = LAST_BATCH.get() else {
            return BatchRoom::UNKNOWN;
        };
        let scale = |n: usize| {
            let scaled = (n as u128 * chunk_bytes as u128 / last_bytes.max(1) as u128) as usize;
            scaled + scaled / 8 + 16
        };
        BatchRoom {
            rows: scale(last.rows),
            bytes: last.bytes.map(scale),
            items: last.items.map(scale),
        }
    }

    /// Notes what `batch`, built from a chunk of `chunk_bytes`, held.
    pub(crate) fn remember(batch: &RecordBatch, chunk_bytes: usize) {
        let mut room = BatchRoom {
            rows: batch.num_rows(),
            bytes: [0; COLUMNS],
            items: [0; COLUMNS],
        };
        for (i, column) in batch.columns().iter().enumerate().take(COLUMNS) {
            let any = column.as_any();
            if let Some(text) = any.downcast_ref::<StringArray>() {
                room.bytes[i] = text.value_data().len();
            } else if let Some(list) = any.downcast_ref::<ListArray>() {
                room.items[i] = list.values().len();
                if let Some(text) = list.values().as_any().downcast_ref::<StringArray>() {
                    room.bytes[i] = text.value_data().len();
                }
            }
        }
        LAST_BATCH.set(Some((chunk_bytes, room)));
    }
}

/// Appends spans to the columns of one batch, one chunk at a time. Its vectors are lent to
/// the batch it finishes and come back through [`SpareBatches`] once the batch is written.
#[derive(Debug)]
pub(crate) struct SpanBatchBuilder {
    trace_id: TextColumn,
    span_id: TextColumn,
    parent: TextColumn,
    name: TextColumn,
    otel_kind: TextColumn,
    kind: TextColumn,
    start: NumberColumn<i64>,
    end: NumberColumn<i64>,
    duration: NumberColumn<f64>,
    status_code: TextColumn,
    status_message: TextColumn,
    is_error: FlagColumn,
    service: TextColumn,
    model: TextColumn,
    agent_name: TextColumn,
    agent_id: TextColumn,
    tool_name: TextColumn,
    input_tokens: NumberColumn<i64>,
    output_tokens: NumberColumn<i64>,
    total_tokens: NumberColumn<i64>,
    cost: NumberColumn<f64>,
    error_type: TextColumn,
    error_message: TextColumn,
    http_status: NumberColumn<i64>,
    tool_args: TextColumn,
    tool_result: TextColumn,
    input_head: TextColumn,
    output_head: TextColumn,
    declared: TextListColumn,
    requested: TextListColumn,
    finish_reason: TextColumn,
    refusal: TextColumn,
    session: TextColumn,
    user: TextColumn,
    project: TextColumn,
    outcome: TextColumn,
    line: NumberColumn<u64>,
    byte_offset: NumberColumn<u64>,
    byte_len: NumberColumn<u32>,
    record_offset: NumberColumn<u64>,
    record_len: NumberColumn<u32>,
}

/// The time zone of the span table's timestamps.
const UTC: &str = "UTC";

impl SpanBatchBuilder {
    fn empty() -> SpanBatchBuilder {
        SpanBatchBuilder {
            trace_id: TextColumn::default(),
            span_id: TextColumn::default(),
            parent: TextColumn::default(),
            name: TextColumn::default(),
            otel_kind: TextColumn::default(),
            kind: TextColumn::default(),
            start: NumberColumn::default(),
            end: NumberColumn::default(),
            duration: NumberColumn::default(),
            status_code: TextColumn::default(),
            status_message: TextColumn::default(),
            is_error: FlagColumn::default(),
            service: TextColumn::default(),
            model: TextColumn::default(),
            agent_name: TextColumn::default(),
            agent_id: TextColumn::default(),
            tool_name: TextColumn::default(),
            input_tokens: NumberColumn::default(),
            output_tokens: NumberColumn::default(),
            total_tokens: NumberColumn::default(),
            cost: NumberColumn::default(),
            error_type: TextColumn::default(),
            error_message: TextColumn::default(),
            http_status: NumberColumn::default(),
            tool_args: TextColumn::default(),
            tool_result: TextColumn::default(),
            input_head: TextColumn::default(),
            output_head: TextColumn::default(),
            declared: TextListColumn::new(list_item()),
            requested: TextListColumn::new(list_item()),
            finish_reason: TextColumn::default(),
            refusal: TextColumn::default(),
            session: TextColumn::default(),
            user: TextColumn::default(),
            project: TextColumn::default(),
            outcome: TextColumn::default(),
            line: NumberColumn::default(),
            byte_offset: NumberColumn::default(),
            byte_len: NumberColumn::default(),
            record_offset: NumberColumn::default(),
            record_len: NumberColumn::default(),
        }
    }

    /// Every column, in schema order: the one list that finishing and taking back walk.
    fn columns(&mut self) -> [AnyColumn<'_>; COLUMNS] {
        [
            AnyColumn::Text(&mut self.trace_id),
            AnyColumn::Text(&mut self.span_id),
            AnyColumn::Text(&mut self.parent),
            AnyColumn::Text(&mut self.name),
            AnyColumn::Text(&mut self.otel_kind),
            AnyColumn::Text(&mut self.kind),
            AnyColumn::I64(&mut self.start, Some(UTC)),
            AnyColumn::I64(&mut self.end, Some(UTC)),
            AnyColumn::F64(&mut self.duration),
            AnyColumn::Text(&mut self.status_code),
            AnyColumn::Text(&mut self.status_message),
            AnyColumn::Flag(&mut self.is_error),
            AnyColumn::Text(&mut self.service),
            AnyColumn::Text(&mut self.model),
            AnyColumn::Text(&mut self.agent_name),
            AnyColumn::Text(&mut self.agent_id),
            AnyColumn::Text(&mut self.tool_name),
            AnyColumn::I64(&mut self.input_tokens, None),
            AnyColumn::I64(&mut self.output_tokens, None),
            AnyColumn::I64(&mut self.total_tokens, None),
            AnyColumn::F64(&mut self.cost),
            AnyColumn::Text(&mut self.error_type),
            AnyColumn::Text(&mut self.error_message),
            AnyColumn::I64(&mut self.http_status, None),
            AnyColumn::Text(&mut self.tool_args),
            AnyColumn::Text(&mut self.tool_result),
            AnyColumn::Text(&mut self.input_head),
            AnyColumn::Text(&mut self.output_head),
            AnyColumn::TextList(&mut self.declared),
            AnyColumn::TextList(&mut self.requested),
            AnyColumn::Text(&mut self.finish_reason),
            AnyColumn::Text(&mut self.refusal),
            AnyColumn::Text(&mut self.session),
            AnyColumn::Text(&mut self.user),
            AnyColumn::Text(&mut self.project),
            AnyColumn::Text(&mut self.outcome),
            AnyColumn::U64(&mut self.line),
            AnyColumn::U64(&mut self.byte_offset),
            AnyColumn::U32(&mut self.byte_len),
            AnyColumn::U64(&mut self.record_offset),
            AnyColumn::U32(&mut self.record_len),
        ]
    }

    /// An empty builder with room for `room`'s rows and text: one taken back from
    /// `spare` when there is one, so its memory is already faulted in.
    pub(crate) fn with_room(room: &BatchRoom, spare: &SpareBatches) -> SpanBatchBuilder {
        let mut builder = spare.take().unwrap_or_else(SpanBatchBuilder::empty);
        let rows = room.rows;
        for (i, column) in builder.columns().into_iter().enumerate() {
            match column {
                AnyColumn::Text(c) => c.reserve(rows, room.bytes[i]),
                AnyColumn::TextList(c) => c.reserve(rows, room.items[i], room.bytes[i]),
                AnyColumn::Flag(c) => c.reserve(rows),
                AnyColumn::I64(c, _) => c.reserve(rows),
                AnyColumn::U64(c) => c.reserve(rows),
                AnyColumn::U32(c) => c.reserve(rows),
                AnyColumn::F64(c) => c.reserve(rows),
            }
        }
        builder
    }

    pub(crate) fn push(&mut self, span: &RawSpan<'_>, facts: &SpanFacts<'_>, at: SpanLocation) {
        self.trace_id.push(&span.trace_id);
        self.span_id.push(&span.span_id);
        self.parent.push(&span.parent_span_id);
        self.name.push(&span.name);
        self.otel_kind.push(&span.otel_kind);
        self.kind.push(facts.kind.as_str());
        self.start.push(span.start_ns);
        self.end.push(span.end_ns);
        self.duration.push(span.duration_ms());
        self.status_code.push(match span.status_code {
            StatusCode::Ok => "OK",
            StatusCode::Error => "ERROR",
            StatusCode::Unset => "UNSET",
        });
        self.status_message.push(halo_trace::head(
            &span.status_message,
            halo_trace::semantic::HEAD_CHARS,
        ));
        self.is_error.push(span.status_code == StatusCode::Error);
        self.service.push_option(span.service_name().as_deref());
        self.model.push_option(facts.model.as_deref());
        self.agent_name.push_option(facts.agent_name.as_deref());
        self.agent_id.push_option(facts.agent_id.as_deref());
        self.tool_name.push_option(facts.tool_name.as_deref());
        self.input_tokens.push_option(facts.tokens.input);
        self.output_tokens.push_option(facts.tokens.output);
        self.total_tokens.push_option(facts.tokens.total);
        self.cost.push_option(facts.cost);
        self.error_type.push_option(facts.error_type.as_deref());
        self.error_message
            .push_option(facts.error_message.as_deref());
        self.http_status.push_option(facts.http_status);
        self.tool_args.push_option(facts.tool_args.as_deref());
        self.tool_result.push_option(facts.tool_result.as_deref());
        self.input_head.push_option(facts.input_head.as_deref());
        self.output_head.push_option(facts.output_head.as_deref());
        self.declared.push(&facts.declared_tools);
        self.requested.push(&facts.requested_tools);
        self.finish_reason
            .push_option(facts.finish_reason.as_deref());
        self.refusal.push_option(facts.refusal.as_deref());
        self.session.push_option(facts.session_id.as_deref());
        self.user.push_option(facts.user_id.as_deref());
        self.project.push_option(facts.project_id.as_deref());
        self.outcome.push_option(facts.outcome.as_deref());
        self.line.push(at.line);
        self.byte_offset.push(at.byte_offset);
        self.byte_len.push(at.byte_len);
        self.record_offset.push(at.record_offset);
        self.record_len.push(at.record_len);
    }

    /// The batch of the rows pushed so far, and the builder's vectors it borrows, to be
    /// given back to [`SpareBatches`] once the batch is dropped.
    pub(crate) fn finish(mut self) -> (RecordBatch, LentBatch) {
        let mut lent = Lent::default();
        let columns: Vec<ArrayRef> = self
            .columns()
            .into_iter()
            .map(|column| column.lend(&mut lent))
            .collect();
        let batch = RecordBatch::try_new(span_schema(), columns)
            .expect("span builders match the span schema");
        (
            batch,
            LentBatch {
                builder: self,
                lent,
            },
        )
    }
}

/// The vectors of a finished batch, out on loan to its arrays.
#[derive(Debug)]
pub(crate) struct LentBatch {
    builder: SpanBatchBuilder,
    lent: Lent,
}

/// Builders whose batches were written, kept for the next chunks: each holds a batch's
/// worth of memory already faulted in.
#[derive(Debug, Default)]
pub(crate) struct SpareBatches {
    spare: std::sync::Mutex<Vec<SpanBatchBuilder>>,
}

/// Builders kept by [`SpareBatches`]: as many as batches are in flight on two to four
/// cores; more would only hold memory.
const SPARE_BATCHES: usize = 8;

impl SpareBatches {
    fn take(&self) -> Option<SpanBatchBuilder> {
        self.spare.lock().unwrap_or_else(|e| e.into_inner()).pop()
    }

    /// Takes back the vectors of `lent`'s batch, which must be dropped by now (vectors
    /// its arrays still share are left to them), to build a later batch.
    pub(crate) fn give_back(&self, lent: LentBatch) {
        let LentBatch {
            mut builder,
            mut lent,
        } = lent;
        for column in builder.columns() {
            column.take_back(&mut lent);
        }
        let mut spare = self.spare.lock().unwrap_or_else(|e| e.into_inner());
        if spare.len() < SPARE_BATCHES {
            spare.push(builder);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn batch_of(lines: usize, room: &BatchRoom) -> RecordBatch {
        let mut builder = SpanBatchBuilder::with_room(room, &SpareBatches::default());
        for i in 0..lines {
            let line = format!(
                r#"{{"trace_id":"t{i}","span_id":"s{i}","name":"call","start_time":"2026-01-01T00:00:00Z","end_time":"2026-01-01T00:00:01Z","attributes":{{"llm.model_name":"m","llm.tools.0.tool.name":"search"}}}}"#
            );
            let parsed = halo_trace::parse_line_checked(&line, true).expect("valid line");
            for (span, _) in &parsed.spans {
                let facts = SpanFacts::extract(span);
                builder.push(
                    span,
                    &facts,
                    SpanLocation {
                        line: i as u64,
                        byte_offset: 0,
                        byte_len: 0,
                        record_offset: 0,
                        record_len: 0,
                    },
                );
            }
        }
        builder.finish().0
    }

    #[test]
    fn the_room_has_a_place_for_every_column() {
        assert_eq!(span_schema().fields().len(), COLUMNS);
    }

    #[test]
    fn the_room_scales_the_last_batch_to_the_chunk() {
        std::thread::spawn(|| {
            assert_eq!(BatchRoom::for_chunk(1000).rows, BatchRoom::UNKNOWN.rows);
            let batch = batch_of(40, &BatchRoom::UNKNOWN);
            BatchRoom::remember(&batch, 1000);
            let room = BatchRoom::for_chunk(2000);
            assert!(room.rows >= 80 && room.rows <= 110, "{}", room.rows);
            // trace ids "t0".."t39": 110 bytes, doubled and an eighth more.
            assert!(
                room.bytes[0] >= 220 && room.bytes[0] < 300,
                "{}",
                room.bytes[0]
            );
            // One declared tool per span, six bytes each.
            assert!(room.items[28] >= 80, "{}", room.items[28]);
            assert!(room.bytes[28] >= 480, "{}", room.bytes[28]);
            // Built with that room, a batch holds the same as one grown from empty.
            assert_eq!(batch_of(40, &room), batch);
        })
        .join()
        .unwrap();
    }
}
