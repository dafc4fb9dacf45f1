//! The `spans.attributes` column: read from the source only when a query selects it.

use std::sync::Arc;

use halo_sql::{SqlEngine, SqlError, SqlLimits};
use serde_json::{json, Value};

use crate::common::{self, int, q};

#[test]
fn canonical_attributes_are_read_by_key() {
    let tmp = tempfile::tempdir().unwrap();
    let ds = Arc::new(common::dataset(tmp.path()));
    let eager = SqlEngine::open(&ds).unwrap();
    let shared = SqlEngine::open_shared(ds.clone()).unwrap();
    for engine in [&eager, &shared] {
        let r = q(
            engine,
            "SELECT json_get_str(attributes, 'llm.model_name'), json_get_int(attributes, 'llm.token_count.prompt') \
             FROM spans WHERE trace_id = 'trace-005' AND span_id = 'llm-0'",
        );
        assert_eq!(r.rows, vec![vec![json!("claude-sonnet-4-6"), json!(105)]]);

        // The whole object, keys in input order, escaped strings as the input wrote them.
        let r = q(
            engine,
            "SELECT attributes FROM spans WHERE trace_id = 'trace-003' AND span_id = 'tool-1'",
        );
        let tool = common::TOOLS[(3 * 7 + 1) % 3];
        assert_eq!(
            r.rows[0][0],
            json!(format!(
                r#"{{"openinference.span.kind":"TOOL","tool.name":"{tool}","input.value":"{{\"path\":\"/data/1\"}}","output.value":"result 3-1"}}"#
            ))
        );
        assert_eq!(r.columns[0].data_type, "TEXT");

        // Every span has its object; filters on attributes themselves work too.
        let r = q(engine, "SELECT count(*), count(attributes) FROM spans");
        assert_eq!(int(&r.rows[0][0]) as u64, ds.span_count());
        assert_eq!(int(&r.rows[0][1]) as u64, ds.span_count());
        let r = q(
            engine,
            r#"SELECT (SELECT count(*) FROM spans WHERE attributes LIKE '%"tool.name":"grep"%') AS by_attribute,
                      (SELECT count(*) FROM tool_calls WHERE tool_name = 'grep') AS by_column"#,
        );
        assert_eq!(r.rows[0][0], r.rows[0][1]);
        assert!(int(&r.rows[0][0]) > 0);
        // Filters on other columns are applied before attributes are read, with the same
        // answer as after.
        let r = q(
            engine,
            "SELECT count(*) FROM spans WHERE kind = 'LLM' AND json_get_str(attributes, 'llm.model_name') = 'gpt-5.4'",
        );
        let even_llm: i64 = (0..40).filter(|t| t % 2 == 0).map(|t| 1 + t % 3).sum();
        assert_eq!(int(&r.rows[0][0]), even_llm);
    }
}

fn otlp_line(trace: &str, spans: &[(&str, &str, &str)]) -> String {
    let spans: Vec<String> = spans
        .iter()
        .map(|(id, parent, attrs)| {
            format!(
                r#"{{"traceId":"{trace}","spanId":"{id}","parentSpanId":"{parent}","name":"span-{id}","kind":3,"startTimeUnixNano":"1776000000000000000","endTimeUnixNano":"1776000001500000000","attributes":{attrs},"status":{{"code":1}}}}"#
            )
        })
        .collect();
    format!(
        r#"{{"resourceSpans":[{{"resource":{{"attributes":[{{"key":"service.name","value":{{"stringValue":"otel-svc"}}}}]}},"scopeSpans":[{{"scope":{{"name":"sdk","version":"1"}},"spans":[{}]}}]}}]}}"#,
        spans.join(",")
    )
}

