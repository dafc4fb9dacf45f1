//! A dataset: several files indexed and merged into one set of traces.

use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};
use std::time::Instant;

use halo_ingest::{
    discover, CopyProgress, Fingerprint, MappedFile, Problem, ProblemKind, SourceFile, SourceKind,
};
use serde::Serialize;

use crate::build::BuildOptions;
use crate::gzip_access::{GzipAccess, GzipRead, GzipReadError};
use crate::open_plan::{ensure_index, Ensured};
use crate::rollup::{id_hashes, merge_summary, tree_counts, Interner, TraceSummary};
use crate::span_table::SpanTable;
use crate::span_view::SpanColumns;
use crate::store::{
    cached_index_dir, index_dir_for, segment_paths, SegmentMeta, GZIP_CHECKPOINTS, GZIP_COPY,
};
use crate::trace_columns::traces_from_batch;
use crate::trace_ids::TraceIds;
use crate::IndexError;
use halo_ingest::FileIdentity;

/// How to open a dataset.
#[derive(Debug, Clone, Default)]
pub struct OpenOptions {
    /// Root directory for indexes (`--index-dir`); default: beside each file.
    pub index_dir: Option<PathBuf>,
    /// Fail on the first unreadable line or file instead of skipping it.
    pub strict: bool,
    /// Rebuild every index even when it is current.
    pub force_rebuild: bool,
    /// Check every checksum of a reused index while opening (what `halo index` does), so
    /// that a damaged part is rebuilt now rather than found by a later query.
    pub verify: bool,
    /// Build tuning.
    pub build: BuildOptions,
    /// Where a gzip source's inflated copy goes for one process's scans when it cannot be
    /// kept beside the index (a read-only or full index directory); default: the system's
    /// temporary directory (`TMPDIR`).
    pub temporary_dir: Option<PathBuf>,
}

/// What was done to a file's index.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum IndexAction {
    /// The index was current and loaded as is.
    Reused,
    /// There was no index; one was built.
    Built,
    /// The file had grown; only the appended bytes were indexed.
    Appended {
        /// Bytes indexed now.
        bytes: u64,
    },
    /// The index was out of date or unreadable and was rebuilt.
    Rebuilt {
        /// Why.
        reason: String,
    },
}

/// What opening did with one file.
#[derive(Debug, Clone, Serialize)]
pub struct FileReport {
    /// The source file.
    pub path: PathBuf,
    /// Its index directory.
    pub index_dir: PathBuf,
    /// Plain or gzip.
    pub gzip: bool,
    /// What was done.
    #[serde(flatten)]
    pub action: IndexAction,
    /// Size of the (inflated) data; for gzip, the compressed size is `fingerprint.size`.
    pub data_bytes: u64,
    /// Bytes of the files in the index directory (apparent sizes), the inflated copy of a
    /// gzip source included.
    pub index_bytes: u64,
    /// Size of the inflated copy of a gzip source, 0 until a scan has made it.
    pub inflated_copy_bytes: u64,
    /// Bytes covered by the index (the rest is an incomplete last line).
    pub indexed_bytes: u64,
    /// Lines covered.
    pub lines: u64,
    /// Spans indexed.
    pub spans: u64,
    /// Traces with spans in this file.
    pub traces: u64,
    /// Lines skipped as unreadable.
    pub skipped_lines: u64,
    /// Spans skipped inside readable lines.
    pub skipped_spans: u64,
    /// Traces with duplicate span ids.
    pub duplicate_span_traces: u64,
    /// Time spent on this file, in milliseconds.
    pub elapsed_ms: f64,
    /// Size, mtime and content hashes of the source when it was indexed.
    pub fingerprint: Fingerprint,
}

/// The `what` of [`BuildProgress::begin`] while a gzip source's inflated copy is made.
pub const MAKING_INFLATED_COPY: &str = "inflating a copy of";

/// The `what` of [`BuildProgress::begin`] while an inflated copy is extended with the
/// members appended to its `.gz` since it was made.
pub const EXTENDING_INFLATED_COPY: &str = "extending the inflated copy of";

/// The `what` of [`BuildProgress::begin`] while a temporary inflated copy is made.
pub const MAKING_TEMPORARY_COPY: &str = "inflating a temporary copy of";

/// Receives progress while indexes are built.
pub trait BuildProgress: Sync {
    /// Work on `file` begins: `what` (`indexing`, `inflating`) over `total` bytes.
    fn begin(&self, file: &Path, what: &str, total: u64);
    /// `done` bytes of the current work are finished.
    fn advance(&self, done: u64);
    /// The current work is finished.
    fn end(&self);
    /// Another process is building the index of `file`; this one waits for it, then reuses
    /// what it built.
    fn waiting_for_other_build(&self, _file: &Path) {}
    /// The inflated copy of gzip source `file` cannot be kept beside its index (`why`), so
    /// a temporary one is made in `dir` for this process's scans.
    fn using_temporary_copy(&self, _file: &Path, _why: &str, _dir: &Path) {}
}

/// Why `source` itself could not be read, when that is what `error` says: a file deleted
/// or locked between the directory walk and its indexing (rotated logs) is skipped with a
/// warning, as an unreadable file found by the walk is, rather than failing the dataset.
fn unreadable_source<'e>(error: &'e IndexError, source: &Path) -> Option<&'e std::io::Error> {
    match error {
        IndexError::Io { path, error }
        | IndexError::Ingest(halo_ingest::IngestError::Io { path, error })
            if path == source =>
        {
            Some(error)
        }
        _ => None,
    }
}

