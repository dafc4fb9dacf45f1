//! Writing a file's index: a fresh build into a new directory swapped in atomically, or a
//! new segment for what was appended.

use std::path::Path;

use halo_ingest::{Fingerprint, MappedFile, Problem, SourceFile, SourceKind};

use crate::build::{build_from_chunks, build_segment, ChunkInput, SegmentBuild};
use crate::cleanup::{delete_in_background, drop_in_background, sibling, sweep_old_indexes};
use crate::dataset::{accept_unterminated, complete_end, BuildProgress, IndexAction, OpenOptions};
use crate::open_plan::prefix_tail_hash;
use crate::store::{
    segment_paths, IndexMeta, SegmentMeta, FORMAT_VERSION, GZIP_CHECKPOINTS, GZIP_COPY,
};
use crate::trace_columns::traces_to_batch;
use crate::IndexError;

fn write_ipc(path: &Path, batch: &arrow_array::RecordBatch) -> Result<(), IndexError> {
    let arrow = |e: arrow_schema::ArrowError| IndexError::Arrow {
        path: path.to_path_buf(),
        message: e.to_string(),
    };
    let file = std::fs::File::create(path).map_err(|e| IndexError::Io {
        path: path.to_path_buf(),
        error: e,
    })?;
    let mut w =
        arrow_ipc::writer::FileWriter::try_new(std::io::BufWriter::new(file), &batch.schema())
            .map_err(arrow)?;
    w.write(batch).map_err(arrow)?;
    w.finish().map_err(arrow)?;
    Ok(())
}

