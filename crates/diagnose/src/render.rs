//! Markdown report and terminal summary of a [`Diagnosis`].

use std::fmt::Write;

use crate::model::{Diagnosis, Finding};

/// Findings rendered in full in the Markdown report; the rest go in a compact table.
const DETAILED: usize = 30;

/// `12345` -> `12,345`.
/// An integer with thousands separators (`1234567` → `1,234,567`): the one number format of
/// reports and of the CLI's tables.
pub fn thousands(n: impl std::fmt::Display) -> String {
    let s = n.to_string();
    let (sign, digits) = match s.strip_prefix('-') {
        Some(d) => ("-", d),
        None => ("", s.as_str()),
    };
    let mut out = String::with_capacity(s.len() + digits.len() / 3);
    out.push_str(sign);
    for (i, ch) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(ch);
    }
    out
}

/// A count and its noun, singular for one: `1 trace`, `1,234 traces`.
pub fn counted(n: impl std::fmt::Display, one: &str, many: &str) -> String {
    let n = n.to_string();
    let noun = if n == "1" { one } else { many };
    format!("{} {noun}", thousands(n))
}

pub(crate) fn pct(share: f64) -> String {
    let p = share * 100.0;
    if p > 0.0 && p < 0.1 {
        "<0.1%".to_string()
    } else {
        format!("{p:.1}%")
    }
}

