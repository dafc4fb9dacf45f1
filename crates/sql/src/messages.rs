//! The `messages` table: the chat messages of LLM spans, one row per message.
//!
//! The index keeps only heads of model input and output, so messages are read again from
//! the source (through the same memory map the index uses) the first time a query names
//! the table, and kept for the engine's life. Datasets without message attributes give an
//! empty table.

use std::sync::{Arc, OnceLock};

use arrow_array::builder::{Int32Builder, ListBuilder, StringBuilder};
use arrow_array::{ArrayRef, RecordBatch};
use arrow_schema::{DataType, Field, Schema, SchemaRef};
use datafusion::catalog::{MemTable, Session, TableProvider};
use datafusion::datasource::TableType;
use datafusion::logical_expr::Expr;
use datafusion::physical_plan::ExecutionPlan;
use halo_index::{Dataset, SpanColumns};

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
            ]))
        })
        .clone()
}

/// Reads the messages of every LLM span of the dataset.
pub(crate) fn build_messages(ds: &Dataset) -> Result<RecordBatch, SqlError> {
    let mut trace_id = StringBuilder::new();
    let mut span_id = StringBuilder::new();
    let mut direction = StringBuilder::new();
    let mut position = Int32Builder::new();
    let mut role = StringBuilder::new();
    let mut content = StringBuilder::new();
    let mut call_id = StringBuilder::new();
    let mut calls = ListBuilder::new(StringBuilder::new());
    for seg in 0..ds.segment_count() {
        let table = ds.span_table(seg)?;
        let data = ds.segment_data(seg)?;
        let bytes = data.bytes();
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
                let Ok(text) = std::str::from_utf8(line) else {
                    continue;
                };
                let Ok(parsed) = halo_trace::parse_line(text) else {
                    continue;
                };
                let within = (c.byte_offset.value(i) - c.record_offset.value(i)) as usize;
                let Some((span, _)) = parsed.spans.iter().find(|(_, r)| r.start == within) else {
                    continue;
                };
                let messages = halo_trace::messages::llm_messages(span);
                for (dir, list) in [("input", &messages.input), ("output", &messages.output)] {
                    for (n, m) in list.iter().enumerate() {
                        trace_id.append_value(c.trace_id.value(i));
                        span_id.append_value(c.span_id.value(i));
                        direction.append_value(dir);
                        position.append_value(n as i32);
                        role.append_value(&m.role);
                        content.append_value(halo_trace::head(&m.content, CONTENT_CHARS));
                        call_id.append_option(m.tool_call_id.as_deref());
                        for call in &m.tool_calls {
                            calls.values().append_value(&call.name);
                        }
                        calls.append(true);
                    }
                }
            }
        }
    }
    let columns: Vec<ArrayRef> = vec![
        Arc::new(trace_id.finish()),
        Arc::new(span_id.finish()),
        Arc::new(direction.finish()),
        Arc::new(position.finish()),
        Arc::new(role.finish()),
        Arc::new(content.finish()),
        Arc::new(call_id.finish()),
        Arc::new(calls.finish()),
    ];
    RecordBatch::try_new(messages_schema(), columns)
        .map_err(|e| SqlError::Query(format!("messages table: {e}")))
}

/// The `messages` table, built on first scan.
#[derive(Debug)]
pub(crate) struct LazyMessages {
    ds: Option<Arc<Dataset>>,
    table: OnceLock<Result<Arc<MemTable>, String>>,
}

impl LazyMessages {
    /// Messages of `ds`, read when first queried.
    pub(crate) fn of(ds: Arc<Dataset>) -> LazyMessages {
        LazyMessages {
            ds: Some(ds),
            table: OnceLock::new(),
        }
    }

    /// Messages already read (or none, for the schema-only state).
    pub(crate) fn ready(batch: Option<RecordBatch>) -> LazyMessages {
        let table = OnceLock::new();
        let parts = vec![batch.into_iter().collect::<Vec<_>>()];
        let _ = table.set(
            MemTable::try_new(messages_schema(), parts)
                .map(Arc::new)
                .map_err(|e| e.to_string()),
        );
        LazyMessages { ds: None, table }
    }

    fn table(&self) -> datafusion::error::Result<Arc<MemTable>> {
        self.table
            .get_or_init(|| {
                let ds = self.ds.as_ref().ok_or_else(|| "no dataset".to_string())?;
                build_messages(ds)
                    .and_then(|b| {
                        MemTable::try_new(messages_schema(), vec![vec![b]])
                            .map_err(|e| SqlError::Query(e.to_string()))
                    })
                    .map(Arc::new)
                    .map_err(|e| e.to_string())
            })
            .clone()
            .map_err(datafusion::error::DataFusionError::Execution)
    }
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
        self.table()?.scan(state, projection, filters, limit).await
    }
}
