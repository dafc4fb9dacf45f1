//! Nothing panics on user input: seeded mutations of real trace lines (the bundled
//! examples in both formats, and the public fixtures when they sit beside the checkout)
//! go through every reader of this crate that sees a line's text: the line finder, the
//! parser, the semantic facts, message lists, error templates and tracebacks.
//!
//! `HALO_MUTATION_ROUNDS` raises the number of mutations per line (default 2) for a
//! longer hunt; `HALO_MUTATION_SEED` picks another sequence. A failure prints the seed and
//! the mutated line, which reproduce it.

use std::panic::{catch_unwind, AssertUnwindSafe};

use halo_testkit::mutate::Mutator;
use halo_trace::messages::llm_messages;
use halo_trace::traceback::traceback_exception;
use halo_trace::{
    error_template, model_family, next_line, parse_line, parse_line_checked, SpanFacts,
};
use serde_json::Value;

fn env_number(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Canonical lines as they are; OTLP lines cut down to one span each (with their resource
/// and scope), so that a mutation lands on one span's fields rather than anywhere in a
/// 40 KB export.
fn base_lines() -> Vec<String> {
    let mut lines = Vec::new();
    let canonical = halo_testkit::workspace_path("examples/data/agent-traces.jsonl");
    let text = std::fs::read_to_string(canonical).expect("the example data is in the repository");
    // Every fifth line keeps the test quick in debug builds and still covers each dialect
    // the generator writes.
    lines.extend(text.lines().step_by(5).map(str::to_owned));
    let otlp = halo_testkit::workspace_path("examples/data/agent-traces.otlp.jsonl");
    let text = std::fs::read_to_string(otlp).expect("the OTLP example is in the repository");
    for line in text.lines() {
        lines.extend(single_span_otlp_lines(line).into_iter().step_by(3));
    }
    let fixtures = halo_testkit::workspace_path("../shared/data/halo-fixtures");
    match std::fs::read_dir(&fixtures) {
        Ok(entries) => {
            for entry in entries.flatten() {
                if let Ok(text) = std::fs::read_to_string(entry.path()) {
                    lines.extend(text.lines().step_by(3).map(str::to_owned));
                }
            }
        }
        Err(_) => eprintln!(
            "the public fixtures at {} are absent (they are not part of a user's clone); \
             mutating the bundled examples only",
            fixtures.display()
        ),
    }
    lines
}

fn single_span_otlp_lines(line: &str) -> Vec<String> {
    let Ok(export) = serde_json::from_str::<Value>(line) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for resource_spans in export["resourceSpans"].as_array().into_iter().flatten() {
        for scope_spans in resource_spans["scopeSpans"]
            .as_array()
            .into_iter()
            .flatten()
        {
            for span in scope_spans["spans"].as_array().into_iter().flatten() {
                let one = serde_json::json!({"resourceSpans": [{
                    "resource": resource_spans["resource"],
                    "scopeSpans": [{"scope": scope_spans["scope"], "spans": [span]}],
                }]});
                out.push(one.to_string());
            }
        }
    }
    out
}

/// The lines of `bytes` as the index finds them, each through every reader.
fn read_lines(bytes: &[u8]) {
    let mut from = 0;
    loop {
        let line = next_line(bytes, from);
        if let Ok(text) = line.text {
            read_everything(text, line.control_free);
        }
        if line.end >= bytes.len() {
            break;
        }
        from = line.end + 1;
    }
}

/// Every reader of the crate that sees text from the line.
fn read_everything(line: &str, control_free: bool) {
    let Ok(parsed) = parse_line_checked(line, control_free) else {
        return;
    };
    for (span, range) in &parsed.spans {
        assert!(
            line.get(range.clone()).is_some(),
            "span range {range:?} is not in the line"
        );
        let facts = SpanFacts::extract(span);
        let messages = llm_messages(span);
        std::hint::black_box(&messages);
        if let Some(message) = &facts.error_message {
            std::hint::black_box(error_template(message));
            std::hint::black_box(traceback_exception(message));
        }
        std::hint::black_box(traceback_exception(&span.status_message));
        std::hint::black_box(error_template(&span.status_message));
        if let Some(model) = &facts.model {
            std::hint::black_box(model_family(model));
        }
        std::hint::black_box(span.service_name());
        std::hint::black_box(span.duration_ms());
    }
    parsed.recycle();
}

#[test]
fn mutated_lines_never_panic_any_reader() {
    let seed = env_number("HALO_MUTATION_SEED", 23);
    let rounds = env_number("HALO_MUTATION_ROUNDS", 2);
    let lines = base_lines();
    assert!(lines.len() > 500, "{} base lines", lines.len());
    let mut mutator = Mutator::new(seed);
    let mut parsed = 0usize;
    let mut tried = 0usize;
    for line in &lines {
        for _ in 0..rounds {
            let mutated = mutator.mutate(line);
            tried += 1;
            let outcome = catch_unwind(AssertUnwindSafe(|| read_lines(mutated.as_bytes())));
            assert!(
                outcome.is_ok(),
                "a reader panicked (HALO_MUTATION_SEED={seed}) on this line:\n{mutated}"
            );
            if parse_line(&mutated).is_ok_and(|p| !p.spans.is_empty()) {
                parsed += 1;
            }
        }
    }
    // The mutations are meant to reach the readers after the parser: most must parse.
    assert!(
        parsed * 2 > tried,
        "only {parsed} of {tried} mutated lines parsed"
    );
}

/// Byte-level damage: whatever the bytes, the line finder and the UTF-8 check hold, and a
/// line that is valid UTF-8 goes through every reader.
#[test]
fn damaged_bytes_never_panic_the_line_finder_or_the_readers() {
    let seed = env_number("HALO_MUTATION_SEED", 23);
    let mut mutator = Mutator::new(seed ^ 0x5eed);
    for line in base_lines().iter().step_by(4) {
        let damaged = mutator.mutate_bytes(line.as_bytes());
        let outcome = catch_unwind(AssertUnwindSafe(|| read_lines(&damaged)));
        assert!(
            outcome.is_ok(),
            "a reader panicked (HALO_MUTATION_SEED={seed}) on these bytes:\n{}",
            String::from_utf8_lossy(&damaged)
        );
    }
}
