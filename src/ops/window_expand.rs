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
use super::graph::{Operator, Output, Rows};
use crate::err;
use crate::error::Result;
use crate::state::OperatorState;
use crate::time::window::WindowSpec;
use crate::time::EventTime;

/// Most windows a row may be copied into (a HOP of 1 s over a day would
/// make 86,400 copies of every row).
const MAX_COPIES: i64 = 4096;

/// The graph node that copies each row into each of its windows.
#[derive(Debug, Clone)]
pub struct WindowExpand {
    window: WindowSpec,
    /// Columns of the input holding `window_start` (the slice's start;
    /// the first is read), `window_end` and `window_time`.
    starts: Vec<usize>,
    ends: Vec<usize>,
    times: Vec<usize>,
    /// Ticks in a millisecond: `window_time` is `window_end` minus this.
    slack: i64,
    schema: SchemaRef,
}

impl WindowExpand {
    /// Copies rows of `schema` into the windows of `window` (HOP or
    /// CUMULATE), reading each row's slice from column `start`.
    pub fn try_new(
        window: WindowSpec,
        [starts, ends, times]: [Vec<usize>; 3],
        slack: i64,
        schema: SchemaRef,
    ) -> Result<Self> {
        let copies = match window {
            WindowSpec::Hop { slide, size } => size / slide.size().max(1),
            WindowSpec::Cumulate { step, size } => size.size() / step.size().max(1),
            _ => return Err(err!(Internal, "window copies of {} rows", window.name())),
        };
        if copies > MAX_COPIES {
            return Err(err!(
                Unsupported,
                "a join of {} rows copies each row into each of its {copies} windows; at most {MAX_COPIES} are supported: join the windowed aggregates (GROUP BY window_start, window_end) instead",
                window.name()
            ));
        }
        if starts.is_empty() {
            return Err(err!(
                Unsupported,
                "a join of {} rows joins them per window: join ON both sides' window_start and window_end",
                window.name()
            ));
        }
        Ok(Self {
            window,
            starts,
            ends,
            times,
            slack,
            schema,
        })
    }

    /// The windows (start, end) of the slice starting at `slice`; at the
    /// ends of time, only those whose bounds are representable.
    fn windows_of(&self, slice: EventTime, out: &mut Vec<(EventTime, EventTime)>) {
        match self.window {
            WindowSpec::Hop { slide, size } => {
                let step = slide.size().max(1);
                let copies = (size / step).clamp(1, MAX_COPIES);
                for k in (0..copies).rev() {
                    let start = k.checked_mul(step).and_then(|back| slice.checked_sub(back));
                    if let Some((start, end)) = start.and_then(|s| Some((s, s.checked_add(size)?)))
                    {
                        out.push((start, end));
                    }
                }
            }
            WindowSpec::Cumulate { step, size } => {
                let period = size.start_of(slice);
                let step = step.size().max(1);
                let copies = (size.size() / step).clamp(1, MAX_COPIES);
                // Ends from the slice's own end to the period's.
                for k in 1..=copies {
                    let Some(end) = k
                        .checked_mul(step)
                        .and_then(|grown| period.checked_add(grown))
                    else {
                        break;
                    };
                    if end > slice {
                        out.push((period, end));
                    }
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
        let start_column = batch.column(self.starts[0]);
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
        for (index, column) in batch.columns().iter().enumerate() {
            let values = if self.starts.contains(&index) {
                Some(&starts)
            } else if self.ends.contains(&index) {
                Some(&ends)
            } else if self.times.contains(&index) {
                Some(&times)
            } else {
                None
            };
            columns.push(match values {
                Some(values) => as_column(values.clone(), column)?,
                None => gather(column, &copies)?,
            });
        }
        let options = RecordBatchOptions::new().with_row_count(Some(copies.len()));
        let expanded =
            RecordBatch::try_new_with_options(Arc::clone(&self.schema), columns, &options)?;
        out.forward(rows.with_rows_at(expanded, Some(&copies))?);
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::time::window::TumblingWindow;
    use arrow::datatypes::{Field, Schema, TimeUnit};

    fn expand(window: WindowSpec) -> WindowExpand {
        let schema = Arc::new(Schema::new(vec![Field::new("s", DataType::Int64, true)]));
        WindowExpand::try_new(window, [vec![0], vec![], vec![]], 1, schema).unwrap()
    }

    fn windows(expand: &WindowExpand, slice: EventTime) -> Vec<(EventTime, EventTime)> {
        let mut out = Vec::new();
        expand.windows_of(slice, &mut out);
        out
    }

    #[test]
    fn a_slice_belongs_to_its_hop_and_cumulate_windows() {
        let unit = TimeUnit::Millisecond;
        let hop = expand(WindowSpec::Hop {
            slide: TumblingWindow::new(2, 0, unit),
            size: 6,
        });
        assert_eq!(windows(&hop, 10), vec![(6, 12), (8, 14), (10, 16)]);
        let cumulate = expand(WindowSpec::Cumulate {
            step: TumblingWindow::new(2, 0, unit),
            size: TumblingWindow::new(6, 0, unit),
        });
        // Slice [8, 10) of the period [6, 12): windows [6, 10) and [6, 12).
        assert_eq!(windows(&cumulate, 8), vec![(6, 10), (6, 12)]);
        assert_eq!(windows(&cumulate, 6), vec![(6, 8), (6, 10), (6, 12)]);
    }

    #[test]
    fn at_the_ends_of_time_only_representable_windows_come_out() {
        let unit = TimeUnit::Millisecond;
        let cumulate = expand(WindowSpec::Cumulate {
            step: TumblingWindow::new(3_600_000, 0, unit),
            size: TumblingWindow::new(86_400_000, 0, unit),
        });
        let slice = TumblingWindow::new(3_600_000, 0, unit).start_of(i64::MAX - 10);
        let found = windows(&cumulate, slice);
        assert!(found.len() <= 24 && found.iter().all(|&(s, e)| s <= slice && e > slice));
        let hop = expand(WindowSpec::Hop {
            slide: TumblingWindow::new(1_000, 0, unit),
            size: 3_000,
        });
        let slice = TumblingWindow::new(1_000, 0, unit).start_of(i64::MIN + 10);
        let found = windows(&hop, slice);
        assert!(!found.is_empty() && found.iter().all(|&(s, e)| s <= slice && e > slice));
        let starts: std::collections::BTreeSet<_> = found.iter().map(|w| w.0).collect();
        assert_eq!(starts.len(), found.len(), "no window twice: {found:?}");
    }

    #[test]
    fn too_many_copies_per_row_are_refused() {
        let schema = Arc::new(Schema::new(vec![Field::new("s", DataType::Int64, true)]));
        let hop = WindowSpec::Hop {
            slide: TumblingWindow::new(1_000, 0, TimeUnit::Millisecond),
            size: 7_200_000,
        };
        let error = WindowExpand::try_new(hop, [vec![0], vec![], vec![]], 1, schema).unwrap_err();
        assert!(error.message().contains("7200 windows"), "{error}");
    }
}
