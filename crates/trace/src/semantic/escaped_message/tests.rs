use super::*;
use crate::attr::AttrValue;
use crate::semantic::{decoded_message_text, decoded_tool_call_names, head};

/// The escaped form of a message as a GenAI list attribute holds it (the list's quotes
/// left out).
fn escape(message: &str) -> String {
    let quoted = serde_json::to_string(message).unwrap();
    quoted[1..quoted.len() - 1].to_string()
}

/// Compares the reader with serde on `segment` for every cut up to past its length;
/// whether the reader answered itself.
fn agrees(segment: &str) -> bool {
    let slow = decoded_message_text(segment);
    let mut answered = false;
    for max in (0..segment.len() + 3).chain([HEAD]) {
        let Some(fast) = text_head(segment, max) else {
            continue;
        };
        answered = true;
        let slow = slow
            .as_ref()
            .unwrap_or_else(|| panic!("answered where serde fails: {segment}"));
        match (&fast, slow) {
            (Some(fast), Some(slow)) => {
                assert!(slow.starts_with(fast.as_str()), "{segment} at {max}");
                assert!(fast.len() >= max || fast == slow, "{segment} at {max}");
                assert_eq!(head(fast, max), head(slow, max), "{segment} at {max}");
            }
            (None, None) => {}
            _ => panic!("{segment} at {max}: {fast:?} against {slow:?}"),
        }
    }
    answered
}

const HEAD: usize = crate::semantic::HEAD_CHARS;

#[test]
fn ordinary_messages_are_read_without_serde_and_agree() {
    let messages = [
        r#"{"role":"user","parts":[{"type":"text","content":"find songs"}]}"#,
        r#"{"role": "user", "parts": [{"type": "text", "content": "spaced"}]}"#,
        r#"{"role":"assistant","parts":[{"type":"text","content":"a"},{"type":"tool_call","id":"c1","name":"t","arguments":{"q":[1,-2.5e+3,0,true,false,null,{}],"s":"x"}},{"type":"text","content":"b"}],"finish_reason":"stop"}"#,
        r#"{"role":"tool","parts":[{"type":"tool_call_response","id":"c1","response":{"ok":"{\"nested\":\"json\"}"}}]}"#,
        r#"{"role":"tool","parts":[]}"#,
        r#"{"role":"user"}"#,
        r#"{"role":"user","parts":[{"type":"text","content":null},{"type":"text"},{"type":"text","content":5},{"type":"text","content":{"a":"b"}},{"type":null,"content":"no type"},{"content":"untyped","name":null}]}"#,
        r#"{"role":"user","parts":[{"type":"text","content":"q \"quoted\" {\"role\":\"fake\"} back\\slash \/ \b\f\n\r\t end"}]}"#,
        r#"{"role":"user","parts":[{"type":"text","content":"caf\u00e9 \u00e9\u00e9 multibyte at the cut \ud83d\ude00\ud83d\ude00"}]}"#,
        r#"{"role":"user","parts":[{"type":"text","content":""},{"type":"text","content":""}]}"#,
        r#"{"role":"user","parts":[{"type":"text","content":"x","extra":[[[]]],"name":"n"}],"role":"dup roles are ignored"}"#,
        r#"{"role":"user","parts":[{"type":"text","content":"trailing spaces"}]}   "#,
        r#"{"role":"user","parts":[{"type":"TEXT","content":"not text"},{"type":"texts","content":"nor this"}]}"#,
        r#"{"role":"user","parts":[{"type":"text","content":"n"}],"n":[-0,0.5,1E5,1e-3,-12,123456789012345678901234567890]}"#,
    ];
    for message in messages {
        // `\u` escapes of non-ASCII text are written raw by serde; the list is in raw text.
        let decoded: serde_json::Value = serde_json::from_str(message).unwrap();
        let compact = serde_json::to_string(&decoded).unwrap();
        for form in [message.to_string(), compact] {
            let segment = escape(&form);
            if form.contains("\\u") {
                agrees(&segment);
            } else {
                assert!(agrees(&segment), "read without serde: {form}");
            }
        }
    }
}

