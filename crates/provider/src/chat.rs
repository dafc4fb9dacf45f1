//! The Chat Completions wire: request body and stream decoding.

use serde_json::{json, Map, Value};

use crate::assemble::Attempt;
use crate::error::ProviderError;
use crate::retry::{from_api_error, AttemptFailure};
use crate::sse::SseEvent;
use crate::types::{FinishReason, Message, ModelRequest};
use crate::usage::usage_from;

/// Builds the `POST /chat/completions` body.
pub(crate) fn request_body(req: &ModelRequest) -> Value {
    let messages: Vec<Value> = req.messages.iter().map(message).collect();
    let mut body = Map::new();
    body.insert("model".into(), json!(req.model));
    body.insert("messages".into(), Value::Array(messages));
    body.insert("stream".into(), json!(true));
    body.insert("stream_options".into(), json!({"include_usage": true}));
    if !req.tools.is_empty() {
        let tools: Vec<Value> = req
            .tools
            .iter()
            .map(|t| {
                json!({
                    "type": "function",
                    "function": {
                        "name": t.name,
                        "description": t.description,
                        "parameters": t.parameters,
                    }
                })
            })
            .collect();
        body.insert("tools".into(), Value::Array(tools));
        if let Some(p) = req.parallel_tool_calls {
            body.insert("parallel_tool_calls".into(), json!(p));
        }
    }
    if let Some(t) = req.temperature {
        body.insert("temperature".into(), json!(t));
    }
    if let Some(m) = req.max_output_tokens {
        body.insert("max_completion_tokens".into(), json!(m));
    }
    if let Some(e) = req.reasoning_effort {
        body.insert("reasoning_effort".into(), json!(e.as_str()));
    }
    Value::Object(body)
}

fn message(m: &Message) -> Value {
    match m {
        Message::System { content } => json!({"role": "system", "content": content}),
        Message::User { content } => json!({"role": "user", "content": content}),
        Message::Assistant {
            content,
            tool_calls,
        } => {
            let mut v = Map::new();
            v.insert("role".into(), json!("assistant"));
            if tool_calls.is_empty() {
                v.insert("content".into(), json!(content));
            } else {
                let content = if content.is_empty() {
                    Value::Null
                } else {
                    json!(content)
                };
                v.insert("content".into(), content);
                let calls: Vec<Value> = tool_calls
                    .iter()
                    .map(|c| {
                        json!({
                            "id": c.id,
                            "type": "function",
                            "function": {"name": c.name, "arguments": c.arguments},
                        })
                    })
                    .collect();
                v.insert("tool_calls".into(), Value::Array(calls));
            }
            Value::Object(v)
        }
        Message::Tool {
            tool_call_id,
            content,
        } => json!({"role": "tool", "tool_call_id": tool_call_id, "content": content}),
    }
}

