//! JSON in and out.
//!
//! In: NDJSON text decoded with arrow-json against the stream's schema, so
//! text never becomes JavaScript objects. Numbers in timestamp fields are
//! epoch milliseconds (JavaScript's `Date.now()`); strings are ISO-8601.
//!
//! Out: result rows as a JSON array of objects, timestamps as epoch
//! milliseconds, nulls written explicitly.

use std::fmt::Write as _;
use std::sync::Arc;

use arrow::array::ArrayRef;
use arrow::compute::{cast, concat_batches};
use arrow::datatypes::{DataType, Field, Schema, TimeUnit};
use arrow::json::reader::ReaderBuilder;
use arrow::json::writer::{JsonArray, WriterBuilder};
use arrow::record_batch::RecordBatch;

use super::flat_json::decode_flat_ndjson;
use super::time_values::to_type;
pub use super::time_values::{decoding_schema, timestamp_string_millis};
use crate::err;
use crate::error::Result;
use crate::metrics::QueryMetrics;

/// Longest decoder message kept: arrow-json quotes the rest of the input,
/// which for a large push would make a megabyte error.
const MAX_ERROR_CHARS: usize = 300;

/// `text` cut to `max` characters, marked when cut.
fn clip(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        Some((end, _)) => format!("{}…", &text[..end]),
        None => text.to_string(),
    }
}

/// Rows per decoded batch before concatenation.
const DECODE_BATCH_ROWS: usize = 8192;

/// Rewrites a JSON array of objects (`[{...}, {...}]`, pretty-printed or
/// not) as NDJSON with one element per line, so the streaming decoder and
/// per-line bad-row reporting apply unchanged (row `i` is element `i`).
/// Returns `None` when `text` is not an array. Unbalanced input is left for
/// the decoder to reject.
pub fn array_to_ndjson(text: &str) -> Option<String> {
    let body = text.trim_start();
    if !body.starts_with('[') {
        return None;
    }
    let mut out = String::with_capacity(body.len());
    let mut depth = 0usize;
    let mut in_string = false;
    let mut escaped = false;
    for c in body.chars() {
        if in_string {
            out.push(c);
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == '"' {
                in_string = false;
            }
            continue;
        }
        match c {
            '"' => {
                in_string = true;
                out.push(c);
            }
            '[' | '{' => {
                depth += 1;
                out.push(if depth == 1 { ' ' } else { c });
            }
            ']' | '}' => {
                out.push(if depth == 1 { ' ' } else { c });
                depth = depth.saturating_sub(1);
            }
            ',' if depth == 1 => out.push('\n'),
            // Newlines inside an element would split it into two rows.
            '\n' | '\r' => out.push(' '),
            _ => out.push(c),
        }
    }
    Some(out)
}

/// Decodes newline-delimited JSON objects (whitespace between objects is
/// enough) into one batch in `decoding_schema(schema)`: flat objects on the
/// fast path ([`super::flat_json`]), anything else with arrow-json.
pub fn decode_ndjson(schema: &Schema, text: &str) -> Result<RecordBatch> {
    match decode_flat_ndjson(schema, text) {
        Some(batch) => Ok(batch),
        None => decode_ndjson_with_arrow(schema, text),
    }
}

/// [`decode_ndjson`] by arrow-json alone: the reference the fast path is
/// tested against, and the decoder of everything it leaves.
pub fn decode_ndjson_with_arrow(schema: &Schema, text: &str) -> Result<RecordBatch> {
    let target = decoding_schema(schema);
    let invalid = |e: arrow::error::ArrowError| {
        err!(
            InvalidInput,
            "invalid JSON input: {}",
            clip(&e.to_string(), MAX_ERROR_CHARS)
        )
    };
    let mut decoder = ReaderBuilder::new(Arc::clone(&target))
        .with_batch_size(DECODE_BATCH_ROWS)
        .build_decoder()
        .map_err(invalid)?;
    let mut bytes = text.as_bytes();
    let mut batches = Vec::new();
    while !bytes.is_empty() {
        let consumed = decoder.decode(bytes).map_err(invalid)?;
        bytes = &bytes[consumed..];
        if !bytes.is_empty() {
            // The decoder stops when a batch is full: flush it and go on.
            match decoder.flush().map_err(invalid)? {
                Some(batch) => batches.push(batch),
                None if consumed == 0 => {
                    return Err(err!(
                        InvalidInput,
                        "invalid JSON input: the decoder made no progress"
                    ))
                }
                None => {}
            }
        }
    }
    if let Some(batch) = decoder.flush().map_err(invalid)? {
        batches.push(batch);
    }
    Ok(concat_batches(&target, &batches)?)
}

