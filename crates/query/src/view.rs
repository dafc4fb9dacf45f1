//! `view_trace` and `view_spans`: spans with every attribute, capped the reference's way.

use std::collections::BTreeMap;

use halo_index::Dataset;
use halo_trace::time::format_rfc3339_nanos;
use halo_trace::{AttrValue, Attributes, SpanFacts};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::records::{find_trace, full_span, same_id, spans_of, SpanRecord};
use crate::QueryError;

/// Version of the [`TraceView`] JSON.
pub const VIEW_SCHEMA_VERSION: u32 = 1;
/// Characters kept of each attribute value by `view_trace`.
pub const VIEW_TRACE_VALUE_CAP: usize = 4_096;
/// Characters kept of each attribute value by `view_spans`.
pub const VIEW_SPANS_VALUE_CAP: usize = 16_384;
/// Above this many bytes of JSON, a view answers with an oversized summary instead.
pub const OVERSIZED_BYTES: usize = 150_000;
/// Most spans `view_spans` takes, and most a `view_trace` page may hold.
pub const MAX_SPANS_PER_VIEW: usize = 200;
/// The shortest a value is cut to so that a single span fits [`OVERSIZED_BYTES`].
const MIN_VALUE_CAP: usize = 256;
/// Spans rendered to estimate the size of a view too large to render whole.
const SIZE_SAMPLE: usize = 16;

/// Arguments of `view_trace`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ViewTraceArgs {
    /// The trace.
    pub trace_id: String,
    /// Page through a large trace: spans (in start order) to skip.
    #[serde(default)]
    pub offset: Option<usize>,
    /// Page through a large trace: spans in this page (at most 200).
    #[serde(default)]
    pub limit: Option<usize>,
}

/// Arguments of `view_spans`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ViewSpansArgs {
    /// The trace.
    pub trace_id: String,
    /// Up to 200 span ids.
    pub span_ids: Vec<String>,
}

/// A span's status.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct StatusView {
    /// `STATUS_CODE_OK`, `STATUS_CODE_ERROR` or `STATUS_CODE_UNSET`.
    pub code: String,
    /// The message.
    pub message: String,
}

/// One span with its attributes.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct SpanView {
    /// Span id.
    pub span_id: String,
    /// Parent span id ("" for a root).
    pub parent_span_id: String,
    /// Name.
    pub name: String,
    /// OTel kind.
    pub kind: String,
    /// Semantic kind (LLM, TOOL, AGENT...).
    pub span_kind: String,
    /// Start.
    pub start_time: String,
    /// End.
    pub end_time: String,
    /// Duration.
    pub duration_ms: f64,
    /// Status.
    pub status: StatusView,
    /// `service.name`.
    pub service_name: Option<String>,
    /// Where it is: `file:line`.
    pub source: String,
    /// Every attribute, values capped.
    pub attributes: BTreeMap<String, serde_json::Value>,
    /// The resource's attributes other than `service.name` (SDK, version, environment,
    /// host), values capped: given on a page's first span (when it has any) and where they
    /// change from the span before (`{}` when they stop), absent otherwise.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub resource: Option<BTreeMap<String, serde_json::Value>>,
    /// The instrumentation scope (the library that made the span); absent when unnamed.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub scope: Option<ScopeView>,
    /// Set when the span names a parent that is not in the trace (an orphan: its parent
    /// was never exported, or is in a file not given); such a span is shown as a root.
    #[serde(skip_serializing_if = "std::ops::Not::not", default)]
    pub parent_missing: bool,
    /// Set when a single span has so many attributes that not all fit even cut short:
    /// how many (the last in key order) are left out of `attributes`.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub omitted_attributes: Option<usize>,
}

/// The instrumentation scope of a span.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct ScopeView {
    /// Its name, e.g. `openinference.instrumentation.openai_agents`.
    pub name: String,
    /// Its version ("" when not given).
    pub version: String,
}

/// Count of spans with one name.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct NameTally {
    /// Span name.
    pub name: String,
    /// Spans.
    pub count: u64,
}

/// A short line about one span, for outlines.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct SpanOutline {
    /// Span id.
    pub span_id: String,
    /// Name.
    pub name: String,
    /// Semantic kind.
    pub span_kind: String,
    /// Whether it is an error span.
    pub is_error: bool,
    /// Error message head, for error spans.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error_message: Option<String>,
    /// Bytes of its JSON.
    pub bytes: u32,
}