#[test]
fn long_texts_keep_a_head_cut_on_a_character_boundary() {
    for unit in ["a", "\u{e9}", "\u{20ac}", "\u{1F600}", "\"", "\\", "\n"] {
        for lead in 0..5 {
            let text = format!("{}{}", "x".repeat(lead), unit.repeat(300));
            let message = serde_json::json!({"role": "user", "parts": [
                {"type": "text", "content": text},
                {"type": "text", "content": "second"},
            ]});
            let segment = escape(&message.to_string());
            assert!(agrees(&segment), "{unit} after {lead}");
        }
    }
    let short = serde_json::json!({"role": "user", "parts": [
        {"type": "text", "content": "x".repeat(200)},
        {"type": "text", "content": "\u{e9}".repeat(100)},
    ]});
    assert!(agrees(&escape(&short.to_string())));
}

/// Messages serde fails on, or that the reader leaves to serde: never answered wrongly.
#[test]
fn what_serde_rejects_is_never_answered() {
    let invalid_inner = [
        r#"{"role":"user","parts":[{"type":"text","content":"x"},]}"#,
        r#"{"role":"user","parts":[{"type":"text","content":"x"}]"#,
        r#"{"role":"user","parts":[{"type":"text","content":"x"}]}}"#,
        r#"{"role":"user","parts":[{"type":"text","content":"x"}]} x"#,
        r#"{"role":"user","parts":null}"#,
        r#"{"role":"user","parts":{}}"#,
        r#"{"role":"user","parts":[],"parts":[]}"#,
        r#"{"role":"user","parts":[{"type":"text","type":"text","content":"x"}]}"#,
        r#"{"role":"user","parts":[{"type":"text","content":"x","content":"y"}]}"#,
        r#"{"role":"user","parts":[{"type":"text","content":"x","name":"a","name":"b"}]}"#,
        r#"{"role":"user","parts":[{"type":5,"content":"x"}]}"#,
        r#"{"role":"user","parts":[{"type":"text","content":"x","name":7}]}"#,
        r#"{"role":"user","parts":[{"type":"text","content":"x"}],"n":01}"#,
        r#"{"role":"user","parts":[{"type":"text","content":"x"}],"n":-}"#,
        r#"{"role":"user","parts":[{"type":"text","content":"x"}],"n":1.}"#,
        r#"{"role":"user","parts":[{"type":"text","content":"x"}],"n":1e}"#,
        r#"{"role":"user","parts":[{"type":"text","content":"x"}],"n":+1}"#,
        r#"{"role":"user","parts":[{"type":"text","content":"x"}],"n":tru}"#,
        r#"{"role":"user","parts":[{"type":"text","content":"x"}],"n":nul}"#,
        r#"{"role":"user","parts":[{"type":"text","content":"x"}],"n":truex}"#,
        r#"{"role":"user","parts":[{"type":"text","content":"bad \x escape"}]}"#,
        r#"{"role":"user","parts":[{"type":"text","content":"bad \u12 hex"}]}"#,
        "{\"role\":\"user\",\"parts\":[{\"type\":\"text\",\"content\":\"raw\nline break\"}]}",
        "{\"role\":\"user\",\"parts\":[{\"type\":\"text\",\"content\":\"raw\ttab\"}]}",
        r#"{"role":"user","parts":[{"type":"text","content":"unterminated}]}"#,
        r#"{"role":"user","parts":[{"type":"text","content":"x"}],"k":}"#,
        r#"{"role":"user","parts":[{"type":"text","content":"x"}],"k"}"#,
        r#"{"role":"user","parts":[{"type":"text","content":"x"}],}"#,
        r#"{"role":"user","parts":[{"type":"text","content":"x"}]["#,
        r#"{"role":"user",,"parts":[{"type":"text","content":"x"}]}"#,
        r#"{"role":"user","parts":[{"type":"text","content":"x"} {"type":"text"}]}"#,
        "{\"role\":\"user\",\"parts\":[{\"type\":\"text\",\"content\":\"x\"}],\"d\":\"\u{1}\"}",
    ];
    for message in invalid_inner {
        assert!(
            decoded_message_text(&escape(message)).is_none(),
            "{message}"
        );
        assert!(!agrees(&escape(message)), "{message}");
    }
    let left_to_serde = [
        // Valid, but outside what the reader knows.
        // (A text that serde cannot decode is skipped, so this one has no text.)
        r#"{"role":"user","parts":[{"type":"text","content":"lone \ud800 surrogate"}]}"#,
        "{\"role\":\"user\",\n\"parts\":[{\"type\":\"text\",\"content\":\"line break between\"}]}",
        "{\"role\":\"user\",\"parts\":[{\"type\":\"text\",\"content\":\"x\"}]}\n",
        "{\"role\":\"user\",\"parts\":[{\"type\":\"text\",\"content\":\"x\"}]}\t",
        r#"{"role":"user","pa\u0072ts":[{"type":"text","content":"key with escapes"}]}"#,
        r#"{"role":"user","parts":[{"t\u0079pe":"text","content":"key with escapes"}]}"#,
        r#"{"role":"user","parts":[{"type":"te\u0078t","content":"type with escapes"}]}"#,
        r#"{"role":"user","parts":[{"type":"te\/xt","content":"type with escapes"}]}"#,
        r#"{"role":"user","parts":[["text","as a sequence",null]]}"#,
        r#"[[{"type":"text","content":"message as a sequence"}]]"#,
    ];
    for message in left_to_serde {
        assert!(
            decoded_message_text(&escape(message)).is_some(),
            "{message}"
        );
        assert!(!agrees(&escape(message)), "{message}");
    }
    let deep = format!(
        r#"{{"role":"user","parts":[{{"type":"text","content":"x"}}],"d":{}{}}}"#,
        "[".repeat(100),
        "]".repeat(100)
    );
    assert!(decoded_message_text(&escape(&deep)).is_some());
    assert!(!agrees(&escape(&deep)));
    let not_too_deep = deep.replace(&"[".repeat(100), &"[".repeat(40));
    let not_too_deep = not_too_deep.replace(&"]".repeat(100), &"]".repeat(40));
    assert!(agrees(&escape(&not_too_deep)));
}

