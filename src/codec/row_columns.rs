//! Result rows handed to JavaScript column-wise.
//!
//! Encoding every number of a result as JSON text and parsing it back in
//! JavaScript cost about half of a push that emits many rows (W5 in
//! BENCHMARKS.md). Instead, numbers travel in one `Float64Array` plane and
//! strings as codes into a per-column list of strings (each distinct one
//! once, unless the column is a group key whose values are all distinct
//! anyway); only the description of each batch is JSON. The strings of a call are
//! one UTF-8 text plane (JavaScript decodes it once with `TextDecoder` and
//! cuts it by the lengths plane, in UTF-16 units): parsing them as a JSON
//! array of strings was most of a push emitting 200k distinct keys (W5).
//! JavaScript builds from the planes exactly the rows `JSON.parse` of
//! [`super::json::encode_rows`] would give:
//!
//! ```text
//!  number   (integers, Float64, timestamps as epoch ms) ─► numbers plane, NaN = null
//!                                                          (JSON writes NaN and ±inf as null)
//!  boolean                                            ─► numbers plane: 1, 0, NaN = null
//!  string   (Utf8, LargeUtf8, Utf8View)               ─► codes plane: 0 = null, k = strings[k - 1];
//!                                                        strings: `count` of them from entry
//!                                                        `first` of the text and lengths planes
//! ```
//!
//! Integers convert to the nearest f64, which is what `JSON.parse` makes of
//! their exact decimal text. Types whose JSON form is not a plain number,
//! boolean or string (Float32, whose shortest text parses to another f64;
//! decimals, dates, lists, ...) make the whole batch go as JSON rows.

use std::fmt::Write as _;

use arrow::array::{Array, ArrayRef, AsArray};
use arrow::datatypes::{DataType, Float64Type, Int64Type, UInt64Type};
use arrow::record_batch::RecordBatch;
// One lookup per result row: SipHash was 6% of a push emitting many rows.
use foldhash::{HashMap, HashMapExt};

use super::json::timestamp_millis_column;
use super::string_views::ViewTable;
use super::string_views::{canonical, INLINE};
use super::time_values::to_type;
use crate::error::Result;

/// The planes of one engine call's column-wise deliveries.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RowPlanes {
    /// Numbers and booleans of every delivered column, one after another.
    pub numbers: Vec<f64>,
    /// String codes of every delivered string column, one after another.
    pub codes: Vec<u32>,
    /// The strings of every delivered string column (see `push_codes`),
    /// UTF-8, one after another.
    pub text: Vec<u8>,
    /// The length of each of those strings in UTF-16 code units (what
    /// JavaScript counts).
    pub text_lengths: Vec<u32>,
}

impl RowPlanes {
    /// Whether nothing is pending.
    pub fn is_empty(&self) -> bool {
        self.numbers.is_empty()
            && self.codes.is_empty()
            && self.text.is_empty()
            && self.text_lengths.is_empty()
    }
}

/// How a column travels, if it can.
enum Kind {
    Number,
    Boolean,
    String,
}

fn kind_of(data_type: &DataType) -> Option<Kind> {
    match data_type {
        DataType::Int8
        | DataType::Int16
        | DataType::Int32
        | DataType::Int64
        | DataType::UInt8
        | DataType::UInt16
        | DataType::UInt32
        | DataType::UInt64
        | DataType::Float64
        | DataType::Timestamp(..) => Some(Kind::Number),
        DataType::Boolean => Some(Kind::Boolean),
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => Some(Kind::String),
        _ => None,
    }
}

