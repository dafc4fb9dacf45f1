use std::path::{Path, PathBuf};

use crate::problem::{IngestError, Problem, ProblemKind};

/// How a file is stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum SourceKind {
    /// Plain JSONL.
    Plain,
    /// Gzip-compressed JSONL.
    Gzip,
}

/// One file of a dataset.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceFile {
    /// The path as named, made absolute, with `.` and `dir/..` resolved as text.
    pub path: PathBuf,
    /// Plain or gzip.
    pub kind: SourceKind,
}

const TRACE_EXTENSIONS: [&str; 3] = ["jsonl", "ndjson", "json"];

fn kind_of(path: &Path) -> Option<SourceKind> {
    let name = path.file_name()?.to_str()?.to_ascii_lowercase();
    if let Some(stem) = name.strip_suffix(".gz") {
        return TRACE_EXTENSIONS
            .iter()
            .any(|e| stem.ends_with(&format!(".{e}")))
            .then_some(SourceKind::Gzip);
    }
    TRACE_EXTENSIONS
        .iter()
        .any(|e| name.ends_with(&format!(".{e}")))
        .then_some(SourceKind::Plain)
}

/// Whether a file's first 4 KiB look like trace lines (a canonical span or an OTLP export).
fn looks_like_spans(path: &Path) -> bool {
    use std::io::Read;
    let mut head = Vec::with_capacity(4096);
    let ok = std::fs::File::open(path)
        .and_then(|f| f.take(4096).read_to_end(&mut head))
        .is_ok();
    let first = head.iter().position(|b| !b.is_ascii_whitespace());
    ok && first.is_some_and(|i| head[i] == b'{')
        && (memchr::memmem::find(&head, b"\"trace_id\"").is_some()
            || memchr::memmem::find(&head, b"\"resourceSpans\"").is_some())
}

fn sniff_gzip(path: &Path) -> bool {
    use std::io::Read;
    let mut magic = [0u8; 2];
    std::fs::File::open(path)
        .and_then(|mut f| f.read_exact(&mut magic))
        .is_ok()
        && magic == [0x1f, 0x8b]
}

/// `path` with `.` and `dir/..` taken out, so that one file has one name whatever
/// directory it was named from (its index is found by that name). `link/..` is resolved
/// as the system does, through the link; a symlinked file keeps the name the user gave it,
/// so its index stays beside the link.
fn without_dot_dirs(path: &Path) -> PathBuf {
    use std::path::Component;
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir => {
                let through_link = std::fs::symlink_metadata(&out).is_ok_and(|m| m.is_symlink());
                if through_link {
                    match std::fs::canonicalize(&out) {
                        Ok(target) => out = target,
                        Err(_) => {
                            out.push(c);
                            continue;
                        }
                    }
                }
                if out.file_name().is_some() {
                    out.pop();
                } else if !out.has_root() {
                    out.push(c);
                }
            }
            other => out.push(other),
        }
    }
    out
}

/// Expands paths into the dataset's files, in a stable order.
///
/// A file named explicitly is taken whatever its extension (gzip is recognized by its magic
/// bytes); directories are walked recursively for trace files, skipping hidden entries and
/// halo's own index directories. Unreadable directory entries become [`Problem`]s.
pub fn discover(paths: &[PathBuf]) -> Result<(Vec<SourceFile>, Vec<Problem>), IngestError> {
    let mut files = Vec::new();
    let mut problems = Vec::new();
    for path in paths {
        let meta = std::fs::metadata(path).map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => IngestError::NotFound(path.clone()),
            _ => IngestError::Io {
                path: path.clone(),
                error: e,
            },
        })?;
        let abs = without_dot_dirs(&std::path::absolute(path).unwrap_or_else(|_| path.clone()));
        if meta.is_dir() {
            let before = files.len();
            walk(&abs, &mut files, &mut problems);
            if files.len() == before {
                return Err(IngestError::NoTraceFiles(path.display().to_string()));
            }
        } else {
            let kind = if sniff_gzip(&abs) {
                SourceKind::Gzip
            } else {
                SourceKind::Plain
            };
            files.push(SourceFile { path: abs, kind });
        }
    }
    // The same file reached twice (a directory and a file in it, a symlink and its target)
    // is read once: its spans would otherwise count twice and look like duplicates.
    let mut seen = std::collections::HashSet::new();
    files
        .retain(|f| seen.insert(std::fs::canonicalize(&f.path).unwrap_or_else(|_| f.path.clone())));
    Ok((files, problems))
}

