//! The columnar span table: one row per span, Arrow arrays, written per chunk.
//!
//! This is the layout an SQL engine reads directly (`spans` table): ids, tree, times,
//! status, the normalized semantic facts, payload heads and where the span lives in its
//! source file. Column names are part of the SQL contract; change them only with
//! [`crate::FORMAT_VERSION`].

use std::cell::Cell;
use std::sync::{Arc, OnceLock};

use arrow_array::builder::{
    BooleanBuilder, Float64Builder, Int64Builder, ListBuilder, StringBuilder,
    TimestampNanosecondBuilder, UInt32Builder, UInt64Builder,
};
use arrow_array::{Array, ArrayRef, ListArray, RecordBatch, StringArray};
use arrow_schema::{DataType, Field, Schema, SchemaRef, TimeUnit};
use halo_trace::{RawSpan, SpanFacts, StatusCode};

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
    Field::new(
        name,
        DataType::List(Arc::new(Field::new("item", DataType::Utf8, true))),
        true,
    )
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

    /// The position of the column named `name` in the schema.
    fn position(name: &str) -> usize {
        span_schema()
            .index_of(name)
            .expect("every builder names a column of the span schema")
    }

    fn text(&self, name: &str) -> StringBuilder {
        let column = Self::position(name);
        StringBuilder::with_capacity(self.rows, self.bytes[column])
    }

    fn list(&self, name: &str) -> ListBuilder<StringBuilder> {
        let column = Self::position(name);
        let items = StringBuilder::with_capacity(self.items[column], self.bytes[column]);
        ListBuilder::with_capacity(items, self.rows)
    }
}

#[derive(Debug)]
pub(crate) struct SpanBatchBuilder {
    trace_id: StringBuilder,
    span_id: StringBuilder,
    parent: StringBuilder,
    name: StringBuilder,
    otel_kind: StringBuilder,
    kind: StringBuilder,
    start: TimestampNanosecondBuilder,
    end: TimestampNanosecondBuilder,
    duration: Float64Builder,
    status_code: StringBuilder,
    status_message: StringBuilder,
    is_error: BooleanBuilder,
    service: StringBuilder,
    model: StringBuilder,
    agent_name: StringBuilder,
    agent_id: StringBuilder,
    tool_name: StringBuilder,
    input_tokens: Int64Builder,
    output_tokens: Int64Builder,
    total_tokens: Int64Builder,
    cost: Float64Builder,
    error_type: StringBuilder,
    error_message: StringBuilder,
    http_status: Int64Builder,
    tool_args: StringBuilder,
    tool_result: StringBuilder,
    input_head: StringBuilder,
    output_head: StringBuilder,
    declared: ListBuilder<StringBuilder>,
    requested: ListBuilder<StringBuilder>,
    finish_reason: StringBuilder,
    refusal: StringBuilder,
    session: StringBuilder,
    user: StringBuilder,
    project: StringBuilder,
    outcome: StringBuilder,
    line: UInt64Builder,
    byte_offset: UInt64Builder,
    byte_len: UInt32Builder,
    record_offset: UInt64Builder,
    record_len: UInt32Builder,
    rows: usize,
}

impl SpanBatchBuilder {
    /// An empty builder with room for `room`'s rows and text.
    pub(crate) fn with_room(room: &BatchRoom) -> SpanBatchBuilder {
        SpanBatchBuilder {
            trace_id: room.text(col::TRACE_ID),
            span_id: room.text(col::SPAN_ID),
            parent: room.text(col::PARENT_SPAN_ID),
            name: room.text(col::NAME),
            otel_kind: room.text(col::OTEL_KIND),
            kind: room.text(col::KIND),
            start: TimestampNanosecondBuilder::with_capacity(room.rows).with_timezone("UTC"),
            end: TimestampNanosecondBuilder::with_capacity(room.rows).with_timezone("UTC"),
            duration: Float64Builder::with_capacity(room.rows),
            status_code: room.text(col::STATUS_CODE),
            status_message: room.text(col::STATUS_MESSAGE),
            is_error: BooleanBuilder::with_capacity(room.rows),
            service: room.text(col::SERVICE_NAME),
            model: room.text(col::MODEL),
            agent_name: room.text(col::AGENT_NAME),
            agent_id: room.text(col::AGENT_ID),
            tool_name: room.text(col::TOOL_NAME),
            input_tokens: Int64Builder::with_capacity(room.rows),
            output_tokens: Int64Builder::with_capacity(room.rows),
            total_tokens: Int64Builder::with_capacity(room.rows),
            cost: Float64Builder::with_capacity(room.rows),
            error_type: room.text(col::ERROR_TYPE),
            error_message: room.text(col::ERROR_MESSAGE),
            http_status: Int64Builder::with_capacity(room.rows),
            tool_args: room.text(col::TOOL_ARGS),
            tool_result: room.text(col::TOOL_RESULT),
            input_head: room.text(col::INPUT_HEAD),
            output_head: room.text(col::OUTPUT_HEAD),
            declared: room.list(col::DECLARED_TOOLS),
            requested: room.list(col::REQUESTED_TOOLS),
            finish_reason: room.text(col::FINISH_REASON),
            refusal: room.text(col::REFUSAL),
            session: room.text(col::SESSION_ID),
            user: room.text(col::USER_ID),
            project: room.text(col::PROJECT_ID),
            outcome: room.text(col::OUTCOME),
            line: UInt64Builder::with_capacity(room.rows),
            byte_offset: UInt64Builder::with_capacity(room.rows),
            byte_len: UInt32Builder::with_capacity(room.rows),
            record_offset: UInt64Builder::with_capacity(room.rows),
            record_len: UInt32Builder::with_capacity(room.rows),
            rows: 0,
        }
    }

