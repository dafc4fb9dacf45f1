//! Error classification, backoff and `Retry-After` parsing.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rand::Rng;
use serde_json::Value;

use crate::config::RetryPolicy;
use crate::error::ProviderError;

/// The outcome of a failed attempt, before the retry decision.
#[derive(Debug)]
pub(crate) struct AttemptFailure {
    pub(crate) error: ProviderError,
    pub(crate) retryable: bool,
    pub(crate) retry_after: Option<Duration>,
}

impl AttemptFailure {
    pub(crate) fn transient(error: ProviderError) -> Self {
        AttemptFailure {
            error,
            retryable: true,
            retry_after: None,
        }
    }

    pub(crate) fn fatal(error: ProviderError) -> Self {
        AttemptFailure {
            error,
            retryable: false,
            retry_after: None,
        }
    }
}

/// Statuses worth retrying: request timeout, rate limit, server errors.
pub(crate) fn retryable_status(status: u16) -> bool {
    status == 408 || status == 429 || (500..=599).contains(&status)
}

/// Full jitter: `random(0, min(max_delay, base_delay * 2^retry))`.
pub(crate) fn backoff(policy: &RetryPolicy, retry: u32) -> Duration {
    let factor = 2u32.saturating_pow(retry.min(30));
    let cap = policy
        .base_delay
        .checked_mul(factor)
        .unwrap_or(policy.max_delay)
        .min(policy.max_delay);
    let nanos = u64::try_from(cap.as_nanos()).unwrap_or(u64::MAX);
    if nanos == 0 {
        return Duration::ZERO;
    }
    Duration::from_nanos(rand::rng().random_range(0..=nanos))
}

/// A server's wait in seconds, however large (the caller caps it): `from_secs_f64` panics
/// past `Duration::MAX`, and `Retry-After: 1e20` is the server's to send.
fn seconds_saturating(secs: f64) -> Duration {
    Duration::try_from_secs_f64(secs).unwrap_or(Duration::MAX)
}

/// Parses `retry-after-ms`, then `Retry-After` (delta seconds or an HTTP date).
pub(crate) fn parse_retry_after(headers: &reqwest::header::HeaderMap) -> Option<Duration> {
    if let Some(ms) = headers
        .get("retry-after-ms")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<f64>().ok())
    {
        if ms >= 0.0 {
            return Some(seconds_saturating(ms / 1000.0));
        }
    }
    let value = headers
        .get(reqwest::header::RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim();
    if let Ok(secs) = value.parse::<f64>() {
        return (secs >= 0.0).then(|| seconds_saturating(secs));
    }
    let when = parse_http_date(value)?;
    let now = SystemTime::now().duration_since(UNIX_EPOCH).ok()?.as_secs();
    Some(Duration::from_secs(when.saturating_sub(now)))
}

/// Parses an IMF-fixdate (`Sun, 06 Nov 1994 08:49:37 GMT`) to Unix seconds.
fn parse_http_date(s: &str) -> Option<u64> {
    let rest = s.split_once(", ")?.1;
    let parts: Vec<&str> = rest.split_whitespace().collect();
    if parts.len() != 5 || parts[4] != "GMT" {
        return None;
    }
    let day: u64 = parts[0].parse().ok()?;
    let month = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ]
    .iter()
    .position(|m| *m == parts[1])? as u64
        + 1;
    let year: i64 = parts[2].parse().ok()?;
    let hms: Vec<u64> = parts[3]
        .split(':')
        .map(|p| p.parse().ok())
        .collect::<Option<_>>()?;
    if hms.len() != 3 || !(1..=31).contains(&day) {
        return None;
    }
    // Days from civil (proleptic Gregorian), Howard Hinnant's algorithm.
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = month as i64;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + day as i64 - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let secs = days * 86_400 + (hms[0] * 3600 + hms[1] * 60 + hms[2]) as i64;
    u64::try_from(secs).ok()
}

