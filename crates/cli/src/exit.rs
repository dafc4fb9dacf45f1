//! The documented exit codes of `halo`, decided in one place.
//!
//! | code | meaning |
//! |---|---|
//! | 0 | success |
//! | 1 | bad usage, or no data (nonexistent path, no trace files, unknown trace id) |
//! | 2 | I/O failure, or unreadable input under `--strict` |
//! | 3 | the model provider failed (analysis runs) |
//! | 4 | an analysis run ended without a final report: the root agent never called `final_answer`, or a budget ran out before the model wrote any report (what there is is saved) |
//! | 130 | interrupted (Ctrl-C); partial results were saved |
//! | 143 | an analysis run was terminated (SIGTERM: `timeout`, `docker stop`); its partial results were saved |

use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};

/// Whether the command line asked for `--json`: then a failure is also written on stdout,
/// as one JSON line, so that a script reading stdout always gets JSON.
static JSON_ERRORS: AtomicBool = AtomicBool::new(false);

/// Makes failures print a JSON error object on stdout as well (see [`finish`]).
pub(crate) fn report_errors_as_json(on: bool) {
    JSON_ERRORS.store(on, Ordering::Relaxed);
}

/// Whether failures are also written as JSON on stdout (see [`report_errors_as_json`]);
/// safe to call from a signal handler.
pub(crate) fn reports_json() -> bool {
    JSON_ERRORS.load(Ordering::Relaxed)
}

/// Whether `--json` is among the options (before any `--`, after which words are paths).
pub(crate) fn asks_for_json(args: &[std::ffi::OsString]) -> bool {
    args.iter()
        .skip(1)
        .take_while(|a| *a != "--")
        .any(|a| a == "--json")
}

/// Success.
pub(crate) const OK: u8 = 0;
/// Bad usage or no data.
pub(crate) const USAGE: u8 = 1;
/// I/O failure, or unreadable input under `--strict`.
pub(crate) const DATA: u8 = 2;
/// Model provider failure.
#[allow(dead_code)]
pub(crate) const PROVIDER: u8 = 3;
/// An analysis run ended without its root agent's final answer.
pub(crate) const NO_FINAL_REPORT: u8 = 4;
/// `halo diff --fail-on`: a mode or finding got one of the verdicts named.
pub(crate) const GATE_FAILED: u8 = 5;
/// Interrupted.
pub(crate) const INTERRUPTED: u8 = 130;
/// Terminated (SIGTERM) during an analysis run, which saved its partial results.
pub(crate) const TERMINATED: u8 = 143;

/// An error with the exit code it should end the process with.
#[derive(Debug)]
pub(crate) struct Failure {
    pub(crate) code: u8,
    pub(crate) error: anyhow::Error,
}

impl Failure {
    pub(crate) fn usage(error: impl Into<anyhow::Error>) -> Failure {
        Failure {
            code: USAGE,
            error: error.into(),
        }
    }
}

impl<E: Into<anyhow::Error>> From<E> for Failure {
    fn from(error: E) -> Failure {
        let error = error.into();
        let code = classify(&error);
        let error = match error.downcast_ref::<halo_query::QueryError>() {
            // The library names the tool argument; here the user gave a flag.
            Some(halo_query::QueryError::BadArgument { name, message }) => {
                anyhow::anyhow!("invalid {}: {message}", flag_of(name))
            }
            _ => error,
        };
        Failure { code, error }
    }
}

/// The command-line flag of a query argument: `start_time_gte` is `--start-time-gte`.
fn flag_of(argument: &str) -> String {
    match argument {
        "span_ids" => "--span".to_string(),
        other => format!("--{}", other.replace('_', "-")),
    }
}

fn classify(error: &anyhow::Error) -> u8 {
    for cause in error.chain() {
        if let Some(e) = cause.downcast_ref::<halo_index::IndexError>() {
            return match e {
                // A path that exists but cannot be read is an I/O failure, not a mistake.
                halo_index::IndexError::Ingest(halo_ingest::IngestError::Io { .. }) => DATA,
                halo_index::IndexError::Ingest(_) | halo_index::IndexError::NoData(_) => USAGE,
                _ => DATA,
            };
        }
        if let Some(e) = cause.downcast_ref::<halo_query::QueryError>() {
            return match e {
                halo_query::QueryError::Index(_) | halo_query::QueryError::SourceChanged(_) => DATA,
                halo_query::QueryError::Internal(_) => DATA,
                _ => USAGE,
            };
        }
        if let Some(
            halo_rlm::EngineError::DatasetMismatch { .. }
            | halo_rlm::EngineError::NotResumable { .. },
        ) = cause.downcast_ref()
        {
            // Resuming with the wrong trace files or prompt, or a finished run, is a
            // usage mistake.
            return USAGE;
        }
        if cause.downcast_ref::<std::io::Error>().is_some() {
            return DATA;
        }
    }
    DATA
}

/// Turns a command's outcome into the process exit code, printing the error once.
pub(crate) fn finish(outcome: Result<u8, Failure>) -> ExitCode {
    let code = match outcome {
        Ok(code) => code,
        // A closed pipe (`halo query ... | head`) is a quiet success, as in ripgrep.
        Err(f)
            if f.error.chain().any(|c| {
                c.downcast_ref::<std::io::Error>()
                    .is_some_and(|e| e.kind() == std::io::ErrorKind::BrokenPipe)
            }) =>
        {
            OK
        }
        Err(f) => {
            crate::errln!("halo: {:#}", f.error);
            if JSON_ERRORS.load(Ordering::Relaxed) {
                print_json_error(&f);
            }
            f.code
        }
    };
    // Output is out; let replaced indexes finish being deleted before the process ends.
    halo_index::finish_cleanup();
    ExitCode::from(code)
}

/// The `--json` form of a failure, one line on stdout:
/// `{"type":"error","schema_version":1,"error":{"exit_code":2,"message":"...","problem":{...},"problem_count":3}}`.
#[derive(serde::Serialize)]
struct JsonFailure<'a> {
    /// `error`, so that the analysis run's event stream (every line tagged with a `type`)
    /// can end with this line too.
    #[serde(rename = "type")]
    kind: &'static str,
    schema_version: u32,
    error: JsonError<'a>,
}

#[derive(serde::Serialize)]
struct JsonError<'a> {
    exit_code: u8,
    message: String,
    /// When `--strict` refused bad input: the first problem (kind, file, line, message).
    #[serde(skip_serializing_if = "Option::is_none")]
    problem: Option<&'a halo_ingest::Problem>,
    /// When `--strict` refused bad input: how many problems there were.
    #[serde(skip_serializing_if = "Option::is_none")]
    problem_count: Option<u64>,
}

fn print_json_error(f: &Failure) {
    use std::io::Write as _;
    let strict = f.error.chain().find_map(|c| match c.downcast_ref() {
        Some(halo_index::IndexError::Strict { count, first }) => Some((*count, first)),
        _ => None,
    });
    let value = JsonFailure {
        kind: "error",
        schema_version: 1,
        error: JsonError {
            exit_code: f.code,
            message: format!("{:#}", f.error),
            problem: strict.map(|(_, first)| first),
            problem_count: strict.map(|(count, _)| count),
        },
    };
    crate::interrupt::while_writing(|| {
        let mut out = std::io::stdout().lock();
        if serde_json::to_writer(&mut out, &value).is_ok() {
            let _ = writeln!(out);
        }
        let _ = out.flush();
    });
}
