//! Trace filters: the reference's filter set plus halo-rs additions, applied to rollups.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use halo_index::TraceSummary;
use halo_trace::time::parse_time_bound_nanos;

use crate::QueryError;

/// Which traces a question is about. Every field is optional; all given fields must hold.
///
/// Field names are the reference tools' argument names, so the CLI flags
/// (`--model-name`, `--has-errors`, `--regex-pattern`...) and the agents' tool arguments
/// speak one vocabulary.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TraceFilters {
    /// Only traces with (true) or without (false) an error span (OTel status ERROR).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub has_errors: Option<bool>,
    /// Only traces that used any of these models; a family name (`gpt-4.1`) also selects
    /// its dated snapshots (`gpt-4.1-2025-04-14`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model_names: Option<Vec<String>>,
    /// Only traces from any of these services (`service.name`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_names: Option<Vec<String>>,
    /// Only traces involving any of these agents.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent_names: Option<Vec<String>>,
    /// Only traces of this project.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub project_id: Option<String>,
    /// Only traces that start at or after this ISO-8601 time or date (UTC when no zone).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_time_gte: Option<String>,
    /// Only traces that end at or before this ISO-8601 time or date (UTC when no zone).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end_time_lte: Option<String>,
    /// Only traces with a span whose raw JSON matches this regular expression (Rust regex
    /// syntax, linear time). The only filter that reads span data.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub regex_pattern: Option<String>,
    /// Only traces that called any of these tools.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_names: Option<Vec<String>>,
    /// Only traces with (true) or without (false) a failed tool span.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub has_tool_errors: Option<bool>,
    /// Only traces lasting at least this many milliseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_duration_ms: Option<f64>,
    /// Only traces lasting at most this many milliseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_duration_ms: Option<f64>,
    /// Only traces with at least this many total tokens.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_tokens: Option<i64>,
    /// Only traces with an error span whose status message or error message (or error
    /// group label) contains this text, case-insensitive: e.g. `429`, `rate limit` or
    /// `tool list_files`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status_message: Option<String>,
    /// Only traces of this session.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_id: Option<String>,
    /// Only traces of this user.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_id: Option<String>,
}

/// Filters with times parsed and texts lower-cased, ready to test rollups.
#[derive(Debug, Clone)]
pub(crate) struct CompiledFilters {
    f: TraceFilters,
    start_gte: Option<i64>,
    end_lte: Option<i64>,
    status_message: Option<String>,
    pub(crate) regex: Option<regex::bytes::Regex>,
}

fn any_in(have: &[std::sync::Arc<str>], wanted: &Option<Vec<String>>) -> bool {
    match wanted {
        None => true,
        Some(w) if w.is_empty() => true,
        Some(w) => have.iter().any(|h| w.iter().any(|x| x.as_str() == &**h)),
    }
}

/// [`any_in`] for models, where a family name also selects its dated snapshots
/// (`gpt-4.1` selects `gpt-4.1-2025-04-14`), as the diagnosis names them.
fn any_model_in(have: &[std::sync::Arc<str>], wanted: &Option<Vec<String>>) -> bool {
    match wanted {
        Some(w) if !w.is_empty() => have.iter().any(|h| {
            w.iter()
                .any(|x| x.as_str() == &**h || x.as_str() == halo_trace::model_family(h))
        }),
        _ => true,
    }
}

/// Compiles a user regex with the size limits that keep it linear and bounded.
pub(crate) fn compile_regex(pattern: &str) -> Result<regex::bytes::Regex, QueryError> {
    regex::bytes::RegexBuilder::new(pattern)
        .multi_line(true)
        // `$` also before the `\r` of a CRLF line end, `^` also after it: Windows tools
        // write such files, and a line's `\r` is not part of its text.
        .crlf(true)
        .size_limit(16 << 20)
        .dfa_size_limit(32 << 20)
        .build()
        .map_err(|e| QueryError::bad_regex(pattern, &e.to_string()))
}

