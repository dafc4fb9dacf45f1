use std::mem::MaybeUninit;
use std::path::Path;

use crate::checkpoints::{Checkpoint, GzipCheckpoints, CHECKPOINT_SPACING, WINDOW_BYTES};
use crate::mapped::MappedFile;
use crate::problem::IngestError;
use crate::zstream::{Framing, Inflater};

/// Room a chunk buffer has beyond its target for the partial line carried over from the
/// chunk before: lines are a few KB, so one buffer serves chunk after chunk.
const CARRY_ROOM: usize = 256 << 10;

/// The size of the first chunk; each next one is twice the last, up to the target.
const FIRST_CHUNK: usize = 256 << 10;

/// How the fault of a stream that ends early begins.
const TRUNCATED: &str = "gzip stream ends early (truncated?)";

/// A chunk of complete lines inflated from a gzip file.
#[derive(Debug)]
pub struct InflatedChunk {
    /// The lines (the last chunk may end with a line that has no line break).
    pub bytes: Vec<u8>,
    /// Where `bytes` start in the inflated stream.
    pub base: u64,
    /// Compressed bytes read so far, for progress.
    pub compressed_read: u64,
}

/// What inflating a whole gzip file found, once [`InflatingChunks`] is done.
#[derive(Debug)]
pub struct Inflated {
    /// Bytes inflated in all (up to a fault, if there was one).
    pub inflated_len: u64,
    /// The end of what was handed out for indexing (short of `inflated_len` when the last
    /// line is unterminated and not accepted).
    pub indexed_end: u64,
    /// Where inflating can start again later, for random access.
    pub checkpoints: GzipCheckpoints,
    /// Where the last gzip member ended in the file, when the stream ended there cleanly
    /// (no fault, nothing after it): members appended later can be inflated from here.
    pub members_end: Option<u64>,
    /// The map of the compressed file, handed over so the caller can drop it where its
    /// unmapping costs least: tearing down a large map takes milliseconds.
    pub compressed: Option<MappedFile>,
}

/// Inflates a gzip file (all members) chunk by chunk, each chunk ending on a line break, so
/// an index can be built while the stream is still inflating. It takes a checkpoint every
/// few MB of output ([`GzipCheckpoints`]) instead of writing a decompressed copy: the copy
/// is made later, in parallel, and only if a query needs it.
///
/// The iterator ends at the end of the stream, or at a corrupt or truncated stream (the
/// good prefix is kept: see [`InflatingChunks::fault`]). A last line without a line break is
/// indexed only when `keep_unterminated` accepts it, as [`crate::complete_end`] decides for
/// plain files.
pub struct InflatingChunks {
    file: std::fs::File,
    /// The compressed file, mapped rather than read: reading copied every compressed byte
    /// once more, about 2% of a gzip build's time. Its length is the one seen at open.
    map: MappedFile,
    inflater: Inflater,
    /// How much of the map the inflater is given at a time (`input_start..input_start +
    /// hi`): a window like a read buffer's, so progress and the rare rewinds work alike.
    window: usize,
    lo: usize,
    hi: usize,
    /// File offset of the window's first byte.
    input_start: u64,
    in_member: bool,
    /// Gzip members inflated to their end so far.
    members_done: u64,
    /// Where the member after the last finished one starts in the file.
    next_member_at: u64,
    /// The fault is data after the last member that is not gzip: nothing was lost.
    trailing_junk: bool,
    /// The fault is the last member failing its integrity check: every byte of it came
    /// out (perhaps damaged) and nothing follows, so nothing was lost.
    last_member_unchecked: bool,
    checkpoints: GzipCheckpoints,
    spacing: u64,
    /// Inflate straight up to where the next checkpoint may go instead of stopping at
    /// every block end on the way (off only in tests, as the exhaustive reference).
    skip_to_due: bool,
    carry: Vec<u8>,
    base: u64,
    target: usize,
    /// Chunks handed out so far, and where the stream started (in the file, and in the
    /// output): for [`InflatingChunks::chunk_target`].
    chunks_out: u32,
    first_input: u64,
    first_base: u64,
    keep_unterminated: fn(&[u8]) -> bool,
    indexed_end: u64,
    fault: Option<String>,
    done: bool,
    pool: ChunkPool,
}

impl std::fmt::Debug for InflatingChunks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InflatingChunks")
            .field("base", &self.base)
            .field("checkpoints", &self.checkpoints.points().len())
            .finish_non_exhaustive()
    }
}

impl InflatingChunks {
    /// Opens `src`; chunks are about `target` bytes.
    pub fn open(
        src: &Path,
        target: usize,
        keep_unterminated: fn(&[u8]) -> bool,
    ) -> Result<InflatingChunks, IngestError> {
        InflatingChunks::open_at(src, 0, 0, target, keep_unterminated)
    }

