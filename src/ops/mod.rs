//! Streaming operators: push-based, synchronous, single-threaded.
//!
//! A query runs as a [`pipeline::Pipeline`]:
//!
//! ```text
//! StreamSource ──► StreamScan ──► StatelessChain ──► WindowAggregate ──► StatelessChain ──► results
//! (validate,       (window        (WHERE, SELECT     (per-window DataFusion      (HAVING, final
//!  watermark)       columns)       expressions)        accumulators)               projection)
//! ```
//!
//! Each push runs to completion through the pipeline and returns what it
//! emitted, so any point between two pushes is a consistent cut.

pub mod batch_keys;
pub mod batched_groups;
pub mod chain;
pub mod changelog;
pub mod grouped_aggregates;
pub mod percentile_digests;
pub mod pipeline;
pub mod refining_window_aggregate;
pub mod scan;
pub mod session_aggregate;
pub mod session_groups;
pub mod short_string_keys;
pub mod snapshot;
pub mod source;
pub mod updating_aggregate;
pub mod window_aggregate;

use arrow::array::{ArrayRef, BooleanArray};
use arrow::record_batch::RecordBatch;
use datafusion::physical_expr::PhysicalExpr;

use crate::err;
use crate::error::Result;

/// Evaluates a physical expression on a batch into an array of `num_rows`.
pub fn evaluate(expr: &dyn PhysicalExpr, batch: &RecordBatch) -> Result<ArrayRef> {
    Ok(expr.evaluate(batch)?.into_array(batch.num_rows())?)
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