/// Progress that goes nowhere.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoProgress;

impl BuildProgress for NoProgress {
    fn begin(&self, _: &Path, _: &str, _: u64) {}
    fn advance(&self, _: u64) {}
    fn end(&self) {}
}

/// Bytes of a source, borrowed from its memory map or from an inflated stretch of a gzip
/// file; see [`Dataset::source_bytes`].
#[derive(Debug, Clone)]
pub enum SourceBytes {
    /// A range of a mapped file.
    Mapped(Arc<MappedFile>, std::ops::Range<usize>),
    /// A range of a stretch inflated from a gzip checkpoint.
    Inflated(Arc<Vec<u8>>, std::ops::Range<usize>),
}

impl std::ops::Deref for SourceBytes {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        match self {
            SourceBytes::Mapped(map, r) => &map.bytes()[r.clone()],
            SourceBytes::Inflated(bytes, r) => &bytes[r.clone()],
        }
    }
}

#[derive(Debug)]
struct FileEntry {
    source: SourceFile,
    data_path: PathBuf,
    /// For a gzip source: reads through its checkpoints, from which `data_path` is also made
    /// when a query needs the whole inflated stream.
    gzip: Option<GzipAccess>,
    /// The mapped data, once had.
    data: std::sync::Mutex<Option<Arc<MappedFile>>>,
    /// Where segments after the first start: an inflated copy of exactly that length was
    /// made before the `.gz` grew by whole members, and only needs extending.
    copy_prefixes: Vec<u64>,
    /// The source file the index was checked against when the dataset opened.
    source_identity: Option<FileIdentity>,
}

#[derive(Debug)]
struct Segment {
    file: usize,
    meta: SegmentMeta,
    spans_path: PathBuf,
    /// The span table file of the index the dataset opened (it is read on first use).
    spans_identity: Option<FileIdentity>,
    spans: OnceLock<Result<Arc<SpanTable>, SpanTableFailure>>,
}

/// Why a span table would not load, kept for every later use of the segment.
#[derive(Debug, Clone)]
enum SpanTableFailure {
    /// The file was replaced while being read.
    Replaced,
    /// It opened and would not read; `marked` when its index was marked out of date then.
    Damaged { message: String, marked: bool },
    /// It could not be opened or mapped (no damage: the index is left as it is).
    Unreadable(std::io::ErrorKind, String),
}

/// Location of one segment's data, for dataset-wide scans.
#[derive(Debug, Clone)]
pub struct SegmentInfo {
    /// Segment index.
    pub segment: u32,
    /// The source file (as the user knows it).
    pub source: PathBuf,
    /// Byte range of the data it covers.
    pub bytes: std::ops::Range<u64>,
    /// First line number.
    pub first_line: u64,
}

/// Indexed traces from one or more files, merged by trace id.
#[derive(Debug)]
pub struct Dataset {
    files: Vec<FileEntry>,
    segments: Vec<Segment>,
    traces: Vec<TraceSummary>,
    /// Built on the first lookup by id, or while merging traces that span segments:
    /// `halo index` and most queries never look a trace up by id.
    by_id: OnceLock<TraceIds>,
    reports: Vec<FileReport>,
    problems: Vec<Problem>,
    problem_count: u64,
    /// See [`OpenOptions::temporary_dir`].
    temporary_dir: PathBuf,
    /// Where a gzip copy that span reads ask for is reported; see
    /// [`Dataset::report_copies_to`].
    copy_progress: OnceLock<CopyReporter>,
}

/// A progress sink kept by a dataset.
struct CopyReporter(Arc<dyn BuildProgress + Send + Sync>);

impl std::fmt::Debug for CopyReporter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CopyReporter")
    }
}

impl Dataset {
    /// Opens the dataset made of `paths` (files and directories), building or updating
    /// indexes as needed.
    pub fn open(
        paths: &[PathBuf],
        options: &OpenOptions,
        progress: &dyn BuildProgress,
    ) -> Result<Dataset, IndexError> {
        // An index file that passed the size checks and turned out damaged when read at
        // open (a trace table): marked, so that opening again rebuilds that index. Marked
        // already (by another process that found it first), it is opened again all the
        // same: that process's build is waited for. Each index is tried again once, so
        // this ends.
        let mut tried_again = std::collections::HashSet::new();
        loop {
            match Dataset::open_once(paths, options, progress) {
                Err(IndexError::Corrupt { path, message })
                    if crate::store::is_index_file(&path)
                        && tried_again.insert(path.parent().map(Path::to_path_buf))
                        && path.parent().is_some_and(|d| {
                            crate::store::out_of_date_reason(d).is_some()
                                || mark_damaged(&path, &message)
                        }) => {}
                other => return other,
            }
        }
    }

