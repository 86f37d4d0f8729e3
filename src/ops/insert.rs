//! `INSERT INTO stream SELECT ...`: a job's rows become events of a
//! declared stream, for every query that reads it.
//!
//! The node is the last of the job. The graph hands its output to the
//! readers of the target stream, under the minimum of the stream's feeders'
//! watermarks; here the rows are brought to the stream's schema (as a push
//! would be) and given their event times.

use std::sync::Arc;

use arrow::datatypes::SchemaRef;
use arrow::record_batch::{RecordBatch, RecordBatchOptions};

use super::graph::{Operator, Output, Rows};
use super::source::{conform, event_times};
use crate::catalog::StreamDef;
use crate::err;
use crate::error::{ErrorCode, Result, RiffleError};
use crate::state::OperatorState;

/// Turns a job's result rows into rows of the target stream.
#[derive(Debug, Clone)]
pub struct InsertNode {
    target: Arc<StreamDef>,
}

impl InsertNode {
    /// Inserts into `target`. The job's rows come in the stream's column
    /// order (DataFusion's INSERT planning has matched and cast them).
    pub fn new(target: Arc<StreamDef>) -> Self {
        Self { target }
    }

    fn shaped(&self, batch: &RecordBatch) -> Result<RecordBatch> {
        let fields = self.target.schema.fields();
        if batch.num_columns() != fields.len() {
            return Err(err!(
                Internal,
                "INSERT INTO {} gives {} columns, not {}",
                self.target.name,
                batch.num_columns(),
                fields.len()
            ));
        }
        // Named as the stream's columns, so that `conform` matches them.
        let named = RecordBatch::try_new_with_options(
            Arc::new(arrow::datatypes::Schema::new(
                fields
                    .iter()
                    .zip(batch.columns())
                    .map(|(field, column)| {
                        field
                            .as_ref()
                            .clone()
                            .with_data_type(column.data_type().clone())
                            .with_nullable(true)
                    })
                    .collect::<Vec<_>>(),
            )),
            batch.columns().to_vec(),
            &RecordBatchOptions::new().with_row_count(Some(batch.num_rows())),
        )?;
        conform(&self.target, &named)
    }
}

impl Operator for InsertNode {
    fn process(&mut self, _input: usize, rows: Rows, out: &mut Output) -> Result<()> {
        // A row the stream would not take fails the call, as a bad push
        // under the default 'reject' policy would.
        let at_insert = |error: RiffleError| {
            RiffleError::new(
                ErrorCode::Execution,
                format!("INSERT INTO {}: {}", self.target.name, error.message()),
            )
        };
        let batch = self.shaped(&rows.batch).map_err(at_insert)?;
        let times = event_times(&self.target, &batch).map_err(at_insert)?;
        out.forward(Rows {
            batch,
            row_watermarks: rows.row_watermarks,
            watermark_after: rows.watermark_after,
            event_times: Some(Arc::new(times)),
            origin: None,
        });
        Ok(())
    }

    fn restored(&self, _state: Option<&OperatorState>) -> Result<Box<dyn Operator>> {
        Ok(Box::new(self.clone()))
    }

    fn describe(&self) -> String {
        format!(
            "InsertInto: {} (its rows are the stream's events; its watermark the minimum of the stream's feeders)",
            self.target.name
        )
    }

    fn output_schema(&self) -> SchemaRef {
        Arc::clone(&self.target.schema)
    }
}