/// Encodes rows as a JSON array of objects.
pub fn encode_rows(batch: &RecordBatch) -> Result<String> {
    let batch = timestamps_to_millis(batch)?;
    let mut writer = WriterBuilder::new()
        .with_explicit_nulls(true)
        .build::<_, JsonArray>(Vec::new());
    writer.write(&batch)?;
    writer.finish()?;
    String::from_utf8(writer.into_inner())
        .map_err(|e| err!(Internal, "JSON writer produced invalid UTF-8: {e}"))
}

/// Encodes several outputs as `[{"query": id, "late": false, "rows": [...]}, ...]`;
/// `late` marks late input rows handed back by a side output.
pub fn encode_outputs<'a>(
    outputs: impl IntoIterator<Item = (u32, bool, &'a RecordBatch)>,
) -> Result<String> {
    let mut out = String::from("[");
    for (i, (query, late, batch)) in outputs.into_iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        let _ = write!(out, "{{\"query\":{query},\"late\":{late},\"rows\":");
        out.push_str(&encode_rows(batch)?);
        out.push('}');
    }
    out.push(']');
    Ok(out)
}

/// Encodes a query's counters as a JSON object with camelCase keys.
pub fn encode_metrics(metrics: &QueryMetrics) -> String {
    let watermark = metrics
        .watermark_millis
        .map_or_else(|| "null".to_string(), |w| w.to_string());
    let side = |s: &crate::metrics::JoinSideMetrics| {
        format!(
            "{{\"rowsIn\":{},\"lateRowsDropped\":{},\"rowsHeld\":{}}}",
            s.rows_in, s.late_rows_dropped, s.rows_held
        )
    };
    let joins: Vec<String> = metrics
        .joins
        .iter()
        .map(|j| {
            format!(
                "{{\"left\":{},\"right\":{}}}",
                side(&j.left),
                side(&j.right)
            )
        })
        .collect();
    let lookups: Vec<String> = metrics
        .lookups
        .iter()
        .map(|l| {
            format!(
                "{{\"table\":{},\"rowsIn\":{},\"rowsMatched\":{}}}",
                serde_json::Value::String(l.table.clone()),
                l.rows_in,
                l.rows_matched
            )
        })
        .collect();
    format!(
        "{{\"eventsIn\":{},\"badRows\":{},\"lateEventsDropped\":{},\"watermark\":{watermark},\"finished\":{},\"openWindows\":{},\"windowsEmitted\":{},\"stateBytes\":{},\"joins\":[{}],\"lookups\":[{}]}}",
        metrics.events_in,
        metrics.bad_rows,
        metrics.late_events_dropped,
        metrics.finished,
        metrics.open_windows,
        metrics.windows_emitted,
        metrics.state_bytes,
        joins.join(","),
        lookups.join(",")
    )
}

/// A timestamp column as epoch-millisecond Int64 values (any other column
/// as it is): how results show times to JavaScript.
pub fn timestamp_millis_column(column: &ArrayRef) -> Result<ArrayRef> {
    let DataType::Timestamp(unit, zone) = column.data_type() else {
        return Ok(Arc::clone(column));
    };
    let millis = if *unit == TimeUnit::Millisecond {
        Arc::clone(column)
    } else {
        cast(
            column,
            &DataType::Timestamp(TimeUnit::Millisecond, zone.clone()),
        )?
    };
    to_type(&millis, &DataType::Int64)
}

