//! The halo-rs trace index.
//!
//! Opening a dataset ([`Dataset::open`]) finds its files, makes sure each has a current
//! index (reusing it, indexing only what was appended, or rebuilding it), and merges the
//! per-file rollups into one set of traces: a trace whose spans are spread over several
//! files is one trace.
//!
//! Each file's index is a directory of Arrow IPC files: a span table (one row per span:
//! ids, times, status, the normalized facts of [`halo_trace::SpanFacts`], payload heads and
//! the span's byte range in the source) and a trace table (one row per trace: counts, time
//! range, services, models, agents, tools, tokens, error groups). The same Arrow columns are
//! what an SQL engine reads; there is no second copy of the data.
//!
//! Invariants:
//! - building never holds the source or all spans on the heap: the file is memory-mapped,
//!   parsed in waves of chunks, and span batches are written as they are made;
//! - one unreadable line never loses the rest: it is skipped and reported as a
//!   [`halo_ingest::Problem`] naming the file and line (unless `strict`);
//! - the index is replaced atomically; a corrupt or foreign index is rebuilt, never misread.

#![deny(missing_docs)]

mod build;
mod caught_panic;
mod cleanup;
mod dataset;
mod file_hash;
mod gzip_access;
mod ipc_file;
mod lent_columns;
mod open_plan;
mod ordered;
pub mod rollup;
mod sidecar_write;
pub mod span_columns;
pub mod span_table;
pub mod span_view;
pub mod store;
pub mod trace_columns;
mod trace_ids;

use std::path::PathBuf;

pub use build::BuildOptions;
pub use cleanup::finish_cleanup;
pub use dataset::{
    BuildProgress, Dataset, FileReport, IndexAction, NoProgress, OpenOptions, SegmentInfo,
    SourceBytes, EXTENDING_INFLATED_COPY, MAKING_INFLATED_COPY, MAKING_TEMPORARY_COPY,
};
pub use halo_ingest::{Problem, ProblemKind};
pub use rollup::{error_group_label, ErrorGroupCount, ToolUsage, TracePart, TraceSummary};
pub use span_columns::span_schema;
pub use span_table::SpanTable;
pub use span_view::SpanColumns;
pub use store::FORMAT_VERSION;
pub use trace_columns::{trace_schema, traces_to_batch};

/// Why a dataset could not be opened or read.
#[derive(Debug, thiserror::Error)]
pub enum IndexError {
    /// Finding the files failed.
    #[error(transparent)]
    Ingest(#[from] halo_ingest::IngestError),
    /// Reading or writing a file failed.
    #[error("{}: {error}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The OS error (shown in the message, not chained, so it prints once).
        error: std::io::Error,
    },
    /// Writing Arrow data failed.
    #[error("{}: cannot write index: {message}", path.display())]
    Arrow {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        message: String,
    },
    /// An index file is unreadable.
    #[error("{}: index is corrupt ({message}); run `halo index --rebuild`", path.display())]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// An index file that opened was found damaged when read; its index is marked out of
    /// date (when it could be written to), so the next open rebuilds it.
    #[error("{}: index file is damaged ({message}); {}", path.display(), match marked {
        true => "it is marked out of date: run the command again to rebuild it",
        false => "run `halo index --rebuild`",
    })]
    Damaged {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
        /// Whether the index was marked out of date.
        marked: bool,
    },
    /// The inflated copy of a gzip source, which dataset-wide scans read, could not be made
    /// (the disk is full, the directory is not writable, the `.gz` changed or is damaged).
    #[error("{}: cannot make the inflated copy that scans of {} read: {message}", path.display(), gzip.display())]
    GzipCopy {
        /// Where the copy goes.
        path: PathBuf,
        /// The gzip file.
        gzip: PathBuf,
        /// What went wrong.
        message: String,
    },
    /// A gzip source no longer reads as it did when it was indexed.
    #[error("{}: cannot read the spans through the index's checkpoints ({message}); if the file changed, `halo index --rebuild` indexes it again", path.display())]
    GzipRead {
        /// The gzip file.
        path: PathBuf,
        /// What went wrong.
        message: String,
    },
    /// A file has more spans than one segment can address.
    #[error("{}: more than 4 billion spans in one file", path.display())]
    TooLarge {
        /// The file.
        path: PathBuf,
    },
    /// The index could not be written where it goes (a read-only directory, say).
    #[error("{}: {error}; the index cannot be written there: {}", path.display(), if *index_dir_given {
        "give --index-dir a directory you can write to"
    } else {
        "put it elsewhere with --index-dir DIR (or set HALO_CACHE_DIR)"
    })]
    IndexNotWritable {
        /// What could not be written.
        path: PathBuf,
        /// The OS error.
        error: std::io::Error,
        /// The directory was given with `--index-dir` (the cache is then not used).
        index_dir_given: bool,
    },
    /// `--strict` and something was unreadable.
    #[error("{}", strict_message(first, *count))]
    Strict {
        /// How many problems.
        count: u64,
        /// The first one.
        first: Problem,
    },
    /// A file the dataset was opened with was replaced before halo read it (log
    /// rotation, or another halo process rebuilding the index).
    #[error("{}: replaced or removed since halo opened the dataset (log rotation, or another halo process rebuilding the index); run the command again", path.display())]
    Replaced {
        /// The file.
        path: PathBuf,
    },
    /// A file the dataset was opened with is now shorter than what its index covers (cut
    /// or rewritten in place before halo read it).
    #[error("{}: {now} bytes now, shorter than the {indexed} bytes indexed: the file changed since halo opened the dataset; run the command again", path.display())]
    Shrank {
        /// The file.
        path: PathBuf,
        /// Bytes the index covers.
        indexed: u64,
        /// Bytes the file has now.
        now: u64,
    },
    /// Nothing readable was found.
    #[error("no readable trace files{}", .0.as_ref().map(|p| format!(": {p}")).unwrap_or_default())]
    NoData(Option<String>),
}

/// The first problem that `--strict` refused, told as a refusal: its message says what
/// a run without `--strict` does with the line ("line skipped"), which did not happen.
fn strict_message(first: &Problem, count: u64) -> String {
    let told = first.to_string();
    let told = ["; line skipped", "; span skipped"]
        .iter()
        .find_map(|done| told.strip_suffix(done))
        .unwrap_or(&told);
    format!("{told} (refused: --strict makes any of the {count} problem(s) an error)")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unwritable_index_dir_points_at_what_the_user_can_change() {
        let error = |given| IndexError::IndexNotWritable {
            path: PathBuf::from("/ro/idx"),
            error: std::io::Error::from(std::io::ErrorKind::PermissionDenied),
            index_dir_given: given,
        };
        // HALO_CACHE_DIR is not used when --index-dir is given: no point naming it.
        let given = error(true).to_string();
        assert!(given.starts_with("/ro/idx: "), "{given}");
        assert!(given.contains("give --index-dir a directory you can write to"));
        assert!(!given.contains("HALO_CACHE_DIR"), "{given}");
        let beside = error(false).to_string();
        assert!(
            beside.contains("--index-dir DIR (or set HALO_CACHE_DIR)"),
            "{beside}"
        );
    }
}
