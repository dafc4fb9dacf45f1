//! `halo`: find the systemic failure modes in agent traces.
//!
//! This binary is flags plus glue: it parses the command line, calls the library crates,
//! renders their results, and maps the outcome to a documented exit code (see `exit.rs`).

mod cmd;
mod exit;
mod interrupt;
mod render;
mod shrunk_file;

use std::ffi::OsString;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// mimalloc instead of the system allocator (see `halo-allocator` for why and how tuned).
#[global_allocator]
static ALLOCATOR: halo_allocator::Allocator = halo_allocator::Allocator;
halo_allocator::tune_for_batch_work_before_main!();

use cmd::count::CountArgs;
use cmd::grep::GrepArgs;
use cmd::index::IndexArgs;
use cmd::overview::OverviewArgs;
use cmd::query::QueryCmdArgs;
use cmd::search::SearchArgs;
use cmd::view::ViewArgs;

const AFTER_HELP: &str = "\
The analysis form:
  halo TRACE_PATH... -p PROMPT [run options]   diagnose with a language model (`halo run --help`)
  halo TRACE_PATH...                           offline diagnosis: no model, no key, no network

Paths that collide with a command name are written ./index, or after `--`.
Every command takes several files and directories as one dataset, plain or .gz, in the
reference span format or OTLP/JSON. Indexes are kept beside the files (or under --index-dir)
and reused while the files are unchanged.

Exit codes: 0 ok · 1 bad usage or no data · 2 I/O failure, or bad input with --strict ·
3 model provider failure · 4 analysis ended without a final report · 5 `diff --fail-on`
found a verdict it names · 130 interrupted (Ctrl-C) · 143 an analysis run terminated
(SIGTERM).";

/// Find the systemic failure modes in AI agent traces.
#[derive(Debug, Parser)]
#[command(
    name = "halo",
    version,
    about,
    after_help = AFTER_HELP,
    propagate_version = true,
    override_usage = "halo <COMMAND> [ARGS]\n       halo TRACE_PATH... [-p PROMPT] [run options]"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// The analysis form's arguments: the dataset, the run options, and the options of the
/// offline diagnosis it runs without `-p`.
#[derive(Debug, clap::Args)]
struct RunCmd {
    #[command(flatten)]
    dataset: cmd::dataset::DatasetArgs,
    #[command(flatten)]
    run: cmd::run::RunArgs,
    /// Findings listed in the terminal summary.
    #[arg(long, value_name = "N", default_value_t = DEFAULT_TOP, help_heading = OFFLINE_HEADING)]
    top: usize,
    #[command(flatten, next_help_heading = OFFLINE_HEADING)]
    detectors: cmd::detectors::DetectorArgs,
}

/// Where `halo run --help` lists the options of the offline diagnosis.
const OFFLINE_HEADING: &str = "Without -p: the offline diagnosis (as `halo diagnose`)";

/// Findings in the terminal summary of an offline diagnosis, unless `--top` says otherwise.
const DEFAULT_TOP: usize = 15;

#[derive(Debug, Subcommand)]
enum Command {
    /// Diagnose traces with a language model: `halo TRACE_PATH... -p PROMPT` (the reference's form).
    Run(Box<RunCmd>),
    /// Find the failure modes with deterministic detectors: no model, no key, no network.
    Diagnose(cmd::diagnose::DiagnoseArgs),
    /// Compare two datasets (before and after a fix): per failure mode, did it go away?
    Diff(cmd::diff::DiffArgs),
    /// Build (or reuse) the index of a dataset and report what is in it.
    Index(IndexArgs),
    /// Counts, time range, services, models, agents, tools, tokens and the error taxonomy.
    Overview(OverviewArgs),
    /// List traces that match filters, sorted and paged.
    Query(QueryCmdArgs),
    /// Count traces that match filters.
    Count(CountArgs),
    /// Show one trace span by span.
    View(ViewArgs),
    /// Find a regex inside one trace (or one span).
    Search(SearchArgs),
    /// Find a regex across the whole dataset.
    Grep(GrepArgs),
    /// Ask the traces in SQL (Apache DataFusion, read-only): tables traces, spans, tool_calls, llm_calls, messages.
    Sql(cmd::sql::SqlArgs),
    /// Write the SQL tables as Parquet files.
    Export(cmd::export::ExportArgs),
}

/// The subcommand names, for telling `halo index ...` from `halo traces.jsonl -p ...`.
const COMMANDS: &[&str] = &[
    "diagnose", "diff", "export", "sql", "index", "overview", "query", "count", "view", "search",
    "grep", "run", "help",
];

