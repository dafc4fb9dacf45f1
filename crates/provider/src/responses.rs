//! The Responses API wire: request body and stream decoding.

use serde_json::{json, Map, Value};

use crate::assemble::Attempt;
use crate::error::ProviderError;
use crate::retry::{from_api_error, AttemptFailure};
use crate::sse::SseEvent;
use crate::types::{FinishReason, Message, ModelRequest};
use crate::usage::usage_from;

/// Builds the `POST /responses` body.
pub(crate) fn request_body(req: &ModelRequest) -> Value {
    let mut input = Vec::new();
    for m in &req.messages {
        match m {
            Message::System { content } => {
                input.push(json!({"type": "message", "role": "system", "content": content}));
            }
            Message::User { content } => {
                input.push(json!({"type": "message", "role": "user", "content": content}));
            }
            Message::Assistant {
                content,
                tool_calls,
            } => {
                if !content.is_empty() || tool_calls.is_empty() {
                    input.push(json!({"type": "message", "role": "assistant", "content": content}));
                }
                for c in tool_calls {
                    input.push(json!({
                        "type": "function_call",
                        "call_id": c.id,
                        "name": c.name,
                        "arguments": c.arguments,
                    }));
                }
            }
            Message::Tool {
                tool_call_id,
                content,
            } => input.push(json!({
                "type": "function_call_output",
                "call_id": tool_call_id,
                "output": content,
            })),
        }
    }
    let mut body = Map::new();
    body.insert("model".into(), json!(req.model));
    body.insert("input".into(), Value::Array(input));
    body.insert("stream".into(), json!(true));
    // Every request carries the whole conversation, so nothing needs keeping on the
    // provider's side; and the traces in it should not be kept by default.
    body.insert("store".into(), json!(false));
    if !req.tools.is_empty() {
        let tools: Vec<Value> = req
            .tools
            .iter()
            .map(|t| {
                json!({
                    "type": "function",
                    "name": t.name,
                    "description": t.description,
                    "parameters": t.parameters,
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
        body.insert("max_output_tokens".into(), json!(m));
    }
    if let Some(e) = req.reasoning_effort {
        body.insert("reasoning".into(), json!({"effort": e.as_str()}));
    }
    Value::Object(body)
}

fn item_key(ev: &Value) -> Option<String> {
    ev.get("output_index")
        .and_then(Value::as_u64)
        .map(|i| format!("#{i}"))
        .or_else(|| ev.get("item_id").and_then(Value::as_str).map(str::to_owned))
        .or_else(|| {
            ev.pointer("/item/id")
                .and_then(Value::as_str)
                .map(str::to_owned)
        })
}

fn str_field<'a>(v: &'a Value, name: &str) -> Option<&'a str> {
    v.get(name).and_then(Value::as_str)
}

/// Decodes one SSE event of a Responses stream into `att`.
pub(crate) fn decode(ev: &SseEvent, att: &mut Attempt) -> Result<(), AttemptFailure> {
    let data = ev.data.trim();
    if data.is_empty() {
        return Ok(());
    }
    if data == "[DONE]" {
        // Not part of the Responses protocol, but harmless.
        return Ok(());
    }
    let v: Value = serde_json::from_str(data).map_err(|e| {
        AttemptFailure::fatal(ProviderError::Protocol(format!(
            "invalid JSON in responses event: {e}"
        )))
    })?;
    let kind = str_field(&v, "type")
        .map(str::to_owned)
        .or_else(|| ev.event.clone())
        .unwrap_or_default();
    if kind.is_empty() && v.get("choices").is_some() {
        return Err(AttemptFailure::fatal(ProviderError::Protocol(
            "the server sent Chat Completions chunks, not Responses API events: run without --responses-api".to_owned(),
        )));
    }
    match kind.as_str() {
        "response.output_text.delta" => {
            if let Some(d) = str_field(&v, "delta") {
                att.text(d);
            }
        }
        "response.refusal.delta" => {
            if let Some(d) = str_field(&v, "delta") {
                att.refusal.push_str(d);
            }
        }
        "response.output_item.added" | "response.output_item.done" => {
            let Some(item) = v.get("item") else {
                return Ok(());
            };
            if str_field(item, "type") != Some("function_call") {
                return Ok(());
            }
            let Some(key) = item_key(&v) else {
                return Ok(());
            };
            if kind == "response.output_item.added" {
                att.new_slot(&key);
            }
            if let Some(id) = str_field(item, "call_id").or_else(|| str_field(item, "id")) {
                att.tool_id(&key, id);
            }
            if let Some(name) = str_field(item, "name").filter(|n| !n.is_empty()) {
                att.tool_name(&key, name);
            }
            match str_field(item, "arguments") {
                Some(a) if kind == "response.output_item.done" => att.tool_args_final(&key, a),
                Some(a) => att.tool_args_delta(&key, a),
                None => att.tool_args_delta(&key, ""),
            }
        }
        "response.function_call_arguments.delta" => {
            if let (Some(key), Some(d)) = (item_key(&v), str_field(&v, "delta")) {
                att.tool_args_delta(&key, d);
            }
        }
        "response.function_call_arguments.done" => {
            if let (Some(key), Some(a)) = (item_key(&v), str_field(&v, "arguments")) {
                att.tool_args_final(&key, a);
            }
        }
        "response.completed" | "response.incomplete" => {
            let resp = v.get("response").unwrap_or(&Value::Null);
            finish(resp, &kind, att);
        }
        "response.failed" => {
            let err = v
                .pointer("/response/error")
                .filter(|e| !e.is_null())
                .cloned()
                .unwrap_or_else(|| json!({"message": "response failed without an error object"}));
            return Err(from_api_error(&err));
        }
        "error" => return Err(from_api_error(&v)),
        _ => {}
    }
    Ok(())
}

fn finish(resp: &Value, kind: &str, att: &mut Attempt) {
    if let Some(u) = resp.get("usage").and_then(usage_from) {
        att.usage = Some(u);
    }
    // Fall back to the final output when deltas were missing.
    let output = resp.get("output").and_then(Value::as_array);
    if let Some(output) = output {
        // Calls announced without their arguments, and no deltas after: the final output
        // has them.
        for item in output {
            if str_field(item, "type") == Some("function_call") {
                if let (Some(id), Some(args)) = (
                    str_field(item, "call_id").or_else(|| str_field(item, "id")),
                    str_field(item, "arguments"),
                ) {
                    att.fill_missing_arguments(id, args);
                }
            }
        }
        if !att.has_tool_calls() {
            for (i, item) in output.iter().enumerate() {
                if str_field(item, "type") == Some("function_call") {
                    let key = format!("final#{i}");
                    att.new_slot(&key);
                    if let Some(id) = str_field(item, "call_id").or_else(|| str_field(item, "id")) {
                        att.tool_id(&key, id);
                    }
                    att.tool_name(&key, str_field(item, "name").unwrap_or(""));
                    att.tool_args_final(&key, str_field(item, "arguments").unwrap_or(""));
                }
            }
        }
        if !att.saw_text {
            let mut text = String::new();
            for item in output {
                if str_field(item, "type") != Some("message") {
                    continue;
                }
                for part in item
                    .get("content")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                {
                    if str_field(part, "type") == Some("output_text") {
                        text.push_str(str_field(part, "text").unwrap_or(""));
                    }
                }
            }
            att.text(&text);
        }
    }
    att.finish_reason = Some(if kind == "response.incomplete" {
        match resp
            .pointer("/incomplete_details/reason")
            .and_then(Value::as_str)
        {
            Some("max_output_tokens") => FinishReason::Length,
            Some("content_filter") => FinishReason::ContentFilter,
            Some(other) => FinishReason::Other(other.to_owned()),
            None => FinishReason::Other("incomplete".to_owned()),
        }
    } else if att.has_tool_calls() {
        FinishReason::ToolCalls
    } else {
        FinishReason::Stop
    });
    att.complete = true;
}
