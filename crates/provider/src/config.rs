//! Client configuration.

use std::fmt;
use std::time::Duration;

use crate::key::ApiKey;

/// Which OpenAI-compatible wire protocol to speak.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum WireApi {
    /// `POST {base_url}/chat/completions` (the default; spoken by nearly every
    /// OpenAI-compatible provider).
    #[default]
    ChatCompletions,
    /// `POST {base_url}/responses` (OpenAI's Responses API).
    Responses,
}

/// Retry behaviour for transient failures.
///
/// Retried: HTTP 408, 429 and 5xx, timeouts, connection errors, a stream that
/// ends before the provider said it was complete, and in-stream provider errors
/// that are marked as server errors or rate limits. Never retried: other 4xx
/// (bad request, auth, context length exceeded, ...).
///
/// The sleep before retry number `n` (0-based) is full jitter:
/// `random(0, min(max_delay, base_delay * 2^n))`. When a 429 or 503 response
/// carries `Retry-After` (seconds or an HTTP date) or `retry-after-ms`, that
/// value is used instead; a value past `max_retry_after` ends the request at once
/// with an error that names the wait (waiting less would only spend the attempts).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Retries after the first attempt (so at most `max_retries + 1` attempts).
    /// Default 5.
    pub max_retries: u32,
    /// Base of the exponential backoff. Default 500 ms.
    pub base_delay: Duration,
    /// Upper bound of one backoff sleep. Default 30 s.
    pub max_delay: Duration,
    /// Upper bound applied to a server-provided `Retry-After`. Default 120 s.
    pub max_retry_after: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_retries: 5,
            base_delay: Duration::from_millis(500),
            max_delay: Duration::from_secs(30),
            max_retry_after: Duration::from_secs(120),
        }
    }
}

impl RetryPolicy {
    /// A policy that never retries.
    pub fn none() -> Self {
        RetryPolicy {
            max_retries: 0,
            ..RetryPolicy::default()
        }
    }
}

/// Everything needed to talk to one OpenAI-compatible provider.
///
/// `Debug` never prints the API key, and prints custom header values as `***`
/// (they often carry credentials too, e.g. Azure's `api-key`).
#[derive(Clone)]
pub struct ProviderConfig {
    /// Base URL up to and including the version segment, e.g.
    /// `https://api.openai.com/v1`. A trailing `/` is ignored. Plain `http://`
    /// works (useful for local servers).
    pub base_url: String,
    /// Sent as `Authorization: Bearer <key>` and nowhere else. With `None` no
    /// `Authorization` header is sent (unless given in `headers`).
    pub api_key: Option<ApiKey>,
    /// Extra headers sent with every request, as given (see [`parse_header`]).
    /// When `api_key` is set, its `Authorization` header replaces any
    /// `Authorization` given here.
    pub headers: Vec<(String, String)>,
    /// Wire protocol. Default [`WireApi::ChatCompletions`].
    pub wire: WireApi,
    /// Longest time to wait for the response headers or for the next chunk of
    /// a streaming body. A stall longer than this counts as a (retryable)
    /// timeout. It is not a limit on the total length of a streamed answer.
    /// Default 600 s (reasoning models can think for minutes before the first
    /// token).
    pub timeout: Duration,
    /// Longest time one request may take in all, from sending it the first time to the
    /// end of the answer, retries and their waits included, however steadily data
    /// arrives: a server that trickles keep-alives or tokens forever, or that stalls on
    /// every attempt, is stopped here. Passing it is not tried again. Default 30 min.
    pub deadline: Duration,
    /// Most bytes of one response body read before the attempt is given up as no answer
    /// (a model stuck in a loop, or not a model): this bounds memory. Not tried again.
    /// Default 64 MiB, about twice the event stream of a 128,000-token answer.
    pub max_response_bytes: usize,
    /// TCP/TLS connect timeout. Default 15 s.
    pub connect_timeout: Duration,
    /// Retry policy.
    pub retry: RetryPolicy,
}

impl ProviderConfig {
    /// A configuration for `base_url` with default settings and no key.
    pub fn new(base_url: impl Into<String>) -> Self {
        ProviderConfig {
            base_url: base_url.into(),
            api_key: None,
            headers: Vec::new(),
            wire: WireApi::default(),
            timeout: Duration::from_secs(600),
            deadline: Duration::from_secs(30 * 60),
            max_response_bytes: 64 << 20,
            connect_timeout: Duration::from_secs(15),
            retry: RetryPolicy::default(),
        }
    }

    /// Sets the API key (builder style).
    pub fn with_api_key(mut self, key: impl Into<ApiKey>) -> Self {
        self.api_key = Some(key.into());
        self
    }

    /// Adds a header (builder style).
    pub fn with_header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// Sets the wire protocol (builder style).
    pub fn with_wire(mut self, wire: WireApi) -> Self {
        self.wire = wire;
        self
    }

