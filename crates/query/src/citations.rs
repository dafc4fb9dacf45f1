//! Evidence checks: every trace and span a report cites must exist in the dataset.
//!
//! One checker for every report halo-rs writes (the offline diagnosis and the RLM's final
//! answer): it finds each `[trace:ID]` and `[span:TRACE_ID:SPAN_ID]` link, resolves it
//! against the index, and flags the ones that do not resolve with one text,
//! [`UNKNOWN_CITATION_FLAG`], so that an invented id is never silently kept.

use std::collections::{HashMap, HashSet};
use std::sync::LazyLock;

use halo_index::{Dataset, SpanColumns};
use regex::Regex;
use serde::{Deserialize, Serialize};

use crate::records::same_id;

/// The flag written right after a citation that does not resolve:
/// `[trace:ID] ⚠ not in dataset`. It starts with a space.
pub const UNKNOWN_CITATION_FLAG: &str = " ⚠ not in dataset";

static CITATION: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"\[(trace|span):([^\]\s]+)\]").expect("static regex"));

/// A bracket that holds citations written otherwise than one per bracket: grouped
/// (`[trace:A, trace:B]`), spaced (`[trace: A]`) or capitalized (`[Trace:A]`), as models
/// write them.
static CITATION_GROUP: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"(?i)\[\s*(?:trace|span)\s*:[^\]\n]*\]").expect("static regex"));

/// One citation of a group: its kind and id.
static GROUPED_ITEM: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"(?i)^(trace|span)\s*:\s*(\S+)$").expect("static regex"));

/// `markdown` with every citation group written as single citations (`[trace:A],
/// [trace:B]`), so that each one is checked: a made-up id must not pass for being in
/// company. A bracket with anything but citations in it is left as it is.
fn single_citations(markdown: &str) -> std::borrow::Cow<'_, str> {
    CITATION_GROUP.replace_all(markdown, |caps: &regex::Captures<'_>| {
        let whole = &caps[0];
        let items: Option<Vec<String>> = whole[1..whole.len() - 1]
            .split([',', ';'])
            .map(|item| {
                let c = GROUPED_ITEM.captures(item.trim())?;
                Some(format!("[{}:{}]", c[1].to_ascii_lowercase(), &c[2]))
            })
            .collect();
        items.map_or_else(|| whole.to_string(), |items| items.join(", "))
    })
}

/// What a citation points at.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CitationKind {
    /// `[trace:ID]`.
    Trace,
    /// `[span:TRACE_ID:SPAN_ID]`.
    Span,
}

/// One distinct citation of a report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Citation {
    /// Trace or span.
    pub kind: CitationKind,
    /// The citation as written, e.g. `[span:abc:def]`.
    pub text: String,
    /// The cited trace id.
    pub trace_id: String,
    /// The cited span id (span citations; empty when the citation names no span).
    pub span_id: Option<String>,
    /// How many times it occurs in the report.
    pub occurrences: usize,
    /// Whether it resolves in the dataset.
    pub exists: bool,
}

/// The result of [`check_citations`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CitationCheck {
    /// The report with every unresolved citation followed by [`UNKNOWN_CITATION_FLAG`].
    pub markdown: String,
    /// Distinct citations, in order of first occurrence.
    pub citations: Vec<Citation>,
    /// Citation occurrences in the report.
    pub total: usize,
    /// Occurrences that resolve.
    pub valid: usize,
    /// Occurrences that do not resolve (each is flagged in `markdown`).
    pub unknown: usize,
}

impl CitationCheck {
    /// Whether every citation resolves.
    pub fn all_valid(&self) -> bool {
        self.unknown == 0
    }

    /// The distinct citations that do not resolve, in order of first occurrence.
    pub fn unknown_citations(&self) -> impl Iterator<Item = &Citation> {
        self.citations.iter().filter(|c| !c.exists)
    }

    /// A closing note for the report listing the unresolved citations, or `None` when every
    /// citation resolves. The ids are written without their link brackets, so that checking
    /// the report again does not count them a second time.
    pub fn closing_note(&self) -> Option<String> {
        if self.all_valid() {
            return None;
        }
        let listed: Vec<String> = self
            .unknown_citations()
            .map(|c| format!("`{}`", c.text.trim_start_matches('[').trim_end_matches(']')))
            .collect();
        Some(format!(
            "\n\n---\n⚠ {} citation(s) in this report ({} distinct) do not match any trace or span in the dataset: {}\n",
            self.unknown,
            listed.len(),
            listed.join(", ")
        ))
    }
}

/// Resolves ids against the dataset, remembering the span ids of each trace it looked at.
struct Resolver<'d> {
    ds: &'d Dataset,
    spans: HashMap<String, HashSet<String>>,
}

