//! halo-testkit (in progress).

/// A scripted OpenAI-compatible HTTP server for tests of model clients and agents.
pub mod scripted_server;
