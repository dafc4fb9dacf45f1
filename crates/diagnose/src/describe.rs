//! Titles, signals, fix directions and follow-up questions for findings.

use crate::model::{FindingKey, Mode};
use crate::render::md_code;

/// The human text of one finding.
#[derive(Debug, Clone)]
pub(crate) struct Text {
    pub(crate) title: String,
    pub(crate) signal: String,
    pub(crate) fix: String,
    pub(crate) deeper: String,
}

fn plural(n: usize, one: &str, many: &str) -> String {
    crate::render::counted(n, one, many)
}

/// The verb form that agrees with a count of `n` ("1 trace contains", "2 traces contain").
fn agree<'a>(n: usize, one: &'a str, many: &'a str) -> &'a str {
    if n == 1 {
        one
    } else {
        many
    }
}

/// A duration in milliseconds as people read it ("850 ms", "12.4 s").
pub(crate) fn ms(v: f64) -> String {
    if v >= 10_000.0 {
        format!("{:.1} s", v / 1000.0)
    } else {
        format!("{v:.0} ms")
    }
}

/// A provider failure's template for prose: a known kind in words (`rate_limit` is "rate
/// limit"); anything else as it is, identifiers and all ("other: ..." keeps `page_index`).
fn failure_kind(template: &str) -> String {
    const KINDS: [&str; 8] = [
        "rate_limit",
        "context_length",
        "content_filter",
        "timeout",
        "server_error",
        "connection",
        "auth",
        "other",
    ];
    if KINDS.contains(&template) {
        template.replace('_', " ")
    } else {
        template.to_string()
    }
}

/// Tools or models for prose: "`a`", "`a` and `b`", "`a`, `b`, `c` and `d`", or past
/// four, "`a`, `b`, `c` and 4 more tools" (`noun` is the plural).
fn who(items: &[String], noun: &str) -> String {
    let shown = if items.len() > 4 { 3 } else { items.len() };
    let named: Vec<String> = items.iter().take(shown).map(|t| md_code(t)).collect();
    match (named.len(), items.len()) {
        (0, _) => format!("the {}", noun.trim_end_matches('s')),
        (1, 1) => named[0].clone(),
        (k, n) if n > k => format!("{} and {} more {noun}", named.join(", "), n - k),
        (k, _) => format!("{} and {}", named[..k - 1].join(", "), named[k - 1]),
    }
}

fn tool_error_fix(tool: &str, template: &str) -> String {
    let t = template.to_ascii_lowercase();
    if t.contains("not found") || t.contains("does not exist") || t.contains("no such") {
        format!(
            "Make the agent look ids and paths up first (list/search, then act) before calling {tool} instead of \
             guessing them; have the error name the valid options, and add a prompt rule to re-query once on \"not found\" \
             rather than carry on."
        )
    } else if t.contains("expired")
        || t.contains("token")
        || t.contains("auth")
        || t.contains("unauthori")
    {
        format!(
            "Refresh credentials in the harness before calling {tool} (re-login on expiry, longer-lived tokens), \
             and tell the agent in the system prompt to log in again when it sees this error."
        )
    } else if t.contains("permission") || t.contains("denied") || t.contains("forbidden") {
        format!(
            "Check the account/path permissions the harness grants {tool}; if the denial is expected, tell the \
             agent which resources it may touch so it stops trying the others, and surface the blocker to the user."
        )
    } else if t.contains("insufficient") || t.contains("balance") || t.contains("limit") {
        format!(
            "Have the agent check preconditions (balances, limits) before calling {tool} and report the blocker \
             instead of proceeding; expose a cheap read tool for the precondition if there is none."
        )
    } else {
        format!(
            "Make the errors of {tool} actionable (say what to change), add a recovery rule for them to the system \
             prompt, and retry in the harness if the error is transient."
        )
    }
}