    fn open_once(
        paths: &[PathBuf],
        options: &OpenOptions,
        progress: &dyn BuildProgress,
    ) -> Result<Dataset, IndexError> {
        crate::cleanup::new_opening();
        let (sources, mut problems) = discover(paths)?;
        if options.strict {
            if let Some(p) = problems.first() {
                return Err(IndexError::Strict {
                    count: problems.len() as u64,
                    first: p.clone(),
                });
            }
        }
        let mut problem_count = problems.len() as u64;
        let mut files = Vec::new();
        let mut segments = Vec::new();
        let mut reports = Vec::new();
        let mut metas = Vec::new();
        // Per file kept: the rollups of a fresh build, which need no reading back.
        let mut built_rollups = Vec::new();
        for source in sources {
            let started = Instant::now();
            let mut dir = index_dir_for(&source.path, options.index_dir.as_deref());
            // Something else (a file of the user's) has the sidecar's name: it is left
            // alone, and the index goes to the cache, as for a read-only directory.
            if options.index_dir.is_none() && std::fs::metadata(&dir).is_ok_and(|m| !m.is_dir()) {
                dir = cached_index_dir(&source.path);
            }
            // Before the index is checked or built from it: a file rotated in under the
            // name while a long build read the old one must not pass for it later.
            let source_identity = FileIdentity::of(&source.path);
            let mut ensured = ensure_index(&source, &dir, options, progress);
            // An index beside the file that is out of date, in a directory this user
            // cannot write: build one in the user cache instead, as for a new file.
            if options.index_dir.is_none() && cannot_write(&ensured, &source.path) {
                let cached = cached_index_dir(&source.path);
                if cached != dir {
                    dir = cached;
                    ensured = ensure_index(&source, &dir, options, progress);
                }
            }
            if cannot_write(&ensured, &source.path) {
                if let Err(IndexError::Io { path, error }) = ensured {
                    return Err(IndexError::IndexNotWritable {
                        path,
                        error,
                        index_dir_given: options.index_dir.is_some(),
                    });
                }
            }
            let outcome = match ensured {
                Ok(o) => o,
                Err(e) => match unreadable_source(&e, &source.path) {
                    Some(why) if !options.strict => {
                        problem_count += 1;
                        problems.push(Problem::in_file(
                            ProblemKind::Unreadable,
                            &source.path,
                            format!("file skipped: {why}"),
                        ));
                        continue;
                    }
                    _ => return Err(e),
                },
            };
            let Ensured {
                meta,
                action,
                built_rollups: rollups,
            } = outcome;
            let file_index = files.len();
            let (data_path, gzip) = match source.kind {
                SourceKind::Plain => (source.path.clone(), None),
                SourceKind::Gzip => (
                    dir.join(GZIP_COPY),
                    Some(GzipAccess::new(
                        source.path.clone(),
                        dir.join(GZIP_CHECKPOINTS),
                        meta.data_bytes,
                        meta.fingerprint,
                    )),
                ),
            };
            let mut report = FileReport {
                path: source.path.clone(),
                index_dir: dir.clone(),
                gzip: source.kind == SourceKind::Gzip,
                action,
                data_bytes: meta.data_bytes,
                index_bytes: dir_bytes(&dir),
                inflated_copy_bytes: match source.kind {
                    SourceKind::Plain => 0,
                    SourceKind::Gzip => {
                        std::fs::metadata(dir.join(GZIP_COPY)).map_or(0, |m| m.len())
                    }
                },
                indexed_bytes: meta.indexed_bytes,
                lines: meta.line_count,
                spans: 0,
                traces: 0,
                skipped_lines: 0,
                skipped_spans: 0,
                duplicate_span_traces: 0,
                elapsed_ms: 0.0,
                fingerprint: meta.fingerprint,
            };
            for seg in &meta.segments {
                report.spans += seg.span_count;
                report.skipped_lines += seg.skipped_lines;
                report.skipped_spans += seg.skipped_spans;
                report.duplicate_span_traces += seg.duplicate_span_traces;
                problem_count += seg.problem_count;
                problems.extend(seg.problems.iter().cloned());
                let (spans_path, _) = segment_paths(&dir, &seg.name);
                segments.push(Segment {
                    file: file_index,
                    meta: seg.clone(),
                    spans_identity: FileIdentity::of(&spans_path),
                    spans_path,
                    spans: OnceLock::new(),
                });
            }
            // A corrupt stream's last inflated line is cut off by the damage: no member
            // appended later will complete it.
            let corrupt_gzip = problems.iter().any(|p| {
                p.file == source.path
                    && p.kind == ProblemKind::GzipFault
                    && !halo_ingest::InflatingChunks::fault_is_truncation(&p.message)
            });
            if meta.indexed_bytes < meta.data_bytes {
                problem_count += 1;
                problems.push(Problem::at_line(
                    ProblemKind::IncompleteLastLine,
                    &source.path,
                    meta.line_count + 1,
                    if corrupt_gzip {
                        format!(
                            "last line is cut off by the corrupt gzip stream ({} bytes, no newline); not indexed",
                            meta.data_bytes - meta.indexed_bytes
                        )
                    } else if source.kind == SourceKind::Gzip {
                        format!(
                            "last line is incomplete ({} bytes, no newline, not valid JSON); not indexed (if gzip members appended later complete it, the file is indexed again)",
                            meta.data_bytes - meta.indexed_bytes
                        )
                    } else {
                        format!(
                            "last line is incomplete ({} bytes, no newline, not valid JSON); not indexed until it is completed",
                            meta.data_bytes - meta.indexed_bytes
                        )
                    },
                ));
            }
            // A gzip fault is fatal under --strict even when it cost no line, like non-gzip
            // bytes after the last member.
            let this_file = |p: &&Problem| p.file == source.path;
            let gzip_fault = problems
                .iter()
                .filter(this_file)
                .any(|p| p.kind == ProblemKind::GzipFault);
            if options.strict
                && (report.skipped_lines > 0 || report.skipped_spans > 0 || gzip_fault)
            {
                // A gzip fault comes first (it is listed first): it is why the lines after
                // it are missing.
                let first = problems
                    .iter()
                    .filter(this_file)
                    .find(|p| p.kind.loses_data())
                    .cloned();
                return Err(IndexError::Strict {
                    // A gzip fault may have cost no line, yet it is one problem.
                    count: (report.skipped_lines + report.skipped_spans).max(1),
                    first: first.unwrap_or_else(|| {
                        Problem::in_file(ProblemKind::SkippedLine, &source.path, "unreadable lines")
                    }),
                });
            }
            report.elapsed_ms = started.elapsed().as_secs_f64() * 1e3;
            reports.push(report);
            metas.push(dir);
            built_rollups.push(rollups);
            let copy_prefixes = meta
                .segments
                .iter()
                .map(|seg| seg.byte_start)
                .filter(|&start| start > 0)
                .collect();
            files.push(FileEntry {
                source_identity,
                source,
                data_path,
                gzip,
                data: std::sync::Mutex::new(None),
                copy_prefixes,
            });
        }
        if files.is_empty() {
            return Err(IndexError::NoData(problems.first().map(|p| p.to_string())));
        }
        let mut dataset = Dataset {
            files,
            segments,
            traces: Vec::new(),
            by_id: Default::default(),
            reports,
            problems,
            problem_count,
            // An empty TMPDIR means the current directory, and says so in messages.
            temporary_dir: Some(
                options
                    .temporary_dir
                    .clone()
                    .unwrap_or_else(std::env::temp_dir),
            )
            .filter(|d| !d.as_os_str().is_empty())
            .unwrap_or_else(|| PathBuf::from(".")),
            copy_progress: OnceLock::new(),
        };
        dataset.load_rollups(&metas, built_rollups)?;
        Ok(dataset)
    }

