//! Operator state as data: what a checkpoint holds for each operator, and
//! the helpers that move DataFusion accumulator state in and out of Arrow.
//!
//! Every stateful operator turns its state into an [`OperatorState`]: a
//! small JSON document (watermarks, counters, ids) and at most one Arrow
//! batch (group keys plus DataFusion `state()` columns, one row per group).
//! Restoring merges those state columns into fresh accumulators with
//! `merge_batch`, so a restored operator is indistinguishable from the
//! original.

pub mod checkpoint;

use std::io::Cursor;
use std::sync::Arc;

use arrow::array::{new_empty_array, ArrayRef};
use arrow::datatypes::{Field, Schema, SchemaRef};
use arrow::ipc::reader::StreamReader;
use arrow::ipc::writer::StreamWriter;
use arrow::record_batch::RecordBatch;
use datafusion::common::ScalarValue;

use crate::err;
use crate::error::Result;

/// One operator's state: a JSON document and, optionally, an Arrow batch.
#[derive(Debug, Clone)]
pub struct OperatorState {
    /// Scalars: watermarks, counters, ids.
    pub meta: serde_json::Value,
    /// Per-group state, if the operator holds groups.
    pub batch: Option<RecordBatch>,
}

/// Writes a batch as an Arrow IPC stream.
pub fn write_ipc(batch: &RecordBatch) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    let mut writer = StreamWriter::try_new(&mut out, &batch.schema())?;
    writer.write(batch)?;
    writer.finish()?;
    drop(writer);
    Ok(out)
}

/// Reads the single batch of an Arrow IPC stream.
pub fn read_ipc(bytes: &[u8]) -> Result<RecordBatch> {
    let reader = StreamReader::try_new(Cursor::new(bytes), None)
        .map_err(|e| err!(CorruptCheckpoint, "state blob is not Arrow IPC: {e}"))?;
    let schema = reader.schema();
    let mut batches = reader
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(|e| err!(CorruptCheckpoint, "state blob is not Arrow IPC: {e}"))?;
    // One batch (the usual case) as it is: concatenating copies it.
    if batches.len() == 1 {
        return Ok(batches.remove(0));
    }
    Ok(arrow::compute::concat_batches(&schema, &batches)?)
}

/// Builds columns from rows of scalars, typed by `fields` (so zero rows work).
pub fn columns_from_rows(fields: &[Field], rows: &[Vec<ScalarValue>]) -> Result<Vec<ArrayRef>> {
    (0..fields.len())
        .map(|i| {
            if rows.is_empty() {
                return Ok(new_empty_array(fields[i].data_type()));
            }
            let array = ScalarValue::iter_to_array(rows.iter().map(|r| r[i].clone()))?;
            // Empty states (e.g. a null sum) may come back as the Null type.
            if array.data_type() != fields[i].data_type() {
                return Ok(arrow::compute::cast(&array, fields[i].data_type())?);
            }
            Ok(array)
        })
        .collect()
}

/// A batch of `columns` under `fields`, all nullable.
pub fn batch(fields: Vec<Field>, columns: Vec<ArrayRef>, rows: usize) -> Result<RecordBatch> {
    let schema: SchemaRef = Arc::new(Schema::new(fields));
    let options = arrow::record_batch::RecordBatchOptions::new().with_row_count(Some(rows));
    Ok(RecordBatch::try_new_with_options(
        schema, columns, &options,
    )?)
}

/// Checks that a restored batch has the columns this operator writes.
pub fn expect_schema(batch: &RecordBatch, fields: &[Field], what: &str) -> Result<()> {
    let found: Vec<(&str, &arrow::datatypes::DataType)> = batch
        .schema_ref()
        .fields()
        .iter()
        .map(|f| (f.name().as_str(), f.data_type()))
        .collect();
    let wanted: Vec<(&str, &arrow::datatypes::DataType)> = fields
        .iter()
        .map(|f| (f.name().as_str(), f.data_type()))
        .collect();
    if found != wanted {
        return Err(err!(
            CheckpointMismatch,
            "the checkpoint's state for {what} has columns {found:?}, this query expects {wanted:?}"
        ));
    }
    Ok(())
}

/// Reads an integer from a state document.
pub fn meta_i64(meta: &serde_json::Value, key: &str) -> Result<i64> {
    meta.get(key)
        .and_then(serde_json::Value::as_i64)
        .ok_or_else(|| err!(CorruptCheckpoint, "operator state lacks '{key}'"))
}

/// Reads an optional integer from a state document.
pub fn meta_opt_i64(meta: &serde_json::Value, key: &str) -> Option<i64> {
    meta.get(key).and_then(serde_json::Value::as_i64)
}
