//! `halo search`: a regex inside one trace (or one span).

use clap::Args;
use halo_query::{SearchSpanArgs, SearchTraceArgs};

use super::dataset::DatasetOptions;
use crate::exit::{Failure, OK};
use crate::render;

/// Find a regex in one trace's raw span JSON.
#[derive(Debug, Args)]
#[command(
    override_usage = "halo search [OPTIONS] TRACE_PATH... TRACE_ID PATTERN",
    after_help = "Examples:\n  \
halo search traces.jsonl TRACE_ID 'STATUS_CODE_ERROR|timeout'\n  \
halo search traces.jsonl TRACE_ID 'unexpected keyword' --span SPAN_ID"
)]
pub(crate) struct SearchArgs {
    /// Trace files and directories (the dataset), then TRACE_ID and PATTERN.
    #[arg(required = true, num_args = 1.., value_name = "TRACE_PATH... TRACE_ID PATTERN")]
    pub(crate) words: Vec<String>,
    /// Search only this one span (to search several, search the trace, or once per span).
    #[arg(long = "span", value_name = "SPAN_ID")]
    pub(crate) span: Option<String>,
    /// Characters of context on each side.
    #[arg(long, value_name = "CHARS", default_value_t = halo_query::DEFAULT_CONTEXT_CHARS)]
    pub(crate) context_chars: usize,
    /// Most matches to show (at most 500; the total is always counted).
    #[arg(long, value_name = "N", default_value_t = halo_query::DEFAULT_MAX_MATCHES)]
    pub(crate) max_matches: usize,
    /// Matches to pass over first: the next page starts at the `--offset` the last one
    /// names.
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub(crate) offset: usize,
    #[command(flatten)]
    pub(crate) options: DatasetOptions,
}

pub(crate) fn run(args: &SearchArgs) -> Result<u8, Failure> {
    let n = args.words.len();
    if n < 3 {
        return Err(Failure::usage(anyhow::anyhow!(
            "give the dataset, a trace id and a pattern: halo search TRACE_PATH... TRACE_ID PATTERN"
        )));
    }
    let (paths, trace_id, pattern) = (&args.words[..n - 2], &args.words[n - 2], &args.words[n - 1]);
    let dataset = super::dataset::DatasetArgs {
        paths: paths.iter().map(Into::into).collect(),
        options: args.options.clone(),
    };
    let ds = dataset.open(false)?;
    let result = match &args.span {
        None => halo_query::search_trace(
            &ds,
            &SearchTraceArgs {
                trace_id: trace_id.clone(),
                pattern: pattern.clone(),
                context_chars: args.context_chars,
                max_matches: args.max_matches,
                offset: args.offset,
            },
        )?,
        Some(span) => halo_query::search_span(
            &ds,
            &SearchSpanArgs {
                trace_id: trace_id.clone(),
                span_id: span.clone(),
                pattern: pattern.clone(),
                context_chars: args.context_chars,
                max_matches: args.max_matches,
                offset: args.offset,
            },
        )?,
    };
    if args.options.json {
        render::json(&result)?;
    } else {
        render::text(&render::human::search(&result))?;
    }
    Ok(OK)
}
