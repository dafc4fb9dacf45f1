//! Checkpoints into a gzip file: places where inflating can start again without reading
//! the file from its beginning (the technique of zlib's `zran.c`).
//!
//! A checkpoint is taken between two deflate blocks every few MB of output while the file
//! is indexed. It holds the bit position in the compressed file and the last 32 KiB of
//! output, which is all that back-references of later blocks can reach. With them, any
//! range of the inflated stream can be produced by inflating at most one checkpoint
//! spacing of extra data (where the compressor wrote blocks of ordinary size: a compressor
//! that writes one huge block leaves nowhere to resume, and such a file is read from its
//! start), and the whole stream can be inflated in parallel, one stretch between
//! checkpoints per worker. That is why indexing a `.gz` file writes no decompressed copy:
//! reads of a few spans inflate from the nearest checkpoint, and a copy is made later, in
//! parallel ([`GzipCheckpoints::materialize`]), only for scans of the whole stream.

use std::io::{Read, Seek, SeekFrom, Write};
use std::mem::MaybeUninit;
use std::ops::Range;
use std::path::Path;

use crate::zstream::{Framing, Inflater};

/// How much history a deflate back-reference can reach.
pub const WINDOW_BYTES: usize = 32 * 1024;

/// Output between two checkpoints (at least; checkpoints fall between deflate blocks).
pub const CHECKPOINT_SPACING: u64 = 4 << 20;

const MAGIC: &[u8; 8] = b"HALOGZC2";

/// Output is inflated and handed on in pieces of at most this size, so memory stays bounded
/// even where a compressor left few block boundaries (and so few checkpoints).
const PIECE_BYTES: usize = 4 << 20;

/// The smallest record in a checkpoint file: offsets, flags and window length.
const MIN_RECORD_BYTES: usize = 8 + 8 + 2 + 4;

/// Where inflating can start again in the middle of a gzip file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkpoint {
    /// Offset in the inflated stream.
    pub out_offset: u64,
    /// Position in the compressed file, in bits.
    pub in_bit: u64,
    /// The byte at `in_bit / 8`, whose high `8 - in_bit % 8` bits are still unread (0 when
    /// the position is on a byte boundary).
    pub partial_byte: u8,
    /// The start of a gzip member (its header comes next; no window is needed).
    pub member_start: bool,
    /// Up to the last 32 KiB of output before `out_offset`.
    pub window: Vec<u8>,
}

/// The checkpoints of one gzip file, in stream order, and its inflated length.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GzipCheckpoints {
    points: Vec<Checkpoint>,
    inflated_len: u64,
}

impl Default for GzipCheckpoints {
    fn default() -> Self {
        GzipCheckpoints {
            points: vec![Checkpoint {
                out_offset: 0,
                in_bit: 0,
                partial_byte: 0,
                member_start: true,
                window: Vec::new(),
            }],
            inflated_len: 0,
        }
    }
}

impl GzipCheckpoints {
    /// The checkpoints, in stream order; the first is the start of the file.
    pub fn points(&self) -> &[Checkpoint] {
        &self.points
    }

    /// Bytes of inflated output the checkpoints cover (up to a fault, if the stream has one).
    pub fn inflated_len(&self) -> u64 {
        self.inflated_len
    }

    /// The stretch between two checkpoints that holds output `offset`: the first
    /// checkpoint's index and the stretch's output range.
    pub fn stretch_at(&self, offset: u64) -> (usize, Range<u64>) {
        let i = self
            .points
            .partition_point(|p| p.out_offset <= offset)
            .saturating_sub(1);
        let end = self
            .points
            .get(i + 1)
            .map_or(self.inflated_len, |p| p.out_offset);
        (i, self.points[i].out_offset..end)
    }

    /// Checkpoints for a stream that starts with a gzip member at compressed byte
    /// `in_byte`, whose output is counted from `out_offset` (members appended to a file
    /// indexed before).
    pub(crate) fn starting_at(out_offset: u64, in_byte: u64) -> GzipCheckpoints {
        GzipCheckpoints {
            points: vec![Checkpoint {
                out_offset,
                in_bit: in_byte * 8,
                partial_byte: 0,
                member_start: true,
                window: Vec::new(),
            }],
            inflated_len: out_offset,
        }
    }