/// Pulls a human-readable message and an error code out of an error body.
fn error_parts(body: &str) -> (String, Option<String>) {
    if let Ok(v) = serde_json::from_str::<Value>(body) {
        let err = v.get("error").unwrap_or(&v);
        let err = if err.is_object() { err } else { &v };
        let message = err
            .get("message")
            .and_then(Value::as_str)
            .map(str::to_owned)
            .or_else(|| v.get("error").and_then(Value::as_str).map(str::to_owned))
            .or_else(|| v.get("detail").and_then(Value::as_str).map(str::to_owned));
        let code = err
            .get("code")
            .and_then(|c| {
                c.as_str()
                    .map(str::to_owned)
                    .or_else(|| c.as_i64().map(|n| n.to_string()))
            })
            .or_else(|| err.get("type").and_then(Value::as_str).map(str::to_owned));
        if let Some(message) = message {
            return (message, code);
        }
    }
    let trimmed = body.trim();
    if let Some(title) = html_title(trimmed) {
        // A gateway's or proxy's error page: its title says what happened; its markup
        // would fill every retry line.
        return (format!("an HTML page titled \"{title}\" (a proxy or gateway answered, not the model's API)"), None);
    }
    let mut message: String = trimmed.chars().take(500).collect();
    if message.len() < trimmed.len() {
        message.push_str("...");
    }
    if message.is_empty() {
        message = "(empty body)".to_owned();
    }
    (message, None)
}

/// The title of an HTML page, white space folded, when `body` is one and has a title.
fn html_title(body: &str) -> Option<String> {
    let head: String = body
        .chars()
        .take(4096)
        .collect::<String>()
        .to_ascii_lowercase();
    if !(head.starts_with("<!doctype html") || head.starts_with("<html") || head.contains("<head"))
    {
        return None;
    }
    let open = head.find("<title")?;
    let start = open + head[open..].find('>')? + 1;
    let end = start + head[start..].find("</title")?;
    // The same offsets in the original text: lower-casing ASCII keeps every byte's place.
    let title = body
        .get(start..end)?
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ");
    (!title.is_empty()).then(|| title.chars().take(200).collect())
}

fn is_context_length(code: Option<&str>, message: &str) -> bool {
    let m = message.to_ascii_lowercase();
    code == Some("context_length_exceeded")
        || m.contains("context_length_exceeded")
        || m.contains("maximum context length")
        || m.contains("context window")
        || m.contains("prompt is too long")
}

/// Classifies a non-success HTTP response.
pub(crate) fn from_http(status: u16, body: &str, retry_after: Option<Duration>) -> AttemptFailure {
    let (message, code) = error_parts(body);
    if (400..500).contains(&status) && is_context_length(code.as_deref(), &message) {
        return AttemptFailure::fatal(ProviderError::ContextLengthExceeded { status, message });
    }
    // An exhausted quota is a 429 that waiting does not cure.
    let quota = code.as_deref() == Some("insufficient_quota");
    // The code says what the message may not (`model_not_found` under a 400 reading "The
    // model does not exist"), and what the CLI's hints look for. Numbers and error classes
    // (`invalid_request_error`, the `type` read when there is no code) say nothing more.
    let telling = |c: &str| {
        !c.is_empty() && c.parse::<i64>().is_err() && !c.ends_with("_error") && !message.contains(c)
    };
    let message = match code.as_deref() {
        Some(c) if telling(c) => format!("{message} ({c})"),
        _ => message,
    };
    AttemptFailure {
        error: ProviderError::Http { status, message },
        retryable: retryable_status(status) && !quota,
        retry_after: if status == 429 || status == 503 {
            retry_after
        } else {
            None
        },
    }
}

