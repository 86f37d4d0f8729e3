//! Int64 and timestamp columns turned into one another without arrow's
//! `cast`.
//!
//! Event times travel as Int64 (pushed Arrow, window bounds) and as
//! timestamps of the stream's unit; between the two only the type changes,
//! the values stay. arrow's `cast` would copy them, and it is one very large
//! function (~200 KB of wasm): called on every push, V8 counts it hot and
//! spends ~0.2 s compiling it with its optimising tier while the first
//! pushes run. Here the values buffer is shared.

use std::sync::Arc;

use arrow::array::timezone::Tz;
use arrow::array::{
    Array, ArrayRef, AsArray, Int64Array, PrimitiveArray, TimestampMicrosecondArray,
    TimestampMillisecondArray, TimestampNanosecondArray, TimestampSecondArray,
};
use arrow::buffer::{NullBuffer, ScalarBuffer};
use arrow::compute::cast;
use arrow::compute::kernels::cast_utils::string_to_datetime;
use arrow::datatypes::{
    ArrowPrimitiveType, DataType, Field, Int64Type, Schema, SchemaRef, TimeUnit,
    TimestampMicrosecondType, TimestampMillisecondType, TimestampNanosecondType,
    TimestampSecondType,
};

use chrono::Utc;

use crate::error::Result;

/// `column` as `to` when that keeps every value as it is: Int64 to a
/// timestamp or back (as arrow's `cast` does it), or no change at all.
/// `None` for other conversions (units, time zones, other types).
pub fn retype(column: &ArrayRef, to: &DataType) -> Option<ArrayRef> {
    if column.data_type() == to {
        return Some(Arc::clone(column));
    }
    let same_values = matches!(
        (column.data_type(), to),
        (DataType::Int64, DataType::Timestamp(..)) | (DataType::Timestamp(..), DataType::Int64)
    );
    if !same_values {
        return None;
    }
    let (values, nulls) = i64_parts(column.as_ref())?;
    Some(match to {
        DataType::Int64 => Arc::new(Int64Array::new(values, nulls)),
        DataType::Timestamp(TimeUnit::Second, zone) => {
            Arc::new(TimestampSecondArray::new(values, nulls).with_timezone_opt(zone.clone()))
        }
        DataType::Timestamp(TimeUnit::Millisecond, zone) => {
            Arc::new(TimestampMillisecondArray::new(values, nulls).with_timezone_opt(zone.clone()))
        }
        DataType::Timestamp(TimeUnit::Microsecond, zone) => {
            Arc::new(TimestampMicrosecondArray::new(values, nulls).with_timezone_opt(zone.clone()))
        }
        DataType::Timestamp(TimeUnit::Nanosecond, zone) => {
            Arc::new(TimestampNanosecondArray::new(values, nulls).with_timezone_opt(zone.clone()))
        }
        _ => return None,
    })
}

/// `column` as `to`: [`retype`] where it applies, arrow's `cast` otherwise.
pub fn to_type(column: &ArrayRef, to: &DataType) -> Result<ArrayRef> {
    match retype(column, to) {
        Some(retyped) => Ok(retyped),
        None => Ok(cast(column, to)?),
    }
}

/// Epoch values of an Int64 or timestamp column of `type_of` (the window
/// bounds' and event times' type) built from Int64 values.
pub fn int64_as(values: Int64Array, type_of: &DataType) -> Result<ArrayRef> {
    to_type(&(Arc::new(values) as ArrayRef), type_of)
}

/// The values and nulls of a 64-bit integer or timestamp column.
fn i64_parts(column: &dyn Array) -> Option<(ScalarBuffer<i64>, Option<NullBuffer>)> {
    fn parts<T: ArrowPrimitiveType<Native = i64>>(
        array: &PrimitiveArray<T>,
    ) -> (ScalarBuffer<i64>, Option<NullBuffer>) {
        (array.values().clone(), array.nulls().cloned())
    }
    Some(match column.data_type() {
        DataType::Int64 => parts(column.as_primitive::<Int64Type>()),
        DataType::Timestamp(TimeUnit::Second, _) => {
            parts(column.as_primitive::<TimestampSecondType>())
        }
        DataType::Timestamp(TimeUnit::Millisecond, _) => {
            parts(column.as_primitive::<TimestampMillisecondType>())
        }
        DataType::Timestamp(TimeUnit::Microsecond, _) => {
            parts(column.as_primitive::<TimestampMicrosecondType>())
        }
        DataType::Timestamp(TimeUnit::Nanosecond, _) => {
            parts(column.as_primitive::<TimestampNanosecondType>())
        }
        _ => return None,
    })
}

