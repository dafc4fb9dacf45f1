//! Checking the citations of a report against the dataset.

use std::collections::{HashMap, HashSet};
use std::sync::OnceLock;

use halo_index::Dataset;
use regex::Regex;

/// Marker appended after a citation that does not resolve.
pub const UNVERIFIED_MARK: &str = "⚠ unverified citation";

fn citation_re() -> &'static Regex {
    static RE: OnceLock<Regex> = OnceLock::new();
    RE.get_or_init(|| {
        Regex::new(r"\[(trace|span):([^\]\s:]+)(?::([^\]\s]+))?\]").expect("static regex")
    })
}

/// A report with its citations checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckedReport {
    /// The report, with [`UNVERIFIED_MARK`] after every unknown citation and a
    /// closing note listing them.
    pub text: String,
    /// The citations that do not resolve, as written.
    pub unverified: Vec<String>,
    /// Citations that resolve.
    pub verified: usize,
}

/// Checks every `[trace:ID]` and `[span:TRACE_ID:SPAN_ID]` in `report`.
pub fn check_citations(ds: &Dataset, report: &str) -> CheckedReport {
    let mut span_cache: HashMap<String, Option<HashSet<String>>> = HashMap::new();
    let mut out = String::with_capacity(report.len() + 64);
    let mut unverified = Vec::new();
    let mut verified = 0;
    let mut last = 0;
    for m in citation_re().captures_iter(report) {
        let whole = m.get(0).expect("group 0");
        let kind = &m[1];
        let trace_id = &m[2];
        let span_id = m.get(3).map(|s| s.as_str());
        let ok = match (kind, span_id) {
            ("trace", None) => ds.trace(trace_id).is_some(),
            ("span", Some(span_id)) => span_cache
                .entry(trace_id.to_owned())
                .or_insert_with(|| {
                    let t = ds.trace(trace_id)?;
                    let spans = halo_query::spans_of(ds, t).ok()?;
                    Some(spans.into_iter().map(|s| s.span_id).collect())
                })
                .as_ref()
                .is_some_and(|set| set.contains(span_id)),
            _ => false,
        };
        out.push_str(&report[last..whole.end()]);
        last = whole.end();
        if ok {
            verified += 1;
        } else {
            out.push(' ');
            out.push_str(UNVERIFIED_MARK);
            unverified.push(whole.as_str().to_owned());
        }
    }
    out.push_str(&report[last..]);
    if !unverified.is_empty() {
        let mut uniq = unverified.clone();
        uniq.dedup();
        out.push_str(&format!(
            "\n\n---\n{UNVERIFIED_MARK}s: {} citation(s) in this report do not match any trace or span in the dataset: {}\n",
            unverified.len(),
            uniq.join(", ")
        ));
    }
    CheckedReport {
        text: out,
        unverified,
        verified,
    }
}
