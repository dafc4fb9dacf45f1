//! Run-vs-run diff on two generated datasets with different failure rates.

mod common;

use halo_diagnose::{diagnose, diff, DiagnoseOptions, Mode, Verdict};
use halo_testkit::generate::{FailureMode, GeneratorConfig, ModeRates, OutputFormat};

#[test]
fn a_fixed_mode_and_a_worse_mode_get_their_verdicts() {
    let tmp = tempfile::tempdir().unwrap();
    let before_cfg = GeneratorConfig {
        traces: 2000,
        seed: 5,
        ..GeneratorConfig::default()
    };
    let mut rates = ModeRates::default();
    rates.set(FailureMode::ToolError, 0.0);
    rates.set(FailureMode::ProviderError, 0.12);
    let after_cfg = GeneratorConfig {
        traces: 2000,
        seed: 6,
        rates,
        ..GeneratorConfig::default()
    };
    let b = common::generate(
        tmp.path(),
        "before.jsonl",
        &before_cfg,
        OutputFormat::Canonical,
    );
    let a = common::generate(
        tmp.path(),
        "after.jsonl",
        &after_cfg,
        OutputFormat::Canonical,
    );
    let before_ds = common::open(&tmp.path().join("b"), std::slice::from_ref(&b.path));
    let after_ds = common::open(&tmp.path().join("a"), std::slice::from_ref(&a.path));
    let opts = DiagnoseOptions::default();
    let before = diagnose(&before_ds, &opts).unwrap();
    let after = diagnose(&after_ds, &opts).unwrap();
    let report = diff(&before, &after);
    let md = report.to_markdown();
    eprintln!("{md}");

    let mode = |m: Mode| {
        report
            .modes
            .iter()
            .find(|d| d.key.mode == m)
            .unwrap_or_else(|| panic!("{m} missing from the diff"))
    };
    assert_eq!(mode(Mode::ToolError).verdict, Verdict::Fixed);
    assert_eq!(mode(Mode::ToolError).after_traces, 0);
    // Each row names traces to open: the worse mode's from the run after, in that run
    // and showing that mode.
    let fixed = mode(Mode::ToolError);
    assert!(fixed.examples_after.is_empty() && fixed.examples_before.len() == 3);
    let worse = mode(Mode::ProviderError);
    assert_eq!(worse.examples_after.len(), 3);
    let provider_after = after.traces_with(Mode::ProviderError);
    for id in &worse.examples_after {
        assert!(provider_after.contains(id), "{id}");
        assert!(md.contains(&format!("`{id}`")), "{id} not in the Markdown");
    }
    for f in &report.findings {
        assert!(
            f.examples_after.len() == f.after_traces.min(3)
                && f.examples_before.len() == f.before_traces.min(3),
            "{f:?}"
        );
    }
    let json: serde_json::Value = serde_json::from_str(&report.to_json()).unwrap();
    assert!(json["modes"][0]["examples_after"].is_array(), "{json}");
    assert!(mode(Mode::ToolError).p_value < 1e-10);
    assert_eq!(mode(Mode::ProviderError).verdict, Verdict::Worse);
    assert!(mode(Mode::ProviderError).change > 0.05);
    for m in [
        Mode::HallucinatedTool,
        Mode::InvalidToolArgs,
        Mode::RepeatedToolLoop,
        Mode::RefusalLoop,
        Mode::TurnExhaustion,
        Mode::SilentFailure,
    ] {
        assert_eq!(mode(m).verdict, Verdict::Unchanged, "{m}");
    }

    // Per finding: tool errors are fixed (or too small to tell), never new or worse.
    let tool_errors: Vec<_> = report
        .findings
        .iter()
        .filter(|f| f.key.mode == Mode::ToolError)
        .collect();
    assert!(tool_errors.iter().any(|f| f.verdict == Verdict::Fixed));
    assert!(tool_errors
        .iter()
        .all(|f| matches!(f.verdict, Verdict::Fixed | Verdict::Unchanged)));
    let provider: Vec<_> = report
        .findings
        .iter()
        .filter(|f| f.key.mode == Mode::ProviderError)
        .collect();
    assert!(provider.iter().any(|f| f.verdict == Verdict::Worse));
    assert!(provider
        .iter()
        .all(|f| !matches!(f.verdict, Verdict::Fixed | Verdict::Improved)));

    // Whole-run numbers and renderings.
    let names: Vec<&str> = report.metrics.iter().map(|m| m.name.as_str()).collect();
    for n in [
        "error_rate",
        "failure_rate",
        "turns_per_trace",
        "tokens_per_trace",
        "p50_duration_ms",
    ] {
        assert!(names.contains(&n), "{n}");
    }
    assert!(md.contains("| fixed | Tool error"));
    // The headline counts modes first: a fixed mode is visible even when each of its
    // findings alone is too small to be significant.
    let headline = report.verdict_line();
    assert!(headline.starts_with("modes: fixed 1 · "), "{headline}");
    assert!(headline.contains("worse 1"), "{headline}");
    // Findings that are gone but on too few traces say so instead of "unchanged".
    for f in &report.findings {
        let gone = f.verdict == Verdict::Unchanged && f.after_traces == 0 && f.before_traces > 0;
        assert_eq!(f.label() == "gone, n.s.", gone, "{f:?}");
    }
    // Masked templates are escaped for Markdown outside code spans (inside one, `<num>`
    // shows as it is), and a mode's row does not repeat its name.
    let outside_code: String = md.split('`').step_by(2).collect();
    assert!(
        !outside_code.contains("<num>") && !outside_code.contains("<str>"),
        "{md}"
    );
    let mode_row = md
        .lines()
        .find(|l| l.starts_with("| fixed | Tool error"))
        .unwrap();
    assert!(!mode_row.contains("`tool_error`"), "{mode_row}");
    let json: serde_json::Value = serde_json::from_str(&report.to_json()).unwrap();
    assert_eq!(json["schema_version"], 2);
    assert!(json["findings"][0]["verdict"].is_string());

    // A run compared with itself is unchanged everywhere.
    let same = diff(&before, &before);
    assert!(same
        .findings
        .iter()
        .all(|f| f.verdict == Verdict::Unchanged));
    // Findings that are new but on too few traces say so; none is called new on noise.
    for f in &report.findings {
        let new_ns = f.verdict == Verdict::Unchanged && f.before_traces == 0 && f.after_traces > 0;
        assert_eq!(f.label() == "new, n.s.", new_ns, "{f:?}");
        assert!(f.q_value >= f.p_value, "{f:?}");
        if f.verdict != Verdict::Unchanged {
            assert!(f.q_value < halo_diagnose::ALPHA, "{f:?}");
        }
    }
}

/// Two runs of the same harness (same failure rates, other seeds): whatever differs is
/// chance, and with a hundred findings compared, chance must not read as news.
#[test]
fn a_control_run_shows_no_change() {
    let tmp = tempfile::tempdir().unwrap();
    let cfg = |seed| GeneratorConfig {
        traces: 2000,
        seed,
        ..GeneratorConfig::default()
    };
    let b = common::generate(tmp.path(), "b.jsonl", &cfg(123), OutputFormat::Canonical);
    let a = common::generate(tmp.path(), "a.jsonl", &cfg(999), OutputFormat::Canonical);
    let opts = DiagnoseOptions::default();
    let before = diagnose(&common::open(&tmp.path().join("b"), &[b.path]), &opts).unwrap();
    let after = diagnose(&common::open(&tmp.path().join("a"), &[a.path]), &opts).unwrap();
    let report = diff(&before, &after);
    let changed: Vec<_> = report
        .findings
        .iter()
        .chain(&report.modes)
        .filter(|f| f.verdict != Verdict::Unchanged)
        .map(|f| (f.id.clone(), f.verdict, f.p_value, f.q_value))
        .collect();
    assert!(changed.is_empty(), "{changed:#?}");
}
