//! Read-only code tools over the harness repository (`--repo-path`).
//!
//! Argument names follow the reference's tools (`max_results`, `regex_pattern`,
//! `glob_pattern`, `offset`/`limit`, `ref`, `from_ref`/`to_ref`, `ref_range`...); halo's
//! earlier names are accepted as aliases.
//!
//! Safety rules: every path is resolved under the repository root and
//! canonicalized, and must stay under the canonical root (so `..` and symlinks
//! pointing outside are refused); walks honour `.gitignore` and never follow
//! symlinks; `git` runs with fixed options, validated refs after
//! `--end-of-options` and validated repository paths after `--`, so no
//! free-form option ever reaches it. The free-text values git takes (`since`,
//! `until`, `pickaxe_string`, `pickaxe_regex`) are passed as the argv item right
//! after their own option (`--since`, `-S`...), which git always reads as that
//! option's value, never as an option, whatever it starts with.

use std::fmt::Write as _;
use std::path::{Component, Path, PathBuf};
use std::process::Command;

use schemars::JsonSchema;
use serde::Deserialize;

use super::{cap_text, parse_args};

const MAX_OUTPUT: usize = 40_000;
/// Files `grep_files` searches are at most this big; larger ones (data, bundles) are passed
/// over.
const GREP_MAX_FILE_BYTES: u64 = 4 << 20;
/// Files `read_file` reads are at most this big, so one call cannot fill memory.
const READ_MAX_FILE_BYTES: u64 = 16 << 20;
/// Bytes of git's output read: a few times what an answer shows, so the cap still says
/// how much was cut, without reading all of a huge diff.
const GIT_READ_BYTES: u64 = 4 * MAX_OUTPUT as u64;
/// Lines `read_file` and `git_read_file` show by default (the reference's).
const READ_DEFAULT_LINES: usize = 500;
/// Most lines one `read_file` / `git_read_file` call shows (the reference's cap).
const READ_MAX_LINES: usize = 2_000;
/// Longest `since` / `until` / pickaxe value.
const MAX_GIT_VALUE_CHARS: usize = 1_000;

/// Arguments of `view_repo_tree`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct RepoTreeArgs {
    /// Directory to list, relative to the repository root (default: the root).
    #[serde(default)]
    pub(crate) path: Option<String>,
    /// How many directory levels to show (default 3).
    #[serde(default)]
    pub(crate) max_depth: Option<usize>,
}

/// Arguments of `glob_files`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct GlobArgs {
    /// Glob over repository-relative paths, e.g. `src/**/*.py`.
    pub(crate) pattern: String,
    /// Most paths to return (default 200, at most 2000).
    #[serde(default, alias = "limit")]
    pub(crate) max_results: Option<usize>,
}

/// Arguments of `grep_files`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct GrepArgs {
    /// Regular expression (Rust syntax) searched line by line.
    #[serde(alias = "pattern")]
    pub(crate) regex_pattern: String,
    /// Only files whose repository-relative path matches this glob, e.g. `**/*.py`.
    #[serde(default, alias = "glob")]
    pub(crate) glob_pattern: Option<String>,
    /// Directory to search, relative to the root (default: the root).
    #[serde(default)]
    pub(crate) path: Option<String>,
    /// Case-insensitive matching.
    #[serde(default)]
    pub(crate) case_insensitive: Option<bool>,
    /// Most matching lines to return (default 100).
    #[serde(default)]
    pub(crate) max_matches: Option<usize>,
}

/// Arguments of `read_file`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct ReadFileArgs {
    /// File path relative to the repository root.
    pub(crate) path: String,
    /// First line to show, 1-based (default 1).
    #[serde(default, alias = "start_line")]
    pub(crate) offset: Option<usize>,
    /// Lines to show (default 500, at most 2000).
    #[serde(default)]
    pub(crate) limit: Option<usize>,
    /// Last line to show, inclusive: an alternative to `limit`.
    #[serde(default)]
    pub(crate) end_line: Option<usize>,
}

/// Arguments of `git_log`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct GitLogArgs {
    /// Revision or range (default HEAD), e.g. `main`, `v1.2..HEAD`.
    #[serde(default, alias = "rev")]
    pub(crate) ref_range: Option<String>,
    /// Only commits touching this repository path.
    #[serde(default)]
    pub(crate) path: Option<String>,
    /// Most commits to list (default 30, at most 200).
    #[serde(default, alias = "max_count")]
    pub(crate) max_commits: Option<u32>,
    /// Only commits after this date: ISO-8601 (`2026-04-23`, `2026-04-23T05:32:00Z`) or a
    /// git relative date (`2 weeks ago`).
    #[serde(default)]
    pub(crate) since: Option<String>,
    /// Only commits before this date (same forms as `since`).
    #[serde(default)]
    pub(crate) until: Option<String>,
    /// Only commits that change how often this exact string occurs (git log -S). At most
    /// one of pickaxe_string and pickaxe_regex.
    #[serde(default)]
    pub(crate) pickaxe_string: Option<String>,
    /// Only commits whose diff adds or removes a line matching this POSIX extended regex
    /// (git log -G).
    #[serde(default)]
    pub(crate) pickaxe_regex: Option<String>,
}

/// Arguments of `git_show`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct GitShowArgs {
    /// The commit to show.
    #[serde(rename = "ref", alias = "rev")]
    pub(crate) rev: String,
    /// Limit the stat and patch to this repository path.
    #[serde(default)]
    pub(crate) path: Option<String>,
    /// Add the patch (default false: the message and the changed-file stat only).
    #[serde(default)]
    pub(crate) include_patch: bool,
}

fn yes() -> bool {
    true
}