/// What a view returns instead of spans when they would pass [`OVERSIZED_BYTES`].
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct OversizedSummary {
    /// Spans in the trace.
    pub span_count: u64,
    /// Spans the view would have shown.
    pub requested_span_count: u64,
    /// Bytes the answer would have had.
    pub response_bytes: u64,
    /// Distribution of span JSON sizes, in bytes.
    pub span_bytes: crate::overview::Distribution,
    /// The most common names among the spans the view would have shown.
    pub top_span_names: Vec<NameTally>,
    /// Error spans in the whole trace.
    pub error_span_count: u64,
    /// Up to 50 error spans of the whole trace.
    pub error_spans: Vec<SpanOutline>,
    /// The largest spans (up to 20).
    pub largest_spans: Vec<SpanOutline>,
    /// How to read it anyway.
    pub hint: String,
    /// A page size (`limit`) that fits the cap at this trace's typical span size.
    pub suggested_limit: u64,
}

/// The answer of `view_trace` / `view_spans` / `halo view`.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct TraceView {
    /// [`VIEW_SCHEMA_VERSION`].
    pub schema_version: u32,
    /// Trace id.
    pub trace_id: String,
    /// Spans in the trace.
    pub span_count: u64,
    /// First span of this page (start order).
    pub offset: usize,
    /// Spans shown (empty when oversized).
    pub spans: Vec<SpanView>,
    /// Requested span ids that are not in the trace.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub missing_span_ids: Vec<String>,
    /// Where the next page starts, when this page of a paged view (`offset`/`limit`)
    /// is not the last.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_offset: Option<usize>,
    /// Set instead of `spans` when they would be too large.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub oversized: Option<OversizedSummary>,
    /// Set when a single span passed the cap with its values at the usual length: the
    /// characters each value was cut to instead, so that it fits.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub values_cut_to: Option<usize>,
}

fn cap_text(text: &str, cap: usize) -> serde_json::Value {
    serde_json::Value::String(capped_string(text, cap))
}

/// `text` cut to `cap` characters, saying how long it was.
fn capped_string(text: &str, cap: usize) -> String {
    let chars = text.chars().count();
    if chars <= cap {
        return text.to_string();
    }
    let kept: String = text.chars().take(cap).collect();
    format!("{kept}…[truncated: original {chars} chars]")
}

fn capped(value: &AttrValue<'_>, cap: usize) -> serde_json::Value {
    match value {
        AttrValue::Str(_) | AttrValue::RawStr(_) => {
            cap_text(&value.string().unwrap_or_default(), cap)
        }
        AttrValue::Json(j) if j.chars().count() > cap => cap_text(j, cap),
        other => other.to_json(),
    }
}

/// A span's attributes by key. A key given twice keeps its first value, as everything
/// else reads it (the facts, SQL, filters, the export): collecting into a map would keep
/// the last.
fn attributes_view(attrs: &Attributes<'_>, cap: usize) -> BTreeMap<String, serde_json::Value> {
    first_of_each_key(attrs.iter().map(|(k, v)| (k.to_string(), capped(v, cap))))
}

fn first_of_each_key(
    pairs: impl Iterator<Item = (String, serde_json::Value)>,
) -> BTreeMap<String, serde_json::Value> {
    let mut map = BTreeMap::new();
    for (k, v) in pairs {
        map.entry(k).or_insert(v);
    }
    map
}

fn status_name(code: &str) -> String {
    format!("STATUS_CODE_{code}")
}

fn span_view(ds: &Dataset, rec: &SpanRecord, cap: usize) -> Result<SpanView, QueryError> {
    let span = full_span(ds, rec)?;
    let facts = SpanFacts::extract(&span);
    Ok(SpanView {
        span_id: rec.span_id.clone(),
        parent_span_id: rec.parent_span_id.clone(),
        // A name or status message can be a megabyte (a traceback): cut like any value,
        // or a span holding one could never be shown.
        name: capped_string(&rec.name, cap),
        kind: rec.otel_kind.clone(),
        span_kind: facts.kind.as_str().to_string(),
        start_time: format_rfc3339_nanos(rec.start_ns),
        end_time: format_rfc3339_nanos(rec.end_ns),
        duration_ms: rec.duration_ms,
        status: StatusView {
            code: status_name(&rec.status_code),
            message: capped_string(&span.status_message, cap),
        },
        service_name: rec.service_name.clone(),
        source: format!(
            "{}:{}",
            ds.segment_info(rec.segment).source.display(),
            rec.line
        ),
        attributes: attributes_view(&span.attributes, cap),
        resource: Some(first_of_each_key(
            span.resource
                .iter()
                .filter(|(k, _)| &**k != "service.name")
                .map(|(k, v)| (k.to_string(), capped(v, cap))),
        )),
        scope: (!span.scope_name.is_empty()).then(|| ScopeView {
            name: span.scope_name.to_string(),
            version: span.scope_version.to_string(),
        }),
        parent_missing: false,
        omitted_attributes: None,
    })
}

