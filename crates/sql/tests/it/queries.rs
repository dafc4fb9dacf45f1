//! Query answers against an oracle computed directly from `ds.traces()`.

use std::collections::BTreeMap;

use halo_sql::{SqlEngine, SqlLimits};
use serde_json::json;

use crate::common::{self, int, q};

#[test]
fn counts_match_the_index() {
    let tmp = tempfile::tempdir().unwrap();
    let ds = common::dataset(tmp.path());
    assert!(ds.segment_count() >= 2);
    let engine = SqlEngine::open(&ds).unwrap();

    let r = q(&engine, "SELECT count(*) AS n FROM traces");
    assert_eq!(r.schema_version, 1);
    assert_eq!(r.columns[0].name, "n");
    assert_eq!(r.columns[0].data_type, "BIGINT");
    assert_eq!(int(&r.rows[0][0]), ds.traces().len() as i64);
    assert!(!r.truncated);
    assert_eq!(r.row_count, 1);

    let r = q(&engine, "SELECT count(*) FROM spans");
    assert_eq!(int(&r.rows[0][0]) as u64, ds.span_count());

    let errors = ds.traces().iter().filter(|t| t.has_errors()).count() as i64;
    let r = q(&engine, "SELECT count(*) FROM traces WHERE has_errors");
    assert_eq!(int(&r.rows[0][0]), errors);
    let r = q(
        &engine,
        "SELECT count(DISTINCT trace_id) FROM spans WHERE is_error",
    );
    assert_eq!(int(&r.rows[0][0]), errors);
}

#[test]
fn failures_by_tool_match_the_rollups() {
    let tmp = tempfile::tempdir().unwrap();
    let ds = common::dataset(tmp.path());
    let engine = SqlEngine::open(&ds).unwrap();
    let mut oracle: BTreeMap<String, (i64, i64)> = BTreeMap::new();
    for t in ds.traces() {
        for u in &t.tools {
            let e = oracle.entry(u.name.to_string()).or_default();
            e.0 += i64::from(u.calls);
            e.1 += i64::from(u.errors);
        }
    }
    let r = q(
        &engine,
        "SELECT tool_name, count(*) AS calls, sum(CASE WHEN is_error THEN 1 ELSE 0 END) AS failures \
         FROM tool_calls GROUP BY tool_name ORDER BY tool_name",
    );
    let got: BTreeMap<String, (i64, i64)> = r
        .rows
        .iter()
        .map(|row| {
            (
                row[0].as_str().unwrap().to_string(),
                (int(&row[1]), int(&row[2])),
            )
        })
        .collect();
    assert_eq!(got, oracle);
    assert_eq!(got.len(), common::TOOLS.len());
}

#[test]
fn per_trace_rollups_match_the_spans() {
    let tmp = tempfile::tempdir().unwrap();
    let ds = common::dataset(tmp.path());
    let engine = SqlEngine::open(&ds).unwrap();
    let r = q(
        &engine,
        "SELECT t.trace_id, t.span_count, t.input_tokens, t.llm_call_count, t.tool_call_count, \
                count(s.span_id) AS spans, sum(s.input_tokens) AS tokens, \
                sum(CASE WHEN s.kind = 'LLM' THEN 1 ELSE 0 END) AS llm, \
                sum(CASE WHEN s.kind = 'TOOL' THEN 1 ELSE 0 END) AS tools \
         FROM traces t JOIN spans s ON s.trace_id = t.trace_id \
         GROUP BY t.trace_id, t.span_count, t.input_tokens, t.llm_call_count, t.tool_call_count ORDER BY t.trace_id",
    );
    assert_eq!(r.row_count, ds.traces().len());
    for row in &r.rows {
        let t = ds.trace(row[0].as_str().unwrap()).unwrap();
        assert_eq!(int(&row[1]), i64::from(t.span_count));
        assert_eq!(int(&row[5]), i64::from(t.span_count));
        assert_eq!(int(&row[2]), t.input_tokens);
        assert_eq!(int(&row[6]), t.input_tokens);
        assert_eq!(int(&row[3]), i64::from(t.llm_call_count));
        assert_eq!(int(&row[7]), i64::from(t.llm_call_count));
        assert_eq!(int(&row[4]), i64::from(t.tool_call_count));
        assert_eq!(int(&row[8]), i64::from(t.tool_call_count));
    }
}

