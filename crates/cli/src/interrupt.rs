//! Ctrl-C under `--json`: a script reading stdout gets JSON even then.
//!
//! The handler writes the JSON error line (exit code 130) and then lets the signal kill
//! the process, as it would have without a handler: a shell loop running halo stops on
//! Ctrl-C only when its child died of it. While an answer is being written, the signal
//! waits for it to end instead, so that stdout never holds half a document followed by
//! the error line; the process then dies with the whole answer written.

use std::sync::atomic::{AtomicBool, Ordering};

/// An answer is being written on stdout.
static WRITING: AtomicBool = AtomicBool::new(false);
/// Ctrl-C came while it was.
static PENDING: AtomicBool = AtomicBool::new(false);

/// Installs the handler. Not for the analysis run with a model, which handles Ctrl-C
/// itself to save its partial report.
pub(crate) fn report_as_json() {
    #[cfg(unix)]
    {
        extern "C" fn on_interrupt(_: libc::c_int) {
            if WRITING.load(Ordering::SeqCst) {
                PENDING.store(true, Ordering::SeqCst);
                return;
            }
            const OUT: &[u8] = b"{\"type\":\"error\",\"schema_version\":1,\"error\":{\"exit_code\":130,\"message\":\"interrupted\"}}\n";
            const ERR: &[u8] = b"halo: interrupted\n";
            // SAFETY: write(2) is async-signal-safe; the buffers are static.
            unsafe {
                libc::write(1, OUT.as_ptr().cast(), OUT.len());
                libc::write(2, ERR.as_ptr().cast(), ERR.len());
            }
            die_of_it();
        }
        // SAFETY: installs a handler that only calls async-signal-safe functions.
        unsafe {
            let before = libc::signal(
                libc::SIGINT,
                on_interrupt as extern "C" fn(libc::c_int) as libc::sighandler_t,
            );
            // Started with Ctrl-C ignored (a background job of a script, `nohup`): it
            // stays ignored, as it would without the handler.
            if before == libc::SIG_IGN {
                libc::signal(libc::SIGINT, libc::SIG_IGN);
            }
        }
    }
}

/// Runs `write` (the answer, or the error line, going to stdout) with Ctrl-C held until
/// it is done. Once an answer is out, a later Ctrl-C adds nothing to stdout: the flag
/// stays set, and the process only dies of it.
pub(crate) fn while_writing<T>(write: impl FnOnce() -> T) -> T {
    WRITING.store(true, Ordering::SeqCst);
    let written = write();
    if PENDING.load(Ordering::SeqCst) {
        die_of_it();
    }
    written
}

/// Ends the process by SIGINT, as if no handler had been installed.
fn die_of_it() {
    #[cfg(unix)]
    // SAFETY: signal(2) and raise(3) are async-signal-safe.
    unsafe {
        libc::signal(libc::SIGINT, libc::SIG_DFL);
        libc::raise(libc::SIGINT);
    }
}
