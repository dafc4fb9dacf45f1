//! Checkpoints into a gzip file: places where inflating can start again without reading
//! the file from its beginning (the technique of zlib's `zran.c`).
//!
//! A checkpoint is taken between two deflate blocks every few MB of output while the file
//! is indexed. It holds the bit position in the compressed file and the last 32 KiB of
//! output, which is all that back-references of later blocks can reach. With them, any
//! range of the inflated stream can be produced by inflating at most one checkpoint
//! spacing of extra data, and the whole stream can be inflated in parallel, one span
//! between checkpoints per worker. That is why indexing a `.gz` file writes no
//! decompressed copy: the copy is made later, in parallel, and only when a query needs
//! random access ([`GzipCheckpoints::materialize`]).

use std::io::{Read, Seek, SeekFrom, Write};
use std::mem::MaybeUninit;
use std::ops::Range;
use std::path::Path;

use crate::zstream::{Framing, Inflater};

/// How much history a deflate back-reference can reach.
pub const WINDOW_BYTES: usize = 32 * 1024;

/// Output between two checkpoints (at least; checkpoints fall between deflate blocks).
pub const CHECKPOINT_SPACING: u64 = 4 << 20;

const MAGIC: &[u8; 8] = b"HALOGZC1";

/// Where inflating can start again in the middle of a gzip file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkpoint {
    /// Offset in the inflated stream.
    pub out_offset: u64,
    /// Position in the compressed file, in bits.
    pub in_bit: u64,
    /// The byte at `in_bit / 8`, whose high `8 - in_bit % 8` bits are still unread.
    pub partial_byte: u8,
    /// The start of a gzip member (its header comes next; no window is needed).
    pub member_start: bool,
    /// Up to the last 32 KiB of output before `out_offset`.
    pub window: Vec<u8>,
}