/// Keeps the attributes of `span` (in key order) whose JSON fits in what `budget` leaves
/// beside the rest of the span, and says how many were left out.
fn keep_attributes_that_fit(span: &mut SpanView, budget: usize) {
    let attributes = std::mem::take(&mut span.attributes);
    let envelope = serde_json::to_vec(&*span).map_or(usize::MAX, |v| v.len());
    let mut room = budget.saturating_sub(envelope);
    let total = attributes.len();
    for (key, value) in attributes {
        // `"key":value,` as it will be written.
        let size = serde_json::to_string(&key).map_or(usize::MAX, |k| k.len())
            + serde_json::to_string(&value).map_or(usize::MAX, |v| v.len())
            + 2;
        if size > room {
            break;
        }
        room -= size;
        span.attributes.insert(key, value);
    }
    span.omitted_attributes = Some(total - span.attributes.len());
}

/// A line of the oversized summary, its texts cut to [`MIN_VALUE_CAP`]: the summary of 70
/// spans with megabyte names must itself fit.
fn outline(s: &SpanRecord) -> SpanOutline {
    SpanOutline {
        span_id: s.span_id.clone(),
        name: capped_string(&s.name, MIN_VALUE_CAP),
        span_kind: s.kind.clone(),
        is_error: s.is_error,
        error_message: s
            .error_message
            .as_deref()
            .map(|m| capped_string(m, MIN_VALUE_CAP)),
        bytes: s.byte_len,
    }
}

fn oversized(
    all: &[SpanRecord],
    requested: &[&SpanRecord],
    response_bytes: usize,
    hint: &str,
) -> OversizedSummary {
    // The names of what was asked for (a page, chosen spans): the trace's other spans are
    // not in the answer that was too large.
    let mut names: BTreeMap<&str, u64> = BTreeMap::new();
    for s in requested {
        *names.entry(&s.name).or_insert(0) += 1;
    }
    let mut top: Vec<NameTally> = names
        .into_iter()
        .map(|(n, c)| NameTally {
            name: capped_string(n, MIN_VALUE_CAP),
            count: c,
        })
        .collect();
    top.sort_by(|a, b| b.count.cmp(&a.count).then_with(|| a.name.cmp(&b.name)));
    top.truncate(15);
    // A page must fit too: say how many spans of this size do, with some room to spare.
    let per_span = response_bytes / requested.len().max(1);
    let fits = (OVERSIZED_BYTES * 9 / 10 / per_span.max(1)).clamp(1, MAX_SPANS_PER_VIEW);
    let hint = match requested {
        // A page of one would be this same answer: point at the way that reads it.
        [one] => format!(
            "span {} is too large to show even with each value cut to {MIN_VALUE_CAP} characters: \
             read the parts that matter with search_span (on the command line `halo search TRACE_PATH... TRACE_ID PATTERN --span {}`)",
            one.span_id, one.span_id
        ),
        _ => format!(
            "{hint}; at about {per_span} bytes a span, a page of limit={fits} fits in the {OVERSIZED_BYTES}-byte cap"
        ),
    };
    let mut largest: Vec<&SpanRecord> = requested.to_vec();
    largest.sort_by_key(|s| std::cmp::Reverse(s.byte_len));
    OversizedSummary {
        span_count: all.len() as u64,
        requested_span_count: requested.len() as u64,
        response_bytes: response_bytes as u64,
        span_bytes: crate::overview::Distribution::of_values(
            requested.iter().map(|s| f64::from(s.byte_len)).collect(),
        ),
        top_span_names: top,
        error_span_count: all.iter().filter(|s| s.is_error).count() as u64,
        error_spans: all
            .iter()
            .filter(|s| s.is_error)
            .take(50)
            .map(outline)
            .collect(),
        largest_spans: largest.into_iter().take(20).map(outline).collect(),
        hint,
        suggested_limit: fits as u64,
    }
}

