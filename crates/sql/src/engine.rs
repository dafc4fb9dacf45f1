//! The engine: open over a dataset, run one sandboxed query, return capped JSON rows.

use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use arrow_schema::SchemaRef;
use datafusion::dataframe::DataFrame;
use datafusion::execution::context::SQLOptions;
use datafusion::execution::disk_manager::{DiskManagerBuilder, DiskManagerMode};
use datafusion::execution::runtime_env::RuntimeEnvBuilder;
use datafusion::execution::session_state::{SessionState, SessionStateBuilder};
use datafusion::logical_expr::LogicalPlan;
use futures::StreamExt;

use halo_index::Dataset;
use serde::{Deserialize, Serialize};

use crate::convert;
use crate::sandbox;
use crate::tables;
use crate::SqlError;

/// The stack of the query threads, where statements are planned and run: tokio's default
/// of 2 MiB took about 900 levels of expression before it overflowed (the sandbox allows
/// 1,000), in a debug build with DataFusion's recursion protection about 2,000. Four
/// times that, and no more: it is address space, which a `ulimit -v` bounds.
const SQL_THREAD_STACK: usize = 8 << 20;

/// The version of [`SqlResult`]'s JSON layout.
pub const SCHEMA_VERSION: u32 = 1;

/// Per-query limits.
#[derive(Debug, Clone, PartialEq)]
pub struct SqlLimits {
    /// Rows returned at most; more are cut, with a note.
    pub max_rows: usize,
    /// Bytes of JSON rows returned at most; more are cut, with a note.
    pub max_bytes: usize,
    /// Wall-clock time for planning and running the query.
    pub timeout: Duration,
    /// Memory the query may reserve (joins, sorts, aggregates); it fails beyond, nothing
    /// spills to disk.
    pub max_memory_bytes: usize,
    /// Characters a string value keeps, for output that shows no more of it (a table on
    /// a terminal): counted against `max_bytes` as shown, so that one huge value does not
    /// cut the rows it would only have shown the head of. `None` keeps values whole.
    pub max_cell_chars: Option<usize>,
}

impl Default for SqlLimits {
    /// For people: 10,000 rows, 16 MiB of results, 60 s, 2 GiB of memory.
    fn default() -> SqlLimits {
        SqlLimits {
            max_rows: 10_000,
            max_bytes: 16 << 20,
            timeout: Duration::from_secs(60),
            max_memory_bytes: 2 << 30,
            max_cell_chars: None,
        }
    }
}

impl SqlLimits {
    /// For agents, whose context is small: 200 rows, 64 KiB of results, 30 s, 1 GiB.
    pub fn for_agents() -> SqlLimits {
        SqlLimits {
            max_rows: 200,
            max_bytes: 64 << 10,
            timeout: Duration::from_secs(30),
            max_memory_bytes: 1 << 30,
            max_cell_chars: None,
        }
    }
}

/// One result column.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SqlColumn {
    /// The column name.
    pub name: String,
    /// Its type, SQL-ish (`TEXT`, `BIGINT`, `DOUBLE`, `BOOLEAN`, `TIMESTAMP (UTC)`, `TEXT[]`...).
    #[serde(rename = "type")]
    pub data_type: String,
}

/// A query's answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SqlResult {
    /// [`SCHEMA_VERSION`].
    pub schema_version: u32,
    /// The columns, in order.
    pub columns: Vec<SqlColumn>,
    /// The rows, each a list of values in column order (times as RFC 3339 text, lists as
    /// arrays).
    pub rows: Vec<Vec<serde_json::Value>>,
    /// `rows.len()`.
    pub row_count: usize,
    /// Whether rows were cut by a limit.
    pub truncated: bool,
    /// Why and where the rows were cut, when they were.
    pub truncation_note: Option<String>,
    /// Time spent planning and running, in milliseconds.
    pub elapsed_ms: f64,
}

/// An SQL engine over one dataset's index.
///
/// Queries run on the engine's own runtime (made on first use), never on the caller's:
/// see [`SqlEngine::query_async`].
pub struct SqlEngine {
    base: SessionState,
    schemas: Vec<(String, SchemaRef)>,
    runtime: OnceLock<Result<tokio::runtime::Runtime, String>>,
    threads: usize,
}

impl Drop for SqlEngine {
    /// An engine may be dropped inside the caller's runtime (an agent run ending), where
    /// dropping a runtime the ordinary way, waiting for its threads, panics; work still on
    /// it is only reading (the index, or a slice of messages on the blocking pool) for
    /// queries that are gone.
    fn drop(&mut self) {
        if let Some(Ok(runtime)) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

impl std::fmt::Debug for SqlEngine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqlEngine")
            .field(
                "tables",
                &self
                    .schemas
                    .iter()
                    .map(|(n, _)| n.as_str())
                    .collect::<Vec<_>>(),
            )
            .field("threads", &self.threads)
            .finish()
    }
}

