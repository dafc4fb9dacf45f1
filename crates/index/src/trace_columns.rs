//! The columnar trace table: one row per trace, the rollups of [`TraceSummary`].
//!
//! The same layout is the on-disk form of a segment's rollups and the `traces` table an SQL
//! engine sees. Tool and error-group counts are parallel lists (`tool_names[i]` has
//! `tool_calls[i]` calls).

use std::sync::{Arc, OnceLock};

use arrow_array::builder::{
    BooleanBuilder, Float64Builder, Int64Builder, ListBuilder, StringBuilder,
    TimestampNanosecondBuilder, UInt32Builder, UInt64Builder,
};
use arrow_array::cast::AsArray;
use arrow_array::types::{Float64Type, Int64Type, TimestampNanosecondType, UInt32Type, UInt64Type};
use arrow_array::{Array, ArrayRef, ListArray, RecordBatch};
use arrow_schema::{DataType, Field, Schema, SchemaRef, TimeUnit};

use crate::rollup::{ErrorGroupCount, Interner, ToolUsage, TracePart, TraceSummary};
use crate::span_view::ShapeError;

fn list_of(name: &str, item: DataType) -> Field {
    Field::new(
        name,
        DataType::List(Arc::new(Field::new("item", item, true))),
        false,
    )
}

/// The trace table's schema.
pub fn trace_schema() -> SchemaRef {
    static SCHEMA: OnceLock<SchemaRef> = OnceLock::new();
    SCHEMA
        .get_or_init(|| {
            let ts = DataType::Timestamp(TimeUnit::Nanosecond, Some("UTC".into()));
            Arc::new(Schema::new(vec![
                Field::new("trace_id", DataType::Utf8, false),
                Field::new("span_count", DataType::UInt32, false),
                Field::new("start_time", ts.clone(), false),
                Field::new("end_time", ts, false),
                Field::new("duration_ms", DataType::Float64, false),
                Field::new("root_span_name", DataType::Utf8, false),
                Field::new("has_root", DataType::Boolean, false),
                Field::new("has_errors", DataType::Boolean, false),
                Field::new("error_span_count", DataType::UInt32, false),
                Field::new("tool_error_span_count", DataType::UInt32, false),
                list_of("services", DataType::Utf8),
                list_of("models", DataType::Utf8),
                list_of("agents", DataType::Utf8),
                list_of("tool_names", DataType::Utf8),
                list_of("tool_calls", DataType::UInt32),
                list_of("tool_errors", DataType::UInt32),
                Field::new("input_tokens", DataType::Int64, false),
                Field::new("output_tokens", DataType::Int64, false),
                Field::new("total_tokens", DataType::Int64, false),
                Field::new("tokens_from_calls", DataType::Boolean, false),
                Field::new("aggregate_input_tokens", DataType::Int64, false),
                Field::new("aggregate_output_tokens", DataType::Int64, false),
                Field::new("aggregate_total_tokens", DataType::Int64, false),
                Field::new("cost", DataType::Float64, true),
                Field::new("missing_parent_count", DataType::UInt32, false),
                Field::new("duplicate_span_count", DataType::UInt32, false),
                Field::new("session_id", DataType::Utf8, true),
                Field::new("user_id", DataType::Utf8, true),
                Field::new("project_id", DataType::Utf8, true),
                Field::new("raw_bytes", DataType::UInt64, false),
                Field::new("llm_call_count", DataType::UInt32, false),
                Field::new("priced_span_count", DataType::UInt32, false),
                Field::new("tool_call_count", DataType::UInt32, false),
                list_of("error_groups", DataType::Utf8),
                list_of("error_group_spans", DataType::UInt32),
                Field::new("outcome", DataType::Utf8, true),
                list_of("span_rows", DataType::UInt32),
            ]))
        })
        .clone()
}

/// The room the trace table's builders need for a batch: bytes of each text column, and
/// items and bytes of each list.
#[derive(Default)]
struct Room {
    trace_id: usize,
    root: usize,
    services: (usize, usize),
    models: (usize, usize),
    agents: (usize, usize),
    tools: (usize, usize),
    groups: (usize, usize),
    session: usize,
    user: usize,
    project: usize,
    outcome: usize,
    rows: usize,
}

