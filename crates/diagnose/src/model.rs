//! The diagnosis data model: failure modes, findings and the whole-dataset result.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// Version of the JSON rendering of [`Diagnosis`]; bumped on incompatible changes.
pub const DIAGNOSIS_SCHEMA_VERSION: u32 = 2;

/// A failure mode the offline detectors know. The identifiers are stable (they are the
/// `mode` field of `--json` and match the trace generator's label ids).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// A tool call failed (grouped by tool and masked error template).
    ToolError,
    /// The model called a tool that does not exist (not declared, or "unknown tool").
    HallucinatedTool,
    /// A tool call was rejected for its arguments (unexpected, missing, ill-typed).
    InvalidToolArgs,
    /// The same tool with identical arguments was called again and again (back to back, or
    /// in a cycle with the same one or two other calls).
    RepeatedToolLoop,
    /// The model refused three or more times in one run.
    RefusalLoop,
    /// The model refused once or twice in a run.
    Refusal,
    /// The run hit its turn, step or recursion budget.
    TurnExhaustion,
    /// The model provider failed (rate limit, 5xx, timeout, context length, content filter).
    ProviderError,
    /// The run claims success without doing the work its peers do.
    PrematureSuccess,
    /// The run failed (outcome marker or final text) without any error status.
    SilentFailure,
    /// A model or tool call far slower than its peers.
    LatencyOutlier,
    /// A model call using far more tokens than its peers.
    TokenOutlier,
}

impl Mode {
    /// All modes, in a fixed order.
    pub const ALL: [Mode; 12] = [
        Mode::ToolError,
        Mode::HallucinatedTool,
        Mode::InvalidToolArgs,
        Mode::RepeatedToolLoop,
        Mode::RefusalLoop,
        Mode::Refusal,
        Mode::TurnExhaustion,
        Mode::ProviderError,
        Mode::PrematureSuccess,
        Mode::SilentFailure,
        Mode::LatencyOutlier,
        Mode::TokenOutlier,
    ];

    /// The stable identifier.
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::ToolError => "tool_error",
            Mode::HallucinatedTool => "hallucinated_tool",
            Mode::InvalidToolArgs => "invalid_tool_args",
            Mode::RepeatedToolLoop => "repeated_tool_loop",
            Mode::RefusalLoop => "refusal_loop",
            Mode::Refusal => "refusal",
            Mode::TurnExhaustion => "turn_exhaustion",
            Mode::ProviderError => "provider_error",
            Mode::PrematureSuccess => "premature_success",
            Mode::SilentFailure => "silent_failure",
            Mode::LatencyOutlier => "latency_outlier",
            Mode::TokenOutlier => "token_outlier",
        }
    }

    /// A short human name.
    pub fn label(self) -> &'static str {
        match self {
            Mode::ToolError => "Tool error",
            Mode::HallucinatedTool => "Hallucinated tool",
            Mode::InvalidToolArgs => "Invalid tool arguments",
            Mode::RepeatedToolLoop => "Repeated tool-call loop",
            Mode::RefusalLoop => "Refusal loop",
            Mode::Refusal => "Refusal",
            Mode::TurnExhaustion => "Turn budget exhausted",
            Mode::ProviderError => "Provider failure",
            Mode::PrematureSuccess => "Premature success",
            Mode::SilentFailure => "Silent failure",
            Mode::LatencyOutlier => "Latency outlier",
            Mode::TokenOutlier => "Token outlier",
        }
    }

    /// How bad one affected run is, from 0 to 1 (used for the impact score).
    pub fn severity(self) -> f64 {
        match self {
            Mode::SilentFailure | Mode::PrematureSuccess | Mode::TurnExhaustion => 1.0,
            Mode::RefusalLoop | Mode::HallucinatedTool | Mode::RepeatedToolLoop => 0.9,
            Mode::ToolError => 0.8,
            Mode::InvalidToolArgs | Mode::ProviderError => 0.7,
            Mode::Refusal => 0.5,
            Mode::LatencyOutlier | Mode::TokenOutlier => 0.4,
        }
    }
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Mode {
    type Err = String;
    fn from_str(s: &str) -> Result<Mode, String> {
        Mode::ALL
            .into_iter()
            .find(|m| m.as_str() == s)
            .ok_or_else(|| format!("unknown failure mode {s:?}"))
    }
}