impl SqlEngine {
    /// Opens the tables over `ds`: the span tables of every segment (loaded once, as the
    /// index keeps them) and the trace rollups; no data is copied.
    pub fn open(ds: &Dataset) -> Result<SqlEngine, SqlError> {
        let threads = cores();
        let base = tables::dataset_state(ds, threads, crate::messages::CACHE_BYTES)?;
        Self::from_state(base, threads)
    }

    /// [`SqlEngine::open`] for tables read once, as an export reads them: nothing read
    /// from the source is kept between queries.
    pub(crate) fn open_for_one_pass(ds: &Dataset) -> Result<SqlEngine, SqlError> {
        let threads = cores();
        let base = tables::dataset_state(ds, threads, 0)?;
        Self::from_state(base, threads)
    }

    /// Opens the tables over a shared dataset (as the RLM holds it): only the trace rollups
    /// are read now; the span tables are loaded by the first query that reads `spans`,
    /// `tool_calls` or `llm_calls`, and the source files are read only by queries that
    /// select `spans.attributes` or name `messages`.
    ///
    /// Up to 256 MB of messages read are kept for later queries, as an analysis asks for
    /// them again and again.
    pub fn open_shared(ds: Arc<Dataset>) -> Result<SqlEngine, SqlError> {
        let threads = cores();
        let base = tables::shared_dataset_state(ds, threads, crate::messages::CACHE_BYTES)?;
        Self::from_state(base, threads)
    }

    /// [`SqlEngine::open_shared`] for a single query (as `halo sql` runs): nothing read
    /// from the source files is kept for a next one.
    pub fn open_shared_for_one_query(ds: Arc<Dataset>) -> Result<SqlEngine, SqlError> {
        let threads = cores();
        let base = tables::shared_dataset_state(ds, threads, 0)?;
        Self::from_state(base, threads)
    }

    pub(crate) fn from_state(base: SessionState, threads: usize) -> Result<SqlEngine, SqlError> {
        let schemas = tables::schemas_of(&base)?;
        Ok(SqlEngine {
            base,
            schemas,
            runtime: OnceLock::new(),
            threads,
        })
    }

    /// The tables and their schemas, in [`crate::TABLE_NAMES`] order.
    pub fn schemas(&self) -> &[(String, SchemaRef)] {
        &self.schemas
    }

    /// Runs one sandboxed query, blocking. Call [`SqlEngine::query_async`] instead from
    /// inside an async runtime.
    pub fn query(&self, sql: &str, limits: &SqlLimits) -> Result<SqlResult, SqlError> {
        self.block_on(self.query_async(sql, limits))?
    }

    /// Runs one sandboxed query from inside a tokio runtime (which needs the time driver).
    ///
    /// The query itself runs on the engine's own runtime, so its operators, and the reading
    /// of tables on first use (on that runtime's blocking pool), never hold up the caller's
    /// tasks; the caller's runtime only keeps the time limit.
    pub async fn query_async(&self, sql: &str, limits: &SqlLimits) -> Result<SqlResult, SqlError> {
        let started = Instant::now();
        let statement = sandbox::checked_statement(sql)?;
        let state = self.session(limits)?;
        // On its own task, so that the time limit holds even while an operator is busy; the
        // task is aborted (and its streams dropped) when the limit passes, or when the caller
        // stops waiting (an agent cancelled by Ctrl-C).
        let task = self
            .runtime()?
            .spawn(run(state, statement, limits.clone(), started));
        let _stop = AbortOnDrop(task.abort_handle());
        let finished = tokio::select! {
            finished = tokio::time::timeout(limits.timeout, task) => finished,
            grown = crate::memory_watch::grown_past(limits.max_memory_bytes) => {
                return Err(SqlError::MemoryLimit {
                    limit_bytes: limits.max_memory_bytes,
                    detail: format!(
                        "the process grew by {} MB while it ran, memory the engine's own count missed",
                        grown >> 20
                    ),
                });
            }
        };
        match finished {
            Ok(Ok(result)) => result,
            Ok(Err(e)) => Err(SqlError::Runtime(format!("the query task failed: {e}"))),
            Err(_) => Err(SqlError::Timeout {
                seconds: limits.timeout.as_secs_f64(),
            }),
        }
    }

    /// Runs `f` to completion on the engine's own runtime.
    pub(crate) fn block_on<F: std::future::Future>(&self, f: F) -> Result<F::Output, SqlError>
    where
        F::Output: Sized,
    {
        if tokio::runtime::Handle::try_current().is_ok() {
            return Err(SqlError::Runtime(
                "the blocking SQL API was called inside an async runtime; use query_async".into(),
            ));
        }
        Ok(self.runtime()?.block_on(f))
    }

