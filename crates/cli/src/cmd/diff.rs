//! `halo diff`: compare two runs (before and after a harness change).

use std::path::PathBuf;

use anyhow::Context;
use clap::Args;
use halo_diagnose::{diagnose, diff};

use super::dataset::{DatasetArgs, DatasetOptions};
use crate::exit::{Failure, GATE_FAILED, OK};
use crate::render;

/// Compare two runs: per failure mode and per finding the rate before and after, Fisher's
/// exact p-value and a verdict (fixed, improved, unchanged, worse, new; "gone, n.s." for a
/// finding that vanished on too few traces to be significant), plus error rate, turns,
/// tokens and durations.
#[derive(Debug, Args)]
#[command(
    after_help = "Examples:\n  halo diff before.jsonl after.jsonl -o diff.md\n  halo diff runs/before/ runs/after/ --fail-on worse,new"
)]
pub(crate) struct DiffArgs {
    /// The run before the change: a trace file, or a directory read as one dataset (put a
    /// run of several files, rotated logs say, in one directory).
    #[arg(value_name = "BEFORE")]
    pub(crate) before: PathBuf,
    /// The run after the change: a trace file, or a directory read as one dataset.
    #[arg(value_name = "AFTER")]
    pub(crate) after: PathBuf,
    /// Also write the diff as Markdown to FILE.
    #[arg(short = 'o', long, value_name = "FILE")]
    pub(crate) output: Option<PathBuf>,
    /// Changed findings listed in the terminal summary.
    #[arg(long, value_name = "N", default_value_t = 25)]
    pub(crate) top: usize,
    /// Exit with code 5 when any mode or finding gets one of these verdicts, for a CI gate
    /// (the diff is printed and written as usual): `--fail-on worse,new`.
    #[arg(long, value_name = "VERDICTS", value_delimiter = ',', value_parser = ["worse", "new"])]
    pub(crate) fail_on: Vec<String>,
    #[command(flatten, next_help_heading = "Detector options")]
    pub(crate) detectors: super::detectors::DetectorArgs,
    #[command(flatten)]
    pub(crate) options: DatasetOptions,
}

pub(crate) fn run(args: &DiffArgs) -> Result<u8, Failure> {
    // Both runs are diagnosed the same way, or the diff would compare the settings.
    let opts = args.detectors.options().map_err(Failure::usage)?;
    let open = |path: &PathBuf| {
        let dataset = DatasetArgs {
            paths: vec![path.clone()],
            options: args.options.clone(),
        };
        dataset.open(false)
    };
    let before_ds = open(&args.before)?;
    let after_ds = open(&args.after)?;
    if let Some(path) = &args.output {
        super::dataset::written_clear_of_sources(
            path,
            &[("the diff", path)],
            &[&before_ds, &after_ds],
        )?;
    }
    // A run whose exporter broke must not pass a CI gate as "unchanged".
    for (side, path, ds) in [
        ("before", &args.before, &before_ds),
        ("after", &args.after, &after_ds),
    ] {
        super::dataset::require_traces(
            ds,
            &format!("compare (the {side} run)"),
            std::slice::from_ref(path),
        )?;
    }
    let mut before = diagnose(&before_ds, &opts)?;
    let mut after = diagnose(&after_ds, &opts)?;
    before.sources = vec![args.before.display().to_string()];
    after.sources = vec![args.after.display().to_string()];
    let report = diff(&before, &after);
    if let Some(path) = &args.output {
        std::fs::write(path, report.to_markdown())
            .with_context(|| format!("cannot write the diff to {}", path.display()))?;
    }
    if args.options.json {
        render::json(&report)?;
    } else {
        let mut text = report.render_summary(args.top);
        if let Some(path) = &args.output {
            text.push_str(&format!("\nMarkdown diff: {}\n", path.display()));
        }
        render::text(&text)?;
    }
    let gate = report
        .modes
        .iter()
        .chain(&report.findings)
        .any(|row| args.fail_on.iter().any(|v| v == row.verdict.as_str()));
    Ok(if gate { GATE_FAILED } else { OK })
}