    /// Loads the trace rollups of every segment, merging traces that span segments; a
    /// file's `built` rollups (a fresh build's, of its one segment) are taken as they are
    /// instead of being read back from the trace table just written.
    fn load_rollups(
        &mut self,
        dirs: &[PathBuf],
        mut built: Vec<Option<Vec<TraceSummary>>>,
    ) -> Result<(), IndexError> {
        let mut interner = Interner::default();
        let mut merged = Vec::new();
        for (s, seg) in self.segments.iter().enumerate() {
            let parts = match built[seg.file].take() {
                Some(mut summaries) => {
                    for t in &mut summaries {
                        for part in &mut t.parts {
                            part.segment = s as u32;
                        }
                    }
                    vec![summaries]
                }
                None => {
                    let (_, traces_path) = segment_paths(&dirs[seg.file], &seg.meta.name);
                    crate::ipc_file::read_batches(&traces_path)?
                        .iter()
                        .map(|batch| {
                            traces_from_batch(batch, s as u32, &mut interner).map_err(|e| {
                                IndexError::Corrupt {
                                    path: traces_path.clone(),
                                    message: e.0,
                                }
                            })
                        })
                        .collect::<Result<Vec<_>, _>>()?
                }
            };
            // Room is made for a segment's rollups at once, and the first part of the
            // first segment is taken whole: pushing tens of thousands of rollups one by
            // one grew the vector by doubling, each time into fresh memory the kernel
            // had to zero.
            let mut incoming: usize = parts.iter().map(Vec::len).sum();
            let mut parts = parts.into_iter();
            if self.traces.is_empty() {
                if let Some(first) = parts.next() {
                    incoming -= first.len();
                    self.traces = first;
                }
            }
            if incoming == 0 {
                continue;
            }
            self.traces.reserve(incoming);
            if self.by_id.get().is_none() {
                let mut ids = TraceIds::of(&self.traces);
                ids.reserve(incoming);
                let _ = self.by_id.set(ids);
            }
            let by_id = self.by_id.get_mut().expect("just built");
            for summaries in parts {
                for t in summaries {
                    match by_id.find(&t.trace_id, &self.traces) {
                        Some(i) => {
                            merge_summary(&mut self.traces[i as usize], t);
                            merged.push(i);
                        }
                        None => {
                            by_id.insert_new(&t.trace_id, self.traces.len() as u32);
                            self.traces.push(t);
                        }
                    }
                }
            }
        }
        // Traces per file: a trace with spans in two segments of one file counts once.
        for t in &self.traces {
            if let [part] = t.parts.as_slice() {
                self.reports[self.segments[part.segment as usize].file].traces += 1;
                continue;
            }
            let mut files: Vec<usize> = t
                .parts
                .iter()
                .map(|p| self.segments[p.segment as usize].file)
                .collect();
            files.sort_unstable();
            files.dedup();
            for f in files {
                self.reports[f].traces += 1;
            }
        }
        merged.sort_unstable();
        merged.dedup();
        let mut repeated = Vec::new();
        for i in merged {
            let within_parts = self.traces[i as usize].duplicate_span_count;
            self.recount_tree(i as usize)?;
            let now = self.traces[i as usize].duplicate_span_count;
            if now > within_parts {
                repeated.push((i as usize, now - within_parts));
            }
        }
        self.warn_repeated_across_parts(&repeated);
        Ok(())
    }

