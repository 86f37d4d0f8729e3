//! What both join operators read from their inputs' rows: each row's event
//! time, its join key in arrow's row format, and stored rows gathered back
//! out of the batches they arrived in.

use arrow::array::{Array, ArrayRef, Int64Array};
use arrow::compute::interleave;
use arrow::datatypes::{DataType, SchemaRef};
use arrow::record_batch::RecordBatch;
use arrow::row::{RowConverter, Rows, SortField};
use datafusion::physical_expr::expressions::Column;
use datafusion::physical_expr::PhysicalExprRef;
use datafusion::physical_plan::joins::utils::JoinFilter;

use super::graph::Rows as InputRows;
use crate::err;
use crate::error::Result;
use crate::time::EventTime;

/// Where a side's event time is: a column holding `time + offset`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimeSource {
    /// Column of the side's input.
    pub column: usize,
    /// What the column adds to the event time, in ticks.
    pub offset: i64,
}

/// Event time of each row (NULL: the earliest time, so late everywhere).
pub fn event_times(source: TimeSource, batch: &RecordBatch) -> Result<Vec<EventTime>> {
    let column = batch
        .columns()
        .get(source.column)
        .ok_or_else(|| err!(Internal, "join time column {} missing", source.column))?;
    let values = crate::codec::time_values::to_type(column, &DataType::Int64)?;
    let values = values
        .as_any()
        .downcast_ref::<Int64Array>()
        .ok_or_else(|| err!(Internal, "event times are not 64-bit"))?;
    Ok((0..values.len())
        .map(|i| {
            if values.is_null(i) {
                EventTime::MIN
            } else {
                values.value(i).saturating_sub(source.offset)
            }
        })
        .collect())
}

/// One converter for both sides' keys (DataFusion gave them one type);
/// `None` without keys.
pub fn key_converter(
    keys: &[Vec<PhysicalExprRef>; 2],
    schemas: &[SchemaRef; 2],
) -> Result<Option<RowConverter>> {
    let [left, right] = keys;
    if left.len() != right.len() {
        return Err(err!(Internal, "join keys differ in number"));
    }
    if left.is_empty() {
        return Ok(None);
    }
    let mut fields = Vec::new();
    for (l, r) in left.iter().zip(right) {
        let (lt, rt) = (l.data_type(&schemas[0])?, r.data_type(&schemas[1])?);
        if lt != rt {
            return Err(err!(
                Unsupported,
                "join keys of different types ({lt} and {rt}): cast one side to the other's type"
            ));
        }
        fields.push(SortField::new(lt));
    }
    Ok(Some(RowConverter::new(fields)?))
}

/// Each row's key in row format (`None` without keys), and whether it can
/// match: a NULL in a key matches nothing unless `nulls_equal`.
pub fn key_rows(
    converter: Option<&RowConverter>,
    keys: &[PhysicalExprRef],
    batch: &RecordBatch,
    nulls_equal: bool,
) -> Result<(Option<Rows>, Vec<bool>)> {
    let rows = batch.num_rows();
    let Some(converter) = converter else {
        return Ok((None, vec![true; rows]));
    };
    let arrays = keys
        .iter()
        .map(|e| super::evaluate(e.as_ref(), batch))
        .collect::<Result<Vec<_>>>()?;
    let mut usable = vec![true; rows];
    if !nulls_equal {
        for array in &arrays {
            if let Some(nulls) = array.logical_nulls() {
                for (i, valid) in nulls.iter().enumerate() {
                    usable[i] &= valid;
                }
            }
        }
    }
    Ok((Some(converter.convert_columns(&arrays)?), usable))
}

/// Whether a join can fail at run time: only by evaluating its residual
/// condition or computed keys (it changes its state after those).
pub fn may_fail(filter: Option<&JoinFilter>, keys: &[Vec<PhysicalExprRef>; 2]) -> bool {
    filter.is_some()
        || keys
            .iter()
            .flatten()
            .any(|k| k.downcast_ref::<Column>().is_none())
}

/// Column `column` of stored rows, each at (batch, row) of `batches`.
pub fn stored_column(
    batches: &[RecordBatch],
    column: usize,
    at: &[(usize, usize)],
) -> Result<ArrayRef> {
    let arrays: Vec<&dyn Array> = batches.iter().map(|b| b.column(column).as_ref()).collect();
    Ok(interleave(&arrays, at)?)
}

/// A self-join (`s AS x JOIN s AS y`) sees each pushed row on both inputs:
/// a row late on both is counted, and handed back, once. Keeps the pushed
/// batch itself (not its address), so a later push cannot look the same.
#[derive(Debug, Clone, Default)]
pub struct LateOnce {
    seen: Option<(RecordBatch, Vec<u32>)>,
}

impl LateOnce {
    /// Of `late` (positions in `rows`), those not already reported through
    /// the other input for the same pushed rows.
    pub fn unseen(&self, rows: &InputRows, late: &[u32]) -> Vec<u32> {
        let (Some(origin), Some((batch, seen))) = (&rows.origin, &self.seen) else {
            return late.to_vec();
        };
        if !same_batch(&origin.batch, batch) {
            return late.to_vec();
        }
        late.iter()
            .copied()
            .filter(|&i| seen.binary_search(&origin.rows.value(i as usize)).is_err())
            .collect()
    }

    /// `late` (positions in `rows`) have been reported.
    pub fn remember(&mut self, rows: &InputRows, late: &[u32]) {
        self.seen = rows.origin.as_ref().map(|origin| {
            let mut positions: Vec<u32> = late
                .iter()
                .map(|&i| origin.rows.value(i as usize))
                .collect();
            positions.sort_unstable();
            (origin.batch.clone(), positions)
        });
    }
}

fn same_batch(a: &RecordBatch, b: &RecordBatch) -> bool {
    a.num_rows() == b.num_rows()
        && a.num_columns() > 0
        && a.num_columns() == b.num_columns()
        && std::sync::Arc::ptr_eq(a.column(0), b.column(0))
}
