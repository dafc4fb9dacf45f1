//! What can go wrong, with messages meant for the person or agent who wrote the query.

use std::path::PathBuf;

use datafusion::error::DataFusionError;

/// An SQL error.
#[derive(Debug, thiserror::Error)]
pub enum SqlError {
    /// The sandbox refused the statement (not read-only, several statements, file access...).
    #[error("refused: {0}")]
    Refused(String),
    /// The SQL does not parse.
    #[error("SQL syntax error: {0}")]
    Syntax(String),
    /// The query is valid SQL but failed to plan or run (unknown column, bad types...).
    #[error("query failed: {0}")]
    Query(String),
    /// The query ran past its time limit and was cancelled.
    #[error("query cancelled: it ran past the time limit of {seconds} s (narrow it with WHERE, aggregate, or add LIMIT)")]
    Timeout {
        /// The limit, in seconds.
        seconds: f64,
    },
    /// The query needed more memory than its limit and was cancelled.
    #[error("query cancelled: it needed more than the memory limit of {limit_bytes} bytes ({detail}); narrow it with WHERE, aggregate, or add LIMIT")]
    MemoryLimit {
        /// The limit, in bytes.
        limit_bytes: usize,
        /// What the engine said.
        detail: String,
    },
    /// The blocking API was called inside an async runtime, or a runtime could not start.
    #[error("runtime: {0}")]
    Runtime(String),
    /// The index could not be read.
    #[error(transparent)]
    Index(#[from] halo_index::IndexError),
    /// A file could not be written (export).
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// Parquet writing failed (export).
    #[error("{path}: parquet: {message}")]
    Parquet {
        /// The file.
        path: PathBuf,
        /// The cause.
        message: String,
    },
}

impl SqlError {
    /// Maps a DataFusion error, recognizing memory exhaustion and syntax errors.
    pub(crate) fn from_datafusion(e: DataFusionError, memory_limit: usize) -> SqlError {
        match e.find_root() {
            DataFusionError::ResourcesExhausted(m) => SqlError::MemoryLimit {
                limit_bytes: memory_limit,
                detail: first_line(m),
            },
            DataFusionError::SQL(p, _) => SqlError::Syntax(p.to_string()),
            root => SqlError::Query(strip_prefixes(&root.to_string())),
        }
    }
}

fn first_line(s: &str) -> String {
    s.lines().next().unwrap_or("").trim().to_string()
}

/// DataFusion's messages start with "Error during planning: " and the like; keep them, they
/// say what kind of failure it was, but drop the nesting noise of wrapped errors.
fn strip_prefixes(s: &str) -> String {
    s.trim().to_string()
}
