//! Which file a path names: two paths to one file (hard links) are one dataset file, and a
//! file read later (a span table loaded on first use, a source mapped for a scan) is known
//! to be the one a dataset opened.
//!
//! Log rotation renames a source and writes a new one under its name; another halo process
//! may rebuild an index and swap it in. Either can happen between opening a dataset and
//! reading one of its files lazily, minutes later in a long analysis run; reading the new
//! file against the old rollups would give another trace's spans, silently.

use std::path::Path;

/// A file's identity: device and inode where the system has them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FileIdentity {
    #[cfg(unix)]
    dev: u64,
    #[cfg(unix)]
    ino: u64,
}

impl FileIdentity {
    /// The identity of the file at `path` now, or `None` when it cannot be read (the
    /// later read then reports the error) or the system has no inode numbers.
    pub fn of(path: &Path) -> Option<FileIdentity> {
        #[cfg(unix)]
        {
            use std::os::unix::fs::MetadataExt;
            let m = std::fs::metadata(path).ok()?;
            Some(FileIdentity {
                dev: m.dev(),
                ino: m.ino(),
            })
        }
        #[cfg(not(unix))]
        {
            let _ = path;
            None
        }
    }

    /// Whether `path` still names the file `expected` recorded (always, when nothing was
    /// recorded).
    pub fn still(expected: Option<FileIdentity>, path: &Path) -> bool {
        expected.is_none_or(|e| FileIdentity::of(path) == Some(e))
    }
}

#[cfg(all(test, unix))]
mod tests {
    use super::FileIdentity;

    #[test]
    fn a_file_replaced_under_its_name_is_another_file() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("a.jsonl");
        std::fs::write(&path, "one").unwrap();
        let id = FileIdentity::of(&path);
        assert!(id.is_some());
        std::fs::write(&path, "rewritten in place").unwrap();
        assert!(FileIdentity::still(id, &path), "same file, new contents");
        std::fs::rename(&path, tmp.path().join("a.jsonl.1")).unwrap();
        std::fs::write(&path, "rotated").unwrap();
        assert!(!FileIdentity::still(id, &path), "a new file under the name");
    }
}
