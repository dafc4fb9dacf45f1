//! Human-readable renderings of the query results.

use std::collections::HashMap;
use std::fmt::Write;

use halo_diagnose::counted;
use halo_index::FileReport;
use halo_query::{GrepResult, Overview, ScanInfo, SearchResult, TraceList, TraceView};

use super::table::{bytes, cut, inline, millis, thousands, Table};

fn scan_note(out: &mut String, scan: &Option<ScanInfo>) {
    if let Some(note) = scan.as_ref().and_then(partial_scan_note) {
        let _ = writeln!(out, "{note}");
    }
}

/// The note for a scan the time budget cut short (stopping at `--max-matches` is said by
/// the caller: "more exist"). The budget can also run out after the whole data was read,
/// while matching lines are traced to their traces.
pub(crate) fn partial_scan_note(s: &ScanInfo) -> Option<String> {
    if s.complete || s.stopped_by == Some(halo_query::StopReason::MaxMatches) {
        return None;
    }
    let where_ = match s.scanned_bytes >= s.total_bytes {
        true => format!(
            "after all {} were scanned, while matching lines were traced to their traces",
            bytes(s.total_bytes)
        ),
        false => format!(
            "{} of {} scanned",
            bytes(s.scanned_bytes),
            bytes(s.total_bytes)
        ),
    };
    Some(format!(
        "note: the data scan stopped early at the time budget ({where_}); results are partial, raise --time-budget"
    ))
}

/// `halo index`.
pub(crate) fn index_report(reports: &[FileReport], traces: usize, problems: u64) -> String {
    let mut out = String::new();
    let mut t = Table::new(&[
        "file", "action", "size", "lines", "spans", "traces", "skipped", "time",
    ]);
    for r in reports {
        let action = match &r.action {
            halo_index::IndexAction::Reused => "reused".to_string(),
            halo_index::IndexAction::Built => "built".to_string(),
            halo_index::IndexAction::Appended { bytes: b } => format!("appended {}", bytes(*b)),
            halo_index::IndexAction::Rebuilt { reason } => format!("rebuilt ({reason})"),
        };
        t.row(vec![
            r.path.display().to_string(),
            action,
            if r.gzip {
                format!("{} ({} gz)", bytes(r.data_bytes), bytes(r.fingerprint.size))
            } else {
                bytes(r.data_bytes)
            },
            thousands(r.lines as i64),
            thousands(r.spans as i64),
            thousands(r.traces as i64),
            thousands((r.skipped_lines + r.skipped_spans) as i64),
            millis(r.elapsed_ms),
        ]);
    }
    out.push_str(&t.render(""));
    let _ = writeln!(
        out,
        "\n{} trace(s) in the dataset; {} problem(s)",
        thousands(traces as i64),
        problems
    );
    const LISTED: usize = 5;
    for r in reports.iter().take(LISTED) {
        let _ = writeln!(
            out,
            "index: {} ({})",
            crate::render::table::inline(&r.index_dir.display().to_string()),
            bytes(r.index_bytes)
        );
    }
    if reports.len() > LISTED {
        let _ = writeln!(
            out,
            "... and {} more index directories",
            reports.len() - LISTED
        );
    }
    out
}