    /// Adds the checkpoints of members appended after the ones these cover (from an
    /// [`crate::InflatingChunks::open_at`] that started where these end).
    pub fn extend(&mut self, later: GzipCheckpoints) {
        let last = self.last_out_offset();
        self.points
            .extend(later.points.into_iter().filter(|p| p.out_offset > last));
        self.inflated_len = self.inflated_len.max(later.inflated_len);
    }

    pub(crate) fn push(&mut self, point: Checkpoint) {
        self.points.push(point);
    }

    pub(crate) fn last_out_offset(&self) -> u64 {
        self.points.last().map_or(0, |p| p.out_offset)
    }

    pub(crate) fn set_inflated_len(&mut self, len: u64) {
        self.inflated_len = len;
    }

    /// Writes the checkpoints to `path`, followed by a checksum of everything before it.
    ///
    /// Streamed through a buffer (the windows are megabytes, and a copy of them all was
    /// fresh memory the kernel had to zero) and not synced: like the index's tables, the
    /// file is checked against its checksum when read, so one torn by a crash is found
    /// and rebuilt, and a sync made every gzip build wait for the disk.
    pub fn write(&self, path: &Path) -> std::io::Result<()> {
        let file = std::fs::File::create(path)?;
        let mut w = crate::HashingWriter::new(std::io::BufWriter::with_capacity(1 << 16, file));
        w.write_all(MAGIC)?;
        w.write_all(&self.inflated_len.to_le_bytes())?;
        w.write_all(&(self.points.len() as u64).to_le_bytes())?;
        for p in &self.points {
            w.write_all(&p.out_offset.to_le_bytes())?;
            w.write_all(&p.in_bit.to_le_bytes())?;
            w.write_all(&[p.partial_byte, u8::from(p.member_start)])?;
            w.write_all(&(p.window.len() as u32).to_le_bytes())?;
            w.write_all(&p.window)?;
        }
        let sum = w.digest();
        let out = w.get_mut();
        out.write_all(&sum.to_le_bytes())?;
        out.flush()
    }

    /// The inflated length that the checkpoint file at `path` covers, read from its header
    /// alone (no checksum is checked: see [`GzipCheckpoints::read`]).
    pub fn read_inflated_len(path: &Path) -> Result<u64, String> {
        let mut header = [0u8; 16];
        std::fs::File::open(path)
            .and_then(|mut f| f.read_exact(&mut header))
            .map_err(|e| e.to_string())?;
        if &header[..8] != MAGIC {
            return Err("not a checkpoint file (or another version)".into());
        }
        Ok(u64::from_le_bytes(header[8..].try_into().expect("8 bytes")))
    }

    /// Reads checkpoints written by [`GzipCheckpoints::write`], checking their checksum and
    /// that they make sense; the error says what is wrong.
    pub fn read(path: &Path) -> Result<GzipCheckpoints, String> {
        let bytes = std::fs::read(path).map_err(|e| e.to_string())?;
        let Some(body_len) = bytes.len().checked_sub(8) else {
            return Err("the file is truncated".into());
        };
        let (body, sum) = bytes.split_at(body_len);
        if !body.starts_with(MAGIC) {
            return Err("not a checkpoint file (or another version)".into());
        }
        if xxhash_rust::xxh3::xxh3_64(body).to_le_bytes() != sum {
            return Err("checksum mismatch: the file is truncated or damaged".into());
        }
        let mut r = Cursor { bytes: body, at: 8 };
        let inflated_len = r.u64()?;
        let count = r.u64()?;
        let max_count = (body.len() / MIN_RECORD_BYTES) as u64;
        if count > max_count {
            return Err(format!("{count} checkpoints cannot fit in the file"));
        }
        let mut points: Vec<Checkpoint> = Vec::with_capacity(count as usize);
        for _ in 0..count {
            let out_offset = r.u64()?;
            let in_bit = r.u64()?;
            let flags = r.take(2)?;
            let window_len = u32::from_le_bytes(r.take(4)?.try_into().expect("4 bytes"));
            let window = r.take(window_len as usize)?.to_vec();
            let member_start = flags[1] != 0;
            let ordered = points
                .last()
                .is_none_or(|p| p.out_offset < out_offset && p.in_bit < in_bit);
            let window_fits = if member_start {
                in_bit.is_multiple_of(8)
            } else {
                window.len() as u64 == out_offset.min(WINDOW_BYTES as u64)
            };
            if !ordered || out_offset > inflated_len || !window_fits {
                return Err(format!(
                    "checkpoint at output byte {out_offset} is inconsistent"
                ));
            }
            points.push(Checkpoint {
                out_offset,
                in_bit,
                partial_byte: flags[0],
                member_start,
                window,
            });
        }
        if r.at != body.len() {
            return Err("trailing bytes".into());
        }
        match points.first() {
            Some(p) if p.out_offset == 0 && p.in_bit == 0 && p.member_start => {}
            _ => return Err("no checkpoint at the start".into()),
        }
        Ok(GzipCheckpoints {
            points,
            inflated_len,
        })
    }

