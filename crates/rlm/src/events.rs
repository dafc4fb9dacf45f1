//! The event stream of a run, and its JSON wire format.
//!
//! Every event is one JSON object with a `type` tag. The `--json` output of
//! `halo` is exactly these objects, one per line:
//!
//! * `{"type":"output_item", "sequence", "agent_id", "parent_agent_id",
//!   "parent_tool_call_id", "agent_name", "depth", "item", "final"}`: one
//!   completed item of an agent. `item` is `{"type":"message", "id", "role",
//!   "content"}`, `{"type":"tool_call", "id", "call_id", "name",
//!   "arguments"}` or `{"type":"tool_result", "id", "call_id", "name",
//!   "content", "is_error"}`. `final` is true on one item only: the run's
//!   final answer (the root's verified report, always the last output item), as
//!   in the reference. `agent_finished` marks the item that is an agent's answer:
//!   a subagent's last message (its answer to the parent; for one that failed or ran
//!   out of budget, what it found, as its parent is told; a cancelled run has none)
//!   and the root's report.
//!   `partial` is true when that report is a partial one (the run ended before the
//!   root wrote its own: budget, cancel, failure; `run_finished.status` says which;
//!   added later in version 3, absent means false). Before version 3, `final` was
//!   also set on subagents' answers.
//! * `{"type":"text_delta", "sequence", "agent_id", ..., "item_id",
//!   "text_delta"}`: a piece of the text of the message item `item_id`, as it
//!   streams. When a retried model request produces a different answer, the
//!   new text streams under a new `item_id`; the output item carries the text
//!   that counts.
//! * `{"type":"checkpoint", "sequence", "path", "turns_used", "tokens_used"}`:
//!   the root finished a turn and its state was saved to the checkpoint file `path`
//!   (resume from that file; a failed write is reported in the run's outcome). Only
//!   when the engine writes no file (a library run without
//!   [`crate::EngineConfig::checkpoint_path`]; `path` is `null`) does the event carry
//!   the whole [`crate::RunCheckpoint`] as `checkpoint`. Before version 3 every event
//!   carried it, which made the stream grow with the square of the root's turns.
//! * `{"type":"provider_retry", "sequence", "agent_id", ..., "request", "attempt",
//!   "status", "delay_ms", "reason"}`: an agent's model request failed in a way that
//!   can pass (rate limit, server error, dropped stream) and is sent again after
//!   `delay_ms`. `request` says which: `agent` (its turn), `synthesis` or `compaction`
//!   (added later in version 3; absent means `agent`). Added in version 2 of the
//!   stream; consumers should skip types they do not know.
//! * `{"type":"warning", "sequence", "agent_id", ..., "message"}`: something the user
//!   should know that does not stop the run, e.g. that the provider reports no token
//!   usage, so the budget counts estimates (sent once per run). Added in version 3.
//!
//! `sequence` is global over the run, starts at 0 and increases by one per
//! event, in emission order. `parent_agent_id` and `parent_tool_call_id` are
//! `null` for the root.
//!
//! The CLI ends the stream with one more object, which is not an event of the
//! engine and has no `sequence`: `{"type":"run_finished", "schema_version",
//! "run_id", "status", "error", "report_path", "record_path", "checkpoint_path"}`
//! (paths `null` when nothing was written; `schema_version` is
//! [`EVENTS_SCHEMA_VERSION`], the version of this whole stream). A run that
//! cannot start ends it with the CLI's error line instead: `{"type":"error",
//! "schema_version", "error":{"exit_code", "message"}}`.

/// The version of the event stream's wire format (the objects above).
///
/// 3: `final` marks the run's final answer only (subagents' answers carry
/// `agent_finished`), `checkpoint` events name the saved file instead of carrying
/// the whole snapshot, and the `warning` event. 2: `provider_retry`.
pub const EVENTS_SCHEMA_VERSION: u32 = 3;

use std::path::PathBuf;
use std::sync::Mutex;

use serde::{Deserialize, Serialize};
use tokio::sync::mpsc::UnboundedSender;

use crate::checkpoint::RunCheckpoint;

