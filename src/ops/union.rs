//! `UNION ALL`: the rows of every input, in arrival order, under the
//! minimum of the inputs' watermarks (the graph caps each batch's per-row
//! watermarks by the other inputs').

use std::sync::Arc;

use arrow::datatypes::SchemaRef;
use arrow::record_batch::{RecordBatch, RecordBatchOptions};

use super::graph::{Operator, Output, Rows};
use crate::err;
use crate::error::Result;
use crate::state::OperatorState;

/// Merges its inputs' rows into one output.
#[derive(Debug, Clone)]
pub struct UnionNode {
    inputs: usize,
    schema: SchemaRef,
}

impl UnionNode {
    /// A union of `inputs` inputs whose rows are in `schema` (DataFusion
    /// has cast every input to it).
    pub fn new(inputs: usize, schema: SchemaRef) -> Self {
        Self { inputs, schema }
    }
}

impl Operator for UnionNode {
    fn may_fail(&self) -> bool {
        false
    }

    fn process(&mut self, input: usize, mut rows: Rows, out: &mut Output) -> Result<()> {
        let batch = &rows.batch;
        if batch.num_columns() != self.schema.fields().len() {
            return Err(err!(
                Internal,
                "union input {input} has {} columns, not {}",
                batch.num_columns(),
                self.schema.fields().len()
            ));
        }
        // Inputs name their columns their own way; the union's names win.
        let options = RecordBatchOptions::new().with_row_count(Some(batch.num_rows()));
        rows.batch = RecordBatch::try_new_with_options(
            Arc::clone(&self.schema),
            batch.columns().to_vec(),
            &options,
        )?;
        out.forward(rows);
        Ok(())
    }

    fn restored(&self, _state: Option<&OperatorState>) -> Result<Box<dyn Operator>> {
        Ok(Box::new(self.clone()))
    }

    fn describe(&self) -> String {
        format!(
            "Union: {} inputs, watermark = the minimum of theirs",
            self.inputs
        )
    }

    fn output_schema(&self) -> SchemaRef {
        Arc::clone(&self.schema)
    }
}
