//! Hand-rolled, allocation-light serializers for the canonical and OTLP/JSON formats.

use super::model::{AttrValue, Service, Span};

/// Appends `s` as a JSON string literal (with quotes).
pub(crate) fn push_json_str(out: &mut Vec<u8>, s: &str) {
    out.push(b'"');
    let bytes = s.as_bytes();
    let mut start = 0;
    for (i, &b) in bytes.iter().enumerate() {
        let esc: &[u8] = match b {
            b'"' => b"\\\"",
            b'\\' => b"\\\\",
            b'\n' => b"\\n",
            b'\r' => b"\\r",
            b'\t' => b"\\t",
            0..=0x1f => {
                out.extend_from_slice(&bytes[start..i]);
                const HEX: &[u8; 16] = b"0123456789abcdef";
                out.extend_from_slice(b"\\u00");
                out.push(HEX[(b >> 4) as usize]);
                out.push(HEX[(b & 15) as usize]);
                start = i + 1;
                continue;
            }
            _ => continue,
        };
        out.extend_from_slice(&bytes[start..i]);
        out.extend_from_slice(esc);
        start = i + 1;
    }
    out.extend_from_slice(&bytes[start..]);
    out.push(b'"');
}

/// Appends `s` JSON-escaped into a `String` (with quotes).
pub(crate) fn push_json_string(out: &mut String, s: &str) {
    let mut v = std::mem::take(out).into_bytes();
    push_json_str(&mut v, s);
    // push_json_str only ever appends valid UTF-8.
    *out = String::from_utf8(v).unwrap_or_default();
}

fn push_u64(out: &mut Vec<u8>, v: u64) {
    let mut buf = [0u8; 20];
    let mut i = buf.len();
    let mut v = v;
    loop {
        i -= 1;
        buf[i] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    out.extend_from_slice(&buf[i..]);
}

fn push_i64(out: &mut Vec<u8>, v: i64) {
    if v < 0 {
        out.push(b'-');
    }
    push_u64(out, v.unsigned_abs());
}

fn push_f64(out: &mut Vec<u8>, v: f64) {
    if v.is_finite() {
        let s = format!("{v}");
        out.extend_from_slice(s.as_bytes());
        if !s.contains(['.', 'e', 'E']) {
            out.extend_from_slice(b".0");
        }
    } else {
        out.extend_from_slice(b"null");
    }
}

/// Days since 1970-01-01 to (year, month, day), proleptic Gregorian.
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// (year, month, day) to days since 1970-01-01.
pub(crate) fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let m = m as i64;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + d as i64 - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn push_2(out: &mut Vec<u8>, v: u32) {
    out.push(b'0' + (v / 10) as u8);
    out.push(b'0' + (v % 10) as u8);
}

/// Appends `"YYYY-MM-DDTHH:MM:SS.nnnnnnnnnZ"` (with quotes) for Unix nanoseconds.
pub(crate) fn push_iso_ns(out: &mut Vec<u8>, ns: u64) {
    let secs = (ns / 1_000_000_000) as i64;
    let frac = ns % 1_000_000_000;
    let (y, mo, d) = civil_from_days(secs.div_euclid(86_400));
    let sod = secs.rem_euclid(86_400) as u32;
    out.push(b'"');
    push_u64(out, y as u64);
    out.push(b'-');
    push_2(out, mo);
    out.push(b'-');
    push_2(out, d);
    out.push(b'T');
    push_2(out, sod / 3600);
    out.push(b':');
    push_2(out, sod / 60 % 60);
    out.push(b':');
    push_2(out, sod % 60);
    out.push(b'.');
    let mut digits = [b'0'; 9];
    let mut f = frac;
    for slot in digits.iter_mut().rev() {
        *slot = b'0' + (f % 10) as u8;
        f /= 10;
    }
    out.extend_from_slice(&digits);
    out.extend_from_slice(b"Z\"");
}

/// Formats Unix nanoseconds as the canonical ISO-8601 string (no quotes).
pub fn iso_from_unix_nanos(ns: u64) -> String {
    let mut v = Vec::with_capacity(32);
    push_iso_ns(&mut v, ns);
    String::from_utf8_lossy(&v[1..v.len() - 1]).into_owned()
}

fn push_canonical_value(out: &mut Vec<u8>, v: &AttrValue) {
    match v {
        AttrValue::Str(s) => push_json_str(out, s),
        AttrValue::Int(i) => push_i64(out, *i),
        AttrValue::Float(f) => push_f64(out, *f),
        AttrValue::Bool(b) => out.extend_from_slice(if *b { b"true" } else { b"false" }),
        AttrValue::StrArray(a) => {
            out.push(b'[');
            for (i, s) in a.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                push_json_str(out, s);
            }
            out.push(b']');
        }
        AttrValue::Null | AttrValue::Map(_) => out.extend_from_slice(b"null"),
    }
}

