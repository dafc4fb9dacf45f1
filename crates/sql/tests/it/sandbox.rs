//! Every escape attempt is refused with a clear error; limits cut or cancel with a note.

use std::time::{Duration, Instant};

use halo_sql::{SqlEngine, SqlError, SqlLimits};

use crate::common;

fn engine() -> (tempfile::TempDir, SqlEngine) {
    let tmp = tempfile::tempdir().unwrap();
    let ds = common::dataset(tmp.path());
    let engine = SqlEngine::open(&ds).unwrap();
    (tmp, engine)
}

fn refused(engine: &SqlEngine, sql: &str, says: &str) {
    match engine.query(sql, &SqlLimits::default()) {
        Err(e @ SqlError::Refused(_)) => {
            let m = e.to_string();
            assert!(m.starts_with("refused: "), "{sql}: {m}");
            assert!(m.contains(says), "{sql}: {m:?} should say {says:?}");
        }
        other => panic!("{sql}: expected a refusal, got {other:?}"),
    }
}

#[test]
fn writes_schema_changes_files_and_options_are_refused() {
    let (_tmp, e) = engine();
    refused(
        &e,
        "INSERT INTO spans SELECT * FROM spans",
        "INSERT is not allowed: the tables are read-only",
    );
    refused(&e, "UPDATE spans SET name = 'x'", "UPDATE is not allowed");
    refused(&e, "DELETE FROM spans", "DELETE is not allowed");
    refused(
        &e,
        "CREATE TABLE t AS SELECT * FROM spans",
        "CREATE TABLE is not allowed: the schema cannot be changed",
    );
    refused(&e, "CREATE TABLE t (a INT)", "CREATE TABLE is not allowed");
    refused(
        &e,
        "CREATE VIEW v AS SELECT 1",
        "CREATE VIEW is not allowed",
    );
    refused(
        &e,
        "CREATE OR REPLACE VIEW tool_calls AS SELECT 1",
        "CREATE OR REPLACE VIEW is not allowed: the schema cannot be changed",
    );
    refused(&e, "DROP TABLE spans", "DROP TABLE is not allowed");
    refused(&e, "DROP VIEW tool_calls", "DROP VIEW is not allowed");
    refused(
        &e,
        "CREATE EXTERNAL TABLE pw (line VARCHAR) STORED AS CSV LOCATION '/etc/passwd'",
        "CREATE EXTERNAL TABLE is not allowed: queries cannot read or write files",
    );
    refused(
        &e,
        "COPY spans TO '/tmp/halo-sql-escape.csv'",
        "COPY is not allowed: queries cannot write files",
    );
    refused(
        &e,
        "COPY (SELECT 1) TO '/tmp/halo-sql-escape.parquet' STORED AS PARQUET",
        "COPY is not allowed",
    );
    refused(
        &e,
        "EXPLAIN COPY spans TO '/tmp/halo-sql-escape.csv'",
        "COPY is not allowed",
    );
    refused(
        &e,
        "EXPLAIN ANALYZE INSERT INTO spans SELECT * FROM spans",
        "INSERT is not allowed",
    );
    refused(
        &e,
        "SET datafusion.execution.batch_size = 1",
        "SET is not allowed: engine options cannot be changed",
    );
    refused(
        &e,
        "SET datafusion.catalog.information_schema = false",
        "SET is not allowed",
    );
    refused(
        &e,
        "RESET datafusion.execution.batch_size",
        "RESET is not allowed",
    );
    refused(
        &e,
        "SELECT 1; SELECT 2",
        "exactly one statement is allowed per query, found 2",
    );
    refused(
        &e,
        "SELECT count(*) FROM spans; DROP TABLE spans",
        "exactly one statement",
    );
    refused(&e, "", "the query is empty");
    refused(&e, " ; ", "the query is empty");
    assert!(!std::path::Path::new("/tmp/halo-sql-escape.csv").exists());
    assert!(!std::path::Path::new("/tmp/halo-sql-escape.parquet").exists());

    // SELECT ... INTO plans as DDL: the plan check refuses it.
    let err = e
        .query("SELECT * INTO stolen FROM spans", &SqlLimits::default())
        .unwrap_err();
    assert!(matches!(err, SqlError::Refused(_)), "{err:?}");
    // No file can be named as a table.
    let err = e
        .query("SELECT * FROM '/etc/passwd'", &SqlLimits::default())
        .unwrap_err();
    assert!(matches!(err, SqlError::Query(_)), "{err:?}");
    assert!(err.to_string().contains("not found"), "{err}");
    // After all that, the tables are intact.
    let r = e
        .query("SELECT count(*) FROM tool_calls", &SqlLimits::default())
        .unwrap();
    assert!(r.rows[0][0].as_i64().unwrap() > 0);
}

