//! halo-testkit: test support for halo-rs (never shipped).
//!
//! - [`generate`]: a deterministic generator of realistic agent traces with planted,
//!   labelled failure modes (also available as the `halo-testdata` binary).
//! - [`mutate`]: seeded mutations of trace lines, for tests that nothing panics on user
//!   input.
//! - [`workspace_path`]: repository files (bundled examples, fixtures beside the checkout).

pub mod checkout;
pub mod generate;
pub mod mutate;

pub use checkout::workspace_path;

/// A scripted OpenAI-compatible HTTP server for tests of model clients and agents.
pub mod scripted_server;
