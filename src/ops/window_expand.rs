//! Rows of `HOP` and `CUMULATE` windows, one copy per window, for a window
//! join (Flink's): the scan gives each row its slice, which an aggregate
//! merges into windows; a join needs each window a row belongs to as the
//! row's own `window_start` / `window_end` / `window_time`.
//!
//! A row's windows follow from its slice alone: for `HOP`, the `size /
//! slide` windows whose start is at most `size - slide` before the slice's;
//! for `CUMULATE`, the windows of the slice's period that end at or after
//! the slice's end. Copies of a row sit next to each other, so per-row
//! watermarks stay in order.

use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, Int64Array, UInt32Array};
use arrow::compute::cast;
use arrow::datatypes::{DataType, Int64Type, SchemaRef};
use arrow::record_batch::{RecordBatch, RecordBatchOptions};

use super::gather::gather;
use super::graph::{Operator, Origin, Output, RowWatermarks, Rows};
use crate::err;
use crate::error::Result;
use crate::state::OperatorState;
use crate::time::window::WindowSpec;
use crate::time::EventTime;

/// The graph node that copies each row into each of its windows.
#[derive(Debug, Clone)]
pub struct WindowExpand {
    window: WindowSpec,
    /// Columns of the input holding `window_start` (the slice's start,
    /// required), `window_end` and `window_time`, if read.
    start: usize,
    end: Option<usize>,
    time: Option<usize>,
    /// Ticks in a millisecond: `window_time` is `window_end` minus this.
    slack: i64,
    schema: SchemaRef,
}

impl WindowExpand {
    /// Copies rows of `schema` into the windows of `window` (HOP or
    /// CUMULATE), reading each row's slice from column `start`.
    pub fn try_new(
        window: WindowSpec,
        [start, end, time]: [Option<usize>; 3],
        slack: i64,
        schema: SchemaRef,
    ) -> Result<Self> {
        if window.is_tumbling() || window.slices().is_none() {
            return Err(err!(Internal, "window copies of {} rows", window.name()));
        }
        let start = start.ok_or_else(|| {
            err!(
                Unsupported,
                "a join of {} rows joins them per window: join ON both sides' window_start and window_end",
                window.name()
            )
        })?;
        Ok(Self {
            window,
            start,
            end,
            time,
            slack,
            schema,
        })
    }

    /// The windows (start, end) of the slice starting at `slice`.
    fn windows_of(&self, slice: EventTime, out: &mut Vec<(EventTime, EventTime)>) {
        match self.window {
            WindowSpec::Hop { slide, size } => {
                let step = slide.size().max(1);
                let copies = (size / step).max(1);
                for k in (0..copies).rev() {
                    let start = slice.saturating_sub(k.saturating_mul(step));
                    out.push((start, start.saturating_add(size)));
                }
            }
            WindowSpec::Cumulate { step, size } => {
                let period = size.start_of(slice);
                let last = size.end_of(period);
                let mut end = step.end_of(slice);
                while end <= last {
                    out.push((period, end));
                    end = end.saturating_add(step.size().max(1));
                }
            }
            _ => {}
        }
    }
}

impl Operator for WindowExpand {
    fn may_fail(&self) -> bool {
        false
    }

    fn process(&mut self, _input: usize, rows: Rows, out: &mut Output) -> Result<()> {
        let batch = &rows.batch;
        let start_column = batch.column(self.start);
        let slices = cast(start_column, &DataType::Int64)?;
        let slices = slices
            .as_primitive_opt::<Int64Type>()
            .ok_or_else(|| err!(Internal, "window_start is not a time"))?;
        let mut copies = Vec::with_capacity(batch.num_rows() * 2);
        let mut starts = Vec::with_capacity(batch.num_rows() * 2);
        let mut ends = Vec::with_capacity(batch.num_rows() * 2);
        let mut windows = Vec::new();
        for row in 0..batch.num_rows() {
            if slices.is_null(row) {
                continue;
            }
            windows.clear();
            self.windows_of(slices.value(row), &mut windows);
            for &(start, end) in &windows {
                copies.push(row as u32);
                starts.push(start);
                ends.push(end);
            }
        }
        if copies.is_empty() {
            return Ok(());
        }
        let copies = UInt32Array::from(copies);
        let as_column = |values: Vec<i64>, like: &ArrayRef| -> Result<ArrayRef> {
            Ok(cast(&Int64Array::from(values), like.data_type())?)
        };
        let times: Vec<i64> = ends.iter().map(|e| e.saturating_sub(self.slack)).collect();
        let mut columns = Vec::with_capacity(batch.num_columns());
        let (mut starts, mut ends, mut times) = (Some(starts), Some(ends), Some(times));
        for (index, column) in batch.columns().iter().enumerate() {
            let values = if index == self.start {
                starts.take()
            } else if Some(index) == self.end {
                ends.take()
            } else if Some(index) == self.time {
                times.take()
            } else {
                None
            };
            columns.push(match values {
                Some(values) => as_column(values, column)?,
                None => gather(column, &copies)?,
            });
        }
        let options = RecordBatchOptions::new().with_row_count(Some(copies.len()));
        let expanded =
            RecordBatch::try_new_with_options(Arc::clone(&self.schema), columns, &options)?;
        let row_watermarks = match rows.row_watermarks {
            RowWatermarks::PerRow(values) => RowWatermarks::PerRow(Arc::new(
                gather(&(values as ArrayRef), &copies)?
                    .as_primitive_opt::<Int64Type>()
                    .ok_or_else(|| err!(Internal, "per-row watermarks lost"))?
                    .clone(),
            )),
            constant => constant,
        };
        let origin = match rows.origin {
            Some(origin) => Some(Origin {
                rows: Arc::new(
                    gather(&(origin.rows as ArrayRef), &copies)?
                        .as_primitive_opt::<arrow::datatypes::UInt32Type>()
                        .ok_or_else(|| err!(Internal, "row origins lost"))?
                        .clone(),
                ),
                batch: origin.batch,
            }),
            None => None,
        };
        out.forward(Rows {
            batch: expanded,
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
        format!(
            "WindowCopies: each row once per {} window it belongs to",
            self.window.name()
        )
    }

    fn output_schema(&self) -> SchemaRef {
        Arc::clone(&self.schema)
    }
}
