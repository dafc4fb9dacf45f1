//! The persistent sidecar: where a file's index lives and what its `meta.json` says.
//!
//! Layout of an index directory:
//!
//! ```text
//! traces.jsonl.halo-index/
//!   meta.json              format version, source fingerprint, segments, problems
//!   seg-0000.spans.arrow   span table of segment 0 (Arrow IPC file)
//!   seg-0000.traces.arrow  trace rollups of segment 0 (Arrow IPC file)
//!   gzip.checkpoints       for .gz sources: where inflating can resume (see halo-ingest)
//!   source.jsonl           for .gz sources: the inflated copy, made from the checkpoints
//!                          in parallel when a dataset-wide scan first needs it
//! ```
//!
//! A segment covers a byte range of the source. A first build writes one segment; when the
//! file has grown (and its indexed prefix is unchanged), the appended bytes become a new
//! segment. `meta.json` is replaced atomically (write then rename), after the segment files
//! it names are complete, so a crash leaves either the old index or the new one.

use std::path::{Path, PathBuf};

/// Name of the gzip checkpoint file in an index directory.
pub const GZIP_CHECKPOINTS: &str = "gzip.checkpoints";
/// Name of the inflated copy of a gzip source in an index directory.
pub const GZIP_COPY: &str = "source.jsonl";
/// Name of the marker a read leaves in an index directory when the source no longer holds
/// what the index says, although its fingerprint matched, or an index file turned out
/// damaged: the next open rebuilds. It holds the reason, or nothing for a changed source.
pub const OUT_OF_DATE: &str = "out-of-date";

/// Leaves the [`OUT_OF_DATE`] marker in `index_dir` with `reason` (empty: the source
/// changed unseen); whether it could. An index that cannot be written to stays as it is.
pub(crate) fn mark_out_of_date(index_dir: &Path, reason: &str) -> bool {
    std::fs::write(index_dir.join(OUT_OF_DATE), reason).is_ok()
}

/// Why the index in `dir` is marked out of date, if it is.
pub(crate) fn out_of_date_reason(dir: &Path) -> Option<String> {
    let marker = dir.join(OUT_OF_DATE);
    if !marker.exists() {
        return None;
    }
    let reason = std::fs::read_to_string(marker).unwrap_or_default();
    Some(match reason.trim() {
        "" => "a read found the file changed where its size, time and sampled hashes did not \
               show it (an edit in place, or a damaged inflated copy)"
            .to_string(),
        given => given.to_string(),
    })
}

/// Whether `path` is a file of an index (a table or the gzip checkpoints) rather than a
/// source: it sits beside an index's `meta.json`.
pub(crate) fn is_index_file(path: &Path) -> bool {
    let name = path.file_name().unwrap_or_default().to_string_lossy();
    (name.ends_with(".arrow") || name == GZIP_CHECKPOINTS)
        && path
            .parent()
            .is_some_and(|dir| dir.join("meta.json").is_file())
}

use halo_ingest::{Fingerprint, Problem, SourceKind};
use serde::{Deserialize, Serialize};

use crate::IndexError;

/// The sidecar format version; a different version is rebuilt, never misread. (8: times
/// without a zone are read as UTC instead of skipping their lines; 9: negative token
/// counts and counts past i64 are left out, sums saturate, a NaN cost is no cost; 10:
/// base64 OTLP ids are read as hex, and a first line's byte-order mark is not part of
/// its span's byte range; 11: upper-case OTLP hex ids are read in lower case, an OTLP
/// `intValue` past i64 is kept as text, and OpenLLMetry's request type, flattened
/// messages and declared functions are read; 12: Traceloop's span kinds and entities
/// are read, and an error message that is a Python traceback is its exception; 13:
/// upper-case hex ids of the reference format are read in lower case too; 14: an id of
/// hex letters only after its prefix, `acct_dfcd`, is masked in error groups as
/// `acct_<id>` is.)
pub const FORMAT_VERSION: u32 = 14;

