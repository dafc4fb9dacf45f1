//! Building one segment: parse a byte range of a file in parallel chunks, write the span
//! table as it goes, and roll spans up per trace.
//!
//! Memory stays bounded: chunks are parsed a wave at a time (a few per core), each wave's
//! span batches are written to disk before the next is parsed, and only the per-trace
//! rollups (a few hundred bytes a trace plus 4 bytes a span) stay on the heap.

use std::ops::Range;
use std::path::Path;
use std::sync::Arc;

use arrow_array::{ArrayRef, RecordBatch, UInt64Array};
use halo_ingest::{HashingWriter, Problem, ProblemKind};
use halo_trace::{parse_line_checked, SpanFacts};

use crate::rollup::{Interner, TraceAcc, TraceSummary};
use crate::span_columns::{
    span_schema, BatchRoom, LentBatch, SpanBatchBuilder, SpanLocation, SpareBatches,
};
use crate::span_view::SpanColumns;
use crate::IndexError;

/// How many problems a segment keeps word for word; the rest are counted.
pub(crate) const KEPT_PROBLEMS: usize = 200;

/// Tuning for index builds.
#[derive(Debug, Clone)]
pub struct BuildOptions {
    /// Bytes per parse chunk.
    pub chunk_bytes: usize,
}

impl Default for BuildOptions {
    fn default() -> Self {
        BuildOptions {
            // Each chunk costs a batch, a hand-over between threads and, for gzip, a buffer
            // refill: 4 MB chunks indexed the 1 GB `.gz` about 4% faster than 2 MB ones
            // (9 alternating runs each), for about 12 MB more in flight.
            chunk_bytes: 4 << 20,
        }
    }
}

/// What building a segment produced.
#[derive(Debug)]
pub(crate) struct SegmentBuild {
    pub(crate) traces: Vec<TraceSummary>,
    pub(crate) problems: Vec<Problem>,
    pub(crate) problem_count: u64,
    pub(crate) skipped_lines: u64,
    pub(crate) skipped_spans: u64,
    pub(crate) duplicate_span_traces: u64,
    pub(crate) span_count: u64,
    pub(crate) line_count: u64,
    /// Checksum of the span table as written (see [`crate::file_hash`]).
    pub(crate) spans_file_hash: u64,
}

struct ChunkOut {
    batch: RecordBatch,
    /// The builder's vectors that `batch` borrows, to give back once it is written.
    lent: LentBatch,
    problems: Vec<(u64, ProblemKind, String)>,
    skipped_lines: u64,
    skipped_spans: u64,
    lines: u64,
    /// Spans that end before they start.
    reversed: Tally,
    /// Lines of other OTLP signals.
    other_signals: Tally,
}

/// Occurrences of something reported once per file: how many, and the line of the first
/// (relative to its chunk until absorbed).
#[derive(Debug, Default, Clone, Copy)]
struct Tally {
    count: u64,
    first_line: u64,
}

impl Tally {
    fn note(&mut self, line: u64) {
        if self.count == 0 {
            self.first_line = line;
        }
        self.count += 1;
    }

    /// Adds a later chunk's tally, whose lines start after `line_base`.
    fn absorb(&mut self, later: Tally, line_base: u64) {
        if later.count > 0 {
            if self.count == 0 {
                self.first_line = line_base + later.first_line;
            }
            self.count += later.count;
        }
    }
}

/// One chunk of complete lines to parse, borrowed from a mapped file or owned when it was
/// inflated from a stream.
#[derive(Debug)]
pub(crate) struct ChunkInput<'d> {
    /// The lines.
    pub(crate) bytes: std::borrow::Cow<'d, [u8]>,
    /// Where `bytes` start in the (inflated) source.
    pub(crate) base: u64,
    /// The progress to report once this chunk is absorbed.
    pub(crate) progress: u64,
    /// Where an owned buffer goes once parsed, for reuse.
    pub(crate) recycle: Option<halo_ingest::ChunkPool>,
}

/// Parses a chunk of complete lines and hands an owned buffer back to its pool.
fn parse_and_recycle(input: ChunkInput<'_>, spare: &SpareBatches) -> ChunkOut {
    let out = parse_chunk(&input, spare);
    if let (Some(pool), std::borrow::Cow::Owned(bytes)) = (input.recycle, input.bytes) {
        halo_ingest::InflatingChunks::recycle(&pool, bytes);
    }
    out
}

