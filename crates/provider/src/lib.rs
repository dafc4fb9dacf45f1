//! An OpenAI-compatible model client for halo-rs.
//!
//! This crate knows nothing about traces or agents. It turns a provider-neutral
//! [`ModelRequest`] into an HTTP request against an OpenAI-compatible endpoint
//! (Chat Completions by default, or the Responses API), streams the answer back
//! as [`StreamEvent`]s, retries transient failures with full-jitter exponential
//! backoff and keeps the API key out of every `Debug`, `Display` and error text.
//!
//! # Entry points
//!
//! * [`ModelClient::new`] builds a client from a [`ProviderConfig`].
//! * [`ModelClient::stream`] returns a [`ModelStream`] of events (text deltas are
//!   forwarded live; tool calls, usage and the finish reason arrive when the
//!   attempt completes).
//! * [`ModelClient::complete`] drives the stream to the end and returns a
//!   [`ModelResponse`].
//!
//! # Retries and duplicate deltas
//!
//! A retried request never makes the caller see the same text twice. Text
//! deltas are forwarded live. When an attempt fails after it already emitted
//! text, the next attempt's text is compared against what was already emitted:
//! the part that repeats the emitted prefix is swallowed, and only text past it
//! is forwarded. If the new attempt diverges from (or ends before the end of)
//! what was emitted, the stream emits [`StreamEvent::Restart`] followed by the
//! new attempt's complete text so far; the caller must discard the text it got
//! before a `Restart`. Invariant: the concatenation of the `TextDelta`s received
//! after the last `Restart` equals [`ModelResponse::text`]. Tool calls, refusal,
//! usage and the finish reason are only ever emitted by the attempt that
//! succeeded, so they can never be duplicated.
//!
//! # Cancellation
//!
//! Dropping a [`ModelStream`] (or the future returned by
//! [`ModelClient::complete`]) drops the in-flight HTTP response, which closes
//! the connection and cancels the request. No background task is spawned.

#![deny(missing_docs)]

mod adapt;
mod assemble;
mod chat;
mod client;
mod config;
mod error;
mod key;
mod responses;
mod retry;
mod sse;
mod types;
mod usage;

pub use client::{ModelClient, ModelStream};
pub use config::{parse_header, HeaderParseError, ProviderConfig, RetryPolicy, WireApi};
pub use error::ProviderError;
pub use key::ApiKey;
pub use types::{
    FinishReason, Message, ModelRequest, ModelResponse, ReasoningEffort, RetryInfo, StreamEvent,
    ToolCall, ToolSpec, Usage,
};
