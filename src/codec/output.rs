//! Results out of one engine call, per query in the format it asked for:
//! rows as JSON (the default) or Arrow IPC bytes.
//!
//! The call's answer is one JSON array of deliveries, in the order queries
//! first emitted. Row queries keep one entry per emitted batch,
//! `{"query": id, "late": false, "rows": [...]}`; Arrow queries get one entry
//! per query and kind (results or late rows), `{"query": id, "late": false,
//! "arrow": k}`, where `k` numbers an IPC buffer handed over beside the JSON
//! (bytes never travel inside text). With `planes`, row batches whose
//! columns allow it go column-wise instead of as JSON rows,
//! `{"query": id, "late": false, "columns": {...}}` (see
//! [`super::row_columns`]).

use std::fmt::Write as _;

use arrow::record_batch::RecordBatch;

use super::ipc::encode_ipc_stream;
use super::json::encode_rows;
use super::row_columns::{encode_row_columns, RowPlanes};
use crate::error::Result;

/// How a query's results leave the engine.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum OutputFormat {
    /// JSON rows, timestamps as epoch milliseconds (the default).
    #[default]
    Rows,
    /// One Arrow IPC stream per delivery, result types unchanged.
    Arrow,
}

/// The encoded results of one engine call.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EncodedOutputs {
    /// The deliveries as a JSON array (see the module docs).
    pub json: String,
    /// Arrow IPC streams; entry `k` of the JSON refers to `arrow[k - arrow_base]`.
    pub arrow: Vec<Vec<u8>>,
}

/// Encodes `(query, late, batch)` outputs; `format` tells each query's
/// format, and Arrow buffers are numbered from `arrow_base` (so several
/// calls can share one list of pending buffers). Row batches go
/// column-wise into `planes` when given (and their types allow).
pub fn encode_deliveries<'a>(
    outputs: impl IntoIterator<Item = (u32, bool, &'a RecordBatch)>,
    format: impl Fn(u32) -> OutputFormat,
    arrow_base: usize,
    mut planes: Option<&mut RowPlanes>,
) -> Result<EncodedOutputs> {
    enum Entry<'a> {
        Rows(u32, bool, &'a RecordBatch),
        Arrow(u32, bool, usize),
    }
    let mut entries = Vec::new();
    let mut groups: Vec<((u32, bool), Vec<&RecordBatch>)> = Vec::new();
    for (query, late, batch) in outputs {
        match format(query) {
            OutputFormat::Rows => entries.push(Entry::Rows(query, late, batch)),
            OutputFormat::Arrow => match groups.iter_mut().find(|(key, _)| *key == (query, late)) {
                Some((_, batches)) => batches.push(batch),
                None => {
                    entries.push(Entry::Arrow(query, late, groups.len()));
                    groups.push(((query, late), vec![batch]));
                }
            },
        }
    }
    let mut json = String::from("[");
    for (i, entry) in entries.iter().enumerate() {
        if i > 0 {
            json.push(',');
        }
        match entry {
            Entry::Rows(query, late, batch) => {
                let columns = match planes.as_deref_mut() {
                    Some(planes) => encode_row_columns(batch, planes)?,
                    None => None,
                };
                let _ = write!(json, "{{\"query\":{query},\"late\":{late},");
                match columns {
                    Some(columns) => {
                        json.push_str("\"columns\":");
                        json.push_str(&columns);
                    }
                    None => {
                        json.push_str("\"rows\":");
                        json.push_str(&encode_rows(batch)?);
                    }
                }
                json.push('}');
            }
            Entry::Arrow(query, late, group) => {
                let index = arrow_base + group;
                let _ = write!(
                    json,
                    "{{\"query\":{query},\"late\":{late},\"arrow\":{index}}}"
                );
            }
        }
    }
    json.push(']');
    let arrow = groups
        .iter()
        .map(|(_, batches)| encode_ipc_stream(batches))
        .collect::<Result<Vec<_>>>()?;
    Ok(EncodedOutputs { json, arrow })
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow::array::Int64Array;
    use arrow::datatypes::{DataType, Field, Schema};

    use super::*;
    use crate::codec::json::encode_outputs;

    fn batch(n: i64) -> RecordBatch {
        let schema = Arc::new(Schema::new(vec![Field::new("n", DataType::Int64, false)]));
        RecordBatch::try_new(schema, vec![Arc::new(Int64Array::from(vec![n]))]).unwrap()
    }

    #[test]
    fn rows_only_equals_the_json_encoding() {
        let (a, b) = (batch(1), batch(2));
        let outputs = [(0, false, &a), (1, true, &b)];
        let encoded = encode_deliveries(outputs, |_| OutputFormat::Rows, 0, None).unwrap();
        assert_eq!(encoded.json, encode_outputs(outputs).unwrap());
        assert!(encoded.arrow.is_empty());
    }

    #[test]
    fn arrow_queries_get_one_buffer_per_query_and_kind_in_first_emission_order() {
        let (a, b, c, d) = (batch(1), batch(2), batch(3), batch(4));
        let outputs = [
            (1, false, &a),
            (0, false, &b),
            (1, false, &c),
            (1, true, &d),
        ];
        let format = |q| {
            if q == 1 {
                OutputFormat::Arrow
            } else {
                OutputFormat::Rows
            }
        };
        let encoded = encode_deliveries(outputs, format, 5, None).unwrap();
        assert_eq!(
            encoded.json,
            r#"[{"query":1,"late":false,"arrow":5},{"query":0,"late":false,"rows":[{"n":2}]},{"query":1,"late":true,"arrow":6}]"#
        );
        assert_eq!(encoded.arrow.len(), 2);
        assert_eq!(encoded.arrow[0], encode_ipc_stream(&[&a, &c]).unwrap());
    }
}
