//! Random reads from a gzip source without its inflated copy.
//!
//! Viewing or searching one trace needs only its spans' bytes. For a `.gz` source they are
//! inflated from the nearest checkpoint (one stretch between checkpoints, a few MB, a few
//! milliseconds), and the last few stretches are kept for the next read. Reads that jump
//! all over a large file would inflate it many times over, so once reads have inflated a
//! quarter of the file, the caller is told to make the inflated copy instead, which is made
//! once, in parallel, and then mapped.

use std::ops::Range;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, OnceLock};

use halo_ingest::{Fingerprint, GzipCheckpoints, CHECKPOINT_SPACING};

/// Stretches kept after a read (up to 8 × 16 MB per gzip file while a dataset is open).
const KEPT_STRETCHES: usize = 8;

/// Stretches longer than this are never inflated whole for one read, nor kept: a
/// compressor that wrote few deflate blocks leaves its checkpoints far apart.
const MAX_KEPT_STRETCH: u64 = 4 * CHECKPOINT_SPACING;

/// What a read found.
#[derive(Debug)]
pub(crate) enum GzipRead {
    /// The bytes, as a range of an inflated stretch.
    Bytes(Arc<Vec<u8>>, Range<usize>),
    /// The range lies outside the inflated stream.
    OutOfRange,
    /// Reads have inflated enough of the file that the inflated copy is cheaper.
    MakeCopy,
}

/// Why a read through checkpoints failed.
#[derive(Debug, Clone)]
pub(crate) enum GzipReadError {
    /// The checkpoint file is unreadable, damaged or does not match the index.
    Checkpoints { path: PathBuf, message: String },
    /// The `.gz` could not be read, or no longer inflates as it did.
    Source { path: PathBuf, message: String },
}

impl std::fmt::Display for GzipReadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            GzipReadError::Checkpoints { path, message }
            | GzipReadError::Source { path, message } => {
                write!(f, "{}: {message}", path.display())
            }
        }
    }
}

/// A gzip source read through its checkpoints.
#[derive(Debug)]
pub(crate) struct GzipAccess {
    source: PathBuf,
    checkpoints_path: PathBuf,
    /// The inflated length the index recorded; checkpoints that disagree are refused.
    inflated_len: u64,
    /// The source as it was indexed.
    fingerprint: Fingerprint,
    /// Making the inflated copy failed once: span reads stop asking for it.
    copy_failed: std::sync::atomic::AtomicBool,
    checkpoints: OnceLock<Result<Arc<GzipCheckpoints>, String>>,
    copy_present: OnceLock<bool>,
    stretches: Mutex<Stretches>,
}

#[derive(Debug, Default)]
struct Stretches {
    /// Most recently used first: (checkpoint index, its inflated stretch).
    recent: Vec<(usize, Arc<Vec<u8>>)>,
    /// Bytes inflated by reads so far.
    inflated: u64,
}

impl GzipAccess {
    /// Reads `source`, whose index recorded `inflated_len` inflated bytes, through the
    /// checkpoints stored at `checkpoints_path`.
    pub(crate) fn new(
        source: PathBuf,
        checkpoints_path: PathBuf,
        inflated_len: u64,
        fingerprint: Fingerprint,
    ) -> GzipAccess {
        GzipAccess {
            source,
            checkpoints_path,
            inflated_len,
            fingerprint,
            copy_failed: std::sync::atomic::AtomicBool::new(false),
            checkpoints: OnceLock::new(),
            copy_present: OnceLock::new(),
            stretches: Mutex::default(),
        }
    }

    /// The gzip file.
    pub(crate) fn source(&self) -> &std::path::Path {
        &self.source
    }

