use std::path::{Path, PathBuf};

use crate::problem::IngestError;

/// A read-only memory map of a file; an empty file maps to an empty slice.
///
/// The map is shared, not copied: the kernel pages the file in as it is read, so indexing a
/// multi-GB file does not hold it on the heap.
#[derive(Debug)]
pub struct MappedFile {
    path: PathBuf,
    map: Option<memmap2::Mmap>,
}

impl MappedFile {
    /// Maps a file.
    pub fn open(path: &Path) -> Result<MappedFile, IngestError> {
        let file = std::fs::File::open(path).map_err(|e| IngestError::Io {
            path: path.to_path_buf(),
            error: e,
        })?;
        MappedFile::from_file(&file, path)
    }

    /// Maps an open file (one with no name, say), called `path` in messages. The map
    /// stays valid after `file` is closed.
    pub fn from_file(file: &std::fs::File, path: &Path) -> Result<MappedFile, IngestError> {
        let io = |e| IngestError::Io {
            path: path.to_path_buf(),
            error: e,
        };
        let len = file.metadata().map_err(io)?.len();
        let map = if len == 0 {
            None
        } else {
            // SAFETY: the map is read-only. A concurrent writer that truncates the file could
            // make pages vanish; appends (the common case for live trace files) are safe, and
            // readers only look at the length captured here.
            let map = unsafe { memmap2::Mmap::map(file) }.map_err(io)?;
            #[cfg(unix)]
            let _ = map.advise(memmap2::Advice::Sequential);
            Some(map)
        };
        Ok(MappedFile {
            path: path.to_path_buf(),
            map,
        })
    }

    /// The bytes.
    pub fn bytes(&self) -> &[u8] {
        self.map.as_deref().unwrap_or(&[])
    }

    /// Lets go of the pages of `range`, bytes read and not needed soon: their mappings are
    /// dropped now, a little at a time while reading goes on, instead of all together when
    /// the map is dropped. Unmapping a large map at once holds the process's address-space
    /// lock for milliseconds, stalling every thread that faults a page or starts meanwhile.
    /// Reading the range again maps the same bytes back from the page cache.
    pub fn release(&self, range: std::ops::Range<usize>) {
        #[cfg(unix)]
        if let Some(map) = &self.map {
            if range.start < range.end && range.end <= map.len() {
                // SAFETY: the map is a read-only shared map of a file: dropping its pages'
                // mappings discards nothing, and a later read faults in the file's bytes
                // again (no reference into the range is invalidated). Failure only leaves
                // the pages mapped.
                let _ = unsafe {
                    map.unchecked_advise_range(
                        memmap2::UncheckedAdvice::DontNeed,
                        range.start,
                        range.end - range.start,
                    )
                };
            }
        }
        #[cfg(not(unix))]
        let _ = range;
    }

    /// The path.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn a_file_with_no_name_maps_and_leaves_nothing_behind() {
        let dir = tempfile::tempdir().unwrap();
        let mut file = tempfile::tempfile_in(dir.path()).unwrap();
        file.write_all(b"inflated bytes").unwrap();
        let mapped = MappedFile::from_file(&file, Path::new("scratch")).unwrap();
        drop(file);
        assert_eq!(mapped.bytes(), b"inflated bytes");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }

    #[test]
    fn released_pages_read_the_same_bytes_again() {
        let mut file = tempfile::NamedTempFile::new().unwrap();
        let data: Vec<u8> = (0..3 * 4096 + 100).map(|i| (i % 251) as u8).collect();
        file.write_all(&data).unwrap();
        let mapped = MappedFile::open(file.path()).unwrap();
        assert_eq!(mapped.bytes(), &data[..]);
        mapped.release(0..2 * 4096 + 7);
        mapped.release(4096..data.len());
        // Out of bounds or empty: nothing happens.
        mapped.release(0..data.len() + 1);
        mapped.release(5..5);
        assert_eq!(mapped.bytes(), &data[..]);
    }
}
