//! Renders a scripted [`Turn`] as SSE events of either wire protocol.

use serde_json::{json, Value};

use super::script::{RecordedRequest, Turn};

fn usage_of(turn: &Turn, req: &RecordedRequest) -> (u64, u64) {
    turn.usage.unwrap_or_else(|| {
        let out: usize = turn.text_deltas.iter().map(String::len).sum::<usize>()
            + turn
                .tool_calls
                .iter()
                .flat_map(|c| c.argument_deltas.iter())
                .map(String::len)
                .sum::<usize>();
        (1 + req.raw_body.len() as u64 / 4, 1 + out as u64 / 4)
    })
}

fn finish_reason(turn: &Turn) -> String {
    turn.finish_reason.clone().unwrap_or_else(|| {
        if turn.tool_calls.is_empty() {
            "stop".to_owned()
        } else {
            "tool_calls".to_owned()
        }
    })
}

/// The SSE events (without line endings applied) for a Chat Completions
/// stream: each element is the `data:` payload of one event.
pub(crate) fn chat(
    turn: &Turn,
    req: &RecordedRequest,
    seq: usize,
) -> Vec<(Option<String>, String)> {
    let id = format!("chatcmpl-scripted-{seq}");
    let model = req
        .body
        .get("model")
        .cloned()
        .unwrap_or_else(|| json!("scripted"));
    let chunk = |delta: Value, finish: Value| {
        json!({
            "id": id, "object": "chat.completion.chunk", "created": 0, "model": model,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
        })
        .to_string()
    };
    let mut out = vec![chunk(
        json!({"role": "assistant", "content": ""}),
        Value::Null,
    )];
    for t in &turn.text_deltas {
        out.push(chunk(json!({"content": t}), Value::Null));
    }
    if let Some(r) = &turn.refusal {
        for piece in r.split_inclusive(' ') {
            out.push(chunk(json!({"refusal": piece}), Value::Null));
        }
    }
    for (i, call) in turn.tool_calls.iter().enumerate() {
        out.push(chunk(
            json!({"tool_calls": [{"index": i, "id": call.id, "type": "function",
                   "function": {"name": call.name, "arguments": ""}}]}),
            Value::Null,
        ));
        for piece in &call.argument_deltas {
            out.push(chunk(
                json!({"tool_calls": [{"index": i, "function": {"arguments": piece}}]}),
                Value::Null,
            ));
        }
    }
    out.push(chunk(json!({}), json!(finish_reason(turn))));
    let include_usage = req
        .body
        .pointer("/stream_options/include_usage")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    if include_usage {
        let (i, o) = usage_of(turn, req);
        out.push(
            json!({
                "id": id, "object": "chat.completion.chunk", "created": 0, "model": model,
                "choices": [],
                "usage": {"prompt_tokens": i, "completion_tokens": o, "total_tokens": i + o},
            })
            .to_string(),
        );
    }
    out.push("[DONE]".to_owned());
    out.into_iter().map(|d| (None, d)).collect()
}

