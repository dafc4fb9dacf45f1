//! Real HTTP tests of halo-provider against the scripted server.

use std::time::Duration;

use futures::StreamExt;
use halo_provider::{
    ApiKey, FinishReason, Message, ModelClient, ModelRequest, ProviderConfig, ProviderError,
    ReasoningEffort, RetryPolicy, StreamEvent, ToolCall, ToolSpec, WireApi,
};
use halo_testkit::scripted_server::{Reply, Script, ScriptedServer, Turn};
use serde_json::json;

const KEY: &str = "sk-test-SECRET-0123456789";

fn fast_retry(max_retries: u32) -> RetryPolicy {
    RetryPolicy {
        max_retries,
        base_delay: Duration::from_millis(1),
        max_delay: Duration::from_millis(5),
        max_retry_after: Duration::from_secs(2),
    }
}

fn config(server: &ScriptedServer) -> ProviderConfig {
    ProviderConfig::new(server.base_url()).with_retry(fast_retry(5))
}

fn client(server: &ScriptedServer) -> ModelClient {
    ModelClient::new(config(server)).unwrap()
}

fn request(user: &str) -> ModelRequest {
    ModelRequest::new(
        "test-model",
        vec![Message::system("You are terse."), Message::user(user)],
    )
}

fn tools() -> Vec<ToolSpec> {
    vec![
        ToolSpec {
            name: "view_trace".into(),
            description: "Show a trace".into(),
            parameters: json!({"type": "object", "properties": {"trace_id": {"type": "string"}}}),
        },
        ToolSpec {
            name: "count_traces".into(),
            description: "Count traces".into(),
            parameters: json!({"type": "object", "properties": {}}),
        },
    ]
}

async fn collect(
    client: &ModelClient,
    req: &ModelRequest,
) -> Vec<Result<StreamEvent, ProviderError>> {
    client.stream(req).collect().await
}

/// What a caller following the contract displays: `Restart` clears.
fn visible_text(events: &[Result<StreamEvent, ProviderError>]) -> String {
    let mut s = String::new();
    for e in events.iter().flatten() {
        match e {
            StreamEvent::TextDelta(t) => s.push_str(t),
            StreamEvent::Restart { .. } => s.clear(),
            _ => {}
        }
    }
    s
}

fn count<F: Fn(&StreamEvent) -> bool>(
    events: &[Result<StreamEvent, ProviderError>],
    f: F,
) -> usize {
    events.iter().flatten().filter(|e| f(e)).count()
}

