//! A two-input operator's rows in a checkpoint: each side's rows in its
//! input schema with an event time and a flag per row, put in one Arrow
//! batch (`__side`, `__time`, `__flag`, then the left side's columns, then
//! the right side's; each side's columns are NULL on the other side's
//! rows), with per-side counters in the JSON part.

use std::sync::Arc;

use arrow::array::{
    new_empty_array, new_null_array, Array, ArrayRef, AsArray, BooleanArray, Int64Array, UInt8Array,
};
use arrow::compute::concat;
use arrow::datatypes::{DataType, Field, Int64Type, Schema, SchemaRef};
use arrow::record_batch::{RecordBatch, RecordBatchOptions};

use crate::err;
use crate::error::Result;
use crate::state::OperatorState;
use crate::time::EventTime;

/// One side's rows as a checkpoint holds them.
#[derive(Debug, Clone)]
pub struct SideRows {
    /// The rows, in the side's input schema.
    pub batch: RecordBatch,
    /// Each row's event time.
    pub times: Vec<EventTime>,
    /// Each row's flag (the operator's meaning: matched, say).
    pub flags: Vec<bool>,
    /// Rows that reached the operator on this side.
    pub rows_in: u64,
    /// Of those, rows dropped as late.
    pub late: u64,
}

impl SideRows {
    /// No rows, in `schema`.
    pub fn empty(schema: &SchemaRef) -> Self {
        let columns = schema
            .fields()
            .iter()
            .map(|f| new_empty_array(f.data_type()))
            .collect();
        Self {
            batch: RecordBatch::try_new_with_options(
                Arc::clone(schema),
                columns,
                &RecordBatchOptions::new().with_row_count(Some(0)),
            )
            .unwrap_or_else(|_| RecordBatch::new_empty(Arc::clone(schema))),
            times: Vec::new(),
            flags: Vec::new(),
            rows_in: 0,
            late: 0,
        }
    }
}

const FIXED: usize = 3;

/// An estimate of one row's bytes in `schema`: fixed-width values at their
/// width, others at 16. It depends on the rows held only, not on how they
/// are laid out in batches, so a restored join reports what the original
/// did.
pub fn row_bytes(schema: &SchemaRef) -> usize {
    schema
        .fields()
        .iter()
        .map(|f| f.data_type().primitive_width().unwrap_or(16) + 1)
        .sum()
}

/// Both sides' rows as one operator state.
pub fn encode(sides: [SideRows; 2]) -> Result<OperatorState> {
    let counts = [sides[0].times.len(), sides[1].times.len()];
    let mut fields = vec![
        Field::new("__side", DataType::UInt8, false),
        Field::new("__time", DataType::Int64, false),
        Field::new("__flag", DataType::Boolean, false),
    ];
    let mut columns: Vec<ArrayRef> = vec![
        Arc::new(UInt8Array::from_iter_values(
            std::iter::repeat_n(0, counts[0]).chain(std::iter::repeat_n(1, counts[1])),
        )),
        Arc::new(Int64Array::from_iter_values(
            sides[0].times.iter().chain(&sides[1].times).copied(),
        )),
        Arc::new(BooleanArray::from_iter(
            sides[0]
                .flags
                .iter()
                .chain(&sides[1].flags)
                .map(|f| Some(*f)),
        )),
    ];
    for (side, rows) in sides.iter().enumerate() {
        if rows.batch.num_rows() != counts[side] || rows.flags.len() != counts[side] {
            return Err(err!(Internal, "join state rows and times differ in number"));
        }
        for (column, field) in rows.batch.schema().fields().iter().enumerate() {
            let own = rows.batch.column(column);
            let before = new_null_array(field.data_type(), if side == 0 { 0 } else { counts[0] });
            let after = new_null_array(field.data_type(), if side == 0 { counts[1] } else { 0 });
            columns.push(concat(&[before.as_ref(), own.as_ref(), after.as_ref()])?);
            fields.push(Field::new(
                format!("{}.{}", ["left", "right"][side], field.name()),
                field.data_type().clone(),
                true,
            ));
        }
    }
    let options = RecordBatchOptions::new().with_row_count(Some(counts[0] + counts[1]));
    let batch =
        RecordBatch::try_new_with_options(Arc::new(Schema::new(fields)), columns, &options)?;
    Ok(OperatorState {
        meta: serde_json::json!({
            "rows": counts,
            "rows_in": [sides[0].rows_in, sides[1].rows_in],
            "late": [sides[0].late, sides[1].late],
        }),
        batch: Some(batch),
    })
}

