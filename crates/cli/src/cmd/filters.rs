//! Filter flags, named after the tools' argument names.

use std::time::Duration;

use clap::Args;
use halo_query::{ScanBudget, TraceFilters};

/// Which traces: the flags behind every `TraceFilters` field.
#[derive(Debug, Clone, Args, Default)]
#[command(next_help_heading = "Filters")]
pub(crate) struct FilterArgs {
    /// Only traces with an error span (`--has-errors=false`: only traces without).
    // The value only with `=`: `--has-errors traces.jsonl` must not read the path as it.
    #[arg(
        long,
        num_args = 0..=1,
        require_equals = true,
        default_missing_value = "true",
        value_name = "BOOL"
    )]
    pub(crate) has_errors: Option<bool>,
    /// Only traces with a failed tool span (`=false`: only without).
    #[arg(
        long,
        num_args = 0..=1,
        require_equals = true,
        default_missing_value = "true",
        value_name = "BOOL"
    )]
    pub(crate) has_tool_errors: Option<bool>,
    /// Only traces that used this model (repeatable: any of them); a family name such as
    /// gpt-4.1 also selects its dated snapshots (gpt-4.1-2025-04-14).
    #[arg(long = "model-name", value_name = "NAME")]
    pub(crate) model_names: Vec<String>,
    /// Only traces from this service (repeatable).
    #[arg(long = "service-name", value_name = "NAME")]
    pub(crate) service_names: Vec<String>,
    /// Only traces involving this agent (repeatable).
    #[arg(long = "agent-name", value_name = "NAME")]
    pub(crate) agent_names: Vec<String>,
    /// Only traces that called this tool (repeatable).
    #[arg(long = "tool-name", visible_alias = "tool", value_name = "NAME")]
    pub(crate) tool_names: Vec<String>,
    /// Only traces of this project.
    #[arg(long, value_name = "ID")]
    pub(crate) project_id: Option<String>,
    /// Only traces of this session.
    #[arg(long, value_name = "ID")]
    pub(crate) session_id: Option<String>,
    /// Only traces of this user.
    #[arg(long, value_name = "ID")]
    pub(crate) user_id: Option<String>,
    /// Only traces starting at or after this time: ISO-8601, e.g. 2026-04-23T05:32:00Z, or a
    /// date (midnight); UTC when no zone is given.
    #[arg(long, value_name = "TIME")]
    pub(crate) start_time_gte: Option<String>,
    /// Only traces ending at or before this time: ISO-8601, e.g. 2026-04-23T05:32:00Z, or a
    /// date (midnight); UTC when no zone is given.
    #[arg(long, value_name = "TIME")]
    pub(crate) end_time_lte: Option<String>,
    /// Only traces lasting at least this many milliseconds.
    #[arg(long, value_name = "MS", value_parser = super::number_args::finite_millis, allow_negative_numbers = true)]
    pub(crate) min_duration_ms: Option<f64>,
    /// Only traces lasting at most this many milliseconds.
    #[arg(long, value_name = "MS", value_parser = super::number_args::finite_millis, allow_negative_numbers = true)]
    pub(crate) max_duration_ms: Option<f64>,
    /// Only traces with at least this many tokens.
    #[arg(long, value_name = "N")]
    pub(crate) min_tokens: Option<i64>,
    /// Only traces with an error span whose message (or error group) contains this text,
    /// case-insensitive: `rate limit`, `timeout`. An HTTP status is not message text: ask
    /// `halo sql` for `http_status`.
    #[arg(long, value_name = "TEXT")]
    pub(crate) status_message: Option<String>,
    /// Only traces with a span whose raw JSON matches this regex (scans the data).
    #[arg(long = "regex-pattern", visible_alias = "regex", value_name = "REGEX")]
    pub(crate) regex_pattern: Option<String>,
    /// Stop a data scan after this many seconds and say the answer is partial.
    #[arg(long, value_name = "SECS", default_value_t = 30.0, value_parser = super::number_args::parse_seconds, allow_negative_numbers = true)]
    pub(crate) time_budget: f64,
}

fn list(v: &[String]) -> Option<Vec<String>> {
    (!v.is_empty()).then(|| v.to_vec())
}

impl FilterArgs {
    pub(crate) fn filters(&self) -> TraceFilters {
        TraceFilters {
            has_errors: self.has_errors,
            model_names: list(&self.model_names),
            service_names: list(&self.service_names),
            agent_names: list(&self.agent_names),
            project_id: self.project_id.clone(),
            start_time_gte: self.start_time_gte.clone(),
            end_time_lte: self.end_time_lte.clone(),
            regex_pattern: self.regex_pattern.clone(),
            tool_names: list(&self.tool_names),
            has_tool_errors: self.has_tool_errors,
            min_duration_ms: self.min_duration_ms,
            max_duration_ms: self.max_duration_ms,
            min_tokens: self.min_tokens,
            status_message: self.status_message.clone(),
            session_id: self.session_id.clone(),
            user_id: self.user_id.clone(),
        }
    }

    pub(crate) fn budget(&self) -> ScanBudget {
        ScanBudget {
            time: Duration::from_secs_f64(self.time_budget),
        }
    }
}
