//! Input formats: canonical, OTLP/JSON, gzip, directories, spans spread over files.

mod common;

use std::io::Write;

use common::*;

fn otlp_line(trace: &str, spans: &[(&str, &str, u8, &str)]) -> String {
    let spans: Vec<String> = spans
        .iter()
        .map(|(id, parent, status, attrs)| {
            format!(
                r#"{{"traceId":"{trace}","spanId":"{id}","parentSpanId":"{parent}","name":"span-{id}","kind":3,"startTimeUnixNano":"1776000000000000000","endTimeUnixNano":"1776000001500000000","attributes":{attrs},"status":{{"code":{status},"message":"m-{id}"}}}}"#
            )
        })
        .collect();
    format!(
        r#"{{"resourceSpans":[{{"resource":{{"attributes":[{{"key":"service.name","value":{{"stringValue":"otel-svc"}}}}]}},"scopeSpans":[{{"scope":{{"name":"sdk","version":"1"}},"spans":[{}]}}]}}]}}"#,
        spans.join(",")
    )
}

#[test]
fn otlp_json_is_detected_and_read() {
    let tmp = tempfile::tempdir().unwrap();
    let llm = r#"[{"key":"gen_ai.operation.name","value":{"stringValue":"chat"}},{"key":"gen_ai.request.model","value":{"stringValue":"m1"}},{"key":"gen_ai.usage.input_tokens","value":{"intValue":"40"}},{"key":"gen_ai.usage.output_tokens","value":{"intValue":2}},{"key":"gen_ai.response.finish_reasons","value":{"arrayValue":{"values":[{"stringValue":"stop"}]}}}]"#;
    let tool = r#"[{"key":"gen_ai.operation.name","value":{"stringValue":"execute_tool"}},{"key":"gen_ai.tool.name","value":{"stringValue":"get_weather"}},{"key":"meta","value":{"kvlistValue":{"values":[{"key":"retry","value":{"boolValue":true}}]}}}]"#;
    let lines = vec![
        otlp_line(
            "aaaa0000aaaa0000aaaa0000aaaa0000",
            &[
                ("1111111111111111", "", 1, "[]"),
                ("2222222222222222", "1111111111111111", 1, llm),
            ],
        ),
        otlp_line(
            "bbbb0000bbbb0000bbbb0000bbbb0000",
            &[("3333333333333333", "", 2, tool)],
        ),
    ];
    let file = write(tmp.path(), "otlp.jsonl", &lines);
    let f = file.to_str().unwrap();
    let o = json(&halo(tmp.path(), &["overview", f, "--json"]));
    assert_eq!(o["total_traces"], 2);
    assert_eq!(o["total_spans"], 3);
    assert_eq!(o["total_input_tokens"], 40);
    assert_eq!(o["tool_error_span_count"], 1);
    assert_eq!(o["services"][0]["name"], "otel-svc");
    let v = json(&halo(
        tmp.path(),
        &["view", f, "bbbb0000bbbb0000bbbb0000bbbb0000", "--json"],
    ));
    let span = &v["spans"][0];
    assert_eq!(span["kind"], "SPAN_KIND_CLIENT");
    assert_eq!(span["status"]["message"], "m-3333333333333333");
    assert_eq!(
        span["attributes"]["meta"]["retry"], true,
        "kvlist values become objects"
    );
    assert_eq!(span["scope"]["name"], "sdk");
    assert_eq!(span["scope"]["version"], "1");
    assert!(
        span.get("resource").is_none(),
        "service.name alone is shown as service_name: {span}"
    );
    let s = json(&halo(
        tmp.path(),
        &[
            "search",
            f,
            "aaaa0000aaaa0000aaaa0000aaaa0000",
            "gen_ai.request.model",
            "--json",
        ],
    ));
    assert_eq!(
        s["total_matches"], 1,
        "search reads only the span's own JSON, not its neighbours'"
    );
    assert_eq!(s["matches"][0]["span_id"], "2222222222222222");
    let c = json(&halo(
        tmp.path(),
        &["count", f, "--regex", "get_weather", "--json"],
    ));
    assert_eq!(c["total"], 1);
}

