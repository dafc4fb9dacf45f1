//! The `spans` table: the index's span batches as they are, plus an `attributes` column
//! read from the source only when a query selects it.
//!
//! The index does not keep attributes (a few KB per span: they would double it). A scan
//! that leaves `attributes` out is the plain in-memory scan over the index batches and never
//! touches a source file. A scan that selects it streams the batches in slices, drops the
//! rows that the query's filters on other columns reject, and parses each remaining span
//! again from its byte range in the source to render its attributes as one JSON object.

use std::collections::HashSet;
use std::fmt::Write as _;
use std::sync::{Arc, OnceLock};

use arrow_array::builder::StringBuilder;
use arrow_array::{ArrayRef, RecordBatch};
use arrow_schema::{DataType, Field, FieldRef, Schema, SchemaRef};
use datafusion::catalog::{MemTable, Session, TableProvider};
use datafusion::datasource::TableType;
use datafusion::error::{DataFusionError, Result as DfResult};
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::logical_expr::{Expr, TableProviderFilterPushDown};
use datafusion::physical_expr::PhysicalExpr;
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::streaming::PartitionStream;
use datafusion::physical_plan::ExecutionPlan;
use halo_index::{Dataset, SpanColumns};
use halo_trace::{AttrValue, Attributes, ParsedLine};

use crate::blocking_once::BlockingOnce;
use crate::dynamic_filter_scan::{DynamicFilterScan, MakePartitions};
use crate::slices::{passing, passing_hints, slices, split, Cut, Slice, SLICE_BYTES};
use crate::sources::Sources;
use crate::SqlError;

/// The column that holds a span's attributes as JSON text.
pub(crate) const ATTRIBUTES: &str = "attributes";

/// The `spans` schema: the index's span columns, then `attributes`.
pub(crate) fn spans_schema() -> SchemaRef {
    static SCHEMA: OnceLock<SchemaRef> = OnceLock::new();
    SCHEMA
        .get_or_init(|| {
            let index = halo_index::span_schema();
            let mut fields: Vec<FieldRef> = index.fields().iter().cloned().collect();
            // Null when the span cannot be read back from its source.
            fields.push(Arc::new(Field::new(ATTRIBUTES, DataType::Utf8, true)));
            Arc::new(Schema::new_with_metadata(fields, index.metadata().clone()))
        })
        .clone()
}

/// The position of `attributes` in [`spans_schema`].
fn attributes_index() -> usize {
    halo_index::span_schema().fields().len()
}

/// The span batches, loaded.
#[derive(Debug)]
struct Loaded {
    /// For scans without `attributes`: one partition per segment, zero-copy.
    table: Arc<MemTable>,
    /// The same batches by segment, for scans with `attributes` (which need to know whose
    /// source a row points into).
    segments: Vec<Vec<RecordBatch>>,
}

impl Loaded {
    fn new(segments: Vec<Vec<RecordBatch>>) -> Result<Loaded, SqlError> {
        let table = MemTable::try_new(
            halo_index::span_schema(),
            crate::tables::non_empty(segments.clone()),
        )
        .map_err(|e| SqlError::Query(format!("spans table: {e}")))?;
        Ok(Loaded {
            table: Arc::new(table),
            segments,
        })
    }
}

/// The `spans` table provider.
#[derive(Debug)]
pub(crate) struct SpansTable {
    /// Set for a shared dataset, whose batches are loaded by the first scan.
    load: Option<(Arc<Dataset>, usize)>,
    loaded: BlockingOnce<Arc<Loaded>>,
    sources: Arc<Sources>,
    /// Bytes of source spans read into one slice of a scan with `attributes`.
    slice_bytes: usize,
}

impl SpansTable {
    /// Every segment's span batches, read now, with the sources mapped now.
    pub(crate) fn of(ds: &Dataset, threads: usize) -> Result<SpansTable, SqlError> {
        let loaded = Loaded::new(load_spans(ds, threads)?)?;
        Ok(SpansTable {
            load: None,
            loaded: BlockingOnce::ready(Arc::new(loaded)),
            sources: Arc::new(Sources::mapped(ds)),
            slice_bytes: SLICE_BYTES,
        })
    }

