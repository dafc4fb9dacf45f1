//! The model client, its event stream and the retry driver.

use std::collections::VecDeque;
use std::fmt;
use std::pin::Pin;
use std::sync::{Arc, Once};
use std::task::{Context, Poll};

use futures::stream::{BoxStream, Stream, StreamExt};
use reqwest::header::{HeaderMap, HeaderName, HeaderValue, ACCEPT, AUTHORIZATION, CONTENT_TYPE};

use crate::adapt::{changed_body, Change, Learnt};
use crate::assemble::Attempt;
use crate::config::{ProviderConfig, WireApi};
use crate::error::ProviderError;
use crate::retry::{
    backoff, from_http, from_reqwest, parse_retry_after, scrub, scrub_text, secrets_of,
    AttemptFailure,
};
use crate::sse::SseParser;
use crate::types::{FinishReason, ModelRequest, ModelResponse, RetryInfo, StreamEvent, Usage};
use crate::{chat, responses};

static CRYPTO: Once = Once::new();

/// Installs rustls' `ring` provider as the process default, once. Another
/// provider installed first (by another crate) is fine too.
fn install_crypto_provider() {
    CRYPTO.call_once(|| {
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
}

struct Inner {
    http: reqwest::Client,
    config: ProviderConfig,
    url: String,
    headers: HeaderMap,
    /// Parameters this server turned out not to know.
    learnt: Learnt,
}

/// An OpenAI-compatible model client. Cheap to clone (shares one connection
/// pool). `Debug` never shows the key or header values.
#[derive(Clone)]
pub struct ModelClient {
    inner: Arc<Inner>,
}

impl fmt::Debug for ModelClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ModelClient")
            .field("url", &self.inner.url)
            .field("config", &self.inner.config)
            .finish()
    }
}

impl ModelClient {
    /// Builds a client. Fails with [`ProviderError::InvalidConfig`] when a
    /// header name or value is unusable or the HTTP client cannot be built.
    pub fn new(config: ProviderConfig) -> Result<Self, ProviderError> {
        install_crypto_provider();
        let mut headers = HeaderMap::new();
        for (name, value) in &config.headers {
            let n = HeaderName::from_bytes(name.as_bytes()).map_err(|_| {
                ProviderError::InvalidConfig(format!("invalid header name {name:?}"))
            })?;
            let mut v = HeaderValue::from_str(value).map_err(|_| {
                ProviderError::InvalidConfig(format!("invalid value for header {name:?}"))
            })?;
            v.set_sensitive(true);
            headers.append(n, v);
        }
        // A custom Authorization header is the caller's credential: the key never replaces it.
        let own_auth = headers.contains_key(AUTHORIZATION);
        if let Some(key) = config
            .api_key
            .as_ref()
            .filter(|k| !k.is_empty() && !own_auth)
        {
            let mut v =
                HeaderValue::from_str(&format!("Bearer {}", key.expose())).map_err(|_| {
                    ProviderError::InvalidConfig(
                        "the API key contains characters not allowed in a header".to_owned(),
                    )
                })?;
            v.set_sensitive(true);
            headers.insert(AUTHORIZATION, v);
        }
        if !headers.contains_key(CONTENT_TYPE) {
            headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        }
        if !headers.contains_key(ACCEPT) {
            headers.insert(ACCEPT, HeaderValue::from_static("text/event-stream"));
        }
        let http = reqwest::Client::builder()
            .connect_timeout(config.connect_timeout)
            .build()
            .map_err(|e| {
                ProviderError::InvalidConfig(format!(
                    "cannot build HTTP client: {}",
                    e.without_url()
                ))
            })?;
        let url = config.endpoint_url();
        Ok(ModelClient {
            inner: Arc::new(Inner {
                http,
                config,
                url,
                headers,
                learnt: Learnt::default(),
            }),
        })
    }

    /// The configuration this client was built from.
    pub fn config(&self) -> &ProviderConfig {
        &self.inner.config
    }

