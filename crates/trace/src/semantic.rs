//! One semantic view per span over three attribute dialects.
//!
//! Agent frameworks describe the same facts with different keys: OpenInference (`llm.*`,
//! `tool.*`, `input.value`), inference.net's export keys (`inference.*`) and the
//! OpenTelemetry GenAI conventions (`gen_ai.*`). [`SpanFacts::extract`] reads all of them in
//! one pass over the attributes and exposes one answer per fact. Where dialects disagree, the
//! first one in this order wins: inference.*, OpenInference, GenAI. Token counts come from the
//! first dialect that has any of them and are never summed across dialects, because exporters
//! often write the same numbers under two dialects.

use std::borrow::Cow;
use std::sync::LazyLock;

use memchr::memmem::Finder;

use crate::attr::AttrValue;
use crate::kind::{SpanKind, StatusCode};
use crate::span::RawSpan;

/// `\u` in escaped text: a unicode escape could spell any token that a quick search for it
/// would miss, so the searches below check for one too. Built once, as memmem's searchers
/// cost as much to build as to run on short texts.
static UNICODE_ESCAPE: LazyLock<Finder<'static>> = LazyLock::new(|| Finder::new(br"\u"));

mod escaped_message;

/// How many bytes of a payload (tool arguments and results, model input and output) the
/// facts keep. Full values stay in the source file; the index keeps heads.
pub const HEAD_CHARS: usize = 256;

/// How many bytes of an error message the facts keep: messages carry the detail that
/// groups failures, so they get more room than payloads.
pub const ERROR_HEAD_CHARS: usize = 512;

/// Token usage of one span, from a single dialect.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Tokens {
    /// Input (prompt) tokens.
    pub input: Option<i64>,
    /// Output (completion) tokens.
    pub output: Option<i64>,
    /// Total tokens: as written, else input + output.
    pub total: Option<i64>,
}

/// Everything halo-rs knows about a span without reading it again.
#[derive(Debug, Clone, PartialEq)]
pub struct SpanFacts<'a> {
    /// What the span does.
    pub kind: SpanKind,
    /// Model name (response model preferred over request model in GenAI).
    pub model: Option<Cow<'a, str>>,
    /// Token usage.
    pub tokens: Tokens,
    /// Cost in the data's currency, where the data carries it.
    pub cost: Option<f64>,
    /// Agent name.
    pub agent_name: Option<Cow<'a, str>>,
    /// Agent id.
    pub agent_id: Option<Cow<'a, str>>,
    /// Tool name, for tool spans.
    pub tool_name: Option<Cow<'a, str>>,
    /// Tool call arguments (head), for tool spans.
    pub tool_args: Option<Cow<'a, str>>,
    /// Tool result (head), for tool spans.
    pub tool_result: Option<Cow<'a, str>>,
    /// Input text (head) for non-tool spans: `input.value` or the last input message.
    pub input_head: Option<Cow<'a, str>>,
    /// Output text (head) for non-tool spans: the output message or `output.value`.
    pub output_head: Option<Cow<'a, str>>,
    /// Exception or error type.
    pub error_type: Option<Cow<'a, str>>,
    /// Error message (head): `exception.message`, else the status message of an error span;
    /// for a failed tool whose message only says that it failed ("Error running tool"),
    /// the message in its result.
    pub error_message: Option<Cow<'a, str>>,
    /// HTTP status code, where recorded.
    pub http_status: Option<i64>,
    /// Tool names an LLM span declared as available.
    pub declared_tools: Vec<Cow<'a, str>>,
    /// Tool names an LLM span asked to call.
    pub requested_tools: Vec<Cow<'a, str>>,
    /// Why the model stopped (`stop`, `tool_calls`, `length`, `content_filter`...).
    pub finish_reason: Option<Cow<'a, str>>,
    /// A refusal the model returned, where the dialect records one.
    pub refusal: Option<Cow<'a, str>>,
    /// Session (conversation) id.
    pub session_id: Option<Cow<'a, str>>,
    /// End-user id.
    pub user_id: Option<Cow<'a, str>>,
    /// Project id.
    pub project_id: Option<Cow<'a, str>>,
    /// A semantic outcome marker (`agent.outcome`, or `success` as `success`/`failure`).
    pub outcome: Option<Cow<'a, str>>,
}

/// Reads a dialect's kind marker (`LLM`, `execute_tool`, `chat`...) as a kind.
type KindReader = fn(&str) -> Option<SpanKind>;

