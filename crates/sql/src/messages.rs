//! The `messages` table: the chat messages of LLM spans, one row per message.
//!
//! The index keeps only heads of model input and output, so messages are read again from
//! the source. A scan goes through the spans table's batches in slices, as a scan of
//! `spans.attributes` does, parses the LLM spans of each slice from their byte ranges and
//! streams their messages: memory stays at a few slices whatever the dataset's size, and a
//! `LIMIT` stops the reading. Filters on `trace_id` and `span_id` are applied to the spans
//! before they are parsed, so one trace's messages cost one trace's parsing. Slices already
//! read are kept up to [`CACHE_BYTES`], so an analysis that asks a small or mid-sized
//! dataset's messages again and again parses them once; a dataset beyond that is read
//! again for each query. Datasets without message attributes give an empty table.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use arrow_array::RecordBatch;
use arrow_schema::{DataType, Field, Schema, SchemaRef};
use datafusion::catalog::{Session, TableProvider};
use datafusion::datasource::TableType;
use datafusion::error::{DataFusionError, Result as DfResult};
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::logical_expr::{Expr, TableProviderFilterPushDown};
use datafusion::physical_expr::PhysicalExpr;
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::streaming::PartitionStream;
use datafusion::physical_plan::ExecutionPlan;
use futures::{StreamExt, TryStreamExt};
use halo_index::SpanColumns;

use crate::message_batches::{MessageBatches, MessageRow, BATCH_BYTES};
use crate::slices::{passing, slices, Cut, Slice, SLICE_BYTES};
use crate::spans::SpansTable;
use crate::SqlError;

/// Characters of message content kept per row.
const CONTENT_CHARS: usize = 4_096;

/// Memory the slices already read may keep, per engine: enough for the messages of a few
/// hundred MB of traces (content is cut at [`CONTENT_CHARS`]), a small share of the SQL
/// memory limit.
pub(crate) const CACHE_BYTES: usize = 256 << 20;

/// The columns a filter may name to be applied to the spans before they are parsed: the
/// same values under the same names in both tables.
const SPAN_KEYS: &[&str] = &["trace_id", "span_id"];

/// The `messages` schema.
pub(crate) fn messages_schema() -> SchemaRef {
    static SCHEMA: OnceLock<SchemaRef> = OnceLock::new();
    SCHEMA
        .get_or_init(|| {
            Arc::new(Schema::new(vec![
                Field::new("trace_id", DataType::Utf8, false),
                Field::new("span_id", DataType::Utf8, false),
                Field::new("direction", DataType::Utf8, false),
                Field::new("position", DataType::Int32, false),
                Field::new("role", DataType::Utf8, false),
                Field::new("content", DataType::Utf8, false),
                Field::new("tool_call_id", DataType::Utf8, true),
                Field::new(
                    "tool_calls",
                    DataType::List(Arc::new(Field::new("item", DataType::Utf8, true))),
                    false,
                ),
                // Added last, so columns read by position keep theirs: the whole
                // message's length, where `content` keeps its first 4,096 characters.
                Field::new("content_chars", DataType::Int64, false),
            ]))
        })
        .clone()
}