    /// Starts a streamed request. Nothing is sent until the stream is first
    /// polled. The stream is `'static` and `Send`; dropping it cancels the
    /// request. Retries happen inside the stream (see the crate docs for how
    /// duplicated text is avoided). The last item is either
    /// [`StreamEvent::Finished`] or an `Err`.
    pub fn stream(&self, req: &ModelRequest) -> ModelStream {
        let mut body = match self.inner.config.wire {
            WireApi::ChatCompletions => chat::request_body(req),
            WireApi::Responses => responses::request_body(req),
        };
        self.inner.learnt.apply_all(&req.model, &mut body);
        let driver = Driver {
            inner: Arc::clone(&self.inner),
            model: req.model.clone(),
            body: serde_json::to_vec(&body).unwrap_or_default(),
            attempts: 0,
            deadline: tokio::time::Instant::now(),
            phase: Phase::Start,
            pending: VecDeque::new(),
            replay: Replay::default(),
        };
        let stream = futures::stream::unfold(driver, |mut d| async move {
            d.next_item().await.map(|item| (item, d))
        });
        ModelStream {
            inner: stream.boxed(),
        }
    }

    /// Runs a request to completion and returns the assembled response.
    pub async fn complete(&self, req: &ModelRequest) -> Result<ModelResponse, ProviderError> {
        self.complete_with(req, |_| {}).await
    }

    /// Like [`ModelClient::complete`], but calls `on_event` for every event as
    /// it arrives (to stream text to a UI). The callback sees `Restart` and
    /// `Retrying` too; the returned response already accounts for them.
    pub async fn complete_with(
        &self,
        req: &ModelRequest,
        mut on_event: impl FnMut(&StreamEvent),
    ) -> Result<ModelResponse, ProviderError> {
        let mut stream = self.stream(req);
        let mut text = String::new();
        let mut tool_calls = Vec::new();
        let mut usage: Option<Usage> = None;
        let mut refusal = None;
        let mut attempts = 1;
        while let Some(item) = stream.next().await {
            let event = item?;
            on_event(&event);
            match event {
                StreamEvent::TextDelta(t) => text.push_str(&t),
                StreamEvent::Restart { .. } => text.clear(),
                StreamEvent::Retrying(_) => attempts += 1,
                StreamEvent::ToolCall(c) => tool_calls.push(c),
                StreamEvent::Refusal(r) => refusal = Some(r),
                StreamEvent::Usage(u) => usage = Some(u),
                StreamEvent::Finished { finish_reason } => {
                    return Ok(ModelResponse {
                        text,
                        tool_calls,
                        usage,
                        finish_reason,
                        refusal,
                        attempts,
                    })
                }
            }
        }
        Err(ProviderError::Protocol(
            "stream ended without a finish event".to_owned(),
        ))
    }
}

/// How much of a body that is no event stream its error quotes.
const NAMED_HEAD_BYTES: usize = 120;

/// The failure of a successful response whose body held no server-sent event at all: a
/// proxy's login page, a plain-text greeting, an empty body. Not tried again: the same
/// server answers the same way.
fn not_an_event_stream(content_type: &str, head: &[u8]) -> AttemptFailure {
    let text = String::from_utf8_lossy(head);
    let begins = match text.trim() {
        "" => "it is empty".to_owned(),
        t => format!("it begins {:?}", t.chars().take(80).collect::<String>()),
    };
    AttemptFailure::fatal(ProviderError::Protocol(format!(
        "the server answered 200 but not with an event stream or a completion (content type {content_type}; {begins}); check that --base-url is an OpenAI-compatible API, not a proxy's page or another service"
    )))
}

/// Whether a successful response is a whole JSON document rather than an event stream.
fn is_whole_json(resp: &reqwest::Response) -> bool {
    resp.headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| {
            ct.trim_start()
                .to_ascii_lowercase()
                .starts_with("application/json")
        })
}

/// The events of one model request; see [`ModelClient::stream`].
pub struct ModelStream {
    inner: BoxStream<'static, Result<StreamEvent, ProviderError>>,
}

impl fmt::Debug for ModelStream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ModelStream")
    }
}

impl Stream for ModelStream {
    type Item = Result<StreamEvent, ProviderError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.inner.as_mut().poll_next(cx)
    }
}

