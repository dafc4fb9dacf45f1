//! The chat messages and tool calls of an LLM span, in one shape across dialects.
//!
//! OpenInference flattens messages into indexed keys
//! (`llm.input_messages.1.message.tool_calls.0.tool_call.function.name`), and OpenLLMetry
//! into shorter ones (`gen_ai.completion.0.tool_calls.0.name`); GenAI stores JSON
//! arrays of `{role, parts}` in `gen_ai.input.messages` / `gen_ai.output.messages`. Views and
//! trace renderings read both through [`llm_messages`]. This is done on demand, when a span is
//! viewed, never while indexing.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::attr::AttrValue;
use crate::span::RawSpan;

/// A tool call requested by the model.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ToolCallRef {
    /// Call id, where recorded.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// Tool name.
    pub name: String,
    /// Arguments as JSON text.
    pub arguments: String,
}

/// One chat message.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ChatMessage {
    /// `system`, `user`, `assistant`, `tool`...
    pub role: String,
    /// Text content (text parts joined by newlines).
    pub content: String,
    /// Tool calls requested in this message.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub tool_calls: Vec<ToolCallRef>,
    /// For tool messages: which call this answers.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tool_call_id: Option<String>,
}

/// The input and output messages of an LLM span.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct LlmMessages {
    /// Messages sent to the model.
    pub input: Vec<ChatMessage>,
    /// Messages the model returned.
    pub output: Vec<ChatMessage>,
}

/// Reads the messages of a span from whichever dialect carries them.
pub fn llm_messages(span: &RawSpan<'_>) -> LlmMessages {
    let mut input = FlatMessages::default();
    let mut output = FlatMessages::default();
    let mut genai_in = None;
    let mut genai_out = None;
    for (key, value) in span.attributes.iter() {
        if let Some(rest) = key.strip_prefix("llm.input_messages.") {
            apply_flat(&mut input, rest, value);
        } else if let Some(rest) = key.strip_prefix("llm.output_messages.") {
            apply_flat(&mut output, rest, value);
        } else if let Some(rest) = key.strip_prefix("gen_ai.prompt.") {
            apply_flat_unprefixed(&mut input, rest, value);
        } else if let Some(rest) = key.strip_prefix("gen_ai.completion.") {
            apply_flat_unprefixed(&mut output, rest, value);
        } else if key == "gen_ai.input.messages" {
            genai_in = Some(value);
        } else if key == "gen_ai.output.messages" {
            genai_out = Some(value);
        }
    }
    let mut result = LlmMessages {
        input: input.finish(),
        output: output.finish(),
    };
    if result.input.is_empty() {
        if let Some(v) = genai_in {
            result.input = genai_list(v);
        }
    }
    if result.output.is_empty() {
        if let Some(v) = genai_out {
            result.output = genai_list(v);
        }
    }
    result
}

fn split_index(rest: &str) -> Option<(usize, &str)> {
    let dot = rest.find('.')?;
    Some((rest[..dot].parse().ok()?, &rest[dot + 1..]))
}

/// Messages read from flattened keys: by message index, and their tool calls by message
/// and call index, apart, so that only the calls named are made (an index of a billion
/// must not make a billion empty calls).
#[derive(Default)]
struct FlatMessages {
    messages: BTreeMap<usize, ChatMessage>,
    calls: BTreeMap<(usize, usize), ToolCallRef>,
}

impl FlatMessages {
    fn message(&mut self, n: usize) -> &mut ChatMessage {
        self.messages.entry(n).or_default()
    }

    fn call(&mut self, n: usize, m: usize) -> &mut ToolCallRef {
        self.messages.entry(n).or_default();
        self.calls.entry((n, m)).or_default()
    }

    /// The messages in order, each with its calls in order.
    fn finish(self) -> Vec<ChatMessage> {
        let mut messages = self.messages;
        for ((n, _), call) in self.calls {
            messages.entry(n).or_default().tool_calls.push(call);
        }
        messages.into_values().collect()
    }
}

