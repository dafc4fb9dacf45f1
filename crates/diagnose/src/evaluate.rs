//! Scoring a diagnosis against ground-truth labels (trace-level recall and precision).

use std::collections::{BTreeMap, HashSet};

use serde::{Deserialize, Serialize};

use crate::model::{Diagnosis, Mode};

/// Trace-level scores of one mode.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModeScore {
    /// The mode.
    pub mode: Mode,
    /// Traces labelled with the mode.
    pub labelled: usize,
    /// Traces the diagnosis reports under the mode.
    pub predicted: usize,
    /// Traces both labelled and reported.
    pub true_positives: usize,
    /// `true_positives / labelled` (1 when nothing is labelled).
    pub recall: f64,
    /// `true_positives / predicted` (1 when nothing is reported).
    pub precision: f64,
}

/// Reads a label file: a JSON object mapping mode ids (and `clean`) to arrays of trace ids,
/// as the trace generator writes it.
pub fn parse_labels(json: &str) -> Result<BTreeMap<String, Vec<String>>, String> {
    serde_json::from_str(json).map_err(|e| format!("invalid label file: {e}"))
}

/// Scores `d` per mode against `labels` (mode id -> trace ids). Modes that are neither
/// labelled nor reported are left out; label keys that are not modes (`clean`) are ignored.
pub fn evaluate(d: &Diagnosis, labels: &BTreeMap<String, Vec<String>>) -> Vec<ModeScore> {
    Mode::ALL
        .into_iter()
        .filter_map(|mode| {
            let truth: HashSet<&str> = labels
                .get(mode.as_str())
                .map(|v| v.iter().map(String::as_str).collect())
                .unwrap_or_default();
            let predicted = d.traces_with(mode);
            if truth.is_empty() && predicted.is_empty() {
                return None;
            }
            let tp = predicted
                .iter()
                .filter(|t| truth.contains(t.as_str()))
                .count();
            let ratio = |n: usize, of: usize| if of == 0 { 1.0 } else { n as f64 / of as f64 };
            Some(ModeScore {
                mode,
                labelled: truth.len(),
                predicted: predicted.len(),
                true_positives: tp,
                recall: ratio(tp, truth.len()),
                precision: ratio(tp, predicted.len()),
            })
        })
        .collect()
}