/// Keeps retried attempts from repeating text the caller already has.
///
/// `emitted` is the text handed out since the last `Restart`. A new attempt's
/// text is swallowed while it repeats `emitted`; past that prefix it flows
/// live again. A divergence (or an attempt that ends inside the prefix)
/// emits `Restart` and the attempt's whole text.
#[derive(Debug, Default)]
struct Replay {
    emitted: String,
    attempt_text: String,
    live: bool,
}

impl Replay {
    fn begin_attempt(&mut self) {
        self.attempt_text.clear();
        self.live = self.emitted.is_empty();
    }

    fn delta(
        &mut self,
        d: String,
        attempt: u32,
        out: &mut VecDeque<Result<StreamEvent, ProviderError>>,
    ) {
        let start = self.attempt_text.len();
        self.attempt_text.push_str(&d);
        if self.live {
            self.emitted.push_str(&d);
            out.push_back(Ok(StreamEvent::TextDelta(d)));
            return;
        }
        let end = self.attempt_text.len();
        if end <= self.emitted.len() {
            if self.emitted.as_bytes()[start..end] == *d.as_bytes() {
                return; // still repeating what the caller already has
            }
        } else if self.emitted.as_bytes()[start..]
            == self.attempt_text.as_bytes()[start..self.emitted.len()]
        {
            // Passed the end of the emitted prefix: forward only the new part.
            let new = self.attempt_text[self.emitted.len()..].to_owned();
            self.emitted.push_str(&new);
            self.live = true;
            out.push_back(Ok(StreamEvent::TextDelta(new)));
            return;
        }
        self.restart(attempt, out);
    }

    fn restart(&mut self, attempt: u32, out: &mut VecDeque<Result<StreamEvent, ProviderError>>) {
        self.emitted = self.attempt_text.clone();
        self.live = true;
        out.push_back(Ok(StreamEvent::Restart { attempt }));
        if !self.emitted.is_empty() {
            out.push_back(Ok(StreamEvent::TextDelta(self.emitted.clone())));
        }
    }

    /// At success: an attempt that stopped inside the emitted prefix means the
    /// caller holds text that is not part of the answer.
    fn finish_attempt(
        &mut self,
        attempt: u32,
        out: &mut VecDeque<Result<StreamEvent, ProviderError>>,
    ) {
        if !self.live && self.attempt_text != self.emitted {
            self.restart(attempt, out);
        }
    }
}

enum Phase {
    Start,
    Backoff(std::time::Duration),
    Streaming(Box<Live>),
    Done,
}

/// An attempt whose response body is being read.
struct Live {
    resp: reqwest::Response,
    sse: SseParser,
    att: Attempt,
    /// No body byte has been read yet.
    first: bool,
    /// What the body began with and its content type, to name a body that turns out to
    /// be no event stream.
    head: Vec<u8>,
    content_type: String,
    /// Body bytes read so far, against [`ProviderConfig::max_response_bytes`].
    received: usize,
}

struct Driver {
    inner: Arc<Inner>,
    /// The model asked, under which adaptations are learnt.
    model: String,
    body: Vec<u8>,
    attempts: u32,
    /// When the request must be over, its retries and their waits included (see
    /// [`ProviderConfig::deadline`]); set by its first attempt.
    deadline: tokio::time::Instant,
    phase: Phase,
    pending: VecDeque<Result<StreamEvent, ProviderError>>,
    replay: Replay,
}

