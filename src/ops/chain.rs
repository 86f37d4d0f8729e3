//! Stateless steps (`WHERE`, `SELECT` expressions, `HAVING`) taken from
//! DataFusion's `FilterExec` and `ProjectionExec`, evaluated per batch.

use std::sync::Arc;

use arrow::array::{Array, ArrayRef, Int64Array, UInt32Array};
use arrow::compute::{filter, filter_record_batch};
use arrow::datatypes::SchemaRef;
use arrow::record_batch::{RecordBatch, RecordBatchOptions};
use datafusion::physical_expr::PhysicalExpr;

use super::graph::{Operator, Origin, Output, RowWatermarks, Rows};
use super::{evaluate, evaluate_mask};
use crate::error::Result;
use crate::state::OperatorState;

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

    /// The schema after the last step, if there are steps.
    pub fn output_schema(&self) -> Option<SchemaRef> {
        self.steps.last().map(|step| match step {
            Step::Filter { schema, .. } | Step::Project { schema, .. } => Arc::clone(schema),
        })
    }

    /// Whether evaluating a step can fail at run time.
    pub fn may_fail(&self) -> bool {
        self.steps.iter().any(|step| match step {
            Step::Filter { predicate, .. } => super::fallible::expr_may_fail(predicate),
            Step::Project { exprs, .. } => exprs.iter().any(super::fallible::expr_may_fail),
        })
    }

    /// Whether there are no steps.
    pub fn is_empty(&self) -> bool {
        self.steps.is_empty()
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

/// The graph node of a [`StatelessChain`].
#[derive(Debug, Clone)]
pub struct ChainNode {
    chain: StatelessChain,
    schema: SchemaRef,
}

impl ChainNode {
    /// A node applying `chain` to input in `input_schema`.
    pub fn new(chain: StatelessChain, input_schema: SchemaRef) -> Self {
        let schema = chain.output_schema().unwrap_or(input_schema);
        Self { chain, schema }
    }
}

impl Operator for ChainNode {
    fn may_fail(&self) -> bool {
        self.chain.may_fail()
    }

    fn process(&mut self, _input: usize, rows: Rows, out: &mut Output) -> Result<()> {
        // Per-row arrays filtered in step with the rows.
        let mut carried = Vec::new();
        if let RowWatermarks::PerRow(values) = &rows.row_watermarks {
            carried.push(Arc::clone(values) as ArrayRef);
        }
        if let Some(origin) = &rows.origin {
            carried.push(Arc::clone(&origin.rows) as ArrayRef);
        }
        let (batch, carried) = self.chain.apply(rows.batch, carried)?;
        if batch.num_rows() == 0 {
            return Ok(());
        }
        let mut carried = carried.into_iter();
        let row_watermarks = match rows.row_watermarks {
            RowWatermarks::PerRow(_) => {
                RowWatermarks::PerRow(Arc::new(next_as::<Int64Array>(carried.next())?))
            }
            constant => constant,
        };
        let origin = match rows.origin {
            Some(origin) => Some(Origin {
                batch: origin.batch,
                rows: Arc::new(next_as::<UInt32Array>(carried.next())?),
            }),
            None => None,
        };
        out.forward(Rows {
            batch,
            row_watermarks,
            watermark_after: rows.watermark_after,
            event_times: None,
            origin,
        });
        Ok(())
    }

    fn restored(&self, _state: Option<&OperatorState>) -> Result<Box<dyn Operator>> {
        Ok(Box::new(self.clone()))
    }

    fn describe(&self) -> String {
        self.chain.describe().join(" ▸ ")
    }

    fn output_schema(&self) -> SchemaRef {
        Arc::clone(&self.schema)
    }
}

/// The next carried array, as the type it was carried as.
fn next_as<T: Array + Clone + 'static>(array: Option<ArrayRef>) -> Result<T> {
    array
        .as_ref()
        .and_then(|a| a.as_any().downcast_ref::<T>())
        .cloned()
        .ok_or_else(|| crate::err!(Internal, "per-row values lost in the chain"))
}
