//! The documented exit codes of `halo`, decided in one place.
//!
//! | code | meaning |
//! |---|---|
//! | 0 | success |
//! | 1 | bad usage, or no data (nonexistent path, no trace files, unknown trace id) |
//! | 2 | I/O failure, or unreadable input under `--strict` |
//! | 3 | the model provider failed (analysis runs) |
//! | 130 | interrupted (Ctrl-C); partial results were saved |

use std::process::ExitCode;

/// Success.
pub(crate) const OK: u8 = 0;
/// Bad usage or no data.
pub(crate) const USAGE: u8 = 1;
/// I/O failure, or unreadable input under `--strict`.
pub(crate) const DATA: u8 = 2;
/// Model provider failure.
#[allow(dead_code)]
pub(crate) const PROVIDER: u8 = 3;
/// Interrupted.
#[allow(dead_code)]
pub(crate) const INTERRUPTED: u8 = 130;

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
        Failure { code, error }
    }
}

fn classify(error: &anyhow::Error) -> u8 {
    for cause in error.chain() {
        if let Some(e) = cause.downcast_ref::<halo_index::IndexError>() {
            return match e {
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
        if let Some(halo_rlm::EngineError::DatasetMismatch { .. }) = cause.downcast_ref() {
            // Resuming with the wrong trace files is a usage mistake.
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
            f.code
        }
    };
    // Output is out; let replaced indexes finish being deleted before the process ends.
    halo_index::finish_cleanup();
    ExitCode::from(code)
}
