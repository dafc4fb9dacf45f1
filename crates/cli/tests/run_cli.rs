//! The analysis form through the real binary: `halo TRACES -p PROMPT` against a scripted
//! OpenAI-compatible server on loopback.

mod common;

use common::*;
use halo_testkit::scripted_server::{Reply, Script, ScriptedServer, Turn};

#[test]
fn a_run_saves_report_record_and_checkpoint_and_never_prints_the_key() {
    let tmp = tempfile::tempdir().unwrap();
    let file = small_dataset(tmp.path());
    let rt = tokio::runtime::Runtime::new().unwrap();
    let server = rt.block_on(ScriptedServer::start(
        Script::new()
            .reply(Reply::turn(Turn::new().tool_call("c1", "count_traces", r#"{"filters":{"has_errors":true}}"#)))
            .reply(Reply::turn(Turn::new().tool_call(
                "c2",
                "final_answer",
                r##"{"answer":"# Findings\n2 failing traces [trace:t2] [trace:t3] [trace:bogus]"}"##,
            ))),
    ));
    let out = tmp.path().join("report.md");
    let o = halo(
        tmp.path(),
        &[
            file.to_str().unwrap(),
            "-p",
            "why do runs fail?",
            "--base-url",
            &server.base_url(),
            "--api-key",
            "sk-cli-SECRET",
            "-H",
            "X-Trace: on",
            "-o",
            out.to_str().unwrap(),
        ],
    );
    assert!(o.status.success(), "{}\n{}", stderr(&o), stdout(&o));
    let report = std::fs::read_to_string(&out).unwrap();
    assert!(report.contains("2 failing traces"), "{report}");
    assert!(
        report.contains("[trace:bogus] ⚠"),
        "unknown citations are flagged: {report}"
    );
    assert!(!report.contains("[trace:t2] ⚠"));
    assert!(tmp.path().join("report.record.json").exists());
    let everything = format!("{}{}{}", stdout(&o), stderr(&o), report);
    assert!(!everything.contains("sk-cli-SECRET"));
    let requests = server.requests();
    assert_eq!(requests[0].header("x-trace"), Some("on"));
    let results = requests[1].tool_results();
    assert!(
        results.iter().any(|(_, r)| r.contains("\"total\":2")),
        "{results:?}"
    );
}

#[test]
fn the_default_provider_without_a_key_fails_before_any_work() {
    let tmp = tempfile::tempdir().unwrap();
    let file = small_dataset(tmp.path());
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_halo"));
    cmd.args([file.to_str().unwrap(), "-p", "x"])
        .env_remove("OPENAI_API_KEY")
        .env_remove("OPENAI_BASE_URL")
        .current_dir(tmp.path());
    let o = cmd.output().unwrap();
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("OPENAI_API_KEY"), "{}", stderr(&o));
    assert!(
        !tmp.path().join("small.jsonl.halo-index").exists(),
        "nothing was indexed"
    );
}

#[test]
fn telemetry_is_refused_not_ignored() {
    let tmp = tempfile::tempdir().unwrap();
    let file = small_dataset(tmp.path());
    let o = halo(
        tmp.path(),
        &[
            file.to_str().unwrap(),
            "-p",
            "x",
            "--base-url",
            "http://127.0.0.1:9",
            "--telemetry",
        ],
    );
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("telemetry"), "{}", stderr(&o));
}

#[test]
fn a_report_path_over_a_trace_file_is_refused_and_the_file_kept() {
    let tmp = tempfile::tempdir().unwrap();
    let file = small_dataset(tmp.path());
    let f = file.to_str().unwrap();
    let before = std::fs::read(&file).unwrap();
    let o = halo(
        tmp.path(),
        &[f, "-p", "x", "--base-url", "http://127.0.0.1:9/v1", "-o", f],
    );
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("a trace file of the dataset"),
        "{}",
        stderr(&o)
    );
    assert_eq!(
        std::fs::read(&file).unwrap(),
        before,
        "the traces are untouched"
    );
}

