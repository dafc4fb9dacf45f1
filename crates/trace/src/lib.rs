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
    /// A new error with this message.
    pub fn new(message: impl Into<String>) -> ParseError {
        ParseError {
            message: message.into(),
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