/// Cuts text to at most `max` bytes, on a character boundary.
pub fn head(text: &str, max: usize) -> &str {
    if text.len() <= max {
        return text;
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

/// `text` on one line (white space runs become one space), cut to at most `max` bytes on
/// a character boundary with `…` when cut: for summaries and progress lines.
pub fn one_line(text: &str, max: usize) -> String {
    let flat: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
    let cut = head(&flat, max);
    if cut.len() < flat.len() {
        format!("{cut}…")
    } else {
        flat
    }
}

/// At most `max` characters of `text`, the last of them `…` when it was cut: for labels
/// with a budget in characters (finding titles, report cells, tool-result rows).
pub fn clip(text: &str, max: usize) -> Cow<'_, str> {
    match text.char_indices().nth(max) {
        None => Cow::Borrowed(text),
        Some(_) => {
            let keep = text
                .char_indices()
                .nth(max.saturating_sub(1))
                .map_or(text.len(), |(at, _)| at);
            Cow::Owned(format!("{}…", &text[..keep]))
        }
    }
}

/// `text` safe to show on a terminal or in a report: every control character but the line
/// break (escape sequences, bells, carriage returns, tabs, C1 controls) is written as its
/// JSON escape, `\u001b` say, as `halo grep` shows them, and so are the bidirectional
/// overrides and isolates (U+202A–U+202E, U+2066–U+2069), which reorder what follows them
/// on screen. Trace text is untrusted: a span name may hold a sequence that retitles or
/// clears the terminal it is printed on, or shows one tool's name as another's.
pub fn printable(text: &str) -> Cow<'_, str> {
    let unsafe_char = |c: char| {
        (c.is_control() && c != '\n')
            || matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
    };
    if !text.chars().any(unsafe_char) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 16);
    for c in text.chars() {
        if unsafe_char(c) {
            use std::fmt::Write as _;
            let _ = write!(out, "\\u{:04x}", u32::from(c));
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

fn cap(value: Cow<'_, str>) -> Cow<'_, str> {
    cap_at(value, HEAD_CHARS)
}

fn cap_at(value: Cow<'_, str>, max: usize) -> Cow<'_, str> {
    if value.len() <= max {
        return value;
    }
    match value {
        Cow::Borrowed(s) => Cow::Borrowed(head(s, max)),
        Cow::Owned(s) => Cow::Owned(head(&s, max).to_string()),
    }
}

/// Slots filled by one pass over the attributes; `first` keeps the first dialect's answer.
#[derive(Default)]
struct Slots<'s, 'a> {
    oi_kind: Option<&'s AttrValue<'a>>,
    inf_kind: Option<&'s AttrValue<'a>>,
    genai_op: Option<&'s AttrValue<'a>>,
    llm_request_type: Option<&'s AttrValue<'a>>,
    traceloop_kind: Option<&'s AttrValue<'a>>,
    traceloop_name: Option<&'s AttrValue<'a>>,
    traceloop_input: Option<&'s AttrValue<'a>>,
    traceloop_output: Option<&'s AttrValue<'a>>,
    model: [Option<&'s AttrValue<'a>>; 4],
    inf_tokens: [Option<&'s AttrValue<'a>>; 3],
    oi_tokens: [Option<&'s AttrValue<'a>>; 3],
    genai_tokens: [Option<&'s AttrValue<'a>>; 3],
    cost: [Option<&'s AttrValue<'a>>; 3],
    agent_name: [Option<&'s AttrValue<'a>>; 4],
    agent_id: [Option<&'s AttrValue<'a>>; 3],
    tool_name: [Option<&'s AttrValue<'a>>; 2],
    tool_args: [Option<&'s AttrValue<'a>>; 3],
    tool_result: [Option<&'s AttrValue<'a>>; 2],
    input_value: Option<&'s AttrValue<'a>>,
    output_value: Option<&'s AttrValue<'a>>,
    error_type: [Option<&'s AttrValue<'a>>; 2],
    error_message: [Option<&'s AttrValue<'a>>; 2],
    http_status: [Option<&'s AttrValue<'a>>; 2],
    finish_reason: [Option<&'s AttrValue<'a>>; 2],
    session: [Option<&'s AttrValue<'a>>; 3],
    user: [Option<&'s AttrValue<'a>>; 2],
    project: Option<&'s AttrValue<'a>>,
    outcome: Option<&'s AttrValue<'a>>,
    success: Option<&'s AttrValue<'a>>,
    genai_input_messages: Option<&'s AttrValue<'a>>,
    genai_output_messages: Option<&'s AttrValue<'a>>,
    genai_tool_definitions: Option<&'s AttrValue<'a>>,
    agent_tools: Option<&'s AttrValue<'a>>,
    last_input_content: Option<&'s AttrValue<'a>>,
    first_output_content: Option<&'s AttrValue<'a>>,
    refusal: Option<&'s AttrValue<'a>>,
    declared: Vec<&'s AttrValue<'a>>,
    requested: Vec<&'s AttrValue<'a>>,
}

fn set<'s, 'a>(slot: &mut Option<&'s AttrValue<'a>>, value: &'s AttrValue<'a>) {
    if slot.is_none() && !matches!(value, AttrValue::Null) {
        *slot = Some(value);
    }
}

fn text_of<'a>(slots: &[Option<&AttrValue<'a>>]) -> Option<Cow<'a, str>> {
    slots.iter().flatten().find_map(|v| v.as_text())
}

fn int_of(slots: &[Option<&AttrValue<'_>>]) -> Option<i64> {
    slots.iter().flatten().find_map(|v| v.as_i64())
}

/// A token count: a whole number from 0 up. Negative counts and numbers past `i64`
/// (such as `u64::MAX`, a common "unknown" sentinel) are not counts, and are left out
/// rather than let them swamp every sum they would enter.
fn token_count(value: &AttrValue<'_>) -> Option<i64> {
    value.as_i64().filter(|n| *n >= 0)
}

fn tokens_of(slots: &[Option<&AttrValue<'_>>; 3]) -> Option<Tokens> {
    let input = slots[0].and_then(token_count);
    let output = slots[1].and_then(token_count);
    let total = slots[2].and_then(token_count);
    if input.is_none() && output.is_none() && total.is_none() {
        return None;
    }
    let total = total.or_else(|| Some(input.unwrap_or(0).saturating_add(output.unwrap_or(0))));
    Some(Tokens {
        input,
        output,
        total,
    })
}

/// Reads `llm.output_messages.0.message.tool_calls.1.tool_call.function.name` style keys:
/// returns the part after `prefix.N.` when the key starts with `prefix.` and a number.
fn indexed_rest<'k>(key: &'k str, prefix: &str) -> Option<(usize, &'k str)> {
    let rest = key.strip_prefix(prefix)?.strip_prefix('.')?;
    // Plain digits then a dot, read by hand: LLM spans carry hundreds of these keys, and
    // `find` plus `parse` per key was a tenth of reading the facts. Anything else (a `+`
    // sign, no dot) goes the general way.
    let bytes = rest.as_bytes();
    let digits = bytes.iter().take_while(|b| b.is_ascii_digit()).count();
    if digits > 0 && bytes.get(digits) == Some(&b'.') {
        let n = bytes[..digits].iter().try_fold(0usize, |n, &d| {
            n.checked_mul(10)?.checked_add(usize::from(d - b'0'))
        })?;
        return Some((n, &rest[digits + 1..]));
    }
    let dot = rest.find('.')?;
    let n = rest[..dot].parse().ok()?;
    Some((n, &rest[dot + 1..]))
}

impl<'a> SpanFacts<'a> {
    /// Reads the facts of a span.
    pub fn extract(span: &RawSpan<'a>) -> SpanFacts<'a> {
        let mut s = Slots::default();
        let mut last_input_index = None;
        for (key, value) in span.attributes.0.iter() {
            let key: &str = key;
            match key {
                "openinference.span.kind" => set(&mut s.oi_kind, value),
                "inference.observation_kind" => set(&mut s.inf_kind, value),
                "gen_ai.operation.name" => set(&mut s.genai_op, value),
                "inference.llm.model_name" => set(&mut s.model[0], value),
                "llm.model_name" => set(&mut s.model[1], value),
                "gen_ai.response.model" => set(&mut s.model[2], value),
                "gen_ai.request.model" => set(&mut s.model[3], value),
                "inference.llm.input_tokens" => set(&mut s.inf_tokens[0], value),
                "inference.llm.output_tokens" => set(&mut s.inf_tokens[1], value),
                "inference.llm.total_tokens" => set(&mut s.inf_tokens[2], value),
                "llm.token_count.prompt" => set(&mut s.oi_tokens[0], value),
                "llm.token_count.completion" => set(&mut s.oi_tokens[1], value),
                "llm.token_count.total" => set(&mut s.oi_tokens[2], value),
                "gen_ai.usage.input_tokens" | "gen_ai.usage.prompt_tokens" => {
                    set(&mut s.genai_tokens[0], value)
                }
                "gen_ai.usage.output_tokens" | "gen_ai.usage.completion_tokens" => {
                    set(&mut s.genai_tokens[1], value)
                }
                "gen_ai.usage.total_tokens" | "llm.usage.total_tokens" => {
                    set(&mut s.genai_tokens[2], value)
                }
                "llm.request.type" => set(&mut s.llm_request_type, value),
                "traceloop.span.kind" => set(&mut s.traceloop_kind, value),
                "traceloop.entity.name" => set(&mut s.traceloop_name, value),
                "traceloop.entity.input" => set(&mut s.traceloop_input, value),
                "traceloop.entity.output" => set(&mut s.traceloop_output, value),
                "inference.llm.cost.total" => set(&mut s.cost[0], value),
                "llm.cost.total" => set(&mut s.cost[1], value),
                "gen_ai.usage.cost" => set(&mut s.cost[2], value),
                "inference.agent_name" => set(&mut s.agent_name[0], value),
                "gen_ai.agent.name" => set(&mut s.agent_name[1], value),
                "agent.name" => set(&mut s.agent_name[2], value),
                // Pydantic AI before the GenAI names.
                "agent_name" => set(&mut s.agent_name[3], value),
                "inference.agent_id" => set(&mut s.agent_id[0], value),
                "gen_ai.agent.id" => set(&mut s.agent_id[1], value),
                "agent.id" => set(&mut s.agent_id[2], value),
                "tool.name" => set(&mut s.tool_name[0], value),
                "gen_ai.tool.name" => set(&mut s.tool_name[1], value),
                "gen_ai.tool.call.arguments" => set(&mut s.tool_args[0], value),
                "tool.parameters" => set(&mut s.tool_args[1], value),
                // Pydantic AI before the GenAI names.
                "tool_arguments" => set(&mut s.tool_args[2], value),
                "gen_ai.tool.call.result" => set(&mut s.tool_result[0], value),
                "tool_response" => set(&mut s.tool_result[1], value),
                "input.value" => set(&mut s.input_value, value),
                "output.value" => set(&mut s.output_value, value),
                "exception.type" => set(&mut s.error_type[0], value),
                "error.type" => set(&mut s.error_type[1], value),
                "exception.message" => set(&mut s.error_message[0], value),
                "error.message" => set(&mut s.error_message[1], value),
                "http.status_code" => set(&mut s.http_status[0], value),
                "http.response.status_code" => set(&mut s.http_status[1], value),
                "gen_ai.response.finish_reasons" => set(&mut s.finish_reason[0], value),
                "llm.finish_reason" => set(&mut s.finish_reason[1], value),
                "inference.session_id" => set(&mut s.session[0], value),
                "session.id" => set(&mut s.session[1], value),
                "gen_ai.conversation.id" => set(&mut s.session[2], value),
                "inference.user_id" => set(&mut s.user[0], value),
                "user.id" => set(&mut s.user[1], value),
                "inference.project_id" => set(&mut s.project, value),
                "agent.outcome" => set(&mut s.outcome, value),
                "success" => set(&mut s.success, value),
                "gen_ai.input.messages" => set(&mut s.genai_input_messages, value),
                "gen_ai.output.messages" => set(&mut s.genai_output_messages, value),
                "gen_ai.tool.definitions" => set(&mut s.genai_tool_definitions, value),
                "agent.tools" => set(&mut s.agent_tools, value),
                // Flattened messages and tools: only keys that end in `content`,
                // `refusal`, `name` or `json_schema` are read, so the last four bytes turn
                // most away (roles, call ids, arguments); then the byte after `llm.` tells
                // which list a key can belong to, so only that prefix is compared.
                _ if key.starts_with("llm.")
                    && matches!(
                        &key.as_bytes()[key.len() - 4..],
                        b"tent" | b"usal" | b"name" | b"hema"
                    ) =>
                {
                    match key.as_bytes().get(4) {
                        Some(b'i') => {
                            if let Some((n, rest)) = indexed_rest(key, "llm.input_messages") {
                                if rest == "message.content"
                                    && last_input_index.is_none_or(|m| n >= m)
                                {
                                    last_input_index = Some(n);
                                    s.last_input_content = Some(value);
                                }
                            }
                        }
                        Some(b'o') => {
                            if let Some((n, rest)) = indexed_rest(key, "llm.output_messages") {
                                if n == 0 && rest == "message.content" {
                                    set(&mut s.first_output_content, value);
                                } else if rest == "message.refusal" {
                                    set(&mut s.refusal, value);
                                } else if rest.ends_with("tool_call.function.name") {
                                    s.requested.push(value);
                                }
                            }
                        }
                        Some(b't') => {
                            if let Some((_, rest)) = indexed_rest(key, "llm.tools") {
                                if rest == "tool.json_schema" || rest == "tool.name" {
                                    s.declared.push(value);
                                }
                            }
                        }
                        // OpenLLMetry's declared functions.
                        Some(b'r') => {
                            if let Some((_, "name")) = indexed_rest(key, "llm.request.functions") {
                                s.declared.push(value);
                            }
                        }
                        _ => {}
                    }
                }
                // OpenLLMetry's flattened messages (`gen_ai.prompt.N.content`,
                // `gen_ai.completion.N.tool_calls.M.name`), turned away by the same suffix
                // test before any prefix is compared.
                _ if key.starts_with("gen_ai.")
                    && matches!(&key.as_bytes()[key.len() - 4..], b"tent" | b"name") =>
                {
                    if let Some((n, rest)) = indexed_rest(key, "gen_ai.prompt") {
                        if rest == "content" && last_input_index.is_none_or(|m| n >= m) {
                            last_input_index = Some(n);
                            s.last_input_content = Some(value);
                        }
                    } else if let Some((n, rest)) = indexed_rest(key, "gen_ai.completion") {
                        if n == 0 && rest == "content" {
                            set(&mut s.first_output_content, value);
                        } else if rest.starts_with("tool_calls.") && rest.ends_with(".name") {
                            s.requested.push(value);
                        }
                    }
                }
                _ => {}
            }
        }
        Self::from_slots(span, s)
    }

    fn from_slots(span: &RawSpan<'a>, s: Slots<'_, 'a>) -> SpanFacts<'a> {
        // The first dialect's kind marker that carries a known value.
        let markers: [(_, KindReader); 5] = [
            (s.oi_kind, SpanKind::from_openinference),
            (s.inf_kind, SpanKind::from_openinference),
            (s.genai_op, SpanKind::from_genai_operation),
            (s.llm_request_type, SpanKind::from_llm_request_type),
            (s.traceloop_kind, SpanKind::from_traceloop),
        ];
        let kind = markers
            .iter()
            .find_map(|(slot, read)| slot.and_then(|v| v.as_text()).and_then(|t| read(&t)))
            // A span that names the tool it ran is a tool call, also without an operation
            // name (Pydantic AI's `running tool` spans carry only `gen_ai.tool.name`).
            .or_else(|| text_of(&s.tool_name).map(|_| SpanKind::Tool))
            // Pydantic AI's `agent run` span names its agent and nothing else (and carries
            // the run's total usage, which must not add to its calls').
            .or_else(|| {
                let named_run =
                    span.name.starts_with("agent run") || span.name.starts_with("invoke_agent");
                (named_run && text_of(&s.agent_name).is_some()).then_some(SpanKind::Agent)
            })
            .unwrap_or(SpanKind::Unknown);
        let tokens = tokens_of(&s.inf_tokens)
            .or_else(|| tokens_of(&s.oi_tokens))
            .or_else(|| tokens_of(&s.genai_tokens))
            .unwrap_or_default();
        let is_tool = kind == SpanKind::Tool;
        // Traceloop names its tools, tasks and agents in one key.
        let traceloop_name = s.traceloop_name.and_then(|v| v.as_text());
        let tool_name = text_of(&s.tool_name).or_else(|| {
            // Frameworks without tool.name still name tool spans after the tool
            // (`function.list_files`, `execute_tool get_weather`).
            is_tool
                .then(|| {
                    traceloop_name
                        .clone()
                        .or_else(|| tool_name_from_span_name(&span.name))
                })
                .flatten()
        });
        let input_value = s.input_value.or(s.traceloop_input);
        let output_value = s.output_value.or(s.traceloop_output);
        // Payloads are read only as far as their heads: decoding whole prompts and tool
        // results to keep 256 bytes of each was a large share of indexing time.
        let capped = |v: &AttrValue<'a>| v.text_head(HEAD_CHARS).map(cap);
        let (tool_args, tool_result) = if is_tool {
            (
                s.tool_args
                    .iter()
                    .flatten()
                    .find_map(|v| capped(v))
                    .or_else(|| input_value.and_then(capped)),
                s.tool_result
                    .iter()
                    .flatten()
                    .copied()
                    .next()
                    .or(output_value)
                    .and_then(capped),
            )
        } else {
            (None, None)
        };
        let (input_head, output_head) = if is_tool {
            (None, None)
        } else {
            // Flattened message content first, then the GenAI message list, then the
            // plain value: the same order for input and output.
            let head = |content: Option<&AttrValue<'a>>,
                        messages: Option<&AttrValue<'a>>,
                        value: Option<&AttrValue<'a>>| {
                content
                    .and_then(capped)
                    .or_else(|| messages.and_then(|v| last_genai_text(v)).map(cap))
                    .or_else(|| value.and_then(capped))
            };
            let input = head(s.last_input_content, s.genai_input_messages, input_value);
            let output = head(
                s.first_output_content,
                s.genai_output_messages,
                output_value,
            );
            (input, output)
        };
        let error_type = text_of(&s.error_type).map(cap);
        let error_message = s
            .error_message
            .iter()
            .flatten()
            .find_map(|v| {
                // A traceback is read whole: what failed is in its last lines.
                let head = v.text_head(ERROR_HEAD_CHARS)?;
                if head.contains("Traceback (most recent call last):") {
                    v.as_text()
                } else {
                    Some(head)
                }
            })
            .or_else(|| {
                (span.status_code == StatusCode::Error && !span.status_message.is_empty())
                    .then(|| span.status_message.clone())
            })
            // A traceback says what failed in its last lines, past any head kept.
            .map(|m| match crate::traceback::traceback_exception(&m) {
                Some(exception) => Cow::Owned(exception.to_string()),
                None => m,
            })
            .map(|m| cap_at(m, ERROR_HEAD_CHARS));
        // A failed tool whose error only says that it failed: the details after that
        // say why, or else its result does.
        let error_message = if is_tool && span.status_code == StatusCode::Error {
            let reason = error_message
                .as_deref()
                .and_then(crate::tool_error::reason_after_generic)
                .map(Cow::into_owned);
            let from_result = || {
                let generic = error_message
                    .as_deref()
                    .is_none_or(crate::tool_error::is_generic_tool_error);
                tool_result
                    .as_deref()
                    .filter(|_| generic)
                    .map(|r| crate::tool_error::message_in_result(r).into_owned())
            };
            match reason.or_else(from_result) {
                Some(said) => Some(cap_at(Cow::Owned(said), ERROR_HEAD_CHARS)),
                None => error_message,
            }
        } else {
            error_message
        };
        let mut declared_tools: Vec<Cow<'a, str>> = s
            .declared
            .iter()
            .filter_map(|v| declared_tool_name(v))
            .collect();
        if let Some(defs) = s.genai_tool_definitions {
            declared_tools.extend(names_in_json_list(defs));
        }
        if declared_tools.is_empty() && kind == SpanKind::Agent {
            if let Some(tools) = s.agent_tools {
                declared_tools.extend(names_in_json_list(tools));
            }
        }
        let mut requested_tools: Vec<Cow<'a, str>> =
            s.requested.iter().filter_map(|v| v.as_text()).collect();
        if requested_tools.is_empty() {
            if let Some(out) = s.genai_output_messages {
                requested_tools = genai_tool_calls(out).into_iter().map(Cow::Owned).collect();
            }
        }
        // A list (GenAI's `finish_reasons`), also when written as a JSON string or a
        // Python list repr; an empty list says nothing.
        let list = |j: &str| {
            serde_json::from_str::<Vec<String>>(j)
                .or_else(|_| serde_json::from_str::<Vec<String>>(&j.replace('\'', "\"")))
                .ok()
        };
        let finish_reason = s.finish_reason.iter().flatten().find_map(|v| match v {
            AttrValue::Json(j) => list(j).and_then(|l| l.into_iter().next()).map(Cow::Owned),
            other => other.as_text().and_then(|t| {
                if !t.trim_start().starts_with('[') {
                    return Some(t);
                }
                match list(&t) {
                    Some(l) => l.into_iter().next().map(Cow::Owned),
                    None => Some(t),
                }
            }),
        });
        let outcome = s.outcome.and_then(|v| v.as_text()).or_else(|| {
            s.success
                .and_then(|v| v.as_bool())
                .map(|ok| Cow::Borrowed(if ok { "success" } else { "failure" }))
        });
        SpanFacts {
            kind,
            model: text_of(&s.model),
            tokens,
            cost: s
                .cost
                .iter()
                .flatten()
                .find_map(|v| v.as_f64().filter(|c| c.is_finite())),
            agent_name: text_of(&s.agent_name)
                .or_else(|| traceloop_name.filter(|_| kind == SpanKind::Agent)),
            agent_id: text_of(&s.agent_id),
            tool_name,
            tool_args,
            tool_result,
            input_head,
            output_head,
            error_type,
            error_message,
            http_status: int_of(&s.http_status),
            declared_tools,
            requested_tools,
            finish_reason,
            refusal: s.refusal.and_then(capped),
            session_id: text_of(&s.session),
            user_id: text_of(&s.user),
            project_id: s.project.and_then(|v| v.as_text()),
            outcome,
        }
    }
}

/// `function.list_files` -> `list_files`; `execute_tool get_weather` -> `get_weather`.
fn tool_name_from_span_name<'a>(name: &Cow<'a, str>) -> Option<Cow<'a, str>> {
    fn strip(n: &str) -> &str {
        n.strip_prefix("function.")
            .or_else(|| n.strip_prefix("execute_tool "))
            .or_else(|| n.strip_prefix("tool."))
            .unwrap_or(n)
            .trim()
    }
    let stripped = match name {
        Cow::Borrowed(n) => Cow::Borrowed(strip(n)),
        Cow::Owned(n) => Cow::Owned(strip(n).to_string()),
    };
    (!stripped.is_empty()).then_some(stripped)
}

/// A declared tool is a JSON schema (`{"type":"function","function":{"name":..}}` or
/// `{"name":..}`) or a bare name.
fn declared_tool_name<'a>(value: &AttrValue<'a>) -> Option<Cow<'a, str>> {
    if let AttrValue::RawStr(raw) = value {
        if let Some(name) = name_in_escaped_definition(raw) {
            return Some(Cow::Borrowed(name));
        }
    }
    match value {
        AttrValue::Json(j) => name_of_definition(j).map(Cow::Owned),
        other => {
            let text = other.as_text()?;
            if text.trim_start().starts_with('{') {
                name_of_definition(&text).map(Cow::Owned)
            } else {
                Some(text)
            }
        }
    }
}

