//! `halo count`: how many traces the filters select.

use clap::Args;

use super::dataset::DatasetArgs;
use super::filters::FilterArgs;
use crate::exit::{Failure, OK};
use crate::render;

/// Count the traces the filters select.
#[derive(Debug, Args)]
#[command(
    after_help = "Examples:\n  halo count traces.jsonl --has-errors\n  halo count traces.jsonl --regex 'unexpected keyword' --model-name gpt-5.4-mini"
)]
pub(crate) struct CountArgs {
    #[command(flatten)]
    pub(crate) dataset: DatasetArgs,
    #[command(flatten)]
    pub(crate) filters: FilterArgs,
}

pub(crate) fn run(args: &CountArgs) -> Result<u8, Failure> {
    let ds = args
        .dataset
        .open_scanning_if(args.filters.regex_pattern.is_some())?;
    let count = halo_query::count_traces(&ds, &args.filters.filters(), args.filters.budget())?;
    if args.dataset.options.json {
        render::json(&count)?;
    } else {
        let mut s = count.total.to_string();
        if let Some(note) = count
            .scan
            .as_ref()
            .and_then(crate::render::human::partial_scan_note)
        {
            s.push('\n');
            s.push_str(&note);
        }
        render::text(&s)?;
    }
    Ok(OK)
}