#[test]
fn syntax_and_planning_errors_say_what_is_wrong() {
    let (_tmp, e) = engine();
    let err = e.query("SELEC 1", &SqlLimits::default()).unwrap_err();
    assert!(matches!(err, SqlError::Syntax(_)), "{err:?}");
    let err = e
        .query("SELECT nope FROM spans", &SqlLimits::default())
        .unwrap_err();
    assert!(matches!(err, SqlError::Query(_)), "{err:?}");
    assert!(err.to_string().contains("nope"), "{err}");
}

#[test]
fn a_huge_cross_join_hits_the_time_limit() {
    let (_tmp, e) = engine();
    let limits = SqlLimits {
        timeout: Duration::from_millis(1500),
        ..SqlLimits::default()
    };
    let started = Instant::now();
    let err = e
        .query(
            "SELECT sum(a.duration_ms * b.duration_ms + c.duration_ms - d.duration_ms) \
             FROM spans a, spans b, spans c, spans d",
            &limits,
        )
        .unwrap_err();
    assert!(matches!(err, SqlError::Timeout { .. }), "{err:?}");
    assert!(err.to_string().contains("time limit of 1.5 s"), "{err}");
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "cancelled promptly: {:?}",
        started.elapsed()
    );
    // The engine is still usable afterwards.
    assert!(e.query("SELECT 1", &SqlLimits::default()).is_ok());
}

#[test]
fn a_huge_sort_hits_the_memory_limit() {
    let (_tmp, e) = engine();
    let limits = SqlLimits {
        max_memory_bytes: 4 << 20,
        timeout: Duration::from_secs(120),
        ..SqlLimits::default()
    };
    let err = e
        .query(
            "SELECT a.span_id, b.span_id, c.output_head FROM spans a, spans b, spans c ORDER BY 3, 2, 1",
            &limits,
        )
        .unwrap_err();
    assert!(matches!(err, SqlError::MemoryLimit { .. }), "{err:?}");
    assert!(
        err.to_string().contains("memory limit of 4194304 bytes"),
        "{err}"
    );
}

/// An ORDER BY over every span asks for no more rows than the result may hold (a top-k,
/// not a sort of the whole table): the rows that come back are the top ones, in order,
/// and the result says it was cut.
#[test]
fn an_order_by_over_every_span_returns_the_top_rows_cut_at_the_row_limit() {
    let (_tmp, e) = engine();
    let limits = SqlLimits {
        max_rows: 5,
        ..SqlLimits::default()
    };
    let top = e
        .query(
            "SELECT span_id, duration_ms FROM spans ORDER BY duration_ms DESC, span_id",
            &limits,
        )
        .expect("a top-5");
    assert_eq!(top.rows.len(), 5);
    assert!(top.truncated);
    let all = e
        .query(
            "SELECT span_id, duration_ms FROM spans ORDER BY duration_ms DESC, span_id LIMIT 5",
            &SqlLimits::default(),
        )
        .expect("the same five");
    assert_eq!(top.rows, all.rows);
}

#[test]
fn results_are_cut_at_the_row_and_byte_caps_with_a_note() {
    let (_tmp, e) = engine();
    let limits = SqlLimits {
        max_rows: 5,
        ..SqlLimits::default()
    };
    let r = e.query("SELECT * FROM spans", &limits).unwrap();
    assert_eq!(r.row_count, 5);
    assert_eq!(r.rows.len(), 5);
    assert!(r.truncated);
    let note = r.truncation_note.unwrap();
    assert!(note.contains("row limit of 5 rows"), "{note}");

    // Exactly at the cap is not cut.
    let r = e.query("SELECT * FROM spans LIMIT 5", &limits).unwrap();
    assert!(!r.truncated && r.truncation_note.is_none());

    let limits = SqlLimits {
        max_bytes: 2000,
        ..SqlLimits::default()
    };
    let r = e.query("SELECT * FROM spans", &limits).unwrap();
    assert!(r.truncated);
    assert!(r.row_count > 0);
    assert!(serde_json::to_string(&r.rows).unwrap().len() <= 2000 + r.row_count + 2);
    assert!(r
        .truncation_note
        .unwrap()
        .contains("size limit of 2000 bytes"));

    // A cross join far past the row cap returns its first rows quickly, without running to the end.
    let limits = SqlLimits {
        max_rows: 100,
        timeout: Duration::from_secs(20),
        ..SqlLimits::default()
    };
    let r = e
        .query(
            "SELECT a.span_id, b.span_id FROM spans a, spans b, spans c, spans d",
            &limits,
        )
        .unwrap();
    assert_eq!(r.row_count, 100);
    assert!(r.truncated);
}

