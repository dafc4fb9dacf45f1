//! The span and trace model of halo-rs.
//!
//! This crate turns one line of input into spans and reads what those spans mean. It does no
//! IO: callers hand it `&str` lines and get back borrowed [`RawSpan`]s and [`SpanFacts`].
//!
//! Two input formats are understood:
//! - the reference HALO format, one canonical flat span per line ([`parse_canonical`]);
//! - OTLP/JSON export requests, one `{"resourceSpans":[...]}` per line ([`parse_otlp_line`]).
//!
//! [`parse_line`] detects which one a line is. [`SpanFacts::extract`] then normalizes the
//! OpenInference, inference.* and GenAI attribute dialects into one semantic view.
//!
//! ```
//! use halo_trace::{parse_line, SpanFacts, SpanKind};
//!
//! let line = r#"{"trace_id":"t1","span_id":"s1","parent_span_id":"","name":"chat",
//!   "start_time":"2026-04-23T05:32:00Z","end_time":"2026-04-23T05:32:01Z",
//!   "status":{"code":"STATUS_CODE_OK","message":""},
//!   "attributes":{"gen_ai.operation.name":"chat","gen_ai.usage.input_tokens":12}}"#;
//! let spans = parse_line(line).unwrap().spans;
//! let facts = SpanFacts::extract(&spans[0].0);
//! assert_eq!(facts.kind, SpanKind::Llm);
//! assert_eq!(facts.tokens.input, Some(12));
//! ```

#![deny(missing_docs)]

pub mod attr;
mod canonical_fast;
mod cost;
mod json_scan;
pub mod kind;
mod lines;
mod memo;
pub mod messages;
pub mod model;
mod near_find;
pub mod otlp;
pub mod semantic;
pub mod span;
mod spare_buffers;
pub mod template;
#[cfg(test)]
mod test_rng;
pub mod time;
pub mod tool_error;
pub mod traceback;

use std::ops::Range;

pub use attr::{AttrValue, Attributes};
pub use cost::add_costs;
pub use kind::{SpanKind, StatusCode};
pub use lines::{next_line, Line};
pub use model::model_family;
pub use otlp::{looks_like_otlp, parse_otlp_line};
pub use semantic::{clip, head, one_line, printable, SpanFacts, Tokens};
pub use span::{parse_canonical, RawSpan};
pub use template::error_template;

/// Why a line or a span could not be read. The message says what is wrong, in lower case,
/// without the location: callers add `file:line`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    /// What is wrong.
    pub message: String,
}

impl ParseError {
    /// A new error with this message. Quoted values in it (the bad value, as serde or
    /// the readers quote it) are cut to their head when long, and so is the message
    /// itself: a warning names what is wrong, and a 100 KB value would bury the rest.
    pub fn new(message: impl Into<String>) -> ParseError {
        ParseError {
            message: clip_error_message(message.into()),
        }
    }

    fn from_json(e: serde_json::Error) -> ParseError {
        let what = match e.classify() {
            serde_json::error::Category::Eof => "truncated JSON",
            serde_json::error::Category::Syntax => "malformed JSON",
            serde_json::error::Category::Data => "invalid span",
            serde_json::error::Category::Io => "unreadable",
        };
        // serde names the Rust type it expected; users know it as a span object.
        let detail = e
            .to_string()
            .replace("struct CanonicalLine", "a span object")
            .replace("struct ExportRequest", "an OTLP export request")
            .replace("struct Span", "a span object");
        ParseError::new(format!("{what}: {detail}"))
    }

    /// [`ParseError::from_json`] for a value that starts `offset` bytes into its line (a
    /// span inside an OTLP export line): serde counts columns from the value's start, so
    /// the position is said as a column of the line instead.
    fn from_json_at(e: serde_json::Error, offset: usize) -> ParseError {
        let (line, column) = (e.line(), e.column());
        let mut error = ParseError::from_json(e);
        let serde_position = format!(" at line {line} column {column}");
        if line == 1 && error.message.ends_with(&serde_position) {
            let cut = error.message.len() - serde_position.len();
            error.message.truncate(cut);
            error
                .message
                .push_str(&format!(" at column {}", offset + column));
        }
        error
    }
}