/// Just the name of a tool definition, read without building a JSON tree (schemas are
/// long, and an LLM span can declare dozens).
#[derive(serde::Deserialize)]
struct ToolDefinition<'a> {
    #[serde(borrow, default)]
    name: Option<crate::attr::CowStr<'a>>,
    #[serde(borrow, default)]
    function: Option<FunctionName<'a>>,
}

#[derive(serde::Deserialize)]
struct FunctionName<'a> {
    #[serde(borrow, default)]
    name: Option<crate::attr::CowStr<'a>>,
}

/// The tool name of a definition still in its escaped JSON-string form
/// (`"{\"type\":\"function\",\"function\":{\"name\":\"x\",...`), found without decoding
/// the (often long) schema: the first `name` key before any `parameters`/`properties`.
/// `None` when that is not certain; the caller then decodes and parses.
fn name_in_escaped_definition(raw: &str) -> Option<&str> {
    // The openings definitions are usually written with (compact, and as Python's
    // `json.dumps` spaces them) name the tool first: no need to search for the key.
    const OPENINGS: [&str; 2] = [
        r#""{\"type\":\"function\",\"function\":{\"name\":"#,
        r#""{\"type\": \"function\", \"function\": {\"name\": "#,
    ];
    if let Some(rest) = OPENINGS.iter().find_map(|o| raw.strip_prefix(o)) {
        return escaped_name_value(rest);
    }
    static NAME: LazyLock<Finder<'static>> = LazyLock::new(|| Finder::new(br#"\"name\""#));
    static PARAMETERS: LazyLock<Finder<'static>> = LazyLock::new(|| Finder::new(b"parameters"));
    static PROPERTIES: LazyLock<Finder<'static>> = LazyLock::new(|| Finder::new(b"properties"));
    let key = NAME.find(raw.as_bytes())?;
    if key > 0 && raw.as_bytes()[key - 1] == b'\\' {
        return None;
    }
    let before = &raw.as_bytes()[..key];
    if PARAMETERS.find(before).is_some() || PROPERTIES.find(before).is_some() {
        return None;
    }
    let rest = raw[key + 8..].trim_start();
    escaped_name_value(rest.strip_prefix(':')?)
}

