//! The tables: the index's record batches registered as they are (`spans` with its
//! `attributes` column read on demand, see [`crate::spans`]), and views over them.

use std::sync::Arc;

use arrow_array::RecordBatch;
use arrow_schema::SchemaRef;
use datafusion::catalog::{MemTable, TableProvider};
use datafusion::execution::context::SessionContext;
use datafusion::execution::session_state::{SessionState, SessionStateBuilder};
use datafusion::prelude::SessionConfig;
use halo_index::Dataset;

use crate::messages::MessagesTable;
use crate::spans::SpansTable;
use crate::SqlError;

/// Every table a query can name, in the order they are described and exported.
pub const TABLE_NAMES: &[&str] = &["traces", "spans", "tool_calls", "llm_calls", "messages"];

/// The trace table's columns that are internal pointers into the index (hidden from SQL).
const HIDDEN_TRACE_COLUMNS: &[&str] = &[
    "span_rows",
    // How parts of a trace in several files merge their tokens; `total_tokens` is the answer.
    "tokens_from_calls",
    "aggregate_input_tokens",
    "aggregate_output_tokens",
    "aggregate_total_tokens",
];

/// `tool_calls`: one row per TOOL span.
const TOOL_CALLS: &str = "CREATE VIEW tool_calls AS SELECT \
    trace_id, span_id, parent_span_id, tool_name, tool_args AS arguments, tool_result AS result_head, \
    is_error, error_type, error_message, status_message, http_status, duration_ms, start_time, end_time, \
    agent_name, service_name, name AS span_name \
    FROM spans WHERE kind = 'TOOL'";

/// `llm_calls`: one row per LLM span.
const LLM_CALLS: &str = "CREATE VIEW llm_calls AS SELECT \
    trace_id, span_id, parent_span_id, model, input_tokens, output_tokens, total_tokens, cost, \
    duration_ms AS latency_ms, finish_reason, output_head, input_head, requested_tools, declared_tools, refusal, \
    is_error, error_type, error_message, status_message, http_status, start_time, end_time, \
    agent_name, service_name, name AS span_name \
    FROM spans WHERE kind = 'LLM'";

/// The session every query starts from: tables, views and functions, no file access.
pub(crate) fn base_state(
    spans: Arc<dyn TableProvider>,
    traces: RecordBatch,
    messages: Arc<dyn TableProvider>,
    partitions: usize,
) -> Result<SessionState, SqlError> {
    let mut config = SessionConfig::new()
        .with_target_partitions(partitions.max(1))
        // A filter over a one-partition scan (`messages`, read in the index's order) stays
        // in that order rather than being dealt round-robin to every core: without an
        // ORDER BY, a trace's messages still come as the conversation went.
        .with_round_robin_repartition(false)
        .with_information_schema(true)
        .with_default_catalog_and_schema("halo", "public");
    // MIN/MAX publish dynamic filters that DataFusion 55 can build wrong (a MIN/MAX over
    // an expression beside one over a column; a partition's typed NULL bound), and the
    // `attributes` scan applies the dynamic filters it is offered: a max() over spans
    // then missed its largest value. TopK and join filters stay.
    config
        .options_mut()
        .optimizer
        .enable_aggregate_dynamic_filter_pushdown = false;
    let mut builder = SessionStateBuilder::new()
        .with_config(config)
        .with_default_features()
        .with_physical_optimizer_rule(Arc::new(crate::dynamic_filter_scan::DropFiltersAcrossJoins))
        .with_physical_optimizer_rule(Arc::new(crate::coop::YieldAfterJoins));
    // No CREATE EXTERNAL TABLE, no file formats: the session cannot name a file.
    *builder.table_factories() = Some(Default::default());
    *builder.file_formats() = Some(Vec::new());
    let mut state = builder.build();
    datafusion_functions_json::register_all(&mut state)
        .map_err(|e| SqlError::Query(e.to_string()))?;
    let ctx = SessionContext::new_with_state(state);

    ctx.register_table("spans", spans)
        .map_err(|e| SqlError::Query(e.to_string()))?;
    ctx.register_table("messages", messages)
        .map_err(|e| SqlError::Query(e.to_string()))?;

    let traces = visible_traces(&traces)?;
    let trace_parts = slices(&traces, partitions.max(1));
    let traces = MemTable::try_new(traces.schema(), non_empty(trace_parts))
        .map_err(|e| SqlError::Query(format!("traces table: {e}")))?;
    ctx.register_table("traces", Arc::new(traces))
        .map_err(|e| SqlError::Query(e.to_string()))?;

    for view in [TOOL_CALLS, LLM_CALLS] {
        // Views are made here, before any sandbox applies; planning them needs no runtime.
        futures::executor::block_on(ctx.sql(view))
            .map_err(|e| SqlError::Query(format!("view: {e}")))?;
    }
    Ok(ctx.state())
}

