//! `UNION ALL`: the rows of every input, in arrival order, under the
//! minimum of the inputs' watermarks (the graph caps each batch's per-row
//! watermarks by the other inputs'). A union with a changelog among its
//! inputs is a changelog: rows of the other inputs become inserts.

use std::sync::Arc;

use arrow::array::StringArray;
use arrow::datatypes::SchemaRef;
use arrow::record_batch::{RecordBatch, RecordBatchOptions};

use super::changelog::op;
use super::graph::{Operator, Output, Rows};
use crate::err;
use crate::error::Result;
use crate::state::OperatorState;

/// Merges its inputs' rows into one output.
#[derive(Debug, Clone)]
pub struct UnionNode {
    /// Per input: whether its rows become inserts of the changelog (an
    /// input of final rows, in a union that is a changelog).
    as_inserts: Vec<bool>,
    schema: SchemaRef,
}

impl UnionNode {
    /// A union of inputs whose rows are in `schema` (DataFusion has cast
    /// every input to it); `as_inserts` says, per input, whether its rows
    /// get an `_op` column of inserts (`schema` then ends with `_op`).
    pub fn new(as_inserts: Vec<bool>, schema: SchemaRef) -> Self {
        Self { as_inserts, schema }
    }
}

impl Operator for UnionNode {
    fn may_fail(&self) -> bool {
        false
    }

    fn process(&mut self, input: usize, mut rows: Rows, out: &mut Output) -> Result<()> {
        let batch = &rows.batch;
        let mut columns = batch.columns().to_vec();
        if self.as_inserts.get(input).copied().unwrap_or(false) {
            columns.push(Arc::new(StringArray::from(vec![
                op::INSERT;
                batch.num_rows()
            ])));
        }
        if columns.len() != self.schema.fields().len() {
            return Err(err!(
                Internal,
                "union input {input} has {} columns, not {}",
                columns.len(),
                self.schema.fields().len()
            ));
        }
        // Inputs name their columns their own way; the union's names win.
        let options = RecordBatchOptions::new().with_row_count(Some(batch.num_rows()));
        rows.batch =
            RecordBatch::try_new_with_options(Arc::clone(&self.schema), columns, &options)?;
        out.forward(rows);
        Ok(())
    }

    fn restored(&self, _state: Option<&OperatorState>) -> Result<Box<dyn Operator>> {
        Ok(Box::new(self.clone()))
    }

    fn describe(&self) -> String {
        format!(
            "Union: {} inputs, watermark = the minimum of theirs",
            self.as_inserts.len()
        )
    }

    fn output_schema(&self) -> SchemaRef {
        Arc::clone(&self.schema)
    }
}
