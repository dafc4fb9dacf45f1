//! Overview, query, count, view, search and grep on known data, as a user runs them.

mod common;

use common::*;

#[test]
fn overview_counts_and_vocabulary() {
    let tmp = tempfile::tempdir().unwrap();
    let file = small_dataset(tmp.path());
    let o = json(&halo(
        tmp.path(),
        &["overview", file.to_str().unwrap(), "--json"],
    ));
    assert_eq!(o["schema_version"], 1);
    assert_eq!(o["total_traces"], 3);
    assert_eq!(o["total_spans"], 8);
    assert_eq!(o["error_trace_count"], 2);
    assert_eq!(o["error_span_count"], 2);
    assert_eq!(o["tool_error_span_count"], 1);
    assert_eq!(o["total_input_tokens"], 110);
    assert_eq!(o["total_output_tokens"], 55);
    assert_eq!(o["sample_trace_ids"].as_array().unwrap().len(), 3);
    let tools = o["tools"].as_array().unwrap();
    let grep = tools.iter().find(|t| t["name"] == "grep").unwrap();
    assert_eq!(grep["errors"], 1);
    assert_eq!(grep["error_rate"], 1.0);
    let taxonomy = o["error_taxonomy"].as_array().unwrap();
    assert!(taxonomy.iter().any(|g| g["group"]
        .as_str()
        .unwrap()
        .starts_with("tool grep: TypeError")));
    let human = stdout(&halo(tmp.path(), &["overview", file.to_str().unwrap()]));
    assert!(human.contains("3 traces · 8 spans"), "{human}");
    assert!(human.contains("error taxonomy"), "{human}");
    // The size is what the spans' lines hold, and says so (it is not the file's size).
    let first = human.lines().next().unwrap();
    assert!(first.ends_with("of spans"), "{first}");
}

#[test]
fn every_filter_selects_what_it_says() {
    let tmp = tempfile::tempdir().unwrap();
    let file = small_dataset(tmp.path());
    let f = file.to_str().unwrap();
    let count = |extra: &[&str]| -> u64 {
        let mut args = vec!["count", f, "--json"];
        args.extend_from_slice(extra);
        json(&halo(tmp.path(), &args))["total"].as_u64().unwrap()
    };
    assert_eq!(count(&[]), 3);
    assert_eq!(count(&["--has-errors"]), 2);
    assert_eq!(count(&["--has-errors=false"]), 1);
    // A flag before the path does not take the path for its value.
    let before = json(&halo(tmp.path(), &["count", "--has-errors", f, "--json"]));
    assert_eq!(before["total"], 2);
    let spaced = halo(tmp.path(), &["count", f, "--has-errors", "false"]);
    assert_eq!(spaced.status.code(), Some(1));
    assert!(
        stderr(&spaced).contains("`--has-errors=false`"),
        "{}",
        stderr(&spaced)
    );
    assert_eq!(count(&["--has-tool-errors"]), 1);
    assert_eq!(count(&["--model-name", "gpt-5.4"]), 2);
    assert_eq!(
        count(&[
            "--model-name",
            "gpt-5.4",
            "--model-name",
            "claude-sonnet-4-6"
        ]),
        3
    );
    assert_eq!(count(&["--service-name", "svc-b"]), 1);
    assert_eq!(count(&["--agent-name", "agent-a"]), 2);
    assert_eq!(count(&["--project-id", "p2"]), 1);
    assert_eq!(count(&["--session-id", "sess-1"]), 1);
    assert_eq!(count(&["--tool", "list_files"]), 1);
    assert_eq!(count(&["--start-time-gte", "2026-04-23T06:30:00Z"]), 1);
    assert_eq!(count(&["--end-time-lte", "2026-04-23T06:30:00Z"]), 2);
    assert_eq!(count(&["--min-duration-ms", "2000"]), 1);
    assert_eq!(count(&["--max-duration-ms", "600"]), 1);
    assert_eq!(count(&["--min-tokens", "100"]), 1);
    assert_eq!(count(&["--status-message", "RATE LIMIT"]), 1);
    // The message as written, not only its masked group: the numbers are in it.
    assert_eq!(count(&["--status-message", "reached for gpt-5.4"]), 1);
    assert_eq!(count(&["--status-message", "no such message"]), 0);
    assert_eq!(count(&["--regex", "unexpected keyword"]), 1);
    assert_eq!(count(&["--regex-pattern", "\"http.status_code\":429"]), 1);
    assert_eq!(
        count(&["--regex", "^\\{\"trace_id\":\"t3\""]),
        1,
        "^ anchors at each line"
    );
    assert_eq!(count(&["--has-errors", "--model-name", "gpt-5.4"]), 1);
    let bad = halo(tmp.path(), &["count", f, "--regex", "(unclosed"]);
    assert_eq!(bad.status.code(), Some(1));
    // NaN compared false with every duration and filtered nothing out.
    for bound in ["--min-duration-ms", "--max-duration-ms"] {
        for v in ["NaN", "inf"] {
            let o = halo(tmp.path(), &["count", f, bound, v]);
            assert_eq!(o.status.code(), Some(1), "{bound} {v}");
            assert!(stderr(&o).contains("finite"), "{}", stderr(&o));
        }
    }
    assert!(stderr(&bad).contains("invalid regex"), "{}", stderr(&bad));
    // A negative number is a value, read and judged as one, not taken for a flag.
    assert_eq!(count(&["--min-duration-ms", "-5"]), 3);
    let negative = halo(tmp.path(), &["count", f, "--time-budget", "-1"]);
    assert_eq!(negative.status.code(), Some(1));
    assert!(
        stderr(&negative).contains("out of range"),
        "{}",
        stderr(&negative)
    );
    let bad_time = halo(tmp.path(), &["count", f, "--start-time-gte", "yesterday"]);
    assert_eq!(bad_time.status.code(), Some(1));
    // A date is midnight UTC; a time without a zone is UTC.
    assert_eq!(count(&["--start-time-gte", "2026-04-23"]), 3);
    assert_eq!(count(&["--start-time-gte", "2026-04-24"]), 0);
    assert_eq!(count(&["--start-time-gte", "2026-04-23 06:30:00"]), 1);
}