/// One segment's entry in `meta.json`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct SegmentMeta {
    /// File name stem (`seg-0000`).
    pub name: String,
    /// First byte covered.
    pub byte_start: u64,
    /// One past the last byte covered (always the end of a complete line).
    pub byte_end: u64,
    /// Line number of the first line.
    pub first_line: u64,
    /// Lines covered.
    pub line_count: u64,
    /// Spans indexed.
    pub span_count: u64,
    /// Trace parts (a trace that continues from an earlier segment counts again).
    pub trace_count: u64,
    /// Lines skipped as unreadable.
    pub skipped_lines: u64,
    /// Spans skipped inside otherwise good (OTLP) lines.
    pub skipped_spans: u64,
    /// Traces with duplicate span ids.
    pub duplicate_span_traces: u64,
    /// All problems, counted.
    pub problem_count: u64,
    /// The first problems, word for word.
    pub problems: Vec<Problem>,
    /// Size of the span table file, to catch truncation without reading it.
    #[serde(default)]
    pub spans_file_bytes: u64,
    /// Size of the trace table file.
    #[serde(default)]
    pub traces_file_bytes: u64,
    /// Checksum of the span table file (xxh3), checked by `halo index`.
    #[serde(default)]
    pub spans_file_hash: Option<u64>,
    /// Checksum of the trace table file (xxh3), checked by `halo index`.
    #[serde(default)]
    pub traces_file_hash: Option<u64>,
}

/// `meta.json`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct IndexMeta {
    /// [`FORMAT_VERSION`] at write time.
    pub format_version: u32,
    /// The source file.
    pub source: PathBuf,
    /// Plain or gzip.
    pub source_kind: SourceKind,
    /// The source's fingerprint when it was last indexed.
    pub fingerprint: Fingerprint,
    /// Hash of the 64 KiB before `indexed_bytes` (for checking an append).
    pub prefix_tail_hash: u64,
    /// Bytes of the (inflated) data covered by segments.
    pub indexed_bytes: u64,
    /// Size of the (inflated) data when last indexed.
    pub data_bytes: u64,
    /// Lines covered by segments.
    pub line_count: u64,
    /// Segments, in byte order.
    pub segments: Vec<SegmentMeta>,
    /// For a gzip source, the size of its checkpoint file: opening compares sizes only;
    /// the file's checksum is checked when it is first read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gzip_checkpoints_bytes: Option<u64>,
    /// For a gzip source whose last member ended the file cleanly (after a complete line):
    /// where in the file it ended, so that members appended later are indexed on their own.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gzip_members_end: Option<u64>,
}

impl IndexMeta {
    /// Reads `meta.json` from an index directory.
    pub fn read(dir: &Path) -> Result<IndexMeta, String> {
        let path = dir.join("meta.json");
        let text = std::fs::read_to_string(&path)
            .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        let corrupt = |e: serde_json::Error| format!("{} is corrupt: {e}", path.display());
        // The version first: another format's fields may not read as this one's.
        #[derive(Deserialize)]
        struct Version {
            format_version: u32,
        }
        let version: Version = serde_json::from_str(&text).map_err(corrupt)?;
        if version.format_version != FORMAT_VERSION {
            return Err(format!(
                "index format {} is not the current format {FORMAT_VERSION}",
                version.format_version
            ));
        }
        serde_json::from_str(&text).map_err(corrupt)
    }

    /// Writes `meta.json` atomically.
    pub fn write(&self, dir: &Path) -> Result<(), IndexError> {
        let path = dir.join("meta.json");
        let tmp = dir.join(format!("meta.json.tmp-{}", std::process::id()));
        let io = |e| IndexError::Io {
            path: path.clone(),
            error: e,
        };
        let text = serde_json::to_vec_pretty(self).map_err(|e| {
            io(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!("cannot record the index: {e}"),
            ))
        })?;
        let written = std::fs::write(&tmp, text).and_then(|()| std::fs::rename(&tmp, &path));
        if written.is_err() {
            // A full disk leaves a partial file: it is no one's, and would stay.
            let _ = std::fs::remove_file(&tmp);
        }
        written.map_err(io)
    }
}

