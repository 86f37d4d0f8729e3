//! Streaming operators: push-based, synchronous, single-threaded.
//!
//! Every query is a DAG of nodes ([`graph::Graph`]); a windowed query over
//! one stream is a path:
//!
//! ```text
//! StreamSource ──► StreamScan ──► Chain ──► WindowAggregate ▸ Chain ──► results
//! (validate,       (window        (WHERE,   (per-window DataFusion    (HAVING, final
//!  watermark)       columns)       SELECT)   accumulators)             projection)
//! ```
//!
//! Each push runs to completion through the graph and returns what it
//! emitted, so any point between two pushes is a consistent cut.

pub mod aggregate_node;
pub mod aggregate_spec;
pub mod batched_groups;
pub mod chain;
pub mod changelog;
pub mod fallible;
pub mod gather;
pub mod graph;
pub mod grouped_aggregates;
pub mod insert;
pub mod interval_join;
pub mod join_input;
pub mod join_state;
pub mod key_ids;
pub mod lookup_join;
pub mod percentile_digests;
pub mod refining_window_aggregate;
pub mod retracting;
pub mod row_accumulators;
pub mod scan;
pub mod session_aggregate;
pub mod session_groups;
pub mod short_string_keys;
pub mod snapshot;
pub mod source;
pub mod temporal_join;
pub mod union;
pub mod updating_aggregate;
pub mod window_aggregate;
pub mod window_expand;
pub mod window_rank;

use std::sync::Arc;

use arrow::array::{ArrayRef, BooleanArray, Float64Array, Int32Array, Int64Array};
use arrow::record_batch::RecordBatch;
use datafusion::common::ScalarValue;
use datafusion::logical_expr::ColumnarValue;
use datafusion::physical_expr::PhysicalExpr;

use crate::err;
use crate::error::Result;

/// Evaluates a physical expression on a batch into an array of `num_rows`.
pub fn evaluate(expr: &dyn PhysicalExpr, batch: &RecordBatch) -> Result<ArrayRef> {
    match expr.evaluate(batch)? {
        ColumnarValue::Array(array) => Ok(array),
        ColumnarValue::Scalar(scalar) => scalar_column(&scalar, batch.num_rows()),
    }
}

/// `scalar` repeated `rows` times. The constants of every push (`COUNT(*)`
/// counts a literal 1) are built here: DataFusion's `to_array_of_size` is
/// one large function that V8 compiles with its optimising tier during
/// the first pushes when it is called on each.
fn scalar_column(scalar: &ScalarValue, rows: usize) -> Result<ArrayRef> {
    Ok(match scalar {
        ScalarValue::Int64(Some(value)) => Arc::new(Int64Array::from_value(*value, rows)),
        ScalarValue::Int32(Some(value)) => Arc::new(Int32Array::from_value(*value, rows)),
        ScalarValue::Float64(Some(value)) => Arc::new(Float64Array::from_value(*value, rows)),
        ScalarValue::Boolean(Some(value)) => Arc::new(BooleanArray::from(vec![*value; rows])),
        other => other.to_array_of_size(rows)?,
    })
}

/// Evaluates a predicate into a boolean mask (nulls count as false when filtering).
pub fn evaluate_mask(expr: &dyn PhysicalExpr, batch: &RecordBatch) -> Result<BooleanArray> {
    let array = evaluate(expr, batch)?;
    array
        .as_any()
        .downcast_ref::<BooleanArray>()
        .cloned()
        .ok_or_else(|| {
            err!(
                Internal,
                "predicate {expr} evaluated to {}, not a boolean",
                array.data_type()
            )
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn constant_columns_are_datafusions() {
        for scalar in [
            ScalarValue::Int64(Some(1)),
            ScalarValue::Int32(Some(-7)),
            ScalarValue::Float64(Some(0.5)),
            ScalarValue::Boolean(Some(true)),
            ScalarValue::Boolean(Some(false)),
            ScalarValue::Int64(None),
            ScalarValue::Utf8(Some("x".into())),
        ] {
            for rows in [0, 1, 1000] {
                let ours = scalar_column(&scalar, rows).unwrap();
                let theirs = scalar.to_array_of_size(rows).unwrap();
                assert_eq!(ours.to_data(), theirs.to_data(), "{scalar:?} x {rows}");
            }
        }
    }
}
