//! Column-wise JavaScript objects in.
//!
//! The TypeScript layer turns an array of plain objects into one typed
//! column per declared field and hands the columns over in bulk; this module
//! builds from them exactly the batch that NDJSON decoding
//! ([`super::json::decode_ndjson`]) builds from `JSON.stringify` of the same
//! objects, so both paths share validation, bad-row reports and offsets.
//!
//! ```text
//!  JS objects ──► per declared field, in schema order:
//!                 Number / Boolean / Timestamp ─► one f64 plane of `rows` (NaN = null)
//!                 String / Timestamp           ─► one u32 plane of `rows` (0 = no string,
//!                                                 k = dictionary[k - 1])
//!                 Other                        ─► nothing (JS checked: only nulls)
//!             ──► decode_columns ─► RecordBatch in decoding_schema(schema)
//! ```
//!
//! Values that do not fit this representation without doubt (a string in a
//! number field, a fraction in an integer field, a timestamp string the
//! parser rejects, ...) make [`decode_columns`] answer `None`: the caller then
//! pushes the same objects as NDJSON, which decides (and reports) exactly as
//! before. `None` is never an error and changes nothing.

use std::sync::Arc;

use arrow::array::timezone::Tz;
use arrow::array::{
    new_null_array, ArrayRef, BooleanArray, Float64Array, Int64Array, StringBuilder,
    TimestampMillisecondArray,
};
use arrow::compute::{cast, cast_with_options, CastOptions};
use arrow::datatypes::{DataType, Schema};
use arrow::record_batch::RecordBatch;

use super::string_views::from_dictionary;
use super::time_values::{decoding_schema, timestamp_string_millis};
use crate::err;
use crate::error::Result;

/// Largest magnitude up to which every integer is an f64 and prints exactly
/// in `JSON.stringify` (2^53).
const EXACT_INTEGER: f64 = 9_007_199_254_740_992.0;

/// How JavaScript hands over the values of one declared field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ColumnKind {
    /// Integer and floating-point fields: JS numbers in the number plane.
    Number,
    /// Boolean fields: 1, 0, or NaN for null, in the number plane.
    Boolean,
    /// Timestamp fields: epoch milliseconds (numbers, `Date`s) in the number
    /// plane, ISO-8601 strings in the code plane.
    Timestamp,
    /// String fields: dictionary codes in the code plane.
    String,
    /// Any other type: JS sends no values (only nulls), or falls back to NDJSON.
    Other,
}

impl ColumnKind {
    /// The kind of a declared field's type.
    pub fn of(data_type: &DataType) -> Self {
        match data_type {
            DataType::Float64
            | DataType::Float32
            | DataType::Int8
            | DataType::Int16
            | DataType::Int32
            | DataType::Int64
            | DataType::UInt8
            | DataType::UInt16
            | DataType::UInt32
            | DataType::UInt64 => ColumnKind::Number,
            DataType::Boolean => ColumnKind::Boolean,
            DataType::Timestamp(..) => ColumnKind::Timestamp,
            DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => ColumnKind::String,
            _ => ColumnKind::Other,
        }
    }

    /// The name the TypeScript layer switches on.
    pub fn as_str(self) -> &'static str {
        match self {
            ColumnKind::Number => "number",
            ColumnKind::Boolean => "boolean",
            ColumnKind::Timestamp => "timestamp",
            ColumnKind::String => "string",
            ColumnKind::Other => "other",
        }
    }

    /// Whether the field has a plane in [`ColumnarRows::numbers`].
    pub fn has_numbers(self) -> bool {
        matches!(
            self,
            ColumnKind::Number | ColumnKind::Boolean | ColumnKind::Timestamp
        )
    }

    /// Whether the field has a plane in [`ColumnarRows::codes`].
    pub fn has_codes(self) -> bool {
        matches!(self, ColumnKind::String | ColumnKind::Timestamp)
    }
}

