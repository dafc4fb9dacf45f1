//! A writer that checksums what passes through it, for files checked when read back
//! (the index's tables and the gzip checkpoints).

use std::io::Write;

/// A writer that hashes (xxh3) what passes through it.
pub struct HashingWriter<W> {
    inner: W,
    hash: xxhash_rust::xxh3::Xxh3,
}

impl<W: Write> HashingWriter<W> {
    /// Wraps `inner`.
    pub fn new(inner: W) -> Self {
        HashingWriter {
            inner,
            hash: xxhash_rust::xxh3::Xxh3::new(),
        }
    }

    /// The hash of everything written: `xxh3_64` of those bytes.
    pub fn digest(&self) -> u64 {
        self.hash.digest()
    }

    /// The wrapped writer.
    pub fn get_mut(&mut self) -> &mut W {
        &mut self.inner
    }
}

impl<W: std::fmt::Debug> std::fmt::Debug for HashingWriter<W> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HashingWriter")
            .field("inner", &self.inner)
            .finish_non_exhaustive()
    }
}

impl<W: Write> Write for HashingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hash.update(&buf[..n]);
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}