/// Arguments of `git_diff`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct GitDiffArgs {
    /// The revision to diff from.
    #[serde(alias = "base")]
    pub(crate) from_ref: String,
    /// The revision to diff to (default: the working tree).
    #[serde(default, alias = "head")]
    pub(crate) to_ref: Option<String>,
    /// Limit the diff to this repository path.
    #[serde(default)]
    pub(crate) path: Option<String>,
    /// Only the changed-file stat (default true); false for the full patch.
    #[serde(default = "yes")]
    pub(crate) stat_only: bool,
}

/// Arguments of `git_blame`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct GitBlameArgs {
    /// File path relative to the repository root.
    pub(crate) path: String,
    /// First line (1-based).
    #[serde(default)]
    pub(crate) start_line: Option<usize>,
    /// Last line (inclusive).
    #[serde(default)]
    pub(crate) end_line: Option<usize>,
    /// Revision to blame at (default HEAD).
    #[serde(default, rename = "ref", alias = "rev")]
    pub(crate) rev: Option<String>,
}

/// Arguments of `git_read_file`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct GitReadFileArgs {
    /// Revision to read from.
    #[serde(rename = "ref", alias = "rev")]
    pub(crate) rev: String,
    /// File path relative to the repository root.
    pub(crate) path: String,
    /// First line to show, 1-based (default 1).
    #[serde(default, alias = "start_line")]
    pub(crate) offset: Option<usize>,
    /// Lines to show (default 500, at most 2000).
    #[serde(default)]
    pub(crate) limit: Option<usize>,
    /// Last line to show, inclusive: an alternative to `limit`.
    #[serde(default)]
    pub(crate) end_line: Option<usize>,
}

/// The code tools of one repository.
#[derive(Debug, Clone)]
pub(crate) struct RepoTools {
    root: PathBuf,
    git: bool,
}

impl RepoTools {
    /// Opens `path` as the repository root.
    pub(crate) fn open(path: &Path) -> Result<RepoTools, String> {
        let root = path
            .canonicalize()
            .map_err(|e| format!("repo path {}: {e}", path.display()))?;
        if !root.is_dir() {
            return Err(format!("repo path {} is not a directory", path.display()));
        }
        let git = Command::new("git")
            .arg("-C")
            .arg(&root)
            .args(["rev-parse", "--is-inside-work-tree"])
            .output()
            .map(|o| o.status.success() && String::from_utf8_lossy(&o.stdout).trim() == "true")
            .unwrap_or(false);
        Ok(RepoTools { root, git })
    }

    /// True when the repository is a git work tree (git tools offered).
    pub(crate) fn is_git(&self) -> bool {
        self.git
    }

    /// Runs tool `name`; `None` when it is not a code tool.
    pub(crate) fn run(
        &self,
        name: &str,
        args: &serde_json::Value,
    ) -> Option<Result<String, String>> {
        Some(match name {
            "view_repo_tree" => parse_args(args).and_then(|a| self.tree(a)),
            "glob_files" => parse_args(args).and_then(|a| self.glob(a)),
            "grep_files" => parse_args(args).and_then(|a| self.grep(a)),
            "read_file" => parse_args(args).and_then(|a| self.read(a)),
            "git_log" if self.git => parse_args(args).and_then(|a| self.git_log(a)),
            "git_show" if self.git => parse_args(args).and_then(|a| self.git_show(a)),
            "git_diff" if self.git => parse_args(args).and_then(|a| self.git_diff(a)),
            "git_blame" if self.git => parse_args(args).and_then(|a| self.git_blame(a)),
            "git_read_file" if self.git => parse_args(args).and_then(|a| self.git_read_file(a)),
            _ => return None,
        })
    }

    /// Resolves a repository-relative path to an existing path inside the root.
    fn resolve(&self, rel: Option<&str>) -> Result<PathBuf, String> {
        let rel = rel.unwrap_or("").trim();
        let joined = if rel.is_empty() || rel == "." {
            self.root.clone()
        } else {
            self.root.join(rel.trim_start_matches('/'))
        };
        let canon = joined
            .canonicalize()
            .map_err(|_| format!("path {rel:?} does not exist in the repository"))?;
        if !canon.starts_with(&self.root) {
            return Err(format!("path {rel:?} is outside the repository"));
        }
        Ok(canon)
    }

    /// [`resolve`](Self::resolve), refusing a path the listings hide: what they hide (a
    /// `.env`, build output, `.git`) is not read, searched or listed from either, for
    /// ignored files are where secrets sit, and tool results go to the model's provider.
    fn resolve_visible(&self, rel: Option<&str>) -> Result<PathBuf, String> {
        let path = self.resolve(rel)?;
        if self.ignored(&path) {
            return Err(format!(
                "{:?} is ignored by the repository (.gitignore, .ignore, git's excludes or git's own files), and the code tools do not read ignored files",
                rel.unwrap_or_default()
            ));
        }
        Ok(path)
    }

    /// Whether `path` (inside the root) is hidden from the listings: each directory on the
    /// way down from the root is listed as the walks list it (`.gitignore` files here and
    /// above the root, `.ignore`, git's excludes, negations and all) and must hold the next
    /// step. One directory listing per level, however large the repository.
    fn ignored(&self, path: &Path) -> bool {
        let Ok(rel) = path.strip_prefix(&self.root) else {
            return false;
        };
        let mut dir = self.root.clone();
        for part in rel.components() {
            let child = dir.join(part);
            let listed = self
                .walker(&dir, Some(1))
                .flatten()
                .any(|entry| entry.depth() == 1 && entry.path() == child);
            if !listed {
                return true;
            }
            dir = child;
        }
        false
    }

