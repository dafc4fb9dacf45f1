//! `halo export --parquet`: every table as one Parquet file, for DuckDB, Polars, Spark or a
//! warehouse.

use std::path::{Path, PathBuf};

use datafusion::dataframe::DataFrame;
use futures::StreamExt;
use halo_index::Dataset;
use parquet::arrow::ArrowWriter;
use parquet::basic::Compression;
use parquet::file::properties::WriterProperties;

use crate::{SqlEngine, SqlError, TABLE_NAMES};

/// One table written by [`export_parquet`].
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ExportedTable {
    /// The table's name.
    pub table: String,
    /// The file written.
    pub path: PathBuf,
    /// Rows written.
    pub rows: u64,
}

/// Writes every table (`traces`, `spans`, `tool_calls`, `llm_calls`, `messages`) as `DIR/<table>.parquet`
/// (Snappy-compressed, rows in index order), creating `dir` if needed. Returns what was
/// written, table by table.
///
/// `spans.parquet` includes the `attributes` column, read again from the source files:
/// whoever takes the data to DuckDB or a warehouse has no index to go back to.
pub fn export_parquet(ds: &Dataset, dir: &Path) -> Result<Vec<ExportedTable>, SqlError> {
    let engine = SqlEngine::open(ds)?;
    if dir.is_file() {
        return Err(SqlError::Io {
            path: dir.to_path_buf(),
            cause: std::io::Error::new(
                std::io::ErrorKind::AlreadyExists,
                "a file is there; the tables are written into a directory",
            ),
        });
    }
    std::fs::create_dir_all(dir).map_err(|cause| SqlError::Io {
        path: dir.to_path_buf(),
        cause,
    })?;
    let mut written = Vec::new();
    for name in TABLE_NAMES {
        let path = dir.join(format!("{name}.parquet"));
        let rows = engine.block_on(write_table(&engine, name, &path))??;
        written.push(ExportedTable {
            table: name.to_string(),
            path,
            rows,
        });
    }
    Ok(written)
}

/// Writes one table; returns its rows.
async fn write_table(engine: &SqlEngine, name: &str, path: &Path) -> Result<u64, SqlError> {
    let df_err = |e| SqlError::from_datafusion(e, usize::MAX);
    // Tables are made of contiguous runs of the index's rows, one per partition; reading
    // the partitions one after another, in order, keeps the index's row order in the file
    // (merging them into one stream would interleave them as they arrive).
    let mut state = engine.base_state().clone();
    state.config_mut().options_mut().execution.target_partitions = 1;
    let plan = state
        .create_logical_plan(&format!("SELECT * FROM {name}"))
        .await
        .map_err(df_err)?;
    let df = DataFrame::new(state, plan);
    let schema = std::sync::Arc::new(df.schema().as_arrow().clone());
    let streams = df.execute_stream_partitioned().await.map_err(df_err)?;

    let parquet_err = |e: parquet::errors::ParquetError| SqlError::Parquet {
        path: path.to_path_buf(),
        message: e.to_string(),
    };
    let file = std::fs::File::create(path).map_err(|cause| SqlError::Io {
        path: path.to_path_buf(),
        cause,
    })?;
    let props = WriterProperties::builder()
        .set_compression(Compression::SNAPPY)
        .build();
    let mut writer = ArrowWriter::try_new(std::io::BufWriter::new(file), schema, Some(props))
        .map_err(parquet_err)?;
    let mut rows = 0u64;
    for mut stream in streams {
        while let Some(batch) = stream.next().await {
            let batch = batch.map_err(df_err)?;
            rows += batch.num_rows() as u64;
            writer.write(&batch).map_err(parquet_err)?;
        }
    }
    writer.close().map_err(parquet_err)?;
    Ok(rows)
}
