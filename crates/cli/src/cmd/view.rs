//! `halo view`: one trace, span by span.

use clap::Args;
use halo_query::{ViewSpansArgs, ViewTraceArgs};

use super::dataset::DatasetOptions;
use crate::exit::{Failure, OK};
use crate::render;

/// Show a trace's spans with their attributes (values capped like the agents see them).
#[derive(Debug, Args)]
#[command(
    override_usage = "halo view [OPTIONS] TRACE_PATH... TRACE_ID",
    after_help = "Without --offset and --limit, every span is shown, or an outline of the trace when it is too \
large to show at once (past 150,000 bytes of JSON), with the page size that fits.\n\n\
Examples:\n  \
halo view traces.jsonl TRACE_ID\n  \
halo view traces.jsonl TRACE_ID --offset 20 --limit 10\n  \
halo view traces.jsonl TRACE_ID --span SPAN_ID --json"
)]
pub(crate) struct ViewArgs {
    /// Trace files and directories (the dataset), then the TRACE_ID to show.
    #[arg(required = true, num_args = 1.., value_name = "TRACE_PATH... TRACE_ID")]
    pub(crate) words: Vec<String>,
    /// Show only these spans (repeatable, up to 200; values capped at 16,384 characters
    /// instead of 4,096).
    #[arg(long = "span", value_name = "SPAN_ID")]
    pub(crate) spans: Vec<String>,
    /// Page through a large trace: spans to skip.
    #[arg(long, value_name = "N")]
    pub(crate) offset: Option<usize>,
    /// Page through a large trace: spans per page (at most 200).
    #[arg(long, value_name = "N")]
    pub(crate) limit: Option<usize>,
    #[command(flatten)]
    pub(crate) options: DatasetOptions,
}

pub(crate) fn run(args: &ViewArgs) -> Result<u8, Failure> {
    let n = args.words.len();
    if n < 2 {
        return Err(Failure::usage(anyhow::anyhow!(
            "give the dataset and a trace id: halo view TRACE_PATH... TRACE_ID (find ids with `halo query`)"
        )));
    }
    if !args.spans.is_empty() && (args.offset.is_some() || args.limit.is_some()) {
        return Err(Failure::usage(anyhow::anyhow!(
            "--offset and --limit page through a whole trace; --span shows the spans named, so use one or the other"
        )));
    }
    let (paths, trace_id) = (&args.words[..n - 1], &args.words[n - 1]);
    let dataset = super::dataset::DatasetArgs {
        paths: paths.iter().map(Into::into).collect(),
        options: args.options.clone(),
    };
    let ds = dataset.open(false)?;
    let view = if args.spans.is_empty() {
        halo_query::view_trace(
            &ds,
            &ViewTraceArgs {
                trace_id: trace_id.clone(),
                offset: args.offset,
                limit: args.limit,
            },
        )?
    } else {
        halo_query::view_spans(
            &ds,
            &ViewSpansArgs {
                trace_id: trace_id.clone(),
                span_ids: args.spans.clone(),
            },
        )?
    };
    if !args.spans.is_empty() && view.spans.is_empty() && view.oversized.is_none() {
        return Err(Failure::usage(anyhow::anyhow!(
            "trace {trace_id} has no span with id {} (list its spans with `halo view FILE {trace_id}`)",
            view.missing_span_ids.join(", ")
        )));
    }
    if args.options.json {
        render::json(&view)?;
    } else {
        render::text(&render::human::trace_view(&view))?;
    }
    Ok(OK)
}