    /// Opens `src` at compressed byte `start`, where a gzip member begins (the end of the
    /// members indexed before), counting output from `base` (what they inflated to).
    pub fn open_at(
        src: &Path,
        start: u64,
        base: u64,
        target: usize,
        keep_unterminated: fn(&[u8]) -> bool,
    ) -> Result<InflatingChunks, IngestError> {
        let io = |e| IngestError::Io {
            path: src.to_path_buf(),
            error: e,
        };
        let file = std::fs::File::open(src).map_err(io)?;
        let map = MappedFile::from_file(&file, src)?;
        let inflater = Inflater::new(Framing::Gzip).map_err(|e| IngestError::Io {
            path: src.to_path_buf(),
            error: std::io::Error::other(e),
        })?;
        Ok(InflatingChunks {
            file,
            map,
            inflater,
            window: 1 << 20,
            lo: 0,
            hi: 0,
            input_start: start,
            in_member: false,
            members_done: 0,
            next_member_at: start,
            trailing_junk: false,
            last_member_unchecked: false,
            checkpoints: if start == 0 && base == 0 {
                GzipCheckpoints::default()
            } else {
                GzipCheckpoints::starting_at(base, start)
            },
            spacing: CHECKPOINT_SPACING,
            skip_to_due: true,
            carry: Vec::new(),
            base,
            target: target.max(1),
            chunks_out: 0,
            first_input: start,
            first_base: base,
            keep_unterminated,
            indexed_end: base,
            fault: None,
            done: false,
            pool: ChunkPool::default(),
        })
    }

    /// Takes checkpoints about every `bytes` of output instead of [`CHECKPOINT_SPACING`]:
    /// closer checkpoints make random reads cheaper and the checkpoint file larger.
    pub fn with_checkpoint_spacing(mut self, bytes: u64) -> InflatingChunks {
        self.spacing = bytes.max(1);
        self
    }

    /// Why the stream ended early, if it did: the data before the fault was kept.
    pub fn fault(&self) -> Option<&str> {
        self.fault.as_deref()
    }

    /// Whether the fault cost data (a truncated or corrupt stream), rather than being
    /// bytes after the last complete member that are not gzip, which are only ignored.
    pub fn fault_lost_data(&self) -> bool {
        self.fault.is_some() && !self.trailing_junk && !self.last_member_unchecked
    }

    /// Ends the inflation: what was inflated and where it can be resumed.
    pub fn finish(mut self) -> Inflated {
        self.checkpoints.set_inflated_len(self.base);
        let at_file_end = self
            .file
            .metadata()
            .is_ok_and(|m| m.len() == self.next_member_at);
        let clean = self.fault.is_none() && !self.in_member && at_file_end;
        Inflated {
            inflated_len: self.base,
            indexed_end: self.indexed_end,
            checkpoints: self.checkpoints,
            members_end: clean.then_some(self.next_member_at),
            compressed: Some(self.map),
        }
    }

    /// How many bytes the next chunk inflates to. The first chunks are small and grow to
    /// `target`: the second core gets a chunk to parse after a fraction of a millisecond
    /// instead of waiting for a whole one to inflate. The last few are a quarter of
    /// `target` (the rest of the stream is estimated from the ratio so far), so one core
    /// does not parse a whole last chunk alone while the other waits.
    fn chunk_target(&self) -> usize {
        let ramp = FIRST_CHUNK.saturating_mul(1 << self.chunks_out.min(20));
        let read = self.input_start + self.lo as u64;
        let left = (self.map.bytes().len() as u64).saturating_sub(read);
        let inflated = self.base.saturating_sub(self.first_base);
        let inflated_from = read.saturating_sub(self.first_input);
        let left_inflated = (left as u128 * inflated as u128) / inflated_from.max(1) as u128;
        // Never below the first chunk's size: a checkpoint needs the 32 KB window before
        // it in the buffer, and much smaller chunks would hold none.
        let tail = match inflated_from > 0 && left_inflated < 4 * self.target as u128 {
            true => (self.target / 4).max(FIRST_CHUNK),
            false => self.target,
        };
        self.target.min(ramp).min(tail).max(1)
    }

