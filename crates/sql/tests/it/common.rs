//! A small generated dataset with known contents, written as canonical span lines.

use std::path::{Path, PathBuf};

use halo_index::{Dataset, NoProgress, OpenOptions};

/// Tools the generated agents call.
pub(crate) const TOOLS: &[&str] = &["read_file", "grep", "search"];

fn ts(trace: usize, ms: u64) -> String {
    let base = 1_776_000_000_000u64 + trace as u64 * 60_000 + ms; // epoch ms
    let secs = base / 1000;
    let frac = base % 1000;
    // Days since 1970 -> civil date (Howard Hinnant's algorithm).
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = if m <= 2 { y + 1 } else { y };
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{frac:03}Z",
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    )
}

#[allow(clippy::too_many_arguments)]
fn line(
    trace: &str,
    span: &str,
    parent: &str,
    name: &str,
    t: usize,
    start: u64,
    end: u64,
    error: Option<&str>,
    attrs: &str,
) -> String {
    let (code, msg) = match error {
        Some(m) => ("STATUS_CODE_ERROR", m),
        None => ("STATUS_CODE_OK", ""),
    };
    format!(
        r#"{{"trace_id":"{trace}","span_id":"{span}","parent_span_id":"{parent}","trace_state":"","name":"{name}","kind":"SPAN_KIND_INTERNAL","start_time":"{}","end_time":"{}","status":{{"code":"{code}","message":"{msg}"}},"resource":{{"attributes":{{"service.name":"svc-{}"}}}},"scope":{{"name":"test","version":"1"}},"attributes":{attrs}}}"#,
        ts(t, start),
        ts(t, end),
        t % 2
    )
}

/// Lines of trace `t`: a root agent span, LLM calls with tokens, tool calls (some failing);
/// trace 7 calls `grep` six times with identical arguments; every 5th trace hits a rate limit.
pub(crate) fn trace_lines(t: usize) -> Vec<String> {
    let trace = format!("trace-{t:03}");
    let model = ["gpt-5.4", "claude-sonnet-4-6"][t % 2];
    let mut out = vec![line(
        &trace,
        "root",
        "",
        "agent.run",
        t,
        0,
        10_000,
        None,
        &format!(
            r#"{{"openinference.span.kind":"AGENT","inference.agent_name":"agent-{}"}}"#,
            t % 3
        ),
    )];
    let llm_calls = 1 + t % 3;
    for k in 0..llm_calls {
        let error = (t.is_multiple_of(5) && k == 0).then_some("Rate limit reached");
        let requested = TOOLS[(t + k) % TOOLS.len()];
        out.push(line(
            &trace,
            &format!("llm-{k}"),
            "root",
            "chat",
            t,
            100 + 1000 * k as u64,
            600 + 1000 * k as u64 + t as u64,
            error,
            &format!(
                r#"{{"openinference.span.kind":"LLM","llm.model_name":"{model}","llm.token_count.prompt":{},"llm.token_count.completion":{},"llm.output_messages.0.message.content":"thinking {t}","llm.output_messages.0.message.tool_calls.0.tool_call.function.name":"{requested}"}}"#,
                100 + t,
                10 + k
            ),
        ));
    }
    let tool_calls = if t == 7 { 6 } else { 1 + t % 4 };
    for k in 0..tool_calls {
        let tool = if t == 7 {
            "grep"
        } else {
            TOOLS[(t * 7 + k) % TOOLS.len()]
        };
        let args = if t == 7 {
            r#"{\"path\":\"/src\",\"pattern\":\"TODO\"}"#.to_string()
        } else {
            format!(r#"{{\"path\":\"/data/{k}\"}}"#)
        };
        let error = (t + k)
            .is_multiple_of(4)
            .then(|| format!("{tool} failed: file {k} not found"));
        out.push(line(
            &trace,
            &format!("tool-{k}"),
            "root",
            &format!("tool.{tool}"),
            t,
            3000 + 500 * k as u64,
            3010 + 500 * k as u64 + (t * 13 + k * 7) as u64 % 300,
            error.as_deref(),
            &format!(r#"{{"openinference.span.kind":"TOOL","tool.name":"{tool}","input.value":"{args}","output.value":"result {t}-{k}"}}"#),
        ));
    }
    out
}

/// Writes traces `range` to `dir/name`.
pub(crate) fn write(dir: &Path, name: &str, range: std::ops::Range<usize>) -> PathBuf {
    let path = dir.join(name);
    let mut text = String::new();
    for t in range {
        for l in trace_lines(t) {
            text.push_str(&l);
            text.push('\n');
        }
    }
    std::fs::write(&path, text).unwrap();
    path
}

/// Opens `paths` with its index inside `dir`.
pub(crate) fn open(dir: &Path, paths: &[PathBuf]) -> Dataset {
    let options = OpenOptions {
        index_dir: Some(dir.join("index")),
        ..Default::default()
    };
    Dataset::open(paths, &options, &NoProgress).unwrap()
}

/// 40 traces over two files (so two segments at least).
pub(crate) fn dataset(dir: &Path) -> Dataset {
    let a = write(dir, "a.jsonl", 0..25);
    let b = write(dir, "b.jsonl", 25..40);
    open(dir, &[a, b])
}

/// Runs a query with the default limits; a failure names the query.
pub(crate) fn q(engine: &halo_sql::SqlEngine, sql: &str) -> halo_sql::SqlResult {
    engine
        .query(sql, &halo_sql::SqlLimits::default())
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
}

/// A JSON cell that must be an integer.
pub(crate) fn int(v: &serde_json::Value) -> i64 {
    v.as_i64().unwrap_or_else(|| panic!("not an integer: {v}"))
}
