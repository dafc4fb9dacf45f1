//! The halo-rs recursive language model (RLM) engine.
//!
//! A run diagnoses a trace dataset far too large for one context window. A
//! root agent (depth 0) investigates through tools over the trace index
//! (`halo_query`), delegates focused questions to subagents (`call_subagent`,
//! up to [`EngineConfig::max_depth`]) and ends with `final_answer(answer)`:
//! a Markdown report whose `[trace:ID]` / `[span:TRACE_ID:SPAN_ID]`
//! citations are checked against the dataset ([`check_citations`], the checker shared
//! with the offline diagnosis): unknown ones are flagged with [`UNKNOWN_CITATION_FLAG`]
//! and listed in a closing note.
//! Besides the trace tools, agents start from `get_failure_modes(filters)` (the offline
//! diagnosis of `halo_diagnose` over the selected traces, as a compact map) and can ask
//! `sql(query)` (read-only `halo_sql`, one engine per run, opened on first use).
//!
//! What the engine guarantees:
//! - **One concurrency cap for the whole run.** At most
//!   [`EngineConfig::max_parallel`] subagent model requests run at once. A
//!   subagent holds a slot only while its own model request runs, never while
//!   it waits for its children, so deep trees cannot deadlock. Fan-out is bounded
//!   too: one turn starts at most `max(max_parallel, 10)` subagents; the calls past
//!   that get an error result asking the model to batch them.
//! - **Only offered tools run.** A call of a tool not offered this turn (e.g.
//!   `call_subagent` withheld near the token budget) gets an error result naming the
//!   tools that are.
//! - **Bounded context.** Subagent answers and syntheses are cut at 40 000
//!   characters, the results of one turn together at 200 000 (each in proportion),
//!   and when the provider still reports an overflow the newest results move to the
//!   context store with their heads left in place; every original stays reachable
//!   with `get_context_item`.
//! - **Budgets end with a report, never silently.** Each agent has a turn
//!   budget announced every turn; when it runs out, the model is asked once
//!   more for its answer, and failing that a partial report is assembled from
//!   what was found. [`EngineConfig::max_total_tokens`] is a hard budget: near
//!   it the root is told to finish (only `final_answer` is offered), past it no
//!   request (agent, subagent, synthesis or compaction) is made and the partial
//!   report is returned. Requests on their way hold their estimated size against
//!   it, so agents side by side cannot all pass it at once. A response without
//!   token usage counts as characters / 4, with a `warning` event the first time.
//! - **Nothing the model sends crashes the run.** Malformed arguments, unknown
//!   tools and tool failures come back to the model as `{"error": ...}`
//!   results; a failed subagent is an error result for its parent.
//! - **Context is compacted during the run.** Past
//!   [`CompactionConfig::threshold_tokens`], older tool turns (atomically) and
//!   messages are summarized by the compaction model; the originals stay
//!   reachable with `get_context_item`.
//! - **Events are never duplicated.** Sequence numbers are global and
//!   monotonic; retried requests do not repeat items or deltas (see
//!   [`events`] for the wire format).
//! - **Resumable.** A [`RunCheckpoint`] is taken after every root turn, written
//!   (compact, on a blocking thread) to [`EngineConfig::checkpoint_path`] and announced
//!   by a small `checkpoint` event (the whole snapshot rides in the event only when no
//!   file is written); it can be resumed with [`Engine::resume`], only on the same data.
//! - **Ctrl-C is prompt.** Cancelling stops waiting for running tools at once (a
//!   blocking tool finishes in the background, unheard) and ends with the report so far.
//! - **No secrets.** The API key lives only in `halo_provider`'s redacting
//!   type; it never appears in events, reports, records, checkpoints or errors.
//!
//! ```no_run
//! # async fn demo(ds: std::sync::Arc<halo_index::Dataset>) -> Result<(), halo_rlm::EngineError> {
//! use futures::StreamExt;
//! use halo_provider::ProviderConfig;
//! use halo_rlm::{Engine, EngineConfig, EngineEvent};
//!
//! let config = EngineConfig::new(ProviderConfig::new("http://localhost:8080/v1"), "gpt-5.4-mini");
//! let engine = Engine::new(config, ds)?;
//! let mut run = engine.start("Why do the agents fail?");
//! while let Some(event) = run.next().await {
//!     if let EngineEvent::OutputItem(item) = event {
//!         println!("{} {:?}", item.agent.agent_id, item.item);
//!     }
//! }
//! let outcome = run.outcome().await?;
//! println!("{}", outcome.report);
//! # Ok(()) }
//! ```

#![deny(missing_docs)]

mod agent;
mod artifacts;
mod checkpoint;
mod config;
mod context;
mod engine;
pub mod events;
mod prompts;
mod record;
mod tools;

use std::path::PathBuf;

pub use artifacts::ArtifactPaths;
pub use checkpoint::{RunCheckpoint, CHECKPOINT_VERSION};
pub use config::{CompactionConfig, EngineConfig};
// The one citation checker of halo-rs, shared with the offline diagnosis.
pub use engine::{
    new_run_id, run, run_blocking, stream_events, stream_events_blocking, stream_output,
    stream_output_blocking, BlockingEvents, Canceller, Engine, OutputItems, RunHandle, RunOutcome,
};
pub use events::{
    AgentInfo, AgentItem, AgentOutputItem, AgentTextDelta, CheckpointEvent, EngineEvent,
    ProviderRetryEvent, RequestKind, WarningEvent, EVENTS_SCHEMA_VERSION,
};
pub use halo_query::{
    check_citations, Citation, CitationCheck, CitationKind, UNKNOWN_CITATION_FLAG,
};
pub use record::{ModelUsage, RunRecord, RunStatus, ToolStats, UsageProbe};

/// Why the engine could not start or resume a run.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// The provider client could not be built.
    #[error("provider configuration: {0}")]
    Provider(halo_provider::ProviderError),
    /// The repository for the code tools is unusable.
    #[error("{0}")]
    Repo(String),
    /// A checkpoint file could not be read or written.
    #[error("checkpoint {}: {message}", path.display())]
    Checkpoint {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        message: String,
    },
    /// The checkpoint cannot be resumed (its run completed, or another prompt was given).
    #[error("cannot resume run {run_id}: {message}")]
    NotResumable {
        /// The run the checkpoint belongs to.
        run_id: String,
        /// Why not.
        message: String,
    },
    /// The checkpoint belongs to other data.
    #[error(
        "the checkpoint belongs to other data (dataset fingerprint {expected}, these traces are {found}); \
         resume it with the same trace files it was made from: {}",
        paths.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", ")
    )]
    DatasetMismatch {
        /// The checkpoint's fingerprint.
        expected: String,
        /// The current dataset's fingerprint.
        found: String,
        /// The checkpoint's dataset files.
        paths: Vec<PathBuf>,
    },
    /// The async runtime failed.
    #[error("{0}")]
    Runtime(String),
}
