//! Tests of the trace generator: determinism, format validity, label fidelity, OTLP shape
//! and size targeting.

use std::collections::{HashMap, HashSet};

use halo_testkit::generate::{
    write_dataset, FailureMode, GeneratorConfig, ModeRates, OutputFormat,
};
use serde_json::Value;

fn gen(
    cfg: &GeneratorConfig,
    format: OutputFormat,
) -> (Vec<u8>, halo_testkit::generate::GenerationSummary) {
    let mut out = Vec::new();
    let s = write_dataset(cfg, format, &mut out).expect("generation succeeds");
    (out, s)
}

fn cfg(traces: u64, seed: u64) -> GeneratorConfig {
    GeneratorConfig {
        traces,
        seed,
        ..GeneratorConfig::default()
    }
}

fn is_hex(s: &str, len: usize) -> bool {
    s.len() == len
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

fn is_iso(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 30
        && b[4] == b'-'
        && b[10] == b'T'
        && b[19] == b'.'
        && b[29] == b'Z'
        && b[20..29].iter().all(u8::is_ascii_digit)
}

#[test]
fn deterministic_for_a_seed() {
    for format in [OutputFormat::Canonical, OutputFormat::Otlp] {
        let (a, la) = gen(&cfg(150, 9), format);
        let (b, lb) = gen(&cfg(150, 9), format);
        assert!(a == b, "same seed must give identical bytes");
        assert_eq!(la.labels, lb.labels);
        let (c, _) = gen(&cfg(150, 10), format);
        assert!(a != c, "different seeds must differ");
    }
}

/// Parsed canonical dataset grouped by trace.
fn parse_canonical(bytes: &[u8]) -> HashMap<String, Vec<Value>> {
    let text = std::str::from_utf8(bytes).expect("utf-8");
    let mut by: HashMap<String, Vec<Value>> = HashMap::new();
    let mut prev_end = String::new();
    for line in text.lines() {
        let v: Value = serde_json::from_str(line).expect("every line is JSON");
        for f in [
            "trace_id",
            "span_id",
            "parent_span_id",
            "trace_state",
            "name",
            "kind",
            "start_time",
            "end_time",
        ] {
            assert!(v[f].is_string(), "field {f} missing in {line}");
        }
        assert!(is_hex(v["trace_id"].as_str().unwrap(), 32));
        assert!(is_hex(v["span_id"].as_str().unwrap(), 16));
        let parent = v["parent_span_id"].as_str().unwrap();
        assert!(parent.is_empty() || is_hex(parent, 16));
        let (st, en) = (
            v["start_time"].as_str().unwrap(),
            v["end_time"].as_str().unwrap(),
        );
        assert!(is_iso(st) && is_iso(en), "bad timestamps {st} {en}");
        assert!(st <= en);
        // Exporter order: spans are written in end-time order.
        assert!(prev_end.as_str() <= en, "not in end-time order");
        prev_end = en.to_owned();
        assert!(v["kind"].as_str().unwrap().starts_with("SPAN_KIND_"));
        let code = v["status"]["code"].as_str().expect("status.code");
        assert!(["STATUS_CODE_OK", "STATUS_CODE_ERROR", "STATUS_CODE_UNSET"].contains(&code));
        assert!(v["status"]["message"].is_string());
        assert!(v["resource"]["attributes"]["service.name"].is_string());
        assert!(v["scope"]["name"].is_string() && v["scope"]["version"].is_string());
        let attrs = v["attributes"].as_object().expect("attributes object");
        assert!(
            attrs.values().all(|a| !a.is_object()),
            "attributes must be flat"
        );
        by.entry(v["trace_id"].as_str().unwrap().to_owned())
            .or_default()
            .push(v);
    }
    by
}

#[test]
fn canonical_lines_are_valid_and_traces_consistent() {
    let (bytes, summary) = gen(&cfg(300, 3), OutputFormat::Canonical);
    let by = parse_canonical(&bytes);
    assert_eq!(by.len() as u64, summary.traces);
    assert_eq!(
        bytes.iter().filter(|&&b| b == b'\n').count() as u64,
        summary.spans
    );
    let mut interleaved = false;
    let text = std::str::from_utf8(&bytes).unwrap();
    let ids: Vec<&str> = text.lines().map(|l| &l[13..45]).collect();
    let mut seen_done = HashSet::new();
    for w in ids.windows(2) {
        if w[0] != w[1] {
            if seen_done.contains(w[1]) {
                interleaved = true;
            }
            seen_done.insert(w[0]);
        }
    }
    assert!(interleaved, "spans of concurrent traces should interleave");
    for spans in by.values() {
        let roots: Vec<&Value> = spans.iter().filter(|s| s["parent_span_id"] == "").collect();
        assert_eq!(roots.len(), 1, "exactly one root");
        let ids: HashMap<&str, &Value> = spans
            .iter()
            .map(|s| (s["span_id"].as_str().unwrap(), s))
            .collect();
        assert_eq!(ids.len(), spans.len(), "span ids unique within a trace");
        for s in spans {
            let p = s["parent_span_id"].as_str().unwrap();
            if !p.is_empty() {
                let parent = ids.get(p).expect("parent present");
                assert!(parent["start_time"].as_str() <= s["start_time"].as_str());
                assert!(
                    parent["end_time"].as_str() >= s["end_time"].as_str(),
                    "child ends after parent"
                );
            }
        }
    }
}

fn attr<'a>(s: &'a Value, keys: &[&str]) -> Option<&'a Value> {
    keys.iter().find_map(|k| s["attributes"].get(*k))
}