/// Escaped text that is not a valid JSON string at the outer level.
#[test]
fn invalid_outer_strings_are_never_answered() {
    let ordinary = escape(r#"{"role":"user","parts":[{"type":"text","content":"say hi"}]}"#);
    let broken = [
        ordinary.replace("say hi", "say \"hi"),
        ordinary.replace("say hi", "say \\x hi"),
        ordinary.replace("say hi", "say \\u00e9"),
        ordinary.replace("say hi", "say \\ud800 hi"),
        ordinary.replace("say hi", "say \u{1} hi"),
        ordinary.replace("say hi", "say \\\\u00e9"),
        ordinary.replace("say hi", "say \\\\\\u00e9"),
        ordinary.replace("say hi", "say \\\\\\x"),
        format!("{ordinary}\\"),
        format!("{ordinary} \\n"),
        ordinary.replace("\\\"role", "\\u0022role"),
        ordinary[..ordinary.len() - 1].to_string(),
        ordinary.replace("\\\"content\\\"", "\\\"content\""),
    ];
    for segment in &broken {
        assert!(!agrees(segment), "{segment}");
    }
}

/// Messages built from pieces, valid and not, with a fixed pseudo-random sequence.
#[test]
fn generated_messages_agree_with_serde() {
    let values = [
        r#""t""#,
        r#""a \"q\" \\ \/ \n""#,
        "null",
        "1",
        "-2.5e3",
        "[]",
        "{}",
        r#"{"x":[1,{"y":null}]}"#,
        "tru",
        "01",
        r#""\u00e9""#,
        "[1,]",
        r#""é€😀""#,
    ];
    let keys = [
        r#""type""#,
        r#""content""#,
        r#""name""#,
        r#""id""#,
        r#""parts""#,
    ];
    let kinds = [r#""text""#, r#""tool_call""#, "null", "3"];
    let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = |n: usize| {
        seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (seed >> 33) as usize % n
    };
    let mut answered = 0;
    for _ in 0..3000 {
        let mut parts = Vec::new();
        for _ in 0..next(4) {
            let mut members = Vec::new();
            for _ in 0..next(4) {
                let key = keys[next(keys.len())];
                let value = if key == r#""type""# && next(3) > 0 {
                    kinds[next(kinds.len())].to_string()
                } else if key == r#""content""# && next(2) > 0 {
                    format!("\"{}\"", "word \\\"é\\\" ".repeat(next(40)))
                } else {
                    values[next(values.len())].to_string()
                };
                members.push(format!("{key}:{value}"));
            }
            parts.push(format!("{{{}}}", members.join(",")));
        }
        let message = format!(r#"{{"role":"user","parts":[{}]}}"#, parts.join(","));
        let segment = escape(&message);
        for max in [0, 1, 7, HEAD] {
            if let Some(fast) = text_head(&segment, max) {
                answered += 1;
                let slow = decoded_message_text(&segment)
                    .unwrap_or_else(|| panic!("answered where serde fails: {message}"));
                assert_eq!(
                    fast.as_deref().map(|t| head(t, max)),
                    slow.as_deref().map(|t| head(t, max)),
                    "{message} at {max}"
                );
            }
        }
    }
    assert!(
        answered > 1000,
        "most generated messages are read: {answered}"
    );
}

/// Tool call names read from the escaped list; `None` when left to serde, else what
/// serde reads (and serde must read the list).
fn names_agree(list: &str) -> Option<Vec<String>> {
    let raw = serde_json::to_string(list).unwrap();
    let fast = tool_call_names(&raw[1..raw.len() - 1])?;
    let decoded: Result<Vec<serde_json::Value>, _> = serde_json::from_str(list);
    assert!(decoded.is_ok(), "answered where serde fails: {list}");
    assert_eq!(
        fast,
        decoded_tool_call_names(&AttrValue::RawStr(&raw)),
        "{list}"
    );
    Some(fast)
}

#[test]
fn tool_call_names_agree_with_serde() {
    let read = [
        (
            r#"[{"role":"assistant","parts":[{"type":"tool_call","id":"1","name":"get_weather","arguments":{"city":"Paris \"x\""}}]}]"#,
            vec!["get_weather"],
        ),
        (
            r#" [ {"role": "assistant", "parts": [{"type": "text", "content": "a"}, {"type": "tool_call", "name": "one"}, {"type": "tool_call", "name": null}, {"type": "tool_call"}]}, {"role": "assistant", "parts": [{"name": "n\"q\\b\/", "type": "tool_call"}]} ] "#,
            vec!["one", "n\"q\\b/"],
        ),
        (r#"[]"#, vec![]),
        (r#"[{"role":"user"}]"#, vec![]),
        (
            r#"[{"role":"assistant","parts":[{"type":"tool_calls","name":"not one"},{"type":"text","name":"nor this"}]}]"#,
            vec![],
        ),
    ];
    for (list, expected) in read {
        let expected: Vec<String> = expected.into_iter().map(String::from).collect();
        assert_eq!(names_agree(list), Some(expected), "{list}");
    }
    let left_to_serde = [
        r#"[{"role":"assistant","parts":[{"type":"tool_call","name":"caf\u00e9"}]}]"#,
        r#"[{"role":"assistant","parts":[{"type":"\u0074ool_call","name":"spelled"}]}]"#,
        r#"[{"role":"assistant","parts":[{"type":"tool_call","name":"x"}]},]"#,
        r#"[{"role":"assistant","parts":[{"type":"tool_call","name":"x"}]}"#,
        r#"[{"role":"assistant","parts":[{"type":"tool_call","name":"x","name":"y"}]}]"#,
        r#"[{"role":"assistant","parts":[{"type":"tool_call","name":5}]}]"#,
        r#"[{"role":"assistant","parts":[{"type":"tool_call","name":"x"}]}] x"#,
        r#"[{"role":"assistant","parts":[{"type":"tool_call","name":"x"}]}]]"#,
        r#"[[{"type":"tool_call","name":"as a sequence"}]]"#,
        r#"{"role":"assistant","parts":[{"type":"tool_call","name":"not a list"}]}"#,
        "[{\"role\":\"assistant\",\n\"parts\":[{\"type\":\"tool_call\",\"name\":\"x\"}]}]",
        r#""[]""#,
        "",
    ];
    for list in left_to_serde {
        assert_eq!(names_agree(list), None, "{list}");
    }
    // Not a valid outer string: left to serde, which keeps such a value as written.
    for inner in [r#"[{\"role\":\"a\"}]\"#, r#"[\u005d"#, r#"["]"#, "[\u{1}]"] {
        assert_eq!(tool_call_names(inner), None, "{inner}");
    }
}