/// Decodes one SSE event of a Chat Completions stream into `att`.
pub(crate) fn decode(ev: &SseEvent, att: &mut Attempt) -> Result<(), AttemptFailure> {
    let data = ev.data.trim();
    if data.is_empty() {
        return Ok(());
    }
    if data == "[DONE]" {
        att.complete = true;
        return Ok(());
    }
    let chunk: Value = serde_json::from_str(data).map_err(|e| {
        // Tried again: a chunk cut short is usually a proxy's or a server's hiccup.
        let head: String = data.chars().take(120).collect();
        let more = if head.len() < data.len() { "…" } else { "" };
        AttemptFailure::transient(ProviderError::Protocol(format!(
            "invalid JSON in chat completion chunk ({e}): {head}{more}"
        )))
    })?;
    if let Some(err) = chunk.get("error").filter(|e| !e.is_null()) {
        return Err(from_api_error(err));
    }
    let event_type = chunk.get("type").and_then(Value::as_str).unwrap_or("");
    if event_type.starts_with("response.") && chunk.get("choices").is_none() {
        return Err(AttemptFailure::fatal(ProviderError::Protocol(format!(
            "the server sent Responses API events ({event_type}), not Chat Completions chunks: run with --responses-api"
        ))));
    }
    if let Some(u) = chunk.get("usage").and_then(usage_from) {
        att.usage = Some(u);
    }
    let Some(choices) = chunk.get("choices").and_then(Value::as_array) else {
        return Ok(());
    };
    att.saw_choices_list = true;
    for choice in choices {
        // Only the first choice is used (n is never set).
        if choice.get("index").and_then(Value::as_u64).unwrap_or(0) != 0 {
            continue;
        }
        att.saw_choice = true;
        let delta = choice.get("delta").or_else(|| choice.get("message"));
        if let Some(delta) = delta {
            match delta.get("content") {
                Some(Value::String(t)) => att.text(t),
                // Content as a list of parts (`[{"type":"text","text":...}]`), as some
                // compatible servers send it: the text parts, in order.
                Some(Value::Array(parts)) => {
                    for part in parts {
                        let text = part.get("text").and_then(Value::as_str);
                        if part.get("type").and_then(Value::as_str).unwrap_or("text") == "text" {
                            if let Some(t) = text {
                                att.text(t);
                            }
                        }
                    }
                }
                _ => {}
            }
            if let Some(r) = delta.get("refusal").and_then(Value::as_str) {
                att.refusal.push_str(r);
            }
            if let Some(calls) = delta.get("tool_calls").and_then(Value::as_array) {
                for (pos, call) in calls.iter().enumerate() {
                    tool_call_delta(call, pos, att);
                }
            }
        }
        if let Some(fr) = choice.get("finish_reason").and_then(Value::as_str) {
            att.finish_reason = Some(FinishReason::from_chat(fr));
        }
    }
    Ok(())
}

