//! OTLP/JSON, as the OpenTelemetry Collector's file exporter writes it: one
//! `{"resourceSpans":[...]}` export request per line.
//!
//! Ids are hex strings, times are Unix nanoseconds (as strings or numbers), attribute values
//! are typed (`stringValue`, `intValue`, `arrayValue`, `kvlistValue`, ...). Each span comes out
//! as a [`RawSpan`] with the resource and scope copied onto it, plus the byte range of the
//! span object inside the line so that a viewer can find it again.

use std::borrow::Cow;
use std::ops::Range;

use serde::Deserialize;
use serde_json::value::RawValue;

use crate::attr::{AttrValue, Attributes};
use crate::kind::{otel_kind_name, StatusCode};
use crate::span::{RawSpan, ScopeIn, StatusIn};
use crate::ParseError;

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ExportRequest<'a> {
    #[serde(borrow, default)]
    resource_spans: Vec<ResourceSpans<'a>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ResourceSpans<'a> {
    #[serde(borrow, default)]
    resource: Option<Resource<'a>>,
    #[serde(borrow, default, alias = "instrumentationLibrarySpans")]
    scope_spans: Vec<ScopeSpans<'a>>,
}

#[derive(Deserialize)]
struct Resource<'a> {
    #[serde(borrow, default)]
    attributes: Vec<KeyValue<'a>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ScopeSpans<'a> {
    #[serde(borrow, default, alias = "instrumentationLibrary")]
    scope: Option<ScopeIn<'a>>,
    #[serde(borrow, default)]
    spans: Vec<&'a RawValue>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Span<'a> {
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
    kind: Option<&'a RawValue>,
    #[serde(borrow)]
    start_time_unix_nano: &'a RawValue,
    #[serde(borrow)]
    end_time_unix_nano: &'a RawValue,
    #[serde(borrow, default)]
    attributes: Vec<KeyValue<'a>>,
    #[serde(borrow, default)]
    events: Vec<Event<'a>>,
    #[serde(borrow, default)]
    status: Option<StatusIn<'a>>,
}

#[derive(Deserialize)]
struct Event<'a> {
    #[serde(borrow, default)]
    name: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    attributes: Vec<KeyValue<'a>>,
}

#[derive(Deserialize)]
struct KeyValue<'a> {
    #[serde(borrow)]
    key: Cow<'a, str>,
    #[serde(borrow, default)]
    value: Option<AnyValue<'a>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct AnyValue<'a> {
    #[serde(borrow, default)]
    string_value: Option<&'a RawValue>,
    #[serde(borrow, default)]
    int_value: Option<&'a RawValue>,
    #[serde(borrow, default)]
    double_value: Option<&'a RawValue>,
    #[serde(default)]
    bool_value: Option<bool>,
    #[serde(borrow, default)]
    array_value: Option<ArrayValue<'a>>,
    #[serde(borrow, default)]
    kvlist_value: Option<KvList<'a>>,
    #[serde(borrow, default)]
    bytes_value: Option<Cow<'a, str>>,
}

#[derive(Deserialize)]
struct ArrayValue<'a> {
    #[serde(borrow, default)]
    values: Vec<AnyValue<'a>>,
}

#[derive(Deserialize)]
struct KvList<'a> {
    #[serde(borrow, default)]
    values: Vec<KeyValue<'a>>,
}

/// A number that OTLP/JSON may write as a JSON number or as a string holding one. A
/// float is cut to its whole part; one out of `i64`'s range is no number here, rather
/// than the range's end.
fn number_of(raw: &RawValue) -> Option<i64> {
    // 2^63 is exact as an f64; every float below it and from -2^63 up fits.
    const LIMIT: f64 = 9_223_372_036_854_775_808.0;
    let text = raw.get().trim_matches('"');
    text.parse::<i64>().ok().or_else(|| {
        text.parse::<f64>()
            .ok()
            .filter(|f| (-LIMIT..LIMIT).contains(f))
            .map(|f| f as i64)
    })
}