    pub(crate) fn push(&mut self, span: &RawSpan<'_>, facts: &SpanFacts<'_>, at: SpanLocation) {
        self.rows += 1;
        self.trace_id.append_value(&span.trace_id);
        self.span_id.append_value(&span.span_id);
        self.parent.append_value(&span.parent_span_id);
        self.name.append_value(&span.name);
        self.otel_kind.append_value(&span.otel_kind);
        self.kind.append_value(facts.kind.as_str());
        self.start.append_value(span.start_ns);
        self.end.append_value(span.end_ns);
        self.duration.append_value(span.duration_ms());
        self.status_code.append_value(match span.status_code {
            StatusCode::Ok => "OK",
            StatusCode::Error => "ERROR",
            StatusCode::Unset => "UNSET",
        });
        self.status_message.append_value(halo_trace::head(
            &span.status_message,
            halo_trace::semantic::HEAD_CHARS,
        ));
        self.is_error
            .append_value(span.status_code == StatusCode::Error);
        self.service.append_option(span.service_name());
        self.model.append_option(facts.model.as_deref());
        self.agent_name.append_option(facts.agent_name.as_deref());
        self.agent_id.append_option(facts.agent_id.as_deref());
        self.tool_name.append_option(facts.tool_name.as_deref());
        self.input_tokens.append_option(facts.tokens.input);
        self.output_tokens.append_option(facts.tokens.output);
        self.total_tokens.append_option(facts.tokens.total);
        self.cost.append_option(facts.cost);
        self.error_type.append_option(facts.error_type.as_deref());
        self.error_message
            .append_option(facts.error_message.as_deref());
        self.http_status.append_option(facts.http_status);
        self.tool_args.append_option(facts.tool_args.as_deref());
        self.tool_result.append_option(facts.tool_result.as_deref());
        self.input_head.append_option(facts.input_head.as_deref());
        self.output_head.append_option(facts.output_head.as_deref());
        push_list(&mut self.declared, &facts.declared_tools);
        push_list(&mut self.requested, &facts.requested_tools);
        self.finish_reason
            .append_option(facts.finish_reason.as_deref());
        self.refusal.append_option(facts.refusal.as_deref());
        self.session.append_option(facts.session_id.as_deref());
        self.user.append_option(facts.user_id.as_deref());
        self.project.append_option(facts.project_id.as_deref());
        self.outcome.append_option(facts.outcome.as_deref());
        self.line.append_value(at.line);
        self.byte_offset.append_value(at.byte_offset);
        self.byte_len.append_value(at.byte_len);
        self.record_offset.append_value(at.record_offset);
        self.record_len.append_value(at.record_len);
    }

    pub(crate) fn finish(mut self) -> RecordBatch {
        let columns: Vec<ArrayRef> = vec![
            Arc::new(self.trace_id.finish()),
            Arc::new(self.span_id.finish()),
            Arc::new(self.parent.finish()),
            Arc::new(self.name.finish()),
            Arc::new(self.otel_kind.finish()),
            Arc::new(self.kind.finish()),
            Arc::new(self.start.finish()),
            Arc::new(self.end.finish()),
            Arc::new(self.duration.finish()),
            Arc::new(self.status_code.finish()),
            Arc::new(self.status_message.finish()),
            Arc::new(self.is_error.finish()),
            Arc::new(self.service.finish()),
            Arc::new(self.model.finish()),
            Arc::new(self.agent_name.finish()),
            Arc::new(self.agent_id.finish()),
            Arc::new(self.tool_name.finish()),
            Arc::new(self.input_tokens.finish()),
            Arc::new(self.output_tokens.finish()),
            Arc::new(self.total_tokens.finish()),
            Arc::new(self.cost.finish()),
            Arc::new(self.error_type.finish()),
            Arc::new(self.error_message.finish()),
            Arc::new(self.http_status.finish()),
            Arc::new(self.tool_args.finish()),
            Arc::new(self.tool_result.finish()),
            Arc::new(self.input_head.finish()),
            Arc::new(self.output_head.finish()),
            Arc::new(self.declared.finish()),
            Arc::new(self.requested.finish()),
            Arc::new(self.finish_reason.finish()),
            Arc::new(self.refusal.finish()),
            Arc::new(self.session.finish()),
            Arc::new(self.user.finish()),
            Arc::new(self.project.finish()),
            Arc::new(self.outcome.finish()),
            Arc::new(self.line.finish()),
            Arc::new(self.byte_offset.finish()),
            Arc::new(self.byte_len.finish()),
            Arc::new(self.record_offset.finish()),
            Arc::new(self.record_len.finish()),
        ];
        RecordBatch::try_new(span_schema(), columns).expect("span builders match the span schema")
    }
}

fn push_list(builder: &mut ListBuilder<StringBuilder>, items: &[impl AsRef<str>]) {
    for item in items {
        builder.values().append_value(item);
    }
    builder.append(true);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn batch_of(lines: usize, room: &BatchRoom) -> RecordBatch {
        let mut builder = SpanBatchBuilder::with_room(room);
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
        builder.finish()
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