impl TraceFilters {
    pub(crate) fn compile(&self) -> Result<CompiledFilters, QueryError> {
        let time = |field: &str, v: &Option<String>| -> Result<Option<i64>, QueryError> {
            v.as_deref()
                .map(|t| {
                    parse_time_bound_nanos(t).ok_or_else(|| QueryError::BadArgument {
                        name: field.to_string(),
                        message: format!(
                            "{t:?} is not an ISO-8601 time or date (e.g. 2026-04-23T05:32:00Z or 2026-04-23; UTC when no zone is given)"
                        ),
                    })
                })
                .transpose()
        };
        Ok(CompiledFilters {
            start_gte: time("start_time_gte", &self.start_time_gte)?,
            end_lte: time("end_time_lte", &self.end_time_lte)?,
            status_message: self.status_message.as_ref().map(|s| s.to_lowercase()),
            regex: self
                .regex_pattern
                .as_deref()
                .map(compile_regex)
                .transpose()?,
            f: self.clone(),
        })
    }

    /// Whether any filter is set.
    pub fn is_empty(&self) -> bool {
        self == &TraceFilters::default()
    }
}

impl CompiledFilters {
    /// Tests everything but the regex, which needs span data.
    pub(crate) fn matches_rollup(&self, t: &TraceSummary) -> bool {
        let f = &self.f;
        if f.has_errors.is_some_and(|want| t.has_errors() != want) {
            return false;
        }
        if f.has_tool_errors
            .is_some_and(|want| (t.tool_error_span_count > 0) != want)
        {
            return false;
        }
        if !any_model_in(&t.models, &f.model_names)
            || !any_in(&t.services, &f.service_names)
            || !any_in(&t.agents, &f.agent_names)
        {
            return false;
        }
        if let Some(tools) = f.tool_names.as_ref().filter(|w| !w.is_empty()) {
            if !t
                .tools
                .iter()
                .any(|u| tools.iter().any(|w| w.as_str() == &*u.name))
            {
                return false;
            }
        }
        if f.project_id
            .as_ref()
            .is_some_and(|p| t.project_id.as_deref() != Some(p.as_str()))
        {
            return false;
        }
        if f.session_id
            .as_ref()
            .is_some_and(|p| t.session_id.as_deref() != Some(p.as_str()))
        {
            return false;
        }
        if f.user_id
            .as_ref()
            .is_some_and(|p| t.user_id.as_deref() != Some(p.as_str()))
        {
            return false;
        }
        if self.start_gte.is_some_and(|s| t.start_ns < s)
            || self.end_lte.is_some_and(|e| t.end_ns > e)
        {
            return false;
        }
        let d = t.duration_ms();
        if f.min_duration_ms.is_some_and(|m| d < m) || f.max_duration_ms.is_some_and(|m| d > m) {
            return false;
        }
        if f.min_tokens.is_some_and(|m| t.total_tokens < m) {
            return false;
        }
        if self.status_message.is_some() && t.error_span_count == 0 {
            return false;
        }
        true
    }

    /// The lowercased `status_message` filter, which [`crate::select`] checks against the
    /// error groups and, failing those, the error spans' own messages.
    pub(crate) fn status_message(&self) -> Option<&str> {
        self.status_message.as_deref()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_long_bad_pattern_is_quoted_by_its_head_and_keeps_the_reason() {
        let pattern = format!("{}(", "a".repeat(2_000_000));
        let message = compile_regex(&pattern).unwrap_err().to_string();
        assert!(message.len() < 600, "{} chars", message.len());
        assert!(message.contains("unclosed group"), "{message}");
        let short = compile_regex("a(").unwrap_err().to_string();
        assert!(
            short.contains("\"a(\"") && short.contains("unclosed group"),
            "{short}"
        );
    }

    #[test]
    fn a_model_family_selects_its_dated_snapshots_and_not_others() {
        let have: Vec<std::sync::Arc<str>> = vec!["gpt-4.1-2025-04-14".into()];
        let wants = |names: &[&str]| Some(names.iter().map(|s| s.to_string()).collect());
        assert!(any_model_in(&have, &wants(&["gpt-4.1"])));
        assert!(any_model_in(&have, &wants(&["gpt-4.1-2025-04-14"])));
        assert!(!any_model_in(&have, &wants(&["gpt-4"])));
        assert!(!any_model_in(&have, &wants(&["gpt-4.1-mini"])));
        assert!(any_model_in(&have, &None));
    }
}