fn span_kind(s: &Value) -> &str {
    if let Some(k) = s["attributes"]["openinference.span.kind"].as_str() {
        return k;
    }
    match s["attributes"]["gen_ai.operation.name"].as_str() {
        Some("chat") => "LLM",
        Some("execute_tool") => "TOOL",
        Some("invoke_agent") => "AGENT",
        _ => "CHAIN",
    }
}

fn is_err(s: &Value) -> bool {
    s["status"]["code"] == "STATUS_CODE_ERROR"
}

fn nanos(t: &str) -> f64 {
    // Seconds within the day are enough here (same-day dataset, durations < 1 h).
    let h: f64 = t[11..13].parse().unwrap();
    let m: f64 = t[14..16].parse().unwrap();
    let s: f64 = t[17..29].parse().unwrap();
    let d: f64 = t[8..10].parse().unwrap();
    ((d * 24.0 + h) * 60.0 + m) * 60.0 + s
}

fn dur(s: &Value) -> f64 {
    nanos(s["end_time"].as_str().unwrap()) - nanos(s["start_time"].as_str().unwrap())
}

#[derive(Debug, Default)]
struct Features {
    tool_err_app: usize,
    tool_err_hallucinated: usize,
    tool_err_args: usize,
    llm_err: usize,
    refusals: usize,
    done_claims: usize,
    tool_calls: usize,
    max_identical_run: usize,
    exhausted: bool,
    outcome: String,
    max_prompt_tokens: i64,
    max_llm_secs: f64,
    max_tool_secs: f64,
    undeclared_tool_calls: usize,
}