    fn rel<'a>(&self, p: &'a Path) -> std::borrow::Cow<'a, str> {
        p.strip_prefix(&self.root).unwrap_or(p).to_string_lossy()
    }

    fn walker(&self, start: &Path, max_depth: Option<usize>) -> ignore::Walk {
        let mut b = ignore::WalkBuilder::new(start);
        b.hidden(false)
            .follow_links(false)
            .require_git(false)
            .max_depth(max_depth)
            .sort_by_file_name(|a, b| a.cmp(b))
            .filter_entry(|e| e.file_name() != ".git");
        b.build()
    }

    fn tree(&self, a: RepoTreeArgs) -> Result<String, String> {
        let start = self.resolve_visible(a.path.as_deref())?;
        let depth = a.max_depth.unwrap_or(3).clamp(1, 12);
        let mut out = String::new();
        let mut n = 0usize;
        for entry in self.walker(&start, Some(depth)).flatten() {
            if entry.depth() == 0 {
                continue;
            }
            n += 1;
            if n > 1000 {
                out.push_str("... (more entries; narrow the path)\n");
                break;
            }
            let indent = "  ".repeat(entry.depth() - 1);
            let name = entry.file_name().to_string_lossy();
            let dir = entry.file_type().is_some_and(|t| t.is_dir());
            let _ = writeln!(out, "{indent}{name}{}", if dir { "/" } else { "" });
        }
        if out.is_empty() {
            out.push_str("(empty)\n");
        }
        Ok(cap_text(out, MAX_OUTPUT))
    }

    fn glob(&self, a: GlobArgs) -> Result<String, String> {
        let glob = globset::Glob::new(&a.pattern)
            .map_err(|e| format!("invalid glob: {e}"))?
            .compile_matcher();
        let limit = a.max_results.unwrap_or(200).clamp(1, 2000);
        let mut out = Vec::new();
        let mut more = false;
        for entry in self.walker(&self.root, None).flatten() {
            if !entry.file_type().is_some_and(|t| t.is_file()) {
                continue;
            }
            let rel = self.rel(entry.path()).into_owned();
            if glob.is_match(&rel) {
                if out.len() == limit {
                    more = true;
                    break;
                }
                out.push(rel);
            }
        }
        let mut s = out.join("\n");
        if out.is_empty() {
            s = "(no files match)".to_owned();
        }
        if more {
            s.push_str("\n... (more files match; raise max_results or narrow the pattern)");
        }
        Ok(s)
    }

    fn grep(&self, a: GrepArgs) -> Result<String, String> {
        let re = regex::RegexBuilder::new(&a.regex_pattern)
            .case_insensitive(a.case_insensitive.unwrap_or(false))
            .size_limit(1 << 20)
            .build()
            .map_err(|e| format!("invalid regex: {e}"))?;
        let glob = match &a.glob_pattern {
            Some(g) => Some(
                globset::Glob::new(g)
                    .map_err(|e| format!("invalid glob: {e}"))?
                    .compile_matcher(),
            ),
            None => None,
        };
        let start = self.resolve_visible(a.path.as_deref())?;
        let max = a.max_matches.unwrap_or(100).clamp(1, 1000);
        let mut out = String::new();
        let mut count = 0usize;
        'files: for entry in self.walker(&start, None).flatten() {
            if !entry.file_type().is_some_and(|t| t.is_file()) {
                continue;
            }
            let rel = self.rel(entry.path()).into_owned();
            if glob.as_ref().is_some_and(|g| !g.is_match(&rel)) {
                continue;
            }
            // Size first: a multi-GB file in the tree must not be read to be skipped.
            if entry
                .metadata()
                .map_or(true, |m| m.len() > GREP_MAX_FILE_BYTES)
            {
                continue;
            }
            let Ok(bytes) = std::fs::read(entry.path()) else {
                continue;
            };
            if bytes.len() as u64 > GREP_MAX_FILE_BYTES || bytes.contains(&0) {
                continue;
            }
            let text = String::from_utf8_lossy(&bytes);
            for (i, line) in text.lines().enumerate() {
                if re.is_match(line) {
                    count += 1;
                    if count > max {
                        out.push_str(
                            "... (more matches; raise max_matches or narrow the search)\n",
                        );
                        break 'files;
                    }
                    let line: String = line.chars().take(300).collect();
                    let _ = writeln!(out, "{rel}:{}: {line}", i + 1);
                }
            }
        }
        if out.is_empty() {
            out.push_str("(no matches)");
        }
        Ok(cap_text(out, MAX_OUTPUT))
    }

    fn read(&self, a: ReadFileArgs) -> Result<String, String> {
        let path = self.resolve_visible(Some(&a.path))?;
        if !path.is_file() {
            return Err(format!("{:?} is not a file", a.path));
        }
        let size = std::fs::metadata(&path).map_or(0, |m| m.len());
        if size > READ_MAX_FILE_BYTES {
            return Err(format!(
                "{:?} is {size} bytes, over the {READ_MAX_FILE_BYTES} bytes read_file reads; use grep_files to find the lines you need",
                a.path
            ));
        }
        let bytes = std::fs::read(&path).map_err(|e| format!("cannot read {:?}: {e}", a.path))?;
        if bytes.contains(&0) {
            return Err(format!("{:?} is a binary file", a.path));
        }
        let window = read_window(a.offset, a.limit, a.end_line)?;
        numbered_lines(&self.rel(&path), &String::from_utf8_lossy(&bytes), window)
    }

    fn git(&self, args: &[String]) -> Result<String, String> {
        let (stdout, cut) = self.git_bytes(args, GIT_READ_BYTES)?;
        let text = String::from_utf8_lossy(&stdout).into_owned();
        if cut {
            let shown = halo_trace::head(&text, MAX_OUTPUT);
            return Ok(format!(
                "{shown}\n... [truncated: over {GIT_READ_BYTES} bytes in full; narrow the request]"
            ));
        }
        Ok(cap_text(
            if text.is_empty() {
                "(no output)".to_owned()
            } else {
                text
            },
            MAX_OUTPUT,
        ))
    }

    /// Runs git with `args`, reading at most `max` bytes of its output; the flag says
    /// whether there was more (git is then stopped).
    fn git_bytes(&self, args: &[String], max: u64) -> Result<(Vec<u8>, bool), String> {
        use std::io::Read as _;
        let mut child = Command::new("git")
            .arg("-C")
            .arg(&self.root)
            .args([
                "--no-pager",
                "-c",
                "core.quotepath=off",
                "-c",
                "diff.external=",
            ])
            .args(args)
            .env("GIT_TERMINAL_PROMPT", "0")
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .map_err(|e| format!("cannot run git: {e}"))?;
        // Only what the answer can show is read (a `git show` of a vendored tree can be
        // gigabytes); git is stopped once that much has come.
        let mut stderr = child.stderr.take().expect("piped");
        let errors = std::thread::spawn(move || {
            let mut text = Vec::new();
            let _ = (&mut stderr).take(64 << 10).read_to_end(&mut text);
            text
        });
        let mut stdout = Vec::new();
        let read = child
            .stdout
            .take()
            .expect("piped")
            .take(max + 1)
            .read_to_end(&mut stdout);
        let cut = stdout.len() as u64 > max;
        if cut {
            let _ = child.kill();
        }
        let status = child.wait().map_err(|e| format!("cannot run git: {e}"))?;
        let errors = errors.join().unwrap_or_default();
        read.map_err(|e| format!("cannot read git's output: {e}"))?;
        if !cut && !status.success() {
            let err = String::from_utf8_lossy(&errors);
            return Err(format!("git failed: {}", err.trim()));
        }
        if cut {
            stdout.truncate(usize::try_from(max).unwrap_or(usize::MAX));
        }
        Ok((stdout, cut))
    }

    fn git_log(&self, a: GitLogArgs) -> Result<String, String> {
        let n = a.max_commits.unwrap_or(30).clamp(1, 200);
        let mut args = vec![
            "log".to_owned(),
            "--no-color".to_owned(),
            format!("--max-count={n}"),
            "--format=%h %ad %an%n    %s".to_owned(),
            "--date=short".to_owned(),
        ];
        // Each value is the argv item right after its option, so git reads it as that
        // option's value even when it starts with `-`.
        if let Some(since) = a.since {
            args.push("--since".to_owned());
            args.push(git_value("since", &since)?);
        }
        if let Some(until) = a.until {
            args.push("--until".to_owned());
            args.push(git_value("until", &until)?);
        }
        match (a.pickaxe_string, a.pickaxe_regex) {
            (Some(_), Some(_)) => {
                return Err(
                    "pass at most one of pickaxe_string (git -S) and pickaxe_regex (git -G)"
                        .to_owned(),
                )
            }
            (Some(s), None) => {
                args.push("-S".to_owned());
                args.push(git_value("pickaxe_string", &s)?);
            }
            (None, Some(r)) => {
                args.push("-G".to_owned());
                args.push(git_value("pickaxe_regex", &r)?);
            }
            (None, None) => {}
        }
        let range = a.ref_range.as_deref().unwrap_or("HEAD");
        end_with_revisions_and_path(&mut args, &[range], a.path.as_deref())?;
        self.git(&args)
    }

    fn git_show(&self, a: GitShowArgs) -> Result<String, String> {
        let mut args = plain_git("show");
        args.push("--stat".to_owned());
        // The stat alone by default (the reference's): a vendored or generated change can
        // fill the whole answer with patch text.
        if a.include_patch {
            args.push("--patch".to_owned());
        }
        end_with_revisions_and_path(&mut args, &[&a.rev], a.path.as_deref())?;
        self.git(&args)
    }

    fn git_diff(&self, a: GitDiffArgs) -> Result<String, String> {
        let mut args = plain_git("diff");
        if a.stat_only {
            args.push("--stat".to_owned());
        }
        let revisions: Vec<&str> = std::iter::once(a.from_ref.as_str())
            .chain(a.to_ref.as_deref())
            .collect();
        end_with_revisions_and_path(&mut args, &revisions, a.path.as_deref())?;
        self.git(&args)
    }

    fn git_blame(&self, a: GitBlameArgs) -> Result<String, String> {
        let mut args = vec!["blame".to_owned(), "--date=short".to_owned()];
        if a.start_line.is_some() || a.end_line.is_some() {
            let (s, e) = line_range(a.start_line, a.end_line, 200)?;
            args.push(format!("-L{s},{e}"));
        }
        // No `--end-of-options` here: git blame then takes the revision for a path and
        // fails ("bad revision"). `valid_ref` already refuses a revision that starts
        // with `-`, so it cannot be read as an option.
        args.push(valid_ref(a.rev.as_deref().unwrap_or("HEAD"))?);
        args.push("--".to_owned());
        args.push(valid_repo_path(&a.path)?);
        self.git(&args)
    }

    fn git_read_file(&self, a: GitReadFileArgs) -> Result<String, String> {
        let window = read_window(a.offset, a.limit, a.end_line)?;
        let rel = valid_repo_path(&a.path)?;
        let spec = format!("{}:{rel}", valid_ref(&a.rev)?);
        // The whole file is read (as read_file reads one), so any window of it can be shown.
        let (bytes, cut) = self.git_bytes(
            &[
                "show".to_owned(),
                "--no-color".to_owned(),
                "--no-textconv".to_owned(),
                "--end-of-options".to_owned(),
                spec,
            ],
            READ_MAX_FILE_BYTES,
        )?;
        if cut {
            return Err(format!(
                "{rel:?} at {} is over the {READ_MAX_FILE_BYTES} bytes git_read_file reads",
                a.rev.trim()
            ));
        }
        if bytes.contains(&0) {
            return Err(format!("{rel:?} is a binary file"));
        }
        let label = format!("{}:{rel}", a.rev.trim());
        numbered_lines(&label, &String::from_utf8_lossy(&bytes), window)
    }
}

