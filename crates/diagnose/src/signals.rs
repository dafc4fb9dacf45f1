//! Text signals: what error messages, outputs and outcome markers say.
//!
//! Each classifier is a small, documented set of patterns over the index's payload heads.
//! They are deliberately conservative: a message is only given a specific meaning when its
//! wording says so, and anything else falls back to the generic class (a plain tool error).

use std::sync::LazyLock;

use regex::Regex;

fn re(pattern: &str) -> Regex {
    Regex::new(pattern).expect("static regex")
}

static HALLUCINATED: LazyLock<Regex> = LazyLock::new(|| {
    re(
        r#"(?i)\b(?:unknown|unrecognized|undefined|unsupported|nonexistent|non-existent|no such)\s+(?:tool|function)\b|\bnot a valid tool\b|\btool_not_found\b"#,
    )
});

/// "Tool NAME not found" and its kin; NAME is checked apart (see [`says_unknown_tool`]).
static NAMED_NOT_FOUND: LazyLock<Regex> = LazyLock::new(|| {
    re(
        r#"(?i)\b(?:tool|function)\s+(['"`]?)([\w.:/\-]+)['"`]?\s+(?:not found|does not exist|doesn't exist|is not (?:available|defined|registered|declared|allowed))"#,
    )
});

/// Whether the error of a call to `tool` says the tool itself does not exist. "Tool X
/// not found" counts when X is quoted or is the tool called: "Playlist tool 12 not found"
/// and "tool config not found" are about the tool's data, not about the tool.
pub(crate) fn says_unknown_tool(message: &str, tool: &str) -> bool {
    HALLUCINATED.is_match(message)
        || NAMED_NOT_FOUND.captures_iter(message).any(|c| {
            let quoted = c.get(1).is_some_and(|q| !q.as_str().is_empty());
            quoted
                || c.get(2)
                    .is_some_and(|n| n.as_str().eq_ignore_ascii_case(tool))
        })
}

/// What is wrong with a tool call's arguments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ArgProblem {
    /// `unexpected_argument`, `missing_argument`, `wrong_type`, `malformed_arguments` or
    /// `invalid_arguments`.
    pub(crate) kind: &'static str,
    /// The argument, when the message names it.
    pub(crate) argument: Option<String>,
}

static UNEXPECTED_ARG: LazyLock<Regex> = LazyLock::new(|| {
    re(
        r#"(?i)unexpected (?:keyword )?(?:argument|parameter|field|property)s?:?\s*['"`]?([\w.\-]+)?|(?:extra|additional) (?:fields?|propert(?:y|ies)) (?:not (?:permitted|allowed)|are not permitted)(?:[^'"`]*['"`]([\w.\-]+))?|unknown (?:argument|parameter|field|keyword)s?:?\s*['"`]?([\w.\-]+)?"#,
    )
});
static MISSING_ARG: LazyLock<Regex> = LazyLock::new(|| {
    re(
        r#"(?i)missing (?:\d+ )?(?:required )?(?:positional |keyword )?(?:argument|parameter|field|property)s?:?\s*['"`]?([\w.\-]+)?|['"`]([\w.\-]+)['"`] is a required (?:property|argument|parameter|field)|(?:argument|parameter|field) ['"`]?([\w.\-]+)['"`]? is required"#,
    )
});
static WRONG_TYPE: LazyLock<Regex> = LazyLock::new(|| {
    re(
        r#"(?i)(?:field|argument|parameter|param|property)\s+['"`]?([\w.\-]+)['"`]?:?\s+(?:expected|must be|should be|is not (?:of type|a valid)|has (?:an )?invalid type)|\binvalid type\b|\bexpected (?:type )?\w+,? (?:but )?(?:got|received) \w+"#,
    )
});
static MALFORMED_ARGS: LazyLock<Regex> = LazyLock::new(|| {
    re(
        r"(?i)JSONDecodeError|invalid json (?:in|for) (?:the )?(?:tool )?(?:arguments|parameters|input)|invalid json input for tool|could not parse (?:tool )?arguments|malformed (?:tool )?arguments",
    )
});
static INVALID_ARGS: LazyLock<Regex> = LazyLock::new(|| {
    re(
        r"(?i)\bValidationError\b|\bZodError\b|validation errors? for\b|^\d+ validation errors?:|invalid (?:tool )?(?:arguments?|parameters?|input)\b|\bargument(?:s)? (?:is|are) invalid",
    )
});

