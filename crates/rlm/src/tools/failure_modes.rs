//! `get_failure_modes(filters)`: the offline diagnosis (halo-diagnose) over the traces the
//! filters select, condensed into a compact map of the failure landscape for the model.

use std::collections::HashSet;

use halo_diagnose::{diagnose, DiagnoseOptions, Diagnosis, Finding};
use halo_index::Dataset;
use halo_query::{ScanBudget, ScanInfo, TraceFilters};
use halo_trace::clip;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Version of the `get_failure_modes` result layout.
const FAILURE_MAP_SCHEMA_VERSION: u32 = 2;
/// Largest result, in bytes of JSON: findings are dropped from the least impactful end.
const MAX_MAP_BYTES: usize = 24_000;
/// Findings listed at most, before the size budget.
const MAX_FINDINGS: usize = 25;
/// Example traces per finding.
const EXAMPLES: usize = 3;
/// Span ids per example trace.
const SPANS_PER_EXAMPLE: usize = 3;
/// Longest title, template or argument, in characters.
const MAX_LABEL_CHARS: usize = 200;
/// Longest fix direction, in characters.
const MAX_FIX_CHARS: usize = 400;

/// Arguments of `get_failure_modes`.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct FailureModesArgs {
    /// Which traces to diagnose (default: all traces). The same filters as count_traces.
    #[serde(default)]
    pub(crate) filters: Option<TraceFilters>,
}

#[derive(Debug, Serialize)]
struct FailureMap {
    schema_version: u32,
    /// Traces the detectors looked at.
    traces_analysed: usize,
    /// Of those, traces with at least one finding.
    failing_traces: usize,
    /// What a `regex_pattern` scan covered, when one ran.
    #[serde(skip_serializing_if = "Option::is_none")]
    regex_scan: Option<ScanInfo>,
    /// Per failure mode, highest impact first.
    modes: Vec<ModeRow>,
    /// The most impactful findings.
    findings: Vec<FindingRow>,
    /// All findings, listed or not.
    findings_total: usize,
    note: String,
}

#[derive(Debug, Serialize)]
struct ModeRow {
    mode: &'static str,
    label: &'static str,
    trace_count: usize,
    share: f64,
    findings: usize,
}

#[derive(Debug, Serialize)]
struct FindingRow {
    mode: &'static str,
    title: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    tool: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    model: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    template: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    argument: Option<String>,
    trace_count: usize,
    share: f64,
    examples: Vec<ExampleRow>,
    fix: String,
}

#[derive(Debug, Serialize)]
struct ExampleRow {
    trace_id: String,
    span_ids: Vec<String>,
}

fn round_share(share: f64) -> f64 {
    (share * 10_000.0).round() / 10_000.0
}

fn finding_row(f: &Finding) -> FindingRow {
    let label = |v: &Option<String>| v.as_deref().map(|s| clip(s, MAX_LABEL_CHARS).into_owned());
    FindingRow {
        mode: f.key.mode.as_str(),
        title: clip(&f.title, MAX_LABEL_CHARS).into_owned(),
        tool: label(&f.key.tool),
        model: label(&f.key.model),
        template: label(&f.key.template),
        argument: label(&f.argument),
        trace_count: f.trace_count,
        share: round_share(f.share),
        examples: f
            .examples
            .iter()
            .take(EXAMPLES)
            .map(|e| ExampleRow {
                trace_id: e.trace_id.clone(),
                span_ids: e.span_ids.iter().take(SPANS_PER_EXAMPLE).cloned().collect(),
            })
            .collect(),
        fix: clip(&f.fix, MAX_FIX_CHARS).into_owned(),
    }
}

fn map_of(d: &Diagnosis, regex_scan: Option<ScanInfo>) -> FailureMap {
    let mut note = String::from(
        "Deterministic detectors over every span of the analysed traces (no model). Counts are traces. \
Verify a finding by reading its example spans (view_spans / view_trace), then measure and explain it with count_traces, query_traces or sql; cite examples as [span:TRACE_ID:SPAN_ID].",
    );
    if regex_scan.as_ref().is_some_and(|s| !s.complete) {
        note.push_str(" The regex_pattern scan stopped at its time budget: only the traces found so far were analysed.");
    }
    if d.stats.traces == 0 {
        note = "No trace matches these filters; nothing was analysed.".to_owned();
    } else if d.findings.is_empty() {
        note.push_str(" No failure mode was detected in these traces.");
    }
    FailureMap {
        schema_version: FAILURE_MAP_SCHEMA_VERSION,
        traces_analysed: d.stats.traces,
        failing_traces: d.stats.failing_traces,
        regex_scan,
        modes: d
            .modes
            .iter()
            .map(|m| ModeRow {
                mode: m.mode.as_str(),
                label: m.mode.label(),
                trace_count: m.trace_count,
                share: round_share(m.share),
                findings: m.findings,
            })
            .collect(),
        findings: d
            .findings
            .iter()
            .take(MAX_FINDINGS)
            .map(finding_row)
            .collect(),
        findings_total: d.findings.len(),
        note,
    }
}

/// Serializes `map`, dropping the least impactful findings until it fits the size budget.
fn encode(mut map: FailureMap) -> Result<String, String> {
    let base_note = map.note.clone();
    loop {
        let shown = map.findings.len();
        if shown < map.findings_total {
            map.note = format!(
                "{base_note} Showing the {shown} most impactful of {} findings; narrow the filters (e.g. tool_names, model_names, status_message) to see the others.",
                map.findings_total
            );
        }
        let text = serde_json::to_string(&map).map_err(|e| format!("cannot encode result: {e}"))?;
        if text.len() <= MAX_MAP_BYTES || map.findings.is_empty() {
            return Ok(text);
        }
        map.findings.pop();
    }
}

/// Runs `get_failure_modes`: selects the traces, diagnoses them, returns the compact map.
pub(crate) fn failure_modes(ds: &Dataset, args: FailureModesArgs) -> Result<String, String> {
    let filters = args.filters.unwrap_or_default();
    let (trace_ids, regex_scan) = if filters.is_empty() {
        (None, None)
    } else {
        let (ids, scan) = halo_query::select_trace_ids(ds, &filters, ScanBudget::default())
            .map_err(|e| e.to_string())?;
        (Some(ids.into_iter().collect::<HashSet<String>>()), scan)
    };
    let opts = DiagnoseOptions {
        trace_ids,
        ..Default::default()
    };
    let d = diagnose(ds, &opts).map_err(|e| format!("the diagnosis failed: {e}"))?;
    encode(map_of(&d, regex_scan))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encode_drops_findings_until_the_map_fits() {
        let row = |i: usize| FindingRow {
            mode: "tool_error",
            title: format!("finding {i} {}", "x".repeat(150)),
            tool: Some("t".into()),
            model: None,
            template: Some("y".repeat(200)),
            argument: None,
            trace_count: 1,
            share: 0.5,
            examples: vec![],
            fix: "z".repeat(400),
        };
        let map = FailureMap {
            schema_version: 1,
            traces_analysed: 2,
            failing_traces: 1,
            regex_scan: None,
            modes: vec![],
            findings: (0..200).map(row).collect(),
            findings_total: 200,
            note: "n.".into(),
        };
        let text = encode(map).unwrap();
        assert!(text.len() <= MAX_MAP_BYTES);
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        let shown = v["findings"].as_array().unwrap().len();
        assert!(shown > 5 && shown < 200);
        assert!(v["note"]
            .as_str()
            .unwrap()
            .contains(&format!("Showing the {shown} most impactful of 200")));
    }
}
