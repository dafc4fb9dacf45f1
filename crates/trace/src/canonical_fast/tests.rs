//! Differential tests: the fast reader must agree with the serde reader on every line it
//! accepts, and must accept the ordinary lines real exporters write.

use crate::span::parse_canonical_serde;

/// The reader as `parse_line` calls it for a line nobody has checked yet.
fn parse(line: &str) -> Option<crate::RawSpan<'_>> {
    super::parse(line, false)
}

const BASE: &str = r#"{"trace_id":"t-aaaa","span_id":"s-1","parent_span_id":null,"trace_state":"","name":"chat \"quoted\" caf\u00e9","kind":"SPAN_KIND_CLIENT","start_time":"2026-04-23T05:32:00.000000000Z","end_time":"2026-04-23T05:32:01.500000000Z","status":{"code":"STATUS_CODE_ERROR","message":"boom"},"resource":{"attributes":{"service.name":"agent-a","n":3}},"scope":{"name":"@test/scope","version":"0.0.1"},"extra":[1,{"x":null}],"attributes":{"openinference.span.kind":"LLM","llm.token_count.prompt":12,"cost":0.5,"flag":true,"none":null,"list":[1,2],"obj":{"a":"b"},"esc\u0041key":"x","llm.tools.0.tool.json_schema":"{\"type\":\"function\",\"function\":{\"name\":\"get\"}}","big":1e400,"neg":-0.25E-3}}"#;

/// Whatever the fast reader accepts, the serde reader accepts with an equal span.
fn agrees(line: &str) -> bool {
    match parse(line) {
        None => false,
        Some(fast) => {
            let slow = parse_canonical_serde(line).unwrap_or_else(|e| {
                panic!("fast reader accepted a line serde rejects ({e}): {line}")
            });
            assert_eq!(fast, slow, "readers disagree on {line}");
            true
        }
    }
}

#[test]
fn reads_an_ordinary_line_exactly_as_serde_does() {
    assert!(agrees(BASE));
    let span = parse(BASE).unwrap();
    assert_eq!(span.name, "chat \"quoted\" café");
    assert_eq!(span.attributes.len(), 11);
    assert_eq!(
        span.attributes.get("escAkey").unwrap().as_text().unwrap(),
        "x"
    );
    assert_eq!(span.resource.get("n").unwrap().as_i64(), Some(3));
}

#[test]
fn spacing_and_missing_optional_fields_agree() {
    for line in [
        r#"{ "trace_id" : "t" , "span_id" : "s" , "start_time" : "2026-04-23T05:32:00Z" , "end_time" : "2026-04-23T05:32:00Z" }  "#,
        r#"{"trace_id":"t","span_id":"s","start_time":"2026-04-23T05:32:00Z","end_time":"2026-04-23T05:32:00Z","status":null,"resource":null,"scope":null,"attributes":null}"#,
        r#"{"trace_id":"t","span_id":"s","start_time":"2026-04-23T05:32:00Z","end_time":"2026-04-23T05:32:00Z","status":{"code":2},"resource":{"attributes":null,"dropped":0},"scope":{}}"#,
        r#"{"trace_id":"t","span_id":"s","start_time":"2026-04-23T05:32:00Z","end_time":"2026-04-23T05:32:00Z","status":{"code":null,"message":null}}"#,
    ] {
        assert!(agrees(line), "fast reader declined {line}");
    }
}

