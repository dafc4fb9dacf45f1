//! Writing a file's index: a fresh build into a new directory swapped in atomically, or a
//! new segment for what was appended.

use std::path::Path;

use halo_ingest::{
    Fingerprint, HashingWriter, MappedFile, Problem, ProblemKind, SourceFile, SourceKind,
};

use crate::build::{build_from_chunks, build_segment, ChunkInput, SegmentBuild};
use crate::cleanup::{delete_in_background, drop_in_background, sibling, sweep_old_indexes};
use crate::dataset::{accept_unterminated, complete_end, BuildProgress, IndexAction, OpenOptions};
use crate::open_plan::prefix_tail_hash;
use crate::rollup::TraceSummary;
use crate::store::{segment_paths, IndexMeta, SegmentMeta, FORMAT_VERSION, GZIP_CHECKPOINTS};
use crate::trace_columns::{trace_schema, traces_to_batch};
use crate::IndexError;

/// Traces per batch of a trace table.
const TRACES_PER_BATCH: usize = 4096;

/// Writes the trace table of `traces` as an Arrow file, a batch per [`TRACES_PER_BATCH`]
/// traces; returns its checksum.
///
/// In batches because a table of all traces at once was tens of megabytes of fresh memory,
/// all of it faulted in (and zeroed by the kernel) after the last chunk was parsed, when
/// nothing else runs. The batches are built on every core and written in order by
/// whichever core finished the next one, while the others build the batches after it:
/// building a round of batches on all cores and then writing them on one left the other
/// cores idle for as long as the writing took.
fn write_trace_table(path: &Path, traces: &[TraceSummary]) -> Result<u64, IndexError> {
    let arrow = |e: arrow_schema::ArrowError| IndexError::Arrow {
        path: path.to_path_buf(),
        message: e.to_string(),
    };
    let io = |e: std::io::Error| IndexError::Io {
        path: path.to_path_buf(),
        error: e,
    };
    let file = std::fs::File::create(path).map_err(io)?;
    let out = std::io::BufWriter::new(HashingWriter::new(file));
    let mut w = arrow_ipc::writer::FileWriter::try_new(out, &trace_schema()).map_err(arrow)?;
    let workers = rayon::current_num_threads().max(1);
    crate::ordered::ordered_map(
        traces.chunks(TRACES_PER_BATCH),
        workers,
        2 * workers,
        traces_to_batch,
        |_, batch| w.write(&batch).map_err(arrow),
    )?;
    let hashing = w
        .into_inner()
        .map_err(arrow)?
        .into_inner()
        .map_err(|e| io(e.into_error()))?;
    Ok(hashing.digest())
}

/// The `meta.json` entry of a freshly built segment.
fn segment_meta(
    name: String,
    built: SegmentBuild,
    bytes: std::ops::Range<u64>,
    first_line: u64,
    (spans_path, traces_path): (&Path, &Path),
    traces_file_hash: u64,
) -> SegmentMeta {
    SegmentMeta {
        name,
        byte_start: bytes.start,
        byte_end: bytes.end,
        first_line,
        line_count: built.line_count,
        span_count: built.span_count,
        trace_count: built.traces.len() as u64,
        skipped_lines: built.skipped_lines,
        skipped_spans: built.skipped_spans,
        duplicate_span_traces: built.duplicate_span_traces,
        problem_count: built.problem_count,
        problems: built.problems,
        spans_file_bytes: file_size(spans_path),
        traces_file_bytes: file_size(traces_path),
        spans_file_hash: Some(built.spans_file_hash),
        traces_file_hash: Some(traces_file_hash),
    }
}

fn file_size(path: &Path) -> u64 {
    std::fs::metadata(path).map(|m| m.len()).unwrap_or(0)
}

pub(crate) fn build_fresh(
    source: &SourceFile,
    dir: &Path,
    fingerprint: Fingerprint,
    options: &OpenOptions,
    progress: &dyn BuildProgress,
    locked: bool,
) -> Result<(IndexMeta, Vec<TraceSummary>), IndexError> {
    let tmp = sibling(dir, "tmp");
    let _ = std::fs::remove_dir_all(&tmp);
    sweep_old_indexes(dir, &tmp, locked);
    let built = build_into(&tmp, source, dir, fingerprint, options, progress);
    if built.is_err() {
        // A build that failed (a full disk, say) must not leave a half-written index as
        // big as the data, keeping the disk full until the next run.
        let _ = std::fs::remove_dir_all(&tmp);
    }
    built
}