    /// Warns about span ids that repeat across files (or appended segments of one file):
    /// the same spans given twice, most often. Each part's own duplicates were warned
    /// about when it was indexed.
    fn warn_repeated_across_parts(&mut self, repeated: &[(usize, u32)]) {
        const NAMED: usize = 5;
        for &(i, n) in repeated.iter().take(NAMED) {
            let t = &self.traces[i];
            let mut files: Vec<&Path> = t
                .parts
                .iter()
                .map(|p| {
                    self.files[self.segments[p.segment as usize].file]
                        .source
                        .path
                        .as_path()
                })
                .collect();
            let mut seen = std::collections::HashSet::new();
            files.retain(|f| seen.insert(*f));
            // A trace spread over hundreds of files names a few of them, not all: one
            // warning stays one readable line.
            const FILES_NAMED: usize = 3;
            let names: Vec<String> = files
                .iter()
                .take(FILES_NAMED)
                .map(|f| f.display().to_string())
                .collect();
            let place = match (names.as_slice(), files.len()) {
                ([one], 1) => {
                    format!("in {one}, between data indexed at different times (appended)")
                }
                (named, n) if n > FILES_NAMED => format!(
                    "across {n} files ({} and {} more)",
                    named.join(", "),
                    n - FILES_NAMED
                ),
                (named, _) => format!("across {}", named.join(" and ")),
            };
            self.problems.push(Problem::in_file(
                ProblemKind::DuplicateSpanIds,
                files[0],
                format!(
                    "trace {} has {n} span id(s) that repeat {place}; all copies kept and counted (the same spans given twice?)",
                    t.trace_id,
                ),
            ));
        }
        if repeated.len() > NAMED {
            let first = self.traces[repeated[0].0].parts[0].segment;
            let file = self.files[self.segments[first as usize].file]
                .source
                .path
                .clone();
            self.problems.push(Problem::in_file(
                ProblemKind::DuplicateSpanIds,
                file,
                format!(
                    "{} more traces have span ids that repeat across files",
                    repeated.len() - NAMED
                ),
            ));
        }
        self.problem_count += repeated.len() as u64;
    }

    /// Recounts duplicates and missing parents of a trace whose spans span segments.
    fn recount_tree(&mut self, i: usize) -> Result<(), IndexError> {
        let mut ids = Vec::new();
        let mut parents = Vec::new();
        for part in self.traces[i].parts.clone() {
            let table = self.span_table(part.segment)?;
            for row in part.rows {
                if let Some((batch, r)) = table.locate(row) {
                    let c = SpanColumns::new(batch).expect("checked at load");
                    let (id, parent) = id_hashes(&c, r);
                    ids.push(id);
                    parents.extend(parent);
                }
            }
        }
        let (dups, missing) = tree_counts(&mut ids, &parents);
        self.traces[i].duplicate_span_count = dups;
        self.traces[i].missing_parent_count = missing;
        Ok(())
    }

    /// Every trace, in order of first appearance.
    pub fn traces(&self) -> &[TraceSummary] {
        &self.traces
    }

    /// A trace by id.
    pub fn trace(&self, trace_id: &str) -> Option<&TraceSummary> {
        self.by_id
            .get_or_init(|| TraceIds::of(&self.traces))
            .find(trace_id, &self.traces)
            .map(|i| &self.traces[i as usize])
    }

    /// What opening did with each file.
    pub fn reports(&self) -> &[FileReport] {
        &self.reports
    }

    /// The problems found (the first ones of each file, word for word).
    pub fn problems(&self) -> &[Problem] {
        &self.problems
    }

    /// All problems, counted.
    pub fn problem_count(&self) -> u64 {
        self.problem_count
    }

    /// Lines skipped over all files.
    pub fn skipped_lines(&self) -> u64 {
        self.reports.iter().map(|r| r.skipped_lines).sum()
    }

    /// Spans over all files.
    pub fn span_count(&self) -> u64 {
        self.reports.iter().map(|r| r.spans).sum()
    }

    /// The source files, in dataset order.
    pub fn sources(&self) -> impl Iterator<Item = &Path> {
        self.files.iter().map(|f| f.source.path.as_path())
    }

    /// A combined fingerprint of every source, for checkpoints that must not be resumed on
    /// other data.
    pub fn fingerprint(&self) -> String {
        let mut text = String::new();
        for (f, r) in self.files.iter().zip(&self.reports) {
            text.push_str(&format!(
                "{}:{}:{}:{:x}:{:x};",
                f.source.path.display(),
                r.indexed_bytes,
                r.spans,
                r.fingerprint.head_hash,
                r.fingerprint.tail_hash
            ));
        }
        format!("{:016x}", xxhash_rust::xxh3::xxh3_64(text.as_bytes()))
    }

    /// The number of segments.
    pub fn segment_count(&self) -> u32 {
        self.segments.len() as u32
    }

    /// Where segment `s` is.
    pub fn segment_info(&self, s: u32) -> SegmentInfo {
        let seg = &self.segments[s as usize];
        SegmentInfo {
            segment: s,
            source: self.files[seg.file].source.path.clone(),
            bytes: seg.meta.byte_start..seg.meta.byte_end,
            first_line: seg.meta.first_line,
        }
    }

