//! Deciding what opening a file's index calls for (reuse it, extend it, build it) and
//! making sure only one process builds a given index at a time.

use std::path::Path;

use halo_ingest::{Fingerprint, SourceFile, SourceKind};

use crate::dataset::{BuildProgress, IndexAction, OpenOptions};
use crate::rollup::TraceSummary;
use crate::sidecar_write::{append, append_gzip, build_fresh};
use crate::store::{segment_paths, IndexMeta, GZIP_CHECKPOINTS};
use crate::IndexError;

const TAIL_BLOCK: u64 = 64 * 1024;

pub(crate) fn prefix_tail_hash(path: &Path, end: u64) -> std::io::Result<u64> {
    let start = end.saturating_sub(TAIL_BLOCK);
    Fingerprint::hash_of_range(path, start, end - start)
}

/// A file's current index, as [`ensure_index`] leaves it.
#[derive(Debug)]
pub(crate) struct Ensured {
    /// The index's meta.
    pub(crate) meta: IndexMeta,
    /// What was done to it.
    pub(crate) action: IndexAction,
    /// The trace rollups of a fresh build, still in memory (`None` when reused or
    /// extended: those are read from the trace tables).
    pub(crate) built_rollups: Option<Vec<TraceSummary>>,
}

impl Ensured {
    fn without_rollups((meta, action): (IndexMeta, IndexAction)) -> Ensured {
        Ensured {
            meta,
            action,
            built_rollups: None,
        }
    }
}

/// Makes sure the index of `source` in `dir` is current; returns its meta and what was done.
///
/// Reusing a current index takes no lock. Building, rebuilding or extending one holds an
/// advisory lock on the source file, so that two processes opening a new dataset at once do
/// not build it twice or swap directories under each other: the second waits, looks again
/// and reuses what the first built.
pub(crate) fn ensure_index(
    source: &SourceFile,
    dir: &Path,
    options: &OpenOptions,
    progress: &dyn BuildProgress,
) -> Result<Ensured, IndexError> {
    let src_io = |e| IndexError::Io {
        path: source.path.clone(),
        error: e,
    };
    let fingerprint = Fingerprint::of(&source.path).map_err(src_io)?;
    if let Plan::Reuse(meta) = plan(source, dir, options, &fingerprint) {
        // What killed builds left beside an index that stays in use would otherwise wait
        // for the next rebuild: abandoned ones go now (one listing per opening).
        crate::cleanup::sweep_old_indexes(dir, Path::new(""), false);
        return Ok(Ensured::without_rollups((meta, IndexAction::Reused)));
    }
    let before_waiting = meta_stamp(dir);
    let lock = BuildLock::of(&source.path, progress);
    // The file may have changed while another process held the lock.
    let fingerprint = if lock.waited {
        Fingerprint::of(&source.path).map_err(src_io)?
    } else {
        fingerprint
    };
    let unforced = OpenOptions {
        force_rebuild: false,
        ..options.clone()
    };
    // A forced rebuild still rebuilds under the lock, unless another process rebuilt this
    // very index while this one waited (its `meta.json` is then new).
    let rebuilt_meanwhile = lock.waited && meta_stamp(dir) != before_waiting;
    let again = if options.force_rebuild && rebuilt_meanwhile {
        plan(source, dir, &unforced, &fingerprint)
    } else {
        plan(source, dir, options, &fingerprint)
    };
    let built_by = |reason: Option<String>| {
        build_fresh(source, dir, fingerprint, options, progress, lock.held()).map(
            |(meta, rollups)| Ensured {
                meta,
                action: match reason {
                    Some(reason) => IndexAction::Rebuilt { reason },
                    None => IndexAction::Built,
                },
                built_rollups: Some(rollups),
            },
        )
    };
    match again {
        Plan::Reuse(meta) => Ok(Ensured::without_rollups((meta, IndexAction::Reused))),
        Plan::Append(meta) => {
            let before = meta.clone();
            let appended = match source.kind {
                SourceKind::Plain => append(source, dir, meta, fingerprint, options, progress),
                SourceKind::Gzip => append_gzip(source, dir, meta, fingerprint, options, progress),
            };
            if appended.is_err() {
                crate::sidecar_write::discard_next_segment(dir, &before);
            }
            appended.map(Ensured::without_rollups)
        }
        Plan::Build(reason) => {
            let built = built_by(reason);
            if built.is_ok() {
                crate::store::remove_legacy_index(&source.path, dir);
            }
            built
        }
    }
}

/// When and how big `meta.json` in `dir` is: it changes whenever the index is written.
fn meta_stamp(dir: &Path) -> Option<(std::time::SystemTime, u64)> {
    let meta = std::fs::metadata(dir.join("meta.json")).ok()?;
    Some((meta.modified().ok()?, meta.len()))
}