    /// Inflates until `buf` holds `target` more bytes or the stream ends; true at the end.
    fn fill(&mut self, buf: &mut Vec<u8>, target: usize) -> bool {
        let want = buf.len() + target;
        if buf.capacity() < want {
            // Room for the next chunk's carried line too: a buffer of exactly `target`
            // bytes came back from the pool too small by that line and doubled. (A line
            // longer than a chunk still grows the buffer by doubling.)
            buf.reserve(self.target + CARRY_ROOM);
        }
        while buf.len() < want {
            if self.lo == self.hi && !self.refill() {
                if self.in_member {
                    self.fail(buf, "unexpected end of file");
                }
                return true;
            }
            let len = buf.len();
            // Stopping at every deflate block end costs a return from zlib's fast loop and
            // a copy of up to 32 KB into its window; only the first block end at or after
            // the next checkpoint's place is wanted, so inflate straight up to one byte
            // before that place (no block end before it could be a checkpoint) and stop
            // between blocks from there on.
            let before_due = match self.skip_to_due {
                true => self.checkpoint_due_len().saturating_sub(len + 1),
                false => 0,
            };
            let (room, stop_between_blocks) = match before_due {
                0 => (want - len, true),
                bytes => ((want - len).min(bytes), false),
            };
            let spare: &mut [MaybeUninit<u8>] = &mut buf.spare_capacity_mut()[..room];
            let input = &window(&self.map, self.input_start, self.hi)[self.lo..];
            let step = self.inflater.inflate(input, spare, stop_between_blocks);
            // SAFETY: zlib initialised the first `produced` spare bytes.
            unsafe { buf.set_len(len + step.produced) };
            self.lo += step.consumed;
            if let Some(e) = step.error {
                if !self.in_member && self.only_zeros_remain() {
                    // Zero padding after the last member, as tape tools write: GNU gzip
                    // accepts it too.
                    return true;
                }
                if !self.in_member && self.members_done > 0 && !self.gzip_magic_at_next_member() {
                    // Like GNU gzip: "decompression OK, trailing garbage ignored". A member
                    // that starts with the magic bytes but is damaged is corruption.
                    let len = self.map.bytes().len() as u64;
                    self.trailing_junk = true;
                    self.fault = Some(format!(
                        "gzip data is followed by {} bytes that are not gzip; ignored (everything before was indexed)",
                        len.saturating_sub(self.next_member_at)
                    ));
                    return true;
                }
                self.fail(buf, &e);
                return true;
            }
            self.in_member = !step.stream_end;
            if step.stream_end {
                // The next member, if any, starts where this one's trailer ended. zlib-rs
                // reads the trailer byte by byte and holds nothing after it today; the
                // rewind keeps this right should a later version read ahead.
                let held = (step.held_bits() / 8) as usize;
                if held <= self.lo {
                    self.lo -= held;
                } else {
                    self.reread_from(self.input_start + self.lo as u64 - held as u64);
                }
                self.members_done += 1;
                self.next_member_at = self.input_start + self.lo as u64;
                if let Err(e) = self.inflater.reset(Framing::Gzip) {
                    self.fail(buf, &e);
                    return true;
                }
            } else if step.between_blocks() {
                self.maybe_checkpoint(buf, step.held_bits());
            }
        }
        false
    }

    /// Moves the window on to the next bytes of the file; false at its end.
    fn refill(&mut self) -> bool {
        let done = self.input_start as usize..self.input_start as usize + self.hi;
        self.map.release(done);
        self.input_start += self.hi as u64;
        self.lo = 0;
        // Saturating: a file that shrank below where an append was to start has nothing left.
        let left = self
            .map
            .bytes()
            .len()
            .saturating_sub(self.input_start as usize);
        self.hi = left.min(self.window);
        self.hi > 0
    }

    /// Whether the bytes where the next member would start are gzip's magic bytes.
    fn gzip_magic_at_next_member(&self) -> bool {
        let at = self.next_member_at as usize;
        self.map.bytes().get(at..at + 2) == Some(&[0x1f, 0x8b][..])
    }

    /// Whether everything from the current input position to the end of the file is zero.
    fn only_zeros_remain(&self) -> bool {
        let at = self.input_start as usize + self.lo;
        self.map
            .bytes()
            .get(at..)
            .unwrap_or_default()
            .iter()
            .all(|&b| b == 0)
    }

    /// Goes back to `offset` in the file (rarely needed: when a member ended in the first
    /// bytes of an input block and the inflater had read past it).
    fn reread_from(&mut self, offset: u64) {
        self.input_start = offset;
        self.lo = 0;
        self.hi = 0;
    }

    /// How long the buffer must be before a block end there can be a checkpoint (see
    /// [`Self::maybe_checkpoint`]): the spacing after the last one, and a whole window in
    /// the buffer unless the buffer holds the stream from its start.
    fn checkpoint_due_len(&self) -> usize {
        let after_last =
            (self.checkpoints.last_out_offset() + self.spacing).saturating_sub(self.base);
        let window = if self.base == 0 {
            0
        } else {
            WINDOW_BYTES as u64
        };
        usize::try_from(after_last.max(window)).unwrap_or(usize::MAX)
    }

    /// Takes a checkpoint at the current block boundary if the last one is far enough back
    /// and `buf` holds the window before it.
    fn maybe_checkpoint(&mut self, buf: &[u8], held_bits: u64) {
        let out_offset = self.base + buf.len() as u64;
        let last = self.checkpoints.last_out_offset();
        let has_window = buf.len() >= WINDOW_BYTES || out_offset == buf.len() as u64;
        if out_offset < last + self.spacing || !has_window {
            return;
        }
        let in_bit = (self.input_start + self.lo as u64) * 8 - held_bits;
        let byte = in_bit / 8;
        let partial_byte = if in_bit.is_multiple_of(8) {
            // On a byte boundary nothing of the byte there has been read (and it may lie
            // beyond the input buffer's end).
            0
        } else if byte >= self.input_start {
            // A partly read byte has been consumed, so it lies before `lo`.
            window(&self.map, self.input_start, self.hi)[(byte - self.input_start) as usize]
        } else {
            // It lies in the previous input buffer. zlib-rs holds fewer than 8 bits between
            // blocks, so this does not happen; skip this boundary rather than guess.
            return;
        };
        self.checkpoints.push(Checkpoint {
            out_offset,
            in_bit,
            partial_byte,
            member_start: false,
            window: buf[buf.len().saturating_sub(WINDOW_BYTES)..].to_vec(),
        });
    }