impl Driver {
    async fn next_item(&mut self) -> Option<Result<StreamEvent, ProviderError>> {
        loop {
            if let Some(item) = self.pending.pop_front() {
                return Some(item);
            }
            match std::mem::replace(&mut self.phase, Phase::Done) {
                Phase::Done => return None,
                Phase::Backoff(delay) => {
                    tokio::time::sleep(delay).await;
                    self.phase = Phase::Start;
                }
                Phase::Start => {
                    if self.attempts == 0 {
                        self.deadline = tokio::time::Instant::now() + self.inner.config.deadline;
                    }
                    self.attempts += 1;
                    self.replay.begin_attempt();
                    match self.send().await {
                        Ok(resp) if is_whole_json(&resp) => self.whole_response(resp).await,
                        Ok(resp) => {
                            let content_type = resp
                                .headers()
                                .get(CONTENT_TYPE)
                                .and_then(|v| v.to_str().ok())
                                .unwrap_or("none")
                                .to_owned();
                            self.phase = Phase::Streaming(Box::new(Live {
                                resp,
                                sse: SseParser::default(),
                                att: Attempt::default(),
                                first: true,
                                head: Vec::new(),
                                content_type,
                                received: 0,
                            }))
                        }
                        Err(f) => self.fail(f),
                    }
                }
                Phase::Streaming(mut live) => {
                    let Live {
                        resp,
                        sse,
                        att,
                        first,
                        head,
                        content_type,
                        received,
                    } = &mut *live;
                    let limits = self.limits();
                    let timeout = limits.wait();
                    match tokio::time::timeout(timeout, resp.chunk()).await {
                        // A whole JSON answer under another content type (text/plain,
                        // none): an event stream never starts with a brace.
                        Ok(Ok(Some(bytes)))
                            if std::mem::take(first)
                                && bytes.trim_ascii_start().first() == Some(&b'{') =>
                        {
                            let mut body = bytes.to_vec();
                            match read_rest(resp, &limits, &mut body).await {
                                Ok(()) => {
                                    self.whole_body(String::from_utf8_lossy(&body).into_owned())
                                }
                                Err(f) => self.fail(f),
                            }
                        }
                        Err(_) => self.fail(limits.timed_out("no stream data")),
                        Ok(Err(e)) => self.fail(from_reqwest(e, true)),
                        Ok(Ok(Some(bytes))) if limits.too_big(*received + bytes.len()) => {
                            self.fail(limits.too_big_failure())
                        }
                        Ok(Ok(Some(bytes))) => {
                            *received += bytes.len();
                            if head.len() < NAMED_HEAD_BYTES {
                                let room = NAMED_HEAD_BYTES - head.len();
                                head.extend_from_slice(&bytes[..bytes.len().min(room)]);
                            }
                            let events = sse.feed(&bytes);
                            match self.process(events, att) {
                                Err(f) => self.fail(f),
                                Ok(()) if att.complete => self.finish(std::mem::take(att)),
                                Ok(()) => self.phase = Phase::Streaming(live),
                            }
                        }
                        Ok(Ok(None)) => {
                            let events = sse.finish();
                            match self.process(events, att) {
                                Err(f) => self.fail(f),
                                // Lenient: a Chat Completions stream that sent
                                // a finish_reason but no [DONE] is complete.
                                Ok(())
                                    if att.complete
                                        || (self.inner.config.wire == WireApi::ChatCompletions
                                            && att.finish_reason.is_some()) =>
                                {
                                    self.finish(std::mem::take(att))
                                }
                                // No event at all: the body was no event stream. (Comments
                                // alone, keep-alives, were a stream that dropped.)
                                Ok(()) if att.events == 0 && !head.starts_with(b":") => {
                                    let failure = not_an_event_stream(content_type, head);
                                    self.fail(failure)
                                }
                                Ok(()) => self.fail(AttemptFailure::transient(
                                    ProviderError::StreamDropped(
                                        "the server closed the stream before the response was complete"
                                            .to_owned(),
                                    ),
                                )),
                            }
                        }
                    }
                }
            }
        }
    }

    async fn send(&self) -> Result<reqwest::Response, AttemptFailure> {
        let cfg = &self.inner.config;
        let request = self
            .inner
            .http
            .post(&self.inner.url)
            .headers(self.inner.headers.clone())
            .body(self.body.clone());
        let limits = self.limits();
        let resp = match tokio::time::timeout(limits.wait(), request.send()).await {
            Err(_) => return Err(limits.timed_out("no response headers")),
            Ok(Err(e)) => return Err(from_reqwest(e, false)),
            Ok(Ok(resp)) => resp,
        };
        let status = resp.status();
        if status.is_success() {
            return Ok(resp);
        }
        let retry_after = parse_retry_after(resp.headers());
        let body = error_body(resp, &limits).await;
        // Removed before the body is cut to its head, which could end inside an echoed key.
        let body = scrub_text(&body, &secrets_of(cfg));
        Err(from_http(status.as_u16(), &body, retry_after))
    }