/// A span time: unsigned nanoseconds since 1970 in OTLP (a fixed64), held as `i64`, so
/// up to 2262-04-11. Each way a value can be wrong gets its own message.
fn time_of(raw: &RawValue, field: &str) -> Result<i64, ParseError> {
    let negative = || {
        ParseError::new(format!(
            "{field} is negative (OTLP times are nanoseconds since 1970, unsigned)"
        ))
    };
    match number_of(raw) {
        Some(n) if n >= 0 => Ok(n),
        Some(_) => Err(negative()),
        None => {
            let text = raw.get().trim_matches('"');
            match text.parse::<f64>().ok().filter(|f| f.is_finite()) {
                Some(f) if f < 0.0 => Err(negative()),
                Some(_) => Err(ParseError::new(format!(
                    "{field} {text} is past 2262-04-11, the last time halo can hold"
                ))),
                None => Err(ParseError::new(format!("{field} is not a number"))),
            }
        }
    }
}

impl<'a> AnyValue<'a> {
    fn into_attr(self) -> AttrValue<'a> {
        if let Some(raw) = self.string_value {
            return match AttrValue::from_raw_json(raw) {
                AttrValue::Null => AttrValue::Null,
                v @ (AttrValue::Str(_) | AttrValue::RawStr(_)) => v,
                other => {
                    AttrValue::Str(Cow::Owned(other.as_text().unwrap_or_default().into_owned()))
                }
            };
        }
        if let Some(raw) = self.int_value {
            // A value that is no 64-bit integer (text, a fraction, or past `i64`, as an
            // unsigned counter may be) is kept as the text it is rather than lost or
            // clamped to a number the data does not hold.
            let text = raw.get().trim_matches('"');
            return match text.parse::<i64>() {
                Ok(i) => AttrValue::Int(i),
                Err(_) => AttrValue::Str(Cow::Owned(text.to_string())),
            };
        }
        if let Some(f) = self
            .double_value
            .and_then(|r| r.get().trim_matches('"').parse::<f64>().ok())
        {
            return AttrValue::Float(f);
        }
        if let Some(b) = self.bool_value {
            return AttrValue::Bool(b);
        }
        if let Some(b) = self.bytes_value {
            return AttrValue::Str(b);
        }
        if self.array_value.is_some() || self.kvlist_value.is_some() {
            return AttrValue::Json(Cow::Owned(self.into_json().to_string()));
        }
        AttrValue::Null
    }

    fn into_json(self) -> serde_json::Value {
        if let Some(list) = self.array_value {
            return serde_json::Value::Array(
                list.values.into_iter().map(AnyValue::into_json).collect(),
            );
        }
        if let Some(kv) = self.kvlist_value {
            return serde_json::Value::Object(
                kv.values
                    .into_iter()
                    .map(|p| {
                        (
                            p.key.into_owned(),
                            p.value.map(AnyValue::into_json).unwrap_or_default(),
                        )
                    })
                    .collect(),
            );
        }
        self.into_attr().to_json()
    }
}