    fn fail(&mut self, buf: &[u8], why: &str) {
        let at = self.base + buf.len() as u64;
        self.fault = Some(if why == "unexpected end of file" {
            format!("{TRUNCATED} after {at} inflated bytes; the lines before are indexed")
        } else if why.starts_with("incorrect data check")
            || why.starts_with("incorrect length check")
        {
            // The trailer comes after the member's data: when at most the rest of it (the
            // 4-byte length, after a failed CRC) follows, nothing after was lost.
            let file_len = self.map.bytes().len() as u64;
            let read = self.input_start + self.lo as u64;
            self.last_member_unchecked = file_len.saturating_sub(read) <= 4;
            // The member's CRC or length is checked only at its end: the damage can be
            // anywhere in that member, including in what was already indexed.
            format!(
                "gzip member fails its integrity check ({why}) at inflated byte {at}: the stream is corrupt; the lines before were indexed but may hold damaged data"
            )
        } else {
            format!("gzip stream is corrupt at inflated byte {at} ({why}); the lines before are indexed, nothing after can be read")
        });
    }

    /// Whether a fault's message (as [`InflatingChunks::fault`] gave it) says the stream
    /// ended early, as a file still being written does, rather than that it is corrupt.
    pub fn fault_is_truncation(message: &str) -> bool {
        message.starts_with(TRUNCATED)
    }

    /// Gives a parsed chunk's buffer back for the next chunk: reusing buffers spares the
    /// page faults of fresh multi-megabyte allocations.
    pub fn recycle(pool: &ChunkPool, mut bytes: Vec<u8>) {
        bytes.clear();
        let mut pool = pool.lock().unwrap_or_else(|e| e.into_inner());
        if pool.len() < 16 {
            pool.push(bytes);
        }
    }

    /// The pool of buffers this stream draws from; see [`InflatingChunks::recycle`].
    pub fn pool(&self) -> ChunkPool {
        self.pool.clone()
    }
}

/// The window of the compressed file being inflated: `len` bytes from `start`. A free
/// function, so the inflater can be borrowed beside it.
fn window(map: &MappedFile, start: u64, len: usize) -> &[u8] {
    let start = start as usize;
    &map.bytes()[start..start + len]
}

/// Spare chunk buffers, shared between the inflater and the workers that parse chunks.
pub type ChunkPool = std::sync::Arc<std::sync::Mutex<Vec<Vec<u8>>>>;

impl Iterator for InflatingChunks {
    type Item = InflatedChunk;

