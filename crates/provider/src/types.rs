//! Provider-neutral request, response and event types.

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// How much a reasoning model should think (`reasoning_effort` on Chat
/// Completions, `reasoning.effort` on the Responses API).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ReasoningEffort {
    /// `none`
    None,
    /// `minimal`
    Minimal,
    /// `low`
    Low,
    /// `medium`
    Medium,
    /// `high`
    High,
    /// `xhigh`
    Xhigh,
}

impl ReasoningEffort {
    /// The wire spelling (`"none"`, `"minimal"`, ..., `"xhigh"`).
    pub fn as_str(self) -> &'static str {
        match self {
            ReasoningEffort::None => "none",
            ReasoningEffort::Minimal => "minimal",
            ReasoningEffort::Low => "low",
            ReasoningEffort::Medium => "medium",
            ReasoningEffort::High => "high",
            ReasoningEffort::Xhigh => "xhigh",
        }
    }
}

impl std::str::FromStr for ReasoningEffort {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s.trim().to_ascii_lowercase().as_str() {
            "none" => ReasoningEffort::None,
            "minimal" => ReasoningEffort::Minimal,
            "low" => ReasoningEffort::Low,
            "medium" => ReasoningEffort::Medium,
            "high" => ReasoningEffort::High,
            "xhigh" => ReasoningEffort::Xhigh,
            other => {
                return Err(format!(
                    "unknown reasoning effort {other:?} (expected none, minimal, low, medium, high or xhigh)"
                ))
            }
        })
    }
}

/// A tool the model may call.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ToolSpec {
    /// Function name.
    pub name: String,
    /// What the tool does (shown to the model).
    pub description: String,
    /// JSON Schema of the arguments object.
    pub parameters: serde_json::Value,
}

/// A tool call made by the model.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ToolCall {
    /// Call id; the tool result must quote it as `tool_call_id`. (On the
    /// Responses API this is the `call_id`.) When a provider sends no id, the
    /// client makes one up (`call_<n>`).
    pub id: String,
    /// Function name, as the model wrote it (may name an unknown tool).
    pub name: String,
    /// Arguments exactly as the model produced them. Not validated: it may be
    /// malformed JSON, which the caller must handle.
    pub arguments: String,
}

impl ToolCall {
    /// Parses [`ToolCall::arguments`] as JSON. An empty string parses as `{}`.
    pub fn parse_arguments(&self) -> Result<serde_json::Value, serde_json::Error> {
        if self.arguments.trim().is_empty() {
            return Ok(serde_json::Value::Object(Default::default()));
        }
        serde_json::from_str(&self.arguments)
    }
}

/// One conversation message. Serializes with a `role` tag, so it can go into
/// checkpoints as is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "role", rename_all = "snake_case")]
pub enum Message {
    /// System prompt.
    System {
        /// Text.
        content: String,
    },
    /// A user turn.
    User {
        /// Text.
        content: String,
    },
    /// A model turn: text and/or tool calls.
    Assistant {
        /// Text (may be empty when the turn only calls tools).
        #[serde(default)]
        content: String,
        /// Tool calls made in this turn, in order.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        tool_calls: Vec<ToolCall>,
    },
    /// The result of one tool call.
    Tool {
        /// The [`ToolCall::id`] this answers.
        tool_call_id: String,
        /// Result text.
        content: String,
    },
}

impl Message {
    /// A system message.
    pub fn system(content: impl Into<String>) -> Self {
        Message::System {
            content: content.into(),
        }
    }

    /// A user message.
    pub fn user(content: impl Into<String>) -> Self {
        Message::User {
            content: content.into(),
        }
    }

    /// An assistant message with text only.
    pub fn assistant(content: impl Into<String>) -> Self {
        Message::Assistant {
            content: content.into(),
            tool_calls: Vec::new(),
        }
    }

    /// An assistant message with text (possibly empty) and tool calls.
    pub fn assistant_with_tools(content: impl Into<String>, tool_calls: Vec<ToolCall>) -> Self {
        Message::Assistant {
            content: content.into(),
            tool_calls,
        }
    }

    /// A tool result.
    pub fn tool_result(tool_call_id: impl Into<String>, content: impl Into<String>) -> Self {
        Message::Tool {
            tool_call_id: tool_call_id.into(),
            content: content.into(),
        }
    }

    /// The message that records a model response in the conversation.
    pub fn from_response(resp: &ModelResponse) -> Self {
        Message::Assistant {
            content: resp.text.clone(),
            tool_calls: resp.tool_calls.clone(),
        }
    }
}

