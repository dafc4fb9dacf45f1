//! The engine's runtime and the tables' bounded batches, with the crate's internals at hand.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use halo_index::Dataset;

use super::*;
use crate::messages::MessagesTable;
use crate::spans::SpansTable;

/// Long enough never to pass in a working test; it only turns a hang into a failure.
const DEADLOCK_GUARD: Duration = Duration::from_secs(30);

/// An engine over these tables (and `ds`'s trace rollups, if any).
fn engine_with(spans: Arc<SpansTable>, messages: MessagesTable, ds: Option<&Dataset>) -> SqlEngine {
    let traces = halo_index::traces_to_batch(ds.map_or(&[][..], |d| d.traces()));
    let state = tables::base_state(spans, traces, Arc::new(messages), 2).unwrap();
    SqlEngine::from_state(state, 1).unwrap()
}

/// An engine over `ds` whose messages table is made by `make` from its spans table.
fn messages_engine(
    ds: &Arc<Dataset>,
    make: impl FnOnce(MessagesTable) -> MessagesTable,
) -> SqlEngine {
    let spans = Arc::new(SpansTable::shared(ds.clone(), 2));
    let messages = make(MessagesTable::over(spans.clone(), 2));
    engine_with(spans, messages, Some(ds))
}

fn rows(engine: &SqlEngine, sql: &str) -> Vec<Vec<serde_json::Value>> {
    engine
        .query(sql, &SqlLimits::default())
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
        .rows
}

/// A hook that holds each slice's reading until released, and counts the readings begun
/// and finished.
#[derive(Clone, Default)]
struct Gate {
    released: Arc<AtomicBool>,
    begun: Arc<AtomicUsize>,
    finished: Arc<AtomicUsize>,
    gave_up: Arc<AtomicBool>,
    read_on: Arc<Mutex<Option<String>>>,
}

impl Gate {
    fn hook(&self) -> Arc<dyn Fn() + Send + Sync> {
        let gate = self.clone();
        Arc::new(move || {
            gate.begun.fetch_add(1, Ordering::SeqCst);
            *gate.read_on.lock().unwrap() = std::thread::current().name().map(str::to_owned);
            let waited = std::time::Instant::now();
            while !gate.released.load(Ordering::SeqCst) {
                if waited.elapsed() > DEADLOCK_GUARD {
                    gate.gave_up.store(true, Ordering::SeqCst);
                    break;
                }
                std::thread::sleep(Duration::from_millis(1));
            }
            gate.finished.fetch_add(1, Ordering::SeqCst);
        })
    }

    fn wait_until_idle(&self) {
        let waited = std::time::Instant::now();
        while self.finished.load(Ordering::SeqCst) < self.begun.load(Ordering::SeqCst)
            && waited.elapsed() < DEADLOCK_GUARD
        {
            std::thread::sleep(Duration::from_millis(1));
        }
    }
}

