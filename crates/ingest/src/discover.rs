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

/// How much of a `*.json` file is read to tell trace lines from other JSON.
const SNIFF_BYTES: u64 = 64 << 10;

/// Whether a file's start looks like trace lines (a canonical span or an OTLP export): its
/// first line, or its second when the first is cut (a file rotated by size), opens an
/// object and names a trace id or resource spans. Keys may come in any order
/// (`sort_keys=True` puts `trace_id` after the attributes), so a line is searched as far
/// as it was read.
fn looks_like_spans(path: &Path) -> bool {
    use std::io::Read;
    let mut head = Vec::with_capacity(4096);
    if std::fs::File::open(path)
        .and_then(|f| f.take(SNIFF_BYTES).read_to_end(&mut head))
        .is_err()
    {
        return false;
    }
    let looks = |line: &[u8]| {
        let first = line.iter().position(|b| !b.is_ascii_whitespace());
        first.is_some_and(|i| line[i] == b'{')
            && [&b"\"trace_id\""[..], b"\"resourceSpans\"", b"\"traceId\""]
                .iter()
                .any(|key| memchr::memmem::find(line, key).is_some())
    };
    let mut lines = head
        .split(|&b| b == b'\n')
        .filter(|l| !l.trim_ascii().is_empty());
    match (lines.next(), lines.next()) {
        (Some(first), second) => looks(first) || second.is_some_and(looks),
        (None, _) => false,
    }
}

/// Gzip when the file starts with gzip's magic bytes, whatever its name.
fn sniffed_kind(path: &Path) -> SourceKind {
    use std::io::Read;
    let mut magic = [0u8; 2];
    let gzip = std::fs::File::open(path)
        .and_then(|mut f| f.read_exact(&mut magic))
        .is_ok()
        && magic == [0x1f, 0x8b];
    if gzip {
        SourceKind::Gzip
    } else {
        SourceKind::Plain
    }
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

/// Why halo cannot index the file at `path`, if it cannot: the index keeps file names in
/// JSON, and must be able to read a file again (view, search) and tell when it changed.
fn unsupported(path: &Path, meta: &std::fs::Metadata) -> Option<String> {
    if path.to_str().is_none() {
        return Some(
            "the name is not valid UTF-8, which halo's index cannot record; rename the file or its directory"
                .to_owned(),
        );
    }
    if !meta.is_file() && !meta.is_dir() {
        return Some(
            "not a regular file (a pipe, socket or device): halo indexes files it can read again; save the stream to a file first"
                .to_owned(),
        );
    }
    None
}

/// Expands paths into the dataset's files, in a stable order.
///
/// A file named explicitly is taken whatever its extension (gzip is recognized by its magic
/// bytes); directories are walked recursively for trace files, skipping hidden entries and
/// halo's own index directories, and each directory once however many symbolic links lead
/// to it. Unreadable directory entries, and files halo cannot index (a pipe, a name that
/// is not UTF-8), become [`Problem`]s.
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
        if let Some(reason) = unsupported(path, &meta) {
            return Err(IngestError::Unsupported {
                path: path.clone(),
                reason,
            });
        }
        let abs = without_dot_dirs(&std::path::absolute(path).unwrap_or_else(|_| path.clone()));
        if meta.is_dir() {
            let before = files.len();
            // Each argument is walked on its own (`halo logs/ logs/app/` must not find the
            // second empty because the first walked it); files found twice are dropped below.
            let mut visited = std::collections::HashSet::new();
            walk(&abs, &mut files, &mut problems, &mut visited);
            if files.len() == before {
                return Err(IngestError::NoTraceFiles(path.display().to_string()));
            }
        } else {
            let kind = sniffed_kind(&abs);
            files.push(SourceFile { path: abs, kind });
        }
    }
    // The same file reached twice (a directory and a file in it, a symlink and its target,
    // two hard links) is read once: its spans would otherwise count twice and look like
    // duplicates.
    let mut seen = std::collections::HashSet::new();
    files.retain(|f| {
        // Where the system has no inode numbers, the path with its links resolved.
        let key = match crate::FileIdentity::of(&f.path) {
            Some(id) => (Some(id), None),
            None => (
                None,
                Some(std::fs::canonicalize(&f.path).unwrap_or_else(|_| f.path.clone())),
            ),
        };
        seen.insert(key)
    });
    Ok((files, problems))
}