    /// The span table of segment `s`, loaded on first use and kept.
    pub fn span_table(&self, s: u32) -> Result<Arc<SpanTable>, IndexError> {
        let seg = &self.segments[s as usize];
        // Checked before and after the read, so the table read is the one opened.
        let replaced = || !FileIdentity::still(seg.spans_identity, &seg.spans_path);
        if seg.spans.get().is_none() && replaced() {
            return Err(IndexError::Replaced {
                path: seg.spans_path.clone(),
            });
        }
        let table = seg
            .spans
            .get_or_init(|| {
                let table = SpanTable::read(&seg.spans_path).map(Arc::new);
                if replaced() {
                    return Err(SpanTableFailure::Replaced);
                }
                // Marked here, once, while the file is still the one that failed: an error
                // kept for later uses must not mark an index rebuilt since.
                table.map_err(|e| match e {
                    // Checked by size at open, damaged within: the next open rebuilds it.
                    IndexError::Corrupt { message, .. } => SpanTableFailure::Damaged {
                        marked: mark_damaged(&seg.spans_path, &message),
                        message,
                    },
                    IndexError::Io { error, .. } => {
                        SpanTableFailure::Unreadable(error.kind(), error.to_string())
                    }
                    other => {
                        SpanTableFailure::Unreadable(std::io::ErrorKind::Other, other.to_string())
                    }
                })
            })
            .clone();
        let path = seg.spans_path.clone();
        table.map_err(|failure| match failure {
            SpanTableFailure::Replaced => IndexError::Replaced { path },
            SpanTableFailure::Damaged { message, marked } => IndexError::Damaged {
                path,
                message,
                marked,
            },
            SpanTableFailure::Unreadable(kind, message) => IndexError::Io {
                path,
                error: std::io::Error::new(kind, message),
            },
        })
    }

    /// The (inflated) data of the file behind segment `s`, memory-mapped on first use. For a
    /// gzip source, the first use makes the inflated copy from the checkpoints, in parallel.
    /// When the index directory cannot hold the copy, a temporary one is made for this
    /// process (see [`OpenOptions::temporary_dir`]).
    pub fn segment_data(&self, s: u32) -> Result<Arc<MappedFile>, IndexError> {
        self.file_data(
            &self.files[self.segments[s as usize].file],
            &NoProgress,
            true,
        )
    }

    /// Makes the inflated copy of every gzip source that lacks one, reporting progress, so
    /// that a dataset-wide scan about to run does not stall silently on it (a scan would
    /// make a missing copy itself, without progress). Plain sources need nothing.
    pub fn make_inflated_copies(&self, progress: &dyn BuildProgress) -> Result<(), IndexError> {
        for file in self.files.iter().filter(|f| f.gzip.is_some()) {
            self.file_data(file, progress, true)?;
        }
        Ok(())
    }

    /// A file's data, mapped once: every caller goes through one lock, so a gzip copy is
    /// made at most once per dataset. A temporary copy is made only when `for_scan`: a
    /// scan needs the whole stream, while reads of a few spans do better through the
    /// checkpoints than by inflating everything again in every process.
    fn file_data(
        &self,
        file: &FileEntry,
        progress: &dyn BuildProgress,
        for_scan: bool,
    ) -> Result<Arc<MappedFile>, IndexError> {
        // One caller at a time makes a gzip copy; a failure is not kept, so a later call
        // tries again (the disk may have room by then).
        let mut data = file.data.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(mapped) = data.as_ref() {
            return Ok(mapped.clone());
        }
        if let Some(gzip) = &file.gzip {
            match make_gzip_copy(gzip, &file.data_path, &file.copy_prefixes, progress) {
                Ok(()) => {}
                Err(CopyFailure::Writing(beside)) if for_scan => {
                    gzip.note_copy_failed();
                    let mapped = Arc::new(self.temporary_gzip_copy(gzip, beside, progress)?);
                    *data = Some(mapped.clone());
                    return Ok(mapped);
                }
                Err(CopyFailure::Writing(e) | CopyFailure::Other(e)) => {
                    gzip.note_copy_failed();
                    return Err(e);
                }
            }
        }
        // A plain source is read where the index was checked against it: a file rotated
        // in under its name since then is not that data. Checked before and after the
        // mapping, so the file mapped is the one checked.
        let replaced =
            || file.gzip.is_none() && !FileIdentity::still(file.source_identity, &file.data_path);
        if replaced() {
            return Err(IndexError::Replaced {
                path: file.data_path.clone(),
            });
        }
        let mapped = MappedFile::open(&file.data_path)
            .map(Arc::new)
            .map_err(|e| IndexError::Corrupt {
                path: file.data_path.clone(),
                message: e.to_string(),
            })?;
        if replaced() {
            return Err(IndexError::Replaced {
                path: file.data_path.clone(),
            });
        }
        // The same file, cut short (or truncated and written again) since the dataset
        // opened: spans past its end would be missed without a word.
        let indexed = self
            .segments
            .iter()
            .filter(|s| std::ptr::eq(&self.files[s.file], file))
            .map(|s| s.meta.byte_end)
            .max()
            .unwrap_or(0);
        let now = mapped.bytes().len() as u64;
        if now < indexed {
            return Err(IndexError::Shrank {
                path: file.data_path.clone(),
                indexed,
                now,
            });
        }
        *data = Some(mapped.clone());
        Ok(mapped)
    }