fn apply_flat(messages: &mut FlatMessages, rest: &str, value: &AttrValue<'_>) {
    let Some((n, field)) = split_index(rest) else {
        return;
    };
    let text = value.as_text().map(|t| t.into_owned()).unwrap_or_default();
    if let Some(call) = field.strip_prefix("message.tool_calls.") {
        let Some((m, call_field)) = split_index(call) else {
            return;
        };
        let slot = messages.call(n, m);
        match call_field {
            "tool_call.id" => slot.id = Some(text),
            "tool_call.function.name" => slot.name = text,
            "tool_call.function.arguments" => slot.arguments = text,
            _ => {}
        }
        return;
    }
    let message = messages.message(n);
    match field {
        "message.role" => message.role = text,
        "message.content" => message.content = text,
        "message.tool_call_id" => message.tool_call_id = Some(text),
        _ => {
            if let Some(part) = field.strip_prefix("message.contents.") {
                if part.ends_with("message_content.text") && !text.is_empty() {
                    if !message.content.is_empty() {
                        message.content.push('\n');
                    }
                    message.content.push_str(&text);
                }
            }
        }
    }
}

/// OpenLLMetry's flattened messages (`gen_ai.prompt.N.role`, `gen_ai.completion.N.content`,
/// `gen_ai.completion.N.tool_calls.M.name`): OpenInference's fields without their
/// `message.` and `tool_call.function.` steps.
fn apply_flat_unprefixed(messages: &mut FlatMessages, rest: &str, value: &AttrValue<'_>) {
    let Some((n, field)) = split_index(rest) else {
        return;
    };
    let text = || value.as_text().map(|t| t.into_owned()).unwrap_or_default();
    match field {
        "role" => messages.message(n).role = text(),
        "content" => messages.message(n).content = text(),
        "tool_call_id" => messages.message(n).tool_call_id = Some(text()),
        _ => {
            let Some((m, call_field)) = field.strip_prefix("tool_calls.").and_then(split_index)
            else {
                return;
            };
            let slot = messages.call(n, m);
            match call_field {
                "id" => slot.id = Some(text()),
                "name" => slot.name = text(),
                "arguments" => slot.arguments = text(),
                _ => {}
            }
        }
    }
}

fn genai_list(value: &AttrValue<'_>) -> Vec<ChatMessage> {
    let parsed: serde_json::Value = match value {
        AttrValue::Json(j) => serde_json::from_str(j).unwrap_or_default(),
        other => match other.string() {
            Some(s) => serde_json::from_str(&s).unwrap_or_default(),
            None => return Vec::new(),
        },
    };
    let Some(items) = parsed.as_array() else {
        return Vec::new();
    };
    items.iter().map(genai_message).collect()
}

