//! A backstop for a query's memory limit. DataFusion's pool counts what its operators
//! reserve, not everything they allocate: a string aggregate over a cross join grew the
//! process to 8.7 GB under a 2 GiB limit before the pool noticed. Where the system says
//! how much anonymous memory the process holds (Linux's `/proc/self/status`), it is
//! watched while a query runs, and the query is cancelled once the process has grown by
//! half as much again as the limit. The pool stays the first line: this one only fires
//! when the pool did not.
//!
//! The growth is the whole process's, so queries running side by side (agents' parallel
//! tool calls) count each other's memory: together they are held to the limit of one
//! and a half, which errs on the side of the machine. Tables made on first use (span
//! tables, loaded from the index) are kept for the process's life, not for one query:
//! what their making adds is not counted, and no query is cancelled while one is being
//! made. The messages an engine keeps between queries (at most 256 MB) are counted
//! against the query that read them: the limit leaves room for them.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

/// How often the process's memory is read: often enough that a query allocating a
/// gigabyte a second overshoots by tens of megabytes, rarely enough to cost nothing.
const EVERY: Duration = Duration::from_millis(25);

/// Bytes that tables made on first use added to the process, all told.
static KEPT: AtomicUsize = AtomicUsize::new(0);

/// Tables being made right now.
static MAKING: AtomicUsize = AtomicUsize::new(0);

/// Runs `make`, which makes something kept for the process's life: its memory is not a
/// query's.
pub(crate) fn keeping<T>(make: impl FnOnce() -> T) -> T {
    /// Ends the making also when `make` panics (the blocking pool catches it), or every
    /// later query would go unwatched.
    struct Making;
    impl Drop for Making {
        fn drop(&mut self) {
            MAKING.fetch_sub(1, Ordering::SeqCst);
        }
    }
    MAKING.fetch_add(1, Ordering::SeqCst);
    let _making = Making;
    let before = anonymous_bytes();
    let made = make();
    if let (Some(before), Some(after)) = (before, anonymous_bytes()) {
        KEPT.fetch_add(after.saturating_sub(before), Ordering::SeqCst);
    }
    made
}

/// Resolves, with the growth in bytes, once the process's anonymous memory has grown by
/// more than `limit + limit / 2` since the call; never resolves where that memory cannot
/// be read.
pub(crate) async fn grown_past(limit: usize) -> usize {
    let Some(start) = anonymous_bytes() else {
        return std::future::pending().await;
    };
    let kept_at_start = KEPT.load(Ordering::SeqCst);
    let allowance = limit.saturating_add(limit / 2);
    loop {
        tokio::time::sleep(EVERY).await;
        if MAKING.load(Ordering::SeqCst) > 0 {
            continue;
        }
        if let Some(now) = anonymous_bytes() {
            let kept = KEPT.load(Ordering::SeqCst).saturating_sub(kept_at_start);
            let grown = now.saturating_sub(start).saturating_sub(kept);
            if grown > allowance {
                return grown;
            }
        }
    }
}

/// The process's resident anonymous memory (heap, not mapped files such as the index), in
/// bytes, where the system says (Linux); what the memory limit's watch reads.
pub fn anonymous_bytes() -> Option<usize> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    rss_anon_of(&status)
}

/// `RssAnon:` of a `/proc/PID/status` text, in bytes.
fn rss_anon_of(status: &str) -> Option<usize> {
    let line = status.lines().find(|l| l.starts_with("RssAnon:"))?;
    let kb: usize = line
        .trim_start_matches("RssAnon:")
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    kb.checked_mul(1024)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_rss_anon_in_bytes() {
        let status = "Name:\thalo\nRssAnon:\t   20480 kB\nRssFile:\t  1000 kB\n";
        assert_eq!(rss_anon_of(status), Some(20 << 20));
        assert_eq!(rss_anon_of("Name:\thalo\n"), None);
        #[cfg(target_os = "linux")]
        assert!(anonymous_bytes().is_some_and(|b| b > 0));
    }
}
