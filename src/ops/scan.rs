//! The leaf of a query: adds the window columns of a window table function
//! and keeps the columns the query reads.

use std::sync::Arc;

use arrow::array::{Array, ArrayRef, Int64Array};
use arrow::datatypes::{DataType, SchemaRef, TimeUnit};
use arrow::record_batch::{RecordBatch, RecordBatchOptions};

use super::graph::{Operator, Origin, Output, Rows};
use crate::codec::time_values::int64_as;
use crate::error::Result;
use crate::state::OperatorState;
use crate::time::window::WindowSpec;
use crate::time::EventTime;

/// Shapes a source batch into what the query's plan expects from its leaf.
#[derive(Debug, Clone)]
pub struct StreamScan {
    window: Option<WindowSpec>,
    /// Type of the window columns (the event-time column's type).
    time_type: DataType,
    /// Unit of the event times.
    unit: TimeUnit,
    /// Number of columns in the stream itself.
    stream_width: usize,
    projection: Option<Vec<usize>>,
    /// Whether the rows are a changelog's: their `_op` column, after the
    /// stream's columns, is kept last whatever the projection.
    changelog: bool,
    schema: SchemaRef,
}

impl StreamScan {
    /// A scan producing `schema`: the stream's columns, the window columns if
    /// `window` is set, then `projection` applied.
    pub fn new(
        window: Option<WindowSpec>,
        time_type: DataType,
        unit: TimeUnit,
        stream_width: usize,
        projection: Option<Vec<usize>>,
        schema: SchemaRef,
    ) -> Self {
        Self {
            window,
            time_type,
            unit,
            stream_width,
            projection,
            changelog: false,
            schema,
        }
    }

    /// The same scan over a changelog view's rows, producing `schema` (the
    /// projected columns plus `_op`).
    pub fn of_changelog(mut self, schema: SchemaRef) -> Self {
        self.changelog = true;
        self.schema = schema;
        self
    }

    /// One line for EXPLAIN.
    pub fn describe(&self, unit: TimeUnit) -> String {
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

    /// Builds the leaf's output for one source batch. `event_times` (the
    /// rows' event times) are needed only for window columns.
    pub fn apply(
        &self,
        batch: &RecordBatch,
        event_times: Option<&[EventTime]>,
    ) -> Result<RecordBatch> {
        let mut wanted: Vec<usize> = match &self.projection {
            Some(indices) => indices.clone(),
            None => (0..self.schema.fields().len() - usize::from(self.changelog)).collect(),
        };
        if self.changelog {
            // `_op`, read like a stream column: windows never apply here.
            wanted.push(self.stream_width);
        }
        let mut window_columns: Option<[Option<ArrayRef>; 3]> = None;
        let wants_time = wanted.contains(&(self.stream_width + 2));
        let mut columns = Vec::with_capacity(wanted.len());
        for index in wanted {
            if index < self.stream_width || self.changelog {
                columns.push(Arc::clone(batch.column(index)));
                continue;
            }
            if window_columns.is_none() {
                window_columns = Some(self.window_columns(event_times, wants_time)?);
            }
            let column = window_columns
                .as_ref()
                .and_then(|computed| computed.get(index - self.stream_width))
                .and_then(Option::as_ref)
                .ok_or_else(|| {
                    crate::err!(Internal, "scan column {index} is past the window columns")
                })?;
            columns.push(Arc::clone(column));
        }
        let options = RecordBatchOptions::new().with_row_count(Some(batch.num_rows()));
        Ok(RecordBatch::try_new_with_options(
            Arc::clone(&self.schema),
            columns,
            &options,
        )?)
    }

    /// `window_start`, `window_end` and (if `with_time`) `window_time` of
    /// each row.
    fn window_columns(
        &self,
        event_times: Option<&[EventTime]>,
        with_time: bool,
    ) -> Result<[Option<ArrayRef>; 3]> {
        let event_times = event_times
            .ok_or_else(|| crate::err!(Internal, "window columns of rows without event times"))?;
        // Each row gets its slice (for TUMBLE, its window) or, for SESSION,
        // its own window before merging.
        let Some(window) = self.window else {
            return Err(crate::err!(
                Internal,
                "window column requested from a scan without a window"
            ));
        };
        let (starts, ends) = window.rows_bounds(event_times);
        let times = if with_time {
            let slack = crate::time::units_per_milli(self.unit);
            let times = ends.iter().map(|end| end.saturating_sub(slack));
            Some(int64_as(
                Int64Array::from_iter_values(times),
                &self.time_type,
            )?)
        } else {
            None
        };
        Ok([
            Some(int64_as(Int64Array::from(starts), &self.time_type)?),
            Some(int64_as(Int64Array::from(ends), &self.time_type)?),
            times,
        ])
    }
}

/// The graph node of a [`StreamScan`]: reads a stream's pushed rows.
#[derive(Debug, Clone)]
pub struct ScanNode {
    scan: StreamScan,
    time_unit: TimeUnit,
    /// Whether rows keep their origin, so late rows can be handed back.
    side_output: bool,
    /// For a view's rows, which carry no event times: the column holding
    /// them (the view's event-time column or `window_time`).
    event_time_column: Option<usize>,
}

impl ScanNode {
    /// A node running `scan`; with `side_output`, rows carry their place in
    /// the push. Rows without event times take them from
    /// `event_time_column`, where a window needs them.
    pub fn new(
        scan: StreamScan,
        time_unit: TimeUnit,
        side_output: bool,
        event_time_column: Option<usize>,
    ) -> Self {
        Self {
            scan,
            time_unit,
            side_output,
            event_time_column,
        }
    }

    /// Event times read from the rows' event-time column (null: the
    /// earliest time, so such a row is late everywhere).
    fn event_times_of(&self, batch: &RecordBatch) -> Result<Option<Vec<EventTime>>> {
        let Some(index) = self
            .event_time_column
            .filter(|_| self.scan.window.is_some())
        else {
            return Ok(None);
        };
        let column = batch
            .columns()
            .get(index)
            .ok_or_else(|| crate::err!(Internal, "event-time column {index} missing"))?;
        let values = crate::codec::time_values::to_type(column, &DataType::Int64)?;
        let values = values
            .as_any()
            .downcast_ref::<Int64Array>()
            .ok_or_else(|| crate::err!(Internal, "event times are not 64-bit"))?;
        Ok(Some(
            (0..values.len())
                .map(|i| {
                    if values.is_null(i) {
                        EventTime::MIN
                    } else {
                        values.value(i)
                    }
                })
                .collect(),
        ))
    }
}

impl Operator for ScanNode {
    fn process(&mut self, _input: usize, rows: Rows, out: &mut Output) -> Result<()> {
        // Rows from a view carry no event times: read them from its column.
        let read = match rows.event_times {
            Some(_) => None,
            None => self.event_times_of(&rows.batch)?,
        };
        let event_times = rows
            .event_times
            .as_deref()
            .map(Vec::as_slice)
            .or(read.as_deref());
        let batch = self.scan.apply(&rows.batch, event_times)?;
        let origin = if self.side_output {
            Some(Origin::of(&rows.batch)?)
        } else {
            None
        };
        out.forward(Rows {
            batch,
            row_watermarks: rows.row_watermarks,
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
        self.scan.describe(self.time_unit)
    }

    fn output_schema(&self) -> SchemaRef {
        Arc::clone(&self.scan.schema)
    }
}