/// What a view shows, before rendering.
struct ViewPlan<'r> {
    shown: Vec<&'r SpanRecord>,
    offset: usize,
    missing: Vec<String>,
    cap: usize,
    hint: String,
}

fn build_view(
    ds: &Dataset,
    trace_id: &str,
    all: &[SpanRecord],
    plan: ViewPlan<'_>,
) -> Result<TraceView, QueryError> {
    let ViewPlan {
        shown,
        offset,
        missing,
        cap,
        hint,
    } = plan;
    let hint = hint.as_str();
    // Estimate first from the raw sizes, so a 25,000-span trace is never rendered whole;
    // a page that looks too large is then measured on a sample of its spans as shown.
    let estimate: usize = shown
        .iter()
        .map(|s| (s.byte_len as usize).min(cap * 8) + 200)
        .sum();
    let mut view = TraceView {
        schema_version: VIEW_SCHEMA_VERSION,
        trace_id: trace_id.to_string(),
        span_count: all.len() as u64,
        offset,
        spans: Vec::new(),
        missing_span_ids: missing,
        next_offset: None,
        oversized: None,
        values_cut_to: None,
    };
    // A few spans are rendered whole below, whatever their raw size; for more, the page
    // the summary suggests must come from the size spans have when shown (values capped),
    // not from their raw size, or it is a fraction of what fits: a sample of them is
    // rendered to say it. The raw estimate stands when the sample cannot be read.
    if estimate > OVERSIZED_BYTES * 4 && shown.len() > SIZE_SAMPLE {
        let step = shown.len().div_ceil(SIZE_SAMPLE);
        let sample: Vec<&SpanRecord> = shown.iter().step_by(step).copied().collect();
        let shown_estimate = match rendered(ds, &sample, cap) {
            Ok((_, bytes)) => (bytes / sample.len()).saturating_mul(shown.len()),
            Err(_) => estimate,
        };
        // Large as raw lines, small as shown: rendered whole below.
        if shown_estimate > OVERSIZED_BYTES * 4 {
            view.oversized = Some(oversized(all, &shown, shown_estimate, hint));
            return Ok(view);
        }
    }
    let ids: std::collections::HashSet<&str> = all.iter().map(|s| s.span_id.as_str()).collect();
    let mark_orphans = |spans: &mut Vec<SpanView>| {
        for s in spans.iter_mut() {
            s.parent_missing =
                !s.parent_span_id.is_empty() && !ids.contains(s.parent_span_id.as_str());
        }
    };
    let (mut spans, bytes) = rendered(ds, &shown, cap)?;
    if bytes <= OVERSIZED_BYTES {
        mark_orphans(&mut spans);
        view.spans = spans;
        return Ok(view);
    }
    // One span cannot be paged any finer: its values are cut shorter until it fits (an
    // LLM span of hundreds of flattened messages passes the cap with every value under
    // it), so that a page of one span always shows that span.
    if let [_] = shown.as_slice() {
        let mut smaller = cap / 2;
        while smaller >= MIN_VALUE_CAP {
            let (mut spans, bytes) = rendered(ds, &shown, smaller)?;
            if bytes <= OVERSIZED_BYTES {
                mark_orphans(&mut spans);
                view.spans = spans;
                view.values_cut_to = Some(smaller);
                return Ok(view);
            }
            smaller /= 2;
        }
        // Thousands of attributes (flattened messages): as many as fit, cut short, and
        // how many more there are. The span's name, status and facts are always shown.
        let (mut spans, _) = rendered(ds, &shown, MIN_VALUE_CAP)?;
        keep_attributes_that_fit(&mut spans[0], OVERSIZED_BYTES);
        if serde_json::to_vec(&spans).is_ok_and(|v| v.len() <= OVERSIZED_BYTES) {
            mark_orphans(&mut spans);
            view.spans = spans;
            view.values_cut_to = Some(MIN_VALUE_CAP);
            return Ok(view);
        }
    }
    view.oversized = Some(oversized(all, &shown, bytes, hint));
    Ok(view)
}

