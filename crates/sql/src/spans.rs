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
use arrow_array::cast::AsArray;
use arrow_array::types::UInt32Type;
use arrow_array::{ArrayRef, RecordBatch};
use arrow_schema::{DataType, Field, FieldRef, Schema, SchemaRef};
use datafusion::arrow::compute::filter_record_batch;
use datafusion::catalog::{MemTable, Session, TableProvider};
use datafusion::common::DFSchema;
use datafusion::datasource::TableType;
use datafusion::error::{DataFusionError, Result as DfResult};
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::logical_expr::{Expr, TableProviderFilterPushDown};
use datafusion::physical_expr::{LexOrdering, PhysicalExpr};
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::streaming::{PartitionStream, StreamingTableExec};
use datafusion::physical_plan::ExecutionPlan;
use halo_index::{Dataset, IndexError, SpanColumns};
use halo_trace::{AttrValue, Attributes, ParsedLine};

use crate::blocking_once::BlockingOnce;
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

/// The mapped bytes of one source file.
///
/// A trait object because the mapping's type belongs to halo-ingest, which this crate does
/// not depend on; [`hold`] erases it.
trait SourceBytes: Send + Sync {
    fn bytes(&self) -> &[u8];
}

struct Held<T>(Arc<T>, fn(&T) -> &[u8]);

impl<T: Send + Sync> SourceBytes for Held<T> {
    fn bytes(&self) -> &[u8] {
        (self.1)(&self.0)
    }
}

fn hold<T: Send + Sync + 'static>(value: Arc<T>, bytes: fn(&T) -> &[u8]) -> Arc<dyn SourceBytes> {
    Arc::new(Held(value, bytes))
}

/// Where each segment's source bytes come from.
enum Sources {
    /// No data (the schema-only state).
    None,
    /// Mapped when the engine was opened over a borrowed dataset; the engine outlives the
    /// borrow, so it keeps the mappings (which that opening makes anyway, for `messages`).
    Mapped(Vec<Result<Arc<dyn SourceBytes>, String>>),
    /// Mapped by the shared dataset the first time a scan needs them, one segment at a
    /// time, on the blocking pool: for a gzip source that first time makes the whole
    /// inflated copy.
    Shared(Arc<Dataset>, Vec<BlockingOnce<Arc<dyn SourceBytes>>>),
}

impl std::fmt::Debug for Sources {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Sources::None => f.write_str("Sources::None"),
            Sources::Mapped(files) => write!(f, "Sources::Mapped({} segments)", files.len()),
            Sources::Shared(..) => f.write_str("Sources::Shared"),
        }
    }
}

impl Sources {
    fn mapped(ds: &Dataset) -> Sources {
        Sources::Mapped(
            (0..ds.segment_count())
                .map(|s| {
                    ds.segment_data(s)
                        .map(|m| hold(m, |m| m.bytes()))
                        .map_err(source_error)
                })
                .collect(),
        )
    }

    fn shared(ds: Arc<Dataset>) -> Sources {
        let segments = (0..ds.segment_count())
            .map(|_| BlockingOnce::new())
            .collect();
        Sources::Shared(ds, segments)
    }

    async fn segment(&self, s: u32) -> Result<Arc<dyn SourceBytes>, String> {
        let no_segment = || format!("no segment {s}");
        match self {
            Sources::None => Err("no dataset".into()),
            Sources::Mapped(files) => files
                .get(s as usize)
                .cloned()
                .unwrap_or_else(|| Err(no_segment())),
            Sources::Shared(ds, segments) => {
                let once = segments.get(s as usize).ok_or_else(no_segment)?;
                let ds = ds.clone();
                once.get_or_make(move || {
                    ds.segment_data(s)
                        .map(|m| hold(m, |m| m.bytes()))
                        .map_err(source_error)
                })
                .await
            }
        }
    }
}