#[cfg(target_os = "linux")]
#[test]
fn memory_the_engine_does_not_count_is_held_to_the_limit_too() {
    // String aggregates over a cross join allocate outside DataFusion's pool: this query
    // grew a process to 8.7 GB under a 2 GiB limit before the pool said anything.
    let (_tmp, e) = engine();
    let limits = SqlLimits {
        max_memory_bytes: 64 << 20,
        timeout: Duration::from_secs(120),
        ..SqlLimits::default()
    };
    let before = halo_sql::anonymous_bytes().unwrap();
    let err = e
        .query(
            "SELECT a.span_id, length(string_agg(b.attributes || c.attributes, ',')) \
             FROM spans a, spans b, spans c GROUP BY a.span_id",
            &limits,
        )
        .unwrap_err();
    let grown = halo_sql::anonymous_bytes().unwrap().saturating_sub(before);
    assert!(matches!(err, SqlError::MemoryLimit { .. }), "{err:?}");
    assert!(
        err.to_string().contains("memory limit of 67108864 bytes"),
        "{err}"
    );
    assert!(grown < 1 << 30, "the process grew by {} MB", grown >> 20);
    // The engine is still usable afterwards.
    assert!(e.query("SELECT 1", &SqlLimits::default()).is_ok());
}

/// Chains of operators make expression trees as deep as they are long, which DataFusion
/// walks recursively: up to the bound they run, past it they are refused instead of
/// overflowing the stack, however the depth is made (one chain, chains nested in
/// parentheses, chains cut by CASEs, operands named like keywords). Lists, signs and flat
/// `CASE`s nest nothing.
#[test]
fn deep_expressions_run_up_to_the_bound_and_are_refused_past_it() {
    let (_tmp, e) = engine();
    let chain = |n: usize, term: &dyn Fn(usize) -> String, op: &str| {
        (0..n).map(term).collect::<Vec<_>>().join(op)
    };
    let ors = |n| {
        format!(
            "SELECT count(*) AS n FROM spans WHERE {}",
            chain(n, &|_| "is_error".into(), " OR ")
        )
    };
    let sums = |n| format!("SELECT {} AS n", chain(n, &|_| "1".into(), " + "));
    let products = |n| format!("SELECT {} AS n", chain(n, &|_| "1".into(), " * "));
    let ids = |n| {
        format!(
            "SELECT count(*) AS n FROM spans WHERE {}",
            chain(n, &|i| format!("span_id = 's{i}'"), " OR ")
        )
    };
    let runs = |sql: &str| {
        let r = e.query(sql, &SqlLimits::default());
        assert!(r.is_ok(), "{}: {r:?}", &sql[..80.min(sql.len())]);
        r.unwrap()
    };
    // Just under 1,000 levels: a chain of 990 operands, or 990 comparisons joined by OR.
    for sql in [ors(990), sums(990), products(990), ids(990)] {
        runs(&sql);
    }
    assert_eq!(runs(&sums(990)).rows[0][0], 990);
    let nested = format!(
        "SELECT {} AS n",
        (0..30).fold("1".to_string(), |inner, _| format!(
            "({inner} + {})",
            chain(999, &|_| "1".into(), " + ")
        ))
    );
    let cut_by_cases = format!(
        "SELECT {} AS n",
        chain(
            40_000,
            &|i| if i % 900 == 0 {
                "CASE WHEN true THEN 1 END".into()
            } else {
                "1".into()
            },
            " + "
        )
    );
    let keyword_names = format!(
        "SELECT {} AS x FROM (SELECT 1 AS id)",
        chain(40_000, &|_| "id".into(), " + ")
    );
    for sql in [
        ors(1_100),
        sums(5_000),
        products(5_000),
        ids(20_000),
        nested,
        cut_by_cases,
        keyword_names,
    ] {
        refused(
            &e,
            &sql,
            "write a list of values as `column IN (a, b, ...)`",
        );
    }
    refused(
        &e,
        &format!("SELECT '{}'", "x".repeat(2 << 20)),
        "over the 1048576 allowed",
    );
    let list = |f: &dyn Fn(usize) -> String| chain(20_000, f, ", ");
    runs(&format!(
        "SELECT count(*) AS n FROM spans WHERE span_id IN ({})",
        list(&|i| format!("'s{i}'"))
    ));
    runs(&format!(
        "SELECT count(*) AS n FROM spans WHERE duration_ms IN ({})",
        list(&|i| format!("-{i}"))
    ));
    runs(&format!(
        "SELECT CASE {} END AS c FROM spans",
        chain(1_500, &|i| format!("WHEN tool_name = 't{i}' THEN {i}"), " ")
    ));
    runs(&format!(
        "SELECT {} FROM spans LIMIT 1",
        chain(1_500, &|i| format!("duration_ms = {i} AS c{i}"), ", ")
    ));
    runs(&chain(
        300,
        &|i| {
            format!("SELECT count(*) AS n FROM spans WHERE name = 'x{i}' AND is_error OR duration_ms > {i}")
        },
        " UNION ALL ",
    ));
    runs(&format!(
        "SELECT count(*) AS n FROM spans WHERE {}",
        chain(600, &|_| "model IS NOT NULL".into(), " AND ")
    ));
    // 900 ORs of BETWEENs with negative bounds.
    runs(&format!(
        "SELECT count(*) AS n FROM spans WHERE {}",
        chain(901, &|i| format!("duration_ms BETWEEN -1 AND {i}"), " OR ")
    ));
}
