//! halo-testkit: test support for halo-rs (never shipped).
//!
//! - [`generate`]: a deterministic generator of realistic agent traces with planted,
//!   labelled failure modes (also available as the `halo-testdata` binary).

pub mod generate;

/// A scripted OpenAI-compatible HTTP server for tests of model clients and agents.
pub mod scripted_server;