fn attributes_of(pairs: Vec<KeyValue<'_>>) -> Attributes<'_> {
    Attributes(
        pairs
            .into_iter()
            .map(|p| {
                (
                    p.key,
                    p.value.map(AnyValue::into_attr).unwrap_or(AttrValue::Null),
                )
            })
            .collect(),
    )
}

/// What one OTLP line holds: its spans, and the spans that could not be read.
#[derive(Debug, Default)]
pub struct OtlpLine<'a> {
    /// Each span with the byte range of its JSON object inside the line.
    pub spans: Vec<(RawSpan<'a>, Range<usize>)>,
    /// One entry per span that was skipped, saying why.
    pub problems: Vec<ParseError>,
}

/// Whether a line looks like an OTLP/JSON export request rather than a canonical span.
///
/// Looks for the `resourceSpans` key near the start of the line, which is where exporters
/// put it; a canonical span never has that key.
pub fn looks_like_otlp(line: &[u8]) -> bool {
    static KEY: std::sync::LazyLock<memchr::memmem::Finder<'static>> =
        std::sync::LazyLock::new(|| memchr::memmem::Finder::new(b"\"resourceSpans\""));
    KEY.find(&line[..line.len().min(256)]).is_some()
}

/// Whether a line is an OTLP/JSON export of logs or metrics, which the Collector's file
/// exporter may write into the same file as traces: not spans, and not broken spans either.
pub fn is_other_otlp_signal(line: &[u8]) -> bool {
    // The key opens the object, as exporters write it; anywhere else it could be a value.
    let Some(rest) = line.trim_ascii_start().strip_prefix(b"{") else {
        return false;
    };
    let rest = rest.trim_ascii_start();
    [
        &b"\"resourceLogs\""[..],
        b"\"resourceMetrics\"",
        b"\"resourceProfiles\"",
    ]
    .iter()
    .any(|k| rest.starts_with(k))
}

/// Parses one OTLP/JSON line into spans. A malformed line is an error; a malformed span in
/// an otherwise good line is skipped and reported in [`OtlpLine::problems`].
pub fn parse_otlp_line(line: &str) -> Result<OtlpLine<'_>, ParseError> {
    let request: ExportRequest = serde_json::from_str(line).map_err(ParseError::from_json)?;
    let base = line.as_ptr() as usize;
    let mut out = OtlpLine::default();
    for rs in request.resource_spans {
        let resource = rs
            .resource
            .map(|r| attributes_of(r.attributes))
            .unwrap_or_default();
        for ss in rs.scope_spans {
            let (scope_name, scope_version) = match ss.scope {
                Some(s) => (s.name.unwrap_or_default(), s.version.unwrap_or_default()),
                None => Default::default(),
            };
            for raw in ss.spans {
                let start = raw.get().as_ptr() as usize - base;
                let range = start..start + raw.get().len();
                match span_of(raw, start, &resource, &scope_name, &scope_version) {
                    Ok(span) => out.spans.push((span, range)),
                    Err(e) => out.problems.push(e),
                }
            }
        }
    }
    Ok(out)
}

/// Bytes in a trace id and a span id.
const TRACE_ID_BYTES: usize = 16;
const SPAN_ID_BYTES: usize = 8;

