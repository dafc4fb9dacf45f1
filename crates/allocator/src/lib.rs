//! The allocator of halo's binaries: mimalloc, tuned for batch work.
//!
//! Index builds allocate many short-lived strings on every core; glibc's allocator cost
//! about a quarter of their speed. A binary declares it once:
//!
//! ```
//! #[global_allocator]
//! static ALLOCATOR: halo_allocator::Allocator = halo_allocator::Allocator;
//!
//! fn main() {
//!     halo_allocator::keep_freed_memory();
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

#[cfg(test)]
mod tests {
    #[test]
    fn the_purge_delay_is_the_option_set() {
        super::keep_freed_memory();
        // SAFETY: reading an option is always allowed.
        let now = unsafe { libmimalloc_sys::mi_option_get(super::PURGE_DELAY) };
        assert_eq!(now, -1);
    }
}