/// Rewrites the reference's analysis form (`halo TRACES -p PROMPT`) into `halo run ...`.
fn normalize_args(args: Vec<OsString>) -> Vec<OsString> {
    let first = args.iter().skip(1).find(|a| {
        let s = a.to_string_lossy();
        !s.starts_with('-') || s == "--"
    });
    let Some(first) = first else { return args };
    let word = first.to_string_lossy();
    if COMMANDS.contains(&word.as_ref()) {
        return args;
    }
    let mut out = args;
    out.insert(1, OsString::from("run"));
    out
}

/// A first word that is neither a command nor an existing path but close to a command name
/// is a typo (`halo overveiw ...`): say so instead of "no such file".
fn mistyped_command(args: &[OsString]) -> Option<(String, &'static str)> {
    let word = args.get(1)?.to_string_lossy().into_owned();
    if word.starts_with('-')
        || COMMANDS.contains(&word.as_str())
        || std::path::Path::new(&word).exists()
    {
        return None;
    }
    COMMANDS
        .iter()
        .filter(|c| **c != "help")
        .map(|c| (strsim::damerau_levenshtein(&word, c), *c))
        .filter(|(d, _)| *d <= 2)
        .min()
        .map(|(_, c)| (word, c))
}

fn main() -> ExitCode {
    #[cfg(not(target_os = "linux"))]
    halo_allocator::tune_for_batch_work();
    let raw: Vec<OsString> = std::env::args_os().collect();
    let json_wanted = exit::asks_for_json(&raw);
    exit::report_errors_as_json(json_wanted);
    shrunk_file::explain_sigbus();
    if let Some((word, command)) = mistyped_command(&raw) {
        return exit::finish(Err(exit::Failure::usage(anyhow::anyhow!(
            "{word:?} is neither a command nor a file; did you mean `halo {command}`?"
        ))));
    }
    let args = normalize_args(raw);
    let cli = match Cli::try_parse_from(args) {
        Ok(cli) => cli,
        Err(e) => {
            // `--help` and `--version` are successes; every other clap error is bad usage,
            // exit code 1 like the rest (clap's own default would be 2, which here means
            // an I/O failure).
            if !e.use_stderr() {
                let _ = e.print();
                return ExitCode::from(exit::OK);
            }
            if !json_wanted {
                // clap's own rendering, colours and all.
                let _ = e.print();
                return ExitCode::from(exit::USAGE);
            }
            // Under --json, through `finish`, so that stdout gets the error as JSON.
            let message = e.render().to_string();
            return exit::finish(Err(exit::Failure::usage(anyhow::anyhow!(
                "{}",
                message.trim_end().trim_start_matches("error: ")
            ))));
        }
    };
    let model_run =
        matches!(&cli.command, Command::Run(a) if a.run.prompt.is_some() || a.run.resume.is_some());
    if json_wanted && !model_run {
        interrupt::report_as_json();
    }
    let outcome = match &cli.command {
        Command::Run(a) => return run_analysis(a),
        Command::Diagnose(a) => cmd::diagnose::run(a),
        Command::Diff(a) => cmd::diff::run(a),
        Command::Index(a) => cmd::index::run(a),
        Command::Overview(a) => cmd::overview::run(a),
        Command::Query(a) => cmd::query::run(a),
        Command::Count(a) => cmd::count::run(a),
        Command::View(a) => cmd::view::run(a),
        Command::Search(a) => cmd::search::run(a),
        Command::Grep(a) => cmd::grep::run(a),
        Command::Sql(a) => cmd::sql::run(a),
        Command::Export(a) => cmd::export::run(a),
    };
    exit::finish(outcome)
}