    /// When the inflated copy cannot be written beside the index (`beside` says why), one
    /// made in the temporary directory with no name, mapped for this process only: scans
    /// still work on a read-only or full index directory.
    fn temporary_gzip_copy(
        &self,
        gzip: &GzipAccess,
        beside: IndexError,
        progress: &dyn BuildProgress,
    ) -> Result<MappedFile, IndexError> {
        let IndexError::GzipCopy { message, .. } = &beside else {
            return Err(beside);
        };
        let Ok(points) = gzip.checkpoints() else {
            return Err(beside);
        };
        let dir = &self.temporary_dir;
        progress.using_temporary_copy(gzip.source(), message, dir);
        let made = reporting_copy(
            gzip,
            MAKING_TEMPORARY_COPY,
            points.inflated_len(),
            progress,
            |workers, p| points.materialize_temporary(gzip.source(), dir, workers, p),
        );
        let mapped = made
            .map_err(|e| e.message)
            .and_then(|m| gzip.check_unchanged().map(|()| m));
        mapped.map_err(|e| match beside {
            IndexError::GzipCopy {
                path,
                gzip: source,
                message,
            } => IndexError::GzipCopy {
                path,
                gzip: source,
                message: format!("{message}; nor a temporary one in {}: {e}", dir.display()),
            },
            other => other,
        })
    }

    /// Reports to `progress` the inflated copy that reads of scattered spans ask for once
    /// they have inflated a quarter of a gzip source (a `view` of a trace spread all over
    /// a large file): otherwise that copy is made without a word. Set once; later calls
    /// are ignored.
    pub fn report_copies_to(&self, progress: Arc<dyn BuildProgress + Send + Sync>) {
        let _ = self.copy_progress.set(CopyReporter(progress));
    }

    /// The bytes at `range` of segment `s`'s data (`None` when the range lies outside it),
    /// for reading a few spans. A gzip source whose inflated copy has not been made is read
    /// through its checkpoints instead of making the copy, until scattered reads have
    /// inflated a quarter of it; if making the copy then fails, reads still go through the
    /// checkpoints.
    pub fn source_bytes(
        &self,
        s: u32,
        range: std::ops::Range<u64>,
    ) -> Result<Option<SourceBytes>, IndexError> {
        let file = &self.files[self.segments[s as usize].file];
        let Some(gzip) = &file.gzip else {
            return self.mapped_bytes(s, range);
        };
        let through_checkpoints = |may_ask_for_copy| {
            gzip.read(range.clone(), may_ask_for_copy)
                .map_err(gzip_read_error)
        };
        let mapped = file
            .data
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .is_some();
        if !mapped && !gzip.copy_was_present(&file.data_path) {
            match through_checkpoints(!gzip.copy_failed())? {
                GzipRead::Bytes(bytes, r) => return Ok(Some(SourceBytes::Inflated(bytes, r))),
                GzipRead::OutOfRange => return Ok(None),
                GzipRead::MakeCopy => {}
            }
        }
        match self.mapped_bytes(s, range.clone()) {
            Err(copy_failed) => match through_checkpoints(false) {
                Ok(GzipRead::Bytes(bytes, r)) => Ok(Some(SourceBytes::Inflated(bytes, r))),
                Ok(GzipRead::OutOfRange) => Ok(None),
                _ => Err(copy_failed),
            },
            found => found,
        }
    }

    /// Marks the index of segment `s`'s file out of date, for a reader that found its
    /// source no longer holding what the index says although the fingerprint matched (an
    /// edit that kept the size and time, or one before an append; a damaged inflated
    /// copy). The next open rebuilds it, instead of reusing an index every read of which
    /// fails. Best effort: an index that cannot be written to stays as it is.
    pub fn mark_out_of_date(&self, s: u32) {
        let Some(segment) = self.segments.get(s as usize) else {
            return;
        };
        if let Some(report) = self.reports.get(segment.file) {
            crate::store::mark_out_of_date(&report.index_dir, "");
        }
    }

    fn mapped_bytes(
        &self,
        s: u32,
        range: std::ops::Range<u64>,
    ) -> Result<Option<SourceBytes>, IndexError> {
        let progress: &dyn BuildProgress = match self.copy_progress.get() {
            Some(p) => p.0.as_ref(),
            None => &NoProgress,
        };
        let data = self.file_data(&self.files[self.segments[s as usize].file], progress, false)?;
        let r = range.start as usize..range.end as usize;
        Ok(data
            .bytes()
            .get(r.clone())
            .is_some()
            .then(|| SourceBytes::Mapped(data, r)))
    }
}

/// Marks the index holding the damaged file at `path` out of date, so that the next open
/// rebuilds it; whether the mark was written.
fn mark_damaged(path: &Path, message: &str) -> bool {
    path.parent()
        .is_some_and(|dir| crate::store::mark_out_of_date(dir, &damage_reason(path, message)))
}

/// The rebuild reason of an index whose file at `path` would not read.
fn damage_reason(path: &Path, message: &str) -> String {
    format!(
        "{} is damaged ({message})",
        path.file_name().unwrap_or_default().to_string_lossy()
    )
}

/// How a failed read through gzip checkpoints is reported: damaged checkpoints are the
/// index's fault; anything else is the `.gz` no longer reading as it did when indexed.
fn gzip_read_error(e: GzipReadError) -> IndexError {
    match e {
        // Opening checks their size only, and `halo index` their checksum, which rebuilds
        // damaged ones. (Not marked here: this error is kept and returned on every later
        // read, and its I/O failures are no damage.)
        GzipReadError::Checkpoints { path, message } => IndexError::Corrupt { path, message },
        GzipReadError::Source { path, message } => IndexError::GzipRead { path, message },
    }
}