/// Who produced an event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentInfo {
    /// Unique id in the run: `root`, then `PARENT/TURN.CALL` for a subagent started by
    /// the parent's CALL-th tool call of its TURN-th turn (`root/1.2`, `root/1.2/3.1`).
    pub agent_id: String,
    /// The parent agent (`None` for the root).
    pub parent_agent_id: Option<String>,
    /// The parent's `call_subagent` tool call that started this agent.
    pub parent_tool_call_id: Option<String>,
    /// `root` or `subagent`.
    pub agent_name: String,
    /// 0 for the root, parent depth + 1 for a subagent.
    pub depth: u32,
}

/// One completed conversation item.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum AgentItem {
    /// A message (assistant text, or the final report).
    Message {
        /// Item id (text deltas refer to it).
        id: String,
        /// `assistant` (or `user` for engine prompts, which are not emitted today).
        role: String,
        /// The text.
        content: String,
    },
    /// A tool call made by the model.
    ToolCall {
        /// Item id.
        id: String,
        /// The provider's call id.
        call_id: String,
        /// Tool name.
        name: String,
        /// Arguments as the model wrote them.
        arguments: String,
    },
    /// The result of a tool call, as sent back to the model.
    ToolResult {
        /// Item id.
        id: String,
        /// The call it answers.
        call_id: String,
        /// Tool name.
        name: String,
        /// Result text.
        content: String,
        /// True when the tool failed or its arguments were invalid.
        is_error: bool,
    },
}

/// A completed item of one agent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AgentOutputItem {
    /// Global, monotonic sequence number.
    pub sequence: u64,
    /// The agent.
    #[serde(flatten)]
    pub agent: AgentInfo,
    /// The item.
    pub item: AgentItem,
    /// True only for the run's final answer: the root's report, the last output
    /// item of the run.
    #[serde(rename = "final")]
    pub is_final: bool,
    /// True for the item that is an agent's answer: a subagent's last message (what its
    /// parent gets back) and the root's report.
    #[serde(default)]
    pub agent_finished: bool,
    /// True for a final item that is a partial report: the run ended (token budget,
    /// cancel, provider failure, turns used up) before the root wrote its report, and the
    /// report was assembled from what was found. `run_finished.status` says why.
    #[serde(default)]
    pub partial: bool,
}

/// A piece of streamed text.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AgentTextDelta {
    /// Global, monotonic sequence number.
    pub sequence: u64,
    /// The agent.
    #[serde(flatten)]
    pub agent: AgentInfo,
    /// The message item the text belongs to.
    pub item_id: String,
    /// The new text.
    pub text_delta: String,
}

/// The root finished a turn and its state was saved.
///
/// Small on purpose: the checkpoint file is what resuming needs, and a snapshot of
/// the whole root conversation after every turn would make the stream grow with the
/// square of the turns.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CheckpointEvent {
    /// Global, monotonic sequence number.
    pub sequence: u64,
    /// The checkpoint file (written in the background, atomically; write failures are
    /// listed in the run's outcome). `None` when the run writes no file.
    pub path: Option<PathBuf>,
    /// Root turns used.
    pub turns_used: u32,
    /// Tokens (input + output, all models) used so far.
    pub tokens_used: u64,
    /// The whole snapshot, only when the run writes no checkpoint file (then the
    /// stream is the only place it is kept).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checkpoint: Option<RunCheckpoint>,
}

/// Something the user should know that does not stop the run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WarningEvent {
    /// Global, monotonic sequence number.
    pub sequence: u64,
    /// The agent it concerns.
    #[serde(flatten)]
    pub agent: AgentInfo,
    /// What happened, for a person.
    pub message: String,
}

/// A model request that failed and will be sent again after `delay_ms` (rate limits,
/// server errors, dropped streams), so that a long wait is never silent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProviderRetryEvent {
    /// Global, monotonic sequence number.
    pub sequence: u64,
    /// The agent whose request failed.
    #[serde(flatten)]
    pub agent: AgentInfo,
    /// Which of the agent's requests failed: its own turn, or a trace synthesis or a
    /// context compaction it asked for (those go to their own models).
    #[serde(default)]
    pub request: RequestKind,
    /// The attempt that failed (1-based).
    pub attempt: u32,
    /// Its HTTP status, when it was an HTTP error.
    pub status: Option<u16>,
    /// How long the client waits before the next attempt.
    pub delay_ms: u64,
    /// Why the attempt failed (never contains the API key).
    pub reason: String,
}