/// The checkpoints of one gzip file, in stream order, and its inflated length.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GzipCheckpoints {
    /// The checkpoints; the first is always the start of the file.
    pub points: Vec<Checkpoint>,
    /// Bytes of inflated output the checkpoints cover (up to a fault, if the stream has one).
    pub inflated_len: u64,
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
    /// Writes the checkpoints to `path`.
    pub fn write(&self, path: &Path) -> std::io::Result<()> {
        let mut w = std::io::BufWriter::new(std::fs::File::create(path)?);
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
        w.into_inner().map_err(|e| e.into_error())?.sync_data()
    }

    /// Reads checkpoints written by [`GzipCheckpoints::write`], checking that they make
    /// sense; the error says what is wrong.
    pub fn read(path: &Path) -> Result<GzipCheckpoints, String> {
        let bytes = std::fs::read(path).map_err(|e| e.to_string())?;
        let mut r = Cursor {
            bytes: &bytes,
            at: 0,
        };
        if r.take(8)? != MAGIC {
            return Err("not a checkpoint file".into());
        }
        let inflated_len = r.u64()?;
        let count = r.u64()?;
        let mut points = Vec::with_capacity(count.min(1 << 20) as usize);
        for _ in 0..count {
            let out_offset = r.u64()?;
            let in_bit = r.u64()?;
            let flags = r.take(2)?;
            let window_len = u32::from_le_bytes(r.take(4)?.try_into().expect("4 bytes"));
            if window_len as usize > WINDOW_BYTES {
                return Err(format!("a window of {window_len} bytes"));
            }
            let window = r.take(window_len as usize)?.to_vec();
            let ordered = points
                .last()
                .is_none_or(|p: &Checkpoint| p.out_offset < out_offset && p.in_bit < in_bit);
            if !ordered || out_offset > inflated_len {
                return Err(format!("checkpoint at {out_offset} is out of order"));
            }
            points.push(Checkpoint {
                out_offset,
                in_bit,
                partial_byte: flags[0],
                member_start: flags[1] != 0,
                window,
            });
        }
        if r.at != bytes.len() {
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

    /// Inflates `range` of the stream from the nearest checkpoint before it.
    pub fn inflate_range(&self, gz: &Path, range: Range<u64>) -> Result<Vec<u8>, String> {
        let end = range.end.min(self.inflated_len);
        let start = range.start.min(end);
        let i = self
            .points
            .partition_point(|p| p.out_offset <= start)
            .saturating_sub(1);
        let point = &self.points[i];
        let mut source = ResumedStream::open(gz, point)?;
        let mut skip = start - point.out_offset;
        let want = (end - start) as usize;
        let mut out = Vec::with_capacity(want);
        let mut discard = vec![MaybeUninit::<u8>::uninit(); 64 * 1024];
        while out.len() < want {
            let produced = if skip > 0 {
                let n = skip.min(discard.len() as u64) as usize;
                let produced = source.inflate(&mut discard[..n])?;
                skip -= produced as u64;
                produced
            } else {
                let len = out.len();
                let produced = source.inflate(&mut out.spare_capacity_mut()[..want - len])?;
                // SAFETY: zlib initialised the first `produced` spare bytes.
                unsafe { out.set_len(len + produced) };
                produced
            };
            if produced == 0 && source.exhausted() {
                return Err(format!(
                    "{}: the compressed data ends {} bytes early",
                    gz.display(),
                    want - out.len()
                ));
            }
        }
        Ok(out)
    }

    /// Writes the whole inflated stream to `dest`, atomically, inflating the stretches
    /// between checkpoints on `workers` threads at once; `written` hears the size of each
    /// stretch as it lands, for progress.
    pub fn materialize(
        &self,
        gz: &Path,
        dest: &Path,
        workers: usize,
        written: &(dyn Fn(u64) + Sync),
    ) -> Result<(), String> {
        let tmp = dest.with_extension(format!("tmp-{}", std::process::id()));
        let fail = |e: std::io::Error| format!("{}: {e}", tmp.display());
        std::fs::File::create(&tmp)
            .and_then(|f| f.set_len(self.inflated_len))
            .map_err(fail)?;
        let pieces: Vec<Range<u64>> = self
            .points
            .iter()
            .enumerate()
            .map(|(i, p)| {
                let end = self
                    .points
                    .get(i + 1)
                    .map_or(self.inflated_len, |n| n.out_offset);
                p.out_offset..end
            })
            .filter(|r| !r.is_empty())
            .collect();
        let next = std::sync::atomic::AtomicUsize::new(0);
        let failure = std::sync::Mutex::new(None::<String>);
        std::thread::scope(|scope| {
            for _ in 0..workers.clamp(1, pieces.len().max(1)) {
                scope.spawn(|| {
                    let run = || -> Result<(), String> {
                        let mut file = std::fs::OpenOptions::new()
                            .write(true)
                            .open(&tmp)
                            .map_err(fail)?;
                        loop {
                            let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                            let Some(piece) = pieces.get(i) else {
                                return Ok(());
                            };
                            let bytes = self.inflate_range(gz, piece.clone())?;
                            file.seek(SeekFrom::Start(piece.start))
                                .and_then(|_| file.write_all(&bytes))
                                .map_err(fail)?;
                            written(bytes.len() as u64);
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
        if let Some(e) = failure.into_inner().unwrap_or_else(|e| e.into_inner()) {
            let _ = std::fs::remove_file(&tmp);
            return Err(e);
        }
        std::fs::rename(&tmp, dest).map_err(|e| format!("{}: {e}", dest.display()))
    }
}

/// A gzip file read from a checkpoint on, across member boundaries.
struct ResumedStream {
    file: std::fs::File,
    inflater: Inflater,
    framing: Framing,
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
        let (framing, resume_at) = if point.member_start {
            (Framing::Gzip, byte)
        } else {
            (Framing::Raw, byte + u64::from(bits != 0))
        };
        let mut inflater = Inflater::new(framing)?;
        if framing == Framing::Raw {
            if bits != 0 {
                inflater.prime(8 - bits, point.partial_byte >> bits)?;
            }
            inflater.set_window(&point.window)?;
        }
        file.seek(SeekFrom::Start(resume_at)).map_err(io)?;
        Ok(ResumedStream {
            file,
            inflater,
            framing,
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
                self.hi = self.file.read(&mut self.buf).map_err(|e| e.to_string())?;
                self.lo = 0;
                self.eof = self.hi == 0;
            }
            let step = self
                .inflater
                .inflate(&self.buf[self.lo..self.hi], out, false)?;
            self.lo += step.consumed;
            if step.stream_end {
                // The inflater may have read a few bytes past the end of the deflate data;
                // a raw stream is followed by the member's 8-byte trailer.
                let mut next = self.buf_start + self.lo as u64 - step.held_bits() / 8;
                if self.framing == Framing::Raw {
                    next += 8;
                }
                self.file
                    .seek(SeekFrom::Start(next))
                    .map_err(|e| e.to_string())?;
                self.buf_start = next;
                self.lo = 0;
                self.hi = 0;
                self.eof = false;
                self.framing = Framing::Gzip;
                self.inflater.reset(Framing::Gzip)?;
            }
            if step.produced > 0 || self.exhausted() {
                return Ok(step.produced);
            }
        }
    }
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