    /// Inflates `range` of the stream (clamped to its length) from the nearest checkpoint
    /// before it.
    pub fn inflate_range(&self, gz: &Path, range: Range<u64>) -> Result<Vec<u8>, String> {
        let want = range.end.min(self.inflated_len).saturating_sub(range.start);
        let mut out = Vec::with_capacity(want.min(PIECE_BYTES as u64 * 4) as usize);
        self.inflate_range_into(gz, range, &mut |piece| {
            out.extend_from_slice(piece);
            Ok(())
        })?;
        Ok(out)
    }

    /// Inflates `range` of the stream (clamped to its length) from the nearest checkpoint
    /// before it, handing it to `sink` in pieces of a few MB: memory stays bounded however
    /// long the range.
    pub fn inflate_range_into(
        &self,
        gz: &Path,
        range: Range<u64>,
        sink: &mut dyn FnMut(&[u8]) -> Result<(), String>,
    ) -> Result<(), String> {
        let end = range.end.min(self.inflated_len);
        let start = range.start.min(end);
        if start == end {
            return Ok(());
        }
        let (i, _) = self.stretch_at(start);
        let point = &self.points[i];
        let mut source = ResumedStream::open(gz, point)?;
        let mut skip = start - point.out_offset;
        let mut remaining = end - start;
        let mut buf: Vec<u8> = Vec::with_capacity(PIECE_BYTES.min(remaining.max(skip) as usize));
        while skip > 0 || remaining > 0 {
            let target = if skip > 0 { skip } else { remaining }.min(buf.capacity() as u64);
            buf.clear();
            while (buf.len() as u64) < target {
                let len = buf.len();
                let room = target as usize - len;
                let produced = source.inflate(&mut buf.spare_capacity_mut()[..room])?;
                // SAFETY: zlib initialised the first `produced` spare bytes.
                unsafe { buf.set_len(len + produced) };
                if produced == 0 && source.exhausted() {
                    return Err(format!(
                        "{}: the compressed data ends {} bytes early",
                        gz.display(),
                        skip + remaining - buf.len() as u64
                    ));
                }
            }
            if skip > 0 {
                skip -= buf.len() as u64;
            } else {
                remaining -= buf.len() as u64;
                sink(&buf)?;
            }
        }
        Ok(())
    }

    /// Writes the whole inflated stream to `dest`, inflating the stretches between
    /// checkpoints on `workers` threads at once, telling `progress` as it goes. The copy is synced to disk before it is renamed into place,
    /// so a copy found at `dest` is whole. Temporary files that a killed process left behind
    /// are removed: all of them when the caller is `exclusive` (it holds a lock that every
    /// writer of `dest` takes, so none is at work), else those untouched for a while.
    pub fn materialize(
        &self,
        gz: &Path,
        dest: &Path,
        workers: usize,
        progress: &CopyProgress<'_>,
        exclusive: bool,
    ) -> Result<(), CopyError> {
        static NEXT_TMP: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let name = dest
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let prefix = format!("{name}.tmp-");
        sweep_stale(dest.parent().unwrap_or(Path::new(".")), &prefix, exclusive);
        let tmp = dest.with_file_name(format!(
            "{prefix}{}-{}",
            std::process::id(),
            NEXT_TMP.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
        ));
        let fail = |e: std::io::Error| CopyError::writing(format!("{}: {e}", tmp.display()));
        let result = std::fs::File::create(&tmp).map_err(fail).and_then(|file| {
            self.write_copy(gz, &file, &tmp, workers, progress)?;
            file.sync_data().map_err(fail)?;
            std::fs::rename(&tmp, dest).map_err(|e| {
                CopyError::writing(format!(
                    "renaming {} to {}: {e}",
                    tmp.display(),
                    dest.display()
                ))
            })
        });
        if result.is_err() {
            let _ = std::fs::remove_file(&tmp);
        }
        result
    }