/// Classifies an error object reported inside a stream.
pub(crate) fn from_api_error(err: &Value) -> AttemptFailure {
    let text = err.to_string();
    let (message, code) = error_parts(&text);
    if is_context_length(code.as_deref(), &message) {
        return AttemptFailure::fatal(ProviderError::ContextLengthExceeded {
            status: 200,
            message,
        });
    }
    let retryable = matches!(
        code.as_deref(),
        Some(
            "server_error"
                | "internal_error"
                | "rate_limit_exceeded"
                | "rate_limit_error"
                | "overloaded_error"
                | "overloaded"
                | "rate_limited"
                | "service_unavailable"
                | "unavailable"
                | "timeout"
                | "408"
                | "429"
                | "500"
                | "502"
                | "503"
                | "504"
                | "529"
        )
    );
    AttemptFailure {
        error: ProviderError::Api { code, message },
        retryable,
        retry_after: None,
    }
}

/// Classifies a transport error from reqwest. The URL is stripped (it is
/// known to the caller and could carry credentials in its userinfo).
pub(crate) fn from_reqwest(err: reqwest::Error, during_body: bool) -> AttemptFailure {
    let is_timeout = err.is_timeout();
    let is_connect = err.is_connect();
    let text = error_chain(&err.without_url());
    let error = if is_timeout {
        ProviderError::Timeout(text)
    } else if during_body {
        ProviderError::StreamDropped(text)
    } else if is_connect {
        ProviderError::Connect(text)
    } else {
        // Request-level failures (connection reset, protocol errors...) are
        // transient as far as we can tell.
        ProviderError::Connect(text)
    };
    AttemptFailure::transient(error)
}

fn error_chain(err: &dyn std::error::Error) -> String {
    let mut s = err.to_string();
    let mut source = err.source();
    while let Some(e) = source {
        let part = e.to_string();
        if !s.contains(&part) {
            s.push_str(": ");
            s.push_str(&part);
        }
        source = e.source();
    }
    s
}

/// Shortest head of a secret that is removed on its own: a message cut short (an error
/// body quoted by its first 500 characters) can end inside an echoed key, and its first
/// characters are as secret as the rest. Shorter heads (`sk-`) say nothing.
const MIN_SECRET_HEAD: usize = 8;

/// Replaces every occurrence of each secret in `s` with `***`, and every run of eight or
/// more characters that a secret starts with (what is left of a key cut mid-way).
fn scrub_str(s: &mut String, secrets: &[&str]) {
    for secret in secrets {
        if secret.len() >= 4 && s.contains(secret) {
            *s = s.replace(secret, "***");
        }
        if !looks_like_a_credential(secret) {
            continue;
        }
        if let Some(cut) = scrub_secret_heads(s, secret) {
            *s = cut;
        }
    }
}

/// Whether the heads of `secret` are removed too: a key or token is one word of a dozen
/// characters or more. Other header values (`HTTP-Referer: https://myapp.dev`,
/// `anthropic-version: 2023-06-01`) are removed whole only, or every `https://` and date
/// in an error would read `***`.
fn looks_like_a_credential(secret: &str) -> bool {
    secret.len() >= 12 && !secret.contains(char::is_whitespace) && !secret.contains("://")
}

/// `s` with each run that matches the first [`MIN_SECRET_HEAD`] or more characters of
/// `secret` replaced by `***`, or `None` when there is none.
fn scrub_secret_heads(s: &str, secret: &str) -> Option<String> {
    let lead = secret.get(..MIN_SECRET_HEAD)?;
    if !s.contains(lead) {
        return None;
    }
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(at) = rest.find(lead) {
        out.push_str(&rest[..at]);
        let run = rest[at..]
            .bytes()
            .zip(secret.bytes())
            .take_while(|(a, b)| a == b)
            .count();
        // The run ends where `secret` and the text part; both are UTF-8, so a common
        // prefix of whole bytes can still end inside a character: back off to a boundary.
        let mut end = at + run;
        while !rest.is_char_boundary(end) {
            end -= 1;
        }
        out.push_str("***");
        rest = &rest[end..];
    }
    out.push_str(rest);
    Some(out)
}

/// `text` with the credentials of a configuration removed ([`scrub`] for text that is not
/// yet an error): for bodies quoted before they are cut.
pub(crate) fn scrub_text(text: &str, secrets: &[&str]) -> String {
    let mut text = text.to_owned();
    scrub_str(&mut text, secrets);
    text
}

