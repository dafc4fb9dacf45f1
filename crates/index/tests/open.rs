//! Opening datasets: formats, merging, reuse, append, rebuild and bad input.

use std::io::Write;
use std::path::{Path, PathBuf};

use halo_index::{Dataset, IndexAction, IndexError, NoProgress, OpenOptions};

fn fixtures() -> Option<PathBuf> {
    let dir = halo_testkit::workspace_path("../shared/data/halo-fixtures");
    if dir.is_dir() {
        Some(dir)
    } else {
        eprintln!("skipped: ../shared/data/halo-fixtures is absent (it exists only beside the project's workspace)");
        None
    }
}

fn span(trace: &str, span: &str, parent: &str, status: &str, attrs: &str) -> String {
    format!(
        r#"{{"trace_id":"{trace}","span_id":"{span}","parent_span_id":"{parent}","trace_state":"","name":"n-{span}","kind":"SPAN_KIND_INTERNAL","start_time":"2026-04-23T05:32:00.000000000Z","end_time":"2026-04-23T05:32:01.000000000Z","status":{{"code":"{status}","message":""}},"resource":{{"attributes":{{"service.name":"svc"}}}},"scope":{{"name":"s","version":"1"}},"attributes":{attrs}}}"#
    )
}

fn open(paths: &[PathBuf], index_dir: &Path) -> Result<Dataset, IndexError> {
    let options = OpenOptions {
        index_dir: Some(index_dir.to_path_buf()),
        ..Default::default()
    };
    Dataset::open(paths, &options, &NoProgress)
}

#[test]
fn reference_fixtures_index_like_the_reference() {
    let Some(dir) = fixtures() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let ds = open(&[dir.join("tiny_traces.jsonl")], tmp.path()).unwrap();
    assert_eq!(ds.traces().len(), 3);
    assert_eq!(ds.span_count(), 6);
    let b = ds.trace("t-bbbb").unwrap();
    assert!(b.has_errors());
    assert_eq!(b.error_span_count, 2);
    assert_eq!(
        b.input_tokens, 200,
        "tokens from one dialect, not inference.* plus llm.*"
    );
    assert_eq!(b.cost, Some(0.004));
    assert_eq!(b.root_span_name, "root");
    assert_eq!(&*b.models[0], "gpt-5.4");
    let real = open(&[dir.join("realistic_traces.jsonl")], tmp.path()).unwrap();
    assert_eq!(real.traces().len(), 3);
    assert_eq!(real.span_count(), 58);
    let t = real.trace("a9746d1452534d89af85ad99c6493473").unwrap();
    assert_eq!(t.tool_error_span_count, 1);
    assert_eq!(t.root_span_name, "custom.task");
    assert!(t
        .tools
        .iter()
        .any(|u| &*u.name == "list_files" && u.errors == 1));
}

#[test]
fn a_trace_spread_over_files_is_one_trace() {
    let tmp = tempfile::tempdir().unwrap();
    let a = tmp.path().join("a.jsonl");
    let b = tmp.path().join("b.jsonl");
    std::fs::write(&a, span("t1", "s1", "", "STATUS_CODE_OK", "{}") + "\n").unwrap();
    std::fs::write(&b, span("t1", "s2", "s1", "STATUS_CODE_ERROR", "{}") + "\n").unwrap();
    let ds = open(&[a, b], &tmp.path().join("idx")).unwrap();
    assert_eq!(ds.traces().len(), 1);
    let t = &ds.traces()[0];
    assert_eq!(t.span_count, 2);
    assert_eq!(t.missing_parent_count, 0, "the parent is in the other file");
    assert!(t.has_errors());
    assert_eq!(t.parts.len(), 2);
    assert_eq!(ds.problem_count(), 0, "{:?}", ds.problems());
}

#[test]
fn an_agent_span_carrying_its_calls_usage_is_not_counted_twice() {
    let tmp = tempfile::tempdir().unwrap();
    let agent = |trace: &str| {
        span(
            trace,
            "a",
            "",
            "STATUS_CODE_OK",
            r#"{"gen_ai.operation.name":"invoke_agent","gen_ai.usage.input_tokens":300,"gen_ai.usage.output_tokens":30}"#,
        )
    };
    let chat = |trace: &str, id: &str, input: u32| {
        span(
            trace,
            id,
            "a",
            "STATUS_CODE_OK",
            &format!(
                r#"{{"gen_ai.operation.name":"chat","gen_ai.usage.input_tokens":{input},"gen_ai.usage.output_tokens":{}}}"#,
                input / 10
            ),
        )
    };
    let one = tmp.path().join("one.jsonl");
    let lines = [
        agent("t1"),
        chat("t1", "c1", 100),
        chat("t1", "c2", 200),
        // A trace whose only usage is on its agent span reports that, also when its
        // calls report zeros (streamed without usage).
        agent("t2"),
        span("t2", "x", "a", "STATUS_CODE_OK", "{}"),
        chat("t2", "c0", 0),
    ];
    std::fs::write(&one, lines.join("\n") + "\n").unwrap();
    // The agent span, which ends last, rotated into the next file.
    let (early, late) = (
        tmp.path().join("early.jsonl"),
        tmp.path().join("late.jsonl"),
    );
    // t4 the other way round: the agent span first.
    std::fs::write(
        &early,
        [chat("t3", "c1", 100), chat("t3", "c2", 200), agent("t4")].join("\n") + "\n",
    )
    .unwrap();
    std::fs::write(
        &late,
        [agent("t3"), chat("t4", "c1", 100), chat("t4", "c2", 200)].join("\n") + "\n",
    )
    .unwrap();
    let ds = open(&[one, early, late], &tmp.path().join("idx")).unwrap();
    let tokens = |id: &str| {
        let t = ds.trace(id).unwrap();
        (t.input_tokens, t.output_tokens, t.total_tokens)
    };
    assert_eq!(tokens("t1"), (300, 30, 330));
    assert_eq!(tokens("t2"), (300, 30, 330));
    assert_eq!(tokens("t3"), (300, 30, 330), "parts merge by the same rule");
    assert_eq!(tokens("t4"), (300, 30, 330), "in either order");
    // And the same once the index is read back from disk.
    drop(ds);
    let again = open(
        &[
            tmp.path().join("one.jsonl"),
            tmp.path().join("early.jsonl"),
            tmp.path().join("late.jsonl"),
        ],
        &tmp.path().join("idx"),
    )
    .unwrap();
    assert_eq!(again.trace("t1").unwrap().total_tokens, 330);
    assert_eq!(again.trace("t3").unwrap().total_tokens, 330);
}

#[test]
fn a_trace_counts_the_spans_its_cost_covers_across_files() {
    let tmp = tempfile::tempdir().unwrap();
    let priced = r#"{"openinference.span.kind":"LLM","llm.cost.total":0.25}"#;
    let unpriced = r#"{"openinference.span.kind":"LLM"}"#;
    let (a, b) = (tmp.path().join("a.jsonl"), tmp.path().join("b.jsonl"));
    std::fs::write(
        &a,
        span("t1", "s1", "", "STATUS_CODE_OK", priced)
            + "\n"
            + &span("t1", "s2", "s1", "STATUS_CODE_OK", unpriced)
            + "\n",
    )
    .unwrap();
    std::fs::write(&b, span("t1", "s3", "s1", "STATUS_CODE_OK", priced) + "\n").unwrap();
    let ds = open(&[a, b], &tmp.path().join("idx")).unwrap();
    let t = ds.trace("t1").unwrap();
    assert_eq!(t.cost, Some(0.5));
    assert_eq!(t.priced_span_count, 2);
    assert_eq!(t.llm_call_count, 3);
}

#[test]
fn a_trace_repeated_across_many_files_is_one_short_warning() {
    let tmp = tempfile::tempdir().unwrap();
    let line = span("t1", "s1", "", "STATUS_CODE_OK", "{}") + "\n";
    let paths: Vec<PathBuf> = (0..8)
        .map(|k| {
            let p = tmp.path().join(format!("part-{k}.jsonl"));
            std::fs::write(&p, &line).unwrap();
            p
        })
        .collect();
    let ds = open(&paths, &tmp.path().join("idx")).unwrap();
    let warning = &ds.problems()[0].message;
    assert!(warning.contains("across 8 files"), "{warning}");
    assert!(warning.contains("and 5 more"), "{warning}");
    assert_eq!(warning.matches("part-").count(), 3, "{warning}");
}

