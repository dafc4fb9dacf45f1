//! The only place that decides how output looks: `--json` or tables for people.

/// `eprintln!` that never panics: a closed stderr (`halo ... 2>&1 | head`) must not turn a
/// run into a crash; the message is dropped instead. Messages quote trace text (a bad
/// line's reason, a span name), so control characters are escaped ([`halo_trace::printable`]).
#[macro_export]
macro_rules! errln {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let message = format!($($arg)*);
        let _ = writeln!(std::io::stderr(), "{}", halo_trace::printable(&message));
    }};
}

/// `eprint!` that never panics (see [`errln!`]).
#[macro_export]
macro_rules! err {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let message = format!($($arg)*);
        let _ = write!(std::io::stderr(), "{}", halo_trace::printable(&message));
    }};
}

pub(crate) mod human;
pub(crate) mod table;

use std::io::Write;

use serde::Serialize;

/// Writes one value as pretty JSON on stdout, followed by a newline.
pub(crate) fn json<T: Serialize>(value: &T) -> std::io::Result<()> {
    // Ctrl-C waits for the whole document (see `interrupt`).
    crate::interrupt::while_writing(|| {
        let mut out = std::io::stdout().lock();
        serde_json::to_writer_pretty(&mut out, value)?;
        writeln!(out)?;
        out.flush()
    })
}

/// Writes text for people on stdout, its control characters escaped: what the tables and
/// trees show is trace text, which may hold terminal escape sequences
/// ([`halo_trace::printable`]).
pub(crate) fn text(s: &str) -> std::io::Result<()> {
    raw_text(&halo_trace::printable(s))
}

/// Writes text on stdout as it is: for formats whose bytes scripts rely on (CSV).
pub(crate) fn raw_text(s: &str) -> std::io::Result<()> {
    let mut out = std::io::stdout().lock();
    out.write_all(s.as_bytes())?;
    if !s.ends_with('\n') {
        out.write_all(b"\n")?;
    }
    out.flush()
}