/// An id as hex. OTLP/JSON writes ids in hex, but protobuf's own JSON mapping (what
/// `MessageToJson` of an export request gives) writes bytes in base64: such an id (24
/// characters for a trace, 12 for a span, padded with `=`) becomes the hex of its bytes,
/// so both exports of one trace name it alike. Hex is read without regard to case (the
/// spec's ids are case-insensitive) and written in lower case, as exporters write it and
/// the reference format's ids are. Anything else is kept as written.
fn hex_id(id: Cow<'_, str>, bytes: usize) -> Cow<'_, str> {
    use base64::Engine as _;
    let base64_len = bytes.div_ceil(3) * 4;
    if id.len() != base64_len || !id.ends_with('=') {
        return crate::span::lower_hex_id(id);
    }
    match base64::engine::general_purpose::STANDARD.decode(id.as_bytes()) {
        Ok(raw) if raw.len() == bytes => {
            use std::fmt::Write as _;
            let mut hex = String::with_capacity(2 * bytes);
            for b in raw {
                let _ = write!(hex, "{b:02x}");
            }
            Cow::Owned(hex)
        }
        _ => id,
    }
}

/// The span `raw`, which starts `start` bytes into its line.
fn span_of<'a>(
    raw: &'a RawValue,
    start: usize,
    resource: &Attributes<'a>,
    scope_name: &Cow<'a, str>,
    scope_version: &Cow<'a, str>,
) -> Result<RawSpan<'a>, ParseError> {
    let s: Span<'a> =
        serde_json::from_str(raw.get()).map_err(|e| ParseError::from_json_at(e, start))?;
    if s.trace_id.is_empty() || s.span_id.is_empty() {
        return Err(ParseError::new("span has an empty traceId or spanId"));
    }
    let start_ns = time_of(s.start_time_unix_nano, "startTimeUnixNano")?;
    let end_ns = time_of(s.end_time_unix_nano, "endTimeUnixNano")?;
    let otel_kind = match s.kind {
        Some(k) => match number_of(k) {
            Some(n) => Cow::Borrowed(otel_kind_name(n)),
            None => Cow::Owned(k.get().trim_matches('"').to_string()),
        },
        None => Cow::Borrowed("SPAN_KIND_INTERNAL"),
    };
    let (status_code, status_message) = match s.status {
        Some(st) => {
            let code = st
                .code
                .map(|c| StatusCode::parse(c.get().trim_matches('"')).unwrap_or(StatusCode::Unset))
                .unwrap_or(StatusCode::Unset);
            (code, st.message.unwrap_or_default())
        }
        None => (StatusCode::Unset, Cow::Borrowed("")),
    };
    let mut attributes = attributes_of(s.attributes);
    // Exceptions live in span events in OTLP; lift the last one's attributes (after
    // retries, the one that failed the span) so that every dialect exposes `exception.*`
    // the same way.
    for event in s.events.into_iter().rev() {
        if event.name.as_deref() == Some("exception") {
            for (k, v) in attributes_of(event.attributes).0 {
                if k.starts_with("exception.") && attributes.get(&k).is_none() {
                    attributes.0.push((k, v));
                }
            }
            break;
        }
    }
    Ok(RawSpan {
        trace_id: hex_id(s.trace_id, TRACE_ID_BYTES),
        span_id: hex_id(s.span_id, SPAN_ID_BYTES),
        // An all-zero id is OTLP's way of saying "no parent".
        parent_span_id: crate::span::parent_or_none(
            s.parent_span_id.map(|p| hex_id(p, SPAN_ID_BYTES)),
        ),
        trace_state: s.trace_state.unwrap_or_default(),
        name: s.name.unwrap_or_default(),
        otel_kind,
        start_ns,
        end_ns,
        status_code,
        status_message,
        resource: resource.clone(),
        scope_name: scope_name.clone(),
        scope_version: scope_version.clone(),
        attributes,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const LINE: &str = r#"{"resourceSpans":[{"resource":{"attributes":[{"key":"service.name","value":{"stringValue":"svc"}}]},"scopeSpans":[{"scope":{"name":"sdk","version":"1"},"spans":[{"traceId":"5b8efff798038103d269b633813fc60c","spanId":"eee19b7ec3c1b174","parentSpanId":"","name":"chat","kind":3,"startTimeUnixNano":"1544712660000000000","endTimeUnixNano":1544712661000000000,"attributes":[{"key":"gen_ai.usage.input_tokens","value":{"intValue":"12"}},{"key":"gen_ai.response.finish_reasons","value":{"arrayValue":{"values":[{"stringValue":"stop"}]}}},{"key":"meta","value":{"kvlistValue":{"values":[{"key":"a","value":{"doubleValue":1.5}}]}}}],"events":[{"name":"exception","attributes":[{"key":"exception.type","value":{"stringValue":"RateLimitError"}}]}],"status":{"code":2,"message":"429"}},{"spanId":"broken"}]}]}]}"#;

    #[test]
    fn a_time_out_of_range_is_named_for_what_is_wrong_with_it() {
        let with_start = |start: &str| {
            let line = LINE.replace(
                r#""startTimeUnixNano":"1544712660000000000""#,
                &format!(r#""startTimeUnixNano":{start}"#),
            );
            let out = parse_otlp_line(&line).unwrap();
            match out.spans.len() {
                1 => Ok(out.spans[0].0.start_ns),
                _ => Err(out.problems[0].message.clone()),
            }
        };
        assert_eq!(with_start("\"0\""), Ok(0));
        assert_eq!(with_start("1.5e18"), Ok(1_500_000_000_000_000_000));
        for below in ["\"-5\"", "\"-99999999999999999999\"", "-1e30"] {
            let negative = with_start(below).unwrap_err();
            assert!(
                negative.starts_with("startTimeUnixNano is negative"),
                "{below}: {negative}"
            );
        }
        let far = with_start("\"99999999999999999999\"").unwrap_err();
        assert!(
            far.starts_with("startTimeUnixNano 99999999999999999999 is past 2262-04-11"),
            "{far}"
        );
        let text = with_start("\"soon\"").unwrap_err();
        assert!(
            text.starts_with("startTimeUnixNano is not a number"),
            "{text}"
        );
    }

    #[test]
    fn reads_typed_values_events_and_ranges() {
        let out = parse_otlp_line(LINE).unwrap();
        assert_eq!(out.spans.len(), 1);
        assert_eq!(
            out.problems.len(),
            1,
            "the broken span is reported, not fatal"
        );
        // Its position is a column of the line, not of the span object.
        let broken = LINE.find(r#"{"spanId":"broken"}"#).unwrap();
        let message = &out.problems[0].message;
        assert!(
            message.ends_with(&format!(
                " at column {}",
                broken + r#"{"spanId":"broken"}"#.len()
            )),
            "{message}"
        );
        let (span, range) = &out.spans[0];
        assert_eq!(span.otel_kind, "SPAN_KIND_CLIENT");
        assert_eq!(span.status_code, StatusCode::Error);
        assert_eq!(span.duration_ms(), 1000.0);
        assert_eq!(span.service_name().unwrap(), "svc");
        assert_eq!(
            span.attributes
                .get("gen_ai.usage.input_tokens")
                .unwrap()
                .as_i64(),
            Some(12)
        );
        assert_eq!(
            span.attributes.get("gen_ai.response.finish_reasons"),
            Some(&AttrValue::Json(r#"["stop"]"#.into()))
        );
        assert_eq!(span.attributes.get("meta").unwrap().to_json()["a"], 1.5);
        assert_eq!(
            span.attributes
                .get("exception.type")
                .unwrap()
                .as_text()
                .unwrap(),
            "RateLimitError"
        );
        assert!(LINE[range.clone()].starts_with("{\"traceId\""));
        assert!(LINE[range.clone()].ends_with('}'));
    }

    #[test]
    fn base64_ids_of_protobufs_json_mapping_become_hex() {
        let line = r#"{"resourceSpans":[{"scopeSpans":[{"spans":[{"traceId":"W47/95gDgQPSabYzgT/GDA==","spanId":"7uGbfsPBsXQ=","parentSpanId":"AAAAAAAAAAA=","name":"call","startTimeUnixNano":"1","endTimeUnixNano":"2"},{"traceId":"5b8efff798038103d269b633813fc60c","spanId":"00f067aa0ba902b7","parentSpanId":"7uGbfsPBsXQ=","name":"child","startTimeUnixNano":"1","endTimeUnixNano":"2"},{"traceId":"not-hex","spanId":"x","name":"odd","startTimeUnixNano":"1","endTimeUnixNano":"2"},{"traceId":"5B8EFFF798038103D269B633813FC60C","spanId":"00F067AA0BA902B8","parentSpanId":"EEE19B7EC3C1B174","name":"upper","startTimeUnixNano":"1","endTimeUnixNano":"2"}]}]}]}"#;
        let parsed = parse_otlp_line(line).unwrap();
        let spans: Vec<_> = parsed.spans.iter().map(|(s, _)| s).collect();
        assert_eq!(spans[0].trace_id, "5b8efff798038103d269b633813fc60c");
        assert_eq!(spans[0].span_id, "eee19b7ec3c1b174");
        assert_eq!(spans[0].parent_span_id, "", "an all-zero parent is none");
        assert_eq!(
            spans[1].trace_id, spans[0].trace_id,
            "one trace, either spelling"
        );
        assert_eq!(spans[1].parent_span_id, "eee19b7ec3c1b174");
        assert_eq!(
            spans[2].trace_id, "not-hex",
            "other ids are kept as written"
        );
        // Hex is case-insensitive: upper case names the same trace and parent.
        assert_eq!(spans[3].trace_id, spans[0].trace_id);
        assert_eq!(spans[3].span_id, "00f067aa0ba902b8");
        assert_eq!(spans[3].parent_span_id, "eee19b7ec3c1b174");
    }

    #[test]
    fn the_last_exception_event_names_the_error_and_a_zero_parent_is_none() {
        let line = r#"{"resourceSpans":[{"scopeSpans":[{"spans":[{"traceId":"5b8efff798038103d269b633813fc60c","spanId":"eee19b7ec3c1b174","parentSpanId":"0000000000000000","name":"call","startTimeUnixNano":"1","endTimeUnixNano":"2","events":[{"name":"exception","attributes":[{"key":"exception.message","value":{"stringValue":"attempt 1 reset"}}]},{"name":"retry"},{"name":"exception","attributes":[{"key":"exception.type","value":{"stringValue":"TimeoutError"}},{"key":"exception.message","value":{"stringValue":"gave up"}}]}],"status":{"code":2}}]}]}]}"#;
        let out = parse_otlp_line(line).unwrap();
        let (span, _) = &out.spans[0];
        let text = |k: &str| span.attributes.get(k).and_then(|v| v.as_text());
        assert_eq!(text("exception.type").as_deref(), Some("TimeoutError"));
        assert_eq!(text("exception.message").as_deref(), Some("gave up"));
        assert_eq!(span.parent_span_id, "");
    }

    #[test]
    fn logs_and_metrics_lines_are_other_signals_not_broken_spans() {
        let logs =
            r#"{"resourceLogs":[{"scopeLogs":[{"logRecords":[{"body":{"stringValue":"hi"}}]}]}]}"#;
        let metrics = r#"{"resourceMetrics":[]}"#;
        for line in [logs, metrics] {
            assert!(is_other_otlp_signal(line.as_bytes()));
            let parsed = crate::parse_line(line).unwrap();
            assert!(parsed.spans.is_empty() && parsed.problems.is_empty());
        }
        assert!(!is_other_otlp_signal(LINE.as_bytes()));
        // A canonical span that names a signal is still a span.
        let span = r#"{"name":"resourceMetrics","trace_id":"t","span_id":"s","start_time":"2026-01-01T00:00:00Z","end_time":"2026-01-01T00:00:01Z"}"#;
        assert!(!is_other_otlp_signal(span.as_bytes()));
        assert_eq!(crate::parse_line(span).unwrap().spans.len(), 1);
    }

    #[test]
    fn an_int_value_that_is_no_integer_is_kept_as_text() {
        let line = r#"{"resourceSpans":[{"scopeSpans":[{"spans":[{"traceId":"5b8efff798038103d269b633813fc60c","spanId":"eee19b7ec3c1b174","name":"s","startTimeUnixNano":"1","endTimeUnixNano":"2","attributes":[{"key":"n","value":{"intValue":"abc"}},{"key":"m","value":{"intValue":7}},{"key":"gen_ai.usage.input_tokens","value":{"intValue":"18446744073709551615"}}]}]}]}]}"#;
        let out = parse_otlp_line(line).unwrap();
        let span = &out.spans[0].0;
        let attrs = &span.attributes;
        assert_eq!(
            attrs.get("n").and_then(|v| v.as_text()).as_deref(),
            Some("abc")
        );
        assert_eq!(attrs.get("m").and_then(|v| v.as_i64()), Some(7));
        // An unsigned counter past i64 is shown as written and is no token count.
        let big = attrs.get("gen_ai.usage.input_tokens").unwrap();
        assert_eq!(big.as_text().as_deref(), Some("18446744073709551615"));
        assert_eq!(big.as_i64(), None);
        assert_eq!(crate::SpanFacts::extract(span).tokens.input, None);
    }

    #[test]
    fn detects_the_format() {
        assert!(looks_like_otlp(LINE.as_bytes()));
        assert!(!looks_like_otlp(br#"{"trace_id":"x"}"#));
    }
}
