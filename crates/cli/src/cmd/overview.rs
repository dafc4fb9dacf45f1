//! `halo overview`: what is in the dataset.

use clap::Args;

use super::dataset::DatasetArgs;
use super::filters::FilterArgs;
use crate::exit::{Failure, OK};
use crate::render;

/// Summarize the dataset (or the traces the filters select).
#[derive(Debug, Args)]
#[command(
    after_help = "Examples:\n  halo overview traces.jsonl\n  halo overview traces.jsonl --has-errors --json"
)]
pub(crate) struct OverviewArgs {
    #[command(flatten)]
    pub(crate) dataset: DatasetArgs,
    #[command(flatten)]
    pub(crate) filters: FilterArgs,
}

pub(crate) fn run(args: &OverviewArgs) -> Result<u8, Failure> {
    let ds = args.dataset.open(false)?;
    let o = halo_query::overview(&ds, &args.filters.filters(), args.filters.budget())?;
    if args.dataset.options.json {
        render::json(&o)?;
    } else {
        render::text(&render::human::overview(&o))?;
    }
    Ok(OK)
}
