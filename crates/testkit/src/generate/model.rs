//! In-memory model of a generated trace: spans, attribute values, services.

use std::borrow::Cow;

/// An attribute value, rich enough to express every OTLP `AnyValue` shape we emit.
#[derive(Debug, Clone, PartialEq)]
pub enum AttrValue {
    /// A UTF-8 string.
    Str(String),
    /// A 64-bit signed integer.
    Int(i64),
    /// A double.
    Float(f64),
    /// A boolean.
    Bool(bool),
    /// An array of strings (e.g. `gen_ai.response.finish_reasons`).
    StrArray(Vec<String>),
    /// A nested key/value list. The canonical writer flattens it to dotted keys,
    /// the OTLP writer emits a `kvlistValue`.
    Map(Vec<(String, AttrValue)>),
    /// An explicit JSON null (canonical only; omitted in OTLP).
    Null,
}

impl From<&str> for AttrValue {
    fn from(s: &str) -> Self {
        AttrValue::Str(s.to_owned())
    }
}
impl From<String> for AttrValue {
    fn from(s: String) -> Self {
        AttrValue::Str(s)
    }
}
impl From<i64> for AttrValue {
    fn from(v: i64) -> Self {
        AttrValue::Int(v)
    }
}
impl From<u64> for AttrValue {
    fn from(v: u64) -> Self {
        AttrValue::Int(v as i64)
    }
}
impl From<f64> for AttrValue {
    fn from(v: f64) -> Self {
        AttrValue::Float(v)
    }
}
impl From<bool> for AttrValue {
    fn from(v: bool) -> Self {
        AttrValue::Bool(v)
    }
}

/// OpenTelemetry span kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SpanKind {
    /// `SPAN_KIND_INTERNAL` (OTLP 1).
    Internal,
    /// `SPAN_KIND_SERVER` (OTLP 2).
    Server,
    /// `SPAN_KIND_CLIENT` (OTLP 3).
    Client,
}

impl SpanKind {
    /// The canonical (protobuf enum name) spelling.
    pub fn canonical(self) -> &'static str {
        match self {
            SpanKind::Internal => "SPAN_KIND_INTERNAL",
            SpanKind::Server => "SPAN_KIND_SERVER",
            SpanKind::Client => "SPAN_KIND_CLIENT",
        }
    }
    /// The OTLP/JSON integer.
    pub fn otlp(self) -> u8 {
        match self {
            SpanKind::Internal => 1,
            SpanKind::Server => 2,
            SpanKind::Client => 3,
        }
    }
}

/// Span status code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatusCode {
    /// `STATUS_CODE_UNSET` (OTLP 0).
    Unset,
    /// `STATUS_CODE_OK` (OTLP 1).
    Ok,
    /// `STATUS_CODE_ERROR` (OTLP 2).
    Error,
}

impl StatusCode {
    /// The canonical spelling.
    pub fn canonical(self) -> &'static str {
        match self {
            StatusCode::Unset => "STATUS_CODE_UNSET",
            StatusCode::Ok => "STATUS_CODE_OK",
            StatusCode::Error => "STATUS_CODE_ERROR",
        }
    }
    /// The OTLP/JSON integer.
    pub fn otlp(self) -> u8 {
        match self {
            StatusCode::Unset => 0,
            StatusCode::Ok => 1,
            StatusCode::Error => 2,
        }
    }
}

/// A span event (only `exception` events are generated).
#[derive(Debug, Clone, PartialEq)]
pub struct SpanEvent {
    /// Event name.
    pub name: &'static str,
    /// Event time, Unix nanoseconds.
    pub time_ns: u64,
    /// Event attributes.
    pub attributes: Vec<(Cow<'static, str>, AttrValue)>,
}

/// Which attribute vocabulary a service's instrumentation speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    /// OpenInference keys (`openinference.span.kind`, `llm.*`, `tool.*`).
    OpenInference,
    /// OpenTelemetry GenAI semantic conventions (`gen_ai.*`).
    GenAi,
}