fn first_group(caps: &regex::Captures<'_>) -> Option<String> {
    caps.iter()
        .skip(1)
        .flatten()
        .next()
        .map(|m| m.as_str().to_string())
}

/// Classifies a tool error as an argument problem, if its wording says so.
pub(crate) fn arg_problem(message: &str) -> Option<ArgProblem> {
    let pick = |kind: &'static str, r: &Regex| {
        r.captures(message).map(|c| ArgProblem {
            kind,
            argument: first_group(&c),
        })
    };
    pick("unexpected_argument", &UNEXPECTED_ARG)
        .or_else(|| pick("missing_argument", &MISSING_ARG))
        .or_else(|| pick("wrong_type", &WRONG_TYPE))
        .or_else(|| pick("malformed_arguments", &MALFORMED_ARGS))
        .or_else(|| pick("invalid_arguments", &INVALID_ARGS))
}

static TURN_LIMIT: LazyLock<Regex> = LazyLock::new(|| {
    re(
        r"(?i)max_?turns|MaxTurnsExceeded|\b(?:request|tool_calls)_limit of \d+|max(?:imum)?[ _](?:number of )?(?:turns|steps|iterations|rounds)\b|(?:turn|step|iteration|recursion|round)[ _]limit|GraphRecursionError|RecursionError|too many (?:turns|steps|iterations)|(?:turn|step) budget",
    )
});

/// A tool result that hands rejected arguments back to the model to try again, with no
/// error status: Pydantic AI's "N validation error(s):" and the errors as JSON (its
/// other retries, `ModelRetry`, end in the same "Fix the errors and try again." and are
/// no argument problem).
static RETRY_PROMPT: LazyLock<Regex> =
    LazyLock::new(|| re(r"(?is)^\s*\d+ validation errors?:\s*(?:```|\[|\{)"));

/// Whether a successful tool's result is a prompt to retry with other arguments.
pub(crate) fn is_retry_prompt(result: &str) -> bool {
    RETRY_PROMPT.is_match(result)
}

/// LangChain's stand-in for a tool the model made up (`invalid_tool`, whose input names
/// the tool asked for as `requested_tool_name`).
static INVENTED_TOOL: LazyLock<Regex> =
    LazyLock::new(|| re(r#"requested_tool_name['"]?\s*:\s*['"]([^'"]+)['"]"#));

/// The tool the model asked for, when `tool` is LangChain's `invalid_tool` stand-in.
pub(crate) fn invented_tool<'a>(tool: &str, args: Option<&'a str>) -> Option<&'a str> {
    if tool != "invalid_tool" {
        return None;
    }
    INVENTED_TOOL
        .captures(args?)
        .and_then(|c| c.get(1))
        .map(|m| m.as_str())
}

/// Whether an error says the run hit its turn/step/recursion budget.
pub(crate) fn says_turn_limit(text: &str) -> bool {
    TURN_LIMIT.is_match(text)
}

/// The fixed answers agent runtimes return in place of one when a run ran out of
/// turns without an error status: LangChain's and CrewAI's `AgentExecutor` ("Agent
/// stopped due to iteration limit or time limit.", "Agent stopped due to max
/// iterations.") and AutoGen's message cap. Anchored at the start: an answer that only
/// mentions an iteration limit is not one.
static STOPPED_AT_LIMIT: LazyLock<Regex> = LazyLock::new(|| {
    re(
        r#"(?i)^\s*(?:\{\s*"output"\s*:\s*"|")?((?:agent stopped due to (?:iteration limit|max(?:imum)? iterations)|maximum number of (?:messages|turns) \d+ reached)[^".\n]*\.?)"#,
    )
});

