//! Error message templates: the same failure with different values reads the same.
//!
//! "User 17 not found" and "User 4 not found" are one failure mode. [`error_template`]
//! masks the parts of a message that vary between occurrences (numbers, hex ids and uuids,
//! quoted values, paths, urls, emails) so messages can be grouped and counted.
//!
//! A provider's error body in the message (a Python dict repr or JSON, as SDKs print it:
//! `Error code: 400 - {'error': {'message': ..., 'code': ...}}`) is replaced by what tells
//! its failures apart, the error's code (else its type) and its masked message: masked
//! whole, every body would read `{<str>: {<str>: <str>, ...}}`.

mod body;

/// How many bodies nested in messages are read (an SDK quoting another's error).
const MAX_BODY_NESTING: usize = 2;

/// Masks the variable parts of an error message.
///
/// ```
/// use halo_trace::error_template;
/// assert_eq!(error_template("User 17 not found"), error_template("User 4 not found"));
/// assert_eq!(error_template("File '/home/a/x.txt' does not exist"), "File <str> does not exist");
/// assert_eq!(
///     error_template("Error code: 529 - {'type': 'error', 'error': {'type': 'overloaded_error', 'message': 'Overloaded'}}"),
///     "Error code: <num> - overloaded_error: Overloaded"
/// );
/// ```
pub fn error_template(message: &str) -> String {
    template_of(message.trim(), MAX_BODY_NESTING)
}

