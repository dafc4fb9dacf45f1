//! The agents' `sql(query)` tool description, generated from the real schemas.

use std::fmt::Write as _;
use std::sync::OnceLock;

use arrow_schema::SchemaRef;

use crate::convert::sql_type;
use crate::tables;

/// Example queries shown to agents: (what it answers, the SQL). Each runs on any dataset
/// (the tests run them).
pub const EXAMPLE_QUERIES: &[(&str, &str)] = &[
    (
        "count failures by tool",
        "SELECT tool_name, count(*) AS calls, sum(CASE WHEN is_error THEN 1 ELSE 0 END) AS failures \
         FROM tool_calls GROUP BY tool_name ORDER BY failures DESC LIMIT 20",
    ),
    (
        "error rate per model",
        "SELECT model, count(*) AS calls, avg(CASE WHEN is_error THEN 1.0 ELSE 0.0 END) AS error_rate \
         FROM llm_calls GROUP BY model ORDER BY error_rate DESC",
    ),
    (
        "slowest tool calls",
        "SELECT trace_id, span_id, tool_name, duration_ms FROM tool_calls ORDER BY duration_ms DESC LIMIT 10",
    ),
    (
        "traces where the same tool is called with identical arguments 5+ times",
        "SELECT trace_id, tool_name, arguments, count(*) AS n FROM tool_calls \
         GROUP BY trace_id, tool_name, arguments HAVING count(*) >= 5 ORDER BY n DESC LIMIT 20",
    ),
    (
        "most frequent error messages, numbers masked",
        "SELECT regexp_replace(error_message, '[0-9]+', 'N', 'g') AS template, count(*) AS n, \
         count(DISTINCT trace_id) AS traces FROM spans WHERE is_error GROUP BY 1 ORDER BY n DESC LIMIT 20",
    ),
    (
        "token-heaviest traces",
        "SELECT trace_id, total_tokens, llm_call_count, tool_call_count, duration_ms FROM traces \
         ORDER BY total_tokens DESC LIMIT 10",
    ),
    (
        "a JSON field of the tool arguments",
        "SELECT json_get_str(arguments, 'path') AS path, count(*) AS n FROM tool_calls \
         WHERE json_get_str(arguments, 'path') IS NOT NULL GROUP BY 1 ORDER BY n DESC LIMIT 20",
    ),
    (
        "which tools the models asked for (lists unnest)",
        "SELECT tool, count(*) AS n FROM (SELECT unnest(requested_tools) AS tool FROM llm_calls) GROUP BY tool ORDER BY n DESC",
    ),
    (
        "attribute keys of LLM spans (attributes is read from the source: filter first)",
        "SELECT key, count(*) AS spans FROM (SELECT unnest(json_object_keys(attributes)) AS key FROM spans \
         WHERE kind = 'LLM') GROUP BY key ORDER BY spans DESC, key LIMIT 30",
    ),
    (
        "error rate per agent over traces",
        "SELECT a AS agent, count(*) AS traces, avg(CASE WHEN has_errors THEN 1.0 ELSE 0.0 END) AS error_rate \
         FROM (SELECT unnest(agents) AS a, has_errors FROM traces) GROUP BY a ORDER BY error_rate DESC",
    ),
];

