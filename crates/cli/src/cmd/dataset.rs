//! Options every command takes about the dataset, and opening it with a progress bar.

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

use clap::Args;
use halo_index::{BuildProgress, Dataset, OpenOptions};
use indicatif::{ProgressBar, ProgressStyle};

use crate::exit::Failure;

/// The dataset: files and directories, read as one.
#[derive(Debug, Clone, Args)]
pub(crate) struct DatasetArgs {
    /// Trace files (.jsonl, OTLP/JSON, .gz) and directories, read as one dataset.
    #[arg(required = true, value_name = "TRACE_PATH")]
    pub(crate) paths: Vec<PathBuf>,
    #[command(flatten)]
    pub(crate) options: DatasetOptions,
}

/// Dataset options shared by every command.
#[derive(Debug, Clone, Args, Default)]
pub(crate) struct DatasetOptions {
    /// Keep indexes under DIR instead of beside each trace file.
    #[arg(
        long,
        value_name = "DIR",
        global = true,
        help_heading = "Dataset options"
    )]
    pub(crate) index_dir: Option<PathBuf>,
    /// Fail on the first unreadable line, span or file, or damaged gzip stream, instead of
    /// skipping it with a warning (exit code 2).
    #[arg(long, global = true, help_heading = "Dataset options")]
    pub(crate) strict: bool,
    /// Print machine-readable JSON (one documented, versioned schema per command).
    #[arg(long, global = true, help_heading = "Dataset options")]
    pub(crate) json: bool,
    /// Print no progress and no warnings about skipped lines (and, in an analysis run, no
    /// live log of the agents' steps on stderr).
    #[arg(long, short = 'q', global = true, help_heading = "Dataset options")]
    pub(crate) quiet: bool,
}

struct Bar {
    bar: Mutex<Option<ProgressBar>>,
    enabled: bool,
    /// Waits on other processes' builds so far.
    waits: std::sync::atomic::AtomicUsize,
}

impl BuildProgress for Bar {
    fn begin(&self, file: &Path, what: &str, total: u64) {
        if !self.enabled {
            return;
        }
        if (what == halo_index::MAKING_INFLATED_COPY || what == halo_index::EXTENDING_INFLATED_COPY)
            && !std::io::IsTerminal::is_terminal(&std::io::stderr())
        {
            // No bar off a terminal, but writing a file the size of the inflated data
            // deserves a line.
            crate::errln!(
                "halo: {what} {} ({}) beside its index, once, for dataset-wide scans",
                file.display(),
                crate::render::table::bytes(total)
            );
        }
        let bar = ProgressBar::new(total);
        bar.set_style(
            ProgressStyle::with_template(
                "{msg} [{bar:30}] {bytes}/{total_bytes} {binary_bytes_per_sec} eta {eta}",
            )
            .expect("static template")
            .progress_chars("=> "),
        );
        let name = file
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        bar.set_message(format!("{what} {name}"));
        bar.enable_steady_tick(Duration::from_millis(200));
        *self.bar.lock().expect("progress lock") = Some(bar);
    }

    fn advance(&self, done: u64) {
        if let Some(bar) = self.bar.lock().expect("progress lock").as_ref() {
            bar.set_position(done);
        }
    }

    fn using_temporary_copy(&self, file: &Path, why: &str, dir: &Path) {
        if self.enabled {
            crate::errln!(
                "halo: warning: cannot keep an inflated copy of {} beside its index ({why}); scanning a temporary one in {} instead, made again by each command (TMPDIR chooses where)",
                file.display(),
                dir.display()
            );
        }
    }

    fn waiting_for_other_build(&self, file: &Path) {
        if !self.enabled {
            return;
        }
        let n = self
            .waits
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        if let Some(notice) = wait_notice(n, file) {
            crate::errln!("{notice}");
        }
    }

    fn end(&self) {
        if let Some(bar) = self.bar.lock().expect("progress lock").take() {
            bar.finish_and_clear();
        }
    }
}

