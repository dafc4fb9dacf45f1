//! `halo diagnose` and `halo diff` as a user runs them.

mod common;

use std::io::BufWriter;
use std::path::{Path, PathBuf};

use common::*;
use halo_testkit::generate::{
    write_dataset, FailureMode, GeneratorConfig, ModeRates, OutputFormat,
};

/// A generated dataset of `traces` traces from `seed`, with the default failure rates.
fn generated_run(dir: &Path, name: &str, traces: u64, seed: u64) -> PathBuf {
    let cfg = GeneratorConfig {
        traces,
        seed,
        ..GeneratorConfig::default()
    };
    generated(dir, name, &cfg)
}

fn generated(dir: &Path, name: &str, cfg: &GeneratorConfig) -> PathBuf {
    let path = dir.join(name);
    let file = BufWriter::new(std::fs::File::create(&path).unwrap());
    write_dataset(cfg, OutputFormat::Canonical, file).unwrap();
    path
}

#[test]
fn diagnose_prints_a_summary_writes_a_report_and_json() {
    let tmp = tempfile::tempdir().unwrap();
    let file = generated_run(tmp.path(), "run.jsonl", 600, 3);
    let f = file.to_str().unwrap();

    let out = halo(tmp.path(), &["diagnose", f, "-o", "report.md", "-q"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(text.contains("findings"), "{text}");
    assert!(text.contains("report.md"), "{text}");
    let last = text.trim_end().lines().last().unwrap();
    assert!(
        last.starts_with("Go deeper with a model: halo ") && last.contains(" -p '"),
        "{text}"
    );
    let report = std::fs::read_to_string(tmp.path().join("report.md")).unwrap();
    assert!(report.starts_with("# HALO diagnosis"));
    assert!(report.contains("[trace:") && report.contains("[span:"));
    assert!(!report.contains("not in dataset"));

    let j = json(&halo(tmp.path(), &["diagnose", f, "--json", "-q"]));
    assert_eq!(j["schema_version"], 2);
    let findings = j["findings"].as_array().unwrap();
    let modes: Vec<&str> = findings
        .iter()
        .map(|f| f["mode"].as_str().unwrap())
        .collect();
    for m in [
        "tool_error",
        "hallucinated_tool",
        "provider_error",
        "silent_failure",
    ] {
        assert!(modes.contains(&m), "{m} missing: {modes:?}");
    }
    for f in findings {
        assert_eq!(
            f["trace_ids"].as_array().unwrap().len() as u64,
            f["trace_count"].as_u64().unwrap()
        );
    }

    // The detectors can be made more sensitive; nonsense settings are usage errors.
    let outliers = |j: &serde_json::Value| {
        j["findings"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|f| f["mode"] == "latency_outlier" || f["mode"] == "token_outlier")
            .map(|f| f["span_count"].as_u64().unwrap())
            .sum::<u64>()
    };
    let sensitive = json(&halo(
        tmp.path(),
        &["diagnose", f, "--json", "-q", "--outlier-scale", "0.3"],
    ));
    assert!(
        outliers(&sensitive) > outliers(&j),
        "{} vs {}",
        outliers(&sensitive),
        outliers(&j)
    );
    for bad in [
        ["--outlier-scale", "0.1"],
        ["--outlier-scale", "inf"],
        ["--repeat-threshold", "1"],
    ] {
        let o = halo(tmp.path(), &["diagnose", f, "-q", bad[0], bad[1]]);
        assert_eq!(o.status.code(), Some(1), "{bad:?}");
        assert!(stderr(&o).contains(bad[0]), "{}", stderr(&o));
        if bad[1] == "inf" {
            assert!(stderr(&o).contains("finite"), "{}", stderr(&o));
        }
    }
}

#[test]
fn suggested_commands_keep_the_index_dir_they_were_run_with() {
    let tmp = tempfile::tempdir().unwrap();
    let file = generated_run(tmp.path(), "run.jsonl", 200, 5);
    let f = file.to_str().unwrap();
    let idx = tmp.path().join("idx");
    let idx = idx.to_str().unwrap();
    let out = halo(
        tmp.path(),
        &["diagnose", f, "--index-dir", idx, "-o", "report.md", "-q"],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    let view = text
        .lines()
        .find(|l| l.starts_with("Top example: halo view"))
        .expect(&text);
    assert!(view.contains(&format!("{f} --index-dir {idx} ")), "{view}");
    // Following the suggestion reuses the index: nothing is written beside the data.
    let words: Vec<&str> = view["Top example: halo ".len()..].split(' ').collect();
    assert!(halo(tmp.path(), &words).status.success());
    let beside: Vec<_> = std::fs::read_dir(tmp.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("run.jsonl."))
        .collect();
    assert!(beside.is_empty(), "{beside:?}");
    let md = std::fs::read_to_string(tmp.path().join("report.md")).unwrap();
    assert!(md.contains(&format!("--index-dir {idx} -p ")), "{md}");
}

#[test]
fn diff_gives_verdicts_between_two_runs() {
    let tmp = tempfile::tempdir().unwrap();
    let before = generated(
        tmp.path(),
        "before.jsonl",
        &GeneratorConfig {
            traces: 1000,
            seed: 1,
            ..GeneratorConfig::default()
        },
    );
    let mut rates = ModeRates::default();
    rates.set(FailureMode::ToolError, 0.0);
    let after = generated(
        tmp.path(),
        "after.jsonl",
        &GeneratorConfig {
            traces: 1000,
            seed: 2,
            rates,
            ..GeneratorConfig::default()
        },
    );
    let (b, a) = (before.to_str().unwrap(), after.to_str().unwrap());

    let j = json(&halo(tmp.path(), &["diff", b, a, "--json", "-q"]));
    assert_eq!(j["schema_version"], 2);
    let tool_error = j["modes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["mode"] == "tool_error")
        .unwrap();
    assert_eq!(tool_error["verdict"], "fixed");
    assert_eq!(tool_error["after_traces"], 0);

    let out = halo(tmp.path(), &["diff", b, a, "-o", "diff.md", "-q"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("fixed"), "{}", stdout(&out));
    assert!(std::fs::read_to_string(tmp.path().join("diff.md"))
        .unwrap()
        .starts_with("# HALO run-vs-run diff"));

    let missing = halo(tmp.path(), &["diff", b, "nope.jsonl"]);
    assert_eq!(missing.status.code(), Some(1));

    // A CI gate: the fix passes it; the same runs the other way round (the tool errors
    // coming back) fail it with exit code 5, the diff still printed.
    let gate = ["--fail-on", "worse,new", "-q"];
    let fixed = halo(tmp.path(), &[&["diff", b, a][..], &gate].concat());
    assert_eq!(fixed.status.code(), Some(0), "{}", stdout(&fixed));
    let back = halo(tmp.path(), &[&["diff", a, b, "--json"][..], &gate].concat());
    assert_eq!(back.status.code(), Some(5), "{}", stderr(&back));
    assert_eq!(json_any(&back)["schema_version"], 2);
    let bad = halo(tmp.path(), &["diff", b, a, "--fail-on", "fixed"]);
    assert_eq!(bad.status.code(), Some(1));

    // Unreadable input is reported by both, even with -q: what it held is not compared.
    let mut text = std::fs::read_to_string(&after).unwrap();
    text.push_str("{not json\n");
    std::fs::write(&after, text).unwrap();
    let d = json(&halo(tmp.path(), &["diagnose", a, "--json", "-q"]));
    assert_eq!(d["stats"]["skipped_lines"], 1);
    assert_eq!(d["stats"]["problem_count"], 1);
    let j = json(&halo(tmp.path(), &["diff", b, a, "--json", "-q"]));
    assert_eq!(
        (
            j["before_problem_count"].as_u64(),
            j["after_problem_count"].as_u64()
        ),
        (Some(0), Some(1))
    );
    let out = halo(tmp.path(), &["diagnose", a, "-o", "d.md", "-q"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let md = std::fs::read_to_string(tmp.path().join("d.md")).unwrap();
    assert!(
        md.contains("**Input problems:** 1 line skipped as unreadable (their spans are not in this diagnosis); 1 problem in all"),
        "{md}"
    );
}

#[test]
fn a_dataset_without_traces_is_no_data_for_diagnose_and_diff() {
    let tmp = tempfile::tempdir().unwrap();
    let good = generated_run(tmp.path(), "good.jsonl", 50, 5);
    let empty = write(tmp.path(), "broken.jsonl", &["{not json".to_string()]);
    let (g, e) = (good.to_str().unwrap(), empty.to_str().unwrap());
    for args in [vec!["diagnose", e], vec![e], vec!["diff", g, e]] {
        let out = halo(tmp.path(), &args);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {}", stderr(&out));
        assert!(stderr(&out).contains("holds no traces"), "{}", stderr(&out));
    }
}

#[test]
fn the_refusal_loop_threshold_is_the_number_the_text_quotes() {
    let tmp = tempfile::tempdir().unwrap();
    let file = generated_run(tmp.path(), "run.jsonl", 600, 3);
    let j = json(&halo(
        tmp.path(),
        &[
            "diagnose",
            file.to_str().unwrap(),
            "--refusal-loop-threshold",
            "4",
            "--json",
            "-q",
        ],
    ));
    let signal = |mode: &str| {
        j["findings"]
            .as_array()
            .unwrap()
            .iter()
            .find(|f| f["mode"] == mode)
            .map(|f| f["signal"].as_str().unwrap().to_string())
    };
    let looped = signal("refusal_loop").expect("a refusal loop");
    assert!(looped.contains("4 or more refusals"), "{looped}");
    let some = signal("refusal").expect("refusals");
    assert!(some.contains("fewer than 4 refusals"), "{some}");
}

#[test]
fn diagnose_and_diff_refuse_to_write_their_report_over_a_trace_file() {
    let tmp = tempfile::tempdir().unwrap();
    let before = generated_run(tmp.path(), "before.jsonl", 60, 1);
    let after = generated_run(tmp.path(), "after.jsonl", 60, 2);
    let (b, a) = (before.to_str().unwrap(), after.to_str().unwrap());
    let kept = |p: &Path, bytes: &[u8]| assert_eq!(std::fs::read(p).unwrap(), bytes);
    let (before_bytes, after_bytes) = (
        std::fs::read(&before).unwrap(),
        std::fs::read(&after).unwrap(),
    );

    let o = halo(tmp.path(), &["diagnose", b, "-o", b, "-q"]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("a trace file of the dataset"),
        "{}",
        stderr(&o)
    );
    kept(&before, &before_bytes);

    // Either side of a diff, also by another spelling of the path.
    for target in [
        a.to_owned(),
        format!("{}/./after.jsonl", tmp.path().display()),
    ] {
        let o = halo(tmp.path(), &["diff", b, a, "-o", &target, "-q"]);
        assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
        assert!(
            stderr(&o).contains("the diff would be written over"),
            "{}",
            stderr(&o)
        );
        kept(&after, &after_bytes);
    }
    let o = halo(tmp.path(), &["diff", b, a, "-o", "d.md", "-q"]);
    assert!(o.status.success(), "{}", stderr(&o));
}

#[test]
fn the_analysis_form_without_a_prompt_takes_the_options_of_diagnose() {
    let tmp = tempfile::tempdir().unwrap();
    let file = generated_run(tmp.path(), "run.jsonl", 600, 3);
    let f = file.to_str().unwrap();
    // `halo TRACES ...` is `halo diagnose TRACES ...`, detector settings included.
    for settings in [
        vec!["--refusal-loop-threshold", "4"],
        vec!["--outlier-scale", "0.3"],
    ] {
        let both = |first: &[&str]| {
            let mut args = first.to_vec();
            args.extend([f, "--json", "-q"]);
            args.extend(&settings);
            stdout(&halo(tmp.path(), &args))
        };
        assert_eq!(both(&[]), both(&["diagnose"]), "{settings:?}");
    }
    let bad = halo(tmp.path(), &[f, "--repeat-threshold", "1"]);
    assert_eq!(bad.status.code(), Some(1), "{}", stderr(&bad));

    // `--top` bounds the summary's table of findings.
    let rows = |top: &str| {
        let out = halo(tmp.path(), &[f, "--top", top, "-q"]);
        assert!(out.status.success(), "{}", stderr(&out));
        stdout(&out)
            .lines()
            .filter(|l| {
                let mut words = l.split_whitespace();
                words.next().is_some_and(|w| w.parse::<usize>().is_ok())
                    && words.next().is_some_and(|w| w.parse::<usize>().is_ok())
            })
            .count()
    };
    assert_eq!(rows("2"), 2);
    assert!(rows("20") > 2);

    // With a prompt they change nothing, and the user is told.
    let out = halo(tmp.path(), &[f, "-p", "why?", "--top", "3"]);
    assert!(
        stderr(&out).contains("take effect only without -p"),
        "{}",
        stderr(&out)
    );
}
