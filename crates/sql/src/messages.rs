//! The `messages` table: the chat messages of LLM spans, one row per message.
//!
//! The index keeps only heads of model input and output, so messages are read again from
//! the source (through the same memory map the index uses) the first time a query names
//! the table, and kept for the engine's life. Datasets without message attributes give an
//! empty table.

use std::sync::{Arc, OnceLock};

use arrow_array::RecordBatch;
use arrow_schema::{DataType, Field, Schema, SchemaRef};
use datafusion::catalog::{MemTable, Session, TableProvider};
use datafusion::datasource::TableType;
use datafusion::logical_expr::Expr;
use datafusion::physical_plan::ExecutionPlan;
use halo_index::{Dataset, SpanColumns};

use crate::blocking_once::BlockingOnce;
use crate::message_batches::{MessageBatches, MessageRow, BATCH_BYTES};
use crate::SqlError;

/// Characters of message content kept per row.
const CONTENT_CHARS: usize = 4_096;

/// The `messages` schema.
pub(crate) fn messages_schema() -> SchemaRef {
    static SCHEMA: OnceLock<SchemaRef> = OnceLock::new();
    SCHEMA
        .get_or_init(|| {
            Arc::new(Schema::new(vec![
                Field::new("trace_id", DataType::Utf8, false),
                Field::new("span_id", DataType::Utf8, false),
                Field::new("direction", DataType::Utf8, false),
                Field::new("position", DataType::Int32, false),
                Field::new("role", DataType::Utf8, false),
                Field::new("content", DataType::Utf8, false),
                Field::new("tool_call_id", DataType::Utf8, true),
                Field::new(
                    "tool_calls",
                    DataType::List(Arc::new(Field::new("item", DataType::Utf8, true))),
                    false,
                ),
                // Added last, so columns read by position keep theirs: the whole
                // message's length, where `content` keeps its first 4,096 characters.
                Field::new("content_chars", DataType::Int64, false),
            ]))
        })
        .clone()
}

/// Reads the messages of every LLM span of the dataset, in batches of about `batch_bytes`
/// bytes of text ([`BATCH_BYTES`] outside tests).
pub(crate) fn build_messages(
    ds: &Dataset,
    batch_bytes: usize,
) -> Result<Vec<RecordBatch>, SqlError> {
    let mut rows = MessageBatches::new(batch_bytes);
    for seg in 0..ds.segment_count() {
        let table = ds.span_table(seg)?;
        let data = ds.segment_data(seg)?;
        let bytes = data.bytes();
        // The line last parsed, by where it starts: an OTLP line holds many LLM spans, one
        // after another in the table, and parsing a 5 MB line once per span made the table
        // take minutes.
        let mut last: Option<(usize, halo_trace::ParsedLine<'_>)> = None;
        for batch in table.batches() {
            let c = SpanColumns::new(batch).map_err(|e| SqlError::Query(e.0))?;
            for i in 0..c.len() {
                if c.kind.value(i) != "LLM" {
                    continue;
                }
                let start = c.record_offset.value(i) as usize;
                let Some(line) = bytes.get(start..start + c.record_len.value(i) as usize) else {
                    continue;
                };
                if last.as_ref().map(|(at, _)| *at) != Some(start) {
                    let Ok(text) = std::str::from_utf8(line) else {
                        continue;
                    };
                    let Ok(parsed) = halo_trace::parse_line(text) else {
                        continue;
                    };
                    last = Some((start, parsed));
                }
                let Some((_, parsed)) = last.as_ref() else {
                    continue;
                };
                let within = (c.byte_offset.value(i) - c.record_offset.value(i)) as usize;
                let Some((span, _)) = parsed.spans.iter().find(|(_, r)| r.start == within) else {
                    continue;
                };
                let messages = halo_trace::messages::llm_messages(span);
                for (direction, list) in [("input", &messages.input), ("output", &messages.output)]
                {
                    for (n, m) in list.iter().enumerate() {
                        rows.push(&MessageRow {
                            trace_id: c.trace_id.value(i),
                            span_id: c.span_id.value(i),
                            direction,
                            position: n as i32,
                            role: &m.role,
                            content: match m.content.char_indices().nth(CONTENT_CHARS) {
                                Some((cut, _)) => &m.content[..cut],
                                None => &m.content,
                            },
                            content_chars: m.content.chars().count() as i64,
                            tool_call_id: m.tool_call_id.as_deref(),
                            tool_calls: m.tool_calls.iter().map(|c| c.name.as_str()).collect(),
                        })?;
                    }
                }
            }
        }
    }
    rows.finish()
}

/// How the `messages` table of a shared dataset is read, when a query first names it.
type Build = Arc<dyn Fn() -> Result<Vec<RecordBatch>, String> + Send + Sync>;

/// The `messages` table, built on first scan (on the blocking pool: see
/// [`BlockingOnce`]).
pub(crate) struct LazyMessages {
    build: Option<Build>,
    table: BlockingOnce<Arc<MemTable>>,
}

impl std::fmt::Debug for LazyMessages {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LazyMessages")
            .field("table", &self.table)
            .finish_non_exhaustive()
    }
}

impl LazyMessages {
    /// Messages of `ds`, read when first queried.
    pub(crate) fn of(ds: Arc<Dataset>) -> LazyMessages {
        LazyMessages::built_by(Arc::new(move || {
            build_messages(&ds, BATCH_BYTES).map_err(|e| e.to_string())
        }))
    }

    /// Messages that `build` reads when first queried.
    pub(crate) fn built_by(build: Build) -> LazyMessages {
        LazyMessages {
            build: Some(build),
            table: BlockingOnce::new(),
        }
    }

    /// Messages already read (none, for the schema-only state).
    pub(crate) fn ready(batches: Vec<RecordBatch>) -> Result<LazyMessages, SqlError> {
        Ok(LazyMessages {
            build: None,
            table: BlockingOnce::ready(Arc::new(table_of(batches)?)),
        })
    }

    async fn table(&self) -> datafusion::error::Result<Arc<MemTable>> {
        let build = self.build.clone();
        self.table
            .get_or_make(move || {
                let build = build.ok_or_else(|| "no dataset".to_string())?;
                table_of(build()?).map(Arc::new).map_err(|e| e.to_string())
            })
            .await
            .map_err(crate::error::TableUnreadable::into_datafusion)
    }
}

/// One partition holding every batch, so that a scan (and an export) keeps their order.
fn table_of(batches: Vec<RecordBatch>) -> Result<MemTable, SqlError> {
    MemTable::try_new(messages_schema(), vec![batches])
        .map_err(|e| SqlError::Query(format!("messages table: {e}")))
}

#[async_trait::async_trait]
impl TableProvider for LazyMessages {
    fn schema(&self) -> SchemaRef {
        messages_schema()
    }

    fn table_type(&self) -> TableType {
        TableType::Base
    }

    async fn scan(
        &self,
        state: &dyn Session,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
        limit: Option<usize>,
    ) -> datafusion::error::Result<Arc<dyn ExecutionPlan>> {
        self.table()
            .await?
            .scan(state, projection, filters, limit)
            .await
    }
}
