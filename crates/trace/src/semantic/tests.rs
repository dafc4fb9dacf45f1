use super::*;
use crate::span::parse_canonical;

fn facts_of(attributes: &str) -> SpanFacts<'static> {
    facts_with_status(attributes, "STATUS_CODE_OK", "")
}

fn facts_with_status(attributes: &str, code: &str, message: &str) -> SpanFacts<'static> {
    let line = format!(
        r#"{{"trace_id":"t","span_id":"s","name":"function.list_files","start_time":"2026-01-01T00:00:00Z","end_time":"2026-01-01T00:00:01Z","status":{{"code":"{code}","message":"{message}"}},"attributes":{attributes}}}"#
    );
    let line: &'static str = Box::leak(line.into_boxed_str());
    SpanFacts::extract(&parse_canonical(line).unwrap())
}

#[test]
fn openinference_llm_span() {
    let f = facts_of(
        r#"{"openinference.span.kind":"LLM","llm.model_name":"gpt-5.4","llm.token_count.prompt":200,"llm.token_count.completion":40,
        "llm.input_messages.0.message.role":"system","llm.input_messages.0.message.content":"sys",
        "llm.input_messages.1.message.role":"user","llm.input_messages.1.message.content":"find songs",
        "llm.output_messages.0.message.content":"calling",
        "llm.output_messages.0.message.tool_calls.0.tool_call.function.name":"spotify__search",
        "llm.output_messages.0.message.tool_calls.1.tool_call.function.name":"spotify__play",
        "llm.tools.0.tool.json_schema":"{\"type\":\"function\",\"function\":{\"name\":\"spotify__search\"}}",
        "llm.tools.1.tool.json_schema":"{\"name\":\"spotify__login\"}"}"#,
    );
    assert_eq!(f.kind, SpanKind::Llm);
    assert_eq!(f.model.as_deref(), Some("gpt-5.4"));
    assert_eq!(
        f.tokens,
        Tokens {
            input: Some(200),
            output: Some(40),
            total: Some(240)
        }
    );
    assert_eq!(f.input_head.as_deref(), Some("find songs"));
    assert_eq!(f.output_head.as_deref(), Some("calling"));
    assert_eq!(f.requested_tools, ["spotify__search", "spotify__play"]);
    assert_eq!(f.declared_tools, ["spotify__search", "spotify__login"]);
}

#[test]
fn token_counts_past_i64_or_below_zero_are_not_counts() {
    // u64::MAX is a common "unknown" sentinel; saturated to i64::MAX it swamped every sum.
    let f = facts_of(
        r#"{"openinference.span.kind":"LLM","gen_ai.usage.input_tokens":18446744073709551615,"gen_ai.usage.output_tokens":1}"#,
    );
    assert_eq!(
        f.tokens,
        Tokens {
            input: None,
            output: Some(1),
            total: Some(1)
        }
    );
    let negative = facts_of(r#"{"llm.token_count.prompt":-5,"llm.token_count.completion":"7"}"#);
    assert_eq!(
        (negative.tokens.input, negative.tokens.total),
        (None, Some(7))
    );
    // Counts that fit but add up past i64 saturate instead of wrapping.
    let huge = facts_of(
        r#"{"llm.token_count.prompt":9223372036854775807,"llm.token_count.completion":9}"#,
    );
    assert_eq!(huge.tokens.total, Some(i64::MAX));
    let nan_cost = facts_of(r#"{"llm.cost.total":"NaN","gen_ai.usage.cost":0.5}"#);
    assert_eq!(
        nan_cost.cost,
        Some(0.5),
        "a cost that is not a number is no cost"
    );
}

#[test]
fn tokens_come_from_one_dialect_only() {
    let f = facts_of(
        r#"{"openinference.span.kind":"LLM","llm.token_count.prompt":100,"llm.token_count.completion":50,
        "inference.llm.input_tokens":100,"inference.llm.output_tokens":50,"gen_ai.usage.input_tokens":100}"#,
    );
    assert_eq!(f.tokens.total, Some(150), "never summed across dialects");
    let nulls = facts_of(
        r#"{"inference.llm.input_tokens":null,"inference.llm.output_tokens":null,"llm.token_count.prompt":7}"#,
    );
    assert_eq!(
        nulls.tokens.input,
        Some(7),
        "null values do not claim a dialect"
    );
}

#[test]
fn genai_spans() {
    let llm = facts_of(
        r#"{"gen_ai.operation.name":"chat","gen_ai.request.model":"m-req","gen_ai.response.model":"m-resp",
        "gen_ai.usage.input_tokens":12,"gen_ai.usage.output_tokens":3,"gen_ai.response.finish_reasons":["tool_calls"],
        "gen_ai.output.messages":"[{\"role\":\"assistant\",\"parts\":[{\"type\":\"text\",\"content\":\"ok\"},{\"type\":\"tool_call\",\"id\":\"c1\",\"name\":\"get_weather\",\"arguments\":{}}]}]",
        "gen_ai.tool.definitions":"[{\"type\":\"function\",\"name\":\"get_weather\"}]","gen_ai.agent.name":"planner","gen_ai.conversation.id":"conv-1"}"#,
    );
    assert_eq!(llm.kind, SpanKind::Llm);
    assert_eq!(llm.model.as_deref(), Some("m-resp"));
    assert_eq!(llm.tokens.total, Some(15));
    assert_eq!(llm.finish_reason.as_deref(), Some("tool_calls"));
    assert_eq!(llm.requested_tools, ["get_weather"]);
    assert_eq!(llm.declared_tools, ["get_weather"]);
    assert_eq!(llm.output_head.as_deref(), Some("ok"));
    assert_eq!(llm.agent_name.as_deref(), Some("planner"));
    assert_eq!(llm.session_id.as_deref(), Some("conv-1"));

    let tool = facts_with_status(
        r#"{"gen_ai.operation.name":"execute_tool","gen_ai.tool.name":"get_weather","gen_ai.tool.call.arguments":"{\"city\":\"Paris\"}","error.type":"TimeoutError","http.response.status_code":504}"#,
        "STATUS_CODE_ERROR",
        "timed out",
    );
    assert_eq!(tool.kind, SpanKind::Tool);
    assert_eq!(tool.tool_name.as_deref(), Some("get_weather"));
    assert_eq!(tool.tool_args.as_deref(), Some("{\"city\":\"Paris\"}"));
    assert_eq!(tool.error_type.as_deref(), Some("TimeoutError"));
    assert_eq!(tool.error_message.as_deref(), Some("timed out"));
    assert_eq!(tool.http_status, Some(504));
}