/// Longest quoted value an error message quotes whole, in bytes.
const MAX_QUOTED_BYTES: usize = 120;
/// Longest error message, in bytes, once its quoted values are cut.
const MAX_MESSAGE_BYTES: usize = 1_000;

/// `message` with each quoted value longer than [`MAX_QUOTED_BYTES`] cut to its head, a
/// `…` and its length, and the whole cut in the middle past [`MAX_MESSAGE_BYTES`] (the end
/// says where in the line, so it stays).
fn clip_error_message(message: String) -> String {
    if message.len() <= MAX_QUOTED_BYTES {
        return message;
    }
    let mut out = String::with_capacity(message.len().min(2 * MAX_MESSAGE_BYTES));
    let mut rest = message.as_str();
    while let Some(open) = rest.find('"') {
        out.push_str(&rest[..=open]);
        let after = &rest[open + 1..];
        // The closing quote: the next one not escaped by a backslash (values are quoted
        // with Rust's `{:?}` or serde's escapes). Unclosed, the rest is the value.
        let mut close = None;
        let mut escaped = false;
        for (i, c) in after.char_indices() {
            match c {
                '\\' if !escaped => escaped = true,
                '"' if !escaped => {
                    close = Some(i);
                    break;
                }
                _ => escaped = false,
            }
        }
        let value = &after[..close.unwrap_or(after.len())];
        if value.len() > MAX_QUOTED_BYTES {
            let chars = value.chars().count();
            out.push_str(semantic::head(value, MAX_QUOTED_BYTES));
            out.push_str(&format!("…({chars} characters)"));
        } else {
            out.push_str(value);
        }
        match close {
            Some(i) => {
                out.push('"');
                rest = &after[i + 1..];
            }
            None => rest = "",
        }
    }
    out.push_str(rest);
    if out.len() <= MAX_MESSAGE_BYTES {
        return out;
    }
    let keep_end = MAX_MESSAGE_BYTES / 4;
    let mut end_at = out.len() - keep_end;
    while !out.is_char_boundary(end_at) {
        end_at += 1;
    }
    let head_part = semantic::head(&out, MAX_MESSAGE_BYTES - keep_end);
    format!("{head_part} … {}", &out[end_at..])
}

impl std::fmt::Display for ParseError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for ParseError {}

/// Which input format a line is in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LineFormat {
    /// One canonical flat span.
    Canonical,
    /// One OTLP/JSON export request.
    Otlp,
}

/// The spans of one line, whatever its format.
#[derive(Debug, Default)]
pub struct ParsedLine<'a> {
    /// Each span with the byte range of its JSON inside the line (the whole line for the
    /// canonical format).
    pub spans: Vec<(RawSpan<'a>, Range<usize>)>,
    /// Spans of the line that were skipped (OTLP lines can be partly good).
    pub problems: Vec<ParseError>,
    /// The detected format.
    pub format: Option<LineFormat>,
    /// The line is an OTLP export of logs or metrics: no spans, and nothing wrong.
    pub other_signal: bool,
}

impl ParsedLine<'_> {
    /// Done with the line: its span list and the spans' attribute lists go to the next
    /// line this thread reads, saving their allocations (see [`Attributes::recycle`]).
    pub fn recycle(self) {
        spare_buffers::recycle_spans(self.spans);
    }
}

/// `x` rounded to nine decimal places, for output: sums of prices and differences of rates
/// pick up binary noise (`1.0002819999999997`, `-0.07999999999999999`), and nothing a
/// person or a script reads is finer than a billionth.
pub fn round_nine(x: f64) -> f64 {
    let r = (x * 1e9).round() / 1e9;
    // Not a number, infinite, or so large that scaling it overflows: left as it is.
    if r.is_finite() {
        r
    } else {
        x
    }
}

/// Parses a line in either format. Leading and trailing white space is ignored; an empty
/// line yields no spans and no error.
pub fn parse_line(line: &str) -> Result<ParsedLine<'_>, ParseError> {
    parse_line_checked(line, false)
}