/// [`build_fresh`] into the temporary directory `tmp`, then swapped in as `dir`; returns
/// the new index's meta and its trace rollups, which the caller would otherwise read back
/// from the trace table just written.
fn build_into(
    tmp: &Path,
    source: &SourceFile,
    dir: &Path,
    fingerprint: Fingerprint,
    options: &OpenOptions,
    progress: &dyn BuildProgress,
) -> Result<(IndexMeta, Vec<TraceSummary>), IndexError> {
    let io = |p: &Path| {
        let p = p.to_path_buf();
        move |e| IndexError::Io { path: p, error: e }
    };
    std::fs::create_dir_all(tmp).map_err(io(tmp))?;
    let name = "seg-0000".to_string();
    let (spans_path, traces_path) = segment_paths(tmp, &name);
    // A plain source is mapped and indexed; a gzip source is indexed while it is inflated,
    // and leaves checkpoints instead of an inflated copy.
    let (mut built, end, data_bytes, mapped, inflated) = match source.kind {
        SourceKind::Gzip => {
            let indexed = index_gzip(source, 0, 0, 1, &spans_path, options, progress)?;
            let (end, data_bytes) = (indexed.inflated.indexed_end, indexed.inflated.inflated_len);
            let inflated = Some(indexed.inflated);
            (indexed.built, end as usize, data_bytes, None, inflated)
        }
        SourceKind::Plain => {
            let mapped = MappedFile::open(&source.path)?;
            let data = mapped.bytes();
            let end = complete_end(data);
            progress.begin(&source.path, "indexing", end as u64);
            let built = build_segment(
                &source.path,
                data,
                0..end,
                1,
                &spans_path,
                &options.build,
                &|n| progress.advance(n),
            );
            progress.end();
            let data_bytes = data.len() as u64;
            (built?, end, data_bytes, Some(mapped), None)
        }
    };
    // The checkpoints and the trace table are written side by side: both are written
    // after the last chunk, on a machine otherwise idle by then.
    let (traces_hash, gzip) = std::thread::scope(|scope| {
        let checkpoints = inflated.as_ref().map(|inflated| {
            scope.spawn(|| GzipMeta::write(inflated, &tmp.join(GZIP_CHECKPOINTS), &source.path))
        });
        let traces_hash = write_trace_table(&traces_path, &built.traces);
        let gzip = checkpoints
            .map(|h| h.join().expect("writing checkpoints does not panic"))
            .transpose();
        (traces_hash, gzip)
    });
    let (traces_hash, gzip) = (traces_hash?, gzip?);
    let rollups = std::mem::take(&mut built.traces);
    let meta = IndexMeta {
        format_version: FORMAT_VERSION,
        source: source.path.clone(),
        source_kind: source.kind,
        fingerprint,
        // What an append must leave unchanged: the end of the indexed lines, or for gzip
        // the end of the compressed members.
        prefix_tail_hash: match &gzip {
            None => prefix_tail_hash(&source.path, end as u64).map_err(io(&source.path))?,
            Some(g) => g.members_tail_hash,
        },
        indexed_bytes: end as u64,
        data_bytes,
        line_count: built.line_count,
        segments: vec![segment_meta(
            name,
            built,
            0..end as u64,
            1,
            (&spans_path, &traces_path),
            traces_hash,
        )],
        gzip_checkpoints_bytes: gzip.as_ref().map(|g| g.checkpoints_bytes),
        gzip_members_end: gzip.and_then(|g| g.members_end),
    };
    // Unmapping a large file takes a while and nothing waits for it.
    if let Some(mapped) = mapped {
        drop_in_background(mapped);
    }
    meta.write(tmp)?;
    // Swap the finished directory in: move the old one aside first, since a rename cannot
    // replace a non-empty directory.
    let old = sibling(dir, "old");
    if let Ok(found) = std::fs::metadata(dir) {
        // Only an index is moved aside (and later deleted), never a file of the user's.
        if !found.is_dir() {
            return Err(IndexError::Io {
                path: dir.to_path_buf(),
                error: std::io::Error::new(
                    std::io::ErrorKind::AlreadyExists,
                    "a file that is not a halo index is in the way",
                ),
            });
        }
        std::fs::rename(dir, &old).map_err(io(dir))?;
    }
    if let Some(parent) = dir.parent() {
        std::fs::create_dir_all(parent).map_err(io(parent))?;
    }
    std::fs::rename(tmp, dir).map_err(io(dir))?;
    // The old index is out of the way; deleting its files can finish after we return
    // (`finish_cleanup` waits for it before the process exits). If the process dies
    // first, the next build sweeps the remains.
    delete_in_background(old);
    Ok((meta, rollups))
}