/// What a model request was for.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RequestKind {
    /// An agent's turn (root or subagent), to `--model`.
    #[default]
    Agent,
    /// `synthesize_traces`, to `--synthesis-model`.
    Synthesis,
    /// Compacting an agent's context, to `--compaction-model`.
    Compaction,
}

/// Any event of a run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum EngineEvent {
    /// A completed item.
    OutputItem(AgentOutputItem),
    /// Streamed text.
    TextDelta(AgentTextDelta),
    /// A checkpoint.
    Checkpoint(CheckpointEvent),
    /// A model request is about to be retried.
    ProviderRetry(ProviderRetryEvent),
    /// A warning.
    Warning(WarningEvent),
}

impl EngineEvent {
    /// The event's sequence number.
    pub fn sequence(&self) -> u64 {
        match self {
            EngineEvent::OutputItem(i) => i.sequence,
            EngineEvent::TextDelta(d) => d.sequence,
            EngineEvent::Checkpoint(c) => c.sequence,
            EngineEvent::ProviderRetry(r) => r.sequence,
            EngineEvent::Warning(w) => w.sequence,
        }
    }
}

/// What an output item is in its agent's life (see [`AgentOutputItem`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ItemMark {
    /// Any item on the way.
    Plain,
    /// A subagent's answer.
    AgentFinished,
    /// The run's final answer (the root's report).
    RunFinal,
    /// The run's final item when the root wrote no report: the partial one.
    RunPartial,
}

/// Hands out sequence numbers and sends events, under one lock so that the
/// channel order is the sequence order.
#[derive(Debug)]
pub(crate) struct Emitter {
    state: Mutex<EmitState>,
}

#[derive(Debug)]
struct EmitState {
    next: u64,
    tx: Option<UnboundedSender<EngineEvent>>,
}

impl Emitter {
    pub(crate) fn new(tx: Option<UnboundedSender<EngineEvent>>) -> Self {
        Emitter {
            state: Mutex::new(EmitState { next: 0, tx }),
        }
    }

    pub(crate) fn emit(&self, make: impl FnOnce(u64) -> EngineEvent) {
        let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let seq = st.next;
        st.next += 1;
        let event = make(seq);
        if let Some(tx) = &st.tx {
            // A dropped receiver only means nobody listens any more.
            let _ = tx.send(event);
        }
    }

    pub(crate) fn item(&self, agent: &AgentInfo, item: AgentItem, mark: ItemMark) {
        self.emit(|sequence| {
            EngineEvent::OutputItem(AgentOutputItem {
                sequence,
                agent: agent.clone(),
                item,
                is_final: matches!(mark, ItemMark::RunFinal | ItemMark::RunPartial),
                agent_finished: mark != ItemMark::Plain,
                partial: mark == ItemMark::RunPartial,
            })
        });
    }

    pub(crate) fn warning(&self, agent: &AgentInfo, message: String) {
        self.emit(|sequence| {
            EngineEvent::Warning(WarningEvent {
                sequence,
                agent: agent.clone(),
                message,
            })
        });
    }

    pub(crate) fn delta(&self, agent: &AgentInfo, item_id: &str, text: &str) {
        self.emit(|sequence| {
            EngineEvent::TextDelta(AgentTextDelta {
                sequence,
                agent: agent.clone(),
                item_id: item_id.to_owned(),
                text_delta: text.to_owned(),
            })
        });
    }

    pub(crate) fn retry(
        &self,
        agent: &AgentInfo,
        request: RequestKind,
        info: &halo_provider::RetryInfo,
    ) {
        self.emit(|sequence| {
            EngineEvent::ProviderRetry(ProviderRetryEvent {
                sequence,
                agent: agent.clone(),
                request,
                attempt: info.attempt,
                status: info.status,
                delay_ms: info.delay.as_millis().try_into().unwrap_or(u64::MAX),
                reason: info.reason.clone(),
            })
        });
    }

    pub(crate) fn close(&self) {
        let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
        st.tx = None;
    }
}
