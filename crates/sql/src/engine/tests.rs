//! The engine's runtime and the tables' bounded batches, with the crate's internals at hand.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::time::Duration;

use halo_index::Dataset;

use super::*;
use crate::message_batches::BATCH_BYTES;
use crate::messages::{build_messages, LazyMessages};
use crate::spans::SpansTable;

/// Long enough never to pass in a working test; it only turns a hang into a failure.
const DEADLOCK_GUARD: Duration = Duration::from_secs(30);

/// An engine over these tables (and `ds`'s trace rollups, if any).
fn engine_with(spans: SpansTable, messages: LazyMessages, ds: Option<&Dataset>) -> SqlEngine {
    let traces = halo_index::traces_to_batch(ds.map_or(&[][..], |d| d.traces()));
    let state = tables::base_state(Arc::new(spans), traces, Arc::new(messages), 2).unwrap();
    SqlEngine::from_state(state, 1).unwrap()
}

fn rows(engine: &SqlEngine, sql: &str) -> Vec<Vec<serde_json::Value>> {
    engine
        .query(sql, &SqlLimits::default())
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
        .rows
}

#[test]
fn a_slow_table_build_holds_up_neither_the_callers_runtime_nor_the_time_limit() {
    let tmp = tempfile::tempdir().unwrap();
    let ds = Arc::new(crate::testdata::llm_dataset(tmp.path(), 3));
    let builds = Arc::new(AtomicUsize::new(0));
    let gave_up = Arc::new(AtomicBool::new(false));
    let built_on = Arc::new(Mutex::new(None));
    let (release, released) = mpsc::channel::<()>();
    let released = Mutex::new(released);
    let messages = {
        let (ds, builds, gave_up) = (ds.clone(), builds.clone(), gave_up.clone());
        let built_on = built_on.clone();
        LazyMessages::built_by(Arc::new(move || {
            builds.fetch_add(1, Ordering::SeqCst);
            *built_on.lock().unwrap() = std::thread::current().name().map(str::to_owned);
            // A large dataset's build, which takes until the test says so. Were it run on
            // the caller's one thread, no one could say so and it would wait out the guard.
            if released
                .lock()
                .unwrap()
                .recv_timeout(DEADLOCK_GUARD)
                .is_err()
            {
                gave_up.store(true, Ordering::SeqCst);
            }
            build_messages(&ds, BATCH_BYTES).map_err(|e| e.to_string())
        }))
    };
    let engine = engine_with(SpansTable::empty().unwrap(), messages, None);
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
        // The engine's one worker is not held by the build either: other queries run.
        let other = engine.query_async("SELECT 1", &quick).await;
        assert!(other.is_ok(), "{other:?}");
    });
    assert_eq!(
        built_on.lock().unwrap().as_deref(),
        Some("halo-sql"),
        "the build runs on the engine's runtime, not the caller's"
    );
    assert!(
        !gave_up.load(Ordering::SeqCst),
        "the time limit fired while the build was still going"
    );
    release.send(()).unwrap();
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
            builds.load(Ordering::SeqCst),
            1,
            "the build outlived the queries that gave up on it, and was not started again"
        );
        // Dropped inside a runtime, as an agent run's engine is: its own runtime must not
        // panic on the way out.
        drop(engine);
    });
}

#[test]
fn a_query_whose_caller_stops_waiting_stops_too() {
    let (release, released) = mpsc::channel::<()>();
    let released = Mutex::new(released);
    let messages = LazyMessages::built_by(Arc::new(move || {
        // Outlasts the wait below, so only an abort can end the query in time.
        let _ = released.lock().unwrap().recv_timeout(2 * DEADLOCK_GUARD);
        Ok(Vec::new())
    }));
    let engine = engine_with(SpansTable::empty().unwrap(), messages, None);
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
    release.send(()).unwrap();
}

#[test]
fn messages_cut_into_many_batches_answer_as_one_batch_does() {
    let tmp = tempfile::tempdir().unwrap();
    let ds = Arc::new(crate::testdata::llm_dataset(tmp.path(), 20));
    let whole = build_messages(&ds, BATCH_BYTES).unwrap();
    assert_eq!(whole.len(), 1);
    let cut = build_messages(&ds, 500).unwrap();
    assert!(cut.len() > 10, "{} batches", cut.len());
    assert_eq!(
        cut.iter().map(|b| b.num_rows()).sum::<usize>(),
        whole[0].num_rows()
    );
    assert_eq!(
        arrow_select_concat(&cut),
        whole[0],
        "same rows, same order, cut into batches"
    );

    let small = {
        let ds = ds.clone();
        LazyMessages::built_by(Arc::new(move || {
            build_messages(&ds, 500).map_err(|e| e.to_string())
        }))
    };
    let cut_engine = engine_with(SpansTable::empty().unwrap(), small, None);
    let one_engine = SqlEngine::open_shared(ds.clone()).unwrap();
    for sql in [
        "SELECT * FROM messages",
        "SELECT role, count(*), sum(length(content)) FROM messages GROUP BY role ORDER BY role",
        "SELECT content FROM messages WHERE direction = 'output' ORDER BY trace_id, span_id",
    ] {
        assert_eq!(rows(&cut_engine, sql), rows(&one_engine, sql), "{sql}");
    }
}

#[test]
fn attributes_read_in_slices_of_one_span_answer_as_whole_batches_do() {
    let tmp = tempfile::tempdir().unwrap();
    let ds = Arc::new(crate::testdata::llm_dataset(tmp.path(), 20));
    let one_span = engine_with(
        SpansTable::shared(ds.clone(), 2).with_slice_bytes(1),
        LazyMessages::ready(Vec::new()).unwrap(),
        Some(&ds),
    );
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

/// The batches as one, through Arrow's own concatenation.
fn arrow_select_concat(batches: &[arrow_array::RecordBatch]) -> arrow_array::RecordBatch {
    datafusion::arrow::compute::concat_batches(&crate::messages::messages_schema(), batches)
        .unwrap()
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