#[test]
fn spans_given_twice_in_two_files_are_counted_and_warned_about() {
    let tmp = tempfile::tempdir().unwrap();
    let lines = span("t1", "s1", "", "STATUS_CODE_OK", "{}")
        + "\n"
        + &span("t1", "s2", "s1", "STATUS_CODE_OK", "{}")
        + "\n";
    let a = tmp.path().join("a.jsonl");
    let b = tmp.path().join("b.jsonl");
    std::fs::write(&a, &lines).unwrap();
    std::fs::write(&b, &lines).unwrap();
    let ds = open(&[a, b], &tmp.path().join("idx")).unwrap();
    assert_eq!(ds.traces()[0].duplicate_span_count, 2);
    assert_eq!(ds.problem_count(), 1);
    let warning = &ds.problems()[0].message;
    assert!(warning.contains("repeat across"), "{warning}");
    assert!(
        warning.contains("a.jsonl") && warning.contains("b.jsonl"),
        "{warning}"
    );
    assert_eq!(
        ds.problems()[0].kind,
        halo_index::ProblemKind::DuplicateSpanIds
    );

    // The same spans appended to one file again are named as such, not as two files.
    let c = tmp.path().join("c.jsonl");
    std::fs::write(&c, &lines).unwrap();
    open(std::slice::from_ref(&c), &tmp.path().join("idx")).unwrap();
    std::fs::write(&c, lines.repeat(2)).unwrap();
    let ds = open(std::slice::from_ref(&c), &tmp.path().join("idx")).unwrap();
    let warning = &ds.problems()[0].message;
    assert!(
        warning.contains("c.jsonl, between data indexed at different times"),
        "{warning}"
    );
}

/// Writers that write a record and its newline separately: the late newline ends the
/// line indexed without it, and line numbers stay those of the file.
#[test]
fn a_newline_written_after_its_line_starts_no_line() {
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("late.jsonl");
    let idx = tmp.path().join("idx");
    let line = |i: usize| span("t1", &format!("s{i}"), "", "STATUS_CODE_OK", "{}");
    let mut f = std::fs::File::create(&file).unwrap();
    write!(f, "{}\n{}", line(1), line(2)).unwrap();
    let ds = open(std::slice::from_ref(&file), &idx).unwrap();
    assert_eq!((ds.reports()[0].lines, ds.span_count()), (2, 2));
    for crlf in [false, true] {
        write!(f, "{}", if crlf { "\r\n" } else { "\n" }).unwrap();
        let ds = open(std::slice::from_ref(&file), &idx).unwrap();
        assert_eq!(ds.reports()[0].lines, if crlf { 3 } else { 2 });
        if !crlf {
            write!(f, "{}", line(3)).unwrap();
            let ds = open(std::slice::from_ref(&file), &idx).unwrap();
            assert_eq!((ds.reports()[0].lines, ds.span_count()), (3, 3));
        }
    }
    writeln!(f, "{}", line(4)).unwrap();
    let ds = open(std::slice::from_ref(&file), &idx).unwrap();
    assert!(
        matches!(ds.reports()[0].action, IndexAction::Appended { .. }),
        "{:?}",
        ds.reports()[0].action
    );
    assert_eq!((ds.reports()[0].lines, ds.span_count()), (4, 4));
    // Line numbers are the file's: span sN is on line N.
    let mut lines = Vec::new();
    for seg in 0..ds.segment_count() {
        let table = ds.span_table(seg).unwrap();
        for batch in table.batches() {
            let c = halo_index::SpanColumns::new(batch).unwrap();
            for i in 0..c.len() {
                lines.push((c.span_id.value(i).to_string(), c.line.value(i)));
            }
        }
    }
    lines.sort();
    assert_eq!(
        lines,
        [("s1", 1), ("s2", 2), ("s3", 3), ("s4", 4)].map(|(s, l)| (s.to_string(), l))
    );
    drop(f);

    // Bytes that continue the line indexed without its newline change that line: it is
    // read again (a rebuild), not taken for a new one.
    std::fs::write(&file, line(1)).unwrap();
    let ds = open(std::slice::from_ref(&file), &idx).unwrap();
    assert_eq!(ds.span_count(), 1);
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(&file)
        .unwrap();
    writeln!(f, " ").unwrap();
    let ds = open(std::slice::from_ref(&file), &idx).unwrap();
    assert!(
        matches!(ds.reports()[0].action, IndexAction::Rebuilt { .. }),
        "{:?}",
        ds.reports()[0].action
    );
    assert_eq!((ds.reports()[0].lines, ds.span_count()), (1, 1));
}

/// An `--index-dir` inside the dataset's directory: halo's own files there (the inflated
/// copy of a `.gz` is a `.jsonl`) are never read back as data.
#[test]
fn an_index_dir_inside_the_dataset_is_not_data() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    std::fs::create_dir(&data).unwrap();
    let (gz, _) = gzipped_spans(&data, 50, 5);
    std::fs::write(
        data.join("plain.jsonl"),
        span("p1", "s1", "", "STATUS_CODE_OK", "{}") + "\n",
    )
    .unwrap();
    let idx = data.join("cache");
    let ds = open(std::slice::from_ref(&data), &idx).unwrap();
    ds.make_inflated_copies(&NoProgress).unwrap();
    let copy_dir = ds
        .reports()
        .iter()
        .find(|r| r.path == gz)
        .unwrap()
        .index_dir
        .clone();
    assert!(copy_dir.join("source.jsonl").is_file());
    assert!(
        halo_ingest::is_index_dir(&copy_dir),
        "the marker names a real index file"
    );
    drop(ds);
    let again = open(std::slice::from_ref(&data), &idx).unwrap();
    assert_eq!(again.reports().len(), 2, "{:?}", again.reports());
    assert_eq!(again.span_count(), 51);
}

#[test]
fn a_trace_table_of_several_batches_loads_back_whole_and_in_order() {
    // More traces than one batch of the trace table holds (4,096), so the table is written
    // and read back in parts; the last trace has an error, the rest do not.
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("many.jsonl");
    let n = 9_000;
    let mut text = String::new();
    for t in 0..n {
        let status = if t == n - 1 {
            "STATUS_CODE_ERROR"
        } else {
            "STATUS_CODE_OK"
        };
        text += &span(&format!("t{t:05}"), "s1", "", status, "{}");
        text.push('\n');
    }
    std::fs::write(&file, text).unwrap();
    let idx = tmp.path().join("idx");
    let built = open(std::slice::from_ref(&file), &idx).unwrap();
    let reopened = open(std::slice::from_ref(&file), &idx).unwrap();
    assert_eq!(reopened.reports()[0].action, IndexAction::Reused);
    for ds in [&built, &reopened] {
        let ids: Vec<&str> = ds.traces().iter().map(|t| t.trace_id.as_str()).collect();
        let expected: Vec<String> = (0..n).map(|t| format!("t{t:05}")).collect();
        assert_eq!(ids, expected);
        let with_errors: Vec<&str> = ds
            .traces()
            .iter()
            .filter(|t| t.error_span_count > 0)
            .map(|t| t.trace_id.as_str())
            .collect();
        assert_eq!(with_errors, [format!("t{:05}", n - 1)]);
    }
}

#[test]
fn rollups_kept_from_a_fresh_build_equal_those_read_back_from_the_index() {
    // The bundled example data, its lines dealt over a plain file and a gzip file so that
    // traces span both: a fresh build hands its rollups over in memory, a reopen reads
    // them from the trace tables, and the two must agree field for field.
    let example = halo_testkit::workspace_path("examples/data/agent-traces.jsonl");
    let text = std::fs::read_to_string(example).unwrap();
    let (mut even, mut odd) = (String::new(), String::new());
    for (i, line) in text.lines().enumerate() {
        let half = if i % 2 == 0 { &mut even } else { &mut odd };
        half.push_str(line);
        half.push('\n');
    }
    let tmp = tempfile::tempdir().unwrap();
    let plain = tmp.path().join("even.jsonl");
    let gz = tmp.path().join("odd.jsonl.gz");
    std::fs::write(&plain, even).unwrap();
    gzip_file(&gz, odd.as_bytes());
    let paths = [plain, gz];
    let idx = tmp.path().join("idx");
    let built = open(&paths, &idx).unwrap();
    assert!(built
        .reports()
        .iter()
        .all(|r| r.action == IndexAction::Built));
    let reopened = open(&paths, &idx).unwrap();
    assert!(reopened
        .reports()
        .iter()
        .all(|r| r.action == IndexAction::Reused));
    assert!(built.traces().len() > 100);
    assert!(built.traces().iter().any(|t| t.parts.len() == 2));
    assert_eq!(built.traces(), reopened.traces());
}