    /// The engine's own runtime, made on first use.
    fn runtime(&self) -> Result<&tokio::runtime::Runtime, SqlError> {
        let rt = self.runtime.get_or_init(|| {
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(self.threads)
                .thread_name("halo-sql")
                // Planning recurses over expression trees; the sandbox's depth bound
                // keeps them shallow enough for this, with room to spare.
                .thread_stack_size(SQL_THREAD_STACK)
                .enable_time()
                .build()
                .map_err(|e| e.to_string())
        });
        rt.as_ref()
            .map_err(|e| SqlError::Runtime(format!("cannot start the query runtime: {e}")))
    }

    /// A fresh session sharing the tables, with this query's memory pool and no disk.
    fn session(&self, limits: &SqlLimits) -> Result<SessionState, SqlError> {
        let runtime = RuntimeEnvBuilder::new()
            .with_memory_limit(limits.max_memory_bytes, 1.0)
            .with_disk_manager_builder(
                DiskManagerBuilder::default().with_mode(DiskManagerMode::Disabled),
            )
            .build_arc()
            .map_err(|e| SqlError::Runtime(e.to_string()))?;
        Ok(SessionStateBuilder::new_from_existing(self.base.clone())
            .with_runtime_env(runtime)
            .build())
    }

    /// The base session (tables, views, functions), for export.
    pub(crate) fn base_state(&self) -> &SessionState {
        &self.base
    }
}

/// The cores a query may use: its partitions, and the runtime's workers.
fn cores() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(2)
}

/// Aborts a query's task when whoever waits for it is done, one way or another.
struct AbortOnDrop(tokio::task::AbortHandle);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// The wall behind the statement check: no DDL, no DML, no statements such as SET.
pub(crate) fn sql_options() -> SQLOptions {
    SQLOptions::new()
        .with_allow_ddl(false)
        .with_allow_dml(false)
        .with_allow_statements(false)
}

async fn run(
    state: SessionState,
    statement: datafusion::sql::parser::Statement,
    limits: SqlLimits,
    started: Instant,
) -> Result<SqlResult, SqlError> {
    let df_err = |e| SqlError::from_datafusion(e, limits.max_memory_bytes);
    let plan = state.statement_to_plan(statement).await.map_err(df_err)?;
    sql_options()
        .verify_plan(&plan)
        .map_err(|e| SqlError::Refused(e.to_string()))?;
    // No more rows than can be returned (one more, to know the result was cut) are
    // asked for: an ORDER BY then keeps the top rows (bounded memory) instead of sorting
    // every span of the dataset to print ten thousand of them.
    // (EXPLAIN and DESCRIBE must stay the root of their plan, and return a few rows.)
    let describes = matches!(
        plan,
        LogicalPlan::Explain(_) | LogicalPlan::Analyze(_) | LogicalPlan::DescribeTable(_)
    );
    let df = DataFrame::new(state, plan);
    let df = match describes {
        true => df,
        false => df
            .limit(0, Some(limits.max_rows.saturating_add(1)))
            .map_err(df_err)?,
    };
    let schema = Arc::new(df.schema().as_arrow().clone());
    let columns = schema
        .fields()
        .iter()
        .map(|f| SqlColumn {
            name: f.name().clone(),
            data_type: convert::sql_type(f.data_type()),
        })
        .collect();
    let mut stream = df.execute_stream().await.map_err(df_err)?;
    let mut rows = Vec::new();
    let mut bytes = 0usize;
    let mut cut: Option<String> = None;
    'batches: while let Some(batch) = stream.next().await {
        let batch = batch.map_err(df_err)?;
        for r in 0..batch.num_rows() {
            if rows.len() >= limits.max_rows {
                cut = Some(format!(
                    "result cut at the row limit of {} rows (the query returns more); aggregate, filter with WHERE, or add LIMIT/OFFSET",
                    limits.max_rows
                ));
                break 'batches;
            }
            let row: Vec<serde_json::Value> = batch
                .columns()
                .iter()
                .map(|c| {
                    let value = convert::value(c.as_ref(), r);
                    match (value, limits.max_cell_chars) {
                        (serde_json::Value::String(text), Some(max)) => {
                            serde_json::Value::String(match text.char_indices().nth(max) {
                                Some((cut, _)) => format!("{}…", &text[..cut]),
                                None => text,
                            })
                        }
                        (value, _) => value,
                    }
                })
                .collect();
            let size = serde_json::to_string(&row).map(|s| s.len()).unwrap_or(0);
            if bytes + size > limits.max_bytes {
                cut = Some(format!(
                    "result cut at the size limit of {} bytes after {} rows (the query returns more); select fewer or shorter columns (e.g. left(col, 200)), aggregate, or add LIMIT",
                    limits.max_bytes,
                    rows.len()
                ));
                break 'batches;
            }
            bytes += size;
            rows.push(row);
        }
    }
    drop(stream);
    Ok(SqlResult {
        schema_version: SCHEMA_VERSION,
        columns,
        row_count: rows.len(),
        rows,
        truncated: cut.is_some(),
        truncation_note: cut,
        elapsed_ms: started.elapsed().as_secs_f64() * 1e3,
    })
}

#[cfg(test)]
mod tests;