/// Several traces on one OTLP line, written with spaces after the colons (as Python's
/// `json.dumps` does) and `traceId` last in each span: regex counts credit every trace
/// whose own span matches, and grep names the trace of the span that holds the match.
#[test]
fn regex_hits_on_otlp_lines_belong_to_the_spans_that_hold_them() {
    let tmp = tempfile::tempdir().unwrap();
    let span = |trace: &str, id: &str, word: &str| {
        format!(
            r#"{{"spanId": "{id}", "name": "s-{id}", "startTimeUnixNano": "1776000000000000000", "endTimeUnixNano": "1776000001000000000", "attributes": [{{"key": "note", "value": {{"stringValue": "{word}"}}}}], "traceId": "{trace}"}}"#
        )
    };
    let line = format!(
        r#"{{"resourceSpans": [{{"resource": {{"attributes": []}}, "scopeSpans": [{{"spans": [{}, {}, {}]}}]}}]}}"#,
        span(
            "aa00aa00aa00aa00aa00aa00aa00aa00",
            "1000000000000001",
            "calm"
        ),
        span(
            "bb00bb00bb00bb00bb00bb00bb00bb00",
            "2000000000000002",
            "needle"
        ),
        span(
            "cc00cc00cc00cc00cc00cc00cc00cc00",
            "3000000000000003",
            "calm"
        ),
    );
    let file = write(tmp.path(), "spaced.otlp.jsonl", &[line]);
    let f = file.to_str().unwrap();
    let every = json(&halo(tmp.path(), &["count", f, "--regex", ".", "--json"]));
    assert_eq!(
        every["total"], 3,
        "every trace on the line, not just the first"
    );
    let q = json(&halo(
        tmp.path(),
        &["query", f, "--regex", "needle", "--json"],
    ));
    assert_eq!(q["total"], 1);
    assert_eq!(
        q["traces"][0]["trace_id"],
        "bb00bb00bb00bb00bb00bb00bb00bb00"
    );
    let g = json(&halo(tmp.path(), &["grep", f, "needle", "--json"]));
    assert_eq!(
        g["matches"][0]["trace_id"],
        "bb00bb00bb00bb00bb00bb00bb00bb00"
    );
    // Anchors hold at each span's own edges, as in `search`, not only at the line's.
    for (pattern, traces) in [(r#"^\{"spanId"#, 3), (r#""traceId": "cc[0-9a-f]*"\}$"#, 1)] {
        let c = json(&halo(
            tmp.path(),
            &["count", f, "--regex", pattern, "--json"],
        ));
        assert_eq!(c["total"], traces, "{pattern}");
    }
    // The first match of `resource|needle` is in the resource, outside every span: grep
    // names the trace of the span that matches on its own.
    let g = json(&halo(tmp.path(), &["grep", f, "resource|needle", "--json"]));
    assert_eq!(
        g["matches"][0]["trace_id"],
        "bb00bb00bb00bb00bb00bb00bb00bb00"
    );
}

/// Canonical trace ids with escapes: counted by a regex and named by grep as they are.
#[test]
fn regex_hits_on_escaped_canonical_ids_name_the_decoded_id() {
    let tmp = tempfile::tempdir().unwrap();
    // Ids as JSON text: `t-\"q` is t-"q, `t-\u00fcn` is t-ün.
    let quoted = Span::new(r#"t-\"q"#, "s1", "").line();
    let unicode = Span::new(r"t-\u00fcn", "s2", "").line();
    // A line skipped as unreadable holds no span: its text names a trace it is not.
    let broken = r#"{"trace_id":"t-ghost","span_id":"s3","start_time":"never"}"#.to_string();
    let file = write(tmp.path(), "ids.jsonl", &[quoted, unicode, broken]);
    let f = file.to_str().unwrap();
    let every = json(&halo(
        tmp.path(),
        &["count", f, "--regex", ".", "--json", "-q"],
    ));
    assert_eq!(every["total"], 2);
    let g = json(&halo(tmp.path(), &["grep", f, "ghost", "--json", "-q"]));
    assert_eq!(g["matching_lines"], 1);
    assert!(g["matches"][0]["trace_id"].is_null(), "{g}");
    let g = json(&halo(tmp.path(), &["grep", f, "s2", "--json", "-q"]));
    assert_eq!(g["matches"][0]["trace_id"], "t-ün");
    let g = json(&halo(tmp.path(), &["grep", f, "s1", "--json", "-q"]));
    assert_eq!(g["matches"][0]["trace_id"], "t-\"q");
}

#[test]
fn a_byte_order_mark_is_not_part_of_the_first_span_s_text() {
    let tmp = tempfile::tempdir().unwrap();
    let first = Span::new("bom", "b1", "").attrs(r#"{"k":"v"}"#).line();
    let second = Span::new("bom", "b2", "b1").line();
    let file = tmp.path().join("bom.jsonl");
    std::fs::write(&file, format!("\u{feff}{first}\n{second}\n")).unwrap();
    let f = file.to_str().unwrap();
    // Both spans' texts start at their brace and end at their last one.
    let count = json(&halo(
        tmp.path(),
        &[
            "count",
            f,
            "--regex",
            r#"^\{"trace_id":"bom","span_id":"b1""#,
            "--json",
            "-q",
        ],
    ));
    assert_eq!(count["total"], 1, "{count}");
    let ends = json(&halo(
        tmp.path(),
        &["search", f, "bom", r"\}$", "--json", "-q"],
    ));
    assert_eq!(ends["total_matches"], 2, "{ends}");
    let starts = json(&halo(
        tmp.path(),
        &["search", f, "bom", "\u{feff}", "--json", "-q"],
    ));
    assert_eq!(starts["total_matches"], 0, "{starts}");
}

/// The small dataset gzipped (the plain file removed) and indexed: its directory, the
/// `.gz` and the index directory.
fn indexed_small_gzip() -> (tempfile::TempDir, std::path::PathBuf, std::path::PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let plain = small_dataset(tmp.path());
    let gz = tmp.path().join("small.jsonl.gz");
    let mut enc = flate2::write::GzEncoder::new(
        std::fs::File::create(&gz).unwrap(),
        flate2::Compression::default(),
    );
    enc.write_all(&std::fs::read(&plain).unwrap()).unwrap();
    enc.finish().unwrap();
    std::fs::remove_file(&plain).unwrap();
    let built = json(&halo(
        tmp.path(),
        &["index", gz.to_str().unwrap(), "--json"],
    ));
    let index_dir = std::path::PathBuf::from(built["files"][0]["index_dir"].as_str().unwrap());
    (tmp, gz, index_dir)
}

#[test]
fn gzip_is_streamed_at_index_time_and_viewable_after() {
    let (tmp, gz, index_dir) = indexed_small_gzip();
    let g = gz.to_str().unwrap();
    let o = json(&halo(tmp.path(), &["overview", g, "--json"]));
    assert_eq!(o["total_traces"], 3);
    let v = json(&halo(tmp.path(), &["view", g, "t2", "--json"]));
    assert_eq!(v["spans"].as_array().unwrap().len(), 3);
    let copy = index_dir.join("source.jsonl");
    assert!(
        !copy.exists(),
        "a view reads through checkpoints, no inflated copy"
    );
    let s = json(&halo(tmp.path(), &["grep", g, "Rate limit", "--json"]));
    assert_eq!(s["matches"][0]["trace_id"], "t3");
    assert!(copy.exists(), "a dataset-wide scan makes the inflated copy");
    let again = json(&halo(tmp.path(), &["index", g, "--json"]));
    assert_eq!(again["files"][0]["action"], "reused");
    assert_eq!(again["files"][0]["gzip"], true);
}

#[test]
fn gzip_scans_work_when_no_copy_can_be_kept_beside_the_index() {
    let (tmp, gz, index_dir) = indexed_small_gzip();
    let g = gz.to_str().unwrap();
    // Something in the way of the copy, as a read-only or full index directory would be
    // (tests may run as root, which ignores permissions).
    std::fs::create_dir_all(index_dir.join("source.jsonl").join("in-the-way")).unwrap();
    let scratch = tmp.path().join("scratch");
    std::fs::create_dir(&scratch).unwrap();
    let grep = std::process::Command::new(env!("CARGO_BIN_EXE_halo"))
        .args(["grep", g, "Rate limit", "--json"])
        .env("TMPDIR", &scratch)
        .current_dir(tmp.path())
        .output()
        .unwrap();
    let found = json(&grep);
    assert_eq!(found["matches"][0]["trace_id"], "t3");
    let warned = stderr(&grep);
    assert!(
        warned.contains("cannot keep an inflated copy of")
            && warned.contains(&format!(
                "scanning a temporary one in {}",
                scratch.display()
            )),
        "{warned}"
    );
    let left: Vec<_> = std::fs::read_dir(&scratch).unwrap().flatten().collect();
    assert!(left.is_empty(), "the temporary copy is gone: {left:?}");
}

#[test]
fn directories_and_traces_spread_over_files() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("runs");
    std::fs::create_dir_all(dir.join("nested")).unwrap();
    write(&dir, "part-1.jsonl", &[Span::new("t1", "root", "").line()]);
    write(
        &dir.join("nested"),
        "part-2.jsonl",
        &[Span::new("t1", "child", "root").error("boom").line()],
    );
    std::fs::write(dir.join("notes.txt"), "not traces").unwrap();
    let o = json(&halo(
        tmp.path(),
        &["overview", dir.to_str().unwrap(), "--json"],
    ));
    assert_eq!(o["file_count"], 2);
    assert_eq!(o["total_traces"], 1, "one trace across two files");
    assert_eq!(o["total_spans"], 2);
    assert_eq!(o["error_trace_count"], 1);
    assert_eq!(o["missing_parent_span_count"], 0);
    let v = json(&halo(
        tmp.path(),
        &["view", dir.to_str().unwrap(), "t1", "--json"],
    ));
    assert_eq!(v["spans"].as_array().unwrap().len(), 2);
}

#[test]
fn index_dir_keeps_sources_untouched() {
    let tmp = tempfile::tempdir().unwrap();
    let file = small_dataset(tmp.path());
    let out = json(&halo(
        tmp.path(),
        &[
            "index",
            file.to_str().unwrap(),
            "--index-dir",
            "elsewhere",
            "--json",
        ],
    ));
    assert_eq!(out["files"][0]["action"], "built");
    // A relative --index-dir is reported absolute, as the file's path is.
    let elsewhere = std::fs::canonicalize(tmp.path()).unwrap().join("elsewhere");
    let index_dir = out["files"][0]["index_dir"].as_str().unwrap();
    assert!(
        std::path::Path::new(index_dir).starts_with(&elsewhere)
            || std::path::Path::new(index_dir).starts_with(tmp.path().join("elsewhere")),
        "{index_dir}"
    );
    assert!(!tmp.path().join("small.jsonl.halo-index").exists());
    let rebuilt = json(&halo(
        tmp.path(),
        &[
            "index",
            file.to_str().unwrap(),
            "--index-dir",
            "elsewhere",
            "--rebuild",
            "--json",
        ],
    ));
    assert_eq!(rebuilt["files"][0]["action"], "rebuilt");
}

#[test]
fn view_shows_resource_attributes_beside_the_span_s_own() {
    let tmp = tempfile::tempdir().unwrap();
    let line = r#"{"resourceSpans":[{"resource":{"attributes":[{"key":"service.name","value":{"stringValue":"svc"}},{"key":"deployment.environment","value":{"stringValue":"prod"}},{"key":"telemetry.sdk.language","value":{"stringValue":"python"}}]},"scopeSpans":[{"spans":[{"traceId":"cccc0000cccc0000cccc0000cccc0000","spanId":"4444444444444444","name":"s","startTimeUnixNano":"1","endTimeUnixNano":"2"},{"traceId":"cccc0000cccc0000cccc0000cccc0000","spanId":"4444444444444445","parentSpanId":"4444444444444444","name":"t","startTimeUnixNano":"1","endTimeUnixNano":"2"}]}]}]}"#;
    let file = write(tmp.path(), "res.jsonl", &[line.to_string()]);
    let v = json(&halo(
        tmp.path(),
        &[
            "view",
            file.to_str().unwrap(),
            "cccc0000cccc0000cccc0000cccc0000",
            "--json",
        ],
    ));
    let span = &v["spans"][0];
    assert_eq!(span["resource"]["deployment.environment"], "prod");
    assert_eq!(span["resource"]["telemetry.sdk.language"], "python");
    assert!(span["resource"].get("service.name").is_none());
    assert_eq!(span["service_name"], "svc");
    assert!(span.get("scope").is_none(), "no scope given");
    assert!(
        v["spans"][1].get("resource").is_none(),
        "the same resource is not repeated: {}",
        v["spans"][1]
    );
}

#[test]
fn logs_and_metrics_lines_beside_the_spans_are_one_problem_that_loses_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let lines = vec![
        r#"{"resourceLogs":[{"scopeLogs":[{"logRecords":[{"body":{"stringValue":"hi"}}]}]}]}"#
            .to_string(),
        otlp_line(
            "dddd0000dddd0000dddd0000dddd0000",
            &[("5555555555555555", "", 1, "[]")],
        ),
        r#"{"resourceMetrics":[]}"#.to_string(),
    ];
    let file = write(tmp.path(), "collector.jsonl", &lines);
    let f = file.to_str().unwrap();
    let o = json(&halo(tmp.path(), &["overview", f, "--json", "--strict"]));
    assert_eq!(o["total_traces"], 1);
    assert_eq!(o["skipped_lines"], 0);
    assert_eq!(o["problem_count"], 1);
    assert_eq!(o["problems"][0]["kind"], "other_signals");
    assert_eq!(o["problems"][0]["line"], 1);
    let message = o["problems"][0]["message"].as_str().unwrap();
    assert!(
        message.starts_with("2 lines are OTLP logs or metrics"),
        "{message}"
    );
}

/// Without a home directory, indexes of read-only directories go to a cache of the user's
/// own in the temporary directory, never to one name every user shares.
#[cfg(unix)]
#[test]
fn without_a_home_the_cache_is_the_users_own() {
    use std::os::unix::fs::PermissionsExt;
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("ro");
    std::fs::create_dir(&data).unwrap();
    let file = write(&data, "t.jsonl", &[Span::new("t1", "a", "").line()]);
    // `halo index` of a file in a read-only directory, with no home and `temp` as TMPDIR:
    // where its index went.
    let index_dir_with_temp = |temp: &std::path::Path| {
        std::fs::set_permissions(&data, std::fs::Permissions::from_mode(0o555)).unwrap();
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_halo"))
            .args(["index", file.to_str().unwrap(), "--json", "-q"])
            .env_remove("HALO_CACHE_DIR")
            .env_remove("XDG_CACHE_HOME")
            .env_remove("HOME")
            .env("TMPDIR", temp)
            .output()
            .unwrap();
        std::fs::set_permissions(&data, std::fs::Permissions::from_mode(0o755)).unwrap();
        assert!(out.status.success(), "{}", stderr(&out));
        json(&out)["files"][0]["index_dir"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    // SAFETY: getuid takes no arguments and cannot fail.
    let uid = unsafe { libc::getuid() };

    let temp = tmp.path().join("temp");
    std::fs::create_dir(&temp).unwrap();
    let own = temp.join(format!("halo-cache-{uid}"));
    let dir = index_dir_with_temp(&temp);
    assert!(dir.starts_with(&format!("{}/", own.display())), "{dir}");
    assert_eq!(
        std::fs::metadata(&own).unwrap().permissions().mode() & 0o777,
        0o700,
        "private"
    );

    // A directory of that name that others may enter (made in advance, say) is not used.
    let temp2 = tmp.path().join("temp2");
    std::fs::create_dir(&temp2).unwrap();
    let planted = temp2.join(format!("halo-cache-{uid}"));
    std::fs::create_dir(&planted).unwrap();
    std::fs::set_permissions(&planted, std::fs::Permissions::from_mode(0o777)).unwrap();
    let dir = index_dir_with_temp(&temp2);
    assert!(
        !dir.starts_with(&format!("{}/", planted.display())),
        "{dir}"
    );
    assert!(
        std::fs::read_dir(&planted).unwrap().next().is_none(),
        "nothing written there"
    );
    // The next run finds the same directory, and the index in it.
    assert_eq!(index_dir_with_temp(&temp2), dir);
    assert_eq!(
        std::fs::read_dir(&temp2).unwrap().count(),
        2,
        "no new directory"
    );
}

#[test]
fn a_home_where_no_cache_can_be_made_falls_back_to_the_temporary_directory() {
    use std::os::unix::fs::PermissionsExt;
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("ro");
    std::fs::create_dir(&data).unwrap();
    let file = write(&data, "t.jsonl", &[Span::new("t1", "a", "").line()]);
    // A home that is a file: no `.cache` can be made under it, even by root (as with
    // `nobody`'s `/nonexistent` for other users).
    let home = write(tmp.path(), "home", &[]);
    let temp = tmp.path().join("temp");
    std::fs::create_dir(&temp).unwrap();
    std::fs::set_permissions(&data, std::fs::Permissions::from_mode(0o555)).unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_halo"))
        .args(["index", file.to_str().unwrap(), "--json", "-q"])
        .env_remove("HALO_CACHE_DIR")
        .env("XDG_CACHE_HOME", home.join("cache"))
        .env("HOME", &home)
        .env("TMPDIR", &temp)
        .output()
        .unwrap();
    std::fs::set_permissions(&data, std::fs::Permissions::from_mode(0o755)).unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let dir = json(&out)["files"][0]["index_dir"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(dir.starts_with(&format!("{}/", temp.display())), "{dir}");
}

/// OTLP ids are case-insensitive hex: a root exported in upper case, a child in base64
/// and one in the reference format are one trace, viewable by either spelling.
#[test]
fn otlp_ids_in_upper_case_or_base64_name_one_trace() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("mixed");
    std::fs::create_dir_all(&dir).unwrap();
    write(
        &dir,
        "a.otlp.jsonl",
        &[otlp_line(
            "C0FFEE00C0FFEE00C0FFEE00C0FFEE00",
            &[("AAAA0000AAAA0000", "", 1, "[]")],
        )],
    );
    // The same ids in base64, as protobuf's JSON mapping writes bytes.
    write(
        &dir,
        "b.otlp.jsonl",
        &[otlp_line(
            "wP/uAMD/7gDA/+4AwP/uAA==",
            &[("u7u7u7u7u7s=", "qqoAAKqqAAA=", 1, "[]")],
        )],
    );
    write(
        &dir,
        "c.jsonl",
        &[Span::new(
            "c0ffee00c0ffee00c0ffee00c0ffee00",
            "cccc",
            "aaaa0000aaaa0000",
        )
        .line()],
    );
    // The reference format in upper case too.
    write(
        &dir,
        "d.jsonl",
        &[Span::new(
            "C0FFEE00C0FFEE00C0FFEE00C0FFEE00",
            "DDDD",
            "AAAA0000AAAA0000",
        )
        .line()],
    );
    let o = json(&halo(
        tmp.path(),
        &["overview", dir.to_str().unwrap(), "--json"],
    ));
    assert_eq!(o["total_traces"], 1, "{o}");
    assert_eq!(o["total_spans"], 4);
    assert_eq!(o["missing_parent_span_count"], 0);
    // A span named in upper case is found.
    let d = dir.to_str().unwrap();
    let upper = "C0FFEE00C0FFEE00C0FFEE00C0FFEE00";
    let v = json(&halo(
        tmp.path(),
        &["view", d, upper, "--span", "AAAA0000AAAA0000", "--json"],
    ));
    assert_eq!(v["spans"][0]["span_id"], "aaaa0000aaaa0000", "{v}");
    let found = json(&halo(
        tmp.path(),
        &["search", d, upper, "span", "--span", "DDDD", "--json"],
    ));
    assert!(found["total_matches"].as_u64().unwrap() > 0, "{found}");
    for id in [
        "c0ffee00c0ffee00c0ffee00c0ffee00",
        "C0FFEE00C0FFEE00C0FFEE00C0FFEE00",
    ] {
        let v = json(&halo(
            tmp.path(),
            &["view", dir.to_str().unwrap(), id, "--json"],
        ));
        assert_eq!(v["spans"].as_array().unwrap().len(), 4, "{id}");
    }
}

/// A file is gzip when its bytes say so, whether it was named or found in a directory,
/// and an index that read it the other way is rebuilt.
#[test]
fn gzip_is_told_by_its_bytes_however_the_file_is_reached() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("data");
    std::fs::create_dir_all(&dir).unwrap();
    let plain = small_dataset(&dir);
    let spans = std::fs::read(&plain).unwrap();
    let gz_inside = dir.join("compressed.jsonl");
    let mut enc = flate2::write::GzEncoder::new(
        std::fs::File::create(&gz_inside).unwrap(),
        flate2::Compression::default(),
    );
    enc.write_all(&spans).unwrap();
    enc.finish().unwrap();
    let plain_inside = dir.join("plain.jsonl.gz");
    std::fs::rename(&plain, &plain_inside).unwrap();

    let walked = json(&halo(
        tmp.path(),
        &["index", dir.to_str().unwrap(), "--json"],
    ));
    let named = json(&halo(
        tmp.path(),
        &[
            "index",
            gz_inside.to_str().unwrap(),
            plain_inside.to_str().unwrap(),
            "--json",
        ],
    ));
    for o in [&walked, &named] {
        assert_eq!(o["skipped_lines"], 0, "{o}");
        let files = o["files"].as_array().unwrap();
        assert_eq!(files.len(), 2);
        assert!(
            files.iter().all(|f| f["spans"].as_u64().unwrap() > 0),
            "{o}"
        );
    }
    assert!(
        named["files"]
            .as_array()
            .unwrap()
            .iter()
            .all(|f| f["action"] == "reused"),
        "{named}"
    );

    // An index an older halo built reading the gzip file as text.
    let index_dir = walked["files"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["path"].as_str().unwrap().ends_with("compressed.jsonl"))
        .unwrap()["index_dir"]
        .as_str()
        .unwrap()
        .to_string();
    let meta_path = std::path::Path::new(&index_dir).join("meta.json");
    let meta = std::fs::read_to_string(&meta_path).unwrap();
    assert!(meta.contains(r#""source_kind": "Gzip""#), "{meta}");
    std::fs::write(
        &meta_path,
        meta.replace(r#""source_kind": "Gzip""#, r#""source_kind": "Plain""#),
    )
    .unwrap();
    let again = json(&halo(
        tmp.path(),
        &["index", gz_inside.to_str().unwrap(), "--json"],
    ));
    assert_eq!(again["files"][0]["action"], "rebuilt", "{again}");
    assert!(
        again["files"][0]["reason"]
            .as_str()
            .unwrap()
            .contains("read as plain text and is gzip"),
        "{again}"
    );
}