/// How a path appears in a shell command.
pub(crate) fn shell_word(s: &str) -> String {
    if !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "/._-+,:@=".contains(c))
    {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

fn dataset_words(d: &Diagnosis) -> String {
    if d.sources.is_empty() {
        return "TRACES".to_string();
    }
    d.sources
        .iter()
        .map(|s| shell_word(&path_word(s)))
        .chain(d.command_options.iter().map(|s| shell_word(s)))
        .collect::<Vec<_>>()
        .join(" ")
}

/// A dataset path as the first word after `halo`: a bare name (`index`, `-x.jsonl`) gets
/// `./`, or `halo index -p …` would read a subcommand, and `-x` an option.
fn path_word(path: &str) -> String {
    if path.contains('/') {
        path.to_string()
    } else {
        format!("./{path}")
    }
}

/// The run that asks a model about a finding, ready to paste into a shell. The prompt
/// holds trace text (a tool name the model made up, say), so it is single-quoted: in
/// double quotes a `` `cmd` `` or `$(cmd)` in that text would run.
fn deeper_command(d: &Diagnosis, prompt: &str) -> String {
    format!("halo {} -p {}", dataset_words(d), shell_word(prompt))
}

pub(crate) fn md_cell(s: &str) -> String {
    md_text(s).replace('|', "\\|")
}

/// Masked templates say `<num>`, `<str>`, `<path>`: escaped, or Markdown renderers would
/// take them for HTML tags and drop them. A line break in trace text (a tool name, say)
/// would end a heading or a paragraph early, so it becomes a space.
/// Code spans (trace text the findings quote) are left as they are: inside one, `&lt;`
/// would show as itself.
fn md_text(s: &str) -> String {
    let s = halo_trace::printable(&s.replace(['\r', '\n'], " ")).into_owned();
    let mut out = String::with_capacity(s.len() + 16);
    let mut rest = s.as_str();
    while let Some(open) = rest.find('`') {
        out.push_str(&escape_angles(&rest[..open]));
        let run = rest[open..].bytes().take_while(|&b| b == b'`').count();
        let fence = &rest[open..open + run];
        let after = &rest[open + run..];
        // The span closes at the next run of exactly as many backticks.
        let close = after.match_indices(fence).map(|(i, _)| i).find(|&i| {
            !after[i + run..].starts_with('`') && (i == 0 || !after[..i].ends_with('`'))
        });
        match close {
            Some(i) => {
                out.push_str(&rest[open..open + run + i + run]);
                rest = &after[i + run..];
            }
            None => {
                out.push_str(fence);
                rest = after;
            }
        }
    }
    out.push_str(&escape_angles(rest));
    out
}

fn escape_angles(s: &str) -> String {
    s.replace('<', "&lt;").replace('>', "&gt;")
}

/// `s` as a Markdown code span whatever it holds (a tool name may have a backtick): fenced
/// with one backtick more than its longest run of them, and spaced inside the fence when
/// it starts or ends with one. Without backticks, the usual `` `s` ``.
pub(crate) fn md_code(s: &str) -> String {
    // A line break would end the heading or the table row the span sits in.
    let s = &*halo_trace::printable(&s.replace(['\r', '\n'], " ")).into_owned();
    let longest = s.split(|c| c != '`').map(str::len).max().unwrap_or(0);
    let fence = "`".repeat(longest + 1);
    let pad = if s.starts_with('`') || s.ends_with('`') {
        " "
    } else {
        ""
    };
    format!("{fence}{pad}{s}{pad}{fence}")
}

fn qualifiers(f: &Finding) -> String {
    let mut parts = vec![format!("**mode** `{}`", f.key.mode)];
    if let Some(t) = &f.key.tool {
        parts.push(format!("**tool** {}", md_code(t)));
    }
    if let Some(m) = &f.key.model {
        parts.push(format!("**model** {}", md_code(m)));
    }
    if let Some(t) = &f.key.template {
        parts.push(format!("**template** `{}`", t.replace('`', "'")));
    }
    if let Some(a) = &f.argument {
        parts.push(format!("**argument** {}", md_code(a)));
    }
    // Trace text in a code span: a line break would end the paragraph (or start a
    // heading) in the middle of it.
    parts.join(" · ").replace(['\r', '\n'], " ")
}

/// The Markdown report: a summary table ranked by impact, then each finding with its
/// evidence as `[trace:ID]` / `[span:TRACE:SPAN]` citations, a fix direction and the
/// `halo ... -p "..."` command to go deeper. Commands name the dataset by `d.sources`.
pub fn render_markdown(d: &Diagnosis) -> String {
    let s = &d.stats;
    let mut out = String::new();
    let _ = writeln!(out, "# HALO diagnosis\n");
    let share = if s.traces > 0 {
        s.failing_traces as f64 / s.traces as f64
    } else {
        0.0
    };
    let err_share = if s.traces > 0 {
        s.error_traces as f64 / s.traces as f64
    } else {
        0.0
    };
    let _ = writeln!(
        out,
        "Offline diagnosis of **{}** ({}) from {}{}.",
        counted(s.traces, "trace", "traces"),
        counted(s.spans as usize, "span", "spans"),
        d.sources
            .iter()
            .map(|p| format!("`{p}`"))
            .collect::<Vec<_>>()
            .join(", "),
        if s.first_seen.is_empty() {
            String::new()
        } else {
            format!(", {} .. {}", s.first_seen, s.last_seen)
        }
    );
    let _ = writeln!(
        out,
        "**{} ({})** {} at least one failure mode; {} ({}) {} an error span. \
         {}, ranked by impact (affected share x severity).\n",
        counted(s.failing_traces, "trace", "traces"),
        pct(share),
        if s.failing_traces == 1 {
            "shows"
        } else {
            "show"
        },
        thousands(s.error_traces as u64),
        pct(err_share),
        if s.error_traces == 1 { "has" } else { "have" },
        counted(d.findings.len(), "finding", "findings")
    );
    if s.problem_count > 0 {
        let lost = if s.skipped_lines > 0 {
            format!(
                "{} skipped as unreadable (their spans are not in this diagnosis); ",
                counted(s.skipped_lines as usize, "line", "lines")
            )
        } else {
            String::new()
        };
        let _ = writeln!(
            out,
            "**Input problems:** {lost}{} in all while indexing (`halo index --json` lists them).\n",
            counted(s.problem_count as usize, "problem", "problems")
        );
    }
    if s.unexplained_error_traces > 0 {
        let examples: Vec<String> = s
            .unexplained_examples
            .iter()
            .map(|u| format!("[trace:{}] {}", u.trace_id, md_code(&u.error)))
            .collect();
        let _ = writeln!(
            out,
            "**Errors no finding explains:** {} {} error spans that no detector reads, so they are in \
             none of the findings below; look at them by hand (e.g. {}).\n",
            counted(s.unexplained_error_traces, "trace", "traces"),
            if s.unexplained_error_traces == 1 { "has" } else { "have" },
            examples.join("; ")
        );
    }
    let _ = writeln!(
        out,
        "No model was used: these are deterministic detectors over every span. Evidence is cited as \
         links of the form trace:ID and span:TRACE_ID:SPAN_ID in square brackets.\n"
    );
    if d.findings.is_empty() {
        let _ = writeln!(out, "No failure mode was found.\n");
    } else {
        let _ = writeln!(out, "## Failure modes\n");
        let _ = writeln!(out, "| Mode | Traces | Share | Findings | Top finding |");
        let _ = writeln!(out, "|---|---:|---:|---:|---|");
        for m in &d.modes {
            let top = d
                .finding(&m.top_finding)
                .map(|f| md_cell(&f.title))
                .unwrap_or_default();
            let _ = writeln!(
                out,
                "| {} (`{}`) | {} | {} | {} | {} |",
                m.mode.label(),
                m.mode,
                thousands(m.trace_count as u64),
                pct(m.share),
                m.findings,
                top
            );
        }
        out.push('\n');
        let _ = writeln!(out, "## Summary\n");
        let _ = writeln!(out, "| # | Finding | Mode | Traces | Share | Impact |");
        let _ = writeln!(out, "|---:|---|---|---:|---:|---:|");
        for (i, f) in d.findings.iter().enumerate() {
            let _ = writeln!(
                out,
                "| {} | {} | `{}` | {} | {} | {:.2} |",
                i + 1,
                md_cell(&f.title),
                f.key.mode,
                thousands(f.trace_count as u64),
                pct(f.share),
                f.impact
            );
        }
        out.push('\n');
    }
    for (i, f) in d.findings.iter().enumerate().take(DETAILED) {
        let _ = writeln!(out, "## {}. {}\n", i + 1, md_text(&f.title));
        let _ = writeln!(out, "{}\n", qualifiers(f));
        let _ = writeln!(
            out,
            "**Affected:** {} ({}), {} · first seen {} · last seen {}\n",
            counted(f.trace_count, "trace", "traces"),
            pct(f.share),
            counted(f.span_count, "span", "spans"),
            f.first_seen,
            f.last_seen
        );
        // Names come from the traces: each is a code span, so none renders as Markdown.
        let names = |list: &[String]| {
            list.iter()
                .map(|n| md_code(n))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let mut wher = Vec::new();
        if f.tools.len() > 1 {
            wher.push(format!("tools {}", names(&f.tools)));
        }
        if f.failing_models.len() > 1 {
            wher.push(format!("failing models {}", names(&f.failing_models)));
        }
        if !f.services.is_empty() {
            wher.push(format!("services {}", names(&f.services)));
        }
        if !f.models.is_empty() {
            wher.push(format!("models {}", names(&f.models)));
        }
        if !f.agents.is_empty() {
            wher.push(format!("agents {}", names(&f.agents)));
        }
        if !wher.is_empty() {
            let _ = writeln!(out, "**Where:** {}\n", md_text(&wher.join(" · ")));
        }
        let _ = writeln!(out, "**Signal:** {}\n", md_text(&f.signal));
        let _ = writeln!(out, "**Fix direction:** {}\n", md_text(&f.fix));
        let _ = writeln!(out, "**Evidence:**\n");
        for e in &f.examples {
            let spans = e
                .span_ids
                .iter()
                .map(|s| format!("[span:{}:{}]", e.trace_id, s))
                .collect::<Vec<_>>()
                .join(", ");
            let detail = e
                .detail
                .as_deref()
                // Trace text (an error, a call's arguments): a code span, shown as it is.
                .map(|d| format!(" — {}", md_code(d)))
                .unwrap_or_default();
            if spans.is_empty() {
                let _ = writeln!(out, "- [trace:{}]{detail}", e.trace_id);
            } else {
                let _ = writeln!(out, "- [trace:{}]: {}{detail}", e.trace_id, spans);
            }
        }
        out.push('\n');
        let _ = writeln!(
            out,
            "**Go deeper:** {}\n",
            md_code(&deeper_command(d, &f.deeper_prompt))
        );
    }
    if d.findings.len() > DETAILED {
        let _ = writeln!(out, "## Other findings\n");
        let _ = writeln!(out, "| # | Finding | Traces | Example |");
        let _ = writeln!(out, "|---:|---|---:|---|");
        for (i, f) in d.findings.iter().enumerate().skip(DETAILED) {
            let example = f
                .examples
                .first()
                .map(|e| format!("[trace:{}]", e.trace_id))
                .unwrap_or_default();
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} |",
                i + 1,
                md_cell(&f.title),
                thousands(f.trace_count as u64),
                example
            );
        }
        out.push('\n');
    }
    let _ = writeln!(out, "## Going deeper\n");
    let _ = writeln!(
        out,
        "- Read one example span by span: `halo view {} TRACE_ID`",
        dataset_words(d)
    );
    let _ = writeln!(
        out,
        "- Every affected trace id per finding: `halo diagnose {} --json`",
        dataset_words(d)
    );
    let prompt = d
        .findings
        .first()
        .map(|f| f.deeper_prompt.as_str())
        .unwrap_or(
            "What are the most common failure modes in these traces, and how do I fix them?",
        );
    let _ = writeln!(
        out,
        "- Ask a model to investigate (needs an API key): {}",
        md_code(&deeper_command(d, prompt))
    );
    // The report quotes trace text; whoever `cat`s it must not get its escape sequences.
    halo_trace::printable(&out).into_owned()
}