/// The views of `shown` with values capped at `cap` characters, and the bytes of their
/// JSON.
fn rendered(
    ds: &Dataset,
    shown: &[&SpanRecord],
    cap: usize,
) -> Result<(Vec<SpanView>, usize), QueryError> {
    let mut spans = shown
        .iter()
        .map(|s| span_view(ds, s, cap))
        .collect::<Result<Vec<_>, _>>()?;
    // A resource is the same for most spans of a trace: shown where it changes.
    for i in (1..spans.len()).rev() {
        if spans[i].resource == spans[i - 1].resource {
            spans[i].resource = None;
        }
    }
    if let Some(first) = spans.first_mut() {
        if first.resource.as_ref().is_some_and(BTreeMap::is_empty) {
            first.resource = None;
        }
    }
    let bytes = serde_json::to_vec(&spans)
        .map(|v| v.len())
        .unwrap_or(usize::MAX);
    Ok((spans, bytes))
}

/// Shows a trace's spans (or a page of them) with attribute values capped at
/// [`VIEW_TRACE_VALUE_CAP`] characters.
pub fn view_trace(ds: &Dataset, args: &ViewTraceArgs) -> Result<TraceView, QueryError> {
    let trace = find_trace(ds, &args.trace_id)?;
    let all = spans_of(ds, trace)?;
    let offset = args.offset.unwrap_or(0);
    let limit = match args.limit {
        Some(l) if l == 0 || l > MAX_SPANS_PER_VIEW => {
            return Err(QueryError::BadArgument {
                name: "limit".into(),
                message: format!("{l} is outside 1..={MAX_SPANS_PER_VIEW}"),
            })
        }
        Some(l) => l,
        None if args.offset.is_some() => MAX_SPANS_PER_VIEW,
        None => usize::MAX,
    };
    if offset > 0 && offset >= all.len() {
        // An empty page would read as "no spans"; say where the spans end instead.
        return Err(QueryError::BadArgument {
            name: "offset".into(),
            message: format!(
                "{offset} is past the last span: the trace has {} spans (offsets 0 to {})",
                all.len(),
                all.len().saturating_sub(1)
            ),
        });
    }
    let shown: Vec<&SpanRecord> = all.iter().skip(offset).take(limit).collect();
    let after = offset + shown.len();
    let next_offset = (after < all.len()).then_some(after);
    let hint = format!(
        "too large to show at once: page with view_trace(trace_id, offset, limit<=200) (e.g. offset=0, limit=50; \
         on the command line `halo view --offset 0 --limit 50`), \
         read chosen spans with view_spans (<=200 ids), or find spans with search_trace; the trace has {} spans",
        all.len()
    );
    let mut view = build_view(
        ds,
        &args.trace_id,
        &all,
        ViewPlan {
            shown,
            offset,
            missing: Vec::new(),
            cap: VIEW_TRACE_VALUE_CAP,
            hint,
        },
    )?;
    // Only a page that was shown moves the reader on; an oversized one must be asked
    // for again, smaller.
    if view.oversized.is_none() {
        view.next_offset = next_offset;
    }
    Ok(view)
}

/// Shows chosen spans of a trace with attribute values capped at [`VIEW_SPANS_VALUE_CAP`].
pub fn view_spans(ds: &Dataset, args: &ViewSpansArgs) -> Result<TraceView, QueryError> {
    if args.span_ids.is_empty() || args.span_ids.len() > MAX_SPANS_PER_VIEW {
        return Err(QueryError::BadArgument {
            name: "span_ids".into(),
            message: format!(
                "give 1 to {MAX_SPANS_PER_VIEW} span ids, not {}",
                args.span_ids.len()
            ),
        });
    }
    let trace = find_trace(ds, &args.trace_id)?;
    let all = spans_of(ds, trace)?;
    let shown: Vec<&SpanRecord> = all
        .iter()
        .filter(|s| args.span_ids.iter().any(|id| same_id(id) == s.span_id))
        .collect();
    let missing = args
        .span_ids
        .iter()
        .filter(|id| !all.iter().any(|s| s.span_id == same_id(id)))
        .cloned()
        .collect::<Vec<_>>();
    let hint =
        "these spans together are too large: ask for fewer span ids, or use search_span to read \
                the parts that matter";
    build_view(
        ds,
        &args.trace_id,
        &all,
        ViewPlan {
            shown,
            offset: 0,
            missing,
            cap: VIEW_SPANS_VALUE_CAP,
            hint: hint.to_string(),
        },
    )
}
