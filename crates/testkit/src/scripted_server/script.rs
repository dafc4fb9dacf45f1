//! Script types: replies, model turns, recorded requests.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;

/// Server-wide options plus the reply queue. Build with [`Script::new`] and
/// the builder methods, or convert from a `Vec<Reply>`.
#[derive(Debug, Default)]
pub struct Script {
    pub(crate) replies: Vec<Reply>,
    pub(crate) options: Options,
}

#[derive(Debug, Default, Clone)]
pub(crate) struct Options {
    pub(crate) chunk_size: Option<usize>,
    pub(crate) chunk_delay: Option<Duration>,
    pub(crate) crlf: bool,
}

impl Script {
    /// An empty script.
    pub fn new() -> Self {
        Script::default()
    }

    /// Queues a reply.
    pub fn reply(mut self, reply: Reply) -> Self {
        self.replies.push(reply);
        self
    }

    /// Queues several replies.
    pub fn replies(mut self, replies: impl IntoIterator<Item = Reply>) -> Self {
        self.replies.extend(replies);
        self
    }

    /// Writes every SSE body in HTTP chunks of exactly `n` bytes (the last may
    /// be shorter), so events, lines and UTF-8 characters are split at odd
    /// positions. Without it, each SSE event is one HTTP chunk.
    pub fn chunk_size(mut self, n: usize) -> Self {
        self.options.chunk_size = Some(n.max(1));
        self
    }

    /// Sleeps this long between HTTP chunks of SSE bodies.
    pub fn chunk_delay(mut self, d: Duration) -> Self {
        self.options.chunk_delay = Some(d);
        self
    }

    /// Ends SSE lines with CRLF instead of LF.
    pub fn crlf(mut self, yes: bool) -> Self {
        self.options.crlf = yes;
        self
    }
}

impl From<Vec<Reply>> for Script {
    fn from(replies: Vec<Reply>) -> Self {
        Script::new().replies(replies)
    }
}

/// A predicate choosing which request a reply answers.
pub(crate) type Matcher = Arc<dyn Fn(&RecordedRequest) -> bool + Send + Sync>;

#[derive(Debug, Clone)]
pub(crate) enum Action {
    Turn(Turn),
    Error {
        status: u16,
        body: String,
        retry_after: Option<String>,
    },
    Drop {
        turn: Turn,
        after_bytes: usize,
    },
    Hang,
    Raw(Vec<String>),
}

/// One scripted answer to one request.
#[derive(Clone)]
pub struct Reply {
    pub(crate) action: Action,
    pub(crate) matcher: Option<Matcher>,
    pub(crate) delay: Option<Duration>,
}

impl fmt::Debug for Reply {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Reply")
            .field("action", &self.action)
            .field("has_matcher", &self.matcher.is_some())
            .field("delay", &self.delay)
            .finish()
    }
}

impl Reply {
    fn new(action: Action) -> Self {
        Reply {
            action,
            matcher: None,
            delay: None,
        }
    }

    /// A streamed model turn.
    pub fn turn(turn: Turn) -> Self {
        Reply::new(Action::Turn(turn))
    }

    /// A streamed model turn with just this text (split into word deltas).
    pub fn text(text: impl Into<String>) -> Self {
        Reply::turn(Turn::new().text(text))
    }

    /// A whole `application/json` answer with status 200, as servers that ignore
    /// `"stream": true` send one.
    pub fn whole_json(body: impl Into<String>) -> Self {
        Reply::error(200, body)
    }

    /// An HTTP error with this status and body (sent as `application/json`).
    pub fn error(status: u16, body: impl Into<String>) -> Self {
        Reply::new(Action::Error {
            status,
            body: body.into(),
            retry_after: None,
        })
    }

    /// An HTTP error with an OpenAI-style error body
    /// `{"error":{"message","type","code"}}`.
    pub fn api_error(status: u16, code: &str, message: &str) -> Self {
        let body = serde_json::json!({
            "error": {"message": message, "type": "invalid_request_error", "code": code, "param": null}
        });
        Reply::error(status, body.to_string())
    }

