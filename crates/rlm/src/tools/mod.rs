//! The tools agents get: names, descriptions, argument schemas and the trace
//! tools themselves.
//!
//! Wire format seen by the model: a tool result is the tool's result struct as
//! compact JSON, or `{"error": "..."}` when the arguments were invalid or the
//! tool failed. A JSON result always fits the result cap whole ([`fit`]): what does
//! not fit is left out and the JSON says so. Argument JSON Schemas are generated
//! from the typed argument structs with `schemars`, so the schema the model sees
//! and the parser that checks its arguments can never disagree; argument names
//! follow the reference's tools, and unknown arguments are errors that list the
//! valid ones.

pub(crate) mod failure_modes;
pub(crate) mod fit;
pub(crate) mod repo;
pub(crate) mod sql;

use halo_index::Dataset;
use halo_provider::ToolSpec;
use halo_query::{
    QueryArgs, ScanBudget, SearchSpanArgs, SearchTraceArgs, TraceFilters, ViewSpansArgs,
    ViewTraceArgs,
};
use schemars::JsonSchema;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

/// Largest tool result sent to a model, in characters.
pub(crate) const MAX_RESULT_CHARS: usize = 160_000;

/// Arguments of `get_dataset_overview`.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct OverviewArgs {
    /// Restrict the overview to matching traces (default: all traces).
    #[serde(default)]
    pub(crate) filters: Option<TraceFilters>,
}

/// Arguments of `count_traces`.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct CountArgs {
    /// Which traces to count (default: all traces).
    #[serde(default)]
    pub(crate) filters: Option<TraceFilters>,
}

/// Arguments of `synthesize_traces`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct SynthesizeArgs {
    /// Trace ids to summarize together (1 to 20, from earlier tool results).
    pub(crate) trace_ids: Vec<String>,
    /// What the summary should concentrate on, e.g. "why the file tools fail".
    #[serde(default)]
    pub(crate) focus: Option<String>,
}

/// Arguments of `call_subagent`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct SubagentArgs {
    /// The subagent's complete task: the question, the filters or trace ids to
    /// look at, and what to report back.
    pub(crate) input: String,
}

/// Arguments of `get_context_item`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct ContextItemArgs {
    /// The id of a compacted context item, e.g. `ctx-3`.
    pub(crate) item_id: String,
    /// Where to start, in bytes of the item (default 0): a long item comes in parts, each
    /// saying where the next starts.
    #[serde(default)]
    pub(crate) offset: Option<usize>,
}

/// Arguments of `final_answer`. Unlike the other tools', fields beside `answer` are
/// accepted (and named in the result as ignored): models outside OpenAI's strict mode add
/// `confidence` or `summary`, and refusing the whole report over them threw away a
/// finished run.
#[derive(Debug, Deserialize, JsonSchema)]
pub(crate) struct FinalAnswerArgs {
    /// The complete final report in Markdown, with citations.
    pub(crate) answer: String,
}

/// The fields of `final_answer`'s arguments other than `answer`, in order.
pub(crate) fn ignored_final_answer_fields(args: &serde_json::Value) -> Vec<&str> {
    args.as_object()
        .map(|o| {
            o.keys()
                .map(String::as_str)
                .filter(|k| *k != "answer")
                .collect()
        })
        .unwrap_or_default()
}

/// Default `context_buffer_chars` of the search tools (the reference's).
const SEARCH_DEFAULT_CONTEXT: usize = 100;
/// Largest `context_buffer_chars`.
const SEARCH_MAX_CONTEXT: usize = 2_000;
/// Default `max_matches` of the search tools (the reference's).
const SEARCH_DEFAULT_MATCHES: usize = 50;
/// Largest `max_matches` (the reference's). One search returns at most
/// `halo_query::MAX_MATCHES`; above that the answer says how many are missing.
const SEARCH_MAX_MATCHES: usize = 500;