/// What to say of the `n`th wait (from 0) on another process's build: processes started
/// together on a directory of thousands of files wait on each other file after file, so
/// the first few waits are said, then that there are more, then nothing.
fn wait_notice(n: usize, file: &Path) -> Option<String> {
    const SAID: usize = 3;
    match n {
        n if n < SAID => Some(format!(
            "halo: waiting for another halo process to finish indexing {}",
            file.display()
        )),
        SAID => Some(
            "halo: waiting for other halo processes on more files (not said one by one)".into(),
        ),
        _ => None,
    }
}

impl DatasetArgs {
    /// Opens the dataset, building indexes with a progress bar on a terminal, and prints a
    /// warning per problem (the first few) and a count of the rest.
    pub(crate) fn open(&self, force_rebuild: bool) -> Result<Dataset, Failure> {
        self.open_checking(force_rebuild, false)
    }

    /// [`DatasetArgs::open`] that also checks every checksum of a reused index (`halo
    /// index`), rebuilding what is damaged.
    pub(crate) fn open_checking(
        &self,
        force_rebuild: bool,
        verify: bool,
    ) -> Result<Dataset, Failure> {
        // `--has-errors false` reads `false` as a path (the value takes `=`): say so.
        if let Some(word) = self
            .paths
            .iter()
            .find(|p| matches!(p.to_str(), Some("true" | "false")) && !p.exists())
        {
            return Err(Failure::usage(anyhow::anyhow!(
                "{}: no such file; a flag's true/false is written with `=` (`--has-errors=false`)",
                word.display()
            )));
        }
        if let Some(dir) = &self.options.index_dir {
            directory_possible("--index-dir", dir)?;
        }
        let options = OpenOptions {
            // Absolute, as the files' paths are in reports and `--json`.
            index_dir: self
                .options
                .index_dir
                .as_deref()
                .map(|dir| std::path::absolute(dir).unwrap_or_else(|_| dir.to_path_buf())),
            strict: self.options.strict,
            force_rebuild,
            verify,
            ..Default::default()
        };
        let ds = Dataset::open(&self.paths, &options, &self.bar())?;
        if !self.options.quiet {
            warn_problems(&ds);
        }
        ds.report_copies_to(std::sync::Arc::new(self.bar()));
        Ok(ds)
    }

    /// [`DatasetArgs::open`] for a command that scans the whole data: gzip sources get
    /// their inflated copy first, under a progress bar, instead of a silent pause.
    pub(crate) fn open_for_scan(&self) -> Result<Dataset, Failure> {
        let ds = self.open(false)?;
        ds.make_inflated_copies(&self.bar())?;
        Ok(ds)
    }

    /// [`DatasetArgs::open_for_scan`] when `scans` (the command reads the source of many
    /// spans), else
    /// [`DatasetArgs::open`].
    pub(crate) fn open_scanning_if(&self, scans: bool) -> Result<Dataset, Failure> {
        if scans {
            self.open_for_scan()
        } else {
            self.open(false)
        }
    }

    fn bar(&self) -> Bar {
        Bar {
            bar: Mutex::new(None),
            enabled: !self.options.quiet,
            waits: Default::default(),
        }
    }
}

/// Refuses a directory flag whose path is a file, or lies under one (`afile/sub`): named
/// as the user wrote it, as bad usage, before any work (otherwise the failure would come
/// late and name an internal temporary file).
pub(crate) fn directory_possible(flag: &str, dir: &std::path::Path) -> Result<(), Failure> {
    let blocking = dir
        .ancestors()
        .filter(|a| !a.as_os_str().is_empty())
        .find(|a| a.exists())
        .filter(|a| !a.is_dir());
    match blocking {
        Some(file) if file == dir => Err(Failure::usage(anyhow::anyhow!(
            "{flag} {}: a file is there, not a directory",
            dir.display()
        ))),
        Some(file) => Err(Failure::usage(anyhow::anyhow!(
            "{flag} {}: {} is a file, not a directory",
            dir.display(),
            file.display()
        ))),
        None => Ok(()),
    }
}

