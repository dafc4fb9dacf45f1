//! Typed, zero-copy access to the columns of a span batch.

use arrow_array::cast::AsArray;
use arrow_array::types::{Float64Type, Int64Type, TimestampNanosecondType, UInt32Type, UInt64Type};
use arrow_array::{
    Array, BooleanArray, Float64Array, Int64Array, ListArray, RecordBatch, StringArray,
};
use arrow_array::{PrimitiveArray, TimestampNanosecondArray, UInt32Array, UInt64Array};

use crate::span_columns::col;

/// Borrowed, typed columns of one span batch; row `i` of every field is span `i`.
#[derive(Debug, Clone, Copy)]
#[allow(missing_docs)]
pub struct SpanColumns<'b> {
    pub trace_id: &'b StringArray,
    pub span_id: &'b StringArray,
    pub parent_span_id: &'b StringArray,
    pub name: &'b StringArray,
    pub otel_kind: &'b StringArray,
    pub kind: &'b StringArray,
    pub start_time: &'b TimestampNanosecondArray,
    pub end_time: &'b TimestampNanosecondArray,
    pub duration_ms: &'b Float64Array,
    pub status_code: &'b StringArray,
    pub status_message: &'b StringArray,
    pub is_error: &'b BooleanArray,
    pub service_name: &'b StringArray,
    pub model: &'b StringArray,
    pub agent_name: &'b StringArray,
    pub agent_id: &'b StringArray,
    pub tool_name: &'b StringArray,
    pub input_tokens: &'b Int64Array,
    pub output_tokens: &'b Int64Array,
    pub total_tokens: &'b Int64Array,
    pub cost: &'b Float64Array,
    pub error_type: &'b StringArray,
    pub error_message: &'b StringArray,
    pub http_status: &'b Int64Array,
    pub tool_args: &'b StringArray,
    pub tool_result: &'b StringArray,
    pub input_head: &'b StringArray,
    pub output_head: &'b StringArray,
    pub declared_tools: &'b ListArray,
    pub requested_tools: &'b ListArray,
    pub finish_reason: &'b StringArray,
    pub refusal: &'b StringArray,
    pub session_id: &'b StringArray,
    pub user_id: &'b StringArray,
    pub project_id: &'b StringArray,
    pub outcome: &'b StringArray,
    pub line: &'b UInt64Array,
    pub byte_offset: &'b UInt64Array,
    pub byte_len: &'b UInt32Array,
    pub record_offset: &'b UInt64Array,
    pub record_len: &'b UInt32Array,
}

/// Why a batch does not have the span table's shape (a corrupt or foreign index file).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShapeError(pub String);

impl std::fmt::Display for ShapeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Where each column sits in the span table's schema as this build writes it.
fn expected_positions() -> &'static std::collections::HashMap<String, usize> {
    static POSITIONS: std::sync::OnceLock<std::collections::HashMap<String, usize>> =
        std::sync::OnceLock::new();
    POSITIONS.get_or_init(|| {
        crate::span_columns::span_schema()
            .fields()
            .iter()
            .enumerate()
            .map(|(i, f)| (f.name().clone(), i))
            .collect()
    })
}

fn column<'b>(batch: &'b RecordBatch, name: &str) -> Result<&'b dyn Array, ShapeError> {
    // The column where the schema puts it, checked by name, before a search by name:
    // views are made per row in the searches by offset, and forty searches through
    // forty names each cost more than the row's work.
    let at_expected = expected_positions()
        .get(name)
        .filter(|&&i| {
            batch
                .schema_ref()
                .fields()
                .get(i)
                .is_some_and(|f| f.name() == name)
        })
        .map(|&i| batch.column(i).as_ref());
    at_expected
        .or_else(|| batch.column_by_name(name).map(|c| c.as_ref()))
        .ok_or_else(|| ShapeError(format!("span table has no column {name}")))
}

fn strings<'b>(batch: &'b RecordBatch, name: &str) -> Result<&'b StringArray, ShapeError> {
    column(batch, name)?
        .as_string_opt::<i32>()
        .ok_or_else(|| ShapeError(format!("column {name} is not text")))
}

fn prim<'b, T: arrow_array::ArrowPrimitiveType>(
    batch: &'b RecordBatch,
    name: &str,
) -> Result<&'b PrimitiveArray<T>, ShapeError> {
    column(batch, name)?
        .as_primitive_opt::<T>()
        .ok_or_else(|| ShapeError(format!("column {name} has the wrong type")))
}

