//! What a failed tool call's error says, when the runtime's own message does not.
//!
//! Some runtimes (the OpenAI Agents SDK, for one) set the same status message on every
//! failed tool span, "Error running tool (non-fatal)", and put the real error in the
//! tool's result. Grouping failures by that message would make one group of every tool
//! error; the result says what went wrong.

use std::borrow::Cow;

/// Whether an error message says nothing but that a tool failed ("Error running tool
/// (non-fatal)", "Tool execution failed", "error"): then the tool's result says why.
pub fn is_generic_tool_error(message: &str) -> bool {
    let lower = message.trim().to_ascii_lowercase();
    let words: String = lower
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { ' ' })
        .collect();
    let words: Vec<&str> = words.split_whitespace().collect();
    let said = words.join(" ");
    let said = said
        .strip_suffix(" non fatal")
        .or_else(|| said.strip_suffix(" fatal"))
        .unwrap_or(&said);
    // A colon means a reason follows ("Error running tool: file not found").
    !lower.contains(':')
        && matches!(
            said,
            "error"
                | "failed"
                | "failure"
                | "exception"
                | "tool error"
                | "tool failed"
                | "tool call failed"
                | "tool execution failed"
                | "tool execution error"
                | "function call failed"
                | "error running tool"
                | "error executing tool"
                | "error calling tool"
                | "error invoking tool"
                | "error running function"
                | "error executing function"
                | "an error occurred while running the tool"
                | "an error occurred while executing the tool"
        )
}

/// The reason in a message that starts by saying only that a tool failed, then gives the
/// details: `Error running tool (non-fatal): {'tool_name': 'x', 'error': 'City 12 not
/// found'}` (how the OpenInference processor of the OpenAI Agents SDK writes it) gives
/// `City 12 not found`. `None` when the message is not of that form.
pub fn reason_after_generic(message: &str) -> Option<std::borrow::Cow<'_, str>> {
    let (head, rest) = message.split_once(':')?;
    if !is_generic_tool_error(head) {
        return None;
    }
    let rest = rest.trim();
    if rest.is_empty() {
        return None;
    }
    Some(message_in_result(rest))
}

/// The fields of a JSON result that hold an error's message, in the order they are read.
const MESSAGE_FIELDS: [&str; 5] = ["error", "message", "detail", "error_message", "msg"];

/// The message in a failed tool's result: the `error`/`message`/`detail` field of a JSON
/// object (or the `message` inside an `error` object), the first text of an MCP `content`
/// list, else the result as it is. A result cut short (a head) is no JSON any more; its
/// first message field may still be whole, and is read then.
pub fn message_in_result(result: &str) -> Cow<'_, str> {
    if let Ok(serde_json::Value::Object(o)) = serde_json::from_str::<serde_json::Value>(result) {
        for field in MESSAGE_FIELDS {
            match o.get(field) {
                Some(serde_json::Value::String(m)) if !m.is_empty() => {
                    return Cow::Owned(m.clone())
                }
                Some(serde_json::Value::Object(inner)) => {
                    if let Some(serde_json::Value::String(m)) = inner.get("message") {
                        return Cow::Owned(m.clone());
                    }
                }
                _ => {}
            }
        }
        let mcp_text = o
            .get("content")
            .and_then(|c| c.as_array())
            .and_then(|c| c.iter().find_map(|part| part.get("text")?.as_str()));
        return match mcp_text {
            Some(text) => Cow::Owned(text.to_string()),
            None => Cow::Borrowed(result),
        };
    }
    if result.trim_start().starts_with('{') {
        if let Some(m) = first_string_field(result) {
            return Cow::Owned(m);
        }
    }
    Cow::Borrowed(without_preamble(result))
}

/// Text after the sentences that say nothing ("An error occurred while running the tool.
/// Please try again.") and an `Error:` label: what the runtime wrapped around the error.
fn without_preamble(text: &str) -> &str {
    let mut rest = text.trim_start();
    while let Some(end) = rest.find(". ") {
        let sentence = &rest[..end];
        if !is_generic_tool_error(sentence) && !sentence.eq_ignore_ascii_case("please try again") {
            break;
        }
        rest = rest[end + 2..].trim_start();
    }
    match rest.get(..6) {
        Some(label) if label.eq_ignore_ascii_case("error:") => rest[6..].trim_start(),
        _ => rest,
    }
}