/// `halo overview`.
pub(crate) fn overview(o: &Overview) -> String {
    let mut out = String::new();
    let pct = |n: u64, of: u64| {
        if of == 0 {
            0.0
        } else {
            n as f64 * 100.0 / of as f64
        }
    };
    let _ = writeln!(
        out,
        // The bytes of the spans' own lines (`raw_jsonl_bytes`), not the files' sizes: line
        // ends, skipped lines and gzip framing are not in it.
        "{} · {} · {} · {} of spans",
        counted(o.total_traces, "trace", "traces"),
        counted(o.total_spans, "span", "spans"),
        counted(o.file_count, "file", "files"),
        bytes(o.raw_jsonl_bytes)
    );
    if let (Some(s), Some(e)) = (&o.start_time, &o.end_time) {
        let _ = writeln!(out, "time range    {s} .. {e}");
    }
    let _ = writeln!(
        out,
        "errors        {} with errors ({:.1}%), {}, {} in {}",
        counted(o.error_trace_count, "trace", "traces"),
        pct(o.error_trace_count, o.total_traces),
        counted(o.error_span_count, "error span", "error spans"),
        counted(
            o.tool_error_span_count,
            "failed tool call",
            "failed tool calls"
        ),
        counted(o.tool_error_trace_count, "trace", "traces"),
    );
    let _ = writeln!(
        out,
        "calls         {} LLM, {} tool",
        thousands(o.llm_call_count as i64),
        thousands(o.tool_call_count as i64)
    );
    let mut tokens = format!(
        "tokens        {} in, {} out, {} total",
        thousands(o.total_input_tokens),
        thousands(o.total_output_tokens),
        thousands(o.total_tokens)
    );
    if let Some(c) = o.total_cost {
        let _ = write!(tokens, " · cost {c:.4}");
        // A total over part of the calls says so.
        if o.priced_span_count < o.llm_call_count {
            let _ = write!(
                tokens,
                " (on the {} {} one; {} in all)",
                counted(o.priced_span_count, "span", "spans"),
                if o.priced_span_count == 1 {
                    "that carries"
                } else {
                    "that carry"
                },
                counted(o.llm_call_count, "model call", "model calls")
            );
        }
    }
    let _ = writeln!(out, "{tokens}");
    let _ = writeln!(
        out,
        "durations     p50 {} · p90 {} · p99 {} · max {}",
        millis(o.duration_ms.p50),
        millis(o.duration_ms.p90),
        millis(o.duration_ms.p99),
        millis(o.duration_ms.max)
    );
    let _ = writeln!(
        out,
        "spans/trace   p50 {:.0} · max {:.0}",
        o.spans_per_trace.p50, o.spans_per_trace.max
    );
    let names = |v: &[halo_query::NameCount]| {
        if v.is_empty() {
            return "-".to_string();
        }
        let mut s: Vec<String> = v
            .iter()
            .take(8)
            .map(|n| format!("{} ({})", inline(&n.name), thousands(n.trace_count as i64)))
            .collect();
        if v.len() > 8 {
            s.push(format!("+{} more", v.len() - 8));
        }
        s.join(", ")
    };
    let _ = writeln!(out, "services      {}", names(&o.services));
    let _ = writeln!(out, "models        {}", names(&o.models));
    let _ = writeln!(out, "agents        {}", names(&o.agents));
    if !o.projects.is_empty() {
        let _ = writeln!(out, "projects      {}", names(&o.projects));
    }
    if o.session_count > 0 {
        let _ = writeln!(out, "sessions      {}", thousands(o.session_count as i64));
    }
    if o.skipped_lines > 0
        || o.problem_count > 0
        || o.missing_parent_span_count > 0
        || o.duplicate_span_count > 0
    {
        let _ = writeln!(
            out,
            "data quality  {}, {}, {} with a missing parent, {}",
            counted(o.skipped_lines, "skipped line", "skipped lines"),
            counted(o.problem_count, "problem", "problems"),
            counted(o.missing_parent_span_count, "span", "spans"),
            counted(
                o.duplicate_span_count,
                "duplicate span id",
                "duplicate span ids"
            )
        );
    }
    if !o.tools.is_empty() {
        let mut t = Table::new(&["tool", "calls", "errors", "error rate", "traces"]);
        for tool in o.tools.iter().take(25) {
            t.row(vec![
                tool.name.clone(),
                thousands(tool.calls as i64),
                thousands(tool.errors as i64),
                format!("{:.1}%", tool.error_rate * 100.0),
                thousands(tool.trace_count as i64),
            ]);
        }
        let _ = writeln!(out, "\ntools");
        out.push_str(&t.render("  "));
        if o.tools.len() > 25 {
            let _ = writeln!(
                out,
                "  … {} more tools (--json lists all)",
                o.tools.len() - 25
            );
        }
    }
    if !o.error_taxonomy.is_empty() {
        let mut t = Table::new(&["traces", "spans", "error group", "example"]);
        for g in &o.error_taxonomy {
            t.row(vec![
                thousands(g.trace_count as i64),
                thousands(g.span_count as i64),
                cut(&g.group, 90),
                g.sample_trace_ids.first().cloned().unwrap_or_default(),
            ]);
        }
        let _ = writeln!(out, "\nerror taxonomy");
        out.push_str(&t.render("  "));
    }
    if !o.sample_trace_ids.is_empty() {
        let _ = writeln!(
            out,
            "\nsample traces: {}",
            o.sample_trace_ids
                .iter()
                .take(6)
                .map(|id| inline(id).into_owned())
                .collect::<Vec<_>>()
                .join(" ")
        );
    }
    scan_note(&mut out, &o.scan);
    out
}