fn push_canonical_attr(
    out: &mut Vec<u8>,
    first: &mut bool,
    prefix: &str,
    key: &str,
    v: &AttrValue,
) {
    if let AttrValue::Map(entries) = v {
        let p = if prefix.is_empty() {
            key.to_owned()
        } else {
            format!("{prefix}.{key}")
        };
        for (k, v) in entries {
            push_canonical_attr(out, first, &p, k, v);
        }
        return;
    }
    if !*first {
        out.push(b',');
    }
    *first = false;
    if prefix.is_empty() {
        push_json_str(out, key);
    } else {
        push_json_str(out, &format!("{prefix}.{key}"));
    }
    out.push(b':');
    push_canonical_value(out, v);
}

/// Pre-rendered `"resource":{...},"scope":{...}` fragment for a service (canonical).
pub(crate) fn canonical_resource_scope(svc: &Service) -> Vec<u8> {
    let mut out = Vec::new();
    out.extend_from_slice(b"\"resource\":{\"attributes\":{\"service.name\":");
    push_json_str(&mut out, svc.name);
    out.extend_from_slice(b",\"service.version\":");
    push_json_str(&mut out, svc.version);
    out.extend_from_slice(b",\"deployment.environment\":");
    push_json_str(&mut out, svc.environment);
    out.extend_from_slice(b"}},\"scope\":{\"name\":");
    push_json_str(&mut out, svc.scope_name);
    out.extend_from_slice(b",\"version\":");
    push_json_str(&mut out, svc.scope_version);
    out.push(b'}');
    out
}

/// Appends one canonical JSONL line (with trailing newline) for `span`.
pub(crate) fn write_canonical_span(out: &mut Vec<u8>, span: &Span, resource_scope: &[u8]) {
    out.extend_from_slice(b"{\"trace_id\":");
    push_json_str(out, &span.trace_id);
    out.extend_from_slice(b",\"span_id\":");
    push_json_str(out, &span.span_id);
    out.extend_from_slice(b",\"parent_span_id\":");
    push_json_str(out, &span.parent_span_id);
    out.extend_from_slice(b",\"trace_state\":\"\",\"name\":");
    push_json_str(out, &span.name);
    out.extend_from_slice(b",\"kind\":\"");
    out.extend_from_slice(span.kind.canonical().as_bytes());
    out.extend_from_slice(b"\",\"start_time\":");
    push_iso_ns(out, span.start_ns);
    out.extend_from_slice(b",\"end_time\":");
    push_iso_ns(out, span.end_ns);
    out.extend_from_slice(b",\"status\":{\"code\":\"");
    out.extend_from_slice(span.status.canonical().as_bytes());
    out.extend_from_slice(b"\",\"message\":");
    push_json_str(out, &span.status_message);
    out.extend_from_slice(b"},");
    out.extend_from_slice(resource_scope);
    out.extend_from_slice(b",\"attributes\":{");
    let mut first = true;
    for (k, v) in &span.attributes {
        push_canonical_attr(out, &mut first, "", k, v);
    }
    out.extend_from_slice(b"}}\n");
}

fn push_otlp_value(out: &mut Vec<u8>, v: &AttrValue) {
    match v {
        AttrValue::Str(s) => {
            out.extend_from_slice(b"{\"stringValue\":");
            push_json_str(out, s);
            out.push(b'}');
        }
        AttrValue::Int(i) => {
            out.extend_from_slice(b"{\"intValue\":\"");
            push_i64(out, *i);
            out.extend_from_slice(b"\"}");
        }
        AttrValue::Float(f) => {
            out.extend_from_slice(b"{\"doubleValue\":");
            push_f64(out, *f);
            out.push(b'}');
        }
        AttrValue::Bool(b) => {
            out.extend_from_slice(if *b {
                b"{\"boolValue\":true}"
            } else {
                b"{\"boolValue\":false}"
            });
        }
        AttrValue::StrArray(a) => {
            out.extend_from_slice(b"{\"arrayValue\":{\"values\":[");
            for (i, s) in a.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                out.extend_from_slice(b"{\"stringValue\":");
                push_json_str(out, s);
                out.push(b'}');
            }
            out.extend_from_slice(b"]}}");
        }
        AttrValue::Map(entries) => {
            out.extend_from_slice(b"{\"kvlistValue\":{\"values\":");
            push_otlp_attrs(out, entries.iter().map(|(k, v)| (k.as_str(), v)));
            out.extend_from_slice(b"}}");
        }
        AttrValue::Null => out.extend_from_slice(b"{}"),
    }
}