/// The declared fields and their kinds as JSON, `[{"name": ..., "kind": ...}]`,
/// in schema order: what the TypeScript layer asks once per stream.
pub fn describe_layout(schema: &Schema) -> String {
    let fields: Vec<serde_json::Value> = schema
        .fields()
        .iter()
        .map(|f| {
            serde_json::json!({ "name": f.name(), "kind": ColumnKind::of(f.data_type()).as_str() })
        })
        .collect();
    serde_json::Value::Array(fields).to_string()
}

/// One push's events as columns, borrowed from JavaScript typed arrays.
#[derive(Debug, Clone, Copy)]
pub struct ColumnarRows<'a> {
    /// Number of events.
    pub rows: usize,
    /// One plane of `rows` values per field whose kind
    /// [`has_numbers`](ColumnKind::has_numbers), in schema order. NaN is null
    /// (as `JSON.stringify` writes NaN and ±Infinity).
    pub numbers: &'a [f64],
    /// One plane of `rows` codes per field whose kind
    /// [`has_codes`](ColumnKind::has_codes), in schema order: 0 for no
    /// string, `k` for the `k`-th string of the dictionary (1-based).
    pub codes: &'a [u32],
    /// The distinct strings of the push, concatenated.
    pub dictionary: &'a str,
    /// Length of each dictionary string in UTF-16 code units (JavaScript's
    /// `String.length`), in order.
    pub dictionary_lengths: &'a [u32],
}

/// Builds the batch NDJSON decoding would give for the same events, in
/// `decoding_schema(schema)`; `Ok(None)` when some value needs NDJSON's
/// judgement (see the module docs). Errors only on malformed input (planes
/// of the wrong length, codes past the dictionary): a bug of the caller.
pub fn decode_columns(schema: &Schema, input: &ColumnarRows<'_>) -> Result<Option<RecordBatch>> {
    let target = decoding_schema(schema);
    let kinds: Vec<ColumnKind> = schema
        .fields()
        .iter()
        .map(|f| ColumnKind::of(f.data_type()))
        .collect();
    let rows = input.rows;
    let number_planes = kinds.iter().filter(|k| k.has_numbers()).count();
    let code_planes = kinds.iter().filter(|k| k.has_codes()).count();
    if Some(input.numbers.len()) != rows.checked_mul(number_planes)
        || Some(input.codes.len()) != rows.checked_mul(code_planes)
    {
        return Err(err!(
            InvalidInput,
            "column-wise input is malformed: {} numbers and {} codes for {rows} rows of {number_planes} number and {code_planes} string fields",
            input.numbers.len(),
            input.codes.len()
        ));
    }
    let dictionary = split_dictionary(input.dictionary, input.dictionary_lengths)?;
    if let Some(&code) = input.codes.iter().find(|&&c| c as usize > dictionary.len()) {
        return Err(err!(
            InvalidInput,
            "column-wise input is malformed: string code {code} past a dictionary of {}",
            dictionary.len()
        ));
    }
    let (mut number_plane_index, mut code_plane_index) = (0, 0);
    let mut columns: Vec<ArrayRef> = Vec::with_capacity(kinds.len());
    for (field, kind) in target.fields().iter().zip(&kinds) {
        // Plane lengths were checked above, so these slices are in bounds.
        let number_plane = kind.has_numbers().then(|| {
            number_plane_index += 1;
            &input.numbers[(number_plane_index - 1) * rows..number_plane_index * rows]
        });
        let code_plane = kind.has_codes().then(|| {
            code_plane_index += 1;
            &input.codes[(code_plane_index - 1) * rows..code_plane_index * rows]
        });
        let column = match (kind, number_plane, code_plane) {
            (ColumnKind::Number, Some(values), _) => numbers_column(values, field.data_type())?,
            (ColumnKind::Boolean, Some(values), _) => booleans_column(values),
            (ColumnKind::Timestamp, Some(values), Some(codes)) => {
                timestamps_column(values, codes, &dictionary, field.data_type())?
            }
            (ColumnKind::String, _, Some(codes)) => {
                strings_column(codes, &dictionary, field.data_type())?
            }
            (ColumnKind::Other, _, _) => Some(new_null_array(field.data_type(), rows)),
            _ => return Err(err!(Internal, "column planes do not match the field kinds")),
        };
        match column {
            Some(column) => columns.push(column),
            None => return Ok(None),
        }
    }
    Ok(Some(RecordBatch::try_new(target, columns)?))
}