fn search_default_context() -> usize {
    SEARCH_DEFAULT_CONTEXT
}

fn search_default_matches() -> usize {
    SEARCH_DEFAULT_MATCHES
}

/// Arguments of `search_trace`, named as the reference names them; halo's earlier names
/// (`pattern`, `context_chars`) are accepted as aliases.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct SearchTraceToolArgs {
    /// The trace to search.
    pub(crate) trace_id: String,
    /// A regular expression (Rust syntax) over each span's raw JSON.
    #[serde(alias = "pattern")]
    pub(crate) regex_pattern: String,
    /// Characters of context on each side of a match (default 100, at most 2000).
    #[serde(default = "search_default_context", alias = "context_chars")]
    #[schemars(range(max = 2000))]
    pub(crate) context_buffer_chars: usize,
    /// Most matches to return (default 50, at most 500).
    #[serde(default = "search_default_matches")]
    #[schemars(range(min = 1, max = 500))]
    pub(crate) max_matches: usize,
    /// Matches to pass over first (default 0): the previous answer's `next_offset`.
    #[serde(default)]
    pub(crate) offset: usize,
}

/// Arguments of `search_span`: those of `search_trace` plus the span.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct SearchSpanToolArgs {
    /// The trace.
    pub(crate) trace_id: String,
    /// The span to search.
    pub(crate) span_id: String,
    /// A regular expression (Rust syntax) over the span's raw JSON.
    #[serde(alias = "pattern")]
    pub(crate) regex_pattern: String,
    /// Characters of context on each side of a match (default 100, at most 2000).
    #[serde(default = "search_default_context", alias = "context_chars")]
    #[schemars(range(max = 2000))]
    pub(crate) context_buffer_chars: usize,
    /// Most matches to return (default 50, at most 500).
    #[serde(default = "search_default_matches")]
    #[schemars(range(min = 1, max = 500))]
    pub(crate) max_matches: usize,
    /// Matches to pass over first (default 0): the previous answer's `next_offset`.
    #[serde(default)]
    pub(crate) offset: usize,
}

/// Checks the search bounds, naming the arguments as the schema does (the query crate
/// would name its own fields), and returns the `max_matches` one search can take.
fn search_bounds(context: usize, max: usize) -> Result<usize, String> {
    if context > SEARCH_MAX_CONTEXT {
        return Err(format!(
            "invalid context_buffer_chars: {context} is above {SEARCH_MAX_CONTEXT}"
        ));
    }
    if max == 0 || max > SEARCH_MAX_MATCHES {
        return Err(format!(
            "invalid max_matches: {max} is outside 1..={SEARCH_MAX_MATCHES}"
        ));
    }
    Ok(max.min(halo_query::MAX_MATCHES))
}

/// An error result for the model.
pub(crate) fn error_json(message: &str) -> String {
    serde_json::json!({ "error": message }).to_string()
}

/// Parses tool arguments into `T`; the error text is meant for the model, and names the
/// argument at fault (`filters.model_names: invalid type: string "x", expected a
/// sequence`), which serde alone does not for a wrong type or value.
pub(crate) fn parse_args<T: DeserializeOwned>(args: &serde_json::Value) -> Result<T, String> {
    serde_path_to_error::deserialize(args.clone()).map_err(|e| format!("invalid arguments: {e}"))
}

/// Parses tool arguments into `T`, refusing fields its schema does not have.
///
/// For argument structs defined outside this crate (`halo_query`'s), which do not deny
/// unknown fields themselves: a misspelt or foreign argument would otherwise be ignored
/// silently. The error reads like serde's `deny_unknown_fields` one, which the other
/// tools give.
pub(crate) fn parse_args_strict<T: DeserializeOwned + JsonSchema>(
    args: &serde_json::Value,
) -> Result<T, String> {
    if let Some(given) = args.as_object() {
        let schema = serde_json::to_value(schemars::schema_for!(T)).unwrap_or_default();
        if let Some(known) = schema.get("properties").and_then(|p| p.as_object()) {
            if let Some(unknown) = given.keys().find(|k| !known.contains_key(*k)) {
                let expected: Vec<String> = known.keys().map(|k| format!("`{k}`")).collect();
                return Err(format!(
                    "invalid arguments: unknown field `{unknown}`, expected one of {}",
                    expected.join(", ")
                ));
            }
        }
    }
    parse_args(args)
}