/// Appends `batch` to `planes` and returns its description,
/// `{"n": rows, "fields": [{"name", "kind", "at", "first"?, "count"?}]}`
/// (`at`: the column's first value in its plane; a string column's
/// strings are `count` entries of the text planes from `first`);
/// `None`, with the planes unchanged,
/// when a column's type must go as JSON rows.
pub fn encode_row_columns(batch: &RecordBatch, planes: &mut RowPlanes) -> Result<Option<String>> {
    let schema = batch.schema();
    if schema
        .fields()
        .iter()
        .any(|f| kind_of(f.data_type()).is_none())
    {
        return Ok(None);
    }
    let rows = batch.num_rows();
    let mut json = format!("{{\"n\":{rows},\"fields\":[");
    for (i, (field, column)) in schema.fields().iter().zip(batch.columns()).enumerate() {
        if i > 0 {
            json.push(',');
        }
        let name = serde_json::to_string(field.name())
            .map_err(|e| crate::err!(Internal, "field name as JSON: {e}"))?;
        let kind = kind_of(field.data_type());
        match kind {
            Some(Kind::Number) => {
                let _ = write!(
                    json,
                    "{{\"name\":{name},\"kind\":\"number\",\"at\":{}}}",
                    planes.numbers.len()
                );
                push_numbers(column, &mut planes.numbers)?;
            }
            Some(Kind::Boolean) => {
                let _ = write!(
                    json,
                    "{{\"name\":{name},\"kind\":\"boolean\",\"at\":{}}}",
                    planes.numbers.len()
                );
                let values = column.as_boolean();
                planes.numbers.extend((0..rows).map(|row| {
                    if values.is_null(row) {
                        f64::NAN
                    } else if values.value(row) {
                        1.0
                    } else {
                        0.0
                    }
                }));
            }
            Some(Kind::String) => {
                let at = planes.codes.len();
                let strings = push_codes(column, &mut planes.codes)?;
                let _ = write!(
                    json,
                    "{{\"name\":{name},\"kind\":\"string\",\"at\":{at},\"first\":{},\"count\":{}}}",
                    planes.text_lengths.len(),
                    strings.len()
                );
                push_text(&strings, planes);
            }
            None => return Err(crate::err!(Internal, "column kind checked above")),
        }
    }
    json.push_str("]}");
    Ok(Some(json))
}

/// A numeric or timestamp column as f64s (timestamps in epoch ms, as the
/// JSON rows write them), NaN for null and for non-finite values.
fn push_numbers(column: &ArrayRef, out: &mut Vec<f64>) -> Result<()> {
    match column.data_type() {
        DataType::Float64 => out.extend(
            column
                .as_primitive::<Float64Type>()
                .iter()
                .map(|v| v.filter(|v| v.is_finite()).unwrap_or(f64::NAN)),
        ),
        DataType::UInt64 => out.extend(
            column
                .as_primitive::<UInt64Type>()
                .iter()
                .map(|v| v.map_or(f64::NAN, |v| v as f64)),
        ),
        // Timestamps and the other integer types, through Int64.
        _ => {
            let ints = to_type(&timestamp_millis_column(column)?, &DataType::Int64)?;
            out.extend(
                ints.as_primitive::<Int64Type>()
                    .iter()
                    .map(|v| v.map_or(f64::NAN, |v| v as f64)),
            );
        }
    }
    Ok(())
}

/// Non-null values of a string column looked at before deciding whether
/// deduplicating them pays.
const SAMPLE: usize = 1024;

/// Whether a sample of `seen` values with `distinct` different ones is
/// (nearly) all distinct: a group-key column, one row per group, where
/// deduplicating only costs a hash-table insert per row.
fn mostly_distinct(seen: usize, distinct: usize) -> bool {
    seen == SAMPLE && distinct * 100 >= seen * 98
}