    /// Writes the whole inflated stream to a file in `dir` that has no name (it is
    /// deleted from the start, readable by this process only, and gone when the map is
    /// dropped or the process dies) and maps it: for scans when no lasting copy can be
    /// kept beside the index. Nothing is synced, as nothing outlives the process.
    pub fn materialize_temporary(
        &self,
        gz: &Path,
        dir: &Path,
        workers: usize,
        progress: &CopyProgress<'_>,
    ) -> Result<crate::MappedFile, CopyError> {
        let shown = dir.join("(unnamed temporary copy)");
        let fail = |e: std::io::Error| CopyError::writing(format!("{}: {e}", dir.display()));
        let file = tempfile::tempfile_in(dir).map_err(fail)?;
        self.write_copy(gz, &file, &shown, workers, progress)?;
        crate::MappedFile::from_file(&file, &shown).map_err(|e| CopyError::writing(e.to_string()))
    }

    /// Extends `dest`, an inflated copy of the stream's first `from` bytes (the copy made
    /// before whole members were appended to the `.gz`), to the whole stream: only the
    /// new part is inflated.
    ///
    /// While it grows, the copy goes by a temporary name (`<dest>.tmp-extending`), so
    /// that nobody takes a half-written copy for a whole one: a crash leaves that name,
    /// which the next full copy sweeps. The caller holds the source's build lock, so no
    /// one else grows or replaces the copy meanwhile.
    pub fn extend_copy(
        &self,
        gz: &Path,
        dest: &Path,
        from: u64,
        workers: usize,
        progress: &CopyProgress<'_>,
    ) -> Result<(), CopyError> {
        let name = dest
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let growing = dest.with_file_name(format!("{name}.tmp-extending"));
        let fail =
            |path: &Path, e: std::io::Error| CopyError::writing(format!("{}: {e}", path.display()));
        std::fs::rename(dest, &growing).map_err(|e| fail(dest, e))?;
        let result = std::fs::OpenOptions::new()
            .write(true)
            .open(&growing)
            .map_err(|e| fail(&growing, e))
            .and_then(|file| {
                self.write_copy_from(gz, &file, &growing, from, workers, progress)?;
                file.sync_data().map_err(|e| fail(&growing, e))?;
                std::fs::rename(&growing, dest).map_err(|e| fail(&growing, e))
            });
        if result.is_err() {
            let _ = std::fs::remove_file(&growing);
        }
        result
    }

    /// Writes the inflated stream into `out` (shown as `shown` in messages), reserving
    /// its whole size first so that a full disk fails before any inflating.
    fn write_copy(
        &self,
        gz: &Path,
        out: &std::fs::File,
        shown: &Path,
        workers: usize,
        progress: &CopyProgress<'_>,
    ) -> Result<(), CopyError> {
        self.write_copy_from(gz, out, shown, 0, workers, progress)
    }