#[test]
fn declines_what_only_serde_can_explain() {
    for line in [
        BASE.replace(r#""span_id":"s-1","#, r#""span_id":"s-1","span_id":"s-2","#),
        BASE.replace(r#""trace_id":"t-aaaa""#, r#""trace_id":17"#),
        BASE.replace("STATUS_CODE_ERROR", "BROKEN"),
        BASE.replace("2026-04-23T05:32:00.000000000Z", "soon"),
        BASE.replace(r#""t-aaaa""#, r#""t-\ud800""#),
        BASE.replace(r#""t-aaaa""#, r#""""#),
        BASE.replace(r#""status":{"#, r#""status":{"code":1,"#),
        BASE.replace(r#""extra":"#, "\"extra\":\t"),
        format!("{BASE} trailing"),
        format!("[{BASE}]"),
    ] {
        assert!(parse(&line).is_none(), "fast reader accepted {line}");
    }
}

/// Every single-byte deletion, and a set of replacements at every position, of the base
/// line: the fast reader may decline any of them, but must never accept one that serde
/// rejects or reads differently.
#[test]
fn mutations_never_make_the_readers_disagree() {
    let bytes = BASE.as_bytes();
    let mut accepted = 0;
    let mut tried = 0;
    for at in 0..bytes.len() {
        let mut variants: Vec<Vec<u8>> = Vec::new();
        let mut deleted = bytes.to_vec();
        deleted.remove(at);
        variants.push(deleted);
        for b in [
            b'"', b'\\', b'{', b'}', b'[', b']', b',', b':', b' ', b'0', b'-', b'.', b'e', b'u',
            b'n', b'x', 0x1f,
        ] {
            let mut replaced = bytes.to_vec();
            replaced[at] = b;
            variants.push(replaced);
            let mut inserted = bytes.to_vec();
            inserted.insert(at, b);
            variants.push(inserted);
        }
        for v in variants {
            if let Ok(line) = std::str::from_utf8(&v) {
                tried += 1;
                if agrees(line) {
                    accepted += 1;
                }
            }
        }
    }
    // Many mutations land inside strings and stay valid; the fast path must take them.
    assert!(accepted > tried / 10, "accepted {accepted} of {tried}");
}

/// The bundled example data (written by the generator) goes through the fast reader, line
/// for line, with the same result as serde.
#[test]
fn the_bundled_example_data_takes_the_fast_path() {
    let path = halo_testkit::workspace_path("examples/data/agent-traces.jsonl");
    let data = std::fs::read_to_string(path).expect("the example data is in the repository");
    let mut lines = 0;
    for line in data.lines().filter(|l| !l.trim().is_empty()) {
        assert!(agrees(line), "fast reader declined {line}");
        lines += 1;
    }
    assert!(lines > 1000, "{lines} lines");
}

/// The public fixtures, when this checkout sits beside them.
#[test]
fn the_shared_fixtures_take_the_fast_path() {
    let dir = halo_testkit::workspace_path("../shared/data/halo-fixtures");
    let Ok(entries) = std::fs::read_dir(&dir) else {
        eprintln!(
            "skipped: {} is absent (it is not part of a user's clone)",
            dir.display()
        );
        return;
    };
    for entry in entries.flatten() {
        let data = std::fs::read_to_string(entry.path()).expect("fixtures are UTF-8");
        for line in data.lines().filter(|l| !l.trim().is_empty()) {
            assert!(agrees(line), "fast reader declined a line of {entry:?}");
        }
    }
}

#[test]
fn recalled_resources_read_as_serde_reads_them() {
    // More resources than the memo keeps, in an order that recalls some and evicts
    // others; texts that start alike; escaped keys (never kept) and escaped values.
    let resources = [
        r#"{"attributes":{"service.name":"a","service.version":"1.0","n":3,"f":0.5,"b":true,"z":null}}"#,
        r#"{"attributes":{"service.name":"a","service.version":"1.0","n":3,"f":0.5,"b":true,"z":null,"more":1}}"#,
        r#"{"attributes":{"service.name":"ab"}}"#,
        r#"{"attributes":{"service.name":"a\"b","list":[1,{"k":"v"}],"obj":{"x":"y"}}}"#,
        r#"{"attributes":{"serv\u0069ce.name":"escaped key"}}"#,
        r#"{"dropped":0,"attributes":{"service.name":"c"}}"#,
        r#"{"attributes":null}"#,
        r#"{ "attributes" : { "service.name" : "spaced" } }"#,
        r#"{"attributes":{}}"#,
        r#"{"attributes":{"service.name":"d"}}"#,
        r#"{"attributes":{"service.name":"e"}}"#,
    ];
    let mut rng = crate::test_rng::XorShift(0x2545_F491_4F6C_DD1D);
    for i in 0..500 {
        let resource = resources[(rng.next() % resources.len() as u64) as usize];
        let line = format!(
            r#"{{"trace_id":"t{i}","span_id":"s","start_time":"2026-04-23T05:32:00Z","end_time":"2026-04-23T05:32:00Z","resource": {resource},"attributes":{{"k":"v"}}}}"#
        );
        assert!(agrees(&line), "fast reader declined {line}");
    }
    // A recalled resource must not hide what follows it.
    let broken = format!(
        r#"{{"trace_id":"t","span_id":"s","start_time":"2026-04-23T05:32:00Z","end_time":"2026-04-23T05:32:00Z","resource":{},"attributes":{{"k":}}}}"#,
        resources[0]
    );
    assert!(parse(&broken).is_none());
}