    /// A response labelled `application/json`. Most often a server that ignores
    /// `"stream": true` and answers with the whole completion (some local servers do): a
    /// Chat Completions object reads like one big chunk (`message` where a chunk has
    /// `delta`); the Responses API has no such reading here and is refused with a message
    /// that says why. A body that is an event stream after all (mislabelled) is read as one.
    async fn whole_response(&mut self, mut resp: reqwest::Response) {
        let mut body = Vec::new();
        match read_rest(&mut resp, &self.limits(), &mut body).await {
            Ok(()) => self.whole_body(String::from_utf8_lossy(&body).into_owned()),
            Err(f) => self.fail(f),
        }
    }

    /// Reads a response body that came whole: a completion object, or an event stream
    /// after all.
    fn whole_body(&mut self, body: String) {
        let mut att = Attempt::default();
        if !body.trim_start().starts_with('{') {
            let mut sse = SseParser::default();
            let mut events = sse.feed(body.as_bytes());
            events.extend(sse.finish());
            return match self.process(events, &mut att) {
                Err(f) => self.fail(f),
                Ok(()) if att.complete || att.finish_reason.is_some() => self.finish(att),
                Ok(()) if att.events == 0 => {
                    let head = &body.as_bytes()[..body.len().min(NAMED_HEAD_BYTES)];
                    self.fail(not_an_event_stream("application/json", head))
                }
                Ok(()) => self.fail(AttemptFailure::transient(ProviderError::StreamDropped(
                    "the server closed the stream before the response was complete".to_owned(),
                ))),
            };
        }
        if self.inner.config.wire != WireApi::ChatCompletions {
            return self.fail(AttemptFailure::fatal(ProviderError::Protocol(
                "the server answered with one JSON document, not an event stream; with --responses-api halo needs a streamed response".to_owned(),
            )));
        }
        let event = crate::sse::SseEvent {
            event: None,
            data: body,
        };
        match self.process(vec![event], &mut att) {
            Err(f) => self.fail(f),
            // An empty `choices` list is the empty answer `finish` retries, as in a stream.
            Ok(()) if att.saw_choices_list => self.finish(att),
            Ok(()) => self.fail(AttemptFailure::fatal(ProviderError::Protocol(
                "the server answered with JSON that is not a chat completion (it has no choices)"
                    .to_owned(),
            ))),
        }
    }

    fn process(
        &mut self,
        events: Vec<crate::sse::SseEvent>,
        att: &mut Attempt,
    ) -> Result<(), AttemptFailure> {
        att.events += events.len();
        for ev in &events {
            let res = match self.inner.config.wire {
                WireApi::ChatCompletions => chat::decode(ev, att),
                WireApi::Responses => responses::decode(ev, att),
            };
            for t in att.text_out.drain(..) {
                self.replay.delta(t, self.attempts, &mut self.pending);
            }
            res?;
            if att.complete {
                break;
            }
        }
        Ok(())
    }

    /// A complete response: a success, unless a Chat Completions stream carried no
    /// choice at all (only `[DONE]`, or usage alone), which is an empty answer from a
    /// faulty server rather than the model having nothing to say.
    fn finish(&mut self, att: Attempt) {
        if self.inner.config.wire == WireApi::ChatCompletions && !att.saw_choice {
            return self.fail(AttemptFailure::transient(ProviderError::Protocol(
                "the response held no choices (an empty answer)".to_owned(),
            )));
        }
        self.succeed(att)
    }

    fn succeed(&mut self, mut att: Attempt) {
        self.replay.finish_attempt(self.attempts, &mut self.pending);
        let tool_calls = att.take_tool_calls();
        let finish_reason = att
            .finish_reason
            .take()
            .unwrap_or(if tool_calls.is_empty() {
                FinishReason::Stop
            } else {
                FinishReason::ToolCalls
            });
        for call in tool_calls {
            self.pending.push_back(Ok(StreamEvent::ToolCall(call)));
        }
        if !att.refusal.is_empty() {
            self.pending
                .push_back(Ok(StreamEvent::Refusal(std::mem::take(&mut att.refusal))));
        }
        if let Some(u) = att.usage {
            self.pending.push_back(Ok(StreamEvent::Usage(u)));
        }
        self.pending
            .push_back(Ok(StreamEvent::Finished { finish_reason }));
        self.phase = Phase::Done;
    }

