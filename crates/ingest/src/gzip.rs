use std::io::{BufWriter, Read, Write};
use std::path::Path;

use crate::problem::IngestError;

/// Inflates a gzip file (all members, as `cat a.gz b.gz` makes) into `dest`, writing to a
/// temporary file first and renaming it, so a crash never leaves a half-written cache that
/// looks complete. `progress` is called with the number of compressed bytes read so far.
///
/// A truncated or corrupt stream keeps what was inflated before the fault and returns the
/// error message beside the byte count, so the dataset is not lost for one bad tail.
pub fn inflate_to(
    src: &Path,
    dest: &Path,
    mut progress: impl FnMut(u64),
) -> Result<(u64, Option<String>), IngestError> {
    let io_src = |e| IngestError::Io {
        path: src.to_path_buf(),
        error: e,
    };
    let io_dest = |e| IngestError::Io {
        path: dest.to_path_buf(),
        error: e,
    };
    let file = std::fs::File::open(src).map_err(io_src)?;
    let counter = CountingReader {
        inner: file,
        read: 0,
    };
    let mut decoder =
        flate2::read::MultiGzDecoder::new(std::io::BufReader::with_capacity(1 << 20, counter));
    let tmp = dest.with_extension("tmp");
    let mut out = BufWriter::with_capacity(1 << 20, std::fs::File::create(&tmp).map_err(io_dest)?);
    let mut buf = vec![0u8; 1 << 20];
    let mut total = 0u64;
    let mut fault = None;
    loop {
        match decoder.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                out.write_all(&buf[..n]).map_err(io_dest)?;
                total += n as u64;
                progress(decoder.get_ref().get_ref().read);
            }
            Err(e) => {
                fault = Some(format!(
                    "gzip stream is corrupt or truncated after {total} bytes: {e}"
                ));
                break;
            }
        }
    }
    out.flush().map_err(io_dest)?;
    drop(out);
    std::fs::rename(&tmp, dest).map_err(io_dest)?;
    Ok((total, fault))
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