/// Truncates `s` to at most `max` characters, saying so.
/// The part of context item `item_id` (`text`) from byte `offset` (moved back to a
/// character's start), at most [`MAX_RESULT_CHARS`], ending with where the next part
/// starts when there is more.
pub(crate) fn context_item_part(
    item_id: &str,
    text: &str,
    offset: usize,
) -> Result<String, String> {
    if offset > 0 && offset >= text.len() {
        return Err(format!(
            "offset {offset} is past the end of {item_id:?} ({} bytes)",
            text.len()
        ));
    }
    let mut start = offset;
    while !text.is_char_boundary(start) {
        start -= 1;
    }
    let rest = &text[start..];
    if rest.len() <= MAX_RESULT_CHARS {
        return Ok(rest.to_owned());
    }
    let part = halo_trace::head(rest, MAX_RESULT_CHARS);
    let next = start + part.len();
    Ok(format!(
        "{part}\n... [part: bytes {start}..{next} of {}; the rest with get_context_item(item_id: {item_id:?}, offset: {next})]",
        text.len()
    ))
}

pub(crate) fn cap_text(mut s: String, max: usize) -> String {
    if s.len() <= max {
        return s;
    }
    let cut = halo_trace::head(&s, max).len();
    let total = s.len();
    s.truncate(cut);
    s.push_str(&format!(
        "\n... [truncated: {total} bytes in full; narrow the request]"
    ));
    s
}

fn spec<T: JsonSchema>(name: &str, description: &str) -> ToolSpec {
    let mut schema = serde_json::to_value(schemars::schema_for!(T)).unwrap_or_default();
    if let Some(obj) = schema.as_object_mut() {
        obj.remove("$schema");
        obj.remove("title");
        obj.remove("description");
        obj.entry("type").or_insert_with(|| "object".into());
        obj.entry("properties")
            .or_insert_with(|| serde_json::Value::Object(Default::default()));
        // Every tool refuses arguments its schema lacks (`deny_unknown_fields`, or
        // `parse_args_strict`), so the schema says so too.
        obj.insert("additionalProperties".to_owned(), false.into());
    }
    ToolSpec {
        name: name.to_owned(),
        description: description.to_owned(),
        parameters: schema,
    }
}

/// Which tools an agent gets.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ToolSet {
    pub(crate) subagents: bool,
    pub(crate) final_answer: bool,
    pub(crate) repo: bool,
    pub(crate) git: bool,
}