    fn next(&mut self) -> Option<InflatedChunk> {
        if self.done {
            return None;
        }
        let mut buf = self
            .pool
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .pop()
            .unwrap_or_default();
        buf.extend_from_slice(&self.carry);
        self.carry.clear();
        let target = self.chunk_target();
        self.chunks_out = self.chunks_out.saturating_add(1);
        let (cut, at_end) = loop {
            let searched = buf.len();
            let at_end = self.fill(&mut buf, target);
            if at_end {
                break (buf.len(), true);
            }
            // Chunks end on a line break; a line longer than a chunk just makes it longer.
            // Only the new bytes are searched: the ones before held no line break.
            if let Some(i) = memchr::memrchr(b'\n', &buf[searched..]) {
                break (searched + i + 1, false);
            }
        };
        let base = self.base;
        self.base += cut as u64;
        if at_end {
            self.done = true;
            let keep_unterminated = self.keep_unterminated;
            buf.truncate(crate::complete_end(&buf, keep_unterminated));
        } else {
            self.carry.extend_from_slice(&buf[cut..]);
            buf.truncate(cut);
        }
        self.indexed_end = base + buf.len() as u64;
        if buf.is_empty() && at_end {
            return None;
        }
        Some(InflatedChunk {
            bytes: buf,
            base,
            compressed_read: self.input_start + self.lo as u64,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn gzip_at(data: &[u8], level: u32) -> Vec<u8> {
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::new(level));
        enc.write_all(data).unwrap();
        enc.finish().unwrap()
    }

    fn gzip(data: &[u8]) -> Vec<u8> {
        gzip_at(data, 1)
    }

    /// Lines that do not compress to nothing, so blocks and checkpoints come often.
    fn lines(n: usize) -> Vec<u8> {
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        (0..n)
            .map(|i| {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                format!(
                    "{{\"line\":{i},\"id\":\"{seed:016x}\",\"pad\":\"{}\"}}\n",
                    "x".repeat(i % 37)
                )
            })
            .collect::<String>()
            .into_bytes()
    }

    fn write_temp(bytes: &[u8]) -> tempfile::TempPath {
        let mut file = tempfile::NamedTempFile::new().unwrap();
        file.write_all(bytes).unwrap();
        file.into_temp_path()
    }

    struct Run {
        chunks: Vec<InflatedChunk>,
        fault: Option<String>,
        lost_data: bool,
        inflated: Inflated,
        gz: tempfile::NamedTempFile,
    }

    fn inflate_all(gz: &[u8], target: usize, spacing: u64, keep: fn(&[u8]) -> bool) -> Run {
        inflate_with_input(gz, target, spacing, keep, 1 << 20)
    }

    fn inflate_with_input(
        gz: &[u8],
        target: usize,
        spacing: u64,
        keep: fn(&[u8]) -> bool,
        input_bytes: usize,
    ) -> Run {
        inflate_stopping(gz, target, spacing, keep, input_bytes, true)
    }

    /// [`inflate_with_input`], with `skip_to_due` as given.
    fn inflate_stopping(
        gz: &[u8],
        target: usize,
        spacing: u64,
        keep: fn(&[u8]) -> bool,
        input_bytes: usize,
        skip_to_due: bool,
    ) -> Run {
        let mut file = tempfile::NamedTempFile::new().unwrap();
        file.write_all(gz).unwrap();
        let mut it = InflatingChunks::open(file.path(), target, keep)
            .unwrap()
            .with_checkpoint_spacing(spacing);
        it.window = input_bytes;
        it.skip_to_due = skip_to_due;
        let chunks: Vec<InflatedChunk> = it.by_ref().collect();
        Run {
            chunks,
            fault: it.fault().map(str::to_string),
            lost_data: it.fault_lost_data(),
            inflated: it.finish(),
            gz: file,
        }
    }

    /// Every checkpoint resumes to exactly the bytes that follow it, also when reading a
    /// range that starts between checkpoints; the parallel copy is the whole stream.
    fn assert_checkpoints_resume(run: &Run, data: &[u8]) {
        let cps = &run.inflated.checkpoints;
        let len = cps.inflated_len();
        for p in cps.points() {
            let end = (p.out_offset + 70_000).min(len);
            let got = cps.inflate_range(run.gz.path(), p.out_offset..end).unwrap();
            assert_eq!(
                got,
                &data[p.out_offset as usize..end as usize],
                "at {}",
                p.out_offset
            );
            let mid = (p.out_offset + 12_345).min(len);
            let got = cps
                .inflate_range(run.gz.path(), mid..(mid + 999).min(len))
                .unwrap();
            assert_eq!(got, &data[mid as usize..(mid + 999).min(len) as usize]);
        }
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("copy.jsonl");
        let written = std::sync::atomic::AtomicU64::new(0);
        let count = |n| {
            written.fetch_add(n, std::sync::atomic::Ordering::Relaxed);
        };
        cps.materialize(
            run.gz.path(),
            &dest,
            3,
            &crate::CopyProgress {
                started: &|| {},
                written: &count,
            },
            true,
        )
        .unwrap();
        assert_eq!(written.into_inner(), len, "progress hears every byte");
        let mut pieces = 0;
        cps.inflate_range_into(run.gz.path(), 0..len, &mut |piece| {
            assert!(piece.len() <= 4 << 20, "pieces stay bounded");
            pieces += 1;
            Ok(())
        })
        .unwrap();
        assert!(pieces >= 1 || len == 0);
        assert_eq!(std::fs::read(&dest).unwrap(), &data[..len as usize]);
        let saved = dir.path().join("checkpoints");
        cps.write(&saved).unwrap();
        assert_eq!(&GzipCheckpoints::read(&saved).unwrap(), cps);
    }

    #[test]
    fn chunks_end_on_line_breaks_and_cover_every_byte() {
        let data = lines(2000);
        let run = inflate_all(&gzip(&data), 1000, 4096, |_| false);
        assert!(run.chunks.len() > 10, "{} chunks", run.chunks.len());
        let mut next = 0u64;
        for c in &run.chunks {
            assert_eq!(c.base, next, "chunks follow each other");
            assert_eq!(c.bytes.last(), Some(&b'\n'));
            assert_eq!(&data[c.base as usize..][..c.bytes.len()], &c.bytes[..]);
            next += c.bytes.len() as u64;
        }
        assert!(run.fault.is_none());
        assert_eq!(run.inflated.inflated_len, data.len() as u64);
        assert_eq!(run.inflated.indexed_end, data.len() as u64);
    }

    #[test]
    fn chunks_grow_from_small_and_shrink_for_the_last_few() {
        // About 40 MB of lines, in 4 MB chunks.
        let data = lines(600_000);
        let target = 4 << 20;
        let run = inflate_all(&gzip(&data), target, CHECKPOINT_SPACING, |_| false);
        let sizes: Vec<usize> = run.chunks.iter().map(|c| c.bytes.len()).collect();
        let line = 200;
        // 256 KB, 512 KB, 1 MB, 2 MB, then whole chunks.
        for (k, &size) in sizes.iter().take(4).enumerate() {
            let ramp = FIRST_CHUNK << k;
            // A chunk holds the line carried over from the one before, up to its last line end.
            assert!(size.abs_diff(ramp) < line, "chunk {k}: {size}");
        }
        assert!(sizes[4].abs_diff(target) < line, "{}", sizes[4]);
        // The last chunks are a quarter of the target; none before the last is smaller.
        let quarter = sizes.iter().filter(|&&s| s.abs_diff(target / 4) < line);
        assert!(quarter.count() >= 3, "{sizes:?}");
        assert!(sizes[..sizes.len() - 1]
            .iter()
            .all(|&s| s + line > FIRST_CHUNK));
        assert_eq!(sizes.iter().sum::<usize>(), data.len());
    }

    #[test]
    fn checkpoints_resume_exactly_at_every_level() {
        let data = lines(40_000);
        for level in [0, 1, 6, 9] {
            let run = inflate_all(&gzip_at(&data, level), 64 * 1024, 100_000, |_| false);
            let points = run.inflated.checkpoints.points();
            // zlib-rs's level 1 (like zlib-ng's) may write one long block: fewer places to
            // resume, but the ones there are must be exact.
            assert!(
                points.len() > 5 || level == 1,
                "level {level}: {} checkpoints",
                points.len()
            );
            assert!(
                points.iter().any(|p| p.in_bit % 8 != 0) || level <= 1,
                "level {level}: some checkpoints fall inside a byte"
            );
            assert_checkpoints_resume(&run, &data);
        }
    }

    #[test]
    fn checkpoints_cross_member_boundaries() {
        // Many small members, as bgzip and pigz -i write them.
        let data = lines(30_000);
        let mut gz = Vec::new();
        for part in data.chunks(50_000) {
            gz.extend_from_slice(&gzip(part));
        }
        let run = inflate_all(&gz, 64 * 1024, 100_000, |_| false);
        assert!(run.fault.is_none(), "{:?}", run.fault);
        assert_eq!(run.inflated.inflated_len, data.len() as u64);
        let joined: Vec<u8> = run.chunks.iter().flat_map(|c| c.bytes.clone()).collect();
        assert_eq!(joined, data);
        assert_checkpoints_resume(&run, &data);
    }

    #[test]
    fn an_unterminated_last_line_is_kept_only_when_accepted() {
        let mut data = lines(50);
        data.extend_from_slice(b"{\"partial\":");
        let run = inflate_all(&gzip(&data), 64, 4096, |_| false);
        let end = data.len() - b"{\"partial\":".len();
        assert_eq!(run.inflated.inflated_len, data.len() as u64);
        assert_eq!(run.inflated.indexed_end, end as u64);
        assert!(run.chunks.last().unwrap().bytes.ends_with(b"\n"));
        let run = inflate_all(&gzip(&data), 64, 4096, |_| true);
        assert_eq!(run.inflated.indexed_end, data.len() as u64);
    }

    #[test]
    fn skipping_to_the_next_checkpoint_takes_the_same_checkpoints_as_stopping_at_every_block() {
        // Several levels (block sizes), one member or many, small and large chunks, small
        // input reads, and spacings that put the due point near block ends and chunk edges.
        let data = lines(40_000);
        let mut members = Vec::new();
        for part in data.chunks(70_001) {
            members.extend_from_slice(&gzip_at(part, 6));
        }
        // Sync flushes every 10,000 bytes end blocks exactly where checkpoints fall due
        // (the spacings below are multiples of it), the case where stopping one byte late
        // would run past the block end that should be taken.
        let mut flushed = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::new(6));
        for part in data.chunks(10_000) {
            flushed.write_all(part).unwrap();
            flushed.flush().unwrap();
        }
        let flushed = flushed.finish().unwrap();
        let inputs = [
            gzip_at(&data, 1),
            gzip_at(&data, 6),
            gzip_at(&data, 9),
            members,
            flushed,
        ];
        let mut compared = 0;
        for gz in &inputs {
            for (target, spacing, input_bytes) in [
                (64 * 1024, 50_000, 1 << 20),
                (40_000, 10_000, 1 << 20),
                (300_000, 30_000, 4096),
            ] {
                let points = |skip| {
                    let run = inflate_stopping(gz, target, spacing, |_| false, input_bytes, skip);
                    assert!(run.fault.is_none(), "{:?}", run.fault);
                    run.inflated
                        .checkpoints
                        .points()
                        .iter()
                        .map(|p| (p.out_offset, p.in_bit, p.partial_byte, p.window.clone()))
                        .collect::<Vec<_>>()
                };
                let (skipping, stopping) = (points(true), points(false));
                assert_eq!(skipping, stopping, "target {target}, spacing {spacing}");
                compared += stopping.len();
            }
        }
        assert!(compared > 100, "{compared}");
    }

    #[test]
    fn a_truncated_stream_keeps_the_good_prefix_and_names_the_fault() {
        let data = lines(20_000);
        let gz = gzip(&data);
        let run = inflate_all(&gz[..gz.len() / 2], 4096, 50_000, |_| false);
        let fault = run.fault.clone().expect("a fault");
        assert!(fault.contains("ends early (truncated?)"), "{fault}");
        let inflated = run.inflated.inflated_len;
        assert!(inflated > 0 && inflated < data.len() as u64);
        assert!(!run.chunks.is_empty());
        assert_checkpoints_resume(&run, &data);
    }

    #[test]
    fn garbage_after_a_member_is_a_fault_after_the_good_data() {
        let data = lines(100);
        let mut gz = gzip(&data);
        gz.extend_from_slice(b"not gzip at all");
        let mut it = InflatingChunks::open(&write_temp(&gz), 4096, |_| false).unwrap();
        for _ in it.by_ref() {}
        let fault = it.fault().expect("a fault").to_string();
        assert!(
            fault.starts_with("gzip data is followed by 15 bytes"),
            "{fault}"
        );
        assert!(!it.fault_lost_data());
        assert_eq!(it.finish().inflated_len, data.len() as u64);
        // Garbage where the first member should be is corruption, not trailing data.
        let mut it =
            InflatingChunks::open(&write_temp(b"\x1f\x8bnot really"), 4096, |_| false).unwrap();
        for _ in it.by_ref() {}
        assert!(it.fault_lost_data(), "{:?}", it.fault());
    }

    #[test]
    fn checkpoints_are_exact_at_every_input_buffer_edge() {
        // Block boundaries that fall on the input buffer's last byte (stored blocks leave
        // no bits held) once read past the buffer; any buffer size must work.
        let data = lines(20_000);
        for level in [0, 6] {
            let gz = gzip_at(&data, level);
            for input_bytes in [7, 17, 1031, 4096] {
                let run = inflate_with_input(&gz, 128 * 1024, 1, |_| false, input_bytes);
                assert!(run.fault.is_none(), "{:?}", run.fault);
                assert_eq!(run.inflated.inflated_len, data.len() as u64);
                assert_checkpoints_resume(&run, &data);
            }
        }
    }

    #[test]
    fn a_failed_integrity_check_says_the_damage_may_be_in_what_was_indexed() {
        let data = lines(3000);
        let mut gz = gzip_at(&data, 0);
        // A changed byte inside a stored block inflates fine; only the CRC catches it.
        let at = gz.len() / 2;
        gz[at] = if gz[at] == b'x' { b'y' } else { b'x' };
        let run = inflate_all(&gz, 4096, 4096, |_| false);
        assert!(!run.lost_data, "every byte of the last member came out");
        let fault = run.fault.expect("a fault");
        assert!(fault.contains("integrity check"), "{fault}");
        assert!(fault.contains("may hold damaged data"), "{fault}");
        // With a member after the damaged one, that member is lost.
        gz.extend_from_slice(&gzip(b"{\"more\":1}\n"));
        let run = inflate_all(&gz, 4096, 4096, |_| false);
        assert!(run.fault.is_some() && run.lost_data);
    }

    /// A gzip member written by hand with every optional header field: extra data, a
    /// name, a comment and a header CRC.
    fn member_with_every_header_field(data: &[u8]) -> Vec<u8> {
        let mut member = vec![0x1f, 0x8b, 8, 2 | 4 | 8 | 16, 0, 0, 0, 0, 0, 255];
        member.extend_from_slice(&5u16.to_le_bytes());
        member.extend_from_slice(b"extra");
        member.extend_from_slice(b"traces.jsonl\0a comment\0");
        let mut crc = flate2::Crc::new();
        crc.update(&member);
        member.extend_from_slice(&(crc.sum() as u16).to_le_bytes());
        let mut deflate =
            flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::new(6));
        deflate.write_all(data).unwrap();
        member.extend_from_slice(&deflate.finish().unwrap());
        let mut crc = flate2::Crc::new();
        crc.update(data);
        member.extend_from_slice(&crc.sum().to_le_bytes());
        member.extend_from_slice(&(data.len() as u32).to_le_bytes());
        member
    }