/// Parses a chunk of complete lines; byte offsets come out relative to the source.
fn parse_chunk(input: &ChunkInput<'_>, spare: &SpareBatches) -> ChunkOut {
    let data: &[u8] = &input.bytes;
    let base = input.base;
    let mut builder = SpanBatchBuilder::with_room(&BatchRoom::for_chunk(data.len()), spare);
    let mut problems = Vec::new();
    let mut skipped_lines = 0u64;
    let mut skipped_spans = 0u64;
    let mut line_no = 0u64;
    let mut reversed = Tally::default();
    let mut other_signals = Tally::default();
    let mut pos = 0;
    while pos < data.len() {
        // One pass finds the line's end, clears it of control bytes for the scanner and,
        // for ASCII lines, of the UTF-8 check.
        let halo_trace::Line {
            end,
            text,
            control_free,
        } = halo_trace::next_line(data, pos);
        line_no += 1;
        let raw = &data[pos..end];
        if !raw.iter().all(u8::is_ascii_whitespace) {
            match text {
                Err(e) => {
                    skipped_lines += 1;
                    problems.push((
                        line_no,
                        ProblemKind::SkippedLine,
                        format!(
                            "invalid UTF-8 at byte {} of the line; line skipped",
                            e.valid_up_to()
                        ),
                    ))
                }
                Ok(line) => match parse_line_checked(line, control_free) {
                    Err(e) => {
                        skipped_lines += 1;
                        problems.push((
                            line_no,
                            ProblemKind::SkippedLine,
                            format!("{e}; line skipped"),
                        ))
                    }
                    Ok(mut parsed) => {
                        if parsed.other_signal {
                            other_signals.note(line_no);
                        }
                        for p in std::mem::take(&mut parsed.problems) {
                            skipped_spans += 1;
                            problems.push((
                                line_no,
                                ProblemKind::SkippedSpan,
                                format!("{p}; span skipped"),
                            ));
                        }
                        for (span, within) in &parsed.spans {
                            if span.end_ns < span.start_ns {
                                reversed.note(line_no);
                            }
                            let facts = SpanFacts::extract(span);
                            let at = SpanLocation {
                                line: line_no,
                                byte_offset: base + (pos + within.start) as u64,
                                byte_len: clamp_u32(within.len()),
                                record_offset: base + pos as u64,
                                record_len: clamp_u32(raw.len()),
                            };
                            builder.push(span, &facts, at);
                        }
                        parsed.recycle();
                    }
                },
            }
        }
        pos = end + 1;
    }
    let (batch, lent) = builder.finish();
    BatchRoom::remember(&batch, data.len());
    ChunkOut {
        batch,
        lent,
        problems,
        skipped_lines,
        skipped_spans,
        lines: line_no,
        reversed,
        other_signals,
    }
}

/// Trace rollups in the order they were added, kept in blocks of [`ROLLUP_BLOCK`] that
/// never move once allocated.
#[derive(Default)]
struct RollupBlocks {
    blocks: Vec<Vec<TraceAcc>>,
    len: usize,
}

/// Rollups per block of [`RollupBlocks`].
const ROLLUP_BLOCK: usize = 4096;

impl RollupBlocks {
    /// Adds `acc`; returns its index.
    fn push(&mut self, acc: TraceAcc) -> usize {
        if self.len.is_multiple_of(ROLLUP_BLOCK) {
            self.blocks.push(Vec::with_capacity(ROLLUP_BLOCK));
        }
        self.blocks
            .last_mut()
            .expect("a block was just made")
            .push(acc);
        self.len += 1;
        self.len - 1
    }

    fn get_mut(&mut self, index: usize) -> &mut TraceAcc {
        &mut self.blocks[index / ROLLUP_BLOCK][index % ROLLUP_BLOCK]
    }

