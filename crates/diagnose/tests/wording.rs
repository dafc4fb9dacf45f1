//! Failures as real runtimes record them, worded unlike the generator's data: one cause
//! on several tools, the real error in the tool's result behind a fixed status message,
//! a refusal in words no pattern knows but marked on the run.

mod common;

use halo_diagnose::{diagnose, render_markdown, DiagnoseOptions, Mode};

fn span(
    trace: &str,
    id: &str,
    parent: &str,
    error: Option<&str>,
    attrs: serde_json::Value,
) -> String {
    let status = match error {
        Some(message) => serde_json::json!({"code": "STATUS_CODE_ERROR", "message": message}),
        None => serde_json::json!({"code": "STATUS_CODE_OK", "message": ""}),
    };
    serde_json::json!({
        "trace_id": trace,
        "span_id": id,
        "parent_span_id": parent,
        "name": id,
        "kind": "SPAN_KIND_INTERNAL",
        "start_time": "2026-05-01T10:00:00Z",
        "end_time": "2026-05-01T10:00:01Z",
        "status": status,
        "resource": {"attributes": {"service.name": "agent"}},
        "scope": {"name": "test", "version": "1"},
        "attributes": attrs,
    })
    .to_string()
}

fn tool(trace: &str, id: &str, name: &str, error: Option<&str>, result: &str) -> String {
    span(
        trace,
        id,
        "root",
        error,
        serde_json::json!({
            "openinference.span.kind": "TOOL",
            "tool.name": name,
            "input.value": "{}",
            "output.value": result,
        }),
    )
}

/// Successful tool calls of `trace`, in order (span ids `c0`, `c1`, ...), as (tool,
/// arguments).
fn calls(lines: &mut Vec<String>, trace: &str, calls: &[(&str, &str)]) {
    for (i, (name, args)) in calls.iter().enumerate() {
        lines.push(span(
            trace,
            &format!("c{i}"),
            "root",
            None,
            serde_json::json!({
                "openinference.span.kind": "TOOL",
                "tool.name": name,
                "input.value": args,
                "output.value": "ok",
            }),
        ));
    }
}

fn root(trace: &str, outcome: Option<&str>) -> String {
    let mut attrs = serde_json::json!({"openinference.span.kind": "AGENT"});
    if let Some(o) = outcome {
        attrs["agent.outcome"] = o.into();
    }
    span(trace, "root", "", None, attrs)
}

