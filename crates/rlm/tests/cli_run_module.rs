//! Compiles the CLI's `run` module against this crate and runs its unit tests
//! and an end-to-end `execute` against the scripted server.

#![allow(unreachable_pub, dead_code)]

#[path = "../../cli/src/cmd/run.rs"]
mod run;

mod common;

use clap::Parser;
use halo_testkit::scripted_server::{Reply, Script, ScriptedServer, Turn};

#[derive(Debug, Parser)]
struct Cli {
    #[command(flatten)]
    run: run::RunArgs,
}

#[test]
fn execute_saves_report_record_and_checkpoint() {
    let data = common::data();
    let server_rt = tokio::runtime::Runtime::new().unwrap();
    let server = server_rt.block_on(ScriptedServer::start(
        Script::new()
            .reply(Reply::turn(Turn::new().tool_call(
                "c1",
                "count_traces",
                "{}",
            )))
            .reply(Reply::turn(Turn::new().tool_call(
                "c2",
                "final_answer",
                r##"{"answer":"# Findings\n3 traces [trace:t1] [trace:bogus]"}"##,
            ))),
    ));
    let out = data.dir.path().join("report.md");
    let cli = Cli::try_parse_from([
        "halo",
        "-p",
        "why",
        "--base-url",
        &server.base_url(),
        "--api-key",
        "sk-cli-SECRET",
        "-H",
        "X-Trace: on",
        "-o",
        out.to_str().unwrap(),
    ])
    .unwrap();
    let code = run::execute(&cli.run, data.dataset.clone(), true).unwrap();
    assert_eq!(code, std::process::ExitCode::SUCCESS);
    let report = std::fs::read_to_string(&out).unwrap();
    assert!(report.contains("# Findings"));
    assert!(report.contains("[trace:bogus] ⚠ unverified citation"));
    let record: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(data.dir.path().join("report.record.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(record["status"], "completed");
    assert_eq!(record["model"], "gpt-5.4-mini");
    assert_eq!(record["tools"]["count_traces"]["calls"], 1);
    let cp = std::fs::read_to_string(data.dir.path().join("report.checkpoint.json")).unwrap();
    for text in [&report, &cp, &record.to_string()] {
        assert!(!text.contains("sk-cli-SECRET"));
    }
    let reqs = server.requests();
    assert_eq!(reqs[0].header("x-trace"), Some("on"));
}
