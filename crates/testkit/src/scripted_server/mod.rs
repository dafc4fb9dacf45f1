//! A scripted OpenAI-compatible HTTP server for tests.
//!
//! [`ScriptedServer::start`] binds `127.0.0.1:0` and serves a [`Script`]: a
//! queue of [`Reply`]s. Every `POST .../chat/completions` or
//! `POST .../responses` request is recorded ([`RecordedRequest`]) and answered
//! with the first queued reply whose matcher accepts it (a reply without a
//! matcher accepts every request). The reply is then removed from the queue.
//! Matchers make scripts deterministic when requests arrive in a
//! nondeterministic order (parallel subagents):
//!
//! ```no_run
//! # async fn demo() {
//! use halo_testkit::scripted_server::{Reply, Script, ScriptedServer, Turn};
//! let server = ScriptedServer::start(
//!     Script::new()
//!         .reply(Reply::text("answer for A").when_last_user_contains("task A"))
//!         .reply(Reply::text("answer for B").when_last_user_contains("task B"))
//!         .reply(Reply::turn(Turn::new().tool_call("call_1", "final_answer", r#"{"answer":"x"}"#)))
//!         .chunk_size(3), // SSE body written in 3-byte HTTP chunks
//! )
//! .await;
//! let base_url = server.base_url(); // "http://127.0.0.1:PORT/v1"
//! // ... run the code under test against base_url ...
//! let requests = server.requests();
//! # let _ = (base_url, requests);
//! # }
//! ```
//!
//! The server speaks real HTTP/1.1 (one request per connection, `Connection:
//! close`) and streams real SSE: Chat Completions chunks ending in
//! `data: [DONE]` (usage chunk included when the request asked for
//! `stream_options.include_usage`), or Responses API events
//! (`response.created` ... `response.completed`). A request that no queued
//! reply accepts gets HTTP 400 with a message naming the problem, so a broken
//! script fails fast instead of being retried. Requests for other paths get
//! 404 and consume nothing. Request bodies must carry `Content-Length`
//! (chunked request bodies are not supported). Dropping the
//! [`ScriptedServer`] stops it and closes every open connection.
//!
//! [`ScriptedServer::max_in_flight`] reports the most requests that were
//! being served at once (read, and the response, including any
//! [`Reply::delay`] and the whole streamed body, not yet finished), so tests
//! can check a client's concurrency cap: give the replies a delay and the
//! overlap becomes deterministic.

mod http;
mod render;
mod script;
#[cfg(test)]
mod tests;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use tokio::net::TcpListener;
use tokio::task::JoinHandle;

pub use script::{RecordedRequest, Reply, Script, ScriptedToolCall, Turn};

pub(crate) struct State {
    pub(crate) queue: Vec<Reply>,
    pub(crate) requests: Vec<RecordedRequest>,
    pub(crate) unmatched: usize,
    /// Requests read whose response is not finished yet.
    pub(crate) in_flight: usize,
    /// The largest `in_flight` seen.
    pub(crate) max_in_flight: usize,
}

/// A running scripted server. Stops when dropped.
#[derive(Debug)]
pub struct ScriptedServer {
    addr: SocketAddr,
    state: Arc<Mutex<State>>,
    task: JoinHandle<()>,
}

impl std::fmt::Debug for State {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("State")
            .field("queued", &self.queue.len())
            .field("requests", &self.requests.len())
            .field("unmatched", &self.unmatched)
            .field("in_flight", &self.in_flight)
            .field("max_in_flight", &self.max_in_flight)
            .finish()
    }
}

impl ScriptedServer {
    /// Binds `127.0.0.1:0` and starts serving `script` on the current tokio
    /// runtime.
    ///
    /// # Panics
    /// When the loopback socket cannot be bound.
    pub async fn start(script: impl Into<Script>) -> ScriptedServer {
        let script = script.into();
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("scripted server: bind 127.0.0.1:0");
        let addr = listener.local_addr().expect("scripted server: local addr");
        let state = Arc::new(Mutex::new(State {
            queue: script.replies,
            requests: Vec::new(),
            unmatched: 0,
            in_flight: 0,
            max_in_flight: 0,
        }));
        let options = Arc::new(script.options);
        let task = tokio::spawn(http::serve(listener, Arc::clone(&state), options));
        ScriptedServer { addr, state, task }
    }

    /// `http://127.0.0.1:PORT/v1`, to be used as a provider base URL.
    pub fn base_url(&self) -> String {
        format!("http://{}/v1", self.addr)
    }

    /// The socket address the server listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Every request received so far, in arrival order (including requests
    /// no reply matched and requests for unknown paths).
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.lock().requests.clone()
    }

    /// Replies still queued (not yet served).
    pub fn remaining(&self) -> usize {
        self.lock().queue.len()
    }

    /// Requests that found no matching reply (and got HTTP 400).
    pub fn unmatched(&self) -> usize {
        self.lock().unmatched
    }

    /// The most requests that were ever being served at the same time.
    ///
    /// A request counts from the moment it has been read until its response
    /// is finished: after any [`Reply::delay`], the whole (possibly
    /// chunk-delayed) SSE body or error body, and the connection shutdown. A
    /// [`Reply::hang`] counts until the server stops. Error replies (HTTP
    /// 400 for unmatched requests, 404 for unknown paths) count too, briefly.
    /// Replies with a delay make the overlap of concurrent requests
    /// deterministic, so a client's concurrency cap can be asserted exactly.
    ///
    /// A client that stops reading at `data: [DONE]` sees its response
    /// complete just before the server writes the terminating HTTP chunk.
    /// Without [`Script::chunk_delay`] no await point that yields separates
    /// that write from the end of the count, so on a current-thread runtime
    /// the client's next request cannot overlap the finished one.
    pub fn max_in_flight(&self) -> usize {
        self.lock().max_in_flight
    }

    /// Requests being served right now (see [`ScriptedServer::max_in_flight`]).
    pub fn in_flight(&self) -> usize {
        self.lock().in_flight
    }

    /// Appends a reply to the queue while the server runs.
    pub fn push(&self, reply: Reply) {
        self.lock().queue.push(reply);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Drop for ScriptedServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}
