//! The detector settings `halo diagnose` and `halo diff` share (a diff compares two runs
//! diagnosed the same way).

use clap::Args;
use halo_diagnose::DiagnoseOptions;

/// How sensitive the detectors are; the defaults suit most datasets.
#[derive(Debug, Clone, PartialEq, Args)]
pub(crate) struct DetectorArgs {
    /// Scales every latency and token outlier threshold (8x the median of its model or
    /// tool, 15 spreads above it, and floors of 10 s, 1.5 s and 8,000 tokens): 0.5 halves
    /// them, to see smaller regressions.
    #[arg(long, value_name = "S", default_value_t = 1.0)]
    pub(crate) outlier_scale: f64,
    /// Identical tool calls (back to back, or in a cycle with the same one or two other calls) that make
    /// a repeated-call loop.
    #[arg(long, value_name = "N", default_value_t = DiagnoseOptions::default().repeat_threshold)]
    pub(crate) repeat_threshold: usize,
    /// Refusals in one trace that make a refusal loop.
    #[arg(long, value_name = "N", default_value_t = DiagnoseOptions::default().refusal_loop_threshold)]
    pub(crate) refusal_loop_threshold: usize,
}

impl Default for DetectorArgs {
    fn default() -> DetectorArgs {
        let d = DiagnoseOptions::default();
        DetectorArgs {
            outlier_scale: 1.0,
            repeat_threshold: d.repeat_threshold,
            refusal_loop_threshold: d.refusal_loop_threshold,
        }
    }
}

impl DetectorArgs {
    /// The detector options these flags give, or why they make no sense.
    pub(crate) fn options(&self) -> anyhow::Result<DiagnoseOptions> {
        let d = DiagnoseOptions::default();
        let scale = self.outlier_scale;
        // Below this, "outlier" would mean "at the median".
        if !(scale.is_finite() && scale * d.outlier_factor > 1.0) {
            anyhow::bail!(
                "--outlier-scale {scale} must be a finite number above {}",
                1.0 / d.outlier_factor
            );
        }
        for (flag, n) in [
            ("--repeat-threshold", self.repeat_threshold),
            ("--refusal-loop-threshold", self.refusal_loop_threshold),
        ] {
            if n < 2 {
                anyhow::bail!("{flag} {n} must be at least 2");
            }
        }
        Ok(DiagnoseOptions {
            outlier_factor: d.outlier_factor * scale,
            outlier_mads: d.outlier_mads * scale,
            min_llm_outlier_ms: d.min_llm_outlier_ms * scale,
            min_tool_outlier_ms: d.min_tool_outlier_ms * scale,
            min_outlier_tokens: d.min_outlier_tokens * scale,
            repeat_threshold: self.repeat_threshold,
            refusal_loop_threshold: self.refusal_loop_threshold,
            ..d
        })
    }
}