/// [`parse_line`] for a line found by [`next_line`] to be free of control bytes
/// (`control_free`), which spares the scanner a second pass over it. Passing `true` for a
/// line that has control bytes is a logic error (checked in debug builds).
pub fn parse_line_checked(line: &str, control_free: bool) -> Result<ParsedLine<'_>, ParseError> {
    // A byte-order mark (some Windows tools write one) is not part of the JSON, nor of any
    // span's text: the spans' ranges below start after it, as they are ranges of `line`.
    let (bom, line) = match line.strip_prefix('\u{feff}') {
        Some(rest) => ('\u{feff}'.len_utf8(), rest),
        None => (0, line),
    };
    let trimmed = line.trim_end_matches(['\r', '\n', ' ', '\t']);
    if trimmed.trim_start().is_empty() {
        return Ok(ParsedLine::default());
    }
    if otlp::is_other_otlp_signal(trimmed.as_bytes()) {
        return Ok(ParsedLine {
            format: Some(LineFormat::Otlp),
            other_signal: true,
            ..ParsedLine::default()
        });
    }
    if looks_like_otlp(trimmed.as_bytes()) {
        let mut parsed = parse_otlp_line(trimmed)?;
        for (_, range) in parsed.spans.iter_mut() {
            *range = range.start + bom..range.end + bom;
        }
        return Ok(ParsedLine {
            spans: parsed.spans,
            problems: parsed.problems,
            format: Some(LineFormat::Otlp),
            other_signal: false,
        });
    }
    let span = span::parse_canonical_checked(trimmed, control_free)?;
    let mut spans = spare_buffers::span_list();
    spans.push((span, bom..bom + trimmed.len()));
    Ok(ParsedLine {
        spans,
        problems: Vec::new(),
        format: Some(LineFormat::Canonical),
        other_signal: false,
    })
}

#[cfg(test)]
mod round_nine_tests {
    use super::round_nine;

    #[test]
    fn rounds_to_a_billionth_and_leaves_what_it_cannot_scale() {
        assert_eq!(round_nine(1.0002819999999997), 1.000282);
        assert_eq!(round_nine(0.22 - 0.3), -0.08);
        assert_eq!(round_nine(12_345.0), 12_345.0);
        assert_eq!(round_nine(1e300), 1e300);
        assert!(round_nine(f64::NAN).is_nan());
        assert_eq!(round_nine(f64::INFINITY), f64::INFINITY);
    }
}

#[cfg(test)]
mod error_message_tests {
    use super::{parse_line, ParseError};

    /// A 100 KB bad value, as the mutation tests wrote one: the warning quotes its head
    /// and its length, and still ends with where in the line it was.
    #[test]
    fn a_huge_bad_value_is_quoted_by_its_head() {
        let huge = "Traceback é ".repeat(10_000);
        let line = format!(
            r#"{{"trace_id":"t","span_id":"s","start_time":"2026-01-01T00:00:00Z","end_time":"{huge}"}}"#
        );
        let error = parse_line(&line).expect_err("the end time is no time");
        assert!(error.message.len() < 400, "{} bytes", error.message.len());
        assert!(
            error.message.starts_with("end_time \"Traceback é"),
            "{}",
            error.message
        );
        assert!(
            error.message.contains("…(120000 characters)\""),
            "{}",
            error.message
        );
        assert!(
            error.message.contains("is not an ISO-8601 timestamp"),
            "{}",
            error.message
        );

        let line = format!(r#"{{"trace_id":"t","span_id":{{"id":"{huge}"}}}}"#);
        let error = parse_line(&line).expect_err("a span id is a string");
        assert!(error.message.len() < 400, "{}", error.message);
    }

    /// Quotes inside a value (escaped) do not end it, and a message past the cap keeps
    /// its end, which says where in the line the problem is.
    #[test]
    fn escaped_quotes_and_the_message_end_survive_the_cut() {
        let value = format!(r#"{}\"{}"#, "a".repeat(100), "b".repeat(100));
        let error = ParseError::new(format!("bad \"{value}\" here"));
        assert!(
            error.message.ends_with("…(202 characters)\" here"),
            "{}",
            error.message
        );
        let long = format!("{} at line 1 column 99", "word ".repeat(400));
        let error = ParseError::new(long);
        assert!(error.message.len() <= 1_010, "{}", error.message.len());
        assert!(
            error.message.ends_with("at line 1 column 99"),
            "{}",
            error.message
        );
        assert_eq!(ParseError::new("short \"x\"").message, "short \"x\"");
    }
}