/// The name at the start of `rest` (after a name key's colon): an escaped string without
/// escapes inside, such as `\"get_weather\"`.
fn escaped_name_value(rest: &str) -> Option<&str> {
    let rest = rest.trim_start().strip_prefix("\\\"")?;
    // Names are a few bytes long: a plain loop finds their end sooner than a `memchr`
    // search is set up (this runs for every tool definition on every LLM span).
    let end = rest.bytes().position(|b| b == b'\\' || b == b'"')?;
    let name = &rest[..end];
    (rest[end..].starts_with("\\\"") && !name.is_empty()).then_some(name)
}

fn name_of_definition(json: &str) -> Option<String> {
    let def: ToolDefinition = serde_json::from_str(json).ok()?;
    def.function
        .and_then(|f| f.name)
        .or(def.name)
        .map(|n| n.0.into_owned())
}

/// Tool names from a JSON list of names or of tool definitions, read without building a
/// JSON tree; borrowed from the line where they are written there as they read.
fn names_in_json_list<'a>(value: &AttrValue<'a>) -> Vec<Cow<'a, str>> {
    let in_line: Option<&'a str> = match value {
        AttrValue::RawStr(r) => Some(r),
        AttrValue::Json(Cow::Borrowed(j)) | AttrValue::Str(Cow::Borrowed(j)) => Some(j),
        _ => None,
    };
    if let Some(raw) = in_line {
        return crate::memo::tool_names(raw, || read_names_in_json_list(value));
    }
    // A value not borrowed from the line (decoded, or from another format) has nothing
    // the names could borrow from for as long as the facts live.
    let raw = match value {
        AttrValue::Json(j) | AttrValue::Str(j) => j.as_ref(),
        _ => return Vec::new(),
    };
    crate::memo::tool_names(raw, || read_names_in_json_list(value))
        .into_iter()
        .map(|name| Cow::Owned(name.into_owned()))
        .collect()
}

