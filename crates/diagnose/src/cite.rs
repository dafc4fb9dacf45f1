//! Evidence checks: every cited trace and span must exist in the dataset.

use std::collections::{HashMap, HashSet};
use std::sync::LazyLock;

use halo_index::{Dataset, SpanColumns};
use regex::Regex;
use serde::{Deserialize, Serialize};

/// The flag appended to a citation that does not resolve.
pub const UNKNOWN_FLAG: &str = " ⚠ not in dataset";

static CITATION: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"\[(trace|span):([^\]\s]+)\]").expect("static regex"));

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
    /// The cited span id (span citations).
    pub span_id: Option<String>,
    /// How many times it occurs in the report.
    pub occurrences: usize,
    /// Whether it resolves in the dataset.
    pub exists: bool,
}

/// The result of [`check_citations`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CitationCheck {
    /// The report with every unresolved citation followed by [`UNKNOWN_FLAG`].
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

    /// The distinct citations that do not resolve.
    pub fn unknown_citations(&self) -> impl Iterator<Item = &Citation> {
        self.citations.iter().filter(|c| !c.exists)
    }
}

/// Span ids of one trace, read from the span tables.
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

/// Finds every `[trace:ID]` and `[span:TRACE_ID:SPAN_ID]` citation in `report_markdown`,
/// checks that each exists in `ds`, and returns the report with each unresolved one flagged
/// as `[trace:ID] ⚠ not in dataset` (never silently kept), plus counts. Already flagged
/// citations are not flagged twice, so the check can run again on its own output.
pub fn check_citations(report_markdown: &str, ds: &Dataset) -> CitationCheck {
    let mut spans_cache: HashMap<String, HashSet<String>> = HashMap::new();
    let mut exists_cache: HashMap<String, bool> = HashMap::new();
    let mut citations: Vec<Citation> = Vec::new();
    let mut index: HashMap<String, usize> = HashMap::new();
    let mut out = String::with_capacity(report_markdown.len() + 64);
    let mut last = 0;
    let (mut total, mut valid, mut unknown) = (0, 0, 0);
    for caps in CITATION.captures_iter(report_markdown) {
        let whole = caps.get(0).expect("group 0");
        let text = whole.as_str();
        let kind = if &caps[1] == "trace" {
            CitationKind::Trace
        } else {
            CitationKind::Span
        };
        let body = &caps[2];
        let (trace_id, span_id) = match kind {
            CitationKind::Trace => (body.to_string(), None),
            CitationKind::Span => match body.split_once(':') {
                Some((t, s)) => (t.to_string(), Some(s.to_string())),
                None => (body.to_string(), Some(String::new())),
            },
        };
        let exists = *exists_cache.entry(text.to_string()).or_insert_with(|| {
            if ds.trace(&trace_id).is_none() {
                return false;
            }
            match &span_id {
                None => true,
                Some(s) if s.is_empty() => false,
                Some(s) => spans_cache
                    .entry(trace_id.clone())
                    .or_insert_with(|| span_ids(ds, &trace_id))
                    .contains(s),
            }
        });
        total += 1;
        match index.get(text) {
            Some(&k) => citations[k].occurrences += 1,
            None => {
                index.insert(text.to_string(), citations.len());
                citations.push(Citation {
                    kind,
                    text: text.to_string(),
                    trace_id,
                    span_id,
                    occurrences: 1,
                    exists,
                });
            }
        }
        out.push_str(&report_markdown[last..whole.end()]);
        last = whole.end();
        if exists {
            valid += 1;
        } else {
            unknown += 1;
            if !report_markdown[last..].starts_with(UNKNOWN_FLAG) {
                out.push_str(UNKNOWN_FLAG);
            }
        }
    }
    out.push_str(&report_markdown[last..]);
    CitationCheck {
        markdown: out,
        citations,
        total,
        valid,
        unknown,
    }
}