    fn fail(&mut self, f: AttemptFailure) {
        let inner = Arc::clone(&self.inner);
        let policy = &inner.config.retry;
        let error = scrub(f.error, &secrets_of(&inner.config));
        self.phase = Phase::Done;
        // halo asks for usage in the stream on its own account; a server that rejects the
        // parameter is asked again without it, at once.
        // 422 is how servers that validate with pydantic refuse an unknown field.
        if matches!(error.status(), Some(400 | 422)) {
            let change = Change::asked_by(&error.to_string());
            if let Some((change, body)) =
                change.and_then(|c| changed_body(&self.body, c).map(|b| (c, b)))
            {
                self.inner.learnt.learn(&self.model, change);
                self.body = body;
                self.phase = Phase::Start;
                return;
            }
        }
        let asks_too_long = f.retry_after.filter(|d| *d > policy.max_retry_after);
        if let (true, Some(wait)) = (f.retryable, asks_too_long) {
            // Waiting less than asked only spends the attempts on refusals; waiting an
            // hour is no run anyone watches. Said at once, with the server's wait.
            self.pending
                .push_back(Err(error.with_note(&format!(
                    "the provider asks to wait {:.0}s before trying again, longer than halo waits ({:.0}s)",
                    wait.as_secs_f64(),
                    policy.max_retry_after.as_secs_f64()
                ))));
        } else if !f.retryable {
            self.pending.push_back(Err(error));
        } else if self.attempts <= policy.max_retries {
            let delay = match f.retry_after {
                Some(d) => d.min(policy.max_retry_after),
                None => backoff(policy, self.attempts - 1),
            };
            if tokio::time::Instant::now() + delay >= self.deadline {
                self.pending.push_back(Err(ProviderError::Timeout(format!(
                    "no answer within {}s, the longest one request may take with its retries (--request-deadline); the last attempt: {error}",
                    inner.config.deadline.as_secs_f64()
                ))));
                return;
            }
            self.pending.push_back(Ok(StreamEvent::Retrying(RetryInfo {
                attempt: self.attempts,
                status: error.status(),
                delay,
                reason: error.to_string(),
            })));
            self.phase = Phase::Backoff(delay);
        } else {
            self.pending.push_back(Err(ProviderError::RetriesExhausted {
                attempts: self.attempts,
                last_status: error.status(),
                last_error: Box::new(error),
            }));
        }
    }
}

/// Most of an error response's body that is read: its message is near the start, and a
/// server that sends gigabytes with a 500 must not fill memory.
const MAX_ERROR_BODY_BYTES: usize = 256 * 1024;

/// The body of an error response, up to [`MAX_ERROR_BODY_BYTES`], each chunk within the
/// attempt's limits; what could not be read in time is left out.
async fn error_body(mut resp: reqwest::Response, limits: &ReadLimits) -> String {
    let mut body = Vec::new();
    while body.len() < MAX_ERROR_BODY_BYTES {
        match tokio::time::timeout(limits.wait(), resp.chunk()).await {
            Ok(Ok(Some(bytes))) => body.extend_from_slice(&bytes),
            _ => break,
        }
    }
    body.truncate(MAX_ERROR_BODY_BYTES);
    String::from_utf8_lossy(&body).into_owned()
}

/// The bounds on reading one attempt's response: the wait for each chunk, the request's
/// deadline and the body's size.
struct ReadLimits {
    idle: std::time::Duration,
    deadline: tokio::time::Instant,
    deadline_total: std::time::Duration,
    max_bytes: usize,
}

impl ReadLimits {
    /// How long the next wait may last: the idle timeout, or less near the deadline.
    fn wait(&self) -> std::time::Duration {
        self.idle.min(
            self.deadline
                .saturating_duration_since(tokio::time::Instant::now()),
        )
    }

