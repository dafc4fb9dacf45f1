//! Reports on the bundled example data: Markdown and JSON shape, determinism and
//! citation checks.

mod common;

use std::path::PathBuf;

use halo_diagnose::{
    check_citations, diagnose, render_markdown, render_summary, DiagnoseOptions,
    UNKNOWN_CITATION_FLAG,
};

fn example() -> PathBuf {
    halo_testkit::workspace_path("examples/data/agent-traces.jsonl")
}

#[test]
fn report_cites_real_evidence_and_json_lists_every_trace() {
    let tmp = tempfile::tempdir().unwrap();
    let ds = common::open(tmp.path(), &[example()]);
    let d = diagnose(&ds, &DiagnoseOptions::default()).unwrap();
    assert!(!d.findings.is_empty());
    for f in &d.findings {
        assert_eq!(f.trace_ids.len(), f.trace_count, "{}", f.id);
        assert_eq!(f.id, f.key.id());
        assert!(!f.examples.is_empty() && f.examples.len() <= 5);
        assert!(f.examples.len() >= f.trace_count.min(3));
        assert!(f.examples.iter().all(|e| !e.span_ids.is_empty()));
        assert!(f.examples.iter().all(|e| f.trace_ids.contains(&e.trace_id)));
        assert!(!f.fix.is_empty() && !f.first_seen.is_empty());
    }
    // Ranked by impact.
    assert!(d.findings.windows(2).all(|w| w[0].impact >= w[1].impact));

    let md = render_markdown(&d);
    assert!(md.starts_with("# HALO diagnosis"));
    assert!(md.contains("## Summary"));
    assert!(md.contains("[trace:") && md.contains("[span:"));
    assert!(md.contains("**Go deeper:** `halo "));
    assert!(md.contains(" -p '"));
    let summary = render_summary(&d, 10, Some("r.md"));
    assert!(summary.contains("r.md"));
    assert!(summary
        .trim_end()
        .lines()
        .last()
        .unwrap()
        .starts_with("Go deeper with a model: halo "));

    // Every citation of our own report resolves.
    let check = check_citations(&md, &ds);
    assert!(check.total > 10);
    assert!(
        check.all_valid(),
        "{:?}",
        check.unknown_citations().collect::<Vec<_>>()
    );
    assert_eq!(check.markdown, md);

    // JSON: schema version, mode ids, full lists; deterministic.
    let json: serde_json::Value = serde_json::from_str(&d.to_json()).unwrap();
    assert_eq!(json["schema_version"], 2);
    assert!(json["findings"][0]["mode"].is_string());
    assert!(json["findings"][0]["trace_ids"].is_array());
    let again = diagnose(&ds, &DiagnoseOptions::default()).unwrap();
    assert_eq!(again.to_json(), d.to_json());
}

#[test]
fn unknown_citations_are_flagged_once() {
    let tmp = tempfile::tempdir().unwrap();
    let ds = common::open(tmp.path(), &[example()]);
    let t = &ds.traces()[0];
    let real_trace = t.trace_id.clone();
    let d = diagnose(&ds, &DiagnoseOptions::default()).unwrap();
    let e = &d.findings[0].examples[0];
    let real_span = format!("[span:{}:{}]", e.trace_id, e.span_ids[0]);
    let report = format!(
        "See [trace:{real_trace}] and {real_span}.\n\
         Made up: [trace:00000000000000000000000000000000], \
         [span:{real_trace}:ffffffffffffffff] and [span:nope] and again [trace:00000000000000000000000000000000]."
    );
    let check = check_citations(&report, &ds);
    assert_eq!(check.total, 6);
    assert_eq!(check.valid, 2);
    assert_eq!(check.unknown, 4);
    assert_eq!(check.citations.len(), 5);
    assert_eq!(check.markdown.matches(UNKNOWN_CITATION_FLAG).count(), 4);
    assert!(check.markdown.contains(&format!(
        "[span:{real_trace}:ffffffffffffffff]{UNKNOWN_CITATION_FLAG}"
    )));
    assert!(check
        .markdown
        .contains(&format!("[trace:{real_trace}] and")));
    // Checking the flagged report again adds no second flag.
    let again = check_citations(&check.markdown, &ds);
    assert_eq!(again.markdown, check.markdown);
    assert_eq!(again.unknown, 4);
}