/// Paths of one segment's files.
pub fn segment_paths(dir: &Path, name: &str) -> (PathBuf, PathBuf) {
    (
        dir.join(format!("{name}.spans.arrow")),
        dir.join(format!("{name}.traces.arrow")),
    )
}

/// Where the index of `source` lives.
///
/// With `index_root` (from `--index-dir`): `ROOT/<file name>-<hash of its path>`. Otherwise
/// beside the source (`traces.jsonl.halo-index`) when that directory is writable, else in
/// the user cache, under `index/<file name>-<hash of its path>` (see `cache_root`).
///
/// The file is found through any symbolic links first: one file reached by several paths
/// (a link to it, a linked directory) has one index, beside the file itself.
pub fn index_dir_for(source: &Path, index_root: Option<&Path>) -> PathBuf {
    let real = std::fs::canonicalize(source);
    let source = real.as_deref().unwrap_or(source);
    if let Some(root) = index_root {
        return root.join(keyed_name(source));
    }
    let beside = source.with_file_name(format!("{}.halo-index", beside_name(source)));
    // A sidecar the user linked to another disk stays there: builds and rebuilds happen
    // where the link leads, and the link is kept (a rebuild renamed the link away and
    // put a real directory in its place).
    if beside.is_symlink() && beside.is_dir() {
        if let Ok(real) = std::fs::canonicalize(&beside) {
            return real;
        }
    }
    if beside.is_dir() || source.parent().is_some_and(dir_is_writable) {
        return beside;
    }
    cached_index_dir_of_real(source)
}

/// Where the index of `source` lives in the user cache: for a source whose directory is
/// read-only, also when an index someone else left beside it is out of date.
pub(crate) fn cached_index_dir(source: &Path) -> PathBuf {
    let real = std::fs::canonicalize(source);
    cached_index_dir_of_real(real.as_deref().unwrap_or(source))
}

/// [`cached_index_dir`] of a path already found through its links.
fn cached_index_dir_of_real(source: &Path) -> PathBuf {
    cache_root().join("index").join(keyed_name(source))
}

fn file_name(source: &Path) -> String {
    source
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "traces".into())
}

/// The longest file name an index directory's name starts with. Names are limited to 255
/// bytes on most file systems, and an index directory also gets `.halo-index`, a hash, and
/// while it is built or replaced `.tmp-<pid>-<n>`: a longer trace file name is cut and
/// told apart by the hash of its path.
const NAME_HEAD_BYTES: usize = 180;

/// All 64 bits: names share a root across every dataset a user indexes (`--index-dir`, the
/// cache), and 32 bits collide by chance among tens of thousands of paths such as
/// `runs/N/traces.jsonl`, after which two files take turns rebuilding one index.
fn path_hash(source: &Path) -> u64 {
    xxhash_rust::xxh3::xxh3_64(source.as_os_str().as_encoded_bytes())
}

/// Deletes (in the background) the index of `source` that an earlier halo named with 32
/// bits of its path's hash beside `dir`, which now has all 64: left alone, every index
/// under `--index-dir` or the cache would stay twice on disk. Only an index whose
/// `meta.json` names `source` goes; one of another file with that name is not ours.
pub(crate) fn remove_legacy_index(source: &Path, dir: &Path) {
    let real = std::fs::canonicalize(source);
    let source = real.as_deref().unwrap_or(source);
    let hash = path_hash(source);
    let Some(name) = dir.file_name().and_then(|n| n.to_str()) else {
        return;
    };
    let Some(stem) = name.strip_suffix(&format!("-{hash:016x}")) else {
        return;
    };
    let legacy = dir.with_file_name(format!("{stem}-{:08x}", hash as u32));
    let ours = IndexMeta::read(&legacy)
        .is_ok_and(|meta| std::fs::canonicalize(&meta.source).is_ok_and(|m| m == source));
    if ours {
        crate::cleanup::delete_in_background(legacy);
    }
}

