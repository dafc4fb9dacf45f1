//! `halo grep`: a regex across the whole dataset, bounded.

use std::time::Duration;

use clap::Args;
use halo_query::ScanBudget;

use super::dataset::DatasetOptions;
use crate::exit::{Failure, OK};
use crate::render;

/// Find a regex across every span of the dataset (bounded by --max-matches and --time-budget).
#[derive(Debug, Args)]
#[command(
    override_usage = "halo grep [OPTIONS] TRACE_PATH... PATTERN",
    after_help = "Examples:\n  \
halo grep traces.jsonl 'context_length_exceeded'\n  \
halo grep runs/ '(?i)rate.?limit' --max-matches 200 --json"
)]
pub(crate) struct GrepArgs {
    /// Trace files and directories (the dataset), then PATTERN.
    #[arg(required = true, num_args = 1.., value_name = "TRACE_PATH... PATTERN")]
    pub(crate) words: Vec<String>,
    /// Most matching lines to show.
    #[arg(long, value_name = "N", default_value_t = 50)]
    pub(crate) max_matches: usize,
    /// Characters of context on each side.
    #[arg(long, value_name = "CHARS", default_value_t = 80)]
    pub(crate) context_chars: usize,
    /// Stop after this many seconds and say the answer is partial.
    #[arg(long, value_name = "SECS", default_value_t = 30.0, value_parser = super::number_args::parse_seconds, allow_negative_numbers = true)]
    pub(crate) time_budget: f64,
    #[command(flatten)]
    pub(crate) options: DatasetOptions,
}

pub(crate) fn run(args: &GrepArgs) -> Result<u8, Failure> {
    let n = args.words.len();
    if n < 2 {
        return Err(Failure::usage(anyhow::anyhow!(
            "give the dataset and a pattern: halo grep TRACE_PATH... PATTERN"
        )));
    }
    if args.max_matches == 0 {
        return Err(Failure::usage(anyhow::anyhow!(
            "--max-matches must be at least 1"
        )));
    }
    let (paths, pattern) = (&args.words[..n - 1], &args.words[n - 1]);
    let dataset = super::dataset::DatasetArgs {
        paths: paths.iter().map(Into::into).collect(),
        options: args.options.clone(),
    };
    let ds = dataset.open_for_scan()?;
    let budget = ScanBudget {
        time: Duration::from_secs_f64(args.time_budget),
    };
    let result = halo_query::grep(&ds, pattern, args.max_matches, args.context_chars, budget)?;
    if args.options.json {
        render::json(&result)?;
    } else {
        render::text(&render::human::grep(&result))?;
    }
    Ok(OK)
}
