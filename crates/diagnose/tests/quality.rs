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

/// The bundled example files agree with their label files: every labelled trace the
/// diagnosis flags under its mode, and nothing it flags is labelled otherwise. (The
/// small files plant too few traces of each mode for the 0.95 bar to be meaningful, so
/// this asks for full agreement on what is labelled.)
#[test]
fn the_bundled_examples_match_their_labels() {
    for (data, labels) in [
        (
            "examples/data/agent-traces.jsonl",
            "examples/data/agent-traces.labels.json",
        ),
        (
            "examples/data/agent-traces.otlp.jsonl",
            "examples/data/agent-traces.otlp.labels.json",
        ),
    ] {
        let tmp = tempfile::tempdir().unwrap();
        let file = tmp.path().join("data.jsonl");
        std::fs::copy(halo_testkit::workspace_path(data), &file).unwrap();
        let text = std::fs::read_to_string(halo_testkit::workspace_path(labels)).unwrap();
        let parsed: serde_json::Value = serde_json::from_str(&text).unwrap();
        let modes = parsed.get("modes").unwrap_or(&parsed);
        let labels: std::collections::BTreeMap<String, Vec<String>> =
            serde_json::from_value(modes.clone()).unwrap();
        let ds = common::open(tmp.path(), std::slice::from_ref(&file));
        let d = diagnose(&ds, &DiagnoseOptions::default()).unwrap();
        // Outlier evidence says how far out it is.
        for f in d
            .findings
            .iter()
            .filter(|f| matches!(f.key.mode, Mode::TokenOutlier | Mode::LatencyOutlier))
        {
            for e in &f.examples {
                let detail = e.detail.as_deref().unwrap_or("");
                assert!(detail.contains("peers' median"), "{data}: {detail:?}");
            }
        }
        for s in evaluate(&d, &labels) {
            assert!(
                s.recall >= 0.99 && s.precision >= 0.99,
                "{data}: {} recall {} precision {}",
                s.mode.as_str(),
                s.recall,
                s.precision
            );
        }
    }
}

/// Premature success stays visible however common it gets: an agent that skips its tools
/// in most runs is a regression to report, not the agent's normal behaviour.
#[test]
fn premature_success_in_most_runs_is_still_found() {
    use halo_testkit::generate::{FailureMode, ModeRates};
    for rate in [0.3, 0.7, 0.9] {
        let tmp = tempfile::tempdir().unwrap();
        let mut rates = ModeRates::none();
        rates.set(FailureMode::PrematureSuccess, rate);
        let cfg = GeneratorConfig {
            traces: 200,
            seed: 5,
            rates,
            ..GeneratorConfig::default()
        };
        let g = common::generate(tmp.path(), "t.jsonl", &cfg, OutputFormat::Canonical);
        let ds = common::open(tmp.path(), std::slice::from_ref(&g.path));
        let d = diagnose(&ds, &DiagnoseOptions::default()).unwrap();
        let s = evaluate(&d, &g.labels)
            .into_iter()
            .find(|s| s.mode == Mode::PrematureSuccess)
            .unwrap();
        assert!(
            s.labelled > 0 && s.recall >= 0.95 && s.precision >= 0.95,
            "rate {rate}: {s:?}"
        );
    }
}