/// Short notes on the columns whose meaning is not obvious from the name; every name here
/// is a real column (tested).
pub(crate) const COLUMN_NOTES: &[(&str, &str, &str)] = &[
    (
        "spans",
        "kind",
        "LLM, TOOL, AGENT, CHAIN, RETRIEVER, EMBEDDING, RERANKER, GUARDRAIL, EVALUATOR or UNKNOWN",
    ),
    (
        "spans",
        "status_code",
        "STATUS_CODE_OK, STATUS_CODE_ERROR or STATUS_CODE_UNSET",
    ),
    ("spans", "is_error", "status is ERROR"),
    ("spans", "parent_span_id", "'' for a root span"),
    ("spans", "tool_args", "tool arguments (JSON text, capped)"),
    ("spans", "tool_result", "head of the tool result (capped)"),
    ("spans", "input_head", "head of the span input (capped)"),
    ("spans", "output_head", "head of the span output (capped)"),
    (
        "spans",
        "declared_tools",
        "tools an LLM span offered the model",
    ),
    ("spans", "requested_tools", "tools the model asked to call"),
    (
        "spans",
        "agent_name",
        "the agent the span itself names; NULL on spans under an agent named only on its own span (OpenInference), where traces.agents (join on trace_id) names the trace's agents",
    ),
    (
        "spans",
        "refusal",
        "a refusal the provider recorded as such (OpenAI's refusal field); refusals written as text are in output_head, and the diagnosis finds them there",
    ),
    ("spans", "line", "line in the source file"),
    (
        "spans",
        "attributes",
        "every span attribute as a JSON object text (json_get_str(attributes, 'key')); read from the source files when selected, so it is slow on many rows: filter on other columns first",
    ),
    ("traces", "span_count", "spans in the trace"),
    (
        "traces",
        "total_tokens",
        "tokens of the trace's model calls; agent and chain spans, which repeat their calls' usage, count only when nothing else has tokens (so it can differ from the sum over spans)",
    ),
    (
        "traces",
        "tool_names",
        "tools called; tool_calls[i] and tool_errors[i] count tool_names[i]",
    ),
    (
        "traces",
        "error_groups",
        "error kinds seen; error_group_spans[i] counts error_groups[i]",
    ),
    ("traces", "has_root", "a span without parent exists"),
    ("traces", "raw_bytes", "bytes of the trace's JSON"),
    (
        "traces",
        "priced_span_count",
        "spans that carry a cost: `cost` sums only these",
    ),
    (
        "tool_calls",
        "arguments",
        "tool arguments (JSON text, capped)",
    ),
    (
        "tool_calls",
        "result_head",
        "head of the tool result (capped)",
    ),
    ("llm_calls", "latency_ms", "duration of the LLM call"),
    (
        "llm_calls",
        "requested_tools",
        "tools the model asked to call",
    ),
];

/// The schema of every table, in [`crate::TABLE_NAMES`] order (no dataset needed).
pub fn table_schemas() -> Vec<(String, SchemaRef)> {
    static SCHEMAS: OnceLock<Vec<(String, SchemaRef)>> = OnceLock::new();
    SCHEMAS
        .get_or_init(|| {
            let state =
                tables::empty_state().expect("the built-in tables and views plan on empty data");
            tables::schemas_of(&state).expect("the built-in tables have schemas")
        })
        .clone()
}

/// The description of the agents' `sql(query)` tool: what it does, its limits, every table
/// with every column and type (from the real schemas), and example queries.
pub fn sql_tool_description() -> String {
    let mut s = String::from(
        "Run one read-only SQL query (Apache DataFusion, a PostgreSQL-like dialect) over the whole \
         trace dataset and get the rows back as JSON. Use it to count, group, rank and find patterns \
         across all traces at once; then look at single traces with the other tools.\n\
         Rules: exactly one SELECT (WITH, EXPLAIN, DESCRIBE table also work); no DDL/DML, no files, \
         no SET. Results are capped in rows and bytes (the answer says when it was cut): aggregate, \
         filter and LIMIT. Text functions: regexp_like, regexp_replace, regexp_match, lower, \
         strpos, left, split_part...; JSON functions on JSON text: json_get_str(col, 'key'), \
         json_get_int, json_get, json_contains, json_length, json_object_keys; lists: unnest, \
         array_length, array_has(list, 'x'); times: date_trunc('hour', start_time), \
         extract(epoch FROM ...).\n\nTables:\n",
    );
    for (name, schema) in table_schemas() {
        let _ = writeln!(s, "{name}({})", table_summary(&name));
        for f in schema.fields() {
            let note = COLUMN_NOTES
                .iter()
                .find(|(t, c, _)| *t == name && *c == f.name())
                .map(|(_, _, n)| format!(" -- {n}"))
                .unwrap_or_default();
            let _ = writeln!(s, "  {} {}{}", f.name(), sql_type(f.data_type()), note);
        }
    }
    s.push_str("\nExamples:\n");
    for (what, sql) in EXAMPLE_QUERIES {
        let _ = writeln!(s, "-- {what}\n{sql};");
    }
    s
}

fn table_summary(name: &str) -> &'static str {
    match name {
        "traces" => "one row per trace: rollups",
        "spans" => "one row per span",
        "tool_calls" => "one row per TOOL span; a view over spans",
        "llm_calls" => "one row per LLM span; a view over spans",
        _ => "",
    }
}
