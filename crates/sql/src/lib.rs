//! SQL over traces: an embedded, sandboxed Apache DataFusion engine over the trace index's
//! own Arrow columns.
//!
//! The tables are the index's record batches, not a second copy of the data:
//!
//! | table | rows | source |
//! |---|---|---|
//! | `spans` | one per span | the span tables of every segment, as they are, plus `attributes` (read from the source only when selected) |
//! | `traces` | one per trace | the index rollups ([`halo_index::traces_to_batch`]) |
//! | `tool_calls` | one per TOOL span | a view over `spans` |
//! | `llm_calls` | one per LLM span | a view over `spans` |
//!
//! Queries run in a sandbox: exactly one read-only statement (`SELECT`, `WITH ... SELECT`,
//! `VALUES`, `EXPLAIN`, `DESCRIBE`, `SHOW TABLES/COLUMNS`), no DDL or DML, no file access
//! (`CREATE EXTERNAL TABLE`, `COPY`), no `SET` of engine options, and per query a time limit,
//! a memory limit (no spilling to disk), and a row and byte cap on the result, with a note
//! when the result was cut. See [`SqlLimits`].
//!
//! ```no_run
//! # fn demo(ds: &halo_index::Dataset) -> Result<(), halo_sql::SqlError> {
//! let engine = halo_sql::SqlEngine::open(ds)?;
//! let r = engine.query(
//!     "SELECT tool_name, count(*) AS failures FROM tool_calls WHERE is_error GROUP BY tool_name",
//!     &halo_sql::SqlLimits::default(),
//! )?;
//! for row in &r.rows {
//!     println!("{row:?}");
//! }
//! # Ok(())
//! # }
//! ```
//!
//! [`sql_tool_description`] is the agents' `sql(query)` tool description, generated from
//! the real schemas; [`export_parquet`] writes every table as Parquet.

mod blocking_once;
mod convert;
mod coop;
mod describe;
mod dynamic_filter_scan;
mod engine;
mod error;
mod export;
mod memory_watch;
mod message_batches;
mod messages;
mod sandbox;
mod slices;
mod sources;
mod spans;
mod tables;
#[cfg(test)]
mod testdata;

pub use describe::{sql_tool_description, table_schemas, EXAMPLE_QUERIES};
pub use engine::{SqlColumn, SqlEngine, SqlLimits, SqlResult, SCHEMA_VERSION};
pub use error::SqlError;
pub use export::{
    export_parquet, export_parquet_with, ExportProgress, ExportedTable, NoExportProgress,
};
pub use memory_watch::anonymous_bytes;
pub use tables::TABLE_NAMES;