fn read_names_in_json_list(value: &AttrValue<'_>) -> Vec<String> {
    let Some(text) = json_text(value) else {
        return Vec::new();
    };
    let Ok(items) = serde_json::from_str::<Vec<&serde_json::value::RawValue>>(&text) else {
        return Vec::new();
    };
    items
        .into_iter()
        .filter_map(|raw| {
            // Names are strings, definitions objects; telling them apart by the first byte
            // avoids serde's buffering of untagged enums.
            if raw.get().starts_with('"') {
                serde_json::from_str::<crate::attr::CowStr>(raw.get())
                    .ok()
                    .map(|n| n.0.into_owned())
            } else {
                name_of_definition(raw.get())
            }
        })
        .collect()
}

/// The JSON text an attribute holds: a JSON value, or a string that contains JSON.
fn json_text<'v>(value: &'v AttrValue<'_>) -> Option<Cow<'v, str>> {
    match value {
        AttrValue::Json(j) => Some(Cow::Borrowed(j.as_ref())),
        other => other.string(),
    }
}

/// A GenAI message, read without building a JSON tree: only part types, texts and tool
/// names are kept, borrowed from the attribute.
#[derive(serde::Deserialize)]
struct GenaiMessage<'a> {
    #[serde(borrow, default)]
    parts: Vec<GenaiPart<'a>>,
}