    /// A shared dataset's spans, read by the first scan; sources are mapped only by a scan
    /// that selects `attributes`.
    pub(crate) fn shared(ds: Arc<Dataset>, threads: usize) -> SpansTable {
        SpansTable {
            load: Some((ds.clone(), threads)),
            loaded: BlockingOnce::new(),
            sources: Arc::new(Sources::shared(ds)),
            slice_bytes: SLICE_BYTES,
        }
    }

    /// No spans, for schemas and the tool description.
    pub(crate) fn empty() -> Result<SpansTable, SqlError> {
        Ok(SpansTable {
            load: None,
            loaded: BlockingOnce::ready(Arc::new(Loaded::new(Vec::new())?)),
            sources: Arc::new(Sources::None),
            slice_bytes: SLICE_BYTES,
        })
    }

    /// The same table, cutting slices of a scan with `attributes` at `bytes`.
    #[cfg(test)]
    pub(crate) fn with_slice_bytes(self, bytes: usize) -> SpansTable {
        SpansTable {
            slice_bytes: bytes,
            ..self
        }
    }

    /// Every segment's span batches (index `s` is segment `s`), as the index holds them;
    /// a shared dataset's are loaded by the first caller.
    pub(crate) async fn segments(&self) -> DfResult<Vec<Vec<RecordBatch>>> {
        Ok(self.loaded().await?.segments.clone())
    }

    /// Where the segments' source bytes come from.
    pub(crate) fn sources(&self) -> Arc<Sources> {
        self.sources.clone()
    }

    async fn loaded(&self) -> DfResult<Arc<Loaded>> {
        let load = self.load.clone();
        self.loaded
            .get_or_make(move || {
                let (ds, threads) = load.ok_or("no dataset")?;
                load_spans(&ds, threads)
                    .and_then(Loaded::new)
                    .map(Arc::new)
                    .map_err(|e| e.to_string())
            })
            .await
            .map_err(crate::error::TableUnreadable::into_datafusion)
    }
}