    /// The finished summaries, in order, in one vector allocated once and filled by all
    /// cores: its pages are fresh, and faulting them in on one core while the others
    /// idle was most of the time a build spent after its last chunk.
    fn finish(self) -> Vec<TraceSummary> {
        use rayon::prelude::*;
        let len = self.len;
        assert_eq!(self.blocks.len(), len.div_ceil(ROLLUP_BLOCK));
        let mut summaries: Vec<TraceSummary> = Vec::with_capacity(len);
        let slots = &mut summaries.spare_capacity_mut()[..len];
        slots
            .par_chunks_mut(ROLLUP_BLOCK)
            .zip(self.blocks.into_par_iter())
            .for_each(|(slots, block)| {
                assert_eq!(slots.len(), block.len(), "blocks are full but the last");
                for (slot, acc) in slots.iter_mut().zip(block) {
                    slot.write(acc.finish());
                }
            });
        // SAFETY: the first `len` slots were all written just above: every block but the
        // last holds exactly ROLLUP_BLOCK rollups and the last the rest (`push` fills them
        // in order), each lined up with its chunk of slots, whose lengths are asserted.
        unsafe { summaries.set_len(len) };
        summaries
    }
}

/// "1 span", "3 spans".
fn spans_counted(n: u64) -> String {
    format!("{n} span{}", if n == 1 { "" } else { "s" })
}