#[test]
fn reuses_appends_and_rebuilds() {
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("live.jsonl");
    let idx = tmp.path().join("idx");
    std::fs::write(&file, span("t1", "s1", "", "STATUS_CODE_OK", "{}") + "\n").unwrap();
    let first = open(std::slice::from_ref(&file), &idx).unwrap();
    assert_eq!(first.reports()[0].action, IndexAction::Built);
    let again = open(std::slice::from_ref(&file), &idx).unwrap();
    assert_eq!(again.reports()[0].action, IndexAction::Reused);

    // An append, with a half-written last line that must wait.
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(&file)
        .unwrap();
    let partial = span("t1", "s3", "s1", "STATUS_CODE_OK", "{}");
    write!(
        f,
        "{}\n{}",
        span("t1", "s2", "s1", "STATUS_CODE_ERROR", "{}"),
        &partial[..40]
    )
    .unwrap();
    drop(f);
    let appended = open(std::slice::from_ref(&file), &idx).unwrap();
    assert!(
        matches!(appended.reports()[0].action, IndexAction::Appended { .. }),
        "{:?}",
        appended.reports()[0].action
    );
    assert_eq!(appended.traces()[0].span_count, 2);
    assert!(appended
        .problems()
        .iter()
        .any(|p| p.message.contains("incomplete")));
    assert_eq!(appended.reports()[0].lines, 2);

    // The writer finishes the line.
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(&file)
        .unwrap();
    writeln!(f, "{}", &partial[40..]).unwrap();
    drop(f);
    let done = open(std::slice::from_ref(&file), &idx).unwrap();
    assert_eq!(done.traces()[0].span_count, 3);
    assert_eq!(done.reports()[0].lines, 3);
    assert!(!done
        .problems()
        .iter()
        .any(|p| p.message.contains("incomplete")));

    // A rewrite of the same size is caught by the content hashes.
    let text = std::fs::read_to_string(&file)
        .unwrap()
        .replace("STATUS_CODE_ERROR", "STATUS_CODE_OK___");
    std::fs::write(&file, text).unwrap();
    let rebuilt = open(std::slice::from_ref(&file), &idx).unwrap();
    assert!(matches!(
        rebuilt.reports()[0].action,
        IndexAction::Rebuilt { .. }
    ));
}

#[test]
fn corrupt_index_is_rebuilt() {
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("t.jsonl");
    let idx = tmp.path().join("idx");
    std::fs::write(&file, span("t1", "s1", "", "STATUS_CODE_OK", "{}") + "\n").unwrap();
    let ds = open(std::slice::from_ref(&file), &idx).unwrap();
    let dir = ds.reports()[0].index_dir.clone();
    std::fs::write(dir.join("meta.json"), "{ truncated").unwrap();
    let again = open(std::slice::from_ref(&file), &idx).unwrap();
    assert!(matches!(
        again.reports()[0].action,
        IndexAction::Rebuilt { .. }
    ));
    assert_eq!(again.traces().len(), 1);
    // A truncated span table is detected when read.
    let spans = dir.join("seg-0000.spans.arrow");
    let len = std::fs::metadata(&spans).unwrap().len();
    let f = std::fs::OpenOptions::new()
        .write(true)
        .open(&spans)
        .unwrap();
    f.set_len(len / 2).unwrap();
    let ds = open(std::slice::from_ref(&file), &idx).unwrap();
    assert!(matches!(
        ds.reports()[0].action,
        IndexAction::Rebuilt { .. }
    ));
    assert_eq!(ds.span_table(0).unwrap().num_rows(), 1);
    // Damage that keeps the size: trusted by a query's open (sizes only), found by a
    // verifying open (`halo index`), which rebuilds.
    let dir = ds.reports()[0].index_dir.clone();
    for table in ["seg-0000.spans.arrow", "seg-0000.traces.arrow"] {
        let path = dir.join(table);
        let mut bytes = std::fs::read(&path).unwrap();
        let middle = bytes.len() / 2;
        bytes[middle] ^= 0x55;
        std::fs::write(&path, &bytes).unwrap();
        let quick = open(std::slice::from_ref(&file), &idx).unwrap();
        assert!(matches!(quick.reports()[0].action, IndexAction::Reused));
        let options = OpenOptions {
            index_dir: Some(idx.clone()),
            verify: true,
            ..Default::default()
        };
        let checked = Dataset::open(std::slice::from_ref(&file), &options, &NoProgress).unwrap();
        match &checked.reports()[0].action {
            IndexAction::Rebuilt { reason } => assert!(reason.contains(table), "{reason}"),
            other => panic!("{table}: {other:?}"),
        }
        assert_eq!(checked.span_table(0).unwrap().num_rows(), 1);
    }
}

/// Damages the footer of the Arrow file at `path` in place, keeping its size: opening
/// (which checks sizes) trusts it, reading it fails.
fn damage_footer(path: &Path) {
    let mut bytes = std::fs::read(path).unwrap();
    let end = bytes.len() - 10;
    bytes[end - 64..end].fill(0xff);
    std::fs::write(path, bytes).unwrap();
}

/// A table that opens but will not read: the trace table is read at open, which rebuilds
/// its index at once; the span table is read on first use, which fails once, saying to run
/// the command again, and marks the index so that the next open rebuilds it.
#[test]
fn a_table_damaged_within_is_rebuilt_at_once_or_on_the_next_open() {
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("t.jsonl");
    let idx = tmp.path().join("idx");
    std::fs::write(&file, span("t1", "s1", "", "STATUS_CODE_OK", "{}") + "\n").unwrap();
    let dir = open(std::slice::from_ref(&file), &idx).unwrap().reports()[0]
        .index_dir
        .clone();
    let damage_table = |table: &str| damage_footer(&dir.join(table));
    let rebuilt = |ds: &Dataset, table: &str| match &ds.reports()[0].action {
        IndexAction::Rebuilt { reason } => {
            assert!(reason.contains(&format!("{table} is damaged")), "{reason}")
        }
        other => panic!("{table}: {other:?}"),
    };

    damage_table("seg-0000.traces.arrow");
    let ds = open(std::slice::from_ref(&file), &idx).unwrap();
    rebuilt(&ds, "seg-0000.traces.arrow");
    assert_eq!(ds.traces().len(), 1);
    drop(ds);

    damage_table("seg-0000.spans.arrow");
    let ds = open(std::slice::from_ref(&file), &idx).unwrap();
    assert_eq!(ds.reports()[0].action, IndexAction::Reused);
    let err = ds.span_table(0).unwrap_err();
    assert!(matches!(err, IndexError::Damaged { .. }), "{err}");
    assert!(err.to_string().contains("run the command again"), "{err}");
    // The failure is kept for later uses, which mark nothing again: the index there may
    // have been rebuilt meanwhile by another process.
    let marker = dir.join(halo_index::store::OUT_OF_DATE);
    std::fs::remove_file(&marker).unwrap();
    assert!(ds.span_table(0).is_err());
    assert!(!marker.exists());
    std::fs::write(&marker, "seg-0000.spans.arrow is damaged (by hand)").unwrap();
    drop(ds);
    let ds = open(std::slice::from_ref(&file), &idx).unwrap();
    rebuilt(&ds, "seg-0000.spans.arrow");
    assert_eq!(ds.span_table(0).unwrap().num_rows(), 1);
    drop(ds);

    // Two files whose trace tables are both damaged are both rebuilt by one open.
    let other = tmp.path().join("u.jsonl");
    std::fs::write(&other, span("u1", "s1", "", "STATUS_CODE_OK", "{}") + "\n").unwrap();
    let both = [file.clone(), other.clone()];
    let ds = open(&both, &idx).unwrap();
    let dirs: Vec<PathBuf> = ds.reports().iter().map(|r| r.index_dir.clone()).collect();
    drop(ds);
    for d in &dirs {
        damage_footer(&d.join("seg-0000.traces.arrow"));
    }
    let ds = open(&both, &idx).unwrap();
    assert_eq!(ds.traces().len(), 2);
    // (The first was rebuilt by an earlier pass of that open, and reused by its last.)
    assert!(
        matches!(ds.reports()[1].action, IndexAction::Rebuilt { .. }),
        "{:?}",
        ds.reports()[1].action
    );
    for d in &dirs {
        assert!(!d.join(halo_index::store::OUT_OF_DATE).exists());
    }
}

/// Arrow's reader panics on some damaged files (a type of an unsupported width in the
/// schema, a buffer longer than its block); every byte of a table's footer and last batch,
/// damaged in turn, gives an index that is rebuilt or read, never a panic.
#[test]
fn no_damaged_byte_at_the_end_of_a_table_panics() {
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("t.jsonl");
    let idx = tmp.path().join("idx");
    let lines: String = (0..3)
        .map(|i| {
            span(
                "t1",
                &format!("s{i}"),
                "",
                "STATUS_CODE_ERROR",
                r#"{"tool.name":"x"}"#,
            ) + "\n"
        })
        .collect();
    std::fs::write(&file, lines).unwrap();
    let dir = open(std::slice::from_ref(&file), &idx).unwrap().reports()[0]
        .index_dir
        .clone();
    for table in ["seg-0000.traces.arrow", "seg-0000.spans.arrow"] {
        let path = dir.join(table);
        let good = std::fs::read(&path).unwrap();
        for at in (good.len().saturating_sub(6_000)..good.len()).step_by(3) {
            let mut bytes = good.clone();
            bytes[at] ^= 0xff;
            std::fs::write(&path, &bytes).unwrap();
            // Whatever happens, no panic; the span table is read when asked for.
            if let Ok(ds) = open(std::slice::from_ref(&file), &idx) {
                let _ = ds.span_table(0);
            }
            // Put back for the next byte (a rebuild may have written it anew).
            std::fs::write(&path, &good).unwrap();
            let _ = std::fs::remove_file(dir.join(halo_index::store::OUT_OF_DATE));
        }
        // What was put back is the index as built (builds are byte for byte the same), so
        // every byte above was damage to a sound index, not a rebuild of a stale one.
        let sound = open(std::slice::from_ref(&file), &idx).unwrap();
        assert_eq!(sound.reports()[0].action, IndexAction::Reused, "{table}");
    }
}