#[tokio::test]
async fn streams_text_deltas_then_usage_and_finish() {
    let server = ScriptedServer::start(vec![Reply::turn(
        Turn::new().text("Hello there, trace world").usage(42, 7),
    )])
    .await;
    let events = collect(&client(&server), &request("hi")).await;
    let deltas: Vec<&str> = events
        .iter()
        .flatten()
        .filter_map(|e| match e {
            StreamEvent::TextDelta(t) => Some(t.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(deltas, ["Hello ", "there, ", "trace ", "world"]);
    let tail: Vec<StreamEvent> = events.iter().skip(4).cloned().map(Result::unwrap).collect();
    assert_eq!(
        tail,
        vec![
            StreamEvent::Usage(halo_provider::Usage {
                input_tokens: 42,
                output_tokens: 7,
                ..Default::default()
            }),
            StreamEvent::Finished {
                finish_reason: FinishReason::Stop
            },
        ]
    );

    let reqs = server.requests();
    assert_eq!(reqs.len(), 1);
    let r = &reqs[0];
    assert_eq!(r.method, "POST");
    assert_eq!(r.path, "/v1/chat/completions");
    assert_eq!(r.body["model"], "test-model");
    assert_eq!(r.body["stream"], true);
    assert_eq!(r.body["stream_options"]["include_usage"], true);
    assert_eq!(
        r.body["messages"][0],
        json!({"role": "system", "content": "You are terse."})
    );
    assert_eq!(
        r.body["messages"][1],
        json!({"role": "user", "content": "hi"})
    );
    for absent in [
        "tools",
        "parallel_tool_calls",
        "temperature",
        "max_completion_tokens",
        "reasoning_effort",
    ] {
        assert!(r.body.get(absent).is_none(), "{absent} should be omitted");
    }
}

#[tokio::test]
async fn parallel_tool_calls_assembled_across_odd_chunk_boundaries() {
    for (chunk, crlf) in [(1, false), (3, false), (7, true)] {
        let turn = Turn::new()
            .text("Let me look — ünïcödé.")
            .tool_call("call_a", "view_trace", r#"{"trace_id": "t-ä1"}"#)
            .tool_call_deltas("call_b", "count_traces", ["{", "\"has_errors\"", ": true}"]);
        let server = ScriptedServer::start(
            Script::new()
                .reply(Reply::turn(turn))
                .chunk_size(chunk)
                .crlf(crlf),
        )
        .await;
        let mut req = request("look");
        req.tools = tools();
        req.parallel_tool_calls = Some(true);
        req.temperature = Some(0.5);
        req.max_output_tokens = Some(321);
        req.reasoning_effort = Some(ReasoningEffort::Low);
        let resp = client(&server).complete(&req).await.unwrap();
        assert_eq!(resp.text, "Let me look — ünïcödé.", "chunk {chunk}");
        assert_eq!(
            resp.tool_calls,
            vec![
                ToolCall {
                    id: "call_a".into(),
                    name: "view_trace".into(),
                    arguments: r#"{"trace_id": "t-ä1"}"#.into()
                },
                ToolCall {
                    id: "call_b".into(),
                    name: "count_traces".into(),
                    arguments: r#"{"has_errors": true}"#.into()
                },
            ]
        );
        assert_eq!(resp.finish_reason, FinishReason::ToolCalls);
        assert_eq!(resp.attempts, 1);
        assert!(resp.usage.is_some());

        let body = &server.requests()[0].body;
        assert_eq!(body["tools"][0]["type"], "function");
        assert_eq!(body["tools"][0]["function"]["name"], "view_trace");
        assert_eq!(body["tools"][0]["function"]["parameters"]["type"], "object");
        assert_eq!(body["tools"][1]["function"]["description"], "Count traces");
        assert_eq!(body["parallel_tool_calls"], true);
        assert_eq!(body["temperature"], 0.5);
        assert_eq!(body["max_completion_tokens"], 321);
        assert_eq!(body["reasoning_effort"], "low");
    }
}

#[tokio::test]
async fn malformed_tool_arguments_pass_through_raw() {
    let bad = r#"{"trace_id": "abc",, oops"#;
    let server = ScriptedServer::start(vec![Reply::turn(Turn::new().tool_call(
        "c1",
        "view_trace",
        bad,
    ))])
    .await;
    let mut req = request("x");
    req.tools = tools();
    let resp = client(&server).complete(&req).await.unwrap();
    assert_eq!(resp.tool_calls.len(), 1);
    assert_eq!(resp.tool_calls[0].arguments, bad);
    assert!(resp.tool_calls[0].parse_arguments().is_err());
}

#[tokio::test]
async fn rate_limit_with_retry_after_then_success_without_duplicate_deltas() {
    let answer = "The failing span is tool call three.";
    let server = ScriptedServer::start(vec![
        // Attempt 1 streams part of the answer, then the connection drops.
        Reply::drop_after(Turn::new().text(answer), 400),
        // Attempt 2 is rate limited.
        Reply::rate_limited(1),
        // Attempt 3 streams the same answer in full.
        Reply::turn(Turn::new().text(answer)),
    ])
    .await;
    let events = collect(&client(&server), &request("why")).await;
    assert!(events.iter().all(Result::is_ok), "{events:?}");
    let retries: Vec<_> = events
        .iter()
        .flatten()
        .filter_map(|e| match e {
            StreamEvent::Retrying(info) => Some(info.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(retries.len(), 2);
    assert_eq!(retries[1].status, Some(429));
    // Retry-After: 1 is used as is (not the tiny exponential backoff).
    assert_eq!(retries[1].delay, Duration::from_secs(1));
    // Each piece of text reached the caller once; no Restart was needed.
    assert_eq!(
        count(&events, |e| matches!(e, StreamEvent::Restart { .. })),
        0
    );
    let concatenated: String = events
        .iter()
        .flatten()
        .filter_map(|e| match e {
            StreamEvent::TextDelta(t) => Some(t.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(concatenated, answer);
    assert_eq!(server.requests().len(), 3);
    assert_eq!(server.remaining(), 0);
}

#[tokio::test]
async fn server_error_storm_gives_up_naming_attempts_and_status() {
    let server = ScriptedServer::start(
        (0..10)
            .map(|_| Reply::api_error(500, "server_error", "The server had an error"))
            .collect::<Vec<_>>(),
    )
    .await;
    let c = ModelClient::new(config(&server).with_retry(fast_retry(3))).unwrap();
    let err = c.complete(&request("x")).await.unwrap_err();
    match &err {
        ProviderError::RetriesExhausted {
            attempts,
            last_status,
            ..
        } => {
            assert_eq!(*attempts, 4);
            assert_eq!(*last_status, Some(500));
        }
        other => panic!("unexpected error {other:?}"),
    }
    let msg = err.to_string();
    assert!(msg.contains("4 attempts"), "{msg}");
    assert!(msg.contains("500"), "{msg}");
    assert!(msg.contains("The server had an error"), "{msg}");
    assert_eq!(err.status(), Some(500));
    assert_eq!(server.requests().len(), 4);
}

#[tokio::test]
async fn context_length_exceeded_is_typed_and_not_retried() {
    let server = ScriptedServer::start(vec![
        Reply::api_error(
            400,
            "context_length_exceeded",
            "This model's maximum context length is 128000 tokens. However, your messages resulted in 200000 tokens.",
        ),
        Reply::text("must not be reached"),
    ])
    .await;
    let err = client(&server).complete(&request("x")).await.unwrap_err();
    assert!(err.is_context_length_exceeded(), "{err:?}");
    assert!(
        err.to_string().contains("maximum context length is 128000"),
        "{err}"
    );
    assert_eq!(server.requests().len(), 1);

    // Other 4xx: typed Http error with the provider's message and code, not retried.
    let server = ScriptedServer::start(vec![
        Reply::api_error(400, "invalid_value", "Invalid value for temperature"),
        Reply::text("must not be reached"),
    ])
    .await;
    let err = client(&server).complete(&request("x")).await.unwrap_err();
    assert_eq!(
        err,
        ProviderError::Http {
            status: 400,
            message: "Invalid value for temperature (invalid_value)".into()
        }
    );
    assert_eq!(server.requests().len(), 1);
}

#[tokio::test]
async fn dropped_stream_is_retried_and_divergent_retry_restarts() {
    // Same answer on retry: continues seamlessly.
    let server = ScriptedServer::start(
        Script::new()
            .reply(Reply::drop_after(
                Turn::new().text("alpha beta gamma delta"),
                600,
            ))
            .reply(Reply::text("alpha beta gamma delta"))
            .chunk_size(5),
    )
    .await;
    let resp = client(&server).complete(&request("x")).await.unwrap();
    assert_eq!(resp.text, "alpha beta gamma delta");
    assert_eq!(resp.attempts, 2);

    // A different answer on retry: Restart, then the new answer in full.
    let server = ScriptedServer::start(vec![
        Reply::drop_after(
            Turn::new().text("First draft of an answer that never finishes"),
            700,
        ),
        Reply::text("Second, different answer."),
    ])
    .await;
    let c = client(&server);
    let events = collect(&c, &request("x")).await;
    let first_restart = events
        .iter()
        .position(|e| matches!(e, Ok(StreamEvent::Restart { .. })))
        .expect("a Restart event");
    assert!(
        events[..first_restart]
            .iter()
            .any(|e| matches!(e, Ok(StreamEvent::TextDelta(_)))),
        "text was streamed before the drop: {events:?}"
    );
    assert_eq!(visible_text(&events), "Second, different answer.");
    assert!(matches!(
        events.last(),
        Some(Ok(StreamEvent::Finished { .. }))
    ));

    // A stream that ends cleanly but early (no finish, no [DONE]) is a drop too.
    let server = ScriptedServer::start(vec![
        Reply::raw_sse(["data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"par\"}}]}\n\n"]),
        Reply::text("partial no more"),
    ])
    .await;
    let events = collect(&client(&server), &request("x")).await;
    assert_eq!(visible_text(&events), "partial no more");
    assert_eq!(
        count(&events, |e| matches!(e, StreamEvent::Restart { .. })),
        0
    );
}

#[tokio::test]
async fn refusal_is_surfaced_on_both_wires() {
    for wire in [WireApi::ChatCompletions, WireApi::Responses] {
        let server = ScriptedServer::start(vec![Reply::turn(
            Turn::new().refusal("I can't help with that."),
        )])
        .await;
        let c = ModelClient::new(config(&server).with_wire(wire)).unwrap();
        let resp = c.complete(&request("do bad things")).await.unwrap();
        assert_eq!(
            resp.refusal.as_deref(),
            Some("I can't help with that."),
            "{wire:?}"
        );
        assert_eq!(resp.text, "");
        assert_eq!(resp.finish_reason, FinishReason::Stop);
    }
}

#[tokio::test]
async fn headers_forwarded_and_authorization_only_with_a_key() {
    let server = ScriptedServer::start(vec![Reply::text("a"), Reply::text("b")]).await;
    let with_key = ModelClient::new(
        config(&server)
            .with_api_key(KEY)
            .with_header("X-Org", "acme")
            .with_header("X-Title", "halo tests"),
    )
    .unwrap();
    with_key.complete(&request("one")).await.unwrap();
    let without_key = ModelClient::new(config(&server).with_header("X-Org", "acme")).unwrap();
    without_key.complete(&request("two")).await.unwrap();

    let reqs = server.requests();
    assert_eq!(
        reqs[0].header("authorization"),
        Some(format!("Bearer {KEY}").as_str())
    );
    assert_eq!(reqs[0].header("x-org"), Some("acme"));
    assert_eq!(reqs[0].header("x-title"), Some("halo tests"));
    assert_eq!(reqs[0].header("content-type"), Some("application/json"));
    assert!(!reqs[0].raw_body.contains(KEY));
    assert!(!reqs[0].path.contains(KEY));
    assert_eq!(
        reqs[0]
            .headers
            .iter()
            .filter(|(_, v)| v.contains(KEY))
            .count(),
        1,
        "the key is only in the Authorization header"
    );
    assert_eq!(reqs[1].header("authorization"), None);
    assert_eq!(reqs[1].header("x-org"), Some("acme"));
}

#[tokio::test]
async fn key_never_appears_in_debug_or_errors() {
    let server = ScriptedServer::start(vec![Reply::api_error(
        401,
        "invalid_api_key",
        &format!("Incorrect API key provided: {KEY}."),
    )])
    .await;
    let cfg = config(&server).with_api_key(ApiKey::new(KEY));
    let c = ModelClient::new(cfg.clone()).unwrap();
    let err = c.complete(&request("x")).await.unwrap_err();
    assert_eq!(err.status(), Some(401));
    let key = ApiKey::new(KEY);
    for text in [
        format!("{cfg:?}"),
        format!("{c:?}"),
        format!("{err:?}"),
        format!("{err}"),
        format!("{key}"),
        format!("{key:?}"),
        format!("{:?}", cfg.api_key),
    ] {
        assert!(!text.contains("SECRET"), "key leaked in {text}");
    }
    assert_eq!(format!("{key}"), "***");
    assert!(
        format!("{err}").contains("Incorrect API key provided: ***"),
        "{err}"
    );

    // Retries exhausted on a connection error: nothing listens on this port.
    let dead = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let c = ModelClient::new(
        ProviderConfig::new(format!("http://{dead}/v1"))
            .with_api_key(KEY)
            .with_retry(fast_retry(1)),
    )
    .unwrap();
    let err = c.complete(&request("x")).await.unwrap_err();
    assert!(
        matches!(
            err,
            ProviderError::RetriesExhausted {
                attempts: 2,
                last_status: None,
                ..
            }
        ),
        "{err:?}"
    );
    assert!(
        !err.to_string().contains("status"),
        "no status to show: {err}"
    );
    assert!(!format!("{err:?}{err}").contains("SECRET"));
}

/// A key echoed where an error is cut short: after 474 characters of a plain-text body
/// (cut at 500), and in the preview of a page that is no event stream (cut at 80). No
/// head of it survives the cut.
#[tokio::test]
async fn a_key_echoed_across_the_cut_of_an_error_is_removed_whole() {
    let long = format!("{}{KEY} trailing words", "x".repeat(474));
    // The preview keeps 80 characters: the key's first 12 fall inside it.
    let page = format!("<html><body>{} Bearer {KEY}</body></html>", "y".repeat(48));
    let server = ScriptedServer::start(vec![Reply::error(401, long), Reply::raw_sse([page])]).await;
    let c = ModelClient::new(config(&server).with_api_key(ApiKey::new(KEY))).unwrap();
    for _ in 0..2 {
        let err = c.complete(&request("x")).await.unwrap_err();
        let text = format!("{err} {err:?}");
        // The key's first eight characters are `sk-test-`; any longer head is a leak.
        assert!(
            !text.contains("sk-test-S"),
            "a head of the key leaked: {text}"
        );
        assert!(text.contains("***"), "{text}");
    }
}

#[tokio::test]
async fn responses_wire_tool_call_round_trip() {
    let server = ScriptedServer::start(
        Script::new()
            .reply(Reply::turn(
                Turn::new()
                    .text("Checking.")
                    .tool_call("call_1", "view_trace", r#"{"trace_id":"t1"}"#)
                    .tool_call("call_2", "count_traces", "{}")
                    .usage(100, 20),
            ))
            .reply(Reply::turn(
                Turn::new().text("Trace t1 fails in step 3.").usage(150, 9),
            ))
            .chunk_size(4),
    )
    .await;
    let c = ModelClient::new(
        config(&server)
            .with_wire(WireApi::Responses)
            .with_api_key(KEY),
    )
    .unwrap();
    let mut req = request("diagnose t1");
    req.tools = tools();
    req.parallel_tool_calls = Some(true);
    req.max_output_tokens = Some(500);
    req.reasoning_effort = Some(ReasoningEffort::Xhigh);
    let first = c.complete(&req).await.unwrap();
    assert_eq!(first.text, "Checking.");
    assert_eq!(first.finish_reason, FinishReason::ToolCalls);
    assert_eq!(first.tool_calls.len(), 2);
    assert_eq!(first.tool_calls[0].id, "call_1");
    assert_eq!(first.tool_calls[0].name, "view_trace");
    assert_eq!(first.tool_calls[0].arguments, r#"{"trace_id":"t1"}"#);
    assert_eq!(first.tool_calls[1].id, "call_2");
    assert_eq!(first.usage.unwrap().input_tokens, 100);
    assert_eq!(first.usage.unwrap().output_tokens, 20);

    req.messages.push(Message::from_response(&first));
    req.messages
        .push(Message::tool_result("call_1", "trace t1: 12 spans"));
    req.messages.push(Message::tool_result("call_2", "42"));
    let second = c.complete(&req).await.unwrap();
    assert_eq!(second.text, "Trace t1 fails in step 3.");
    assert_eq!(second.finish_reason, FinishReason::Stop);
    assert!(second.tool_calls.is_empty());

    let reqs = server.requests();
    assert!(reqs.iter().all(|r| r.path == "/v1/responses"));
    let b0 = &reqs[0].body;
    assert_eq!(b0["stream"], true);
    assert_eq!(
        b0["tools"][0],
        json!({"type": "function", "name": "view_trace", "description": "Show a trace",
        "parameters": {"type": "object", "properties": {"trace_id": {"type": "string"}}}})
    );
    assert_eq!(b0["max_output_tokens"], 500);
    assert_eq!(b0["reasoning"], json!({"effort": "xhigh"}));
    assert_eq!(b0["parallel_tool_calls"], true);
    assert_eq!(
        b0["input"][1],
        json!({"type": "message", "role": "user", "content": "diagnose t1"})
    );
    let input = reqs[1].body["input"].as_array().unwrap();
    let kinds: Vec<&str> = input.iter().map(|i| i["type"].as_str().unwrap()).collect();
    assert_eq!(
        kinds,
        [
            "message",
            "message",
            "message",
            "function_call",
            "function_call",
            "function_call_output",
            "function_call_output"
        ]
    );
    assert_eq!(input[3]["call_id"], "call_1");
    assert_eq!(input[3]["arguments"], r#"{"trace_id":"t1"}"#);
    assert_eq!(
        reqs[1].tool_results(),
        vec![
            ("call_1".to_owned(), "trace t1: 12 spans".to_owned()),
            ("call_2".to_owned(), "42".to_owned())
        ]
    );
    assert_eq!(reqs[1].tool_names(), ["view_trace", "count_traces"]);
}

#[tokio::test]
async fn chat_tool_results_sent_back_in_order() {
    let server = ScriptedServer::start(vec![
        Reply::turn(Turn::new().tool_call("c1", "view_trace", "{}").tool_call(
            "c2",
            "count_traces",
            "{}",
        )),
        Reply::text("done"),
    ])
    .await;
    let c = client(&server);
    let mut req = request("go");
    req.tools = tools();
    let first = c.complete(&req).await.unwrap();
    req.messages.push(Message::from_response(&first));
    req.messages.push(Message::tool_result("c1", "r1"));
    req.messages.push(Message::tool_result("c2", "r2"));
    assert_eq!(c.complete(&req).await.unwrap().text, "done");
    let r = &server.requests()[1];
    assert_eq!(
        r.tool_results(),
        [
            ("c1".to_owned(), "r1".to_owned()),
            ("c2".to_owned(), "r2".to_owned())
        ]
    );
    let assistant = &r.body["messages"][2];
    assert_eq!(assistant["role"], "assistant");
    assert_eq!(assistant["content"], serde_json::Value::Null);
    assert_eq!(
        assistant["tool_calls"][1]["function"]["name"],
        "count_traces"
    );
    // Messages round-trip through serde (they go into checkpoints).
    let json = serde_json::to_string(&req.messages).unwrap();
    let back: Vec<Message> = serde_json::from_str(&json).unwrap();
    assert_eq!(back, req.messages);
}

#[tokio::test]
async fn in_stream_errors_are_classified() {
    // Responses: response.failed with a server error is retried.
    let failed = r#"event: response.failed
data: {"type":"response.failed","response":{"id":"r","status":"failed","error":{"code":"server_error","message":"boom"}}}

"#;
    let server =
        ScriptedServer::start(vec![Reply::raw_sse([failed]), Reply::text("recovered")]).await;
    let c = ModelClient::new(config(&server).with_wire(WireApi::Responses)).unwrap();
    assert_eq!(c.complete(&request("x")).await.unwrap().text, "recovered");

    // Chat: an error chunk with an unretryable code surfaces as Api error.
    let chunk =
        "data: {\"error\":{\"message\":\"bad tool schema\",\"code\":\"invalid_request\"}}\n\n";
    let server = ScriptedServer::start(vec![Reply::raw_sse([chunk]), Reply::text("nope")]).await;
    let err = client(&server).complete(&request("x")).await.unwrap_err();
    assert_eq!(
        err,
        ProviderError::Api {
            code: Some("invalid_request".into()),
            message: "bad tool schema".into()
        }
    );
}

/// OpenRouter's errors during generation: a 200 stream whose chunk carries an error with
/// a numeric code (408, 429, 502, 503). Rate limits and timeouts are tried again, as their
/// HTTP statuses would be.
#[tokio::test]
async fn numeric_rate_limit_and_timeout_codes_inside_a_stream_are_tried_again() {
    for code in [429, 408, 502] {
        let chunk = format!(
            "data: {{\"error\":{{\"code\":{code},\"message\":\"Rate limit exceeded\"}},\"choices\":[{{\"index\":0,\"delta\":{{}},\"finish_reason\":\"error\"}}]}}\n\n"
        );
        let server =
            ScriptedServer::start(vec![Reply::raw_sse([chunk]), Reply::text("recovered")]).await;
        let answer = client(&server).complete(&request("x")).await;
        assert_eq!(
            answer.map(|a| a.text).ok().as_deref(),
            Some("recovered"),
            "code {code}"
        );
    }
}

#[tokio::test]
async fn stall_times_out_and_is_retried() {
    let server = ScriptedServer::start(vec![Reply::hang(), Reply::text("after the stall")]).await;
    let mut cfg = config(&server);
    cfg.timeout = Duration::from_millis(200);
    let resp = ModelClient::new(cfg)
        .unwrap()
        .complete(&request("x"))
        .await
        .unwrap();
    assert_eq!(resp.text, "after the stall");
    assert_eq!(resp.attempts, 2);
}

/// Asks `server` with this idle timeout and deadline, expecting the deadline's error.
async fn past_the_deadline(server: &ScriptedServer, idle: Duration, deadline: Duration) {
    let mut cfg = config(server);
    cfg.timeout = idle;
    cfg.deadline = deadline;
    let err = ModelClient::new(cfg)
        .unwrap()
        .complete(&request("x"))
        .await
        .unwrap_err();
    assert!(matches!(err, ProviderError::Timeout(_)), "{err:?}");
    assert!(err.to_string().contains("--request-deadline"), "{err}");
}

/// A server that trickles keep-alive comments, each well within the idle timeout, is
/// stopped at the attempt's deadline, and not asked again.
#[tokio::test]
async fn a_trickle_that_never_ends_is_stopped_at_the_deadline() {
    let keep_alives: Vec<String> = (0..200).map(|_| ": keep-alive\n\n".to_owned()).collect();
    let server = ScriptedServer::start(
        Script::new()
            .reply(Reply::raw_sse(keep_alives))
            .reply(Reply::text("never asked"))
            .chunk_delay(Duration::from_millis(20)),
    )
    .await;
    let started = std::time::Instant::now();
    past_the_deadline(&server, Duration::from_secs(5), Duration::from_millis(300)).await;
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(server.requests().len(), 1);
}

/// A server that stalls on every attempt is given up at the request's deadline, which
/// counts its retries: six attempts of the idle timeout each would take twice as long.
#[tokio::test]
async fn the_deadline_counts_every_attempt_of_a_request() {
    let server = ScriptedServer::start((0..6).map(|_| Reply::hang()).collect::<Vec<_>>()).await;
    past_the_deadline(
        &server,
        Duration::from_millis(200),
        Duration::from_millis(500),
    )
    .await;
    let asked = server.requests().len();
    assert!((2..=3).contains(&asked), "{asked} attempts");
}

/// A response that grows past the size bound is given up, not read into memory, and not
/// asked again.
#[tokio::test]
async fn a_response_past_the_size_bound_is_given_up() {
    let delta = format!(
        "data: {{\"choices\":[{{\"index\":0,\"delta\":{{\"content\":\"{}\"}}}}]}}\n\n",
        "ab".repeat(500)
    );
    let flood: Vec<String> = (0..100).map(|_| delta.clone()).collect();
    let server =
        ScriptedServer::start(vec![Reply::raw_sse(flood), Reply::text("never asked")]).await;
    let mut cfg = config(&server);
    cfg.max_response_bytes = 20_000;
    let err = ModelClient::new(cfg)
        .unwrap()
        .complete(&request("x"))
        .await
        .unwrap_err();
    assert!(matches!(err, ProviderError::Protocol(_)), "{err:?}");
    assert!(err.to_string().contains("stopped reading it"), "{err}");
    assert_eq!(server.requests().len(), 1);
}

#[tokio::test]
async fn dropping_the_stream_cancels_the_request() {
    let server = ScriptedServer::start(
        Script::new()
            .reply(Reply::text("a b c d e f g h i j k l m n o p"))
            .chunk_delay(Duration::from_millis(50)),
    )
    .await;
    let c = client(&server);
    let mut stream = c.stream(&request("x"));
    let first = stream.next().await.unwrap().unwrap();
    assert_eq!(first, StreamEvent::TextDelta("a ".into()));
    drop(stream);
    // The client is still usable afterwards.
    server.push(Reply::text("again"));
    assert_eq!(c.complete(&request("y")).await.unwrap().text, "again");
}

#[tokio::test]
async fn matcher_routes_parallel_requests() {
    let server = ScriptedServer::start(vec![
        Reply::text("answer A")
            .when_last_user_contains("task A")
            .delay(Duration::from_millis(30)),
        Reply::text("answer B").when_last_user_contains("task B"),
        Reply::text("answer C").when(|r| r.body["model"] == "other-model"),
    ])
    .await;
    let c = client(&server);
    let (ra, rb) = (request("please do task A"), request("please do task B"));
    let rc = ModelRequest::new("other-model", vec![Message::user("task C")]);
    let (a, b, cc) = tokio::join!(c.complete(&ra), c.complete(&rb), c.complete(&rc));
    assert_eq!(a.unwrap().text, "answer A");
    assert_eq!(b.unwrap().text, "answer B");
    assert_eq!(cc.unwrap().text, "answer C");
    assert_eq!(server.unmatched(), 0);
    assert_eq!(server.remaining(), 0);
}

#[tokio::test]
async fn drop_offsets_used_above_cut_inside_the_text() {
    // Guards the byte offsets chosen in the tests above: with the scripted
    // renderer, 400/600/700 bytes end after some text and before the end.
    for (text, cut) in [
        ("The failing span is tool call three.", 400),
        ("alpha beta gamma delta", 600),
        ("First draft of an answer that never finishes", 700),
    ] {
        let server =
            ScriptedServer::start(vec![Reply::drop_after(Turn::new().text(text), cut)]).await;
        let c = ModelClient::new(config(&server).with_retry(RetryPolicy::none())).unwrap();
        let events = collect(&c, &request("x")).await;
        let seen = visible_text(&events);
        assert!(
            !seen.is_empty() && seen.len() < text.len(),
            "{cut}: {seen:?}"
        );
        assert!(text.starts_with(&seen));
        assert!(matches!(
            events.last(),
            Some(Err(ProviderError::RetriesExhausted { attempts: 1, .. }))
        ));
    }
}

#[tokio::test]
async fn retry_after_http_date_and_length_finish() {
    let server = ScriptedServer::start(vec![
        Reply::error(503, "upstream overloaded").retry_after("Thu, 01 Jan 1970 00:00:00 GMT"),
        Reply::turn(Turn::new().text("cut sho").finish_reason("length")),
    ])
    .await;
    let mut infos = Vec::new();
    let resp = client(&server)
        .complete_with(&request("x"), |e| {
            if let StreamEvent::Retrying(i) = e {
                infos.push(i.clone());
            }
        })
        .await
        .unwrap();
    assert_eq!(infos.len(), 1);
    assert_eq!(infos[0].status, Some(503));
    assert_eq!(
        infos[0].delay,
        Duration::ZERO,
        "a past HTTP date means retry now"
    );
    assert!(infos[0].reason.contains("upstream overloaded"));
    assert_eq!(resp.finish_reason, FinishReason::Length);
    assert_eq!(resp.attempts, 2);
}

/// A `Retry-After` longer than the client waits (2 s in these tests' policy) is said at
/// once, with the server's wait, rather than spending the attempts on early refusals.
#[tokio::test]
async fn a_retry_after_longer_than_halo_waits_is_said_at_once() {
    let server =
        ScriptedServer::start(vec![Reply::rate_limited(3600), Reply::text("never asked")]).await;
    let err = client(&server).complete(&request("x")).await.unwrap_err();
    assert_eq!(err.status(), Some(429));
    assert!(
        err.to_string()
            .contains("asks to wait 3600s before trying again, longer than halo waits (2s)"),
        "{err}"
    );
    assert_eq!(server.requests().len(), 1);
}

#[tokio::test]
async fn a_server_that_ignores_streaming_answers_with_a_whole_completion() {
    let completion = json!({
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "choices": [{
            "index": 0,
            "message": {
                "role": "assistant",
                "content": "Looking.",
                "tool_calls": [{
                    "id": "call_1",
                    "type": "function",
                    "function": {"name": "view_trace", "arguments": "{\"trace_id\":\"t1\"}"}
                }]
            },
            "finish_reason": "tool_calls"
        }],
        "usage": {"prompt_tokens": 11, "completion_tokens": 3, "total_tokens": 14}
    });
    let server = ScriptedServer::start(vec![Reply::whole_json(completion.to_string())]).await;
    let mut req = request("go");
    req.tools = tools();
    let response = client(&server).complete(&req).await.unwrap();
    assert_eq!(response.text, "Looking.");
    assert_eq!(response.finish_reason, FinishReason::ToolCalls);
    assert_eq!(
        response.tool_calls,
        vec![ToolCall {
            id: "call_1".into(),
            name: "view_trace".into(),
            arguments: r#"{"trace_id":"t1"}"#.into(),
        }]
    );
    assert_eq!(response.usage.unwrap().input_tokens, 11);
    assert_eq!(server.requests().len(), 1, "no retries");

    // A JSON answer that is no completion fails at once, saying what it got.
    let server = ScriptedServer::start(vec![Reply::whole_json(r#"{"hello":"world"}"#)]).await;
    let err = client(&server).complete(&request("go")).await.unwrap_err();
    assert!(err.to_string().contains("not a chat completion"), "{err}");
    assert_eq!(server.requests().len(), 1);

    // An event stream labelled application/json is read as the stream it is.
    let stream = concat!(
        "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"mis\"}}]}\n\n",
        "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"labelled\"},\"finish_reason\":\"stop\"}]}\n\n",
        "data: [DONE]\n\n",
    );
    let server = ScriptedServer::start(vec![Reply::whole_json(stream)]).await;
    let response = client(&server).complete(&request("go")).await.unwrap();
    assert_eq!(response.text, "mislabelled");

    // A whole completion whose finish_reason is null is still its answer.
    let no_reason = json!({"choices": [{"index": 0, "message": {"role": "assistant", "content": "ok"}, "finish_reason": null}]});
    let server = ScriptedServer::start(vec![Reply::whole_json(no_reason.to_string())]).await;
    let response = client(&server).complete(&request("go")).await.unwrap();
    assert_eq!(response.text, "ok");
    assert_eq!(response.finish_reason, FinishReason::Stop);
}

#[tokio::test]
async fn a_stream_with_no_choices_is_an_empty_answer_not_a_success() {
    let empty = || {
        Reply::raw_sse([
            "data: {\"id\":\"x\",\"object\":\"chat.completion.chunk\",\"choices\":[]}\n\n",
            "data: [DONE]\n\n",
        ])
    };
    let server = ScriptedServer::start(vec![empty(), empty()]).await;
    let client = ModelClient::new(config(&server).with_retry(fast_retry(1))).unwrap();
    let err = client.complete(&request("go")).await.unwrap_err();
    assert!(err.to_string().contains("no choices"), "{err}");
    assert_eq!(server.requests().len(), 2, "tried again once");
}

#[tokio::test]
async fn a_whole_completion_with_no_choices_is_the_same_empty_answer_tried_again() {
    let empty = || Reply::whole_json(r#"{"id":"x","object":"chat.completion","choices":[]}"#);
    let server = ScriptedServer::start(vec![empty(), Reply::text("second time")]).await;
    let client = ModelClient::new(config(&server).with_retry(fast_retry(1))).unwrap();
    let response = client.complete(&request("go")).await.unwrap();
    assert_eq!(response.text, "second time");
    assert_eq!(response.attempts, 2);

    let server = ScriptedServer::start(vec![empty(), empty()]).await;
    let client = ModelClient::new(config(&server).with_retry(fast_retry(1))).unwrap();
    let err = client.complete(&request("go")).await.unwrap_err();
    assert!(err.to_string().contains("no choices"), "{err}");
    assert!(!err.to_string().contains("not a chat completion"), "{err}");
    assert_eq!(server.requests().len(), 2, "tried again once");
}

#[tokio::test]
async fn a_whole_completion_under_another_content_type_is_read_as_one() {
    let completion = json!({
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "whole"},
                     "finish_reason": "stop"}]
    });
    // Sent as an event stream's body: the labels lie, the brace does not.
    let server = ScriptedServer::start(vec![Reply::raw_sse([completion.to_string()])]).await;
    let response = client(&server).complete(&request("go")).await.unwrap();
    assert_eq!(response.text, "whole");
    assert_eq!(server.requests().len(), 1, "no retries");
}

#[tokio::test]
async fn responses_calls_announced_without_arguments_take_them_from_the_final_output() {
    let events = [
        r#"event: response.output_item.added
data: {"type":"response.output_item.added","output_index":0,"item":{"type":"function_call","id":"fc_1","call_id":"call_1","name":"view_trace","arguments":""}}

"#,
        r#"event: response.completed
data: {"type":"response.completed","response":{"id":"r","status":"completed","output":[{"type":"function_call","id":"fc_1","call_id":"call_1","name":"view_trace","arguments":"{\"trace_id\":\"t1\"}"}]}}

"#,
    ];
    let server = ScriptedServer::start(vec![Reply::raw_sse(events)]).await;
    let c = ModelClient::new(config(&server).with_wire(WireApi::Responses)).unwrap();
    let mut req = request("go");
    req.tools = tools();
    let response = c.complete(&req).await.unwrap();
    assert_eq!(response.tool_calls.len(), 1);
    assert_eq!(response.tool_calls[0].name, "view_trace");
    assert_eq!(response.tool_calls[0].arguments, r#"{"trace_id":"t1"}"#);
}

#[tokio::test]
async fn a_server_rejecting_stream_options_is_asked_again_without_them() {
    let server = ScriptedServer::start(vec![
        Reply::api_error(
            400,
            "invalid_request_error",
            "Unrecognized request argument supplied: stream_options",
        ),
        Reply::text("fine without"),
    ])
    .await;
    let c = client(&server);
    let response = c.complete(&request("go")).await.unwrap();
    assert_eq!(response.text, "fine without");
    let reqs = server.requests();
    assert_eq!(reqs.len(), 2);
    assert!(reqs[0].body.get("stream_options").is_some());
    assert!(reqs[1].body.get("stream_options").is_none());
    // The client remembers: the next request is built without them from the start.
    server.push(Reply::text("again"));
    assert_eq!(c.complete(&request("more")).await.unwrap().text, "again");
    let reqs = server.requests();
    assert_eq!(reqs.len(), 3);
    assert!(reqs[2].body.get("stream_options").is_none());
}

/// Servers that validate requests with pydantic (FastAPI, Mistral's API) refuse an unknown
/// field with a 422 and a `detail` list: the same adaptation as for a 400.
#[tokio::test]
async fn a_422_refusing_stream_options_as_an_extra_input_is_adapted_too() {
    let detail = r#"{"detail":[{"type":"extra_forbidden","loc":["body","stream_options"],"msg":"Extra inputs are not permitted","input":{"include_usage":true}}]}"#;
    let server =
        ScriptedServer::start(vec![Reply::error(422, detail), Reply::text("fine without")]).await;
    let response = client(&server).complete(&request("go")).await.unwrap();
    assert_eq!(response.text, "fine without");
    let reqs = server.requests();
    assert_eq!(reqs.len(), 2);
    assert!(reqs[1].body.get("stream_options").is_none());
}

#[tokio::test]
async fn a_responses_server_that_rejects_store_is_asked_again_without_it() {
    let server = ScriptedServer::start(vec![
        Reply::api_error(400, "invalid_request_error", "Unknown parameter: 'store'."),
        Reply::text("stored nowhere"),
    ])
    .await;
    let c = ModelClient::new(config(&server).with_wire(WireApi::Responses)).unwrap();
    assert_eq!(
        c.complete(&request("go")).await.unwrap().text,
        "stored nowhere"
    );
    let reqs = server.requests();
    assert_eq!(reqs[0].body["store"], false);
    assert!(reqs[1].body.get("store").is_none());
}

#[tokio::test]
async fn an_exhausted_quota_is_not_retried() {
    let server = ScriptedServer::start(vec![
        Reply::api_error(429, "insufficient_quota", "You exceeded your current quota"),
        Reply::text("never"),
    ])
    .await;
    let err = client(&server).complete(&request("go")).await.unwrap_err();
    assert!(err.to_string().contains("quota"), "{err}");
    assert_eq!(server.requests().len(), 1);
}

#[tokio::test]
async fn a_server_that_knows_only_max_tokens_gets_the_limit_under_that_name() {
    let server = ScriptedServer::start(vec![
        Reply::api_error(
            400,
            "invalid_request_error",
            "Unrecognized request argument supplied: max_completion_tokens",
        ),
        Reply::text("limited"),
    ])
    .await;
    let mut req = request("go");
    req.max_output_tokens = Some(321);
    let response = client(&server).complete(&req).await.unwrap();
    assert_eq!(response.text, "limited");
    let reqs = server.requests();
    assert_eq!(reqs[0].body["max_completion_tokens"], 321);
    assert_eq!(reqs[1].body["max_tokens"], 321);
    assert!(reqs[1].body.get("max_completion_tokens").is_none());
}

#[tokio::test]
async fn responses_requests_ask_the_provider_not_to_store_them() {
    let server = ScriptedServer::start(vec![Reply::text("ok")]).await;
    let c = ModelClient::new(config(&server).with_wire(WireApi::Responses)).unwrap();
    c.complete(&request("go")).await.unwrap();
    assert_eq!(server.requests()[0].body["store"], false);
}

#[tokio::test]
async fn a_400_about_a_too_large_limit_is_not_answered_by_renaming_it() {
    let server = ScriptedServer::start(vec![
        Reply::api_error(
            400,
            "invalid_request_error",
            "'max_tokens' or 'max_completion_tokens' is too large: 9999999",
        ),
        Reply::text("never"),
    ])
    .await;
    let mut req = request("go");
    req.max_output_tokens = Some(9_999_999);
    let err = client(&server).complete(&req).await.unwrap_err();
    assert!(err.to_string().contains("too large"), "{err}");
    assert_eq!(server.requests().len(), 1);
}

#[tokio::test]
async fn a_custom_authorization_header_is_never_replaced_by_the_key() {
    let server = ScriptedServer::start(vec![Reply::text("ok")]).await;
    let c = ModelClient::new(
        config(&server)
            .with_api_key("sk-from-the-environment")
            .with_header("Authorization", "Bearer gw-token"),
    )
    .unwrap();
    c.complete(&request("go")).await.unwrap();
    let req = &server.requests()[0];
    assert_eq!(req.header("authorization"), Some("Bearer gw-token"));
    assert!(!format!("{req:?}").contains("sk-from-the-environment"));
}

#[tokio::test]
async fn a_body_that_is_no_event_stream_is_named_and_not_retried() {
    for (body, quoted) in [
        ("<html>login</html>", "<html>login</html>"),
        ("", "it is empty"),
    ] {
        let server =
            ScriptedServer::start(vec![Reply::raw_sse([body]), Reply::text("never read")]).await;
        let err = client(&server).complete(&request("x")).await.unwrap_err();
        let ProviderError::Protocol(message) = &err else {
            panic!("{err:?}");
        };
        assert!(message.contains("not with an event stream"), "{message}");
        assert!(message.contains(quoted), "{message}");
        assert!(message.contains("--base-url"), "{message}");
        assert_eq!(
            server.requests().len(),
            1,
            "the same server answers the same way"
        );
    }
}

#[tokio::test]
async fn the_other_wire_protocol_is_named_with_the_flag_that_fixes_it() {
    let chat_chunk =
        "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"hi\"}}]}\n\ndata: [DONE]\n\n";
    let server = ScriptedServer::start(vec![Reply::raw_sse([chat_chunk])]).await;
    let c = ModelClient::new(config(&server).with_wire(WireApi::Responses)).unwrap();
    let err = c.complete(&request("x")).await.unwrap_err();
    assert!(
        err.to_string().contains("run without --responses-api"),
        "{err}"
    );

    let responses_event = "event: response.created\ndata: {\"type\":\"response.created\",\"response\":{\"id\":\"r\"}}\n\n";
    let server = ScriptedServer::start(vec![Reply::raw_sse([responses_event])]).await;
    let err = client(&server).complete(&request("x")).await.unwrap_err();
    assert!(
        err.to_string().contains("run with --responses-api"),
        "{err}"
    );
}

#[tokio::test]
async fn content_sent_as_a_list_of_parts_is_read_as_its_text() {
    let body = serde_json::json!({
        "id": "x", "object": "chat.completion", "model": "m",
        "choices": [{
            "index": 0,
            "message": {"role": "assistant", "content": [
                {"type": "text", "text": "Hello "},
                {"type": "image_url", "image_url": {"url": "data:,"}},
                {"type": "text", "text": "world"}
            ]},
            "finish_reason": "stop"
        }]
    });
    let server = ScriptedServer::start(vec![Reply::whole_json(body.to_string())]).await;
    let resp = client(&server).complete(&request("x")).await.unwrap();
    assert_eq!(resp.text, "Hello world");
}

#[tokio::test]
async fn an_overloaded_error_in_a_200_body_is_tried_again() {
    let overloaded = r#"{"error":{"message":"the model is overloaded","code":"overloaded"}}"#;
    let server = ScriptedServer::start(vec![
        Reply::whole_json(overloaded),
        Reply::text("after the overload"),
    ])
    .await;
    let resp = client(&server).complete(&request("x")).await.unwrap();
    assert_eq!(resp.text, "after the overload");
    assert_eq!(resp.attempts, 2);
}

/// Each tool result goes back under its call's id, so two calls of one answer never
/// share one: a repeated or missing id is replaced, the first use kept.
#[tokio::test]
async fn repeated_or_missing_tool_call_ids_are_made_unique() {
    let call = |id: &str, trace: &str| {
        json!({
            "id": id,
            "type": "function",
            "function": {"name": "view_trace", "arguments": format!("{{\"trace_id\":\"{trace}\"}}")}
        })
    };
    let completion = json!({
        "choices": [{
            "index": 0,
            "message": {
                "role": "assistant",
                "content": null,
                "tool_calls": [call("same", "t1"), call("same", "t2"), call("", "t3")]
            },
            "finish_reason": "tool_calls"
        }]
    });
    let server = ScriptedServer::start(vec![Reply::whole_json(completion.to_string())]).await;
    let mut req = request("go");
    req.tools = tools();
    let response = client(&server).complete(&req).await.unwrap();
    let ids: Vec<&str> = response.tool_calls.iter().map(|c| c.id.as_str()).collect();
    assert_eq!(ids.len(), 3);
    assert_eq!(ids[0], "same");
    let unique: std::collections::HashSet<&str> = ids.iter().copied().collect();
    assert_eq!(unique.len(), 3, "{ids:?}");
    assert!(ids[1..].iter().all(|id| !id.is_empty()), "{ids:?}");
    let traces: Vec<&str> = response
        .tool_calls
        .iter()
        .map(|c| c.arguments.as_str())
        .collect();
    assert_eq!(
        traces,
        [
            r#"{"trace_id":"t1"}"#,
            r#"{"trace_id":"t2"}"#,
            r#"{"trace_id":"t3"}"#
        ]
    );
}