    /// A wait that ran out, said as what did not arrive: an idle timeout is tried again
    /// (a new connection often answers), the request's deadline is not.
    fn timed_out(&self, what: &str) -> AttemptFailure {
        if tokio::time::Instant::now() >= self.deadline {
            return AttemptFailure::fatal(ProviderError::Timeout(format!(
                "the answer was not complete after {}s, the longest one request may take with its retries (--request-deadline)",
                self.deadline_total.as_secs_f64()
            )));
        }
        AttemptFailure::transient(ProviderError::Timeout(format!(
            "{what} for {}s (--request-timeout)",
            self.idle.as_secs_f64()
        )))
    }

    fn too_big(&self, bytes: usize) -> bool {
        bytes > self.max_bytes
    }

    fn too_big_failure(&self) -> AttemptFailure {
        let size = if self.max_bytes >= 1 << 20 {
            format!("{} MiB", self.max_bytes >> 20)
        } else {
            format!("{} bytes", self.max_bytes)
        };
        AttemptFailure::fatal(ProviderError::Protocol(format!(
            "the response passed {size} without ending, more than any model answer; halo stopped reading it (a model stuck repeating itself, or a server that is not a model)"
        )))
    }
}

impl Driver {
    /// The bounds on reading the current attempt.
    fn limits(&self) -> ReadLimits {
        let config = &self.inner.config;
        ReadLimits {
            idle: config.timeout,
            deadline: self.deadline,
            deadline_total: config.deadline,
            max_bytes: config.max_response_bytes,
        }
    }
}

/// Reads the rest of a response body into `body`, within `limits`.
async fn read_rest(
    resp: &mut reqwest::Response,
    limits: &ReadLimits,
    body: &mut Vec<u8>,
) -> Result<(), AttemptFailure> {
    loop {
        match tokio::time::timeout(limits.wait(), resp.chunk()).await {
            Err(_) => return Err(limits.timed_out("no complete response body")),
            Ok(Err(e)) => return Err(from_reqwest(e, true)),
            Ok(Ok(None)) => return Ok(()),
            Ok(Ok(Some(bytes))) if limits.too_big(body.len() + bytes.len()) => {
                return Err(limits.too_big_failure())
            }
            Ok(Ok(Some(bytes))) => body.extend_from_slice(&bytes),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(r: &mut Replay, attempts: &[&[&str]]) -> (Vec<StreamEvent>, String) {
        let mut out = VecDeque::new();
        let mut last = String::new();
        for (i, deltas) in attempts.iter().enumerate() {
            r.begin_attempt();
            for d in *deltas {
                r.delta((*d).to_owned(), i as u32 + 1, &mut out);
            }
            last = deltas.concat();
        }
        r.finish_attempt(attempts.len() as u32, &mut out);
        (out.into_iter().map(Result::unwrap).collect(), last)
    }

    /// Applies the caller contract: Restart clears, deltas append.
    fn view(events: &[StreamEvent]) -> String {
        let mut s = String::new();
        for e in events {
            match e {
                StreamEvent::TextDelta(t) => s.push_str(t),
                StreamEvent::Restart { .. } => s.clear(),
                _ => {}
            }
        }
        s
    }

    #[test]
    fn replay_swallows_repeated_prefix() {
        let (ev, last) = run(
            &mut Replay::default(),
            &[&["Hel", "lo w"], &["H", "ello", " world", "!"]],
        );
        assert_eq!(view(&ev), last);
        assert!(!ev.iter().any(|e| matches!(e, StreamEvent::Restart { .. })));
        assert_eq!(
            ev,
            vec![
                StreamEvent::TextDelta("Hel".into()),
                StreamEvent::TextDelta("lo w".into()),
                StreamEvent::TextDelta("orld".into()),
                StreamEvent::TextDelta("!".into()),
            ]
        );
    }

    #[test]
    fn replay_restarts_on_divergence_or_short_answer() {
        let cases: &[&[&[&str]]] = &[
            &[&["Hello"], &["Help", " me"]],
            &[&["Hello there"], &["Hello"]],
            &[&["abc"], &["ab"], &["abcdef"]],
            &[&["abc"], &[]],
            &[&[], &["x"]],
            &[&["é"], &["éa"]],
        ];
        for case in cases {
            let (ev, last) = run(&mut Replay::default(), case);
            assert_eq!(view(&ev), last, "{case:?}");
        }
    }
}
