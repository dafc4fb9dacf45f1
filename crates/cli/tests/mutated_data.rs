//! Nothing panics on user input, end to end: the bundled examples with a share of their
//! lines mutated (values of odd types and lengths, known attribute keys with odd values,
//! damaged bytes; see `halo_testkit::mutate`), plain and gzipped, canonical and OTLP, go
//! through every command, and every command ends with a documented exit code and, under
//! `--json`, JSON.
//!
//! `HALO_MUTATION_SEED` picks another mutated dataset; a failure names the seed.

mod common;

use common::{halo, stdout};
use std::path::Path;
use std::process::Output;

fn seed() -> u64 {
    std::env::var("HALO_MUTATION_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(7)
}

/// Runs `halo` and checks that it did not panic and ended with a documented code; JSON
/// output, when asked for, must parse. Returns the output for further checks.
fn run_checked(dir: &Path, args: &[&str]) -> Output {
    let out = halo(dir, args);
    let err = String::from_utf8_lossy(&out.stderr);
    let code = out.status.code();
    assert!(
        !err.contains("panicked") && matches!(code, Some(0..=5)),
        "halo {args:?} (HALO_MUTATION_SEED={}) ended with {code:?}:\n{}",
        seed(),
        common::stderr(&out)
    );
    if args.contains(&"--json") {
        let text = stdout(&out);
        // `--json` is one document, except for streams of events (one per line).
        let parses = serde_json::from_str::<serde_json::Value>(&text).is_ok()
            || text
                .lines()
                .all(|l| serde_json::from_str::<serde_json::Value>(l).is_ok());
        assert!(parses, "halo {args:?} printed no JSON: {text}");
    }
    out
}

#[test]
fn every_command_survives_mutated_data() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let dir = tmp.path();
    let canonical = std::fs::read(halo_testkit::workspace_path(
        "examples/data/agent-traces.jsonl",
    ))
    .expect("the example data is in the repository");
    let otlp = std::fs::read(halo_testkit::workspace_path(
        "examples/data/agent-traces.otlp.jsonl",
    ))
    .expect("the OTLP example is in the repository");
    let seed = seed();
    let a = halo_testkit::mutate::mutate_lines(&canonical, seed, 0.3);
    std::fs::write(dir.join("a.jsonl"), &a).expect("write");
    std::fs::write(
        dir.join("b.jsonl"),
        halo_testkit::mutate::mutate_lines(&otlp, seed, 0.9),
    )
    .expect("write");
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    std::io::Write::write_all(&mut gz, &a).expect("gzip");
    std::fs::write(dir.join("c.jsonl.gz"), gz.finish().expect("gzip")).expect("write");

    let data = ["a.jsonl", "b.jsonl", "c.jsonl.gz"];
    let with = |args: &[&'static str]| -> Vec<&'static str> {
        let mut all = args[..1].to_vec();
        all.extend(data);
        all.extend(&args[1..]);
        all
    };

    let index = run_checked(dir, &with(&["index", "--json"]));
    let report = common::json(&index);
    assert!(
        report["total_spans"].as_u64().unwrap_or(0) > 1_000,
        "the unmutated lines are kept: {report}"
    );
    run_checked(dir, &with(&["overview", "--json"]));
    run_checked(dir, &with(&["overview"]));
    let query = run_checked(dir, &with(&["query", "--json", "--limit", "500"]));
    run_checked(dir, &with(&["query", "--has-errors", "--sort", "tokens"]));
    run_checked(
        dir,
        &with(&["count", "--regex-pattern", "é|rror", "--json"]),
    );
    run_checked(dir, &with(&["grep", "rror", "--json"]));
    run_checked(dir, &with(&["grep", "x{3}"]));

    let traces = common::json(&query)["traces"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert!(traces.len() > 100, "{} traces", traces.len());
    // Every seventh trace, through the views and searches in both outputs.
    for trace in traces.iter().step_by(7) {
        let id = trace["trace_id"].as_str().unwrap_or_default().to_owned();
        let mut args = vec!["view"];
        args.extend(data);
        args.push(&id);
        run_checked(dir, &args);
        args.push("--json");
        run_checked(dir, &args);
        let mut args = vec!["search"];
        args.extend(data);
        args.extend([id.as_str(), "rror|é|🦀|\\{"]);
        run_checked(dir, &args);
        args.push("--json");
        run_checked(dir, &args);
    }

    run_checked(dir, &with(&["diagnose", "--json"]));
    run_checked(dir, &with(&["diagnose"]));
    for table in ["traces", "spans", "tool_calls", "llm_calls", "messages"] {
        let query = format!("select * from {table}");
        let mut args = vec!["sql"];
        args.extend(data);
        args.extend([query.as_str(), "--json"]);
        run_checked(dir, &args);
    }
    run_checked(dir, &with(&["export", "--parquet", "parquet"]));
    let example = halo_testkit::workspace_path("examples/data/agent-traces.jsonl");
    let example = example.to_str().expect("a UTF-8 path");
    run_checked(dir, &["diff", example, "a.jsonl", "--json", "-q"]);
    // The analysis form without a model: the offline diagnosis, as a new user runs it.
    run_checked(dir, &data);
}