fn clamp_u32(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

fn shift_lines(batch: RecordBatch, offset: u64) -> RecordBatch {
    if offset == 0 {
        return batch;
    }
    let idx = batch
        .schema()
        .index_of(crate::span_columns::col::LINE)
        .expect("span batches have a line column");
    let lines = SpanColumns::new(&batch)
        .expect("own batches have the span shape")
        .line;
    let shifted: ArrayRef = Arc::new(UInt64Array::from_iter_values(
        lines.values().iter().map(|l| l + offset),
    ));
    let mut columns = batch.columns().to_vec();
    columns[idx] = shifted;
    RecordBatch::try_new(batch.schema(), columns).expect("same schema")
}

/// Indexes `data[range]`, whose first line is line `first_line` of `file`, writing the span
/// table to `spans_path`. `progress` gets the number of bytes done after each chunk.
pub(crate) fn build_segment(
    file: &Path,
    data: &[u8],
    range: Range<usize>,
    first_line: u64,
    spans_path: &Path,
    options: &BuildOptions,
    progress: &(dyn Fn(u64) + Sync),
) -> Result<SegmentBuild, IndexError> {
    let chunks = halo_ingest::split_lines(data, range.clone(), options.chunk_bytes)
        .into_iter()
        .map(|c| ChunkInput {
            bytes: std::borrow::Cow::Borrowed(&data[c.bytes.clone()]),
            base: c.bytes.start as u64,
            progress: (c.bytes.end - range.start) as u64,
            recycle: None,
        });
    build_from_chunks(file, chunks, first_line, spans_path, progress)
}

/// Indexes the chunks `chunks` yields, in order, whose first line is line `first_line` of
/// `file`, writing the span table to `spans_path`.
pub(crate) fn build_from_chunks<'d>(
    file: &Path,
    chunks: impl Iterator<Item = ChunkInput<'d>> + Send,
    first_line: u64,
    spans_path: &Path,
    progress: &(dyn Fn(u64) + Sync),
) -> Result<SegmentBuild, IndexError> {
    let io = |e: std::io::Error| IndexError::Io {
        path: spans_path.to_path_buf(),
        error: e,
    };
    let out = std::io::BufWriter::with_capacity(
        1 << 20,
        HashingWriter::new(std::fs::File::create(spans_path).map_err(io)?),
    );
    let mut writer = arrow_ipc::writer::FileWriter::try_new(out, &span_schema()).map_err(|e| {
        IndexError::Arrow {
            path: spans_path.to_path_buf(),
            message: e.to_string(),
        }
    })?;
    // Rollups in the order their traces first appear, found by id through `slots`, in
    // blocks of a fixed size: a vector of them all grew by doubling, copying every rollup
    // into fresh memory again and again, and collecting them into a new one at the end
    // took 4% of a gzip build's CPU time, on one core while the other idled.
    let mut accs = RollupBlocks::default();
    let mut slots: rustc_hash::FxHashMap<String, usize> = Default::default();
    let mut interner = Interner::default();
    let mut problems = Vec::new();
    let mut problem_count = 0u64;
    let mut skipped_lines = 0u64;
    let mut skipped_spans = 0u64;
    let mut lines_before = 0u64;
    let mut rows_before = 0u64;
    // Spans that end before they start: how many, and the line of the first.
    let mut reversed = Tally::default();
    let mut other_signals = Tally::default();
    // Chunks are absorbed (rollups, IPC write) in order, one at a time, by the worker
    // that finished the one next in line, while the others parse the next ones.
    // Builders come back here once their batch is written, to build later ones.
    let spare = SpareBatches::default();
    let mut absorb = |out: ChunkOut| -> Result<(), IndexError> {
        let line_base = first_line - 1 + lines_before;
        for (line, kind, message) in out.problems {
            problem_count += 1;
            if problems.len() < KEPT_PROBLEMS {
                problems.push(Problem::at_line(kind, file, line_base + line, message));
            }
        }
        reversed.absorb(out.reversed, line_base);
        other_signals.absorb(out.other_signals, line_base);
        lines_before += out.lines;
        skipped_lines += out.skipped_lines;
        skipped_spans += out.skipped_spans;
        if out.batch.num_rows() > 0 {
            let batch = shift_lines(out.batch, line_base);
            let columns = SpanColumns::new(&batch).expect("own batches have the span shape");
            for i in 0..columns.len() {
                let row =
                    u32::try_from(rows_before + i as u64).map_err(|_| IndexError::TooLarge {
                        path: file.to_path_buf(),
                    })?;
                let id = columns.trace_id.value(i);
                let slot = match slots.get(id) {
                    Some(&slot) => slot,
                    None => {
                        let slot = accs.push(TraceAcc::new(id, 0));
                        slots.insert(id.to_string(), slot);
                        slot
                    }
                };
                accs.get_mut(slot).add(&columns, i, row, &mut interner);
            }
            rows_before += columns.len() as u64;
            writer.write(&batch).map_err(|e| IndexError::Arrow {
                path: spans_path.to_path_buf(),
                message: e.to_string(),
            })?;
        }
        // The batch is gone: its vectors can come back.
        spare.give_back(out.lent);
        Ok(())
    };
    let workers = rayon::current_num_threads().max(1);
    crate::ordered::ordered_map(
        chunks,
        workers,
        workers * 4,
        |c| {
            let done = c.progress;
            (parse_and_recycle(c, &spare), done)
        },
        |_, (out, done)| {
            absorb(out)?;
            progress(done);
            Ok::<(), IndexError>(())
        },
    )?;
    let spans_file_hash = writer
        .into_inner()
        .map_err(|e| IndexError::Arrow {
            path: spans_path.to_path_buf(),
            message: e.to_string(),
        })?
        .into_inner()
        .map_err(|e| io(e.into_error()))?
        .digest();
    // Tens of thousands of ids to free: not on the way to the end of the build, while
    // the other cores wait.
    crate::cleanup::drop_in_background(slots);
    // The spare batches' memory is free for the finished rollups that follow.
    drop(spare);
    let summaries = accs.finish();
    let tallied =
        [
            (
                reversed,
                ProblemKind::ReversedTimes,
                format!(
                    "{} {} (the first on this line); kept, with a duration of 0",
                    spans_counted(reversed.count),
                    if reversed.count == 1 {
                        "ends before it starts"
                    } else {
                        "end before they start"
                    }
                ),
            ),
            (
                other_signals,
                ProblemKind::OtherSignals,
                format!(
                "{} line{} OTLP logs or metrics, not spans (the first on this line); passed over",
                other_signals.count,
                if other_signals.count == 1 { " is" } else { "s are" }
            ),
            ),
        ];
    for (tally, kind, message) in tallied {
        if tally.count > 0 {
            problem_count += 1;
            if problems.len() < KEPT_PROBLEMS {
                problems.push(Problem::at_line(kind, file, tally.first_line, message));
            }
        }
    }
    let mut duplicate_span_traces = 0;
    for summary in summaries.iter().filter(|s| s.duplicate_span_count > 0) {
        duplicate_span_traces += 1;
        problem_count += 1;
        if problems.len() < KEPT_PROBLEMS {
            problems.push(Problem::in_file(
                ProblemKind::DuplicateSpanIds,
                file,
                format!(
                    "trace {} has {} duplicate span id(s); all copies kept and counted",
                    summary.trace_id, summary.duplicate_span_count
                ),
            ));
        }
    }
    Ok(SegmentBuild {
        traces: summaries,
        problems,
        problem_count,
        skipped_lines,
        skipped_spans,
        duplicate_span_traces,
        span_count: rows_before,
        line_count: lines_before,
        spans_file_hash,
    })
}