/// What a finding is about: the identity used to match findings across runs.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct FindingKey {
    /// The failure mode.
    pub mode: Mode,
    /// The tool concerned, if any.
    pub tool: Option<String>,
    /// The model concerned, if any (provider failures, model outliers).
    pub model: Option<String>,
    /// The masked error template, provider failure kind or argument problem, if any.
    pub template: Option<String>,
}

impl FindingKey {
    /// A finding key for `mode` with no further qualification.
    pub fn new(mode: Mode) -> FindingKey {
        FindingKey {
            mode,
            tool: None,
            model: None,
            template: None,
        }
    }

    /// The stable string id: `mode|tool|model|template` (empty parts stay empty).
    pub fn id(&self) -> String {
        format!(
            "{}|{}|{}|{}",
            self.mode,
            self.tool.as_deref().unwrap_or(""),
            self.model.as_deref().unwrap_or(""),
            self.template.as_deref().unwrap_or("")
        )
    }
}

/// One example trace of a finding with the spans that show it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Example {
    /// The trace.
    pub trace_id: String,
    /// The spans that show the failure.
    pub span_ids: Vec<String>,
    /// What the first of them shows, in a line (the error, the arguments, the answer), so
    /// that reading the evidence does not take a `halo view` per example.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

/// One failure mode instance: a mode for one tool/template/model and the traces it affects.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Finding {
    /// The stable identity (`key.id()` is `id`).
    #[serde(flatten)]
    pub key: FindingKey,
    /// `key.id()`, for matching across runs.
    pub id: String,
    /// A one-line title.
    pub title: String,
    /// What the detector saw, in one or two sentences.
    pub signal: String,
    /// The argument concerned (invalid tool arguments), if known.
    pub argument: Option<String>,
    /// Affected traces.
    pub trace_count: usize,
    /// Affected traces as a share of the analysed traces (0..=1).
    pub share: f64,
    /// Spans that show the failure, over all affected traces.
    pub span_count: usize,
    /// Services of the affected traces, most frequent first.
    pub services: Vec<String>,
    /// Models of the affected traces, most frequent first.
    pub models: Vec<String>,
    /// Agents whose spans show the failure (else those of the affected traces), most
    /// frequent first.
    pub agents: Vec<String>,
    /// The tools concerned, most affected first: one for a finding about one tool, several
    /// for a cause seen on several tools (then `tool` is empty).
    #[serde(default)]
    pub tools: Vec<String>,
    /// For a provider failure: the models that failed, most affected first (several when
    /// one kind of failure hit several models; then `model` is empty).
    #[serde(default)]
    pub failing_models: Vec<String>,
    /// Start of the earliest affected trace (RFC 3339).
    pub first_seen: String,
    /// Start of the latest affected trace (RFC 3339).
    pub last_seen: String,
    /// 3-5 example traces with the spans that show the failure.
    pub examples: Vec<Example>,
    /// Every affected trace id, sorted.
    pub trace_ids: Vec<String>,
    /// A concrete direction for a prompt or harness change.
    pub fix: String,
    /// A question to ask the RLM to go deeper (`halo TRACES -p "..."`).
    pub deeper_prompt: String,
    /// Ranking score: affected share (in percent) times the mode's severity.
    pub impact: f64,
}

