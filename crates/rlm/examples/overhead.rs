//! What the RLM engine itself costs, over a scripted model on loopback.
//!
//! ```text
//! cargo run --release -p halo-rlm --example overhead -- [--data FILE] [--calls N]
//! ```
//!
//! The scripted OpenAI-compatible server answers instantly, so the measured time is the
//! engine's: building requests, streaming and parsing responses, running tools, bookkeeping.
//! It reports the time from `Engine::start` to the first model request arriving (with the
//! index already built), and the mean time per tool-call turn for a root that calls
//! `count_traces` N times before `final_answer`, loopback HTTP included.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use halo_index::{Dataset, NoProgress, OpenOptions};
use halo_provider::ProviderConfig;
use halo_rlm::{Engine, EngineConfig};
use halo_testkit::scripted_server::{Reply, Script, ScriptedServer, Turn};

fn main() {
    let mut data = std::env::temp_dir().join("halo-bench-1g.jsonl");
    let mut calls = 50usize;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match (a.as_str(), args.next()) {
            ("--data", Some(v)) => data = PathBuf::from(v),
            ("--calls", Some(v)) => calls = v.parse().unwrap_or(calls),
            _ => {
                eprintln!("usage: overhead [--data FILE] [--calls N]");
                std::process::exit(1);
            }
        }
    }
    if !data.exists() {
        eprintln!(
            "rlm-overhead: {} is missing; run halo-bench first, or pass --data",
            data.display()
        );
        std::process::exit(1);
    }
    let options = OpenOptions {
        index_dir: Some(std::env::temp_dir().join("halo-bench-index")),
        ..Default::default()
    };
    let ds =
        Arc::new(Dataset::open(&[data.clone()], &options, &NoProgress).expect("dataset opens"));
    let rt = tokio::runtime::Runtime::new().expect("runtime");

    // Time to the first model request.
    let first_seen: Arc<Mutex<Option<Instant>>> = Arc::default();
    let seen = first_seen.clone();
    let server = rt.block_on(ScriptedServer::start(Script::new().reply(
        Reply::turn(Turn::new().tool_call("f", "final_answer", r#"{"answer":"done"}"#)).when(
            move |_| {
                seen.lock().expect("lock").get_or_insert_with(Instant::now);
                true
            },
        ),
    )));
    let engine = Engine::new(
        EngineConfig::new(ProviderConfig::new(server.base_url()), "bench"),
        ds.clone(),
    )
    .expect("engine");
    let started = Instant::now();
    rt.block_on(halo_rlm::run(&engine, "bench")).expect("run");
    let to_first = first_seen
        .lock()
        .expect("lock")
        .map(|t| t - started)
        .unwrap_or(Duration::MAX);
    println!("dataset: {} ({} traces)", data.display(), ds.traces().len());
    println!(
        "start to first model request   {:.2} ms",
        to_first.as_secs_f64() * 1e3
    );

    // Per tool-call turn.
    let mut script = Script::new();
    for i in 0..calls {
        script = script.reply(Reply::turn(Turn::new().tool_call(
            &format!("c{i}"),
            "count_traces",
            r#"{"filters":{"has_errors":true}}"#,
        )));
    }
    script = script.reply(Reply::turn(Turn::new().tool_call(
        "f",
        "final_answer",
        r#"{"answer":"done"}"#,
    )));
    let server = rt.block_on(ScriptedServer::start(script));
    let mut config = EngineConfig::new(ProviderConfig::new(server.base_url()), "bench");
    config.max_turns = (calls + 2) as u32;
    let engine = Engine::new(config, ds).expect("engine");
    let started = Instant::now();
    rt.block_on(halo_rlm::run(&engine, "bench")).expect("run");
    let per_turn = started.elapsed() / (calls as u32 + 1);
    println!(
        "per tool-call turn ({calls} x count_traces) {:.2} ms",
        per_turn.as_secs_f64() * 1e3
    );
}
