//! A regex that finds, line by line, every line that may hold a matching span.
//!
//! A dataset scan runs the regex over whole lines, then checks each span of a hit line on
//! its own. That is exact for canonical lines (one span each), but an OTLP line holds many
//! spans, and an assertion can hold at a span's edge and not in the line around it: `^\{`
//! matches at the start of every span but only once in a line. The prefilter is the same
//! pattern with its assertions (anchors, word boundaries) made always true: it matches
//! wherever the pattern could match some part of the line, so no span is missed.

use regex::bytes::Regex;
use regex_syntax::hir::{Hir, HirKind};

use crate::filter::compile_regex;
use crate::QueryError;

/// The prefilter of `regex`: `regex` itself when it has no assertions.
pub(crate) fn line_prefilter(regex: &Regex) -> Result<Regex, QueryError> {
    let hir = regex_syntax::ParserBuilder::new()
        .multi_line(true)
        .crlf(true)
        .build()
        .parse(regex.as_str())
        .map_err(|e| QueryError::bad_regex(regex.as_str(), &e.to_string()))?;
    if hir.properties().look_set().is_empty() {
        return Ok(regex.clone());
    }
    compile_regex(&without_assertions(hir).to_string())
}

fn without_assertions(hir: Hir) -> Hir {
    match hir.into_kind() {
        HirKind::Look(_) | HirKind::Empty => Hir::empty(),
        HirKind::Literal(l) => Hir::literal(l.0),
        HirKind::Class(c) => Hir::class(c),
        HirKind::Repetition(mut r) => {
            r.sub = Box::new(without_assertions(*r.sub));
            Hir::repetition(r)
        }
        HirKind::Capture(mut c) => {
            c.sub = Box::new(without_assertions(*c.sub));
            Hir::capture(c)
        }
        HirKind::Concat(subs) => Hir::concat(subs.into_iter().map(without_assertions).collect()),
        HirKind::Alternation(subs) => {
            Hir::alternation(subs.into_iter().map(without_assertions).collect())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_span_that_matches_alone_is_in_a_line_the_prefilter_finds() {
        let line = br#"{"spans":[{"traceId":"a","code":2},{"traceId":"b","code":1}]}"#;
        let spans: [&[u8]; 2] = [
            br#"{"traceId":"a","code":2}"#,
            br#"{"traceId":"b","code":1}"#,
        ];
        for pattern in [
            r#"^\{"traceId"#,
            r#""code":2\}$"#,
            r"\Atrace|\z",
            r"\bcode\b",
            "plain",
        ] {
            let regex = compile_regex(pattern).unwrap();
            let pre = line_prefilter(&regex).unwrap();
            if spans.iter().any(|s| regex.is_match(s)) {
                assert!(pre.is_match(line), "{pattern} -> {}", pre.as_str());
            }
        }
        // Without assertions the pattern is kept as it is.
        let plain = compile_regex("unexpected keyword").unwrap();
        assert_eq!(
            line_prefilter(&plain).unwrap().as_str(),
            "unexpected keyword"
        );
    }
}
