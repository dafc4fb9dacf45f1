//! `--only stages`: what one core spends on each stage of an index build.
//!
//! The gzip target (index a `.gz` at 80% of single-core inflate speed) is a budget for
//! the whole per-span pipeline: with one core inflating, the others must parse as fast as
//! it inflates. These figures say where that budget goes, stage by stage, each measured
//! cumulatively on one thread so the differences are the cost of the stage alone.

use std::path::Path;
use std::time::Duration;

use halo_index::{Dataset, NoProgress, OpenOptions};

/// How much of the dataset the per-stage loops read: enough to be steady, little enough
/// to keep the section quick on a 1 GB file.
const SAMPLE_BYTES: usize = 256 << 20;

/// The stages, each including the ones before it.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Stage {
    /// Finding line ends (and control bytes) and checking UTF-8, in one pass.
    Lines,
    /// Reading each line's JSON into a span.
    Parse,
    /// Normalizing the span's attributes into its semantic facts.
    Facts,
}

/// Runs `stage` (and the ones before it) over `data` once; returns the spans seen.
fn run_stage(data: &[u8], stage: Stage) -> u64 {
    let mut spans = 0u64;
    let mut pos = 0;
    while pos < data.len() {
        let halo_trace::Line {
            end,
            text,
            control_free,
        } = halo_trace::next_line(data, pos);
        pos = end + 1;
        let Ok(line) = text else {
            continue;
        };
        if stage == Stage::Lines {
            spans += u64::from(!line.is_empty());
            continue;
        }
        let Ok(parsed) = halo_trace::parse_line_checked(line, control_free) else {
            continue;
        };
        for (span, _) in &parsed.spans {
            spans += 1;
            if stage >= Stage::Facts {
                std::hint::black_box(halo_trace::SpanFacts::extract(span));
            }
        }
    }
    spans
}

/// Prints the single-core throughput of each stage and of a whole build on one core.
pub(crate) fn stage_figures(data_path: &Path, runs: usize) -> Result<(), String> {
    let file = std::fs::File::open(data_path).map_err(|e| e.to_string())?;
    // SAFETY: the bench's own input, not modified while mapped.
    let map = unsafe { memmap2::Mmap::map(&file) }.map_err(|e| e.to_string())?;
    let sample = match map.len() <= SAMPLE_BYTES {
        true => &map[..],
        false => {
            // Cut on a line break so the last line is whole.
            let cut = map[..SAMPLE_BYTES]
                .iter()
                .rposition(|&b| b == b'\n')
                .map_or(map.len(), |i| i + 1);
            &map[..cut]
        }
    };
    let gbps = |d: Duration, bytes: usize| bytes as f64 / 1e9 / d.as_secs_f64();
    println!(
        "stages on one core, over the first {:.0} MB:",
        sample.len() as f64 / 1e6
    );
    let mut previous: Option<Duration> = None;
    for (stage, name) in [
        (Stage::Lines, "lines + UTF-8"),
        (Stage::Parse, "+ JSON to span"),
        (Stage::Facts, "+ semantic facts"),
    ] {
        let (t, spans) = crate::best(runs, || run_stage(sample, stage));
        let alone = previous.map_or(t, |p| t.saturating_sub(p));
        println!(
            "one core: {name:<17} {:>6.2} GB/s  (this stage: {:.2} CPU-s per GB, {:.0} ns per span)",
            gbps(t, sample.len()),
            alone.as_secs_f64() / (sample.len() as f64 / 1e9),
            alone.as_secs_f64() * 1e9 / spans.max(1) as f64,
        );
        previous = Some(t);
    }
    // The whole build (columns, rollups, the span table written) with one parsing thread.
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .build()
        .map_err(|e| e.to_string())?;
    let index_dir = std::env::temp_dir().join("halo-bench-stages-index");
    let options = OpenOptions {
        index_dir: Some(index_dir),
        force_rebuild: true,
        ..Default::default()
    };
    let paths = [data_path.to_path_buf()];
    let (wall, cores, built) =
        crate::busy(|| pool.install(|| Dataset::open(&paths, &options, &NoProgress).map(drop)));
    built.map_err(|e| e.to_string())?;
    println!(
        "one parser thread: whole index build {:.2} GB/s, {:.2} CPU-s per GB  {}",
        gbps(wall, map.len()),
        cores.unwrap_or(1.0) * wall.as_secs_f64() / (map.len() as f64 / 1e9),
        crate::cores_busy(cores)
    );
    Ok(())
}