/// Splits the concatenated dictionary at the given UTF-16 lengths.
fn split_dictionary<'a>(text: &'a str, lengths: &[u32]) -> Result<Vec<&'a str>> {
    let malformed = || {
        err!(
            InvalidInput,
            "column-wise input is malformed: dictionary lengths do not match its text"
        )
    };
    let mut strings = Vec::with_capacity(lengths.len());
    if text.is_ascii() {
        // One byte per UTF-16 unit.
        let mut start = 0usize;
        for &length in lengths {
            let end = start
                .checked_add(length as usize)
                .filter(|&end| end <= text.len())
                .ok_or_else(malformed)?;
            strings.push(&text[start..end]);
            start = end;
        }
        return if start == text.len() {
            Ok(strings)
        } else {
            Err(malformed())
        };
    }
    let mut chars = text.char_indices();
    let mut start = 0usize;
    for &length in lengths {
        let mut units = 0usize;
        let mut end = start;
        while units < length as usize {
            let (at, c) = chars.next().ok_or_else(malformed)?;
            units += c.len_utf16();
            end = at + c.len_utf8();
        }
        if units != length as usize {
            return Err(malformed());
        }
        strings.push(&text[start..end]);
        start = end;
    }
    if start == text.len() {
        Ok(strings)
    } else {
        Err(malformed())
    }
}

/// A number plane as the declared numeric type, or `None` when a value is
/// not certain to decode from JSON text to the same value.
fn numbers_column(values: &[f64], data_type: &DataType) -> Result<Option<ArrayRef>> {
    // JSON.stringify writes NaN and ±Infinity as null, and -0 as 0.
    let json_value = |v: f64| v.is_finite().then_some(v + 0.0);
    match data_type {
        DataType::Float64 => Ok(Some(Arc::new(
            values
                .iter()
                .map(|&v| json_value(v))
                .collect::<Float64Array>(),
        ))),
        DataType::Float32 => {
            // Parsing the decimal text as f32 equals rounding the f64 only
            // when the f64 is an f32 value.
            if values
                .iter()
                .any(|&v| v.is_finite() && f64::from(v as f32) != v)
            {
                return Ok(None);
            }
            let array: Float64Array = values.iter().map(|&v| json_value(v)).collect();
            Ok(Some(cast(&array, data_type)?))
        }
        _ => {
            // Integers: exact below 2^53; fractions and larger magnitudes
            // go through JSON's own parsing.
            if values
                .iter()
                .any(|&v| v.is_finite() && (v.fract() != 0.0 || v.abs() > EXACT_INTEGER))
            {
                return Ok(None);
            }
            let array: Int64Array = values
                .iter()
                .map(|&v| v.is_finite().then_some(v as i64))
                .collect();
            if data_type == &DataType::Int64 {
                return Ok(Some(Arc::new(array)));
            }
            let strict = CastOptions {
                safe: false,
                ..Default::default()
            };
            // Out of the type's range: JSON decoding decides (and fails).
            Ok(cast_with_options(&array, data_type, &strict).ok())
        }
    }
}

/// A boolean plane: 1 true, 0 false, NaN null.
fn booleans_column(values: &[f64]) -> Option<ArrayRef> {
    if values.iter().any(|&v| !v.is_nan() && v != 0.0 && v != 1.0) {
        return None;
    }
    let array: BooleanArray = values
        .iter()
        .map(|&v| (!v.is_nan()).then_some(v == 1.0))
        .collect();
    Some(Arc::new(array))
}