struct Recorder<'a>(&'a std::sync::Mutex<Vec<String>>);

impl halo_index::BuildProgress for Recorder<'_> {
    fn begin(&self, _: &Path, _: &str, total: u64) {
        self.0.lock().unwrap().push(format!("begin {total}"));
    }
    fn advance(&self, done: u64) {
        self.0.lock().unwrap().push(format!("advance {done}"));
    }
    fn end(&self) {
        self.0.lock().unwrap().push("end".into());
    }
    fn using_temporary_copy(&self, _: &Path, why: &str, dir: &Path) {
        self.0
            .lock()
            .unwrap()
            .push(format!("temporary in {} because {why}", dir.display()));
    }
}

fn gzip_file(path: &Path, data: &[u8]) {
    let mut enc = flate2::write::GzEncoder::new(
        std::fs::File::create(path).unwrap(),
        flate2::Compression::default(),
    );
    enc.write_all(data).unwrap();
    enc.finish().unwrap();
}

/// `spans` OK spans spread over `traces` traces, written gzipped to `dir/t.jsonl.gz`.
fn gzipped_spans(dir: &Path, spans: usize, traces: usize) -> (PathBuf, String) {
    let data: String = (0..spans)
        .map(|i| {
            let trace = format!("t{}", i % traces);
            span(&trace, &format!("s{i}"), "", "STATUS_CODE_OK", "{}") + "\n"
        })
        .collect();
    let gz = dir.join("t.jsonl.gz");
    gzip_file(&gz, data.as_bytes());
    (gz, data)
}

#[test]
fn gzip_is_indexed_without_a_copy_until_random_access_needs_one() {
    let tmp = tempfile::tempdir().unwrap();
    let (gz, data) = gzipped_spans(tmp.path(), 400, 40);
    let idx = tmp.path().join("idx");
    let ds = open(std::slice::from_ref(&gz), &idx).unwrap();
    assert_eq!(ds.traces().len(), 40);
    let dir = ds.reports()[0].index_dir.clone();
    let copy = dir.join("source.jsonl");
    assert!(dir.join("gzip.checkpoints").is_file());
    assert!(!copy.exists(), "indexing writes no inflated copy");
    let some = ds.source_bytes(0, 1000..3000).unwrap().expect("in range");
    assert_eq!(&*some, &data.as_bytes()[1000..3000]);
    assert!(!copy.exists(), "reading a few spans makes no copy either");
    let len = data.len() as u64;
    assert!(ds.source_bytes(0, len - 1..len + 1).unwrap().is_none());
    assert_eq!(ds.segment_data(0).unwrap().bytes(), data.as_bytes());
    assert_eq!(std::fs::read(&copy).unwrap(), data.as_bytes());
    drop(ds);

    // Making copies up front reports progress, and only for copies that are missing.
    std::fs::remove_file(&copy).unwrap();
    let heard = std::sync::Mutex::new(Vec::new());
    let ds = open(std::slice::from_ref(&gz), &idx).unwrap();
    ds.make_inflated_copies(&Recorder(&heard)).unwrap();
    ds.make_inflated_copies(&Recorder(&heard)).unwrap();
    let heard = heard.into_inner().unwrap();
    assert_eq!(heard.first().unwrap(), &format!("begin {}", data.len()));
    assert_eq!(heard.iter().filter(|h| h.starts_with("begin")).count(), 1);
    assert_eq!(heard[heard.len() - 2], format!("advance {}", data.len()));
    assert_eq!(std::fs::read(&copy).unwrap(), data.as_bytes());
    drop(ds);

    // A damaged copy is made again; the index itself is reused.
    std::fs::write(&copy, "short").unwrap();
    let ds = open(std::slice::from_ref(&gz), &idx).unwrap();
    assert_eq!(ds.reports()[0].action, IndexAction::Reused);
    assert_eq!(ds.segment_data(0).unwrap().bytes(), data.as_bytes());
    drop(ds);

    // Without its checkpoints the index is rebuilt.
    std::fs::remove_file(dir.join("gzip.checkpoints")).unwrap();
    let ds = open(std::slice::from_ref(&gz), &idx).unwrap();
    assert!(matches!(
        ds.reports()[0].action,
        IndexAction::Rebuilt { .. }
    ));
    assert_eq!(ds.segment_data(0).unwrap().bytes(), data.as_bytes());
}

#[test]
fn a_truncated_gzip_keeps_its_good_prefix_for_views_too() {
    let tmp = tempfile::tempdir().unwrap();
    let (gz, data) = gzipped_spans(tmp.path(), 3000, 3000);
    let whole = std::fs::read(&gz).unwrap();
    std::fs::write(&gz, &whole[..whole.len() / 2]).unwrap();
    let ds = open(std::slice::from_ref(&gz), &tmp.path().join("idx")).unwrap();
    assert!(ds
        .problems()
        .iter()
        .any(|p| p.message.contains("ends early (truncated?)")));
    // A file cut short may still be being written: its last line may yet be completed.
    let cut = ds
        .problems()
        .iter()
        .find(|p| p.kind == halo_ingest::ProblemKind::IncompleteLastLine)
        .expect("the half ends mid-line");
    assert!(cut.message.contains("appended later"), "{}", cut.message);
    let kept = ds.traces().len();
    assert!(kept > 100 && kept < 3000, "{kept} traces kept");
    let bytes = ds.segment_data(0).unwrap();
    assert!(data.as_bytes().starts_with(bytes.bytes()));
}

#[test]
fn a_line_cut_off_by_gzip_corruption_is_not_said_to_await_an_append() {
    let tmp = tempfile::tempdir().unwrap();
    let (gz, _) = gzipped_spans(tmp.path(), 3000, 3000);
    let whole = std::fs::read(&gz).unwrap();
    // A flipped byte past the middle whose garbage ends without a line break (a stream
    // that stops with an error, or inflates garbage to a failed CRC at its end).
    let mut found = false;
    for at in (whole.len() / 2..whole.len() - 100).step_by(97) {
        let mut bad = whole.clone();
        bad[at] ^= 0xff;
        std::fs::write(&gz, &bad).unwrap();
        let idx = tmp.path().join(format!("idx-{at}"));
        let ds = open(std::slice::from_ref(&gz), &idx).unwrap();
        let problems = ds.problems();
        let corrupt = problems.iter().any(|p| {
            p.kind == halo_ingest::ProblemKind::GzipFault && !p.message.contains("ends early")
        });
        let cut = problems
            .iter()
            .find(|p| p.kind == halo_ingest::ProblemKind::IncompleteLastLine);
        if let (true, Some(cut)) = (corrupt, cut) {
            assert!(
                cut.message.contains("cut off by the corrupt gzip stream"),
                "{}",
                cut.message
            );
            assert!(!cut.message.contains("appended later"), "{}", cut.message);
            found = true;
            break;
        }
    }
    assert!(found, "no flip left a cut-off last line");
}

