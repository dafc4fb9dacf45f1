//! halo-diagnose: offline, model-free diagnosis of agent traces.
//!
//! - [`diagnose`] runs deterministic detectors over every span of a [`Dataset`] (straight
//!   from the index's Arrow columns, in parallel) and groups what they see into ranked
//!   [`Finding`]s: tool errors by tool and masked error template, hallucinated tools,
//!   invalid tool arguments, repeated identical tool calls, refusals and refusal loops,
//!   turn-budget exhaustion, provider failures by kind and model, premature success, silent
//!   failure, and latency and token outliers per model and tool. One cause seen on several
//!   tools (or models) is one finding that lists them. A [`Diagnosis`] renders to
//!   Markdown ([`render_markdown`]) and JSON ([`Diagnosis::to_json`]).
//! - [`diff`] compares two diagnoses (before and after a harness change): per finding the
//!   rate before and after, Fisher's exact p-value and a verdict, plus whole-run numbers.
//! - [`check_citations`] verifies every `[trace:ID]` and `[span:TRACE:SPAN]` citation of a
//!   report (offline or from the RLM) against the dataset and flags the unknown ones; it is
//!   halo-query's checker, the same one the RLM engine uses.
//! - [`evaluate`] scores a diagnosis against ground-truth labels (trace-level recall and
//!   precision per mode), as the quality-bar test and benchmark do.
//!
//! ```no_run
//! use halo_index::{Dataset, NoProgress, OpenOptions};
//! let ds = Dataset::open(&["traces.jsonl".into()], &OpenOptions::default(), &NoProgress)?;
//! let d = halo_diagnose::diagnose(&ds, &halo_diagnose::DiagnoseOptions::default())?;
//! for f in &d.findings {
//!     println!("{:>5} traces  {}", f.trace_count, f.title);
//! }
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! Precedence keeps modes apart: a failing tool call is a hallucinated tool if the tool is
//! not declared (or the error says it does not exist), else invalid arguments if the error
//! is about arguments, else a tool error; a failing model call is turn exhaustion if it says
//! so, else a provider failure; a run whose final answer is a runtime's fixed "stopped at
//! the iteration limit" text (LangChain, CrewAI, AutoGen) is turn exhaustion without any
//! error status; outcome-based modes (premature success, silent failure)
//! only apply to runs without any error status. Premature success needs a claim of the
//! work done (an outcome marker, or a final answer saying so) and the work to have been
//! there: tools offered to the model, or called by at least a tenth of the agent's runs
//! (not half: a regression that passes half the runs must not vanish from a diff).

#![deny(missing_docs)]

mod describe;
mod detect;
mod diff;
mod evaluate;
mod model;
mod render;
mod scan;
mod signals;
pub mod stats;

use std::collections::HashSet;

use halo_index::{Dataset, IndexError};

pub use diff::{diff, DiffReport, FindingDiff, MetricDiff, Verdict, ALPHA, DIFF_SCHEMA_VERSION};
pub use evaluate::{evaluate, parse_labels, ModeScore};
// The one citation checker of halo-rs, shared with the RLM engine.
pub use halo_query::{
    check_citations, Citation, CitationCheck, CitationKind, UNKNOWN_CITATION_FLAG,
};
pub use model::{
    DatasetStats, Diagnosis, Example, Finding, FindingKey, Mode, ModeSummary, UnexplainedTrace,
    DIAGNOSIS_SCHEMA_VERSION,
};
pub use render::{counted, render_markdown, render_summary, thousands};

/// Why a dataset could not be diagnosed.
#[derive(Debug, thiserror::Error)]
pub enum DiagnoseError {
    /// The index could not be read.
    #[error(transparent)]
    Index(#[from] IndexError),
    /// A span table does not have the expected shape.
    #[error("span table is unreadable: {0}")]
    Corrupt(String),
}

/// Detector settings. The defaults are what `halo diagnose` uses.
#[derive(Debug, Clone)]
pub struct DiagnoseOptions {
    /// Identical consecutive tool calls (same tool, same arguments) that make a loop.
    pub repeat_threshold: usize,
    /// Refusals in one run that make a refusal loop.
    pub refusal_loop_threshold: usize,
    /// A span is an outlier above `median x outlier_factor` of its model/tool group ...
    pub outlier_factor: f64,
    /// ... and above `median + outlier_mads x 1.4826 x MAD` ...
    pub outlier_mads: f64,
    /// ... and above this floor for model-call latency (ms) ...
    pub min_llm_outlier_ms: f64,
    /// ... this floor for tool-call latency (ms) ...
    pub min_tool_outlier_ms: f64,
    /// ... and this floor for tokens per model call.
    pub min_outlier_tokens: f64,
    /// Groups with fewer measurements use the pooled statistics of all models (or tools).
    pub min_group_samples: usize,
    /// Example traces per finding (3-5 recommended).
    pub max_examples: usize,
    /// Only these traces (e.g. the ones an RLM filter selected); `None` is all.
    pub trace_ids: Option<HashSet<String>>,
}

impl Default for DiagnoseOptions {
    fn default() -> DiagnoseOptions {
        DiagnoseOptions {
            repeat_threshold: 3,
            refusal_loop_threshold: 3,
            outlier_factor: 8.0,
            outlier_mads: 15.0,
            min_llm_outlier_ms: 10_000.0,
            min_tool_outlier_ms: 1_500.0,
            min_outlier_tokens: 8_000.0,
            min_group_samples: 30,
            max_examples: 5,
            trace_ids: None,
        }
    }
}

/// Diagnoses the whole dataset (or `opts.trace_ids`) without a model.
///
/// Deterministic: the same dataset and options give the same findings in the same order.
pub fn diagnose(ds: &Dataset, opts: &DiagnoseOptions) -> Result<Diagnosis, DiagnoseError> {
    detect::run(ds, opts)
}