    /// Sets the retry policy (builder style).
    pub fn with_retry(mut self, retry: RetryPolicy) -> Self {
        self.retry = retry;
        self
    }

    /// The URL of the endpoint for the configured wire protocol.
    pub fn endpoint_url(&self) -> String {
        let base = self.base_url.trim_end_matches('/');
        match self.wire {
            WireApi::ChatCompletions => format!("{base}/chat/completions"),
            WireApi::Responses => format!("{base}/responses"),
        }
    }
}

impl Default for ProviderConfig {
    /// `https://api.openai.com/v1`, no key.
    fn default() -> Self {
        ProviderConfig::new("https://api.openai.com/v1")
    }
}

impl fmt::Debug for ProviderConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let headers: Vec<String> = self
            .headers
            .iter()
            .map(|(name, _)| format!("{name}: ***"))
            .collect();
        f.debug_struct("ProviderConfig")
            .field("base_url", &self.base_url)
            .field("api_key", &self.api_key.as_ref().map(|_| "***"))
            .field("headers", &headers)
            .field("wire", &self.wire)
            .field("timeout", &self.timeout)
            .field("deadline", &self.deadline)
            .field("max_response_bytes", &self.max_response_bytes)
            .field("connect_timeout", &self.connect_timeout)
            .field("retry", &self.retry)
            .finish()
    }
}

/// Why a `-H` header string was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HeaderParseError {
    /// There is no `:` separating name and value.
    #[error("header must look like 'NAME: VALUE' (no ':' found)")]
    MissingColon,
    /// Nothing comes before the `:`.
    #[error("header has no name before the ':' (it must look like 'NAME: VALUE')")]
    EmptyName,
    /// The name contains characters not allowed in a header name.
    #[error("invalid header name {0:?}")]
    InvalidName(String),
    /// The value contains a control character (e.g. a newline).
    #[error("invalid value for header {0:?} (control characters are not allowed)")]
    InvalidValue(String),
}

/// Parses a curl-style header, `"NAME: VALUE"`, as given to the CLI's `-H`.
///
/// The name is everything before the first `:` (surrounding whitespace
/// trimmed) and must be a valid HTTP token; the value is the rest with
/// surrounding whitespace trimmed and may be empty. The value is never included
/// in the error, since headers often carry credentials.
pub fn parse_header(s: &str) -> Result<(String, String), HeaderParseError> {
    let (name, value) = s.split_once(':').ok_or(HeaderParseError::MissingColon)?;
    let name = name.trim();
    let value = value.trim();
    let token_char = |c: char| c.is_ascii_alphanumeric() || "!#$%&'*+-.^_`|~".contains(c);
    if name.is_empty() {
        return Err(HeaderParseError::EmptyName);
    }
    if !name.chars().all(token_char) {
        return Err(HeaderParseError::InvalidName(name.to_owned()));
    }
    if value.chars().any(|c| c.is_control() && c != '\t') {
        return Err(HeaderParseError::InvalidValue(name.to_owned()));
    }
    Ok((name.to_owned(), value.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_curl_headers() {
        assert_eq!(
            parse_header("X-Org:  acme ").unwrap(),
            ("X-Org".to_owned(), "acme".to_owned())
        );
        assert_eq!(
            parse_header("X-Url: http://a:b").unwrap(),
            ("X-Url".to_owned(), "http://a:b".to_owned())
        );
        assert_eq!(
            parse_header("X-Empty:").unwrap(),
            ("X-Empty".to_owned(), String::new())
        );
        assert_eq!(parse_header("nocolon"), Err(HeaderParseError::MissingColon));
        assert!(matches!(
            parse_header("bad name: x"),
            Err(HeaderParseError::InvalidName(_))
        ));
        assert_eq!(parse_header(": x"), Err(HeaderParseError::EmptyName));
        assert!(matches!(
            parse_header("X: a\nb"),
            Err(HeaderParseError::InvalidValue(_))
        ));
    }

    #[test]
    fn debug_hides_secrets() {
        let cfg = ProviderConfig::new("http://x")
            .with_api_key("sk-topsecret")
            .with_header("api-key", "also-secret");
        let dbg = format!("{cfg:?}");
        assert!(!dbg.contains("topsecret"));
        assert!(!dbg.contains("also-secret"));
        assert!(dbg.contains("api-key: ***"));
    }

    #[test]
    fn endpoint_urls() {
        let cfg = ProviderConfig::new("http://h/v1/");
        assert_eq!(cfg.endpoint_url(), "http://h/v1/chat/completions");
        assert_eq!(
            cfg.with_wire(WireApi::Responses).endpoint_url(),
            "http://h/v1/responses"
        );
    }
}