/// The runtime's "stopped at the iteration limit" sentence, when a run's final answer is
/// one (also inside the `{"output": ...}` OpenInference records for LangChain).
pub(crate) fn stopped_at_limit(final_text: &str) -> Option<&str> {
    STOPPED_AT_LIMIT
        .captures(final_text)
        .and_then(|c| c.get(1))
        .map(|m| m.as_str().trim())
}

static RATE_LIMIT: LazyLock<Regex> = LazyLock::new(|| {
    re(r"(?i)rate.?limit|too many requests|quota (?:exceeded|exhausted)|RESOURCE_EXHAUSTED|\b429\b")
});
static CONTEXT_LENGTH: LazyLock<Regex> = LazyLock::new(|| {
    re(
        r"(?i)context.?length|maximum context|context window|prompt is too long|too many (?:input )?tokens|input is too long|max(?:imum)? tokens? (?:exceeded|limit)",
    )
});
static CONTENT_FILTER: LazyLock<Regex> = LazyLock::new(|| {
    re(
        r"(?i)content.?filter|content management policy|responsible ai|safety (?:system|filter)|blocked by (?:the )?(?:safety|moderation)|SAFETY|invalid_prompt|usage polic(?:y|ies)|flagged as potentially violating",
    )
});
static TIMEOUT: LazyLock<Regex> =
    LazyLock::new(|| re(r"(?i)timed? ?out|timeout|deadline exceeded|\b504\b|\b408\b"));
static SERVER: LazyLock<Regex> = LazyLock::new(|| {
    re(
        r"(?i)internal.?server.?error|server had an error|bad.?gateway|service.?unavailable|overloaded|\b5\d\d\b|upstream",
    )
});
/// The client never got an answer: the network or the endpoint, not the provider's model.
static CONNECTION: LazyLock<Regex> = LazyLock::new(|| {
    re(
        r"(?i)connection (?:reset|refused|error|aborted|closed)|apiconnectionerror|could not connect|failed to connect|name or service not known|getaddrinfo|dns|network is unreachable|broken pipe|remote ?protocol ?error|server disconnected",
    )
});
static AUTH: LazyLock<Regex> = LazyLock::new(|| {
    re(
        r"(?i)invalid api key|incorrect api key|unauthori[sz]ed|authentication|permission denied|\b40[13]\b",
    )
});

/// The kind of a provider (model call) failure: `rate_limit`, `context_length`,
/// `content_filter`, `timeout`, `server_error`, `connection`, `auth` or `other`.
pub(crate) fn provider_kind(
    http: Option<i64>,
    text: &str,
    finish_reason: Option<&str>,
) -> &'static str {
    if http == Some(429) || RATE_LIMIT.is_match(text) {
        "rate_limit"
    } else if CONTEXT_LENGTH.is_match(text) {
        "context_length"
    } else if finish_reason.is_some_and(|f| f.eq_ignore_ascii_case("content_filter"))
        || CONTENT_FILTER.is_match(text)
    {
        "content_filter"
    } else if matches!(http, Some(408 | 504)) || TIMEOUT.is_match(text) {
        "timeout"
    } else if http.is_some_and(|h| (500..600).contains(&h)) || SERVER.is_match(text) {
        "server_error"
    } else if http.is_none() && CONNECTION.is_match(text) {
        "connection"
    } else if matches!(http, Some(401 | 403)) || AUTH.is_match(text) {
        "auth"
    } else {
        "other"
    }
}

/// Whether a non-model span's error reads like a provider failure (for traces whose model
/// spans carry no error of their own).
pub(crate) fn says_provider_failure(http: Option<i64>, text: &str) -> bool {
    http == Some(429)
        || RATE_LIMIT.is_match(text)
        || CONTEXT_LENGTH.is_match(text)
        || CONTENT_FILTER.is_match(text)
}