impl Room {
    /// Counted in one pass over `traces`: a pass per column read every rollup (and the
    /// lists behind it) a dozen times over, after the last chunk of a build.
    fn of(traces: &[TraceSummary]) -> Room {
        let option_len = |v: &Option<String>| v.as_ref().map_or(0, String::len);
        let add = |room: &mut (usize, usize), items: usize, bytes: usize| {
            room.0 += items;
            room.1 += bytes;
        };
        let texts = |list: &[Arc<str>]| list.iter().map(|v| v.len()).sum::<usize>();
        let mut r = Room::default();
        for t in traces {
            r.trace_id += t.trace_id.len();
            r.root += t.root_span_name.len();
            add(&mut r.services, t.services.len(), texts(&t.services));
            add(&mut r.models, t.models.len(), texts(&t.models));
            add(&mut r.agents, t.agents.len(), texts(&t.agents));
            let tool_bytes = t.tools.iter().map(|u| u.name.len()).sum();
            add(&mut r.tools, t.tools.len(), tool_bytes);
            let group_bytes = t.error_groups.iter().map(|g| g.group.len()).sum();
            add(&mut r.groups, t.error_groups.len(), group_bytes);
            r.session += option_len(&t.session_id);
            r.user += option_len(&t.user_id);
            r.project += option_len(&t.project_id);
            r.outcome += option_len(&t.outcome);
            r.rows += t.parts.first().map_or(0, |p| p.rows.len());
        }
        r
    }
}

