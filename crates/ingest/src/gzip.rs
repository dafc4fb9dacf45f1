use std::io::{Read, Write};
use std::path::Path;

use crate::problem::IngestError;

/// A chunk of complete lines inflated from a gzip file.
#[derive(Debug)]
pub struct InflatedChunk {
    /// The lines (the last chunk may end with a line that has no line break).
    pub bytes: Vec<u8>,
    /// Where `bytes` start in the inflated stream (and in the cache file).
    pub base: u64,
    /// Compressed bytes read so far, for progress.
    pub compressed_read: u64,
}

type GzReader = flate2::read::MultiGzDecoder<std::io::BufReader<CountingReader<std::fs::File>>>;

/// Inflates a gzip file (all members) chunk by chunk, each chunk ending on a line break,
/// and writes every inflated byte to a cache file as it goes, so an index can be built
/// while the stream is still inflating and the cache serves random access afterwards.
///
/// The iterator ends at the end of the stream, at a corrupt or truncated stream (the good
/// prefix is kept: see [`InflatingChunks::fault`]) or at a failed write to the cache (see
/// [`InflatingChunks::finish`]). A last line without a line break is indexed only when
/// `keep_unterminated` accepts it, as [`crate::complete_end`] decides for plain files.
pub struct InflatingChunks {
    decoder: GzReader,
    cache: std::fs::File,
    cache_path: std::path::PathBuf,
    carry: Vec<u8>,
    base: u64,
    target: usize,
    keep_unterminated: fn(&[u8]) -> bool,
    indexed_end: u64,
    fault: Option<String>,
    error: Option<IngestError>,
    done: bool,
    pool: ChunkPool,
}

impl std::fmt::Debug for InflatingChunks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InflatingChunks")
            .field("cache_path", &self.cache_path)
            .field("base", &self.base)
            .finish_non_exhaustive()
    }
}

impl InflatingChunks {
    /// Opens `src` and creates the cache file `cache`; chunks are about `target` bytes.
    pub fn open(
        src: &Path,
        cache: &Path,
        target: usize,
        keep_unterminated: fn(&[u8]) -> bool,
    ) -> Result<InflatingChunks, IngestError> {
        let file = std::fs::File::open(src).map_err(|e| IngestError::Io {
            path: src.to_path_buf(),
            error: e,
        })?;
        let counter = CountingReader {
            inner: file,
            read: 0,
        };
        let cache_file = std::fs::File::create(cache).map_err(|e| IngestError::Io {
            path: cache.to_path_buf(),
            error: e,
        })?;
        Ok(InflatingChunks {
            decoder: flate2::read::MultiGzDecoder::new(std::io::BufReader::with_capacity(
                1 << 20,
                counter,
            )),
            cache: cache_file,
            cache_path: cache.to_path_buf(),
            carry: Vec::new(),
            base: 0,
            target: target.max(1),
            keep_unterminated,
            indexed_end: 0,
            fault: None,
            error: None,
            done: false,
            pool: ChunkPool::default(),
        })
    }

    /// Why the stream ended early, if it did: the data before the fault was kept.
    pub fn fault(&self) -> Option<&str> {
        self.fault.as_deref()
    }

    /// Ends the inflation: the total inflated bytes (the cache file's size) and the end of
    /// what was handed out for indexing, or the error that stopped writing the cache.
    pub fn finish(self) -> Result<(u64, u64), IngestError> {
        if let Some(e) = self.error {
            return Err(e);
        }
        Ok((self.base, self.indexed_end))
    }

    /// Reads until `buf` holds `target` more bytes or the stream ends; true at the end.
    fn fill(&mut self, buf: &mut Vec<u8>) -> bool {
        let want = self.target as u64;
        // `read_to_end` fills spare capacity without zeroing it first.
        match (&mut self.decoder).take(want).read_to_end(buf) {
            Ok(n) => (n as u64) < want,
            Err(e) => {
                self.fault = Some(format!(
                    "gzip stream is corrupt or truncated after {} bytes: {e}",
                    self.base + buf.len() as u64
                ));
                true
            }
        }
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
        let (cut, at_end) = loop {
            let at_end = self.fill(&mut buf);
            if at_end {
                break (buf.len(), true);
            }
            // Chunks end on a line break; a line longer than a chunk just makes it longer.
            if let Some(i) = memchr::memrchr(b'\n', &buf) {
                break (i + 1, false);
            }
        };
        if let Err(e) = self.cache.write_all(&buf[..cut]) {
            self.error = Some(IngestError::Io {
                path: self.cache_path.clone(),
                error: e,
            });
            self.done = true;
            return None;
        }
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
            compressed_read: self.decoder.get_ref().get_ref().read,
        })
    }
}