static REFUSAL: LazyLock<Regex> = LazyLock::new(|| {
    re(
        r"(?i)^\W{0,3}(?:(?:I'?m|I am|I’m) (?:very |really |so )?sorry|sorry|(?:I )?apologi[sz]e)\b[^.!?\n]{0,80}?\b(?:can(?:'|’)?t|cannot|can not|won(?:'|’)?t|will not|unable to|not able to)\s+(?:help|assist|comply|do that|fulfil|fulfill|provide|support|share|disclose|answer|complete (?:that|this) request|continue with (?:that|this))|^\W{0,3}(?:(?:unfortunately|i'?m afraid|i’m afraid|regrettably|no|as an ai(?: assistant| language model| model)?),?\s+)?I(?:'m|’m| am)? (?:can(?:'|’)?t|cannot|can not|won(?:'|’)?t(?: be able to)?|will not(?: be able to)?|unable to|not able to|must decline to|have to decline to|am unable to|am not able to)\s+(?:help|assist|comply|fulfil|fulfill|support|share|disclose|answer|do (?:that|this)|complete (?:that|this|your|the) request|process (?:that|this|your) request|provide (?:that|this))\b|^\W{0,3}I (?:must|have to|will|need to) (?:respectfully )?decline (?:to\b|this request|that request|your request|the request)|^\W{0,3}(?:(?:I'?m|I’m|I am) (?:very |really |so )?sorry,? (?:but )?)?(?:that's|that’s|that is) not something I can (?:help|assist)",
    )
});

/// What, later in the sentence, turns "I can't do that" into a condition ("without your
/// order number", "until you log in") or a failure ("because the payment failed"), not a
/// refusal. A reason alone ("since it goes against my guidelines") keeps it a refusal.
/// "I can't help noticing (thinking, wondering...)" is an idiom, not a refusal.
static NOT_A_REFUSAL: LazyLock<Regex> = LazyLock::new(|| {
    re(
        r"(?i)^\s*(?:but\s+)?(?:notic|think|wonder|feel|smil|laugh|admir)ing\b|\bwithout (?:your|the|an?|more|additional|some|access|permission|knowing|having)\b|\b(?:until|unless)\b|\b(?:because|since|due to)\b.{0,80}\b(?:failed|fails|errored|unavailable|timed out|declined|not found|missing|expired)\b",
    )
});

/// How many sentences a refusal may come after ("Thanks for asking. Unfortunately, I
/// can't help with that.").
const REFUSAL_PREAMBLE_SENTENCES: usize = 2;

/// Whether a model output reads like a refusal.
pub(crate) fn says_refusal(output: &str) -> bool {
    let mut start = 0;
    for _ in 0..=REFUSAL_PREAMBLE_SENTENCES {
        let text = &output[start..];
        if let Some(m) = REFUSAL.find(text) {
            let rest = &text[m.end()..];
            let sentence_end = rest.find(['.', '!', '?', '\n']).unwrap_or(rest.len());
            return !NOT_A_REFUSAL.is_match(&rest[..sentence_end]);
        }
        // The next sentence, if there is one.
        match text.find(['.', '!', '?', '\n']) {
            Some(end) => start += end + 1,
            None => return false,
        }
    }
    false
}

static FAILURE_TEXT: LazyLock<Regex> = LazyLock::new(|| {
    re(
        r"(?i)\b(?:I was|I am|I'm|we were) (?:unable|not able) to (?:complete|finish|do|perform)|\b(?:could not|couldn't|did not|didn't) (?:complete|finish) the (?:task|request)|\bI (?:could not|couldn't|wasn't able to|was not able to|failed to) (?:complete|finish|do)\b",
    )
});

/// Whether a masked template still says something: a word of three letters or more
/// outside its placeholders (`<num>`, `<str>`...). One that is all placeholders
/// (`{<str>: <str>}`) names no cause, so it is not one cause across tools.
pub(crate) fn names_a_cause(template: &str) -> bool {
    // An exception's type alone (`KeyError: <str>`) names no cause: three unrelated
    // missing keys would read as one.
    let template = match template.split_once(": ") {
        Some((kind, rest)) if is_exception_type(kind) => rest,
        _ => template,
    };
    let mut run = 0usize;
    let mut in_placeholder = false;
    for c in template.chars() {
        match c {
            '<' => in_placeholder = true,
            '>' => in_placeholder = false,
            c if !in_placeholder && c.is_alphabetic() => {
                run += 1;
                if run == 3 {
                    return true;
                }
                continue;
            }
            _ => {}
        }
        run = 0;
    }
    false
}

