//! Results out as Arrow IPC, for queries created with `output: "arrow"`.
//!
//! Each delivery is a self-contained Arrow IPC *stream* (schema message,
//! one record batch, end-of-stream marker) that apache-arrow's
//! `tableFromIPC` and every other Arrow reader take as is. Column types are
//! the query's result types unchanged: timestamps keep their unit.

use arrow::compute::concat_batches;
use arrow::ipc::writer::StreamWriter;
use arrow::record_batch::RecordBatch;

use crate::err;
use crate::error::Result;

/// Encodes batches of one schema as an Arrow IPC stream holding them as one
/// batch. Errors on an empty list or batches of different schemas.
pub fn encode_ipc_stream(batches: &[&RecordBatch]) -> Result<Vec<u8>> {
    let first = batches
        .first()
        .ok_or_else(|| err!(Internal, "an Arrow delivery needs at least one batch"))?;
    let schema = first.schema();
    let merged;
    let batch = if batches.len() == 1 {
        *first
    } else {
        merged = concat_batches(&schema, batches.iter().copied())?;
        &merged
    };
    let mut out = Vec::new();
    let mut writer = StreamWriter::try_new(&mut out, &schema)?;
    writer.write(batch)?;
    writer.finish()?;
    drop(writer);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use std::io::Cursor;
    use std::sync::Arc;

    use arrow::array::{Int64Array, StringArray};
    use arrow::datatypes::{DataType, Field, Schema};
    use arrow::ipc::reader::StreamReader;

    use super::*;

    #[test]
    fn several_batches_become_one_readable_batch() {
        let schema = Arc::new(Schema::new(vec![
            Field::new("k", DataType::Utf8, true),
            Field::new("n", DataType::Int64, false),
        ]));
        let batch = |k: &str, n: i64| {
            RecordBatch::try_new(
                Arc::clone(&schema),
                vec![
                    Arc::new(StringArray::from(vec![k])),
                    Arc::new(Int64Array::from(vec![n])),
                ],
            )
            .unwrap()
        };
        let (a, b) = (batch("a", 1), batch("b", 2));
        let bytes = encode_ipc_stream(&[&a, &b]).unwrap();
        let read: Vec<RecordBatch> = StreamReader::try_new(Cursor::new(bytes), None)
            .unwrap()
            .collect::<std::result::Result<_, _>>()
            .unwrap();
        assert_eq!(read.len(), 1);
        assert_eq!(read[0], concat_batches(&schema, [&a, &b]).unwrap());
        assert!(encode_ipc_stream(&[]).is_err());
    }
}
