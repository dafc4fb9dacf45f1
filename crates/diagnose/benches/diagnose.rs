//! Diagnosis benchmark: per-mode recall/precision against the generator's labels and the
//! time to diagnose a big generated dataset.
//!
//! ```text
//! cargo bench -p halo-diagnose --bench diagnose                       # ~1 GB generated
//! cargo bench -p halo-diagnose --bench diagnose -- --traces 3000      # smaller
//! cargo bench -p halo-diagnose --bench diagnose -- --data x.jsonl --labels x.labels.json
//! ```

use std::collections::BTreeMap;
use std::io::BufWriter;
use std::path::PathBuf;
use std::time::Instant;

use halo_diagnose::{diagnose, evaluate, parse_labels, DiagnoseOptions};
use halo_index::{Dataset, NoProgress, OpenOptions};
use halo_testkit::generate::{write_dataset, FailureMode, GeneratorConfig, OutputFormat};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let value = |name: &str| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1).cloned())
    };
    let seed: u64 = value("--seed").and_then(|v| v.parse().ok()).unwrap_or(7);
    let runs: usize = value("--runs").and_then(|v| v.parse().ok()).unwrap_or(3);
    let tmp = tempfile::tempdir().expect("temp dir");
    let (data, labels): (PathBuf, BTreeMap<String, Vec<String>>) = match value("--data") {
        Some(d) => {
            let l = value("--labels").expect("--labels with --data");
            let text = std::fs::read_to_string(&l).expect("read labels");
            (PathBuf::from(d), parse_labels(&text).expect("labels"))
        }
        None => {
            let mut cfg = GeneratorConfig {
                seed,
                ..GeneratorConfig::default()
            };
            match value("--traces") {
                Some(n) => cfg.traces = n.parse().expect("--traces N"),
                None => {
                    cfg.target_bytes = Some(
                        value("--target-bytes")
                            .and_then(|v| v.parse().ok())
                            .unwrap_or(1_000_000_000),
                    )
                }
            }
            let path = tmp.path().join("bench.jsonl");
            let started = Instant::now();
            let file = BufWriter::new(std::fs::File::create(&path).expect("create"));
            let summary = write_dataset(&cfg, OutputFormat::Canonical, file).expect("generate");
            eprintln!(
                "generated {} traces, {} spans, {:.1} MB in {:.1} s",
                summary.traces,
                summary.spans,
                summary.bytes as f64 / 1e6,
                started.elapsed().as_secs_f64()
            );
            let mut labels = BTreeMap::new();
            for m in FailureMode::ALL {
                labels.insert(
                    m.as_str().to_string(),
                    summary.labels.modes.get(&m).cloned().unwrap_or_default(),
                );
            }
            (path, labels)
        }
    };
    let started = Instant::now();
    let options = OpenOptions {
        index_dir: Some(tmp.path().join("index")),
        ..OpenOptions::default()
    };
    let ds = Dataset::open(std::slice::from_ref(&data), &options, &NoProgress).expect("open");
    eprintln!(
        "indexed {} traces, {} spans in {:.1} s",
        ds.traces().len(),
        ds.span_count(),
        started.elapsed().as_secs_f64()
    );
    // The first diagnosis loads the span tables; later ones reuse them (as a long-lived
    // process would). Both are reported.
    let opts = DiagnoseOptions::default();
    let mut times = Vec::new();
    let mut result = None;
    for _ in 0..runs.max(1) {
        let started = Instant::now();
        let d = diagnose(&ds, &opts).expect("diagnose");
        times.push(started.elapsed().as_secs_f64());
        result = Some(d);
    }
    let d = result.expect("one run");
    println!();
    println!(
        "{:<20} {:>8} {:>9} {:>6} {:>8} {:>9}",
        "mode", "labelled", "predicted", "tp", "recall", "precision"
    );
    let mut ok = true;
    for s in evaluate(&d, &labels) {
        let flag = if s.recall >= 0.95 && s.precision >= 0.95 {
            ""
        } else {
            ok = false;
            "  <-- below 0.95"
        };
        println!(
            "{:<20} {:>8} {:>9} {:>6} {:>8.4} {:>9.4}{flag}",
            s.mode.as_str(),
            s.labelled,
            s.predicted,
            s.true_positives,
            s.recall,
            s.precision
        );
    }
    println!();
    println!(
        "diagnosis of {} traces / {} spans: first run {:.3} s (loads span tables), best {:.3} s; {} findings",
        d.stats.traces,
        d.stats.spans,
        times[0],
        times.iter().copied().fold(f64::INFINITY, f64::min),
        d.findings.len()
    );
    println!(
        "quality bar (recall and precision >= 0.95 per mode): {}",
        if ok { "met" } else { "NOT met" }
    );
}