    /// [`GzipCheckpoints::write_copy`] of the stream's bytes from `from` on, at their
    /// offsets; `out` already holds the bytes before `from`.
    fn write_copy_from(
        &self,
        gz: &Path,
        out: &std::fs::File,
        shown: &Path,
        from: u64,
        workers: usize,
        progress: &CopyProgress<'_>,
    ) -> Result<(), CopyError> {
        let fail = |e: std::io::Error| format!("{}: {e}", shown.display());
        reserve(out, self.inflated_len).map_err(|e| CopyError::writing(fail(e)))?;
        (progress.started)();
        let stretches: Vec<Range<u64>> = (0..self.points.len())
            .map(|i| self.stretch_at(self.points[i].out_offset).1)
            .map(|r| r.start.max(from)..r.end)
            .filter(|r| !r.is_empty())
            .collect();
        let next = std::sync::atomic::AtomicUsize::new(0);
        let failure = std::sync::Mutex::new(None::<CopyError>);
        std::thread::scope(|scope| {
            for _ in 0..workers.clamp(1, stretches.len().max(1)) {
                scope.spawn(|| {
                    let run = || -> Result<(), CopyError> {
                        loop {
                            let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                            let Some(stretch) = stretches.get(i) else {
                                return Ok(());
                            };
                            let mut at = stretch.start;
                            // A failed write is told apart from a failed read of the .gz.
                            let mut write_failed = None;
                            self.inflate_range_into(gz, stretch.clone(), &mut |piece| {
                                write_all_at(out, piece, at).map_err(|e| {
                                    let message = fail(e);
                                    write_failed = Some(message.clone());
                                    message
                                })?;
                                at += piece.len() as u64;
                                (progress.written)(piece.len() as u64);
                                Ok(())
                            })
                            .map_err(|message| match write_failed.take() {
                                Some(w) => CopyError::writing(w),
                                None => CopyError::reading(message),
                            })?;
                        }
                    };
                    if let Err(e) = run() {
                        // Stop the others early: the copy is useless now.
                        next.store(usize::MAX / 2, std::sync::atomic::Ordering::Relaxed);
                        failure
                            .lock()
                            .unwrap_or_else(|e| e.into_inner())
                            .get_or_insert(e);
                    }
                });
            }
        });
        match failure.into_inner().unwrap_or_else(|e| e.into_inner()) {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }
}

/// What making an inflated copy reports as it goes.
pub struct CopyProgress<'a> {
    /// Called once, when the destination holds the copy's whole size and inflating starts
    /// (not before: a copy that cannot even be created has nothing to show).
    pub started: &'a (dyn Fn() + Sync),
    /// Hears the size of each piece as it lands.
    pub written: &'a (dyn Fn(u64) + Sync),
}

impl std::fmt::Debug for CopyProgress<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CopyProgress")
    }
}

/// Why an inflated copy could not be made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CopyError {
    /// What went wrong, naming the file.
    pub message: String,
    /// Whether writing the copy failed (no permission, a full disk) rather than reading
    /// the `.gz` or its checkpoints: only then can a copy elsewhere succeed.
    pub writing: bool,
}

impl CopyError {
    fn writing(message: String) -> CopyError {
        CopyError {
            message,
            writing: true,
        }
    }

    fn reading(message: String) -> CopyError {
        CopyError {
            message,
            writing: false,
        }
    }
}

impl std::fmt::Display for CopyError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

/// Gives `file` its final length, with the disk space allocated where the system can do
/// that (so a full disk fails now, not after gigabytes of inflating), else sparse.
fn reserve(file: &std::fs::File, len: u64) -> std::io::Result<()> {
    #[cfg(target_os = "linux")]
    {
        use std::os::fd::AsRawFd;
        let Ok(len_off) = libc::off_t::try_from(len) else {
            return file.set_len(len);
        };
        if len_off > 0 {
            // The system call itself, not posix_fallocate: on file systems without
            // preallocation, glibc would emulate it by writing every block.
            // SAFETY: the descriptor belongs to `file`, which outlives the call; fallocate
            // reads no memory of ours.
            if unsafe { libc::fallocate(file.as_raw_fd(), 0, 0, len_off) } == 0 {
                return Ok(());
            }
            let error = std::io::Error::last_os_error();
            // File systems without preallocation: a sparse file will do.
            if !matches!(error.raw_os_error(), Some(libc::EOPNOTSUPP | libc::EINVAL)) {
                return Err(error);
            }
        }
    }
    file.set_len(len)
}