/// The `meta.json` entry of a freshly built segment.
fn segment_meta(
    name: String,
    built: SegmentBuild,
    bytes: std::ops::Range<u64>,
    first_line: u64,
    (spans_path, traces_path): (&Path, &Path),
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
) -> Result<IndexMeta, IndexError> {
    let tmp = sibling(dir, "tmp");
    let io = |p: &Path| {
        let p = p.to_path_buf();
        move |e| IndexError::Io { path: p, error: e }
    };
    let _ = std::fs::remove_dir_all(&tmp);
    sweep_old_indexes(dir, &tmp, locked);
    std::fs::create_dir_all(&tmp).map_err(io(&tmp))?;
    let name = "seg-0000".to_string();
    let (spans_path, traces_path) = segment_paths(&tmp, &name);
    let (data_path, streamed) = match source.kind {
        SourceKind::Plain => (source.path.clone(), None),
        SourceKind::Gzip => {
            // Inflate and index at once: workers take turns inflating the next chunk and
            // parsing. No inflated copy is written now; checkpoints let a query make one
            // later, in parallel, if it needs random access.
            let mut chunks = halo_ingest::InflatingChunks::open(
                &source.path,
                options.build.chunk_bytes,
                accept_unterminated,
            )?;
            progress.begin(&source.path, "inflating and indexing", fingerprint.size);
            let pool = chunks.pool();
            let built = build_from_chunks(
                &source.path,
                chunks.by_ref().map(|c| ChunkInput {
                    bytes: std::borrow::Cow::Owned(c.bytes),
                    base: c.base,
                    progress: c.compressed_read,
                    recycle: Some(pool.clone()),
                }),
                1,
                &spans_path,
                &|n| progress.advance(n),
            );
            progress.end();
            let fault = chunks
                .fault()
                .map(|f| (f.to_string(), chunks.fault_lost_data()));
            let inflated = chunks.finish();
            let checkpoints = tmp.join(GZIP_CHECKPOINTS);
            inflated
                .checkpoints
                .write(&checkpoints)
                .map_err(io(&checkpoints))?;
            let checkpoints_bytes = std::fs::metadata(&checkpoints)
                .map_err(io(&checkpoints))?
                .len();
            (
                tmp.join(GZIP_COPY),
                Some((
                    built?,
                    fault,
                    inflated.inflated_len,
                    inflated.indexed_end,
                    checkpoints_bytes,
                )),
            )
        }
    };
    // A plain source is mapped and indexed here; a gzip source was indexed while it was
    // inflated.
    let (mut built, end, data_bytes, mapped, checkpoints_bytes) = match streamed {
        Some((mut built, fault, inflated, end, checkpoints_bytes)) => {
            if let Some((fault, lost_data)) = fault {
                // The good prefix is indexed; the fault is reported as a problem, and
                // counted as a skipped line when data was lost.
                built.problem_count += 1;
                built.skipped_lines += u64::from(lost_data);
                built
                    .problems
                    .insert(0, Problem::in_file(&source.path, fault));
            }
            (built, end as usize, inflated, None, Some(checkpoints_bytes))
        }
        None => {
            let mapped = MappedFile::open(&data_path)?;
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
    write_ipc(&traces_path, &traces_to_batch(&built.traces))?;
    // Tens of thousands of rollups free slowly; nothing waits for that.
    drop_in_background(std::mem::take(&mut built.traces));
    let meta = IndexMeta {
        format_version: FORMAT_VERSION,
        source: source.path.clone(),
        source_kind: source.kind,
        fingerprint,
        // Only plain files are appended to; a changed .gz file is indexed again.
        prefix_tail_hash: match source.kind {
            SourceKind::Plain => {
                prefix_tail_hash(&data_path, end as u64).map_err(io(&data_path))?
            }
            SourceKind::Gzip => 0,
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
        )],
        gzip_checkpoints_bytes: checkpoints_bytes,
    };
    // Unmapping a large file takes a while and nothing waits for it.
    if let Some(mapped) = mapped {
        drop_in_background(mapped);
    }
    meta.write(&tmp)?;
    // Swap the finished directory in: move the old one aside first, since a rename cannot
    // replace a non-empty directory.
    let old = sibling(dir, "old");
    if dir.exists() {
        std::fs::rename(dir, &old).map_err(io(dir))?;
    }
    if let Some(parent) = dir.parent() {
        std::fs::create_dir_all(parent).map_err(io(parent))?;
    }
    std::fs::rename(&tmp, dir).map_err(io(dir))?;
    // The old index is out of the way; deleting its files can finish after we return
    // (`finish_cleanup` waits for it before the process exits). If the process dies
    // first, the next build sweeps the remains.
    delete_in_background(old);
    Ok(meta)
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
    let start = meta.indexed_bytes as usize;
    let end = start + complete_end(&data[start..]);
    if end == start {
        meta.fingerprint = fingerprint;
        meta.data_bytes = data.len() as u64;
        meta.write(dir)?;
        return Ok((meta, IndexAction::Appended { bytes: 0 }));
    }
    let name = format!("seg-{:04}", meta.segments.len());
    let (spans_path, traces_path) = segment_paths(dir, &name);
    let first_line = meta.line_count + 1;
    progress.begin(&source.path, "indexing appended", (end - start) as u64);
    let built = build_segment(
        &source.path,
        data,
        start..end,
        first_line,
        &spans_path,
        &options.build,
        &|n| progress.advance(n),
    );
    progress.end();
    let built = built?;
    write_ipc(&traces_path, &traces_to_batch(&built.traces))?;
    let added_lines = built.line_count;
    meta.segments.push(segment_meta(
        name,
        built,
        start as u64..end as u64,
        first_line,
        (&spans_path, &traces_path),
    ));
    meta.fingerprint = fingerprint;
    meta.indexed_bytes = end as u64;
    meta.data_bytes = data.len() as u64;
    meta.line_count += added_lines;
    meta.prefix_tail_hash =
        prefix_tail_hash(&source.path, end as u64).map_err(|e| IndexError::Io {
            path: source.path.clone(),
            error: e,
        })?;
    meta.write(dir)?;
    Ok((
        meta,
        IndexAction::Appended {
            bytes: (end - start) as u64,
        },
    ))
}