/// Whole-dataset numbers used in reports and run-vs-run diffs.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DatasetStats {
    /// Traces analysed.
    pub traces: usize,
    /// Spans in those traces.
    pub spans: u64,
    /// Traces with at least one error span.
    pub error_traces: usize,
    /// Traces with at least one finding.
    pub failing_traces: usize,
    /// LLM calls (turns) over all traces.
    pub llm_calls: u64,
    /// Tool calls over all traces.
    pub tool_calls: u64,
    /// Total tokens over all traces.
    pub total_tokens: i64,
    /// Cost over all traces, where the data carries it.
    pub cost: Option<f64>,
    /// Mean LLM calls per trace.
    pub mean_llm_calls: f64,
    /// Mean tool calls per trace.
    pub mean_tool_calls: f64,
    /// Mean total tokens per trace.
    pub mean_tokens: f64,
    /// Median trace duration, ms.
    pub p50_duration_ms: f64,
    /// 90th percentile trace duration, ms.
    pub p90_duration_ms: f64,
    /// Mean trace duration, ms.
    pub mean_duration_ms: f64,
    /// Start of the earliest trace (RFC 3339), empty when there are none.
    pub first_seen: String,
    /// Start of the latest trace (RFC 3339), empty when there are none.
    pub last_seen: String,
    /// Lines of the input skipped as unreadable (their spans are not in the diagnosis).
    #[serde(default)]
    pub skipped_lines: u64,
    /// Problems found while indexing the input (`halo index --json` lists them).
    #[serde(default)]
    pub problem_count: u64,
    /// Traces with an error span that no finding explains: errors no detector reads
    /// (an agent span failing with an exception of the harness's own, say).
    #[serde(default)]
    pub unexplained_error_traces: usize,
    /// Up to five of them, each with its largest error group.
    #[serde(default)]
    pub unexplained_examples: Vec<UnexplainedTrace>,
}

/// A trace whose errors no finding explains.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct UnexplainedTrace {
    /// The trace.
    pub trace_id: String,
    /// Its largest error group (what failed and the masked message).
    pub error: String,
}

/// All findings of one mode together.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModeSummary {
    /// The mode.
    pub mode: Mode,
    /// Traces with at least one finding of the mode.
    pub trace_count: usize,
    /// Those traces as a share of the analysed traces.
    pub share: f64,
    /// Findings of the mode.
    pub findings: usize,
    /// The id of the mode's highest-impact finding.
    pub top_finding: String,
    /// Ranking score: affected share (in percent) times the mode's severity.
    pub impact: f64,
}

/// The result of [`crate::diagnose`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Diagnosis {
    /// [`DIAGNOSIS_SCHEMA_VERSION`].
    pub schema_version: u32,
    /// The dataset's source files, as given.
    pub sources: Vec<String>,
    /// Options the suggested commands repeat after the sources (`--index-dir DIR`), so
    /// that following them reuses the same index. Not part of the JSON.
    #[serde(skip)]
    pub command_options: Vec<String>,
    /// Whole-dataset numbers.
    pub stats: DatasetStats,
    /// Per mode, ranked by impact (highest first).
    pub modes: Vec<ModeSummary>,
    /// Findings, ranked by impact (highest first).
    pub findings: Vec<Finding>,
}

impl Diagnosis {
    /// The finding with this key id, if any.
    pub fn finding(&self, id: &str) -> Option<&Finding> {
        self.findings.iter().find(|f| f.id == id)
    }

    /// Every trace id reported under `mode` (over all its findings), sorted and unique.
    pub fn traces_with(&self, mode: Mode) -> Vec<String> {
        let mut ids: Vec<String> = self
            .findings
            .iter()
            .filter(|f| f.key.mode == mode)
            .flat_map(|f| f.trace_ids.iter().cloned())
            .collect();
        ids.sort_unstable();
        ids.dedup();
        ids
    }

    /// The JSON rendering (pretty-printed, with `schema_version`).
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self)
            .unwrap_or_else(|e| format!("{{\"error\":{:?}}}", e.to_string()))
    }
}
