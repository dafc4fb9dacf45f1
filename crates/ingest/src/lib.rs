//! Dataset sources for halo-rs: which files make a dataset, how to read them, and how to
//! report what is wrong with them.
//!
//! A dataset is any mix of files and directories given on the command line. Directories are
//! walked for trace files (`*.jsonl`, `*.ndjson`, `*.json`, and the same with `.gz`). Plain
//! files are memory-mapped; gzip files are inflated chunk by chunk while they are indexed
//! ([`InflatingChunks`]), which leaves checkpoints ([`GzipCheckpoints`]) from which a
//! decompressed copy is made in parallel when a dataset-wide scan first needs one.
//!
//! Nothing here aborts a dataset because of one bad line: problems are values
//! ([`Problem`]) that name the file, the line and the fault, and callers decide whether
//! `--strict` makes them fatal.

#![deny(missing_docs)]

mod abandoned;
mod checkpoints;
mod chunks;
mod discover;
mod file_identity;
mod fingerprint;
mod gzip;
mod hashing_writer;
mod mapped;
mod problem;
mod zstream;

pub use abandoned::{looks_abandoned, ABANDONED_AFTER};
pub use checkpoints::{
    Checkpoint, CopyError, CopyProgress, GzipCheckpoints, CHECKPOINT_SPACING, WINDOW_BYTES,
};
pub use chunks::{complete_end, split_lines, LineChunk};
pub use discover::{discover, is_index_dir, SourceFile, SourceKind, INDEX_DIR_MARKER};
pub use file_identity::FileIdentity;
pub use fingerprint::Fingerprint;
pub use gzip::{ChunkPool, Inflated, InflatedChunk, InflatingChunks};
pub use hashing_writer::HashingWriter;
pub use mapped::MappedFile;
pub use problem::{IngestError, Problem, ProblemKind};
