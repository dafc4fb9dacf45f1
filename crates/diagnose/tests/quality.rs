//! The quality bar: on generated datasets with planted failure modes, every planted mode is
//! reported with trace-level recall and precision >= 0.95 (against the label file).

mod common;

use halo_diagnose::{diagnose, evaluate, DiagnoseOptions, Mode};
use halo_testkit::generate::{GeneratorConfig, OutputFormat};

fn assert_quality(format: OutputFormat, traces: u64, seed: u64, compact: bool) {
    let tmp = tempfile::tempdir().unwrap();
    let cfg = GeneratorConfig {
        traces,
        seed,
        compact,
        ..GeneratorConfig::default()
    };
    let g = common::generate(tmp.path(), "traces.jsonl", &cfg, format);
    let ds = common::open(tmp.path(), std::slice::from_ref(&g.path));
    let d = diagnose(&ds, &DiagnoseOptions::default()).unwrap();
    let scores = evaluate(&d, &g.labels);
    let mut table = String::new();
    for s in &scores {
        table.push_str(&format!(
            "{:<20} labelled {:>4} predicted {:>4} tp {:>4} recall {:.3} precision {:.3}\n",
            s.mode.as_str(),
            s.labelled,
            s.predicted,
            s.true_positives,
            s.recall,
            s.precision
        ));
    }
    eprintln!("{format:?} seed {seed} compact {compact}\n{table}");
    for mode in Mode::ALL {
        let s = scores
            .iter()
            .find(|s| s.mode == mode)
            .unwrap_or_else(|| panic!("mode {mode} neither planted nor found\n{table}"));
        assert!(s.labelled > 0, "mode {mode} not planted\n{table}");
        assert!(
            s.recall >= 0.95 && s.precision >= 0.95,
            "mode {mode} below the quality bar\n{table}"
        );
    }
    // Clean traces are not reported at all.
    let clean: std::collections::HashSet<&str> =
        g.labels["clean"].iter().map(String::as_str).collect();
    let flagged_clean = d
        .findings
        .iter()
        .flat_map(|f| f.trace_ids.iter())
        .filter(|t| clean.contains(t.as_str()))
        .count();
    assert!(
        flagged_clean * 100 <= clean.len(),
        "{flagged_clean} clean traces flagged"
    );
}

#[test]
fn canonical_dataset_meets_the_quality_bar() {
    assert_quality(OutputFormat::Canonical, 2500, 11, false);
}

#[test]
fn otlp_compact_dataset_meets_the_quality_bar() {
    assert_quality(OutputFormat::Otlp, 2000, 23, true);
}