/// Writes all of `bytes` at `offset` of `file` without moving a shared cursor, so workers
/// can fill different stretches of one file handle at once.
fn write_all_at(file: &std::fs::File, bytes: &[u8], offset: u64) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        std::os::unix::fs::FileExt::write_all_at(file, bytes, offset)
    }
    #[cfg(windows)]
    {
        let mut done = 0;
        while done < bytes.len() {
            let n = std::os::windows::fs::FileExt::seek_write(
                file,
                &bytes[done..],
                offset + done as u64,
            )?;
            if n == 0 {
                return Err(std::io::ErrorKind::WriteZero.into());
            }
            done += n;
        }
        Ok(())
    }
    #[cfg(not(any(unix, windows)))]
    {
        let _ = (file, bytes, offset);
        Err(std::io::ErrorKind::Unsupported.into())
    }
}

/// Removes `prefix*` files in `dir` that a killed process never finished: every one when
/// `exclusive`, else those that look abandoned.
fn sweep_stale(dir: &Path, prefix: &str, exclusive: bool) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        if entry.file_name().to_string_lossy().starts_with(prefix)
            && (exclusive || crate::looks_abandoned(&entry.path()))
        {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

/// A gzip file read from a checkpoint on, across member boundaries.
///
/// Only the deflate data is inflated: member headers are skipped here and trailers are
/// not checked. Reads cover data that the index build already inflated and checked, and
/// whose CRC failure, if any, it reported as a problem while keeping the lines; checking
/// again here would make those lines unreadable, and a checkpoint inside a member could
/// not check its CRC anyway.
struct ResumedStream {
    file: std::fs::File,
    inflater: Inflater,
    buf: Vec<u8>,
    lo: usize,
    hi: usize,
    /// File offset of `buf[0]`.
    buf_start: u64,
    eof: bool,
}

impl ResumedStream {
    fn open(gz: &Path, point: &Checkpoint) -> Result<ResumedStream, String> {
        let io = |e: std::io::Error| format!("{}: {e}", gz.display());
        let mut file = std::fs::File::open(gz).map_err(io)?;
        let byte = point.in_bit / 8;
        let bits = (point.in_bit % 8) as u32;
        let mut inflater = Inflater::new(Framing::Raw)?;
        let resume_at = if point.member_start {
            deflate_start(&mut file, byte)?
                .ok_or_else(|| format!("{}: no gzip member at byte {byte}", gz.display()))?
        } else {
            if bits != 0 {
                inflater.prime(8 - bits, point.partial_byte >> bits)?;
            }
            inflater.set_window(&point.window)?;
            byte + u64::from(bits != 0)
        };
        file.seek(SeekFrom::Start(resume_at)).map_err(io)?;
        Ok(ResumedStream {
            file,
            inflater,
            buf: vec![0; 256 * 1024],
            lo: 0,
            hi: 0,
            buf_start: resume_at,
            eof: false,
        })
    }

    fn exhausted(&self) -> bool {
        self.eof && self.lo == self.hi
    }

    /// Inflates into `out`; returns how many bytes were produced (0 only at the end).
    fn inflate(&mut self, out: &mut [MaybeUninit<u8>]) -> Result<usize, String> {
        loop {
            if self.lo == self.hi && !self.eof {
                self.buf_start += self.hi as u64;
                self.lo = 0;
                self.hi = loop {
                    match self.file.read(&mut self.buf) {
                        Ok(n) => break n,
                        Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                        Err(e) => return Err(e.to_string()),
                    }
                };
                self.eof = self.hi == 0;
            }
            let step = self
                .inflater
                .inflate(&self.buf[self.lo..self.hi], out, false);
            if let Some(e) = step.error {
                return Err(e);
            }
            self.lo += step.consumed;
            if step.stream_end {
                // The inflater may have read a few bytes past the end of the deflate data,
                // which the member's 8-byte trailer follows; then the next member, if any.
                let member = self.buf_start + self.lo as u64 - step.held_bits() / 8 + 8;
                let buffered = self.buf_start..self.buf_start + self.hi as u64;
                let header = match buffered.contains(&member) {
                    true => member_header(&self.buf[(member - self.buf_start) as usize..self.hi]),
                    false => Header::Incomplete,
                };
                match header {
                    Header::Length(n) => self.lo = (member - self.buf_start) as usize + n,
                    // The last member (zero padding or other bytes may follow, which the
                    // index build reported).
                    Header::NotGzip => {
                        self.eof = true;
                        self.lo = self.hi;
                    }
                    Header::Incomplete => {
                        match deflate_start(&mut self.file, member)? {
                            Some(next) => {
                                self.file
                                    .seek(SeekFrom::Start(next))
                                    .map_err(|e| e.to_string())?;
                                self.buf_start = next;
                                self.eof = false;
                            }
                            None => self.eof = true,
                        }
                        self.lo = 0;
                        self.hi = 0;
                    }
                }
                if !self.eof {
                    self.inflater.reset(Framing::Raw)?;
                }
            }
            if step.produced > 0 || self.exhausted() {
                return Ok(step.produced);
            }
        }
    }
}

/// Where the deflate data of the gzip member whose header starts at byte `at` begins, or
/// `None` when no whole member header starts there: the end of the file, bytes that are
/// not gzip, or a header cut short (a member being appended, or a crash while writing
/// one; the index build reported it, and the data before it reads as indexed).
fn deflate_start(file: &mut std::fs::File, at: u64) -> Result<Option<u64>, String> {
    // Names and extra fields can be long; a header longer than this is not believed.
    const MAX_HEADER: usize = 64 << 20;
    file.seek(SeekFrom::Start(at)).map_err(|e| e.to_string())?;
    let mut bytes = Vec::new();
    loop {
        let had = bytes.len();
        (&mut *file)
            .take(4096.max(had as u64))
            .read_to_end(&mut bytes)
            .map_err(|e| e.to_string())?;
        let at_end = bytes.len() == had;
        match member_header(&bytes) {
            Header::Length(n) => return Ok(Some(at + n as u64)),
            Header::NotGzip => return Ok(None),
            Header::Incomplete if at_end => return Ok(None),
            Header::Incomplete if bytes.len() > MAX_HEADER => {
                return Err(format!(
                    "the gzip member header at byte {at} is longer than {MAX_HEADER} bytes"
                ))
            }
            Header::Incomplete => {}
        }
    }
}

/// What the bytes at the start of a gzip member say about its header.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Header {
    /// The header is this long; deflate data follows.
    Length(usize),
    /// No gzip member starts here.
    NotGzip,
    /// More bytes are needed to tell.
    Incomplete,
}

