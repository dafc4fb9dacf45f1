//! Paths in this checkout for tests that read repository files (the bundled examples) or
//! the public fixtures beside it.

use std::path::PathBuf;

/// `relative` to the workspace root of the crate under test (`examples/data/...`, or
/// `../shared/data/...` for what sits beside the checkout).
///
/// The root comes from `CARGO_MANIFEST_DIR` as `cargo test` sets it when the test runs
/// (every crate is at `crates/NAME`). Not the compile-time value: with a target directory
/// shared between checkouts, a test binary may have been built in another checkout,
/// since deleted.
pub fn workspace_path(relative: &str) -> PathBuf {
    let manifest = std::env::var_os("CARGO_MANIFEST_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")));
    manifest.join("../..").join(relative)
}
