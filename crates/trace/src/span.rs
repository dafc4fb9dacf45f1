//! One span as read from a line, before semantic normalization.

use std::borrow::Cow;

use serde::Deserialize;
use serde_json::value::RawValue;

use crate::attr::Attributes;
use crate::kind::StatusCode;
use crate::time::parse_rfc3339_nanos;
use crate::ParseError;

/// A span as the input wrote it, borrowing from the line where it can.
///
/// Both input formats produce this one type: [`parse_canonical`] for the reference's flat
/// format and [`crate::otlp::parse_otlp_line`] for OTLP/JSON.
#[derive(Debug, Clone, PartialEq)]
pub struct RawSpan<'a> {
    /// The trace this span belongs to.
    pub trace_id: Cow<'a, str>,
    /// This span's id, unique within its trace (duplicates are counted, not rejected).
    pub span_id: Cow<'a, str>,
    /// The parent's span id, empty for a root.
    pub parent_span_id: Cow<'a, str>,
    /// W3C trace state, usually empty.
    pub trace_state: Cow<'a, str>,
    /// The span name.
    pub name: Cow<'a, str>,
    /// The OpenTelemetry span kind name (`SPAN_KIND_INTERNAL`, ...).
    pub otel_kind: Cow<'a, str>,
    /// Start, in Unix nanoseconds.
    pub start_ns: i64,
    /// End, in Unix nanoseconds.
    pub end_ns: i64,
    /// The OpenTelemetry status code.
    pub status_code: StatusCode,
    /// The status message, often empty.
    pub status_message: Cow<'a, str>,
    /// Resource attributes (`service.name`, ...).
    pub resource: Attributes<'a>,
    /// Instrumentation scope name.
    pub scope_name: Cow<'a, str>,
    /// Instrumentation scope version.
    pub scope_version: Cow<'a, str>,
    /// Span attributes.
    pub attributes: Attributes<'a>,
}

impl RawSpan<'_> {
    /// The duration in milliseconds (never negative).
    pub fn duration_ms(&self) -> f64 {
        (self.end_ns.saturating_sub(self.start_ns)).max(0) as f64 / 1e6
    }

    /// `service.name` from the resource, if any.
    pub fn service_name(&self) -> Option<Cow<'_, str>> {
        self.resource.get("service.name").and_then(|v| v.as_text())
    }

    /// Detaches the span from its input line.
    pub fn into_owned(self) -> RawSpan<'static> {
        RawSpan {
            trace_id: Cow::Owned(self.trace_id.into_owned()),
            span_id: Cow::Owned(self.span_id.into_owned()),
            parent_span_id: Cow::Owned(self.parent_span_id.into_owned()),
            trace_state: Cow::Owned(self.trace_state.into_owned()),
            name: Cow::Owned(self.name.into_owned()),
            otel_kind: Cow::Owned(self.otel_kind.into_owned()),
            start_ns: self.start_ns,
            end_ns: self.end_ns,
            status_code: self.status_code,
            status_message: Cow::Owned(self.status_message.into_owned()),
            resource: self.resource.into_owned(),
            scope_name: Cow::Owned(self.scope_name.into_owned()),
            scope_version: Cow::Owned(self.scope_version.into_owned()),
            attributes: self.attributes.into_owned(),
        }
    }
}

#[derive(Deserialize)]
struct CanonicalLine<'a> {
    #[serde(borrow)]
    trace_id: Cow<'a, str>,
    #[serde(borrow)]
    span_id: Cow<'a, str>,
    #[serde(borrow, default)]
    parent_span_id: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    trace_state: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    name: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    kind: Option<Cow<'a, str>>,
    #[serde(borrow)]
    start_time: Cow<'a, str>,
    #[serde(borrow)]
    end_time: Cow<'a, str>,
    #[serde(borrow, default)]
    status: Option<StatusIn<'a>>,
    #[serde(borrow, default)]
    resource: Option<ResourceIn<'a>>,
    #[serde(borrow, default)]
    scope: Option<ScopeIn<'a>>,
    #[serde(borrow, default)]
    attributes: Option<Attributes<'a>>,
}

/// A span status as both formats write it (`code` as text or number).
#[derive(Deserialize)]
pub(crate) struct StatusIn<'a> {
    #[serde(borrow, default)]
    pub(crate) code: Option<&'a RawValue>,
    #[serde(borrow, default)]
    pub(crate) message: Option<Cow<'a, str>>,
}