impl Resolver<'_> {
    fn has_trace(&self, trace_id: &str) -> bool {
        self.ds.trace(&same_id(trace_id)).is_some()
    }

    fn has_span(&mut self, trace_id: &str, span_id: &str) -> bool {
        if span_id.is_empty() || !self.has_trace(trace_id) {
            return false;
        }
        let ds = self.ds;
        self.spans
            .entry(trace_id.to_string())
            .or_insert_with(|| span_ids(ds, &same_id(trace_id)))
            .contains(same_id(span_id).as_ref())
    }

    /// Splits a span citation's body into trace and span id. Trace ids may contain `:`, so
    /// every split is tried and the first that resolves wins; when none does, the split at
    /// the last `:` is reported.
    fn resolve_span(&mut self, body: &str) -> (String, String, bool) {
        let cuts: Vec<usize> = body.match_indices(':').map(|(i, _)| i).collect();
        for &i in &cuts {
            let (t, s) = (&body[..i], &body[i + 1..]);
            if self.has_span(t, s) {
                return (t.to_string(), s.to_string(), true);
            }
        }
        match cuts.last() {
            Some(&i) => (body[..i].to_string(), body[i + 1..].to_string(), false),
            None => (body.to_string(), String::new(), false),
        }
    }
}

/// The length of a Markdown link target, `(url)`, at the start of `rest`; 0 when there is
/// none (no `(`, or no `)` before the line ends).
fn link_target_len(rest: &str) -> usize {
    if !rest.starts_with('(') {
        return 0;
    }
    let line = rest.split('\n').next().unwrap_or("");
    line.find(')').map_or(0, |close| close + 1)
}

/// The length of the rest of an inline code span that a citation sits in, up to and with
/// its closing backticks: the citation's line before it (`before`) opened one that is not
/// closed (an odd number of backticks), and `rest` closes it on the same line. 0 otherwise.
fn code_span_rest_len(before: &str, rest: &str) -> usize {
    if before.matches('`').count().is_multiple_of(2) {
        return 0;
    }
    let line = rest.split('\n').next().unwrap_or("");
    match line.find('`') {
        Some(close) => {
            let run = line[close..].bytes().take_while(|&b| b == b'`').count();
            close + run
        }
        None => 0,
    }
}

/// Span ids of one trace, read straight from the span tables.
fn span_ids(ds: &Dataset, trace_id: &str) -> HashSet<String> {
    let mut out = HashSet::new();
    let Some(t) = ds.trace(trace_id) else {
        return out;
    };
    for part in &t.parts {
        let Ok(table) = ds.span_table(part.segment) else {
            continue;
        };
        for &row in &part.rows {
            if let Some((batch, i)) = table.locate(row) {
                if let Ok(c) = SpanColumns::new(batch) {
                    out.insert(c.span_id.value(i).to_string());
                }
            }
        }
    }
    out
}

/// Finds every `[trace:ID]` and `[span:TRACE_ID:SPAN_ID]` citation in `markdown` (grouped
/// ones, `[trace:A, trace:B]`, are first written as single citations), checks
/// that each exists in `ds`, and returns the report with each unresolved one flagged as
/// `[trace:ID] ⚠ not in dataset` (never silently kept), plus counts. Citations already
/// followed by the flag are not flagged twice, so the check can run again on its own output.
pub fn check_citations(markdown: &str, ds: &Dataset) -> CitationCheck {
    let markdown = &*single_citations(markdown);
    let mut resolver = Resolver {
        ds,
        spans: HashMap::new(),
    };
    let mut citations: Vec<Citation> = Vec::new();
    let mut index: HashMap<&str, usize> = HashMap::new();
    let mut out = String::with_capacity(markdown.len() + 64);
    let mut last = 0;
    let (mut total, mut valid, mut unknown) = (0, 0, 0);
    for caps in CITATION.captures_iter(markdown) {
        let whole = caps.get(0).expect("group 0");
        let text = whole.as_str();
        let exists = match index.get(text) {
            Some(&k) => {
                citations[k].occurrences += 1;
                citations[k].exists
            }
            None => {
                let body = &caps[2];
                let c = if &caps[1] == "trace" {
                    Citation {
                        kind: CitationKind::Trace,
                        text: text.to_string(),
                        trace_id: body.to_string(),
                        span_id: None,
                        occurrences: 1,
                        exists: resolver.has_trace(body),
                    }
                } else {
                    let (trace_id, span_id, exists) = resolver.resolve_span(body);
                    Citation {
                        kind: CitationKind::Span,
                        text: text.to_string(),
                        trace_id,
                        span_id: Some(span_id),
                        occurrences: 1,
                        exists,
                    }
                };
                let exists = c.exists;
                index.insert(text, citations.len());
                citations.push(c);
                exists
            }
        };
        total += 1;
        // A citation written as a Markdown link, `[trace:ID](url)`, is flagged after the
        // link: between its two halves the flag would break it. One inside inline code
        // is flagged after the code, where the flag shows as text rather than code.
        let mut end = whole.end() + link_target_len(&markdown[whole.end()..]);
        let line_start = markdown[..whole.start()].rfind('\n').map_or(0, |i| i + 1);
        end += code_span_rest_len(&markdown[line_start..whole.start()], &markdown[end..]);
        out.push_str(&markdown[last..end]);
        last = end;
        if exists {
            valid += 1;
        } else {
            unknown += 1;
            if !markdown[last..].starts_with(UNKNOWN_CITATION_FLAG) {
                out.push_str(UNKNOWN_CITATION_FLAG);
            }
        }
    }
    out.push_str(&markdown[last..]);
    CitationCheck {
        markdown: out,
        citations,
        total,
        valid,
        unknown,
    }
}