/// The tool specs for `set`, in a stable order.
pub(crate) fn specs(set: ToolSet) -> Vec<ToolSpec> {
    let mut v = vec![
        spec::<OverviewArgs>(
            "get_dataset_overview",
            "Dataset-level statistics for all traces or those matching `filters`: trace and span counts, error and tool-error counts, services, models, agents, tools with error rates, token totals, duration distribution, an error taxonomy with sample trace ids, and up to 20 sample trace ids. Call this first.",
        ),
        spec::<failure_modes::FailureModesArgs>(
            "get_failure_modes",
            "The map of the failure landscape for all traces or those matching `filters`: deterministic detectors (no model) over every span find tool errors (by tool and masked error template), hallucinated tools, invalid tool arguments, repeated tool-call loops, refusals, turn-budget exhaustion, provider failures, premature success, silent failures and latency/token outliers. Returns the modes with trace counts and shares, and the most impactful findings with their tool/template, trace count, 3 example trace ids with the span ids that show it, and a fix direction. Call this right after get_dataset_overview, then verify and explain the findings.",
        ),
        spec::<sql::SqlArgs>("sql", sql::description()),
        spec::<QueryArgs>(
            "query_traces",
            "List summaries of traces matching `filters`, paginated with `limit` and `offset` and ordered by `sort`. Each row has the trace id, times, span count, error counts, services, models, agents, tools used, tokens, error groups and raw_jsonl_bytes (use it to decide between view_trace and search_trace).",
        ),
        spec::<CountArgs>(
            "count_traces",
            "Count the traces matching `filters`. Cheap; use it to turn observations into frequencies.",
        ),
        spec::<ViewTraceArgs>(
            "view_trace",
            "All spans of one trace (or a page of them with offset/limit), each attribute value capped at about 4 KB with a marker giving the original length. When the result would be too large it returns an `oversized` summary instead (span sizes, top span names, error spans, largest spans): then use search_trace and view_spans.",
        ),
        spec::<ViewSpansArgs>(
            "view_spans",
            "Chosen spans of one trace by id (up to 200), with attribute values capped at about 16 KB: the way to read more of a truncated payload, or the parent and siblings of a search hit. Unknown span ids are listed in missing_span_ids.",
        ),
        spec::<SearchTraceToolArgs>(
            "search_trace",
            "Regex search over the raw JSON of every span of one trace. Returns bounded match records (span id, name, kind, status, the match cut to 1,000 characters and context), the total match count, has_more and next_offset (pass it as offset for the matches after these).",
        ),
        spec::<SearchSpanToolArgs>(
            "search_span",
            "Regex search over the raw JSON of one span, for payloads too large to read whole.",
        ),
        spec::<SynthesizeArgs>(
            "synthesize_traces",
            "Summarize up to 20 traces at once: each is rendered compactly (span tree, errors, model and tool calls, payload heads) and summarized by a synthesis model with your `focus`. Good for comparing traces of one failure group.",
        ),
    ];
    if set.subagents {
        v.push(spec::<SubagentArgs>(
            "call_subagent",
            "Start a subagent with the same trace tools on one focused, self-contained task and get its written answer back. Several calls in one turn run in parallel.",
        ));
    }
    v.push(spec::<ContextItemArgs>(
        "get_context_item",
        "The full original of a context item: a compacted turn, or a tool result cut to fit (ids like ctx-3 appear where they were cut). A long item comes in parts: each says the offset of the next.",
    ));
    if set.repo {
        v.push(spec::<repo::RepoTreeArgs>(
            "view_repo_tree",
            "The directory tree of the harness repository (honours .gitignore).",
        ));
        v.push(spec::<repo::GlobArgs>(
            "glob_files",
            "Repository files whose relative path matches a glob such as `**/*.py`.",
        ));
        v.push(spec::<repo::GrepArgs>(
            "grep_files",
            "Regex search over the repository's files (optionally only those matching glob_pattern); returns path:line: text lines.",
        ));
        v.push(spec::<repo::ReadFileArgs>(
            "read_file",
            "Read a window of lines of a repository file (offset, limit), numbered, so that code can be cited as path:line.",
        ));
    }
    if set.git {
        v.push(spec::<repo::GitLogArgs>(
            "git_log",
            "Commit history, newest first: optionally of a revision range or one path, within since/until dates, or only commits that changed an exact string (pickaxe_string, git -S) or lines matching a regex (pickaxe_regex, git -G).",
        ));
        v.push(spec::<repo::GitShowArgs>(
            "git_show",
            "One commit: message and changed-file stat; include_patch: true adds the patch.",
        ));
        v.push(spec::<repo::GitDiffArgs>(
            "git_diff",
            "Diff between two revisions (from_ref, to_ref), or between a revision and the working tree: a stat summary by default, the patch with stat_only: false.",
        ));
        v.push(spec::<repo::GitBlameArgs>(
            "git_blame",
            "Who last changed each line of a file (optionally a line range).",
        ));
        v.push(spec::<repo::GitReadFileArgs>(
            "git_read_file",
            "A window of lines (offset, limit) of a file as it was at a given revision, numbered.",
        ));
    }
    if set.final_answer {
        v.push(spec::<FinalAnswerArgs>(
            "final_answer",
            "Finish the investigation with the complete final report (Markdown, every claim cited as [trace:ID] or [span:TRACE_ID:SPAN_ID]). Call it exactly once, alone.",
        ));
    }
    v
}