fn push_otlp_attrs<'a>(out: &mut Vec<u8>, attrs: impl Iterator<Item = (&'a str, &'a AttrValue)>) {
    out.push(b'[');
    let mut first = true;
    for (k, v) in attrs {
        if matches!(v, AttrValue::Null) {
            continue;
        }
        if !first {
            out.push(b',');
        }
        first = false;
        out.extend_from_slice(b"{\"key\":");
        push_json_str(out, k);
        out.extend_from_slice(b",\"value\":");
        push_otlp_value(out, v);
        out.push(b'}');
    }
    out.push(b']');
}

/// Appends one OTLP/JSON span object (no trailing separator).
pub(crate) fn write_otlp_span(out: &mut Vec<u8>, span: &Span) {
    out.extend_from_slice(b"{\"traceId\":");
    push_json_str(out, &span.trace_id);
    out.extend_from_slice(b",\"spanId\":");
    push_json_str(out, &span.span_id);
    if !span.parent_span_id.is_empty() {
        out.extend_from_slice(b",\"parentSpanId\":");
        push_json_str(out, &span.parent_span_id);
    }
    out.extend_from_slice(b",\"name\":");
    push_json_str(out, &span.name);
    out.extend_from_slice(b",\"kind\":");
    push_u64(out, span.kind.otlp() as u64);
    out.extend_from_slice(b",\"startTimeUnixNano\":\"");
    push_u64(out, span.start_ns);
    out.extend_from_slice(b"\",\"endTimeUnixNano\":\"");
    push_u64(out, span.end_ns);
    out.extend_from_slice(b"\",\"attributes\":");
    push_otlp_attrs(out, span.attributes.iter().map(|(k, v)| (k.as_ref(), v)));
    if !span.events.is_empty() {
        out.extend_from_slice(b",\"events\":[");
        for (i, e) in span.events.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            out.extend_from_slice(b"{\"timeUnixNano\":\"");
            push_u64(out, e.time_ns);
            out.extend_from_slice(b"\",\"name\":");
            push_json_str(out, e.name);
            out.extend_from_slice(b",\"attributes\":");
            push_otlp_attrs(out, e.attributes.iter().map(|(k, v)| (k.as_ref(), v)));
            out.push(b'}');
        }
        out.push(b']');
    }
    out.extend_from_slice(b",\"status\":{");
    if span.status.otlp() != 0 {
        if !span.status_message.is_empty() {
            out.extend_from_slice(b"\"message\":");
            push_json_str(out, &span.status_message);
            out.push(b',');
        }
        out.extend_from_slice(b"\"code\":");
        push_u64(out, span.status.otlp() as u64);
    }
    out.extend_from_slice(b"}}");
}

/// Pre-rendered OTLP `resource` object for a service.
pub(crate) fn otlp_resource(svc: &Service) -> Vec<u8> {
    let attrs = [
        ("service.name", AttrValue::from(svc.name)),
        ("service.version", AttrValue::from(svc.version)),
        ("deployment.environment", AttrValue::from(svc.environment)),
    ];
    let mut out = Vec::new();
    out.extend_from_slice(b"{\"attributes\":");
    push_otlp_attrs(&mut out, attrs.iter().map(|(k, v)| (*k, v)));
    out.push(b'}');
    out
}

/// Pre-rendered OTLP `scope` object for a service.
pub(crate) fn otlp_scope(svc: &Service) -> Vec<u8> {
    let mut out = Vec::new();
    out.extend_from_slice(b"{\"name\":");
    push_json_str(&mut out, svc.scope_name);
    out.extend_from_slice(b",\"version\":");
    push_json_str(&mut out, svc.scope_version);
    out.push(b'}');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iso_roundtrip() {
        let d = days_from_civil(2026, 4, 23);
        let ns = (d as u64 * 86_400 + 5 * 3600 + 32 * 60) * 1_000_000_000 + 100_000_000;
        assert_eq!(iso_from_unix_nanos(ns), "2026-04-23T05:32:00.100000000Z");
        assert_eq!(iso_from_unix_nanos(0), "1970-01-01T00:00:00.000000000Z");
        let d2 = days_from_civil(2024, 2, 29);
        assert_eq!(civil_from_days(d2), (2024, 2, 29));
    }

    #[test]
    fn escaping() {
        let mut v = Vec::new();
        push_json_str(&mut v, "a\"b\\c\nd\u{1}é");
        assert_eq!(String::from_utf8(v).unwrap(), "\"a\\\"b\\\\c\\nd\\u0001é\"");
    }
}
