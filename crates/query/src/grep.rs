//! `halo grep`: a regex over the whole dataset, with file:line, trace and span for each hit.
//!
//! The scan finds matching lines. A canonical line is one span, so one entry. An OTLP line
//! holds the spans of possibly many traces: it gives one entry per trace with a span whose
//! own JSON matches (as `search` and `--regex-pattern` match spans), at the first such span
//! of that trace on the line; a line where no span matches on its own (the match is in the
//! resource, say) gives one entry, as a canonical line does.

use std::collections::HashSet;

use halo_index::Dataset;
use serde::Serialize;

use crate::filter::compile_regex;
use crate::hit_traces::HitTraces;
use crate::scan::{scan, ScanBudget, ScanInfo};
use crate::QueryError;

/// Version of the [`GrepResult`] JSON. 3: an OTLP line gives one entry per trace with a
/// matching span (2 gave one entry per line), and each entry names its `span_id`.
pub const GREP_SCHEMA_VERSION: u32 = 3;

/// One match: a matching line, or on an OTLP line one trace with a matching span.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct GrepMatch {
    /// Source file.
    pub file: String,
    /// 1-based line.
    pub line: u64,
    /// Trace of the matching span.
    pub trace_id: Option<String>,
    /// The matching span (`None` for a line that holds no span).
    pub span_id: Option<String>,
    /// The matched text.
    #[serde(rename = "match")]
    pub matched: String,
    /// The match with context around it (from the line, so it may reach into the
    /// neighbouring spans of an OTLP line).
    pub context: String,
    /// Byte offset of the match in `context` (not in the JSON: renderers use it to mark
    /// the match).
    #[serde(skip)]
    pub context_offset: usize,
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
    /// Whether the list was cut at `max_matches` (more matching lines, or more traces on a
    /// listed OTLP line, exist).
    pub truncated: bool,
    /// Matching lines listed; `matches` has one entry for each, or more for an OTLP line
    /// with matching spans of several traces, and at most `max_matches` entries in all.
    pub listed_lines: u64,
    /// The matches, in dataset order (on one line, in the order of their spans).
    pub matches: Vec<GrepMatch>,
    /// What the scan covered.
    pub scan: ScanInfo,
}

/// The match, its context, and where the match starts in the context.
fn around(line: &[u8], m: std::ops::Range<usize>, context: usize) -> (String, String, usize) {
    let full = String::from_utf8_lossy(&line[m.clone()]);
    // Cut like a search's match: `.*` on a line of a 50 MB value matched all of it.
    let (matched, _) = crate::search::shown_match(&full, 0, full.len());
    let window = crate::context_window::context_window(line, m.clone(), context);
    let before = String::from_utf8_lossy(&line[window.start..m.start]);
    let after = String::from_utf8_lossy(&line[m.end..window.end]);
    (
        matched.clone(),
        format!("{before}{matched}{after}"),
        before.len(),
    )
}

/// Counts the lines before each listed match, carrying on from the previous one: the
/// matches come in dataset order, so the listing reads each segment's bytes once instead
/// of once per match (which made a listing's cost grow with how far into a file its
/// matches were).
#[derive(Default)]
struct LineCounter {
    /// The segment, the byte counted up to, and the newlines before it.
    at: Option<(usize, usize, u64)>,
}

impl LineCounter {
    /// The newlines between `start` (the segment's first byte) and `pos`.
    fn newlines_before(&mut self, segment: usize, bytes: &[u8], start: usize, pos: usize) -> u64 {
        let (from, before) = match self.at {
            Some((s, at, n)) if s == segment && at <= pos => (at, n),
            _ => (start, 0),
        };
        let n = before + memchr::memchr_iter(b'\n', &bytes[from..pos]).count() as u64;
        self.at = Some((segment, pos, n));
        n
    }
}

/// One entry to list: its ids and its match, as a byte range of the segment's data.
struct Entry {
    trace_id: Option<String>,
    span_id: Option<String>,
    matched: std::ops::Range<usize>,
}

