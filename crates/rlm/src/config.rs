//! Engine configuration.

use std::path::PathBuf;

use halo_provider::{ProviderConfig, ReasoningEffort};

/// When and how an agent's context is compacted during a run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CompactionConfig {
    /// Compact when the estimated size of an agent's context (characters / 4)
    /// passes this many tokens. Default 120 000.
    pub threshold_tokens: usize,
    /// The most recent tool turns (a tool-call message with all its results)
    /// that are never compacted. Default 3.
    pub keep_recent_tool_turns: usize,
    /// The most recent plain messages that are never compacted. Default 12.
    pub keep_recent_messages: usize,
}

impl Default for CompactionConfig {
    fn default() -> Self {
        CompactionConfig {
            threshold_tokens: 120_000,
            keep_recent_tool_turns: 3,
            keep_recent_messages: 12,
        }
    }
}

/// Everything the engine needs besides the dataset and the prompt.
///
/// `Debug` is safe to print: the provider configuration redacts the key and
/// header values.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// Provider connection (base URL, key, headers, wire, retries).
    pub provider: ProviderConfig,
    /// Model of the root agent and subagents (`-m`).
    pub model: String,
    /// Model of `synthesize_traces`; `model` when `None`.
    pub synthesis_model: Option<String>,
    /// Model of context compaction; `model` when `None`.
    pub compaction_model: Option<String>,
    /// Deepest subagent level (root is depth 0). `call_subagent` is offered
    /// only to agents above this depth.
    pub max_depth: u32,
    /// Model turns per agent.
    pub max_turns: u32,
    /// Subagent model requests in flight at once, over the whole run (a subagent holds
    /// a slot only while its own request runs). It also bounds fan-out: one
    /// turn of an agent starts at most `max(max_parallel, 10)` subagents; further
    /// `call_subagent` calls of that turn get an error result asking to batch them.
    pub max_parallel: usize,
    /// Source tree of the agent harness, for the read-only code tools.
    pub repo_path: Option<PathBuf>,
    /// Sampling temperature (agents and helpers).
    pub temperature: Option<f64>,
    /// Output token limit per model call.
    pub max_output_tokens: Option<u32>,
    /// Whether agents may call several tools in one turn; `None` sends nothing and leaves
    /// it to the provider (some servers reject the parameter).
    pub parallel_tool_calls: Option<bool>,
    /// Times a refused agent request is retried.
    pub refusal_retries: u32,
    /// Reasoning effort of root and subagent calls (never sent for synthesis or
    /// compaction).
    pub reasoning_effort: Option<ReasoningEffort>,
    /// Hard token budget (input + output, all models) of the whole run.
    pub max_total_tokens: Option<u64>,
    /// Extra text about the dataset, added to every agent's first message.
    pub dataset_context: Option<String>,
    /// Context compaction settings.
    pub compaction: CompactionConfig,
    /// When set, every checkpoint is also written (atomically) to this file.
    pub checkpoint_path: Option<PathBuf>,
    /// Run id; generated when `None`.
    pub run_id: Option<String>,
}

impl EngineConfig {
    /// A configuration with the reference defaults for `provider` and `model`.
    pub fn new(provider: ProviderConfig, model: impl Into<String>) -> Self {
        EngineConfig {
            provider,
            model: model.into(),
            synthesis_model: None,
            compaction_model: None,
            max_depth: 2,
            max_turns: 20,
            max_parallel: 10,
            repo_path: None,
            temperature: None,
            max_output_tokens: None,
            parallel_tool_calls: None,
            refusal_retries: 0,
            reasoning_effort: None,
            max_total_tokens: None,
            dataset_context: None,
            compaction: CompactionConfig::default(),
            checkpoint_path: None,
            run_id: None,
        }
    }

    /// The synthesis model in effect.
    pub fn synthesis_model(&self) -> &str {
        self.synthesis_model.as_deref().unwrap_or(&self.model)
    }

    /// The compaction model in effect.
    pub fn compaction_model(&self) -> &str {
        self.compaction_model.as_deref().unwrap_or(&self.model)
    }
}
