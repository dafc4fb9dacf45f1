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
    /// Set for a temporary file that could not be deleted while mapped (where the system
    /// forbids that): it is deleted when the map goes.
    delete_on_drop: bool,
}

impl MappedFile {
    /// Maps a file.
    pub fn open(path: &Path) -> Result<MappedFile, IngestError> {
        let io = |e| IngestError::Io {
            path: path.to_path_buf(),
            error: e,
        };
        let file = std::fs::File::open(path).map_err(io)?;
        let len = file.metadata().map_err(io)?.len();
        let map = if len == 0 {
            None
        } else {
            // SAFETY: the map is read-only. A concurrent writer that truncates the file could
            // make pages vanish; appends (the common case for live trace files) are safe, and
            // readers only look at the length captured here.
            let map = unsafe { memmap2::Mmap::map(&file) }.map_err(io)?;
            #[cfg(unix)]
            let _ = map.advise(memmap2::Advice::Sequential);
            Some(map)
        };
        Ok(MappedFile {
            path: path.to_path_buf(),
            map,
            delete_on_drop: false,
        })
    }

    /// Maps a temporary file and deletes it at once: the map keeps its pages alive until
    /// it is dropped, and nothing is left behind even if the process is killed. Where a
    /// mapped file cannot be deleted, it is deleted when the map is dropped.
    pub fn open_temporary(path: &Path) -> Result<MappedFile, IngestError> {
        let mut mapped = MappedFile::open(path);
        let deleted = std::fs::remove_file(path).is_ok();
        if let Ok(m) = &mut mapped {
            m.delete_on_drop = !deleted;
        }
        mapped
    }

    /// The bytes.
    pub fn bytes(&self) -> &[u8] {
        self.map.as_deref().unwrap_or(&[])
    }

    /// The path.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for MappedFile {
    fn drop(&mut self) {
        if self.delete_on_drop {
            self.map = None;
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_temporary_map_leaves_no_file_behind_and_keeps_its_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("scratch");
        std::fs::write(&path, b"inflated bytes").unwrap();
        let mapped = MappedFile::open_temporary(&path).unwrap();
        #[cfg(unix)]
        assert!(!path.exists(), "deleted while still mapped");
        assert_eq!(mapped.bytes(), b"inflated bytes");
        drop(mapped);
        assert!(!path.exists());
    }
}
