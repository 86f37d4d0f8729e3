//! Stateless steps (`WHERE`, `SELECT` expressions, `HAVING`) taken from
//! DataFusion's `FilterExec` and `ProjectionExec`, evaluated per batch.

use std::sync::Arc;

use arrow::array::{Array, ArrayRef};
use arrow::compute::{filter, filter_record_batch};
use arrow::datatypes::SchemaRef;
use arrow::record_batch::{RecordBatch, RecordBatchOptions};
use datafusion::physical_expr::PhysicalExpr;

use super::{evaluate, evaluate_mask};
use crate::error::Result;

/// One stateless step.
#[derive(Debug, Clone)]
pub enum Step {
    /// Keep rows where `predicate` is true, then optionally keep some columns.
    Filter {
        /// The predicate.
        predicate: Arc<dyn PhysicalExpr>,
        /// Columns kept after filtering, if not all.
        projection: Option<Vec<usize>>,
        /// Output schema.
        schema: SchemaRef,
    },
    /// Compute new columns from expressions.
    Project {
        /// One expression per output column.
        exprs: Vec<Arc<dyn PhysicalExpr>>,
        /// Output schema.
        schema: SchemaRef,
    },
}

/// Steps applied in order, bottom of the plan first.
#[derive(Debug, Clone, Default)]
pub struct StatelessChain {
    steps: Vec<Step>,
}

impl StatelessChain {
    /// A chain of `steps`, applied first to last.
    pub fn new(steps: Vec<Step>) -> Self {
        Self { steps }
    }

    /// The steps, first applied first.
    pub fn steps(&self) -> &[Step] {
        &self.steps
    }

    /// One line per step, first applied first, for EXPLAIN.
    pub fn describe(&self) -> Vec<String> {
        self.steps
            .iter()
            .map(|step| match step {
                Step::Filter {
                    predicate,
                    projection,
                    schema,
                } => {
                    let mut line = format!("Filter: {predicate}");
                    if projection.is_some() {
                        let names: Vec<&str> =
                            schema.fields().iter().map(|f| f.name().as_str()).collect();
                        line.push_str(&format!(", keep [{}]", names.join(", ")));
                    }
                    line
                }
                Step::Project { exprs, schema } => {
                    let items: Vec<String> = exprs
                        .iter()
                        .zip(schema.fields())
                        .map(|(expr, field)| format!("{expr} AS {}", field.name()))
                        .collect();
                    format!("Project: {}", items.join(", "))
                }
            })
            .collect()
    }

    /// Applies every step. `carried` are per-row arrays (the per-row
    /// watermark, the source row index) filtered in step with the rows, so
    /// they stay aligned with them.
    pub fn apply(
        &self,
        mut batch: RecordBatch,
        mut carried: Vec<ArrayRef>,
    ) -> Result<(RecordBatch, Vec<ArrayRef>)> {
        for step in &self.steps {
            match step {
                Step::Filter {
                    predicate,
                    projection,
                    schema,
                } => {
                    let mask = evaluate_mask(predicate.as_ref(), &batch)?;
                    if mask.true_count() != batch.num_rows() || mask.null_count() > 0 {
                        batch = filter_record_batch(&batch, &mask)?;
                        for array in carried.iter_mut() {
                            *array = filter(array.as_ref(), &mask)?;
                        }
                    }
                    if let Some(indices) = projection {
                        let columns = indices
                            .iter()
                            .map(|&i| Arc::clone(batch.column(i)))
                            .collect();
                        batch = RecordBatch::try_new(Arc::clone(schema), columns)?;
                    }
                }
                Step::Project { exprs, schema } => {
                    let columns = exprs
                        .iter()
                        .map(|expr| evaluate(expr.as_ref(), &batch))
                        .collect::<Result<Vec<_>>>()?;
                    let options = RecordBatchOptions::new().with_row_count(Some(batch.num_rows()));
                    batch =
                        RecordBatch::try_new_with_options(Arc::clone(schema), columns, &options)?;
                }
            }
        }
        Ok((batch, carried))
    }
}