/// A timestamp field in milliseconds (the decoding type): numbers as
/// JSON decoding reads them (truncated to integers), strings parsed by
/// the same parser, in the field's time zone.
fn timestamps_column(
    values: &[f64],
    codes: &[u32],
    dictionary: &[&str],
    data_type: &DataType,
) -> Result<Option<ArrayRef>> {
    let DataType::Timestamp(_, zone) = data_type else {
        return Err(err!(Internal, "timestamp column of type {data_type}"));
    };
    let zone: Option<Tz> = match zone {
        Some(name) => match name.parse() {
            Ok(zone) => Some(zone),
            Err(_) => return Ok(None),
        },
        None => None,
    };
    let mut millis = Vec::with_capacity(values.len());
    for (&value, &code) in values.iter().zip(codes) {
        let parsed = if code != 0 {
            let text = dictionary[code as usize - 1];
            match timestamp_string_millis(zone.as_ref(), text) {
                Some(ms) => Some(ms),
                None => return Ok(None),
            }
        } else if value.is_finite() {
            if value.abs() > EXACT_INTEGER {
                return Ok(None);
            }
            // JSON decoding parses a fraction as f64 and truncates it.
            Some(value as i64)
        } else {
            None
        };
        millis.push(parsed);
    }
    let array = TimestampMillisecondArray::from(millis).with_data_type(data_type.clone());
    Ok(Some(Arc::new(array)))
}