fn genai_message(m: &serde_json::Value) -> ChatMessage {
    let str_of = |v: Option<&serde_json::Value>| -> String {
        match v {
            Some(serde_json::Value::String(s)) => s.clone(),
            Some(serde_json::Value::Null) | None => String::new(),
            Some(other) => other.to_string(),
        }
    };
    let mut msg = ChatMessage {
        role: str_of(m.get("role")),
        ..Default::default()
    };
    let mut texts = Vec::new();
    for part in m
        .get("parts")
        .and_then(|p| p.as_array())
        .into_iter()
        .flatten()
    {
        match part.get("type").and_then(|t| t.as_str()) {
            Some("text") => texts.push(str_of(part.get("content"))),
            Some("tool_call") => msg.tool_calls.push(ToolCallRef {
                id: part.get("id").and_then(|i| i.as_str()).map(str::to_string),
                name: str_of(part.get("name")),
                arguments: str_of(part.get("arguments")),
            }),
            Some("tool_call_response") => {
                msg.tool_call_id = part.get("id").and_then(|i| i.as_str()).map(str::to_string);
                texts.push(str_of(part.get("response").or_else(|| part.get("result"))));
            }
            _ => {}
        }
    }
    msg.content = texts.join("\n");
    msg
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::span::parse_canonical;

    fn span_with(attrs: &'static str) -> RawSpan<'static> {
        let line = format!(
            r#"{{"trace_id":"t","span_id":"s","start_time":"2026-01-01T00:00:00Z","end_time":"2026-01-01T00:00:01Z","attributes":{attrs}}}"#
        );
        parse_canonical(Box::leak(line.into_boxed_str())).unwrap()
    }

    #[test]
    fn flat_openinference_messages() {
        let s = span_with(
            r#"{"llm.input_messages.1.message.role":"user","llm.input_messages.1.message.content":"hi",
            "llm.input_messages.0.message.role":"system","llm.input_messages.0.message.content":"be brief",
            "llm.output_messages.0.message.role":"assistant",
            "llm.output_messages.0.message.tool_calls.0.tool_call.id":"c1",
            "llm.output_messages.0.message.tool_calls.0.tool_call.function.name":"grep",
            "llm.output_messages.0.message.tool_calls.0.tool_call.function.arguments":"{\"q\":1}"}"#,
        );
        let m = llm_messages(&s);
        assert_eq!(
            m.input.iter().map(|m| m.role.as_str()).collect::<Vec<_>>(),
            ["system", "user"]
        );
        assert_eq!(m.output[0].tool_calls[0].name, "grep");
        assert_eq!(m.output[0].tool_calls[0].id.as_deref(), Some("c1"));
    }

    #[test]
    fn a_huge_call_index_makes_no_huge_list() {
        let s = span_with(
            r#"{"llm.output_messages.0.message.tool_calls.999999999.tool_call.function.name":"x",
            "gen_ai.completion.0.tool_calls.4000000000.name":"y",
            "llm.output_messages.0.message.tool_calls.1.tool_call.function.name":"grep"}"#,
        );
        let m = llm_messages(&s);
        let names: Vec<&str> = m.output[0]
            .tool_calls
            .iter()
            .map(|c| c.name.as_str())
            .collect();
        assert_eq!(names, ["grep", "x", "y"], "only the calls named, in order");
    }

    #[test]
    fn openllmetry_flat_messages() {
        let s = span_with(
            r#"{"llm.request.type":"chat","llm.request.functions.0.name":"get_weather","llm.usage.total_tokens":42,"gen_ai.prompt.0.role":"system","gen_ai.prompt.0.content":"be brief",
            "gen_ai.prompt.1.role":"user","gen_ai.prompt.1.content":"weather in Paris?",
            "gen_ai.completion.0.role":"assistant","gen_ai.completion.0.finish_reason":"tool_calls",
            "gen_ai.completion.0.tool_calls.0.id":"c1","gen_ai.completion.0.tool_calls.0.name":"get_weather",
            "gen_ai.completion.0.tool_calls.0.arguments":"{\"city\":\"Paris\"}"}"#,
        );
        let m = llm_messages(&s);
        assert_eq!(
            m.input
                .iter()
                .map(|m| (m.role.as_str(), m.content.as_str()))
                .collect::<Vec<_>>(),
            [("system", "be brief"), ("user", "weather in Paris?")]
        );
        let call = &m.output[0].tool_calls[0];
        assert_eq!(
            (
                call.id.as_deref(),
                call.name.as_str(),
                call.arguments.as_str()
            ),
            (Some("c1"), "get_weather", r#"{"city":"Paris"}"#)
        );
        let facts = crate::SpanFacts::extract(&s);
        assert_eq!(facts.kind, crate::SpanKind::Llm);
        assert_eq!(facts.input_head.as_deref(), Some("weather in Paris?"));
        assert_eq!(facts.requested_tools, ["get_weather"]);
        assert_eq!(facts.declared_tools, ["get_weather"]);
        assert_eq!(facts.tokens.total, Some(42));
    }

    #[test]
    fn genai_messages() {
        let s = span_with(
            r#"{"gen_ai.input.messages":"[{\"role\":\"tool\",\"parts\":[{\"type\":\"tool_call_response\",\"id\":\"c1\",\"response\":\"sunny\"}]}]",
            "gen_ai.output.messages":"[{\"role\":\"assistant\",\"parts\":[{\"type\":\"text\",\"content\":\"It is sunny\"}]}]"}"#,
        );
        let m = llm_messages(&s);
        assert_eq!(m.input[0].tool_call_id.as_deref(), Some("c1"));
        assert_eq!(m.input[0].content, "sunny");
        assert_eq!(m.output[0].content, "It is sunny");
    }
}