/// Writes rollups as a trace-table batch. `span_rows` carries the rows of each trace's
/// first part only, which is what a single segment has.
pub fn traces_to_batch(traces: &[TraceSummary]) -> RecordBatch {
    // Builders sized up front: grown from Arrow's default room, forty of them copied
    // their contents several times over into fresh memory, after the last chunk of a
    // build, while nothing else was left to run.
    let n = traces.len();
    let room = Room::of(traces);
    let text_list = |(items, bytes): (usize, usize)| {
        ListBuilder::with_capacity(StringBuilder::with_capacity(items, bytes), n)
    };
    let text = |bytes: usize| StringBuilder::with_capacity(n, bytes);
    let numbers_list =
        |items: usize| ListBuilder::with_capacity(UInt32Builder::with_capacity(items), n);
    let mut trace_id = text(room.trace_id);
    let mut span_count = UInt32Builder::with_capacity(n);
    let mut start = TimestampNanosecondBuilder::with_capacity(n).with_timezone("UTC");
    let mut end = TimestampNanosecondBuilder::with_capacity(n).with_timezone("UTC");
    let mut duration = Float64Builder::with_capacity(n);
    let mut root = text(room.root);
    let mut has_root = BooleanBuilder::with_capacity(n);
    let mut has_errors = BooleanBuilder::with_capacity(n);
    let mut errors = UInt32Builder::with_capacity(n);
    let mut tool_errors_total = UInt32Builder::with_capacity(n);
    let mut services = text_list(room.services);
    let mut models = text_list(room.models);
    let mut agents = text_list(room.agents);
    let mut tool_names = text_list(room.tools);
    let mut tool_calls = numbers_list(room.tools.0);
    let mut tool_errors = numbers_list(room.tools.0);
    let mut input = Int64Builder::with_capacity(n);
    let mut output = Int64Builder::with_capacity(n);
    let mut total = Int64Builder::with_capacity(n);
    let mut from_calls = BooleanBuilder::with_capacity(n);
    let mut aggregate = [
        Int64Builder::with_capacity(n),
        Int64Builder::with_capacity(n),
        Int64Builder::with_capacity(n),
    ];
    let mut cost = Float64Builder::with_capacity(n);
    let mut missing = UInt32Builder::with_capacity(n);
    let mut dups = UInt32Builder::with_capacity(n);
    let mut session = text(room.session);
    let mut user = text(room.user);
    let mut project = text(room.project);
    let mut raw = UInt64Builder::with_capacity(n);
    let mut llm = UInt32Builder::with_capacity(n);
    let mut priced = UInt32Builder::with_capacity(n);
    let mut tools_n = UInt32Builder::with_capacity(n);
    let mut groups_list = text_list(room.groups);
    let mut group_spans = numbers_list(room.groups.0);
    let mut outcome = text(room.outcome);
    let mut rows = numbers_list(room.rows);
    for t in traces {
        trace_id.append_value(&t.trace_id);
        span_count.append_value(t.span_count);
        start.append_value(t.start_ns);
        end.append_value(t.end_ns);
        duration.append_value(t.duration_ms());
        root.append_value(&t.root_span_name);
        has_root.append_value(t.has_root);
        has_errors.append_value(t.has_errors());
        errors.append_value(t.error_span_count);
        tool_errors_total.append_value(t.tool_error_span_count);
        for (b, vals) in [
            (&mut services, &t.services),
            (&mut models, &t.models),
            (&mut agents, &t.agents),
        ] {
            for v in vals {
                b.values().append_value(v);
            }
            b.append(true);
        }
        for tool in &t.tools {
            tool_names.values().append_value(&tool.name);
            tool_calls.values().append_value(tool.calls);
            tool_errors.values().append_value(tool.errors);
        }
        tool_names.append(true);
        tool_calls.append(true);
        tool_errors.append(true);
        input.append_value(t.input_tokens);
        output.append_value(t.output_tokens);
        total.append_value(t.total_tokens);
        from_calls.append_value(t.tokens_from_calls);
        for (b, v) in aggregate.iter_mut().zip(t.aggregate_tokens) {
            b.append_value(v);
        }
        cost.append_option(t.cost);
        missing.append_value(t.missing_parent_count);
        dups.append_value(t.duplicate_span_count);
        session.append_option(t.session_id.as_deref());
        user.append_option(t.user_id.as_deref());
        project.append_option(t.project_id.as_deref());
        raw.append_value(t.raw_bytes);
        llm.append_value(t.llm_call_count);
        priced.append_value(t.priced_span_count);
        tools_n.append_value(t.tool_call_count);
        for g in &t.error_groups {
            groups_list.values().append_value(&g.group);
            group_spans.values().append_value(g.spans);
        }
        groups_list.append(true);
        group_spans.append(true);
        outcome.append_option(t.outcome.as_deref());
        for r in t.parts.first().map(|p| p.rows.as_slice()).unwrap_or(&[]) {
            rows.values().append_value(*r);
        }
        rows.append(true);
    }
    let columns: Vec<ArrayRef> = vec![
        Arc::new(trace_id.finish()),
        Arc::new(span_count.finish()),
        Arc::new(start.finish()),
        Arc::new(end.finish()),
        Arc::new(duration.finish()),
        Arc::new(root.finish()),
        Arc::new(has_root.finish()),
        Arc::new(has_errors.finish()),
        Arc::new(errors.finish()),
        Arc::new(tool_errors_total.finish()),
        Arc::new(services.finish()),
        Arc::new(models.finish()),
        Arc::new(agents.finish()),
        Arc::new(tool_names.finish()),
        Arc::new(tool_calls.finish()),
        Arc::new(tool_errors.finish()),
        Arc::new(input.finish()),
        Arc::new(output.finish()),
        Arc::new(total.finish()),
        Arc::new(from_calls.finish()),
        Arc::new(aggregate[0].finish()),
        Arc::new(aggregate[1].finish()),
        Arc::new(aggregate[2].finish()),
        Arc::new(cost.finish()),
        Arc::new(missing.finish()),
        Arc::new(dups.finish()),
        Arc::new(session.finish()),
        Arc::new(user.finish()),
        Arc::new(project.finish()),
        Arc::new(raw.finish()),
        Arc::new(llm.finish()),
        Arc::new(priced.finish()),
        Arc::new(tools_n.finish()),
        Arc::new(groups_list.finish()),
        Arc::new(group_spans.finish()),
        Arc::new(outcome.finish()),
        Arc::new(rows.finish()),
    ];
    RecordBatch::try_new(trace_schema(), columns).expect("trace builders match the trace schema")
}

