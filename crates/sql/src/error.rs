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
    /// A table's rows could not be loaded from the index while the query ran (a damaged
    /// or missing index file): the data's failure, not the query's.
    #[error("{0}")]
    Unreadable(String),
    /// A file could not be written (export).
    // The cause is part of the message, not a `source`: a chain printed whole would
    // say it twice.
    #[error("{path}: {cause}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        cause: std::io::Error,
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
                detail: memory_detail(m),
            },
            DataFusionError::SQL(p, _) => SqlError::Syntax(p.to_string()),
            DataFusionError::External(e) if e.is::<TableUnreadable>() => {
                SqlError::Unreadable(e.to_string())
            }
            root => SqlError::Query(explained(&strip_prefixes(&root.to_string()))),
        }
    }
}

/// Why a table's rows could not be loaded, carried through DataFusion (which only passes
/// errors on) so that it comes out as [`SqlError::Unreadable`] rather than as a mistake in
/// the query.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub(crate) struct TableUnreadable(pub(crate) String);

impl TableUnreadable {
    /// The DataFusion error that carries `message`.
    pub(crate) fn into_datafusion(message: String) -> DataFusionError {
        DataFusionError::External(Box::new(TableUnreadable(message)))
    }
}

/// The reason of a memory failure, without DataFusion's list of the biggest consumers
/// (which the first line would cut in the middle).
fn memory_detail(s: &str) -> String {
    let line = s.lines().next().unwrap_or("").trim();
    let cut = line
        .find(" with top memory consumers")
        .or_else(|| line.find(", caused by"))
        .unwrap_or(line.len());
    line[..cut].trim_end_matches([':', ',', ' ']).to_string()
}

/// DataFusion's message with what it leaves out: the tables there are (and the nearest
/// name) for an unknown table, and each valid field once.
fn explained(message: &str) -> String {
    let mut out = dedupe_valid_fields(message);
    if let Some(name) = unknown_table(message) {
        out.push_str(&format!(
            "; the tables are {}",
            crate::tables::TABLE_NAMES.join(", ")
        ));
        let nearest = crate::tables::TABLE_NAMES
            .iter()
            .map(|t| (strsim::levenshtein(t, name), t))
            .min();
        if let Some((_, table)) = nearest.filter(|(distance, _)| *distance <= 3) {
            out.push_str(&format!(" (did you mean {table}?)"));
        }
    }
    out
}

/// The table name in "table 'halo.public.x' not found".
fn unknown_table(message: &str) -> Option<&str> {
    let rest = message.split("table '").nth(1)?;
    let quoted = rest.split('\'').next()?;
    rest.contains("not found")
        .then(|| quoted.rsplit('.').next().unwrap_or(quoted))
}

/// "Valid fields are a, a, b" says each field once.
fn dedupe_valid_fields(message: &str) -> String {
    const HEAD: &str = "Valid fields are ";
    let Some(at) = message.find(HEAD) else {
        return message.to_string();
    };
    let start = at + HEAD.len();
    // Fields are `table.column`: the list ends at a sentence's end or a line's.
    let end = message[start..]
        .find(". ")
        .into_iter()
        .chain(message[start..].find('\n'))
        .min()
        .map_or(message.len(), |i| start + i);
    let mut seen = std::collections::HashSet::new();
    let fields: Vec<&str> = message[start..end]
        .split(", ")
        .filter(|f| seen.insert(*f))
        .collect();
    format!(
        "{}{}{}",
        &message[..start],
        fields.join(", "),
        &message[end..]
    )
}

/// DataFusion's messages start with "Error during planning: " and the like; keep them, they
/// say what kind of failure it was, but drop the nesting noise of wrapped errors.
fn strip_prefixes(s: &str) -> String {
    s.trim().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_say_what_datafusion_leaves_out() {
        let m = explained("Error during planning: table 'halo.public.tool_call' not found");
        assert!(
            m.contains("the tables are traces, spans, tool_calls"),
            "{m}"
        );
        assert!(m.contains("did you mean tool_calls?"), "{m}");
        let far = explained("Error during planning: table 'halo.public.zzzzzzzzzz' not found");
        assert!(!far.contains("did you mean"), "{far}");
        let fields = explained(
            "Schema error: No field named x. Valid fields are traces.trace_id, traces.trace_id, traces.span_count.",
        );
        assert!(
            fields.ends_with("Valid fields are traces.trace_id, traces.span_count."),
            "{fields}"
        );
        assert_eq!(
            memory_detail("Failed to allocate additional 10 MB for X with 0 B already allocated for this reservation - 1 MB remain available for the total pool with top memory consumers (across reservations) as:\n  X#1 10 MB"),
            "Failed to allocate additional 10 MB for X with 0 B already allocated for this reservation - 1 MB remain available for the total pool"
        );
    }
}