fn features(spans: &[Value]) -> Features {
    let mut f = Features::default();
    let mut sorted: Vec<&Value> = spans.iter().collect();
    sorted.sort_by(|a, b| a["start_time"].as_str().cmp(&b["start_time"].as_str()));
    let mut calls: Vec<(String, String)> = Vec::new();
    let mut declared: HashSet<String> = HashSet::new();
    for s in sorted {
        let msg = s["status"]["message"].as_str().unwrap_or("");
        match span_kind(s) {
            "TOOL" => {
                let name = attr(s, &["tool.name", "gen_ai.tool.name"])
                    .and_then(Value::as_str)
                    .unwrap()
                    .to_owned();
                let args = attr(s, &["tool.parameters", "gen_ai.tool.call.arguments"])
                    .and_then(Value::as_str)
                    .unwrap()
                    .to_owned();
                if !name.starts_with("transfer_to") {
                    if !declared.contains(&name) {
                        f.undeclared_tool_calls += 1;
                    }
                    f.tool_calls += 1;
                    calls.push((name, args));
                }
                if is_err(s) {
                    if msg.starts_with("Tool ") || msg.starts_with("Unknown tool") {
                        f.tool_err_hallucinated += 1;
                    } else if msg.starts_with("TypeError") || msg.starts_with("ValidationError") {
                        f.tool_err_args += 1;
                    } else {
                        f.tool_err_app += 1;
                    }
                } else {
                    f.max_tool_secs = f.max_tool_secs.max(dur(s));
                }
            }
            "LLM" => {
                declared.clear();
                let a = s["attributes"].as_object().unwrap();
                for (k, v) in a {
                    if k.starts_with("llm.tools.") {
                        let schema: Value = serde_json::from_str(v.as_str().unwrap()).unwrap();
                        declared.insert(schema["function"]["name"].as_str().unwrap().to_owned());
                    }
                }
                if let Some(defs) = a.get("gen_ai.tool.definitions") {
                    let defs: Value = serde_json::from_str(defs.as_str().unwrap()).unwrap();
                    for d in defs.as_array().unwrap() {
                        declared.insert(d["function"]["name"].as_str().unwrap().to_owned());
                    }
                }
                if is_err(s) {
                    f.llm_err += 1;
                    continue;
                }
                let out = attr(s, &["output.value", "gen_ai.output.messages"])
                    .and_then(Value::as_str)
                    .unwrap_or("");
                if out.contains("I'm sorry") {
                    f.refusals += 1;
                }
                if out.contains("Done! I've completed the task") {
                    f.done_claims += 1;
                }
                let pt = attr(s, &["llm.token_count.prompt", "gen_ai.usage.input_tokens"])
                    .and_then(Value::as_i64)
                    .unwrap();
                if let Some(inf) = s["attributes"].get("inference.llm.input_tokens") {
                    assert_eq!(
                        inf.as_i64(),
                        Some(pt),
                        "dialects must agree on token counts"
                    );
                }
                f.max_prompt_tokens = f.max_prompt_tokens.max(pt);
                f.max_llm_secs = f.max_llm_secs.max(dur(s));
            }
            _ => {}
        }
        if s["parent_span_id"] == "" {
            f.outcome = s["attributes"]["agent.outcome"]
                .as_str()
                .unwrap_or("")
                .to_owned();
            f.exhausted =
                is_err(s) && (msg.contains("MaxTurnsExceeded") || msg.contains("Recursion limit"));
        }
    }
    let mut run = 1;
    f.max_identical_run = usize::from(!calls.is_empty());
    for w in calls.windows(2) {
        run = if w[0] == w[1] { run + 1 } else { 1 };
        f.max_identical_run = f.max_identical_run.max(run);
    }
    f
}

#[test]
fn labels_match_planted_modes() {
    check_labels(cfg(1500, 77), 1500.0);
}

#[test]
fn labels_match_planted_modes_compact() {
    check_labels(
        GeneratorConfig {
            compact: true,
            ..cfg(600, 78)
        },
        600.0,
    );
}