#[derive(Deserialize)]
struct ResourceIn<'a> {
    #[serde(borrow, default)]
    attributes: Option<Attributes<'a>>,
}

/// An instrumentation scope as both formats write it.
#[derive(Deserialize)]
pub(crate) struct ScopeIn<'a> {
    #[serde(borrow, default)]
    pub(crate) name: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    pub(crate) version: Option<Cow<'a, str>>,
}

/// Reads a status code from its JSON text (a string or a number), absent meaning unset.
pub(crate) fn status_code_of(text: Option<&str>) -> Result<StatusCode, ParseError> {
    let Some(text) = text else {
        return Ok(StatusCode::Unset);
    };
    // A string without escapes is its own text; only escaped ones need decoding.
    let plain = text
        .strip_prefix('"')
        .and_then(|t| t.strip_suffix('"'))
        .filter(|t| !t.contains(['\\', '"']));
    let candidate: Cow<'_, str> = match plain {
        Some(inner) => Cow::Borrowed(inner),
        None => match serde_json::from_str::<String>(text) {
            Ok(s) => Cow::Owned(s),
            Err(_) if text == "null" => return Ok(StatusCode::Unset),
            Err(_) => Cow::Borrowed(text),
        },
    };
    StatusCode::parse(&candidate).ok_or_else(|| {
        ParseError::new(format!(
            "status.code {text} is not an OpenTelemetry status code"
        ))
    })
}

pub(crate) fn nanos_of(field: &str, text: &str) -> Result<i64, ParseError> {
    parse_rfc3339_nanos(text).ok_or_else(|| {
        // A valid time outside what nanoseconds since 1970 can hold in 64 bits (a
        // `9999-12-31` "never" sentinel, say) is not a malformed one.
        if chrono::DateTime::parse_from_rfc3339(text).is_ok() {
            return ParseError::new(format!(
                "{field} {text:?} is outside the times spans can hold (1677-09-21 to 2262-04-11)"
            ));
        }
        ParseError::new(format!(
            "{field} {text:?} is not an ISO-8601 timestamp (e.g. 2026-04-23T05:32:00Z)"
        ))
    })
}

/// Parses one line of the canonical flat format (one span per line).
///
/// Required: non-empty `trace_id` and `span_id` strings and RFC 3339 `start_time` and
/// `end_time`. Everything else is optional; unknown fields are ignored.
pub fn parse_canonical(line: &str) -> Result<RawSpan<'_>, ParseError> {
    parse_canonical_checked(line, false)
}

/// [`parse_canonical`] for a line the caller has found free of control bytes.
pub(crate) fn parse_canonical_checked(
    line: &str,
    control_free: bool,
) -> Result<RawSpan<'_>, ParseError> {
    if let Some(span) = crate::canonical_fast::parse(line, control_free) {
        return Ok(span);
    }
    parse_canonical_serde(line)
}

/// The reference reader of the canonical format: slower than the scanner of
/// [`crate::canonical_fast`], but it explains every rejection.
pub(crate) fn parse_canonical_serde(line: &str) -> Result<RawSpan<'_>, ParseError> {
    // serde's derived reader would also take the fields as an array, in order; a span is
    // an object, and saying what the line holds instead beats "expected a string".
    let found = match line.trim_start().as_bytes().first() {
        Some(b'[') => Some("an array"),
        Some(b'"') => Some("a string"),
        Some(b'-' | b'0'..=b'9') => Some("a number"),
        Some(b't' | b'f') => Some("a boolean"),
        Some(b'n') => Some("null"),
        _ => None,
    };
    if let Some(found) = found {
        return Err(match serde_json::from_str::<serde::de::IgnoredAny>(line) {
            Ok(_) => ParseError::new(format!(
                "invalid span: the line holds {found}, not a span object ({{\"trace_id\": ...}})"
            )),
            Err(e) => ParseError::from_json(e),
        });
    }
    let l: CanonicalLine = serde_json::from_str(line).map_err(ParseError::from_json)?;
    if l.trace_id.is_empty() {
        return Err(ParseError::new("trace_id is empty"));
    }
    if l.span_id.is_empty() {
        return Err(ParseError::new("span_id is empty"));
    }
    let start_ns = nanos_of("start_time", &l.start_time)?;
    let end_ns = nanos_of("end_time", &l.end_time)?;
    let (status_code, status_message) = match l.status {
        Some(s) => (
            status_code_of(s.code.map(RawValue::get))?,
            s.message.unwrap_or_default(),
        ),
        None => (StatusCode::Unset, Cow::Borrowed("")),
    };
    let (scope_name, scope_version) = match l.scope {
        Some(s) => (s.name.unwrap_or_default(), s.version.unwrap_or_default()),
        None => Default::default(),
    };
    Ok(RawSpan {
        trace_id: lower_hex_id(l.trace_id),
        span_id: lower_hex_id(l.span_id),
        parent_span_id: parent_or_none(l.parent_span_id),
        trace_state: l.trace_state.unwrap_or_default(),
        name: l.name.unwrap_or_default(),
        otel_kind: l.kind.unwrap_or(Cow::Borrowed("SPAN_KIND_INTERNAL")),
        start_ns,
        end_ns,
        status_code,
        status_message,
        resource: l.resource.and_then(|r| r.attributes).unwrap_or_default(),
        scope_name,
        scope_version,
        attributes: l.attributes.unwrap_or_default(),
    })
}

