//! Bad input: every case is skipped with a warning naming file:line, counted, and fatal
//! only under --strict. Nothing panics.

mod common;

use common::*;

#[test]
fn bad_lines_are_skipped_named_and_counted() {
    let tmp = tempfile::tempdir().unwrap();
    let good = Span::new("t1", "a", "").line();
    let mut bytes = Vec::new();
    bytes.extend_from_slice(good.as_bytes());
    bytes.extend_from_slice(b"\n{\"trace_id\": \"t1\", oops}\n"); // line 2: malformed
    bytes.extend_from_slice(b"{\"span_id\":\"x\",\"start_time\":\"2026-01-01T00:00:00Z\",\"end_time\":\"2026-01-01T00:00:00Z\"}\n"); // 3: missing trace_id
    bytes.extend_from_slice(
        Span::new("t1", "b", "a")
            .line()
            .replace("\"t1\"", "17")
            .as_bytes(),
    ); // 4: wrong type
    bytes.extend_from_slice(b"\n");
    bytes.extend_from_slice(b"{\"trace_id\":\"t1\",\"span_id\":\"\xff\xfe\"}\n"); // 5: invalid UTF-8
    bytes.extend_from_slice(b"\n"); // 6: blank, ignored
    bytes.extend_from_slice(Span::new("t2", "a", "").line().as_bytes()); // 7: good
    bytes.extend_from_slice(b"\n");
    bytes.extend_from_slice(&Span::new("t3", "a", "").line().as_bytes()[..50]); // 8: truncated last line
    let file = tmp.path().join("bad.jsonl");
    std::fs::write(&file, &bytes).unwrap();
    let f = file.to_str().unwrap();

    let out = halo(tmp.path(), &["overview", f]);
    assert!(out.status.success(), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(err.contains("bad.jsonl:2: malformed JSON"), "{err}");
    assert!(
        err.contains("bad.jsonl:3: invalid span: missing field `trace_id`"),
        "{err}"
    );
    assert!(
        err.contains("bad.jsonl:4: invalid span: invalid type"),
        "{err}"
    );
    assert!(err.contains("bad.jsonl:5: invalid UTF-8"), "{err}");
    assert!(
        err.contains("more problem(s)") || err.contains("bad.jsonl:8"),
        "{err}"
    );

    let idx = json(&halo(tmp.path(), &["index", f, "--json", "-q"]));
    assert_eq!(
        idx["total_traces"], 2,
        "good lines around bad ones are kept"
    );
    assert_eq!(idx["skipped_lines"], 4);
    let problems = idx["problems"].as_array().unwrap();
    assert!(problems
        .iter()
        .any(|p| p["line"] == 8 && p["message"].as_str().unwrap().contains("incomplete")));
    // Scripts tell problems apart by kind, not by their wording.
    let kinds: Vec<(u64, &str)> = problems
        .iter()
        .map(|p| (p["line"].as_u64().unwrap(), p["kind"].as_str().unwrap()))
        .collect();
    assert_eq!(
        kinds,
        [
            (2, "skipped_line"),
            (3, "skipped_line"),
            (4, "skipped_line"),
            (5, "skipped_line"),
            (8, "incomplete_last_line")
        ]
    );
    let o = json(&halo(tmp.path(), &["overview", f, "--json", "-q"]));
    assert_eq!(o["skipped_lines"], 4);
    assert_eq!(o["problem_count"], 5);
    // The overview lists the problems too, as `index --json` does.
    let listed: Vec<(u64, &str)> = o["problems"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| (p["line"].as_u64().unwrap(), p["kind"].as_str().unwrap()))
        .collect();
    assert_eq!(listed, kinds);

    let strict = halo(tmp.path(), &["overview", f, "--strict"]);
    assert_eq!(strict.status.code(), Some(2));
    assert!(stderr(&strict).contains("--strict"), "{}", stderr(&strict));
    assert!(stderr(&strict).contains("refused"), "{}", stderr(&strict));
    assert!(
        !stderr(&strict).contains("line skipped"),
        "nothing was skipped: {}",
        stderr(&strict)
    );
    assert!(stdout(&strict).is_empty(), "{}", stdout(&strict));

    // With --json the failure is JSON on stdout as well: a script reading stdout always
    // gets JSON, and learns which line was refused.
    let strict = halo(tmp.path(), &["overview", f, "--strict", "--json"]);
    assert_eq!(strict.status.code(), Some(2));
    let e = json_any(&strict);
    assert_eq!(e["type"], "error");
    assert_eq!(e["schema_version"], 1);
    assert_eq!(e["error"]["exit_code"], 2);
    assert_eq!(e["error"]["problem"]["kind"], "skipped_line");
    assert_eq!(e["error"]["problem"]["line"], 2);
    assert!(e["error"]["problem"]["file"]
        .as_str()
        .unwrap()
        .ends_with(".jsonl"));
    assert_eq!(e["error"]["problem_count"], 4);
}

#[test]
fn failures_under_json_are_json_on_stdout() {
    let tmp = tempfile::tempdir().unwrap();
    let missing = halo(tmp.path(), &["count", "nope.jsonl", "--json"]);
    assert_eq!(missing.status.code(), Some(1));
    let e = json_any(&missing);
    assert_eq!(e["error"]["exit_code"], 1);
    assert!(
        e["error"]["message"]
            .as_str()
            .unwrap()
            .contains("nope.jsonl: no such file"),
        "{e}"
    );
    assert!(e["error"].get("problem").is_none(), "{e}");
    // Usage errors too; the human message stays on stderr.
    let bad_flag = halo(tmp.path(), &["overview", "x.jsonl", "--json", "--bogus"]);
    assert_eq!(bad_flag.status.code(), Some(1));
    assert!(json_any(&bad_flag)["error"]["message"]
        .as_str()
        .unwrap()
        .contains("--bogus"));
    assert!(stderr(&bad_flag).contains("--bogus"));
    // `--json` after `--` is a path, not the option.
    let as_path = halo(tmp.path(), &["overview", "--", "--json"]);
    assert_eq!(as_path.status.code(), Some(1));
    assert!(stdout(&as_path).is_empty(), "{}", stdout(&as_path));
}

#[test]
fn empty_missing_and_traceless_inputs() {
    let tmp = tempfile::tempdir().unwrap();
    let empty = tmp.path().join("empty.jsonl");
    std::fs::write(&empty, "").unwrap();
    let o = json(&halo(
        tmp.path(),
        &["overview", empty.to_str().unwrap(), "--json"],
    ));
    assert_eq!(o["total_traces"], 0);

    let missing = halo(tmp.path(), &["overview", "nope.jsonl"]);
    assert_eq!(missing.status.code(), Some(1));
    assert!(
        stderr(&missing).contains("nope.jsonl: no such file or directory"),
        "{}",
        stderr(&missing)
    );

    let dir = tmp.path().join("nothing");
    std::fs::create_dir(&dir).unwrap();
    std::fs::write(dir.join("readme.md"), "hi").unwrap();
    let none = halo(tmp.path(), &["overview", dir.to_str().unwrap()]);
    assert_eq!(none.status.code(), Some(1));
    assert!(
        stderr(&none).contains("no trace files found"),
        "{}",
        stderr(&none)
    );

    let usage = halo(tmp.path(), &["overview"]);
    assert_eq!(
        usage.status.code(),
        Some(1),
        "usage errors exit 1, like ours"
    );
    assert!(stderr(&usage).contains("Usage"), "{}", stderr(&usage));
    let help = halo(tmp.path(), &["--help"]);
    assert_eq!(help.status.code(), Some(0));
    let nothing = halo(tmp.path(), &[]);
    assert_eq!(nothing.status.code(), Some(1), "no arguments is bad usage");
}

#[test]
fn duplicate_span_ids_are_kept_counted_and_warned() {
    let tmp = tempfile::tempdir().unwrap();
    let file = write(
        tmp.path(),
        "dups.jsonl",
        &[
            Span::new("t1", "a", "").line(),
            Span::new("t1", "a", "").line(),
            Span::new("t1", "b", "a").line(),
        ],
    );
    let out = halo(tmp.path(), &["overview", file.to_str().unwrap(), "--json"]);
    assert!(
        stderr(&out).contains("duplicate span id"),
        "{}",
        stderr(&out)
    );
    let o = json(&out);
    assert_eq!(o["total_spans"], 3);
    assert_eq!(o["duplicate_span_count"], 1);
}

#[test]
fn spans_that_end_before_they_start_are_kept_and_named() {
    let tmp = tempfile::tempdir().unwrap();
    let file = write(
        tmp.path(),
        "skew.jsonl",
        &[
            Span::new("t1", "a", "").line(),
            Span::new("t1", "b", "a")
                .times("2026-01-01T00:00:05Z", "2026-01-01T00:00:01Z")
                .line(),
            Span::new("t1", "c", "a")
                .times("2026-01-01T00:00:09Z", "2026-01-01T00:00:02Z")
                .line(),
        ],
    );
    let f = file.to_str().unwrap();
    let out = halo(tmp.path(), &["overview", f, "--json"]);
    assert!(
        stderr(&out).contains("skew.jsonl:2: 2 spans end before they start"),
        "{}",
        stderr(&out)
    );
    let o = json(&out);
    assert_eq!(o["total_spans"], 3);
    assert_eq!(o["problems"][0]["kind"], "reversed_times");
    // Nothing was lost, so --strict does not refuse it.
    let strict = halo(tmp.path(), &["overview", f, "--strict", "-q"]);
    assert_eq!(strict.status.code(), Some(0), "{}", stderr(&strict));
}

#[test]
fn unreadable_file_is_reported() {
    use std::os::unix::fs::PermissionsExt;
    let tmp = tempfile::tempdir().unwrap();
    let good = small_dataset(tmp.path());
    let locked = write(
        tmp.path(),
        "locked.jsonl",
        &[Span::new("x", "a", "").line()],
    );
    std::fs::set_permissions(&locked, std::fs::Permissions::from_mode(0o000)).unwrap();
    if std::fs::File::open(&locked).is_ok() {
        eprintln!("skipped: running as root, a mode-000 file is still readable");
        return;
    }
    let out = halo(
        tmp.path(),
        &[
            "overview",
            good.to_str().unwrap(),
            locked.to_str().unwrap(),
            "--json",
        ],
    );
    assert!(
        stderr(&out).contains("locked.jsonl: file skipped"),
        "{}",
        stderr(&out)
    );
    assert_eq!(json(&out)["total_traces"], 3);
}

#[test]
fn a_100_mb_span_is_indexed_viewed_and_searched() {
    let tmp = tempfile::tempdir().unwrap();
    let big = "x".repeat(100 << 20);
    let line = Span::new("huge", "a", "")
        .attrs(&format!(r#"{{"output.value":"{big}needle"}}"#))
        .line();
    let file = write(
        tmp.path(),
        "big.jsonl",
        &[line, Span::new("small", "a", "").line()],
    );
    let f = file.to_str().unwrap();
    let o = json(&halo(tmp.path(), &["overview", f, "--json"]));
    assert_eq!(o["total_traces"], 2);
    let v = json(&halo(tmp.path(), &["view", f, "huge", "--json"]));
    let value = v["spans"][0]["attributes"]["output.value"]
        .as_str()
        .unwrap();
    assert!(
        value.ends_with("…[truncated: original 104857606 chars]"),
        "{}",
        &value[value.len() - 60..]
    );
    let s = json(&halo(
        tmp.path(),
        &[
            "search",
            f,
            "huge",
            "needle",
            "--context-chars",
            "5",
            "--json",
        ],
    ));
    assert_eq!(s["total_matches"], 1);
    assert_eq!(s["matches"][0]["context"], "xxxxxneedle\"}}");
}

#[test]
fn a_truncated_gzip_keeps_its_good_lines_and_strict_names_the_fault() {
    use std::io::Write;
    let tmp = tempfile::tempdir().unwrap();
    let lines: String = (0..2000)
        .map(|i| Span::new(&format!("t{i}"), &format!("s{i}"), "").line() + "\n")
        .collect();
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    enc.write_all(lines.as_bytes()).unwrap();
    let gz = enc.finish().unwrap();
    let f = tmp.path().join("cut.jsonl.gz");
    std::fs::write(&f, &gz[..gz.len() / 2]).unwrap();
    let f = f.to_str().unwrap();
    let o = halo(tmp.path(), &["overview", f, "--json"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("gzip stream ends early"),
        "{}",
        stderr(&o)
    );
    let kept = json(&o)["total_traces"].as_u64().unwrap();
    assert!(kept > 100 && kept < 2000, "{kept} traces kept");
    let idx = json(&halo(tmp.path(), &["index", f, "--json", "-q"]));
    assert_eq!(idx["problems"][0]["kind"], "gzip_fault", "{idx}");
    let strict = halo(tmp.path(), &["overview", f, "--strict"]);
    assert_eq!(strict.status.code(), Some(2));
    assert!(
        stderr(&strict).contains("gzip stream ends early"),
        "{}",
        stderr(&strict)
    );
}

#[cfg(unix)]
#[test]
fn a_build_that_runs_out_of_space_leaves_no_half_index() {
    // A file size limit makes the span table's writes fail (EFBIG) as a full disk would.
    let tmp = tempfile::tempdir().unwrap();
    let lines: Vec<String> = (0..2000)
        .map(|i| {
            Span::new(&format!("t{i}"), "s", "")
                .attrs(&format!(r#"{{"input.value":"{}"}}"#, "x".repeat(200)))
                .line()
        })
        .collect();
    let file = write(tmp.path(), "big.jsonl", &lines);
    let idx = tmp.path().join("idx");
    let script = format!(
        "trap '' XFSZ; ulimit -f 64; exec '{}' index -q --index-dir '{}' '{}'",
        env!("CARGO_BIN_EXE_halo"),
        idx.display(),
        file.display()
    );
    let o = std::process::Command::new("sh")
        .args(["-c", &script])
        .current_dir(tmp.path())
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    let left: Vec<String> = std::fs::read_dir(&idx)
        .map(|d| {
            d.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    assert!(left.is_empty(), "nothing half-built is left: {left:?}");
    // With room again, the index builds.
    let o = halo(
        tmp.path(),
        &[
            "count",
            "--index-dir",
            idx.to_str().unwrap(),
            file.to_str().unwrap(),
            "--json",
        ],
    );
    assert_eq!(json(&o)["total"], 2000);
    // An append that runs out of space leaves no half segment in the live index.
    let more: Vec<String> = (2000..4000)
        .map(|i| {
            Span::new(&format!("t{i}"), "s", "")
                .attrs(&format!(r#"{{"input.value":"{}"}}"#, "x".repeat(200)))
                .line()
        })
        .collect();
    let mut text = std::fs::read_to_string(&file).unwrap();
    text.push_str(&(more.join("\n") + "\n"));
    std::fs::write(&file, text).unwrap();
    let o = std::process::Command::new("sh")
        .args(["-c", &script])
        .current_dir(tmp.path())
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    let index = std::fs::read_dir(&idx)
        .unwrap()
        .flatten()
        .next()
        .unwrap()
        .path();
    let names: Vec<String> = std::fs::read_dir(&index)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    assert!(
        !names.iter().any(|n| n.starts_with("seg-0001")),
        "{names:?}"
    );
    let o = halo(
        tmp.path(),
        &[
            "count",
            "--index-dir",
            idx.to_str().unwrap(),
            file.to_str().unwrap(),
            "--json",
        ],
    );
    assert_eq!(json(&o)["total"], 4000);
}

#[test]
fn absurd_token_counts_neither_wrap_nor_panic() {
    let tmp = tempfile::tempdir().unwrap();
    let llm = |trace: &str, span: &str, tokens: &str| {
        Span::new(trace, span, "")
            .attrs(&format!(r#"{{"openinference.span.kind":"LLM",{tokens}}}"#))
            .line()
    };
    let file = write(
        tmp.path(),
        "tokens.jsonl",
        &[
            // u64::MAX, the usual "unknown" sentinel, is no count.
            llm(
                "t1",
                "a",
                r#""gen_ai.usage.input_tokens":18446744073709551615,"gen_ai.usage.output_tokens":1"#,
            ),
            llm("t1", "b", r#""llm.token_count.prompt":9223372036854775807"#),
            llm("t2", "a", r#""llm.token_count.prompt":9223372036854775807"#),
            llm("t3", "a", r#""llm.token_count.prompt":-5"#),
        ],
    );
    let f = file.to_str().unwrap();
    let o = json(&halo(tmp.path(), &["overview", f, "--json"]));
    assert_eq!(
        o["total_input_tokens"],
        i64::MAX,
        "saturated, not wrapped: {o}"
    );
    assert_eq!(o["total_output_tokens"], 1);
    let q = json(&halo(
        tmp.path(),
        &["query", f, "--json", "--sort", "tokens", "--limit", "1"],
    ));
    assert!(q["traces"][0]["total_tokens"].as_i64().unwrap() > 0, "{q}");
}

#[test]
fn terminal_escapes_in_trace_text_are_shown_escaped_never_sent() {
    let tmp = tempfile::tempdir().unwrap();
    let root = Span::new("e1", "r", "");
    let root = Span {
        name: r"evil\u001b]0;pwned\u0007\u001b[2J".into(),
        ..root
    };
    let tool = Span::new("e1", "t", "r")
        .attrs(r#"{"openinference.span.kind":"TOOL","tool.name":"t\u001b[31mool\nx"}"#)
        .error(r"x\u001b[31mred");
    let file = write(tmp.path(), "escapes.jsonl", &[root.line(), tool.line()]);
    let f = file.to_str().unwrap();
    let report = tmp.path().join("report.md");
    for args in [
        vec!["query", f],
        vec!["overview", f],
        vec!["view", f, "e1"],
        vec!["search", f, "e1", "red"],
        vec!["grep", f, "red"],
        vec!["diagnose", f, "-o", report.to_str().unwrap()],
    ] {
        let out = halo(tmp.path(), &args);
        assert!(out.status.success(), "{args:?}: {}", stderr(&out));
        let text = stdout(&out);
        assert!(
            !text.contains(['\u{1b}', '\u{7}']),
            "{args:?} sent a control character:\n{text}"
        );
        assert!(
            text.contains(r"\u001b"),
            "{args:?} shows it escaped:\n{text}"
        );
    }
    let tree = stdout(&halo(tmp.path(), &["view", f, "e1"]));
    let tool_line = tree.lines().find(|l| l.contains("[t]")).unwrap();
    assert!(tool_line.contains("ERROR"), "one line per span: {tree}");
    let md = std::fs::read_to_string(&report).unwrap();
    assert!(!md.contains('\u{1b}'), "{md}");
    assert!(
        md.lines()
            .any(|l| l.starts_with("## 1.") && l.contains(r"t\u001b[31mool x")),
        "a line break in a tool name does not split the heading:\n{md}"
    );
}

#[test]
fn a_pretty_printed_json_file_gets_one_hint_about_jsonl() {
    let tmp = tempfile::tempdir().unwrap();
    let span: serde_json::Value = serde_json::from_str(&Span::new("t1", "a", "").line()).unwrap();
    let pretty = serde_json::to_string_pretty(&span).unwrap();
    let file = tmp.path().join("pretty.json");
    std::fs::write(&file, format!("{pretty}\n")).unwrap();
    let f = file.to_str().unwrap();
    let out = halo(tmp.path(), &["overview", f]);
    let err = stderr(&out);
    assert_eq!(err.matches("hint:").count(), 1, "{err}");
    assert!(
        err.contains("one JSON object per line") && err.contains("jq -c"),
        "{err}"
    );
    // A JSONL file with a bad line gets no such hint.
    let jsonl = write(
        tmp.path(),
        "ok.jsonl",
        &[Span::new("t1", "a", "").line(), "{".into(), "}".into()],
    );
    let err = stderr(&halo(tmp.path(), &["overview", jsonl.to_str().unwrap()]));
    assert!(!err.contains("hint:"), "{err}");
}

#[test]
fn an_index_dir_that_is_a_file_is_named_as_the_flag() {
    let tmp = tempfile::tempdir().unwrap();
    let file = write(tmp.path(), "t.jsonl", &[Span::new("t1", "a", "").line()]);
    let a_file = write(tmp.path(), "afile", &["x".into()]);
    let out = halo(
        tmp.path(),
        &[
            "overview",
            file.to_str().unwrap(),
            "--index-dir",
            a_file.to_str().unwrap(),
        ],
    );
    assert_eq!(out.status.code(), Some(1), "bad usage");
    let err = stderr(&out);
    assert!(
        err.contains("--index-dir") && err.contains("afile: a file is there"),
        "{err}"
    );
    assert!(!err.contains(".tmp-"), "no internal names: {err}");
    // Under a file, and in the analysis form, where it comes before the missing API key.
    let under = format!("{}/sub", a_file.display());
    let f = file.to_str().unwrap();
    for args in [
        vec!["overview", f, "--index-dir", &under],
        vec![f, "--index-dir", &under, "-p", "why"],
    ] {
        let out = halo(tmp.path(), &args);
        assert_eq!(out.status.code(), Some(1), "{args:?}");
        let err = stderr(&out);
        assert!(
            err.contains("afile is a file, not a directory"),
            "{args:?}: {err}"
        );
    }
}

/// An edit that keeps the file's size and time and falls outside its hashed ends cannot be
/// seen when the index is opened; the read that finds it marks the index out of date, so
/// running the command again (as the error says) rebuilds it instead of failing again.
#[test]
fn an_edit_the_fingerprint_cannot_see_is_rebuilt_after_the_read_that_finds_it() {
    let tmp = tempfile::tempdir().unwrap();
    let file = indexed_then_edited_unseen(tmp.path());
    let f = file.to_str().unwrap();

    let reused = json(&halo(tmp.path(), &["index", f, "--json"]));
    assert_eq!(reused["files"][0]["action"], "reused", "{reused}");
    let view = halo(tmp.path(), &["view", f, "t0499"]);
    assert_eq!(view.status.code(), Some(2), "{}", stderr(&view));
    assert!(
        stderr(&view).contains("run the command again"),
        "{}",
        stderr(&view)
    );

    let again = halo(tmp.path(), &["view", f, "t0499"]);
    assert!(again.status.success(), "{}", stderr(&again));
    let rebuilt = json(&halo(tmp.path(), &["index", f, "--json"]));
    assert_eq!(
        rebuilt["files"][0]["action"], "reused",
        "marker gone: {rebuilt}"
    );
}

/// A file of 1,000 traces `t0000`… (each span holding `needle{i}`), indexed, then edited
/// in its middle without a change of size or time: one byte more on line 499 and one
/// less on line 501, so line 500 moves by a byte. The lines are wide, so that the middle
/// is far from the hashed first and last 64 KiB.
fn indexed_then_edited_unseen(dir: &std::path::Path) -> std::path::PathBuf {
    let pad = "p".repeat(400);
    let lines: Vec<String> = (0..1000)
        .map(|i| {
            Span::new(&format!("t{i:04}"), "s", "")
                .attrs(&format!(r#"{{"note":"{pad}","n":"needle{i}"}}"#))
                .line()
        })
        .collect();
    let file = write(dir, "t.jsonl", &lines);
    let f = file.to_str().unwrap();
    assert!(halo(dir, &["index", f, "-q"]).status.success());
    let mut edited = lines.clone();
    edited[498] = edited[498].replacen("ppp", "pppp", 1);
    edited[500] = edited[500].replacen("ppp", "pp", 1);
    rewrite_keeping_mtime(&file, &edited);
    file
}

/// Writes `lines` over `file` and gives it back the modification time it had: an edit
/// that the size and time in the fingerprint cannot see.
fn rewrite_keeping_mtime(file: &std::path::Path, lines: &[String]) {
    let modified = std::fs::metadata(file).unwrap().modified().unwrap();
    let mut text = lines.join("\n");
    text.push('\n');
    std::fs::write(file, text).unwrap();
    std::fs::File::options()
        .write(true)
        .open(file)
        .unwrap()
        .set_modified(modified)
        .unwrap();
}

/// The same unseen edit, found by a regex count instead of a view: the lines that moved
/// match where no indexed span starts, so the count would have been silently short. It
/// is refused instead, and the next run rebuilds and counts right.
#[test]
fn an_unseen_edit_is_refused_by_a_regex_count_not_answered_short() {
    let tmp = tempfile::tempdir().unwrap();
    let file = indexed_then_edited_unseen(tmp.path());
    let f = file.to_str().unwrap();

    let count = halo(tmp.path(), &["count", f, "--regex-pattern", "needle", "-q"]);
    assert_eq!(count.status.code(), Some(2), "{}", stdout(&count));
    assert!(
        stderr(&count).contains("run the command again"),
        "{}",
        stderr(&count)
    );
    let again = json(&halo(
        tmp.path(),
        &["count", f, "--regex-pattern", "needle", "--json"],
    ));
    assert_eq!(again["total"], 1000, "{again}");
}

/// A span id edited in place, the same length and time: the line still starts where the
/// index says, but holds another span. `view` refuses it rather than show it as the
/// indexed one, and the next run indexes the file again.
#[test]
fn a_span_id_edited_in_place_is_refused_by_view_not_shown_as_the_old_span() {
    let tmp = tempfile::tempdir().unwrap();
    let pad = "p".repeat(400);
    let lines: Vec<String> = (0..1000)
        .map(|i| {
            Span::new(&format!("t{i:04}"), "s", "")
                .attrs(&format!(r#"{{"note":"{pad}"}}"#))
                .line()
        })
        .collect();
    let file = write(tmp.path(), "t.jsonl", &lines);
    let f = file.to_str().unwrap();
    assert!(halo(tmp.path(), &["index", f, "-q"]).status.success());
    let mut edited = lines.clone();
    edited[500] = edited[500].replacen(r#""span_id":"s""#, r#""span_id":"q""#, 1);
    assert_ne!(edited[500], lines[500]);
    rewrite_keeping_mtime(&file, &edited);

    let view = halo(tmp.path(), &["view", f, "t0500", "-q"]);
    assert_eq!(view.status.code(), Some(2), "{}", stdout(&view));
    assert!(
        stderr(&view).contains("run the command again"),
        "{}",
        stderr(&view)
    );
    let again = json(&halo(tmp.path(), &["view", f, "t0500", "--json"]));
    assert_eq!(again["spans"][0]["span_id"], "q", "{again}");
}

/// A file of the user's with the sidecar's name is neither moved nor deleted: the index
/// goes to the cache instead, as for a read-only directory.
#[test]
fn a_file_with_the_sidecars_name_is_left_alone() {
    let tmp = tempfile::tempdir().unwrap();
    let file = write(tmp.path(), "t.jsonl", &[Span::new("t1", "a", "").line()]);
    let f = file.to_str().unwrap();
    let theirs = tmp.path().join("t.jsonl.halo-index");
    std::fs::write(&theirs, "not an index").unwrap();
    for args in [
        vec!["index", f, "--json"],
        vec!["index", f, "--rebuild", "--json"],
    ] {
        let out = halo(tmp.path(), &args);
        assert!(out.status.success(), "{args:?}: {}", stderr(&out));
        let dir = json(&out)["files"][0]["index_dir"]
            .as_str()
            .unwrap()
            .to_owned();
        assert!(
            std::path::Path::new(&dir).starts_with(tmp.path().join("cache")),
            "{dir}"
        );
    }
    assert_eq!(std::fs::read_to_string(&theirs).unwrap(), "not an index");
    let names: Vec<String> = std::fs::read_dir(tmp.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(!names.iter().any(|n| n.contains(".old-")), "{names:?}");
}

/// A file name with a line break is shown escaped everywhere `halo index` prints it, the
/// footer naming its index too, so every line of the report is one entry.
#[test]
fn a_file_name_with_a_line_break_is_escaped_in_the_index_report() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    std::fs::create_dir(&data).unwrap();
    write(&data, "new\nline.jsonl", &[Span::new("t1", "a", "").line()]);
    let out = halo(tmp.path(), &["index", data.to_str().unwrap()]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(text.contains("new\\u000aline.jsonl"), "{text}");
    assert!(
        text.lines().all(|l| !l.starts_with("line.jsonl")),
        "a raw line break split a line: {text}"
    );
}