/// `halo query`.
pub(crate) fn trace_list(list: &TraceList) -> String {
    let mut out = String::new();
    let mut t = Table::new(&[
        "trace_id",
        "start",
        "duration",
        "spans",
        "errors",
        "tokens",
        "root",
        "tools / top error",
    ]);
    for r in &list.traces {
        let detail = match r.error_groups.first() {
            Some(g) => g.clone(),
            None => r
                .tools
                .iter()
                .map(|u| u.name.as_str())
                .collect::<Vec<_>>()
                .join(","),
        };
        t.row(vec![
            r.trace_id.clone(),
            r.start_time
                .get(..19)
                .unwrap_or(&r.start_time)
                .replace('T', " "),
            millis(r.duration_ms),
            r.span_count.to_string(),
            r.error_span_count.to_string(),
            thousands(r.total_tokens),
            cut(&r.root_span_name, 24),
            cut(&detail, 60),
        ]);
    }
    if t.is_empty() && list.total > 0 {
        let _ = writeln!(
            out,
            "no traces on this page: {} match, and --offset {} is past the last",
            thousands(list.total as i64),
            list.offset
        );
    } else if t.is_empty() {
        out.push_str("no traces match\n");
    } else {
        out.push_str(&t.render(""));
    }
    let shown = list.traces.len();
    let _ = writeln!(
        out,
        "{} of {} trace(s){}",
        if shown == 0 {
            "0".to_string()
        } else {
            format!("{}-{}", list.offset + 1, list.offset + shown)
        },
        thousands(list.total as i64),
        if list.has_more {
            format!("; next page: --offset {}", list.offset + shown)
        } else {
            String::new()
        }
    );
    scan_note(&mut out, &list.scan);
    out
}

