//! `grep` over OTLP lines that hold many traces, and `search`'s text snippets.

mod common;

use common::*;

/// One OTLP span; `failed` gives it an exception event with `exception.type`.
fn otlp_span(trace: &str, span: &str, failed: bool) -> String {
    let events = if failed {
        r#","events":[{"timeUnixNano":"1776000000500000000","name":"exception","attributes":[{"key":"exception.type","value":{"stringValue":"ValueError"}}]}],"status":{"code":2}"#
    } else {
        ""
    };
    format!(
        r#"{{"traceId":"{trace}","spanId":"{span}","name":"op","kind":1,"startTimeUnixNano":"1776000000000000000","endTimeUnixNano":"1776000001000000000","attributes":[]{events}}}"#
    )
}

/// One export line (`{"resourceSpans":[...]}`) holding `spans`.
fn otlp_export(spans: &[String]) -> String {
    format!(
        r#"{{"resourceSpans":[{{"resource":{{"attributes":[{{"key":"service.name","value":{{"stringValue":"svc"}}}}]}},"scopeSpans":[{{"scope":{{"name":"sdk"}},"spans":[{}]}}]}}]}}"#,
        spans.join(",")
    )
}

fn trace_id(i: usize) -> String {
    format!("{i:02x}").repeat(16)
}

fn span_id(i: usize, k: usize) -> String {
    format!("{i:02x}{k:02x}").repeat(4)
}

/// Nine traces of two or three spans on one line; traces 1, 3, 4, 6 and 8 have a failed
/// span (trace 4 two of them, of which grep lists the first).
fn nine_traces_line() -> String {
    let mut spans = Vec::new();
    for i in 0..9 {
        let failed = [1, 3, 4, 6, 8].contains(&i);
        spans.push(otlp_span(&trace_id(i), &span_id(i, 0), false));
        spans.push(otlp_span(&trace_id(i), &span_id(i, 1), failed));
        if i == 4 {
            spans.push(otlp_span(&trace_id(i), &span_id(i, 2), true));
        }
    }
    otlp_export(&spans)
}