/// Reads a gzip member header (RFC 1952): ten fixed bytes, then the optional extra field,
/// name, comment and header CRC that its flags announce.
pub(crate) fn member_header(bytes: &[u8]) -> Header {
    const MAGIC: [u8; 3] = [0x1f, 0x8b, 8];
    const FHCRC: u8 = 2;
    const FEXTRA: u8 = 4;
    const FNAME: u8 = 8;
    const FCOMMENT: u8 = 16;
    let seen = bytes.len().min(3);
    if bytes[..seen] != MAGIC[..seen] {
        return Header::NotGzip;
    }
    let Some(&flags) = bytes.get(3) else {
        return Header::Incomplete;
    };
    // Reserved flags: zlib refuses such a member, so the index build never read one.
    if flags & 0xe0 != 0 {
        return Header::NotGzip;
    }
    let mut len = 10;
    if flags & FEXTRA != 0 {
        let Some(xlen) = bytes.get(10..12) else {
            return Header::Incomplete;
        };
        len += 2 + usize::from(u16::from_le_bytes([xlen[0], xlen[1]]));
    }
    for field in [FNAME, FCOMMENT] {
        if flags & field != 0 {
            let Some(rest) = bytes.get(len..) else {
                return Header::Incomplete;
            };
            let Some(nul) = memchr::memchr(0, rest) else {
                return Header::Incomplete;
            };
            len += nul + 1;
        }
    }
    if flags & FHCRC != 0 {
        len += 2;
    }
    if bytes.len() < len {
        return Header::Incomplete;
    }
    Header::Length(len)
}

struct Cursor<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], String> {
        let slice = self
            .bytes
            .get(self.at..self.at.saturating_add(n))
            .ok_or("the file is truncated")?;
        self.at += n;
        Ok(slice)
    }

    fn u64(&mut self) -> Result<u64, String> {
        Ok(u64::from_le_bytes(
            self.take(8)?.try_into().expect("8 bytes"),
        ))
    }
}
