//! The leaf of a query: adds the window columns of a window table function
//! and keeps the columns the query reads.

use std::sync::Arc;

use arrow::array::{ArrayRef, Int64Array};
use arrow::datatypes::{DataType, SchemaRef};
use arrow::record_batch::{RecordBatch, RecordBatchOptions};

use crate::codec::time_values::int64_as;
use crate::error::Result;
use crate::time::window::WindowSpec;
use crate::time::EventTime;

/// Shapes a source batch into what the query's plan expects from its leaf.
#[derive(Debug, Clone)]
pub struct StreamScan {
    window: Option<WindowSpec>,
    /// Type of the window columns (the event-time column's type).
    time_type: DataType,
    /// Number of columns in the stream itself.
    stream_width: usize,
    projection: Option<Vec<usize>>,
    schema: SchemaRef,
}

impl StreamScan {
    /// A scan producing `schema`: the stream's columns, the window columns if
    /// `window` is set, then `projection` applied.
    pub fn new(
        window: Option<WindowSpec>,
        time_type: DataType,
        stream_width: usize,
        projection: Option<Vec<usize>>,
        schema: SchemaRef,
    ) -> Self {
        Self {
            window,
            time_type,
            stream_width,
            projection,
            schema,
        }
    }

    /// One line for EXPLAIN.
    pub fn describe(&self, unit: arrow::datatypes::TimeUnit) -> String {
        let names: Vec<&str> = self
            .schema
            .fields()
            .iter()
            .map(|f| f.name().as_str())
            .collect();
        match self.window {
            Some(window) => format!(
                "StreamScan: {} → [{}]",
                window.describe(unit),
                names.join(", ")
            ),
            None => format!("StreamScan: [{}]", names.join(", ")),
        }
    }

    /// The window applied, if any.
    pub fn window(&self) -> Option<WindowSpec> {
        self.window
    }

    /// Builds the leaf's output for one source batch.
    pub fn apply(&self, batch: &RecordBatch, event_times: &[EventTime]) -> Result<RecordBatch> {
        let wanted: Vec<usize> = match &self.projection {
            Some(indices) => indices.clone(),
            None => (0..self.schema.fields().len()).collect(),
        };
        let mut window_columns: Option<(ArrayRef, ArrayRef)> = None;
        let mut columns = Vec::with_capacity(wanted.len());
        for index in wanted {
            if index < self.stream_width {
                columns.push(Arc::clone(batch.column(index)));
                continue;
            }
            if window_columns.is_none() {
                window_columns = Some(self.window_columns(event_times)?);
            }
            let (start, end) = window_columns.as_ref().expect("computed above");
            columns.push(Arc::clone(if index == self.stream_width {
                start
            } else {
                end
            }));
        }
        let options = RecordBatchOptions::new().with_row_count(Some(batch.num_rows()));
        Ok(RecordBatch::try_new_with_options(
            Arc::clone(&self.schema),
            columns,
            &options,
        )?)
    }

    fn window_columns(&self, event_times: &[EventTime]) -> Result<(ArrayRef, ArrayRef)> {
        // Each row gets its slice (for TUMBLE, its window) or, for SESSION,
        // its own window before merging.
        let Some(window) = self.window else {
            return Err(crate::err!(
                Internal,
                "window column requested from a scan without a window"
            ));
        };
        let (starts, ends) = window.rows_bounds(event_times);
        Ok((
            int64_as(Int64Array::from(starts), &self.time_type)?,
            int64_as(Int64Array::from(ends), &self.time_type)?,
        ))
    }
}