#[test]
fn concurrent_copies_of_one_gzip_all_succeed_and_stale_ones_are_swept() {
    let tmp = tempfile::tempdir().unwrap();
    let (gz, data) = gzipped_spans(tmp.path(), 2000, 90);
    let idx = tmp.path().join("idx");
    let first = open(std::slice::from_ref(&gz), &idx).unwrap();
    let dir = first.reports()[0].index_dir.clone();
    // A copy a killed process left half-written, just now: whoever holds the build lock
    // knows that no one is writing it, so it need not wait for it to look abandoned.
    let stale = dir.join("source.jsonl.tmp-999999-0");
    std::fs::write(&stale, "half a copy").unwrap();
    let second = open(std::slice::from_ref(&gz), &idx).unwrap();
    let expected = data.as_bytes();
    let heard = std::sync::Mutex::new(Vec::new());
    std::thread::scope(|s| {
        for ds in [&first, &second] {
            let heard = &heard;
            s.spawn(move || {
                ds.make_inflated_copies(&Recorder(heard)).unwrap();
                assert_eq!(ds.segment_data(0).unwrap().bytes(), expected);
            });
        }
    });
    let begun = heard
        .into_inner()
        .unwrap()
        .iter()
        .filter(|h| h.starts_with("begin"))
        .count();
    assert_eq!(
        begun, 1,
        "the copy is made once; the other waits and finds it"
    );
    assert_eq!(
        std::fs::read(dir.join("source.jsonl")).unwrap(),
        data.as_bytes()
    );
    assert!(!stale.exists(), "the stale copy is swept");
    let leftovers: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().contains(".tmp-"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

#[test]
fn opening_a_new_dataset_from_several_threads_builds_it_once() {
    let tmp = tempfile::tempdir().unwrap();
    let (gz, data) = gzipped_spans(tmp.path(), 3000, 100);
    let idx = tmp.path().join("idx");
    let actions: Vec<IndexAction> = std::thread::scope(|s| {
        let opens: Vec<_> = (0..4)
            .map(|_| {
                s.spawn(|| {
                    let ds = open(std::slice::from_ref(&gz), &idx).unwrap();
                    assert_eq!(ds.traces().len(), 100);
                    let some = ds.source_bytes(0, 0..100).unwrap().unwrap();
                    assert_eq!(&*some, &data.as_bytes()[..100]);
                    ds.make_inflated_copies(&NoProgress).unwrap();
                    ds.reports()[0].action.clone()
                })
            })
            .collect();
        opens.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let built = actions.iter().filter(|a| **a == IndexAction::Built).count();
    assert_eq!(
        built, 1,
        "one builds, the others wait and reuse: {actions:?}"
    );
    halo_index::finish_cleanup();
    let names: Vec<String> = std::fs::read_dir(&idx)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(
        names.len(),
        1,
        "only the index directory remains: {names:?}"
    );
}

#[test]
fn the_same_file_by_another_path_reuses_its_index() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::create_dir(tmp.path().join("sub")).unwrap();
    let (gz, _) = gzipped_spans(tmp.path(), 50, 5);
    let idx = tmp.path().join("idx");
    open(std::slice::from_ref(&gz), &idx).unwrap();
    let roundabout = tmp.path().join("sub/../t.jsonl.gz");
    let again = open(&[roundabout], &idx).unwrap();
    assert_eq!(again.reports()[0].action, IndexAction::Reused);
}

#[test]
fn damaged_gzip_checkpoints_are_caught_and_leftovers_are_swept() {
    let tmp = tempfile::tempdir().unwrap();
    let (gz, data) = gzipped_spans(tmp.path(), 500, 20);
    let idx = tmp.path().join("idx");
    let ds = open(std::slice::from_ref(&gz), &idx).unwrap();
    let dir = ds.reports()[0].index_dir.clone();
    drop(ds);
    let checkpoints = dir.join("gzip.checkpoints");
    let good = std::fs::read(&checkpoints).unwrap();
    // A flipped byte is caught by the checksum when the checkpoints are first read, with
    // an error that names them.
    let mut flipped = good.clone();
    let middle = flipped.len() / 2;
    flipped[middle] ^= 0xff;
    std::fs::write(&checkpoints, &flipped).unwrap();
    let ds = open(std::slice::from_ref(&gz), &idx).unwrap();
    let err = ds.source_bytes(0, 0..10).unwrap_err();
    assert!(matches!(err, IndexError::Corrupt { .. }), "{err}");
    assert!(err.to_string().contains("gzip.checkpoints"), "{err}");
    assert!(err.to_string().contains("--rebuild"), "{err}");
    drop(ds);
    // Opening with `verify` (as `halo index` does) reads the checksum now and rebuilds.
    let verified = OpenOptions {
        index_dir: Some(idx.clone()),
        verify: true,
        ..Default::default()
    };
    let ds = Dataset::open(std::slice::from_ref(&gz), &verified, &NoProgress).unwrap();
    match &ds.reports()[0].action {
        IndexAction::Rebuilt { reason } => assert!(reason.contains("checkpoints"), "{reason}"),
        other => panic!("expected a rebuild, got {other:?}"),
    }
    assert_eq!(
        ds.source_bytes(0, 0..10).unwrap().unwrap().as_ref(),
        &data.as_bytes()[..10]
    );
    let reused = Dataset::open(std::slice::from_ref(&gz), &verified, &NoProgress).unwrap();
    assert_eq!(
        reused.reports()[0].action,
        IndexAction::Reused,
        "a sound index is reused"
    );
    drop((ds, reused));
    // A truncated file is caught at open, and the index is rebuilt.
    std::fs::write(&checkpoints, &good[..good.len() - 10]).unwrap();
    // What a killed build and a cut-short deletion leave behind.
    let name = dir.file_name().unwrap().to_string_lossy().into_owned();
    let killed = dir.with_file_name(format!("{name}.tmp-999999"));
    let cut_short = dir.with_file_name(format!("{name}.old-999999"));
    for d in [&killed, &cut_short] {
        std::fs::create_dir(d).unwrap();
        std::fs::write(d.join("meta.json"), "{}").unwrap();
    }
    let ds = open(std::slice::from_ref(&gz), &idx).unwrap();
    match &ds.reports()[0].action {
        IndexAction::Rebuilt { reason } => assert!(reason.contains("checkpoints"), "{reason}"),
        other => panic!("expected a rebuild, got {other:?}"),
    }
    assert_eq!(ds.segment_data(0).unwrap().bytes(), data.as_bytes());
    assert!(!killed.exists() && !cut_short.exists());
}

/// Opens `gz` with its index under `idx` and its temporary copies in `scratch`, and puts
/// a directory where the inflated copy should go: renaming the finished copy there fails,
/// as writing into a read-only or full index directory would (root ignores permissions).
fn open_with_the_copy_blocked(gz: &Path, idx: &Path, scratch: &Path) -> (Dataset, PathBuf) {
    let options = OpenOptions {
        index_dir: Some(idx.to_path_buf()),
        temporary_dir: Some(scratch.to_path_buf()),
        ..Default::default()
    };
    let ds = Dataset::open(&[gz.to_path_buf()], &options, &NoProgress).unwrap();
    let dir = ds.reports()[0].index_dir.clone();
    std::fs::create_dir_all(dir.join("source.jsonl").join("in-the-way")).unwrap();
    (ds, dir)
}

fn tmp_leftovers(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains(".tmp-") || n.starts_with("halo-inflated-"))
        .collect()
}

#[test]
fn when_the_copy_cannot_be_kept_beside_the_index_scans_use_a_temporary_one() {
    let tmp = tempfile::tempdir().unwrap();
    let (gz, data) = gzipped_spans(tmp.path(), 300, 10);
    let scratch = tmp.path().join("scratch");
    std::fs::create_dir(&scratch).unwrap();
    let (ds, dir) = open_with_the_copy_blocked(&gz, &tmp.path().join("idx"), &scratch);
    let heard = std::sync::Mutex::new(Vec::new());
    ds.make_inflated_copies(&Recorder(&heard)).unwrap();
    let heard = heard.into_inner().unwrap();
    // The copy beside the index is inflated whole before its rename fails; then the
    // temporary one is made.
    let temporary = heard
        .iter()
        .position(|h| h.starts_with("temporary"))
        .expect("told about the temporary copy");
    assert!(
        heard[temporary].starts_with(&format!("temporary in {}", scratch.display()))
            && heard[temporary].contains("source.jsonl"),
        "{heard:?}"
    );
    assert_eq!(heard[temporary + 1], format!("begin {}", data.len()));
    assert_eq!(heard.last().unwrap(), "end");
    assert_eq!(ds.segment_data(0).unwrap().bytes(), data.as_bytes());
    let some = ds.source_bytes(0, 10..60).unwrap().unwrap();
    assert_eq!(&*some, &data.as_bytes()[10..60]);
    // Nothing is left on disk: the temporary copy never had a name, and the failed
    // attempt beside the index was cleaned up.
    assert_eq!(std::fs::read_dir(&scratch).unwrap().count(), 0);
    assert_eq!(tmp_leftovers(&dir), Vec::<String>::new());
    drop(ds);
    assert_eq!(tmp_leftovers(&scratch), Vec::<String>::new());
}

/// The temporary copy never has a name: no other user can open it while it is written,
/// and a process killed meanwhile leaves nothing behind.
#[test]
fn the_temporary_copy_has_no_name_even_while_it_is_written() {
    struct Peek<'a>(&'a Path, std::sync::Mutex<Vec<String>>);
    impl halo_index::BuildProgress for Peek<'_> {
        fn begin(&self, _: &Path, _: &str, _: u64) {}
        fn advance(&self, _: u64) {
            for e in std::fs::read_dir(self.0).unwrap().flatten() {
                let name = e.file_name().to_string_lossy().into_owned();
                self.1.lock().unwrap().push(name);
            }
        }
        fn end(&self) {}
    }
    let tmp = tempfile::tempdir().unwrap();
    let (gz, data) = gzipped_spans(tmp.path(), 3000, 10);
    let scratch = tmp.path().join("scratch");
    std::fs::create_dir(&scratch).unwrap();
    let (ds, _) = open_with_the_copy_blocked(&gz, &tmp.path().join("idx"), &scratch);
    let peek = Peek(&scratch, Default::default());
    ds.make_inflated_copies(&peek).unwrap();
    assert_eq!(peek.1.into_inner().unwrap(), Vec::<String>::new());
    assert_eq!(ds.segment_data(0).unwrap().bytes(), data.as_bytes());
}

/// Reads of a few spans that jump around a file would ask for the copy; when it cannot be
/// kept beside the index they go on through the checkpoints rather than inflate the whole
/// file again in every process.
#[cfg(target_os = "linux")]
#[test]
fn scattered_span_reads_make_no_temporary_copy() {
    let tmp = tempfile::tempdir().unwrap();
    let (gz, data) = gzipped_spans(tmp.path(), 60_000, 10);
    let scratch = tmp.path().join("scratch");
    std::fs::create_dir(&scratch).unwrap();
    let (ds, _) = open_with_the_copy_blocked(&gz, &tmp.path().join("idx"), &scratch);
    let mut at = 0;
    while at + 100 < data.len() {
        let got = ds
            .source_bytes(0, at as u64..at as u64 + 100)
            .unwrap()
            .unwrap();
        assert_eq!(&*got, &data.as_bytes()[at..at + 100]);
        at += (4 << 20) + 12_345;
    }
    let maps = std::fs::read_to_string("/proc/self/maps").unwrap();
    let mapped_from_scratch: Vec<&str> = maps
        .lines()
        .filter(|l| l.contains(&*scratch.to_string_lossy()))
        .collect();
    assert_eq!(mapped_from_scratch, Vec::<&str>::new());
}

