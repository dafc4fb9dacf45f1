//! The run's bounds, end to end against the scripted server: what the event stream
//! marks final, how checkpoints travel, context and fan-out limits, the token budget
//! and how promptly Ctrl-C ends a run.

mod common;

use std::time::Duration;

use common::*;
use futures::StreamExt;
use halo_rlm::{AgentItem, Engine, EngineEvent, RunCheckpoint, RunStatus};
use halo_testkit::scripted_server::{RecordedRequest, Reply, Script, ScriptedServer, Turn};

fn is_subagent(r: &RecordedRequest) -> bool {
    r.raw_body.contains("You are a HALO subagent")
}

fn is_synthesis(r: &RecordedRequest) -> bool {
    r.raw_body.contains("You summarize execution traces")
}

/// The results of `name` calls the agents got, in event order.
fn results_of<'a>(events: &'a [EngineEvent], name: &str) -> Vec<(&'a str, bool)> {
    events
        .iter()
        .filter_map(|e| match e {
            EngineEvent::OutputItem(i) => match &i.item {
                AgentItem::ToolResult {
                    name: n,
                    content,
                    is_error,
                    ..
                } if n == name => Some((content.as_str(), *is_error)),
                _ => None,
            },
            _ => None,
        })
        .collect()
}

/// `turn` asking for `n` subagents at once: `call_subagent` calls `c1`..`cN`, on tasks
/// `task 1`..`task N`.
fn subagent_calls(mut turn: Turn, n: usize) -> Turn {
    for k in 1..=n {
        turn = turn.tool_call(
            &format!("c{k}"),
            "call_subagent",
            &format!(r#"{{"input":"task {k}"}}"#),
        );
    }
    turn
}

#[tokio::test]
async fn only_the_runs_answer_is_final_and_a_subagents_answer_is_agent_finished() {
    let data = data();
    let server = ScriptedServer::start(
        Script::new()
            .reply(
                Reply::turn(
                    Turn::new()
                        .tool_call("c1", "call_subagent", r#"{"input":"look at t1"}"#)
                        .tool_call("c3", "call_subagent", r#"{"input":"look at t2"}"#),
                )
                .when(|r| is_root(r) && !has_tool_results(r)),
            )
            .reply(
                Reply::text("t1 fails in list_files")
                    .when(|r| is_subagent(r) && r.raw_body.contains("look at t1")),
            )
            // The other answers through final_answer, then is asked nothing more.
            .reply(
                final_answer("s1", "t2 times out")
                    .when(|r| is_subagent(r) && r.raw_body.contains("look at t2")),
            )
            .reply(final_answer("c2", "report [trace:t1]").when(is_root)),
    )
    .await;
    let engine = Engine::new(config(&server.base_url()), data.dataset.clone()).unwrap();
    let (events, outcome) = run_all(&engine, "q").await;
    assert_eq!(outcome.status, RunStatus::Completed);
    let items: Vec<serde_json::Value> = events
        .iter()
        .filter(|e| matches!(e, EngineEvent::OutputItem(_)))
        .map(|e| serde_json::to_value(e).unwrap())
        .collect();
    // A consumer taking the first `final` item gets the report, not the subagent's answer.
    let first_final = items.iter().find(|i| i["final"] == true).unwrap();
    assert_eq!(first_final["agent_id"], "root");
    assert!(first_final["item"]["content"]
        .as_str()
        .unwrap()
        .contains("report"));
    assert_eq!(items.iter().filter(|i| i["final"] == true).count(), 1);
    let sub_answer = items
        .iter()
        .find(|i| i["agent_id"] == "root/1.1" && i["agent_finished"] == true)
        .expect("the subagent's answer is marked agent_finished");
    assert_eq!(sub_answer["final"], false);
    assert_eq!(sub_answer["item"]["content"], "t1 fails in list_files");
    let by_tool: Vec<&serde_json::Value> = items
        .iter()
        .filter(|i| i["agent_id"] == "root/1.2" && i["agent_finished"] == true)
        .collect();
    assert_eq!(
        by_tool.len(),
        1,
        "an answer through final_answer is marked too"
    );
    assert_eq!(by_tool[0]["item"]["content"], "t2 times out");
    assert_eq!(by_tool[0]["final"], false);
    // Item ids and agent ids never look alike.
    let agents: std::collections::HashSet<&str> = items
        .iter()
        .map(|i| i["agent_id"].as_str().unwrap())
        .collect();
    assert!(agents.contains("root/1.1"), "{agents:?}");
    assert!(
        items
            .iter()
            .all(|i| !agents.contains(i["item"]["id"].as_str().unwrap())),
        "{items:#?}"
    );
    assert_eq!(halo_rlm::EVENTS_SCHEMA_VERSION, 3);
}

/// Two root turns (a count, then the answer), checkpoints written to `path` if given.
async fn two_turn_run(data: &TestData, path: Option<std::path::PathBuf>) -> Vec<EngineEvent> {
    let server = ScriptedServer::start(
        Script::new()
            .reply(Reply::turn(Turn::new().text("Counting.").tool_call(
                "c1",
                "count_traces",
                "{}",
            )))
            .reply(final_answer("c2", "done [trace:t1]")),
    )
    .await;
    let mut cfg = config(&server.base_url());
    cfg.checkpoint_path = path;
    let engine = Engine::new(cfg, data.dataset.clone()).unwrap();
    let (events, outcome) = run_all(&engine, "q").await;
    assert_eq!(outcome.status, RunStatus::Completed);
    assert!(outcome.checkpoint_errors.is_empty());
    events
}

#[tokio::test]
async fn checkpoint_events_name_the_compact_file_instead_of_carrying_the_conversation() {
    let data = data();
    let path = data.dir.path().join("run.checkpoint.json");
    let events = two_turn_run(&data, Some(path.clone())).await;
    let cps: Vec<serde_json::Value> = events
        .iter()
        .filter(|e| matches!(e, EngineEvent::Checkpoint(_)))
        .map(|e| serde_json::to_value(e).unwrap())
        .collect();
    // One after each root turn.
    assert_eq!(cps.len(), 2, "{cps:?}");
    for (k, cp) in cps.iter().enumerate() {
        assert_eq!(cp["path"], path.to_str().unwrap());
        assert_eq!(cp["turns_used"], k + 1);
        assert!(cp["tokens_used"].as_u64().unwrap() > 0);
        assert!(cp.get("checkpoint").is_none(), "{cp}");
    }
    let stream: String = events
        .iter()
        .map(|e| serde_json::to_string(e).unwrap())
        .collect();
    assert!(!stream.contains("root_messages"));
    // The file is what resuming reads: complete, on one line (not pretty-printed).
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(!text.contains('\n'), "compact JSON expected");
    let cp = RunCheckpoint::load(&path).unwrap();
    assert!(cp.completed);
    assert_eq!(cp.turns_used, 2);
}

#[tokio::test]
async fn without_a_checkpoint_file_the_event_keeps_the_snapshot() {
    let data = data();
    let events = two_turn_run(&data, None).await;
    let cp = events
        .iter()
        .find_map(|e| match e {
            EngineEvent::Checkpoint(c) => Some(c),
            _ => None,
        })
        .unwrap();
    assert_eq!(cp.path, None);
    let snapshot = cp.checkpoint.as_ref().expect("the stream is its only home");
    assert_eq!(snapshot.turns_used, 1);
    assert!(snapshot.root_messages.len() >= 3);
}

#[tokio::test]
async fn subagent_answers_and_syntheses_are_capped_and_kept_whole_as_context_items() {
    let data = data();
    let long_answer = format!("A{}", "a".repeat(99_999));
    let long_synthesis = format!("S{}", "s".repeat(99_999));
    let server = ScriptedServer::start(
        Script::new()
            .reply(
                Reply::turn(
                    Turn::new()
                        .tool_call("c1", "call_subagent", r#"{"input":"look at t1"}"#)
                        .tool_call("c2", "synthesize_traces", r#"{"trace_ids":["t1"]}"#),
                )
                .when(|r| is_root(r) && !has_tool_results(r)),
            )
            .reply(Reply::text(long_answer).when(is_subagent))
            .reply(Reply::text(long_synthesis).when(is_synthesis))
            .reply(
                Reply::turn(Turn::new().tool_call(
                    "c3",
                    "get_context_item",
                    r#"{"item_id":"ctx-1"}"#,
                ))
                .when(|r| is_root(r) && results(r) == 2),
            )
            .reply(final_answer("c4", "done")),
    )
    .await;
    let engine = Engine::new(config(&server.base_url()), data.dataset.clone()).unwrap();
    let (_, outcome) = run_all(&engine, "q").await;
    assert_eq!(outcome.status, RunStatus::Completed, "{:?}", outcome.error);
    let reqs = server.requests();
    let second = reqs.iter().find(|r| is_root(r) && results(r) == 2).unwrap();
    for (id, text) in second.tool_results() {
        assert!(text.len() < 41_000, "{id}: {} chars", text.len());
        assert!(
            text.contains("of 100000 bytes"),
            "{id}: {}",
            &text[40_000..]
        );
        assert!(text.contains("get_context_item"), "{id}");
    }
    // The whole text is one get_context_item away.
    let third = reqs.iter().find(|r| is_root(r) && results(r) == 3).unwrap();
    let fetched = &third.tool_results()[2].1;
    assert!(fetched.len() >= 100_000, "{}", fetched.len());
}

#[tokio::test]
async fn the_results_of_one_turn_share_a_budget_and_are_cut_in_proportion() {
    let data = data();
    let turn = subagent_calls(Turn::new(), 6);
    let server = ScriptedServer::start(
        Script::new()
            .reply(Reply::turn(turn).when(|r| is_root(r) && !has_tool_results(r)))
            .replies((1..=6).map(|_| Reply::text("x".repeat(39_000)).when(is_subagent)))
            .reply(final_answer("c7", "done")),
    )
    .await;
    let engine = Engine::new(config(&server.base_url()), data.dataset.clone()).unwrap();
    let (_, outcome) = run_all(&engine, "q").await;
    assert_eq!(outcome.status, RunStatus::Completed, "{:?}", outcome.error);
    let reqs = server.requests();
    let last = reqs.iter().find(|r| is_root(r) && results(r) == 6).unwrap();
    let total: usize = last.tool_results().iter().map(|(_, t)| t.len()).sum();
    // 6 × 39 000 = 234 000 > 200 000: each is cut to about a sixth of the budget.
    assert!(total < 205_000, "{total}");
    for (id, text) in last.tool_results() {
        assert!(text.len() < 34_500, "{id}: {}", text.len());
        assert!(text.contains("per-turn budget"), "{id}");
        assert!(text.contains("get_context_item"), "{id}");
    }
}

#[tokio::test]
async fn hundreds_of_calls_in_one_turn_stay_within_the_turns_budget() {
    // Each result is cut to no less than a floor (with a note); past a number of calls
    // per turn, the rest are refused, so the turn's results still fit its budget.
    let data = data();
    let trace = data.dataset.traces()[0].trace_id.clone();
    let mut turn = Turn::new();
    for k in 1..=300 {
        turn = turn.tool_call(
            &format!("c{k}"),
            "view_trace",
            &format!(r#"{{"trace_id":"{trace}"}}"#),
        );
    }
    let server = ScriptedServer::start(
        Script::new()
            .reply(Reply::turn(turn).when(|r| is_root(r) && !has_tool_results(r)))
            .reply(final_answer("f", "done")),
    )
    .await;
    let engine = Engine::new(config(&server.base_url()), data.dataset.clone()).unwrap();
    let (_, outcome) = run_all(&engine, "q").await;
    assert_eq!(outcome.status, RunStatus::Completed, "{:?}", outcome.error);
    let reqs = server.requests();
    let last = reqs
        .iter()
        .find(|r| is_root(r) && results(r) == 300)
        .unwrap();
    let results = last.tool_results();
    let total: usize = results.iter().map(|(_, t)| t.len()).sum();
    assert!(total < 200_000, "{total}");
    let refused = results
        .iter()
        .filter(|(_, t)| t.contains("tool calls run per turn"))
        .count();
    assert_eq!(refused, 250);
    assert!(!results[0].1.contains("tool calls run per turn"));
}

#[tokio::test]
async fn a_context_overflow_moves_the_newest_results_out_and_the_run_goes_on() {
    let data = data();
    let server = ScriptedServer::start(
        Script::new()
            .reply(
                Reply::turn(Turn::new().tool_call(
                    "c1",
                    "call_subagent",
                    r#"{"input":"look at t1"}"#,
                ))
                .when(|r| is_root(r) && !has_tool_results(r)),
            )
            .reply(Reply::text(format!("B{}", "b".repeat(30_000))).when(is_subagent))
            .reply(
                Reply::api_error(
                    400,
                    "context_length_exceeded",
                    "This model's maximum context length is 8192 tokens",
                )
                .when(|r| is_root(r) && has_tool_results(r)),
            )
            .reply(final_answer("c2", "done").when(is_root)),
    )
    .await;
    let engine = Engine::new(config(&server.base_url()), data.dataset.clone()).unwrap();
    let (_, outcome) = run_all(&engine, "q").await;
    assert_eq!(outcome.status, RunStatus::Completed, "{:?}", outcome.error);
    let reqs = server.requests();
    let retried = reqs.last().unwrap();
    let (_, text) = &retried.tool_results()[0];
    assert!(text.len() < 2_500, "{}", text.len());
    assert!(text.starts_with("Bbbb"), "the head stays in place");
    assert!(text.contains("30001 bytes in full"), "{text}");
    assert!(text.contains("get_context_item"), "{text}");
}

/// A whole (not streamed) Chat Completions answer that calls `count_traces`, with `usage`
/// as given, or none.
fn whole_count_traces_call(usage: Option<&serde_json::Value>) -> Reply {
    let mut answer = serde_json::json!({
        "id": "x", "object": "chat.completion", "model": "test-model",
        "choices": [{
            "index": 0,
            "message": {"role": "assistant", "content": null, "tool_calls": [{
                "id": "c1", "type": "function",
                "function": {"name": "count_traces", "arguments": "{}"}
            }]},
            "finish_reason": "tool_calls"
        }]
    });
    if let Some(usage) = usage {
        answer["usage"] = usage.clone();
    }
    Reply::whole_json(answer.to_string())
}

#[tokio::test]
async fn responses_without_usage_are_estimated_so_the_budget_holds() {
    let data = data();
    // A provider that ignores `stream` and reports no usage.
    let server = ScriptedServer::start(
        Script::new()
            .reply(whole_count_traces_call(None))
            .reply(final_answer("c2", "never asked")),
    )
    .await;
    let mut cfg = config(&server.base_url());
    // The request alone (prompt and tool schemas) is thousands of characters.
    cfg.max_total_tokens = Some(300);
    let engine = Engine::new(cfg, data.dataset.clone()).unwrap();
    let (events, outcome) = run_all(&engine, "q").await;
    assert_eq!(outcome.status, RunStatus::TokenBudgetExhausted);
    assert_eq!(server.requests().len(), 1);
    assert_eq!(outcome.record.estimated_usage_calls, 1);
    assert!(outcome.record.input_tokens >= 300);
    let warnings: Vec<_> = events
        .iter()
        .filter_map(|e| match e {
            EngineEvent::Warning(w) => Some(w.message.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert!(warnings[0].contains("no token usage"), "{}", warnings[0]);
}

/// A usage the engine cannot read (`{}`, nulls, zeros) counts as none, so the budget is
/// estimated; counts written as floats are read as counts.
#[tokio::test]
async fn unreadable_usage_is_estimated_and_float_counts_are_counted() {
    let data = data();
    for (usage, estimated) in [
        (serde_json::json!({}), true),
        (
            serde_json::json!({"prompt_tokens": null, "completion_tokens": null}),
            true,
        ),
        (
            serde_json::json!({"prompt_tokens": 0, "completion_tokens": 0}),
            true,
        ),
        (
            serde_json::json!({"prompt_tokens": 1000.0, "completion_tokens": 100.0}),
            false,
        ),
        (
            serde_json::json!({"input_tokens": 1000, "output_tokens": 100}),
            false,
        ),
    ] {
        let server = ScriptedServer::start(
            Script::new()
                .reply(whole_count_traces_call(Some(&usage)))
                .reply(final_answer("c2", "never asked")),
        )
        .await;
        let mut cfg = config(&server.base_url());
        cfg.max_total_tokens = Some(300);
        let engine = Engine::new(cfg, data.dataset.clone()).unwrap();
        let (_, outcome) = run_all(&engine, "q").await;
        assert_eq!(outcome.status, RunStatus::TokenBudgetExhausted, "{usage}");
        assert_eq!(server.requests().len(), 1, "{usage}");
        assert_eq!(
            outcome.record.estimated_usage_calls,
            u64::from(estimated),
            "{usage}"
        );
        if !estimated {
            assert_eq!(outcome.record.input_tokens, 1000, "{usage}");
        }
    }
}

#[tokio::test]
async fn the_warning_about_missing_usage_comes_once() {
    let data = data();
    let whole = |name: &str, args: &str| {
        serde_json::json!({
            "choices": [{
                "index": 0,
                "message": {"role": "assistant", "content": null, "tool_calls": [{
                    "id": format!("id-{name}"), "type": "function",
                    "function": {"name": name, "arguments": args}
                }]},
                "finish_reason": "tool_calls"
            }]
        })
        .to_string()
    };
    let server = ScriptedServer::start(
        Script::new()
            .reply(Reply::whole_json(whole("count_traces", "{}")))
            .reply(Reply::whole_json(whole(
                "final_answer",
                r#"{"answer":"ok"}"#,
            ))),
    )
    .await;
    let engine = Engine::new(config(&server.base_url()), data.dataset.clone()).unwrap();
    let (events, outcome) = run_all(&engine, "q").await;
    assert_eq!(outcome.status, RunStatus::Completed, "{:?}", outcome.error);
    assert_eq!(outcome.record.estimated_usage_calls, 2);
    let warnings = events
        .iter()
        .filter(|e| matches!(e, EngineEvent::Warning(_)))
        .count();
    assert_eq!(warnings, 1);
}

#[tokio::test]
async fn no_synthesis_request_is_sent_past_the_token_budget() {
    let data = data();
    let server = ScriptedServer::start(
        Script::new()
            .reply(
                Reply::turn(
                    Turn::new()
                        .tool_call("c1", "call_subagent", r#"{"input":"look at t1"}"#)
                        .usage(100, 10),
                )
                .when(|r| is_root(r) && !has_tool_results(r)),
            )
            .reply(
                Reply::turn(
                    Turn::new()
                        .tool_call("s1", "synthesize_traces", r#"{"trace_ids":["t1"]}"#)
                        .usage(5_000, 10),
                )
                .when(is_subagent),
            )
            .reply(Reply::text("a synthesis that must not be asked for").when(is_synthesis)),
    )
    .await;
    let mut cfg = config(&server.base_url());
    cfg.max_total_tokens = Some(1_000);
    let engine = Engine::new(cfg, data.dataset.clone()).unwrap();
    let (events, outcome) = run_all(&engine, "q").await;
    assert_eq!(outcome.status, RunStatus::TokenBudgetExhausted);
    assert!(!server.requests().iter().any(is_synthesis));
    let synth = results_of(&events, "synthesize_traces");
    assert_eq!(synth.len(), 1);
    assert!(
        synth[0].1 && synth[0].0.contains("token budget"),
        "{synth:?}"
    );
}

#[tokio::test]
async fn a_tool_not_offered_this_turn_is_refused_naming_the_offered_ones() {
    let data = data();
    let server = ScriptedServer::start(
        Script::new()
            .reply(Reply::turn(
                Turn::new()
                    .tool_call("c1", "count_traces", "{}")
                    .usage(900, 0),
            ))
            // Near the budget only final_answer is offered; the model delegates anyway.
            .reply(Reply::turn(
                Turn::new()
                    .tool_call("c2", "call_subagent", r#"{"input":"dig deeper"}"#)
                    .usage(10, 0),
            ))
            .reply(final_answer("c3", "done [trace:t1]")),
    )
    .await;
    let mut cfg = config(&server.base_url());
    cfg.max_total_tokens = Some(1_000);
    let engine = Engine::new(cfg, data.dataset.clone()).unwrap();
    let (_, outcome) = run_all(&engine, "q").await;
    assert_eq!(outcome.status, RunStatus::Completed, "{:?}", outcome.error);
    let reqs = server.requests();
    assert_eq!(reqs.len(), 3, "no subagent request");
    assert_eq!(reqs[1].tool_names(), ["final_answer"]);
    let (_, refused) = &reqs[2].tool_results()[1];
    assert!(refused.contains("not offered this turn"), "{refused}");
    assert!(refused.contains("final_answer"), "{refused}");
    assert_eq!(outcome.record.subagents, 0);
}

#[tokio::test]
async fn one_turn_starts_at_most_the_per_turn_cap_of_subagents() {
    let data = data();
    let turn = subagent_calls(Turn::new(), 12);
    let server = ScriptedServer::start(
        Script::new()
            .reply(Reply::turn(turn).when(|r| is_root(r) && !has_tool_results(r)))
            .replies((1..=12).map(|_| Reply::text("done").when(is_subagent)))
            .reply(final_answer("c13", "done").when(is_root)),
    )
    .await;
    let mut cfg = config(&server.base_url());
    // Below the floor of 10: the cap is 10 however small --max-parallel is.
    cfg.max_parallel = 3;
    let engine = Engine::new(cfg, data.dataset.clone()).unwrap();
    let (events, outcome) = run_all(&engine, "q").await;
    assert_eq!(outcome.status, RunStatus::Completed, "{:?}", outcome.error);
    assert_eq!(outcome.record.subagents, 10);
    let results = results_of(&events, "call_subagent");
    assert_eq!(results.len(), 12);
    for (text, is_error) in &results[10..] {
        assert!(*is_error, "{text}");
        assert!(text.contains("at most 10 call_subagent calls"), "{text}");
        assert!(text.contains("batch"), "{text}");
    }
    assert!(results[..10].iter().all(|(t, e)| !e && *t == "done"));
}

#[tokio::test]
async fn subagents_side_by_side_cannot_all_pass_the_token_budget_at_once() {
    // Ten subagents start together, each request costing 5,000 tokens once it is counted.
    // Checked against the tokens used alone, all ten passed (50,000 against 6,000); with
    // the requests on their way held against it, the budget stops the ones past it.
    let data = data();
    let turn = subagent_calls(Turn::new().usage(100, 0), 10);
    let server = ScriptedServer::start(
        Script::new()
            .reply(Reply::turn(turn).when(|r| is_root(r) && !has_tool_results(r)))
            .replies((1..=10).map(|_| {
                Reply::turn(Turn::new().text("done").usage(5_000, 0))
                    .delay(std::time::Duration::from_millis(300))
                    .when(is_subagent)
            }))
            .reply(final_answer("f", "done").when(is_root)),
    )
    .await;
    let mut cfg = config(&server.base_url());
    cfg.max_total_tokens = Some(6_000);
    let engine = Engine::new(cfg, data.dataset.clone()).unwrap();
    let (_, outcome) = run_all(&engine, "q").await;
    let sent = server.requests().iter().filter(|r| is_subagent(r)).count();
    assert!((1..=5).contains(&sent), "{sent} subagent requests sent");
    // Only the last request let through passes the budget, by its own size.
    let used = outcome.record.input_tokens + outcome.record.output_tokens;
    assert!(used <= 6_000 + 5_000, "{used} tokens used");
}

#[tokio::test]
async fn cancel_does_not_wait_for_a_running_tool() {
    let data = data();
    // A query that runs far longer than the test waits (until the SQL timeout).
    let slow = r#"{"query":"SELECT sum(value) FROM range(1, 100000000000)"}"#;
    let server = ScriptedServer::start(
        Script::new()
            .reply(Reply::turn(
                Turn::new().text("Summing.").tool_call("c1", "sql", slow),
            ))
            .reply(final_answer("c2", "never asked")),
    )
    .await;
    let engine = Engine::new(config(&server.base_url()), data.dataset.clone()).unwrap();
    let mut handle = engine.start("q");
    let canceller = handle.canceller();
    let collect = async {
        let mut events = Vec::new();
        while let Some(e) = handle.next().await {
            if matches!(&e, EngineEvent::OutputItem(i) if matches!(&i.item, AgentItem::ToolCall { name, .. } if name == "sql"))
            {
                let c = canceller.clone();
                tokio::spawn(async move {
                    tokio::time::sleep(Duration::from_millis(300)).await;
                    c.cancel();
                });
            }
            events.push(e);
        }
        let outcome = handle.outcome().await.unwrap();
        (events, outcome)
    };
    let (events, outcome) = tokio::time::timeout(Duration::from_secs(10), collect)
        .await
        .expect("cancel must end the run without waiting for the tool");
    assert_eq!(outcome.status, RunStatus::Cancelled);
    assert!(outcome.report.contains("Summing."), "{}", outcome.report);
    assert_eq!(server.requests().len(), 1);
    let sql = results_of(&events, "sql");
    assert_eq!(sql.len(), 1);
    assert!(sql[0].1 && sql[0].0.contains("cancelled"), "{sql:?}");
}

/// Runs "q" and cancels it once `n` subagent requests have reached `server`; the events
/// and the outcome, which must come promptly.
async fn cancel_once_subagents_asked(
    engine: &Engine,
    server: &ScriptedServer,
    n: usize,
) -> (Vec<EngineEvent>, halo_rlm::RunOutcome) {
    let mut handle = engine.start("q");
    let canceller = handle.canceller();
    let collect = async {
        let mut events = Vec::new();
        loop {
            tokio::select! {
                e = handle.next() => match e {
                    Some(e) => events.push(e),
                    None => break,
                },
                _ = tokio::time::sleep(Duration::from_millis(10)) => {
                    if server.requests().iter().filter(|r| is_subagent(r)).count() >= n {
                        canceller.cancel();
                    }
                }
            }
        }
        (events, handle.outcome().await.unwrap())
    };
    tokio::time::timeout(Duration::from_secs(10), collect)
        .await
        .expect("cancel ends the run promptly")
}

#[tokio::test]
async fn cancel_while_subagents_work_saves_no_checkpoint_of_their_turn() {
    let data = data();
    let cp_path = data.dir.path().join("run.checkpoint.json");
    let server = ScriptedServer::start(
        Script::new()
            .reply(Reply::turn(subagent_calls(Turn::new(), 2)).when(is_root))
            .replies((1..=2).map(|_| Reply::hang().when(is_subagent))),
    )
    .await;
    let mut cfg = config(&server.base_url());
    cfg.checkpoint_path = Some(cp_path.clone());
    let engine = Engine::new(cfg, data.dataset.clone()).unwrap();
    let (events, outcome) = cancel_once_subagents_asked(&engine, &server, 2).await;
    assert_eq!(outcome.status, RunStatus::Cancelled);
    assert!(
        !events
            .iter()
            .any(|e| matches!(e, EngineEvent::Checkpoint(_))),
        "no checkpoint of the cancelled turn"
    );
    assert!(
        RunCheckpoint::load(&cp_path).map_or(true, |cp| cp.turns_used == 0),
        "a resume starts the turn again"
    );
}

#[tokio::test]
async fn a_report_written_in_the_turn_the_cancel_comes_in_is_the_runs_answer() {
    let data = data();
    let server = ScriptedServer::start(
        Script::new()
            .reply(
                Reply::turn(
                    Turn::new()
                        .tool_call("c1", "call_subagent", r#"{"input":"task 1"}"#)
                        .tool_call(
                            "c2",
                            "final_answer",
                            r#"{"answer":"the report [trace:t1]"}"#,
                        ),
                )
                .when(is_root),
            )
            .reply(Reply::hang().when(is_subagent)),
    )
    .await;
    let engine = Engine::new(config(&server.base_url()), data.dataset.clone()).unwrap();
    let (_, outcome) = cancel_once_subagents_asked(&engine, &server, 1).await;
    assert_eq!(outcome.status, RunStatus::Completed, "{}", outcome.report);
    assert!(outcome.report.contains("the report"), "{}", outcome.report);
    assert!(
        !outcome.report.contains("Partial report"),
        "{}",
        outcome.report
    );
}
