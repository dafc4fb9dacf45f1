//! The allocator of halo's binaries: mimalloc, tuned for batch work.
//!
//! Index builds allocate many short-lived strings on every core; glibc's allocator cost
//! about a quarter of their speed. A binary declares it once:
//!
//! ```
//! #[global_allocator]
//! static ALLOCATOR: halo_allocator::Allocator = halo_allocator::Allocator;
//! halo_allocator::tune_for_batch_work_before_main!();
//!
//! fn main() {
//!     // ...
//! }
//! ```
//!
//! Libraries never choose the allocator; only `main` does.

/// The global allocator (a unit struct: its name is also its value).
pub use mimalloc::MiMalloc as Allocator;

/// mimalloc's `purge_delay` option (its position in `mi_option_t`, mimalloc v3), which the
/// Rust bindings do not name.
const PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

/// mimalloc's `allow_thp` option (its position in `mi_option_t`, mimalloc v3).
const ALLOW_THP: libmimalloc_sys::mi_option_t = 43;

/// Declares, in a binary, that [`tune_for_batch_work`] runs before `main`: before the Rust
/// runtime's first allocation, which makes mimalloc reserve its first memory. Called from
/// `main`, that came too late: the first reservation was faulted in as huge pages, about
/// 10 ms of clearing memory before anything else could start.
///
/// On Linux the call goes in the `.init_array` section, which the C runtime runs before
/// `main`; elsewhere `main` must call [`tune_for_batch_work`] itself.
#[macro_export]
macro_rules! tune_for_batch_work_before_main {
    () => {
        #[cfg(target_os = "linux")]
        #[used]
        #[link_section = ".init_array"]
        static TUNE_FOR_BATCH_WORK_BEFORE_MAIN: extern "C" fn() = {
            extern "C" fn tune() {
                $crate::tune_for_batch_work();
            }
            tune
        };
    };
}

/// Tunes the process for a batch job: keeps freed memory for reuse and faults memory in
/// 4 KB pages. `main` calls it first; a long-running server should not.
pub fn tune_for_batch_work() {
    keep_freed_memory();
    use_small_pages();
}

/// Keeps freed memory for reuse instead of returning it to the OS.
///
/// By default mimalloc hands freed pages back to the kernel after a delay, and the next
/// allocation faults fresh ones in, each zeroed by the kernel (2 MB at a time with
/// transparent huge pages). A gzip build frees and reallocates its chunk buffers and span
/// batches continuously: zeroing pages was 7–8% of its CPU time. halo's commands
/// are batch work that exits when done, so keeping the peak's pages until exit costs
/// nothing; a long-running server should not call this.
pub fn keep_freed_memory() {
    // SAFETY: `mi_option_set` only stores an integer in mimalloc's option table; any value
    // is valid for this option (-1 means never purge) and it may be called at any time.
    unsafe { libmimalloc_sys::mi_option_set(PURGE_DELAY, -1) }
}

/// Turns transparent huge pages off for the process.
///
/// mimalloc asks the kernel for huge pages on its arenas, so the first touch of a fresh
/// 2 MB region zeroes all of it, and how long that takes depends on how hard the kernel
/// must work to find the huge page. On the 2-core benchmark machine a gzip index build
/// spent 0.08 to 0.29 s in the kernel from run to run with huge pages, and a steady 0.09
/// to 0.12 s without them, for 20% less peak memory (94–96 against 117–129 MB).
///
/// The process-wide switch is inherited by the processes halo starts (`git`, for the
/// analysis tools that read a repository), which is harmless for them.
pub fn use_small_pages() {
    // SAFETY: `mi_option_set` only stores an integer in mimalloc's option table; 0 stops
    // mimalloc from advising huge pages on the memory it maps from now on.
    unsafe { libmimalloc_sys::mi_option_set(ALLOW_THP, 0) }
    // The memory mimalloc mapped before `main` is covered by the process-wide switch,
    // which the kernel checks at every page fault.
    #[cfg(target_os = "linux")]
    // SAFETY: PR_SET_THP_DISABLE only sets a flag on the calling process; the call takes
    // no pointers. Failure (an old kernel) leaves huge pages on, which is only slower.
    unsafe {
        libc::prctl(libc::PR_SET_THP_DISABLE, 1, 0, 0, 0);
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_purge_delay_is_the_option_set() {
        super::keep_freed_memory();
        // SAFETY: reading an option is always allowed.
        let now = unsafe { libmimalloc_sys::mi_option_get(super::PURGE_DELAY) };
        assert_eq!(now, -1);
    }

    #[test]
    fn small_pages_switch_off_huge_pages_for_mimalloc_and_the_process() {
        super::use_small_pages();
        // SAFETY: reading an option is always allowed.
        let allowed = unsafe { libmimalloc_sys::mi_option_get(super::ALLOW_THP) };
        assert_eq!(allowed, 0);
        #[cfg(target_os = "linux")]
        {
            // SAFETY: PR_GET_THP_DISABLE takes no pointers and only reads the flag.
            let disabled = unsafe { libc::prctl(libc::PR_GET_THP_DISABLE, 0, 0, 0, 0) };
            assert_eq!(disabled, 1);
        }
    }
}