/// The messages of the LLM spans among `batch`'s rows (a slice of a span table), read from
/// `data` (their segment's source), in batches of about `batch_bytes` bytes of text.
fn messages_of(
    batch: &RecordBatch,
    data: &[u8],
    batch_bytes: usize,
) -> Result<Vec<RecordBatch>, SqlError> {
    let mut rows = MessageBatches::new(batch_bytes);
    let c = SpanColumns::new(batch).map_err(|e| SqlError::Query(e.0))?;
    // The line last parsed, by where it starts: an OTLP line holds many LLM spans, one
    // after another in the table, and parsing a 5 MB line once per span made the table take
    // minutes.
    let mut last: Option<(usize, halo_trace::ParsedLine<'_>)> = None;
    for i in 0..c.len() {
        if c.kind.value(i) != "LLM" {
            continue;
        }
        let start = c.record_offset.value(i) as usize;
        let Some(line) = data.get(start..start + c.record_len.value(i) as usize) else {
            continue;
        };
        if last.as_ref().map(|(at, _)| *at) != Some(start) {
            let Ok(text) = std::str::from_utf8(line) else {
                continue;
            };
            let Ok(parsed) = halo_trace::parse_line(text) else {
                continue;
            };
            last = Some((start, parsed));
        }
        let Some((_, parsed)) = last.as_ref() else {
            continue;
        };
        // A damaged index could put a span before its line: no span is found then.
        let within = c
            .byte_offset
            .value(i)
            .saturating_sub(c.record_offset.value(i)) as usize;
        let Some((span, _)) = parsed.spans.iter().find(|(_, r)| r.start == within) else {
            continue;
        };
        let messages = halo_trace::messages::llm_messages(span);
        for (direction, list) in [("input", &messages.input), ("output", &messages.output)] {
            for (n, m) in list.iter().enumerate() {
                rows.push(&MessageRow {
                    trace_id: c.trace_id.value(i),
                    span_id: c.span_id.value(i),
                    direction,
                    position: n as i32,
                    role: &m.role,
                    content: match m.content.char_indices().nth(CONTENT_CHARS) {
                        Some((cut, _)) => &m.content[..cut],
                        None => &m.content,
                    },
                    content_chars: m.content.chars().count() as i64,
                    tool_call_id: m.tool_call_id.as_deref(),
                    tool_calls: m.tool_calls.iter().map(|c| c.name.as_str()).collect(),
                })?;
            }
        }
    }
    rows.finish()
}

/// Whether any row of `batch` is an LLM span (only those have messages).
fn has_llm_spans(batch: &RecordBatch) -> bool {
    SpanColumns::new(batch).is_ok_and(|c| (0..c.len()).any(|i| c.kind.value(i) == "LLM"))
}

/// A slice, named by its segment and where its first span and its last span start in the
/// source: the same slice in every scan, as slices are cut the same way each time.
type SliceKey = (u32, u64, u64);

fn key_of(segment: u32, batch: &RecordBatch) -> Option<SliceKey> {
    let c = SpanColumns::new(batch).ok()?;
    let last = c.len().checked_sub(1)?;
    Some((segment, c.byte_offset.value(0), c.byte_offset.value(last)))
}

/// The messages of slices already read, up to a budget of memory; a slice that would pass
/// it is not kept.
struct SliceCache {
    budget: usize,
    used: AtomicUsize,
    slices: Mutex<HashMap<SliceKey, Arc<[RecordBatch]>>>,
}

impl SliceCache {
    fn new(budget: usize) -> SliceCache {
        SliceCache {
            budget,
            used: AtomicUsize::new(0),
            slices: Mutex::new(HashMap::new()),
        }
    }

    fn get(&self, key: &SliceKey) -> Option<Arc<[RecordBatch]>> {
        self.slices.lock().ok()?.get(key).cloned()
    }

    fn offer(&self, key: SliceKey, batches: &Arc<[RecordBatch]>) {
        if self.budget == 0 {
            return;
        }
        let size: usize = batches.iter().map(|b| b.get_array_memory_size()).sum();
        let Ok(mut slices) = self.slices.lock() else {
            return;
        };
        let used = self.used.load(Ordering::Relaxed);
        if slices.contains_key(&key) || used + size > self.budget {
            return;
        }
        slices.insert(key, batches.clone());
        self.used.store(used + size, Ordering::Relaxed);
    }
}

/// Bytes of source spans a scan parses at once, across its slices in flight: a slice per
/// core up to this, so that the memory a scan holds does not grow with the machine's cores.
const IN_FLIGHT_BYTES: usize = 256 << 20;

/// Called before a slice's spans are parsed (tests hold reading up with it).
type BeforeRead = Arc<dyn Fn() + Send + Sync>;

/// The `messages` table provider.
pub(crate) struct MessagesTable {
    spans: Arc<SpansTable>,
    cache: Arc<SliceCache>,
    slice_bytes: usize,
    batch_bytes: usize,
    /// Slices parsed at once.
    parallel: usize,
    before_read: Option<BeforeRead>,
}

impl std::fmt::Debug for MessagesTable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MessagesTable")
            .field("cached_bytes", &self.cache.used.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

impl MessagesTable {
    /// The messages of the LLM spans of `spans`, parsed on up to `cores` threads.
    pub(crate) fn over(spans: Arc<SpansTable>, cores: usize) -> MessagesTable {
        MessagesTable {
            spans,
            cache: Arc::new(SliceCache::new(CACHE_BYTES)),
            slice_bytes: SLICE_BYTES,
            batch_bytes: BATCH_BYTES,
            parallel: cores.clamp(1, (IN_FLIGHT_BYTES / SLICE_BYTES).max(1)),
            before_read: None,
        }
    }

    /// The same table, keeping at most `cache_bytes` of messages between scans (none for
    /// a scan made once, as an export's).
    pub(crate) fn keeping(self, cache_bytes: usize) -> MessagesTable {
        MessagesTable {
            cache: Arc::new(SliceCache::new(cache_bytes)),
            ..self
        }
    }

    /// The same table with other bounds: slices of `slice_bytes` bytes of source spans,
    /// batches of `batch_bytes` bytes of text, `cache_bytes` of slices kept.
    #[cfg(test)]
    pub(crate) fn bounded(
        self,
        slice_bytes: usize,
        batch_bytes: usize,
        cache_bytes: usize,
    ) -> MessagesTable {
        MessagesTable {
            slice_bytes,
            batch_bytes,
            cache: Arc::new(SliceCache::new(cache_bytes)),
            ..self
        }
    }

    /// The same table, calling `hook` before each slice's spans are parsed.
    #[cfg(test)]
    pub(crate) fn before_read(self, hook: BeforeRead) -> MessagesTable {
        MessagesTable {
            before_read: Some(hook),
            ..self
        }
    }
}

/// Whether a filter can also be applied to the spans before they are parsed: a comparison,
/// list, pattern or null test of [`SPAN_KEYS`] against constants, or `AND`/`OR`/`NOT` of
/// such. Spans without messages are tested too, so a filter that could fail on some value
/// (a cast, a function) is left to the filter above, which sees only messages.
fn pushable(filter: &Expr) -> bool {
    use datafusion::logical_expr::{BinaryExpr, Like, Operator};
    let key = |e: &Expr| matches!(e, Expr::Column(c) if SPAN_KEYS.contains(&c.name.as_str()));
    let constant = |e: &Expr| matches!(e, Expr::Literal(..));
    match filter {
        Expr::BinaryExpr(BinaryExpr { left, op, right }) => match op {
            Operator::And | Operator::Or => pushable(left) && pushable(right),
            Operator::Eq
            | Operator::NotEq
            | Operator::Lt
            | Operator::LtEq
            | Operator::Gt
            | Operator::GtEq => (key(left) && constant(right)) || (constant(left) && key(right)),
            _ => false,
        },
        Expr::Not(inner) => pushable(inner),
        Expr::IsNull(e) | Expr::IsNotNull(e) => key(e),
        Expr::InList(list) => key(&list.expr) && list.list.iter().all(constant),
        Expr::Like(Like { expr, pattern, .. }) => key(expr) && constant(pattern),
        _ => false,
    }
}

#[async_trait::async_trait]
impl TableProvider for MessagesTable {
    fn schema(&self) -> SchemaRef {
        messages_schema()
    }

    fn table_type(&self) -> TableType {
        TableType::Base
    }

    /// Inexact: DataFusion still filters the messages above the scan; the scan uses the
    /// filters only to parse fewer spans.
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
        let segments = self.spans.segments().await?;
        let predicates = crate::slices::span_predicates(state, filters, pushable)?;
        let cut = Cut {
            rows: state.config().batch_size(),
            bytes: self.slice_bytes,
        };
        let reader = Arc::new(SliceReader {
            predicates: predicates.into(),
            sources: self.spans.sources(),
            cache: self.cache.clone(),
            batch_bytes: self.batch_bytes,
            before_read: self.before_read.clone(),
        });
        let partition = MessagesPartition {
            slices: slices(&segments, cut, None),
            reader,
            // A LIMIT that reaches the scan is served by the first slices: read them one at
            // a time, rather than a slice per core, most of them for nothing.
            parallel: if limit.is_some() { 1 } else { self.parallel },
        };
        crate::slices::unordered_scan(
            messages_schema(),
            vec![Arc::new(partition)],
            projection,
            limit,
        )
    }
}

/// A scan's one partition: slices read `parallel` at a time and given out in the index's
/// order, so that a query without `ORDER BY` (and an export) sees each conversation in its
/// order while every core parses.
struct MessagesPartition {
    slices: Vec<Slice>,
    reader: Arc<SliceReader>,
    parallel: usize,
}

impl std::fmt::Debug for MessagesPartition {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MessagesPartition")
            .field("slices", &self.slices.len())
            .finish_non_exhaustive()
    }
}

