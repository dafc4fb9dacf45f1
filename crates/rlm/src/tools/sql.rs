//! `sql(query)`: read-only SQL over the whole dataset (halo-sql), one engine per run.

use std::sync::{Arc, OnceLock};

use halo_index::Dataset;
use halo_sql::{SqlEngine, SqlLimits};
use schemars::JsonSchema;
use serde::Deserialize;
use tokio::sync::OnceCell;

/// The tool description: halo-sql's, with the schema and example queries (built once).
pub(crate) fn description() -> &'static str {
    static DESCRIPTION: OnceLock<String> = OnceLock::new();
    DESCRIPTION.get_or_init(halo_sql::sql_tool_description)
}

/// Arguments of `sql`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct SqlArgs {
    /// One read-only SQL statement (SELECT / WITH ... SELECT) over the tables in the
    /// description.
    pub(crate) query: String,
}

/// The run's SQL engine, opened on the first `sql` call and shared by every agent.
#[derive(Debug, Default)]
pub(crate) struct SqlTool {
    engine: OnceCell<Result<Arc<SqlEngine>, String>>,
}

impl SqlTool {
    async fn engine(&self, ds: &Arc<Dataset>) -> Result<Arc<SqlEngine>, String> {
        self.engine
            .get_or_init(|| async {
                let ds = Arc::clone(ds);
                match tokio::task::spawn_blocking(move || SqlEngine::open_shared(ds)).await {
                    Ok(Ok(engine)) => Ok(Arc::new(engine)),
                    Ok(Err(e)) => Err(format!("the SQL tables could not be opened: {e}")),
                    Err(e) => Err(format!("opening the SQL tables crashed: {e}")),
                }
            })
            .await
            .clone()
    }

    /// Runs one sandboxed query with the agents' limits; the result is the `SqlResult`
    /// JSON (which says when rows were cut), an error is the message for the model.
    pub(crate) async fn run(&self, ds: &Arc<Dataset>, args: SqlArgs) -> Result<String, String> {
        if args.query.trim().is_empty() {
            return Err("query is empty; send one SELECT statement".to_owned());
        }
        let engine = self.engine(ds).await?;
        let result = engine
            .query_async(&args.query, &SqlLimits::for_agents())
            .await
            .map_err(|e| e.to_string())?;
        serde_json::to_string(&result).map_err(|e| format!("cannot encode result: {e}"))
    }
}
