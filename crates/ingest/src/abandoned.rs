//! Telling leftovers of killed processes from work in progress: a temporary file or
//! directory that nothing has written to for a while is abandoned (a live build or copy
//! writes continuously).

use std::path::Path;
use std::time::Duration;

/// How long a temporary file or directory must go unmodified to count as abandoned.
pub const ABANDONED_AFTER: Duration = Duration::from_secs(600);

/// Whether `path` (a file, or a directory and the files directly in it) has gone
/// unmodified for [`ABANDONED_AFTER`]. Anything that cannot be read counts as recent, so
/// that doubt never deletes work.
pub fn looks_abandoned(path: &Path) -> bool {
    let old = |p: &Path| {
        std::fs::metadata(p)
            .and_then(|m| m.modified())
            .is_ok_and(|t| t.elapsed().is_ok_and(|age| age > ABANDONED_AFTER))
    };
    if !old(path) {
        return false;
    }
    match std::fs::read_dir(path) {
        Ok(entries) => entries.flatten().all(|e| old(&e.path())),
        Err(_) => path.is_file(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fresh_files_and_directories_are_not_abandoned_old_ones_are() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("f");
        std::fs::write(&file, "x").unwrap();
        assert!(!looks_abandoned(&file));
        assert!(!looks_abandoned(dir.path()));
        let long_ago = std::time::SystemTime::now() - ABANDONED_AFTER * 2;
        std::fs::File::options()
            .write(true)
            .open(&file)
            .unwrap()
            .set_modified(long_ago)
            .unwrap();
        assert!(looks_abandoned(&file));
        assert!(
            !looks_abandoned(dir.path()),
            "the directory itself changed just now"
        );
        assert!(!looks_abandoned(&dir.path().join("missing")));
    }
}