/// The file every halo index directory holds from the start of its build (halo-index
/// writes its first segment's span table there; a test there keeps the two in step).
pub const INDEX_DIR_MARKER: &str = "seg-0000.spans.arrow";

/// Whether `dir` is one of halo's index directories, whatever its name.
pub fn is_index_dir(dir: &Path) -> bool {
    dir.join(INDEX_DIR_MARKER).is_file()
}

fn walk(
    dir: &Path,
    files: &mut Vec<SourceFile>,
    problems: &mut Vec<Problem>,
    visited: &mut std::collections::HashSet<PathBuf>,
) {
    // Each directory once: symbolic links can make loops (`a -> .`), and two of them
    // make the walk grow exponentially.
    if !visited.insert(std::fs::canonicalize(dir).unwrap_or_else(|_| dir.to_path_buf())) {
        return;
    }
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
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy())
            .unwrap_or_default();
        // Index directories, and the temporary and replaced ones beside them (a replaced
        // one may still be being deleted): never trace data.
        if name.starts_with('.') || name.ends_with(".halo-index") || name.contains(".halo-index.") {
            continue;
        }
        let Ok(meta) = std::fs::metadata(&path) else {
            // A link to nothing: nothing to read, but a trace file's name that leads
            // nowhere (a rotated log's target deleted) is worth a word.
            if kind_of(&path).is_some() {
                let target = std::fs::read_link(&path)
                    .map(|t| t.to_string_lossy().into_owned())
                    .unwrap_or_default();
                problems.push(Problem::in_file(
                    ProblemKind::Unreadable,
                    path.to_string_lossy().into_owned(),
                    format!("passed over: a symbolic link to {target}, which does not exist"),
                ));
            }
            continue;
        };
        let trace_like = meta.is_dir() || kind_of(&path.with_file_name(name.as_ref())).is_some();
        if let Some(reason) = unsupported(&path, &meta).filter(|_| trace_like) {
            // The name as text (lossy): problems are printed and written as JSON.
            problems.push(Problem::in_file(
                ProblemKind::Unreadable,
                path.to_string_lossy().into_owned(),
                format!("passed over: {reason}"),
            ));
            continue;
        }
        if meta.is_dir() {
            // An index directory under another name (`--index-dir` inside the dataset):
            // its inflated gzip copies are halo's, not more data.
            if is_index_dir(&path) {
                continue;
            }
            walk(&path, files, problems, visited);
        } else if kind_of(&path).is_some() {
            // The name says it holds traces; its first bytes say whether it is gzip, as
            // for a file named on the command line (a `.jsonl` may be gzip inside, a
            // `.gz` plain), so a file is read one way however it was reached.
            let kind = sniffed_kind(&path);
            // `*.json` in a directory is often something else (labels, configs): take it
            // only when its start looks like spans.
            if kind == SourceKind::Plain
                && path
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

    #[cfg(unix)]
    #[test]
    fn a_link_to_nothing_with_a_trace_files_name_is_named_as_passed_over() {
        let tmp = tempfile::tempdir().unwrap();
        std::fs::write(tmp.path().join("a.jsonl"), "{}\n").unwrap();
        std::os::unix::fs::symlink(tmp.path().join("gone.jsonl"), tmp.path().join("b.jsonl"))
            .unwrap();
        std::os::unix::fs::symlink(tmp.path().join("gone.txt"), tmp.path().join("c.txt")).unwrap();
        let (files, problems) = discover(&[tmp.path().to_path_buf()]).unwrap();
        assert_eq!(files.len(), 1);
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(problems[0].message.contains("gone.jsonl"), "{problems:?}");
        assert!(problems[0].file.ends_with("b.jsonl"));
    }

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

    #[cfg(unix)]
    #[test]
    fn a_file_reached_by_a_hard_link_a_symlink_and_its_directory_is_read_once() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("d");
        std::fs::create_dir(&dir).unwrap();
        std::fs::write(dir.join("a.jsonl"), "{}\n").unwrap();
        std::fs::hard_link(dir.join("a.jsonl"), dir.join("b.jsonl")).unwrap();
        std::os::unix::fs::symlink(dir.join("a.jsonl"), tmp.path().join("c.jsonl")).unwrap();
        // A copy is another file, however alike.
        std::fs::write(dir.join("copy.jsonl"), "{}\n").unwrap();
        let (files, problems) =
            discover(&[dir.clone(), dir.join("b.jsonl"), tmp.path().join("c.jsonl")]).unwrap();
        assert!(problems.is_empty());
        let names: Vec<_> = files
            .iter()
            .map(|f| f.path.file_name().unwrap().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names.len(), 2, "{names:?}");
        assert!(names.contains(&"copy.jsonl".to_string()), "{names:?}");
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

    #[cfg(unix)]
    #[test]
    fn looping_links_pipes_and_non_utf8_names_end_the_walk_cleanly() {
        use std::os::unix::ffi::OsStrExt;
        let tmp = tempfile::tempdir().unwrap();
        let span = r#"{"trace_id":"t","span_id":"s","start_time":"2026-01-01T00:00:00Z","end_time":"2026-01-01T00:00:01Z"}"#;
        let dir = tmp.path().join("d");
        std::fs::create_dir(&dir).unwrap();
        std::fs::write(dir.join("a.jsonl"), format!("{span}\n")).unwrap();
        // Two links back to the directory: without a visited set, 2^depth walks.
        std::os::unix::fs::symlink(".", dir.join("l1")).unwrap();
        std::os::unix::fs::symlink(".", dir.join("l2")).unwrap();
        let odd = dir.join(std::ffi::OsStr::from_bytes(b"x\xff.jsonl"));
        std::fs::write(&odd, format!("{span}\n")).unwrap();
        let fifo = dir.join("f.jsonl");
        let made = std::process::Command::new("mkfifo").arg(&fifo).status();
        let (files, problems) = discover(std::slice::from_ref(&dir)).unwrap();
        assert_eq!(files.len(), 1, "{files:?}");
        assert!(
            problems
                .iter()
                .any(|p| p.message.contains("not valid UTF-8")),
            "{problems:?}"
        );
        if made.is_ok_and(|s| s.success()) {
            assert!(
                problems
                    .iter()
                    .any(|p| p.message.contains("not a regular file")),
                "{problems:?}"
            );
            let named = discover(std::slice::from_ref(&fifo)).unwrap_err();
            assert!(named.to_string().contains("not a regular file"), "{named}");
        }
        let named = discover(&[odd]).unwrap_err();
        assert!(named.to_string().contains("not valid UTF-8"), "{named}");
    }

    #[test]
    fn a_directory_and_one_inside_it_are_one_dataset() {
        let tmp = tempfile::tempdir().unwrap();
        let span = r#"{"trace_id":"t","span_id":"s","start_time":"2026-01-01T00:00:00Z","end_time":"2026-01-01T00:00:01Z"}"#;
        let inner = tmp.path().join("app");
        std::fs::create_dir(&inner).unwrap();
        std::fs::write(inner.join("a.jsonl"), format!("{span}\n")).unwrap();
        let outer = tmp.path().to_path_buf();
        for args in [
            [outer.clone(), inner.clone()],
            [inner.clone(), outer.clone()],
        ] {
            let (files, _) = discover(&args).unwrap();
            assert_eq!(files.len(), 1, "{args:?}: {files:?}");
        }
    }

    #[test]
    fn json_files_are_taken_by_their_lines_whatever_the_key_order() {
        let tmp = tempfile::tempdir().unwrap();
        let big = "x".repeat(10_000);
        // sort_keys=True: attributes (long) before trace_id.
        let sorted = format!(
            r#"{{"attributes":{{"input.value":"{big}"}},"end_time":"2026-01-01T00:00:01Z","span_id":"s","start_time":"2026-01-01T00:00:00Z","trace_id":"t"}}"#
        );
        std::fs::write(tmp.path().join("sorted.json"), format!("{sorted}\n")).unwrap();
        // Rotated by size: the first line is the tail of a span.
        std::fs::write(
            tmp.path().join("rotated.json"),
            format!("1Z\"}}\n{sorted}\n"),
        )
        .unwrap();
        std::fs::write(tmp.path().join("labels.json"), r#"{"planted":[1,2]}"#).unwrap();
        let (files, _) = discover(&[tmp.path().to_path_buf()]).unwrap();
        let names: Vec<_> = files
            .iter()
            .map(|f| f.path.file_name().unwrap().to_str().unwrap())
            .collect();
        assert_eq!(names, ["rotated.json", "sorted.json"]);
    }
}
