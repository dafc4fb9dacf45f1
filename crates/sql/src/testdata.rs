//! A small dataset of LLM spans with chat messages, for the crate's unit tests.

use std::path::Path;

use halo_index::{Dataset, NoProgress, OpenOptions};

/// One canonical span line.
fn line(trace: usize, span: &str, parent: &str, attrs: &str) -> String {
    format!(
        r#"{{"trace_id":"trace-{trace:03}","span_id":"{span}","parent_span_id":"{parent}","trace_state":"","name":"{span}","kind":"SPAN_KIND_INTERNAL","start_time":"2026-04-12T10:00:00.000Z","end_time":"2026-04-12T10:00:01.000Z","status":{{"code":"STATUS_CODE_OK","message":""}},"resource":{{"attributes":{{"service.name":"svc"}}}},"scope":{{"name":"test","version":"1"}},"attributes":{attrs}}}"#
    )
}

/// `traces` traces of an agent span and two LLM calls, each with two input messages and
/// one output message that requests a tool, written to `dir/llm.jsonl` and opened.
pub(crate) fn llm_dataset(dir: &Path, traces: usize) -> Dataset {
    let mut text = String::new();
    for t in 0..traces {
        text += &line(t, "root", "", r#"{"openinference.span.kind":"AGENT"}"#);
        text.push('\n');
        for k in 0..2 {
            let attrs = format!(
                r#"{{"openinference.span.kind":"LLM","llm.model_name":"m-{k}","llm.input_messages.0.message.role":"system","llm.input_messages.0.message.content":"be brief {t}","llm.input_messages.1.message.role":"user","llm.input_messages.1.message.content":"question {t}-{k} {pad}","llm.output_messages.0.message.role":"assistant","llm.output_messages.0.message.content":"answer {t}-{k}","llm.output_messages.0.message.tool_calls.0.tool_call.function.name":"grep"}}"#,
                pad = "x".repeat(40 * (t % 5))
            );
            text += &line(t, &format!("llm-{k}"), "root", &attrs);
            text.push('\n');
        }
    }
    let path = dir.join("llm.jsonl");
    std::fs::write(&path, text).expect("the test directory is writable");
    let options = OpenOptions {
        index_dir: Some(dir.join("index")),
        ..Default::default()
    };
    Dataset::open(&[path], &options, &NoProgress).expect("the test dataset opens")
}