fn provider_fix(kind: &str, model: &str) -> String {
    match kind {
        "rate_limit" => format!(
            "Add client-side rate limiting and exponential backoff with jitter that honours Retry-After for \
             {model}; spread load over deployments or raise the quota."
        ),
        "server_error" => format!(
            "Retry 5xx responses from {model} with backoff and fall back to a secondary deployment or model; \
             keep retries idempotent."
        ),
        "timeout" => format!(
            "Set explicit request timeouts with a retry for {model}, stream responses, and cut prompt size or \
             max_tokens on the calls that time out."
        ),
        "context_length" => format!(
            "Trim or summarise history and tool outputs before each {model} call (a token budget per message), \
             or route long contexts to a model with a larger window."
        ),
        "content_filter" => format!(
            "Find what trips the content filter of {model} (often tool output pasted verbatim into the prompt); \
             sanitise or summarise it, and handle a filtered response without aborting the run."
        ),
        "connection" => format!(
            "The client could not reach {model} (network, DNS, proxy or a dropped connection): retry connection \
             errors with backoff, check egress and proxy settings, and keep connections alive across calls."
        ),
        "auth" => format!("Fix the API key or permissions used for {model}; fail fast at start-up when they are wrong."),
        _ => format!("Inspect the examples; retry {model} calls where the error is transient and alert on the rest."),
    }
}

fn arg_fix(tool: &str, template: &str, argument: Option<&str>) -> String {
    let arg = argument
        .map(md_code)
        .unwrap_or_else(|| "the argument".to_string());
    if template.starts_with("unexpected_argument") {
        format!(
            "The model passes {arg}, which is not a parameter of {tool}: list the exact parameters in the tool \
             descriptions, enable strict JSON-schema tool calling, or accept (and ignore) {arg} in the tool."
        )
    } else if template.starts_with("missing_argument") {
        format!(
            "The model omits {arg}: make sure the declared schema of {tool} marks it required (if it already \
             does, the model is not following the schema: describe the parameter with an example and enable \
             strict tool calling), and validate arguments in the harness with a corrective message before \
             calling the tool."
        )
    } else if template.starts_with("wrong_type") {
        format!(
            "The model sends {arg} with the wrong type: declare its type (with an example value) in the schema of \
             {tool}, enable strict tool calling, or coerce the value in the harness."
        )
    } else {
        format!(
            "Validate the arguments of {tool} against the schema in the harness, return the exact problem to the model, \
             and enable strict JSON-schema tool calling."
        )
    }
}

/// Describes one finding.
/// The numbers a finding's text quotes.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Numbers {
    /// Traces with the finding.
    pub(crate) traces: usize,
    /// Spans with it.
    pub(crate) spans: usize,
    /// The peers' median, for outliers.
    pub(crate) median: Option<f64>,
    /// The worst value, for outliers.
    pub(crate) worst: f64,
    /// Refusals in one run that make a refusal loop (`--refusal-loop-threshold`).
    pub(crate) refusal_loop_threshold: usize,
}