/// A revision: no leading `-`, only characters that appear in ref names and
/// revision expressions, no `:` (which would select a path).
pub(crate) fn valid_ref(r: &str) -> Result<String, String> {
    let r = r.trim();
    let ok = !r.is_empty()
        && r.len() <= 200
        && !r.starts_with('-')
        && r.chars()
            .all(|c| c.is_ascii_alphanumeric() || "._/~^@{}-+".contains(c));
    if ok {
        Ok(r.to_owned())
    } else {
        Err(format!(
            "invalid revision {r:?}: use a commit id, branch, tag or range such as main~3 or v1..v2"
        ))
    }
}

/// A repository-relative path: not absolute, no `..`, no leading `-`.
pub(crate) fn valid_repo_path(p: &str) -> Result<String, String> {
    let p = p.trim().trim_start_matches("./");
    let path = Path::new(p);
    let ok = !p.is_empty()
        && !p.starts_with('-')
        && !p.contains('\0')
        && path
            .components()
            .all(|c| matches!(c, Component::Normal(_) | Component::CurDir));
    if ok {
        Ok(p.to_owned())
    } else {
        Err(format!(
            "invalid path {p:?}: use a path relative to the repository root, without '..'"
        ))
    }
}

/// The 1-based inclusive line range a tool call asks for: `start` defaults to 1 and `end` to
/// `default_len` lines on. An end before the start is the caller's mistake, said as such
/// rather than silently turned into a one-line range.
fn line_range(
    start: Option<usize>,
    end: Option<usize>,
    default_len: usize,
) -> Result<(usize, usize), String> {
    let start = start.unwrap_or(1).max(1);
    let end = end.unwrap_or(start.saturating_add(default_len - 1));
    if end < start {
        return Err(format!(
            "end_line {end} is before start_line {start}; lines are 1-based and inclusive"
        ));
    }
    Ok((start, end))
}

