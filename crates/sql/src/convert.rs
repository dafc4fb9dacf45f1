//! Arrow values to JSON values, and Arrow types to short SQL-ish names.

use arrow_array::cast::AsArray;
use arrow_array::types::{
    Float16Type, Float32Type, Float64Type, Int16Type, Int32Type, Int64Type, Int8Type, UInt16Type,
    UInt32Type, UInt64Type, UInt8Type,
};
use arrow_array::Array;
use arrow_schema::DataType;
use datafusion::arrow::util::display::{ArrayFormatter, FormatOptions};
use serde_json::{Map, Number, Value};

/// The value at `row` of `array` as JSON: numbers, booleans, strings, arrays for lists,
/// objects for structs, and RFC 3339 text for times.
pub(crate) fn value(array: &dyn Array, row: usize) -> Value {
    if array.is_null(row) {
        return Value::Null;
    }
    match array.data_type() {
        DataType::Null => Value::Null,
        DataType::Boolean => Value::Bool(array.as_boolean().value(row)),
        DataType::Int8 => array.as_primitive::<Int8Type>().value(row).into(),
        DataType::Int16 => array.as_primitive::<Int16Type>().value(row).into(),
        DataType::Int32 => array.as_primitive::<Int32Type>().value(row).into(),
        DataType::Int64 => array.as_primitive::<Int64Type>().value(row).into(),
        DataType::UInt8 => array.as_primitive::<UInt8Type>().value(row).into(),
        DataType::UInt16 => array.as_primitive::<UInt16Type>().value(row).into(),
        DataType::UInt32 => array.as_primitive::<UInt32Type>().value(row).into(),
        DataType::UInt64 => array.as_primitive::<UInt64Type>().value(row).into(),
        DataType::Float16 => float(f64::from(array.as_primitive::<Float16Type>().value(row))),
        DataType::Float32 => float(f64::from(array.as_primitive::<Float32Type>().value(row))),
        DataType::Float64 => float(array.as_primitive::<Float64Type>().value(row)),
        DataType::Utf8 => Value::String(array.as_string::<i32>().value(row).to_string()),
        DataType::LargeUtf8 => Value::String(array.as_string::<i64>().value(row).to_string()),
        DataType::Utf8View => Value::String(array.as_string_view().value(row).to_string()),
        DataType::List(_) => list(array.as_list::<i32>().value(row).as_ref()),
        DataType::LargeList(_) => list(array.as_list::<i64>().value(row).as_ref()),
        DataType::FixedSizeList(_, _) => list(array.as_fixed_size_list().value(row).as_ref()),
        DataType::Struct(fields) => {
            let s = array.as_struct();
            let mut obj = Map::new();
            for (i, f) in fields.iter().enumerate() {
                obj.insert(f.name().clone(), value(s.column(i).as_ref(), row));
            }
            Value::Object(obj)
        }
        _ => formatted(array, row),
    }
}

fn float(f: f64) -> Value {
    Number::from_f64(f)
        .map(Value::Number)
        .unwrap_or(Value::Null)
}

fn list(values: &dyn Array) -> Value {
    Value::Array((0..values.len()).map(|i| value(values, i)).collect())
}

/// Arrow's own display of a value (times, dates, decimals, intervals, binary...).
fn formatted(array: &dyn Array, row: usize) -> Value {
    let options = FormatOptions::default().with_null("");
    match ArrayFormatter::try_new(array, &options) {
        Ok(f) => Value::String(f.value(row).to_string()),
        Err(_) => Value::Null,
    }
}

/// A short SQL-ish name for an Arrow type: `TEXT`, `BIGINT`, `DOUBLE`, `TIMESTAMP`, `TEXT[]`...
pub(crate) fn sql_type(t: &DataType) -> String {
    match t {
        DataType::Null => "NULL".into(),
        DataType::Boolean => "BOOLEAN".into(),
        DataType::Int8 => "TINYINT".into(),
        DataType::Int16 => "SMALLINT".into(),
        DataType::Int32 => "INT".into(),
        DataType::Int64 => "BIGINT".into(),
        DataType::UInt8 => "TINYINT UNSIGNED".into(),
        DataType::UInt16 => "SMALLINT UNSIGNED".into(),
        DataType::UInt32 => "INT UNSIGNED".into(),
        DataType::UInt64 => "BIGINT UNSIGNED".into(),
        DataType::Float16 | DataType::Float32 => "FLOAT".into(),
        DataType::Float64 => "DOUBLE".into(),
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => "TEXT".into(),
        DataType::Timestamp(_, Some(tz)) => format!("TIMESTAMP ({tz})"),
        DataType::Timestamp(_, None) => "TIMESTAMP".into(),
        DataType::Date32 | DataType::Date64 => "DATE".into(),
        DataType::List(f) | DataType::LargeList(f) | DataType::FixedSizeList(f, _) => {
            format!("{}[]", sql_type(f.data_type()))
        }
        DataType::Decimal128(p, s) | DataType::Decimal256(p, s) => format!("DECIMAL({p},{s})"),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow_array::builder::{ListBuilder, StringBuilder};
    use arrow_array::{Float64Array, Int64Array, StringArray, TimestampNanosecondArray};

    use super::*;

    #[test]
    fn values_become_plain_json() {
        assert_eq!(
            value(&Int64Array::from(vec![Some(7), None]), 0),
            Value::from(7)
        );
        assert_eq!(
            value(&Int64Array::from(vec![Some(7), None]), 1),
            Value::Null
        );
        assert_eq!(value(&Float64Array::from(vec![f64::NAN]), 0), Value::Null);
        assert_eq!(value(&StringArray::from(vec!["a"]), 0), Value::from("a"));
        let mut b = ListBuilder::new(StringBuilder::new());
        b.values().append_value("x");
        b.values().append_value("y");
        b.append(true);
        assert_eq!(value(&b.finish(), 0), serde_json::json!(["x", "y"]));
        let ts = TimestampNanosecondArray::from(vec![1_000_000_000]).with_timezone("UTC");
        assert_eq!(value(&ts, 0), Value::from("1970-01-01T00:00:01Z"));
        let _ = Arc::new(ts);
    }

    #[test]
    fn types_have_short_names() {
        let ts = DataType::Timestamp(arrow_schema::TimeUnit::Nanosecond, Some("UTC".into()));
        assert_eq!(sql_type(&ts), "TIMESTAMP (UTC)");
        let list = DataType::List(Arc::new(arrow_schema::Field::new(
            "item",
            DataType::Utf8,
            true,
        )));
        assert_eq!(sql_type(&list), "TEXT[]");
    }
}
