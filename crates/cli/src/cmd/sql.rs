//! `halo sql`: one read-only SQL query over the dataset (tables `traces`, `spans`,
//! `tool_calls`, `llm_calls`, `messages`), as an aligned table, `--json` or `--csv`.

use std::time::Duration;

use clap::Args;
use halo_sql::{SqlEngine, SqlError, SqlLimits, SqlResult};

use super::dataset::{DatasetArgs, DatasetOptions};
use crate::exit::{Failure, OK};
use crate::render;
use crate::render::table::{cut, Table};

/// Widest cell shown in the human table; longer values end in "…" (use --json or --csv for
/// whole values).
const MAX_CELL_CHARS: usize = 120;

/// Run one read-only SQL query over the dataset.
#[derive(Debug, Args)]
#[command(
    after_help = "Tables: traces (one row per trace), spans (one row per span), tool_calls and llm_calls \
(views over spans), messages (one row per message of an LLM span, read from the source as the query runs; a filter on \
trace_id parses only that trace's spans; `content` keeps a message's first 4,096 characters, `content_chars` counts them all).\n\n\
Examples:\n  \
halo sql traces.jsonl \"DESCRIBE spans\"\n  \
halo sql traces.jsonl \"SELECT tool_name, count(*) FROM tool_calls WHERE is_error GROUP BY 1\"",
    override_usage = "halo sql [OPTIONS] TRACE_PATH... QUERY"
)]
pub(crate) struct SqlArgs {
    /// Trace files and directories (the dataset), then the SQL query.
    #[arg(required = true, num_args = 1.., value_name = "TRACE_PATH... QUERY")]
    pub(crate) words: Vec<String>,
    /// Print comma-separated values (a header line, then one line per row).
    #[arg(long, conflicts_with = "json")]
    pub(crate) csv: bool,
    /// Most rows to return; more are cut, with a note.
    #[arg(long, value_name = "N", default_value_t = SqlLimits::default().max_rows, value_parser = super::number_args::at_least_one)]
    pub(crate) max_rows: usize,
    /// Most bytes of (JSON) rows to return; more are cut, with a note.
    #[arg(long, value_name = "BYTES", default_value_t = SqlLimits::default().max_bytes, value_parser = super::number_args::at_least_one)]
    pub(crate) max_bytes: usize,
    /// Cancel the query after this many seconds.
    #[arg(long, value_name = "SECS", default_value_t = SqlLimits::default().timeout.as_secs_f64(), value_parser = super::number_args::parse_seconds, allow_negative_numbers = true)]
    pub(crate) timeout: f64,
    #[command(flatten)]
    pub(crate) options: DatasetOptions,
}

pub(crate) fn run(args: &SqlArgs) -> Result<u8, Failure> {
    let n = args.words.len();
    if n < 2 {
        return Err(Failure::usage(anyhow::anyhow!(
            "give the trace files or directories, then the query: halo sql TRACES \"SELECT ...\""
        )));
    }
    let (paths, query) = (&args.words[..n - 1], &args.words[n - 1]);
    let limits = SqlLimits {
        max_rows: args.max_rows,
        max_bytes: args.max_bytes,
        timeout: Duration::from_secs_f64(args.timeout),
        // A table on the terminal shows the head of each value: a huge one must not cut
        // the rows (JSON and CSV give values whole).
        max_cell_chars: (!args.options.json && !args.csv).then_some(MAX_CELL_CHARS + 1),
        ..SqlLimits::default()
    };
    let dataset = DatasetArgs {
        paths: paths.iter().map(Into::into).collect(),
        options: args.options.clone(),
    };
    // Shared: span tables and messages load only when the query names them. A query that
    // may read span attributes or messages reads the source of every span it selects, so
    // gzip sources get their inflated copy first, under a progress bar, rather than inside
    // the query (the word test can be fooled both ways; it only decides where the copy
    // is made, not whether the query works).
    let reads_source = {
        let q = query.to_ascii_lowercase();
        q.contains("attributes") || q.contains("messages")
    };
    let ds = std::sync::Arc::new(dataset.open_scanning_if(reads_source)?);
    let engine = SqlEngine::open_shared_for_one_query(ds).map_err(failure)?;
    let result = engine.query(query, &limits).map_err(failure)?;
    if args.options.json {
        render::json(&result)?;
    } else if args.csv {
        render::raw_text(&csv(&result))?;
        note(&result);
    } else {
        render::text(&human(&result))?;
        note(&result);
    }
    Ok(OK)
}

/// The query's own mistakes (refused, syntax, limits) are bad usage; the rest is data.
fn failure(e: SqlError) -> Failure {
    match e {
        SqlError::Refused(_)
        | SqlError::Syntax(_)
        | SqlError::Query(_)
        | SqlError::Timeout { .. }
        | SqlError::MemoryLimit { .. } => Failure::usage(e),
        other => Failure::from(other),
    }
}

fn note(r: &SqlResult) {
    if let Some(n) = &r.truncation_note {
        crate::errln!("halo: note: {n}");
    }
}

/// Text of a value for people and CSV: strings as they are, null as nothing, the rest as JSON.
fn cell(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::Null => String::new(),
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn human(r: &SqlResult) -> String {
    let header: Vec<&str> = r.columns.iter().map(|c| c.name.as_str()).collect();
    let mut t = Table::new(&header);
    for row in &r.rows {
        t.row(
            row.iter()
                .map(|v| match v {
                    // On screen a null must not look like an empty string.
                    serde_json::Value::Null => "NULL".to_string(),
                    // One line, escaped, cut to the cell's width.
                    v => cut(&cell(v), MAX_CELL_CHARS),
                })
                .collect(),
        );
    }
    let mut out = t.render("");
    let rows = if r.row_count == 1 {
        "1 row".to_string()
    } else {
        format!("{} rows", r.row_count)
    };
    let was_cut = if r.truncated { " (cut)" } else { "" };
    out.push_str(&format!("{rows}{was_cut} · {:.1} ms\n", r.elapsed_ms));
    out
}

fn csv(r: &SqlResult) -> String {
    let mut out = String::new();
    let header: Vec<String> = r.columns.iter().map(|c| csv_field(&c.name)).collect();
    out.push_str(&header.join(","));
    out.push('\n');
    for row in &r.rows {
        let fields: Vec<String> = row.iter().map(|v| csv_field(&cell(v))).collect();
        out.push_str(&fields.join(","));
        out.push('\n');
    }
    out
}

/// RFC 4180 quoting: fields with a comma, quote or line break are quoted, quotes doubled.
fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_quotes_what_needs_quoting() {
        assert_eq!(csv_field("plain"), "plain");
        assert_eq!(csv_field("a,b"), "\"a,b\"");
        assert_eq!(csv_field("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(csv_field("two\nlines"), "\"two\nlines\"");
    }

    #[test]
    fn long_cells_are_shortened_for_people() {
        let s = "x".repeat(500);
        assert_eq!(cut(&s, MAX_CELL_CHARS).chars().count(), MAX_CELL_CHARS);
        assert!(cut(&s, MAX_CELL_CHARS).ends_with('…'));
    }
}