pub(crate) fn append(
    source: &SourceFile,
    dir: &Path,
    mut meta: IndexMeta,
    fingerprint: Fingerprint,
    options: &OpenOptions,
    progress: &dyn BuildProgress,
) -> Result<(IndexMeta, IndexAction), IndexError> {
    let mapped = MappedFile::open(&source.path)?;
    let data = mapped.bytes();
    let mut start = meta.indexed_bytes as usize;
    // A last line indexed without its newline (it parsed) gets it now: the newline ends
    // that line, it does not start one (the planner made sure it is there).
    if start > 0 && data[start - 1] != b'\n' {
        start += match &data[start..] {
            [b'\r', b'\n', ..] => 2,
            [b'\n', ..] => 1,
            _ => 0,
        };
    }
    let end = start + complete_end(&data[start..]);
    if end == start {
        if start as u64 != meta.indexed_bytes {
            meta.prefix_tail_hash =
                prefix_tail_hash(&source.path, start as u64).map_err(|e| IndexError::Io {
                    path: source.path.clone(),
                    error: e,
                })?;
            meta.indexed_bytes = start as u64;
        }
        meta.fingerprint = fingerprint;
        meta.data_bytes = data.len() as u64;
        meta.write(dir)?;
        return Ok((meta, IndexAction::Appended { bytes: 0 }));
    }
    let next = NextSegment::of(dir, &meta);
    progress.begin(&source.path, "indexing appended", (end - start) as u64);
    let built = build_segment(
        &source.path,
        data,
        start..end,
        next.first_line,
        &next.spans_path,
        &options.build,
        &|n| progress.advance(n),
    );
    progress.end();
    let tail_hash = prefix_tail_hash(&source.path, end as u64).map_err(|e| IndexError::Io {
        path: source.path.clone(),
        error: e,
    })?;
    next.commit(
        dir,
        meta,
        built?,
        start as u64..end as u64,
        (fingerprint, data.len() as u64, tail_hash),
    )
}

/// The segment an append adds: its name, files and first line.
struct NextSegment {
    name: String,
    spans_path: std::path::PathBuf,
    traces_path: std::path::PathBuf,
    first_line: u64,
}

/// The name of the segment an append to `meta` adds.
fn next_segment_name(meta: &IndexMeta) -> String {
    format!("seg-{:04}", meta.segments.len())
}

/// Deletes what a failed append to `meta` may have written: the next segment's files sit
/// in the live index directory, unreferenced, and can be as big as what was appended
/// (on a full disk they would keep it full).
pub(crate) fn discard_next_segment(dir: &Path, meta: &IndexMeta) {
    let (spans, traces) = segment_paths(dir, &next_segment_name(meta));
    let _ = std::fs::remove_file(spans);
    let _ = std::fs::remove_file(traces);
}

impl NextSegment {
    fn of(dir: &Path, meta: &IndexMeta) -> NextSegment {
        let name = next_segment_name(meta);
        let (spans_path, traces_path) = segment_paths(dir, &name);
        NextSegment {
            name,
            spans_path,
            traces_path,
            first_line: meta.line_count + 1,
        }
    }

    /// Writes the segment's trace table, records it in `meta` (covering `bytes` of the
    /// data) with the source as it is now (`fingerprint`, data length, the hash an append
    /// must find again), and writes `meta.json`.
    fn commit(
        self,
        dir: &Path,
        mut meta: IndexMeta,
        built: SegmentBuild,
        bytes: std::ops::Range<u64>,
        (fingerprint, data_bytes, tail_hash): (Fingerprint, u64, u64),
    ) -> Result<(IndexMeta, IndexAction), IndexError> {
        let traces_hash = write_trace_table(&self.traces_path, &built.traces)?;
        meta.line_count += built.line_count;
        meta.segments.push(segment_meta(
            self.name,
            built,
            bytes.clone(),
            self.first_line,
            (&self.spans_path, &self.traces_path),
            traces_hash,
        ));
        meta.fingerprint = fingerprint;
        meta.indexed_bytes = bytes.end;
        meta.data_bytes = data_bytes;
        meta.prefix_tail_hash = tail_hash;
        meta.write(dir)?;
        let appended = bytes.end - bytes.start;
        Ok((meta, IndexAction::Appended { bytes: appended }))
    }
}

/// A gzip source (or its appended members) indexed while inflated.
struct GzipIndexed {
    built: SegmentBuild,
    inflated: halo_ingest::Inflated,
}