/// An index of an older format is rebuilt for being older, even when its `meta.json`
/// lacks fields of the current one.
#[test]
fn an_older_format_is_named_as_the_reason_to_rebuild() {
    let tmp = tempfile::tempdir().unwrap();
    let f = tmp.path().join("a.jsonl");
    let good = span("t", "s", "", "STATUS_CODE_OK", "{}");
    std::fs::write(&f, format!("{good}\nnot json\n")).unwrap();
    let idx = tmp.path().join("idx");
    let dir = open(std::slice::from_ref(&f), &idx).unwrap().reports()[0]
        .index_dir
        .clone();
    let meta = dir.join("meta.json");
    let mut v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&meta).unwrap()).unwrap();
    v["format_version"] = 2.into();
    // Format 2 had no problem kinds.
    for segment in v["segments"].as_array_mut().unwrap() {
        for problem in segment["problems"].as_array_mut().unwrap() {
            problem.as_object_mut().unwrap().remove("kind");
        }
    }
    std::fs::write(&meta, v.to_string()).unwrap();
    let ds = open(std::slice::from_ref(&f), &idx).unwrap();
    match &ds.reports()[0].action {
        IndexAction::Rebuilt { reason } => assert_eq!(
            reason,
            &format!(
                "index format 2 is not the current format {}",
                halo_index::FORMAT_VERSION
            )
        ),
        other => panic!("expected a rebuild, got {other:?}"),
    }
}

#[test]
fn when_no_copy_can_be_made_the_error_says_where_and_span_reads_go_on() {
    let tmp = tempfile::tempdir().unwrap();
    let (gz, data) = gzipped_spans(tmp.path(), 300, 10);
    let nowhere = tmp.path().join("no-such-dir");
    let (ds, dir) = open_with_the_copy_blocked(&gz, &tmp.path().join("idx"), &nowhere);
    let err = ds.segment_data(0).unwrap_err();
    assert!(matches!(err, IndexError::GzipCopy { .. }), "{err}");
    let message = err.to_string();
    assert!(message.contains("cannot make the inflated copy"), "{err}");
    assert!(
        message.contains(&format!("nor a temporary one in {}", nowhere.display())),
        "{err}"
    );
    let some = ds.source_bytes(0, 10..60).unwrap().unwrap();
    assert_eq!(&*some, &data.as_bytes()[10..60]);
    assert_eq!(
        tmp_leftovers(&dir),
        Vec::<String>::new(),
        "the failed copy is removed"
    );
}

#[test]
fn a_gzip_that_changed_gets_no_temporary_copy_either() {
    let tmp = tempfile::tempdir().unwrap();
    let (gz, _) = gzipped_spans(tmp.path(), 300, 10);
    let scratch = tmp.path().join("scratch");
    std::fs::create_dir(&scratch).unwrap();
    let (ds, _) = open_with_the_copy_blocked(&gz, &tmp.path().join("idx"), &scratch);
    let mut other = std::fs::read(&gz).unwrap();
    other.reverse();
    std::fs::write(&gz, other).unwrap();
    let err = ds.segment_data(0).unwrap_err();
    assert!(
        err.to_string().contains("changed since it was indexed"),
        "{err}"
    );
    assert_eq!(tmp_leftovers(&scratch), Vec::<String>::new());
}

#[test]
fn a_forced_rebuild_that_waited_for_another_process_still_rebuilds() {
    let tmp = tempfile::tempdir().unwrap();
    let (gz, _) = gzipped_spans(tmp.path(), 200, 10);
    let idx = tmp.path().join("idx");
    open(std::slice::from_ref(&gz), &idx).unwrap();
    // Another process holds the build lock (and builds nothing here).
    let holder = std::fs::File::open(&gz).unwrap();
    holder.lock().unwrap();
    let rebuilt = std::thread::scope(|s| {
        let waiting = s.spawn(|| {
            let options = OpenOptions {
                index_dir: Some(idx.clone()),
                force_rebuild: true,
                ..Default::default()
            };
            Dataset::open(std::slice::from_ref(&gz), &options, &NoProgress)
                .unwrap()
                .reports()[0]
                .action
                .clone()
        });
        std::thread::sleep(std::time::Duration::from_millis(200));
        holder.unlock().unwrap();
        waiting.join().unwrap()
    });
    assert!(
        matches!(rebuilt, IndexAction::Rebuilt { .. }),
        "--rebuild is not dropped because the lock was busy: {rebuilt:?}"
    );
}

#[test]
fn a_failed_copy_is_tried_again_and_a_changed_gzip_is_not_copied() {
    let tmp = tempfile::tempdir().unwrap();
    let (gz, data) = gzipped_spans(tmp.path(), 300, 10);
    // No temporary copy can be made either, so the first try fails.
    let nowhere = tmp.path().join("no-such-dir");
    let (ds, dir) = open_with_the_copy_blocked(&gz, &tmp.path().join("idx"), &nowhere);
    let obstacle = dir.join("source.jsonl");
    assert!(ds.segment_data(0).is_err());
    std::fs::remove_dir_all(&obstacle).unwrap();
    assert_eq!(
        ds.segment_data(0).unwrap().bytes(),
        data.as_bytes(),
        "the same dataset tries again once the obstacle is gone"
    );
    drop(ds);

    // The .gz is replaced after the dataset was opened: no copy is made from it.
    std::fs::remove_file(&obstacle).unwrap();
    let ds = open(std::slice::from_ref(&gz), &tmp.path().join("idx")).unwrap();
    gzip_file(&gz, b"{}\n");
    let err = ds.segment_data(0).unwrap_err().to_string();
    assert!(err.contains("changed since it was indexed"), "{err}");
    assert!(!obstacle.exists());
}

/// A member appended while a dataset is open (a scan under way, say) leaves the indexed
/// members as they were: the copy of what was indexed is still made.
#[test]
fn a_member_appended_after_opening_does_not_stop_the_copy() {
    let tmp = tempfile::tempdir().unwrap();
    let (gz, data) = gzipped_spans(tmp.path(), 300, 10);
    let ds = open(std::slice::from_ref(&gz), &tmp.path().join("idx")).unwrap();
    let more = format!("{}\n", span("late", "s", "", "STATUS_CODE_OK", "{}"));
    let mut bytes = std::fs::read(&gz).unwrap();
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    enc.write_all(more.as_bytes()).unwrap();
    bytes.extend_from_slice(&enc.finish().unwrap());
    std::fs::write(&gz, bytes).unwrap();
    ds.make_inflated_copies(&NoProgress).unwrap();
    assert_eq!(ds.segment_data(0).unwrap().bytes(), data.as_bytes());
}

#[test]
fn gzip_members_appended_later_are_indexed_on_their_own() {
    let tmp = tempfile::tempdir().unwrap();
    let idx = tmp.path().join("idx");
    let (gz, first) = gzipped_spans(tmp.path(), 400, 40);
    let ds = open(std::slice::from_ref(&gz), &idx).unwrap();
    ds.make_inflated_copies(&NoProgress).unwrap();
    let dir = ds.reports()[0].index_dir.clone();
    drop(ds);
    // Another member, as `gzip -c more >> traces.jsonl.gz` writes it.
    let second: String = (400..700)
        .map(|i| {
            span(
                &format!("u{}", i % 30),
                &format!("s{i}"),
                "",
                "STATUS_CODE_OK",
                "{}",
            ) + "\n"
        })
        .collect();
    let mut member = Vec::new();
    {
        let mut enc = flate2::write::GzEncoder::new(&mut member, flate2::Compression::default());
        enc.write_all(second.as_bytes()).unwrap();
        enc.finish().unwrap();
    }
    let mut file = std::fs::OpenOptions::new().append(true).open(&gz).unwrap();
    file.write_all(&member).unwrap();
    drop(file);
    let ds = open(std::slice::from_ref(&gz), &idx).unwrap();
    assert_eq!(
        ds.reports()[0].action,
        IndexAction::Appended {
            bytes: second.len() as u64
        }
    );
    assert_eq!(ds.traces().len(), 70);
    assert_eq!(ds.span_count(), 700);
    let copy = dir.join("source.jsonl");
    let inode = |p: &Path| std::os::unix::fs::MetadataExt::ino(&std::fs::metadata(p).unwrap());
    let before = inode(&copy);
    assert_eq!(
        std::fs::metadata(&copy).unwrap().len(),
        first.len() as u64,
        "the copy of the first member stays"
    );
    let whole = first.clone() + &second;
    let end = whole.len() as u64;
    let tail = ds.source_bytes(1, end - 100..end).unwrap().unwrap();
    assert_eq!(&*tail, &whole.as_bytes()[whole.len() - 100..]);
    // The next scan inflates only the new member onto the same file.
    let heard = Heard::default();
    ds.make_inflated_copies(&heard).unwrap();
    assert_eq!(
        heard.said(),
        [format!(
            "{} {}",
            halo_index::EXTENDING_INFLATED_COPY,
            second.len()
        )]
    );
    assert_eq!(inode(&copy), before, "extended, not made again");
    assert_eq!(ds.segment_data(0).unwrap().bytes(), whole.as_bytes());
    drop(ds);
    let again = open(std::slice::from_ref(&gz), &idx).unwrap();
    assert_eq!(again.reports()[0].action, IndexAction::Reused);
    assert_eq!(again.span_count(), 700);
    drop(again);
    // A copy of any other length (cut short, say) is not trusted: it is made again
    // from the start.
    std::fs::write(&copy, &whole.as_bytes()[..first.len() + 10]).unwrap();
    let ds = open(std::slice::from_ref(&gz), &idx).unwrap();
    let heard = Heard::default();
    ds.make_inflated_copies(&heard).unwrap();
    assert_eq!(
        heard.said(),
        [format!(
            "{} {}",
            halo_index::MAKING_INFLATED_COPY,
            whole.len()
        )]
    );
    assert_eq!(ds.segment_data(0).unwrap().bytes(), whole.as_bytes());
}