    /// The checkpoints, read on first use.
    pub(crate) fn checkpoints(&self) -> Result<Arc<GzipCheckpoints>, GzipReadError> {
        self.checkpoints
            .get_or_init(|| {
                let points = GzipCheckpoints::read(&self.checkpoints_path)?;
                if points.inflated_len() != self.inflated_len {
                    return Err(format!(
                        "the checkpoints cover {} bytes but the index recorded {}",
                        points.inflated_len(),
                        self.inflated_len
                    ));
                }
                Ok(Arc::new(points))
            })
            .clone()
            .map_err(|message| GzipReadError::Checkpoints {
                path: self.checkpoints_path.clone(),
                message,
            })
    }

    /// Fails unless the `.gz` still starts with the bytes that were indexed: members
    /// appended since (`gzip -c more >> x.gz`) leave the indexed ones readable as they were,
    /// so a scan under way is not stopped by them.
    pub(crate) fn check_unchanged(&self) -> Result<(), String> {
        match self.fingerprint.still_starts(&self.source) {
            Ok(true) => Ok(()),
            Ok(false) => Err(format!(
                "{} changed since it was indexed (it was rewritten, not appended to); run the command again to index it again",
                self.source.display()
            )),
            Err(e) => Err(format!("{}: {e}", self.source.display())),
        }
    }

    /// Remembers that making the inflated copy failed, so span reads stop asking for it.
    pub(crate) fn note_copy_failed(&self) {
        self.copy_failed
            .store(true, std::sync::atomic::Ordering::Relaxed);
    }