/// The most segments a file's index grows to by appends: each is opened and merged on
/// every query, so a log appended to a thousand times would make every overview slow.
/// The append that would pass this rebuilds the index as one segment instead.
pub(crate) const MAX_SEGMENTS: usize = 32;

/// What opening an index calls for.
enum Plan {
    /// The index is current.
    Reuse(IndexMeta),
    /// The file grew and its indexed prefix is unchanged: index only what was appended.
    Append(IndexMeta),
    /// Build from scratch; the reason when an index was there.
    Build(Option<String>),
}

fn plan(source: &SourceFile, dir: &Path, options: &OpenOptions, fingerprint: &Fingerprint) -> Plan {
    let existing = if options.force_rebuild {
        Err("a rebuild was asked for".to_string())
    } else {
        IndexMeta::read(dir)
    };
    let gzip_fault = match (&existing, source.kind) {
        (Ok(meta), SourceKind::Gzip) => gzip_checkpoints_fault(dir, meta, options.verify),
        _ => None,
    };
    // Sizes are checked first (below); checksums only when asked (`halo index`).
    let damage = match &existing {
        Ok(meta) if options.verify && segments_present(dir, meta) => damaged_table(dir, meta),
        _ => None,
    };
    let reason = match existing {
        Ok(meta) if !same_file(&meta.source, &source.path) => {
            format!("the index belongs to {}", meta.source.display())
        }
        // An index read the file the other way (an older halo went by its name, not its
        // magic bytes): nothing in it is right.
        Ok(meta) if meta.source_kind != source.kind => {
            format!(
                "the file was read as {} and is {}",
                kind_name(meta.source_kind),
                kind_name(source.kind)
            )
        }
        Ok(meta) if !segments_present(dir, &meta) => {
            "index files are missing or truncated".to_string()
        }
        Ok(_) if damage.is_some() => damage.unwrap_or_default(),
        Ok(_) if gzip_fault.is_some() => gzip_fault.unwrap_or_default(),
        Ok(_) if dir.join(crate::store::OUT_OF_DATE).exists() => {
            crate::store::out_of_date_reason(dir).unwrap_or_default()
        }
        Ok(meta) if meta.fingerprint.same_as(fingerprint) => return Plan::Reuse(meta),
        Ok(meta)
            if meta.segments.len() >= MAX_SEGMENTS && is_append(source, &meta, fingerprint) =>
        {
            format!(
                "{} appended parts are merged into one (opening many parts is slow)",
                meta.segments.len() + 1
            )
        }
        Ok(meta) if is_append(source, &meta, fingerprint) => return Plan::Append(meta),
        Ok(_) => "the file changed".to_string(),
        Err(e) if dir.join("meta.json").exists() => e,
        Err(_) => return Plan::Build(None),
    };
    Plan::Build(Some(reason))
}

fn kind_name(kind: SourceKind) -> &'static str {
    match kind {
        SourceKind::Plain => "plain text",
        SourceKind::Gzip => "gzip",
    }
}

/// What is wrong with a gzip index's checkpoints, if anything, as far as opening checks:
/// the file is there, has the size the index recorded and covers the inflated length it
/// recorded. Its checksum is checked when it is first read, or now when `verify`: reading
/// it whole at every open would cost ~0.8% of the inflated size each time.
fn gzip_checkpoints_fault(dir: &Path, meta: &IndexMeta, verify: bool) -> Option<String> {
    let path = dir.join(GZIP_CHECKPOINTS);
    let size = std::fs::metadata(&path).map(|m| m.len()).ok();
    if size.is_none() || size != meta.gzip_checkpoints_bytes {
        return Some("the gzip checkpoints are missing or truncated".to_string());
    }
    let inflated_len = match verify {
        true => halo_ingest::GzipCheckpoints::read(&path).map(|c| c.inflated_len()),
        false => halo_ingest::GzipCheckpoints::read_inflated_len(&path),
    };
    match inflated_len {
        Ok(len) if len == meta.data_bytes => None,
        Ok(_) => Some("the gzip checkpoints do not match the index".to_string()),
        Err(e) => Some(format!("the gzip checkpoints are unreadable ({e})")),
    }
}

/// Whether two paths name the same file: the same text, or the same file once resolved
/// (`runs/../x.jsonl` and `x.jsonl`).
fn same_file(a: &Path, b: &Path) -> bool {
    a == b
        || std::fs::canonicalize(a)
            .ok()
            .zip(std::fs::canonicalize(b).ok())
            .is_some_and(|(a, b)| a == b)
}