#[test]
fn slow_reading_holds_up_neither_the_callers_runtime_nor_the_time_limit() {
    let tmp = tempfile::tempdir().unwrap();
    let ds = Arc::new(crate::testdata::llm_dataset(tmp.path(), 3));
    let gate = Gate::default();
    // A large dataset's parsing, which takes until the test says so. Were it run on the
    // caller's one thread, no one could say so and it would wait out the guard.
    let engine = messages_engine(&ds, |m| m.before_read(gate.hook()));
    // The CLI's runtime, shrunk to one thread: anything blocking it stops everything.
    let caller = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap();
    let sql = "SELECT count(*) FROM messages";
    let quick = SqlLimits {
        timeout: Duration::from_millis(200),
        ..SqlLimits::for_agents()
    };
    caller.block_on(async {
        // Two agents ask for the table in the same turn, while the caller's other tasks
        // (streaming, timers, the Ctrl-C watcher) must keep running.
        let ticks = tokio::spawn(async {
            for _ in 0..3 {
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
        });
        let (a, b) = tokio::join!(
            engine.query_async(sql, &quick),
            engine.query_async(sql, &quick)
        );
        assert!(matches!(a, Err(SqlError::Timeout { .. })), "{a:?}");
        assert!(matches!(b, Err(SqlError::Timeout { .. })), "{b:?}");
        ticks.await.unwrap();
        // The engine's one worker is not held by the reading either: other queries run.
        let other = engine.query_async("SELECT 1", &quick).await;
        assert!(other.is_ok(), "{other:?}");
    });
    assert_eq!(
        gate.read_on.lock().unwrap().as_deref(),
        Some("halo-sql"),
        "the reading runs on the engine's runtime, not the caller's"
    );
    assert!(
        !gate.gave_up.load(Ordering::SeqCst),
        "the time limit fired while the reading was still going"
    );
    gate.released.store(true, Ordering::SeqCst);
    gate.wait_until_idle();
    let begun = gate.begun.load(Ordering::SeqCst);
    caller.block_on(async move {
        let r = engine
            .query_async(sql, &SqlLimits::for_agents())
            .await
            .unwrap();
        assert_eq!(
            r.rows,
            vec![vec![serde_json::json!(18)]],
            "3 traces × 2 calls × 3"
        );
        assert_eq!(
            gate.begun.load(Ordering::SeqCst),
            begun,
            "the reading outlived the queries that gave up on it and was kept, not done again"
        );
        // Dropped inside a runtime, as an agent run's engine is: its own runtime must not
        // panic on the way out.
        drop(engine);
    });
}

#[test]
fn a_query_whose_caller_stops_waiting_stops_too() {
    let tmp = tempfile::tempdir().unwrap();
    let ds = Arc::new(crate::testdata::llm_dataset(tmp.path(), 3));
    let gate = Gate::default();
    let engine = messages_engine(&ds, |m| m.before_read(gate.hook()));
    let caller = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap();
    caller.block_on(async {
        // The agent is cancelled long before the query's own limit.
        let limits = SqlLimits::for_agents();
        let query = engine.query_async("SELECT * FROM messages", &limits);
        assert!(tokio::time::timeout(Duration::from_millis(50), query)
            .await
            .is_err());
        let tasks = engine.runtime().unwrap().metrics();
        let waited = std::time::Instant::now();
        while tasks.num_alive_tasks() > 0 && waited.elapsed() < DEADLOCK_GUARD {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        assert_eq!(tasks.num_alive_tasks(), 0, "the query task was aborted");
    });
    gate.released.store(true, Ordering::SeqCst);
    gate.wait_until_idle();
}

#[test]
fn messages_in_any_slices_and_batches_answer_as_in_one() {
    let tmp = tempfile::tempdir().unwrap();
    let ds = Arc::new(crate::testdata::llm_dataset(tmp.path(), 20));
    let whole = SqlEngine::open_shared(ds.clone()).unwrap();
    // One span per slice, a few rows per batch, nothing kept between queries.
    let reads = Arc::new(AtomicUsize::new(0));
    let counted = {
        let reads = reads.clone();
        Arc::new(move || {
            reads.fetch_add(1, Ordering::SeqCst);
        })
    };
    let cut = messages_engine(&ds, |m| m.bounded(1, 500, 0).before_read(counted));
    let borrowed = SqlEngine::open(&ds).unwrap();
    for sql in [
        "SELECT * FROM messages",
        "SELECT role, count(*), sum(length(content)) FROM messages GROUP BY role ORDER BY role",
        "SELECT content FROM messages WHERE direction = 'output' ORDER BY trace_id, span_id",
        "SELECT span_id, content FROM messages WHERE trace_id = 'trace-007' ORDER BY span_id, position",
    ] {
        let expected = rows(&whole, sql);
        assert!(!expected.is_empty(), "{sql}");
        assert_eq!(rows(&cut, sql), expected, "{sql}");
        assert_eq!(rows(&borrowed, sql), expected, "{sql}");
    }
    assert_eq!(rows(&whole, "SELECT count(*) FROM messages")[0][0], 120);
    // Each query read every slice with an LLM span again (40 of them), but the one on a
    // single trace only that trace's two.
    assert_eq!(reads.load(Ordering::SeqCst), 3 * 40 + 2);
}

#[test]
fn slices_read_are_kept_and_a_limit_stops_the_reading() {
    let tmp = tempfile::tempdir().unwrap();
    let ds = Arc::new(crate::testdata::llm_dataset(tmp.path(), 20));
    let counter = || {
        let reads = Arc::new(AtomicUsize::new(0));
        let hook = {
            let reads = reads.clone();
            Arc::new(move || {
                reads.fetch_add(1, Ordering::SeqCst);
            })
        };
        (reads, hook)
    };
    let sql = "SELECT count(*) FROM messages";
    // One span per slice: 40 slices with an LLM span.
    let (reads, hook) = counter();
    let kept = messages_engine(&ds, |m| m.bounded(1, 1 << 20, 1 << 30).before_read(hook));
    rows(&kept, sql);
    rows(&kept, sql);
    assert_eq!(
        reads.load(Ordering::SeqCst),
        40,
        "the second query read nothing"
    );

    // LIMIT 1 on one partition reads the first slice with an LLM span, no more.
    let (reads, hook) = counter();
    let limited = messages_engine(&ds, |m| m.bounded(1, 1 << 20, 0).before_read(hook));
    let r = limited
        .query(
            "SELECT trace_id FROM messages LIMIT 1",
            &SqlLimits::default(),
        )
        .unwrap();
    assert_eq!(r.rows.len(), 1);
    assert_eq!(
        reads.load(Ordering::SeqCst),
        1,
        "one slice read, not one per core"
    );
}

#[test]
fn attributes_read_in_slices_of_one_span_answer_as_whole_batches_do() {
    let tmp = tempfile::tempdir().unwrap();
    let ds = Arc::new(crate::testdata::llm_dataset(tmp.path(), 20));
    let spans = Arc::new(SpansTable::shared(ds.clone(), 2).with_slice_bytes(1));
    let one_span = engine_with(spans.clone(), MessagesTable::over(spans, 2), Some(&ds));
    let whole = SqlEngine::open_shared(ds.clone()).unwrap();
    for sql in [
        "SELECT trace_id, span_id, attributes FROM spans ORDER BY trace_id, span_id",
        "SELECT span_id, attributes FROM spans WHERE kind = 'LLM' ORDER BY trace_id, span_id",
        "SELECT count(*) FROM spans WHERE attributes LIKE '%question 7-1%'",
    ] {
        let (a, b) = (rows(&one_span, sql), rows(&whole, sql));
        assert!(!a.is_empty());
        assert_eq!(a, b, "{sql}");
    }
}

#[test]
fn a_source_replaced_before_its_attributes_are_read_is_the_datas_failure() {
    let tmp = tempfile::tempdir().unwrap();
    let ds = Arc::new(crate::testdata::llm_dataset(tmp.path(), 5));
    let engine = SqlEngine::open_shared(ds).unwrap();
    // Log rotation between opening the dataset and reading its source: a new file takes
    // the old one's name.
    let path = tmp.path().join("llm.jsonl");
    let next = tmp.path().join("llm.jsonl.next");
    std::fs::write(&next, "{}\n").unwrap();
    std::fs::rename(&next, &path).unwrap();
    let sql = "SELECT count(*) FROM spans WHERE attributes LIKE '%question%'";
    match engine.query(sql, &SqlLimits::default()) {
        Err(SqlError::Unreadable(message)) => {
            assert!(message.contains("replaced"), "{message}")
        }
        other => panic!("expected the data's failure, got {other:?}"),
    }
}

#[test]
fn filtered_messages_keep_the_index_order_and_filters_that_could_fail_wait_for_messages() {
    let tmp = tempfile::tempdir().unwrap();
    let ds = Arc::new(crate::testdata::llm_dataset(tmp.path(), 20));
    // One span per slice: many batches for a filter to deal out.
    let engine = messages_engine(&ds, |m| m.bounded(1, 1 << 20, 0));
    let ordered = rows(
        &engine,
        "SELECT trace_id, span_id, direction, position FROM messages \
         ORDER BY trace_id, span_id, direction, position",
    );
    for _ in 0..10 {
        let filtered = rows(
            &engine,
            "SELECT trace_id, span_id, direction, position FROM messages WHERE role <> 'nobody'",
        );
        assert_eq!(filtered, ordered, "in the index's order, every time");
    }
    // The AGENT span `root` has no messages: a filter that fails on its id must not be
    // tried on it.
    let r = rows(
        &engine,
        "SELECT count(*) FROM messages \
         WHERE CAST(CASE WHEN span_id = 'root' THEN 'abc' ELSE '1' END AS INT) = 1",
    );
    assert_eq!(r[0][0], 120);
    let r = rows(
        &engine,
        "SELECT count(*) FROM messages WHERE span_id IN ('llm-0', 'x') AND NOT trace_id LIKE 'trace-01%'",
    );
    assert_eq!(r[0][0], 30, "10 traces × one call × 3 messages");
}

/// An engine over `ds` whose scans read one span per slice (many batches for dynamic
/// filters to act between), with its session options changed by `tweak`.
fn one_span_slices_engine(
    ds: &Arc<Dataset>,
    tweak: impl FnOnce(&mut datafusion::common::config::ConfigOptions),
) -> SqlEngine {
    let spans = Arc::new(SpansTable::shared(ds.clone(), 2).with_slice_bytes(1));
    let traces = halo_index::traces_to_batch(ds.traces());
    let messages = Arc::new(MessagesTable::over(spans.clone(), 2));
    let mut state = tables::base_state(spans, traces, messages, 2).unwrap();
    tweak(state.config_mut().options_mut());
    SqlEngine::from_state(state, 1).unwrap()
}

/// Session options with every dynamic filter off: each scan reads all it is given.
fn without_dynamic_filters(options: &mut datafusion::common::config::ConfigOptions) {
    let optimizer = &mut options.optimizer;
    optimizer.enable_dynamic_filter_pushdown = false;
    optimizer.enable_topk_dynamic_filter_pushdown = false;
    optimizer.enable_join_dynamic_filter_pushdown = false;
    optimizer.enable_aggregate_dynamic_filter_pushdown = false;
}

/// The number a metric of `EXPLAIN ANALYZE`'s plan shows, summed over the operators that
/// show it.
fn metric(engine: &SqlEngine, sql: &str, name: &str) -> usize {
    let plan = rows(engine, &format!("EXPLAIN ANALYZE {sql}"));
    let text = plan
        .iter()
        .flatten()
        .filter_map(|v| v.as_str())
        .collect::<Vec<_>>()
        .join("\n");
    let found: Vec<usize> = text
        .match_indices(&format!("{name}="))
        .map(|(at, key)| {
            let digits: String = text[at + key.len()..]
                .chars()
                .take_while(char::is_ascii_digit)
                .collect();
            digits
                .parse()
                .unwrap_or_else(|_| panic!("{name} in {text}"))
        })
        .collect();
    assert!(!found.is_empty(), "no {name} in {text}");
    found.iter().sum()
}

#[test]
fn an_ordered_limit_reads_the_attributes_of_few_spans_and_answers_as_a_full_read_does() {
    let tmp = tempfile::tempdir().unwrap();
    let ds = Arc::new(crate::testdata::llm_dataset(tmp.path(), 40));
    let engine = one_span_slices_engine(&ds, |_| {});
    // The same tables without dynamic filters: every span's attributes are read.
    let full_read = one_span_slices_engine(&ds, without_dynamic_filters);
    for sql in [
        "SELECT trace_id, span_id, attributes FROM spans ORDER BY trace_id, span_id LIMIT 3",
        "SELECT span_id, length(attributes) AS n FROM spans ORDER BY trace_id, span_id DESC LIMIT 4",
        "SELECT * FROM spans ORDER BY model, trace_id LIMIT 2",
    ] {
        let (got, want) = (rows(&engine, sql), rows(&full_read, sql));
        assert!(!got.is_empty(), "{sql}");
        assert_eq!(got, want, "{sql}");
        let (few, all) = (
            metric(&engine, sql, "rows_read"),
            metric(&full_read, sql, "rows_read"),
        );
        assert!(few * 4 < all, "{sql}: {few} spans read, of {all}");
    }
    // A WHERE or a join between the scan and the TopK gathers rows into batches of the
    // session's size before the TopK sees them (a handful of slices of real data, all of
    // this test's data): the threshold comes later, the answer is the same.
    for sql in [
        "SELECT * FROM spans WHERE kind = 'LLM' ORDER BY model DESC, trace_id LIMIT 2",
        "SELECT s.span_id, s.attributes FROM spans s JOIN traces t USING (trace_id) \
         ORDER BY s.trace_id, s.span_id LIMIT 3",
    ] {
        assert_eq!(rows(&engine, sql), rows(&full_read, sql), "{sql}");
    }
    // Ordered against the data's order, each span read beats the last: the threshold
    // rises as the scan goes and saves little, but the answer is the same.
    let sql = "SELECT span_id, attributes FROM spans ORDER BY trace_id DESC, span_id LIMIT 4";
    assert_eq!(rows(&engine, sql), rows(&full_read, sql));
    // An order over an expression that fails on the spans the query's own filter (on
    // attributes) removes, and aggregates, whose dynamic filters DataFusion can build
    // wrong: answered as a full read answers them.
    for sql in [
        "SELECT span_id, trace_id FROM spans WHERE attributes LIKE '%AGENT%' \
         ORDER BY CAST(CASE WHEN span_id = 'root' THEN '1' ELSE 'x' END AS BIGINT), trace_id LIMIT 3",
        "SELECT max(length(attributes)), max(duration_ms), min(length(attributes)) FROM spans",
        "SELECT min(input_tokens), max(input_tokens) FROM spans WHERE attributes LIKE '%'",
    ] {
        assert_eq!(rows(&engine, sql), rows(&full_read, sql), "{sql}");
    }
    // Ordered by the attributes themselves, every span must be read.
    let sql = "SELECT span_id FROM spans ORDER BY attributes LIMIT 1";
    assert_eq!(rows(&engine, sql), rows(&full_read, sql));
    assert_eq!(metric(&engine, sql, "rows_read"), 120);
}

/// Spans without token counts, then LLM spans whose prompt tokens fall: the shape that
/// made DataFusion's MIN/MAX dynamic filter drop the smallest counts, once a scan applied
/// it.
#[test]
fn min_and_max_over_attributes_scans_see_every_span() {
    let tmp = tempfile::tempdir().unwrap();
    let line = |i: usize, attrs: String| {
        format!(
            r#"{{"trace_id":"t{i:05}","span_id":"s{i}","parent_span_id":"","trace_state":"","name":"n","kind":"SPAN_KIND_INTERNAL","start_time":"2026-04-12T10:00:00.000Z","end_time":"2026-04-12T10:00:0{}.000Z","status":{{"code":"STATUS_CODE_OK","message":""}},"resource":{{"attributes":{{"service.name":"svc"}}}},"scope":{{"name":"t","version":"1"}},"attributes":{attrs}}}"#,
            1 + i % 8
        )
    };
    let n = 64;
    let mut text = String::new();
    for i in 0..n {
        text += &line(i, format!(r#"{{"pad":"{}"}}"#, "x".repeat(i)));
        text.push('\n');
    }
    for i in n..2 * n {
        let tokens = 10 * (2 * n - i);
        text += &line(
            i,
            format!(r#"{{"openinference.span.kind":"LLM","llm.token_count.prompt":{tokens}}}"#),
        );
        text.push('\n');
    }
    let path = tmp.path().join("t.jsonl");
    std::fs::write(&path, text).unwrap();
    let options = halo_index::OpenOptions {
        index_dir: Some(tmp.path().join("index")),
        ..Default::default()
    };
    let ds = Arc::new(Dataset::open(&[path], &options, &halo_index::NoProgress).unwrap());
    for slice_bytes in [1, 1 << 20] {
        let spans = Arc::new(SpansTable::shared(ds.clone(), 2).with_slice_bytes(slice_bytes));
        let engine = engine_with(spans.clone(), MessagesTable::over(spans, 2), Some(&ds));
        let r = rows(
            &engine,
            "SELECT min(input_tokens), max(input_tokens) FROM spans WHERE attributes LIKE '%'",
        );
        assert_eq!(r[0], [serde_json::json!(10), serde_json::json!(640)]);
        let r = rows(
            &engine,
            "SELECT max(length(attributes)), max(duration_ms) FROM spans",
        );
        let longest = rows(
            &engine,
            "SELECT length(attributes) AS l FROM spans ORDER BY l DESC LIMIT 1",
        );
        assert_eq!(r[0][0], longest[0][0], "slices of {slice_bytes} bytes");
    }
}

/// Traces of three spans each, of durations that differ within and between traces: a join
/// of spans and traces has two `duration_ms` columns.
fn durations_dataset(dir: &std::path::Path) -> Arc<Dataset> {
    let mut text = String::new();
    for t in 0..30 {
        for i in 0..3 {
            let seconds = (t * 7 + i * 3) % 9 + 1;
            text += &format!(
                r#"{{"trace_id":"t{t:02}","span_id":"s{t:02}{i}","parent_span_id":"","trace_state":"","name":"n","kind":"SPAN_KIND_INTERNAL","start_time":"2026-04-12T10:00:00.000Z","end_time":"2026-04-12T10:00:0{seconds}.000Z","status":{{"code":"STATUS_CODE_OK","message":""}},"resource":{{"attributes":{{"service.name":"svc"}}}},"scope":{{"name":"t","version":"1"}},"attributes":{{"k":"{}"}}}}"#,
                "v".repeat(t + i)
            );
            text.push('\n');
        }
    }
    let path = dir.join("d.jsonl");
    std::fs::write(&path, text).unwrap();
    let options = halo_index::OpenOptions {
        index_dir: Some(dir.join("index")),
        ..Default::default()
    };
    Arc::new(Dataset::open(&[path], &options, &halo_index::NoProgress).unwrap())
}

#[test]
fn a_topk_over_a_join_of_two_columns_of_one_name_keeps_every_row_it_needs() {
    let tmp = tempfile::tempdir().unwrap();
    let ds = durations_dataset(tmp.path());
    // Batches of two rows: the join hands the TopK its rows as the scan goes, so the
    // TopK's threshold reaches the scan while most spans are still to be read.
    let engine_where = |dynamic: bool| {
        one_span_slices_engine(&ds, |options| {
            options.execution.batch_size = "2".parse().unwrap();
            if !dynamic {
                without_dynamic_filters(options);
            }
        })
    };
    let (engine, full_read) = (engine_where(true), engine_where(false));
    for sql in [
        "SELECT s.span_id, length(s.attributes) AS la FROM spans s JOIN traces t \
         ON s.trace_id = t.trace_id ORDER BY t.duration_ms DESC, s.duration_ms ASC, s.span_id LIMIT 5",
        "SELECT s.span_id, s.attributes, t.duration_ms AS td FROM spans s JOIN traces t \
         ON s.trace_id = t.trace_id ORDER BY t.start_time, s.duration_ms, s.span_id LIMIT 4",
    ] {
        assert_eq!(rows(&engine, sql), rows(&full_read, sql), "{sql}");
    }
    // A join's own filter, on its key, still spares the reading.
    let sql = "SELECT s.span_id, s.attributes FROM spans s \
               JOIN (SELECT trace_id FROM traces ORDER BY trace_id LIMIT 2) t USING (trace_id)";
    assert_eq!(rows(&engine, sql).len(), 6);
    let read = metric(&engine, sql, "rows_read");
    assert!(read < 90, "{read} of 90 spans read");
}