static SIGN_OFF: LazyLock<Regex> = LazyLock::new(|| {
    re(
        r"(?i)anything else|further (?:assist|help|question)|other questions?|can i (?:help|assist)|let me know",
    )
});

static CLAIMS_DONE: LazyLock<Regex> = LazyLock::new(|| {
    re(
        r"(?i)\b(?:done|all set)\s*[!.]|\bI(?:'ve|’ve| have)? (?:just |now |already )?(?:booked|sent|created|added|scheduled|updated|deleted|saved|completed|finished)\b|\b(?:has|have) been (?:booked|sent|created|added|scheduled|updated|deleted|saved|completed)\b",
    )
});

/// Whether `word` is an exception type's name (`KeyError`, `botocore.ClientError`,
/// `TimeoutException`).
pub(crate) fn is_exception_type(word: &str) -> bool {
    let name = word.rsplit('.').next().unwrap_or(word);
    !name.contains(' ') && (name.ends_with("Error") || name.ends_with("Exception"))
}

/// Whether a final answer is a clarifying question: it ends by asking the user something
/// and claims nothing done before that. A stock sign-off ("Is there anything else I can
/// help you with?") asks nothing, and "Done! Would you like a reminder too?" claims
/// success before its offer.
pub(crate) fn asks_a_question(output: &str) -> bool {
    let mut text = output.trim_end();
    // A sign-off after the question ("Which card? Let me know if you need anything
    // else.") does not answer it.
    if !text.ends_with('?') {
        if let Some(i) = text.trim_end_matches(['.', '!']).rfind(['.', '!', '?']) {
            let (before, last) = text.split_at(i + 1);
            if SIGN_OFF.is_match(last) {
                text = before.trim_end();
            }
        }
    }
    if !text.ends_with('?') {
        return false;
    }
    let body = &text[..text.len() - 1];
    let split = body.rfind(['.', '!', '?', '\n']);
    let last = split.map_or(body, |i| &body[i + 1..]);
    let before = split.map_or("", |i| &body[..i]);
    !SIGN_OFF.is_match(last) && !CLAIMS_DONE.is_match(before)
}

/// Whether a final answer says the task was not done.
pub(crate) fn says_not_done(output: &str) -> bool {
    FAILURE_TEXT.is_match(output)
}

/// Words of a final answer that claim the work is done ("Done!", "I've completed the
/// task", "the email has been sent"). A direct answer ("The capital of France is
/// Paris.") or a courtesy ("You're welcome!") claims no work.
static COMPLETION_TEXT: LazyLock<Regex> = LazyLock::new(|| {
    re(
        r"(?i)\b(?:done|completed?|finished|all set|successfully|taken care of|(?:has|have) been (?:\w+ed|sent|made|set|done|booked|paid)|I(?:'ve|’ve| have) (?:just |now |already )?(?:sent|made|set up|done|paid|booked|issued|filed|cancell?ed|scheduled|refunded|submitted|created|updated|placed|ordered|reserved|transferred|added|removed|deleted|moved|saved|changed|reset|processed|fixed|resolved)|\byour\b[^.!?\n]{0,60}?\b(?:is|are|was|were|has been|have been) (?:now |all )?(?:booked|confirmed|scheduled|cancell?ed|sent|updated|created|processed|submitted|refunded|paid|reserved))\b",
    )
});

/// Whether a final answer claims the task was carried out.
pub(crate) fn claims_done(output: &str) -> bool {
    COMPLETION_TEXT.is_match(output) && !says_not_done(output)
}

/// Whether an outcome marker means the run failed (`failure`, `failed`, `error`, `false`...).
pub(crate) fn outcome_failed(outcome: &str) -> bool {
    let o = outcome.trim().to_ascii_lowercase();
    matches!(
        o.as_str(),
        "failure"
            | "failed"
            | "fail"
            | "error"
            | "errored"
            | "false"
            | "unsuccessful"
            | "incomplete"
            | "partial"
            | "aborted"
            | "not_done"
            | "gave_up"
    )
}

