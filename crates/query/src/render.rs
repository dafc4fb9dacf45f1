//! `render_trace`: one trace as compact text for an LLM prompt, within a character budget.
//!
//! The rendering is a span tree with what matters for diagnosis on each line: kind, name,
//! model or tool, tokens, status, the error message, and heads of tool arguments and results
//! and of model output. When the trace does not fit the budget, spans far from any error are
//! elided first, and the elisions are said, never silent.

use std::collections::HashMap;

use halo_index::Dataset;
use halo_trace::one_line;

use crate::records::{find_trace, spans_of, SpanRecord};
use crate::QueryError;

/// The shortest head of an error message a span's line keeps, however tight the budget.
const MIN_ERROR_CHARS: usize = 60;

fn describe(s: &SpanRecord, detail: usize) -> String {
    let mut line = format!("{} {}", s.kind, s.name);
    if let Some(tool) = s.tool_name.as_deref().filter(|t| !s.name.contains(*t)) {
        line.push_str(&format!(" tool={tool}"));
    }
    if let Some(m) = &s.model {
        line.push_str(&format!(" model={m}"));
    }
    if let (Some(i), Some(o)) = (s.input_tokens, s.output_tokens) {
        line.push_str(&format!(" tokens={i}/{o}"));
    }
    line.push_str(&format!(" {:.0}ms", s.duration_ms));
    if s.is_error {
        line.push_str(" [ERROR]");
        // Error spans are what the rendering keeps longest, so their message keeps a head
        // at every level of detail.
        if let Some(e) = s.error_message.as_deref().or(s.error_type.as_deref()) {
            line.push_str(&format!(
                " {}",
                one_line(e, (detail * 2).max(MIN_ERROR_CHARS))
            ));
        }
    }
    if detail > 0 {
        if let Some(a) = &s.tool_args {
            line.push_str(&format!(" args={}", one_line(a, detail)));
        }
        if let Some(r) = &s.tool_result {
            line.push_str(&format!(" result={}", one_line(r, detail)));
        }
        if !s.requested_tools.is_empty() {
            line.push_str(&format!(" calls=[{}]", s.requested_tools.join(", ")));
        }
        if let Some(r) = &s.refusal {
            line.push_str(&format!(" refusal={}", one_line(r, detail)));
        } else if let Some(o) = &s.output_head {
            line.push_str(&format!(" output={}", one_line(o, detail)));
        }
        if let Some(f) = s.finish_reason.as_deref().filter(|f| *f != "stop") {
            line.push_str(&format!(" finish={f}"));
        }
    }
    line
}

/// Renders a trace as an indented span tree of at most `budget_chars` characters.
pub fn render_trace(
    ds: &Dataset,
    trace_id: &str,
    budget_chars: usize,
) -> Result<String, QueryError> {
    let trace = find_trace(ds, trace_id)?;
    let spans = spans_of(ds, trace)?;
    let header = format!(
        "trace {} · {} spans · {:.0} ms · {} error span(s) · services {} · models {}\n",
        trace.trace_id,
        trace.span_count,
        trace.duration_ms(),
        trace.error_span_count,
        join(&trace.services),
        join(&trace.models),
    );
    // Depth of each span in the tree (orphans sit at depth 0).
    let index: HashMap<&str, usize> = spans
        .iter()
        .enumerate()
        .map(|(i, s)| (s.span_id.as_str(), i))
        .collect();
    let depth_of = |mut i: usize| {
        let mut d = 0;
        while let Some(&p) = index.get(spans[i].parent_span_id.as_str()) {
            if d > 64 || p == i {
                break;
            }
            d += 1;
            i = p;
        }
        d
    };
    let depths: Vec<usize> = (0..spans.len()).map(depth_of).collect();
    for detail in [160usize, 80, 40, 0] {
        let lines: Vec<String> = spans
            .iter()
            .zip(&depths)
            .map(|(s, d)| {
                format!(
                    "{}- [{}] {}",
                    "  ".repeat((*d).min(12)),
                    s.span_id,
                    describe(s, detail)
                )
            })
            .collect();
        let total: usize = header.len() + lines.iter().map(|l| l.len() + 1).sum::<usize>();
        if total <= budget_chars || detail == 0 {
            return Ok(elide(&header, &spans, lines, budget_chars));
        }
    }
    unreachable!("the last detail level always returns")
}

fn join(v: &[std::sync::Arc<str>]) -> String {
    if v.is_empty() {
        return "-".into();
    }
    v.iter().map(|s| s.as_ref()).collect::<Vec<_>>().join(", ")
}

/// Keeps error spans and their neighbours, then the start and the end, within the budget.
fn elide(header: &str, spans: &[SpanRecord], lines: Vec<String>, budget: usize) -> String {
    let total: usize = header.len() + lines.iter().map(|l| l.len() + 1).sum::<usize>();
    if total <= budget {
        return header.to_string() + &lines.join("\n");
    }
    let n = lines.len();
    let mut keep = vec![false; n];
    let mut used = header.len() + 60;
    let take = |i: usize, keep: &mut Vec<bool>, used: &mut usize| {
        if i < n && !keep[i] && *used + lines[i].len() < budget {
            keep[i] = true;
            *used += lines[i].len() + 1;
        }
    };
    for (i, s) in spans.iter().enumerate() {
        if s.is_error {
            for j in i.saturating_sub(1)..=(i + 1) {
                take(j, &mut keep, &mut used);
            }
        }
    }
    for i in 0..n.min(10) {
        take(i, &mut keep, &mut used);
        take(n - 1 - i, &mut keep, &mut used);
    }
    for i in 0..n {
        take(i, &mut keep, &mut used);
    }
    let mut out = header.to_string();
    let mut skipped = 0;
    for (i, line) in lines.iter().enumerate() {
        if keep[i] {
            if skipped > 0 {
                out.push_str(&format!("  … {skipped} span(s) elided …\n"));
                skipped = 0;
            }
            out.push_str(line);
            out.push('\n');
        } else {
            skipped += 1;
        }
    }
    if skipped > 0 {
        out.push_str(&format!("  … {skipped} span(s) elided …\n"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_error_message_keeps_a_head_at_the_lowest_detail() {
        let span = SpanRecord {
            kind: "TOOL".into(),
            name: "fetch_invoice".into(),
            is_error: true,
            error_message: Some(format!("boom: connection refused {}", "x".repeat(500))),
            tool_args: Some("{\"id\": 7}".into()),
            ..Default::default()
        };
        let tight = describe(&span, 0);
        assert!(
            tight.contains("[ERROR] boom: connection refused"),
            "{tight}"
        );
        assert!(tight.len() < 150, "{tight}");
        assert!(!tight.contains("args="), "{tight}");
        assert!(describe(&span, 160).contains("args="));
    }
}