/// `halo view`: a span tree with attributes.
pub(crate) fn trace_view(v: &TraceView) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "trace {} · {}",
        inline(&v.trace_id),
        counted(v.span_count, "span", "spans")
    );
    if let Some(o) = &v.oversized {
        let _ = writeln!(
            out,
            "too large to show at once ({} of JSON for {}; {} in the trace)",
            bytes(o.response_bytes),
            counted(o.requested_span_count, "span", "spans"),
            counted(o.error_span_count, "error span", "error spans")
        );
        if o.requested_span_count == 1 {
            // One span cannot be paged: the summary says what reads it instead.
            let _ = writeln!(out, "{}", halo_trace::printable(&o.hint));
        } else {
            let _ = writeln!(
                out,
                "page through it with --offset {} --limit {} (a page that fits; at most 200), show chosen \
                 spans with --span SPAN_ID, or find spans with `halo search`",
                v.offset, o.suggested_limit
            );
        }
        let mut t = Table::new(&["count", "span name"]);
        for n in &o.top_span_names {
            t.row(vec![thousands(n.count as i64), n.name.clone()]);
        }
        out.push_str(&t.render("  "));
        if !o.error_spans.is_empty() {
            let _ = writeln!(out, "error spans:");
            for s in &o.error_spans {
                let _ = writeln!(
                    out,
                    "  {} {} {}",
                    inline(&s.span_id),
                    inline(&s.name),
                    cut(s.error_message.as_deref().unwrap_or(""), 100)
                );
            }
        }
        return out;
    }
    if v.spans.is_empty() {
        let _ = writeln!(
            out,
            "no spans on this page (the trace has {} spans; offset {})",
            v.span_count, v.offset
        );
    }
    if let Some(chars) = v.values_cut_to {
        let omitted = v.spans.iter().find_map(|s| s.omitted_attributes);
        let _ = writeln!(
            out,
            "(this span is large: each attribute value is cut to {chars} characters{} so that it fits; \
             `halo search` reads whole values)",
            match omitted {
                Some(n) => format!(", and its last {n} attributes in key order are left out"),
                None => String::new(),
            }
        );
    }
    let index: HashMap<&str, usize> = v
        .spans
        .iter()
        .enumerate()
        .map(|(i, s)| (s.span_id.as_str(), i))
        .collect();
    let mut children: Vec<Vec<usize>> = vec![Vec::new(); v.spans.len()];
    let mut parent: Vec<Option<usize>> = vec![None; v.spans.len()];
    let mut roots = Vec::new();
    for (i, s) in v.spans.iter().enumerate() {
        match index.get(s.parent_span_id.as_str()) {
            Some(&p) if p != i => {
                children[p].push(i);
                parent[i] = Some(p);
            }
            _ => roots.push(i),
        }
    }
    // Spans whose parents lead round in a loop are reached from no root. Each loop is
    // shown from a span in it (found by following parents until one comes round again),
    // with what hangs off the loop under it, so that no span of the page goes missing.
    // Found before anything is written, so that only the very last top-level entry, root
    // or loop, is drawn as the last.
    let mut reached = vec![false; v.spans.len()];
    for &r in &roots {
        reach(&children, r, &mut reached);
    }
    let mut loop_starts = Vec::new();
    for i in 0..v.spans.len() {
        if reached[i] {
            continue;
        }
        let mut on_path = vec![false; v.spans.len()];
        let mut at = i;
        while let Some(p) = parent[at].filter(|_| !on_path[at]) {
            on_path[at] = true;
            at = p;
        }
        reach(&children, at, &mut reached);
        loop_starts.push(at);
    }
    let mut seen = vec![false; v.spans.len()];
    let n = roots.len() + loop_starts.len();
    let mut loops = loop_starts.len();
    for (k, r) in roots.iter().copied().enumerate() {
        let s = &v.spans[r];
        let note = if s.parent_span_id == s.span_id {
            // A span that is its own parent is a loop of one.
            loops += 1;
            " (its own parent)".to_owned()
        } else if s.parent_missing {
            format!(
                " (parent {} is not in the trace)",
                inline(&s.parent_span_id)
            )
        } else {
            String::new()
        };
        tree(&mut out, v, &children, &mut seen, r, k + 1 == n, &note);
    }
    for (k, at) in loop_starts.into_iter().enumerate() {
        let last = roots.len() + k + 1 == n;
        tree(
            &mut out,
            v,
            &children,
            &mut seen,
            at,
            last,
            " (its parents loop back to it)",
        );
    }
    if loops > 0 {
        let _ = writeln!(
            out,
            "{}: following their parents leads round in a loop, so the first span of each is shown as a root",
            counted(loops, "loop of spans", "loops of spans")
        );
    }
    if !v.missing_span_ids.is_empty() {
        let _ = writeln!(out, "not in this trace: {}", v.missing_span_ids.join(", "));
    }
    if let Some(next) = v.next_offset {
        let _ = writeln!(
            out,
            "spans {} to {} of {}; the next page: --offset {next}",
            v.offset + 1,
            v.offset + v.spans.len(),
            v.span_count
        );
    }
    out
}

/// Marks span `i` and everything under it as reached (a loop of parents ends the walk:
/// a span is taken once).
fn reach(children: &[Vec<usize>], i: usize, reached: &mut [bool]) {
    let mut stack = vec![i];
    while let Some(i) = stack.pop() {
        if !std::mem::replace(&mut reached[i], true) {
            stack.extend(&children[i]);
        }
    }
}

/// Writes span `i` and everything under it, depth first, each span once (`seen`, which
/// also ends a walk round a loop of parents). A loop rather than recursion, so that how
/// deep a chain of spans goes costs heap, never stack.
fn tree(
    out: &mut String,
    v: &TraceView,
    children: &[Vec<usize>],
    seen: &mut [bool],
    i: usize,
    last: bool,
    note: &str,
) {
    // (span, the prefix of its line, whether it is its parent's last child)
    let mut stack = vec![(i, String::new(), last)];
    while let Some((i, prefix, last)) = stack.pop() {
        if std::mem::replace(&mut seen[i], true) {
            continue;
        }
        let s = &v.spans[i];
        let status = if s.status.code.ends_with("ERROR") {
            " ERROR"
        } else {
            ""
        };
        let message = if s.status.message.is_empty() {
            String::new()
        } else {
            format!(": {}", cut(&s.status.message, 100))
        };
        let note = if prefix.is_empty() { note } else { "" };
        let _ = writeln!(
            out,
            "{prefix}{}{} {} [{}] {}{status}{message}{note}",
            if last { "└─ " } else { "├─ " },
            inline(&s.span_kind),
            inline(&s.name),
            inline(&s.span_id),
            millis(s.duration_ms),
        );
        let child_prefix = format!("{prefix}{}", if last { "   " } else { "│  " });
        let bar = if children[i].is_empty() {
            "   "
        } else {
            "│  "
        };
        for (k, val) in &s.attributes {
            let text = match val {
                serde_json::Value::String(t) => t.clone(),
                other => other.to_string(),
            };
            let _ = writeln!(
                out,
                "{child_prefix}{bar}{} = {}",
                inline(k),
                value_head(&text, 160)
            );
        }
        let n = children[i].len();
        // Pushed last child first, so the first child comes off the stack first.
        for (k, &c) in children[i].iter().enumerate().rev() {
            stack.push((c, child_prefix.clone(), k + 1 == n));
        }
    }
}