fn check_labels(config: GeneratorConfig, n: f64) {
    let (bytes, summary) = gen(&config, OutputFormat::Canonical);
    let by = parse_canonical(&bytes);
    let labels = &summary.labels;
    let mut all: Vec<&String> = labels.clean.iter().collect();
    for m in FailureMode::ALL {
        let ids = &labels.modes[&m];
        let expected = (m.default_rate() * n).round() as usize;
        assert_eq!(ids.len(), expected, "{m}: realised count");
        assert!(ids.windows(2).all(|w| w[0] < w[1]), "{m}: sorted");
        all.extend(ids.iter());
    }
    assert!(labels.clean.windows(2).all(|w| w[0] < w[1]));
    let unique: HashSet<&String> = all.iter().copied().collect();
    assert_eq!(unique.len(), by.len(), "each trace labelled exactly once");

    // Typical magnitudes over clean traces.
    let clean: Vec<Features> = labels.clean.iter().map(|t| features(&by[t])).collect();
    let max_clean_prompt = clean.iter().map(|f| f.max_prompt_tokens).max().unwrap();
    let max_clean_llm = clean.iter().map(|f| f.max_llm_secs).fold(0.0, f64::max);
    let max_clean_tool = clean.iter().map(|f| f.max_tool_secs).fold(0.0, f64::max);
    for (t, f) in labels.clean.iter().zip(&clean) {
        assert_eq!(
            f.tool_err_app + f.tool_err_hallucinated + f.tool_err_args + f.llm_err,
            0,
            "clean {t} has errors"
        );
        assert!(
            by[t].iter().all(|s| !is_err(s)),
            "clean {t} has an error span"
        );
        assert_eq!(f.refusals + f.done_claims, 0, "clean {t}");
        assert!(
            f.tool_calls >= 1 && f.max_identical_run == 1 && f.undeclared_tool_calls == 0,
            "clean {t}: {f:?}"
        );
        assert_eq!(f.outcome, "success");
    }
    for m in FailureMode::ALL {
        for t in &labels.modes[&m] {
            let f = features(&by[t]);
            let ok = match m {
                FailureMode::ToolError => {
                    f.tool_err_app >= 1 && f.tool_err_hallucinated + f.tool_err_args == 0
                }
                FailureMode::HallucinatedTool => {
                    f.tool_err_hallucinated == 1
                        && f.undeclared_tool_calls == 1
                        && f.tool_err_app == 0
                }
                FailureMode::InvalidToolArgs => {
                    f.tool_err_args == 1 && f.tool_err_app + f.tool_err_hallucinated == 0
                }
                FailureMode::RepeatedToolLoop => (5..=12).contains(&f.max_identical_run),
                FailureMode::RefusalLoop => f.refusals >= 3,
                FailureMode::Refusal => f.refusals == 1 && f.tool_calls >= 1,
                FailureMode::TurnExhaustion => f.exhausted && f.max_identical_run == 1,
                FailureMode::ProviderError => f.llm_err >= 1 && f.tool_err_app == 0,
                FailureMode::PrematureSuccess => {
                    f.tool_calls == 0 && f.done_claims == 1 && f.outcome == "success"
                }
                FailureMode::SilentFailure => {
                    by[t].iter().all(|s| !is_err(s)) && f.outcome == "failure"
                }
                FailureMode::LatencyOutlier => {
                    f.max_llm_secs > 3.0 * max_clean_llm || f.max_tool_secs > 3.0 * max_clean_tool
                }
                FailureMode::TokenOutlier => f.max_prompt_tokens >= 10 * max_clean_prompt / 2,
            };
            assert!(ok, "{m} trace {t} lacks its signature: {f:?}");
            // Mutual exclusivity of the strongest signals.
            if m != FailureMode::RepeatedToolLoop {
                assert_eq!(
                    f.max_identical_run.min(2),
                    usize::from(f.tool_calls > 0),
                    "{m} {t} looks like a loop"
                );
            }
            if !matches!(m, FailureMode::Refusal | FailureMode::RefusalLoop) {
                assert_eq!(f.refusals, 0, "{m} {t} has a refusal");
            }
            if m != FailureMode::TokenOutlier {
                assert!(
                    f.max_prompt_tokens <= max_clean_prompt * 2,
                    "{m} {t} has a token outlier"
                );
            }
            if m != FailureMode::LatencyOutlier {
                assert!(
                    f.max_llm_secs <= max_clean_llm * 2.0
                        && f.max_tool_secs <= max_clean_tool * 2.0,
                    "{m} {t} slow: {f:?}"
                );
            }
        }
    }
}

#[test]
fn no_failures_means_all_clean() {
    let config = GeneratorConfig {
        traces: 60,
        seed: 1,
        rates: ModeRates::none(),
        ..GeneratorConfig::default()
    };
    let (_, s) = gen(&config, OutputFormat::Canonical);
    assert_eq!(s.labels.clean.len(), 60);
    assert!(s.labels.modes.values().all(Vec::is_empty));
    let json: Value = serde_json::from_str(&s.labels.to_json()).unwrap();
    assert_eq!(json.as_object().unwrap().len(), FailureMode::ALL.len() + 1);
}

fn check_any_value(v: &Value) {
    let o = v.as_object().expect("AnyValue object");
    assert_eq!(o.len(), 1, "exactly one typed field: {v}");
    let (k, inner) = o.iter().next().unwrap();
    match k.as_str() {
        "stringValue" => assert!(inner.is_string()),
        "intValue" => {
            inner
                .as_str()
                .expect("intValue is a string")
                .parse::<i64>()
                .expect("intValue parses");
        }
        "doubleValue" => assert!(inner.is_f64()),
        "boolValue" => assert!(inner.is_boolean()),
        "arrayValue" => inner["values"]
            .as_array()
            .expect("values")
            .iter()
            .for_each(check_any_value),
        "kvlistValue" => check_kv_list(&inner["values"]),
        other => panic!("unexpected AnyValue field {other}"),
    }
}