    #[test]
    fn members_with_every_header_field_resume_exactly() {
        let data = lines(30_000);
        let half = data.len() / 2;
        let mut gz = member_with_every_header_field(&data[..half]);
        gz.extend_from_slice(&member_with_every_header_field(&data[half..]));
        gz.extend_from_slice(&gzip(b""));
        let run = inflate_all(&gz, 64 * 1024, 100_000, |_| false);
        assert!(run.fault.is_none(), "{:?}", run.fault);
        assert_eq!(run.inflated.inflated_len, data.len() as u64);
        assert_checkpoints_resume(&run, &data);
    }

    #[test]
    fn member_headers_are_read_only_when_whole() {
        use crate::checkpoints::{member_header, Header};
        let full = member_with_every_header_field(b"x");
        let header_len = 10 + 2 + 5 + b"traces.jsonl\0a comment\0".len() + 2;
        assert_eq!(member_header(&full), Header::Length(header_len));
        for cut in 0..header_len {
            assert_eq!(
                member_header(&full[..cut]),
                Header::Incomplete,
                "cut at {cut}"
            );
        }
        assert_eq!(member_header(b"\0\0\0\0"), Header::NotGzip);
        assert_eq!(member_header(b"garbage after"), Header::NotGzip);
        assert_eq!(member_header(&[0x1f, 0x8b, 8, 0xe0]), Header::NotGzip);
    }

