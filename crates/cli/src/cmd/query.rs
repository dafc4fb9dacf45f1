//! `halo query`: list traces with filters, sorted and paged.

use clap::Args;
use halo_query::{QueryArgs, SortKey};

use super::dataset::DatasetArgs;
use super::filters::FilterArgs;
use crate::exit::{Failure, OK};
use crate::render;

/// List the traces the filters select.
#[derive(Debug, Args)]
#[command(
    after_help = "Examples:\n  halo query traces.jsonl --has-errors --sort duration --limit 20\n  halo query traces.jsonl --tool-name spotify__login --has-tool-errors --json\n  halo query runs/ --regex 'unexpected keyword' --start-time-gte 2026-04-23"
)]
pub(crate) struct QueryCmdArgs {
    #[command(flatten)]
    pub(crate) dataset: DatasetArgs,
    #[command(flatten)]
    pub(crate) filters: FilterArgs,
    /// Order by start, duration, tokens, errors or spans.
    #[arg(long, default_value = "start", value_name = "KEY")]
    pub(crate) sort: SortKey,
    /// Smallest first (default for start).
    #[arg(long, conflicts_with = "desc")]
    pub(crate) asc: bool,
    /// Largest first (default for duration, tokens, errors, spans).
    #[arg(long)]
    pub(crate) desc: bool,
    /// Traces per page (1-500).
    #[arg(long, default_value_t = 20)]
    pub(crate) limit: usize,
    /// Traces to skip.
    #[arg(long, default_value_t = 0)]
    pub(crate) offset: usize,
}

pub(crate) fn run(args: &QueryCmdArgs) -> Result<u8, Failure> {
    let ds = args
        .dataset
        .open_scanning_if(args.filters.regex_pattern.is_some())?;
    let descending = if args.asc {
        Some(false)
    } else if args.desc {
        Some(true)
    } else {
        None
    };
    let q = QueryArgs {
        filters: args.filters.filters(),
        limit: args.limit,
        offset: args.offset,
        sort: args.sort,
        descending,
    };
    let list = halo_query::query_traces(&ds, &q, args.filters.budget())?;
    if args.dataset.options.json {
        render::json(&list)?;
    } else {
        render::text(&render::human::trace_list(&list))?;
    }
    Ok(OK)
}