/// An exclusive advisory lock on a source file, held while its index is built or its
/// inflated copy is made; released when dropped. Where locks are unsupported, the work goes
/// on without one.
pub(crate) struct BuildLock {
    file: Option<std::fs::File>,
    /// Whether another process held the lock first.
    waited: bool,
}

impl BuildLock {
    /// Locks `source`, telling `progress` when another process holds the lock and this one
    /// waits.
    pub(crate) fn of(source: &Path, progress: &dyn BuildProgress) -> BuildLock {
        let Ok(file) = std::fs::File::open(source) else {
            return BuildLock {
                file: None,
                waited: false,
            };
        };
        match file.try_lock() {
            Ok(()) => BuildLock {
                file: Some(file),
                waited: false,
            },
            Err(std::fs::TryLockError::WouldBlock) => {
                progress.waiting_for_other_build(source);
                let locked = loop {
                    match file.lock() {
                        Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                        result => break result.is_ok(),
                    }
                };
                BuildLock {
                    waited: true,
                    file: locked.then_some(file),
                }
            }
            Err(std::fs::TryLockError::Error(_)) => BuildLock {
                file: None,
                waited: false,
            },
        }
    }

    /// Whether the lock is held (not where locks are unsupported): then no other halo
    /// process is building this index or making its copy.
    pub(crate) fn held(&self) -> bool {
        self.file.is_some()
    }
}

/// Which table of the index, if any, no longer has the checksum it was written with
/// (`halo index` checks; see [`crate::file_hash`]).
fn damaged_table(dir: &Path, meta: &IndexMeta) -> Option<String> {
    meta.segments.iter().find_map(|s| {
        let (spans, traces) = segment_paths(dir, &s.name);
        [(spans, s.spans_file_hash), (traces, s.traces_file_hash)]
            .into_iter()
            .find_map(|(path, recorded)| {
                let recorded = recorded?;
                let damaged = crate::file_hash::hash_file(&path).ok() != Some(recorded);
                damaged.then(|| {
                    format!(
                        "{} is damaged (its checksum changed)",
                        path.file_name().unwrap_or_default().to_string_lossy()
                    )
                })
            })
    })
}

fn segments_present(dir: &Path, meta: &IndexMeta) -> bool {
    meta.segments.iter().all(|s| {
        let (a, b) = segment_paths(dir, &s.name);
        let size = |p: &Path| std::fs::metadata(p).map(|m| m.len()).ok();
        size(&a) == Some(s.spans_file_bytes) && size(&b) == Some(s.traces_file_bytes)
    })
}

/// Whether the source only grew since `meta` was written: its start and the end of what
/// was indexed are unchanged. For gzip, what was indexed must have ended the file with a
/// complete member (new members are then indexed on their own).
fn is_append(source: &SourceFile, meta: &IndexMeta, now: &Fingerprint) -> bool {
    let path = &source.path;
    let indexed_end = match source.kind {
        SourceKind::Plain => meta.indexed_bytes,
        SourceKind::Gzip => match meta.gzip_members_end {
            Some(end) if end == meta.fingerprint.size => end,
            _ => return false,
        },
    };
    // A file renamed into place is another file, whatever it starts with.
    if now.size <= meta.fingerprint.size || !meta.fingerprint.same_inode(now) {
        return false;
    }
    let head_len = meta.fingerprint.size.min(TAIL_BLOCK);
    let head_same =
        Fingerprint::hash_of_range(path, 0, head_len).ok() == Some(meta.fingerprint.head_hash);
    head_same
        && prefix_tail_hash(path, indexed_end).ok() == Some(meta.prefix_tail_hash)
        && (source.kind == SourceKind::Gzip || continues_cleanly(path, indexed_end))
}

/// Whether what was appended after `indexed_end` starts a new line. It does when the
/// indexed part ended with a newline; when its last line was indexed without one (it
/// parsed), the appended data must begin with that newline. Anything else continued the
/// line that was indexed, which then has to be read again.
fn continues_cleanly(path: &Path, indexed_end: u64) -> bool {
    if indexed_end == 0 {
        return true;
    }
    let mut around = [0u8; 3];
    let read = (|| {
        use std::io::{Read, Seek, SeekFrom};
        let mut f = std::fs::File::open(path)?;
        f.seek(SeekFrom::Start(indexed_end - 1))?;
        f.read_exact(&mut around[..2])?;
        // A `\r\n` needs its third byte; a short read leaves it zero.
        let _ = f.read(&mut around[2..]);
        Ok::<_, std::io::Error>(())
    })();
    match (read, around) {
        (Err(_), _) => false,
        (Ok(()), [b'\n', _, _]) => true,
        (Ok(()), [_, b'\n', _] | [_, b'\r', b'\n']) => true,
        _ => false,
    }
}
