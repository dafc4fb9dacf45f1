//! Cleaning up after builds: replaced indexes deleted in the background (and waited for
//! before exit), and what killed builds left behind swept by the next one.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

/// Deletions of replaced index directories still running in the background.
static CLEANUPS: std::sync::Mutex<Vec<std::thread::JoinHandle<()>>> =
    std::sync::Mutex::new(Vec::new());

/// Deletes a replaced index directory on a background thread, which [`finish_cleanup`]
/// waits for.
pub(crate) fn delete_in_background(old: std::path::PathBuf) {
    let deleting = std::thread::spawn(move || remove_index_dir(&old));
    let mut pending = CLEANUPS.lock().unwrap_or_else(|e| e.into_inner());
    // A long-lived process keeps only the deletions still running.
    pending.retain(|d| !d.is_finished());
    pending.push(deleting);
}

/// A name beside `dir` for a temporary (`tmp`) or replaced (`old`) index directory, unique
/// to this process and call: `NAME.tmp-PID-N`.
pub(crate) fn sibling(dir: &Path, kind: &str) -> std::path::PathBuf {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let name = dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    dir.with_file_name(format!(
        "{name}.{kind}-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    ))
}

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
/// directory other than `ours` is only removed while this process holds the build lock (no
/// one else can be building) or when it looks abandoned.
pub(crate) fn sweep_old_indexes(dir: &Path, ours: &Path, locked: bool) {
    let (Some(parent), Some(name)) = (dir.parent(), dir.file_name()) else {
        return;
    };
    let name = name.to_string_lossy();
    let old = format!("{name}.old-");
    let tmp = format!("{name}.tmp-");
    for (file_name, path) in leftovers_in(parent) {
        let abandoned = file_name.starts_with(&tmp)
            && path != ours
            && (locked || halo_ingest::looks_abandoned(&path));
        if file_name.starts_with(&old) || abandoned {
            remove_index_dir(&path);
        }
    }
}

/// Which opening of a dataset the listings in [`LEFTOVERS`] belong to.
static OPENING: AtomicU64 = AtomicU64::new(0);

/// The `*.old-*` and `*.tmp-*` entries of directories, each listed once per opening of a
/// dataset: a dataset of ten thousand files in one directory builds ten thousand indexes
/// beside them, and listing the directory for every build made indexing take time that
/// grew with the square of the files.
static LEFTOVERS: Mutex<BTreeMap<PathBuf, (u64, Leftovers)>> = Mutex::new(BTreeMap::new());

/// A directory's leftover entries: each name and path.
type Leftovers = Vec<(String, PathBuf)>;

/// Starts a new opening of a dataset: directories are listed again, so leftovers made
/// since (a build killed in another process) are swept. Openings side by side in one
/// process only list more often.
pub(crate) fn new_opening() {
    OPENING.fetch_add(1, Ordering::Relaxed);
}

/// The leftover entries of `parent`, as listed in this opening (a sweep may remove
/// them; one already removed is skipped by the removal itself).
fn leftovers_in(parent: &Path) -> Leftovers {
    let opening = OPENING.load(Ordering::Relaxed);
    let mut cache = LEFTOVERS.lock().unwrap_or_else(|e| e.into_inner());
    match cache.get(parent) {
        Some((at, list)) if *at == opening => list.clone(),
        _ => {
            let list: Leftovers = std::fs::read_dir(parent)
                .map(|entries| {
                    entries
                        .flatten()
                        .filter_map(|entry| {
                            let name = entry.file_name().to_string_lossy().into_owned();
                            (name.contains(".old-") || name.contains(".tmp-"))
                                .then(|| (name, entry.path()))
                        })
                        .collect()
                })
                .unwrap_or_default();
            cache.insert(parent.to_path_buf(), (opening, list.clone()));
            list
        }
    }
}

/// Deletes an index directory, its inflated gzip copy first: that copy is the one file in
/// it that reads as trace data, and a directory half deleted (by a process killed midway)
/// must not hold it without the index files that mark the directory as halo's.
fn remove_index_dir(dir: &Path) {
    let _ = std::fs::remove_file(dir.join(crate::store::GZIP_COPY));
    let _ = std::fs::remove_dir_all(dir);
}
