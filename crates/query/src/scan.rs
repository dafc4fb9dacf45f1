//! Dataset-wide regex scans over the raw span JSON, in parallel, within a time budget.
//!
//! The scan runs the regex over whole memory-mapped chunks rather than line by line (the
//! regex crate's literal prefilters then run at memory speed), and maps each match back to
//! the span whose JSON contains it: the canonical format has one span per line, OTLP lines
//! hold many spans whose byte ranges the index knows. A match is always confined to one line,
//! as if each line were searched alone.

use std::collections::HashSet;
use std::ops::Range;
use std::time::{Duration, Instant};

use halo_index::Dataset;
use rayon::prelude::*;
use regex::bytes::Regex;
use serde::Serialize;

use crate::QueryError;

/// How long a dataset scan may run before it stops and says so.
#[derive(Debug, Clone, Copy)]
pub struct ScanBudget {
    /// Wall-clock limit.
    pub time: Duration,
}

impl Default for ScanBudget {
    fn default() -> Self {
        ScanBudget {
            time: Duration::from_secs(30),
        }
    }
}

/// Why a scan stopped before the end of the data.
#[derive(Debug, Clone, Copy, Serialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum StopReason {
    /// The time budget ran out: answers are partial.
    TimeBudget,
    /// Enough matches were found (`grep --max-matches`): the rest was not needed.
    MaxMatches,
}

/// What a scan covered; `complete: false` means it stopped early (`stopped_by` says
/// why) and counts cover the scanned part only.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct ScanInfo {
    /// Whether the answer covers the whole data: every byte scanned and, for counts and
    /// queries, every matching line traced to its traces within the time budget.
    pub complete: bool,
    /// Why the scan stopped early, when it did.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stopped_by: Option<StopReason>,
    /// Bytes scanned.
    pub scanned_bytes: u64,
    /// Bytes in the dataset.
    pub total_bytes: u64,
    /// Time taken, in milliseconds.
    pub elapsed_ms: f64,
}

/// A line in which a scan found a match.
#[derive(Debug, Clone)]
pub(crate) struct ScanHit {
    pub(crate) segment: u32,
    pub(crate) line_start: usize,
    /// The end of the line's text: before its `\n`, and before the `\r` of a CRLF end.
    pub(crate) line_end: usize,
}

/// How many chunks a scan's data is cut into (within the size bounds below).
const CHUNKS_PER_SCAN: u64 = 32;
/// How many chunks a scan that stops at enough hits scans before it counts them.
const CHUNKS_PER_WAVE: usize = 8;

/// The smallest and largest piece of data one scan job covers.
const MIN_CHUNK: usize = 256 << 10;
const MAX_CHUNK: usize = 8 << 20;

/// Finds the lines of the dataset that match, calling `per_chunk_limit`-bounded collection.
/// Returns hits in dataset order and what was covered. `max_hits` stops early once enough
/// hits are found (`usize::MAX` for all); at most one hit per line is reported unless
/// `all_per_line`.
pub(crate) fn scan(
    ds: &Dataset,
    regex: &Regex,
    budget: ScanBudget,
    max_hits: usize,
) -> Result<(Vec<ScanHit>, ScanInfo), QueryError> {
    let mut datas = Vec::new();
    let mut ranges = Vec::new();
    for s in 0..ds.segment_count() {
        let info = ds.segment_info(s);
        let data = ds.segment_data(s)?;
        let len = data.bytes().len();
        ranges.push((info.bytes.start as usize).min(len)..(info.bytes.end as usize).min(len));
        datas.push(data);
    }
    let total: u64 = ranges.iter().map(|r| (r.end - r.start) as u64).sum();
    // Chunks small enough that every core gets several even on small data, and that a
    // scan after a few matches stops soon; large enough to keep per-chunk costs low. They
    // depend on the data alone, so a scan stopped at enough matches covers the same
    // prefix on every machine.
    let chunk = usize::try_from(total / CHUNKS_PER_SCAN)
        .unwrap_or(MAX_CHUNK)
        .clamp(MIN_CHUNK, MAX_CHUNK);
    let mut jobs = Vec::new();
    for (s, range) in ranges.into_iter().enumerate() {
        for c in halo_ingest::split_lines(datas[s].bytes(), range, chunk) {
            jobs.push((s as u32, s, c.bytes));
        }
    }
    // The budget is for scanning: making a gzip source's inflated copy (above, on first
    // use) does not eat into it.
    let started = Instant::now();
    let deadline = started + budget.time;
    // Chunks go in waves, in dataset order, and a scan that wants only so many hits stops
    // after the wave that found them: the hits are then every match in the scanned
    // prefix, the same on every run, however the threads were scheduled.
    // A scan that wants every hit has no reason to wait between waves.
    let wave = if max_hits == usize::MAX {
        jobs.len().max(1)
    } else {
        CHUNKS_PER_WAVE
    };
    let mut hits = Vec::new();
    let mut scanned = 0u64;
    let mut stopped_by = None;
    for jobs in jobs.chunks(wave) {
        if hits.len() >= max_hits {
            stopped_by = Some(StopReason::MaxMatches);
            break;
        }
        let results: Vec<Option<(Vec<ScanHit>, u64)>> = jobs
            .par_iter()
            .map(|(s, d, range)| {
                if Instant::now() > deadline {
                    return None;
                }
                let hits = scan_chunk(datas[*d].bytes(), range.clone(), regex, *s);
                Some((hits, (range.end - range.start) as u64))
            })
            .collect();
        // A chunk the deadline skipped ends the scanned prefix.
        for r in results {
            match r {
                Some((h, n)) if stopped_by.is_none() => {
                    scanned += n;
                    hits.extend(h);
                }
                Some(_) => {}
                None => stopped_by = Some(StopReason::TimeBudget),
            }
        }
        if stopped_by.is_some() {
            break;
        }
    }
    let info = ScanInfo {
        complete: stopped_by.is_none(),
        stopped_by,
        scanned_bytes: scanned,
        total_bytes: total,
        elapsed_ms: started.elapsed().as_secs_f64() * 1e3,
    };
    Ok((hits, info))
}

