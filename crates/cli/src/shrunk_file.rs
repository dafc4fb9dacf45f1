//! A mapped file that shrinks under halo (logrotate's `copytruncate`, a truncated export)
//! makes the next read of a vanished page raise SIGBUS, which would kill the process with
//! no word. halo reads sources and indexes through memory maps for speed, so it catches the
//! signal instead and says what happened, with the documented exit code for an I/O failure.
//! Nothing is left half-written: indexes are built under temporary names and swapped in.

/// Installs the handler, for the whole process.
pub(crate) fn explain_sigbus() {
    #[cfg(unix)]
    {
        extern "C" fn on_sigbus(_: libc::c_int) {
            const ERR: &[u8] = b"halo: a file shrank while halo was reading it (a log rotated with copytruncate, or a file truncated); nothing was changed: run the command again\n";
            const OUT: &[u8] = b"{\"type\":\"error\",\"schema_version\":1,\"error\":{\"exit_code\":2,\"message\":\"a file shrank while halo was reading it; run the command again\"}}\n";
            // SAFETY: write(2) and _exit(2) are async-signal-safe; the buffers are static.
            unsafe {
                if crate::exit::reports_json() {
                    libc::write(1, OUT.as_ptr().cast(), OUT.len());
                }
                libc::write(2, ERR.as_ptr().cast(), ERR.len());
                libc::_exit(i32::from(crate::exit::DATA));
            }
        }
        // SAFETY: installs a handler that only calls async-signal-safe functions.
        unsafe {
            libc::signal(
                libc::SIGBUS,
                on_sigbus as extern "C" fn(libc::c_int) as libc::sighandler_t,
            );
        }
    }
}