/// A short terminal summary: the top `rows` findings, where the Markdown report went (if
/// `report` is given) and, last, how to go deeper with a model.
pub fn render_summary(d: &Diagnosis, rows: usize, report: Option<&str>) -> String {
    let s = &d.stats;
    let mut out = String::new();
    let share = if s.traces > 0 {
        s.failing_traces as f64 / s.traces as f64
    } else {
        0.0
    };
    let _ = writeln!(
        out,
        "{} · {} with a failure mode ({}) · {}",
        counted(s.traces, "trace", "traces"),
        thousands(s.failing_traces as u64),
        pct(share),
        counted(d.findings.len(), "finding", "findings")
    );
    if d.findings.is_empty() {
        let _ = writeln!(out, "\nNo failure mode was found.");
    } else {
        let _ = writeln!(out);
        let _ = writeln!(
            out,
            "{:<20}  {:>7}  {:>6}  {:>8}",
            "mode", "traces", "share", "findings"
        );
        for m in &d.modes {
            let _ = writeln!(
                out,
                "{:<20}  {:>7}  {:>6}  {:>8}",
                m.mode.as_str(),
                thousands(m.trace_count as u64),
                pct(m.share),
                m.findings
            );
        }
        let _ = writeln!(out);
        let _ = writeln!(
            out,
            "{:>3}  {:>7}  {:>6}  {:>6}  {:<18}  finding",
            "#", "traces", "share", "impact", "mode"
        );
        for (i, f) in d.findings.iter().enumerate().take(rows) {
            let _ = writeln!(
                out,
                "{:>3}  {:>7}  {:>6}  {:>6.2}  {:<18}  {}",
                i + 1,
                thousands(f.trace_count as u64),
                pct(f.share),
                f.impact,
                f.key.mode.as_str(),
                halo_trace::clip(&f.title.replace('`', "").replace(['\r', '\n'], " "), 100)
            );
        }
        if d.findings.len() > rows {
            let all = match report {
                Some(path) => format!("{path} and --json list all"),
                None => "--json, or -o FILE for a Markdown report, lists all".to_owned(),
            };
            let _ = writeln!(out, "  … {} more findings ({all})", d.findings.len() - rows);
        }
        if let Some(f) = d.findings.first() {
            let _ = writeln!(
                out,
                "\nTop example: halo view {} {}",
                dataset_words(d),
                f.examples
                    .first()
                    .map_or_else(|| "TRACE_ID".into(), |e| shell_word(&e.trace_id))
            );
        }
    }
    if let Some(u) = s.unexplained_examples.first() {
        let _ = writeln!(
            out,
            "{} with errors in no finding (no detector reads them), e.g. {}: {}",
            counted(s.unexplained_error_traces, "trace", "traces"),
            u.trace_id,
            halo_trace::clip(&u.error.replace(['\r', '\n'], " "), 80)
        );
    }
    if let Some(path) = report {
        let _ = writeln!(
            out,
            "Markdown report (every finding with evidence and a fix direction): {path}"
        );
    }
    let prompt = d
        .findings
        .first()
        .map(|f| f.deeper_prompt.as_str())
        .unwrap_or(
            "What are the most common failure modes in these traces, and how do I fix them?",
        );
    let _ = writeln!(out, "Go deeper with a model: {}", deeper_command(d, prompt));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_outside_code_spans_is_escaped_and_code_spans_are_kept() {
        assert_eq!(
            md_text("fails: `Error <num> at [x](y)` then <b>\nnext"),
            "fails: `Error <num> at [x](y)` then &lt;b&gt; next"
        );
        assert_eq!(md_text("a ``b`c`` <d>"), "a ``b`c`` &lt;d&gt;");
        assert_eq!(md_text("open ` <e>"), "open ` &lt;e&gt;");
        // Controls and bidirectional overrides, in code spans and out.
        assert_eq!(md_text("a\u{202e}b `c\u{1b}d`"), "a\\u202eb `c\\u001bd`");
        assert_eq!(md_code("x\u{202e}y"), "`x\\u202ey`");
    }

    #[test]
    fn code_spans_hold_backticks() {
        assert_eq!(md_code("list_files"), "`list_files`");
        assert_eq!(md_code("my|tool`x"), "``my|tool`x``");
        assert_eq!(md_code("a``b"), "```a``b```");
        assert_eq!(md_code("`edge`"), "`` `edge` ``");
    }

    #[test]
    fn thousands_groups_digits_and_keeps_the_sign() {
        assert_eq!(thousands(0u64), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1234567u64), "1,234,567");
        assert_eq!(thousands(-1234567i64), "-1,234,567");
        assert_eq!(thousands(-12), "-12");
    }

    #[test]
    fn formatting() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(1234567), "1,234,567");
        assert_eq!(pct(0.0004), "<0.1%");
        assert_eq!(pct(0.25), "25.0%");
        assert_eq!(shell_word("a/b.jsonl"), "a/b.jsonl");
        assert_eq!(path_word("index"), "./index");
        assert_eq!(path_word("-x.jsonl"), "./-x.jsonl");
        assert_eq!(path_word("data/index"), "data/index");
        assert_eq!(shell_word("my file"), "'my file'");
        assert_eq!(shell_word("it's"), r"'it'\''s'");
    }
}