#[test]
fn times_without_a_zone_are_utc_not_bad_lines() {
    // Python's isoformat() of naive times, and a space for the T: the reference reads both.
    let tmp = tempfile::tempdir().unwrap();
    let lines = [
        Span::new("n1", "a", "")
            .times("2026-04-23T05:32:00.123456", "2026-04-23T05:32:01")
            .line(),
        Span::new("n2", "b", "")
            .times("2026-04-23 06:00:00", "2026-04-23 06:00:02.5")
            .line(),
        Span::new("n3", "c", "")
            .times("2026-04-23T07:00:00+0200", "2026-04-23T05:00:01Z")
            .line(),
    ];
    let file = write(tmp.path(), "naive.jsonl", &lines);
    let f = file.to_str().unwrap();
    let o = json(&halo(tmp.path(), &["overview", f, "--json"]));
    assert_eq!(o["total_traces"], 3, "{o}");
    assert_eq!(o["skipped_lines"], 0, "{o}");
    let q = json(&halo(
        tmp.path(),
        &["query", f, "--sort", "start", "--json"],
    ));
    let ids: Vec<&str> = q["traces"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["trace_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["n3", "n1", "n2"], "+02:00 puts n3 first: {q}");
}

#[test]
fn query_sorts_and_pages() {
    let tmp = tempfile::tempdir().unwrap();
    let file = small_dataset(tmp.path());
    let f = file.to_str().unwrap();
    let q = json(&halo(
        tmp.path(),
        &["query", f, "--sort", "duration", "--json"],
    ));
    let ids: Vec<&str> = q["traces"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["trace_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["t2", "t1", "t3"]);
    assert_eq!(q["total"], 3);
    let page = json(&halo(
        tmp.path(),
        &[
            "query", f, "--sort", "start", "--limit", "1", "--offset", "1", "--json",
        ],
    ));
    assert_eq!(page["traces"][0]["trace_id"], "t2");
    assert_eq!(page["has_more"], true);
    let t2 = &page["traces"][0];
    assert_eq!(t2["tool_error_span_count"], 1);
    assert_eq!(t2["tools"][0]["name"], "grep");
    let errors = json(&halo(
        tmp.path(),
        &["query", f, "--has-errors", "--tool", "grep", "--json"],
    ));
    assert_eq!(errors["total"], 1);
    let human = stdout(&halo(tmp.path(), &["query", f, "--sort", "tokens"]));
    assert!(human.lines().nth(1).unwrap().starts_with("t1"), "{human}");
    let past = stdout(&halo(tmp.path(), &["query", f, "--offset", "500"]));
    assert!(past.contains("--offset 500 is past the last"), "{past}");
}

#[test]
fn view_search_and_grep() {
    let tmp = tempfile::tempdir().unwrap();
    let file = small_dataset(tmp.path());
    let f = file.to_str().unwrap();
    let v = json(&halo(tmp.path(), &["view", f, "t2", "--json"]));
    assert_eq!(v["span_count"], 3);
    let spans = v["spans"].as_array().unwrap();
    assert_eq!(spans[0]["span_id"], "a", "start order");
    let tool = spans.iter().find(|s| s["span_id"] == "b").unwrap();
    assert_eq!(tool["status"]["code"], "STATUS_CODE_ERROR");
    assert_eq!(tool["span_kind"], "TOOL");
    assert_eq!(tool["attributes"]["gen_ai.tool.name"], "grep");
    let one = json(&halo(
        tmp.path(),
        &["view", f, "t2", "--span", "b", "--json"],
    ));
    assert_eq!(one["spans"].as_array().unwrap().len(), 1);
    let paged = halo(
        tmp.path(),
        &["view", f, "t2", "--span", "b", "--offset", "1"],
    );
    assert_eq!(
        paged.status.code(),
        Some(1),
        "--offset with --span is refused, not ignored"
    );
    assert!(stderr(&paged).contains("--span"), "{}", stderr(&paged));
    let tree = stdout(&halo(tmp.path(), &["view", f, "t2"]));
    assert!(
        tree.contains("TOOL op-b [b]") && tree.contains("ERROR"),
        "{tree}"
    );

    let s = json(&halo(
        tmp.path(),
        &["search", f, "t2", "unexpected keyword", "--json"],
    ));
    assert_eq!(s["total_matches"], 1);
    assert_eq!(s["matches"][0]["span_id"], "b");
    assert!(s["matches"][0]["context"]
        .as_str()
        .unwrap()
        .contains("grep()"));
    let in_span = json(&halo(
        tmp.path(),
        &["search", f, "t2", "grep", "--span", "c", "--json"],
    ));
    assert_eq!(in_span["total_matches"], 0);

    let g = json(&halo(tmp.path(), &["grep", f, "Rate limit", "--json"]));
    assert_eq!(g["matches"].as_array().unwrap().len(), 1);
    assert_eq!(g["matches"][0]["trace_id"], "t3");
    assert_eq!(g["matches"][0]["line"], 8);
    assert_eq!(g["scan"]["complete"], true);

    let unknown = halo(tmp.path(), &["view", f, "nope"]);
    assert_eq!(unknown.status.code(), Some(1));
    assert!(stderr(&unknown).contains("no trace with id \"nope\""));
}

#[test]
fn view_shows_spans_whose_parents_loop_and_deep_chains() {
    let tmp = tempfile::tempdir().unwrap();
    let mut lines = vec![
        Span::new("c", "r", "").line(),
        Span::new("c", "x", "r").line(),
        // y hangs off a loop: a and b are each other's parent, so no root leads to them.
        Span::new("c", "y", "a").line(),
        Span::new("c", "a", "b").line(),
        Span::new("c", "b", "a").line(),
    ];
    // A chain 200 spans deep (a page's most), each the child of the one before.
    lines.push(Span::new("deep", "d0", "").line());
    for i in 1..200 {
        lines.push(Span::new("deep", &format!("d{i}"), &format!("d{}", i - 1)).line());
    }
    let file = write(tmp.path(), "loops.jsonl", &lines);
    let f = file.to_str().unwrap();
    let tree = stdout(&halo(tmp.path(), &["view", f, "c"]));
    for id in ["[r]", "[x]", "[y]", "[a]", "[b]"] {
        assert_eq!(tree.matches(id).count(), 1, "{id} once in:\n{tree}");
    }
    // The loop is shown from a span in it, with y under its parent, not as a root.
    let root_lines: Vec<&str> = tree
        .lines()
        .filter(|l| l.starts_with("└─ ") || l.starts_with("├─ "))
        .collect();
    assert_eq!(root_lines.len(), 2, "{tree}");
    assert!(
        root_lines[1].contains("(its parents loop back to it)"),
        "{tree}"
    );
    // Only the last top-level entry, the loop, is drawn as the last.
    assert!(root_lines[0].starts_with("├─ "), "{tree}");
    assert!(root_lines[1].starts_with("└─ "), "{tree}");
    assert!(!root_lines[1].contains("[y]"), "{tree}");
    assert!(tree.contains("1 loop of spans"), "{tree}");

    // A span that is its own parent is a loop of one; an orphan says whose child it is.
    let odd = write(
        tmp.path(),
        "odd.jsonl",
        &[
            Span::new("o", "self", "self").line(),
            Span::new("o", "orphan", "gone").line(),
            Span::new("o", "root", "").line(),
        ],
    );
    let o = odd.to_str().unwrap();
    let tree = stdout(&halo(tmp.path(), &["view", o, "o"]));
    let line = |id: &str| {
        tree.lines()
            .find(|l| l.contains(id))
            .unwrap_or_else(|| panic!("{tree}"))
    };
    assert!(line("[self]").contains("(its own parent)"), "{tree}");
    assert!(
        line("[orphan]").contains("(parent gone is not in the trace)"),
        "{tree}"
    );
    assert!(!line("[root]").contains('('), "{tree}");
    assert!(tree.contains("1 loop of spans"), "{tree}");
    let v = json(&halo(tmp.path(), &["view", o, "o", "--json"]));
    let spans = v["spans"].as_array().unwrap();
    let missing: Vec<&str> = spans
        .iter()
        .filter(|s| s["parent_missing"] == true)
        .map(|s| s["span_id"].as_str().unwrap())
        .collect();
    assert_eq!(missing, ["orphan"], "{v}");
    let deep = stdout(&halo(tmp.path(), &["view", f, "deep", "--limit", "200"]));
    let last = deep.lines().find(|l| l.contains("[d199]")).expect(&deep);
    assert!(
        last.starts_with(&" ".repeat(3 * 199)),
        "nested 199 levels: {last:?}"
    );
}

/// `grep --max-matches` gives the first matches in file order and the same count on every
/// run, and says the scan stopped early, however the threads were scheduled.
#[test]
fn grep_stopping_at_enough_matches_is_deterministic_and_says_so() {
    let tmp = tempfile::tempdir().unwrap();
    let padding = "x".repeat(2_000);
    let lines: Vec<String> = (0..2_000)
        .map(|i| {
            let note = if i % 10 == 3 { "needle" } else { "hay" };
            Span::new(&format!("t{i}"), "s", "")
                .attrs(&format!(r#"{{"note":"{note} {padding}"}}"#))
                .line()
        })
        .collect();
    let file = write(tmp.path(), "big.jsonl", &lines);
    let f = file.to_str().unwrap();
    let all = json(&halo(
        tmp.path(),
        &["grep", f, "needle", "--max-matches", "200", "--json"],
    ));
    assert_eq!(all["matching_lines"], 200);
    assert_eq!(all["truncated"], false);
    assert_eq!(all["scan"]["complete"], true);
    assert!(all["scan"].get("stopped_by").is_none());
    let mut counts = std::collections::BTreeSet::new();
    for _ in 0..4 {
        let some = json(&halo(
            tmp.path(),
            &["grep", f, "needle", "--max-matches", "5", "--json"],
        ));
        let lines: Vec<u64> = some["matches"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["line"].as_u64().unwrap())
            .collect();
        assert_eq!(lines, [4, 14, 24, 34, 44]);
        assert_eq!(some["truncated"], true);
        assert_eq!(some["scan"]["complete"], false);
        assert_eq!(some["scan"]["stopped_by"], "max_matches");
        assert!(some["scan"]["scanned_bytes"].as_u64() < some["scan"]["total_bytes"].as_u64());
        counts.insert(some["matching_lines"].as_u64().unwrap());
    }
    assert_eq!(counts.len(), 1, "the same count every run: {counts:?}");
}

#[test]
fn reference_fixtures_agree_with_the_reference_semantics() {
    let Some(dir) = fixtures() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let tiny = dir.join("tiny_traces.jsonl");
    let second = dir.join("tiny_traces_second_file.jsonl");
    let o = json(&halo(
        tmp.path(),
        &[
            "overview",
            tiny.to_str().unwrap(),
            second.to_str().unwrap(),
            "--index-dir",
            "idx",
            "--json",
        ],
    ));
    assert_eq!(o["total_traces"], 5);
    assert_eq!(o["total_spans"], 8);
    // has_errors means an OTel ERROR span, whatever the message says.
    assert_eq!(o["error_trace_count"], 2);
    assert_eq!(o["total_input_tokens"], 330);
    let real = dir.join("realistic_traces.jsonl");
    let q = json(&halo(
        tmp.path(),
        &[
            "query",
            real.to_str().unwrap(),
            "--has-tool-errors",
            "--index-dir",
            "idx",
            "--json",
        ],
    ));
    assert_eq!(q["total"], 2);
    let c = json(&halo(
        tmp.path(),
        &[
            "count",
            real.to_str().unwrap(),
            "--regex",
            "No such file",
            "--index-dir",
            "idx",
            "--json",
        ],
    ));
    assert_eq!(c["total"], 2);
    // The OpenAI Agents SDK's failed tools say only "Error running tool (non-fatal)"; the
    // error taxonomy groups them by what their results say.
    let o = json(&halo(
        tmp.path(),
        &[
            "overview",
            real.to_str().unwrap(),
            "--index-dir",
            "idx",
            "--json",
        ],
    ));
    let groups: Vec<&str> = o["error_taxonomy"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g["group"].as_str().unwrap_or_default())
        .collect();
    assert!(
        groups
            .iter()
            .any(|g| g.starts_with("tool list_files: [Errno <num>] No such file or directory")),
        "{groups:?}"
    );
}

#[test]
fn a_cost_total_carries_no_binary_noise() {
    let tmp = tempfile::tempdir().unwrap();
    let example = halo_testkit::workspace_path("examples/data/agent-traces.jsonl");
    let o = json(&halo(
        tmp.path(),
        &[
            "overview",
            example.to_str().unwrap(),
            "--index-dir",
            tmp.path().join("idx").to_str().unwrap(),
            "--json",
        ],
    ));
    let cost = o["total_cost"].as_f64().expect("the example carries costs");
    assert!(cost > 0.0);
    assert_eq!((cost * 1e9).round() / 1e9, cost, "{cost}");
    assert!(
        o["total_cost"].to_string().len() <= 12,
        "{}",
        o["total_cost"]
    );
}

#[test]
fn query_rows_carry_the_user_beside_the_session_and_project() {
    let tmp = tempfile::tempdir().unwrap();
    let file = write(
        tmp.path(),
        "users.jsonl",
        &[
            Span::new("t1", "a", "")
                .attrs(r#"{"user.id":"u1","session.id":"s1","inference.project_id":"p1"}"#)
                .line(),
            Span::new("t2", "b", "").line(),
        ],
    );
    let f = file.to_str().unwrap();
    let q = json(&halo(
        tmp.path(),
        &["query", f, "--user-id", "u1", "--json", "-q"],
    ));
    assert_eq!(q["total"], 1, "{q}");
    let row = &q["traces"][0];
    assert_eq!(row["user_id"], "u1", "{row}");
    assert_eq!(row["session_id"], "s1");
    assert_eq!(row["project_id"], "p1");
}

/// A key given twice in a span's attributes has one value everywhere: the first, which the
/// facts, filters and SQL read, and now the view too.
#[test]
fn a_repeated_attribute_key_reads_as_its_first_value_everywhere() {
    let tmp = tempfile::tempdir().unwrap();
    let line = Span::new("dup", "a", "")
        .attrs(r#"{"openinference.span.kind":"TOOL","tool.name":"first","tool.name":"second"}"#)
        .line();
    let file = write(tmp.path(), "dup.jsonl", &[line]);
    let f = file.to_str().unwrap();
    let v = json(&halo(tmp.path(), &["view", f, "dup", "--json"]));
    assert_eq!(v["spans"][0]["attributes"]["tool.name"], "first", "{v}");
    let count = |tool: &str| {
        json(&halo(
            tmp.path(),
            &["count", f, "--tool-name", tool, "--json"],
        ))["total"]
            .clone()
    };
    assert_eq!(count("first"), 1);
    assert_eq!(count("second"), 0);
}