/// The `final_answer` spec alone (for the last, forced turn).
pub(crate) fn final_answer_only() -> Vec<ToolSpec> {
    specs(ToolSet {
        subagents: false,
        final_answer: true,
        repo: false,
        git: false,
    })
    .into_iter()
    .filter(|s| s.name == "final_answer")
    .collect()
}

fn to_json<T: Serialize>(v: &T) -> Result<String, String> {
    serde_json::to_string(v).map_err(|e| format!("cannot encode result: {e}"))
}

/// What to ask for instead when a view is over the result cap even as a summary.
const VIEW_HINT: &str =
    "page with view_trace(trace_id, offset, limit) or ask view_spans for fewer span ids";

/// Runs a trace tool; `None` when `name` is not a trace tool.
///
/// Every JSON answer fits in [`fit::JSON_BUDGET`] bytes (see [`fit`]), so the cap the
/// agent loop applies never cuts one in the middle.
pub(crate) fn run_trace_tool(
    ds: &Dataset,
    name: &str,
    args: &serde_json::Value,
) -> Option<Result<String, String>> {
    let budget = ScanBudget::default();
    let cap = fit::JSON_BUDGET;
    let err = |e: halo_query::QueryError| e.to_string();
    let result = match name {
        "get_dataset_overview" => parse_args::<OverviewArgs>(args).and_then(|a| {
            let f = a.filters.unwrap_or_default();
            halo_query::overview(ds, &f, budget)
                .map_err(err)
                .and_then(|r| fit::overview(r, cap))
        }),
        "get_failure_modes" => parse_args::<failure_modes::FailureModesArgs>(args)
            .and_then(|a| failure_modes::failure_modes(ds, a)),
        "query_traces" => parse_args_strict::<QueryArgs>(args).and_then(|a| {
            halo_query::query_traces(ds, &a, budget)
                .map_err(err)
                .and_then(|r| fit::trace_list(r, cap))
        }),
        "count_traces" => parse_args::<CountArgs>(args).and_then(|a| {
            let f = a.filters.unwrap_or_default();
            halo_query::count_traces(ds, &f, budget)
                .map_err(err)
                .and_then(|r| to_json(&r))
        }),
        "view_trace" => parse_args_strict::<ViewTraceArgs>(args).and_then(|a| {
            halo_query::view_trace(ds, &a)
                .map_err(err)
                .and_then(|r| to_json(&r))
        }),
        "view_spans" => parse_args_strict::<ViewSpansArgs>(args).and_then(|a| {
            halo_query::view_spans(ds, &a)
                .map_err(err)
                .and_then(|r| to_json(&r))
        }),
        "search_trace" => parse_args::<SearchTraceToolArgs>(args).and_then(|a| {
            let per_call = search_bounds(a.context_buffer_chars, a.max_matches)?;
            let q = SearchTraceArgs {
                trace_id: a.trace_id,
                pattern: a.regex_pattern,
                context_chars: a.context_buffer_chars,
                max_matches: per_call,
                offset: a.offset,
            };
            halo_query::search_trace(ds, &q)
                .map_err(err)
                .and_then(|r| fit::search_result(r, a.max_matches, a.offset, per_call, cap))
        }),
        "search_span" => parse_args::<SearchSpanToolArgs>(args).and_then(|a| {
            let per_call = search_bounds(a.context_buffer_chars, a.max_matches)?;
            let q = SearchSpanArgs {
                trace_id: a.trace_id,
                span_id: a.span_id,
                pattern: a.regex_pattern,
                context_chars: a.context_buffer_chars,
                max_matches: per_call,
                offset: a.offset,
            };
            halo_query::search_span(ds, &q)
                .map_err(err)
                .and_then(|r| fit::search_result(r, a.max_matches, a.offset, per_call, cap))
        }),
        _ => return None,
    };
    // The lists above are fitted; anything else (a view's envelope, say) is replaced by
    // a note rather than cut.
    let hint = match name {
        "view_trace" | "view_spans" => VIEW_HINT,
        _ => "narrow the request (filters, limit, max_matches)",
    };
    Some(result.map(|text| fit::guard(text, cap, hint)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_wrong_type_or_value_names_the_argument() {
        let bad = |args: serde_json::Value| parse_args_strict::<QueryArgs>(&args).unwrap_err();
        let e = bad(serde_json::json!({"limit": 2, "offset": -3}));
        assert!(e.starts_with("invalid arguments: offset: "), "{e}");
        let e = bad(serde_json::json!({"filters": {"model_names": "gpt-5.4"}}));
        assert!(
            e.starts_with("invalid arguments: filters.model_names: "),
            "{e}"
        );
    }

    #[test]
    fn a_long_context_item_comes_in_parts_that_make_it_whole() {
        let text: String = (0..120_000)
            .map(|i| if i % 7 == 0 { 'é' } else { 'a' })
            .collect();
        let text = text.repeat(2);
        let mut whole = String::new();
        let mut offset = 0;
        for _ in 0..10 {
            let part = context_item_part("ctx-1", &text, offset).unwrap();
            match part.rsplit_once("\n... [part: bytes ") {
                Some((body, note)) => {
                    whole.push_str(body);
                    let next = note
                        .rsplit_once("offset: ")
                        .unwrap()
                        .1
                        .trim_end_matches(")]");
                    offset = next.parse().unwrap();
                }
                None => {
                    whole.push_str(&part);
                    break;
                }
            }
        }
        assert_eq!(whole, text);
        // An offset inside a character starts at that character.
        let inside = text.char_indices().find(|(_, c)| *c == 'é').unwrap().0 + 1;
        assert!(context_item_part("ctx-1", &text, inside)
            .unwrap()
            .starts_with('é'));
        let past = context_item_part("ctx-1", &text, text.len()).unwrap_err();
        assert!(past.contains("past the end"), "{past}");
    }

    #[test]
    fn schemas_are_objects_with_reference_argument_names() {
        let all = specs(ToolSet {
            subagents: true,
            final_answer: true,
            repo: true,
            git: true,
        });
        for s in &all {
            assert_eq!(s.parameters["type"], "object", "{}", s.name);
            assert!(s.parameters.get("$schema").is_none());
        }
        let props = |n: &str| {
            all.iter().find(|s| s.name == n).unwrap().parameters["properties"]
                .as_object()
                .unwrap()
                .keys()
                .cloned()
                .collect::<Vec<_>>()
        };
        assert!(props("query_traces").contains(&"filters".to_owned()));
        assert!(props("query_traces").contains(&"limit".to_owned()));
        assert!(props("query_traces").contains(&"offset".to_owned()));
        assert_eq!(props("synthesize_traces"), vec!["focus", "trace_ids"]);
        assert_eq!(props("call_subagent"), vec!["input"]);
        // The reference's `item_id`, and halo's `offset` beside it for long items.
        assert_eq!(props("get_context_item"), vec!["item_id", "offset"]);
        assert_eq!(props("final_answer"), vec!["answer"]);
        // The reference's arguments, and halo's `offset` beside them to page on.
        assert_eq!(
            props("search_trace"),
            vec![
                "context_buffer_chars",
                "max_matches",
                "offset",
                "regex_pattern",
                "trace_id"
            ]
        );
        assert_eq!(
            props("search_span"),
            vec![
                "context_buffer_chars",
                "max_matches",
                "offset",
                "regex_pattern",
                "span_id",
                "trace_id"
            ]
        );
        assert!(props("view_spans").contains(&"span_ids".to_owned()));
        assert_eq!(props("get_failure_modes"), vec!["filters"]);
        assert_eq!(props("sql"), vec!["query"]);
    }

    #[test]
    fn every_schema_refuses_unknown_properties() {
        let all = specs(ToolSet {
            subagents: true,
            final_answer: true,
            repo: true,
            git: true,
        });
        for s in &all {
            assert_eq!(s.parameters["additionalProperties"], false, "{}", s.name);
        }
        let search = all.iter().find(|s| s.name == "search_trace").unwrap();
        let p = &search.parameters["properties"];
        assert_eq!(p["context_buffer_chars"]["default"], 100);
        assert_eq!(p["context_buffer_chars"]["maximum"], 2000);
        assert_eq!(p["max_matches"]["default"], 50);
        assert_eq!(p["max_matches"]["maximum"], 500);
        assert_eq!(
            search.parameters["required"],
            serde_json::json!(["trace_id", "regex_pattern"])
        );
    }

    /// `n` traces of two spans each; span `b` of every trace holds `needle` `hits` times.
    fn dataset(dir: &std::path::Path, n: usize, hits: usize) -> Dataset {
        let mut lines = String::new();
        for t in 0..n {
            for (span, parent) in [("a", ""), ("b", "a")] {
                let body = if span == "b" {
                    "needle ".repeat(hits)
                } else {
                    String::new()
                };
                lines.push_str(&format!(
                    r#"{{"trace_id":"trace-{t:04}","span_id":"{span}","parent_span_id":"{parent}","trace_state":"","name":"n-{span}","kind":"SPAN_KIND_INTERNAL","start_time":"2026-04-23T05:32:00.000000000Z","end_time":"2026-04-23T05:32:01.000000000Z","status":{{"code":"STATUS_CODE_OK","message":""}},"resource":{{"attributes":{{"service.name":"service-{t:04}-{pad}"}}}},"scope":{{"name":"s","version":"1"}},"attributes":{{"output.value":"{body}"}}}}"#,
                    pad = "p".repeat(200),
                ));
                lines.push('\n');
            }
        }
        let path = dir.join("traces.jsonl");
        std::fs::write(&path, lines).unwrap();
        let options = halo_index::OpenOptions {
            index_dir: Some(dir.join("idx")),
            ..Default::default()
        };
        Dataset::open(&[path], &options, &halo_index::NoProgress).unwrap()
    }

    fn run(ds: &Dataset, name: &str, args: serde_json::Value) -> Result<serde_json::Value, String> {
        run_trace_tool(ds, name, &args).unwrap().map(|text| {
            assert!(
                text.len() <= MAX_RESULT_CHARS,
                "{name}: {} bytes",
                text.len()
            );
            serde_json::from_str(&text).unwrap_or_else(|e| panic!("{name}: invalid JSON: {e}"))
        })
    }

    #[test]
    fn query_traces_with_a_large_limit_returns_valid_json_with_a_next_offset() {
        let dir = tempfile::tempdir().unwrap();
        let ds = dataset(dir.path(), 600, 1);
        let v = run(
            &ds,
            "query_traces",
            serde_json::json!({"limit": 500, "offset": 10}),
        )
        .unwrap();
        let kept = v["traces"].as_array().unwrap().len();
        assert!(kept > 0 && kept < 500, "{kept}");
        assert_eq!(v["truncated"], true);
        assert_eq!(v["omitted_traces"], 500 - kept);
        assert_eq!(v["next_offset"], 10 + kept);
        assert_eq!(v["total"], 600);
        // The next page starts where this one stopped.
        let next = run(
            &ds,
            "query_traces",
            serde_json::json!({"limit": 5, "offset": 10 + kept}),
        )
        .unwrap();
        assert_eq!(
            next["traces"][0]["trace_id"],
            format!("trace-{:04}", 10 + kept)
        );
        assert!(next.get("truncated").is_none());
    }

    #[test]
    fn search_tools_take_the_reference_arguments_and_halos_old_names() {
        let dir = tempfile::tempdir().unwrap();
        let ds = dataset(dir.path(), 2, 80);
        // The reference's names and defaults: 50 matches, 100 characters of context.
        let v = run(
            &ds,
            "search_trace",
            serde_json::json!({"trace_id": "trace-0000", "regex_pattern": "needle"}),
        )
        .unwrap();
        assert_eq!(v["matches"].as_array().unwrap().len(), 50);
        assert_eq!(v["total_matches"], 80);
        assert_eq!(v["has_more"], true);
        let context = v["matches"][10]["context"].as_str().unwrap();
        assert_eq!(context.len(), 100 + "needle".len() + 100, "{context}");
        let v = run(
            &ds,
            "search_span",
            serde_json::json!({"trace_id": "trace-0000", "span_id": "b", "regex_pattern": "needle",
                "context_buffer_chars": 3, "max_matches": 500}),
        )
        .unwrap();
        assert_eq!(v["matches"].as_array().unwrap().len(), 80);
        assert_eq!(v["matches"][10]["context"], "le needle ne");
        assert!(v.get("truncated").is_none());
        // halo's earlier names still work.
        let v = run(
            &ds,
            "search_trace",
            serde_json::json!({"trace_id": "trace-0000", "pattern": "needle", "context_chars": 0, "max_matches": 2}),
        )
        .unwrap();
        assert_eq!(v["matches"][0]["context"], "needle");
        assert_eq!(v["matches"].as_array().unwrap().len(), 2);
        // Bounds are the reference's, named as in the schema.
        let e = run(
            &ds,
            "search_trace",
            serde_json::json!({"trace_id": "trace-0000", "regex_pattern": "x", "max_matches": 501}),
        )
        .unwrap_err();
        assert!(e.contains("max_matches: 501 is outside 1..=500"), "{e}");
        let e = run(
            &ds,
            "search_trace",
            serde_json::json!({"trace_id": "trace-0000", "regex_pattern": "x", "context_buffer_chars": 2001}),
        )
        .unwrap_err();
        assert!(
            e.contains("context_buffer_chars: 2001 is above 2000"),
            "{e}"
        );
    }

    #[test]
    fn unknown_arguments_are_errors_that_name_the_valid_ones() {
        let dir = tempfile::tempdir().unwrap();
        let ds = dataset(dir.path(), 1, 1);
        let e = run(
            &ds,
            "search_trace",
            serde_json::json!({"trace_id": "trace-0000", "regex_pattern": "x", "context": 5}),
        )
        .unwrap_err();
        assert!(e.contains("unknown field `context`"), "{e}");
        assert!(e.contains("`context_buffer_chars`"), "{e}");
        for (tool, args) in [
            ("query_traces", serde_json::json!({"limit": 5, "page": 2})),
            (
                "view_trace",
                serde_json::json!({"trace_id": "trace-0000", "page": 2}),
            ),
            (
                "view_spans",
                serde_json::json!({"trace_id": "trace-0000", "span_ids": ["a"], "page": 2}),
            ),
        ] {
            let e = run(&ds, tool, args).unwrap_err();
            assert!(
                e.contains("unknown field `page`, expected one of"),
                "{tool}: {e}"
            );
            assert!(
                e.contains("`trace_id`") || e.contains("`limit`"),
                "{tool}: {e}"
            );
        }
        assert!(run(
            &ds,
            "view_trace",
            serde_json::json!({"trace_id": "trace-0000"})
        )
        .is_ok());
    }

    #[test]
    fn cap_text_respects_char_boundaries() {
        let s = cap_text("héllo wörld".repeat(10), 7);
        assert!(s.contains("truncated"));
    }
}
