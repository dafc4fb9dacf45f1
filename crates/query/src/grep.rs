//! `halo grep`: a regex over the whole dataset, with file:line, trace and span for each hit.

use halo_index::Dataset;
use serde::Serialize;

use crate::filter::compile_regex;
use crate::hit_traces::HitTraces;
use crate::scan::{scan, ScanBudget, ScanInfo};
use crate::QueryError;

/// Version of the [`GrepResult`] JSON.
pub const GREP_SCHEMA_VERSION: u32 = 2;

/// One matching line.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct GrepMatch {
    /// Source file.
    pub file: String,
    /// 1-based line.
    pub line: u64,
    /// Trace of the matching span.
    pub trace_id: Option<String>,
    /// The matched text.
    #[serde(rename = "match")]
    pub matched: String,
    /// The match with context around it.
    pub context: String,
}

/// The answer of `halo grep`.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct GrepResult {
    /// [`GREP_SCHEMA_VERSION`].
    pub schema_version: u32,
    /// The pattern.
    pub pattern: String,
    /// Matching lines in the scanned part of the data: all of them when `scan.complete`;
    /// when the scan stopped at enough matches (`scan.stopped_by`), a lower bound that is
    /// the same on every run.
    pub matching_lines: u64,
    /// Whether the list was cut at `max_matches` (more matching lines exist).
    pub truncated: bool,
    /// The matches, in dataset order.
    pub matches: Vec<GrepMatch>,
    /// What the scan covered.
    pub scan: ScanInfo,
}

fn around(line: &[u8], m: std::ops::Range<usize>, context: usize) -> (String, String) {
    let text = String::from_utf8_lossy(line);
    let matched = String::from_utf8_lossy(&line[m.clone()]).into_owned();
    let from = m.start.saturating_sub(context);
    let to = (m.end + context).min(line.len());
    let ctx = String::from_utf8_lossy(&line[from..to]).into_owned();
    drop(text);
    (matched, ctx)
}

/// Finds up to `max_matches` matching lines across the dataset.
pub fn grep(
    ds: &Dataset,
    pattern: &str,
    max_matches: usize,
    context_chars: usize,
    budget: ScanBudget,
) -> Result<GrepResult, QueryError> {
    let regex = compile_regex(pattern)?;
    let limit = max_matches.max(1);
    let (hits, info) = scan(ds, &regex, budget, limit + 1)?;
    let truncated = hits.len() > limit;
    let mut matches = Vec::new();
    let mut traces = HitTraces::new(ds);
    for h in hits.iter().take(limit) {
        let data = ds.segment_data(h.segment)?;
        let seg = ds.segment_info(h.segment);
        let bytes = data.bytes();
        let line = &bytes[h.line_start..h.line_end];
        let local = h.matched.start - h.line_start..h.matched.end - h.line_start;
        let line_no = seg.first_line
            + memchr::memchr_iter(b'\n', &bytes[seg.bytes.start as usize..h.line_start]).count()
                as u64;
        let (matched, context) = around(line, local.clone(), context_chars);
        matches.push(GrepMatch {
            file: seg.source.display().to_string(),
            line: line_no,
            trace_id: traces.at(
                h.segment,
                bytes,
                h.line_start..h.line_end,
                h.matched.start,
                &regex,
            )?,
            matched,
            context,
        });
    }
    Ok(GrepResult {
        schema_version: GREP_SCHEMA_VERSION,
        pattern: pattern.to_string(),
        matching_lines: hits.len() as u64,
        truncated,
        matches,
        scan: info,
    })
}