#[test]
fn derived_tables_hold_tool_and_llm_calls() {
    let tmp = tempfile::tempdir().unwrap();
    let ds = common::dataset(tmp.path());
    let engine = SqlEngine::open(&ds).unwrap();

    // trace 3, tool 1: read via the generator's rules.
    let r = q(
        &engine,
        "SELECT tool_name, arguments, result_head, is_error, error_message, duration_ms, start_time \
         FROM tool_calls WHERE trace_id = 'trace-003' AND span_id = 'tool-1'",
    );
    assert_eq!(r.row_count, 1);
    let row = &r.rows[0];
    assert_eq!(row[0], json!(common::TOOLS[(3 * 7 + 1) % 3]));
    assert_eq!(row[1], json!(r#"{"path":"/data/1"}"#));
    assert_eq!(row[2], json!("result 3-1"));
    assert_eq!(row[3], json!(true), "(3 + 1) % 4 == 0 fails");
    assert!(
        row[4].as_str().unwrap().contains("file 1 not found"),
        "{row:?}"
    );
    assert_eq!(
        row[5],
        json!(10.0 + f64::from(3 * 13 + 7)),
        "duration: 10 + (13t + 7k) % 300 ms"
    );
    assert!(
        row[6].as_str().unwrap().ends_with('Z'),
        "times are RFC 3339: {row:?}"
    );

    let r = q(
        &engine,
        "SELECT model, input_tokens, output_tokens, total_tokens, latency_ms, output_head, requested_tools, is_error \
         FROM llm_calls WHERE trace_id = 'trace-005' ORDER BY span_id",
    );
    assert_eq!(r.row_count, 1 + 5 % 3);
    assert_eq!(r.rows[0][0], json!("claude-sonnet-4-6"));
    assert_eq!(r.rows[0][1], json!(105));
    assert_eq!(r.rows[0][2], json!(10));
    assert_eq!(r.rows[0][3], json!(115));
    assert_eq!(r.rows[0][4], json!(505.0));
    assert_eq!(r.rows[0][5], json!("thinking 5"));
    assert_eq!(r.rows[0][6], json!([common::TOOLS[5 % 3]]));
    assert_eq!(
        r.rows[0][7],
        json!(true),
        "every 5th trace hits a rate limit on its first call"
    );
    assert_eq!(r.columns[6].data_type, "TEXT[]");

    // Row counts of the views equal the span kinds.
    let r = q(&engine, "SELECT (SELECT count(*) FROM tool_calls) AS tools, (SELECT count(*) FROM llm_calls) AS llms");
    let tools: u32 = ds.traces().iter().map(|t| t.tool_call_count).sum();
    let llms: u32 = ds.traces().iter().map(|t| t.llm_call_count).sum();
    assert_eq!(r.rows[0], vec![json!(tools), json!(llms)]);
}

#[test]
fn repeated_identical_calls_are_found() {
    let tmp = tempfile::tempdir().unwrap();
    let ds = common::dataset(tmp.path());
    let engine = SqlEngine::open(&ds).unwrap();
    let sql = halo_sql::EXAMPLE_QUERIES
        .iter()
        .find(|(w, _)| w.contains("identical"))
        .unwrap()
        .1;
    let r = q(&engine, sql);
    assert_eq!(r.row_count, 1, "{:?}", r.rows);
    assert_eq!(r.rows[0][0], json!("trace-007"));
    assert_eq!(r.rows[0][1], json!("grep"));
    assert_eq!(r.rows[0][3], json!(6));
}

#[test]
fn every_example_query_runs_and_json_functions_work() {
    let tmp = tempfile::tempdir().unwrap();
    let ds = common::dataset(tmp.path());
    let engine = SqlEngine::open(&ds).unwrap();
    for (what, sql) in halo_sql::EXAMPLE_QUERIES {
        let r = q(&engine, sql);
        assert!(r.row_count > 0, "{what}: no rows");
    }
    let r = q(&engine, "SELECT json_get_str(arguments, 'pattern') FROM tool_calls WHERE trace_id = 'trace-007' LIMIT 1");
    assert_eq!(r.rows[0][0], json!("TODO"));
    let r = q(
        &engine,
        "SELECT count(*) FROM spans WHERE regexp_like(error_message, 'file [0-9]+ not found')",
    );
    assert!(int(&r.rows[0][0]) > 0);
    let r = q(&engine, "DESCRIBE tool_calls");
    assert!(r.rows.iter().any(|row| row[0] == json!("arguments")));
    let r = q(&engine, "EXPLAIN SELECT count(*) FROM spans");
    assert!(r.row_count > 0);
    let r = q(&engine, "SHOW TABLES");
    for t in halo_sql::TABLE_NAMES {
        assert!(
            r.rows.iter().any(|row| row.contains(&json!(t))),
            "{t} listed"
        );
    }
}

#[test]
fn the_tool_description_names_every_table_and_column() {
    let tmp = tempfile::tempdir().unwrap();
    let ds = common::dataset(tmp.path());
    let engine = SqlEngine::open(&ds).unwrap();
    let d = halo_sql::sql_tool_description();
    assert_eq!(engine.schemas().len(), halo_sql::TABLE_NAMES.len());
    for (table, schema) in engine.schemas() {
        assert!(d.contains(&format!("\n{table}(")), "{table} described");
        for f in schema.fields() {
            assert!(
                d.contains(&format!("\n  {} ", f.name())),
                "{table}.{} described",
                f.name()
            );
        }
    }
    // The description is generated from the same schemas the engine serves.
    let described = halo_sql::table_schemas();
    for ((a, sa), (b, sb)) in engine.schemas().iter().zip(&described) {
        assert_eq!(a, b);
        assert_eq!(sa.fields(), sb.fields());
    }
    for (what, sql) in halo_sql::EXAMPLE_QUERIES {
        assert!(d.contains(what) && d.contains(sql));
    }
    assert!(
        !d.contains("span_rows"),
        "index-internal columns stay hidden"
    );
}

#[test]
fn an_empty_dataset_still_has_every_table() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("empty.jsonl");
    std::fs::write(&path, "").unwrap();
    let options = halo_index::OpenOptions {
        index_dir: Some(tmp.path().join("index")),
        ..Default::default()
    };
    let Ok(ds) = halo_index::Dataset::open(&[path], &options, &halo_index::NoProgress) else {
        return; // an empty file may be "no data" for the index: nothing to query then
    };
    let engine = SqlEngine::open(&ds).unwrap();
    for t in halo_sql::TABLE_NAMES {
        let r = q(&engine, &format!("SELECT count(*) FROM {t}"));
        assert_eq!(r.rows[0][0], json!(0));
    }
}

#[test]
fn the_async_api_runs_on_the_callers_runtime() {
    let tmp = tempfile::tempdir().unwrap();
    let ds = common::dataset(tmp.path());
    let engine = SqlEngine::open(&ds).unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap();
    let r = rt
        .block_on(engine.query_async("SELECT count(*) FROM llm_calls", &SqlLimits::for_agents()))
        .unwrap();
    assert!(int(&r.rows[0][0]) > 0);
    // The blocking API refuses to nest inside a runtime rather than panic.
    let e = rt
        .block_on(async { engine.query("SELECT 1", &SqlLimits::default()) })
        .unwrap_err();
    assert!(e.to_string().contains("query_async"), "{e}");
    // The result serializes with the documented field names.
    let v = serde_json::to_value(&r).unwrap();
    for k in [
        "schema_version",
        "columns",
        "rows",
        "row_count",
        "truncated",
        "truncation_note",
        "elapsed_ms",
    ] {
        assert!(v.get(k).is_some(), "{k}");
    }
    assert!(v["columns"][0].get("type").is_some());
}

#[test]
fn a_shared_dataset_opens_lazily_with_the_same_answers() {
    let tmp = tempfile::tempdir().unwrap();
    let ds = std::sync::Arc::new(common::dataset(tmp.path()));
    let eager = SqlEngine::open(&ds).unwrap();
    let lazy = SqlEngine::open_shared(ds.clone()).unwrap();
    for (_, sql) in halo_sql::EXAMPLE_QUERIES {
        let (a, b) = (q(&eager, sql), q(&lazy, sql));
        assert_eq!((a.columns, a.rows), (b.columns, b.rows), "{sql}");
    }
}

#[test]
fn messages_are_read_from_the_source() {
    let tmp = tempfile::tempdir().unwrap();
    let ds = std::sync::Arc::new(common::dataset(tmp.path()));
    let llm_spans = (0..40).map(|t| 1 + t % 3).sum::<i64>();
    let eager = SqlEngine::open(&ds).unwrap();
    let shared = SqlEngine::open_shared(ds.clone()).unwrap();
    for engine in [&eager, &shared] {
        let r = q(
            engine,
            "SELECT count(*) FROM messages WHERE direction = 'output'",
        );
        assert_eq!(
            int(&r.rows[0][0]),
            llm_spans,
            "one output message per LLM span"
        );
        let r = q(
            engine,
            "SELECT content, tool_calls FROM messages WHERE trace_id = 'trace-007' AND span_id = 'llm-0'",
        );
        assert_eq!(
            r.rows,
            vec![vec![
                json!("thinking 7"),
                json!([common::TOOLS[7 % common::TOOLS.len()]])
            ]]
        );
    }
}