/// `<file name>-<hash of its path>`: one index per path in a shared root.
fn keyed_name(source: &Path) -> String {
    let name = file_name(source);
    format!(
        "{}-{:016x}",
        halo_trace::head(&name, NAME_HEAD_BYTES),
        path_hash(source)
    )
}

/// The name an index beside its file starts with: the file's own, or for a very long one
/// its head and the hash of its path.
fn beside_name(source: &Path) -> String {
    let name = file_name(source);
    if name.len() <= NAME_HEAD_BYTES {
        return name;
    }
    format!(
        "{}-{:016x}",
        halo_trace::head(&name, NAME_HEAD_BYTES),
        path_hash(source)
    )
}

/// The user cache: `$HALO_CACHE_DIR` as given; else the first of `$XDG_CACHE_HOME/halo`
/// and `~/.cache/halo` that exists or can be made, and is writable; else a private
/// directory in the temporary directory. Accounts such as `nobody` have a home that does
/// not exist (`/nonexistent`), and must still index files in read-only directories.
fn cache_root() -> PathBuf {
    if let Some(dir) = std::env::var_os("HALO_CACHE_DIR") {
        return PathBuf::from(dir);
    }
    let xdg = std::env::var_os("XDG_CACHE_HOME").map(|d| PathBuf::from(d).join("halo"));
    let home = std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache").join("halo"));
    xdg.into_iter()
        .chain(home)
        .find(|dir| std::fs::create_dir_all(dir).is_ok() && dir_is_writable(dir))
        .unwrap_or_else(private_temp_cache)
}

/// A cache directory of this user's own in the shared temporary directory: one name per
/// user, made private (0700), and used only when it is a real directory this user owns
/// that no one else may enter. Another user could have made the name in advance, to read
/// the indexes (and inflated copies) put there, or to change files halo maps; then the
/// next of a few numbered names is tried (the same ones on every run, so that the index
/// made there is found again), and only when all are taken a directory of this process's
/// own.
#[cfg(unix)]
fn private_temp_cache() -> PathBuf {
    use std::os::unix::fs::{DirBuilderExt as _, MetadataExt as _};
    // SAFETY: getuid takes no arguments and cannot fail.
    let uid = unsafe { libc::getuid() };
    let base = std::env::temp_dir();
    let shared = base.join(format!("halo-cache-{uid}"));
    let candidates = std::iter::once(shared)
        .chain((1..=8).map(|n| base.join(format!("halo-cache-{uid}-{n}"))))
        .chain((0..8).map(|n| base.join(format!("halo-cache-{uid}-{}-{n}", std::process::id()))));
    for dir in candidates {
        // Fails harmlessly when the name exists: it is checked below either way.
        let _ = std::fs::DirBuilder::new().mode(0o700).create(&dir);
        let private = std::fs::symlink_metadata(&dir)
            .is_ok_and(|m| m.is_dir() && m.uid() == uid && m.mode() & 0o077 == 0);
        if private {
            return dir;
        }
    }
    // Every name taken by someone else: a path no directory can be made under, so that
    // writing the index fails and says to use --index-dir or HALO_CACHE_DIR, rather than
    // writing where others can read.
    PathBuf::from("/dev/null").join(format!("halo-cache-{uid}"))
}

/// The cache in the temporary directory (no user ids or modes to check here).
#[cfg(not(unix))]
fn private_temp_cache() -> PathBuf {
    std::env::temp_dir().join("halo-cache")
}

