//! Helpers for the end-to-end tests: run the real `halo` binary on real files.
#![allow(dead_code, unreachable_pub, missing_docs)]

use std::path::{Path, PathBuf};
use std::process::Output;

/// Runs `halo` with `args` and an index directory inside `tmp`.
pub fn halo(tmp: &Path, args: &[&str]) -> Output {
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_halo"));
    cmd.args(args)
        .env("HALO_CACHE_DIR", tmp.join("cache"))
        .current_dir(tmp);
    cmd.output().expect("halo runs")
}

/// `halo` with `args`, started (not waited for), output piped: for tests that interrupt it.
pub fn spawn_halo(tmp: &Path, args: &[&str]) -> std::process::Child {
    std::process::Command::new(env!("CARGO_BIN_EXE_halo"))
        .args(args)
        .env("HALO_CACHE_DIR", tmp.join("cache"))
        .current_dir(tmp)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("halo starts")
}

/// Presses Ctrl-C in `child` (sends it SIGINT) and waits for it to end.
pub fn interrupt(child: std::process::Child) -> Output {
    send_signal(child, "INT")
}

/// Sends `child` the signal named (`INT`, `TERM`) and waits for it to end.
pub fn send_signal(child: std::process::Child, name: &str) -> Output {
    let sent = std::process::Command::new("kill")
        .args([&format!("-{name}"), &child.id().to_string()])
        .status()
        .expect("kill runs");
    assert!(sent.success());
    child.wait_with_output().expect("halo ends")
}

/// Stdout as text.
pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// Stderr as text.
pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Stdout parsed as JSON, asserting success.
pub fn json(o: &Output) -> serde_json::Value {
    assert!(
        o.status.success(),
        "halo failed: {}\n{}",
        stderr(o),
        stdout(o)
    );
    serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("not JSON ({e}): {}", stdout(o)))
}

/// Stdout parsed as JSON, whatever the exit status (failures under `--json` are JSON too).
pub fn json_any(o: &Output) -> serde_json::Value {
    serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("not JSON ({e}): {}", stdout(o)))
}

/// One canonical span line.
#[derive(Debug, Clone)]
pub struct Span {
    pub trace: String,
    pub span: String,
    pub parent: String,
    pub name: String,
    pub status: &'static str,
    pub message: String,
    pub service: String,
    pub start: String,
    pub end: String,
    pub attrs: String,
}

impl Span {
    pub fn new(trace: &str, span: &str, parent: &str) -> Span {
        Span {
            trace: trace.into(),
            span: span.into(),
            parent: parent.into(),
            name: format!("op-{span}"),
            status: "STATUS_CODE_OK",
            message: String::new(),
            service: "svc".into(),
            start: "2026-04-23T05:32:00.000000000Z".into(),
            end: "2026-04-23T05:32:01.000000000Z".into(),
            attrs: "{}".into(),
        }
    }
    pub fn error(mut self, message: &str) -> Span {
        self.status = "STATUS_CODE_ERROR";
        self.message = message.into();
        self
    }
    pub fn attrs(mut self, attrs: &str) -> Span {
        self.attrs = attrs.into();
        self
    }
    pub fn service(mut self, s: &str) -> Span {
        self.service = s.into();
        self
    }
    pub fn times(mut self, start: &str, end: &str) -> Span {
        self.start = start.into();
        self.end = end.into();
        self
    }
    pub fn line(&self) -> String {
        format!(
            r#"{{"trace_id":"{}","span_id":"{}","parent_span_id":"{}","trace_state":"","name":"{}","kind":"SPAN_KIND_INTERNAL","start_time":"{}","end_time":"{}","status":{{"code":"{}","message":"{}"}},"resource":{{"attributes":{{"service.name":"{}"}}}},"scope":{{"name":"test","version":"1"}},"attributes":{}}}"#,
            self.trace,
            self.span,
            self.parent,
            self.name,
            self.start,
            self.end,
            self.status,
            self.message,
            self.service,
            self.attrs
        )
    }
}

/// Writes lines to a file and returns its path.
pub fn write(dir: &Path, name: &str, lines: &[String]) -> PathBuf {
    let path = dir.join(name);
    let mut text = lines.join("\n");
    text.push('\n');
    std::fs::write(&path, text).unwrap();
    path
}

/// The reference fixtures, or None (with a note) when ../shared is absent.
pub fn fixtures() -> Option<PathBuf> {
    let dir = halo_testkit::workspace_path("../shared/data/halo-fixtures");
    if dir.is_dir() {
        Some(dir)
    } else {
        eprintln!("skipped: ../shared/data/halo-fixtures is absent (it exists only beside the project's workspace)");
        None
    }
}

/// A small dataset with known answers: three traces.
/// - t1: agent-a, gpt-5.4, OK, tools list_files (1 call), 100+50 tokens, 1 s
/// - t2: agent-b, claude, a failed tool call of `grep` with "unexpected keyword argument", 3 s
/// - t3: agent-a, gpt-5.4, an LLM rate-limit error, project p2, 0.5 s
pub fn small_dataset(dir: &Path) -> PathBuf {
    let lines = vec![
        Span::new("t1", "a", "").attrs(r#"{"openinference.span.kind":"AGENT","inference.agent_name":"agent-a","inference.project_id":"p1","session.id":"sess-1"}"#).line(),
        Span::new("t1", "b", "a").attrs(r#"{"openinference.span.kind":"LLM","llm.model_name":"gpt-5.4","llm.token_count.prompt":100,"llm.token_count.completion":50}"#).line(),
        Span::new("t2", "a", "").service("svc-b").times("2026-04-23T06:00:00Z", "2026-04-23T06:00:03Z").attrs(r#"{"gen_ai.operation.name":"invoke_agent","gen_ai.agent.name":"agent-b"}"#).line(),
        Span::new("t1", "c", "a").attrs(r#"{"openinference.span.kind":"TOOL","tool.name":"list_files","input.value":"{\"dir\":\".\"}"}"#).line(),
        Span::new("t2", "b", "a").service("svc-b").times("2026-04-23T06:00:01Z", "2026-04-23T06:00:02Z").error("TypeError: grep() got an unexpected keyword argument 'path'").attrs(r#"{"gen_ai.operation.name":"execute_tool","gen_ai.tool.name":"grep","gen_ai.tool.call.arguments":"{\"path\":\"x\"}"}"#).line(),
        Span::new("t2", "c", "a").service("svc-b").times("2026-04-23T06:00:00Z", "2026-04-23T06:00:01Z").attrs(r#"{"gen_ai.operation.name":"chat","gen_ai.response.model":"claude-sonnet-4-6","gen_ai.usage.input_tokens":10,"gen_ai.usage.output_tokens":5}"#).line(),
        Span::new("t3", "a", "").times("2026-04-23T07:00:00Z", "2026-04-23T07:00:00.500Z").attrs(r#"{"openinference.span.kind":"AGENT","inference.agent_name":"agent-a","inference.project_id":"p2"}"#).line(),
        Span::new("t3", "b", "a").times("2026-04-23T07:00:00Z", "2026-04-23T07:00:00.400Z").error("Rate limit reached for gpt-5.4").attrs(r#"{"openinference.span.kind":"LLM","llm.model_name":"gpt-5.4","http.status_code":429}"#).line(),
    ];
    write(dir, "small.jsonl", &lines)
}