/// `halo TRACES -p PROMPT`: checks what can fail at once (key, flags) before indexing.
fn run_analysis(a: &RunCmd) -> ExitCode {
    if a.run.prompt.is_none() && a.run.resume.is_none() {
        // The embedded default: the offline diagnosis, then how to go deeper.
        let r = &a.run;
        let model_flags = r.model != "gpt-5.4-mini"
            || r.synthesis_model.is_some()
            || r.compaction_model.is_some()
            || r.max_depth != 2
            || r.max_turns != 20
            || r.max_parallel != 10
            || r.repo_path.is_some()
            || r.max_total_tokens.is_some()
            || r.dataset_context.is_some()
            || !r.headers.is_empty()
            || r.responses_api
            || r.temperature.is_some()
            || r.max_output_tokens.is_some()
            || r.reasoning_effort.is_some()
            || r.refusal_retries != 0
            || r.telemetry;
        if model_flags && !a.dataset.options.quiet {
            errln!("halo: warning: run options take effect only with -p PROMPT; running the offline diagnosis");
        }
        let args = cmd::diagnose::DiagnoseArgs {
            dataset: a.dataset.clone(),
            output: a.run.output.clone(),
            top: a.top,
            detectors: a.detectors.clone(),
        };
        return exit::finish(cmd::diagnose::run(&args));
    }
    if (a.top != DEFAULT_TOP || a.detectors != cmd::detectors::DetectorArgs::default())
        && !a.dataset.options.quiet
    {
        errln!("halo: warning: --top and the detector options take effect only without -p (the offline diagnosis); the model run ignores them");
    }
    // A path that is not there is the first thing to say, before the key or the flags.
    for path in &a.dataset.paths {
        if let Err(e) = std::fs::metadata(path) {
            let why = match e.kind() {
                std::io::ErrorKind::NotFound => "no such file or directory".to_owned(),
                _ => e.to_string(),
            };
            return exit::finish(Err(exit::Failure::usage(anyhow::anyhow!(
                "{}: {why}",
                path.display()
            ))));
        }
    }
    if let Some(dir) = &a.dataset.options.index_dir {
        if let Err(f) = cmd::dataset::directory_possible("--index-dir", dir) {
            return exit::finish(Err(f));
        }
    }
    if let Err(e) = cmd::run::preflight(&a.run) {
        return exit::finish(Err(exit::Failure::usage(e)));
    }
    let dataset = match a.dataset.open(false) {
        Ok(ds) => std::sync::Arc::new(ds),
        Err(f) => return exit::finish(Err(f)),
    };
    // An empty dataset would still be sent to the model, at a cost, for nothing.
    if let Err(f) = cmd::dataset::require_traces(&dataset, "analyse", &a.dataset.paths) {
        return exit::finish(Err(f));
    }
    if let Some(out) = &a.run.output {
        if let Err(f) = cmd::run::artifacts_clear_of_sources(out, &dataset) {
            return exit::finish(Err(f));
        }
    }
    let output = cmd::run::Output {
        json: a.dataset.options.json,
        quiet: a.dataset.options.quiet,
    };
    match cmd::run::execute(&a.run, dataset, output) {
        Ok(code) => code,
        Err(e) => exit::finish(Err(e.into())),
    }
}

#[cfg(test)]
mod tests {
    #[cfg(target_os = "linux")]
    #[test]
    fn the_allocator_is_tuned_before_main() {
        // Nothing in this test binary calls the tuning: only the constructor can have.
        let disabled = unsafe { libc::prctl(libc::PR_GET_THP_DISABLE, 0, 0, 0, 0) };
        assert_eq!(disabled, 1);
        let status = std::fs::read_to_string("/proc/self/status").unwrap();
        if let Some(line) = status.lines().find(|l| l.starts_with("THP_enabled:")) {
            assert!(line.ends_with('0'), "{line}");
        }
    }

    use super::*;

    fn norm(args: &[&str]) -> Vec<String> {
        normalize_args(args.iter().map(OsString::from).collect())
            .into_iter()
            .map(|a| a.into_string().unwrap())
            .collect()
    }

    #[test]
    fn the_reference_form_becomes_run() {
        assert_eq!(
            norm(&["halo", "t.jsonl", "-p", "x"]),
            ["halo", "run", "t.jsonl", "-p", "x"]
        );
        assert_eq!(
            norm(&["halo", "-m", "gpt", "t.jsonl"]),
            ["halo", "run", "-m", "gpt", "t.jsonl"]
        );
        assert_eq!(
            norm(&["halo", "./index", "-p", "x"]),
            ["halo", "run", "./index", "-p", "x"]
        );
        assert_eq!(
            norm(&["halo", "--", "index", "-p", "x"]),
            ["halo", "run", "--", "index", "-p", "x"]
        );
    }

    #[test]
    fn typos_of_commands_are_caught() {
        let args = |w: &str| vec![OsString::from("halo"), OsString::from(w)];
        assert_eq!(
            mistyped_command(&args("overveiw")).map(|(_, c)| c),
            Some("overview")
        );
        assert_eq!(
            mistyped_command(&args("qeury")).map(|(_, c)| c),
            Some("query")
        );
        assert_eq!(mistyped_command(&args("traces.jsonl")), None);
        assert_eq!(mistyped_command(&args("index")), None);
    }

    #[test]
    fn subcommands_stay() {
        assert_eq!(
            norm(&["halo", "index", "t.jsonl"]),
            ["halo", "index", "t.jsonl"]
        );
        assert_eq!(norm(&["halo", "--help"]), ["halo", "--help"]);
        assert_eq!(
            norm(&["halo", "--json", "overview", "t"]),
            ["halo", "--json", "overview", "t"]
        );
    }

    #[test]
    fn cli_definition_is_consistent() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }
}