/// Finds the first `max_matches` matching lines across the dataset, with every trace that
/// has a matching span on each.
pub fn grep(
    ds: &Dataset,
    pattern: &str,
    max_matches: usize,
    context_chars: usize,
    budget: ScanBudget,
) -> Result<GrepResult, QueryError> {
    crate::search::check_context(context_chars)?;
    let regex = compile_regex(pattern)?;
    let limit = max_matches.max(1);
    // Lines are found with the prefilter, which is the pattern itself unless it has
    // assertions (`^`, `$`, `\b`): those may hold at a span's edge inside an OTLP line and
    // not in the line around it, so each line found is then checked span by span. A
    // prefilter that differs from the pattern can find lines that do not match, so the
    // scan cannot stop at a count of them.
    let prefilter = crate::line_prefilter::line_prefilter(&regex)?;
    let exact = prefilter.as_str() == regex.as_str();
    let wanted = if exact {
        limit.saturating_add(1)
    } else {
        usize::MAX
    };
    let (found, mut info) = scan(ds, &prefilter, budget, wanted)?;
    let mut traces = HitTraces::new(ds);
    let mut hits = Vec::new();
    // Lines past the list that the exact scan found: they match, and are only counted.
    let mut unlisted = 0u64;
    for h in found {
        if hits.len() > limit {
            if exact {
                unlisted += 1;
                continue;
            }
            // Checking every other line the prefilter found, span by span, would cost
            // what a listing of all of them costs: stop at enough, as an exact scan does
            // (the count is then a lower bound, the same on every run).
            info.complete = false;
            info.stopped_by = Some(crate::scan::StopReason::MaxMatches);
            break;
        }
        let data = ds.segment_data(h.segment)?;
        let bytes = data.bytes();
        let line_range = h.line_start..h.line_end;
        let line = &bytes[line_range.clone()];
        let mut entries = Vec::new();
        let otlp = halo_trace::looks_like_otlp(line);
        if otlp {
            let mut seen = HashSet::new();
            for hit in traces.matching_spans(h.segment, bytes, line_range.clone(), &regex)? {
                if seen.insert(hit.trace_id.clone()) {
                    entries.push(Entry {
                        trace_id: Some(hit.trace_id),
                        span_id: Some(hit.span_id),
                        // A span's match lies inside the span, so inside the line.
                        matched: hit.matched,
                    });
                }
            }
        }
        if entries.is_empty() {
            // The line as a whole (a canonical span, or a match outside every span).
            let Some(m) = regex.find(line) else {
                continue;
            };
            let matched = h.line_start + m.start()..h.line_start + m.end();
            // On an OTLP line no span matches on its own here: the match is in the
            // resource, or runs from one span into the next; it belongs to no span.
            let ids = match otlp {
                true => None,
                false => traces.at(h.segment, bytes, line_range, matched.start, &regex)?,
            };
            entries.push(Entry {
                trace_id: ids.as_ref().map(|i| i.trace_id.clone()),
                span_id: ids.map(|i| i.span_id),
                matched,
            });
        }
        hits.push((h, entries));
    }
    let matching_lines = hits.len() as u64 + unlisted;
    let mut truncated = matching_lines > limit as u64;
    let mut listed_lines = 0u64;
    let mut matches = Vec::new();
    let mut lines = LineCounter::default();
    for (h, mut entries) in hits.into_iter().take(limit) {
        if matches.len() >= limit {
            // A wide OTLP line filled the list: the cap holds for entries too.
            truncated = true;
            break;
        }
        let data = ds.segment_data(h.segment)?;
        let seg = ds.segment_info(h.segment);
        let bytes = data.bytes();
        let line = &bytes[h.line_start..h.line_end];
        let line_no = seg.first_line
            + lines.newlines_before(
                h.segment as usize,
                bytes,
                seg.bytes.start as usize,
                h.line_start,
            );
        listed_lines += 1;
        if entries.len() > limit - matches.len() {
            truncated = true;
            entries.truncate(limit - matches.len());
        }
        for e in entries {
            let local = e.matched.start - h.line_start..e.matched.end - h.line_start;
            let (matched, context, context_offset) = around(line, local, context_chars);
            matches.push(GrepMatch {
                file: seg.source.display().to_string(),
                line: line_no,
                trace_id: e.trace_id,
                span_id: e.span_id,
                matched,
                context,
                context_offset,
            });
        }
    }
    Ok(GrepResult {
        schema_version: GREP_SCHEMA_VERSION,
        pattern: pattern.to_string(),
        matching_lines,
        truncated,
        listed_lines,
        matches,
        scan: info,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Counting on from the previous match gives what counting from the segment's start
    /// gives, across segments and when a match comes before the last one.
    #[test]
    fn lines_counted_on_from_the_last_match_match_a_count_from_the_start() {
        let bytes = b"a\nbb\nccc\ndddd\neeeee\n";
        let from_start = |start: usize, pos: usize| {
            memchr::memchr_iter(b'\n', &bytes[start..pos]).count() as u64
        };
        let mut counter = LineCounter::default();
        for (segment, start, pos) in [
            (0, 0, 0),
            (0, 0, 5),
            (0, 0, 9),
            (0, 0, 9),
            (1, 5, 14),
            (0, 0, 2),
            (0, 0, 20),
        ] {
            assert_eq!(
                counter.newlines_before(segment, bytes, start, pos),
                from_start(start, pos),
                "segment {segment}, {start}..{pos}"
            );
        }
    }

    #[test]
    fn context_never_cuts_a_character_in_half() {
        let line = "ab🙂x🙂cd".as_bytes();
        let at = line.iter().position(|&b| b == b'x').unwrap();
        for context in 0..6 {
            let (matched, ctx, _) = around(line, at..at + 1, context);
            assert_eq!(matched, "x");
            assert!(!ctx.contains('\u{FFFD}'), "{context}: {ctx}");
            assert!(ctx.contains('x'));
        }
    }
}