#[test]
fn strict_fails_on_bytes_after_the_last_gzip_member() {
    let tmp = tempfile::tempdir().unwrap();
    let (gz, _) = gzipped_spans(tmp.path(), 50, 5);
    let mut file = std::fs::OpenOptions::new().append(true).open(&gz).unwrap();
    file.write_all(b"trailing junk").unwrap();
    drop(file);
    let idx = tmp.path().join("idx");
    let lenient = open(std::slice::from_ref(&gz), &idx).unwrap();
    assert_eq!(lenient.span_count(), 50, "everything before is kept");
    let options = OpenOptions {
        index_dir: Some(idx),
        strict: true,
        ..Default::default()
    };
    match Dataset::open(std::slice::from_ref(&gz), &options, &NoProgress) {
        Err(IndexError::Strict { first, count }) => {
            assert!(
                first.message.starts_with("gzip data is followed by"),
                "{first}"
            );
            assert_eq!(first.kind, halo_index::ProblemKind::GzipFault);
            assert_eq!(count, 1, "no line was lost, yet it is one problem");
        }
        other => panic!("expected a strict failure, got {other:?}"),
    }
}

/// The rows of a line, found by byte range: one per canonical line, every span of an OTLP
/// line, none for a skipped line, also in a segment appended later.
#[test]
fn rows_are_found_by_the_byte_range_of_their_line() {
    let tmp = tempfile::tempdir().unwrap();
    let f = tmp.path().join("mixed.jsonl");
    let first = span("t1", "s1", "", "STATUS_CODE_OK", "{}");
    let otlp = r#"{"resourceSpans":[{"scopeSpans":[{"spans":[{"traceId":"aa","spanId":"01","startTimeUnixNano":"1","endTimeUnixNano":"2"},{"traceId":"bb","spanId":"02","startTimeUnixNano":"1","endTimeUnixNano":"2"}]}]}]}"#;
    let text = format!("{first}\nnot json\n{otlp}\n");
    std::fs::write(&f, &text).unwrap();
    let idx = tmp.path().join("idx");
    let ds = open(std::slice::from_ref(&f), &idx).unwrap();
    let table = ds.span_table(0).unwrap();
    let line = |n: usize| {
        let start: usize = text.split_inclusive('\n').take(n).map(str::len).sum();
        let len = text.split_inclusive('\n').nth(n).unwrap().len();
        start as u64..(start + len) as u64
    };
    assert_eq!(table.rows_starting_in(line(0)), 0..1);
    assert!(
        table.rows_starting_in(line(1)).is_empty(),
        "the skipped line"
    );
    assert_eq!(table.rows_starting_in(line(2)), 1..3);
    assert_eq!(table.rows_starting_in(0..text.len() as u64 + 10), 0..3);
    drop(ds);
    // An appended segment's rows start again at 0, at byte offsets past the first part.
    let more = span("t2", "s9", "", "STATUS_CODE_OK", "{}");
    std::fs::write(&f, format!("{text}{more}\n")).unwrap();
    let ds = open(std::slice::from_ref(&f), &idx).unwrap();
    assert_eq!(ds.segment_count(), 2);
    let appended = ds.span_table(1).unwrap();
    let end = text.len() as u64;
    assert_eq!(
        appended.rows_starting_in(end..end + more.len() as u64 + 1),
        0..1
    );
    assert!(appended.rows_starting_in(0..end).is_empty());
}

/// A member being appended when the file was indexed (only the first bytes of its header
/// written): the members before it read as indexed, for views and for scans.
#[test]
fn a_member_header_cut_short_at_the_end_leaves_the_rest_readable() {
    let tmp = tempfile::tempdir().unwrap();
    let (gz, data) = gzipped_spans(tmp.path(), 400, 40);
    let mut bytes = std::fs::read(&gz).unwrap();
    bytes.extend_from_slice(&[0x1f, 0x8b, 8, 0, 0]);
    std::fs::write(&gz, &bytes).unwrap();
    let ds = open(std::slice::from_ref(&gz), &tmp.path().join("idx")).unwrap();
    assert_eq!(ds.traces().len(), 40);
    let n = data.len();
    let tail = ds
        .source_bytes(0, (n - 200) as u64..n as u64)
        .unwrap()
        .unwrap();
    assert_eq!(&*tail, &data.as_bytes()[n - 200..]);
    assert_eq!(ds.segment_data(0).unwrap().bytes(), data.as_bytes());
}

/// Records what each progress report begins with, as "what total".
#[derive(Clone, Default)]
struct Heard(std::sync::Arc<std::sync::Mutex<Vec<String>>>);

impl halo_index::BuildProgress for Heard {
    fn begin(&self, _: &Path, what: &str, total: u64) {
        self.0.lock().unwrap().push(format!("{what} {total}"));
    }
    fn advance(&self, _: u64) {}
    fn end(&self) {}
}

impl Heard {
    fn said(&self) -> Vec<String> {
        self.0.lock().unwrap().clone()
    }
}

/// Span reads that jump all over a `.gz` end up making the copy; a dataset told where to
/// report copies says so instead of pausing without a word.
#[test]
fn a_copy_that_scattered_reads_ask_for_is_reported() {
    let tmp = tempfile::tempdir().unwrap();
    let (gz, data) = gzipped_spans(tmp.path(), 60_000, 10);
    let ds = open(std::slice::from_ref(&gz), &tmp.path().join("idx")).unwrap();
    let heard = Heard::default();
    ds.report_copies_to(std::sync::Arc::new(heard.clone()));
    let mut at = 0;
    while at + 100 < data.len() {
        let got = ds
            .source_bytes(0, at as u64..at as u64 + 100)
            .unwrap()
            .unwrap();
        assert_eq!(&*got, &data.as_bytes()[at..at + 100]);
        at += (4 << 20) + 12_345;
    }
    assert_eq!(
        heard.said(),
        [format!(
            "{} {}",
            halo_index::MAKING_INFLATED_COPY,
            data.len()
        )]
    );
}

#[test]
fn files_rotated_or_rebuilt_after_opening_are_refused_not_misread() {
    // Log rotation moves the source away and writes a new one under its name; another
    // process then rebuilds the index. A dataset opened before reads neither new file.
    let tmp = tempfile::tempdir().unwrap();
    let idx = tmp.path().join("idx");
    let file = tmp.path().join("a.jsonl");
    std::fs::write(
        &file,
        format!("{}\n", span("old", "s1", "", "STATUS_CODE_OK", "{}")),
    )
    .unwrap();
    let before = open(std::slice::from_ref(&file), &idx).unwrap();
    std::fs::rename(&file, tmp.path().join("a.jsonl.1")).unwrap();
    std::fs::write(
        &file,
        format!(
            "{}\n{}\n",
            span("new", "s1", "", "STATUS_CODE_OK", "{}"),
            span("new", "s2", "s1", "STATUS_CODE_OK", "{}")
        ),
    )
    .unwrap();
    let after = open(std::slice::from_ref(&file), &idx).unwrap();
    assert!(after.trace("new").is_some());
    assert!(matches!(
        before.span_table(0),
        Err(IndexError::Replaced { .. })
    ));
    assert!(matches!(
        before.segment_data(0),
        Err(IndexError::Replaced { .. })
    ));
    // The dataset opened after the change reads both.
    assert_eq!(after.span_table(0).unwrap().num_rows(), 2);
    assert!(after.segment_data(0).is_ok());
}

