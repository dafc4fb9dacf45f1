//! The halo-rs query API: what users and agents ask of a trace dataset.
//!
//! Every operation here is a plain function over a [`halo_index::Dataset`] that returns a
//! plain, serializable struct with a `schema_version`. The CLI prints these structs (as
//! tables, or as `--json`), and the RLM engine hands the same structs to its agents as tool
//! results, so people, scripts and models see one vocabulary. Names follow the reference
//! HALO tools: [`overview`] is `get_dataset_overview`, [`query_traces`], [`count_traces`],
//! [`view_trace`], [`view_spans`], [`search_trace`], [`search_span`]; [`render_trace`] and
//! [`grep`] are halo-rs additions.
//!
//! Only a `regex_pattern` filter, search and grep read span JSON; everything else answers
//! from the index's per-trace rollups. Dataset-wide scans run in parallel over memory-mapped
//! data within a [`ScanBudget`] and say when they stopped early ([`ScanInfo`]).
//!
//! ```no_run
//! use halo_index::{Dataset, NoProgress, OpenOptions};
//! use halo_query::{count_traces, ScanBudget, TraceFilters};
//!
//! let ds = Dataset::open(&["traces.jsonl".into()], &OpenOptions::default(), &NoProgress)?;
//! let failing = TraceFilters { has_errors: Some(true), ..Default::default() };
//! println!("{} failing traces", count_traces(&ds, &failing, ScanBudget::default())?.total);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

#![deny(missing_docs)]

mod citations;
mod context_window;
mod filter;
mod grep;
mod hit_traces;
mod line_prefilter;
mod list;
mod overview;
mod records;
mod render;
mod scan;
mod search;
mod select;
mod select_ids;
mod view;

pub use citations::{
    check_citations, Citation, CitationCheck, CitationKind, UNKNOWN_CITATION_FLAG,
};
pub use filter::TraceFilters;
pub use grep::{grep, GrepMatch, GrepResult, GREP_SCHEMA_VERSION};
pub use list::{
    count_traces, query_traces, QueryArgs, SortKey, TraceCount, TraceList, TraceRow, TraceTool,
    MAX_LIMIT, TRACE_COUNT_SCHEMA_VERSION, TRACE_LIST_SCHEMA_VERSION,
};
pub use overview::{
    overview, Distribution, ErrorGroup, NameCount, Overview, ToolStats, OVERVIEW_PROBLEMS,
    OVERVIEW_SCHEMA_VERSION, SAMPLE_TRACE_IDS, TAXONOMY_GROUPS,
};
pub use records::{find_trace, full_span, raw_span_json, spans_of, SpanRecord};
pub use render::render_trace;
pub use scan::{ScanBudget, ScanInfo, StopReason};
pub use search::{
    search_span, search_trace, SearchMatch, SearchResult, SearchSpanArgs, SearchTraceArgs,
    DEFAULT_CONTEXT_CHARS, DEFAULT_MAX_MATCHES, MAX_CONTEXT_CHARS, MAX_MATCHES, MAX_MATCH_CHARS,
    SEARCH_SCHEMA_VERSION,
};
pub use select_ids::select_trace_ids;
pub use view::{
    view_spans, view_trace, OversizedSummary, SpanView, TraceView, ViewSpansArgs, ViewTraceArgs,
    MAX_SPANS_PER_VIEW, OVERSIZED_BYTES, VIEW_SCHEMA_VERSION, VIEW_SPANS_VALUE_CAP,
    VIEW_TRACE_VALUE_CAP,
};

/// Why a question could not be answered.
#[derive(Debug, thiserror::Error)]
pub enum QueryError {
    /// No trace has this id.
    #[error("no trace with id {0:?} in the dataset")]
    UnknownTrace(String),
    /// The trace has no span with this id.
    #[error("trace {trace_id:?} has no span with id {span_id:?}")]
    UnknownSpan {
        /// The trace.
        trace_id: String,
        /// The span.
        span_id: String,
    },
    /// The pattern is not a valid regular expression.
    #[error("invalid regex {pattern:?}: {message}")]
    BadRegex {
        /// The pattern.
        pattern: String,
        /// Why.
        message: String,
    },
    /// An argument is out of range or malformed.
    #[error("invalid {name}: {message}")]
    BadArgument {
        /// The argument.
        name: String,
        /// Why.
        message: String,
    },
    /// The source file changed since it was indexed.
    #[error("the source changed since it was indexed (line {0} no longer holds the span); the index is marked out of date: run the command again to index the file again")]
    SourceChanged(u64),
    /// The index could not be read.
    #[error(transparent)]
    Index(#[from] halo_index::IndexError),
    /// A bug.
    #[error("internal error: {0}")]
    Internal(String),
}

/// The most characters of a pattern an error quotes.
const QUOTED_PATTERN_CHARS: usize = 200;

impl QueryError {
    /// The error of a pattern that does not compile, saying why. A long pattern is quoted
    /// by its head, and the parser's message, which repeats the pattern above a caret, by
    /// its last line (the reason): a 2 MB pattern echoed whole pushed the reason out of
    /// what an agent reads.
    pub(crate) fn bad_regex(pattern: &str, message: &str) -> QueryError {
        let long = pattern.chars().nth(QUOTED_PATTERN_CHARS).is_some();
        let message = match long {
            true => message
                .trim_end()
                .lines()
                .last()
                .unwrap_or(message)
                .to_owned(),
            false => message.to_owned(),
        };
        QueryError::BadRegex {
            pattern: halo_trace::clip(pattern, QUOTED_PATTERN_CHARS).into_owned(),
            message,
        }
    }
}
