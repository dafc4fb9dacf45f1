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
}

pub(crate) fn run(args: &ExportArgs) -> Result<u8, Failure> {
    super::dataset::directory_possible("--parquet", &args.parquet)?;
    // Export writes every message and attribute, read from the source.
    let ds = args.dataset.open_for_scan()?;
    let files = halo_sql::export_parquet(&ds, &args.parquet)?;
    if args.dataset.options.json {
        render::json(&ExportReport {
            schema_version: 1,
            format: "parquet",
            files,
        })?;
    } else {
        let mut out = String::new();
        for f in &files {
            out.push_str(&format!("wrote {}\n", f.display()));
        }
        render::text(&out)?;
    }
    Ok(OK)
}
