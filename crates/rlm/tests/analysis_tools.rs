//! The analysis tools over real HTTP against the scripted server: `get_failure_modes`
//! (the offline diagnosis as a tool) and `sql` (read-only SQL over the dataset).

mod common;

use common::*;
use halo_rlm::{AgentItem, Engine, EngineEvent, RunStatus};
use halo_testkit::scripted_server::{RecordedRequest, Reply, Script, ScriptedServer, Turn};
use serde_json::Value;

/// Tool results of the root, by call id, with their error flag (from the event stream).
fn tool_results(events: &[EngineEvent]) -> Vec<(String, String, bool)> {
    events
        .iter()
        .filter_map(|e| match e {
            EngineEvent::OutputItem(i) => match &i.item {
                AgentItem::ToolResult {
                    call_id,
                    content,
                    is_error,
                    ..
                } => Some((call_id.clone(), content.clone(), *is_error)),
                _ => None,
            },
            _ => None,
        })
        .collect()
}

fn result_of(results: &[(String, String, bool)], call_id: &str) -> (Value, bool) {
    let (_, content, is_error) = results
        .iter()
        .find(|(id, _, _)| id == call_id)
        .unwrap_or_else(|| panic!("no result for {call_id}: {results:?}"));
    (
        serde_json::from_str(content).unwrap_or_else(|e| panic!("{call_id}: {e}: {content}")),
        *is_error,
    )
}

fn first_request(server: &ScriptedServer) -> RecordedRequest {
    server.requests().into_iter().next().expect("a request")
}

/// Eight traces: p1..p3 call `fetch_invoice`, which fails with "invoice N not found in
/// ledger" (a planted tool error, one template); ok1..ok5 succeed.
fn planted_tool_error() -> TestData {
    let llm = r#"{"openinference.span.kind":"LLM","llm.model_name":"gpt-x","llm.token_count.prompt":100,"llm.token_count.completion":20}"#;
    let tool_ok = r#"{"openinference.span.kind":"TOOL","tool.name":"fetch_invoice","input.value":"{\"id\":7}","output.value":"{\"total\":12}"}"#;
    let trace = |k: &str, status: &str, message: &str, tool: &str| {
        let root = format!("{k}-root");
        [
            span(k, &root, "", "STATUS_CODE_OK", "", "{}"),
            span(k, &format!("{k}-llm"), &root, "STATUS_CODE_OK", "", llm),
            span(k, &format!("{k}-tool"), &root, status, message, tool),
        ]
    };
    let mut lines = Vec::new();
    for (k, n) in ["p1", "p2", "p3"].iter().zip([1042, 77, 31337]) {
        let tool_err = format!(
            r#"{{"openinference.span.kind":"TOOL","tool.name":"fetch_invoice","input.value":"{{\"id\":{n}}}","output.value":"error"}}"#
        );
        let message = format!("invoice {n} not found in ledger");
        lines.extend(trace(k, "STATUS_CODE_ERROR", &message, &tool_err));
    }
    for k in ["ok1", "ok2", "ok3", "ok4", "ok5"] {
        lines.extend(trace(k, "STATUS_CODE_OK", "", tool_ok));
    }
    open_lines(&(lines.join("\n") + "\n"))
}

#[tokio::test]
async fn the_root_is_offered_get_failure_modes_and_sql_and_told_to_start_with_them() {
    let data = data();
    let server =
        ScriptedServer::start(Script::new().reply(final_answer("c1", "# Report\nok"))).await;
    let engine = Engine::new(config(&server.base_url()), data.dataset.clone()).unwrap();
    let (_, outcome) = run_all(&engine, "What fails?").await;
    assert_eq!(outcome.status, RunStatus::Completed, "{:?}", outcome.error);

    let req = first_request(&server);
    let names = req.tool_names();
    for t in ["get_dataset_overview", "get_failure_modes", "sql"] {
        assert!(names.contains(&t.to_owned()), "root lacks {t}: {names:?}");
    }
    let tools = req.body["tools"].as_array().unwrap();
    let spec = |name: &str| {
        tools
            .iter()
            .find(|t| t.to_string().contains(&format!("\"name\":\"{name}\"")))
            .unwrap()
            .to_string()
    };
    // The sql description carries the schema and example queries.
    let sql = spec("sql");
    assert!(
        sql.contains("tool_calls") && sql.contains("GROUP BY"),
        "{sql}"
    );
    assert!(sql.contains("\"query\""), "{sql}");
    assert!(spec("get_failure_modes").contains("\"filters\""));
    // The method tells the model where to start.
    assert!(req
        .raw_body
        .contains("Start with get_dataset_overview, then get_failure_modes"));
}