fn col<'b>(batch: &'b RecordBatch, name: &str) -> Result<&'b ArrayRef, ShapeError> {
    batch
        .column_by_name(name)
        .ok_or_else(|| ShapeError(format!("trace table has no column {name}")))
}

macro_rules! typed {
    ($batch:expr, $name:expr, $method:ident $(::<$t:ty>)?) => {
        col($batch, $name)?
            .$method$(::<$t>)?()
            .ok_or_else(|| ShapeError(format!("trace column {} has the wrong type", $name)))?
    };
}

/// A list column read without slicing an array per row: offsets plus the flat values.
struct StringLists<'b> {
    offsets: &'b [i32],
    values: &'b arrow_array::StringArray,
}

impl<'b> StringLists<'b> {
    fn new(list: &'b ListArray, name: &str) -> Result<StringLists<'b>, ShapeError> {
        let values = list
            .values()
            .as_string_opt::<i32>()
            .ok_or_else(|| ShapeError(format!("trace column {name} does not hold text")))?;
        Ok(StringLists {
            offsets: list.value_offsets(),
            values,
        })
    }

    fn at(&self, row: usize, interner: &mut Interner) -> Vec<Arc<str>> {
        let (a, b) = (self.offsets[row] as usize, self.offsets[row + 1] as usize);
        (a..b).map(|i| interner.get(self.values.value(i))).collect()
    }
}

struct U32Lists<'b> {
    offsets: &'b [i32],
    values: &'b [u32],
}

impl<'b> U32Lists<'b> {
    fn new(list: &'b ListArray, name: &str) -> Result<U32Lists<'b>, ShapeError> {
        let values = list
            .values()
            .as_primitive_opt::<UInt32Type>()
            .ok_or_else(|| ShapeError(format!("trace column {name} does not hold u32")))?;
        Ok(U32Lists {
            offsets: list.value_offsets(),
            values: values.values(),
        })
    }

    fn at(&self, row: usize) -> &'b [u32] {
        &self.values[self.offsets[row] as usize..self.offsets[row + 1] as usize]
    }
}

