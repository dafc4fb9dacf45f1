//! `halo export`: the SQL tables as files other tools read (Parquet).

use std::path::PathBuf;
use std::sync::Mutex;
use std::time::Duration;

use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use serde::Serialize;

use super::dataset::DatasetArgs;
use crate::exit::{Failure, OK};
use crate::render;

/// Write the SQL tables (traces, spans, tool_calls, llm_calls) as Parquet files, for DuckDB,
/// Polars, Spark or a warehouse.
#[derive(Debug, Args)]
#[command(
    after_help = "Examples:\n  halo export traces.jsonl --parquet out/\n  halo export runs/ --parquet out/ --json"
)]
pub(crate) struct ExportArgs {
    #[command(flatten)]
    pub(crate) dataset: DatasetArgs,
    /// Directory to write `<table>.parquet` files into (created if needed; files are replaced).
    #[arg(long, value_name = "DIR", required = true)]
    pub(crate) parquet: PathBuf,
}

/// `--json` output.
#[derive(Debug, Serialize)]
struct ExportReport {
    schema_version: u32,
    format: &'static str,
    files: Vec<PathBuf>,
    /// Each table's file and rows (added beside `files`).
    tables: Vec<halo_sql::ExportedTable>,
}

pub(crate) fn run(args: &ExportArgs) -> Result<u8, Failure> {
    super::dataset::directory_possible("--parquet", &args.parquet)?;
    // Export writes every message and attribute, read from the source.
    let ds = args.dataset.open_for_scan()?;
    let bar = ExportBar {
        bar: Mutex::new(None),
        enabled: !args.dataset.options.quiet,
    };
    let tables = halo_sql::export_parquet_with(&ds, &args.parquet, &bar)?;
    if args.dataset.options.json {
        render::json(&ExportReport {
            schema_version: 1,
            format: "parquet",
            files: tables.iter().map(|t| t.path.clone()).collect(),
            tables,
        })?;
    } else {
        let mut out = String::new();
        for t in &tables {
            out.push_str(&format!(
                "wrote {} ({} rows)\n",
                t.path.display(),
                halo_diagnose::thousands(t.rows)
            ));
        }
        render::text(&out)?;
    }
    Ok(OK)
}

/// A bar per table on stderr (drawn only on a terminal): rows against the table's count
/// where it is known, a running count of rows for `messages`, which are counted as read.
struct ExportBar {
    bar: Mutex<Option<ProgressBar>>,
    enabled: bool,
}

impl halo_sql::ExportProgress for ExportBar {
    fn table_begins(&self, table: &str, rows: Option<u64>) {
        if !self.enabled {
            return;
        }
        let (bar, template) = match rows {
            Some(total) => (
                ProgressBar::new(total),
                "exporting {msg} [{bar:30}] {human_pos}/{human_len} rows, eta {eta}",
            ),
            None => (
                ProgressBar::new_spinner(),
                "{spinner} exporting {msg}: {human_pos} rows in {elapsed}",
            ),
        };
        bar.set_style(
            ProgressStyle::with_template(template)
                .expect("static template")
                .progress_chars("=> "),
        );
        bar.set_message(table.to_string());
        bar.enable_steady_tick(Duration::from_millis(200));
        if let Some(old) = self.bar.lock().expect("progress lock").replace(bar) {
            old.finish_and_clear();
        }
    }

    fn rows_written(&self, rows: u64) {
        if let Some(bar) = self.bar.lock().expect("progress lock").as_ref() {
            bar.set_position(rows);
        }
    }

    fn table_ends(&self, _table: &halo_sql::ExportedTable) {
        if let Some(bar) = self.bar.lock().expect("progress lock").take() {
            bar.finish_and_clear();
        }
    }
}

impl Drop for ExportBar {
    /// An export that fails part way clears its bar before the error is printed.
    fn drop(&mut self) {
        if let Ok(Some(bar)) = self.bar.get_mut().map(Option::take) {
            bar.finish_and_clear();
        }
    }
}