#[test]
fn tool_spans_without_tool_name_use_the_span_name() {
    let f = facts_of(
        r#"{"openinference.span.kind":"TOOL","input.value":"{\"subdir\":\"./\"}","output.value":"[]"}"#,
    );
    assert_eq!(f.tool_name.as_deref(), Some("list_files"));
    assert_eq!(f.tool_args.as_deref(), Some("{\"subdir\":\"./\"}"));
    assert_eq!(f.tool_result.as_deref(), Some("[]"));
    assert_eq!(
        f.input_head, None,
        "tool payloads are args/result, not input/output"
    );
}

#[test]
fn inference_keys_and_markers() {
    let f = facts_of(
        r#"{"inference.observation_kind":"AGENT","inference.agent_name":"agent-b","inference.project_id":"prj",
        "inference.llm.cost.total":"0.0040","inference.user_id":null,"user.id":"u-1","success":false,
        "agent.tools":"[\"list_files\",\"grep\"]"}"#,
    );
    assert_eq!(f.kind, SpanKind::Agent);
    assert_eq!(f.agent_name.as_deref(), Some("agent-b"));
    assert_eq!(f.project_id.as_deref(), Some("prj"));
    assert_eq!(f.cost, Some(0.004));
    assert_eq!(f.user_id.as_deref(), Some("u-1"));
    assert_eq!(f.outcome.as_deref(), Some("failure"));
    assert_eq!(f.declared_tools, ["list_files", "grep"]);
}

#[test]
fn payload_heads_are_capped_on_char_boundaries() {
    let long = "é".repeat(HEAD_CHARS);
    let f = facts_of(&format!(
        r#"{{"openinference.span.kind":"TOOL","input.value":"{long}"}}"#
    ));
    let args = f.tool_args.unwrap();
    assert!(args.len() <= HEAD_CHARS);
    assert!(args.chars().all(|c| c == 'é'));
}

