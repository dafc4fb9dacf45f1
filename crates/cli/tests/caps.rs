//! The reference's caps: 4,096 characters per value in view_trace, 16,384 in view_spans, an
//! oversized summary past 150,000 bytes, and a 25,000-span trace that can still be read.

mod common;

use common::*;

#[test]
fn value_caps_match_the_reference() {
    let tmp = tempfile::tempdir().unwrap();
    let value = "v".repeat(20_000);
    let file = write(
        tmp.path(),
        "caps.jsonl",
        &[Span::new("t", "a", "")
            .attrs(&format!(r#"{{"input.value":"{value}","n":1}}"#))
            .line()],
    );
    let f = file.to_str().unwrap();
    let trace = json(&halo(tmp.path(), &["view", f, "t", "--json"]));
    let capped = trace["spans"][0]["attributes"]["input.value"]
        .as_str()
        .unwrap();
    assert_eq!(
        capped,
        format!("{}…[truncated: original 20000 chars]", "v".repeat(4_096))
    );
    assert_eq!(trace["spans"][0]["attributes"]["n"], 1);
    let spans = json(&halo(
        tmp.path(),
        &["view", f, "t", "--span", "a", "--json"],
    ));
    let capped = spans["spans"][0]["attributes"]["input.value"]
        .as_str()
        .unwrap();
    assert!(
        capped.starts_with(&"v".repeat(16_384))
            && capped.ends_with("[truncated: original 20000 chars]")
    );
}

#[test]
fn a_25000_span_trace_is_summarized_paged_and_searched() {
    let tmp = tempfile::tempdir().unwrap();
    let mut lines = vec![Span::new("giant", "root", "").line()];
    for i in 0..25_000 {
        let mut s = Span::new("giant", &format!("s{i}"), "root")
            .attrs(r#"{"openinference.span.kind":"TOOL","tool.name":"poll"}"#);
        if i == 24_321 {
            s = s.error("deadline exceeded at step 24321");
        }
        lines.push(s.line());
    }
    let file = write(tmp.path(), "giant.jsonl", &lines);
    let f = file.to_str().unwrap();
    let v = json(&halo(tmp.path(), &["view", f, "giant", "--json"]));
    assert_eq!(v["span_count"], 25_001);
    assert!(v["spans"].as_array().unwrap().is_empty());
    let summary = &v["oversized"];
    assert_eq!(summary["error_span_count"], 1);
    assert_eq!(summary["error_spans"][0]["span_id"], "s24321");
    assert!(summary["hint"].as_str().unwrap().contains("offset"));
    let page = json(&halo(
        tmp.path(),
        &[
            "view", f, "giant", "--offset", "100", "--limit", "50", "--json",
        ],
    ));
    assert_eq!(page["spans"].as_array().unwrap().len(), 50);
    assert!(page["oversized"].is_null());
    assert_eq!(page["next_offset"], 150);
    assert!(summary["suggested_limit"].as_u64().unwrap() >= 1);
    // The last page is short; a page past the end says where the spans end.
    let last = json(&halo(
        tmp.path(),
        &["view", f, "giant", "--offset", "25000", "--json"],
    ));
    assert_eq!(last["spans"].as_array().unwrap().len(), 1);
    assert!(last.get("next_offset").is_none(), "the last page");
    let past = halo(tmp.path(), &["view", f, "giant", "--offset", "25001"]);
    assert_eq!(past.status.code(), Some(1));
    assert!(
        stderr(&past).contains(
            "25001 is past the last span: the trace has 25001 spans (offsets 0 to 25000)"
        ),
        "{}",
        stderr(&past)
    );
    let s = json(&halo(
        tmp.path(),
        &["search", f, "giant", "deadline exceeded", "--json"],
    ));
    assert_eq!(s["total_matches"], 1);
    assert_eq!(s["matches"][0]["span_id"], "s24321");
    let many = json(&halo(
        tmp.path(),
        &["search", f, "giant", "poll", "--max-matches", "5", "--json"],
    ));
    assert_eq!(many["total_matches"], 25_000);
    assert_eq!(many["has_more"], true);
    assert_eq!(many["matches"].as_array().unwrap().len(), 5);
}

#[test]
fn oversized_past_150_kb_even_for_few_spans() {
    let tmp = tempfile::tempdir().unwrap();
    let value = "w".repeat(4_000);
    let lines: Vec<String> = (0..60)
        .map(|i| {
            Span::new("wide", &format!("s{i}"), "")
                .attrs(&format!(r#"{{"a":"{value}","b":"{value}"}}"#))
                .line()
        })
        .collect();
    let file = write(tmp.path(), "wide.jsonl", &lines);
    let v = json(&halo(
        tmp.path(),
        &["view", file.to_str().unwrap(), "wide", "--json"],
    ));
    assert!(v["oversized"]["response_bytes"].as_u64().unwrap() > 150_000);
    assert!(v["spans"].as_array().unwrap().is_empty());
    // A page of 200 would be too big as well; the hint says what page size fits, and it does.
    let hint = v["oversized"]["hint"].as_str().unwrap();
    let fits: usize = hint
        .split("limit=")
        .last()
        .and_then(|rest| rest.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no page size in {hint}"));
    assert!(fits < 60, "{hint}");
    let page = json(&halo(
        tmp.path(),
        &[
            "view",
            file.to_str().unwrap(),
            "wide",
            "--offset",
            "0",
            "--limit",
            &fits.to_string(),
            "--json",
        ],
    ));
    assert!(page["oversized"].is_null(), "{hint}");
    assert_eq!(page["spans"].as_array().unwrap().len(), fits);
}

#[test]
fn one_span_past_150_kb_is_shown_with_its_values_cut_shorter() {
    // An LLM span of 200 flattened messages, every value under the 4,096 cap: 236 KB of
    // JSON. A page of one span cannot be paged finer, so it must show that span.
    let tmp = tempfile::tempdir().unwrap();
    let message = "lorem ipsum ".repeat(90);
    let attrs: Vec<String> = (0..200)
        .map(|i| format!(r#""llm.input_messages.{i}.message.content":"{message}""#))
        .collect();
    let big = format!(r#"{{"openinference.span.kind":"LLM",{}}}"#, attrs.join(","));
    let file = write(
        tmp.path(),
        "conv.jsonl",
        &[
            Span::new("conv", "c0", "").line(),
            Span::new("conv", "c1", "c0").attrs(&big).line(),
        ],
    );
    let f = file.to_str().unwrap();
    for args in [
        &["view", f, "conv", "--offset", "1", "--limit", "1", "--json"][..],
        &["view", f, "conv", "--span", "c1", "--json"][..],
    ] {
        let v = json(&halo(tmp.path(), args));
        assert!(v["oversized"].is_null(), "{args:?}: {v}");
        assert_eq!(v["spans"][0]["span_id"], "c1", "{args:?}");
        let cut = v["values_cut_to"].as_u64().unwrap();
        assert!((256..4_096).contains(&cut), "{cut}");
        let value = v["spans"][0]["attributes"]["llm.input_messages.7.message.content"]
            .as_str()
            .unwrap();
        assert!(
            value.ends_with("[truncated: original 1080 chars]"),
            "{value}"
        );
        assert!(serde_json::to_vec(&v["spans"]).unwrap().len() <= 150_000);
    }
    let text = stdout(&halo(tmp.path(), &["view", f, "conv", "--span", "c1"]));
    assert!(text.contains("each attribute value is cut to"), "{text}");
    // Both spans together still do not fit: the whole trace is summarized, and its hint's
    // page size (one span) now shows each span.
    let whole = json(&halo(tmp.path(), &["view", f, "conv", "--json"]));
    assert!(!whole["oversized"].is_null());
}

#[test]
fn one_span_of_thousands_of_attributes_shows_those_that_fit() {
    // 3,000 flattened messages: past 150 KB even with every value cut to 256 characters.
    let tmp = tempfile::tempdir().unwrap();
    let message = "x".repeat(300);
    let attrs: Vec<String> = (0..3_000)
        .map(|i| format!(r#""llm.input_messages.{i:04}.message.content":"{message}""#))
        .collect();
    let big = format!(
        r#"{{"openinference.span.kind":"LLM","llm.model_name":"m1",{}}}"#,
        attrs.join(",")
    );
    let file = write(
        tmp.path(),
        "wide.jsonl",
        &[Span::new("wide", "w0", "").attrs(&big).line()],
    );
    let f = file.to_str().unwrap();
    let v = json(&halo(
        tmp.path(),
        &["view", f, "wide", "--span", "w0", "--json"],
    ));
    assert!(v["oversized"].is_null(), "{v}");
    let span = &v["spans"][0];
    assert_eq!(span["span_id"], "w0");
    assert_eq!(span["span_kind"], "LLM");
    let shown = span["attributes"].as_object().unwrap();
    let omitted = span["omitted_attributes"].as_u64().unwrap() as usize;
    assert!(
        shown.len() > 100 && omitted > 100,
        "{} {omitted}",
        shown.len()
    );
    assert_eq!(shown.len() + omitted, 3_002);
    // The first in key order are the ones kept.
    assert!(shown.contains_key("llm.input_messages.0000.message.content"));
    assert!(serde_json::to_vec(&v["spans"]).unwrap().len() <= 150_000);
    let text = stdout(&halo(tmp.path(), &["view", f, "wide", "--span", "w0"]));
    assert!(
        text.contains(&format!(
            "its last {omitted} attributes in key order are left out"
        )),
        "{text}"
    );
}

/// Names and status messages are values like any other: a megabyte traceback in a status
/// message is cut, so the span can be shown, and a summary of spans with megabyte names
/// still fits its cap.
#[test]
fn long_names_and_status_messages_are_cut_like_values() {
    let tmp = tempfile::tempdir().unwrap();
    let traceback = "Traceback line\\n".repeat(70_000);
    let mut lines = vec![Span::new("tb", "a", "").error(&traceback).line()];
    for i in 0..80 {
        let mut s = Span::new("names", &format!("s{i}"), "").error("boom");
        s.name = format!("{i}-{}", "n".repeat(100_000));
        lines.push(s.line());
    }
    let file = write(tmp.path(), "long.jsonl", &lines);
    let f = file.to_str().unwrap();

    let one = halo(tmp.path(), &["view", f, "tb", "--span", "a", "--json"]);
    assert!(one.status.success(), "{}", stderr(&one));
    let one = json(&one);
    let message = one["spans"][0]["status"]["message"].as_str().unwrap();
    assert!(message.len() < 20_000, "{} bytes", message.len());
    assert!(
        message.ends_with("[truncated: original 1050000 chars]"),
        "{}",
        &message[message.len() - 80..]
    );

    let out = halo(tmp.path(), &["view", f, "names", "--json"]);
    assert!(stdout(&out).len() < 150_000, "{} bytes", stdout(&out).len());
    let summary = &json(&out)["oversized"];
    assert_eq!(summary["error_span_count"], 80);
    let name = summary["largest_spans"][0]["name"].as_str().unwrap();
    assert!(
        name.ends_with("[truncated: original 100003 chars]"),
        "{name:.80}"
    );

    // And a search names the span once per match, cut.
    let found = halo(tmp.path(), &["search", f, "names", "boom", "--json"]);
    assert!(
        stdout(&found).len() < 200_000,
        "{} bytes",
        stdout(&found).len()
    );
}

/// The page an oversized summary suggests is sized by spans as a view shows them (values
/// capped at 4,096 characters), not by their raw size: it fits, and is not a fraction of
/// what would.
#[test]
fn the_suggested_page_fits_and_is_not_needlessly_small() {
    let tmp = tempfile::tempdir().unwrap();
    let big = "q".repeat(30_000);
    let lines: Vec<String> = (0..300)
        .map(|i| {
            Span::new("fat", &format!("s{i:03}"), "")
                .attrs(&format!(r#"{{"input.value":"{big}"}}"#))
                .line()
        })
        .collect();
    let file = write(tmp.path(), "fat.jsonl", &lines);
    let f = file.to_str().unwrap();
    let v = json(&halo(tmp.path(), &["view", f, "fat", "--json"]));
    let limit = v["oversized"]["suggested_limit"].as_u64().unwrap();
    // About 4.4 KB a span shown: some 30 fit in 90% of 150 KB; raw sizes said 4.
    assert!(limit >= 20, "{limit}");
    let page = halo(
        tmp.path(),
        &["view", f, "fat", "--limit", &limit.to_string(), "--json"],
    );
    let page = json(&page);
    assert!(page["oversized"].is_null(), "{page:.300}");
    assert_eq!(page["spans"].as_array().unwrap().len() as u64, limit);
}