/// Whether an outcome marker means the run refused.
pub(crate) fn outcome_refused(outcome: &str) -> bool {
    let o = outcome.trim().to_ascii_lowercase();
    o == "refused" || o == "refusal" || o == "declined"
}

/// Whether an outcome marker (or its absence) claims success.
pub(crate) fn outcome_claims_success(outcome: Option<&str>) -> bool {
    match outcome {
        None => true,
        Some(o) => {
            let o = o.trim().to_ascii_lowercase();
            matches!(
                o.as_str(),
                "success" | "succeeded" | "ok" | "done" | "true" | "completed" | "complete"
            )
        }
    }
}

/// Tool arguments in a form where equal arguments are equal text: JSON is re-written
/// with sorted keys and no spacing; anything else (a head cut short, say) loses its
/// spacing outside strings.
pub(crate) fn comparable_args(args: &str) -> String {
    if let Ok(value) = serde_json::from_str::<serde_json::Value>(args) {
        return value.to_string();
    }
    let mut out = String::with_capacity(args.len());
    let (mut in_string, mut escaped) = (false, false);
    for c in args.chars() {
        if in_string {
            out.push(c);
            match c {
                _ if escaped => escaped = false,
                '\\' => escaped = true,
                '"' => in_string = false,
                _ => {}
            }
        } else if !c.is_whitespace() {
            in_string = c == '"';
            out.push(c);
        }
    }
    out
}