    /// Whether making the inflated copy failed before.
    pub(crate) fn copy_failed(&self) -> bool {
        self.copy_failed.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Whether the whole inflated copy was at `copy` when first asked (asked once, so that
    /// reading thousands of spans costs no file-system call each).
    pub(crate) fn copy_was_present(&self, copy: &std::path::Path) -> bool {
        *self
            .copy_present
            .get_or_init(|| std::fs::metadata(copy).is_ok_and(|m| m.len() == self.inflated_len))
    }

    /// The inflated bytes at `range`. With `may_ask_for_copy`, scattered reads that have
    /// inflated a quarter of the file get [`GzipRead::MakeCopy`] instead.
    pub(crate) fn read(
        &self,
        range: Range<u64>,
        may_ask_for_copy: bool,
    ) -> Result<GzipRead, GzipReadError> {
        let points = self.checkpoints()?;
        if range.start > range.end || range.end > points.inflated_len() {
            return Ok(GzipRead::OutOfRange);
        }
        let (i, stretch) = points.stretch_at(range.start);
        let local = (range.start - stretch.start) as usize..(range.end - stretch.start) as usize;
        {
            let mut stretches = self.lock();
            if let Some(at) = stretches.recent.iter().position(|(k, _)| *k == i) {
                let hit = stretches.recent.remove(at);
                stretches.recent.insert(0, hit.clone());
                if range.end <= stretch.end {
                    return Ok(GzipRead::Bytes(hit.1, local));
                }
            }
            if may_ask_for_copy && stretches.inflated > points.inflated_len() / 4 {
                return Ok(GzipRead::MakeCopy);
            }
        }
        // Inflate without holding the lock: other readers go on meanwhile.
        if range.end > stretch.end || stretch.end - stretch.start > MAX_KEPT_STRETCH {
            // Read alone: a range across a checkpoint (a span longer than the spacing), or
            // one in a stretch too long to keep. What precedes it was inflated too.
            let bytes = self.inflate(&points, range.clone())?;
            self.lock().inflated += range.end - stretch.start;
            let len = bytes.len();
            return Ok(GzipRead::Bytes(Arc::new(bytes), 0..len));
        }
        let bytes = Arc::new(self.inflate(&points, stretch.clone())?);
        let mut stretches = self.lock();
        stretches.inflated += bytes.len() as u64;
        if !stretches.recent.iter().any(|(k, _)| *k == i) {
            stretches.recent.insert(0, (i, bytes.clone()));
            stretches.recent.truncate(KEPT_STRETCHES);
        }
        Ok(GzipRead::Bytes(bytes, local))
    }

    fn inflate(
        &self,
        points: &GzipCheckpoints,
        range: Range<u64>,
    ) -> Result<Vec<u8>, GzipReadError> {
        points
            .inflate_range(&self.source, range)
            .map_err(|message| GzipReadError::Source {
                path: self.source.clone(),
                message,
            })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Stretches> {
        self.stretches.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn setup(lines: usize, spacing: u64) -> (tempfile::TempDir, GzipAccess, Vec<u8>) {
        let dir = tempfile::tempdir().unwrap();
        let mut seed = 0x9e37_79b9_7f4a_7c15u64;
        let data: Vec<u8> = (0..lines)
            .flat_map(|i| {
                // Varied enough that deflate blocks, and so checkpoints, come often.
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                format!("{{\"n\":{i},\"v\":\"{seed:016x}\"}}\n").into_bytes()
            })
            .collect();
        let gz = dir.path().join("t.jsonl.gz");
        let mut enc = flate2::write::GzEncoder::new(
            std::fs::File::create(&gz).unwrap(),
            flate2::Compression::default(),
        );
        enc.write_all(&data).unwrap();
        enc.finish().unwrap();
        let mut chunks = halo_ingest::InflatingChunks::open(&gz, 64 * 1024, |_| false)
            .unwrap()
            .with_checkpoint_spacing(spacing);
        for _ in chunks.by_ref() {}
        let checkpoints = dir.path().join("cp");
        chunks.finish().checkpoints.write(&checkpoints).unwrap();
        let len = data.len() as u64;
        let fingerprint = Fingerprint::of(&gz).unwrap();
        (
            dir,
            GzipAccess::new(gz, checkpoints, len, fingerprint),
            data,
        )
    }

    impl GzipAccess {
        fn read_for_test(&self, range: Range<u64>) -> Result<GzipRead, GzipReadError> {
            self.read(range, true)
        }
    }

    fn bytes(read: GzipRead) -> Vec<u8> {
        match read {
            GzipRead::Bytes(b, r) => b[r].to_vec(),
            other => panic!("expected bytes, got {other:?}"),
        }
    }

    #[test]
    fn reads_any_range_and_keeps_recent_stretches() {
        let (_dir, access, data) = setup(60_000, 64 * 1024);
        assert!(access.checkpoints().unwrap().points().len() > 10);
        let len = data.len() as u64;
        for start in [0, 1, 65_000, 300_001, len - 10] {
            let end = (start + 5000).min(len);
            let got = bytes(access.read_for_test(start..end).unwrap());
            assert_eq!(got, &data[start as usize..end as usize], "at {start}");
        }
        // Across a checkpoint, and the same stretch again without inflating more.
        let got = bytes(access.read_for_test(60_000..200_000).unwrap());
        assert_eq!(got, &data[60_000..200_000]);
        let before = access.stretches.lock().unwrap().inflated;
        bytes(access.read_for_test(300_100..300_200).unwrap());
        assert_eq!(access.stretches.lock().unwrap().inflated, before);
        assert!(matches!(
            access.read_for_test(len - 1..len + 1).unwrap(),
            GzipRead::OutOfRange
        ));
    }

    #[test]
    fn scattered_reads_ask_for_the_copy_after_a_quarter_of_the_file() {
        let (_dir, access, data) = setup(60_000, 64 * 1024);
        let len = data.len() as u64;
        let mut asked = false;
        for k in 0..200u64 {
            let start = k * 7_777_777 % (len - 100);
            match access.read_for_test(start..start + 100).unwrap() {
                GzipRead::MakeCopy => {
                    asked = true;
                    break;
                }
                read => assert_eq!(bytes(read), &data[start as usize..start as usize + 100]),
            }
        }
        assert!(asked, "scattered reads switch to the copy");
        let inflated = access.stretches.lock().unwrap().inflated;
        assert!(
            inflated < len / 2,
            "{inflated} of {len} bytes inflated first"
        );
    }
}