struct CountingReader<R> {
    inner: R,
    read: u64,
}

impl<R: Read> Read for CountingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.read += n as u64;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gzip(data: &[u8]) -> Vec<u8> {
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        enc.write_all(data).unwrap();
        enc.finish().unwrap()
    }

    fn lines(n: usize) -> Vec<u8> {
        (0..n)
            .map(|i| format!("{{\"line\":{i},\"pad\":\"{}\"}}\n", "x".repeat(i % 37)))
            .collect::<String>()
            .into_bytes()
    }

    fn inflate_all(
        gz: &[u8],
        target: usize,
        keep: fn(&[u8]) -> bool,
    ) -> (Vec<InflatedChunk>, InflatingChunks, Vec<u8>) {
        let dir = tempfile::tempdir().unwrap();
        let src = dir.path().join("t.jsonl.gz");
        std::fs::write(&src, gz).unwrap();
        let cache = dir.path().join("cache.jsonl");
        let mut it = InflatingChunks::open(&src, &cache, target, keep).unwrap();
        let chunks: Vec<InflatedChunk> = it.by_ref().collect();
        let cached = std::fs::read(&cache).unwrap();
        (chunks, it, cached)
    }

    #[test]
    fn chunks_end_on_line_breaks_and_the_cache_holds_every_byte() {
        let data = lines(2000);
        let (chunks, it, cached) = inflate_all(&gzip(&data), 1000, |_| false);
        assert!(chunks.len() > 10, "{} chunks", chunks.len());
        let mut next = 0u64;
        for c in &chunks {
            assert_eq!(c.base, next, "chunks follow each other");
            assert_eq!(c.bytes.last(), Some(&b'\n'));
            assert_eq!(&data[c.base as usize..][..c.bytes.len()], &c.bytes[..]);
            next += c.bytes.len() as u64;
        }
        assert!(it.fault().is_none());
        assert_eq!(it.finish().unwrap(), (data.len() as u64, data.len() as u64));
        assert_eq!(cached, data);
    }

    #[test]
    fn an_unterminated_last_line_is_kept_only_when_accepted() {
        let mut data = lines(50);
        data.extend_from_slice(b"{\"partial\":");
        let (chunks, it, cached) = inflate_all(&gzip(&data), 64, |_| false);
        let end = data.len() - b"{\"partial\":".len();
        assert_eq!(it.finish().unwrap(), (data.len() as u64, end as u64));
        assert_eq!(cached, data, "the cache keeps the partial line");
        assert!(chunks.last().unwrap().bytes.ends_with(b"\n"));
        let (_, it, _) = inflate_all(&gzip(&data), 64, |_| true);
        assert_eq!(it.finish().unwrap().1, data.len() as u64);
    }

    #[test]
    fn a_truncated_stream_keeps_the_good_prefix_and_names_the_fault() {
        let data = lines(5000);
        let gz = gzip(&data);
        let (chunks, it, cached) = inflate_all(&gz[..gz.len() / 2], 4096, |_| false);
        let fault = it.fault().expect("a fault").to_string();
        assert!(fault.contains("corrupt or truncated"), "{fault}");
        let (inflated, _) = it.finish().unwrap();
        assert!(inflated > 0 && inflated < data.len() as u64);
        assert_eq!(&cached[..], &data[..cached.len()]);
        assert!(!chunks.is_empty());
    }

    #[test]
    fn a_line_longer_than_a_chunk_stays_whole() {
        let mut data = format!("{{\"big\":\"{}\"}}\n", "y".repeat(10_000)).into_bytes();
        data.extend_from_slice(&lines(10));
        let (chunks, _, _) = inflate_all(&gzip(&data), 100, |_| false);
        assert!(chunks[0].bytes.len() > 10_000);
        assert_eq!(
            chunks.iter().map(|c| c.bytes.len()).sum::<usize>(),
            data.len()
        );
    }
}