/// Removes the credentials from every message inside `err` (providers sometimes echo a
/// key back in an error body): the API key, and the values of custom headers, which carry
/// keys too (`Authorization: Bearer …`, Azure's `api-key: …`).
pub(crate) fn scrub(mut err: ProviderError, secrets: &[&str]) -> ProviderError {
    if secrets.is_empty() {
        return err;
    }
    match &mut err {
        ProviderError::ContextLengthExceeded { message, .. }
        | ProviderError::Http { message, .. }
        | ProviderError::Api { message, .. } => scrub_str(message, secrets),
        ProviderError::Timeout(m)
        | ProviderError::Connect(m)
        | ProviderError::StreamDropped(m)
        | ProviderError::Protocol(m)
        | ProviderError::InvalidConfig(m) => scrub_str(m, secrets),
        ProviderError::RetriesExhausted { last_error, .. } => {
            let inner =
                std::mem::replace(last_error.as_mut(), ProviderError::Protocol(String::new()));
            **last_error = scrub(inner, secrets);
        }
    }
    err
}

/// The secrets [`scrub`] removes for a configuration: the API key, each custom header's
/// value, and the credential after a scheme word (`Bearer sk-…` gives `sk-…` too), longest
/// first so that a value is replaced before a part of it.
pub(crate) fn secrets_of(config: &crate::ProviderConfig) -> Vec<&str> {
    let mut out: Vec<&str> = config.api_key.iter().map(|k| k.expose()).collect();
    for (_, value) in &config.headers {
        let value = value.trim();
        out.push(value);
        if let Some((_, credential)) = value.split_once(' ') {
            out.push(credential.trim());
        }
    }
    out.sort_by_key(|s| std::cmp::Reverse(s.len()));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::key::ApiKey;

    #[test]
    fn a_gateways_html_page_is_said_by_its_title() {
        let page = "<!DOCTYPE html>\n<html><head><title>502 Bad\n  Gateway</title></head><body>"
            .to_owned()
            + &"x".repeat(5_000)
            + "</body></html>";
        let failure = from_http(502, &page, None);
        let text = failure.error.to_string();
        assert!(text.contains("\"502 Bad Gateway\""), "{text}");
        assert!(text.contains("proxy or gateway"), "{text}");
        assert!(!text.contains("xxx"), "{text}");
        assert!(failure.retryable);
        // Text that is no page keeps its head.
        let (plain, _) = error_parts("upstream connect error <title> not html");
        assert!(plain.starts_with("upstream connect error"), "{plain}");
    }

    #[test]
    fn http_date() {
        assert_eq!(
            parse_http_date("Sun, 06 Nov 1994 08:49:37 GMT"),
            Some(784111777)
        );
        assert_eq!(parse_http_date("Thu, 01 Jan 1970 00:00:00 GMT"), Some(0));
        assert_eq!(parse_http_date("garbage"), None);
    }

    #[test]
    fn backoff_is_bounded() {
        let p = RetryPolicy {
            max_retries: 5,
            base_delay: Duration::from_millis(100),
            max_delay: Duration::from_millis(250),
            max_retry_after: Duration::from_secs(1),
        };
        for retry in 0..40 {
            let d = backoff(&p, retry);
            assert!(d <= Duration::from_millis(250));
            if retry == 0 {
                assert!(d <= Duration::from_millis(100));
            }
        }
    }

    #[test]
    fn classifies_bodies() {
        let f = from_http(
            400,
            r#"{"error":{"message":"This model's maximum context length is 8192 tokens","type":"invalid_request_error","code":"context_length_exceeded"}}"#,
            None,
        );
        assert!(!f.retryable);
        assert!(f.error.is_context_length_exceeded());
        let f = from_http(500, "oops", Some(Duration::from_secs(3)));
        assert!(f.retryable);
        assert_eq!(f.retry_after, None);
        assert_eq!(f.error.to_string(), "HTTP 500: oops");
        let f = from_http(401, r#"{"error":{"message":"bad key sk-abcdef"}}"#, None);
        assert!(!f.retryable);
        let key = ApiKey::new("sk-abcdef");
        let e = scrub(f.error, &[key.expose()]);
        assert_eq!(e.to_string(), "HTTP 401: bad key ***");
        // The provider's code is kept beside its message, once.
        let f = from_http(
            400,
            r#"{"error":{"message":"The model `gpt-9` does not exist","code":"model_not_found"}}"#,
            None,
        );
        assert_eq!(
            f.error.to_string(),
            "HTTP 400: The model `gpt-9` does not exist (model_not_found)"
        );
        let f = from_http(
            404,
            r#"{"error":{"message":"model_not_found: gpt-9","code":"model_not_found"}}"#,
            None,
        );
        assert_eq!(f.error.to_string(), "HTTP 404: model_not_found: gpt-9");
        let f = from_http(503, r#"{"error":{"message":"busy","code":503}}"#, None);
        assert_eq!(f.error.to_string(), "HTTP 503: busy");
        let f = from_http(400, r#"{"error":{"message":"bad","code":1042}}"#, None);
        assert_eq!(f.error.to_string(), "HTTP 400: bad");
        let f = from_http(
            400,
            r#"{"error":{"message":"bad","type":"invalid_request_error"}}"#,
            None,
        );
        assert_eq!(f.error.to_string(), "HTTP 400: bad");
    }

    /// A key's head is removed where an error was cut inside it; a header value that is
    /// no credential (a URL, a date) is removed whole only.
    #[test]
    fn heads_are_removed_for_credentials_only() {
        let key = "sk-live-0123456789abcdef";
        let secrets = [key, "https://myapp.dev", "2023-06-01"];
        assert_eq!(
            scrub_text("bad key sk-live-0123...", &secrets),
            "bad key ***..."
        );
        assert_eq!(
            scrub_text("see https://openrouter.ai/docs on 2023-06-02", &secrets),
            "see https://openrouter.ai/docs on 2023-06-02"
        );
        assert_eq!(scrub_text("from https://myapp.dev", &secrets), "from ***");
    }

    #[test]
    fn header_credentials_are_scrubbed_like_the_key() {
        let mut config = crate::ProviderConfig::new("http://127.0.0.1:1/v1");
        config
            .headers
            .push(("Authorization".into(), "Bearer sk-HDRSECRET-1".into()));
        config
            .headers
            .push(("api-key".into(), "azure-secret-2".into()));
        let secrets = secrets_of(&config);
        let f = from_http(
            401,
            r#"{"error":{"message":"Incorrect API key provided: sk-HDRSECRET-1 (azure-secret-2)"}}"#,
            None,
        );
        let e = scrub(f.error, &secrets).to_string();
        assert!(
            !e.contains("HDRSECRET") && !e.contains("azure-secret"),
            "{e}"
        );
        assert!(e.contains("***"), "{e}");
    }

    use reqwest::header::{HeaderMap, HeaderValue};

    fn after(name: &'static str, value: &'static str) -> Option<Duration> {
        let mut headers = HeaderMap::new();
        headers.insert(name, HeaderValue::from_static(value));
        parse_retry_after(&headers)
    }

    #[test]
    fn retry_after_values_a_server_may_send() {
        assert_eq!(after("retry-after", "2"), Some(Duration::from_secs(2)));
        assert_eq!(
            after("retry-after-ms", "1500"),
            Some(Duration::from_millis(1500))
        );
        // Absurd waits saturate (the retry policy caps them) instead of panicking.
        assert_eq!(after("retry-after", "1e20"), Some(Duration::MAX));
        assert_eq!(after("retry-after-ms", "inf"), Some(Duration::MAX));
        assert_eq!(after("retry-after", "-3"), None);
        assert_eq!(after("retry-after", "NaN"), None);
    }
}