    /// HTTP 429 with `Retry-After: <secs>`.
    pub fn rate_limited(retry_after_secs: u64) -> Self {
        Reply::api_error(429, "rate_limit_exceeded", "Rate limit reached (scripted)")
            .retry_after(retry_after_secs.to_string())
    }

    /// Streams `turn` but closes the connection abruptly after `after_bytes`
    /// bytes of the SSE body (no terminating chunk, no `[DONE]`).
    pub fn drop_after(turn: Turn, after_bytes: usize) -> Self {
        Reply::new(Action::Drop { turn, after_bytes })
    }

    /// Streams this SSE body verbatim (status 200, `text/event-stream`), for
    /// protocol edge cases the [`Turn`] renderer does not produce. Each
    /// element is written as one HTTP chunk unless [`Script::chunk_size`] is
    /// set.
    pub fn raw_sse<S: Into<String>>(body: impl IntoIterator<Item = S>) -> Self {
        Reply::new(Action::Raw(body.into_iter().map(Into::into).collect()))
    }

    /// Accepts the request and never answers (until the server stops).
    pub fn hang() -> Self {
        Reply::new(Action::Hang)
    }

    /// Adds a `Retry-After` header (only meaningful for error replies).
    pub fn retry_after(mut self, value: impl Into<String>) -> Self {
        if let Action::Error { retry_after, .. } = &mut self.action {
            *retry_after = Some(value.into());
        }
        self
    }

    /// Waits this long before sending the response headers.
    pub fn delay(mut self, d: Duration) -> Self {
        self.delay = Some(d);
        self
    }

    /// Serves this reply only to requests `f` accepts.
    pub fn when(mut self, f: impl Fn(&RecordedRequest) -> bool + Send + Sync + 'static) -> Self {
        self.matcher = Some(Arc::new(f));
        self
    }

    /// Serves this reply only to requests whose last user message contains
    /// `needle`.
    pub fn when_last_user_contains(self, needle: impl Into<String>) -> Self {
        let needle = needle.into();
        self.when(move |r| {
            r.last_user_message()
                .is_some_and(|m| m.contains(needle.as_str()))
        })
    }
}

/// A scripted tool call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScriptedToolCall {
    /// Call id (`call_id` on the Responses API).
    pub id: String,
    /// Function name.
    pub name: String,
    /// Argument pieces, streamed as separate deltas (concatenated they form
    /// the arguments, which need not be valid JSON).
    pub argument_deltas: Vec<String>,
}

/// A model turn: text and/or tool calls, optional refusal, usage and finish
/// reason.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Turn {
    /// Text deltas, in order.
    pub text_deltas: Vec<String>,
    /// Tool calls, in order.
    pub tool_calls: Vec<ScriptedToolCall>,
    /// Refusal text (streamed as refusal deltas).
    pub refusal: Option<String>,
    /// `(input_tokens, output_tokens)`; when `None` the server reports an
    /// estimate (bytes / 4).
    pub usage: Option<(u64, u64)>,
    /// Finish reason (Chat Completions spelling). Default `tool_calls` when
    /// there are tool calls, else `stop`. `length` becomes
    /// `response.incomplete` (`max_output_tokens`) on the Responses API.
    pub finish_reason: Option<String>,
}

impl Turn {
    /// An empty turn.
    pub fn new() -> Self {
        Turn::default()
    }

    /// Appends text, split into word-sized deltas.
    pub fn text(mut self, text: impl Into<String>) -> Self {
        let text = text.into();
        self.text_deltas
            .extend(text.split_inclusive(' ').map(str::to_owned));
        self
    }

    /// Appends text deltas exactly as given.
    pub fn text_deltas<S: Into<String>>(mut self, deltas: impl IntoIterator<Item = S>) -> Self {
        self.text_deltas.extend(deltas.into_iter().map(Into::into));
        self
    }

    /// Adds a tool call; its arguments are streamed in three pieces.
    pub fn tool_call(self, id: &str, name: &str, arguments: &str) -> Self {
        let chars: Vec<char> = arguments.chars().collect();
        let step = chars.len().div_ceil(3).max(1);
        let pieces: Vec<String> = chars.chunks(step).map(|c| c.iter().collect()).collect();
        self.tool_call_deltas(id, name, pieces)
    }