/// A provider-neutral model request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelRequest {
    /// Model name, sent as is.
    pub model: String,
    /// The conversation.
    pub messages: Vec<Message>,
    /// Tools offered; omitted from the wire request when empty.
    #[serde(default)]
    pub tools: Vec<ToolSpec>,
    /// Sampling temperature; provider default when `None`.
    #[serde(default)]
    pub temperature: Option<f64>,
    /// Output token limit: `max_completion_tokens` on Chat Completions (the
    /// current name; `max_tokens` is deprecated and rejected by reasoning
    /// models), `max_output_tokens` on the Responses API.
    #[serde(default)]
    pub max_output_tokens: Option<u32>,
    /// `parallel_tool_calls`; only sent when `tools` is non-empty.
    #[serde(default)]
    pub parallel_tool_calls: Option<bool>,
    /// Reasoning effort; provider default when `None`.
    #[serde(default)]
    pub reasoning_effort: Option<ReasoningEffort>,
}

impl ModelRequest {
    /// A request for `model` with `messages` and every option unset.
    pub fn new(model: impl Into<String>, messages: Vec<Message>) -> Self {
        ModelRequest {
            model: model.into(),
            messages,
            tools: Vec::new(),
            temperature: None,
            max_output_tokens: None,
            parallel_tool_calls: None,
            reasoning_effort: None,
        }
    }
}

/// Token usage reported by the provider.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Usage {
    /// Prompt / input tokens.
    pub input_tokens: u64,
    /// Completion / output tokens (including reasoning tokens).
    pub output_tokens: u64,
    /// Input tokens served from the provider's prompt cache, when reported.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cached_input_tokens: Option<u64>,
    /// Output tokens spent on reasoning, when reported.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reasoning_tokens: Option<u64>,
}

/// Why the model stopped.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FinishReason {
    /// Natural end of the turn.
    Stop,
    /// Output token limit reached (Responses: incomplete, `max_output_tokens`).
    Length,
    /// The model called tools.
    ToolCalls,
    /// Output withheld by a content filter.
    ContentFilter,
    /// Anything else, verbatim.
    Other(String),
}

impl FinishReason {
    /// Maps a Chat Completions `finish_reason` string.
    pub(crate) fn from_chat(s: &str) -> Self {
        match s {
            "stop" | "end_turn" => FinishReason::Stop,
            "length" | "max_tokens" => FinishReason::Length,
            "tool_calls" | "function_call" | "tool_use" => FinishReason::ToolCalls,
            "content_filter" => FinishReason::ContentFilter,
            other => FinishReason::Other(other.to_owned()),
        }
    }
}

/// Information about a retry that is about to happen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetryInfo {
    /// The attempt that failed (1-based).
    pub attempt: u32,
    /// HTTP status of the failure, if it was an HTTP error.
    pub status: Option<u16>,
    /// How long the client sleeps before the next attempt.
    pub delay: Duration,
    /// Human-readable reason (never contains the API key).
    pub reason: String,
}

/// An event of a streamed model response.
///
/// Order within a successful stream: any number of `TextDelta` / `Retrying` /
/// `Restart`, then `ToolCall`s (in call order), an optional `Refusal`, an
/// optional `Usage` and finally exactly one `Finished`. An `Err` item is
/// always the last item.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StreamEvent {
    /// A piece of the answer text, forwarded live.
    TextDelta(String),
    /// The text emitted so far must be discarded: a retry produced a different
    /// answer. The `TextDelta`s that follow carry the new answer from its start.
    Restart {
        /// The (1-based) attempt whose text replaces what was emitted.
        attempt: u32,
    },
    /// An attempt failed with a transient error; the client sleeps and retries.
    /// Purely informational (for logs and telemetry).
    Retrying(RetryInfo),
    /// A complete tool call, assembled from the provider's deltas.
    ToolCall(ToolCall),
    /// The model refused; the refusal text.
    Refusal(String),
    /// Token usage.
    Usage(Usage),
    /// The response is complete.
    Finished {
        /// Why the model stopped. When the provider sends none, `ToolCalls` is
        /// assumed if there were tool calls, else `Stop`.
        finish_reason: FinishReason,
    },
}

/// A complete model response, as assembled by [`crate::ModelClient::complete`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModelResponse {
    /// Answer text (empty when the model only called tools).
    pub text: String,
    /// Tool calls, in order; arguments are raw strings.
    pub tool_calls: Vec<ToolCall>,
    /// Usage, when the provider reported it.
    pub usage: Option<Usage>,
    /// Why the model stopped.
    pub finish_reason: FinishReason,
    /// Refusal text when the model refused.
    pub refusal: Option<String>,
    /// HTTP attempts it took (1 when the first attempt succeeded).
    pub attempts: u32,
}