#[test]
fn each_span_of_an_otlp_line_gets_its_own_attributes() {
    let tmp = tempfile::tempdir().unwrap();
    let a = r#"[{"key":"llm.model_name","value":{"stringValue":"gpt-5"}},{"key":"llm.token_count.prompt","value":{"intValue":"12"}},{"key":"only.a","value":{"boolValue":true}},{"key":"llm.model_name","value":{"stringValue":"second"}}]"#;
    let b = r#"[{"key":"tool.name","value":{"stringValue":"grep"}},{"key":"only.b","value":{"doubleValue":1.5}},{"key":"list","value":{"arrayValue":{"values":[{"stringValue":"x"}]}}}]"#;
    let lines = [
        otlp_line(
            "aaaa0000aaaa0000aaaa0000aaaa0000",
            &[
                ("1111111111111111", "", a),
                ("2222222222222222", "1111111111111111", b),
            ],
        ),
        otlp_line(
            "aaaa0000aaaa0000aaaa0000aaaa0000",
            &[("3333333333333333", "1111111111111111", "[]")],
        ),
    ];
    let path = tmp.path().join("otlp.jsonl");
    std::fs::write(&path, lines.join("\n") + "\n").unwrap();
    let ds = Arc::new(common::open(tmp.path(), &[path]));
    assert_eq!(ds.span_count(), 3);
    for engine in [
        SqlEngine::open(&ds).unwrap(),
        SqlEngine::open_shared(ds.clone()).unwrap(),
    ] {
        let r = q(
            &engine,
            "SELECT span_id, attributes FROM spans ORDER BY span_id",
        );
        let objects: Vec<Value> = r
            .rows
            .iter()
            .map(|row| serde_json::from_str(row[1].as_str().unwrap()).unwrap())
            .collect();
        assert_eq!(
            objects[0],
            json!({"llm.model_name": "gpt-5", "llm.token_count.prompt": 12, "only.a": true}),
            "the first of duplicate keys wins"
        );
        assert_eq!(
            objects[1],
            json!({"tool.name": "grep", "only.b": 1.5, "list": ["x"]})
        );
        assert_eq!(objects[2], json!({}));
        assert!(
            r.rows[0][1]
                .as_str()
                .unwrap()
                .starts_with(r#"{"llm.model_name":"gpt-5","llm.token_count.prompt":12,"#),
            "{:?}",
            r.rows[0]
        );

        let r = q(
            &engine,
            "SELECT json_get_str(attributes, 'tool.name') FROM spans WHERE span_id = '2222222222222222'",
        );
        assert_eq!(r.rows, vec![vec![json!("grep")]]);
    }
}

#[test]
fn queries_without_attributes_never_read_the_source() {
    // The engine over a borrowed dataset maps the sources when it opens (the `messages`
    // table is built then), so only the shared engine, which maps nothing until a query
    // needs it, can show that the source is not read: it is deleted before any query.
    let tmp = tempfile::tempdir().unwrap();
    let a = common::write(tmp.path(), "a.jsonl", 0..25);
    let b = common::write(tmp.path(), "b.jsonl", 25..40);
    let ds = Arc::new(common::open(tmp.path(), &[a.clone(), b.clone()]));
    let engine = SqlEngine::open_shared(ds.clone()).unwrap();
    std::fs::remove_file(&a).unwrap();
    std::fs::remove_file(&b).unwrap();

    let r = q(&engine, "SELECT count(*) FROM spans");
    assert_eq!(int(&r.rows[0][0]) as u64, ds.span_count());
    let r = q(&engine, "SELECT name FROM spans WHERE kind = 'TOOL'");
    assert!(r.row_count > 0);
    let r = q(&engine, "SELECT name FROM spans");
    assert_eq!(r.row_count as u64, ds.span_count());
    let r = q(&engine, "SELECT count(*) FROM tool_calls WHERE is_error");
    assert!(int(&r.rows[0][0]) > 0);

    // Selecting attributes does read it, and says so: the data's failure, not the query's.
    let e = engine
        .query(
            "SELECT attributes FROM spans LIMIT 1",
            &SqlLimits::default(),
        )
        .unwrap_err();
    assert!(matches!(e, SqlError::Unreadable(_)), "{e:?}");
    assert!(e.to_string().contains("source file"), "{e}");
    assert!(e.to_string().contains("a.jsonl"), "{e}");
}

#[test]
fn select_star_includes_attributes_and_views_still_work() {
    let tmp = tempfile::tempdir().unwrap();
    let ds = common::dataset(tmp.path());
    let engine = SqlEngine::open(&ds).unwrap();

    let r = q(&engine, "SELECT * FROM spans LIMIT 1");
    assert_eq!(r.row_count, 1);
    let last = r.columns.last().unwrap();
    assert_eq!(
        (last.name.as_str(), last.data_type.as_str()),
        ("attributes", "TEXT")
    );
    let object: Value = serde_json::from_str(r.rows[0].last().unwrap().as_str().unwrap()).unwrap();
    assert!(object["openinference.span.kind"].is_string(), "{object}");

    let r = q(
        &engine,
        "SELECT * FROM spans WHERE kind = 'LLM' ORDER BY trace_id, span_id LIMIT 2",
    );
    assert_eq!(r.row_count, 2);
    let object: Value = serde_json::from_str(r.rows[0].last().unwrap().as_str().unwrap()).unwrap();
    assert_eq!(object["llm.model_name"], "gpt-5.4", "trace-000 is even");

    let r = q(&engine, "SELECT attributes FROM spans LIMIT 5");
    assert_eq!(r.row_count, 5);

    let r = q(
        &engine,
        "SELECT tool_name, count(*) FROM tool_calls GROUP BY tool_name ORDER BY tool_name",
    );
    assert_eq!(r.row_count, common::TOOLS.len());
    let r = q(&engine, "SELECT * FROM tool_calls LIMIT 1");
    assert!(r.columns.iter().all(|c| c.name != "attributes"));
    let r = q(&engine, "SELECT count(*) FROM llm_calls");
    assert!(int(&r.rows[0][0]) > 0);

    let r = q(&engine, "DESCRIBE spans");
    assert!(r.rows.iter().any(|row| row[0] == json!("attributes")));
    assert!(halo_sql::sql_tool_description().contains("\n  attributes TEXT -- "));
}