#[tokio::test]
async fn get_failure_modes_names_a_planted_tool_error_with_examples() {
    let data = planted_tool_error();
    let server = ScriptedServer::start(
        Script::new()
            .reply(Reply::turn(
                Turn::new()
                    .tool_call("f1", "get_failure_modes", "{}")
                    .tool_call(
                        "f2",
                        "get_failure_modes",
                        r#"{"filters":{"has_tool_errors":true}}"#,
                    )
                    .tool_call(
                        "f3",
                        "get_failure_modes",
                        r#"{"filters":{"model_names":["no-such-model"]}}"#,
                    )
                    .tool_call("f4", "get_failure_modes", r#"{"filters":{"bogus":1}}"#),
            ))
            .reply(final_answer(
                "c2",
                "# Report\nfetch_invoice fails in 3 of 8 traces [span:p1:p1-tool].",
            )),
    )
    .await;
    let engine = Engine::new(config(&server.base_url()), data.dataset.clone()).unwrap();
    let (events, outcome) = run_all(&engine, "What fails?").await;
    assert_eq!(outcome.status, RunStatus::Completed, "{:?}", outcome.error);
    assert!(outcome.record.unverified_citations.is_empty());
    let results = tool_results(&events);

    // The whole dataset: the planted failure is the top finding, with evidence.
    let (map, is_error) = result_of(&results, "f1");
    assert!(!is_error, "{map}");
    assert_eq!(map["traces_analysed"], 8);
    assert_eq!(map["failing_traces"], 3);
    let modes: Vec<&str> = map["modes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["mode"].as_str().unwrap())
        .collect();
    assert!(modes.contains(&"tool_error"), "{map}");
    let f = map["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["mode"] == "tool_error")
        .unwrap_or_else(|| panic!("no tool_error finding: {map}"));
    assert_eq!(f["tool"], "fetch_invoice", "{f}");
    assert_eq!(f["trace_count"], 3, "{f}");
    assert!(
        f["template"]
            .as_str()
            .unwrap()
            .contains("not found in ledger"),
        "{f}"
    );
    assert!(!f["fix"].as_str().unwrap().is_empty());
    let examples = f["examples"].as_array().unwrap();
    assert_eq!(examples.len(), 3, "{f}");
    for e in examples {
        let t = e["trace_id"].as_str().unwrap();
        assert!(["p1", "p2", "p3"].contains(&t), "{e}");
        assert_eq!(e["span_ids"][0], format!("{t}-tool"), "{e}");
    }

    // Filters select the traces that are diagnosed.
    let (map, _) = result_of(&results, "f2");
    assert_eq!(map["traces_analysed"], 3, "{map}");
    assert_eq!(map["failing_traces"], 3, "{map}");
    let (map, is_error) = result_of(&results, "f3");
    assert!(!is_error);
    assert_eq!(map["traces_analysed"], 0, "{map}");
    assert!(map["note"].as_str().unwrap().contains("No trace matches"));
    // Bad arguments come back as an error result.
    let (err, is_error) = result_of(&results, "f4");
    assert!(is_error);
    assert!(err["error"].as_str().unwrap().contains("bogus"), "{err}");

    // And the model got the same map back.
    let second = &server.requests()[1];
    let sent = second.tool_results();
    assert!(sent[0].1.contains("fetch_invoice"));
    assert_eq!(outcome.record.tools["get_failure_modes"].calls, 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sql_returns_rows_and_refused_statements_are_error_results() {
    let data = planted_tool_error();
    let server = ScriptedServer::start(
        Script::new()
            .reply(Reply::turn(
                Turn::new()
                    .tool_call(
                        "q1",
                        "sql",
                        &serde_json::json!({
                            "query": "SELECT tool_name, count(*) AS calls, \
                                      sum(CASE WHEN is_error THEN 1 ELSE 0 END) AS failures \
                                      FROM tool_calls GROUP BY tool_name ORDER BY tool_name"
                        })
                        .to_string(),
                    )
                    .tool_call("q2", "sql", r#"{"query":"DROP TABLE spans"}"#),
            ))
            .reply(Reply::turn(
                Turn::new()
                    .tool_call(
                        "q3",
                        "sql",
                        r#"{"query":"SELECT trace_id FROM traces ORDER BY trace_id"}"#,
                    )
                    .tool_call("q4", "sql", r#"{"query":"SELEC nonsense"}"#),
            ))
            .reply(final_answer(
                "c3",
                "# Report\n3 of 8 fetch_invoice calls fail [trace:p1].",
            )),
    )
    .await;
    let mut cfg = config(&server.base_url());
    cfg.max_turns = 5;
    let engine = Engine::new(cfg, data.dataset.clone()).unwrap();
    let (events, outcome) = run_all(&engine, "What fails?").await;
    assert_eq!(outcome.status, RunStatus::Completed, "{:?}", outcome.error);
    let results = tool_results(&events);

    let (r, is_error) = result_of(&results, "q1");
    assert!(!is_error, "{r}");
    assert_eq!(
        r["rows"],
        serde_json::json!([["fetch_invoice", 8, 3]]),
        "{r}"
    );
    assert_eq!(r["truncated"], false);
    assert_eq!(r["columns"][0]["name"], "tool_name");

    let (r, is_error) = result_of(&results, "q2");
    assert!(is_error, "{r}");
    assert!(r["error"].as_str().unwrap().contains("refused"), "{r}");

    // The run went on: the engine (opened once) still answers.
    let (r, is_error) = result_of(&results, "q3");
    assert!(!is_error, "{r}");
    assert_eq!(r["row_count"], 8, "{r}");
    let (r, is_error) = result_of(&results, "q4");
    assert!(is_error, "{r}");

    // The model saw the error as a tool result, in order.
    let reqs = server.requests();
    assert_eq!(reqs.len(), 3);
    let sent = reqs[1].tool_results();
    assert_eq!(sent[1].0, "q2");
    assert!(sent[1].1.contains("\"error\""), "{}", sent[1].1);
    assert_eq!(outcome.record.tools["sql"].calls, 4);
    assert_eq!(outcome.record.tools["sql"].errors, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sql_rows_beyond_the_agent_limit_are_cut_and_say_so() {
    let data = planted_tool_error();
    let server = ScriptedServer::start(
        Script::new()
            .reply(Reply::turn(Turn::new().tool_call(
                "q1",
                "sql",
                r#"{"query":"SELECT a.span_id, b.span_id AS other FROM spans a CROSS JOIN spans b"}"#,
            )))
            .reply(final_answer("c2", "# Report\nnothing")),
    )
    .await;
    let engine = Engine::new(config(&server.base_url()), data.dataset.clone()).unwrap();
    let (events, outcome) = run_all(&engine, "x").await;
    assert_eq!(outcome.status, RunStatus::Completed, "{:?}", outcome.error);
    let (r, is_error) = result_of(&tool_results(&events), "q1");
    assert!(!is_error, "{r}");
    assert_eq!(r["truncated"], true, "{r}");
    assert!(r["truncation_note"].as_str().unwrap().contains("limit"));
}

/// A result over the cap because of one column's name, and an error that quotes a huge
/// identifier, both reach the model as JSON it can read, within the cap.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_sql_results_and_errors_stay_valid_json() {
    let data = planted_tool_error();
    let ids: Vec<String> = (0..12_000).map(|i| format!("'{i:032}'")).collect();
    let wide = format!(
        "SELECT sum(CASE WHEN trace_id IN ({}) THEN 1 ELSE 0 END) FROM traces",
        ids.join(", ")
    );
    let bad = format!("SELECT * FROM t{}", "x".repeat(200_000));
    let server = ScriptedServer::start(
        Script::new()
            .reply(Reply::turn(
                Turn::new()
                    .tool_call(
                        "q1",
                        "sql",
                        &serde_json::json!({ "query": wide }).to_string(),
                    )
                    .tool_call(
                        "q2",
                        "sql",
                        &serde_json::json!({ "query": bad }).to_string(),
                    ),
            ))
            .reply(final_answer("c2", "# Report\nnothing")),
    )
    .await;
    let engine = Engine::new(config(&server.base_url()), data.dataset.clone()).unwrap();
    let (_, outcome) = run_all(&engine, "x").await;
    assert_eq!(outcome.status, RunStatus::Completed, "{:?}", outcome.error);
    let sent = server.requests()[1].tool_results();
    for (id, text) in &sent {
        assert!(text.len() < 160_000, "{id}: {} bytes", text.len());
        let json: serde_json::Value = serde_json::from_str(text)
            .unwrap_or_else(|e| panic!("{id}: not JSON ({e}): {}", &text[text.len() - 200..]));
        match id.as_str() {
            "q1" => {
                assert_eq!(json["truncated"], true, "{json}");
                assert!(
                    json["truncation_note"].as_str().unwrap().contains("AS"),
                    "{json}"
                );
            }
            _ => assert!(json["error"].as_str().unwrap().ends_with('…'), "{json}"),
        }
    }
}
