//! `halo count`: how many traces the filters select.

use clap::Args;

use super::dataset::DatasetArgs;
use super::filters::FilterArgs;
use crate::exit::{Failure, OK};
use crate::render;

/// Count the traces the filters select.
#[derive(Debug, Args)]
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
        if let Some(scan) = count.scan.as_ref().filter(|s| !s.complete) {
            s.push_str(&format!(
                "\nnote: partial: the scan stopped at the time budget after {} of {}; raise --time-budget",
                crate::render::table::bytes(scan.scanned_bytes),
                crate::render::table::bytes(scan.total_bytes)
            ));
        }
        render::text(&s)?;
    }
    Ok(OK)
}