/// Static description of one simulated service (resource + instrumentation style).
#[derive(Debug)]
pub struct Service {
    /// `service.name`.
    pub name: &'static str,
    /// `service.version`.
    pub version: &'static str,
    /// `deployment.environment`.
    pub environment: &'static str,
    /// Attribute dialect.
    pub dialect: Dialect,
    /// Whether spans also carry inference.net's `inference.*` keys.
    pub inference_keys: bool,
    /// Instrumentation scope name.
    pub scope_name: &'static str,
    /// Instrumentation scope version.
    pub scope_version: &'static str,
    /// Whether each turn gets its own CHAIN span.
    pub turn_spans: bool,
    /// Whether the root span is a CHAIN (LangGraph-style) instead of an AGENT.
    pub chain_root: bool,
    /// `inference.project_id`, when the service reports one.
    pub project_id: &'static str,
}

/// One span of a generated trace.
#[derive(Debug, Clone)]
pub struct Span {
    /// 32 lowercase hex digits.
    pub trace_id: String,
    /// 16 lowercase hex digits.
    pub span_id: String,
    /// Parent span id, empty for the root.
    pub parent_span_id: String,
    /// Span name.
    pub name: String,
    /// Span kind.
    pub kind: SpanKind,
    /// Start, Unix nanoseconds.
    pub start_ns: u64,
    /// End, Unix nanoseconds.
    pub end_ns: u64,
    /// Status code.
    pub status: StatusCode,
    /// Status message (empty unless an error).
    pub status_message: String,
    /// Flat attributes, in emission order.
    pub attributes: Vec<(Cow<'static, str>, AttrValue)>,
    /// Span events.
    pub events: Vec<SpanEvent>,
}

impl Span {
    /// Looks up an attribute by key.
    pub fn attr(&self, key: &str) -> Option<&AttrValue> {
        self.attributes
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v)
    }

    /// Looks up a string attribute by key.
    pub fn attr_str(&self, key: &str) -> Option<&str> {
        match self.attr(key) {
            Some(AttrValue::Str(s)) => Some(s),
            _ => None,
        }
    }
}

/// One generated trace with its planted failure mode (None = clean).
#[derive(Debug, Clone)]
pub struct Trace {
    /// 32 lowercase hex digits.
    pub trace_id: String,
    /// The planted failure mode, `None` for a clean trace.
    pub mode: Option<super::FailureMode>,
    /// The emitting service.
    pub service: &'static Service,
    /// Spans in creation order (root first).
    pub spans: Vec<Span>,
}

/// The simulated services; their dialects differ so the ingest normalizer is exercised.
pub static SERVICES: [Service; 4] = [
    Service {
        name: "appworld-agent",
        version: "1.8.2",
        environment: "prod",
        dialect: Dialect::OpenInference,
        inference_keys: true,
        scope_name: "openinference.instrumentation.openai_agents",
        scope_version: "1.4.2",
        turn_spans: true,
        chain_root: false,
        project_id: "prj_appworld_eval",
    },
    Service {
        name: "assistant-api",
        version: "0.31.0",
        environment: "prod",
        dialect: Dialect::OpenInference,
        inference_keys: false,
        scope_name: "openinference.instrumentation.langchain",
        scope_version: "0.1.45",
        turn_spans: true,
        chain_root: true,
        project_id: "",
    },
    Service {
        name: "genai-orchestrator",
        version: "2.3.0",
        environment: "staging",
        dialect: Dialect::GenAi,
        inference_keys: false,
        scope_name: "opentelemetry.instrumentation.genai",
        scope_version: "0.3b0",
        turn_spans: false,
        chain_root: false,
        project_id: "",
    },
    Service {
        name: "mobile-copilot",
        version: "4.0.1",
        environment: "prod",
        dialect: Dialect::GenAi,
        inference_keys: true,
        scope_name: "inference.sdk.genai",
        scope_version: "0.9.3",
        turn_spans: false,
        chain_root: false,
        project_id: "prj_mobile_copilot",
    },
];