/// The file every halo index directory holds from the start of its build (halo-index
/// writes its first segment's span table there; a test there keeps the two in step).
pub const INDEX_DIR_MARKER: &str = "seg-0000.spans.arrow";

/// Whether `dir` is one of halo's index directories, whatever its name.
pub fn is_index_dir(dir: &Path) -> bool {
    dir.join(INDEX_DIR_MARKER).is_file()
}

fn walk(dir: &Path, files: &mut Vec<SourceFile>, problems: &mut Vec<Problem>) {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) => {
            problems.push(Problem::in_file(
                ProblemKind::Unreadable,
                dir,
                format!("directory skipped: {e}"),
            ));
            return;
        }
    };
    let mut entries: Vec<_> = entries.filter_map(|e| e.ok()).map(|e| e.path()).collect();
    entries.sort();
    for path in entries {
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
        // Index directories, and the temporary and replaced ones beside them (a replaced
        // one may still be being deleted): never trace data.
        if name.starts_with('.') || name.ends_with(".halo-index") || name.contains(".halo-index.") {
            continue;
        }
        if path.is_dir() {
            // An index directory under another name (`--index-dir` inside the dataset):
            // its inflated gzip copies are halo's, not more data.
            if is_index_dir(&path) {
                continue;
            }
            walk(&path, files, problems);
        } else if let Some(kind) = kind_of(&path) {
            // `*.json` in a directory is often something else (labels, configs): take it
            // only when its start looks like spans.
            if path
                .extension()
                .is_some_and(|e| e.eq_ignore_ascii_case("json"))
                && !looks_like_spans(&path)
            {
                continue;
            }
            files.push(SourceFile { path, kind });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recognizes_trace_files() {
        assert_eq!(kind_of(Path::new("a/b.jsonl")), Some(SourceKind::Plain));
        assert_eq!(kind_of(Path::new("b.JSONL.gz")), Some(SourceKind::Gzip));
        assert_eq!(kind_of(Path::new("notes.txt")), None);
        assert_eq!(kind_of(Path::new("x.tar.gz")), None);
    }

    #[test]
    fn dot_dirs_are_taken_out_as_text() {
        assert_eq!(
            without_dot_dirs(Path::new("/a/./b/../c/d.jsonl")),
            PathBuf::from("/a/c/d.jsonl")
        );
        assert_eq!(without_dot_dirs(Path::new("/../x")), PathBuf::from("/x"));
        // Through a symlinked directory, `..` is the link target's parent, as for the OS.
        let tmp = tempfile::tempdir().unwrap();
        let deep = tmp.path().join("real/deep");
        std::fs::create_dir_all(&deep).unwrap();
        std::fs::write(tmp.path().join("real/x.jsonl"), "").unwrap();
        #[cfg(unix)]
        {
            std::os::unix::fs::symlink(&deep, tmp.path().join("link")).unwrap();
            let named = tmp.path().join("link/../x.jsonl");
            let resolved = without_dot_dirs(&named);
            assert!(resolved.exists(), "{}", resolved.display());
            assert_eq!(
                std::fs::canonicalize(&resolved).unwrap(),
                std::fs::canonicalize(tmp.path().join("real/x.jsonl")).unwrap()
            );
        }
    }

    #[test]
    fn index_directories_and_their_leftovers_are_never_walked() {
        let tmp = tempfile::tempdir().unwrap();
        let span = r#"{"trace_id":"t","span_id":"s","parent_span_id":"","name":"n","start_time":"2026-01-01T00:00:00Z","end_time":"2026-01-01T00:00:01Z"}"#;
        std::fs::write(tmp.path().join("a.jsonl"), format!("{span}\n")).unwrap();
        for leftover in [
            "a.jsonl.halo-index",
            "a.jsonl.halo-index.old-1-0",
            "a.jsonl.halo-index.tmp-2-0",
        ] {
            let dir = tmp.path().join(leftover);
            std::fs::create_dir(&dir).unwrap();
            std::fs::write(dir.join("source.jsonl"), format!("{span}\n")).unwrap();
        }
        let (files, _) = discover(&[tmp.path().to_path_buf()]).unwrap();
        assert_eq!(files.len(), 1, "{files:?}");
    }
}