#[test]
fn grep_lists_every_trace_with_a_matching_span_on_an_otlp_line() {
    let tmp = tempfile::tempdir().unwrap();
    let file = write(tmp.path(), "export.jsonl", &[nine_traces_line()]);
    let f = file.to_str().unwrap();
    let pattern = r#""exception.type""#;
    let c = json(&halo(
        tmp.path(),
        &["count", f, "--regex", pattern, "--json"],
    ));
    assert_eq!(c["total"], 5);

    let g = json(&halo(tmp.path(), &["grep", f, pattern, "--json"]));
    assert_eq!(g["schema_version"], 3);
    assert_eq!(g["matching_lines"], 1, "lines are still counted as lines");
    assert_eq!(g["listed_lines"], 1);
    assert_eq!(g["truncated"], false);
    assert_eq!(g["scan"]["complete"], true);
    let matches = g["matches"].as_array().unwrap();
    let found: Vec<(&str, &str)> = matches
        .iter()
        .map(|m| {
            assert_eq!(m["line"], 1);
            assert_eq!(m["match"], pattern);
            assert!(m["context"].as_str().unwrap().contains(pattern), "{m}");
            (
                m["trace_id"].as_str().unwrap(),
                m["span_id"].as_str().unwrap(),
            )
        })
        .collect();
    let wanted: Vec<(String, String)> = [1, 3, 4, 6, 8]
        .iter()
        .map(|&i| (trace_id(i), span_id(i, 1)))
        .collect();
    let wanted: Vec<(&str, &str)> = wanted
        .iter()
        .map(|(t, s)| (t.as_str(), s.as_str()))
        .collect();
    assert_eq!(
        found, wanted,
        "each trace once, at its first matching span, in line order"
    );
    // Each excerpt is taken around its own span's match: with context enough to reach
    // back to the span's id (and not to the previous match), the id is that span's.
    let wide = json(&halo(
        tmp.path(),
        &["grep", f, pattern, "--context-chars", "250", "--json"],
    ));
    for m in wide["matches"].as_array().unwrap() {
        let context = m["context"].as_str().unwrap();
        let before = &context[..context.find(pattern).unwrap()];
        let id = before.rsplit(r#""spanId":""#).next().unwrap();
        assert!(
            before.contains(r#""spanId":""#) && id.starts_with(m["span_id"].as_str().unwrap()),
            "{m}"
        );
    }

    let text = stdout(&halo(tmp.path(), &["grep", f, pattern]));
    for (t, s) in &wanted {
        assert!(
            text.contains(&format!(":1: trace {t} span {s}: ")),
            "{text}"
        );
    }
    assert!(
        text.contains("1 matching line(s) with 5 trace(s)"),
        "{text}"
    );
}

#[test]
fn grep_anchors_hold_at_a_spans_edges_on_an_otlp_line() {
    // `$` after a failed span's status, `^` before a span: true at the edges of spans
    // inside the line, never at the line's own edges; grep agrees with count and search.
    let tmp = tempfile::tempdir().unwrap();
    let file = write(tmp.path(), "export.jsonl", &[nine_traces_line()]);
    let f = file.to_str().unwrap();
    let ends_failed = r#""code":2\}\}$"#;
    let c = json(&halo(
        tmp.path(),
        &["count", f, "--regex", ends_failed, "--json"],
    ));
    assert_eq!(c["total"], 5);
    let g = json(&halo(tmp.path(), &["grep", f, ends_failed, "--json"]));
    assert_eq!(g["matching_lines"], 1, "{g}");
    assert_eq!(g["matches"].as_array().unwrap().len(), 5, "{g}");
    let starts = format!(r#"^\{{"traceId":"{}""#, trace_id(3));
    let g = json(&halo(tmp.path(), &["grep", f, &starts, "--json"]));
    assert_eq!(g["matches"].as_array().unwrap().len(), 1, "{g}");
    assert_eq!(g["matches"][0]["trace_id"], trace_id(3));
    // A pattern that holds nowhere lists nothing, though its prefilter finds the line.
    let g = json(&halo(
        tmp.path(),
        &["grep", f, r#"^"resourceSpans""#, "--json"],
    ));
    assert_eq!(g["matching_lines"], 0, "{g}");
    assert!(g["matches"].as_array().unwrap().is_empty(), "{g}");
}

#[test]
fn grep_max_matches_still_counts_lines_on_otlp_data() {
    let tmp = tempfile::tempdir().unwrap();
    let second = otlp_export(&[
        otlp_span(&trace_id(20), &span_id(20, 0), true),
        otlp_span(&trace_id(21), &span_id(21, 0), true),
    ]);
    let file = write(tmp.path(), "export.jsonl", &[nine_traces_line(), second]);
    let f = file.to_str().unwrap();
    let pattern = "exception.type";
    let all = json(&halo(tmp.path(), &["grep", f, pattern, "--json"]));
    assert_eq!(all["matching_lines"], 2);
    assert_eq!(all["listed_lines"], 2);
    assert_eq!(all["matches"].as_array().unwrap().len(), 7);
    let one = json(&halo(
        tmp.path(),
        &["grep", f, pattern, "--max-matches", "1", "--json"],
    ));
    assert_eq!(one["truncated"], true, "{one}");
    assert_eq!(one["listed_lines"], 1);
    assert_eq!(
        one["matches"].as_array().unwrap().len(),
        1,
        "the cap holds for entries"
    );
    let three = json(&halo(
        tmp.path(),
        &["grep", f, pattern, "--max-matches", "3", "--json"],
    ));
    assert_eq!(three["truncated"], true, "{three}");
    assert_eq!(three["listed_lines"], 1);
    let matches = three["matches"].as_array().unwrap();
    assert_eq!(matches.len(), 3, "the first line's first three traces");
    assert!(matches.iter().all(|m| m["line"] == 1));
    let six = json(&halo(
        tmp.path(),
        &["grep", f, pattern, "--max-matches", "6", "--json"],
    ));
    assert_eq!(six["listed_lines"], 2);
    assert_eq!(six["matches"].as_array().unwrap().len(), 6);
    let text = stdout(&halo(
        tmp.path(),
        &["grep", f, pattern, "--max-matches", "3"],
    ));
    assert!(
        text.contains(
            "1 matching line(s) shown with 3 trace(s), of 2; raise --max-matches for more"
        ),
        "{text}"
    );
    // A bad argument is named by its flag, as the user gave it.
    let bad = halo(tmp.path(), &["count", f, "--start-time-gte", "soonish"]);
    assert_eq!(bad.status.code(), Some(1));
    assert!(
        stderr(&bad).contains("invalid --start-time-gte: "),
        "{}",
        stderr(&bad)
    );
}

/// A match outside every span (the resource) on an OTLP line where no span matches on
/// its own still lists the line, once, with no trace.
#[test]
fn grep_on_an_otlp_line_whose_spans_do_not_match_lists_the_line_once() {
    let tmp = tempfile::tempdir().unwrap();
    let line = otlp_export(&[
        otlp_span(&trace_id(1), &span_id(1, 0), false),
        otlp_span(&trace_id(2), &span_id(2, 0), false),
    ]);
    let file = write(tmp.path(), "export.jsonl", &[line]);
    let f = file.to_str().unwrap();
    let g = json(&halo(tmp.path(), &["grep", f, "service.name", "--json"]));
    assert_eq!(g["matching_lines"], 1);
    let matches = g["matches"].as_array().unwrap();
    assert_eq!(matches.len(), 1, "{g}");
    assert!(matches[0]["trace_id"].is_null());
    assert!(matches[0]["span_id"].is_null());
}

/// The canonical format: one entry per line, however often it matches, with the line's
/// span, and the text as before (no span named).
#[test]
fn grep_on_canonical_lines_lists_each_line_once() {
    let tmp = tempfile::tempdir().unwrap();
    let lines = vec![
        Span::new("t1", "s1", "")
            .attrs(r#"{"a":"needle","b":"needle"}"#)
            .line(),
        Span::new("t2", "s2", "").attrs(r#"{"a":"hay"}"#).line(),
        Span::new("t3", "s3", "").attrs(r#"{"a":"needle"}"#).line(),
    ];
    let file = write(tmp.path(), "spans.jsonl", &lines);
    let f = file.to_str().unwrap();
    let g = json(&halo(tmp.path(), &["grep", f, "needle", "--json"]));
    assert_eq!(g["matching_lines"], 2);
    assert_eq!(g["listed_lines"], 2);
    let ids: Vec<(&str, &str, u64)> = g["matches"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["trace_id"].as_str().unwrap(),
                m["span_id"].as_str().unwrap(),
                m["line"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(ids, [("t1", "s1", 1), ("t3", "s3", 3)]);
    let text = stdout(&halo(tmp.path(), &["grep", f, "needle"]));
    assert!(text.contains(":1: trace t1: "), "{text}");
    assert!(text.contains(":3: trace t3: "), "{text}");
    assert!(!text.contains(" span "), "{text}");
    assert!(text.contains("\n2 matching line(s)\n"), "{text}");
}

/// Two matches in one span: each text snippet marks its own match, not the first one
/// that its context happens to hold too.
#[test]
fn search_text_marks_each_snippets_own_match() {
    let tmp = tempfile::tempdir().unwrap();
    let trace = "ab".repeat(16);
    let span = "cd".repeat(8);
    let line = format!(
        r#"{{"resourceSpans":[{{"resource":{{"attributes":[]}},"scopeSpans":[{{"spans":[{{"traceId":"{trace}","spanId":"{span}","name":"call","kind":3,"startTimeUnixNano":"1776000000000000000","endTimeUnixNano":"1776000001000000000","attributes":[{{"key":"http.status_code","value":{{"intValue":"429"}}}},{{"key":"error.message","value":{{"stringValue":"429"}}}}]}}]}}]}}]}}"#
    );
    let file = write(tmp.path(), "export.jsonl", &[line]);
    let f = file.to_str().unwrap();
    let s = json(&halo(
        tmp.path(),
        &["search", f, &trace, "429", "--span", &span, "--json"],
    ));
    assert_eq!(s["total_matches"], 2);
    assert!(
        s["matches"][0].get("context_offset").is_none(),
        "the JSON is unchanged: {s}"
    );
    let text = stdout(&halo(
        tmp.path(),
        &["search", f, &trace, "429", "--span", &span],
    ));
    let snippets: Vec<&str> = text.lines().filter(|l| l.starts_with("    …")).collect();
    assert_eq!(snippets.len(), 2, "{text}");
    assert!(
        snippets[0].contains(r#""intValue":">>>429<<<""#),
        "{}",
        snippets[0]
    );
    assert!(
        snippets[1].contains(r#""stringValue":">>>429<<<""#),
        "{}",
        snippets[1]
    );
    for s in &snippets {
        assert_eq!(s.matches(">>>").count(), 1, "{s}");
    }
}

#[test]
fn an_anchored_grep_stops_checking_lines_at_enough_matches() {
    let tmp = tempfile::tempdir().unwrap();
    let lines: Vec<String> = (0..50)
        .map(|i| Span::new(&format!("t{i}"), "s", "").line())
        .collect();
    let file = write(tmp.path(), "many.jsonl", &lines);
    let f = file.to_str().unwrap();
    let g = json(&halo(
        tmp.path(),
        &[
            "grep",
            f,
            r#"^\{"trace_id""#,
            "--max-matches",
            "2",
            "--json",
        ],
    ));
    assert_eq!(g["matches"].as_array().unwrap().len(), 2, "{g}");
    assert_eq!(g["truncated"], true, "{g}");
    assert_eq!(g["matching_lines"], 3, "a lower bound, as documented: {g}");
    assert_eq!(g["scan"]["complete"], false, "{g}");
    assert_eq!(g["scan"]["stopped_by"], "max_matches", "{g}");
}

#[test]
fn line_end_anchors_hold_on_crlf_files() {
    let tmp = tempfile::tempdir().unwrap();
    let lines = [
        Span::new("t1", "a", "").line(),
        Span::new("t2", "a", "").line(),
    ];
    let file = tmp.path().join("crlf.jsonl");
    std::fs::write(&file, format!("{}\r\n{}\r\n", lines[0], lines[1])).unwrap();
    let f = file.to_str().unwrap();
    let g = json(&halo(tmp.path(), &["grep", f, r"\}$", "--json"]));
    assert_eq!(g["matching_lines"], 2, "{g}");
    let c = json(&halo(
        tmp.path(),
        &["count", f, "--regex", r"^\{.*\}$", "--json"],
    ));
    assert_eq!(c["total"], 2, "{c}");
    // The `\r` is the line's end, not its text, for grep as for count: nothing matches
    // it, and `\z` holds before it.
    for (pattern, lines) in [(r"\r", 0), (r"[^}]$", 0), (r"\}\z", 2), (r"(?-m)\}$", 2)] {
        let g = json(&halo(tmp.path(), &["grep", f, pattern, "--json"]));
        assert_eq!(g["matching_lines"], lines, "grep {pattern}: {g}");
        let c = json(&halo(
            tmp.path(),
            &["count", f, "--regex", pattern, "--json"],
        ));
        assert_eq!(c["total"], lines, "count {pattern}: {c}");
    }
}

/// Every match can be reached: past `--max-matches` by paging with `--offset`, and a
/// match of a whole huge value as a record of bounded size.
#[test]
fn search_pages_past_its_cap_and_cuts_huge_matches() {
    let tmp = tempfile::tempdir().unwrap();
    let needles = (0..30)
        .map(|i| format!("needle-{i:02}"))
        .collect::<Vec<_>>();
    let file = write(
        tmp.path(),
        "t.jsonl",
        &[
            Span::new("t1", "root", "")
                .attrs(&format!(r#"{{"notes": "{}"}}"#, needles.join(" ")))
                .line(),
            Span::new("t1", "big", "root")
                .attrs(&format!(r#"{{"blob": "x{}y"}}"#, "A".repeat(10_000)))
                .line(),
        ],
    );
    let f = file.to_str().unwrap();
    let page = |offset: &str| {
        json(&halo(
            tmp.path(),
            &[
                "search",
                f,
                "t1",
                r"needle-\d+",
                "--max-matches",
                "10",
                "--offset",
                offset,
                "--json",
            ],
        ))
    };
    let mut seen = Vec::new();
    let mut offset = "0".to_string();
    loop {
        let p = page(&offset);
        assert_eq!(p["total_matches"], 30);
        seen.extend(
            p["matches"]
                .as_array()
                .unwrap()
                .iter()
                .map(|m| m["match"].as_str().unwrap().to_string()),
        );
        match p["next_offset"].as_u64() {
            Some(next) => {
                assert_eq!(p["has_more"], true);
                offset = next.to_string();
            }
            None => {
                assert_eq!(p["has_more"], false);
                break;
            }
        }
    }
    assert_eq!(seen, needles, "each match once, in order");
    let human = stdout(&halo(
        tmp.path(),
        &["search", f, "t1", r"needle-\d+", "--max-matches", "10"],
    ));
    assert!(human.contains("the next with --offset 10"), "{human}");

    let big = json(&halo(
        tmp.path(),
        &[
            "search",
            f,
            "t1",
            "A{100,}",
            "--span",
            "big",
            "--context-chars",
            "5",
            "--json",
        ],
    ));
    let m = &big["matches"][0];
    let matched = m["match"].as_str().unwrap();
    assert!(
        matched.starts_with(&"A".repeat(1_000)),
        "{}",
        &matched[..50]
    );
    assert!(
        matched.ends_with("…[truncated: original 10000 chars]"),
        "{}",
        &matched[matched.len() - 60..]
    );
    let context = m["context"].as_str().unwrap();
    assert!(context.len() < 1_100, "{}", context.len());
    assert!(context.contains(&format!("\"x{matched}y\"")), "{context}");
}

/// A match and its context are bounded as a search's are: `.*` over a line holding a
/// 300 KB value lists its first 1,000 characters, and context past 2,000 is refused.
#[test]
fn grep_matches_and_context_are_bounded() {
    let tmp = tempfile::tempdir().unwrap();
    let huge = "z".repeat(300_000);
    let line = Span::new("t", "a", "")
        .attrs(&format!(r#"{{"input.value":"{huge}"}}"#))
        .line();
    let file = write(tmp.path(), "huge.jsonl", &[line]);
    let f = file.to_str().unwrap();
    let out = halo(tmp.path(), &["grep", f, "z+", "--json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).len() < 10_000, "{} bytes", stdout(&out).len());
    let j = json(&out);
    let m = j["matches"][0]["match"].as_str().unwrap();
    assert!(
        m.ends_with("…[truncated: original 300000 chars]"),
        "{m:.60}"
    );
    let wide = halo(tmp.path(), &["grep", f, "z+", "--context-chars", "100000"]);
    assert_eq!(wide.status.code(), Some(1), "{}", stderr(&wide));
    assert!(stderr(&wide).contains("2000"), "{}", stderr(&wide));
}