/// A string column as codes into its strings (returned in order): each
/// distinct string once, unless the first [`SAMPLE`] values were all but
/// distinct; then the rest get a code each, unshared.
fn push_codes<'a>(column: &'a ArrayRef, out: &mut Vec<u32>) -> Result<Vec<&'a str>> {
    let mut strings: Vec<&str> = Vec::new();
    let mut code_of: HashMap<&str, u32> = HashMap::new();
    let mut seen = 0;
    let mut dedup = true;
    let mut code = |value: Option<&'a str>, strings: &mut Vec<&'a str>| match value {
        None => 0,
        Some(text) if !dedup => {
            strings.push(text);
            strings.len() as u32
        }
        Some(text) => {
            seen += 1;
            let code = *code_of.entry(text).or_insert_with(|| {
                strings.push(text);
                strings.len() as u32
            });
            dedup = !mostly_distinct(seen, code_of.len());
            code
        }
    };
    match column.data_type() {
        DataType::Utf8 => out.extend(
            column
                .as_string::<i32>()
                .iter()
                .map(|v| code(v, &mut strings)),
        ),
        DataType::LargeUtf8 => out.extend(
            column
                .as_string::<i64>()
                .iter()
                .map(|v| code(v, &mut strings)),
        ),
        DataType::Utf8View => {
            // Short values are told apart by their view alone (no hashing
            // of bytes); longer ones by their text.
            let column = column.as_string_view();
            let mut short = ViewTable::new();
            let mut short_views = Vec::new();
            let mut short_codes: Vec<u32> = Vec::new();
            let mut short_seen = 0;
            let mut short_dedup = true;
            out.reserve(column.len());
            for (row, &view) in column.views().iter().enumerate() {
                if column.is_null(row) {
                    out.push(0);
                } else if (view as u32) <= INLINE && short_dedup {
                    short_seen += 1;
                    let group = short.intern(canonical(view), &mut short_views, None);
                    if group == short_codes.len() {
                        strings.push(column.value(row));
                        short_codes.push(strings.len() as u32);
                    }
                    out.push(short_codes[group]);
                    short_dedup = !mostly_distinct(short_seen, short_codes.len());
                } else if (view as u32) <= INLINE {
                    strings.push(column.value(row));
                    out.push(strings.len() as u32);
                } else {
                    out.push(code(Some(column.value(row)), &mut strings));
                }
            }
        }
        other => return Err(crate::err!(Internal, "string column of type {other}")),
    }
    Ok(strings)
}

