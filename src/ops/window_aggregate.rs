//! Tumbling window aggregation with event-time watermarks.
//!
//! ```text
//!   rows ──► window of each row ──► late? ──yes──► dropped, counted
//!                                     │no
//!                                     ▼
//!            per window: GroupedAggregates (DataFusion accumulators)
//!                                     │ watermark passes window end
//!                                     ▼
//!            emit one batch per window, in window order, then forget it
//! ```
//!
//! A row is late when its window already closed under the watermark in
//! force before the row arrived (Flink's rule). Window columns are kept out
//! of the interned group key: every row of a window shares them, so they are
//! rebuilt as constants on emit.

use std::collections::BTreeMap;
use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, Int64Array, UInt32Array};
use arrow::compute::cast;
use arrow::datatypes::{DataType, Int64Type, SchemaRef};
use arrow::record_batch::{RecordBatch, RecordBatchOptions};
use datafusion::physical_expr::PhysicalExpr;

use super::evaluate;
use super::grouped_aggregates::{AggregateInput, AggregateSpec, GroupedAggregates};
use crate::err;
use crate::error::Result;
use crate::time::window::TumblingWindow;
use crate::time::EventTime;

/// One column of the aggregate's group-by, in output order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GroupColumn {
    /// `window_start`.
    WindowStart,
    /// `window_end`.
    WindowEnd,
    /// The i-th user key of the [`AggregateSpec`].
    Key(usize),
}

/// Fixed configuration of a window aggregate, derived from the plan.
#[derive(Debug, Clone)]
pub struct WindowAggregateConfig {
    /// The window.
    pub window: TumblingWindow,
    /// Expression giving each input row's window bound, and whether it is the end.
    pub window_bound: (Arc<dyn PhysicalExpr>, GroupColumn),
    /// Group-by columns in output order.
    pub group_columns: Vec<GroupColumn>,
    /// Keys and aggregates.
    pub spec: AggregateSpec,
    /// Output schema: group columns then aggregate values (`AggregateExec`'s).
    pub output_schema: SchemaRef,
    /// Type of the window columns.
    pub time_type: DataType,
}

/// Counters of one window aggregate.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WindowMetrics {
    /// Rows that reached the aggregate (after WHERE).
    pub rows_in: u64,
    /// Rows dropped because their window had already closed.
    pub late_rows_dropped: u64,
    /// Windows emitted.
    pub windows_emitted: u64,
}

/// Tumbling window aggregate operator.
#[derive(Debug)]
pub struct TumblingWindowAggregate {
    config: WindowAggregateConfig,
    /// Open windows by start.
    windows: BTreeMap<EventTime, GroupedAggregates>,
    metrics: WindowMetrics,
}

impl TumblingWindowAggregate {
    /// An operator with no open windows.
    pub fn new(config: WindowAggregateConfig) -> Self {
        Self {
            config,
            windows: BTreeMap::new(),
            metrics: WindowMetrics::default(),
        }
    }

    /// Counters so far.
    pub fn metrics(&self) -> &WindowMetrics {
        &self.metrics
    }

    /// Windows holding state.
    pub fn open_windows(&self) -> usize {
        self.windows.len()
    }

    /// Approximate memory held by open windows, in bytes.
    pub fn state_size(&self) -> usize {
        self.windows.values().map(GroupedAggregates::size).sum()
    }

    /// Adds a batch. `row_watermarks[i]` is the watermark in force before row `i`.
    pub fn process(&mut self, batch: &RecordBatch, row_watermarks: &Int64Array) -> Result<()> {
        let rows = batch.num_rows();
        if rows == 0 {
            return Ok(());
        }
        self.metrics.rows_in += rows as u64;
        let starts = self.window_starts(batch)?;
        let window = self.config.window;

        // Group on-time rows by window; a batch usually spans one or two.
        let mut per_window: Vec<(EventTime, Vec<u32>)> = Vec::new();
        let mut late = 0u64;
        for (row, start) in starts.iter().enumerate() {
            let Some(start) = start else { continue };
            if window.is_closed(start, row_watermarks.value(row)) {
                late += 1;
                continue;
            }
            // Rows arrive nearly in order: try the last window first.
            let slot = match per_window.last() {
                Some((s, _)) if *s == start => per_window.len() - 1,
                _ => match per_window.iter().position(|(s, _)| *s == start) {
                    Some(slot) => slot,
                    None => {
                        per_window.push((start, Vec::new()));
                        per_window.len() - 1
                    }
                },
            };
            per_window[slot].1.push(row as u32);
        }
        self.metrics.late_rows_dropped += late;
        if per_window.is_empty() {
            return Ok(());
        }

        let input = AggregateInput::evaluate(&self.config.spec, batch)?;
        let whole_batch = per_window.len() == 1 && per_window[0].1.len() == rows;
        for (start, indices) in per_window {
            let state = match self.windows.entry(start) {
                std::collections::btree_map::Entry::Occupied(e) => e.into_mut(),
                std::collections::btree_map::Entry::Vacant(e) => {
                    e.insert(GroupedAggregates::try_new(&self.config.spec)?)
                }
            };
            if whole_batch {
                state.update(&input, rows)?;
            } else {
                let count = indices.len();
                let taken = input.take(&UInt32Array::from(indices))?;
                state.update(&taken, count)?;
            }
        }
        Ok(())
    }

    /// Emits, in window order, every window closed under `watermark`.
    pub fn advance(&mut self, watermark: EventTime) -> Result<Vec<RecordBatch>> {
        let mut out = Vec::new();
        while let Some((&start, _)) = self.windows.first_key_value() {
            if !self.config.window.is_closed(start, watermark) {
                break;
            }
            let state = self.windows.remove(&start).expect("key just seen");
            out.push(self.emit_window(start, state)?);
            self.metrics.windows_emitted += 1;
        }
        Ok(out)
    }

    fn window_starts(&self, batch: &RecordBatch) -> Result<Int64Array> {
        let (expr, bound) = &self.config.window_bound;
        let values = cast(&evaluate(expr.as_ref(), batch)?, &DataType::Int64)?;
        let values = values.as_primitive::<Int64Type>();
        if *bound == GroupColumn::WindowEnd {
            let size = self.config.window.size();
            return Ok(values.unary(|end| end.saturating_sub(size)));
        }
        Ok(values.clone())
    }

    fn emit_window(&self, start: EventTime, state: GroupedAggregates) -> Result<RecordBatch> {
        let groups = state.num_groups();
        let (keys, values) = state.emit()?;
        let constant = |value: EventTime| -> Result<ArrayRef> {
            Ok(cast(
                &Int64Array::from_value(value, groups),
                &self.config.time_type,
            )?)
        };
        let mut columns = Vec::with_capacity(self.config.output_schema.fields().len());
        for column in &self.config.group_columns {
            columns.push(match column {
                GroupColumn::WindowStart => constant(start)?,
                GroupColumn::WindowEnd => constant(self.config.window.end_of(start))?,
                GroupColumn::Key(i) => Arc::clone(
                    keys.get(*i)
                        .ok_or_else(|| err!(Internal, "group key {i} missing on emit"))?,
                ),
            });
        }
        columns.extend(values);
        for (column, field) in columns.iter().zip(self.config.output_schema.fields()) {
            if column.len() != groups {
                return Err(err!(
                    Internal,
                    "column {} has {} rows, expected {groups}",
                    field.name(),
                    column.len()
                ));
            }
        }
        let options = RecordBatchOptions::new().with_row_count(Some(groups));
        Ok(RecordBatch::try_new_with_options(
            Arc::clone(&self.config.output_schema),
            columns,
            &options,
        )?)
    }
}