/// `halo search`.
pub(crate) fn search(r: &SearchResult) -> String {
    let mut out = String::new();
    for m in &r.matches {
        let status = if m.status == "ERROR" {
            ", error span"
        } else {
            ""
        };
        let _ = writeln!(
            out,
            "{} {} ({}{status})",
            inline(&m.span_id),
            inline(&m.span_name),
            inline(&m.span_kind)
        );
        let context = marked(&m.context, m.context_offset, &m.matched, 300);
        let _ = writeln!(out, "    …{context}…");
    }
    let _ = writeln!(
        out,
        "{} match(es) in {} span(s){}",
        r.total_matches,
        r.matching_span_count,
        match r.next_offset {
            Some(next) => format!(
                " ({} shown; the next with --offset {next}, or raise --max-matches up to {})",
                r.matches.len(),
                halo_query::MAX_MATCHES
            ),
            None if r.matches.is_empty() && r.total_matches > 0 => {
                " (none from this --offset on)".to_string()
            }
            None => String::new(),
        }
    );
    out
}

/// A value cut to about `max` characters for one line, saying how long it was when it
/// is cut (a value the view already cut keeps its `…[truncated: original N chars]`).
fn value_head(text: &str, max: usize) -> String {
    let shown = cut(text, max);
    let chars = text.chars().count();
    if chars <= max || shown == cut(text, usize::MAX) {
        return shown;
    }
    let original = text
        .rsplit_once("…[truncated: original ")
        .and_then(|(_, rest)| rest.strip_suffix(" chars]"))
        .and_then(|n| n.parse::<u64>().ok())
        .unwrap_or(chars as u64);
    format!("{shown} [{} chars]", thousands(original))
}

/// `context` with the match at byte `at` (`matched`) marked `>>>…<<<`, its whitespace
/// flattened, within about `max` characters kept around the match. When `at` does not
/// point at `matched`, the first occurrence of `matched` is marked.
fn marked(context: &str, at: usize, matched: &str, max: usize) -> String {
    let end = at + matched.len();
    if context.get(at..end) != Some(matched) {
        return cut(context, max).replacen(matched, &format!(">>>{matched}<<<"), 1);
    }
    let (before, after) = (flat(&context[..at]), flat(&context[end..]));
    let shown = cut(matched, max.min(200));
    let room = max.saturating_sub(shown.chars().count());
    let (nb, na) = (before.chars().count(), after.chars().count());
    let keep_before = nb.min((room / 2).max(room.saturating_sub(na)));
    let keep_after = na.min(room - keep_before);
    let before: String = before.chars().skip(nb - keep_before).collect();
    let after: String = after.chars().take(keep_after).collect();
    format!("{}>>>{shown}<<<{}", before.trim_start(), after.trim_end())
}

/// Whitespace runs as one space each, kept at the ends (unlike [`cut`]), so that pieces
/// flattened apart join as the whole would.
fn flat(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut space = false;
    for c in s.chars() {
        if c.is_whitespace() {
            if !space {
                out.push(' ');
            }
            space = true;
        } else {
            out.push(c);
            space = false;
        }
    }
    out
}