/// Both sides' rows back from `state`, checked against the sides' input
/// `schemas`; `what` names the operator in errors.
pub fn decode(
    state: &OperatorState,
    schemas: &[SchemaRef; 2],
    what: &str,
) -> Result<[SideRows; 2]> {
    let corrupt = |problem: &str| err!(CorruptCheckpoint, "{what} state: {problem}");
    let pair = |name: &str| -> Result<[u64; 2]> {
        let values = state.meta.get(name).and_then(|v| v.as_array());
        match values.map(|v| v.iter().map(|x| x.as_u64()).collect::<Vec<_>>()) {
            Some(v) if v.len() == 2 => match (v[0], v[1]) {
                (Some(a), Some(b)) => Ok([a, b]),
                _ => Err(corrupt(&format!("bad {name}"))),
            },
            _ => Err(corrupt(&format!("no {name}"))),
        }
    };
    let counts = pair("rows")?;
    let (rows_in, late) = (pair("rows_in")?, pair("late")?);
    let batch = state.batch.as_ref().ok_or_else(|| corrupt("no rows"))?;
    let widths = [schemas[0].fields().len(), schemas[1].fields().len()];
    if batch.num_columns() != FIXED + widths[0] + widths[1] {
        return Err(err!(
            CheckpointMismatch,
            "the checkpoint's {what} state has {} columns, not {}",
            batch.num_columns(),
            FIXED + widths[0] + widths[1]
        ));
    }
    let total = usize::try_from(counts[0].saturating_add(counts[1]))
        .map_err(|_| corrupt("row counts too large"))?;
    if total != batch.num_rows() {
        return Err(corrupt("row counts do not add up"));
    }
    let times = batch
        .column(1)
        .as_primitive_opt::<Int64Type>()
        .filter(|t| t.null_count() == 0)
        .ok_or_else(|| corrupt("times are not 64-bit values"))?;
    let flags = batch
        .column(2)
        .as_boolean_opt()
        .filter(|f| f.null_count() == 0)
        .ok_or_else(|| corrupt("flags are not booleans"))?;
    let mut start = 0usize;
    let mut first_column = FIXED;
    let mut out = Vec::with_capacity(2);
    for side in 0..2 {
        let count = counts[side] as usize;
        let schema = &schemas[side];
        let columns = (0..widths[side])
            .map(|c| {
                let column = batch.column(first_column + c).slice(start, count);
                let field = schema.field(c);
                if column.data_type() != field.data_type()
                    || (!field.is_nullable() && column.null_count() > 0)
                {
                    return Err(err!(
                        CheckpointMismatch,
                        "the checkpoint's {what} column {} does not fit this query's ({})",
                        field.name(),
                        field.data_type()
                    ));
                }
                Ok(column)
            })
            .collect::<Result<Vec<_>>>()?;
        let options = RecordBatchOptions::new().with_row_count(Some(count));
        out.push(SideRows {
            batch: RecordBatch::try_new_with_options(Arc::clone(schema), columns, &options)?,
            times: (start..start + count).map(|i| times.value(i)).collect(),
            flags: (start..start + count).map(|i| flags.value(i)).collect(),
            rows_in: rows_in[side],
            late: late[side],
        });
        start += count;
        first_column += widths[side];
    }
    let right = out.pop().ok_or_else(|| corrupt("no right side"))?;
    let left = out.pop().ok_or_else(|| corrupt("no left side"))?;
    Ok([left, right])
}