#[test]
fn grouped_spaced_or_capitalized_citations_are_each_checked() {
    let tmp = tempfile::tempdir().unwrap();
    let ds = common::open(tmp.path(), &[example()]);
    let real = ds.traces()[0].trace_id.clone();
    let fake = "00000000000000000000000000000000";
    let report = format!(
        "Grouped [trace:{real}, trace:{fake}]; spaced [trace: {fake}]; capitalized [Trace:{real}]; \
         semicolons [trace:{real}; trace:{fake}]; prose [trace:{real}, see below] stays."
    );
    let check = check_citations(&report, &ds);
    assert_eq!(check.unknown, 3, "{}", check.markdown);
    assert!(
        check.markdown.contains(&format!(
            "[trace:{real}], [trace:{fake}]{UNKNOWN_CITATION_FLAG}"
        )),
        "{}",
        check.markdown
    );
    assert!(check
        .markdown
        .contains(&format!("capitalized [trace:{real}];")));
    assert!(check
        .markdown
        .contains(&format!("prose [trace:{real}, see below]")));
    // Checking the checked report again changes nothing.
    assert_eq!(
        check_citations(&check.markdown, &ds).markdown,
        check.markdown
    );

    // A citation written as a link is flagged after the link, which stays whole.
    let linked = format!("See [trace:{fake}](https://ui.example/t/{fake}) and (aside).");
    let check = check_citations(&linked, &ds);
    assert_eq!(
        check.markdown,
        format!(
            "See [trace:{fake}](https://ui.example/t/{fake}){UNKNOWN_CITATION_FLAG} and (aside)."
        )
    );
    assert_eq!(
        check_citations(&check.markdown, &ds).markdown,
        check.markdown
    );

    // One in inline code is flagged after the code; one after a closed code span is not
    // moved.
    let coded = format!("Look at `[trace:{fake}]` and `x` [trace:{fake}] too.");
    let check = check_citations(&coded, &ds);
    assert_eq!(
        check.markdown,
        format!(
            "Look at `[trace:{fake}]`{UNKNOWN_CITATION_FLAG} and `x` [trace:{fake}]{UNKNOWN_CITATION_FLAG} too."
        )
    );
    assert_eq!(
        check_citations(&check.markdown, &ds).markdown,
        check.markdown
    );
}

/// The suggested commands quote trace text (a tool name a model made up, which a prompt
/// injection can choose): pasted into a shell, they pass it on as text and run none of it.
#[cfg(unix)]
#[test]
fn suggested_commands_never_run_trace_text() {
    let tmp = tempfile::tempdir().unwrap();
    let ds = common::open(tmp.path(), &[example()]);
    let mut d = diagnose(&ds, &DiagnoseOptions::default()).unwrap();
    let planted = tmp.path().join("planted");
    let prompt = format!(
        "Why call `touch {p}` or $(touch {p}) or \"; touch {p}; \" it's 'odd'? \\n",
        p = planted.display()
    );
    d.findings[0].deeper_prompt = prompt.clone();
    let summary = render_summary(&d, 10, None);
    let markdown = render_markdown(&d);
    let from_summary = summary
        .lines()
        .last()
        .unwrap()
        .strip_prefix("Go deeper with a model: ")
        .unwrap()
        .to_owned();
    let from_markdown = markdown
        .lines()
        .find_map(|l| l.strip_prefix("**Go deeper:** "))
        .unwrap();
    // The code span's fence is as long as the longest backtick run inside, plus one.
    let fence = from_markdown.chars().take_while(|&c| c == '`').count();
    let from_markdown = from_markdown[fence..from_markdown.len() - fence]
        .trim()
        .to_owned();
    for command in [from_summary, from_markdown] {
        // `halo` stands in as a function that prints the prompt it was given.
        let out = std::process::Command::new("sh")
            .arg("-c")
            .arg(format!(
                "halo() {{ while [ \"$1\" != -p ]; do shift; done; printf %s \"$2\"; }}; {command}"
            ))
            .output()
            .unwrap();
        assert!(out.status.success(), "{command}");
        assert_eq!(String::from_utf8_lossy(&out.stdout), prompt, "{command}");
        assert!(!planted.exists(), "{command} ran trace text");
    }
}

/// A refusal finding's title follows the loop threshold: with it raised, runs with many
/// refusals are refusals, not loops, and are not called "once or twice".
#[test]
fn refusal_titles_follow_the_loop_threshold() {
    let tmp = tempfile::tempdir().unwrap();
    let ds = common::open(tmp.path(), &[example()]);
    for (threshold, title) in [
        (3, "Model refuses once or twice in a run"),
        (1000, "Model refuses fewer than 1000 times in a run"),
    ] {
        let opts = DiagnoseOptions {
            refusal_loop_threshold: threshold,
            ..DiagnoseOptions::default()
        };
        let d = diagnose(&ds, &opts).unwrap();
        let refusal = d
            .findings
            .iter()
            .find(|f| f.key.mode == halo_diagnose::Mode::Refusal)
            .expect("the examples hold refusals");
        assert_eq!(refusal.title, title);
    }
}

#[test]
fn the_report_does_not_depend_on_the_order_of_the_lines() {
    let text = std::fs::read_to_string(example()).unwrap();
    let reversed: String = text.lines().rev().map(|l| format!("{l}\n")).collect();
    let json_of = |content: &str| {
        let tmp = tempfile::tempdir().unwrap();
        let file = tmp.path().join("agent-traces.jsonl");
        std::fs::write(&file, content).unwrap();
        let ds = common::open(tmp.path(), &[file]);
        let json = diagnose(&ds, &DiagnoseOptions::default())
            .unwrap()
            .to_json();
        json.replace(&tmp.path().display().to_string(), "DIR")
    };
    let (forward, backward) = (json_of(&text), json_of(&reversed));
    let stats = |j: &str| serde_json::from_str::<serde_json::Value>(j).unwrap()["stats"].clone();
    assert_eq!(stats(&forward), stats(&backward));
    assert_eq!(forward, backward);
}