/// Inflates `source` from compressed byte `start` (where a member begins; output counted
/// from `base`, lines from `first_line`) and indexes it into a segment at `spans_path`. A
/// fault keeps the good prefix and becomes a problem, counted as a skipped line when data
/// was lost.
fn index_gzip(
    source: &SourceFile,
    start: u64,
    base: u64,
    first_line: u64,
    spans_path: &Path,
    options: &OpenOptions,
    progress: &dyn BuildProgress,
) -> Result<GzipIndexed, IndexError> {
    let mut chunks = halo_ingest::InflatingChunks::open_at(
        &source.path,
        start,
        base,
        options.build.chunk_bytes,
        accept_unterminated,
    )?;
    let what = if start == 0 {
        "inflating and indexing"
    } else {
        "inflating and indexing appended"
    };
    progress.begin(
        &source.path,
        what,
        file_size(&source.path).saturating_sub(start),
    );
    let pool = chunks.pool();
    let built = build_from_chunks(
        &source.path,
        chunks.by_ref().map(|c| ChunkInput {
            bytes: std::borrow::Cow::Owned(c.bytes),
            base: c.base,
            progress: c.compressed_read - start,
            recycle: Some(pool.clone()),
        }),
        first_line,
        spans_path,
        &|n| progress.advance(n),
    );
    progress.end();
    let fault = chunks
        .fault()
        .map(|f| (f.to_string(), chunks.fault_lost_data()));
    let mut inflated = chunks.finish();
    // Unmapping the compressed file takes milliseconds that nothing needs to wait for.
    drop_in_background(inflated.compressed.take());
    let mut built = built?;
    if let Some((fault, lost_data)) = fault {
        built.problem_count += 1;
        built.skipped_lines += u64::from(lost_data);
        built.problems.insert(
            0,
            Problem::in_file(ProblemKind::GzipFault, &source.path, fault),
        );
    }
    // Lines end where the members end only if the last line was complete.
    if inflated.indexed_end != inflated.inflated_len {
        inflated.members_end = None;
    }
    Ok(GzipIndexed { built, inflated })
}

/// What a gzip index records in `meta.json` beside its checkpoint file.
struct GzipMeta {
    checkpoints_bytes: u64,
    members_end: Option<u64>,
    members_tail_hash: u64,
}

impl GzipMeta {
    /// Writes `inflated`'s checkpoints to `path` and says what `meta.json` must record.
    fn write(
        inflated: &halo_ingest::Inflated,
        path: &Path,
        gz: &Path,
    ) -> Result<GzipMeta, IndexError> {
        let io = |e| IndexError::Io {
            path: path.to_path_buf(),
            error: e,
        };
        inflated.checkpoints.write(path).map_err(io)?;
        let checkpoints_bytes = std::fs::metadata(path).map_err(io)?.len();
        let members_tail_hash = match inflated.members_end {
            Some(end) => prefix_tail_hash(gz, end).map_err(|e| IndexError::Io {
                path: gz.to_path_buf(),
                error: e,
            })?,
            None => 0,
        };
        Ok(GzipMeta {
            checkpoints_bytes,
            members_end: inflated.members_end,
            members_tail_hash,
        })
    }
}

/// Indexes the gzip members appended to `source` since `meta` was written, as a new
/// segment; the checkpoints grow by theirs, and an inflated copy is kept to be extended.
pub(crate) fn append_gzip(
    source: &SourceFile,
    dir: &Path,
    mut meta: IndexMeta,
    fingerprint: Fingerprint,
    options: &OpenOptions,
    progress: &dyn BuildProgress,
) -> Result<(IndexMeta, IndexAction), IndexError> {
    let start = meta.gzip_members_end.unwrap_or(meta.fingerprint.size);
    let next = NextSegment::of(dir, &meta);
    let base = meta.data_bytes;
    let indexed = index_gzip(
        source,
        start,
        base,
        next.first_line,
        &next.spans_path,
        options,
        progress,
    )?;
    let checkpoints_path = dir.join(GZIP_CHECKPOINTS);
    let mut checkpoints =
        halo_ingest::GzipCheckpoints::read(&checkpoints_path).map_err(|message| {
            IndexError::Corrupt {
                path: checkpoints_path.clone(),
                message,
            }
        })?;
    let mut inflated = indexed.inflated;
    checkpoints.extend(std::mem::take(&mut inflated.checkpoints));
    inflated.checkpoints = checkpoints;
    // Written beside, then renamed over: a reader sees the old file or the new one.
    let staged = sibling(&checkpoints_path, "tmp");
    let gzip = GzipMeta::write(&inflated, &staged, &source.path)?;
    std::fs::rename(&staged, &checkpoints_path).map_err(|e| IndexError::Io {
        path: checkpoints_path.clone(),
        error: e,
    })?;
    // The inflated copy, if one was made, stays: it is right for what it covers, and the
    // next scan extends it with the new members only (its length is where this segment
    // starts).
    meta.gzip_checkpoints_bytes = Some(gzip.checkpoints_bytes);
    meta.gzip_members_end = gzip.members_end;
    next.commit(
        dir,
        meta,
        indexed.built,
        base..inflated.indexed_end,
        (fingerprint, inflated.inflated_len, gzip.members_tail_hash),
    )
}
