//! Parquet export: every table written, readable back by the parquet crate, same rows.

use std::fs::File;

use arrow_array::Array;
use halo_sql::{SqlEngine, SqlLimits};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

use crate::common;

#[test]
fn every_table_is_exported_and_reads_back() {
    let tmp = tempfile::tempdir().unwrap();
    let ds = common::dataset(tmp.path());
    let out = tmp.path().join("out/parquet");
    let files = halo_sql::export_parquet(&ds, &out).unwrap();
    assert_eq!(files.len(), halo_sql::TABLE_NAMES.len());
    let engine = SqlEngine::open(&ds).unwrap();
    for ((name, schema), written) in engine.schemas().iter().zip(&files) {
        let path = &written.path;
        assert_eq!(&written.table, name);
        assert_eq!(path, &out.join(format!("{name}.parquet")));
        let reader = ParquetRecordBatchReaderBuilder::try_new(File::open(path).unwrap()).unwrap();
        let names: Vec<String> = reader
            .schema()
            .fields()
            .iter()
            .map(|f| f.name().clone())
            .collect();
        let expected: Vec<String> = schema.fields().iter().map(|f| f.name().clone()).collect();
        assert_eq!(names, expected, "{name}");
        let batches: Vec<_> = reader.build().unwrap().collect::<Result<_, _>>().unwrap();
        let rows: usize = batches.iter().map(|b| b.num_rows()).sum();
        let r = engine
            .query(
                &format!("SELECT count(*) FROM {name}"),
                &SqlLimits::default(),
            )
            .unwrap();
        assert_eq!(rows as i64, r.rows[0][0].as_i64().unwrap(), "{name}");
        assert_eq!(written.rows, rows as u64, "{name}");
        assert!(rows > 0, "{name}");
    }
    // Rows keep the index order: the first exported trace is the first trace.
    let reader =
        ParquetRecordBatchReaderBuilder::try_new(File::open(out.join("traces.parquet")).unwrap())
            .unwrap();
    let mut exported = Vec::new();
    for batch in reader.build().unwrap() {
        let batch = batch.unwrap();
        let ids = batch.column_by_name("trace_id").unwrap();
        let ids = ids
            .as_any()
            .downcast_ref::<arrow_array::StringArray>()
            .unwrap();
        exported.extend(ids.iter().flatten().map(str::to_string));
    }
    let indexed: Vec<String> = ds.traces().iter().map(|t| t.trace_id.clone()).collect();
    assert_eq!(exported, indexed, "every row in index order");

    // Spans go out with their attributes, read from the source: the Parquet file is all a
    // DuckDB user has.
    let reader =
        ParquetRecordBatchReaderBuilder::try_new(File::open(out.join("spans.parquet")).unwrap())
            .unwrap();
    let mut spans = 0;
    for batch in reader.build().unwrap() {
        let batch = batch.unwrap();
        let attributes = batch.column_by_name("attributes").unwrap();
        assert_eq!(attributes.null_count(), 0);
        let attributes = attributes
            .as_any()
            .downcast_ref::<arrow_array::StringArray>()
            .unwrap();
        for text in attributes.iter().flatten() {
            let v: serde_json::Value = serde_json::from_str(text).unwrap();
            assert!(v["openinference.span.kind"].is_string(), "{text}");
            spans += 1;
        }
    }
    assert_eq!(spans as u64, ds.span_count());
}

#[test]
fn progress_follows_every_table_to_its_last_row() {
    use std::sync::Mutex;

    #[derive(Default)]
    struct Recorded(Mutex<Vec<String>>);
    impl halo_sql::ExportProgress for Recorded {
        fn table_begins(&self, table: &str, rows: Option<u64>) {
            self.0
                .lock()
                .unwrap()
                .push(format!("begin {table} {rows:?}"));
        }
        fn rows_written(&self, rows: u64) {
            self.0.lock().unwrap().push(format!("{rows}"));
        }
        fn table_ends(&self, table: &halo_sql::ExportedTable) {
            self.0
                .lock()
                .unwrap()
                .push(format!("end {} {}", table.table, table.rows));
        }
    }

    let tmp = tempfile::tempdir().unwrap();
    let ds = common::dataset(tmp.path());
    let recorded = Recorded::default();
    let files = halo_sql::export_parquet_with(&ds, &tmp.path().join("out"), &recorded).unwrap();
    let events = recorded.0.into_inner().unwrap();
    for table in &files {
        let begin = events
            .iter()
            .position(|e| e.starts_with(&format!("begin {} ", table.table)))
            .unwrap_or_else(|| panic!("{} begins: {events:?}", table.table));
        let end = events
            .iter()
            .position(|e| *e == format!("end {} {}", table.table, table.rows))
            .unwrap_or_else(|| panic!("{} ends: {events:?}", table.table));
        let expected = if table.table == "messages" {
            "None".to_string()
        } else {
            format!("Some({})", table.rows)
        };
        assert_eq!(
            events[begin],
            format!("begin {} {expected}", table.table),
            "the count known up front is the count written"
        );
        let counts: Vec<u64> = events[begin + 1..end]
            .iter()
            .map(|e| e.parse().unwrap())
            .collect();
        assert!(counts.windows(2).all(|w| w[0] < w[1]), "{counts:?}");
        assert_eq!(counts.last().copied(), Some(table.rows), "{}", table.table);
    }
}

#[test]
fn an_export_that_fails_part_way_leaves_the_last_one_whole() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out");
    let ds = common::dataset(tmp.path());
    let first = halo_sql::export_parquet(&ds, &out).unwrap();
    let before: Vec<Vec<u8>> = first
        .iter()
        .map(|t| std::fs::read(&t.path).unwrap())
        .collect();
    // The source is rotated after the dataset opened: the spans' attributes cannot be read,
    // after the traces table was already written.
    let again = common::dataset(tmp.path());
    let source = tmp.path().join("a.jsonl");
    let rotated = source.with_extension("next");
    std::fs::write(&rotated, "{}\n").unwrap();
    std::fs::rename(&rotated, &source).unwrap();
    let err = halo_sql::export_parquet(&again, &out).unwrap_err();
    assert!(err.to_string().contains("replaced"), "{err}");
    for (table, bytes) in first.iter().zip(&before) {
        assert_eq!(
            &std::fs::read(&table.path).unwrap(),
            bytes,
            "{}",
            table.table
        );
    }
    let left: Vec<String> = std::fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains("partial"))
        .collect();
    assert!(left.is_empty(), "{left:?}");
}