fn tool_call_delta(call: &Value, pos: usize, att: &mut Attempt) {
    let index = call
        .get("index")
        .and_then(Value::as_u64)
        .unwrap_or(pos as u64);
    let key = index.to_string();
    let id = call
        .get("id")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty());
    if let Some(id) = id {
        // Some providers reuse index 0 for every call; a new id under a used
        // index starts a new call.
        if att.has_slot(&key)
            && att
                .slot_id(&key)
                .is_some_and(|old| !old.is_empty() && old != id)
        {
            att.new_slot(&key);
        }
        att.tool_id(&key, id);
    }
    let func = call.get("function");
    if let Some(name) = func
        .and_then(|f| f.get("name"))
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
    {
        // Without ids, a name after a whole call is the next call: another name, or the
        // same one with arguments of its own, even empty ones to be streamed (a server that
        // repeats the name in a closing chunk without an arguments field is still on the
        // same call).
        let has_arguments = func
            .and_then(|f| f.get("arguments"))
            .is_some_and(|a| !a.is_null());
        if id.is_none()
            && att.slot_is_whole(&key)
            && (att.slot_name(&key) != Some(name) || has_arguments)
        {
            att.new_slot(&key);
        }
        att.tool_name(&key, name);
    }
    match func.and_then(|f| f.get("arguments")) {
        Some(Value::String(s)) => att.tool_args_delta(&key, s),
        Some(Value::Null) | None => {
            // Make sure a call that only carried id/name still exists.
            att.tool_args_delta(&key, "");
        }
        Some(other) => att.tool_args_delta(&key, &other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::{ToolCall, ToolSpec};

    fn feed(att: &mut Attempt, chunks: &[&str]) {
        for data in chunks {
            let ev = SseEvent {
                event: None,
                data: data.to_string(),
            };
            decode(&ev, att).unwrap_or_else(|_| panic!("decodes {data}"));
        }
    }

    #[test]
    fn whole_calls_without_ids_or_indexes_stay_apart() {
        let mut att = Attempt::default();
        feed(
            &mut att,
            &[
                r#"{"choices":[{"index":0,"delta":{"tool_calls":[{"type":"function","function":{"name":"get_dataset_overview","arguments":"{}"}}]}}]}"#,
                r#"{"choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"id":"","function":{"name":"count_traces","arguments":"{\"filters\":{}}"}}]}}]}"#,
                r#"{"choices":[{"index":0,"delta":{"tool_calls":[{"function":{"name":"view_trace","arguments":"{\"trace_id\":"}}]}}]}"#,
                r#"{"choices":[{"index":0,"delta":{"tool_calls":[{"function":{"arguments":"\"t1\"}"}}]}}]}"#,
            ],
        );
        let calls = att.take_tool_calls();
        let names: Vec<&str> = calls.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(
            names,
            ["get_dataset_overview", "count_traces", "view_trace"]
        );
        assert_eq!(calls[2].arguments, r#"{"trace_id":"t1"}"#);
        // Generated ids never repeat within a turn.
        let ids: std::collections::HashSet<&str> = calls.iter().map(|c| c.id.as_str()).collect();
        assert_eq!(ids.len(), 3);
        // A name streamed in pieces before its arguments is still one call.
        let mut att = Attempt::default();
        feed(
            &mut att,
            &[
                r#"{"choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"name":"view_"}}]}}]}"#,
                r#"{"choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"name":"trace","arguments":"{}"}}]}}]}"#,
            ],
        );
        let calls = att.take_tool_calls();
        assert_eq!(calls.len(), 1);
        assert_eq!(calls[0].name, "view_trace");
        // A closing chunk that repeats the name without arguments is no new call.
        let mut att = Attempt::default();
        feed(
            &mut att,
            &[
                r#"{"choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"name":"view_trace","arguments":"{}"}}]}}]}"#,
                r#"{"choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"name":"view_trace"}}]}}]}"#,
            ],
        );
        let again = att.take_tool_calls();
        assert_eq!(again.len(), 1, "{again:?}");
        // Generated ids never repeat across turns either.
        let mut seen: std::collections::HashSet<String> = Default::default();
        for c in calls.iter().chain(&again) {
            assert!(seen.insert(c.id.clone()), "{} repeats", c.id);
        }
    }

    #[test]
    fn a_malformed_chunk_is_quoted_and_tried_again() {
        let mut att = Attempt::default();
        let ev = SseEvent {
            event: None,
            data: r#"{"id":"x","choices":[{"index":0,"delta":{"content":"ab"#.into(),
        };
        let f = decode(&ev, &mut att).unwrap_err();
        assert!(f.retryable);
        assert!(f.error.to_string().contains(r#"{"id":"x""#), "{}", f.error);
    }

    #[test]
    fn body_shape() {
        let mut req = ModelRequest::new(
            "m",
            vec![
                Message::system("s"),
                Message::user("u"),
                Message::assistant_with_tools(
                    "",
                    vec![ToolCall {
                        id: "c1".into(),
                        name: "f".into(),
                        arguments: "{}".into(),
                    }],
                ),
                Message::tool_result("c1", "r"),
            ],
        );
        req.parallel_tool_calls = Some(false);
        let b = request_body(&req);
        assert!(b.get("tools").is_none());
        assert!(b.get("parallel_tool_calls").is_none());
        assert_eq!(b["messages"][2]["content"], Value::Null);
        assert_eq!(b["messages"][2]["tool_calls"][0]["function"]["name"], "f");
        assert_eq!(b["messages"][3]["tool_call_id"], "c1");
        req.tools.push(ToolSpec {
            name: "f".into(),
            description: "d".into(),
            parameters: json!({"type": "object"}),
        });
        req.max_output_tokens = Some(7);
        req.temperature = Some(0.3);
        let b = request_body(&req);
        // Sent as written, not as the nearest 32-bit float (0.30000001192092896).
        assert_eq!(b["temperature"].to_string(), "0.3");
        assert_eq!(b["tools"][0]["type"], "function");
        assert_eq!(b["tools"][0]["function"]["name"], "f");
        assert_eq!(b["parallel_tool_calls"], false);
        assert_eq!(b["max_completion_tokens"], 7);
        assert_eq!(b["stream_options"]["include_usage"], true);
    }
}