/// Reads a trace-table batch back into rollups whose single part is `segment`.
pub fn traces_from_batch(
    batch: &RecordBatch,
    segment: u32,
    interner: &mut Interner,
) -> Result<Vec<TraceSummary>, ShapeError> {
    let trace_id = typed!(batch, "trace_id", as_string_opt::<i32>);
    let span_count = typed!(batch, "span_count", as_primitive_opt::<UInt32Type>);
    let start = typed!(
        batch,
        "start_time",
        as_primitive_opt::<TimestampNanosecondType>
    );
    let end = typed!(
        batch,
        "end_time",
        as_primitive_opt::<TimestampNanosecondType>
    );
    let root = typed!(batch, "root_span_name", as_string_opt::<i32>);
    let has_root = typed!(batch, "has_root", as_boolean_opt);
    let errors = typed!(batch, "error_span_count", as_primitive_opt::<UInt32Type>);
    let tool_errors_total = typed!(
        batch,
        "tool_error_span_count",
        as_primitive_opt::<UInt32Type>
    );
    let services = StringLists::new(typed!(batch, "services", as_list_opt::<i32>), "services")?;
    let models = StringLists::new(typed!(batch, "models", as_list_opt::<i32>), "models")?;
    let agents = StringLists::new(typed!(batch, "agents", as_list_opt::<i32>), "agents")?;
    let tool_names = StringLists::new(
        typed!(batch, "tool_names", as_list_opt::<i32>),
        "tool_names",
    )?;
    let tool_calls = U32Lists::new(
        typed!(batch, "tool_calls", as_list_opt::<i32>),
        "tool_calls",
    )?;
    let tool_errors = U32Lists::new(
        typed!(batch, "tool_errors", as_list_opt::<i32>),
        "tool_errors",
    )?;
    let input = typed!(batch, "input_tokens", as_primitive_opt::<Int64Type>);
    let output = typed!(batch, "output_tokens", as_primitive_opt::<Int64Type>);
    let total = typed!(batch, "total_tokens", as_primitive_opt::<Int64Type>);
    let from_calls = typed!(batch, "tokens_from_calls", as_boolean_opt);
    let aggregate = [
        typed!(
            batch,
            "aggregate_input_tokens",
            as_primitive_opt::<Int64Type>
        ),
        typed!(
            batch,
            "aggregate_output_tokens",
            as_primitive_opt::<Int64Type>
        ),
        typed!(
            batch,
            "aggregate_total_tokens",
            as_primitive_opt::<Int64Type>
        ),
    ];
    let cost = typed!(batch, "cost", as_primitive_opt::<Float64Type>);
    let missing = typed!(
        batch,
        "missing_parent_count",
        as_primitive_opt::<UInt32Type>
    );
    let dups = typed!(
        batch,
        "duplicate_span_count",
        as_primitive_opt::<UInt32Type>
    );
    let session = typed!(batch, "session_id", as_string_opt::<i32>);
    let user = typed!(batch, "user_id", as_string_opt::<i32>);
    let project = typed!(batch, "project_id", as_string_opt::<i32>);
    let raw = typed!(batch, "raw_bytes", as_primitive_opt::<UInt64Type>);
    let llm = typed!(batch, "llm_call_count", as_primitive_opt::<UInt32Type>);
    let priced = typed!(batch, "priced_span_count", as_primitive_opt::<UInt32Type>);
    let tools_n = typed!(batch, "tool_call_count", as_primitive_opt::<UInt32Type>);
    let groups = StringLists::new(
        typed!(batch, "error_groups", as_list_opt::<i32>),
        "error_groups",
    )?;
    let group_spans = U32Lists::new(
        typed!(batch, "error_group_spans", as_list_opt::<i32>),
        "error_group_spans",
    )?;
    let outcome = typed!(batch, "outcome", as_string_opt::<i32>);
    let rows = U32Lists::new(typed!(batch, "span_rows", as_list_opt::<i32>), "span_rows")?;
    let opt =
        |a: &arrow_array::StringArray, i: usize| (!a.is_null(i)).then(|| a.value(i).to_string());
    let mut out = Vec::with_capacity(batch.num_rows());
    for i in 0..batch.num_rows() {
        let names = tool_names.at(i, interner);
        let calls = tool_calls.at(i);
        let errs = tool_errors.at(i);
        if names.len() != calls.len() || names.len() != errs.len() {
            return Err(ShapeError("tool lists differ in length".into()));
        }
        let group_names = groups.at(i, interner);
        let group_counts = group_spans.at(i);
        if group_names.len() != group_counts.len() {
            return Err(ShapeError("error group lists differ in length".into()));
        }
        out.push(TraceSummary {
            trace_id: trace_id.value(i).to_string(),
            span_count: span_count.value(i),
            start_ns: start.value(i),
            end_ns: end.value(i),
            root_span_name: root.value(i).to_string(),
            has_root: has_root.value(i),
            error_span_count: errors.value(i),
            tool_error_span_count: tool_errors_total.value(i),
            services: services.at(i, interner),
            models: models.at(i, interner),
            agents: agents.at(i, interner),
            tools: names
                .into_iter()
                .zip(calls)
                .zip(errs)
                .map(|((name, calls), errors)| ToolUsage {
                    name,
                    calls: *calls,
                    errors: *errors,
                })
                .collect(),
            input_tokens: input.value(i),
            output_tokens: output.value(i),
            total_tokens: total.value(i),
            tokens_from_calls: from_calls.value(i),
            aggregate_tokens: aggregate.map(|a| a.value(i)),
            cost: (!cost.is_null(i)).then(|| cost.value(i)),
            missing_parent_count: missing.value(i),
            duplicate_span_count: dups.value(i),
            session_id: opt(session, i),
            user_id: opt(user, i),
            project_id: opt(project, i),
            raw_bytes: raw.value(i),
            llm_call_count: llm.value(i),
            priced_span_count: priced.value(i),
            tool_call_count: tools_n.value(i),
            error_groups: group_names
                .into_iter()
                .zip(group_counts)
                .map(|(group, &spans)| ErrorGroupCount { group, spans })
                .collect(),
            outcome: opt(outcome, i),
            parts: vec![TracePart {
                segment,
                rows: rows.at(i).to_vec(),
            }],
        });
    }
    Ok(out)
}