/// `halo grep`.
pub(crate) fn grep(r: &GrepResult) -> String {
    let mut out = String::new();
    let same_line =
        |a: &halo_query::GrepMatch, b: &halo_query::GrepMatch| a.file == b.file && a.line == b.line;
    for (i, m) in r.matches.iter().enumerate() {
        // A line with several entries (an OTLP line with matching spans of several traces)
        // names each entry's span.
        let shared = (i > 0 && same_line(&r.matches[i - 1], m))
            || r.matches.get(i + 1).is_some_and(|n| same_line(m, n));
        let span = match (&m.span_id, shared) {
            (Some(s), true) => format!(" span {}", inline(s)),
            _ => String::new(),
        };
        let _ = writeln!(
            out,
            "{}:{}: trace {}{span}: {}",
            m.file,
            m.line,
            inline(m.trace_id.as_deref().unwrap_or("?")),
            marked(&m.context, m.context_offset, &m.matched, 300)
        );
    }
    let traces = if r.matches.len() as u64 > r.listed_lines {
        format!(" with {} trace(s)", r.matches.len())
    } else {
        String::new()
    };
    if r.truncated {
        // How many there are, as far as the scan went (it stops once it has enough).
        let of = match r.scan.complete {
            true => r.matching_lines.to_string(),
            false => format!("at least {}", r.matching_lines),
        };
        let _ = writeln!(
            out,
            "{} matching line(s) shown{traces}, of {of}; raise --max-matches for more",
            r.listed_lines
        );
    } else {
        let _ = writeln!(out, "{} matching line(s){traces}", r.listed_lines);
    }
    scan_note(&mut out, &Some(r.scan.clone()));
    out
}

#[cfg(test)]
mod tests {
    /// A budget that ran out after the whole data was read says so, rather than "1.2 GB
    /// of 1.2 GB scanned"; one that ran out mid-scan says how far it got.
    #[test]
    fn a_partial_scan_says_where_the_budget_ran_out() {
        let mut scan = halo_query::ScanInfo {
            complete: false,
            stopped_by: Some(halo_query::StopReason::TimeBudget),
            scanned_bytes: 2_000_000_000,
            total_bytes: 2_000_000_000,
            elapsed_ms: 1_000.0,
        };
        let note = super::partial_scan_note(&scan).expect("a note");
        assert!(note.contains("while matching lines were traced"), "{note}");
        scan.scanned_bytes = 500_000_000;
        let note = super::partial_scan_note(&scan).expect("a note");
        assert!(note.contains(" of ") && !note.contains("traced"), "{note}");
        scan.complete = true;
        assert!(super::partial_scan_note(&scan).is_none());
    }

    use super::*;

    #[test]
    fn a_cut_value_says_how_long_it_was() {
        assert_eq!(value_head("short", 160), "short");
        assert_eq!(
            value_head("a  b\n c", 160),
            "a b c",
            "white space is no cut"
        );
        let long = "x".repeat(500);
        let shown = value_head(&long, 20);
        assert!(shown.ends_with("… [500 chars]"), "{shown}");
        // A value the view cut already: its original length, not the cut one's.
        let viewed = format!("{}…[truncated: original 100000018 chars]", "y".repeat(4096));
        let shown = value_head(&viewed, 20);
        assert!(shown.ends_with("… [100,000,018 chars]"), "{shown}");
    }

    #[test]
    fn a_snippet_marks_its_own_match_not_an_earlier_equal_text() {
        let context = r#"{"intValue":"429"},{"stringValue":"429"}"#;
        let second = context.rfind("429").unwrap();
        assert_eq!(
            marked(context, second, "429", 300),
            r#"{"intValue":"429"},{"stringValue":">>>429<<<"}"#
        );
        assert_eq!(
            marked(context, 13, "429", 300),
            r#"{"intValue":">>>429<<<"},{"stringValue":"429"}"#
        );
    }

    #[test]
    fn a_snippet_keeps_its_match_in_view_within_its_length() {
        // Whitespace flattened as `cut` does, joined as the whole would be.
        assert_eq!(
            marked("a \n b  429\t\tc ", 7, "429", 300),
            "a b >>>429<<< c"
        );
        // Far from the start: the text around the match is kept, not the context's head.
        let context = format!("{}429{}", "x".repeat(500), "y".repeat(500));
        let s = marked(&context, 500, "429", 100);
        assert_eq!(s.chars().count(), 100 + ">>><<<".len());
        assert!(s.contains("x>>>429<<<y"), "{s}");
        // An offset that does not point at the match marks the first occurrence.
        assert_eq!(marked("429 and 429", 3, "429", 300), ">>>429<<< and 429");
    }
}