    /// Adds a tool call whose arguments are streamed as exactly these pieces.
    pub fn tool_call_deltas<S: Into<String>>(
        mut self,
        id: &str,
        name: &str,
        argument_deltas: impl IntoIterator<Item = S>,
    ) -> Self {
        self.tool_calls.push(ScriptedToolCall {
            id: id.to_owned(),
            name: name.to_owned(),
            argument_deltas: argument_deltas.into_iter().map(Into::into).collect(),
        });
        self
    }

    /// Sets a refusal.
    pub fn refusal(mut self, text: impl Into<String>) -> Self {
        self.refusal = Some(text.into());
        self
    }

    /// Sets reported usage.
    pub fn usage(mut self, input_tokens: u64, output_tokens: u64) -> Self {
        self.usage = Some((input_tokens, output_tokens));
        self
    }

    /// Sets the finish reason (`stop`, `length`, `tool_calls`, ...).
    pub fn finish_reason(mut self, reason: impl Into<String>) -> Self {
        self.finish_reason = Some(reason.into());
        self
    }
}

/// A request the server received.
#[derive(Debug, Clone, PartialEq)]
pub struct RecordedRequest {
    /// HTTP method.
    pub method: String,
    /// Request target (path and query), e.g. `/v1/chat/completions`.
    pub path: String,
    /// Headers in arrival order; names lowercased.
    pub headers: Vec<(String, String)>,
    /// The body parsed as JSON (`Value::Null` when it is not JSON).
    pub body: Value,
    /// The body as text (lossy UTF-8).
    pub raw_body: String,
}

fn content_text(content: &Value) -> Option<String> {
    match content {
        Value::String(s) => Some(s.clone()),
        Value::Array(parts) => Some(
            parts
                .iter()
                .filter_map(|p| p.get("text").and_then(Value::as_str))
                .collect(),
        ),
        _ => None,
    }
}

impl RecordedRequest {
    /// The first header named `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.as_str())
    }

    /// True for a Responses API request.
    pub fn is_responses(&self) -> bool {
        self.path.trim_end_matches('/').ends_with("/responses")
    }

    /// The conversation items: `messages` (Chat Completions) or `input`
    /// (Responses API).
    pub fn items(&self) -> Vec<Value> {
        let key = if self.is_responses() {
            "input"
        } else {
            "messages"
        };
        match self.body.get(key) {
            Some(Value::Array(a)) => a.clone(),
            Some(Value::String(s)) => {
                vec![serde_json::json!({"role": "user", "content": s})]
            }
            _ => Vec::new(),
        }
    }

    /// Text of the last user message, on either wire.
    pub fn last_user_message(&self) -> Option<String> {
        self.items()
            .iter()
            .rev()
            .find(|m| m.get("role").and_then(Value::as_str) == Some("user"))
            .and_then(|m| m.get("content").and_then(content_text))
    }

    /// Names of the offered tools, on either wire.
    pub fn tool_names(&self) -> Vec<String> {
        self.body
            .get("tools")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|t| {
                t.pointer("/function/name")
                    .or_else(|| t.get("name"))
                    .and_then(Value::as_str)
                    .map(str::to_owned)
            })
            .collect()
    }

    /// `(tool_call_id, content)` of every tool result sent back, in order,
    /// on either wire.
    pub fn tool_results(&self) -> Vec<(String, String)> {
        self.items()
            .iter()
            .filter_map(|m| {
                if m.get("role").and_then(Value::as_str) == Some("tool") {
                    Some((
                        m.get("tool_call_id")?.as_str()?.to_owned(),
                        content_text(m.get("content")?)?,
                    ))
                } else if m.get("type").and_then(Value::as_str) == Some("function_call_output") {
                    Some((
                        m.get("call_id")?.as_str()?.to_owned(),
                        m.get("output").and_then(content_text)?,
                    ))
                } else {
                    None
                }
            })
            .collect()
    }
}