impl<'b> SpanColumns<'b> {
    /// Views a batch of the span table.
    pub fn new(batch: &'b RecordBatch) -> Result<SpanColumns<'b>, ShapeError> {
        Ok(SpanColumns {
            trace_id: strings(batch, col::TRACE_ID)?,
            span_id: strings(batch, col::SPAN_ID)?,
            parent_span_id: strings(batch, col::PARENT_SPAN_ID)?,
            name: strings(batch, col::NAME)?,
            otel_kind: strings(batch, col::OTEL_KIND)?,
            kind: strings(batch, col::KIND)?,
            start_time: prim::<TimestampNanosecondType>(batch, col::START_TIME)?,
            end_time: prim::<TimestampNanosecondType>(batch, col::END_TIME)?,
            duration_ms: prim::<Float64Type>(batch, col::DURATION_MS)?,
            status_code: strings(batch, col::STATUS_CODE)?,
            status_message: strings(batch, col::STATUS_MESSAGE)?,
            is_error: column(batch, col::IS_ERROR)?
                .as_boolean_opt()
                .ok_or_else(|| ShapeError("column is_error is not boolean".into()))?,
            service_name: strings(batch, col::SERVICE_NAME)?,
            model: strings(batch, col::MODEL)?,
            agent_name: strings(batch, col::AGENT_NAME)?,
            agent_id: strings(batch, col::AGENT_ID)?,
            tool_name: strings(batch, col::TOOL_NAME)?,
            input_tokens: prim::<Int64Type>(batch, col::INPUT_TOKENS)?,
            output_tokens: prim::<Int64Type>(batch, col::OUTPUT_TOKENS)?,
            total_tokens: prim::<Int64Type>(batch, col::TOTAL_TOKENS)?,
            cost: prim::<Float64Type>(batch, col::COST)?,
            error_type: strings(batch, col::ERROR_TYPE)?,
            error_message: strings(batch, col::ERROR_MESSAGE)?,
            http_status: prim::<Int64Type>(batch, col::HTTP_STATUS)?,
            tool_args: strings(batch, col::TOOL_ARGS)?,
            tool_result: strings(batch, col::TOOL_RESULT)?,
            input_head: strings(batch, col::INPUT_HEAD)?,
            output_head: strings(batch, col::OUTPUT_HEAD)?,
            declared_tools: column(batch, col::DECLARED_TOOLS)?
                .as_list_opt::<i32>()
                .ok_or_else(|| ShapeError("column declared_tools is not a list".into()))?,
            requested_tools: column(batch, col::REQUESTED_TOOLS)?
                .as_list_opt::<i32>()
                .ok_or_else(|| ShapeError("column requested_tools is not a list".into()))?,
            finish_reason: strings(batch, col::FINISH_REASON)?,
            refusal: strings(batch, col::REFUSAL)?,
            session_id: strings(batch, col::SESSION_ID)?,
            user_id: strings(batch, col::USER_ID)?,
            project_id: strings(batch, col::PROJECT_ID)?,
            outcome: strings(batch, col::OUTCOME)?,
            line: prim::<UInt64Type>(batch, col::LINE)?,
            byte_offset: prim::<UInt64Type>(batch, col::BYTE_OFFSET)?,
            byte_len: prim::<UInt32Type>(batch, col::BYTE_LEN)?,
            record_offset: prim::<UInt64Type>(batch, col::RECORD_OFFSET)?,
            record_len: prim::<UInt32Type>(batch, col::RECORD_LEN)?,
        })
    }

    /// The number of spans.
    pub fn len(&self) -> usize {
        self.trace_id.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// A nullable text column's value.
    pub fn opt(array: &StringArray, row: usize) -> Option<&str> {
        (!array.is_null(row)).then(|| array.value(row))
    }

    /// A nullable integer column's value.
    pub fn opt_i64(array: &Int64Array, row: usize) -> Option<i64> {
        (!array.is_null(row)).then(|| array.value(row))
    }

    /// A nullable float column's value.
    pub fn opt_f64(array: &Float64Array, row: usize) -> Option<f64> {
        (!array.is_null(row)).then(|| array.value(row))
    }

    /// The strings of a list column's row.
    pub fn list(array: &ListArray, row: usize) -> Vec<String> {
        if array.is_null(row) {
            return Vec::new();
        }
        let values = array.value(row);
        let Some(values) = values.as_string_opt::<i32>() else {
            return Vec::new();
        };
        values.iter().flatten().map(str::to_string).collect()
    }
}