/// A free-text value for a git option (`since`, `until`, a pickaxe): not empty, not
/// too long, no control characters. It is passed as the option's own argv item, so what
/// it starts with does not matter.
/// `git SUBCOMMAND` with the options that keep the repository's own configuration out of
/// the answer: colours, external diff drivers and text conversion filters (which would run
/// programs the repository names).
fn plain_git(subcommand: &str) -> Vec<String> {
    [subcommand, "--no-color", "--no-ext-diff", "--no-textconv"]
        .map(str::to_owned)
        .to_vec()
}

/// Ends `args` with `revisions`, read as revisions whatever they look like, and the path
/// that limits the answer, if any; each checked first.
fn end_with_revisions_and_path(
    args: &mut Vec<String>,
    revisions: &[&str],
    path: Option<&str>,
) -> Result<(), String> {
    args.push("--end-of-options".to_owned());
    for revision in revisions {
        args.push(valid_ref(revision)?);
    }
    args.push("--".to_owned());
    if let Some(path) = path {
        args.push(valid_repo_path(path)?);
    }
    Ok(())
}

fn git_value(name: &str, v: &str) -> Result<String, String> {
    if v.is_empty() {
        return Err(format!("{name} is empty"));
    }
    if v.chars().count() > MAX_GIT_VALUE_CHARS {
        return Err(format!(
            "{name} is longer than {MAX_GIT_VALUE_CHARS} characters"
        ));
    }
    if v.chars().any(char::is_control) {
        return Err(format!("{name} contains control characters"));
    }
    Ok(v.to_owned())
}

/// The 1-based inclusive line window of `read_file` / `git_read_file`: from `offset`
/// (default 1), `limit` lines (default [`READ_DEFAULT_LINES`]) or up to `end_line`, and
/// never more than [`READ_MAX_LINES`] lines.
fn read_window(
    offset: Option<usize>,
    limit: Option<usize>,
    end_line: Option<usize>,
) -> Result<(usize, usize), String> {
    let start = offset.unwrap_or(1).max(1);
    let end = match (limit, end_line) {
        (Some(_), Some(_)) => {
            return Err("give limit or end_line, not both".to_owned());
        }
        (Some(0), None) => return Err("limit must be at least 1".to_owned()),
        (Some(n), None) => start.saturating_add(n.min(READ_MAX_LINES) - 1),
        (None, Some(end)) => {
            if end < start {
                return Err(format!(
                    "end_line {end} is before the first line {start} (offset); lines are 1-based and inclusive"
                ));
            }
            end.min(start.saturating_add(READ_MAX_LINES - 1))
        }
        (None, None) => start.saturating_add(READ_DEFAULT_LINES - 1),
    };
    Ok((start, end))
}

