use std::path::PathBuf;

/// Something wrong with the input that did not stop the run: a skipped line, a skipped span,
/// a duplicate id, an unreadable file.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Problem {
    /// What kind of problem it is, for scripts and for `--strict`.
    pub kind: ProblemKind,
    /// The file it concerns.
    pub file: PathBuf,
    /// The 1-based line, where it concerns one line.
    pub line: Option<u64>,
    /// What is wrong and what was done about it.
    pub message: String,
}

/// The kinds of [`Problem`], as `--json` names them (`skipped_line`, ...).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ProblemKind {
    /// A line that could not be read as spans (malformed JSON, invalid UTF-8, a missing or
    /// mistyped field): the line was skipped.
    SkippedLine,
    /// A span that could not be read in an otherwise good line (OTLP): the span was skipped.
    SkippedSpan,
    /// The last line has no newline and does not parse yet: not indexed until completed.
    IncompleteLastLine,
    /// Span ids given more than once in a trace: every copy was kept and counted.
    DuplicateSpanIds,
    /// A gzip stream that is truncated or corrupt, or followed by bytes that are not gzip:
    /// what came before was indexed.
    GzipFault,
    /// A file or directory that could not be read: it was skipped.
    Unreadable,
    /// Spans that end before they start (clock skew in an exporter, say): kept, with a
    /// duration of 0.
    ReversedTimes,
    /// OTLP logs or metrics lines, which a Collector's file exporter may write beside the
    /// spans: passed over, since they hold no spans.
    OtherSignals,
}

impl ProblemKind {
    /// Whether `--strict` turns this kind into an error: anything that lost data. Repeated
    /// span ids lose nothing, and an incomplete last line is indexed once completed.
    pub fn loses_data(self) -> bool {
        matches!(
            self,
            ProblemKind::SkippedLine
                | ProblemKind::SkippedSpan
                | ProblemKind::GzipFault
                | ProblemKind::Unreadable
        )
    }
}

impl Problem {
    /// A problem on one line of a file.
    pub fn at_line(
        kind: ProblemKind,
        file: impl Into<PathBuf>,
        line: u64,
        message: impl Into<String>,
    ) -> Problem {
        Problem {
            kind,
            file: file.into(),
            line: Some(line),
            message: message.into(),
        }
    }

    /// A problem with a whole file.
    pub fn in_file(
        kind: ProblemKind,
        file: impl Into<PathBuf>,
        message: impl Into<String>,
    ) -> Problem {
        Problem {
            kind,
            file: file.into(),
            line: None,
            message: message.into(),
        }
    }
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.line {
            Some(line) => write!(f, "{}:{}: {}", self.file.display(), line, self.message),
            None => write!(f, "{}: {}", self.file.display(), self.message),
        }
    }
}

/// Why a dataset could not be opened at all.
#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    /// A path given by the user does not exist.
    #[error("{}: no such file or directory", .0.display())]
    NotFound(PathBuf),
    /// A path exists but could not be read.
    #[error("{}: {error}", path.display())]
    Io {
        /// The path.
        path: PathBuf,
        /// The OS error (shown in the message, not chained, so it prints once).
        error: std::io::Error,
    },
    /// A path names something halo cannot index: not a regular file (a pipe, a socket, a
    /// device), or a name that is not valid UTF-8.
    #[error("{}: {reason}", path.display())]
    Unsupported {
        /// The path.
        path: PathBuf,
        /// What is wrong with it, and what to do.
        reason: String,
    },
    /// The paths held no trace files.
    #[error("no trace files found in {0} (looked for *.jsonl, *.ndjson, *.json and their .gz)")]
    NoTraceFiles(String),
}