/// The index calls any unreadable file a corrupt index; here it is the source that is
/// missing or unreadable, so only the path and the cause are shown.
fn source_error(e: IndexError) -> String {
    match e {
        IndexError::Corrupt { path, message } => format!("{}: {message}", path.display()),
        other => other.to_string(),
    }
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
        Ok(filters
            .iter()
            .map(|f| {
                if pushable(f) {
                    TableProviderFilterPushDown::Inexact
                } else {
                    TableProviderFilterPushDown::Unsupported
                }
            })
            .collect())
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
        let index_schema = DFSchema::try_from(halo_index::span_schema())?;
        // A filter that does not plan here (a subquery, say) is left to the filter above.
        let predicates: Vec<Arc<dyn PhysicalExpr>> = filters
            .iter()
            .filter(|f| pushable(f))
            .filter_map(|f| state.create_physical_expr(f.clone(), &index_schema).ok())
            .collect();
        // A limit reaches the scan only when no filter stands between; then the first rows
        // are all that is read.
        let row_cap = limit.filter(|_| predicates.is_empty());
        let cut = Cut {
            rows: state.config().batch_size(),
            bytes: self.slice_bytes,
        };
        let slices = slices(&loaded.segments, cut, row_cap);
        let predicates: Arc<[Arc<dyn PhysicalExpr>]> = predicates.into();
        let partitions = split(slices, state.config().target_partitions())
            .into_iter()
            .map(|slices| {
                Arc::new(AttributesPartition {
                    slices,
                    predicates: predicates.clone(),
                    sources: self.sources.clone(),
                    schema: spans_schema(),
                }) as Arc<dyn PartitionStream>
            })
            .collect();
        let exec = StreamingTableExec::try_new(
            spans_schema(),
            partitions,
            projection,
            None::<LexOrdering>,
            false,
            limit,
        )?;
        Ok(Arc::new(exec))
    }
}

/// Bytes of source spans whose attributes one slice reads at most (a single larger span
/// is a slice alone). A slice's attributes become one `Utf8` array, which cannot pass
/// 2 GiB, and the memory a scan holds is a few slices: LLM spans of a megabyte each would
/// make a slice of 8,192 rows 8 GB.
const SLICE_BYTES: usize = 64 << 20;

/// Where slices are cut: after `rows` rows, or before a row that would take them past
/// `bytes` bytes of source spans.
#[derive(Debug, Clone, Copy)]
struct Cut {
    rows: usize,
    bytes: usize,
}

/// A slice of a segment's batch: the unit of work of a scan with `attributes`.
type Slice = (u32, RecordBatch);

/// The batches of every segment, in index order, cut into zero-copy slices (so one slice's
/// attributes stay small), stopping after `cap` rows.
fn slices(segments: &[Vec<RecordBatch>], cut: Cut, cap: Option<usize>) -> Vec<Slice> {
    let rows = cut.rows.max(1);
    let mut left = cap.unwrap_or(usize::MAX);
    let mut out = Vec::new();
    for (s, batches) in segments.iter().enumerate() {
        for batch in batches {
            let sizes = batch
                .column_by_name("byte_len")
                .and_then(|c| c.as_primitive_opt::<UInt32Type>());
            let size = |row: usize| sizes.map_or(0, |a| a.value(row) as usize);
            let mut start = 0;
            while start < batch.num_rows() && left > 0 {
                let most = rows.min(batch.num_rows() - start).min(left);
                let mut len = 1;
                let mut bytes = size(start);
                while len < most && bytes + size(start + len) <= cut.bytes {
                    bytes += size(start + len);
                    len += 1;
                }
                out.push((s as u32, batch.slice(start, len)));
                start += len;
                left -= len;
            }
        }
    }
    out
}

/// Deals slices to up to `n` partitions in contiguous runs, so that one partition (as in
/// export) keeps the index order and several read the sources in parallel.
fn split(slices: Vec<Slice>, n: usize) -> Vec<Vec<Slice>> {
    if slices.is_empty() {
        return vec![Vec::new()];
    }
    let per = slices.len().div_ceil(n.max(1));
    let mut parts = Vec::new();
    let mut rest = slices.into_iter().peekable();
    while rest.peek().is_some() {
        parts.push(rest.by_ref().take(per).collect());
    }
    parts
}

/// One partition of a scan with `attributes`.
#[derive(Debug)]
struct AttributesPartition {
    slices: Vec<Slice>,
    predicates: Arc<[Arc<dyn PhysicalExpr>]>,
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
    sources: Arc<Sources>,
    schema: SchemaRef,
}