fn dir_is_writable(dir: &Path) -> bool {
    // Root passes any write test, so honour the mode bits too: a directory nobody may write
    // to is read-only for halo as well.
    if std::fs::metadata(dir)
        .map(|m| m.permissions().readonly())
        .unwrap_or(true)
    {
        return false;
    }
    let probe = dir.join(format!(".halo-write-probe-{}", std::process::id()));
    match std::fs::File::create(&probe) {
        Ok(_) => {
            let _ = std::fs::remove_file(&probe);
            true
        }
        Err(_) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_whose_32_bit_hashes_collide_get_indexes_of_their_own() {
        // Found by a tester among 131,000 paths of one layout: the low 32 bits of their
        // hashes are the same.
        let root = Path::new("/idx");
        let a = Path::new("/tmp/tB/col/run41917/traces.jsonl");
        let b = Path::new("/tmp/tB/col/run131246/traces.jsonl");
        assert_eq!(path_hash(a) as u32, path_hash(b) as u32);
        assert_ne!(index_dir_for(a, Some(root)), index_dir_for(b, Some(root)));
    }

    #[test]
    fn a_meta_that_cannot_be_put_in_place_leaves_no_temporary_file() {
        let tmp = tempfile::tempdir().unwrap();
        let meta = IndexMeta {
            format_version: FORMAT_VERSION,
            source: tmp.path().join("t.jsonl"),
            source_kind: SourceKind::Plain,
            fingerprint: Fingerprint {
                size: 0,
                mtime_ns: 0,
                head_hash: 0,
                tail_hash: 0,
                inode: 0,
            },
            prefix_tail_hash: 0,
            indexed_bytes: 0,
            data_bytes: 0,
            line_count: 0,
            segments: Vec::new(),
            gzip_checkpoints_bytes: None,
            gzip_members_end: None,
        };
        // A non-empty directory where `meta.json` goes: the rename fails, as on a full or
        // read-only disk the write would.
        std::fs::create_dir_all(tmp.path().join("meta.json/x")).unwrap();
        assert!(meta.write(tmp.path()).is_err());
        let names: Vec<String> = std::fs::read_dir(tmp.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names, ["meta.json"]);
        std::fs::remove_dir_all(tmp.path().join("meta.json")).unwrap();
        meta.write(tmp.path()).unwrap();
        assert_eq!(IndexMeta::read(tmp.path()).unwrap(), meta);
    }

    #[test]
    fn a_very_long_file_name_gets_an_index_name_the_file_system_takes() {
        let tmp = tempfile::tempdir().unwrap();
        let long = format!("{}.jsonl", "é".repeat(120));
        let source = tmp.path().join(&long);
        for dir in [
            index_dir_for(&source, None),
            index_dir_for(&source, Some(tmp.path())),
        ] {
            let name = dir.file_name().unwrap().to_str().unwrap().to_owned();
            assert!(name.len() <= 220, "{} bytes", name.len());
            std::fs::create_dir(&dir).unwrap();
            std::fs::create_dir(crate::cleanup::sibling(&dir, "tmp")).unwrap();
        }
        let short = tmp.path().join("a.jsonl");
        assert_eq!(
            index_dir_for(&short, None).file_name().unwrap(),
            "a.jsonl.halo-index"
        );
    }

    #[cfg(unix)]
    #[test]
    fn a_file_reached_through_links_has_the_one_index_of_the_file() {
        let tmp = tempfile::tempdir().unwrap();
        let real_dir = tmp.path().join("real");
        std::fs::create_dir(&real_dir).unwrap();
        let file = real_dir.join("t.jsonl");
        std::fs::write(&file, "").unwrap();
        let link = tmp.path().join("link.jsonl");
        std::os::unix::fs::symlink(&file, &link).unwrap();
        let linked_dir = tmp.path().join("rdir");
        std::os::unix::fs::symlink(&real_dir, &linked_dir).unwrap();
        let via_dir = linked_dir.join("t.jsonl");
        let root = tmp.path().join("idx");
        for index_root in [None, Some(root.as_path())] {
            let own = index_dir_for(&file, index_root);
            assert_eq!(index_dir_for(&link, index_root), own);
            assert_eq!(index_dir_for(&via_dir, index_root), own);
        }
        assert_eq!(
            index_dir_for(&link, None),
            std::fs::canonicalize(&real_dir)
                .unwrap()
                .join("t.jsonl.halo-index")
        );
    }
}