/// The first `"FIELD": "string"` of [`MESSAGE_FIELDS`] (or `"text"`) in JSON text that may
/// be cut short (or a Python dict's `'FIELD': 'string'`, whose values are quoted with `"`
/// when they hold a `'`), decoded. Every place a field's name appears is tried: the name
/// may also be some other key's value (`{'type': 'error', 'error': 'boom'}`).
fn first_string_field(json: &str) -> Option<String> {
    let bytes = json.as_bytes();
    let mut best: Option<(usize, String)> = None;
    for field in MESSAGE_FIELDS.iter().chain(&["text"]) {
        for key_quote in ['"', '\''] {
            let key = format!("{key_quote}{field}{key_quote}");
            for at in memchr::memmem::find_iter(bytes, key.as_bytes()) {
                if best.as_ref().is_some_and(|(b, _)| *b < at) {
                    break;
                }
                if let Some(text) = string_value_after_key(&json[at + key.len()..], key_quote) {
                    best = Some((at, text));
                    break;
                }
            }
        }
    }
    best.map(|(_, text)| text)
}

/// The string after `: ` in `rest` (the text after a key), quoted with `"` or, in a
/// Python repr (`key_quote` is `'`), with either quote.
fn string_value_after_key(rest: &str, key_quote: char) -> Option<String> {
    let rest = rest.trim_start().strip_prefix(':')?.trim_start();
    let quote = rest
        .chars()
        .next()
        .filter(|&q| q == '"' || (key_quote == '\'' && q == '\''))?;
    // The string's end: the first quote not escaped. Quotes and backslashes are ASCII,
    // and bytes of multi-byte characters never equal them.
    let body = &rest.as_bytes()[1..];
    let mut i = 0;
    let end = loop {
        match body.get(i) {
            None => return None,
            Some(b'\\') => i += 2,
            Some(&b) if b == quote as u8 => break i,
            Some(_) => i += 1,
        }
    };
    if key_quote == '"' {
        serde_json::from_str::<String>(&rest[..end + 2]).ok()
    } else {
        // A Python repr: `\'`, `\"` and `\\` are its only escapes that matter here.
        Some(
            rest[1..end + 1]
                .replace("\\'", "'")
                .replace("\\\"", "\"")
                .replace("\\\\", "\\"),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generic_messages() {
        for generic in [
            "Error running tool (non-fatal)",
            "Tool execution failed",
            "error",
            "Tool call failed.",
        ] {
            assert!(is_generic_tool_error(generic), "{generic}");
        }
        for specific in [
            "Error running tool: file not found",
            "Calendar event 53 not found",
            "TimeoutError",
        ] {
            assert!(!is_generic_tool_error(specific), "{specific}");
        }
    }

    #[test]
    fn reasons_after_a_generic_head() {
        assert_eq!(
            reason_after_generic(
                "Error running tool (non-fatal): {'tool_name': 'get_weather', 'error': 'City 12 not found'}"
            )
            .as_deref(),
            Some("City 12 not found")
        );
        assert_eq!(
            reason_after_generic("Error running tool: file not found").as_deref(),
            Some("file not found")
        );
        assert_eq!(
            reason_after_generic(
                r#"Error running tool (non-fatal): {'tool_name': 'get_weather', 'error': "City 'Lyon' can't be found"}"#
            )
            .as_deref(),
            Some("City 'Lyon' can't be found")
        );
        assert_eq!(
            reason_after_generic("Error running tool: {'type': 'error', 'error': 'boom'}")
                .as_deref(),
            Some("boom")
        );
        assert_eq!(reason_after_generic("Calendar: event 53 not found"), None);
        assert_eq!(reason_after_generic("Error running tool (non-fatal)"), None);
    }

    #[test]
    fn messages_in_results() {
        assert_eq!(
            message_in_result(r#"{"error": "Invalid date"}"#),
            "Invalid date"
        );
        assert_eq!(
            message_in_result(r#"{"error": {"code": 404, "message": "User 17 not found"}}"#),
            "User 17 not found"
        );
        assert_eq!(
            message_in_result(
                r#"{"content":[{"type":"text","text":"Repository not found"}],"isError":true}"#
            ),
            "Repository not found"
        );
        assert_eq!(
            message_in_result(
                r#"{"status": 500, "detail": "Upstream \"db\" down", "trace": [1, 2"#
            ),
            r#"Upstream "db" down"#
        );
        assert_eq!(
            message_in_result(r#"{"message": "cut short"#),
            r#"{"message": "cut short"#
        );
        assert_eq!(
            message_in_result("[Errno 2] No such file"),
            "[Errno 2] No such file"
        );
        assert_eq!(
            message_in_result(
                "An error occurred while running the tool. Please try again. Error: [Errno 2] No such file or directory: 'tools'"
            ),
            "[Errno 2] No such file or directory: 'tools'"
        );
        assert_eq!(
            message_in_result("Done. Error: none"),
            "Done. Error: none",
            "only sentences that say nothing are dropped"
        );
    }
}