#[derive(serde::Deserialize)]
struct GenaiPart<'a> {
    #[serde(borrow, default, rename = "type")]
    kind: Option<crate::attr::CowStr<'a>>,
    #[serde(borrow, default)]
    content: Option<&'a serde_json::value::RawValue>,
    #[serde(borrow, default)]
    name: Option<crate::attr::CowStr<'a>>,
}

fn with_genai_messages<T>(
    value: &AttrValue<'_>,
    f: impl FnOnce(Vec<GenaiMessage<'_>>) -> T,
) -> Option<T> {
    let text = json_text(value)?;
    let messages: Vec<GenaiMessage> = serde_json::from_str(&text).ok()?;
    Some(f(messages))
}

/// The text of the last message with text parts, from `gen_ai.input/output.messages`.
fn last_genai_text<'a>(value: &AttrValue<'_>) -> Option<Cow<'a, str>> {
    if let AttrValue::RawStr(raw) = value {
        if let Some(found) = last_genai_text_from_the_end(raw) {
            return found;
        }
    }
    with_genai_messages(value, |messages| {
        messages.iter().rev().find_map(message_text)
    })
    .flatten()
}

/// The text parts of a message joined by line breaks, or `None` when it has none.
fn message_text<'a>(m: &GenaiMessage<'_>) -> Option<Cow<'a, str>> {
    let texts: Vec<String> = m
        .parts
        .iter()
        .filter(|p| p.kind.as_ref().is_some_and(|k| k.0 == "text"))
        .filter_map(|p| {
            p.content
                .and_then(|c| serde_json::from_str::<String>(c.get()).ok())
        })
        .collect();
    (!texts.is_empty()).then(|| Cow::Owned(texts.join("\n")))
}