pub(crate) fn describe(
    key: &FindingKey,
    places: &[String],
    argument: Option<&str>,
    numbers: Numbers,
) -> Text {
    let Numbers {
        traces,
        spans,
        median,
        worst,
        refusal_loop_threshold: loop_at,
    } = numbers;
    let tool = key.tool.as_deref().unwrap_or("?");
    // One tool, or a cause shared by several (then the key names no tool).
    let tools = places;
    let whom = who(tools, "tools");
    let plain_whom = whom.replace('`', "");
    let several = tools.len() > 1;
    let model = key.model.as_deref().unwrap_or("the model");
    let template = key.template.as_deref().unwrap_or("");
    // The cause as it shows in Markdown: error text from the traces is a code span, so a
    // `[link](…)` or `*` in it is shown, not rendered.
    let cause = md_code(template);
    let in_traces = plural(traces, "trace", "traces");
    match key.mode {
        Mode::ToolError => Text {
            title: if several {
                format!("{} tools fail: {cause}", tools.len())
            } else {
                format!("{whom} fails: {cause}")
            },
            signal: format!("{} of {whom} failed with {cause} in {in_traces}.", plural(spans, "call", "calls")),
            fix: tool_error_fix(&whom, template),
            deeper: format!(
                "Why {} {plain_whom} fail with '{template}'? Which inputs trigger it, and what does the agent do after the error?"
            , if several { "do" } else { "does" }),
        },
        Mode::HallucinatedTool => Text {
            title: format!("Model calls nonexistent tool {}", md_code(tool)),
            signal: format!(
                "{} was requested or called although it is not among the declared tools (or the runtime \
                 answered that it does not exist) in {in_traces}.",
                md_code(tool)
            ),
            fix: format!(
                "List the available tools explicitly in the system prompt and enable strict tool calling so only \
                 declared names can be produced; if {} is a capability users need, implement it or map it to \
                 an existing tool.",
                md_code(tool)
            ),
            deeper: format!(
                "Why does the model call the nonexistent tool {tool}? What was it trying to do, and which declared tool should it have used?"
            ),
        },
        Mode::InvalidToolArgs => Text {
            title: if several {
                format!("{} tools reject arguments: {cause}", tools.len())
            } else {
                format!("{whom} rejects arguments: {cause}")
            },
            signal: format!(
                "{} of {whom} were rejected for their arguments ({cause}) in {in_traces}.",
                plural(spans, "call", "calls")
            ),
            fix: arg_fix(&whom, template, argument),
            deeper: format!(
                "Why does the model call {plain_whom} with invalid arguments ({template})? Compare the declared schema with what it sent."
            ),
        },
        Mode::RepeatedToolLoop => Text {
            title: if several {
                format!("{} tools called repeatedly with identical arguments", tools.len())
            } else {
                format!("{whom} called repeatedly with identical arguments")
            },
            signal: format!(
                "{in_traces} {} {whom} with the same arguments several times, back to back or in a cycle with the same one or two other calls ({} repeated calls in all).",
                agree(traces, "calls", "call"),
                spans
            ),
            fix: "Detect repeated identical calls in the harness and stop them (or answer \"already called with \
                  these arguments; the result was ...\"); add a prompt rule to change strategy when a call returns \
                  the same result twice."
                .to_string(),
            deeper: format!(
                "Why does the agent call {plain_whom} again and again with the same arguments? What did it expect to change?"
            ),
        },
        Mode::RefusalLoop => Text {
            title: "Model refuses repeatedly (refusal loop)".to_string(),
            signal: format!(
                "{in_traces} {} {loop_at} or more refusals ({spans} refusing model calls).",
                agree(traces, "contains", "contain")
            ),
            fix: "Review the prompt and task framing that trigger the refusals (state the authorization and that the \
                  user owns the accounts); stop re-prompting after a refusal and surface it instead of looping."
                .to_string(),
            deeper: "What makes the model refuse these tasks, and why do re-prompts not help?".to_string(),
        },
        Mode::Refusal => Text {
            title: match loop_at {
                3 => "Model refuses once or twice in a run".to_string(),
                2 => "Model refuses once in a run".to_string(),
                n => format!("Model refuses fewer than {n} times in a run"),
            },
            signal: format!(
                "{in_traces} {} {} before the run goes on.",
                agree(traces, "contains", "contain"),
                match loop_at {
                    3 => "one or two refusals".to_string(),
                    2 => "one refusal".to_string(),
                    n => format!("fewer than {n} refusals"),
                }
            ),
            fix: "Give the model the context it asks for up front (authorization, data ownership) so the first \
                  answer is not a refusal; track refusals as a metric."
                .to_string(),
            deeper: "Which requests make the model refuse at first, and what made it continue?".to_string(),
        },
        Mode::TurnExhaustion => Text {
            title: format!("Runs hit the turn/recursion limit: {cause}"),
            signal: format!(
                "{in_traces} {} at the turn, step or recursion budget ({cause}).",
                agree(traces, "stops", "stop")
            ),
            fix: "Find where progress stalls in the examples; add a planning step and an explicit stop condition, \
                  keep a summary of what was already fetched so the agent does not re-read, and raise the limit \
                  only for runs that still make progress."
                .to_string(),
            deeper: "Why do these runs exhaust their turn budget? Where do they stop making progress?".to_string(),
        },
        Mode::ProviderError => {
            let whom = if places.is_empty() {
                md_code(model)
            } else {
                who(places, "models")
            };
            let plain_whom = whom.replace('`', "");
            Text {
            title: if several {
                format!("Provider failure on {} models: {}", places.len(), failure_kind(template))
            } else {
                format!("Provider failure on {whom}: {}", failure_kind(template))
            },
            signal: format!(
                "{} to {whom} failed with {} in {in_traces}.",
                plural(spans, "call", "calls"),
                failure_kind(template)
            ),
            fix: provider_fix(template, &whom),
            deeper: format!(
                "How do {} failures of {plain_whom} affect the runs, and does the harness retry or abort?",
                failure_kind(template)
            ),
        }
        }
        Mode::PrematureSuccess => Text {
            title: "Runs claim success without calling any tool".to_string(),
            signal: format!(
                "{in_traces} {} after model calls only, claiming the work done (a success outcome, or a final \
                 answer saying so; no tool call, no error, no question back to the user), although the model \
                 was offered tools or other runs of the same agent call them.",
                agree(traces, "finishes", "finish")
            ),
            fix: "Require evidence before finishing: have the harness reject a final answer when no tool was called \
                  for a task that needs one (or add a verification step), and add a prompt rule never to claim \
                  completion without having called the apps."
                .to_string(),
            deeper: "Why do these runs declare the task done without calling any tool?".to_string(),
        },
        Mode::SilentFailure => Text {
            title: format!("Runs fail without any error status ({cause})"),
            signal: format!(
                "{in_traces} {} as failures ({cause}) while no span has an error status, so error dashboards \
                 miss them.",
                agree(traces, "ends", "end")
            ),
            fix: "Propagate failure to telemetry (set the root span's status to ERROR with a message when the \
                  agent gives up), and when a lookup comes back empty, teach the agent to broaden the search or \
                  ask for clarification instead of giving up."
                .to_string(),
            deeper: "Why do these runs give up without an error? What did the last tool calls return?".to_string(),
        },
        Mode::LatencyOutlier => {
            let what = key
                .tool
                .as_deref()
                .map(|t| format!("{} calls", md_code(t)))
                .unwrap_or_else(|| format!("{} calls", md_code(model)));
            Text {
                title: format!("{what} far slower than usual"),
                signal: format!(
                    "{} took far longer than {} peers (median {}, worst {}) in {in_traces}.",
                    plural(spans, "span", "spans"),
                    if spans == 1 { "its" } else { "their" },
                    median.map(ms).unwrap_or_else(|| "?".into()),
                    ms(worst)
                ),
                fix: "Set per-call timeouts and hedge or retry slow calls; check the examples for pathological inputs \
                      (huge prompts, large result sets); stream or use a faster model/endpoint for this step."
                    .to_string(),
                deeper: format!("What makes these {} so slow, and what do the runs do while waiting?", what.replace('`', "")),
            }
        }
        Mode::TokenOutlier => Text {
            title: format!("{} calls with far more tokens than usual", md_code(model)),
            signal: format!(
                "{} used far more tokens than {} peers (median {:.0}, worst {:.0}) in {in_traces}.",
                plural(spans, "call", "calls"),
                if spans == 1 { "its" } else { "their" },
                median.unwrap_or(0.0),
                worst
            ),
            fix: "Cap what goes into the prompt: truncate or summarise tool outputs and history, set a token budget \
                  per call, and alert on calls above the threshold."
                .to_string(),
            deeper: format!("What fills the prompt of these {model} calls with so many tokens?"),
        },
    }
}