/// Appends `strings` to the text planes.
fn push_text(strings: &[&str], planes: &mut RowPlanes) {
    planes
        .text
        .reserve(strings.iter().map(|text| text.len()).sum::<usize>());
    for text in strings {
        planes.text.extend_from_slice(text.as_bytes());
        let units = if text.is_ascii() {
            text.len()
        } else {
            text.encode_utf16().count()
        };
        planes.text_lengths.push(units as u32);
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow::array::{
        BooleanArray, Float32Array, Float64Array, Int32Array, Int64Array, StringArray,
        StringViewArray, TimestampNanosecondArray, UInt64Array,
    };
    use arrow::datatypes::{Field, Schema, TimeUnit};
    use serde_json::Value;

    use super::*;
    use crate::codec::json::encode_rows;

    /// What JavaScript builds from the planes, as JSON values.
    fn decode(description: &str, planes: &RowPlanes) -> Vec<serde_json::Map<String, Value>> {
        let description: Value = serde_json::from_str(description).unwrap();
        let rows = description["n"].as_u64().unwrap() as usize;
        let mut out = vec![serde_json::Map::new(); rows];
        for field in description["fields"].as_array().unwrap() {
            let name = field["name"].as_str().unwrap();
            let at = field["at"].as_u64().unwrap() as usize;
            for (row, object) in out.iter_mut().enumerate() {
                let value = match field["kind"].as_str().unwrap() {
                    "number" => serde_json::Number::from_f64(planes.numbers[at + row])
                        .map_or(Value::Null, Value::Number),
                    "boolean" => match planes.numbers[at + row] {
                        v if v.is_nan() => Value::Null,
                        v => Value::Bool(v == 1.0),
                    },
                    _ => match planes.codes[at + row] {
                        0 => Value::Null,
                        k => {
                            let first = field["first"].as_u64().unwrap() as usize;
                            assert!(k as usize <= field["count"].as_u64().unwrap() as usize);
                            Value::String(
                                text_plane_strings(planes)[first + k as usize - 1].clone(),
                            )
                        }
                    },
                };
                object.insert(name.to_string(), value);
            }
        }
        out
    }

    /// The text plane cut as JavaScript cuts it: decoded whole, then split
    /// by lengths in UTF-16 units.
    fn text_plane_strings(planes: &RowPlanes) -> Vec<String> {
        let units: Vec<u16> = std::str::from_utf8(&planes.text)
            .unwrap()
            .encode_utf16()
            .collect();
        let mut at = 0;
        planes
            .text_lengths
            .iter()
            .map(|&len| {
                let piece = String::from_utf16(&units[at..at + len as usize]).unwrap();
                at += len as usize;
                piece
            })
            .collect()
    }

    /// JSON numbers compared as f64, as `JSON.parse` reads them.
    fn as_js(rows: Vec<serde_json::Map<String, Value>>) -> Vec<Vec<(String, Option<String>)>> {
        rows.into_iter()
            .map(|row| {
                row.into_iter()
                    .map(|(k, v)| {
                        let v = match v {
                            Value::Null => None,
                            Value::Number(n) => Some(format!("{:?}", n.as_f64().unwrap())),
                            other => Some(other.to_string()),
                        };
                        (k, v)
                    })
                    .collect()
            })
            .collect()
    }

    #[test]
    fn planes_give_what_json_rows_give() {
        let schema = Arc::new(Schema::new(vec![
            Field::new("key", DataType::Utf8View, true),
            Field::new("name", DataType::Utf8, true),
            Field::new("n", DataType::Int64, true),
            Field::new("small", DataType::Int32, true),
            Field::new("big", DataType::UInt64, true),
            Field::new("x", DataType::Float64, true),
            Field::new("ok", DataType::Boolean, true),
            Field::new(
                "ts",
                DataType::Timestamp(TimeUnit::Nanosecond, Some("+02:00".into())),
                true,
            ),
        ]));
        let batch = RecordBatch::try_new(
            schema,
            vec![
                Arc::new(StringViewArray::from(vec![
                    Some("AAPL"),
                    None,
                    Some("a \"quoted\"\nline é😀"),
                    Some("AAPL"),
                    Some("a string longer than twelve bytes"),
                ])),
                Arc::new(StringArray::from(vec![
                    Some("x"),
                    Some(""),
                    None,
                    Some("x"),
                    Some("\u{0}"),
                ])),
                Arc::new(Int64Array::from(vec![
                    Some(i64::MAX),
                    Some(-1),
                    None,
                    Some(9_007_199_254_740_993),
                    Some(0),
                ])),
                Arc::new(Int32Array::from(vec![
                    Some(1),
                    None,
                    Some(-7),
                    Some(0),
                    Some(i32::MIN),
                ])),
                Arc::new(UInt64Array::from(vec![
                    Some(u64::MAX),
                    Some(0),
                    None,
                    Some(3),
                    Some(1 << 60),
                ])),
                Arc::new(Float64Array::from(vec![
                    Some(0.1),
                    Some(-0.0),
                    Some(f64::NAN),
                    Some(f64::INFINITY),
                    Some(1e300),
                ])),
                Arc::new(BooleanArray::from(vec![
                    Some(true),
                    Some(false),
                    None,
                    Some(true),
                    None,
                ])),
                Arc::new(
                    TimestampNanosecondArray::from(vec![
                        Some(1_700_000_000_123_456_789),
                        None,
                        Some(-1_500_000),
                        Some(0),
                        Some(1),
                    ])
                    .with_timezone("+02:00"),
                ),
            ],
        )
        .unwrap();
        let mut planes = RowPlanes {
            numbers: vec![42.0], // earlier deliveries of the same call
            codes: vec![7],
            text: "x😀".as_bytes().to_vec(),
            text_lengths: vec![3],
        };
        let description = encode_row_columns(&batch, &mut planes).unwrap().unwrap();
        let from_planes = decode(&description, &planes);
        let json: Vec<serde_json::Map<String, Value>> =
            serde_json::from_str(&encode_rows(&batch).unwrap()).unwrap();
        assert_eq!(as_js(from_planes), as_js(json));
        assert_eq!((planes.numbers[0], planes.codes[0]), (42.0, 7));
    }

    #[test]
    fn text_planes_carry_strings_of_every_kind() {
        let texts = [
            "",
            "plain",
            "\u{feff}bom first",
            "é😀中文",
            "\u{0}\n\"\\",
            "\u{2028}",
        ];
        let mut planes = RowPlanes {
            text: b"earlier".to_vec(),
            text_lengths: vec![7],
            ..RowPlanes::default()
        };
        push_text(&texts, &mut planes);
        let strings = text_plane_strings(&planes);
        assert_eq!(strings[0], "earlier");
        assert_eq!(strings[1..], texts.map(String::from));
    }

    #[test]
    fn repeated_view_strings_share_codes() {
        // Short (inline) and long values, repeated, with nulls and an empty
        // string: each distinct text gets one code, in order of first use.
        let values = [
            Some("a"),
            None,
            Some(""),
            Some("a string longer than twelve bytes"),
            Some("twelve_bytes"),
            Some("a"),
            Some("a string longer than twelve bytes"),
            None,
            Some(""),
            Some("twelve_byte"),
        ];
        let column: ArrayRef = Arc::new(StringViewArray::from(values.to_vec()));
        let mut codes = vec![9];
        let strings = push_codes(&column, &mut codes).unwrap();
        assert_eq!(
            strings,
            [
                "a",
                "",
                "a string longer than twelve bytes",
                "twelve_bytes",
                "twelve_byte"
            ]
        );
        assert_eq!(codes, [9, 1, 0, 2, 3, 4, 1, 3, 0, 2, 5]);
        let utf8: ArrayRef = Arc::new(StringArray::from(values.to_vec()));
        let mut utf8_codes = vec![9];
        assert_eq!(push_codes(&utf8, &mut utf8_codes).unwrap(), strings);
        assert_eq!(utf8_codes, codes);
    }

    #[test]
    fn distinct_key_columns_stop_deduplicating_and_still_decode() {
        // Group keys: every value distinct (short and long), then a few
        // repeats after the sample: codes still name each row's string.
        let mut values: Vec<Option<String>> = (0..3000)
            .map(|i| {
                Some(if i % 2 == 0 {
                    format!("k{i}")
                } else {
                    format!("a longer key number {i}")
                })
            })
            .collect();
        values.extend([
            Some("k0".to_string()),
            None,
            Some("a longer key number 1".to_string()),
        ]);
        let view: ArrayRef = Arc::new(StringViewArray::from_iter(
            values.iter().map(|v| v.as_deref()),
        ));
        let utf8: ArrayRef = Arc::new(StringArray::from_iter(values.iter().map(|v| v.as_deref())));
        for column in [view, utf8] {
            let mut codes = Vec::new();
            let strings = push_codes(&column, &mut codes).unwrap();
            let back: Vec<Option<&str>> = codes
                .iter()
                .map(|&c| (c != 0).then(|| strings[c as usize - 1]))
                .collect();
            assert_eq!(
                back,
                values.iter().map(|v| v.as_deref()).collect::<Vec<_>>()
            );
            // Past the sample nothing is looked up: the repeats got codes of their own.
            assert_eq!(strings.len(), 3002, "{}", column.data_type());
        }
        // A column that repeats within the sample keeps sharing codes past it.
        let repeated: ArrayRef = Arc::new(StringViewArray::from_iter_values(
            (0..5000).map(|i| format!("s{}", i % 300)),
        ));
        let mut codes = Vec::new();
        assert_eq!(push_codes(&repeated, &mut codes).unwrap().len(), 300);
        assert_eq!(codes[4999], codes[4999 - 300]);
    }

    #[test]
    fn other_types_stay_json_rows() {
        let schema = Arc::new(Schema::new(vec![Field::new("f", DataType::Float32, true)]));
        let batch =
            RecordBatch::try_new(schema, vec![Arc::new(Float32Array::from(vec![0.1f32]))]).unwrap();
        let mut planes = RowPlanes::default();
        assert_eq!(encode_row_columns(&batch, &mut planes).unwrap(), None);
        assert!(planes.is_empty());
    }
}