/// Lines `start..=end` of `text`, numbered, under a header naming `label` and the window.
fn numbered_lines(label: &str, text: &str, (start, end): (usize, usize)) -> Result<String, String> {
    let total = text.lines().count();
    if start > total.max(1) {
        return Err(format!(
            "offset {start} is past the end: {label:?} has {total} lines"
        ));
    }
    let end = end.min(total);
    // Whole lines while they fit the output cap (a line longer than the cap alone is cut),
    // so that the header names the lines shown and the rest can be asked for by offset.
    let room = MAX_OUTPUT - 300;
    let mut body = String::new();
    let mut last = start.saturating_sub(1);
    for (i, line) in text
        .lines()
        .enumerate()
        .skip(start - 1)
        .take(end + 1 - start)
    {
        let numbered = format!("{:>6}  {line}\n", i + 1);
        if body.len() + numbered.len() > room {
            if body.is_empty() {
                body = cap_text(numbered, room);
                body.push('\n');
                last = i + 1;
            }
            break;
        }
        body.push_str(&numbered);
        last = i + 1;
    }
    let mut out = format!("{label} (lines {start}-{last} of {total})\n{body}");
    if last < end {
        let _ = writeln!(
            out,
            "... [lines {}-{end} not shown: over the {MAX_OUTPUT}-byte output cap; read on with offset={}]",
            last + 1,
            last + 1
        );
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_read_past_the_output_cap_names_the_lines_it_shows_and_where_to_go_on() {
        let text: String = (1..=5_000)
            .map(|i| format!("line {i:04} {}\n", "x".repeat(100)))
            .collect();
        let out = numbered_lines("big.py", &text, (1, 2_000)).unwrap();
        assert!(out.len() <= MAX_OUTPUT, "{}", out.len());
        let header = out.lines().next().unwrap();
        let shown: usize = header
            .trim_end_matches(" of 5000)")
            .rsplit('-')
            .next()
            .unwrap()
            .parse()
            .unwrap();
        assert!(shown > 300 && shown < 2_000, "{header}");
        let last_line = out.lines().rev().nth(1).unwrap();
        assert!(
            last_line.contains(&format!("line {shown:04}")),
            "{last_line}"
        );
        assert!(
            out.trim_end()
                .ends_with(&format!("read on with offset={}]", shown + 1)),
            "{}",
            &out[out.len() - 200..]
        );
        // A window that fits says so plainly.
        let small = numbered_lines("big.py", &text, (10, 12)).unwrap();
        assert!(
            small.starts_with("big.py (lines 10-12 of 5000)\n"),
            "{small}"
        );
        assert!(!small.contains("not shown"));
        // One line longer than the cap is cut, and still counted as shown.
        let one = numbered_lines("wide.txt", &"w".repeat(100_000), (1, 1)).unwrap();
        assert!(one.starts_with("wide.txt (lines 1-1 of 1)") && one.len() <= MAX_OUTPUT);
    }

    #[test]
    fn refs_and_paths_are_validated() {
        assert!(valid_ref("main~3").is_ok());
        assert!(valid_ref("v1.0..HEAD").is_ok());
        assert!(valid_ref("--output=/tmp/x").is_err());
        assert!(valid_ref("-p").is_err());
        assert!(valid_ref("HEAD:secret").is_err());
        assert!(valid_ref("a b").is_err());
        assert!(valid_repo_path("src/lib.rs").is_ok());
        assert!(valid_repo_path("../etc/passwd").is_err());
        assert!(valid_repo_path("/etc/passwd").is_err());
        assert!(valid_repo_path("-rf").is_err());
    }

    #[test]
    fn file_tools_honour_gitignore_and_stay_inside_the_repo() {
        let outside = tempfile::tempdir().unwrap();
        std::fs::write(outside.path().join("secret.txt"), "top secret").unwrap();
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::create_dir(root.join("src")).unwrap();
        std::fs::write(
            root.join("src/agent.py"),
            "def run():\n    call_tool('list_files')\n",
        )
        .unwrap();
        std::fs::write(root.join(".gitignore"), "build/\n").unwrap();
        std::fs::create_dir(root.join("build")).unwrap();
        std::fs::write(root.join("build/gen.py"), "call_tool('generated')\n").unwrap();
        #[cfg(unix)]
        std::os::unix::fs::symlink(outside.path().join("secret.txt"), root.join("src/link.txt"))
            .unwrap();
        let tools = RepoTools::open(root).unwrap();
        let run = |name: &str, args: serde_json::Value| tools.run(name, &args).unwrap();

        let grep = run("grep_files", serde_json::json!({"pattern": "call_tool"})).unwrap();
        assert!(grep.contains("src/agent.py:2:"), "{grep}");
        assert!(
            !grep.contains("build/gen.py"),
            "gitignored files are skipped: {grep}"
        );
        let glob = run("glob_files", serde_json::json!({"pattern": "**/*.py"})).unwrap();
        assert_eq!(glob, "src/agent.py");
        // What the listings hide is not read either, at the root or below.
        std::fs::write(root.join(".env"), "API_KEY=hunter2").unwrap();
        std::fs::write(root.join("src/.gitignore"), "*.secret\n").unwrap();
        std::fs::write(root.join("src/db.secret"), "password").unwrap();
        std::fs::write(root.join(".gitignore"), "build/\n.env\n").unwrap();
        std::fs::create_dir(root.join(".git")).unwrap();
        std::fs::write(root.join(".git/config"), "url = https://token@host/r").unwrap();
        for hidden in [".env", "build/gen.py", "src/db.secret", ".git/config"] {
            let err = run("read_file", serde_json::json!({ "path": hidden })).unwrap_err();
            assert!(err.contains("ignored"), "{hidden}: {err}");
        }
        // A negation below lets a file back in, for the listings and for read_file alike.
        std::fs::write(root.join("src/.gitignore"), "*.secret\n!kept.secret\n").unwrap();
        std::fs::write(root.join("src/kept.secret"), "fine").unwrap();
        let glob = run("glob_files", serde_json::json!({"pattern": "**/*.secret"})).unwrap();
        assert_eq!(glob, "src/kept.secret");
        assert!(run("read_file", serde_json::json!({"path": "src/kept.secret"})).is_ok());
        // Nor are they searched or listed from, named as the place to start.
        for (tool, args) in [
            (
                "grep_files",
                serde_json::json!({"pattern": ".", "path": ".env"}),
            ),
            (
                "grep_files",
                serde_json::json!({"pattern": "url", "path": ".git"}),
            ),
            ("view_repo_tree", serde_json::json!({"path": ".git"})),
            ("view_repo_tree", serde_json::json!({"path": "build"})),
        ] {
            let err = run(tool, args.clone()).unwrap_err();
            assert!(err.contains("ignored"), "{tool} {args}: {err}");
        }

        // --repo-path a directory inside a repository: the .gitignore above it counts too.
        let mono = tempfile::tempdir().unwrap();
        std::fs::write(mono.path().join(".gitignore"), ".env\n").unwrap();
        std::fs::create_dir(mono.path().join("agent")).unwrap();
        std::fs::write(mono.path().join("agent/.env"), "API_KEY=hunter2").unwrap();
        std::fs::write(mono.path().join("agent/main.py"), "run()").unwrap();
        let inner = RepoTools::open(&mono.path().join("agent")).unwrap();
        let err = inner
            .run("read_file", &serde_json::json!({"path": ".env"}))
            .unwrap()
            .unwrap_err();
        assert!(err.contains("ignored"), "{err}");
        assert!(inner
            .run("read_file", &serde_json::json!({"path": "main.py"}))
            .unwrap()
            .is_ok());
        let read = run(
            "read_file",
            serde_json::json!({"path": "src/agent.py", "start_line": 2}),
        )
        .unwrap();
        assert!(read.contains("     2  "), "{read}");
        let backwards = run(
            "read_file",
            serde_json::json!({"path": "src/agent.py", "start_line": 2, "end_line": 1}),
        )
        .unwrap_err();
        assert!(
            backwards.contains("end_line 1 is before the first line 2"),
            "{backwards}"
        );
        let past = run(
            "read_file",
            serde_json::json!({"path": "src/agent.py", "start_line": 9}),
        )
        .unwrap_err();
        assert!(past.contains("has 2 lines"), "{past}");
        // Huge files are refused by size, without being read.
        let big = std::fs::File::create(root.join("src/huge.py")).unwrap();
        big.set_len(READ_MAX_FILE_BYTES + 1).unwrap();
        let e = run("read_file", serde_json::json!({"path": "src/huge.py"})).unwrap_err();
        assert!(e.contains("use grep_files"), "{e}");
        let grep = run("grep_files", serde_json::json!({"pattern": "call_tool"})).unwrap();
        assert!(!grep.contains("huge.py"), "{grep}");
        assert!(run("read_file", serde_json::json!({"path": "../x"})).is_err());
        assert!(run("read_file", serde_json::json!({"path": "/etc/passwd"})).is_err());
        #[cfg(unix)]
        {
            let e = run("read_file", serde_json::json!({"path": "src/link.txt"})).unwrap_err();
            assert!(e.contains("outside the repository"), "{e}");
            let grep = run("grep_files", serde_json::json!({"pattern": "secret"})).unwrap();
            assert!(!grep.contains("top secret"), "{grep}");
        }
        let tree = run("view_repo_tree", serde_json::json!({})).unwrap();
        assert!(
            tree.contains("src/") && tree.contains("agent.py") && !tree.contains("gen.py"),
            "{tree}"
        );
        assert!(
            tools.run("git_log", &serde_json::json!({})).is_none(),
            "not a git work tree"
        );
    }

    #[test]
    fn git_tools_answer_in_a_real_repository() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        let git = |args: &[&str]| {
            let ok = std::process::Command::new("git")
                .args(args)
                .current_dir(root)
                .env("GIT_AUTHOR_NAME", "t")
                .env("GIT_AUTHOR_EMAIL", "t@example.com")
                .env("GIT_COMMITTER_NAME", "t")
                .env("GIT_COMMITTER_EMAIL", "t@example.com")
                .status()
                .is_ok_and(|s| s.success());
            assert!(ok, "git {args:?}");
        };
        git(&["init", "-q"]);
        std::fs::write(root.join("tools.py"), "def a():\n    return 1\n").unwrap();
        git(&["add", "tools.py"]);
        git(&["commit", "-q", "-m", "first"]);
        let tools = RepoTools::open(root).unwrap();
        let run = |name: &str, args: serde_json::Value| tools.run(name, &args).unwrap();
        let blame = run("git_blame", serde_json::json!({"path": "tools.py"})).unwrap();
        assert!(blame.contains("return 1"), "{blame}");
        let lines = run(
            "git_blame",
            serde_json::json!({"path": "tools.py", "rev": "HEAD", "start_line": 2, "end_line": 2}),
        )
        .unwrap();
        assert!(
            lines.contains("return 1") && !lines.contains("def a"),
            "{lines}"
        );
        let refused = run(
            "git_blame",
            serde_json::json!({"path": "tools.py", "rev": "--output=x"}),
        );
        assert!(refused.is_err());
        let log = run("git_log", serde_json::json!({})).unwrap();
        assert!(log.contains("first"), "{log}");
    }

    #[test]
    fn file_tools_take_the_reference_argument_names() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::create_dir(root.join("src")).unwrap();
        let long: String = (1..=3000).map(|i| format!("line {i}\n")).collect();
        std::fs::write(root.join("src/long.py"), &long).unwrap();
        std::fs::write(root.join("src/a.py"), "call_tool('a')\n").unwrap();
        std::fs::write(root.join("src/b.txt"), "call_tool('b')\n").unwrap();
        let tools = RepoTools::open(root).unwrap();
        let run = |name: &str, args: serde_json::Value| tools.run(name, &args).unwrap();

        let glob = run(
            "glob_files",
            serde_json::json!({"pattern": "src/*", "max_results": 1}),
        )
        .unwrap();
        assert!(glob.contains("raise max_results"), "{glob}");
        let old = run(
            "glob_files",
            serde_json::json!({"pattern": "src/*", "limit": 1}),
        )
        .unwrap();
        assert_eq!(glob, old, "limit is an alias of max_results");

        let grep = run(
            "grep_files",
            serde_json::json!({"regex_pattern": "call_tool", "glob_pattern": "**/*.py"}),
        )
        .unwrap();
        assert!(
            grep.contains("src/a.py:1:") && !grep.contains("b.txt"),
            "{grep}"
        );
        let old = run(
            "grep_files",
            serde_json::json!({"pattern": "call_tool", "glob": "**/*.py"}),
        )
        .unwrap();
        assert_eq!(grep, old, "pattern and glob are aliases");

        // 500 lines by default, offset/limit windows, at most 2000 lines a call.
        let read = run("read_file", serde_json::json!({"path": "src/long.py"})).unwrap();
        assert!(
            read.starts_with("src/long.py (lines 1-500 of 3000)"),
            "{read}"
        );
        let read = run(
            "read_file",
            serde_json::json!({"path": "src/long.py", "offset": 10, "limit": 2}),
        )
        .unwrap();
        assert!(
            read.contains("    10  line 10\n    11  line 11\n"),
            "{read}"
        );
        assert!(!read.contains("line 12"), "{read}");
        let read = run(
            "read_file",
            serde_json::json!({"path": "src/long.py", "offset": 1, "limit": 5000}),
        )
        .unwrap();
        assert!(
            read.starts_with("src/long.py (lines 1-2000 of 3000)"),
            "{read}"
        );
        let both = run(
            "read_file",
            serde_json::json!({"path": "src/long.py", "limit": 5, "end_line": 9}),
        )
        .unwrap_err();
        assert!(both.contains("not both"), "{both}");
        let unknown = run(
            "read_file",
            serde_json::json!({"path": "src/long.py", "lines": 5}),
        )
        .unwrap_err();
        assert!(
            unknown.contains("unknown field `lines`") && unknown.contains("`offset`"),
            "{unknown}"
        );
    }

    #[test]
    fn git_tools_take_the_reference_arguments_and_filters() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        let git = |args: &[&str], date: &str| {
            let ok = std::process::Command::new("git")
                .args(args)
                .current_dir(root)
                .env("GIT_AUTHOR_NAME", "t")
                .env("GIT_AUTHOR_EMAIL", "t@example.com")
                .env("GIT_COMMITTER_NAME", "t")
                .env("GIT_COMMITTER_EMAIL", "t@example.com")
                .env("GIT_AUTHOR_DATE", date)
                .env("GIT_COMMITTER_DATE", date)
                .status()
                .is_ok_and(|s| s.success());
            assert!(ok, "git {args:?}");
        };
        let d1 = "2024-01-10T12:00:00Z";
        let d2 = "2024-03-10T12:00:00Z";
        git(&["init", "-q"], d1);
        std::fs::write(root.join("tools.py"), "def a():\n    return 1\n").unwrap();
        git(&["add", "tools.py"], d1);
        git(&["commit", "-q", "-m", "first"], d1);
        std::fs::write(
            root.join("tools.py"),
            "def a():\n    return retry_budget(2)\n",
        )
        .unwrap();
        git(&["commit", "-q", "-am", "second"], d2);
        let tools = RepoTools::open(root).unwrap();
        let run = |name: &str, args: serde_json::Value| tools.run(name, &args).unwrap();

        // git_show: the stat by default, the patch on request; `rev` still works.
        let stat = run("git_show", serde_json::json!({"ref": "HEAD"})).unwrap();
        assert!(
            stat.contains("second") && stat.contains("tools.py | "),
            "{stat}"
        );
        assert!(!stat.contains("+    return retry_budget"), "{stat}");
        let patch = run(
            "git_show",
            serde_json::json!({"rev": "HEAD", "include_patch": true}),
        )
        .unwrap();
        assert!(patch.contains("+    return retry_budget(2)"), "{patch}");

        // git_diff: from_ref/to_ref, the stat unless stat_only is false; base/head aliases.
        let stat = run(
            "git_diff",
            serde_json::json!({"from_ref": "HEAD~1", "to_ref": "HEAD"}),
        )
        .unwrap();
        assert!(
            stat.contains("tools.py | ") && !stat.contains("@@"),
            "{stat}"
        );
        let patch = run(
            "git_diff",
            serde_json::json!({"base": "HEAD~1", "head": "HEAD", "stat_only": false}),
        )
        .unwrap();
        assert!(patch.contains("-    return 1"), "{patch}");

        // git_log: dates and pickaxes.
        let log = |args: serde_json::Value| run("git_log", args).unwrap();
        let since = log(serde_json::json!({"since": "2024-02-01"}));
        assert!(
            since.contains("second") && !since.contains("first"),
            "{since}"
        );
        let until = log(serde_json::json!({"until": "2024-02-01", "ref_range": "HEAD"}));
        assert!(
            until.contains("first") && !until.contains("second"),
            "{until}"
        );
        let s = log(serde_json::json!({"pickaxe_string": "retry_budget("}));
        assert!(s.contains("second") && !s.contains("first"), "{s}");
        let g = log(serde_json::json!({"pickaxe_regex": "return [0-9]+$"}));
        assert!(g.contains("first") && g.contains("second"), "{g}");
        let g = log(serde_json::json!({"pickaxe_regex": "retry_[a-z]+", "max_commits": 5}));
        assert!(g.contains("second") && !g.contains("first"), "{g}");
        let both = run(
            "git_log",
            serde_json::json!({"pickaxe_string": "a", "pickaxe_regex": "b"}),
        )
        .unwrap_err();
        assert!(both.contains("at most one"), "{both}");
        // A value that looks like an option is only ever that option's value.
        let out = root.join("leak.txt");
        let sneaky = format!("--output={}", out.display());
        for key in ["since", "until", "pickaxe_string", "pickaxe_regex"] {
            let _ = run("git_log", serde_json::json!({ key: sneaky }));
            assert!(!out.exists(), "{key} was read as an option");
        }
        let e = run("git_log", serde_json::json!({"pickaxe_string": ""})).unwrap_err();
        assert!(e.contains("pickaxe_string is empty"), "{e}");

        // git_blame and git_read_file take `ref`; git_read_file windows by offset/limit.
        let blame = run(
            "git_blame",
            serde_json::json!({"path": "tools.py", "ref": "HEAD~1"}),
        )
        .unwrap();
        assert!(blame.contains("return 1"), "{blame}");
        let old = run(
            "git_read_file",
            serde_json::json!({"ref": "HEAD~1", "path": "tools.py", "offset": 2, "limit": 1}),
        )
        .unwrap();
        assert!(
            old.starts_with("HEAD~1:tools.py (lines 2-2 of 2)")
                && old.contains("     2      return 1"),
            "{old}"
        );
        assert!(!old.contains("def a"), "{old}");
        let refused = run(
            "git_read_file",
            serde_json::json!({"rev": "--output=x", "path": "tools.py"}),
        );
        assert!(refused.is_err());
    }
}
