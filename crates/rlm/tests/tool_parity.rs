//! Reference-parity of the trace tools, end to end over real HTTP: the reference's
//! argument names reach the tools, and a page larger than the result cap still arrives as
//! valid JSON (the agent loop cuts any longer result at a byte count).

mod common;

use common::*;
use halo_rlm::{AgentItem, Engine, EngineEvent, RunStatus};
use halo_testkit::scripted_server::{Reply, Script, ScriptedServer, Turn};
use serde_json::Value;

/// 600 traces of one span each, with a long service name so that 500 rows of
/// `query_traces` pass the 160,000-character result cap.
fn many_traces() -> TestData {
    let mut lines = String::new();
    for t in 0..600 {
        let svc = format!("service-{t:04}-{}", "s".repeat(300));
        let line = span(
            &format!("t{t:04}"),
            "root",
            "",
            "STATUS_CODE_OK",
            "",
            r#"{"output.value":"needle needle needle"}"#,
        )
        .replace(
            r#""service.name":"svc""#,
            &format!(r#""service.name":"{svc}""#),
        );
        lines.push_str(&line);
        lines.push('\n');
    }
    open_lines(&lines)
}

/// The root's tool results by call id: content and error flag.
fn results(events: &[EngineEvent]) -> Vec<(String, String, bool)> {
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

fn result(all: &[(String, String, bool)], id: &str) -> (Value, bool) {
    let (_, content, is_error) = all.iter().find(|(c, _, _)| c == id).expect("a result");
    let v = serde_json::from_str(content).unwrap_or_else(|e| {
        panic!(
            "{id}: not valid JSON ({e}): ...{}",
            &content[content.len().saturating_sub(200)..]
        )
    });
    (v, *is_error)
}

#[tokio::test]
async fn reference_arguments_and_large_pages_reach_the_model_as_valid_json() {
    let data = many_traces();
    let server = ScriptedServer::start(
        Script::new()
            .reply(Reply::turn(
                Turn::new()
                    .tool_call("q", "query_traces", r#"{"limit":500}"#)
                    .tool_call(
                        "s",
                        "search_trace",
                        r#"{"trace_id":"t0007","regex_pattern":"needle","context_buffer_chars":2,"max_matches":2}"#,
                    )
                    .tool_call(
                        "u",
                        "search_trace",
                        r#"{"trace_id":"t0007","regex_pattern":"needle","context_chars_typo":2}"#,
                    ),
            ))
            .reply(final_answer("f", "done [trace:t0007]")),
    )
    .await;
    let engine = Engine::new(config(&server.base_url()), data.dataset.clone()).unwrap();
    let (events, outcome) = run_all(&engine, "q").await;
    assert_eq!(outcome.status, RunStatus::Completed);
    let all = results(&events);

    let (page, is_error) = result(&all, "q");
    assert!(!is_error);
    let kept = page["traces"].as_array().unwrap().len();
    assert!(kept > 0 && kept < 500, "{kept}");
    assert_eq!(page["truncated"], true);
    assert_eq!(page["next_offset"], kept);
    assert_eq!(page["omitted_traces"], 500 - kept);

    let (search, is_error) = result(&all, "s");
    assert!(!is_error);
    assert_eq!(search["total_matches"], 3);
    assert_eq!(search["matches"].as_array().unwrap().len(), 2);
    assert_eq!(search["matches"][0]["context"], ":\"needle n");

    let (unknown, is_error) = result(&all, "u");
    assert!(is_error);
    let message = unknown["error"].as_str().unwrap();
    assert!(
        message.contains("unknown field `context_chars_typo`")
            && message.contains("`context_buffer_chars`"),
        "{message}"
    );
}

/// Results cut to share the turn's budget stay valid JSON: whole rows are left out, the
/// answer says so and where the whole result is.
#[tokio::test]
async fn results_cut_to_the_turns_budget_stay_valid_json() {
    let data = many_traces();
    let mut turn = Turn::new();
    for id in ["a", "b", "c"] {
        turn = turn.tool_call(id, "query_traces", r#"{"limit":500}"#);
    }
    let server = ScriptedServer::start(
        Script::new()
            .reply(Reply::turn(turn))
            .reply(final_answer("f", "done")),
    )
    .await;
    let engine = Engine::new(config(&server.base_url()), data.dataset.clone()).unwrap();
    let (events, outcome) = run_all(&engine, "q").await;
    assert_eq!(outcome.status, RunStatus::Completed);
    let all = results(&events);
    let total: usize = all.iter().map(|(_, c, _)| c.len()).sum();
    assert!(total <= 200_000, "{total}");
    for id in ["a", "b", "c"] {
        let (page, is_error) = result(&all, id);
        assert!(!is_error);
        let kept = page["traces"].as_array().unwrap().len();
        assert!(kept > 0 && kept < 300, "{id}: {kept}");
        assert_eq!(page["truncated"], true);
        // Paging goes on right after the last row kept.
        assert_eq!(page["has_more"], true);
        assert_eq!(page["next_offset"], kept, "{id}");
        assert_eq!(page["omitted_traces"], 500 - kept, "{id}");
        let note = page["truncation_note"].as_str().unwrap();
        assert!(
            note.contains(&format!("{kept} of the "))
                && note.contains("per-turn budget")
                && note.contains("get_context_item")
                && note.contains(&format!("offset: {kept}")),
            "{note}"
        );
    }
}
