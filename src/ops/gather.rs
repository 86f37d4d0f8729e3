//! The rows of a column at given indices, for the column types pushes
//! carry (numbers, timestamps, short-string views, FILTER masks).
//!
//! Operators regroup a batch's rows on most pushes (a window's rows split
//! by a firing, a session's rows put together). arrow's `take` does it for
//! every type in one very large function (~40 KB of wasm) that V8 compiles
//! with its optimising tier during the first pushes; these loops are small.
//! Other types go to `take`.

use std::sync::Arc;

use arrow::array::{
    Array, ArrayRef, ArrowPrimitiveType, AsArray, BooleanArray, PrimitiveArray, StringViewArray,
    UInt32Array,
};
use arrow::buffer::{BooleanBuffer, NullBuffer, ScalarBuffer};
use arrow::compute::take;
use arrow::datatypes::{DataType, Float64Type, Int32Type, Int64Type, TimeUnit};
use arrow::datatypes::{
    TimestampMicrosecondType, TimestampMillisecondType, TimestampNanosecondType,
    TimestampSecondType, UInt64Type,
};

use crate::error::Result;

/// `array`'s rows at `indices`, in that order (as arrow's `take`).
pub fn gather(array: &ArrayRef, indices: &UInt32Array) -> Result<ArrayRef> {
    let len = array.len();
    let at = indices.values();
    // arrow's `take` panics on these; here they are an error.
    let out_of_range = at
        .iter()
        .enumerate()
        .find(|&(k, &i)| i as usize >= len && indices.is_valid(k));
    if let Some((_, bad)) = out_of_range {
        return Err(crate::err!(Internal, "row {bad} of a column of {len} rows"));
    }
    if indices.null_count() > 0 {
        return Ok(take(array.as_ref(), indices, None)?);
    }
    let nulls = array
        .nulls()
        .filter(|nulls| nulls.null_count() > 0)
        .map(|nulls| NullBuffer::from_iter(at.iter().map(|&i| nulls.is_valid(i as usize))));
    Ok(match array.data_type() {
        DataType::Float64 => primitive::<Float64Type>(array, at, nulls),
        DataType::Int64 => primitive::<Int64Type>(array, at, nulls),
        DataType::Int32 => primitive::<Int32Type>(array, at, nulls),
        DataType::UInt64 => primitive::<UInt64Type>(array, at, nulls),
        DataType::Timestamp(TimeUnit::Second, _) => {
            primitive::<TimestampSecondType>(array, at, nulls)
        }
        DataType::Timestamp(TimeUnit::Millisecond, _) => {
            primitive::<TimestampMillisecondType>(array, at, nulls)
        }
        DataType::Timestamp(TimeUnit::Microsecond, _) => {
            primitive::<TimestampMicrosecondType>(array, at, nulls)
        }
        DataType::Timestamp(TimeUnit::Nanosecond, _) => {
            primitive::<TimestampNanosecondType>(array, at, nulls)
        }
        DataType::Boolean => {
            let values = array.as_boolean();
            let picked = BooleanBuffer::collect_bool(at.len(), |k| values.value(at[k] as usize));
            Arc::new(BooleanArray::new(picked, nulls))
        }
        DataType::Utf8View => {
            let strings = array.as_string_view();
            let views: Vec<u128> = at.iter().map(|&i| strings.views()[i as usize]).collect();
            // SAFETY: every view is one of a valid array's, over the same
            // data buffers; the nulls are those of its rows.
            Arc::new(unsafe {
                StringViewArray::new_unchecked(
                    ScalarBuffer::from(views),
                    strings.data_buffers().to_vec(),
                    nulls,
                )
            })
        }
        _ => take(array.as_ref(), indices, None)?,
    })
}

fn primitive<T: ArrowPrimitiveType>(
    array: &ArrayRef,
    at: &[u32],
    nulls: Option<NullBuffer>,
) -> ArrayRef {
    let values = array.as_primitive::<T>().values();
    let picked: Vec<T::Native> = at.iter().map(|&i| values[i as usize]).collect();
    // The type as it was (a timestamp keeps its time zone).
    Arc::new(
        PrimitiveArray::<T>::new(ScalarBuffer::from(picked), nulls)
            .with_data_type(array.data_type().clone()),
    )
}

#[cfg(test)]
mod tests {
    use arrow::array::{
        Float64Array, Int32Array, Int64Array, StringArray, TimestampMillisecondArray, UInt64Array,
    };

    use super::*;

    fn columns() -> Vec<ArrayRef> {
        vec![
            Arc::new(Float64Array::from(vec![
                Some(0.5),
                None,
                Some(-1.0),
                Some(2.0),
                None,
            ])),
            Arc::new(Int64Array::from(vec![1, 2, 3, 4, 5])),
            Arc::new(Int32Array::from(vec![
                Some(1),
                None,
                Some(3),
                Some(4),
                Some(5),
            ])),
            Arc::new(UInt64Array::from(vec![u64::MAX, 0, 1, 2, 3])),
            Arc::new(
                TimestampMillisecondArray::from(vec![Some(1), Some(2), None, Some(4), Some(5)])
                    .with_timezone("+02:00"),
            ),
            Arc::new(BooleanArray::from(vec![
                Some(true),
                None,
                Some(false),
                Some(true),
                Some(false),
            ])),
            Arc::new(StringViewArray::from(vec![
                Some("a"),
                None,
                Some("a string longer than twelve bytes"),
                Some(""),
                Some("twelve_bytes"),
            ])),
            // Other types go to `take`.
            Arc::new(StringArray::from(vec![
                Some("x"),
                None,
                Some("y"),
                Some("z"),
                Some("w"),
            ])),
        ]
    }

    #[test]
    fn gathered_rows_are_takes() {
        let indices = UInt32Array::from(vec![4, 0, 2, 2, 1, 3]);
        for column in columns() {
            for column in [column.clone(), column.slice(1, 4)] {
                let indices = if column.len() == 4 {
                    UInt32Array::from(vec![3, 0, 2, 2, 1])
                } else {
                    indices.clone()
                };
                let ours = gather(&column, &indices).unwrap();
                let theirs = take(column.as_ref(), &indices, None).unwrap();
                assert_eq!(ours.data_type(), theirs.data_type());
                assert_eq!(ours.as_ref(), theirs.as_ref(), "{}", column.data_type());
            }
        }
    }

    #[test]
    fn bad_indices_are_errors_not_panics() {
        for column in columns() {
            assert!(gather(&column, &UInt32Array::from(vec![0, 5])).is_err());
            let with_null = UInt32Array::from(vec![Some(1), None]);
            assert_eq!(
                gather(&column, &with_null).unwrap().as_ref(),
                take(column.as_ref(), &with_null, None).unwrap().as_ref()
            );
        }
    }
}