/// Timestamps become epoch-millisecond integers, the JavaScript convention.
fn timestamps_to_millis(batch: &RecordBatch) -> Result<RecordBatch> {
    let schema = batch.schema();
    if !schema
        .fields()
        .iter()
        .any(|f| matches!(f.data_type(), DataType::Timestamp(..)))
    {
        return Ok(batch.clone());
    }
    let mut fields = Vec::with_capacity(schema.fields().len());
    let mut columns: Vec<ArrayRef> = Vec::with_capacity(schema.fields().len());
    for (field, column) in schema.fields().iter().zip(batch.columns()) {
        if matches!(field.data_type(), DataType::Timestamp(..)) {
            columns.push(timestamp_millis_column(column)?);
            fields.push(Field::new(
                field.name(),
                DataType::Int64,
                field.is_nullable(),
            ));
        } else {
            columns.push(Arc::clone(column));
            fields.push(field.as_ref().clone());
        }
    }
    Ok(RecordBatch::try_new(
        Arc::new(Schema::new(fields)),
        columns,
    )?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{AsArray, Float64Array, Int64Array};
    use arrow::datatypes::{Float64Type, TimestampMillisecondType};

    fn schema() -> Schema {
        Schema::new(vec![
            Field::new("symbol", DataType::Utf8, true),
            Field::new("price", DataType::Float64, true),
            Field::new("ts", DataType::Timestamp(TimeUnit::Nanosecond, None), true),
        ])
    }

    #[test]
    fn decodes_numbers_as_epoch_millis_and_strings_as_iso() {
        let batch = decode_ndjson(
            &schema(),
            "{\"symbol\":\"A\",\"price\":1.5,\"ts\":1700000000000}\n{\"symbol\":\"B\",\"price\":2,\"ts\":\"2023-11-14T22:13:20.001Z\",\"extra\":true}",
        )
        .unwrap();
        assert_eq!(batch.num_rows(), 2);
        let ts = batch.column(2).as_primitive::<TimestampMillisecondType>();
        assert_eq!(ts.value(0), 1_700_000_000_000);
        assert_eq!(ts.value(1), 1_700_000_000_001);
        assert_eq!(batch.column(1).as_primitive::<Float64Type>().value(1), 2.0);
    }

    #[test]
    fn decodes_many_batches_worth_of_rows() {
        let text: String = (0..20_000)
            .map(|i| format!("{{\"price\":{i},\"ts\":{i}}}\n"))
            .collect();
        let batch = decode_ndjson(&schema(), &text).unwrap();
        assert_eq!(batch.num_rows(), 20_000);
        assert_eq!(
            batch.column(1).as_primitive::<Float64Type>().value(19_999),
            19_999.0
        );
    }

    #[test]
    fn malformed_and_mistyped_json_are_invalid_input() {
        for text in [
            "{\"price\": 1.5",
            "{\"price\": \"abc\", \"ts\": 1}",
            "{\"ts\": true}",
            "[1,2]",
        ] {
            let error = decode_ndjson(&schema(), text).unwrap_err();
            assert_eq!(
                error.code(),
                crate::error::ErrorCode::InvalidInput,
                "{text}: {error}"
            );
        }
    }

    #[test]
    fn encodes_rows_with_millisecond_timestamps_and_nulls() {
        let schema = Arc::new(Schema::new(vec![
            Field::new("n", DataType::Int64, false),
            Field::new("avg", DataType::Float64, true),
            Field::new("ws", DataType::Timestamp(TimeUnit::Nanosecond, None), true),
        ]));
        let ws = cast(
            &Int64Array::from(vec![60_000_000_000i64, 0]),
            &DataType::Timestamp(TimeUnit::Nanosecond, None),
        )
        .unwrap();
        let batch = RecordBatch::try_new(
            schema,
            vec![
                Arc::new(Int64Array::from(vec![3, 4])),
                Arc::new(Float64Array::from(vec![Some(1.5), None])),
                ws,
            ],
        )
        .unwrap();
        assert_eq!(
            encode_rows(&batch).unwrap(),
            r#"[{"n":3,"avg":1.5,"ws":60000},{"n":4,"avg":null,"ws":0}]"#
        );
        assert_eq!(
            encode_outputs([(7, false, &batch)]).unwrap(),
            r#"[{"query":7,"late":false,"rows":[{"n":3,"avg":1.5,"ws":60000},{"n":4,"avg":null,"ws":0}]}]"#
        );
    }
}