#[test]
fn unknown_kind_when_no_dialect_says() {
    assert_eq!(facts_of("{}").kind, SpanKind::Unknown);
    assert_eq!(
        facts_of(r#"{"inference.observation_kind":"SPAN"}"#).kind,
        SpanKind::Unknown
    );
}

#[test]
fn declared_tool_names_fast_path_agrees_with_parsing() {
    let f = facts_of(
        r#"{"openinference.span.kind":"LLM",
        "llm.tools.0.tool.json_schema":"{\"type\": \"function\", \"function\": {\"name\": \"a__b\", \"parameters\": {\"properties\": {\"name\": {\"type\": \"string\"}}}}}",
        "llm.tools.1.tool.json_schema":"{\"parameters\": {\"properties\": {\"name\": \"decoy\"}}, \"name\": \"late_name\"}",
        "llm.tools.2.tool.json_schema":"{\"description\": \"find by \\\"name\\\"\", \"name\": \"quoted\"}",
        "llm.tools.3.tool.json_schema":"{\"type\":\"function\",\"function\":{\"name\":\"compact\"}}",
        "llm.tools.4.tool.json_schema":"{\"type\":\"function\",\"function\":{\"name\":\"caf\\u00e9\"}}",
        "llm.tools.5.tool.json_schema":"{\"type\":\"function\",\"function\":{\"name\": \"spaced\"}}",
        "gen_ai.tool.definitions":"[\"bare\", {\"type\":\"function\",\"name\":\"genai_def\",\"parameters\":{\"properties\":{\"name\":{}}}}]"}"#,
    );
    assert_eq!(
        f.declared_tools,
        [
            "a__b",
            "late_name",
            "quoted",
            "compact",
            "caf\u{e9}",
            "spaced",
            "bare",
            "genai_def"
        ]
    );
}

/// The shortcut for output messages without tool calls gives what parsing them gives.
#[test]
fn genai_tool_calls_shortcut_agrees_with_parsing() {
    let lists = [
        (
            r#"[{"role":"assistant","parts":[{"type":"text","content":"done"}]}]"#,
            vec![],
        ),
        (
            r#"[{"role":"assistant","parts":[{"type":"tool_call","name":"get_weather"}]}]"#,
            vec!["get_weather"],
        ),
        // `\u0074ool_call` spells the part type with an escape.
        (
            r#"[{"role":"assistant","parts":[{"type":"\u0074ool_call","name":"spelled"}]}]"#,
            vec!["spelled"],
        ),
    ];
    for (list, expected) in lists {
        let escaped = serde_json::to_string(list).unwrap();
        let parsed: String = serde_json::from_str(&escaped).unwrap();
        for value in [
            AttrValue::RawStr(&escaped),
            AttrValue::Json(std::borrow::Cow::Borrowed(list)),
            AttrValue::Str(std::borrow::Cow::Borrowed(&parsed)),
        ] {
            assert_eq!(genai_tool_calls(&value), expected, "{list} as {value:?}");
        }
    }
}

/// Reading GenAI messages from the end gives what reading the whole list gives.
#[test]
fn last_genai_text_from_the_end_agrees_with_the_whole_list() {
    let lists = [
        r#"[{"role":"system","parts":[{"type":"text","content":"sys"}]},{"role":"user","parts":[{"type":"text","content":"q \"quoted\" {\"role\":\"fake\"}"}]}]"#,
        r#"[{"role":"user","parts":[{"type":"text","content":"first"},{"type":"text","content":"second"}]},{"role":"assistant","parts":[{"type":"tool_call","name":"t"}]}]"#,
        r#"[{"role": "user", "parts": [{"type": "text", "content": "spaced"}]}, {"role": "tool", "parts": []}]"#,
        r#"[{"role":"assistant","parts":[{"type":"tool_call","name":"t"}]}]"#,
        r#"[]"#,
        r#"[{"parts":[{"type":"text","content":"parts first"}],"role":"user"}]"#,
        r#"[{"role":"user","parts":[{"type":"text","content":"caf\u00e9 \\ back"}]}]"#,
    ];
    for list in lists {
        let raw = serde_json::to_string(list).unwrap();
        let value = AttrValue::RawStr(&raw);
        let whole =
            with_genai_messages(&value, |m| m.iter().rev().find_map(message_text)).flatten();
        assert_eq!(last_genai_text(&value), whole, "{list}");
        if let Some(found) = last_genai_text_from_the_end(&raw) {
            assert_eq!(found, whole, "{list}");
        }
    }
    let ordinary = serde_json::to_string(lists[0]).unwrap();
    assert_eq!(
        last_genai_text_from_the_end(&ordinary),
        Some(Some("q \"quoted\" {\"role\":\"fake\"}".into())),
        "the compact form is read from the end"
    );
}

#[test]
fn last_message_start_finds_what_a_reverse_search_finds() {
    let key = br#"{\"role\""#;
    for hay in [
        &br#"[{\"role\":\"a\"},{\"role\":\"b\"}]"#[..],
        br#"{{{\"role\""#,
        br#"{\"rol"#,
        br#"no braces"#,
        br#"{\"role\"{"#,
        b"",
    ] {
        let expected = memchr::memmem::rfind(hay, key);
        assert_eq!(
            last_message_start(hay),
            expected,
            "{}",
            String::from_utf8_lossy(hay)
        );
    }
}