/// A parent id as read, or "" for none: an all-zero id (`0000000000000000`, as OTLP
/// writes "no parent") is none as well.
pub(crate) fn parent_or_none(parent: Option<Cow<'_, str>>) -> Cow<'_, str> {
    match parent {
        Some(p) if !p.bytes().all(|b| b == b'0') => lower_hex_id(p),
        _ => Cow::Borrowed(""),
    }
}

/// Whether `bytes` may hold an ASCII upper-case letter: true for every one, and for a
/// few other bytes (`@`, `[`..`_`, some above 127), which the caller's exact check then
/// turns away. Every span's ids pass here while indexing and upper case is rare, so
/// eight bytes are looked at at once: an upper-case letter has bit 6 set and bit 5
/// clear, a lower-case hex digit never does.
#[inline]
fn has_upper_case(bytes: &[u8]) -> bool {
    const BIT6: u64 = 0x4040_4040_4040_4040;
    let chunks = bytes.chunks_exact(8);
    let tail = chunks.remainder();
    let mut seen = 0u64;
    for chunk in chunks {
        let x = u64::from_le_bytes(chunk.try_into().unwrap_or_default());
        // Bit 5 of each byte moves to bit 6 of the same byte.
        seen |= x & !(x << 1) & BIT6;
    }
    seen != 0 || tail.iter().any(|b| b & 0x60 == 0x40)
}

/// An id written in hex with upper-case digits, in lower case: hex ids are
/// case-insensitive, and one trace exported in both spellings (or in two files, one of
/// each) must be one trace. Any other id is kept as written.
#[inline]
pub fn lower_hex_id(id: Cow<'_, str>) -> Cow<'_, str> {
    if has_upper_case(id.as_bytes()) {
        lowered_if_hex(id)
    } else {
        id
    }
}

#[cold]
fn lowered_if_hex(id: Cow<'_, str>) -> Cow<'_, str> {
    if id.bytes().all(|b| b.is_ascii_hexdigit()) {
        Cow::Owned(id.to_ascii_lowercase())
    } else {
        id
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upper_case_hex_ids_are_lowered_and_others_kept() {
        let lower = |s: &'static str| lower_hex_id(Cow::Borrowed(s)).into_owned();
        assert_eq!(
            lower("5B8EFFF798038103D269B633813FC60C"),
            "5b8efff798038103d269b633813fc60c"
        );
        assert_eq!(lower("00F067AA0BA902B7"), "00f067aa0ba902b7");
        assert_eq!(lower("abcD"), "abcd");
        for kept in [
            "5b8efff798038103d269b633813fc60c",
            "t_1",
            "Trace-1",
            "ÉCLAIR",
            "@abc",
            "",
        ] {
            assert_eq!(lower(kept), kept);
        }
        for (text, upper) in [
            ("0123456789abcdef", false),
            ("0123456789abcdeF", true),
            ("zzzzzzzzZ", true),
            ("abc", false),
        ] {
            assert_eq!(has_upper_case(text.as_bytes()), upper, "{text}");
        }
    }

    #[test]
    fn a_valid_time_out_of_range_is_named_so_not_malformed() {
        let far = nanos_of("end_time", "9999-12-31T23:59:59.999999999Z").unwrap_err();
        assert!(
            far.to_string().contains("outside the times spans can hold"),
            "{far}"
        );
        let bad = nanos_of("end_time", "yesterday").unwrap_err();
        assert!(
            bad.to_string().contains("is not an ISO-8601 timestamp"),
            "{bad}"
        );
    }

    const LINE: &str = r#"{"trace_id":"t-aaaa","span_id":"s-1","parent_span_id":"","trace_state":"","name":"root","kind":"SPAN_KIND_INTERNAL","start_time":"2026-04-23T05:32:00.000000000Z","end_time":"2026-04-23T05:32:01.000000000Z","status":{"code":"STATUS_CODE_ERROR","message":"boom"},"resource":{"attributes":{"service.name":"agent-a"}},"scope":{"name":"@test/scope","version":"0.0.1"},"attributes":{"openinference.span.kind":"AGENT"}}"#;

    #[test]
    fn parses_the_reference_format() {
        let s = parse_canonical(LINE).unwrap();
        assert_eq!(s.trace_id, "t-aaaa");
        assert_eq!(s.status_code, StatusCode::Error);
        assert_eq!(s.status_message, "boom");
        assert_eq!(s.duration_ms(), 1000.0);
        assert_eq!(s.service_name().unwrap(), "agent-a");
        assert!(
            matches!(s.trace_id, Cow::Borrowed(_)),
            "ids borrow from the line"
        );
    }

    #[test]
    fn names_what_is_wrong() {
        let missing =
            parse_canonical(r#"{"span_id":"s","start_time":"x","end_time":"y"}"#).unwrap_err();
        assert!(
            missing.message.contains("missing field `trace_id`"),
            "{missing}"
        );
        let wrong = parse_canonical(&LINE.replace("\"t-aaaa\"", "17")).unwrap_err();
        assert!(wrong.message.contains("invalid type"), "{wrong}");
        let time =
            parse_canonical(&LINE.replace("2026-04-23T05:32:00.000000000Z", "soon")).unwrap_err();
        assert!(time.message.contains("start_time \"soon\""), "{time}");
        let status = parse_canonical(&LINE.replace("STATUS_CODE_ERROR", "BROKEN")).unwrap_err();
        assert!(status.message.contains("status.code"), "{status}");
        // Fields given as an array, in order, are not a span.
        let array = r#"["t","s","","","n","SPAN_KIND_INTERNAL","2026-04-23T05:32:00Z","2026-04-23T05:32:01Z"]"#;
        let e = parse_canonical(array).unwrap_err();
        assert!(
            e.message.contains("holds an array, not a span object"),
            "{e}"
        );
        assert!(parse_canonical("42")
            .unwrap_err()
            .message
            .contains("a number"));
        let broken = parse_canonical("[1,").unwrap_err();
        assert!(broken.message.contains("truncated JSON"), "{broken}");
    }

    #[test]
    fn accepts_lenient_status_forms() {
        for (code, expected) in [
            ("2", StatusCode::Error),
            ("\"OK\"", StatusCode::Ok),
            ("null", StatusCode::Unset),
            ("\"error\"", StatusCode::Error),
            ("\"STATUS_CODE_Ok\"", StatusCode::Ok),
            ("\"STATUS_CODE_\"", StatusCode::Unset),
            // Escaped text is decoded before it is read.
            (r#""\u0045RROR""#, StatusCode::Error),
            (r#""STATUS_CODE_\u004fK""#, StatusCode::Ok),
        ] {
            let line = LINE.replace("\"STATUS_CODE_ERROR\"", code);
            assert_eq!(
                parse_canonical(&line).unwrap().status_code,
                expected,
                "{code}"
            );
        }
        // The prefix is matched as written; the rest in any case.
        for bad in ["\"status_code_ok\"", "\"OKAY\"", r#""E\"RROR""#, "\"\""] {
            let line = LINE.replace("\"STATUS_CODE_ERROR\"", bad);
            let expected = (bad == "\"\"").then_some(StatusCode::Unset);
            assert_eq!(
                parse_canonical(&line).ok().map(|s| s.status_code),
                expected,
                "{bad}"
            );
        }
    }
}