#[test]
fn causes_are_read_where_runtimes_put_them() {
    let tmp = tempfile::tempdir().unwrap();
    let mut lines = Vec::new();
    // The same argument mistake on three tools, one trace each.
    for (i, name) in ["calendar__list", "files__read", "mail__send"]
        .iter()
        .enumerate()
    {
        let t = format!("args{i}");
        lines.push(root(&t, None));
        lines.push(tool(
            &t,
            "call",
            name,
            Some("TypeError: run() got an unexpected keyword argument 'verbose'"),
            "",
        ));
    }
    // The OpenAI Agents SDK way: a fixed status message, the real error in the result.
    for i in 0..2 {
        let t = format!("sdk{i}");
        lines.push(root(&t, None));
        lines.push(tool(
            &t,
            "call",
            "list_files",
            Some("Error running tool (non-fatal)"),
            "[Errno 2] No such file or directory: 'tools'",
        ));
    }
    // The OpenInference processor of the SDK: the details after the fixed message.
    for (i, (name, error)) in [
        ("get_weather", "City Paris not found"),
        ("get_weather", "City Lyon not found"),
        ("get_weather", "City New York not found"),
        ("book_table", "Restaurant closed on Mondays"),
        // One word differs, but it is no name: two causes.
        ("send_mail", "Invalid recipient address"),
        ("send_mail", "Invalid sender address"),
        // After an exception's type, the first word is no name either.
        ("send_sms", "ValueError: Invalid recipient number"),
        ("send_sms", "ValueError: Missing recipient number"),
    ]
    .into_iter()
    .enumerate()
    {
        let t = format!("repr{i}");
        lines.push(root(&t, None));
        lines.push(tool(
            &t,
            "call",
            name,
            Some(&format!(
                "Error running tool (non-fatal): {{'tool_name': '{name}', 'error': '{error}'}}"
            )),
            "",
        ));
    }
    // A refusal in words no pattern knows, marked on the run.
    lines.push(root("refused", Some("refused")));
    lines.push(span(
        "refused",
        "llm",
        "root",
        None,
        serde_json::json!({
            "openinference.span.kind": "LLM",
            "llm.model_name": "gpt-5.4-mini",
            "output.value": "Nope. Not touching that account.",
        }),
    ));
    // An agent alternating between two calls, the same arguments spaced differently.
    lines.push(root("alternating", None));
    calls(
        &mut lines,
        "alternating",
        &[
            ("search", r#"{"q": "liam", "limit": 5}"#),
            ("open", r#"{"id": 1}"#),
            ("search", r#"{"limit":5,"q":"liam"}"#),
            ("open", r#"{"id":1}"#),
            ("search", r#"{ "q" : "liam" , "limit" : 5 }"#),
        ],
    );
    // A cycle of three calls, over and over.
    lines.push(root("cycle3", None));
    calls(
        &mut lines,
        "cycle3",
        &[
            ("list", "{}"),
            ("read", r#"{"id": 7}"#),
            ("check", "{}"),
            ("list", "{}"),
            ("read", r#"{"id": 7}"#),
            ("check", "{}"),
            ("list", "{}"),
            ("read", r#"{"id": 7}"#),
        ],
    );
    // An edit-test cycle: the same test call between different edits is work, not a loop.
    lines.push(root("cycle", None));
    calls(
        &mut lines,
        "cycle",
        &[
            ("edit_file", r#"{"patch": "a"}"#),
            ("run_tests", "{}"),
            ("edit_file", r#"{"patch": "b"}"#),
            ("run_tests", "{}"),
            ("edit_file", r#"{"patch": "c"}"#),
            ("run_tests", "{}"),
        ],
    );
    let path = tmp.path().join("wording.jsonl");
    std::fs::write(&path, lines.join("\n") + "\n").unwrap();
    let ds = common::open(tmp.path(), &[path]);
    let d = diagnose(&ds, &DiagnoseOptions::default()).unwrap();

    let args: Vec<_> = d
        .findings
        .iter()
        .filter(|f| f.key.mode == Mode::InvalidToolArgs)
        .collect();
    assert_eq!(args.len(), 1, "one cause, one finding: {:#?}", args);
    let f = args[0];
    assert_eq!(f.key.tool, None);
    assert_eq!(
        f.key.template.as_deref(),
        Some("unexpected_argument 'verbose'")
    );
    assert_eq!(f.trace_count, 3);
    assert_eq!(f.tools.len(), 3);
    assert!(
        f.title.starts_with("3 tools reject arguments"),
        "{}",
        f.title
    );
    assert!(
        f.fix
            .contains("`calendar__list`, `files__read` and `mail__send`"),
        "{}",
        f.fix
    );

    let sdk = d
        .findings
        .iter()
        .find(|f| f.key.mode == Mode::ToolError && f.key.tool.as_deref() == Some("list_files"))
        .expect("a tool error finding for list_files");
    assert!(
        sdk.key
            .template
            .as_deref()
            .unwrap()
            .contains("No such file or directory"),
        "{:?}",
        sdk.key.template
    );
    assert_eq!(sdk.tools, ["list_files"]);
    // The evidence says what each example shows, without a `halo view`.
    assert!(
        sdk.examples[0]
            .detail
            .as_deref()
            .unwrap()
            .contains("[Errno 2] No such file"),
        "{:?}",
        sdk.examples[0]
    );
    assert!(f.examples.iter().all(|e| e
        .detail
        .as_deref()
        .is_some_and(|d| d.contains("unexpected keyword argument 'verbose'"))));
    assert_eq!(sdk.trace_count, 2);

    // Each cause of the SDK's details is its own finding, read from the details.
    let causes: Vec<(Option<&str>, &str)> = d
        .findings
        .iter()
        .filter(|f| f.key.mode == Mode::ToolError && f.key.tool.as_deref() != Some("list_files"))
        .map(|f| (f.key.tool.as_deref(), f.key.template.as_deref().unwrap()))
        .collect();
    let mut causes = causes;
    causes.sort();
    assert_eq!(
        causes,
        [
            (Some("book_table"), "Restaurant closed on Mondays"),
            (Some("get_weather"), "City <name> not found"),
            (Some("send_mail"), "Invalid recipient address"),
            (Some("send_mail"), "Invalid sender address"),
            (Some("send_sms"), "ValueError: Invalid recipient number"),
            (Some("send_sms"), "ValueError: Missing recipient number"),
        ],
        "the city is the word that varies; recipient and sender are not names"
    );
    assert!(
        causes
            .iter()
            .all(|(tool, t)| tool.is_some() && !t.contains("Error running tool")),
        "{causes:?}"
    );

    let refusal = d
        .findings
        .iter()
        .find(|f| f.key.mode == Mode::Refusal)
        .expect("the refused run is a refusal");
    assert_eq!(refusal.trace_ids, ["refused"]);

    let looping = d
        .findings
        .iter()
        .find(|f| f.key.mode == Mode::RepeatedToolLoop)
        .expect("the alternating calls are a loop");
    assert_eq!(
        looping.key.tool, None,
        "loops on several tools are one finding"
    );
    assert_eq!(
        looping.trace_ids,
        ["alternating", "cycle3"],
        "the edit-test cycle is no loop"
    );
    assert_eq!(looping.examples[0].span_ids, ["c0", "c2", "c4"]);
    assert_eq!(
        looping.examples[0].detail.as_deref(),
        Some(r#"search {"q": "liam", "limit": 5}"#)
    );

    let md = render_markdown(&d);
    assert!(
        md.contains("**Where:** tools `calendar__list`, `files__read`, `mail__send`"),
        "{md}"
    );
    assert!(
        md.contains(" — `[Errno 2] No such file or directory: 'tools'`"),
        "{md}"
    );
}

/// A cause seen on two tools before and on one after (one of them fixed) is one row of
/// the diff, not "fixed" plus "new".
#[test]
fn a_cause_compares_as_one_row_however_many_tools_show_it() {
    let tmp = tempfile::tempdir().unwrap();
    let run = |name: &str, tools: &[&str]| {
        let mut lines = Vec::new();
        for (i, tool_name) in tools.iter().enumerate() {
            let t = format!("{name}{i}");
            lines.push(root(&t, None));
            lines.push(tool(
                &t,
                "call",
                tool_name,
                Some("TimeoutError: upstream timed out"),
                "",
            ));
        }
        for i in 0..20 {
            lines.push(root(&format!("{name}-ok{i}"), None));
        }
        let path = tmp.path().join(format!("{name}.jsonl"));
        std::fs::write(&path, lines.join("\n") + "\n").unwrap();
        let ds = common::open(&tmp.path().join(name), &[path]);
        diagnose(&ds, &DiagnoseOptions::default()).unwrap()
    };
    let before = run("before", &["mail__send", "calendar__list"]);
    let after = run("after", &["calendar__list"]);
    assert_eq!(before.findings[0].key.tool, None, "merged before");
    assert_eq!(
        after.findings[0].key.tool.as_deref(),
        Some("calendar__list")
    );
    let d = halo_diagnose::diff(&before, &after);
    let rows: Vec<_> = d
        .findings
        .iter()
        .filter(|f| f.key.mode == Mode::ToolError)
        .collect();
    assert_eq!(rows.len(), 1, "{rows:#?}");
    assert_eq!((rows[0].before_traces, rows[0].after_traces), (2, 1));
    assert!(
        rows[0].title.contains("`calendar__list`, `mail__send`"),
        "{}",
        rows[0].title
    );
}

/// LangChain's and CrewAI's executors stop a run at its iteration limit with a fixed
/// answer and no error status; such runs hit the limit as surely as those that raise.
#[test]
fn a_run_stopped_at_its_limit_without_an_error_is_turn_exhaustion() {
    let tmp = tempfile::tempdir().unwrap();
    let answer = |trace: &str, error: Option<&str>, output: &str| {
        span(
            trace,
            "root",
            "",
            error,
            serde_json::json!({"openinference.span.kind": "CHAIN", "output.value": output}),
        )
    };
    let stopped = "Agent stopped due to iteration limit or time limit.";
    let mut lines = Vec::new();
    for t in ["lc0", "lc1", "lc2"] {
        lines.push(answer(t, None, stopped));
        calls(
            &mut lines,
            t,
            &[("search", r#"{"q": "a"}"#), ("open", "{}")],
        );
    }
    // Said by an error too: one hit, the error's.
    lines.push(answer("raised", None, stopped));
    lines.push(span(
        "raised",
        "llm",
        "root",
        Some("MaxTurnsExceeded: max_turns (20) exceeded"),
        serde_json::json!({"openinference.span.kind": "LLM", "llm.model_name": "m"}),
    ));
    // Mentioning a limit is no stop at it.
    lines.push(answer(
        "mention",
        None,
        "I raised the iteration limit to 30 and the report is done.",
    ));
    calls(&mut lines, "mention", &[("search", "{}")]);
    let path = tmp.path().join("stopped.jsonl");
    std::fs::write(&path, lines.join("\n") + "\n").unwrap();
    let ds = common::open(tmp.path(), &[path]);
    let d = diagnose(&ds, &DiagnoseOptions::default()).unwrap();

    let mut turns: Vec<(&str, Vec<&str>)> = d
        .findings
        .iter()
        .filter(|f| f.key.mode == Mode::TurnExhaustion)
        .map(|f| {
            let mut ids: Vec<&str> = f.trace_ids.iter().map(String::as_str).collect();
            ids.sort();
            (f.key.template.as_deref().unwrap(), ids)
        })
        .collect();
    turns.sort();
    assert_eq!(
        turns,
        [
            (stopped, vec!["lc0", "lc1", "lc2"]),
            (
                "MaxTurnsExceeded: max_turns (<num>) exceeded",
                vec!["raised"]
            ),
        ],
        "{:#?}",
        d.findings
    );
    let f = d
        .findings
        .iter()
        .find(|f| f.key.template.as_deref() == Some(stopped))
        .unwrap();
    assert_eq!(f.examples[0].span_ids, ["root"]);
    assert_eq!(f.examples[0].detail.as_deref(), Some(stopped));
    assert!(
        d.findings
            .iter()
            .all(|f| !f.trace_ids.iter().any(|t| t == "mention")
                || f.key.mode != Mode::TurnExhaustion),
        "a mention of the limit is no stop"
    );
}

/// Failures as Pydantic AI, LangChain's executor and tracer, and the Agents SDK record
/// them, each found as its mode.
#[test]
fn framework_shapes_are_read_as_their_modes() {
    let tmp = tempfile::tempdir().unwrap();
    let mut lines = Vec::new();
    let frames: String = (0..13)
        .map(|i| format!("  File \"/venv/lib/m{i}.py\", line 5{i}3, in f{i}\n    call_{i}()\n"))
        .collect();
    for i in 0..3 {
        // Pydantic AI: rejected arguments go back to the model as the tool's result.
        let t = format!("pyd{i}");
        lines.push(root(&t, None));
        lines.push(tool(
            &t,
            "call",
            "get_order",
            None,
            "1 validation error:\n```json\n[{\"type\":\"int_parsing\",\"loc\":[\"order_id\"],\"msg\":\"Input should be a valid integer\"}]\n```\n\nFix the errors and try again.",
        ));
        // Pydantic AI: the run's request limit.
        let t = format!("limit{i}");
        lines.push(span(
            &t,
            "root",
            "",
            Some("UsageLimitExceeded: The next request would exceed the request_limit of 8"),
            serde_json::json!({"openinference.span.kind": "AGENT"}),
        ));
        // LangChain's executor at its iteration limit, its output as OpenInference writes it.
        let t = format!("exec{i}");
        lines.push(span(
            &t,
            "root",
            "",
            None,
            serde_json::json!({"openinference.span.kind": "CHAIN",
                "output.value": "{\"output\": \"Agent stopped due to iteration limit or time limit.\"}"}),
        ));
        // LangChain's stand-in for a made-up tool.
        let t = format!("invented{i}");
        lines.push(root(&t, None));
        lines.push(span(
            &t,
            "call",
            "root",
            None,
            serde_json::json!({"openinference.span.kind": "TOOL", "tool.name": "invalid_tool",
                "input.value": "{'requested_tool_name': 'get_flight_status', 'available_tool_names': ['search']}"}),
        ));
        // The Agents SDK: arguments that are not JSON.
        let t = format!("json{i}");
        lines.push(root(&t, None));
        lines.push(tool(
            &t,
            "call",
            "get_weather",
            Some("Error running tool (non-fatal): {'tool_name': 'get_weather', 'error': 'Invalid JSON input for tool get_weather: {\"city\": \"Tokyo\"'}"),
            "",
        ));
        // LangChain's tracer: the whole traceback as the status.
        let t = format!("tb{i}");
        lines.push(root(&t, None));
        lines.push(span(
            &t,
            "llm",
            "root",
            Some(&format!("Traceback (most recent call last):\n{frames}anthropic.RateLimitError: Error code: 429 - rate limited")),
            serde_json::json!({"openinference.span.kind": "LLM", "llm.model_name": "claude-3-5-sonnet"}),
        ));
    }
    let path = tmp.path().join("frameworks.jsonl");
    std::fs::write(&path, lines.join("\n") + "\n").unwrap();
    let ds = common::open(tmp.path(), &[path]);
    let d = diagnose(&ds, &DiagnoseOptions::default()).unwrap();
    let traces_of = |mode: Mode, tool: Option<&str>| -> Vec<String> {
        let mut ids: Vec<String> = d
            .findings
            .iter()
            .filter(|f| f.key.mode == mode && (tool.is_none() || f.key.tool.as_deref() == tool))
            .flat_map(|f| f.trace_ids.clone())
            .collect();
        ids.sort();
        ids
    };
    let ids = |prefix: &str| (0..3).map(|i| format!("{prefix}{i}")).collect::<Vec<_>>();
    assert_eq!(
        traces_of(Mode::InvalidToolArgs, Some("get_order")),
        ids("pyd"),
        "{:#?}",
        d.findings
    );
    assert_eq!(
        traces_of(Mode::InvalidToolArgs, Some("get_weather")),
        ids("json")
    );
    let mut turns = ids("exec");
    turns.extend(ids("limit"));
    assert_eq!(traces_of(Mode::TurnExhaustion, None), turns);
    // The executor's sentence names the finding, not the JSON around it.
    assert!(d.findings.iter().any(|f| f.key.mode == Mode::TurnExhaustion
        && f.key.template.as_deref()
            == Some("Agent stopped due to iteration limit or time limit.")));
    assert_eq!(
        traces_of(Mode::HallucinatedTool, Some("get_flight_status")),
        ids("invented")
    );
    assert!(traces_of(Mode::HallucinatedTool, Some("invalid_tool")).is_empty());
    let provider: Vec<_> = d
        .findings
        .iter()
        .filter(|f| f.key.mode == Mode::ProviderError)
        .collect();
    assert_eq!(provider.len(), 1, "{provider:#?}");
    assert_eq!(provider[0].key.template.as_deref(), Some("rate_limit"));
    assert_eq!(provider[0].trace_ids.len(), 3);
}

/// A failed run whose error no detector reads is counted and named, not silently left
/// out of a report that would read as complete.
#[test]
fn errors_no_finding_explains_are_counted_and_named() {
    let tmp = tempfile::tempdir().unwrap();
    let mut lines = Vec::new();
    lines.push(span(
        "odd",
        "root",
        "",
        Some("skytrip.errors.QueueClosed: the work queue closed"),
        serde_json::json!({"openinference.span.kind": "AGENT"}),
    ));
    // The same run also loops: a finding, but not about its error.
    calls(
        &mut lines,
        "odd",
        &[("search", "{}"), ("search", "{}"), ("search", "{}")],
    );
    for i in 0..2 {
        let t = format!("tool{i}");
        lines.push(root(&t, None));
        lines.push(tool(
            &t,
            "call",
            "search",
            Some("IndexError: list index out of range"),
            "",
        ));
    }
    let path = tmp.path().join("unexplained.jsonl");
    std::fs::write(&path, lines.join("\n") + "\n").unwrap();
    let ds = common::open(tmp.path(), &[path]);
    let d = diagnose(&ds, &DiagnoseOptions::default()).unwrap();
    assert_eq!(d.stats.error_traces, 3);
    assert_eq!(d.traces_with(Mode::RepeatedToolLoop), ["odd"]);
    assert_eq!(d.stats.unexplained_error_traces, 1, "{:#?}", d.stats);
    assert_eq!(d.stats.unexplained_examples[0].trace_id, "odd");
    assert!(
        d.stats.unexplained_examples[0]
            .error
            .contains("QueueClosed"),
        "{:?}",
        d.stats.unexplained_examples
    );
    let md = render_markdown(&d);
    assert!(
        md.contains("**Errors no finding explains:** 1 trace has"),
        "{md}"
    );
    assert!(md.contains("[trace:odd]"), "{md}");
    let summary = halo_diagnose::render_summary(&d, 10, None);
    assert!(
        summary.contains("1 trace with errors in no finding"),
        "{summary}"
    );
}
