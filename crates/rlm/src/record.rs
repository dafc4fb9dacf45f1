//! Usage accounting and the run record.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use halo_provider::Usage;
use serde::{Deserialize, Serialize};

/// Tokens and calls of one model.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModelUsage {
    /// Input tokens.
    pub input_tokens: u64,
    /// Output tokens.
    pub output_tokens: u64,
    /// Requests that completed.
    pub calls: u64,
}

/// Calls and failures of one tool.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ToolStats {
    /// Calls.
    pub calls: u64,
    /// Calls that returned an error result.
    pub errors: u64,
}

/// How a run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunStatus {
    /// The root called `final_answer`.
    Completed,
    /// The root ended without `final_answer` even after a re-prompt; its last
    /// text (or a synthesized report) is the report.
    NoFinalAnswer,
    /// The root's turn budget ran out; the report was asked for once more or
    /// synthesized.
    TurnBudgetExhausted,
    /// `max_total_tokens` was reached.
    TokenBudgetExhausted,
    /// The run was cancelled (Ctrl-C).
    Cancelled,
    /// A model request of the root failed for good.
    Failed,
}

impl RunStatus {
    /// True when the run produced its report normally.
    pub fn is_success(self) -> bool {
        !matches!(self, RunStatus::Cancelled | RunStatus::Failed)
    }
}

/// The run record, saved as JSON next to the report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunRecord {
    /// Run id.
    pub run_id: String,
    /// How the run ended.
    pub status: RunStatus,
    /// Error message when `status` is `failed`.
    pub error: Option<String>,
    /// Start time (RFC 3339).
    pub started_at: String,
    /// Wall-clock duration in milliseconds.
    pub duration_ms: u64,
    /// Agent model.
    pub model: String,
    /// Synthesis model.
    pub synthesis_model: String,
    /// Compaction model.
    pub compaction_model: String,
    /// Tokens and calls per model.
    pub usage_by_model: BTreeMap<String, ModelUsage>,
    /// Input tokens, all models.
    pub input_tokens: u64,
    /// Output tokens, all models.
    pub output_tokens: u64,
    /// Model requests answered, all models.
    pub model_calls: u64,
    /// Model requests that failed after the provider's own retries (connection refused,
    /// an API error, a context window overflow), all models; not in `model_calls`.
    #[serde(default)]
    pub failed_model_calls: u64,
    /// Calls per tool.
    pub tools: BTreeMap<String, ToolStats>,
    /// Subagents started.
    pub subagents: u64,
    /// Root turns used.
    pub root_turns: u32,
    /// Compactions performed.
    pub compactions: u64,
    /// Model requests whose response reported no token usage; their tokens are
    /// estimated (characters / 4) in the counts above.
    #[serde(default)]
    pub estimated_usage_calls: u64,
    /// Citations in the report that do not resolve in the dataset (distinct, as written,
    /// in order of first occurrence).
    pub unverified_citations: Vec<String>,
    /// Content fingerprint of the dataset.
    pub dataset_fingerprint: String,
    /// The checkpoint this run resumed from, if any (its run id).
    pub resumed_from: Option<String>,
}

#[derive(Debug, Default)]
pub(crate) struct Tracker {
    total: AtomicU64,
    by_model: Mutex<BTreeMap<String, ModelUsage>>,
    tools: Mutex<BTreeMap<String, ToolStats>>,
    pub(crate) subagents: AtomicU64,
    pub(crate) compactions: AtomicU64,
    estimated_calls: AtomicU64,
    failed_calls: AtomicU64,
    /// Tokens held by requests on their way: their estimated input (and output cap).
    reserved: AtomicU64,
}

impl Tracker {
    pub(crate) fn with_total(total: u64) -> Self {
        let t = Tracker::default();
        t.total.store(total, Ordering::Relaxed);
        t
    }

    /// Counts one completed request. A response without usage counts `estimate`
    /// (characters / 4) instead of nothing, so `max_total_tokens` stays a budget with a
    /// provider that reports no usage. Returns true for the run's first estimated call,
    /// so that the user is warned once.
    pub(crate) fn add_call(
        &self,
        model: &str,
        usage: Option<Usage>,
        estimate: impl FnOnce() -> Usage,
    ) -> bool {
        let (u, first_estimate) = match usage {
            Some(u) => (u, false),
            None => (
                estimate(),
                self.estimated_calls.fetch_add(1, Ordering::Relaxed) == 0,
            ),
        };
        self.total
            .fetch_add(u.input_tokens + u.output_tokens, Ordering::Relaxed);
        let mut m = self.by_model.lock().unwrap_or_else(|e| e.into_inner());
        let e = m.entry(model.to_owned()).or_default();
        e.input_tokens += u.input_tokens;
        e.output_tokens += u.output_tokens;
        e.calls += 1;
        first_estimate
    }

    /// Holds `tokens` for a request about to be sent, when the tokens used and those held
    /// by the requests already on their way are still under `max`; false (nothing held)
    /// when not. So, as for one agent alone, only the last request let through may pass
    /// the budget, by its own size: agents side by side each passed a check of the tokens
    /// used alone before any of their requests was counted, and one run passed its budget
    /// by 84% that way.
    pub(crate) fn reserve(&self, tokens: u64, max: u64) -> bool {
        self.reserved
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |held| {
                let before = self.total_tokens().saturating_add(held);
                (before < max).then_some(held.saturating_add(tokens))
            })
            .is_ok()
    }

    /// Lets go of tokens held by [`Tracker::reserve`] once the request is over (and
    /// counted, if it completed).
    pub(crate) fn release(&self, tokens: u64) {
        let _ = self
            .reserved
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |held| {
                Some(held.saturating_sub(tokens))
            });
    }

    /// Counts one request that failed after the provider's retries.
    pub(crate) fn add_failed_call(&self) {
        self.failed_calls.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn failed_calls(&self) -> u64 {
        self.failed_calls.load(Ordering::Relaxed)
    }

    pub(crate) fn estimated_calls(&self) -> u64 {
        self.estimated_calls.load(Ordering::Relaxed)
    }

    pub(crate) fn add_tool(&self, name: &str, is_error: bool) {
        let mut m = self.tools.lock().unwrap_or_else(|e| e.into_inner());
        let e = m.entry(name.to_owned()).or_default();
        e.calls += 1;
        if is_error {
            e.errors += 1;
        }
    }

    pub(crate) fn total_tokens(&self) -> u64 {
        self.total.load(Ordering::Relaxed)
    }

    pub(crate) fn by_model(&self) -> BTreeMap<String, ModelUsage> {
        self.by_model
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    pub(crate) fn tools(&self) -> BTreeMap<String, ToolStats> {
        self.tools.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

/// A live view of a run's token use, for progress displays.
#[derive(Debug, Clone)]
pub struct UsageProbe(pub(crate) std::sync::Arc<crate::engine::Shared>);

impl UsageProbe {
    /// Tokens (input + output, all models) used so far, including any used
    /// before a resume.
    pub fn total_tokens(&self) -> u64 {
        self.0.usage.total_tokens()
    }

    /// Tokens and calls per model so far (this process only).
    pub fn by_model(&self) -> BTreeMap<String, ModelUsage> {
        self.0.usage.by_model()
    }
}
