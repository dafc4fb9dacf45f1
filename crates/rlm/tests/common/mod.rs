//! Shared helpers: small datasets in the canonical span format, engine
//! configurations against the scripted server, request predicates.

#![allow(dead_code, unreachable_pub)]

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use halo_index::{Dataset, NoProgress, OpenOptions};
use halo_provider::{ProviderConfig, RetryPolicy};
use halo_rlm::{Engine, EngineConfig, EngineEvent, ProviderRetryEvent, RunOutcome};
use halo_testkit::scripted_server::RecordedRequest;
use halo_testkit::scripted_server::{Reply, Turn};
use serde_json::Value;

pub fn span(trace: &str, span: &str, parent: &str, status: &str, msg: &str, attrs: &str) -> String {
    format!(
        r#"{{"trace_id":"{trace}","span_id":"{span}","parent_span_id":"{parent}","trace_state":"","name":"n-{span}","kind":"SPAN_KIND_INTERNAL","start_time":"2026-04-23T05:32:00.000000000Z","end_time":"2026-04-23T05:32:01.000000000Z","status":{{"code":"{status}","message":"{msg}"}},"resource":{{"attributes":{{"service.name":"svc"}}}},"scope":{{"name":"s","version":"1"}},"attributes":{attrs}}}"#
    )
}

/// Three traces: t1 fails in a tool, t2 is fine, t3 fails in the model call.
pub fn dataset_lines() -> String {
    let tool = r#"{"openinference.span.kind":"TOOL","tool.name":"list_files","input.value":"{\"path\":\"/nope\"}","output.value":"No such file"}"#;
    let llm = r#"{"openinference.span.kind":"LLM","llm.model_name":"gpt-x","llm.token_count.prompt":120,"llm.token_count.completion":30}"#;
    [
        span("t1", "s1", "", "STATUS_CODE_OK", "", "{}"),
        span(
            "t1",
            "s2",
            "s1",
            "STATUS_CODE_ERROR",
            "file not found",
            tool,
        ),
        span("t2", "s3", "", "STATUS_CODE_OK", "", "{}"),
        span("t2", "s4", "s3", "STATUS_CODE_OK", "", llm),
        span("t3", "s5", "", "STATUS_CODE_OK", "", "{}"),
        span(
            "t3",
            "s6",
            "s5",
            "STATUS_CODE_ERROR",
            "rate limit exceeded",
            llm,
        ),
    ]
    .join("\n")
        + "\n"
}

pub struct TestData {
    pub dir: tempfile::TempDir,
    pub dataset: Arc<Dataset>,
    pub path: PathBuf,
}

pub fn open_lines(lines: &str) -> TestData {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("traces.jsonl");
    std::fs::write(&path, lines).unwrap();
    let dataset = open_path(&path, dir.path());
    TestData { dataset, path, dir }
}

pub fn open_path(path: &Path, tmp: &Path) -> Arc<Dataset> {
    let options = OpenOptions {
        index_dir: Some(tmp.join("idx")),
        ..Default::default()
    };
    Arc::new(Dataset::open(&[path.to_path_buf()], &options, &NoProgress).unwrap())
}

pub fn data() -> TestData {
    open_lines(&dataset_lines())
}

pub fn fast_retry() -> RetryPolicy {
    RetryPolicy {
        max_retries: 2,
        base_delay: Duration::from_millis(1),
        max_delay: Duration::from_millis(5),
        max_retry_after: Duration::from_millis(20),
    }
}

pub fn config(base_url: &str) -> EngineConfig {
    let provider = ProviderConfig::new(base_url).with_retry(fast_retry());
    let mut c = EngineConfig::new(provider, "test-model");
    c.run_id = Some("run-test".to_owned());
    c
}

fn system_text(r: &RecordedRequest) -> String {
    r.items()
        .first()
        .and_then(|m| m.get("content"))
        .and_then(Value::as_str)
        .or_else(|| r.body.get("instructions").and_then(Value::as_str))
        .unwrap_or_default()
        .to_owned()
}

/// A request of the root agent.
pub fn is_root(r: &RecordedRequest) -> bool {
    system_text(r).contains("You are HALO, an expert") || {
        // Responses wire: system prompt may be an input item.
        r.items().iter().any(|m| {
            m.get("content")
                .and_then(Value::as_str)
                .is_some_and(|c| c.contains("You are HALO, an expert"))
        })
    }
}

/// A request of a compaction call.
pub fn is_compaction(r: &RecordedRequest) -> bool {
    r.raw_body.contains("You compress the older part")
}

/// A request of a subagent whose task contains `needle`.
pub fn is_subagent_with(r: &RecordedRequest, needle: &str) -> bool {
    r.raw_body.contains("You are a HALO subagent") && first_user(r).contains(needle)
}

pub fn first_user(r: &RecordedRequest) -> String {
    r.items()
        .iter()
        .find(|m| m.get("role").and_then(Value::as_str) == Some("user"))
        .and_then(|m| m.get("content"))
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned()
}

pub fn has_tool_results(r: &RecordedRequest) -> bool {
    !r.tool_results().is_empty()
}

/// Number of tool results in the request.
pub fn results(r: &RecordedRequest) -> usize {
    r.tool_results().len()
}

/// Checks that sequence numbers are 0, 1, 2, ... in order.
pub fn assert_sequences(events: &[EngineEvent]) {
    for (i, e) in events.iter().enumerate() {
        assert_eq!(e.sequence(), i as u64, "sequence gap or reorder at {i}");
    }
}

/// Runs `prompt` to the end: every event (sequence numbers checked) and the outcome.
pub async fn run_all(engine: &Engine, prompt: &str) -> (Vec<EngineEvent>, RunOutcome) {
    let mut handle = engine.start(prompt);
    let mut events = Vec::new();
    while let Some(e) = handle.next().await {
        events.push(e);
    }
    let outcome = handle.outcome().await.unwrap();
    assert_sequences(&events);
    (events, outcome)
}

/// Runs prompt `q` against `base_url` with the given depth and parallelism budgets, failing
/// if it has not ended within 20 s (a deadlock).
pub async fn run_bounded(
    base_url: &str,
    data: &TestData,
    max_depth: u32,
    max_parallel: usize,
) -> (Vec<EngineEvent>, RunOutcome) {
    let mut cfg = config(base_url);
    cfg.max_depth = max_depth;
    cfg.max_parallel = max_parallel;
    let engine = Engine::new(cfg, data.dataset.clone()).unwrap();
    tokio::time::timeout(std::time::Duration::from_secs(20), run_all(&engine, "q"))
        .await
        .expect("the run ends (no deadlock)")
}

/// A model turn that calls `final_answer(answer)`.
pub fn final_answer(id: &str, answer: &str) -> Reply {
    Reply::turn(Turn::new().tool_call(
        id,
        "final_answer",
        &serde_json::json!({ "answer": answer }).to_string(),
    ))
}

/// The provider retries a run announced, in order.
pub fn retries(events: &[EngineEvent]) -> Vec<&ProviderRetryEvent> {
    events
        .iter()
        .filter_map(|e| match e {
            EngineEvent::ProviderRetry(r) => Some(r),
            _ => None,
        })
        .collect()
}