fn check_kv_list(v: &Value) {
    for kv in v.as_array().expect("key/value list") {
        assert!(kv["key"].is_string());
        check_any_value(&kv["value"]);
    }
}

#[test]
fn otlp_output_is_well_formed() {
    let (bytes, summary) = gen(&cfg(120, 5), OutputFormat::Otlp);
    let text = std::str::from_utf8(&bytes).unwrap();
    let mut spans = 0u64;
    let mut traces = HashSet::new();
    let mut saw = HashSet::new();
    for line in text.lines() {
        let v: Value = serde_json::from_str(line).expect("line is JSON");
        for rs in v["resourceSpans"].as_array().expect("resourceSpans") {
            check_kv_list(&rs["resource"]["attributes"]);
            for ss in rs["scopeSpans"].as_array().expect("scopeSpans") {
                assert!(ss["scope"]["name"].is_string());
                for s in ss["spans"].as_array().expect("spans") {
                    spans += 1;
                    let tid = s["traceId"].as_str().unwrap();
                    assert!(is_hex(tid, 32) && is_hex(s["spanId"].as_str().unwrap(), 16));
                    if let Some(p) = s.get("parentSpanId") {
                        assert!(is_hex(p.as_str().unwrap(), 16));
                    }
                    traces.insert(tid.to_owned());
                    let kind = s["kind"].as_u64().expect("kind int");
                    assert!((1..=5).contains(&kind));
                    let st: u64 = s["startTimeUnixNano"].as_str().unwrap().parse().unwrap();
                    let en: u64 = s["endTimeUnixNano"].as_str().unwrap().parse().unwrap();
                    assert!(st <= en);
                    check_kv_list(&s["attributes"]);
                    for a in s["attributes"].as_array().unwrap() {
                        saw.insert(
                            a["value"]
                                .as_object()
                                .unwrap()
                                .keys()
                                .next()
                                .unwrap()
                                .clone(),
                        );
                    }
                    let code = s["status"].get("code").and_then(Value::as_u64).unwrap_or(0);
                    assert!(code <= 2);
                    if code == 2 {
                        assert!(s["status"]["message"].is_string());
                        let ev = &s["events"][0];
                        assert_eq!(ev["name"], "exception");
                        ev["timeUnixNano"].as_str().unwrap().parse::<u64>().unwrap();
                        check_kv_list(&ev["attributes"]);
                    }
                }
            }
        }
    }
    assert_eq!(spans, summary.spans);
    assert_eq!(traces.len() as u64, summary.traces);
    assert!(summary.lines < summary.spans, "several spans per line");
    for k in [
        "stringValue",
        "intValue",
        "doubleValue",
        "boolValue",
        "arrayValue",
        "kvlistValue",
    ] {
        assert!(saw.contains(k), "no {k} attribute generated");
    }
}

#[test]
fn target_bytes_scales_output() {
    let mut sizes = Vec::new();
    for target in [1_000_000u64, 4_000_000] {
        let config = GeneratorConfig {
            target_bytes: Some(target),
            seed: 11,
            ..GeneratorConfig::default()
        };
        let (bytes, s) = gen(&config, OutputFormat::Canonical);
        assert_eq!(bytes.len() as u64, s.bytes);
        assert!(s.bytes >= target, "{} < {target}", s.bytes);
        assert!(s.bytes < target + 1_000_000, "overshoot: {}", s.bytes);
        sizes.push(s.traces);
    }
    let ratio = sizes[1] as f64 / sizes[0] as f64;
    assert!(
        (2.5..6.0).contains(&ratio),
        "trace count should scale with the target: {sizes:?}"
    );
}

/// Rates that sum past 1 are refused before the output file is made: no empty file is
/// left for a later `halo diff` to read as a run without traces.
#[test]
fn refused_rates_leave_no_output_file() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("t.jsonl");
    let run = std::process::Command::new(env!("CARGO_BIN_EXE_halo-testdata"))
        .args(["--rate", "tool_error=0.8", "--rate", "refusal=0.5", "--out"])
        .arg(&out)
        .output()
        .unwrap();
    assert_eq!(run.status.code(), Some(1));
    let err = String::from_utf8_lossy(&run.stderr);
    assert!(err.contains("more than 1"), "{err}");
    assert!(!out.exists());
}