/// The masked error template of a span's error (type prefixed when the message lacks it).
pub(crate) fn template_of(error_type: Option<&str>, message: Option<&str>) -> String {
    let text = match (error_type, message) {
        (Some(t), Some(m)) if !m.contains(t) => format!("{t}: {m}"),
        (_, Some(m)) => m.to_string(),
        (Some(t), None) => t.to_string(),
        (None, None) => "(no message)".to_string(),
    };
    halo_trace::error_template(&text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_tools() {
        assert!(says_unknown_tool("Tool spotify__x not found", "spotify__x"));
        assert!(says_unknown_tool(
            "Unknown tool: venmo__split_bill",
            "venmo__split_bill"
        ));
        assert!(says_unknown_tool("Tool a__b not found in agent X", "a__b"));
        assert!(says_unknown_tool("tool 'a__c' does not exist", "other"));
        assert!(!says_unknown_tool("User 17 not found", "t"));
        assert!(!says_unknown_tool("Playlist 3 not found", "t"));
        assert!(!says_unknown_tool("File '/a/b.txt' does not exist", "t"));
        // About the tool's data, not the tool.
        assert!(!says_unknown_tool(
            "NotFoundError: Playlist tool 12 not found",
            "spotify__play"
        ));
        assert!(!says_unknown_tool(
            "KeyError: tool config not found",
            "files__read"
        ));
    }

    #[test]
    fn argument_problems() {
        let p = arg_problem("TypeError: f() got an unexpected keyword argument 'note'").unwrap();
        assert_eq!(
            (p.kind, p.argument.as_deref()),
            ("unexpected_argument", Some("note"))
        );
        let p = arg_problem("TypeError: f() missing required argument 'user_id'").unwrap();
        assert_eq!(
            (p.kind, p.argument.as_deref()),
            ("missing_argument", Some("user_id"))
        );
        let p = arg_problem("ValidationError: field 'amount' expected number, got string").unwrap();
        assert_eq!(
            (p.kind, p.argument.as_deref()),
            ("wrong_type", Some("amount"))
        );
        // TypeScript's zod, as agents built on the Vercel AI SDK report it.
        for zod in [
            "ZodError: [{\"code\":\"invalid_type\",\"path\":[\"q\"]}]",
            "Expected string, received number",
        ] {
            assert!(arg_problem(zod).is_some(), "{zod}");
        }
        assert!(arg_problem("Insufficient balance: requested $3.00, available $1.20").is_none());
        assert!(arg_problem("Permission denied for account acct_12ab").is_none());
        assert!(arg_problem("Access token expired for user a@b.c").is_none());
    }

    #[test]
    fn provider_kinds() {
        assert_eq!(provider_kind(Some(429), "x", None), "rate_limit");
        assert_eq!(
            provider_kind(None, "Rate limit reached for gpt on tokens per min", None),
            "rate_limit"
        );
        assert_eq!(
            provider_kind(Some(502), "502 Bad Gateway", None),
            "server_error"
        );
        assert_eq!(provider_kind(None, "Request timed out.", None), "timeout");
        assert_eq!(
            provider_kind(None, "ServiceUnavailableError: try later", None),
            "server_error"
        );
        assert_eq!(
            provider_kind(None, "anthropic.InternalServerError", None),
            "server_error"
        );
        assert_eq!(
            provider_kind(
                Some(400),
                "context_length_exceeded: maximum context length is 8192",
                None
            ),
            "context_length"
        );
        assert_eq!(
            provider_kind(Some(400), "content_filter: The response was filtered", None),
            "content_filter"
        );
        assert_eq!(
            provider_kind(None, "openai.APIConnectionError: Connection error.", None),
            "connection"
        );
        assert_eq!(
            provider_kind(Some(503), "connection reset by peer", None),
            "server_error",
            "the server answered"
        );
        assert_eq!(
            provider_kind(
                Some(400),
                "invalid_prompt: Invalid prompt: your prompt was flagged as potentially violating our usage policy.",
                None
            ),
            "content_filter"
        );
    }

    #[test]
    fn refusals_and_failures() {
        assert!(says_refusal("I'm sorry, but I can't help with that."));
        assert!(says_refusal("I'm sorry, I can't assist with that."));
        assert!(says_refusal("I cannot help with that request."));
        for refusal in [
            "I cannot do that.",
            "I'm not able to help with that.",
            "Unfortunately, I can't help with that request.",
            "I won't be able to complete this request.",
            "I'm unable to assist with this.",
        ] {
            assert!(says_refusal(refusal), "{refusal}");
        }
        for not_refusal in [
            "I can't find any flights on that date.",
            "I cannot complete the booking because the card was declined.",
            "I can help with that: here are your playlists.",
        ] {
            assert!(!says_refusal(not_refusal), "{not_refusal}");
        }
        assert!(!says_not_done(
            "I couldn't find any errors in your code; all tests pass."
        ));
        for condition in [
            "I can't do that without your order number.",
            "I'm unable to complete the request because the payment failed.",
            "I can't help noticing you have 3 unread emails; I replied to the first.",
        ] {
            assert!(!says_refusal(condition), "{condition}");
        }
        assert!(!asks_a_question(
            "Your event is booked. Is there anything else I can help you with?"
        ));
        assert!(!asks_a_question(
            "Done! I've booked your flight to Paris. Would you like me to add it to your calendar?"
        ));
        assert!(asks_a_question(
            "I found two accounts named Liam. Which one do you mean?"
        ));
        assert!(asks_a_question(
            "Which of your two Visa cards should I charge? Let me know if you need anything else."
        ));
        for question in [
            "To complete your booking I need one more detail. Which date works?",
            "I found the file you created yesterday. Should I delete it?",
            "Which of the two reports should I help with?",
        ] {
            assert!(asks_a_question(question), "{question}");
        }
        assert!(!says_refusal(
            "I will decline the meeting invite from Bob as you asked."
        ));
        assert!(says_refusal(
            "I'm sorry, but I can't share that without violating user privacy."
        ));
        for refusal in [
            "I'm sorry, but that's not something I can help with.",
            "As an AI assistant, I can't help with that.",
            "No, I will not do that.",
        ] {
            assert!(says_refusal(refusal), "{refusal}");
        }
        for refusal in [
            "I'm sorry, but I can't help with that since it goes against my guidelines.",
            "I’m not able to help with that.",
            "Thanks for asking. Unfortunately, I can't share that information.",
            "I must decline this request.",
            "I'm sorry, I can't help with that, but I can suggest alternatives.",
        ] {
            assert!(says_refusal(refusal), "{refusal}");
        }
        assert!(!names_a_cause("KeyError: <str>"));
        assert!(names_a_cause("KeyError: missing field <str>"));
        assert!(asks_a_question("Which account do you mean?"));
        assert!(names_a_cause(
            "TimeoutError: upstream timed out after <num>s"
        ));
        assert!(!names_a_cause("{<str>: <str>}"));
        assert!(!names_a_cause("<num>"));
        assert_eq!(
            comparable_args(r#"{"b": 1, "a": "x y"}"#),
            comparable_args(r#"{"a":"x y","b":1}"#)
        );
        assert_eq!(
            comparable_args(r#"{"a": "x y", "b": [1, 2"#),
            r#"{"a":"x y","b":[1,2"#
        );
        assert_ne!(
            comparable_args(r#"{"a":"x y"}"#),
            comparable_args(r#"{"a":"xy"}"#)
        );
        assert!(!says_refusal(
            "I was unable to complete the task because the lookup returned no results."
        ));
        assert!(!says_refusal("Sorry for the delay, here are your songs."));
        assert!(says_not_done(
            "I was unable to complete the task because the lookup returned no results."
        ));
        assert!(says_turn_limit("MaxTurnsExceeded: max_turns (20) exceeded"));
        assert!(says_turn_limit(
            "GraphRecursionError: Recursion limit of 25 reached"
        ));
        assert!(!says_turn_limit("User 17 not found"));
        assert_eq!(
            stopped_at_limit("Agent stopped due to iteration limit or time limit."),
            Some("Agent stopped due to iteration limit or time limit.")
        );
        assert!(stopped_at_limit("Agent stopped due to max iterations.").is_some());
        assert!(stopped_at_limit(
            "Maximum number of messages 10 reached, current message count: 10"
        )
        .is_some());
        assert!(stopped_at_limit(
            "I raised the agent's iteration limit to 30; the report is attached."
        )
        .is_none());
        assert_eq!(
            stopped_at_limit(
                r#"{"output": "Agent stopped due to iteration limit or time limit."}"#
            ),
            Some("Agent stopped due to iteration limit or time limit.")
        );
        // Traceloop's output is the JSON string; text after the sentence is no part of it.
        assert_eq!(
            stopped_at_limit(r#""Agent stopped due to max iterations. Partial: 3 items""#),
            Some("Agent stopped due to max iterations.")
        );
        assert!(stopped_at_limit("Agent stopped due to time limit.").is_none());
        assert!(says_turn_limit(
            "UsageLimitExceeded: The next request would exceed the request_limit of 8"
        ));
        // A token budget is no turn budget.
        assert!(!says_turn_limit(
            "UsageLimitExceeded: Exceeded the total_tokens_limit of 10000 (total_tokens=12000)"
        ));
    }

    #[test]
    fn only_answers_that_claim_the_work_done_claim_success() {
        for claim in [
            "Done! I've completed the task.",
            "All set: the meeting is on Friday.",
            "The invoice has been paid.",
            "I successfully moved the files.",
            "Your refund was processed and the ticket is complete.",
            "I've issued a refund of $364.08 for order 71222. It should appear within 5-7 business days.",
            "Your flight UA639 on May 3 is booked for Priya Patel.",
            "I have cancelled your subscription.",
        ] {
            assert!(claims_done(claim), "{claim}");
        }
        for answer in [
            "The capital of France is Paris.",
            "You're welcome!",
            "Hello! How can I help you today?",
            "I was unable to complete the task because the lookup failed.",
            "I've noticed you asked about refunds: they take 5-7 days.",
            "Flights to Lisbon are usually booked weeks ahead.",
            "Refunds are processed within 5-7 business days.",
            "Python was created by Guido van Rossum.",
            "The launch is scheduled for Tuesday.",
            "Nothing was sent.",
        ] {
            assert!(!claims_done(answer), "{answer}");
        }
    }
}
