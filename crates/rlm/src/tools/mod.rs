//! The tools agents get: names, descriptions, argument schemas and the trace
//! tools themselves.
//!
//! Wire format seen by the model: a tool result is the tool's result struct as
//! compact JSON, or `{"error": "..."}` when the arguments were invalid or the
//! tool failed. Argument JSON Schemas are generated from the typed argument
//! structs with `schemars`, so the schema the model sees and the parser that
//! checks its arguments can never disagree.

pub(crate) mod failure_modes;
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
}

/// Arguments of `final_answer`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct FinalAnswerArgs {
    /// The complete final report in Markdown, with citations.
    pub(crate) answer: String,
}

/// An error result for the model.
pub(crate) fn error_json(message: &str) -> String {
    serde_json::json!({ "error": message }).to_string()
}

/// Parses tool arguments into `T`; the error text is meant for the model.
pub(crate) fn parse_args<T: DeserializeOwned>(args: &serde_json::Value) -> Result<T, String> {
    serde_json::from_value(args.clone()).map_err(|e| format!("invalid arguments: {e}"))
}

/// Truncates `s` to at most `max` characters, saying so.
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
        spec::<SearchTraceArgs>(
            "search_trace",
            "Regex search over the raw JSON of every span of one trace. Returns bounded match records (span id, name, kind, status, the match and context), the total match count and has_more.",
        ),
        spec::<SearchSpanArgs>(
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
        "The full original of a context item that was compacted into a summary (ids like ctx-3 appear in the summaries).",
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
            "Regex search over the repository's files; returns path:line: text lines.",
        ));
        v.push(spec::<repo::ReadFileArgs>(
            "read_file",
            "Read lines of a repository file, numbered, so that code can be cited as path:line.",
        ));
    }
    if set.git {
        v.push(spec::<repo::GitLogArgs>(
            "git_log",
            "Commit history (optionally of one path or a revision range).",
        ));
        v.push(spec::<repo::GitShowArgs>(
            "git_show",
            "One commit: message, stat and patch.",
        ));
        v.push(spec::<repo::GitDiffArgs>(
            "git_diff",
            "Diff between two revisions, or between a revision and the working tree.",
        ));
        v.push(spec::<repo::GitBlameArgs>(
            "git_blame",
            "Who last changed each line of a file (optionally a line range).",
        ));
        v.push(spec::<repo::GitReadFileArgs>(
            "git_read_file",
            "A file's content at a given revision.",
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

/// Runs a trace tool; `None` when `name` is not a trace tool.
pub(crate) fn run_trace_tool(
    ds: &Dataset,
    name: &str,
    args: &serde_json::Value,
) -> Option<Result<String, String>> {
    let budget = ScanBudget::default();
    let err = |e: halo_query::QueryError| e.to_string();
    Some(match name {
        "get_dataset_overview" => parse_args::<OverviewArgs>(args).and_then(|a| {
            let f = a.filters.unwrap_or_default();
            halo_query::overview(ds, &f, budget)
                .map_err(err)
                .and_then(|r| to_json(&r))
        }),
        "get_failure_modes" => parse_args::<failure_modes::FailureModesArgs>(args)
            .and_then(|a| failure_modes::failure_modes(ds, a)),
        "query_traces" => parse_args::<QueryArgs>(args).and_then(|a| {
            halo_query::query_traces(ds, &a, budget)
                .map_err(err)
                .and_then(|r| to_json(&r))
        }),
        "count_traces" => parse_args::<CountArgs>(args).and_then(|a| {
            let f = a.filters.unwrap_or_default();
            halo_query::count_traces(ds, &f, budget)
                .map_err(err)
                .and_then(|r| to_json(&r))
        }),
        "view_trace" => parse_args::<ViewTraceArgs>(args).and_then(|a| {
            halo_query::view_trace(ds, &a)
                .map_err(err)
                .and_then(|r| to_json(&r))
        }),
        "view_spans" => parse_args::<ViewSpansArgs>(args).and_then(|a| {
            halo_query::view_spans(ds, &a)
                .map_err(err)
                .and_then(|r| to_json(&r))
        }),
        "search_trace" => parse_args::<SearchTraceArgs>(args).and_then(|a| {
            halo_query::search_trace(ds, &a)
                .map_err(err)
                .and_then(|r| to_json(&r))
        }),
        "search_span" => parse_args::<SearchSpanArgs>(args).and_then(|a| {
            halo_query::search_span(ds, &a)
                .map_err(err)
                .and_then(|r| to_json(&r))
        }),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

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
        assert_eq!(props("get_context_item"), vec!["item_id"]);
        assert_eq!(props("final_answer"), vec!["answer"]);
        assert!(props("search_trace").contains(&"pattern".to_owned()));
        assert!(props("view_spans").contains(&"span_ids".to_owned()));
        assert_eq!(props("get_failure_modes"), vec!["filters"]);
        assert_eq!(props("sql"), vec!["query"]);
    }

    #[test]
    fn cap_text_respects_char_boundaries() {
        let s = cap_text("héllo wörld".repeat(10), 7);
        assert!(s.contains("truncated"));
    }
}