/// The schema JSON is decoded against: every field nullable (absent fields
/// are reported by the stream with a row number, not by the decoder) and
/// timestamps in milliseconds.
pub fn decoding_schema(schema: &Schema) -> SchemaRef {
    let fields: Vec<Field> = schema
        .fields()
        .iter()
        .map(|f| {
            let data_type = match f.data_type() {
                DataType::Timestamp(_, tz) => {
                    DataType::Timestamp(TimeUnit::Millisecond, tz.clone())
                }
                other => other.clone(),
            };
            Field::new(f.name(), data_type, true)
        })
        .collect();
    Arc::new(Schema::new(fields))
}

/// Epoch milliseconds of a timestamp string as arrow-json reads it into a
/// field in time zone `zone` (UTC when none); `None` when it does not parse.
/// The column-wise and flat-object decoders use it to agree with arrow-json.
pub fn timestamp_string_millis(zone: Option<&Tz>, text: &str) -> Option<i64> {
    let parsed = match zone {
        Some(zone) => string_to_datetime(zone, text).map(|t| t.timestamp_millis()),
        None => string_to_datetime(&Utc, text).map(|t| t.timestamp_millis()),
    };
    parsed.ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retyped_columns_equal_arrows_casts() {
        let ints: ArrayRef = Arc::new(Int64Array::from(vec![
            Some(1_700_000_000_123),
            None,
            Some(-1),
            Some(i64::MIN),
            Some(i64::MAX),
            Some(0),
        ]));
        let zones = [None, Some("+02:00"), Some("UTC")];
        let units = [
            TimeUnit::Second,
            TimeUnit::Millisecond,
            TimeUnit::Microsecond,
            TimeUnit::Nanosecond,
        ];
        for column in [Arc::clone(&ints), ints.slice(1, 4)] {
            for unit in units {
                for zone in zones {
                    let time = DataType::Timestamp(unit, zone.map(Into::into));
                    let retyped = retype(&column, &time).expect("Int64 to timestamp");
                    let cast_time = cast(&column, &time).unwrap();
                    assert_eq!(retyped.to_data(), cast_time.to_data(), "{time}");
                    let back = retype(&retyped, &DataType::Int64).expect("timestamp to Int64");
                    assert_eq!(
                        back.to_data(),
                        cast(&cast_time, &DataType::Int64).unwrap().to_data()
                    );
                    assert_eq!(back.to_data(), column.to_data());
                }
            }
        }
    }

    #[test]
    fn other_conversions_are_left_to_cast() {
        let millis: ArrayRef = Arc::new(TimestampMillisecondArray::from(vec![1_500, -2]));
        let seconds = DataType::Timestamp(TimeUnit::Second, None);
        let zoned = DataType::Timestamp(TimeUnit::Millisecond, Some("+01:00".into()));
        // A unit change divides; a naive time given a zone is read as local time.
        assert!(retype(&millis, &seconds).is_none());
        assert!(retype(&millis, &zoned).is_none());
        assert!(retype(&millis, &DataType::Int32).is_none());
        let ints: ArrayRef = Arc::new(arrow::array::Int32Array::from(vec![1]));
        assert!(retype(&ints, &seconds).is_none());
        assert_eq!(
            to_type(&millis, &seconds).unwrap().to_data(),
            cast(&millis, &seconds).unwrap().to_data()
        );
        assert_eq!(
            Arc::as_ptr(&retype(&millis, millis.data_type()).unwrap()),
            Arc::as_ptr(&millis)
        );
    }
}