#[test]
fn a_report_that_cannot_be_saved_still_reaches_stdout() {
    // /proc exists, so the path passes the checks made before the run, but no file can
    // be made there, even by root: the run is paid for, so its report is printed.
    let tmp = tempfile::tempdir().unwrap();
    let script = Script::new().reply(Reply::turn(Turn::new().tool_call(
        "c1",
        "final_answer",
        r##"{"answer":"# Findings\nall is well"}"##,
    )));
    let (o, _) = run_scripted_to(tmp.path(), script, "/proc/halo-no-such-report.md", &[]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stdout(&o).contains("all is well"), "{}", stdout(&o));
    assert!(
        stderr(&o).contains("cannot save the report"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn an_empty_model_name_is_refused_before_any_request() {
    let tmp = tempfile::tempdir().unwrap();
    let file = small_dataset(tmp.path());
    for flag in ["-m", "--synthesis-model", "--compaction-model"] {
        let o = halo(
            tmp.path(),
            &[file.to_str().unwrap(), "-p", "why?", flag, ""],
        );
        assert_eq!(o.status.code(), Some(1), "{flag}: {}", stderr(&o));
        assert!(stderr(&o).contains("model"), "{flag}: {}", stderr(&o));
    }
}

/// A model turn that asks for `count_traces`: a first turn that does some work.
fn count_turn() -> Reply {
    Reply::turn(Turn::new().tool_call("c1", "count_traces", "{}"))
}

/// `halo small_dataset -p "why?" -o r.md EXTRA...` against a server answering `script`:
/// the output, and the server's base URL. The directory holds `r.md` while it lives.
fn run_scripted(
    tmp: &std::path::Path,
    script: Script,
    extra: &[&str],
) -> (std::process::Output, String) {
    run_scripted_to(tmp, script, "r.md", extra)
}

/// [`run_scripted`] with the report written to `report`.
fn run_scripted_to(
    tmp: &std::path::Path,
    script: Script,
    report: &str,
    extra: &[&str],
) -> (std::process::Output, String) {
    let file = small_dataset(tmp);
    let rt = tokio::runtime::Runtime::new().unwrap();
    let server = rt.block_on(ScriptedServer::start(script));
    let url = server.base_url();
    let mut args = vec![file.to_str().unwrap(), "-p", "why?", "--base-url", &url];
    args.extend_from_slice(&["-o", report]);
    args.extend_from_slice(extra);
    (halo(tmp, &args), url)
}

#[test]
fn a_run_whose_budget_ends_before_any_report_exits_4_not_0() {
    let tmp = tempfile::tempdir().unwrap();
    let script = Script::new()
        .reply(count_turn())
        // Asked to write its report once the budget is used up, the model says nothing.
        .reply(Reply::text(""));
    let (o, _) = run_scripted(tmp.path(), script, &["--max-turns", "1"]);
    assert_eq!(o.status.code(), Some(4), "{}", stderr(&o));
    assert!(stderr(&o).contains("turn budget ran out"), "{}", stderr(&o));
    assert!(tmp.path().join("r.md").exists(), "what was found is saved");
}

#[test]
fn a_provider_failure_names_the_url_and_what_to_check() {
    let tmp = tempfile::tempdir().unwrap();
    let script = Script::new().reply(Reply::error(404, "404 page not found"));
    let (o, url) = run_scripted(tmp.path(), script, &[]);
    assert_eq!(o.status.code(), Some(3), "{}", stderr(&o));
    let err = stderr(&o);
    assert!(err.contains(&format!("provider at {url}")), "{err}");
    assert!(
        err.contains("HTTP 404") && err.contains("check --base-url"),
        "{err}"
    );
    assert!(err.contains("0 model calls (1 failed)"), "{err}");
}

/// A 404 that names the model (OpenAI's `model_not_found`) points at --model, not at a
/// base URL that was right; so does a 400 whose code alone names it (as some gateways
/// answer).
#[test]
fn an_unknown_model_points_at_the_model() {
    for (status, message) in [
        (
            404,
            "The model `gpt-9` does not exist or you do not have access to it.",
        ),
        (400, "Invalid request: unknown name gpt-9"),
    ] {
        let tmp = tempfile::tempdir().unwrap();
        let script = Script::new().reply(Reply::api_error(status, "model_not_found", message));
        let (o, _) = run_scripted(tmp.path(), script, &[]);
        assert_eq!(o.status.code(), Some(3), "{}", stderr(&o));
        let err = stderr(&o);
        assert!(err.contains("check --model"), "{status}: {err}");
        assert!(!err.contains("check --base-url"), "{status}: {err}");
    }
}

#[test]
fn without_a_prompt_the_offline_diagnosis_runs() {
    let tmp = tempfile::tempdir().unwrap();
    let file = small_dataset(tmp.path());
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_halo"));
    cmd.arg(file.to_str().unwrap())
        .env_remove("OPENAI_API_KEY")
        .current_dir(tmp.path());
    let o = cmd.output().unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stdout(&o).contains("-p"),
        "ends by showing how to go deeper: {}",
        stdout(&o)
    );
}

#[test]
fn ctrl_c_or_sigterm_mid_run_saves_the_report_and_exits_130_or_143() {
    for (signal, code) in [("INT", 130), ("TERM", 143)] {
        let tmp = tempfile::tempdir().unwrap();
        let file = small_dataset(tmp.path());
        let rt = tokio::runtime::Runtime::new().unwrap();
        // The first turn works; the second request never gets an answer.
        let server = rt.block_on(ScriptedServer::start(
            Script::new().reply(count_turn()).reply(Reply::hang()),
        ));
        let out = tmp.path().join("report.md");
        let child = spawn_halo(
            tmp.path(),
            &[
                file.to_str().unwrap(),
                "-p",
                "why?",
                "--base-url",
                &server.base_url(),
                "-o",
                out.to_str().unwrap(),
            ],
        );
        // Wait until the engine is blocked on the second model request, then signal.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        while server.requests().len() < 2 {
            assert!(
                std::time::Instant::now() < deadline,
                "the run never reached its second request"
            );
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        let o = send_signal(child, signal);
        assert_eq!(o.status.code(), Some(code), "{signal}: {}", stderr(&o));
        assert!(stderr(&o).contains("interrupted"), "{}", stderr(&o));
        assert!(out.exists(), "{signal}: the report so far is saved");
        assert!(tmp.path().join("report.record.json").exists());
    }
}

#[test]
fn resuming_a_completed_run_or_on_other_files_or_prompt_is_a_usage_error() {
    let tmp = tempfile::tempdir().unwrap();
    let file = small_dataset(tmp.path());
    let rt = tokio::runtime::Runtime::new().unwrap();
    let server = rt.block_on(ScriptedServer::start(
        Script::new()
            .reply(count_turn())
            .reply(Reply::turn(Turn::new().tool_call(
                "c2",
                "final_answer",
                r#"{"answer":"done"}"#,
            ))),
    ));
    let run = halo(
        tmp.path(),
        &[
            file.to_str().unwrap(),
            "-p",
            "why?",
            "--base-url",
            &server.base_url(),
            "--json",
        ],
    );
    assert!(run.status.success(), "{}", stderr(&run));
    let closing: serde_json::Value =
        serde_json::from_str(stdout(&run).lines().last().unwrap()).unwrap();
    assert_eq!(closing["type"], "run_finished");
    assert_eq!(closing["schema_version"], halo_rlm::EVENTS_SCHEMA_VERSION);
    let completed = closing["checkpoint_path"].as_str().unwrap().to_string();
    let base_url = server.base_url();
    // `halo FILE --resume CHECKPOINT [extra...]` is refused as a usage error saying `why`.
    let refused = |file: &std::path::Path, checkpoint: &str, extra: &[&str], why: &str| {
        let mut args = vec![
            file.to_str().unwrap(),
            "--resume",
            checkpoint,
            "--base-url",
            &base_url,
        ];
        args.extend_from_slice(extra);
        let o = halo(tmp.path(), &args);
        assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
        assert!(stderr(&o).contains(why), "{}", stderr(&o));
    };
    // The run completed: resuming it would only pay for the model calls again.
    refused(&file, &completed, &[], "already completed with its report");
    // The checkpoint of a run cut short (as after Ctrl-C) is resumable, on its own data
    // and with its own prompt only.
    let mut cp: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&completed).unwrap()).unwrap();
    assert_eq!(cp["completed"], true);
    cp["completed"] = false.into();
    let checkpoint = tmp.path().join("cut.checkpoint.json");
    std::fs::write(&checkpoint, cp.to_string()).unwrap();
    let checkpoint = checkpoint.to_str().unwrap().to_string();
    refused(
        &file,
        &checkpoint,
        &["-p", "something else?"],
        r#"it continues its own prompt ("why?")"#,
    );
    let other = write(
        tmp.path(),
        "other.jsonl",
        &[Span::new("x1", "root", "").line()],
    );
    refused(
        &other,
        &checkpoint,
        &[],
        "the checkpoint belongs to other data",
    );
}

