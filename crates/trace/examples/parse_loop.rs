//! The parser's own speed, for work on it: line finding and parsing, then the same plus
//! the semantic facts, over one file held in memory, best of N passes each.
//!
//! ```text
//! cargo run --release -p halo-trace --example parse_loop -- FILE.jsonl [PASSES]
//! ```
//!
//! A whole index build takes minutes to compile and its figures move with the page cache
//! and fresh memory; this loop builds in seconds and measures only what the parser does.
//! Use a file of tens of MB (`halo-testdata --target-bytes 30000000`): larger ones measure
//! memory more than parsing.

use std::time::Instant;

#[global_allocator]
static ALLOCATOR: halo_allocator::Allocator = halo_allocator::Allocator;
halo_allocator::tune_for_batch_work_before_main!();

/// One pass over `data`; returns the spans read.
fn pass(data: &[u8], facts: bool) -> u64 {
    let mut spans = 0u64;
    let mut pos = 0;
    while pos < data.len() {
        let line = halo_trace::next_line(data, pos);
        pos = line.end + 1;
        let Ok(text) = line.text else { continue };
        let Ok(parsed) = halo_trace::parse_line_checked(text, line.control_free) else {
            continue;
        };
        for (span, _) in &parsed.spans {
            spans += 1;
            if facts {
                std::hint::black_box(halo_trace::SpanFacts::extract(span));
            }
        }
    }
    spans
}

fn main() -> Result<(), String> {
    let mut args = std::env::args().skip(1);
    let path = args.next().ok_or("usage: parse_loop FILE.jsonl [PASSES]")?;
    let passes: usize = match args.next() {
        Some(n) => n.parse().map_err(|e| format!("PASSES {n:?}: {e}"))?,
        None => 15,
    };
    let data = std::fs::read(&path).map_err(|e| format!("{path}: {e}"))?;
    let mut parse_only = None;
    for facts in [false, true] {
        let mut best = f64::MAX;
        let mut spans = 0;
        for _ in 0..passes.max(1) {
            let t = Instant::now();
            spans = pass(&data, facts);
            best = best.min(t.elapsed().as_secs_f64());
        }
        let per_span = |s: f64| s * 1e9 / spans.max(1) as f64;
        let what = if facts { "+ facts" } else { "lines + parse" };
        print!(
            "{what:<14} best {:6.2} ms, {:5.0} ns per span, {:.2} GB/s",
            best * 1e3,
            per_span(best),
            data.len() as f64 / best / 1e9
        );
        match parse_only {
            Some(p) => println!(" (facts alone {:.0} ns per span)", per_span(best - p)),
            None => println!(" ({spans} spans)"),
        }
        parse_only = Some(best);
    }
    Ok(())
}