    #[test]
    fn a_member_that_fails_its_crc_still_reads_through_its_checkpoints() {
        let data = lines(3000);
        let mut gz = gzip_at(&data, 0);
        // A changed byte inside a stored block inflates fine; only the CRC catches it.
        let at = gz.len() / 2;
        gz[at] = if gz[at] == b'x' { b'y' } else { b'x' };
        let run = inflate_all(&gz, 4096, 4096, |_| false);
        assert!(run.fault.is_some());
        let cps = &run.inflated.checkpoints;
        let len = cps.inflated_len();
        assert_eq!(
            len,
            data.len() as u64,
            "every byte came out before the check"
        );
        // The index reported the fault and kept the lines: reads go on, CRC unchecked.
        let got = cps.inflate_range(run.gz.path(), 0..len).unwrap();
        let differing = got.iter().zip(&data).filter(|(a, b)| a != b).count();
        assert_eq!(differing, 1);
        let tail = cps.inflate_range(run.gz.path(), len - 100..len).unwrap();
        assert_eq!(tail, &got[got.len() - 100..]);
    }

    #[test]
    fn a_damaged_later_member_is_corruption_not_trailing_data() {
        let data = lines(200);
        let mut gz = gzip(&data[..data.len() / 2]);
        let second = gz.len();
        gz.extend_from_slice(&gzip(&data[data.len() / 2..]));
        gz[second + 3] = 0xe0; // reserved header flag bits
        let mut it = InflatingChunks::open(&write_temp(&gz), 4096, |_| false).unwrap();
        for _ in it.by_ref() {}
        assert!(it.fault_lost_data(), "{:?}", it.fault());
        assert!(it.fault().unwrap().contains("corrupt"), "{:?}", it.fault());
    }