#[test]
fn a_missing_file_is_named_before_the_key_is_asked_for() {
    let tmp = tempfile::tempdir().unwrap();
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_halo"));
    cmd.args(["nowhere.jsonl", "-p", "x"])
        .env_remove("OPENAI_API_KEY")
        .env_remove("OPENAI_BASE_URL")
        .current_dir(tmp.path());
    let o = cmd.output().unwrap();
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("nowhere.jsonl: no such file"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn a_dataset_without_traces_is_not_sent_to_the_model() {
    let tmp = tempfile::tempdir().unwrap();
    let empty = write(tmp.path(), "empty.jsonl", &["not json".to_string()]);
    let rt = tokio::runtime::Runtime::new().unwrap();
    let server = rt.block_on(ScriptedServer::start(
        Script::new().reply(Reply::turn(Turn::new().text("hello"))),
    ));
    let o = halo(
        tmp.path(),
        &[
            empty.to_str().unwrap(),
            "-p",
            "x",
            "--base-url",
            &server.base_url(),
        ],
    );
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(stderr(&o).contains("holds no traces"), "{}", stderr(&o));
    assert!(server.requests().is_empty(), "no model call was made");
}

#[test]
fn a_run_without_a_final_answer_exits_4_and_quiet_means_quiet() {
    let tmp = tempfile::tempdir().unwrap();
    let file = small_dataset(tmp.path());
    let rt = tokio::runtime::Runtime::new().unwrap();
    // The root answers in plain text twice (the second time after being asked for
    // final_answer): the run ends without a report.
    let server = rt.block_on(ScriptedServer::start(
        Script::new()
            .reply(Reply::turn(Turn::new().text("I would look at the errors.")))
            .reply(Reply::turn(Turn::new().text("Still thinking."))),
    ));
    let out = tmp.path().join("r.md");
    let o = halo(
        tmp.path(),
        &[
            file.to_str().unwrap(),
            "-p",
            "x",
            "--base-url",
            &server.base_url(),
            "-q",
            "-o",
            out.to_str().unwrap(),
        ],
    );
    assert_eq!(o.status.code(), Some(4), "{}", stderr(&o));
    assert!(out.exists(), "what the root wrote is saved");
    let err = stderr(&o);
    assert!(err.contains("without a final answer"), "{err}");
    assert!(
        !err.contains("halo: run ") && !err.contains("report saved to"),
        "-q prints no progress: {err}"
    );
}

#[test]
fn a_file_shrinking_under_a_read_is_explained_with_exit_2() {
    // SIGBUS is what reading a mapped page of a truncated file raises; sent by hand here,
    // to a run that is waiting on its model, it takes the same way out.
    let tmp = tempfile::tempdir().unwrap();
    let file = small_dataset(tmp.path());
    let rt = tokio::runtime::Runtime::new().unwrap();
    let server = rt.block_on(ScriptedServer::start(Script::new().reply(Reply::hang())));
    let child = spawn_halo(
        tmp.path(),
        &[
            file.to_str().unwrap(),
            "-p",
            "x",
            "--base-url",
            &server.base_url(),
            "--json",
        ],
    );
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while server.requests().is_empty() {
        assert!(std::time::Instant::now() < deadline, "no model request");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let sent = std::process::Command::new("kill")
        .args(["-BUS", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(sent.success());
    let o = child.wait_with_output().unwrap();
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("shrank while halo was reading it"),
        "{}",
        stderr(&o)
    );
    let last = stdout(&o).lines().last().unwrap_or_default().to_string();
    let line: serde_json::Value = serde_json::from_str(&last).unwrap();
    assert_eq!(line["type"], "error");
    assert_eq!(line["error"]["exit_code"], 2);
}