impl Reading {
    async fn read(&self, segment: u32, batch: RecordBatch) -> DfResult<Option<RecordBatch>> {
        let Some(batch) = passing(batch, &self.predicates)? else {
            return Ok(None);
        };
        // The data's failure (a file replaced or gone), not the query's: exit code 2.
        let source = self.sources.segment(segment).await.map_err(|e| {
            crate::error::TableUnreadable::into_datafusion(format!(
                "the attributes column is read from the source file, which cannot be read: {e}"
            ))
        })?;
        let attributes = attributes_column(&batch, source.bytes())?;
        let mut columns = batch.columns().to_vec();
        columns.push(attributes);
        Ok(Some(RecordBatch::try_new(self.schema.clone(), columns)?))
    }
}

/// The rows of `batch` that pass `predicates`; `None` when none pass.
fn passing(
    mut batch: RecordBatch,
    predicates: &[Arc<dyn PhysicalExpr>],
) -> DfResult<Option<RecordBatch>> {
    for predicate in predicates {
        let mask = predicate.evaluate(&batch)?.into_array(batch.num_rows())?;
        let mask = mask.as_boolean_opt().ok_or_else(|| {
            DataFusionError::Internal(format!("filter {predicate} is not boolean"))
        })?;
        batch = filter_record_batch(&batch, mask)?;
        if batch.num_rows() == 0 {
            return Ok(None);
        }
    }
    Ok(Some(batch))
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
        // JSON has no NaN or infinity.
        AttrValue::Float(f) => match serde_json::Number::from_f64(*f) {
            Some(n) => {
                let _ = write!(out, "{n}");
            }
            None => out.push_str("null"),
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
        assert!(v["nan"].is_null());
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
    fn slices_are_capped_and_split_in_order() {
        let rows = |b: &RecordBatch| -> Vec<i32> {
            b.column(0)
                .as_primitive::<arrow_array::types::Int32Type>()
                .values()
                .to_vec()
        };
        let batch = RecordBatch::try_from_iter([(
            "x",
            Arc::new(arrow_array::Int32Array::from_iter_values(0..25)) as ArrayRef,
        )])
        .unwrap();
        let segments = [vec![batch.clone()], vec![batch]];
        let by_rows = Cut {
            rows: 10,
            bytes: usize::MAX,
        };
        let all = slices(&segments, by_rows, None);
        let shape: Vec<(u32, usize)> = all.iter().map(|(s, b)| (*s, b.num_rows())).collect();
        assert_eq!(shape, [(0, 10), (0, 10), (0, 5), (1, 10), (1, 10), (1, 5)]);
        let capped = slices(&segments, by_rows, Some(12));
        let shape: Vec<(u32, usize)> = capped.iter().map(|(s, b)| (*s, b.num_rows())).collect();
        assert_eq!(shape, [(0, 10), (0, 2)]);

        let parts = split(all.clone(), 4);
        assert_eq!(parts.len(), 3);
        let joined: Vec<i32> = parts.iter().flatten().flat_map(|(_, b)| rows(b)).collect();
        let expected: Vec<i32> = all.iter().flat_map(|(_, b)| rows(b)).collect();
        assert_eq!(joined, expected, "contiguous runs keep the order");
        assert_eq!(split(all, 1).len(), 1);
        assert_eq!(
            split(Vec::new(), 4).len(),
            1,
            "one empty partition, not none"
        );
    }

    #[test]
    fn slices_are_cut_by_bytes_of_source_spans_too() {
        // Spans of 10, 10, 50, 10, 10, 10 bytes; slices of at most 25 bytes or 4 rows.
        let sizes = [10u32, 10, 50, 10, 10, 10, 10, 10];
        let batch = RecordBatch::try_from_iter([(
            "byte_len",
            Arc::new(arrow_array::UInt32Array::from(sizes.to_vec())) as ArrayRef,
        )])
        .unwrap();
        let cut = Cut { rows: 4, bytes: 25 };
        let shape: Vec<usize> = slices(&[vec![batch.clone()]], cut, None)
            .iter()
            .map(|(_, b)| b.num_rows())
            .collect();
        assert_eq!(
            shape,
            [2, 1, 2, 2, 1],
            "a span over the limit is a slice alone"
        );
        let cut = Cut {
            rows: 4,
            bytes: usize::MAX,
        };
        let shape: Vec<usize> = slices(&[vec![batch]], cut, None)
            .iter()
            .map(|(_, b)| b.num_rows())
            .collect();
        assert_eq!(shape, [4, 4]);
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