/// The span batches of every segment, one partition per segment (index `s` is segment
/// `s`); segments not loaded yet are read in parallel, one thread per core.
fn load_spans(ds: &Dataset, threads: usize) -> Result<Vec<Vec<RecordBatch>>, SqlError> {
    let segments: Vec<u32> = (0..ds.segment_count()).collect();
    let per_thread = segments.len().div_ceil(threads.max(1)).max(1);
    let loaded: Vec<Result<Vec<Vec<RecordBatch>>, SqlError>> = std::thread::scope(|scope| {
        let handles: Vec<_> = segments
            .chunks(per_thread)
            .map(|chunk| {
                scope.spawn(move || {
                    chunk
                        .iter()
                        .map(|&seg| Ok(ds.span_table(seg)?.batches().to_vec()))
                        .collect::<Result<Vec<_>, SqlError>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("span table loading does not panic"))
            .collect()
    });
    let mut partitions = Vec::with_capacity(segments.len());
    for part in loaded {
        partitions.extend(part?);
    }
    Ok(partitions)
}

/// Whether a filter can also be applied before attributes are read: it must not need them,
/// and evaluating it twice (here and above the scan) must not change its answer.
fn pushable(filter: &Expr) -> bool {
    !filter.is_volatile() && !filter.column_refs().iter().any(|c| c.name == ATTRIBUTES)
}

#[async_trait::async_trait]
impl TableProvider for SpansTable {
    fn schema(&self) -> SchemaRef {
        spans_schema()
    }

    fn table_type(&self) -> TableType {
        TableType::Base
    }

    /// Inexact: DataFusion still filters above the scan, so the scan without `attributes`
    /// may ignore the filters and stay the zero-copy scan; the scan with `attributes` uses
    /// them to read only the rows that can pass.
    fn supports_filters_pushdown(
        &self,
        filters: &[&Expr],
    ) -> DfResult<Vec<TableProviderFilterPushDown>> {
        Ok(crate::slices::pushdown(filters, pushable))
    }

    async fn scan(
        &self,
        state: &dyn Session,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
        limit: Option<usize>,
    ) -> DfResult<Arc<dyn ExecutionPlan>> {
        let loaded = self.loaded().await?;
        if projection.is_some_and(|p| !p.contains(&attributes_index())) {
            return loaded.table.scan(state, projection, filters, limit).await;
        }
        let predicates = crate::slices::span_predicates(state, filters, pushable)?;
        // A limit reaches the scan only when no filter stands between; then the first rows
        // are all that is read.
        let row_cap = limit.filter(|_| predicates.is_empty());
        let cut = Cut {
            rows: state.config().batch_size(),
            bytes: self.slice_bytes,
        };
        let parts = split(
            slices(&loaded.segments, cut, row_cap),
            state.config().target_partitions(),
        );
        let sources = self.sources.clone();
        let predicates: Arc<[Arc<dyn PhysicalExpr>]> = predicates.into();
        let make: MakePartitions = Arc::new(move |dynamic: &[Arc<dyn PhysicalExpr>]| {
            let hints: Arc<[Arc<dyn PhysicalExpr>]> = dynamic.into();
            parts
                .iter()
                .map(|slices| {
                    Arc::new(AttributesPartition {
                        slices: slices.clone(),
                        predicates: predicates.clone(),
                        hints: hints.clone(),
                        sources: sources.clone(),
                        schema: spans_schema(),
                    }) as Arc<dyn PartitionStream>
                })
                .collect()
        });
        let scan = DynamicFilterScan::try_new(
            spans_schema(),
            make,
            projection,
            limit,
            halo_index::span_schema(),
            |column| column != ATTRIBUTES,
        )?;
        Ok(Arc::new(scan))
    }
}

/// One partition of a scan with `attributes`.
#[derive(Debug)]
struct AttributesPartition {
    slices: Vec<Slice>,
    /// The query's filters that need no attributes.
    predicates: Arc<[Arc<dyn PhysicalExpr>]>,
    /// Dynamic filters of operators above (see `dynamic_filter_scan`).
    hints: Arc<[Arc<dyn PhysicalExpr>]>,
    sources: Arc<Sources>,
    schema: SchemaRef,
}

impl PartitionStream for AttributesPartition {
    fn schema(&self) -> &SchemaRef {
        &self.schema
    }

    fn execute(&self, _ctx: Arc<TaskContext>) -> SendableRecordBatchStream {
        let reading = Reading {
            predicates: self.predicates.clone(),
            hints: self.hints.clone(),
            sources: self.sources.clone(),
            schema: self.schema.clone(),
        };
        // Lazy: each slice is read when the consumer asks for the next batch, so a LIMIT
        // above stops the reading.
        let batches = futures::stream::unfold(
            (self.slices.clone().into_iter(), reading),
            |(mut rest, reading)| async move {
                loop {
                    let (s, batch) = rest.next()?;
                    // One unit of the task's budget per slice, read or skipped: a long run
                    // of slices that the filters reject yields no batch, so without this
                    // the task would not yield, and the abort that enforces the time limit
                    // takes effect only when it does.
                    tokio::task::consume_budget().await;
                    if let Some(read) = reading.read(s, batch).await.transpose() {
                        return Some((read, (rest, reading)));
                    }
                }
            },
        );
        Box::pin(RecordBatchStreamAdapter::new(self.schema.clone(), batches))
    }
}

/// What reading a slice needs.
struct Reading {
    predicates: Arc<[Arc<dyn PhysicalExpr>]>,
    hints: Arc<[Arc<dyn PhysicalExpr>]>,
    sources: Arc<Sources>,
    schema: SchemaRef,
}

impl Reading {
    async fn read(&self, segment: u32, batch: RecordBatch) -> DfResult<Option<RecordBatch>> {
        let Some(batch) = passing(batch, &self.predicates)? else {
            return Ok(None);
        };
        let Some(batch) = passing_hints(batch, &self.hints)? else {
            return Ok(None);
        };
        let source = self
            .sources
            .for_scan(segment, "the attributes column")
            .await?;
        let attributes = attributes_column(&batch, source.bytes())?;
        let mut columns = batch.columns().to_vec();
        columns.push(attributes);
        Ok(Some(RecordBatch::try_new(self.schema.clone(), columns)?))
    }
}

/// The attributes of each span of `batch` as JSON object text, read from `data` (its
/// segment's source); null for a span that cannot be read back.
fn attributes_column(batch: &RecordBatch, data: &[u8]) -> DfResult<ArrayRef> {
    let c = SpanColumns::new(batch).map_err(|e| DataFusionError::Execution(e.0))?;
    let mut out = StringBuilder::with_capacity(c.len(), c.len() * 1024);
    let mut text = String::new();
    // An OTLP line holds many spans, in consecutive rows: it is parsed once for all of them.
    let mut line: Option<(u64, Option<ParsedLine<'_>>)> = None;
    for i in 0..c.len() {
        let record = c.record_offset.value(i);
        if line.as_ref().map(|(at, _)| *at) != Some(record) {
            line = Some((record, parse_record(data, record, c.record_len.value(i))));
        }
        // Spans are told apart by where their JSON starts within the line, as indexed.
        let within = c.byte_offset.value(i).checked_sub(record);
        let span = line
            .as_ref()
            .and_then(|(_, parsed)| parsed.as_ref())
            .and_then(|p| p.spans.iter().find(|(_, r)| Some(r.start as u64) == within));
        match span {
            Some((span, _)) => {
                text.clear();
                write_object(&mut text, &span.attributes);
                // Slices are cut by bytes, so only a single span of over 2 GiB gets here;
                // appending it would panic.
                if out.values_slice().len() + text.len() > i32::MAX as usize {
                    return Err(DataFusionError::Execution(format!(
                        "the attributes of span {} in trace {} are too large for one value ({} bytes)",
                        c.span_id.value(i),
                        c.trace_id.value(i),
                        text.len()
                    )));
                }
                out.append_value(&text);
            }
            None => out.append_null(),
        }
    }
    Ok(Arc::new(out.finish()))
}

fn parse_record(data: &[u8], offset: u64, len: u32) -> Option<ParsedLine<'_>> {
    let start = usize::try_from(offset).ok()?;
    let bytes = data.get(start..start.checked_add(len as usize)?)?;
    halo_trace::parse_line(std::str::from_utf8(bytes).ok()?).ok()
}

/// Above this many attributes, duplicates are found with a set rather than by looking back.
const LINEAR_DEDUP: usize = 16;

/// Writes `attrs` as a JSON object, keys in input order; of duplicate keys the first wins
/// (as [`Attributes::get`] reads them).
fn write_object(out: &mut String, attrs: &Attributes<'_>) {
    let mut seen: HashSet<&str> = HashSet::new();
    let many = attrs.len() > LINEAR_DEDUP;
    out.push('{');
    let mut first = true;
    for (i, (key, value)) in attrs.0.iter().enumerate() {
        let duplicate = if many {
            !seen.insert(key)
        } else {
            attrs.0[..i].iter().any(|(k, _)| k == key)
        };
        if duplicate {
            continue;
        }
        if !first {
            out.push(',');
        }
        first = false;
        write_string(out, key);
        out.push(':');
        write_value(out, value);
    }
    out.push('}');
}

fn write_value(out: &mut String, value: &AttrValue<'_>) {
    match value {
        AttrValue::Str(s) => write_string(out, s),
        // Still the input's own JSON string literal, escapes and all: copied, not decoded.
        AttrValue::RawStr(raw) => out.push_str(raw),
        AttrValue::Int(i) => {
            let _ = write!(out, "{i}");
        }
        // JSON has no NaN or infinity: written as protobuf's JSON mapping names them.
        AttrValue::Float(f) => match serde_json::Number::from_f64(*f) {
            Some(n) => {
                let _ = write!(out, "{n}");
            }
            None => write_string(out, halo_trace::attr::non_finite_name(*f).unwrap_or("NaN")),
        },
        AttrValue::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        AttrValue::Null => out.push_str("null"),
        // Arrays and objects are JSON text already; anything else that landed here (a number
        // too odd to classify) is checked, and kept as a string if it is not JSON.
        AttrValue::Json(text) => {
            let text = text.trim();
            if text.starts_with(['[', '{'])
                || serde_json::from_str::<serde::de::IgnoredAny>(text).is_ok()
            {
                out.push_str(text);
            } else {
                write_string(out, text);
            }
        }
    }
}

/// Writes `s` as a JSON string literal.
fn write_string(out: &mut String, s: &str) {
    out.push('"');
    let mut from = 0;
    for (i, b) in s.bytes().enumerate() {
        let escape = match b {
            b'"' => "\\\"",
            b'\\' => "\\\\",
            b'\n' => "\\n",
            b'\r' => "\\r",
            b'\t' => "\\t",
            0..=0x1f => "",
            _ => continue,
        };
        out.push_str(&s[from..i]);
        if escape.is_empty() {
            let _ = write!(out, "\\u{b:04x}");
        } else {
            out.push_str(escape);
        }
        from = i + 1;
    }
    out.push_str(&s[from..]);
    out.push('"');
}

#[cfg(test)]
mod tests {
    use std::borrow::Cow;

    use super::*;

    fn object(pairs: Vec<(&str, AttrValue<'static>)>) -> String {
        let attrs = Attributes(
            pairs
                .into_iter()
                .map(|(k, v)| (Cow::Owned(k.to_string()), v))
                .collect(),
        );
        let mut out = String::new();
        write_object(&mut out, &attrs);
        out
    }

    #[test]
    fn objects_are_valid_json_in_input_order_first_key_wins() {
        let text = object(vec![
            ("z", AttrValue::Str("a \"q\" \\ \n\t\u{1} é".into())),
            ("a", AttrValue::RawStr(r#""esc \u00e9 \"x\"""#)),
            ("i", AttrValue::Int(-3)),
            ("f", AttrValue::Float(2.0)),
            ("nan", AttrValue::Float(f64::NAN)),
            ("b", AttrValue::Bool(true)),
            ("n", AttrValue::Null),
            ("j", AttrValue::Json("[1,{\"k\":2}]".into())),
            ("odd", AttrValue::Json("not json".into())),
            ("z", AttrValue::Str("second".into())),
        ]);
        let v: serde_json::Value = serde_json::from_str(&text).expect(&text);
        let keys: Vec<&str> = v.as_object().unwrap().keys().map(|k| k.as_str()).collect();
        let mut expected = vec!["z", "a", "i", "f", "nan", "b", "n", "j", "odd"];
        expected.sort_unstable(); // serde_json's map sorts; the text keeps input order
        assert_eq!(keys, expected);
        assert!(text.starts_with(r#"{"z":"#), "{text}");
        assert_eq!(v["z"], "a \"q\" \\ \n\t\u{1} é");
        assert_eq!(v["a"], "esc é \"x\"");
        assert_eq!(v["i"], -3);
        assert!(text.contains(r#""f":2.0"#), "floats stay floats: {text}");
        assert_eq!(v["nan"], "NaN");
        assert_eq!(v["b"], true);
        assert_eq!(v["j"][1]["k"], 2);
        assert_eq!(v["odd"], "not json");
    }

    #[test]
    fn many_duplicate_keys_keep_the_first() {
        let mut pairs: Vec<(&str, AttrValue<'static>)> = Vec::new();
        let names: Vec<String> = (0..40).map(|i| format!("k{}", i % 20)).collect();
        for (i, n) in names.iter().enumerate() {
            pairs.push((n.as_str(), AttrValue::Int(i as i64)));
        }
        let pairs: Vec<(&str, AttrValue<'static>)> = pairs;
        let text = object(pairs);
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(v.as_object().unwrap().len(), 20);
        assert_eq!(v["k3"], 3);
        assert_eq!(text.matches("\"k3\"").count(), 1);
    }

    #[test]
    fn a_long_run_of_rejected_slices_gives_the_runtime_a_turn() {
        use futures::StreamExt;

        let batch = RecordBatch::try_from_iter([(
            "x",
            Arc::new(arrow_array::Int32Array::from(vec![1])) as ArrayRef,
        )])
        .unwrap();
        let reject: Arc<dyn PhysicalExpr> = Arc::new(
            datafusion::physical_expr::expressions::Literal::new(false.into()),
        );
        let partition = AttributesPartition {
            slices: (0..10_000).map(|_| (0, batch.clone())).collect(),
            predicates: vec![reject].into(),
            hints: Vec::new().into(),
            sources: Arc::new(Sources::None),
            schema: batch.schema(),
        };
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        rt.block_on(async {
            let mut stream = partition.execute(Arc::new(TaskContext::default()));
            let first = futures::poll!(stream.next());
            assert!(
                first.is_pending(),
                "the stream yields before reading every slice"
            );
            assert!(stream.next().await.is_none(), "and every slice is rejected");
        });
    }
}