/// A string field from dictionary codes, in the declared string type.
fn strings_column(
    codes: &[u32],
    dictionary: &[&str],
    data_type: &DataType,
) -> Result<Option<ArrayRef>> {
    if data_type == &DataType::Utf8View {
        // SQL's VARCHAR: build the views directly rather than cast.
        return match from_dictionary(codes, dictionary) {
            Some(array) => Ok(Some(Arc::new(array))),
            None => Err(err!(
                InvalidInput,
                "column-wise strings: more than 4 GiB of distinct text in one push"
            )),
        };
    }
    let bytes: usize = codes
        .iter()
        .map(|&c| {
            if c == 0 {
                0
            } else {
                dictionary[c as usize - 1].len()
            }
        })
        .sum();
    let mut builder = StringBuilder::with_capacity(codes.len(), bytes);
    for &code in codes {
        if code == 0 {
            builder.append_null();
        } else {
            builder.append_value(dictionary[code as usize - 1]);
        }
    }
    let array: ArrayRef = Arc::new(builder.finish());
    if data_type == &DataType::Utf8 {
        return Ok(Some(array));
    }
    Ok(Some(cast(&array, data_type)?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::json::decode_ndjson;
    use arrow::datatypes::{Field, TimeUnit};

    fn schema() -> Schema {
        Schema::new(vec![
            Field::new("symbol", DataType::Utf8, true),
            Field::new("price", DataType::Float64, true),
            Field::new("n", DataType::Int32, true),
            Field::new("ok", DataType::Boolean, true),
            Field::new("ts", DataType::Timestamp(TimeUnit::Nanosecond, None), true),
        ])
    }

    #[test]
    fn builds_what_ndjson_decoding_builds() {
        let dictionary = "Aé😀B1970-01-01T00:00:05Z";
        let lengths = [1, 1, 2, 1, 20];
        let rows = ColumnarRows {
            rows: 3,
            #[rustfmt::skip]
            numbers: &[
                1.5, f64::NAN, -0.0,        // price
                7.0, f64::NAN, -3.0,        // n
                1.0, 0.0, f64::NAN,         // ok
                1000.0, f64::NAN, 2.9,      // ts numbers
            ],
            #[rustfmt::skip]
            codes: &[
                1, 0, 3,                    // symbol: A, null, 😀
                0, 5, 0,                    // ts strings
            ],
            dictionary,
            dictionary_lengths: &lengths,
        };
        let batch = decode_columns(&schema(), &rows).unwrap().unwrap();
        let text = concat!(
            r#"{"symbol":"A","price":1.5,"n":7,"ok":true,"ts":1000}"#,
            "\n",
            r#"{"price":null,"ok":false,"ts":"1970-01-01T00:00:05Z"}"#,
            "\n",
            r#"{"symbol":"😀","price":0,"n":-3,"ts":2.9}"#
        );
        assert_eq!(batch, decode_ndjson(&schema(), text).unwrap());
    }

    #[test]
    fn values_that_need_json_judgement_answer_none() {
        let schema = schema();
        let empty_codes = [0u32; 2];
        let with_numbers = |plane: usize, values: [f64; 1]| {
            let mut numbers = vec![f64::NAN; 4];
            numbers[plane] = values[0];
            numbers
        };
        // A fraction in an INT field, a value past i32, one past 2^53 in a timestamp.
        for (plane, value) in [(1, 1.5), (1, 3e9), (3, 1e17)] {
            let numbers = with_numbers(plane, [value]);
            let rows = ColumnarRows {
                rows: 1,
                numbers: &numbers,
                codes: &empty_codes,
                dictionary: "",
                dictionary_lengths: &[],
            };
            assert!(decode_columns(&schema, &rows).unwrap().is_none(), "{value}");
        }
        // A timestamp string the parser rejects.
        let rows = ColumnarRows {
            rows: 1,
            numbers: &[f64::NAN; 4],
            codes: &[0, 1],
            dictionary: "soon",
            dictionary_lengths: &[4],
        };
        assert!(decode_columns(&schema, &rows).unwrap().is_none());
    }

    #[test]
    fn malformed_input_is_an_error_not_a_panic() {
        let schema = schema();
        let rows = |numbers, codes, dictionary, dictionary_lengths| ColumnarRows {
            rows: 1,
            numbers,
            codes,
            dictionary,
            dictionary_lengths,
        };
        let cases = [
            // Planes of the wrong length; a code past the dictionary; lengths
            // that leave text over, run past it, or split a surrogate pair.
            rows(&[1.0], &[0, 0], "", &[]),
            rows(&[f64::NAN; 4], &[2, 0], "A", &[1]),
            rows(&[f64::NAN; 4], &[0, 0], "AB", &[1]),
            rows(&[f64::NAN; 4], &[0, 0], "A", &[5]),
            rows(&[f64::NAN; 4], &[0, 0], "😀", &[1]),
        ];
        for rows in cases {
            let error = decode_columns(&schema, &rows).unwrap_err();
            assert_eq!(error.code(), crate::ErrorCode::InvalidInput, "{error}");
        }
    }

    #[test]
    fn random_planes_never_panic() {
        let schema = schema();
        let mut state = 0x2545_f491_4f6c_dd1du64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let specials = [f64::NAN, f64::INFINITY, -0.0, 1e300, 2.5, -1.0, 9e15, 0.1];
        for _ in 0..2_000 {
            let rows = (next() % 4) as usize;
            let numbers: Vec<f64> = (0..(next() % 18))
                .map(|_| specials[(next() % 8) as usize])
                .collect();
            let codes: Vec<u32> = (0..(next() % 10)).map(|_| (next() % 4) as u32).collect();
            let lengths: Vec<u32> = (0..(next() % 4)).map(|_| (next() % 5) as u32).collect();
            let dictionary = ["", "A", "😀x", "2024-01-01T00:00:00Z", "é"][(next() % 5) as usize];
            let input = ColumnarRows {
                rows,
                numbers: &numbers,
                codes: &codes,
                dictionary,
                dictionary_lengths: &lengths,
            };
            let _ = decode_columns(&schema, &input);
        }
    }

    #[test]
    fn other_types_are_null_columns_and_zero_rows_work() {
        let schema = Schema::new(vec![
            Field::new("d", DataType::Date32, true),
            Field::new("ts", DataType::Timestamp(TimeUnit::Millisecond, None), true),
        ]);
        assert!(describe_layout(&schema).contains(r#""kind":"other""#));
        let rows = ColumnarRows {
            rows: 0,
            numbers: &[],
            codes: &[],
            dictionary: "",
            dictionary_lengths: &[],
        };
        assert_eq!(
            decode_columns(&schema, &rows).unwrap().unwrap().num_rows(),
            0
        );
    }
}
