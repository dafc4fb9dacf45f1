//! `halo diagnose`: offline diagnosis, no model and no network.

use std::path::PathBuf;

use anyhow::Context;
use clap::Args;
use halo_diagnose::{check_citations, diagnose, render_markdown, render_summary};

use super::dataset::DatasetArgs;
use super::detectors::DetectorArgs;
use crate::exit::{Failure, OK};
use crate::render;

/// Find the failure modes of a dataset with deterministic detectors (no model, no key).
#[derive(Debug, Args)]
pub(crate) struct DiagnoseArgs {
    #[command(flatten)]
    pub(crate) dataset: DatasetArgs,
    /// Write the Markdown report (every finding with evidence cited as [trace:ID] and
    /// [span:TRACE:SPAN], a fix direction and a follow-up question) to FILE.
    #[arg(short = 'o', long, value_name = "FILE")]
    pub(crate) output: Option<PathBuf>,
    /// Findings listed in the terminal summary.
    #[arg(long, value_name = "N", default_value_t = crate::DEFAULT_TOP)]
    pub(crate) top: usize,
    #[command(flatten, next_help_heading = "Detector options")]
    pub(crate) detectors: DetectorArgs,
}

pub(crate) fn run(args: &DiagnoseArgs) -> Result<u8, Failure> {
    let opts = args.detectors.options().map_err(Failure::usage)?;
    let ds = args.dataset.open(false)?;
    if let Some(path) = &args.output {
        super::dataset::written_clear_of_sources(path, &[("the report", path)], &[&ds])?;
    }
    super::dataset::require_traces(&ds, "diagnose", &args.dataset.paths)?;
    let mut d = diagnose(&ds, &opts)?;
    // Commands in the report name the dataset the way the user did.
    d.sources = args
        .dataset
        .paths
        .iter()
        .map(|p| p.display().to_string())
        .collect();
    if let Some(dir) = &args.dataset.options.index_dir {
        d.command_options = vec!["--index-dir".into(), dir.display().to_string()];
    }
    let report = match &args.output {
        Some(path) => {
            // Our own citations always resolve; the check keeps that a guarantee.
            let checked = check_citations(&render_markdown(&d), &ds);
            std::fs::write(path, &checked.markdown)
                .with_context(|| format!("cannot write the report to {}", path.display()))?;
            Some(path.display().to_string())
        }
        None => None,
    };
    if args.dataset.options.json {
        render::json(&d)?;
    } else {
        render::text(&render_summary(&d, args.top, report.as_deref()))?;
    }
    Ok(OK)
}