/// [`last_genai_text`] for a message list still in its escaped string form, reading
/// messages from the end and decoding only those it needs: input messages carry the whole
/// conversation so far, and decoding all of it for each LLM span made indexing quadratic
/// in the number of turns.
///
/// Messages start where the escaped text has `{\"role\"`: a quote inside a nested string
/// is escaped twice (`\\\"`), so that sequence can only be a message boundary. Anything
/// unexpected (another key order, escapes for structure) answers `None`, and the caller
/// reads the whole list.
fn last_genai_text_from_the_end<'a>(raw: &str) -> Option<Option<Cow<'a, str>>> {
    static TEXT: LazyLock<Finder<'static>> = LazyLock::new(|| Finder::new(br#"\"text\""#));
    let inner = raw.get(1..raw.len().checked_sub(1)?)?;
    let mut end = inner.trim_end().strip_suffix(']')?.len();
    loop {
        let Some(start) = last_message_start(&inner.as_bytes()[..end]) else {
            // Every message was read: the list must have started right before this one.
            return (inner[..end].trim() == "[").then_some(None);
        };
        let segment = &inner[start..end];
        // A message without the token `"text"` has no text part; unless it has `\u`
        // escapes, which could spell that token, it need not be decoded at all.
        let may_have_text = TEXT.find(segment.as_bytes()).is_some()
            || UNICODE_ESCAPE.find(segment.as_bytes()).is_some();
        if may_have_text {
            let text = match escaped_message::text_head(segment, HEAD_CHARS) {
                Some(head) => head.map(Cow::Owned),
                None => decoded_message_text(segment)?,
            };
            if let Some(text) = text {
                return Some(Some(text));
            }
        }
        let before = inner[..start].trim_end();
        end = match before.strip_suffix(',') {
            Some(rest) => rest.len(),
            None => return (before == "[").then_some(None),
        };
    }
}