/// A file cut short in place after the dataset opened (the same file, so not "replaced")
/// is refused when first read, rather than read without the spans past its new end.
#[test]
fn a_file_cut_short_after_opening_is_refused_not_half_read() {
    let tmp = tempfile::tempdir().unwrap();
    let idx = tmp.path().join("idx");
    let file = tmp.path().join("a.jsonl");
    let lines: String = (0..20)
        .map(|i| {
            format!(
                "{}\n",
                span("t", &format!("s{i}"), "", "STATUS_CODE_OK", "{}")
            )
        })
        .collect();
    std::fs::write(&file, &lines).unwrap();
    let ds = open(std::slice::from_ref(&file), &idx).unwrap();
    let cut = std::fs::OpenOptions::new().write(true).open(&file).unwrap();
    cut.set_len(lines.len() as u64 / 2).unwrap();
    match ds.segment_data(0) {
        Err(IndexError::Shrank { indexed, now, .. }) => {
            assert_eq!((indexed, now), (lines.len() as u64, lines.len() as u64 / 2));
        }
        other => panic!("expected the file to be refused as shorter, got {other:?}"),
    }
}

#[test]
fn many_appends_are_merged_before_they_slow_every_open() {
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("live.jsonl");
    let idx = tmp.path().join("idx");
    std::fs::write(&file, span("t0", "s", "", "STATUS_CODE_OK", "{}") + "\n").unwrap();
    let mut merged = false;
    for i in 1..40 {
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(&file)
            .unwrap();
        writeln!(
            f,
            "{}",
            span(&format!("t{i}"), "s", "", "STATUS_CODE_OK", "{}")
        )
        .unwrap();
        drop(f);
        let ds = open(std::slice::from_ref(&file), &idx).unwrap();
        assert!(ds.segment_count() <= 32, "{} segments", ds.segment_count());
        assert_eq!(ds.traces().len(), i + 1);
        if let IndexAction::Rebuilt { reason } = &ds.reports()[0].action {
            assert!(reason.contains("merged into one"), "{reason}");
            assert_eq!(ds.segment_count(), 1);
            merged = true;
        }
    }
    assert!(merged, "the 32nd append rebuilt the index as one segment");
}

#[cfg(unix)]
#[test]
fn a_file_renamed_into_place_with_the_same_size_time_and_ends_is_indexed_again() {
    let tmp = tempfile::tempdir().unwrap();
    let (path, idx) = (tmp.path().join("t.jsonl"), tmp.path().join("idx"));
    // Long enough that its middle is outside the hashed 64 KiB at each end.
    let text: String = (0..2_000)
        .map(|i| {
            span(
                &format!("t{:04}", i / 10),
                &format!("s{i}"),
                "",
                "STATUS_CODE_OK",
                "{}",
            ) + "\n"
        })
        .collect();
    std::fs::write(&path, &text).unwrap();
    let ds = open(std::slice::from_ref(&path), &idx).unwrap();
    assert_eq!(ds.traces().len(), 200);
    drop(ds);
    // One trace id changed in the middle, the same length; written beside the file, given
    // the old file's modification time, and renamed over it (an atomic replace).
    let edited = text.replacen("\"trace_id\":\"t0100\"", "\"trace_id\":\"x0100\"", 1);
    assert_eq!(edited.len(), text.len());
    let next = tmp.path().join("t.jsonl.next");
    std::fs::write(&next, &edited).unwrap();
    let mtime = std::fs::metadata(&path).unwrap().modified().unwrap();
    std::fs::File::options()
        .write(true)
        .open(&next)
        .unwrap()
        .set_modified(mtime)
        .unwrap();
    std::fs::rename(&next, &path).unwrap();
    let ds = open(std::slice::from_ref(&path), &idx).unwrap();
    assert_ne!(ds.reports()[0].action, IndexAction::Reused);
    assert_eq!(
        ds.traces().len(),
        201,
        "the edited span is a trace of its own"
    );
    assert!(ds.trace("x0100").is_some());
}

#[test]
fn what_a_killed_rebuild_left_is_swept_when_the_index_is_reused() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("t.jsonl");
    std::fs::write(&path, span("t1", "s1", "", "STATUS_CODE_OK", "{}") + "\n").unwrap();
    let options = OpenOptions::default();
    drop(Dataset::open(std::slice::from_ref(&path), &options, &NoProgress).unwrap());
    // A rebuild killed long ago (its files untouched since), and one that may still run.
    let left = tmp.path().join("t.jsonl.halo-index.tmp-999999-0");
    let running = tmp.path().join("t.jsonl.halo-index.tmp-999998-0");
    for dir in [&left, &running] {
        std::fs::create_dir(dir).unwrap();
        std::fs::write(dir.join("seg-0000.spans.arrow"), "half").unwrap();
    }
    let long_ago = std::time::SystemTime::now() - halo_ingest::ABANDONED_AFTER * 2;
    for p in [left.join("seg-0000.spans.arrow"), left.clone()] {
        std::fs::File::open(&p)
            .unwrap()
            .set_modified(long_ago)
            .unwrap();
    }
    let ds = Dataset::open(std::slice::from_ref(&path), &options, &NoProgress).unwrap();
    assert_eq!(ds.reports()[0].action, IndexAction::Reused);
    assert!(!left.exists(), "abandoned: swept");
    assert!(running.exists(), "recent: another build's, left alone");
}

#[test]
fn an_index_from_before_the_inode_was_kept_is_reused() {
    let tmp = tempfile::tempdir().unwrap();
    let (path, idx) = (tmp.path().join("t.jsonl"), tmp.path().join("idx"));
    std::fs::write(&path, span("t1", "s1", "", "STATUS_CODE_OK", "{}") + "\n").unwrap();
    let ds = open(std::slice::from_ref(&path), &idx).unwrap();
    let meta_path = ds.reports()[0].index_dir.join("meta.json");
    drop(ds);
    let mut meta: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&meta_path).unwrap()).unwrap();
    assert!(meta["fingerprint"]["inode"].as_u64().unwrap() > 0);
    meta["fingerprint"].as_object_mut().unwrap().remove("inode");
    std::fs::write(&meta_path, meta.to_string()).unwrap();
    let ds = open(std::slice::from_ref(&path), &idx).unwrap();
    assert_eq!(ds.reports()[0].action, IndexAction::Reused);
}

#[test]
fn an_index_an_earlier_halo_named_with_32_bits_is_removed_when_the_new_one_is_built() {
    let tmp = tempfile::tempdir().unwrap();
    let (path, idx) = (tmp.path().join("t.jsonl"), tmp.path().join("idx"));
    std::fs::write(&path, span("t1", "s1", "", "STATUS_CODE_OK", "{}") + "\n").unwrap();
    let ds = open(std::slice::from_ref(&path), &idx).unwrap();
    let dir = ds.reports()[0].index_dir.clone();
    drop(ds);
    // The same index under the name an earlier halo gave it, and one of another file
    // that happens to have that name: only the first is ours to delete.
    let name = dir.file_name().unwrap().to_str().unwrap().to_owned();
    let (stem, hash) = name.rsplit_once('-').unwrap();
    let low = u64::from_str_radix(hash, 16).unwrap() as u32;
    let legacy = idx.join(format!("{stem}-{low:08x}"));
    let copy = |from: &Path, to: &Path| {
        std::fs::create_dir(to).unwrap();
        for e in std::fs::read_dir(from).unwrap() {
            let e = e.unwrap();
            std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
        }
    };
    copy(&dir, &legacy);
    let stranger = idx.join(format!("{stem}-{:08x}", low.wrapping_add(1)));
    copy(&dir, &stranger);
    std::fs::remove_dir_all(&dir).unwrap();
    let ds = open(std::slice::from_ref(&path), &idx).unwrap();
    assert_eq!(ds.reports()[0].action, IndexAction::Built);
    halo_index::finish_cleanup();
    assert!(
        !legacy.exists(),
        "the old name's copy of this index is gone"
    );
    assert!(stranger.exists(), "another name is left alone");
}

#[cfg(unix)]
#[test]
fn a_sidecar_linked_to_another_disk_stays_there_through_a_rebuild() {
    let tmp = tempfile::tempdir().unwrap();
    let (data, disk) = (tmp.path().join("data"), tmp.path().join("bigdisk"));
    std::fs::create_dir_all(&data).unwrap();
    std::fs::create_dir_all(disk.join("t-index")).unwrap();
    let path = data.join("t.jsonl");
    std::fs::write(&path, span("t1", "s1", "", "STATUS_CODE_OK", "{}") + "\n").unwrap();
    let link = data.join("t.jsonl.halo-index");
    std::os::unix::fs::symlink(disk.join("t-index"), &link).unwrap();
    let open_with = |force_rebuild| {
        let options = OpenOptions {
            force_rebuild,
            ..Default::default()
        };
        Dataset::open(std::slice::from_ref(&path), &options, &NoProgress).unwrap()
    };
    assert_eq!(open_with(false).reports()[0].action, IndexAction::Built);
    assert!(matches!(
        open_with(true).reports()[0].action,
        IndexAction::Rebuilt { .. }
    ));
    halo_index::finish_cleanup();
    assert!(link.is_symlink(), "the link is kept");
    assert!(
        disk.join("t-index/meta.json").is_file(),
        "the index is where it leads"
    );
    assert_eq!(open_with(false).reports()[0].action, IndexAction::Reused);
}
