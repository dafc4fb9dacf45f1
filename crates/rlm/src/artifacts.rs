//! Where a run's report, record and checkpoint go, and saving them.

use std::path::{Path, PathBuf};

use crate::checkpoint::write_atomic;
use crate::engine::RunOutcome;

/// The files of one run: the Markdown report, and beside it the run record
/// (`<stem>.record.json`) and the checkpoint (`<stem>.checkpoint.json`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArtifactPaths {
    /// The report (Markdown).
    pub report: PathBuf,
    /// The run record (JSON).
    pub record: PathBuf,
    /// The checkpoint (JSON), written after every root turn.
    pub checkpoint: PathBuf,
}

impl ArtifactPaths {
    /// Paths for a run: the report at `output` when given, else
    /// `<run_id>.md` in `dir` (run ids start with `halo-`); the record and checkpoint next to it.
    pub fn for_run(output: Option<&Path>, run_id: &str, dir: &Path) -> ArtifactPaths {
        let report = match output {
            Some(p) => p.to_path_buf(),
            None => dir.join(format!("{run_id}.md")),
        };
        let stem = report
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|| run_id.to_string());
        let parent = report.parent().map(Path::to_path_buf).unwrap_or_default();
        ArtifactPaths {
            record: parent.join(format!("{stem}.record.json")),
            checkpoint: parent.join(format!("{stem}.checkpoint.json")),
            report,
        }
    }

    /// Writes the report and the run record (each atomically). The checkpoint
    /// is written by the engine itself when
    /// [`crate::EngineConfig::checkpoint_path`] is set.
    ///
    /// The report's control characters but line breaks are written escaped (`\u001b`), as
    /// the terminal shows them: it quotes trace text through the model, and `cat
    /// report.md` must not run an escape sequence planted in a span. The record, JSON for
    /// programs, keeps the text as it is.
    pub fn save(&self, outcome: &RunOutcome) -> std::io::Result<()> {
        write_atomic(&self.report, report_file_text(&outcome.report).as_bytes())?;
        let record = serde_json::to_string_pretty(&outcome.record)
            .map_err(|e| std::io::Error::other(e.to_string()))?;
        write_atomic(&self.record, (record + "\n").as_bytes())
    }
}

/// The report as its file holds it: control characters but line breaks escaped, and a
/// final line break.
fn report_file_text(report: &str) -> String {
    let mut text = halo_trace::printable(report).into_owned();
    if !text.ends_with('\n') {
        text.push('\n');
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_report_file_has_its_control_characters_escaped() {
        assert_eq!(
            report_file_text("# R\n\u{1b}]0;pwned\u{7} \u{1b}[2J done"),
            "# R\n\\u001b]0;pwned\\u0007 \\u001b[2J done\n"
        );
        assert_eq!(report_file_text("plain\n"), "plain\n");
    }

    #[test]
    fn paths_sit_next_to_the_report() {
        let p = ArtifactPaths::for_run(None, "r1", Path::new("/w"));
        assert_eq!(p.report, Path::new("/w/r1.md"));
        assert_eq!(p.record, Path::new("/w/r1.record.json"));
        assert_eq!(p.checkpoint, Path::new("/w/r1.checkpoint.json"));
        let p = ArtifactPaths::for_run(Some(Path::new("out/diag.md")), "r1", Path::new("/w"));
        assert_eq!(p.report, Path::new("out/diag.md"));
        assert_eq!(p.record, Path::new("out/diag.record.json"));
        let p = ArtifactPaths::for_run(Some(Path::new("report")), "r1", Path::new("/w"));
        assert_eq!(p.checkpoint, Path::new("report.checkpoint.json"));
    }
}