/// The text of one message in escaped form, decoded and parsed by serde: the general way
/// behind [`escaped_message::text_head`]. `None` when the message is not valid.
fn decoded_message_text<'a>(segment: &str) -> Option<Option<Cow<'a, str>>> {
    let decoded: String = serde_json::from_str(&format!("\"{segment}\"")).ok()?;
    let message: GenaiMessage = serde_json::from_str(&decoded).ok()?;
    Some(message_text(&message))
}

/// Where the last `{\"role\"` in `escaped` starts. Found by walking back over the braces
/// with `memrchr`, which is vectorized, where a reverse substring search goes about a byte
/// at a time: message lists are long, and this walk was a tenth of indexing time.
fn last_message_start(escaped: &[u8]) -> Option<usize> {
    const KEY: &[u8] = br#"{\"role\""#;
    let mut end = escaped.len();
    while let Some(at) = memchr::memrchr(b'{', &escaped[..end]) {
        if escaped[at..].starts_with(KEY) {
            return Some(at);
        }
        end = at;
    }
    None
}

/// Names of the `tool_call` parts of `gen_ai.output.messages`.
fn genai_tool_calls(value: &AttrValue<'_>) -> Vec<String> {
    // Most output messages are plain text: without the token `tool_call` (or a `\u`
    // escape, which could spell it) there is nothing to find, and no need to decode and
    // parse the whole list.
    let raw = match value {
        AttrValue::Json(j) => Some(j.as_ref()),
        AttrValue::RawStr(r) => Some(*r),
        AttrValue::Str(s) => Some(s.as_ref()),
        _ => None,
    };
    if let Some(raw) = raw {
        // Built once: `memmem::find` builds its searcher on every call, which cost as
        // much as the search on these short texts.
        static TOOL_CALL: LazyLock<Finder<'static>> = LazyLock::new(|| Finder::new(b"tool_call"));
        let bytes = raw.as_bytes();
        if TOOL_CALL.find(bytes).is_none() && UNICODE_ESCAPE.find(bytes).is_none() {
            return Vec::new();
        }
    }
    // A list in escaped form is read where it is: decoding it and parsing the copy cost
    // more than the rest of the span's facts.
    if let AttrValue::RawStr(raw) = value {
        let inner = raw.get(1..raw.len().saturating_sub(1));
        if let Some(names) = inner.and_then(escaped_message::tool_call_names) {
            return names;
        }
    }
    decoded_tool_call_names(value)
}

/// [`genai_tool_calls`] the general way: the list decoded and parsed by serde.
fn decoded_tool_call_names(value: &AttrValue<'_>) -> Vec<String> {
    with_genai_messages(value, |messages| {
        messages
            .iter()
            .flat_map(|m| m.parts.iter())
            .filter(|p| p.kind.as_ref().is_some_and(|k| k.0 == "tool_call"))
            .filter_map(|p| p.name.as_ref().map(|n| n.0.to_string()))
            .collect()
    })
    .unwrap_or_default()
}

#[cfg(test)]
mod tests;
