//! Measures opening the SQL tables and typical aggregates on a dataset.
//!
//! `cargo run --release -p halo-sql --example sql_bench -- TRACES [INDEX_DIR]`

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use halo_index::{Dataset, NoProgress, OpenOptions};
use halo_sql::{SqlEngine, SqlLimits};

const QUERIES: &[(&str, &str)] = &[
    ("count spans", "SELECT count(*) FROM spans"),
    (
        "failures by tool",
        "SELECT tool_name, count(*) AS calls, sum(CASE WHEN is_error THEN 1 ELSE 0 END) AS failures FROM tool_calls GROUP BY tool_name ORDER BY failures DESC",
    ),
    (
        "error rate per model",
        "SELECT model, count(*), avg(CASE WHEN is_error THEN 1.0 ELSE 0.0 END) FROM llm_calls GROUP BY model",
    ),
    ("tokens per agent (traces)", "SELECT a, sum(total_tokens) FROM (SELECT unnest(agents) AS a, total_tokens FROM traces) GROUP BY a"),
    ("slowest tool calls", "SELECT trace_id, span_id, tool_name, duration_ms FROM tool_calls ORDER BY duration_ms DESC LIMIT 10"),
    (
        "identical calls 5+",
        "SELECT trace_id, tool_name, arguments, count(*) AS n FROM tool_calls GROUP BY trace_id, tool_name, arguments HAVING count(*) >= 5 ORDER BY n DESC LIMIT 20",
    ),
];

fn open(path: &str, options: &OpenOptions) -> Dataset {
    let t = Instant::now();
    let ds = Dataset::open(&[PathBuf::from(path)], options, &NoProgress).expect("dataset opens");
    println!(
        "dataset open: {:.1} ms ({} traces, {} spans, {} segments)",
        ms(t),
        ds.traces().len(),
        ds.span_count(),
        ds.segment_count()
    );
    ds
}

fn ms(t: Instant) -> f64 {
    t.elapsed().as_secs_f64() * 1e3
}

fn run(engine: &SqlEngine) {
    for (what, sql) in QUERIES {
        let t = Instant::now();
        let r = engine
            .query(sql, &SqlLimits::default())
            .expect("query runs");
        println!("  {what}: {:.1} ms ({} rows)", ms(t), r.row_count);
    }
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some(path) = args.first() else {
        eprintln!("usage: sql_bench TRACES [INDEX_DIR]");
        std::process::exit(1);
    };
    let options = OpenOptions {
        index_dir: args.get(1).map(PathBuf::from),
        ..Default::default()
    };

    // Lazy: only the trace rollups at open; the first span query loads the span tables.
    let ds = Arc::new(open(path, &options));
    let t = Instant::now();
    let engine = SqlEngine::open_shared(ds.clone()).expect("engine opens");
    println!("sql open_shared (lazy spans): {:.1} ms", ms(t));
    run(&engine);
    println!("again, warm:");
    run(&engine);

    // The messages table, streamed from the source: a whole scan (parsing every LLM span),
    // the same again (served from what the engine kept, up to its budget), and one trace's
    // messages (only that trace's spans parsed).
    let trace = ds
        .traces()
        .get(ds.traces().len() / 2)
        .map(|t| t.trace_id.clone())
        .unwrap_or_default();
    for (what, sql) in [
        (
            "messages, whole scan",
            "SELECT count(*) FROM messages".to_string(),
        ),
        (
            "messages, whole scan again",
            "SELECT count(*) FROM messages".to_string(),
        ),
        (
            "messages of one trace",
            format!("SELECT role, content FROM messages WHERE trace_id = '{trace}'"),
        ),
    ] {
        let t = Instant::now();
        let r = engine
            .query(&sql, &SqlLimits::default())
            .expect("query runs");
        println!("  {what}: {:.1} ms ({} rows)", ms(t), r.row_count);
    }

    // Eager (what `halo export` uses): span tables loaded and sources mapped at open.
    let ds = open(path, &options);
    let t = Instant::now();
    let engine = SqlEngine::open(&ds).expect("engine opens");
    println!("sql open, eager, span tables read now: {:.1} ms", ms(t));
    run(&engine);
}
