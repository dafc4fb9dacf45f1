//! `halo export`: the SQL tables as files other tools read (Parquet).

use std::path::PathBuf;

use clap::Args;
use serde::Serialize;

use super::dataset::DatasetArgs;
use crate::exit::{Failure, OK};
use crate::render;

/// Write the SQL tables (traces, spans, tool_calls, llm_calls) as Parquet files, for DuckDB,
/// Polars, Spark or a warehouse.
#[derive(Debug, Args)]
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
    let tables = halo_sql::export_parquet(&ds, &args.parquet)?;
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