    #[test]
    fn members_appended_later_are_read_from_where_the_first_ones_ended() {
        let data = lines(12_000);
        let (first, second) = data.split_at(data.len() / 3);
        let mut file = tempfile::NamedTempFile::new().unwrap();
        file.write_all(&gzip_at(first, 6)).unwrap();
        let mut it = InflatingChunks::open(file.path(), 64 * 1024, |_| false)
            .unwrap()
            .with_checkpoint_spacing(50_000);
        for _ in it.by_ref() {}
        let before = it.finish();
        let end = before.members_end.expect("a clean end");
        assert_eq!(end, std::fs::metadata(file.path()).unwrap().len());
        file.write_all(&gzip_at(second, 6)).unwrap();
        let mut it =
            InflatingChunks::open_at(file.path(), end, before.inflated_len, 64 * 1024, |_| false)
                .unwrap()
                .with_checkpoint_spacing(50_000);
        let chunks: Vec<InflatedChunk> = it.by_ref().collect();
        assert_eq!(chunks[0].base, first.len() as u64);
        let joined: Vec<u8> = chunks.iter().flat_map(|c| c.bytes.clone()).collect();
        assert_eq!(joined, second);
        let after = it.finish();
        assert_eq!(after.inflated_len, data.len() as u64);
        assert_eq!(
            after.members_end,
            Some(std::fs::metadata(file.path()).unwrap().len())
        );
        let mut all = before.checkpoints;
        all.extend(after.checkpoints);
        let run = Run {
            chunks: Vec::new(),
            fault: None,
            lost_data: false,
            inflated: Inflated {
                inflated_len: data.len() as u64,
                indexed_end: data.len() as u64,
                checkpoints: all,
                members_end: None,
                compressed: None,
            },
            gz: file,
        };
        assert_checkpoints_resume(&run, &data);
    }

    #[test]
    fn starting_past_the_end_of_a_shrunken_file_finds_nothing_and_does_not_panic() {
        let gz = write_temp(&gzip(&lines(50)));
        let len = std::fs::metadata(&gz).unwrap().len();
        let mut it = InflatingChunks::open_at(&gz, len + 100, 5_000, 1024, |_| false).unwrap();
        assert!(it.next().is_none());
        assert!(it.fault().is_none());
        let inflated = it.finish();
        assert_eq!(inflated.inflated_len, 5_000);
        assert_eq!(inflated.members_end, None, "the file does not end there");
    }

    #[test]
    fn zero_padding_after_the_last_member_is_a_clean_end() {
        let data = lines(100);
        let mut gz = gzip(&data);
        gz.extend_from_slice(&[0u8; 4096]);
        let run = inflate_all(&gz, 4096, 4096, |_| false);
        assert!(run.fault.is_none(), "{:?}", run.fault);
        assert_eq!(run.inflated.inflated_len, data.len() as u64);
    }

    #[test]
    fn an_empty_file_and_an_empty_member_are_empty_streams() {
        for gz in [Vec::new(), gzip(b"")] {
            let run = inflate_all(&gz, 4096, 4096, |_| false);
            assert!(run.fault.is_none(), "{:?}", run.fault);
            assert!(run.chunks.is_empty());
            assert_eq!(run.inflated.inflated_len, 0);
        }
    }

    #[test]
    fn a_line_longer_than_a_chunk_stays_whole() {
        let mut data = format!("{{\"big\":\"{}\"}}\n", "y".repeat(10_000)).into_bytes();
        data.extend_from_slice(&lines(10));
        let run = inflate_all(&gzip(&data), 100, 4096, |_| false);
        assert!(run.chunks[0].bytes.len() > 10_000);
        assert_eq!(
            run.chunks.iter().map(|c| c.bytes.len()).sum::<usize>(),
            data.len()
        );
    }

    #[test]
    fn damaged_checkpoint_files_are_refused() {
        let data = lines(5000);
        let run = inflate_all(&gzip(&data), 4096, 20_000, |_| false);
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cp");
        run.inflated.checkpoints.write(&path).unwrap();
        let good = std::fs::read(&path).unwrap();
        let refused = |bytes: &[u8]| {
            std::fs::write(&path, bytes).unwrap();
            GzipCheckpoints::read(&path).unwrap_err()
        };
        assert!(refused(&good[..good.len() - 3]).contains("checksum"));
        assert!(refused(&good[..5]).contains("truncated"));
        let mut flipped = good.clone();
        flipped[good.len() / 2] ^= 0x10;
        assert!(refused(&flipped).contains("checksum"));
        let mut other = good.clone();
        other[0] = b'X';
        assert!(refused(&other).contains("not a checkpoint file"));
        let mut longer = good.clone();
        longer.push(0);
        assert!(refused(&longer).contains("checksum"));
        assert_eq!(
            GzipCheckpoints::read(&{
                std::fs::write(&path, &good).unwrap();
                path.clone()
            })
            .unwrap(),
            run.inflated.checkpoints
        );
    }
}
