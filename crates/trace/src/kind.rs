//! Span kinds and status codes, normalized across dialects.

use serde::{Deserialize, Serialize};

/// What a span does, in OpenInference's vocabulary, whichever dialect said it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, PartialOrd, Ord)]
#[serde(rename_all = "UPPERCASE")]
pub enum SpanKind {
    /// A model call.
    Llm,
    /// A tool execution.
    Tool,
    /// An agent invocation.
    Agent,
    /// A step that groups others.
    Chain,
    /// A retrieval.
    Retriever,
    /// An embedding call.
    Embedding,
    /// A reranking call.
    Reranker,
    /// A guardrail check.
    Guardrail,
    /// An evaluation.
    Evaluator,
    /// None of the above, or not said.
    Unknown,
}

impl SpanKind {
    /// Every kind, in display order.
    pub const ALL: [SpanKind; 10] = [
        SpanKind::Llm,
        SpanKind::Tool,
        SpanKind::Agent,
        SpanKind::Chain,
        SpanKind::Retriever,
        SpanKind::Embedding,
        SpanKind::Reranker,
        SpanKind::Guardrail,
        SpanKind::Evaluator,
        SpanKind::Unknown,
    ];

    /// The upper-case name (`LLM`, `TOOL`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            SpanKind::Llm => "LLM",
            SpanKind::Tool => "TOOL",
            SpanKind::Agent => "AGENT",
            SpanKind::Chain => "CHAIN",
            SpanKind::Retriever => "RETRIEVER",
            SpanKind::Embedding => "EMBEDDING",
            SpanKind::Reranker => "RERANKER",
            SpanKind::Guardrail => "GUARDRAIL",
            SpanKind::Evaluator => "EVALUATOR",
            SpanKind::Unknown => "UNKNOWN",
        }
    }

    /// Reads an OpenInference or inference.* kind name, case-insensitively.
    pub fn from_openinference(name: &str) -> Option<SpanKind> {
        // Compared in place: upper-casing into a new string cost an allocation per span.
        let name = name.trim();
        SpanKind::ALL
            .into_iter()
            .filter(|&kind| kind != SpanKind::Unknown)
            .find(|kind| kind.as_str().eq_ignore_ascii_case(name))
    }

    /// Maps a GenAI `gen_ai.operation.name` to a kind.
    pub fn from_genai_operation(op: &str) -> Option<SpanKind> {
        let kind = match op {
            "chat" | "text_completion" | "generate_content" | "completion" => SpanKind::Llm,
            "execute_tool" => SpanKind::Tool,
            "invoke_agent" | "create_agent" => SpanKind::Agent,
            "embeddings" => SpanKind::Embedding,
            _ => return None,
        };
        Some(kind)
    }

    /// Maps OpenLLMetry's `llm.request.type` (its spans carry no other kind) to a kind.
    pub fn from_llm_request_type(request_type: &str) -> Option<SpanKind> {
        let kind = match request_type {
            "chat" | "completion" => SpanKind::Llm,
            "embedding" => SpanKind::Embedding,
            "rerank" => SpanKind::Reranker,
            _ => return None,
        };
        Some(kind)
    }

    /// Maps OpenLLMetry's (Traceloop's) `traceloop.span.kind` to a kind.
    pub fn from_traceloop(kind: &str) -> Option<SpanKind> {
        let kind = match kind {
            "workflow" | "task" => SpanKind::Chain,
            "agent" => SpanKind::Agent,
            "tool" => SpanKind::Tool,
            _ => return None,
        };
        Some(kind)
    }

    /// Parses the upper-case name (as `as_str` writes it).
    pub fn parse(name: &str) -> Option<SpanKind> {
        if name.eq_ignore_ascii_case("UNKNOWN") {
            return Some(SpanKind::Unknown);
        }
        SpanKind::from_openinference(name)
    }
}

impl std::fmt::Display for SpanKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An OpenTelemetry status code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
pub enum StatusCode {
    /// `STATUS_CODE_UNSET`: the default.
    #[default]
    #[serde(rename = "STATUS_CODE_UNSET")]
    Unset,
    /// `STATUS_CODE_OK`.
    #[serde(rename = "STATUS_CODE_OK")]
    Ok,
    /// `STATUS_CODE_ERROR`: this is what makes an error span.
    #[serde(rename = "STATUS_CODE_ERROR")]
    Error,
}

impl StatusCode {
    /// The canonical format's name (`STATUS_CODE_ERROR`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            StatusCode::Unset => "STATUS_CODE_UNSET",
            StatusCode::Ok => "STATUS_CODE_OK",
            StatusCode::Error => "STATUS_CODE_ERROR",
        }
    }

    /// Reads a status code written as text (`STATUS_CODE_ERROR`, `ERROR`, `Error`) or as
    /// OTLP's integer (0 unset, 1 ok, 2 error).
    pub fn parse(text: &str) -> Option<StatusCode> {
        let t = text.trim();
        let t = t.strip_prefix("STATUS_CODE_").unwrap_or(t);
        // Compared without changing case: an upper-cased copy cost an allocation a span.
        let is = |word: &str| t.eq_ignore_ascii_case(word);
        if is("UNSET") || t == "0" || t.is_empty() {
            Some(StatusCode::Unset)
        } else if is("OK") || t == "1" {
            Some(StatusCode::Ok)
        } else if is("ERROR") || t == "2" {
            Some(StatusCode::Error)
        } else {
            None
        }
    }

    /// The number OTLP uses.
    pub fn otlp_number(self) -> u8 {
        match self {
            StatusCode::Unset => 0,
            StatusCode::Ok => 1,
            StatusCode::Error => 2,
        }
    }
}

/// Maps OTLP's integer span kind to the canonical format's name.
pub fn otel_kind_name(number: i64) -> &'static str {
    match number {
        1 => "SPAN_KIND_INTERNAL",
        2 => "SPAN_KIND_SERVER",
        3 => "SPAN_KIND_CLIENT",
        4 => "SPAN_KIND_PRODUCER",
        5 => "SPAN_KIND_CONSUMER",
        _ => "SPAN_KIND_UNSPECIFIED",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn openinference_kinds_read_in_any_case_and_unknown_only_by_parse() {
        for kind in SpanKind::ALL {
            let name = kind.as_str();
            let spaced_lower = format!(" {} ", name.to_ascii_lowercase());
            if kind == SpanKind::Unknown {
                assert_eq!(SpanKind::from_openinference(name), None);
                assert_eq!(SpanKind::parse(&name.to_ascii_lowercase()), Some(kind));
            } else {
                assert_eq!(SpanKind::from_openinference(name), Some(kind));
                assert_eq!(SpanKind::from_openinference(&spaced_lower), Some(kind));
                assert_eq!(SpanKind::parse(name), Some(kind));
            }
        }
        assert_eq!(SpanKind::from_openinference("LLMS"), None);
        assert_eq!(SpanKind::from_openinference(""), None);
    }
}