fn scan_chunk(data: &[u8], range: Range<usize>, regex: &Regex, segment: u32) -> Vec<ScanHit> {
    let mut hits = Vec::new();
    let hay = &data[..range.end];
    let mut pos = range.start;
    while pos < range.end {
        let Some(m) = regex.find_at(hay, pos) else {
            break;
        };
        let line_start = memchr::memrchr(b'\n', &hay[range.start..m.start()])
            .map_or(range.start, |i| range.start + i + 1);
        let line_end =
            memchr::memchr(b'\n', &hay[m.start()..]).map_or(range.end, |i| m.start() + i);
        // The `\r` of a CRLF line end is not part of the line's text.
        let text_end = match line_end > line_start && hay[line_end - 1] == b'\r' {
            true => line_end - 1,
            false => line_end,
        };
        // A match that ran past the end of its line's text (e.g. through `\s`) counts only
        // if the text alone matches.
        if m.end() <= text_end || regex.is_match(&hay[line_start..text_end]) {
            hits.push(ScanHit {
                segment,
                line_start,
                line_end: text_end,
            });
        }
        pos = line_end + 1;
    }
    hits
}

/// The ids of traces with a span matching `regex`, over the whole dataset.
pub(crate) fn matching_trace_ids(
    ds: &Dataset,
    regex: &Regex,
    budget: ScanBudget,
) -> Result<(HashSet<Vec<u8>>, ScanInfo), QueryError> {
    // Lines are found with the prefilter; each span in them is then matched on its own.
    let started = Instant::now();
    let prefilter = crate::line_prefilter::line_prefilter(regex)?;
    let (hits, mut info) = scan(ds, &prefilter, budget, usize::MAX)?;
    let mut ids = HashSet::new();
    let mut datas = Vec::new();
    for s in 0..ds.segment_count() {
        datas.push(ds.segment_data(s)?);
    }
    let mut traces = crate::hit_traces::HitTraces::new(ds);
    // Turning hits into traces is part of the answer's time: with millions of matching
    // lines it takes longer than the scan, and the budget holds for it too.
    let deadline = started + budget.time;
    for (n, h) in hits.iter().enumerate() {
        if n % 4096 == 4095 && Instant::now() > deadline {
            info.complete = false;
            info.stopped_by = Some(StopReason::TimeBudget);
            break;
        }
        let data = datas[h.segment as usize].bytes();
        for id in traces.matching(h.segment, data, h.line_start..h.line_end, regex)? {
            ids.insert(id.into_bytes());
        }
    }
    info.elapsed_ms = started.elapsed().as_secs_f64() * 1e3;
    Ok((ids, info))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_stay_within_a_line() {
        let data = b"{\"a\":\"foo\"}\n{\"b\":\"bar\"}\n";
        let re = Regex::new(r"foo\W+\{").unwrap();
        assert!(
            scan_chunk(data, 0..data.len(), &re, 0).is_empty(),
            "no match across the newline"
        );
        let re = Regex::new("bar").unwrap();
        let hits = scan_chunk(data, 0..data.len(), &re, 0);
        assert_eq!(hits.len(), 1);
        assert_eq!(hits[0].line_start, 12);
    }
}