/// The SSE events for a Responses API stream, as `(event name, data)`.
pub(crate) fn responses(
    turn: &Turn,
    req: &RecordedRequest,
    seq: usize,
) -> Vec<(Option<String>, String)> {
    let resp_id = format!("resp_scripted_{seq}");
    let model = req
        .body
        .get("model")
        .cloned()
        .unwrap_or_else(|| json!("scripted"));
    let mut events: Vec<Value> = Vec::new();
    let shell = |status: &str, output: Value| json!({"id": resp_id, "object": "response", "status": status, "model": model, "output": output});
    events.push(json!({"type": "response.created", "response": shell("in_progress", json!([]))}));
    let mut output: Vec<Value> = Vec::new();
    if !turn.text_deltas.is_empty() || turn.refusal.is_some() {
        let idx = output.len();
        let item_id = format!("msg_scripted_{seq}");
        events.push(json!({"type": "response.output_item.added", "output_index": idx,
            "item": {"type": "message", "id": item_id, "role": "assistant", "status": "in_progress", "content": []}}));
        let mut content = Vec::new();
        if !turn.text_deltas.is_empty() {
            let text: String = turn.text_deltas.concat();
            events.push(json!({"type": "response.content_part.added", "item_id": item_id,
                "output_index": idx, "content_index": 0, "part": {"type": "output_text", "text": ""}}));
            for d in &turn.text_deltas {
                events.push(
                    json!({"type": "response.output_text.delta", "item_id": item_id,
                    "output_index": idx, "content_index": 0, "delta": d}),
                );
            }
            events.push(
                json!({"type": "response.output_text.done", "item_id": item_id,
                "output_index": idx, "content_index": 0, "text": text}),
            );
            content.push(json!({"type": "output_text", "text": text, "annotations": []}));
        }
        if let Some(r) = &turn.refusal {
            let ci = content.len();
            for piece in r.split_inclusive(' ') {
                events.push(json!({"type": "response.refusal.delta", "item_id": item_id,
                    "output_index": idx, "content_index": ci, "delta": piece}));
            }
            events.push(json!({"type": "response.refusal.done", "item_id": item_id,
                "output_index": idx, "content_index": ci, "refusal": r}));
            content.push(json!({"type": "refusal", "refusal": r}));
        }
        let item = json!({"type": "message", "id": item_id, "role": "assistant", "status": "completed", "content": content});
        events
            .push(json!({"type": "response.output_item.done", "output_index": idx, "item": item}));
        output.push(item);
    }
    for (n, call) in turn.tool_calls.iter().enumerate() {
        let idx = output.len();
        let item_id = format!("fc_scripted_{seq}_{n}");
        let args: String = call.argument_deltas.concat();
        events.push(
            json!({"type": "response.output_item.added", "output_index": idx,
            "item": {"type": "function_call", "id": item_id, "call_id": call.id, "name": call.name,
                     "arguments": "", "status": "in_progress"}}),
        );
        for piece in &call.argument_deltas {
            events.push(
                json!({"type": "response.function_call_arguments.delta", "item_id": item_id,
                "output_index": idx, "delta": piece}),
            );
        }
        events.push(
            json!({"type": "response.function_call_arguments.done", "item_id": item_id,
            "output_index": idx, "arguments": args}),
        );
        let item = json!({"type": "function_call", "id": item_id, "call_id": call.id,
            "name": call.name, "arguments": args, "status": "completed"});
        events
            .push(json!({"type": "response.output_item.done", "output_index": idx, "item": item}));
        output.push(item);
    }
    let (i, o) = usage_of(turn, req);
    let mut final_resp = shell("completed", Value::Array(output));
    final_resp["usage"] = json!({"input_tokens": i, "output_tokens": o, "total_tokens": i + o,
        "input_tokens_details": {"cached_tokens": 0}, "output_tokens_details": {"reasoning_tokens": 0}});
    let kind = match turn.finish_reason.as_deref() {
        Some("length") => {
            final_resp["status"] = json!("incomplete");
            final_resp["incomplete_details"] = json!({"reason": "max_output_tokens"});
            "response.incomplete"
        }
        Some("content_filter") => {
            final_resp["status"] = json!("incomplete");
            final_resp["incomplete_details"] = json!({"reason": "content_filter"});
            "response.incomplete"
        }
        _ => "response.completed",
    };
    events.push(json!({"type": kind, "response": final_resp}));
    events
        .into_iter()
        .enumerate()
        .map(|(n, mut e)| {
            e["sequence_number"] = json!(n);
            let name = e["type"].as_str().map(str::to_owned);
            (name, e.to_string())
        })
        .collect()
}

/// Serializes events as SSE text, one string per event.
pub(crate) fn encode(events: &[(Option<String>, String)], crlf: bool) -> Vec<String> {
    let nl = if crlf { "\r\n" } else { "\n" };
    events
        .iter()
        .map(|(name, data)| {
            let mut s = String::new();
            if let Some(name) = name {
                s.push_str("event: ");
                s.push_str(name);
                s.push_str(nl);
            }
            s.push_str("data: ");
            s.push_str(data);
            s.push_str(nl);
            s.push_str(nl);
            s
        })
        .collect()
}
