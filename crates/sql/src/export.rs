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

/// Bytes of encoded rows a Parquet row group holds before it is written out: large enough
/// for readers to skip by statistics, small enough to keep an export's memory modest.
const ROW_GROUP_BYTES: usize = 64 << 20;

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

/// What an export says as it goes; every method does nothing unless overridden.
pub trait ExportProgress: Sync {
    /// Writing `table` begins; it will have `rows` rows, where that is known before the
    /// source is read (not for `messages`).
    fn table_begins(&self, table: &str, rows: Option<u64>) {
        let _ = (table, rows);
    }

    /// `rows` rows of the current table are written so far.
    fn rows_written(&self, rows: u64) {
        let _ = rows;
    }

    /// The current table is written.
    fn table_ends(&self, table: &ExportedTable) {
        let _ = table;
    }
}

/// Progress that nobody watches.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoExportProgress;

impl ExportProgress for NoExportProgress {}

/// Writes every table (`traces`, `spans`, `tool_calls`, `llm_calls`, `messages`) as `DIR/<table>.parquet`
/// (Snappy-compressed, rows in index order), creating `dir` if needed. Returns what was
/// written, table by table.
///
/// `spans.parquet` includes the `attributes` column, read again from the source files:
/// whoever takes the data to DuckDB or a warehouse has no index to go back to.
pub fn export_parquet(ds: &Dataset, dir: &Path) -> Result<Vec<ExportedTable>, SqlError> {
    export_parquet_with(ds, dir, &NoExportProgress)
}

/// [`export_parquet`], telling `progress` how far it is.
pub fn export_parquet_with(
    ds: &Dataset,
    dir: &Path,
    progress: &dyn ExportProgress,
) -> Result<Vec<ExportedTable>, SqlError> {
    let engine = SqlEngine::open_for_one_pass(ds)?;
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
    // Every table is written under a hidden name first and all are renamed at the end, so
    // an export that fails (or is killed) part way leaves the files of the last export as
    // they were, never a file without its footer.
    let partial = |name: &str| dir.join(format!(".{name}.parquet.partial"));
    let mut written = Vec::new();
    for name in TABLE_NAMES {
        progress.table_begins(name, expected_rows(&engine, name));
        let rows = engine
            .block_on(write_table(
                &engine,
                name,
                &partial(name),
                ROW_GROUP_BYTES,
                progress,
            ))
            .and_then(|r| r);
        let rows = match rows {
            Ok(rows) => rows,
            Err(e) => {
                for name in TABLE_NAMES {
                    let _ = std::fs::remove_file(partial(name));
                }
                return Err(e);
            }
        };
        let table = ExportedTable {
            table: name.to_string(),
            path: dir.join(format!("{name}.parquet")),
            rows,
        };
        progress.table_ends(&table);
        written.push(table);
    }
    for table in &written {
        std::fs::rename(partial(&table.table), &table.path).map_err(|cause| SqlError::Io {
            path: table.path.clone(),
            cause,
        })?;
    }
    Ok(written)
}

/// The rows `name` has, where the index knows it without reading the source: every table
/// but `messages`.
fn expected_rows(engine: &SqlEngine, name: &str) -> Option<u64> {
    if name == "messages" {
        return None;
    }
    let counted = engine
        .query(
            &format!("SELECT count(*) FROM {name}"),
            &crate::SqlLimits::default(),
        )
        .ok()?;
    counted.rows.first()?.first()?.as_u64()
}

/// Writes one table, closing row groups at `row_group_bytes`; returns its rows.
async fn write_table(
    engine: &SqlEngine,
    name: &str,
    path: &Path,
    row_group_bytes: usize,
    progress: &dyn ExportProgress,
) -> Result<u64, SqlError> {
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
            progress.rows_written(rows);
            // The writer holds a row group in memory until it has a million rows: with
            // spans' attributes that is gigabytes. Closing groups by size bounds it.
            if writer.in_progress_size() >= row_group_bytes {
                writer.flush().map_err(parquet_err)?;
            }
        }
    }
    writer.close().map_err(parquet_err)?;
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn row_groups_are_closed_by_size_and_keep_every_row_in_order() {
        let tmp = tempfile::tempdir().unwrap();
        let ds = std::sync::Arc::new(crate::testdata::llm_dataset(tmp.path(), 20));
        // One span per slice, so that the writer is given many small batches, as a large
        // dataset gives it many large ones.
        let spans = std::sync::Arc::new(
            crate::spans::SpansTable::shared(ds.clone(), 1).with_slice_bytes(1),
        );
        let messages =
            crate::messages::MessagesTable::over(spans.clone(), 2).bounded(1, 1 << 20, 0);
        let traces = halo_index::traces_to_batch(ds.traces());
        let state =
            crate::tables::base_state(spans, traces, std::sync::Arc::new(messages), 1).unwrap();
        let engine = SqlEngine::from_state(state, 1).unwrap();
        for (table, row_group_bytes, groups) in [
            ("spans", ROW_GROUP_BYTES, 1..2),
            ("spans", 2_000, 4..60),
            ("messages", 2_000, 2..120),
        ] {
            let path = tmp
                .path()
                .join(format!("{table}-{row_group_bytes}.parquet"));
            let rows = engine
                .block_on(write_table(
                    &engine,
                    table,
                    &path,
                    row_group_bytes,
                    &NoExportProgress,
                ))
                .unwrap()
                .unwrap();
            let file = std::fs::File::open(&path).unwrap();
            let reader =
                parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(file)
                    .unwrap();
            let written = reader.metadata().num_row_groups();
            assert!(groups.contains(&written), "{table}: {written} row groups");
            let read: Vec<String> = reader
                .build()
                .unwrap()
                .flat_map(|b| {
                    let b = b.unwrap();
                    let ids = arrow_array::cast::AsArray::as_string::<i32>(
                        b.column_by_name("trace_id").unwrap(),
                    )
                    .clone();
                    ids.iter().flatten().map(str::to_string).collect::<Vec<_>>()
                })
                .collect();
            assert_eq!(read.len() as u64, rows);
            let mut sorted = read.clone();
            sorted.sort();
            assert_eq!(read, sorted, "{table}: rows in index order");
        }
    }
}