impl PartitionStream for MessagesPartition {
    fn schema(&self) -> &SchemaRef {
        static SCHEMA: OnceLock<SchemaRef> = OnceLock::new();
        SCHEMA.get_or_init(messages_schema)
    }

    fn execute(&self, _ctx: Arc<TaskContext>) -> SendableRecordBatchStream {
        let reader = self.reader.clone();
        // Lazy: a slice is read when the consumer asks for more rows, so a LIMIT above stops
        // the reading.
        let batches = futures::stream::iter(self.slices.clone())
            .map(move |(segment, batch)| {
                let reader = reader.clone();
                async move { reader.read(segment, batch).await }
            })
            .buffered(self.parallel)
            .map_ok(|read| futures::stream::iter((0..read.len()).map(move |i| Ok(read[i].clone()))))
            .try_flatten();
        Box::pin(RecordBatchStreamAdapter::new(messages_schema(), batches))
    }
}

/// What reading a slice's messages needs.
struct SliceReader {
    predicates: Arc<[Arc<dyn PhysicalExpr>]>,
    sources: Arc<crate::sources::Sources>,
    cache: Arc<SliceCache>,
    batch_bytes: usize,
    before_read: Option<BeforeRead>,
}

impl SliceReader {
    /// The messages of `batch`'s LLM spans that can pass the filters, from the cache or
    /// parsed on the blocking pool (so that the runtime's workers, and the time limit, are
    /// never held up by parsing).
    async fn read(&self, segment: u32, batch: RecordBatch) -> DfResult<Arc<[RecordBatch]>> {
        // One unit of the task's budget per slice: a long run of slices without LLM spans
        // yields no batch, and the abort that enforces the time limit takes effect only
        // when the task yields.
        tokio::task::consume_budget().await;
        let key = key_of(segment, &batch);
        if let Some(hit) = key.and_then(|k| self.cache.get(&k)) {
            return Ok(hit);
        }
        let whole = self.predicates.is_empty();
        let Some(batch) = passing(batch, &self.predicates)? else {
            return Ok(Arc::from([]));
        };
        let keep = key.filter(|_| whole);
        if !has_llm_spans(&batch) {
            let none: Arc<[RecordBatch]> = Arc::from([]);
            if let Some(key) = keep {
                self.cache.offer(key, &none);
            }
            return Ok(none);
        }
        let source = self.sources.for_scan(segment, "the messages table").await?;
        let cache = self.cache.clone();
        let batch_bytes = self.batch_bytes;
        let before_read = self.before_read.clone();
        let parse = move || -> DfResult<Arc<[RecordBatch]>> {
            if let Some(hook) = before_read {
                hook();
            }
            let read: Arc<[RecordBatch]> = messages_of(&batch, source.bytes(), batch_bytes)
                .map_err(|e| DataFusionError::Execution(e.to_string()))?
                .into();
            // Kept even when the query that asked has stopped waiting: the next one gets
            // it instead of parsing again.
            if let Some(key) = keep {
                cache.offer(key, &read);
            }
            Ok(read)
        };
        tokio::task::spawn_blocking(parse)
            .await
            .map_err(|e| DataFusionError::Execution(format!("reading messages: {e}")))?
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn batch(rows: usize) -> Arc<[RecordBatch]> {
        let mut b = MessageBatches::new(BATCH_BYTES);
        for _ in 0..rows {
            b.push(&MessageRow {
                trace_id: "t",
                span_id: "s",
                direction: "input",
                position: 0,
                role: "user",
                content: "hello",
                content_chars: 5,
                tool_call_id: None,
                tool_calls: Vec::new(),
            })
            .unwrap();
        }
        b.finish().unwrap().into()
    }

    #[test]
    fn the_cache_keeps_slices_until_its_budget_and_no_further() {
        let one = batch(100);
        let size: usize = one.iter().map(|b| b.get_array_memory_size()).sum();
        assert!(size > 0);
        let cache = SliceCache::new(2 * size + size / 2);
        cache.offer((0, 0, 1), &one);
        cache.offer((0, 2, 3), &batch(100));
        cache.offer((0, 4, 5), &batch(100));
        assert!(cache.get(&(0, 0, 1)).is_some());
        assert!(cache.get(&(0, 2, 3)).is_some());
        assert!(cache.get(&(0, 4, 5)).is_none(), "past the budget");
        // Slices without messages cost nothing and are always kept.
        cache.offer((1, 0, 0), &Arc::from([]));
        assert!(cache.get(&(1, 0, 0)).is_some_and(|b| b.is_empty()));
        assert!(cache.used.load(Ordering::Relaxed) <= 2 * size + size / 2);
        // Offering a slice again changes nothing.
        cache.offer((0, 0, 1), &one);
        assert_eq!(cache.used.load(Ordering::Relaxed), 2 * size);
    }
}