/// How many problems are printed one by one.
const SHOWN_PROBLEMS: usize = 5;

fn warn_problems(ds: &Dataset) {
    for p in ds.problems().iter().take(SHOWN_PROBLEMS) {
        crate::errln!("halo: warning: {p}");
    }
    let rest = ds
        .problem_count()
        .saturating_sub(SHOWN_PROBLEMS.min(ds.problems().len()) as u64);
    if rest > 0 {
        crate::errln!("halo: warning: {rest} more problem(s); `halo index --json` lists the first 200 of each file");
    }
    for r in ds.reports() {
        if r.spans == 0 && r.skipped_lines > 1 && !r.gzip && is_pretty_printed_json(&r.path) {
            crate::errln!(
                "halo: hint: {} looks like one JSON document over many lines (pretty-printed); halo reads one JSON object per line: `jq -c . FILE` writes that (`jq -c '.[]' FILE` for an array)",
                r.path.display()
            );
        }
    }
}

/// Whether the file's first line that is not blank is a lone `{` or `[`: the opening of
/// a pretty-printed JSON document, the usual first mistake when a JSONL file is expected.
fn is_pretty_printed_json(path: &std::path::Path) -> bool {
    use std::io::Read as _;
    let mut head = [0u8; 4096];
    let Ok(n) = std::fs::File::open(path).and_then(|mut f| f.read(&mut head)) else {
        return false;
    };
    String::from_utf8_lossy(&head[..n])
        .lines()
        .map(|l| l.trim_start_matches('\u{feff}').trim())
        .find(|l| !l.is_empty())
        .is_some_and(|l| l == "{" || l == "[")
}

/// Refuses a dataset without a single trace for a command whose answer would be empty
/// yet look like a result (a diagnosis finding nothing, a diff calling everything
/// unchanged): that is "no data", exit 1, with the first problem as the likely reason.
pub(crate) fn require_traces(ds: &Dataset, what: &str, paths: &[PathBuf]) -> Result<(), Failure> {
    if !ds.traces().is_empty() {
        return Ok(());
    }
    let names: Vec<String> = paths.iter().map(|p| p.display().to_string()).collect();
    let reason = match ds.problems().first() {
        Some(p) => format!(" (the first problem: {p})"),
        None => String::new(),
    };
    Err(Failure::usage(anyhow::anyhow!(
        "{} holds no traces{reason}; there is nothing to {what}",
        names.join(", ")
    )))
}

/// Refuses to write any of `written` (what each file is, and its path) when it is one of
/// the trace files of `datasets`: `-o traces.jsonl` would replace the data with its
/// report. `output` is the path as the user gave it, for the message.
pub(crate) fn written_clear_of_sources(
    output: &Path,
    written: &[(&str, &Path)],
    datasets: &[&Dataset],
) -> Result<(), Failure> {
    let sources: Vec<PathBuf> = datasets
        .iter()
        .flat_map(|d| d.sources())
        .filter_map(|s| std::fs::canonicalize(s).ok())
        .collect();
    for (what, path) in written {
        let Ok(real) = std::fs::canonicalize(path) else {
            continue; // not there yet: nothing to overwrite
        };
        if sources.contains(&real) {
            return Err(Failure::usage(anyhow::anyhow!(
                "-o/--output {}: {what} would be written over {}, a trace file of the dataset; give the report another name",
                output.display(),
                path.display()
            )));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn waits_on_other_builds_are_said_a_few_times_not_once_per_file() {
        let said: Vec<String> = (0..5000)
            .filter_map(|n| super::wait_notice(n, std::path::Path::new("f.jsonl")))
            .collect();
        assert_eq!(said.len(), 4, "{said:?}");
        assert!(said[0].contains("f.jsonl"));
        assert!(said[3].contains("more files"));
    }
}
