//! Cleaning up after builds: replaced indexes deleted in the background (and waited for
//! before exit), and what killed builds left behind swept by the next one.

use std::path::Path;

/// Deletions of replaced index directories still running in the background.
pub(crate) static CLEANUPS: std::sync::Mutex<Vec<std::thread::JoinHandle<()>>> =
    std::sync::Mutex::new(Vec::new());

/// Waits for replaced indexes to be deleted. Rebuilding returns as soon as the new index is
/// in place and deletes the old one on a background thread; a program calls this before
/// it exits (after its output), so that no `*.old-*` directory is left behind.
pub fn finish_cleanup() {
    let pending = std::mem::take(&mut *CLEANUPS.lock().unwrap_or_else(|e| e.into_inner()));
    for deleting in pending {
        let _ = deleting.join();
    }
}

/// Drops `value` on a short-lived thread, for large structures whose freeing would only
/// delay the caller.
pub(crate) fn drop_in_background<T: Send + 'static>(value: T) {
    std::thread::spawn(move || drop(value));
}

/// Removes what earlier builds of `dir` left behind: `*.old-*` directories whose deletion
/// was cut short, and `*.tmp-*` directories of builds that were killed. A temporary
/// directory is only removed while this process holds the build lock (no one else can be
/// building) or when nothing in it has changed for ten minutes.
pub(crate) fn sweep_old_indexes(dir: &Path, locked: bool) {
    let (Some(parent), Some(name)) = (dir.parent(), dir.file_name()) else {
        return;
    };
    let name = name.to_string_lossy();
    let old = format!("{name}.old-");
    let tmp = format!("{name}.tmp-");
    let ours = format!("{name}.tmp-{}", std::process::id());
    let Ok(entries) = std::fs::read_dir(parent) else {
        return;
    };
    for entry in entries.flatten() {
        let file_name = entry.file_name().to_string_lossy().into_owned();
        let abandoned = file_name.starts_with(&tmp)
            && file_name != ours
            && (locked || untouched_for_ten_minutes(&entry.path()));
        if file_name.starts_with(&old) || abandoned {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}

/// Whether neither `dir` nor any file in it was modified in the last ten minutes.
fn untouched_for_ten_minutes(dir: &Path) -> bool {
    let recent = |p: &Path| {
        std::fs::metadata(p)
            .and_then(|m| m.modified())
            .map_or(true, |t| {
                t.elapsed().map_or(true, |age| age.as_secs() < 600)
            })
    };
    !recent(dir)
        && std::fs::read_dir(dir)
            .map(|entries| entries.flatten().all(|e| !recent(&e.path())))
            .unwrap_or(true)
}