/// Many small haystacks built from keys, near-keys and braces: the walk over braces finds
/// the same start as a reverse substring search.
#[test]
fn last_message_start_agrees_on_generated_haystacks() {
    let pieces: [&[u8]; 7] = [
        b"{",
        br#"\""#,
        br#"{\"role\""#,
        br#"{\"rol"#,
        b"role",
        b"x",
        br#"{{\"role\"{"#,
    ];
    let mut state: u64 = 0x2545_f491_4f6c_dd1d;
    let mut next = || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    for _ in 0..20_000 {
        let hay: Vec<u8> = (0..next() % 10)
            .flat_map(|_| {
                pieces[(next() % pieces.len() as u64) as usize]
                    .iter()
                    .copied()
            })
            .collect();
        assert_eq!(
            last_message_start(&hay),
            memchr::memmem::rfind(&hay, br#"{\"role\""#),
            "{}",
            String::from_utf8_lossy(&hay)
        );
    }
}

/// A `\u` escape at the attribute's own level can spell the part type too.
#[test]
fn genai_tool_calls_shortcut_sees_escapes_at_the_outer_level() {
    let raw = r#""[{\"role\":\"assistant\",\"parts\":[{\"type\":\"\u0074ool_call\",\"name\":\"outer\"}]}]""#;
    assert_eq!(genai_tool_calls(&AttrValue::RawStr(raw)), vec!["outer"]);
}

#[test]
fn a_span_naming_its_tool_is_a_tool_call_without_an_operation_name() {
    // Pydantic AI's `running tool` spans.
    let f = facts_of(
        r#"{"gen_ai.tool.name":"get_user","gen_ai.tool.call.id":"c1","tool_arguments":"{\"id\":7}","tool_response":"no such user"}"#,
    );
    assert_eq!(f.kind, SpanKind::Tool);
    assert_eq!(f.tool_name.as_deref(), Some("get_user"));
    assert_eq!(f.tool_args.as_deref(), Some(r#"{"id":7}"#));
    assert_eq!(f.tool_result.as_deref(), Some("no such user"));
    // An explicit kind still wins.
    let llm = facts_of(r#"{"openinference.span.kind":"LLM","tool.name":"x"}"#);
    assert_eq!(llm.kind, SpanKind::Llm);
}

#[test]
fn an_all_zero_parent_is_no_parent_in_the_canonical_format_too() {
    let line = r#"{"trace_id":"t","span_id":"s","parent_span_id":"0000000000000000","start_time":"2026-01-01T00:00:00Z","end_time":"2026-01-01T00:00:01Z"}"#;
    assert_eq!(parse_canonical(line).unwrap().parent_span_id, "");
    let serde = crate::span::parse_canonical_serde(line).unwrap();
    assert_eq!(serde.parent_span_id, "");
}

#[test]
fn pydantic_ai_agent_run_spans_are_agents() {
    for names in [
        r#""gen_ai.agent.name":"support""#,
        // Older releases: only `agent_name`.
        r#""agent_name":"support""#,
    ] {
        let line = format!(
            r#"{{"trace_id":"t","span_id":"s","name":"agent run","start_time":"2026-01-01T00:00:00Z","end_time":"2026-01-01T00:00:01Z","attributes":{{{names},"gen_ai.usage.input_tokens":300}}}}"#
        );
        let f = SpanFacts::extract(&parse_canonical(&line).unwrap());
        assert_eq!(f.kind, SpanKind::Agent, "{names}");
        assert_eq!(f.agent_name.as_deref(), Some("support"));
    }
    // A span that only names an agent is not one.
    let other = facts_of(r#"{"gen_ai.agent.name":"support"}"#);
    assert_eq!(other.kind, SpanKind::Unknown);
}

#[test]
fn finish_reasons_written_as_a_json_string_are_a_list() {
    let f = facts_of(r#"{"gen_ai.response.finish_reasons":"[\"content_filter\"]"}"#);
    assert_eq!(f.finish_reason.as_deref(), Some("content_filter"));
    let array = facts_of(r#"{"gen_ai.response.finish_reasons":["stop"]}"#);
    assert_eq!(array.finish_reason.as_deref(), Some("stop"));
    let plain = facts_of(r#"{"llm.finish_reason":"length"}"#);
    assert_eq!(plain.finish_reason.as_deref(), Some("length"));
    let python = facts_of(r#"{"gen_ai.response.finish_reasons":"['length']"}"#);
    assert_eq!(python.finish_reason.as_deref(), Some("length"));
    let empty = facts_of(r#"{"gen_ai.response.finish_reasons":"[]"}"#);
    assert_eq!(empty.finish_reason, None);
}

/// Reading a key's index by hand gives what `find` and `parse` give.
#[test]
fn indexed_rest_agrees_with_parsing() {
    fn parsed<'k>(key: &'k str, prefix: &str) -> Option<(usize, &'k str)> {
        let rest = key.strip_prefix(prefix)?.strip_prefix('.')?;
        let dot = rest.find('.')?;
        let n = rest[..dot].parse().ok()?;
        Some((n, &rest[dot + 1..]))
    }
    let rests = [
        "0.message.content",
        "12.tool.name",
        "+3.x",
        "03.x",
        "3",
        "3.",
        ".x",
        "",
        "x.y",
        "1a.b",
        "1.2.3",
        "-1.x",
        "1 .x",
        "18446744073709551615.x",
        "18446744073709551616.x",
        "99999999999999999999999.x",
        "\u{661}.x",
    ];
    for rest in rests {
        for key in [format!("llm.tools.{rest}"), format!("llm.tools{rest}")] {
            assert_eq!(
                indexed_rest(&key, "llm.tools"),
                parsed(&key, "llm.tools"),
                "{key}"
            );
        }
    }
}

#[test]
fn printable_escapes_every_control_character_but_the_line_break() {
    assert!(matches!(
        printable("plain text\nnext line, é"),
        Cow::Borrowed(_)
    ));
    assert_eq!(
        printable("evil\u{1b}]0;pwned\u{7}\u{1b}[2J\ttab\rcr\u{85}c1\u{7f}del\nok"),
        "evil\\u001b]0;pwned\\u0007\\u001b[2J\\u0009tab\\u000dcr\\u0085c1\\u007fdel\nok"
    );
    // Bidirectional overrides and isolates reorder what follows them on screen.
    assert_eq!(
        printable("send_\u{202e}yenom\u{202c} and \u{2067}x\u{2069}, ok \u{200d}"),
        "send_\\u202eyenom\\u202c and \\u2067x\\u2069, ok \u{200d}"
    );
}

#[test]
fn clip_counts_characters_and_the_ellipsis_is_one_of_them() {
    assert_eq!(clip("héllo", 10), "héllo");
    assert_eq!(clip("héllo", 5), "héllo");
    assert_eq!(clip("héllo", 4), "hél…");
    assert_eq!(clip("検索検索", 2), "検…");
    assert_eq!(clip("abc", 0), "…");
    assert_eq!(clip("", 0), "");
}

#[test]
fn traceloop_spans_name_their_kind_and_entity() {
    let tool = facts_with_status(
        r#"{"traceloop.span.kind":"tool","traceloop.entity.name":"search_flights","traceloop.entity.input":"{\"args\":[],\"kwargs\":{\"origin\":\"SFO\"}}","traceloop.entity.output":"[]"}"#,
        "STATUS_CODE_ERROR",
        "search_flights() missing 1 required positional argument: 'destination'",
    );
    assert_eq!(tool.kind, SpanKind::Tool);
    assert_eq!(tool.tool_name.as_deref(), Some("search_flights"));
    assert_eq!(
        tool.tool_args.as_deref(),
        Some(r#"{"args":[],"kwargs":{"origin":"SFO"}}"#)
    );
    assert_eq!(tool.tool_result.as_deref(), Some("[]"));
    let agent = facts_of(
        r#"{"traceloop.span.kind":"agent","traceloop.entity.name":"booker","traceloop.entity.output":"Booked."}"#,
    );
    assert_eq!(agent.kind, SpanKind::Agent);
    assert_eq!(agent.agent_name.as_deref(), Some("booker"));
    assert_eq!(agent.output_head.as_deref(), Some("Booked."));
    assert_eq!(
        facts_of(r#"{"traceloop.span.kind":"workflow"}"#).kind,
        SpanKind::Chain
    );
}

#[test]
fn a_traceback_status_is_read_for_its_exception() {
    let frames = (0..13)
        .map(|i| {
            format!("  File \\\"/venv/lib/m{i}.py\\\", line 5{i}3, in f{i}\\n    call_{i}()\\n")
        })
        .collect::<String>();
    let f = facts_with_status(
        r#"{"openinference.span.kind":"LLM"}"#,
        "STATUS_CODE_ERROR",
        &format!(
            "Traceback (most recent call last):\\n{frames}anthropic.RateLimitError: Error code: 429 - rate limited"
        ),
    );
    assert_eq!(
        f.error_message.as_deref(),
        Some("anthropic.RateLimitError: Error code: 429 - rate limited")
    );
}