/// Makes the inflated copy of a gzip source at `copy` unless it is already there whole,
/// reporting progress only when there is work to do. The `.gz` must still be the file that
/// was indexed: the stretches resumed from checkpoints carry no CRC of their own.
///
/// It holds the source's build lock meanwhile: a rebuild cannot swap the index directory
/// away under the copy, and processes that need the copy at once make it once (the others
/// wait, then find it made).
fn make_gzip_copy(
    gzip: &GzipAccess,
    copy: &Path,
    prefixes: &[u64],
    progress: &dyn BuildProgress,
) -> Result<(), CopyFailure> {
    let failed = |message| IndexError::GzipCopy {
        path: copy.to_path_buf(),
        gzip: gzip.source().to_path_buf(),
        message,
    };
    let other = |message| CopyFailure::Other(failed(message));
    let points = gzip
        .checkpoints()
        .map_err(|e| CopyFailure::Other(gzip_read_error(e)))?;
    let present = || std::fs::metadata(copy).map(|m| m.len()).ok() == Some(points.inflated_len());
    if present() {
        return Ok(());
    }
    let lock = crate::open_plan::BuildLock::of(gzip.source(), progress);
    if present() {
        return Ok(());
    }
    gzip.check_unchanged().map_err(other)?;
    // A copy made before whole members were appended is still right for what it
    // covers: inflate only the rest. Anything else is made again from the start.
    let len = std::fs::metadata(copy).map(|m| m.len()).ok();
    let extended = len
        .filter(|len| prefixes.contains(len))
        .is_some_and(|from| {
            reporting_copy(
                gzip,
                EXTENDING_INFLATED_COPY,
                points.inflated_len() - from,
                progress,
                |workers, p| points.extend_copy(gzip.source(), copy, from, workers, p),
            )
            .is_ok()
        });
    let made = if extended {
        Ok(())
    } else {
        reporting_copy(
            gzip,
            MAKING_INFLATED_COPY,
            points.inflated_len(),
            progress,
            |workers, p| points.materialize(gzip.source(), copy, workers, p, lock.held()),
        )
    };
    made.map_err(|e| match e.writing {
        true => CopyFailure::Writing(failed(e.message)),
        false => other(e.message),
    })?;
    gzip.check_unchanged().map_err(|e| {
        let _ = std::fs::remove_file(copy);
        other(e)
    })
}

/// Makes an inflated copy with `make` (given the number of workers and what to report
/// to), telling `progress` about it as `what` once it starts.
fn reporting_copy<T>(
    gzip: &GzipAccess,
    what: &str,
    total: u64,
    progress: &dyn BuildProgress,
    make: impl FnOnce(usize, &CopyProgress<'_>) -> T,
) -> T {
    let workers = std::thread::available_parallelism().map_or(1, |n| n.get());
    let done = std::sync::atomic::AtomicU64::new(0);
    let made = make(
        workers,
        &CopyProgress {
            started: &|| progress.begin(gzip.source(), what, total),
            written: &|n| {
                progress.advance(done.fetch_add(n, std::sync::atomic::Ordering::Relaxed) + n)
            },
        },
    );
    progress.end();
    made
}

/// Why the lasting copy beside the index was not made: writing it failed (no permission,
/// a full disk), which a copy elsewhere may get around, or something that would fail
/// there too (the `.gz` changed or does not read, damaged checkpoints).
enum CopyFailure {
    Writing(IndexError),
    Other(IndexError),
}

/// Whether building an index failed because its directory cannot be written (not because
/// the source cannot be read).
fn cannot_write<T>(ensured: &Result<T, IndexError>, source: &Path) -> bool {
    matches!(ensured, Err(IndexError::Io { path, error })
    if path != source
        && matches!(
            error.kind(),
            std::io::ErrorKind::PermissionDenied | std::io::ErrorKind::ReadOnlyFilesystem
        ))
}

/// The bytes of the files directly in `dir`.
fn dir_bytes(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .flatten()
                .filter_map(|e| e.metadata().ok())
                .filter(|m| m.is_file())
                .map(|m| m.len())
                .sum()
        })
        .unwrap_or(0)
}

/// The end of the complete lines of `data`: an unterminated last line counts when it parses.
pub(crate) fn complete_end(data: &[u8]) -> usize {
    halo_ingest::complete_end(data, accept_unterminated)
}

/// Whether an unterminated last line is complete: it is when it parses.
pub(crate) fn accept_unterminated(tail: &[u8]) -> bool {
    std::str::from_utf8(tail).is_ok_and(|t| halo_trace::parse_line(t).is_ok())
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_source_that_vanished_before_its_map_was_made_is_an_unreadable_file() {
        use std::path::Path;
        let gone = || std::io::Error::from(std::io::ErrorKind::NotFound);
        let source = Path::new("/logs/a.jsonl");
        let mapping = super::IndexError::Ingest(halo_ingest::IngestError::Io {
            path: source.to_path_buf(),
            error: gone(),
        });
        assert!(super::unreadable_source(&mapping, source).is_some());
        let fingerprint = super::IndexError::Io {
            path: source.to_path_buf(),
            error: gone(),
        };
        assert!(super::unreadable_source(&fingerprint, source).is_some());
        // The index's own files failing is no reason to skip the data.
        let index_file = super::IndexError::Io {
            path: Path::new("/logs/a.jsonl.halo-index/meta.json").to_path_buf(),
            error: gone(),
        };
        assert!(super::unreadable_source(&index_file, source).is_none());
    }
}