/// The template of `message`, reading error bodies `nesting` levels deep.
fn template_of(message: &str, nesting: usize) -> String {
    let Some(found) = (nesting > 0).then(|| body::find(message)).flatten() else {
        return mask(message);
    };
    let label = found.label.as_deref().map(mask).filter(|l| !l.is_empty());
    let said = found
        .message
        .as_deref()
        .map(|m| template_of(m.trim(), nesting - 1))
        .filter(|m| !m.is_empty());
    let what = match (label, said) {
        (Some(label), Some(said)) => format!("{label}: {said}"),
        (Some(only), None) | (None, Some(only)) => only,
        (None, None) => return mask(message),
    };
    [mask(found.prefix), what, mask(found.rest)]
        .into_iter()
        .filter(|part| !part.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

/// Masks the variable parts of the first 400 bytes of `message`, word by word.
fn mask(message: &str) -> String {
    let message = crate::semantic::head(message.trim(), 400);
    let mut out = String::with_capacity(message.len());
    let chars: Vec<char> = message.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c == '\'' || c == '"' || c == '`' {
            if let Some(end) = chars[i + 1..].iter().position(|&d| d == c) {
                if end <= 200 {
                    out.push_str("<str>");
                    i += end + 2;
                    continue;
                }
            }
        }
        if c.is_alphanumeric()
            || c == '/'
            || c == '_'
            || c == '-'
            || c == '.'
            || c == '~'
            || c == ':'
            || c == '@'
        {
            let start = i;
            while i < chars.len()
                && (chars[i].is_alphanumeric()
                    || matches!(
                        chars[i],
                        '/' | '_' | '-' | '.' | '~' | ':' | '@' | '%' | '=' | '?' | '&' | '+'
                    ))
            {
                i += 1;
            }
            let word: String = chars[start..i].iter().collect();
            let (core, trail) = split_trailing_punctuation(&word);
            out.push_str(&mask_word(core));
            out.push_str(trail);
            continue;
        }
        out.push(c);
        i += 1;
    }
    out.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn split_trailing_punctuation(word: &str) -> (&str, &str) {
    let core = word.trim_end_matches(['.', ':', ',', '?', '&', '=', '-']);
    (core, &word[core.len()..])
}

fn mask_word(word: &str) -> String {
    if word.is_empty() {
        return String::new();
    }
    if word.contains("://") {
        return "<url>".into();
    }
    if word.contains('@') && word.contains('.') && !word.starts_with('@') {
        return "<email>".into();
    }
    if word.starts_with('/')
        || word.starts_with("./")
        || word.starts_with("~/")
        || word.matches('/').count() >= 2
    {
        return "<path>".into();
    }
    let digits = word.chars().filter(|c| c.is_ascii_digit()).count();
    if digits == 0 {
        return match prefixed_letter_id(word) {
            Some(prefix) => format!("{prefix}<id>"),
            None => word.to_string(),
        };
    }
    if word
        .chars()
        .all(|c| c.is_ascii_digit() || c == '.' || c == ',' || c == '-' || c == ':')
    {
        return "<num>".into();
    }
    let hexish = word.chars().all(|c| c.is_ascii_hexdigit() || c == '-');
    if hexish && word.len() >= 8 {
        return "<id>".into();
    }
    // Identifiers that mix letters and digits (acct_93ab, user-1234, req_8f2c): keep a
    // letters-only prefix so "acct_" ids stay distinguishable from "order_" ids.
    if let Some(split) = word.find(['_', '-']) {
        let (prefix, rest) = word.split_at(split + 1);
        if rest.contains('.') {
            // Versions and model names (gpt-5.4-mini, v1.2.3-beta) name a thing, not an id.
            return word.to_string();
        }
        if !prefix.chars().any(|c| c.is_ascii_digit()) && rest.chars().any(|c| c.is_ascii_digit()) {
            return format!("{prefix}<id>");
        }
    }
    if digits * 2 >= word.len() {
        return "<id>".into();
    }
    word.to_string()
}

/// The prefix of an id whose hex part happens to have no digit (`acct_dfcd` beside
/// `acct_93ab`: about one in fifty four-character hex ids). Left as it was, it read as a
/// word, so one tool's occurrences formed a cause of their own, which came and went
/// between datasets as ids did. The part after the letters-only prefix must be four or
/// more hex letters (`a` to `f`) and nothing else: `invalid_request` and `max_tokens`
/// stay words (a word of those letters only, `user_added`, would read as an id: rare in
/// error messages, against ids that are common).
fn prefixed_letter_id(word: &str) -> Option<&str> {
    let split = word.find('_')?;
    let (prefix, rest) = word.split_at(split + 1);
    let is_id = prefix.len() > 1
        && prefix[..split].chars().all(|c| c.is_ascii_lowercase())
        && rest.len() >= 4
        && rest.chars().all(|c| matches!(c, 'a'..='f'));
    is_id.then_some(prefix)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_what_varies() {
        let cases = [
            ("User 17 not found", "User <num> not found"),
            (
                "Permission denied for account acct_93ab",
                "Permission denied for account acct_<id>",
            ),
            (
                "Permission denied for account acct_dfcd",
                "Permission denied for account acct_<id>",
            ),
            (
                "invalid_request over max_tokens",
                "invalid_request over max_tokens",
            ),
            ("Request 5b8efff798038103 failed", "Request <id> failed"),
            (
                "[Errno 2] No such file or directory: /home/user/dev/tools",
                "[Errno <num>] No such file or directory: <path>",
            ),
            (
                "got an unexpected keyword argument 'note'",
                "got an unexpected keyword argument <str>",
            ),
            (
                "see https://x.io/a?b=1 or mail a@b.io",
                "see <url> or mail <email>",
            ),
            (
                "Rate limit reached for gpt-5.4-mini",
                "Rate limit reached for gpt-5.4-mini",
            ),
        ];
        for (input, expected) in cases {
            assert_eq!(error_template(input), expected, "{input}");
        }
    }

    #[test]
    fn same_failure_same_template() {
        assert_eq!(
            error_template("max_turns (20) exceeded after 20 turns"),
            error_template("max_turns (25) exceeded after 25 turns")
        );
    }

    #[test]
    fn openai_dict_repr_keeps_code_and_message() {
        let context = r#"openai.BadRequestError: Error code: 400 - {'error': {'message': "This model's maximum context length is 128000 tokens. However, your messages resulted in 130000 tokens.", 'type': 'invalid_request_error', 'param': 'messages', 'code': 'context_length_exceeded'}}"#;
        assert_eq!(
            error_template(context),
            "openai.BadRequestError: Error code: <num> - context_length_exceeded: This model's maximum context length is <num> tokens. However, your messages resulted in <num> tokens."
        );
        let schema = r#"openai.BadRequestError: Error code: 400 - {'error': {'message': "Invalid schema for function 'get_weather': In context=(), 'required' is required to be supplied.", 'type': 'invalid_request_error', 'param': 'tools[0].function.parameters', 'code': 'invalid_function_parameters'}}"#;
        assert_eq!(
            error_template(schema),
            "openai.BadRequestError: Error code: <num> - invalid_function_parameters: Invalid schema for function <str>: In context=(), <str> is required to be supplied."
        );
        // Two different failures behind the same status are two groups, and the same
        // failure with other numbers is one.
        assert_ne!(error_template(context), error_template(schema));
        assert_eq!(
            error_template(context),
            error_template(
                &context
                    .replace("130000", "150000")
                    .replace("128000", "200000")
            )
        );
    }

    #[test]
    fn json_body_reads_like_the_dict_repr() {
        let json = r#"Error code: 400 - {"error": {"message": "This model's maximum context length is 128000 tokens. However, your messages resulted in 130000 tokens.", "type": "invalid_request_error", "param": "messages", "code": "context_length_exceeded"}}"#;
        let repr = r#"Error code: 400 - {'error': {'message': "This model's maximum context length is 128000 tokens. However, your messages resulted in 130000 tokens.", 'type': 'invalid_request_error', 'param': 'messages', 'code': 'context_length_exceeded'}}"#;
        assert_eq!(error_template(json), error_template(repr));
        assert_eq!(
            error_template(
                "Error code: 400 -\n{\n  \"error\": {\n    \"message\": \"Unsupported value: \\\"temperature\\\" does not support 0.2\",\n    \"type\": \"invalid_request_error\",\n    \"param\": null,\n    \"code\": \"unsupported_value\"\n  }\n}"
            ),
            "Error code: <num> - unsupported_value: Unsupported value: <str> does not support <num>"
        );
    }

    #[test]
    fn anthropic_nested_type_names_the_failure() {
        assert_eq!(
            error_template(
                "anthropic.InternalServerError: Error code: 529 - {'type': 'error', 'error': {'type': 'overloaded_error', 'message': 'Overloaded'}}"
            ),
            "anthropic.InternalServerError: Error code: <num> - overloaded_error: Overloaded"
        );
        assert_eq!(
            error_template(
                r#"{"type":"error","error":{"type":"rate_limit_error","message":"Number of request tokens has exceeded your per-minute rate limit"},"request_id":"req_011CQ"}"#
            ),
            "rate_limit_error: Number of request tokens has exceeded your per-minute rate limit"
        );
    }

    #[test]
    fn code_none_falls_back_to_type() {
        assert_eq!(
            error_template(
                "Error code: 429 - {'error': {'message': 'Rate limit reached for gpt-4o in organization org-abc on tokens per min (TPM): Limit 30000, Used 29000, Requested 2000.', 'type': 'tokens', 'param': None, 'code': 'rate_limit_exceeded'}}"
            ),
            "Error code: <num> - rate_limit_exceeded: Rate limit reached for gpt-<id> in organization org-abc on tokens per min (TPM): Limit <num>, Used <num>, Requested <num>."
        );
        assert_eq!(
            error_template(
                "Error code: 429 - {'error': {'message': 'Rate limit reached for gpt-4o in organization org-abc on tokens per min (TPM): Limit 30000, Used 29000, Requested 2000.', 'type': 'tokens', 'param': None, 'code': None}}"
            ),
            "Error code: <num> - tokens: Rate limit reached for gpt-<id> in organization org-abc on tokens per min (TPM): Limit <num>, Used <num>, Requested <num>."
        );
        // A numeric code repeats the status; Gemini's status names the failure.
        assert_eq!(
            error_template(
                "429 RESOURCE_EXHAUSTED. {'error': {'code': 429, 'message': 'Resource has been exhausted (e.g. check quota).', 'status': 'RESOURCE_EXHAUSTED'}}"
            ),
            "<num> RESOURCE_EXHAUSTED. RESOURCE_EXHAUSTED: Resource has been exhausted (e.g. check quota)."
        );
    }

    #[test]
    fn other_body_shapes() {
        // Ollama and TGI: the error is a string.
        assert_eq!(
            error_template(
                r#"Error code: 404 - {"error":"model 'llama3' not found, try pulling it first"}"#
            ),
            "Error code: <num> - model <str> not found, try pulling it first"
        );
        // Mistral and vLLM: a flat error object.
        assert_eq!(
            error_template(
                "Error code: 400 - {'object': 'error', 'message': 'max_tokens must be at least 1, got -5.', 'type': 'BadRequestError', 'param': None, 'code': 400}"
            ),
            "Error code: <num> - BadRequestError: max_tokens must be at least <num>, got <num>."
        );
        // An SDK quoting another's body in its message.
        assert_eq!(
            error_template(
                r#"litellm.BadRequestError: OpenAIException - {'error': {'message': '{"error": {"message": "bad key 123", "code": "invalid_api_key"}}', 'code': None}}"#
            ),
            "litellm.BadRequestError: OpenAIException - invalid_api_key: bad key <num>"
        );
        // A dict that is no error body is masked as before; a body after it is read.
        assert_eq!(
            error_template("Invalid arguments {'city': 'Lyon', 'days': 3}"),
            "Invalid arguments {<str>: <str>, <str>: <num>}"
        );
        assert_eq!(
            error_template("Format {name} failed: {'error': {'message': 'boom', 'code': 'x_failed'}} after 3 tries"),
            "Format {name} failed: x_failed: boom after <num> tries"
        );
    }

    #[test]
    fn malformed_bodies_mask_as_before() {
        let plain = |text: &str| mask(text.trim());
        for text in [
            // Cut short, as a head of a long message is.
            "Error code: 400 - {'error': {'message': \"This model's maximum context length is 128000 tokens.",
            "Error code: 400 - {'error': {'message': 'x', 'code': 'y'}",
            "Error code: 400 - {'error': {'message': 'x', 'code': 'y'}, oops}",
            "Error code: 400 - {'error': {'message': 'x', 'code': 'y'} 'z'}",
            "Error code: 400 - {'error': {}}",
            "Error code: 400 - {'error': {'message': '', 'code': None}}",
            "{",
            "{'",
            "{'error': {'message': 'x\\",
            "{'a': '\\u12",
        ] {
            assert_eq!(error_template(text), plain(text), "{text}");
        }
        assert_eq!(
            error_template("Error code: 400 - {'error': {'message': 'x', 'code': 'y'}"),
            "Error code: <num> - {<str>: {<str>: <str>, <str>: <str>}"
        );
    }

    #[test]
    fn never_panics_and_stays_bounded() {
        let deep = format!("Error: {}", "{'error': ".repeat(10_000));
        assert_eq!(error_template(&deep), mask(&deep));
        let wide = format!(
            "Error: {{'error': {{'message': '{}', 'code': 'c'}}}}",
            "é".repeat(50_000)
        );
        assert!(error_template(&wide).len() < 2_000);
        let many = "{x} ".repeat(10_000);
        assert_eq!(error_template(&many), mask(&many));
        let long_message = format!(
            "Error code: 400 - {{'error': {{'message': '{} 12', 'code': 'too_long'}}}}",
            "word ".repeat(1_000)
        );
        let t = error_template(&long_message);
        assert!(
            t.starts_with("Error code: <num> - too_long: word word"),
            "{t}"
        );
        assert!(t.len() < 1_000);
        // Every cut of a body, at every byte (multi-byte characters included).
        let text = "E: {'error': {'message': \"Café 'x' \\u00e9 \\x41 \\\\\", 'code': 'c_1', 'n': [1, (2,), None]}} ok";
        for end in 0..=text.len() {
            if let Some(cut) = text.get(..end) {
                let _ = error_template(cut);
            }
        }
        for (i, _) in text.char_indices() {
            let _ = error_template(&text[i..]);
        }
        assert_eq!(error_template(text), "E: c_<id>: Café <str> é A \\ ok");
    }
}
