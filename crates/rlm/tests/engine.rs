//! End-to-end runs of the engine over real HTTP against the scripted server.

mod common;

use std::time::Duration;

use common::*;
use futures::StreamExt;
use halo_provider::{ProviderConfig, WireApi};
use halo_rlm::{
    AgentItem, Engine, EngineError, EngineEvent, RequestKind, RunCheckpoint, RunOutcome, RunStatus,
    UNKNOWN_CITATION_FLAG,
};
use halo_testkit::scripted_server::{RecordedRequest, Reply, Script, ScriptedServer, Turn};

#[tokio::test]
async fn root_delegates_to_parallel_subagents_that_use_trace_tools() {
    let data = data();
    let server = ScriptedServer::start(
        Script::new()
            .reply(
                Reply::turn(
                    Turn::new()
                        .text("Overview first, then two questions.")
                        .tool_call("c1", "get_dataset_overview", "{}")
                        .tool_call("c2", "call_subagent", r#"{"input":"task A: inspect trace t1"}"#)
                        .tool_call("c3", "call_subagent", r#"{"input":"task B: count failing traces"}"#)
                        .usage(100, 20),
                )
                .when(|r| is_root(r) && !has_tool_results(r)),
            )
            .reply(
                Reply::turn(Turn::new().tool_call("a1", "view_trace", r#"{"trace_id":"t1"}"#))
                    .when(|r| is_subagent_with(r, "task A") && !has_tool_results(r)),
            )
            .reply(
                Reply::text("A: trace t1 fails in list_files [span:t1:s2].")
                    .when(|r| is_subagent_with(r, "task A") && has_tool_results(r)),
            )
            .reply(
                Reply::turn(Turn::new().tool_call(
                    "b1",
                    "count_traces",
                    r#"{"filters":{"has_errors":true}}"#,
                ))
                .when(|r| is_subagent_with(r, "task B") && !has_tool_results(r)),
            )
            .reply(
                Reply::text("B: 2 of 3 traces fail [trace:t1] [trace:t3].")
                    .when(|r| is_subagent_with(r, "task B") && has_tool_results(r)),
            )
            .reply(
                final_answer(
                    "c4",
                    "# Report\n2 of 3 traces fail [trace:t1] [trace:t3]; tool error at [span:t1:s2]; also [trace:nope] and [span:t1:zz].",
                )
                .when(|r| is_root(r) && has_tool_results(r)),
            ),
    )
    .await;
    let mut cfg = config(&server.base_url());
    cfg.max_depth = 1;
    let engine = Engine::new(cfg, data.dataset.clone()).unwrap();
    let (events, outcome) = run_all(&engine, "Why do agents fail?").await;

    assert_eq!(outcome.status, RunStatus::Completed, "{:?}", outcome.error);
    assert!(outcome
        .report
        .contains(&format!("[trace:nope]{UNKNOWN_CITATION_FLAG}")));
    assert!(outcome
        .report
        .contains(&format!("[span:t1:zz]{UNKNOWN_CITATION_FLAG}")));
    assert!(!outcome
        .report
        .contains(&format!("[trace:t1]{UNKNOWN_CITATION_FLAG}")));
    assert!(!outcome
        .report
        .contains(&format!("[span:t1:s2]{UNKNOWN_CITATION_FLAG}")));
    assert_eq!(
        outcome.record.unverified_citations,
        vec!["[trace:nope]", "[span:t1:zz]"]
    );
    assert!(
        outcome
            .report
            .contains("2 citation(s) in this report (2 distinct) do not match"),
        "closing note: {}",
        outcome.report
    );
    assert_eq!(outcome.record.subagents, 2);
    assert_eq!(outcome.record.tools["call_subagent"].calls, 2);
    assert_eq!(outcome.record.usage_by_model["test-model"].calls, 6);
    assert_eq!(server.unmatched(), 0);

    let reqs = server.requests();
    assert_eq!(reqs.len(), 6);
    let root_first = reqs
        .iter()
        .find(|r| is_root(r) && !has_tool_results(r))
        .unwrap();
    let names = root_first.tool_names();
    for t in [
        "get_dataset_overview",
        "query_traces",
        "count_traces",
        "view_trace",
        "view_spans",
        "search_trace",
        "search_span",
        "synthesize_traces",
        "call_subagent",
        "get_context_item",
        "final_answer",
    ] {
        assert!(names.contains(&t.to_owned()), "root lacks {t}: {names:?}");
    }
    assert!(root_first
        .last_user_message()
        .unwrap()
        .contains("turn 1 of 20"));
    // Subagents are at max depth: no call_subagent, no final_answer.
    for r in reqs.iter().filter(|r| !is_root(r)) {
        let names = r.tool_names();
        assert!(!names.contains(&"call_subagent".to_owned()), "{names:?}");
        assert!(!names.contains(&"final_answer".to_owned()));
        assert!(names.contains(&"view_trace".to_owned()));
    }
    // The root's second request sends back the three results in call order.
    let root_second = reqs
        .iter()
        .find(|r| is_root(r) && has_tool_results(r))
        .unwrap();
    let results = root_second.tool_results();
    let ids: Vec<&str> = results.iter().map(|(id, _)| id.as_str()).collect();
    assert_eq!(ids, ["c1", "c2", "c3"]);
    assert!(
        results[0].1.contains("\"total_traces\":3"),
        "{}",
        results[0].1
    );
    assert!(results[1].1.contains("A: trace t1 fails"));
    assert!(results[2].1.contains("B: 2 of 3"));
    // Subagent A got the real trace back.
    let sub_a = reqs
        .iter()
        .find(|r| is_subagent_with(r, "task A") && has_tool_results(r))
        .unwrap();
    assert!(sub_a.tool_results()[0].1.contains("list_files"));
    // No key, and a sane body.
    assert!(root_first.header("authorization").is_none());

    // Events: subagent items carry their parent; the report is the final root item.
    let sub_items: Vec<_> = events
        .iter()
        .filter_map(|e| match e {
            EngineEvent::OutputItem(i) if i.agent.depth == 1 => Some(i),
            _ => None,
        })
        .collect();
    assert!(!sub_items.is_empty());
    for i in &sub_items {
        assert_eq!(i.agent.parent_agent_id.as_deref(), Some("root"));
        assert!(matches!(
            i.agent.parent_tool_call_id.as_deref(),
            Some("c2" | "c3")
        ));
        assert_eq!(i.agent.agent_name, "subagent");
    }
    // `final` is the run's answer only (as in the reference); subagents' answers are
    // marked `agent_finished`.
    assert!(sub_items.iter().all(|i| !i.is_final));
    assert_eq!(sub_items.iter().filter(|i| i.agent_finished).count(), 2);
    let finals = events
        .iter()
        .filter(|e| matches!(e, EngineEvent::OutputItem(i) if i.is_final))
        .count();
    assert_eq!(finals, 1);
    let last = events.iter().rev().find_map(|e| match e {
        EngineEvent::OutputItem(i) => Some(i),
        _ => None,
    });
    let last = last.unwrap();
    assert!(last.is_final && last.agent.agent_id == "root");
    assert!(events
        .iter()
        .any(|e| matches!(e, EngineEvent::Checkpoint(_))));
    // The JSON wire format uses the reference field names.
    let json = serde_json::to_value(last).unwrap();
    for k in [
        "sequence",
        "agent_id",
        "parent_agent_id",
        "parent_tool_call_id",
        "agent_name",
        "depth",
        "item",
        "final",
    ] {
        assert!(json.get(k).is_some(), "missing {k} in {json}");
    }
    let round: EngineEvent =
        serde_json::from_str(&serde_json::to_string(&events[0]).unwrap()).unwrap();
    assert_eq!(round, events[0]);
}

#[tokio::test]
async fn call_subagent_is_not_offered_at_the_depth_limit_and_refused_if_called() {
    let data = data();
    let server = ScriptedServer::start(
        Script::new()
            .reply(Reply::turn(Turn::new().tool_call(
                "c1",
                "call_subagent",
                r#"{"input":"x"}"#,
            )))
            .reply(final_answer("c2", "done [trace:t2]")),
    )
    .await;
    let mut cfg = config(&server.base_url());
    cfg.max_depth = 0;
    let engine = Engine::new(cfg, data.dataset.clone()).unwrap();
    let (_, outcome) = run_all(&engine, "q").await;
    assert_eq!(outcome.status, RunStatus::Completed);
    let reqs = server.requests();
    assert!(!reqs[0].tool_names().contains(&"call_subagent".to_owned()));
    let (_, result) = &reqs[1].tool_results()[0];
    assert!(
        result.contains("not available at depth 0") && result.contains("--max-depth is 0"),
        "not an unknown tool, a withheld one: {result}"
    );
    assert_eq!(outcome.record.subagents, 0);
}

/// A script whose first reply has the root delegate "look at t2" to a subagent.
fn root_asks_a_subagent_about_t2() -> Script {
    Script::new().reply(Reply::turn(Turn::new().tool_call(
        "c1",
        "call_subagent",
        r#"{"input":"look at t2"}"#,
    )))
}

#[tokio::test]
async fn a_failed_subagent_is_reported_to_its_parent_with_the_error_once() {
    let data = data();
    let boom =
        || Reply::api_error(500, "server_error", "sub boom").when(|r| is_subagent_with(r, "t2"));
    let server = ScriptedServer::start(
        root_asks_a_subagent_about_t2()
            .replies((0..3).map(|_| boom()))
            .reply(final_answer("c2", "done [trace:t2]").when(is_root)),
    )
    .await;
    let engine = Engine::new(config(&server.base_url()), data.dataset.clone()).unwrap();
    let (events, outcome) = run_all(&engine, "q").await;
    assert_eq!(outcome.status, RunStatus::Completed, "{:?}", outcome.error);
    let reqs = server.requests();
    let last_root = reqs.iter().rev().find(|r| is_root(r)).unwrap();
    let (_, result) = &last_root.tool_results()[0];
    let result: serde_json::Value = serde_json::from_str(result).unwrap();
    let result = result["error"].as_str().unwrap();
    assert!(result.starts_with("the subagent failed ("), "{result}");
    assert_eq!(result.matches("sub boom").count(), 1, "{result}");
    assert!(result.contains("Nothing was found"), "{result}");
    // The failed subagent's stream still ends with an item marked agent_finished.
    let ends: Vec<_> = events
        .iter()
        .filter_map(|e| match e {
            EngineEvent::OutputItem(i) if i.agent.depth == 1 && i.agent_finished => Some(i),
            _ => None,
        })
        .collect();
    assert_eq!(ends.len(), 1, "{ends:?}");
}

#[tokio::test]
async fn a_subagent_that_calls_final_answer_has_answered() {
    let data = data();
    let server = ScriptedServer::start(
        root_asks_a_subagent_about_t2()
            .reply(final_answer("s1", "t2 fails on a missing tool"))
            .reply(final_answer("c2", "done [trace:t2]")),
    )
    .await;
    let engine = Engine::new(config(&server.base_url()), data.dataset.clone()).unwrap();
    let (_, outcome) = run_all(&engine, "q").await;
    assert_eq!(outcome.status, RunStatus::Completed);
    let reqs = server.requests();
    assert_eq!(reqs.len(), 3, "the subagent ended with its one call");
    let (_, result) = &reqs[2].tool_results()[0];
    assert!(result.contains("t2 fails on a missing tool"), "{result}");
}

#[tokio::test]
async fn an_answer_stopped_by_the_content_filter_is_marked_and_warned_about() {
    let data = data();
    let server = ScriptedServer::start(
        Script::new()
            .reply(Reply::turn(
                Turn::new()
                    .text("The failures come from")
                    .finish_reason("content_filter"),
            ))
            .reply(final_answer("f", "done")),
    )
    .await;
    let engine = Engine::new(config(&server.base_url()), data.dataset.clone()).unwrap();
    let (events, outcome) = run_all(&engine, "q").await;
    assert_eq!(outcome.status, RunStatus::Completed, "{:?}", outcome.error);
    assert!(events.iter().any(|e| matches!(e,
        EngineEvent::Warning(w) if w.message.contains("content filter"))));
    // The model sees its cut answer marked as such in the history.
    let second = &server.requests()[1];
    assert!(
        second
            .body
            .to_string()
            .contains("content filter stopped this answer"),
        "{}",
        second.body
    );
}

#[tokio::test]
async fn of_two_final_answers_in_one_turn_the_first_is_the_report() {
    let data = data();
    let answer = |a: &str| serde_json::json!({ "answer": a }).to_string();
    let server = ScriptedServer::start(
        Script::new().reply(Reply::turn(
            Turn::new()
                .tool_call("a", "final_answer", &answer("first report [trace:t1]"))
                .tool_call("b", "final_answer", &answer("second report")),
        )),
    )
    .await;
    let engine = Engine::new(config(&server.base_url()), data.dataset.clone()).unwrap();
    let (events, outcome) = run_all(&engine, "q").await;
    assert_eq!(outcome.status, RunStatus::Completed);
    assert!(
        outcome.report.contains("first report"),
        "{}",
        outcome.report
    );
    assert!(!outcome.report.contains("second report"));
    let text = format!("{events:?}");
    assert!(
        text.contains("not used: an earlier final_answer"),
        "the second call's result says it was not used"
    );
}

#[tokio::test]
async fn a_subagent_out_of_turns_hands_back_its_findings_without_a_report_heading() {
    let data = data();
    let server = ScriptedServer::start(
        root_asks_a_subagent_about_t2()
            // The subagent's one turn, then its wrap-up request, answered with nothing.
            .reply(Reply::turn(Turn::new().tool_call(
                "s1",
                "count_traces",
                "{}",
            )))
            .reply(Reply::text(""))
            // The root's wrap-up, its one turn used.
            .reply(Reply::text("Report [trace:t2].")),
    )
    .await;
    let mut cfg = config(&server.base_url());
    cfg.max_turns = 1;
    let engine = Engine::new(cfg, data.dataset.clone()).unwrap();
    let (_, outcome) = run_all(&engine, "q").await;
    assert!(outcome.report.contains("Report"), "{}", outcome.report);
    let reqs = server.requests();
    assert_eq!(reqs.len(), 4);
    let (_, result) = &reqs[3].tool_results()[0];
    assert!(
        result.starts_with("(the subagent used up its turns before it answered"),
        "{result}"
    );
    assert!(
        result.contains("count_traces"),
        "its last tool results: {result}"
    );
    assert!(!result.contains("Partial report"), "{result}");
    assert!(!result.contains("final answer"), "{result}");
}

#[tokio::test]
async fn answers_and_arguments_cut_short_by_the_output_limit_say_so() {
    let data = data();
    let server = ScriptedServer::start(
        root_asks_a_subagent_about_t2()
            // The subagent's answer, cut short.
            .reply(Reply::turn(
                Turn::new()
                    .text("t2 fails because the")
                    .finish_reason("length"),
            ))
            // The root's final answer, cut short in its arguments.
            .reply(Reply::turn(
                Turn::new()
                    .tool_call("c2", "final_answer", r#"{"answer":"t2 fa"#)
                    .finish_reason("length"),
            ))
            .reply(final_answer("c3", "done [trace:t2]")),
    )
    .await;
    let engine = Engine::new(config(&server.base_url()), data.dataset.clone()).unwrap();
    let (_, outcome) = run_all(&engine, "q").await;
    assert_eq!(outcome.status, RunStatus::Completed);
    let reqs = server.requests();
    let (_, answer) = &reqs[2].tool_results()[0];
    assert!(answer.contains("t2 fails because the"), "{answer}");
    assert!(answer.contains("output token limit"), "{answer}");
    let (_, cut) = &reqs[3].tool_results()[0];
    assert!(cut.contains("cut short"), "{cut}");
    assert!(!cut.contains("not valid JSON"), "{cut}");
}

#[tokio::test]
async fn reprompts_once_then_takes_the_text() {
    let data = data();
    let server = ScriptedServer::start(
        Script::new()
            .reply(Reply::text("I think it is the tools."))
            .reply(Reply::text("Report without the tool: [trace:t1].")),
    )
    .await;
    let engine = Engine::new(config(&server.base_url()), data.dataset.clone()).unwrap();
    let (events, outcome) = run_all(&engine, "q").await;
    assert_eq!(outcome.status, RunStatus::NoFinalAnswer);
    assert!(outcome.report.contains("Report without the tool"));
    assert!(
        outcome.report.starts_with("_Not a finished report"),
        "{}",
        outcome.report
    );
    let last = events
        .iter()
        .rev()
        .find_map(|e| match e {
            EngineEvent::OutputItem(i) if i.is_final => Some(i),
            _ => None,
        })
        .unwrap();
    assert!(last.partial, "the final item is marked partial");
    let reqs = server.requests();
    assert_eq!(reqs.len(), 2);
    assert!(reqs[1]
        .raw_body
        .contains("You stopped without calling final_answer"));
}

#[tokio::test]
async fn turn_budget_ends_with_a_report() {
    let data = data();
    let count = || Reply::turn(Turn::new().tool_call("c", "count_traces", "{}"));
    let server = ScriptedServer::start(
        Script::new()
            .reply(count())
            .reply(count())
            .reply(Reply::text("Final from the budget: 3 traces [trace:t1].")),
    )
    .await;
    let mut cfg = config(&server.base_url());
    cfg.max_turns = 2;
    let engine = Engine::new(cfg, data.dataset.clone()).unwrap();
    let (events, outcome) = run_all(&engine, "q").await;
    assert_eq!(outcome.status, RunStatus::TurnBudgetExhausted);
    assert!(outcome.report.contains("Final from the budget"));
    // The model wrote it on its last chance: final, and not a partial report.
    assert!(events
        .iter()
        .any(|e| matches!(e, EngineEvent::OutputItem(i) if i.is_final && !i.partial)));
    let reqs = server.requests();
    assert_eq!(reqs.len(), 3);
    assert!(reqs[0].last_user_message().unwrap().contains("turn 1 of 2"));
    assert!(reqs[1].last_user_message().unwrap().contains("turn 2 of 2"));
    assert!(reqs[1].last_user_message().unwrap().contains("last turn"));
    assert_eq!(reqs[2].tool_names(), vec!["final_answer"]);
    assert!(reqs[2]
        .last_user_message()
        .unwrap()
        .contains("turn budget is used up"));
    assert_eq!(outcome.record.root_turns, 2);
}

#[tokio::test]
async fn a_turn_budget_that_ends_without_any_report_says_so() {
    let data = data();
    let count = || Reply::turn(Turn::new().tool_call("c", "count_traces", "{}"));
    // The wrap-up request: first answered with nothing, then (second run) refused by the
    // provider for good.
    let server = ScriptedServer::start(
        Script::new()
            .reply(count())
            .reply(Reply::text(""))
            .reply(count())
            .reply(Reply::api_error(401, "invalid_api_key", "key revoked")),
    )
    .await;
    let mut cfg = config(&server.base_url());
    cfg.max_turns = 1;
    let engine = Engine::new(cfg, data.dataset.clone()).unwrap();

    let (_, silent) = run_all(&engine, "q").await;
    assert_eq!(silent.status, RunStatus::TurnBudgetExhausted);
    assert!(silent.report_synthesized, "halo put the report together");
    assert!(silent.report.contains("Partial report"));

    let (_, failed) = run_all(&engine, "q").await;
    assert_eq!(
        failed.status,
        RunStatus::Failed,
        "the provider ended the run"
    );
    assert!(failed.error.as_deref().unwrap().contains("key revoked"));
    assert!(failed.report_synthesized);
    assert_eq!(failed.record.error, failed.error);
    // The refused request is counted apart from the answered one.
    assert_eq!(failed.record.model_calls, 1);
    assert_eq!(failed.record.failed_model_calls, 1);
    assert_eq!(silent.record.failed_model_calls, 0);
}

#[tokio::test]
async fn a_written_report_at_the_turn_budget_is_not_synthesized() {
    let data = data();
    let server = ScriptedServer::start(
        Script::new()
            .reply(Reply::turn(Turn::new().tool_call(
                "c",
                "count_traces",
                "{}",
            )))
            .reply(Reply::text("Three traces [trace:t1].")),
    )
    .await;
    let mut cfg = config(&server.base_url());
    cfg.max_turns = 1;
    let engine = Engine::new(cfg, data.dataset.clone()).unwrap();
    let (_, outcome) = run_all(&engine, "q").await;
    assert_eq!(outcome.status, RunStatus::TurnBudgetExhausted);
    assert!(!outcome.report_synthesized);
}

#[tokio::test]
async fn rate_limit_then_success() {
    let data = data();
    let server = ScriptedServer::start(
        Script::new()
            .reply(Reply::rate_limited(0))
            .reply(final_answer("c1", "ok [trace:t1]")),
    )
    .await;
    let engine = Engine::new(config(&server.base_url()), data.dataset.clone()).unwrap();
    let (events, outcome) = run_all(&engine, "q").await;
    assert_eq!(outcome.status, RunStatus::Completed);
    assert_eq!(server.requests().len(), 2);
    // One tool call item for final_answer, not two.
    let calls = events
        .iter()
        .filter(|e| matches!(e, EngineEvent::OutputItem(i) if matches!(i.item, AgentItem::ToolCall { .. })))
        .count();
    assert_eq!(calls, 1);
    // The wait was announced, with the status, for the agent that waited.
    let retries = retries(&events);
    assert_eq!(retries.len(), 1);
    assert_eq!(retries[0].status, Some(429));
    assert_eq!(retries[0].attempt, 1);
    assert_eq!(retries[0].agent.depth, 0);
    let line = serde_json::to_value(EngineEvent::ProviderRetry(retries[0].clone())).unwrap();
    assert_eq!(line["type"], "provider_retry");
}

/// A synthesis request that is rate limited is announced like an agent's turn, marked as
/// the synthesis model's, so that its wait is never silent.
#[tokio::test]
async fn a_synthesis_retry_is_announced_as_the_synthesis_models() {
    let data = data();
    let synthesis = |r: &RecordedRequest| r.raw_body.contains("You summarize execution traces");
    let server = ScriptedServer::start(
        Script::new()
            .reply(Reply::rate_limited(0).when(synthesis))
            .reply(Reply::text("t1 failed at login").when(synthesis))
            .reply(
                Reply::turn(Turn::new().tool_call(
                    "s1",
                    "synthesize_traces",
                    r#"{"trace_ids":["t1"]}"#,
                ))
                .when(|r| is_root(r) && !has_tool_results(r)),
            )
            .reply(final_answer("c1", "ok [trace:t1]").when(|r| is_root(r) && has_tool_results(r))),
    )
    .await;
    let engine = Engine::new(config(&server.base_url()), data.dataset.clone()).unwrap();
    let (events, outcome) = run_all(&engine, "q").await;
    assert_eq!(outcome.status, RunStatus::Completed);
    let retries = retries(&events);
    assert_eq!(retries.len(), 1, "{retries:?}");
    assert_eq!(retries[0].request, RequestKind::Synthesis);
    assert_eq!(retries[0].status, Some(429));
    let line = serde_json::to_value(EngineEvent::ProviderRetry(retries[0].clone())).unwrap();
    assert_eq!(line["request"], "synthesis");
}

/// A report with a field beside `answer` (models outside strict mode add `confidence`) is
/// the run's report, and the result names what was ignored.
#[tokio::test]
async fn a_final_answer_with_an_extra_field_is_still_the_report() {
    let data = data();
    let server = ScriptedServer::start(Script::new().reply(Reply::turn(Turn::new().tool_call(
        "f1",
        "final_answer",
        r##"{"answer":"# ok [trace:t1]","confidence":0.9}"##,
    ))))
    .await;
    let engine = Engine::new(config(&server.base_url()), data.dataset.clone()).unwrap();
    let (events, outcome) = run_all(&engine, "q").await;
    assert_eq!(outcome.status, RunStatus::Completed);
    assert!(outcome.report.contains("# ok"), "{}", outcome.report);
    assert_eq!(server.requests().len(), 1);
    let noted = events.iter().any(|e| {
        matches!(e, EngineEvent::OutputItem(i)
            if matches!(&i.item, AgentItem::ToolResult { content, .. } if content.contains("ignored: confidence")))
    });
    assert!(noted, "the ignored field is named in the result");
}

#[tokio::test]
async fn server_error_storm_gives_up_with_a_clear_error() {
    let data = data();
    let server = ScriptedServer::start(
        Script::new()
            .reply(Reply::error(500, r#"{"error":{"message":"boom"}}"#))
            .reply(Reply::error(500, r#"{"error":{"message":"boom"}}"#))
            .reply(Reply::error(500, r#"{"error":{"message":"boom"}}"#)),
    )
    .await;
    let engine = Engine::new(config(&server.base_url()), data.dataset.clone()).unwrap();
    let (_, outcome) = run_all(&engine, "q").await;
    assert_eq!(outcome.status, RunStatus::Failed);
    let err = outcome.error.unwrap();
    assert!(err.contains("3 attempts") && err.contains("500"), "{err}");
    assert!(outcome.report.contains("Partial report"));
    assert!(outcome.report.contains("500"));
    assert_eq!(server.requests().len(), 3);
}

#[tokio::test]
async fn refusal_is_retried() {
    let data = data();
    let server = ScriptedServer::start(
        Script::new()
            .reply(Reply::turn(Turn::new().refusal("I cannot help with that.")))
            .reply(final_answer("c1", "fine [trace:t3]")),
    )
    .await;
    let mut cfg = config(&server.base_url());
    cfg.refusal_retries = 1;
    let engine = Engine::new(cfg, data.dataset.clone()).unwrap();
    let (_, outcome) = run_all(&engine, "q").await;
    assert_eq!(outcome.status, RunStatus::Completed);
    assert!(outcome.report.contains("fine"));
    let reqs = server.requests();
    assert_eq!(reqs.len(), 2);
    assert_eq!(
        reqs[0].body["messages"], reqs[1].body["messages"],
        "the same request is retried"
    );
}

#[tokio::test]
async fn malformed_tool_arguments_come_back_as_errors() {
    let data = data();
    let server = ScriptedServer::start(
        Script::new()
            .reply(Reply::turn(
                Turn::new()
                    .tool_call("c1", "count_traces", r#"{"filters": {"has_errors": tru"#)
                    .tool_call("c2", "view_trace", r#"{"trace_id": 5}"#)
                    .tool_call("c3", "view_trace", r#"{"trace_id": "missing"}"#)
                    .tool_call("c4", "no_such_tool", "{}")
                    // `null` is "no arguments": a tool whose arguments are all optional runs.
                    .tool_call("c6", "count_traces", "null")
                    .tool_call("c7", "count_traces", "[1, 2]"),
            ))
            .reply(final_answer("c5", "done")),
    )
    .await;
    let engine = Engine::new(config(&server.base_url()), data.dataset.clone()).unwrap();
    let (events, outcome) = run_all(&engine, "q").await;
    assert_eq!(outcome.status, RunStatus::Completed);
    let results = server.requests()[1].tool_results();
    assert_eq!(results.len(), 6);
    assert!(results[0].1.contains("not valid JSON"), "{}", results[0].1);
    assert!(results[4].1.contains("\"total\""), "{}", results[4].1);
    assert!(
        results[5].1.contains("must be a JSON object"),
        "{}",
        results[5].1
    );
    assert!(
        results[1].1.contains("invalid arguments"),
        "{}",
        results[1].1
    );
    assert!(
        results[2].1.contains("no trace with id"),
        "{}",
        results[2].1
    );
    assert!(results[3].1.contains("unknown tool"), "{}", results[3].1);
    let errors = events
        .iter()
        .filter(|e| matches!(e, EngineEvent::OutputItem(i) if matches!(i.item, AgentItem::ToolResult { is_error: true, .. })))
        .count();
    assert_eq!(errors, 5);
    assert_eq!(outcome.record.tools["view_trace"].errors, 2);
}

#[tokio::test]
async fn deltas_split_at_odd_places_add_up_to_the_item() {
    let data = data();
    let text = "Plän: überprüfe 🚀 die Fehler, dann zähle.";
    let server = ScriptedServer::start(
        Script::new()
            .reply(Reply::turn(
                Turn::new()
                    .text_deltas(["Plä", "n: über", "prüfe 🚀", " die Fehler,", " dann zähle."])
                    .tool_call("c1", "count_traces", "{}"),
            ))
            .reply(final_answer("c2", "done"))
            .chunk_size(3),
    )
    .await;
    let engine = Engine::new(config(&server.base_url()), data.dataset.clone()).unwrap();
    let (events, outcome) = run_all(&engine, "q").await;
    assert_eq!(outcome.status, RunStatus::Completed);
    let (item_id, content) = events
        .iter()
        .find_map(|e| match e {
            EngineEvent::OutputItem(i) => match &i.item {
                AgentItem::Message { id, content, .. }
                    if i.agent.agent_id == "root" && !i.is_final =>
                {
                    Some((id.clone(), content.clone()))
                }
                _ => None,
            },
            _ => None,
        })
        .unwrap();
    assert_eq!(content, text);
    let streamed: String = events
        .iter()
        .filter_map(|e| match e {
            EngineEvent::TextDelta(d) if d.item_id == item_id => Some(d.text_delta.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(streamed, text);
}

#[tokio::test]
async fn compaction_runs_during_the_run_and_originals_stay_reachable() {
    let data = data();
    let mut script = Script::new()
        .reply(
            Reply::turn(Turn::new().tool_call(
                "c1",
                "count_traces",
                r#"{"filters":{"has_errors":true}}"#,
            ))
            .when(|r| is_root(r) && results(r) == 0),
        )
        .reply(
            Reply::turn(Turn::new().tool_call("c2", "view_trace", r#"{"trace_id":"t1"}"#))
                .when(|r| is_root(r) && results(r) == 1),
        )
        .reply(
            Reply::turn(Turn::new().tool_call("c3", "get_context_item", r#"{"item_id":"ctx-1"}"#))
                .when(|r| {
                    is_root(r)
                        && r.raw_body.contains("[compacted context]")
                        && !r.raw_body.contains("\"c3\"")
                }),
        )
        .reply(
            final_answer("c4", "done [trace:t1]")
                .when(|r| is_root(r) && r.raw_body.contains("\"c3\"")),
        );
    for _ in 0..6 {
        script = script.reply(
            Reply::text("Summary: 2 traces have errors; t1 fails in list_files.")
                .when(is_compaction),
        );
    }
    let server = ScriptedServer::start(script).await;
    let mut cfg = config(&server.base_url());
    cfg.compaction.threshold_tokens = 50;
    cfg.compaction.keep_recent_tool_turns = 1;
    cfg.compaction.keep_recent_messages = 1;
    cfg.compaction_model = Some("small-model".to_owned());
    let engine = Engine::new(cfg, data.dataset.clone()).unwrap();
    let (_, outcome) = run_all(&engine, "q").await;
    assert_eq!(
        outcome.status,
        RunStatus::Completed,
        "{:?} unmatched={}",
        outcome.error,
        server.unmatched()
    );
    let reqs = server.requests();
    let compactions: Vec<_> = reqs.iter().filter(|r| is_compaction(r)).collect();
    assert!(!compactions.is_empty());
    assert_eq!(compactions[0].body["model"], "small-model");
    assert!(compactions[0].body.get("tools").is_none());
    assert!(compactions[0].body.get("reasoning_effort").is_none());
    assert!(compactions[0].raw_body.contains("count_traces"));
    assert!(outcome.record.compactions >= 1);
    assert!(outcome.record.usage_by_model.contains_key("small-model"));
    // get_context_item returned the original tool turn, call and result.
    let last_root = reqs.iter().rev().find(|r| is_root(r)).unwrap();
    let (_, original) = last_root
        .tool_results()
        .into_iter()
        .find(|(id, _)| id == "c3")
        .unwrap();
    assert!(original.contains("tool call c1 count_traces"), "{original}");
    assert!(original.contains("\"total\":2"), "{original}");
    // Tool turns are compacted atomically: no tool result without its call.
    for r in reqs.iter().filter(|r| is_root(r)) {
        let items = r.items();
        for (k, m) in items.iter().enumerate() {
            if m["role"] == "tool" {
                let prev = &items[..k];
                let id = m["tool_call_id"].as_str().unwrap();
                assert!(
                    prev.iter().any(|p| p["tool_calls"]
                        .as_array()
                        .is_some_and(|c| c.iter().any(|c| c["id"] == id))),
                    "orphaned tool result {id}"
                );
            }
        }
    }
}

#[tokio::test]
async fn headers_forwarded_and_the_key_never_leaks() {
    const KEY: &str = "sk-test-SECRET-4242";
    let data = data();
    let server = ScriptedServer::start(
        Script::new()
            .reply(Reply::turn(Turn::new().tool_call(
                "c1",
                "count_traces",
                "{}",
            )))
            .reply(final_answer("c2", "done [trace:t1]")),
    )
    .await;
    let mut cfg = config(&server.base_url());
    cfg.provider = ProviderConfig::new(server.base_url())
        .with_api_key(KEY)
        .with_header("X-Title", "halo-test")
        .with_retry(fast_retry());
    cfg.temperature = Some(0.5);
    cfg.max_output_tokens = Some(777);
    cfg.reasoning_effort = Some(halo_provider::ReasoningEffort::Low);
    cfg.parallel_tool_calls = Some(false);
    let engine = Engine::new(cfg.clone(), data.dataset.clone()).unwrap();
    let (events, outcome) = run_all(&engine, "q").await;
    assert_eq!(outcome.status, RunStatus::Completed);
    let reqs = server.requests();
    for r in &reqs {
        assert_eq!(r.header("x-title"), Some("halo-test"));
        assert_eq!(
            r.header("authorization"),
            Some(format!("Bearer {KEY}").as_str())
        );
        assert!(!r.raw_body.contains(KEY));
        assert_eq!(r.body["temperature"], 0.5);
        assert_eq!(r.body["max_completion_tokens"], 777);
        assert_eq!(r.body["reasoning_effort"], "low");
        assert_eq!(r.body["parallel_tool_calls"], false);
    }
    for e in &events {
        assert!(!serde_json::to_string(e).unwrap().contains(KEY));
    }
    assert!(!outcome.report.contains(KEY));
    assert!(!serde_json::to_string(&outcome.record)
        .unwrap()
        .contains(KEY));
    assert!(!format!("{:?}", engine).contains(KEY));

    // A provider error that echoes the key is scrubbed too.
    let server = ScriptedServer::start(Script::new().reply(Reply::error(
        401,
        format!(r#"{{"error":{{"message":"Incorrect API key provided: {KEY}"}}}}"#),
    )))
    .await;
    cfg.provider = ProviderConfig::new(server.base_url())
        .with_api_key(KEY)
        .with_retry(fast_retry());
    let engine = Engine::new(cfg, data.dataset.clone()).unwrap();
    let (events, outcome) = run_all(&engine, "q").await;
    assert_eq!(outcome.status, RunStatus::Failed);
    assert!(outcome.error.as_deref().unwrap().contains("401"));
    assert!(!outcome.error.as_deref().unwrap().contains(KEY));
    assert!(!outcome.report.contains(KEY));
    for e in &events {
        assert!(!serde_json::to_string(e).unwrap().contains(KEY));
    }
}

#[tokio::test]
async fn token_budget_tells_the_root_to_finish_then_stops() {
    let data = data();
    // Near the budget: only final_answer is offered, with a note.
    let server = ScriptedServer::start(
        Script::new()
            .reply(Reply::turn(
                Turn::new()
                    .tool_call("c1", "count_traces", "{}")
                    .usage(900, 10),
            ))
            .reply(final_answer("c2", "short report [trace:t1]")),
    )
    .await;
    let mut cfg = config(&server.base_url());
    cfg.max_total_tokens = Some(1000);
    let engine = Engine::new(cfg, data.dataset.clone()).unwrap();
    let (_, outcome) = run_all(&engine, "q").await;
    assert_eq!(outcome.status, RunStatus::Completed);
    let reqs = server.requests();
    assert_eq!(reqs[1].tool_names(), vec!["final_answer"]);
    assert!(reqs[1]
        .last_user_message()
        .unwrap()
        .contains("token budget"));

    // Over the budget: no further request, a partial report.
    let server = ScriptedServer::start(
        Script::new()
            .reply(Reply::turn(
                Turn::new()
                    .text("Counting.")
                    .tool_call("c1", "count_traces", "{}")
                    .usage(1500, 10),
            ))
            .reply(final_answer("c2", "never sent")),
    )
    .await;
    let mut cfg = config(&server.base_url());
    cfg.max_total_tokens = Some(1000);
    let engine = Engine::new(cfg, data.dataset.clone()).unwrap();
    let (events, outcome) = run_all(&engine, "q").await;
    assert_eq!(outcome.status, RunStatus::TokenBudgetExhausted);
    assert_eq!(server.requests().len(), 1);
    assert!(outcome.report.contains("Partial report"));
    assert!(outcome.report.contains("--max-total-tokens"));
    assert!(outcome.report.contains("Counting."));
    assert!(events
        .iter()
        .any(|e| matches!(e, EngineEvent::OutputItem(i) if i.is_final && i.partial)));
}

/// Runs "Why do agents fail?" and presses Ctrl-C once the first checkpoint is out (the
/// next request reaching a hanging server); the events and the outcome, which must come
/// promptly.
async fn cancel_after_the_first_checkpoint(engine: &Engine) -> (Vec<EngineEvent>, RunOutcome) {
    let mut handle = engine.start("Why do agents fail?");
    let canceller = handle.canceller();
    let mut events = Vec::new();
    while let Some(e) = handle.next().await {
        if matches!(e, EngineEvent::Checkpoint(_)) {
            tokio::time::sleep(Duration::from_millis(50)).await;
            canceller.cancel();
        }
        events.push(e);
    }
    let outcome = tokio::time::timeout(Duration::from_secs(10), handle.outcome())
        .await
        .expect("cancel must end the run promptly")
        .unwrap();
    (events, outcome)
}

#[tokio::test]
async fn a_partial_report_without_conclusions_lists_the_tool_results_it_had() {
    let data = data();
    let server = ScriptedServer::start(
        Script::new()
            .reply(Reply::turn(Turn::new().tool_call(
                "c1",
                "count_traces",
                "{}",
            )))
            .reply(Reply::hang()),
    )
    .await;
    let engine = Engine::new(config(&server.base_url()), data.dataset.clone()).unwrap();
    let (_, outcome) = cancel_after_the_first_checkpoint(&engine).await;
    assert_eq!(outcome.status, RunStatus::Cancelled);
    let report = &outcome.report;
    assert!(!report.contains("Nothing was found"), "{report}");
    assert!(report.contains("- `count_traces` {}"), "{report}");
    assert!(report.contains("total"), "the result's head: {report}");
}

#[tokio::test]
async fn cancel_mid_run_then_resume_from_the_checkpoint() {
    let data = data();
    let cp_path = data.dir.path().join("run.checkpoint.json");
    let server = ScriptedServer::start(
        Script::new()
            .reply(Reply::turn(Turn::new().text("First I count.").tool_call(
                "c1",
                "count_traces",
                "{}",
            )))
            .reply(Reply::hang()),
    )
    .await;
    let mut cfg = config(&server.base_url());
    cfg.checkpoint_path = Some(cp_path.clone());
    let engine = Engine::new(cfg.clone(), data.dataset.clone()).unwrap();
    let (events, outcome) = cancel_after_the_first_checkpoint(&engine).await;
    // The first turn's text, call and result all carry turn 1 in their ids.
    let item_ids: Vec<&str> = events
        .iter()
        .filter_map(|e| match e {
            EngineEvent::OutputItem(i) => Some(match &i.item {
                AgentItem::Message { id, .. }
                | AgentItem::ToolCall { id, .. }
                | AgentItem::ToolResult { id, .. } => id.as_str(),
            }),
            _ => None,
        })
        .collect();
    assert!(item_ids.len() >= 3, "{item_ids:?}");
    assert!(
        item_ids[..3].iter().all(|id| id.starts_with("root:1.")),
        "{item_ids:?}"
    );
    assert_eq!(outcome.status, RunStatus::Cancelled);
    assert!(outcome.report.contains("Partial report"));
    assert!(outcome.report.contains("First I count."));
    assert_eq!(server.requests().len(), 2);
    let cp = RunCheckpoint::load(&cp_path).unwrap();
    assert_eq!(cp.turns_used, 1);
    assert_eq!(Some(&cp), outcome.checkpoint.as_ref());
    assert!(!std::fs::read_to_string(&cp_path).unwrap().contains("sk-"));

    // Resume on the same data.
    let server =
        ScriptedServer::start(Script::new().reply(final_answer("c2", "resumed [trace:t1]"))).await;
    let mut cfg = config(&server.base_url());
    cfg.run_id = Some("run-2".to_owned());
    let engine = Engine::new(cfg.clone(), data.dataset.clone()).unwrap();
    let handle = engine.resume(cp.clone()).unwrap();
    let (_, outcome) = handle.collect().await.unwrap();
    assert_eq!(outcome.status, RunStatus::Completed);
    assert!(outcome.report.contains("resumed"));
    assert_eq!(outcome.record.resumed_from.as_deref(), Some("run-test"));
    // The completed run's checkpoint says so, and is not resumed again.
    let done = outcome.checkpoint.clone().unwrap();
    assert!(done.completed);
    let err = engine.resume(done).unwrap_err();
    assert!(matches!(err, EngineError::NotResumable { .. }), "{err}");
    assert!(err.to_string().contains("already completed"), "{err}");
    assert_eq!(
        server.requests().len(),
        1,
        "no model call for a completed run"
    );
    let reqs = server.requests();
    assert_eq!(reqs[0].tool_results()[0].0, "c1");
    assert!(reqs[0].raw_body.contains("Why do agents fail?"));
    assert!(reqs[0]
        .last_user_message()
        .unwrap()
        .contains("turn 2 of 20"));

    // Refused on other data.
    let other =
        open_lines(&(dataset_lines() + &span("t9", "s9", "", "STATUS_CODE_OK", "", "{}") + "\n"));
    let engine = Engine::new(cfg, other.dataset.clone()).unwrap();
    let err = engine.resume(cp).unwrap_err();
    assert!(matches!(err, EngineError::DatasetMismatch { .. }));
    assert!(err.to_string().contains("other data"), "{err}");
}

#[tokio::test]
async fn responses_api_run() {
    let data = data();
    let server = ScriptedServer::start(
        Script::new()
            .reply(Reply::turn(Turn::new().text("Looking.").tool_call(
                "c1",
                "count_traces",
                r#"{"filters":{"has_tool_errors":true}}"#,
            )))
            .reply(final_answer("c2", "one trace has tool errors [trace:t1]")),
    )
    .await;
    let mut cfg = config(&server.base_url());
    cfg.provider = cfg.provider.clone().with_wire(WireApi::Responses);
    let engine = Engine::new(cfg, data.dataset.clone()).unwrap();
    let (_, outcome) = run_all(&engine, "q").await;
    assert_eq!(outcome.status, RunStatus::Completed, "{:?}", outcome.error);
    let reqs = server.requests();
    assert!(reqs.iter().all(|r| r.is_responses()));
    let results = reqs[1].tool_results();
    assert_eq!(results[0].0, "c1");
    assert!(results[0].1.contains("\"total\":1"), "{}", results[0].1);
    assert!(reqs[0].tool_names().contains(&"final_answer".to_owned()));
}

#[tokio::test]
async fn synthesize_traces_uses_the_synthesis_model_without_reasoning_effort() {
    let data = data();
    let server = ScriptedServer::start(
        Script::new()
            .reply(
                Reply::turn(Turn::new().tool_call(
                    "c1",
                    "synthesize_traces",
                    r#"{"trace_ids":["t1","t3","zz"],"focus":"errors"}"#,
                ))
                .when(is_root),
            )
            .reply(
                Reply::text("Both fail: t1 in list_files, t3 rate limited.")
                    .when(|r| r.body["model"] == "synth"),
            )
            .reply(final_answer("c2", "done").when(is_root)),
    )
    .await;
    let mut cfg = config(&server.base_url());
    cfg.synthesis_model = Some("synth".to_owned());
    cfg.reasoning_effort = Some(halo_provider::ReasoningEffort::High);
    let engine = Engine::new(cfg, data.dataset.clone()).unwrap();
    let (_, outcome) = run_all(&engine, "q").await;
    assert_eq!(outcome.status, RunStatus::Completed);
    let reqs = server.requests();
    let synth = reqs.iter().find(|r| r.body["model"] == "synth").unwrap();
    assert!(synth.body.get("reasoning_effort").is_none());
    assert!(
        synth.raw_body.contains("file not found"),
        "rendering includes error messages"
    );
    assert!(synth.raw_body.contains("rate limit exceeded"));
    let res = &reqs.last().unwrap().tool_results()[0].1;
    assert!(res.contains("Both fail"));
    assert!(res.contains("not rendered: zz"), "{res}");
}

#[test]
fn blocking_wrappers_run_to_the_end() {
    let data = data();
    let server_rt = tokio::runtime::Runtime::new().unwrap();
    let server = server_rt.block_on(ScriptedServer::start(
        Script::new()
            .reply(final_answer("c1", "blocking [trace:t2]"))
            .reply(final_answer("c1", "blocking again [trace:t2]")),
    ));
    let engine = Engine::new(config(&server.base_url()), data.dataset.clone()).unwrap();
    let (items, outcome) = halo_rlm::run_blocking(&engine, "q").unwrap();
    assert_eq!(outcome.status, RunStatus::Completed);
    assert!(items.last().unwrap().is_final);
    let items: Vec<_> = halo_rlm::stream_output_blocking(&engine, "q")
        .unwrap()
        .collect();
    assert!(
        matches!(&items.last().unwrap().item, AgentItem::Message { content, .. } if content.contains("blocking again"))
    );
    drop(server);
}

#[tokio::test]
async fn nested_subagents_with_one_slot_do_not_deadlock() {
    let data = data();
    let sub = |task: &'static str, child: &'static str| {
        Reply::turn(Turn::new().tool_call(
            "s1",
            "call_subagent",
            &serde_json::json!({ "input": child }).to_string(),
        ))
        .when(move |r| is_subagent_with(r, task) && !has_tool_results(r))
    };
    let answer = |task: &'static str, text: &'static str, after_results: bool| {
        Reply::text(text)
            .when(move |r| is_subagent_with(r, task) && has_tool_results(r) == after_results)
    };
    let server = ScriptedServer::start(
        Script::new()
            .reply(
                Reply::turn(
                    Turn::new()
                        .tool_call("c1", "call_subagent", r#"{"input":"task A"}"#)
                        .tool_call("c2", "call_subagent", r#"{"input":"task B"}"#),
                )
                .when(|r| is_root(r) && !has_tool_results(r)),
            )
            .reply(sub("task A", "deep A1"))
            .reply(sub("task B", "deep B1"))
            .reply(answer("deep A1", "A1 done", false))
            .reply(answer("deep B1", "B1 done", false))
            .reply(answer("task A", "A done", true))
            .reply(answer("task B", "B done", true))
            .reply(final_answer("c3", "all done").when(|r| is_root(r) && has_tool_results(r))),
    )
    .await;
    let (events, outcome) = run_bounded(&server.base_url(), &data, 2, 1).await;
    assert_eq!(
        outcome.status,
        RunStatus::Completed,
        "unmatched={}",
        server.unmatched()
    );
    assert_eq!(outcome.record.subagents, 4);
    let reqs = server.requests();
    // Depth-2 agents get no call_subagent; depth-1 agents do.
    for r in &reqs {
        let deep = is_subagent_with(r, "deep");
        let offered = r.tool_names().contains(&"call_subagent".to_owned());
        if r.raw_body.contains("You are a HALO subagent") {
            assert_eq!(offered, !deep);
        }
    }
    let depth2 = events
        .iter()
        .filter(
            |e| matches!(e, EngineEvent::OutputItem(i) if i.agent.depth == 2 && i.agent_finished),
        )
        .count();
    assert_eq!(depth2, 2);
}

/// The root calls `call_subagent` for tasks A, B, C and D in one turn; each
/// subagent answers after `SUBAGENT_DELAY`; the root then answers. Returns
/// the server (for its in-flight figures) after checking that the run
/// completed with every subagent answer delivered in call order.
async fn four_delayed_subagents(max_parallel: usize) -> ScriptedServer {
    const SUBAGENT_DELAY: Duration = Duration::from_millis(300);
    let data = data();
    let answer = |task: &'static str| {
        Reply::text(format!("{task} done"))
            .delay(SUBAGENT_DELAY)
            .when(move |r| is_subagent_with(r, task))
    };
    let server = ScriptedServer::start(
        Script::new()
            .reply(
                Reply::turn(
                    Turn::new()
                        .tool_call("c1", "call_subagent", r#"{"input":"task A"}"#)
                        .tool_call("c2", "call_subagent", r#"{"input":"task B"}"#)
                        .tool_call("c3", "call_subagent", r#"{"input":"task C"}"#)
                        .tool_call("c4", "call_subagent", r#"{"input":"task D"}"#),
                )
                .when(|r| is_root(r) && !has_tool_results(r)),
            )
            .replies(["task A", "task B", "task C", "task D"].map(answer))
            .reply(final_answer("c5", "all done").when(|r| is_root(r) && has_tool_results(r))),
    )
    .await;
    let (_, outcome) = run_bounded(&server.base_url(), &data, 1, max_parallel).await;
    assert_eq!(
        outcome.status,
        RunStatus::Completed,
        "{:?}, unmatched={}",
        outcome.error,
        server.unmatched()
    );
    assert_eq!(outcome.record.subagents, 4);
    assert_eq!(outcome.record.tools["call_subagent"].calls, 4);
    assert_eq!(server.unmatched(), 0);
    assert_eq!(server.remaining(), 0);
    assert_eq!(server.in_flight(), 0);
    let reqs = server.requests();
    assert_eq!(reqs.len(), 6);
    let last = reqs.last().unwrap();
    assert!(is_root(last) && has_tool_results(last));
    let results = last.tool_results();
    let got: Vec<(&str, &str)> = results
        .iter()
        .map(|(id, text)| (id.as_str(), text.as_str()))
        .collect();
    assert_eq!(
        got,
        [
            ("c1", "task A done"),
            ("c2", "task B done"),
            ("c3", "task C done"),
            ("c4", "task D done")
        ]
    );
    server
}

// The root holds no slot, and its requests never overlap its subagents' (it
// sends the first before delegating and the second after every subagent
// answered), so the figures below count subagent requests only. Each
// subagent request is held by the server for 300 ms, far longer than it
// takes the others that have a slot to arrive, so every slot is in use at
// once and the maximum is exact. A slot is released only once its response
// was read in full, after the server stopped counting it (see
// `ScriptedServer::max_in_flight`), so a waiting subagent never overlaps the
// one it replaces.

#[tokio::test]
async fn max_parallel_two_caps_four_subagents_at_two_requests() {
    let server = four_delayed_subagents(2).await;
    assert_eq!(server.max_in_flight(), 2, "the cap holds and is reached");
}

#[tokio::test]
async fn max_parallel_four_runs_four_subagents_at_once() {
    let server = four_delayed_subagents(4).await;
    assert_eq!(server.max_in_flight(), 4, "all four subagents ran at once");
}

#[tokio::test]
async fn reference_fixtures_through_the_tools() {
    let dir = halo_testkit::workspace_path("../shared/data/halo-fixtures");
    if !dir.is_dir() {
        eprintln!("skipped: ../shared/data/halo-fixtures is absent");
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let ds = open_path(&dir.join("realistic_traces.jsonl"), tmp.path());
    let id = "a9746d1452534d89af85ad99c6493473";
    let server = ScriptedServer::start(
        Script::new()
            .reply(Reply::turn(
                Turn::new()
                    .tool_call("c1", "get_dataset_overview", "{}")
                    .tool_call(
                        "c2",
                        "search_trace",
                        &format!(r#"{{"trace_id":"{id}","pattern":"list_files"}}"#),
                    )
                    .tool_call(
                        "c3",
                        "query_traces",
                        r#"{"filters":{"has_tool_errors":true},"limit":5}"#,
                    ),
            ))
            .reply(final_answer(
                "c4",
                &format!("list_files fails [trace:{id}]"),
            )),
    )
    .await;
    let engine = Engine::new(config(&server.base_url()), ds).unwrap();
    let (_, outcome) = run_all(&engine, "q").await;
    assert_eq!(outcome.status, RunStatus::Completed);
    assert!(outcome.record.unverified_citations.is_empty());
    let results = server.requests()[1].tool_results();
    assert!(
        results[0].1.contains("\"total_traces\":3"),
        "{}",
        &results[0].1[..200.min(results[0].1.len())]
    );
    assert!(results[1].1.contains("total_matches"), "{}", results[1].1);
    assert!(results[2].1.contains(id));
}

/// The context a request carries, estimated as the engine does (characters / 4).
fn context_tokens(r: &halo_testkit::scripted_server::RecordedRequest) -> usize {
    r.items()
        .iter()
        .map(|m| {
            m["content"].as_str().map_or(0, str::len)
                + m["tool_calls"]
                    .as_array()
                    .map_or(0, |c| c.iter().map(|c| c.to_string().len()).sum())
        })
        .sum::<usize>()
        / 4
}

#[tokio::test]
async fn a_compaction_gets_the_context_under_its_threshold_even_when_the_kept_turns_are_large() {
    let data = data();
    // Every turn's result is about 5,000 tokens: three of them kept whole, as the count
    // alone allows, are over the threshold by themselves.
    let big = r#"{"query":"SELECT repeat('x', 20000) AS x"}"#;
    let turns = 8;
    let mut script = Script::new();
    for k in 0..turns {
        script = script.reply(
            Reply::turn(Turn::new().tool_call(&format!("c{k}"), "sql", big))
                .when(move |r| is_root(r) && !r.raw_body.contains(&format!("\"c{k}\""))),
        );
    }
    script = script.reply(final_answer("cf", "done").when(is_root));
    for _ in 0..turns {
        script = script
            .reply(Reply::text("Summary: the results were long strings.").when(is_compaction));
    }
    let server = ScriptedServer::start(script).await;
    // The head (system prompt and task), measured, and room for two turns beside it.
    let head = {
        let probe = ScriptedServer::start(Script::new().reply(final_answer("p", "x"))).await;
        let engine = Engine::new(config(&probe.base_url()), data.dataset.clone()).unwrap();
        run_all(&engine, "q").await;
        context_tokens(&probe.requests()[0])
    };
    let threshold = head + 12_000;
    let mut cfg = config(&server.base_url());
    cfg.compaction.threshold_tokens = threshold;
    let engine = Engine::new(cfg, data.dataset.clone()).unwrap();
    let (_, outcome) = run_all(&engine, "q").await;
    assert_eq!(outcome.status, RunStatus::Completed, "{:?}", outcome.error);
    let reqs = server.requests();
    let roots: Vec<usize> = reqs
        .iter()
        .filter(|r| is_root(r))
        .map(context_tokens)
        .collect();
    assert!(outcome.record.compactions >= 1, "{roots:?}");
    assert!(
        (outcome.record.compactions as usize) < turns / 2 + 1,
        "{} compactions in {turns} turns: {roots:?}",
        outcome.record.compactions
    );
    for (k, r) in reqs.iter().enumerate() {
        if is_compaction(r) {
            let next = reqs[k + 1..].iter().find(|r| is_root(r)).unwrap();
            let size = context_tokens(next);
            assert!(
                size <= threshold,
                "{size} tokens after a compaction, threshold {threshold}: {roots:?}"
            );
        }
    }
}