/// The state for a dataset: the span batches of every segment (loaded now), the trace
/// rollups, and the sources mapped now (for `spans.attributes` and `messages`).
///
/// `keep_messages` is how many bytes of messages the engine keeps between queries.
pub(crate) fn dataset_state(
    ds: &Dataset,
    partitions: usize,
    keep_messages: usize,
) -> Result<SessionState, SqlError> {
    let spans = Arc::new(SpansTable::of(ds, partitions)?);
    let messages = MessagesTable::over(spans.clone(), partitions).keeping(keep_messages);
    base_state(
        spans,
        halo_index::traces_to_batch(ds.traces()),
        Arc::new(messages),
        partitions,
    )
}

/// The state for a shared dataset: span tables are loaded by the first query that reads
/// them, so opening costs only the trace rollups. `keep_messages` as for [`dataset_state`].
pub(crate) fn shared_dataset_state(
    ds: Arc<Dataset>,
    partitions: usize,
    keep_messages: usize,
) -> Result<SessionState, SqlError> {
    let traces = halo_index::traces_to_batch(ds.traces());
    let spans = Arc::new(SpansTable::shared(ds, partitions));
    let messages = MessagesTable::over(spans.clone(), partitions).keeping(keep_messages);
    base_state(spans, traces, Arc::new(messages), partitions)
}

/// The state with no data, for schemas and the tool description.
pub(crate) fn empty_state() -> Result<SessionState, SqlError> {
    let spans = Arc::new(SpansTable::empty()?);
    let messages = MessagesTable::over(spans.clone(), 1);
    base_state(
        spans,
        halo_index::traces_to_batch(&[]),
        Arc::new(messages),
        1,
    )
}

/// The schema of each table, in [`TABLE_NAMES`] order.
pub(crate) fn schemas_of(state: &SessionState) -> Result<Vec<(String, SchemaRef)>, SqlError> {
    let ctx = SessionContext::new_with_state(state.clone());
    TABLE_NAMES
        .iter()
        .map(|name| {
            let df = futures::executor::block_on(ctx.table(*name))
                .map_err(|e| SqlError::Query(e.to_string()))?;
            Ok((name.to_string(), Arc::new(df.schema().as_arrow().clone())))
        })
        .collect()
}

fn visible_traces(batch: &RecordBatch) -> Result<RecordBatch, SqlError> {
    let schema = batch.schema();
    let keep: Vec<usize> = (0..schema.fields().len())
        .filter(|&i| !HIDDEN_TRACE_COLUMNS.contains(&schema.field(i).name().as_str()))
        .collect();
    batch
        .project(&keep)
        .map_err(|e| SqlError::Query(format!("traces table: {e}")))
}

/// Splits a batch into up to `n` zero-copy slices, one partition each.
fn slices(batch: &RecordBatch, n: usize) -> Vec<Vec<RecordBatch>> {
    let rows = batch.num_rows();
    if rows == 0 {
        return vec![vec![batch.clone()]];
    }
    let per = rows.div_ceil(n);
    (0..rows)
        .step_by(per)
        .map(|start| vec![batch.slice(start, per.min(rows - start))])
        .collect()
}

/// `parts`, or one empty partition when there are none (a table needs one).
pub(crate) fn non_empty(parts: Vec<Vec<RecordBatch>>) -> Vec<Vec<RecordBatch>> {
    if parts.is_empty() {
        vec![Vec::new()]
    } else {
        parts
    }
}
