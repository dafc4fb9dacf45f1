//! `halo sql` and `halo export --parquet` as a user runs them.

mod common;

use common::*;

#[test]
fn sql_answers_as_json_table_and_csv() {
    let tmp = tempfile::tempdir().unwrap();
    let file = small_dataset(tmp.path());
    let f = file.to_str().unwrap();
    let q = "SELECT tool_name, count(*) AS calls, sum(CASE WHEN is_error THEN 1 ELSE 0 END) AS failures FROM tool_calls GROUP BY tool_name ORDER BY tool_name";
    let o = json(&halo(tmp.path(), &["sql", f, q, "--json"]));
    assert_eq!(o["schema_version"], 1);
    assert_eq!(o["columns"][0]["name"], "tool_name");
    assert_eq!(o["columns"][1]["type"], "BIGINT");
    assert_eq!(
        o["rows"],
        serde_json::json!([["grep", 1, 1], ["list_files", 1, 0]])
    );
    assert_eq!(o["truncated"], false);

    let out = halo(tmp.path(), &["sql", f, q]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(text.starts_with("tool_name   calls  failures\n"), "{text}");
    assert!(text.contains("grep            1         1"), "{text}");
    assert!(text.contains("2 rows"), "{text}");

    let out = halo(
        tmp.path(),
        // Options may come between the paths and the query.
        &["sql", f, "-q", "--csv", "SELECT 'a,b' AS x, 2 AS y"],
    );
    assert_eq!(stdout(&out), "x,y\n\"a,b\",2\n");

    // A null shows as NULL on screen (an empty string stays empty); CSV leaves it empty.
    let q = "SELECT CAST(NULL AS VARCHAR) AS missing, '' AS empty";
    let text = stdout(&halo(tmp.path(), &["sql", f, "-q", q]));
    assert!(text.contains("NULL"), "{text}");
    let csv = stdout(&halo(tmp.path(), &["sql", f, "-q", "--csv", q]));
    assert_eq!(csv, "missing,empty\n,\n");
}

#[test]
fn sql_refusals_and_caps_are_clear() {
    let tmp = tempfile::tempdir().unwrap();
    let file = small_dataset(tmp.path());
    let f = file.to_str().unwrap();
    let out = halo(tmp.path(), &["sql", f, "DROP TABLE spans"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("refused: DROP TABLE is not allowed"),
        "{}",
        stderr(&out)
    );
    let out = halo(tmp.path(), &["sql", f]);
    assert_eq!(out.status.code(), Some(1), "a query is required");
    assert!(stderr(&out).contains("then the query"), "{}", stderr(&out));
    let out = halo(tmp.path(), &["sql", f, "SELECT 1; SELECT 2"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("exactly one statement"),
        "{}",
        stderr(&out)
    );

    let out = halo(
        tmp.path(),
        &["sql", f, "SELECT * FROM spans", "--max-rows", "3"],
    );
    assert!(out.status.success());
    assert!(stdout(&out).contains("3 rows (cut)"), "{}", stdout(&out));
    assert!(
        stderr(&out).contains("row limit of 3 rows"),
        "{}",
        stderr(&out)
    );
    let o = json(&halo(
        tmp.path(),
        &["sql", f, "SELECT * FROM spans", "--max-rows", "3", "--json"],
    ));
    assert_eq!(o["row_count"], 3);
    assert_eq!(o["truncated"], true);

    // A cap of nothing is a mistake, not a cut.
    for cap in ["--max-rows", "--max-bytes"] {
        let out = halo(tmp.path(), &["sql", f, "SELECT 1", cap, "0"]);
        assert_eq!(out.status.code(), Some(1), "{cap}");
        assert!(stderr(&out).contains("at least 1"), "{}", stderr(&out));
    }
    let help = stdout(&halo(tmp.path(), &["sql", "--help"]));
    assert!(help.contains("messages (one row per message"), "{help}");
}

#[test]
fn export_writes_parquet_files() {
    let tmp = tempfile::tempdir().unwrap();
    let file = small_dataset(tmp.path());
    let dir = tmp.path().join("pq");
    let o = json(&halo(
        tmp.path(),
        &[
            "export",
            file.to_str().unwrap(),
            "--parquet",
            dir.to_str().unwrap(),
            "--json",
        ],
    ));
    assert_eq!(o["format"], "parquet");
    assert_eq!(o["files"].as_array().unwrap().len(), 5);
    // Each table's rows, as SQL counts them.
    let f = file.to_str().unwrap();
    for t in o["tables"].as_array().unwrap() {
        let name = t["table"].as_str().unwrap();
        let count = json(&halo(
            tmp.path(),
            &["sql", f, &format!("SELECT count(*) FROM {name}"), "--json"],
        ));
        assert_eq!(t["rows"], count["rows"][0][0], "{name}");
    }
    assert_eq!(o["tables"][1]["table"], "spans");
    assert_eq!(o["tables"][1]["rows"], 8, "{o}");
    for t in ["traces", "spans", "tool_calls", "llm_calls", "messages"] {
        let p = dir.join(format!("{t}.parquet"));
        let bytes = std::fs::read(&p).unwrap();
        assert_eq!(&bytes[..4], b"PAR1", "{t}");
        assert_eq!(&bytes[bytes.len() - 4..], b"PAR1", "{t}");
    }
    // A file where the directory should go is named once, with what is wrong.
    let a_file = tmp.path().join("afile");
    std::fs::write(&a_file, "x").unwrap();
    let f = file.to_str().unwrap();
    let out = halo(
        tmp.path(),
        &["export", f, "--parquet", a_file.to_str().unwrap()],
    );
    assert_eq!(
        out.status.code(),
        Some(1),
        "bad usage, refused before any work"
    );
    let err = stderr(&out);
    assert!(
        err.contains("--parquet") && err.contains("afile: a file is there"),
        "{err}"
    );
    assert_eq!(err.matches("a file is there").count(), 1, "{err}");
}

/// A trace file in `dir` and a query over it that runs far longer than a test waits.
fn a_query_that_outlasts_the_test(dir: &std::path::Path) -> (std::path::PathBuf, &'static str) {
    let lines: Vec<String> = (0..300)
        .map(|i| Span::new(&format!("t{i}"), "s", "").line())
        .collect();
    let file = write(dir, "many.jsonl", &lines);
    let q = "SELECT count(*) FROM spans a, spans b, spans c, spans d WHERE a.name || b.name || c.name || d.name LIKE '%zzz%'";
    (file, q)
}

/// Ctrl-C under `--json` still leaves JSON on stdout, with exit code 130.
#[cfg(unix)]
#[test]
fn an_interrupted_json_command_says_so_in_json() {
    let tmp = tempfile::tempdir().unwrap();
    let (file, q) = a_query_that_outlasts_the_test(tmp.path());
    let child = spawn_halo(
        tmp.path(),
        &["sql", file.to_str().unwrap(), q, "--json", "-q"],
    );
    std::thread::sleep(std::time::Duration::from_millis(1500));
    let o = interrupt(child);
    // Killed by the signal, as shells expect (they report it as 130).
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(o.status.signal(), Some(2), "SIGINT: {}", stderr(&o));
    let e = json_any(&o);
    assert_eq!(e["error"]["exit_code"], 130);
    assert_eq!(e["error"]["message"], "interrupted");
}

/// Started with Ctrl-C ignored (a script's background job, `nohup`), `--json` keeps it
/// ignored, as every command without `--json` does.
#[cfg(unix)]
#[test]
fn an_ignored_ctrl_c_stays_ignored_under_json() {
    let tmp = tempfile::tempdir().unwrap();
    let (file, q) = a_query_that_outlasts_the_test(tmp.path());
    // `trap '' INT` ignores the signal, and `exec` hands that on to halo.
    let mut child = std::process::Command::new("sh")
        .arg("-c")
        .arg(r#"trap '' INT; exec "$@""#)
        .arg("sh")
        .arg(env!("CARGO_BIN_EXE_halo"))
        .args(["sql", file.to_str().unwrap(), q, "--json", "-q"])
        .env("HALO_CACHE_DIR", tmp.path().join("cache"))
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(1500));
    let sent = std::process::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(sent.success());
    std::thread::sleep(std::time::Duration::from_millis(500));
    assert!(
        child.try_wait().unwrap().is_none(),
        "halo ended on an ignored SIGINT"
    );
    let o = send_signal(child, "KILL");
    assert!(stdout(&o).is_empty(), "{}", stdout(&o));
}

#[test]
fn a_damaged_span_table_is_a_data_failure_not_a_query_mistake() {
    let tmp = tempfile::tempdir().unwrap();
    let file = small_dataset(tmp.path());
    let f = file.to_str().unwrap();
    let idx = tmp.path().join("idx");
    let idx_arg = idx.to_str().unwrap();
    assert!(
        halo(tmp.path(), &["index", f, "--index-dir", idx_arg, "-q"])
            .status
            .success()
    );
    // Damage the span table's footer in place, keeping its size: opening checks sizes only
    // (hashing every table at every query would cost more than the query), so the damage
    // shows when the query loads the table.
    let table = walk_files(&idx)
        .into_iter()
        .find(|p| p.to_string_lossy().ends_with(".spans.arrow"))
        .expect("a span table");
    let mut bytes = std::fs::read(&table).unwrap();
    let end = bytes.len() - 10;
    bytes[end - 64..end].fill(0xff);
    std::fs::write(&table, bytes).unwrap();

    let q = "SELECT count(*) FROM spans";
    let out = halo(tmp.path(), &["sql", f, q, "--index-dir", idx_arg, "--json"]);
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(json_any(&out)["error"]["exit_code"], 2);
    assert!(
        json_any(&out)["error"]["message"]
            .as_str()
            .unwrap()
            .contains("run the command again"),
        "{}",
        stdout(&out)
    );
    // Running it again rebuilds the index, and the query runs.
    let out = halo(tmp.path(), &["sql", f, q, "--index-dir", idx_arg]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
}

/// Every file under `dir`.
fn walk_files(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(walk_files(&path));
        } else {
            out.push(path);
        }
    }
    out
}

/// A message's content is cut to its first 4,096 characters in the table; its whole
/// length is there beside it, so questions about length still get true answers.
#[test]
fn a_long_message_says_how_long_it_was() {
    let tmp = tempfile::tempdir().unwrap();
    let long = "é".repeat(5_000);
    let file = write(
        tmp.path(),
        "t.jsonl",
        &[Span::new("t1", "llm", "")
            .attrs(&format!(
                r#"{{"openinference.span.kind":"LLM","llm.input_messages.0.message.role":"user","llm.input_messages.0.message.content":"{long}"}}"#
            ))
            .line()],
    );
    let o = json(&halo(
        tmp.path(),
        &[
            "sql",
            file.to_str().unwrap(),
            "SELECT character_length(content), content_chars FROM messages",
            "--json",
        ],
    ));
    assert_eq!(o["rows"], serde_json::json!([[4096, 5000]]));
}

/// On the terminal a value shows only its head, so only its head counts against
/// `--max-bytes`: a huge value does not cut its row there (JSON gives values whole).
#[test]
fn a_huge_value_does_not_cut_the_table_on_the_terminal() {
    let tmp = tempfile::tempdir().unwrap();
    let file = write(
        tmp.path(),
        "t.jsonl",
        &[
            Span::new("t1", "big", "")
                .attrs(&format!(r#"{{"blob":"{}"}}"#, "x".repeat(5_000)))
                .line(),
            Span::new("t1", "small", "big").line(),
        ],
    );
    let f = file.to_str().unwrap();
    let q = "SELECT span_id, attributes FROM spans ORDER BY span_id";
    let out = halo(tmp.path(), &["sql", f, q, "--max-bytes", "2000"]);
    let text = stdout(&out);
    assert!(text.contains("2 rows ·"), "{text}");
    assert!(!text.contains("(cut)"), "{text}");
    assert!(text.contains("small"), "{text}");
    let o = json(&halo(
        tmp.path(),
        &["sql", f, q, "--max-bytes", "2000", "--json"],
    ));
    assert_eq!(o["truncated"], true, "{o}");
}
