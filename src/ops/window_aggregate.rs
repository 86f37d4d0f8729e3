//! Window aggregation with event-time watermarks, for every sliced window
//! kind (`TUMBLE`, `HOP`, `CUMULATE`).
//!
//! ```text
//!   rows ──► slice of each row ──► slice closed? ──yes──► dropped, counted
//!                                      │no
//!                                      ▼
//!            per slice: GroupedAggregates (DataFusion accumulators)
//!                                      │ watermark passes a window end
//!                                      ▼
//!            window = merge of its slices' partial states ──► emit
//! ```
//!
//! Each event updates exactly one slice; a window merges the partial states
//! (`state()` / `merge_batch()`) of the slices it covers, so a hopping
//! window of size/slide = 30 costs one update per event, not 30. A slice is
//! dropped once no future window covers it; the last window to cover it
//! consumes it, the others copy it.
//!
//! A row is late when its slice already closed under the watermark in force
//! before the row arrived (Flink's rule for sliced windows). Window columns
//! are kept out of the interned group key: every row of a slice shares
//! them, so they are rebuilt as constants on emit.

use std::collections::BTreeMap;
use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, Int64Array, UInt32Array};
use arrow::datatypes::{DataType, Field, Int64Type, SchemaRef};
use arrow::record_batch::{RecordBatch, RecordBatchOptions};
use datafusion::physical_expr::PhysicalExpr;
use serde_json::json;

use super::evaluate;
use super::graph::WindowMetrics;
use super::grouped_aggregates::{
    Accumulators, AggregateInput, AggregateSpec, GroupedAggregates, PartialState,
};
use super::snapshot::{metrics_from_json, metrics_json, named_state_fields, split_states};
use crate::codec::time_values::{int64_as, to_type};
use crate::err;
use crate::error::Result;
use crate::state::{self, meta_opt_i64, OperatorState};
use crate::time::window::{TumblingWindow, WindowSpec};
use crate::time::EventTime;

/// One column of the aggregate's group-by, in output order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GroupColumn {
    /// `window_start`.
    WindowStart,
    /// `window_end`.
    WindowEnd,
    /// `window_time`: `window_end` minus 1 ms.
    WindowTime,
    /// The i-th user key of the [`AggregateSpec`].
    Key(usize),
}

/// The group-by columns of an output batch, in `order`: the window bounds
/// and the user keys (`keys[i]` for `Key(i)`).
pub fn group_columns(
    order: &[GroupColumn],
    starts: &ArrayRef,
    ends: &ArrayRef,
    keys: &[ArrayRef],
) -> Result<Vec<ArrayRef>> {
    order
        .iter()
        .map(|column| match column {
            GroupColumn::WindowStart => Ok(Arc::clone(starts)),
            GroupColumn::WindowEnd => Ok(Arc::clone(ends)),
            GroupColumn::WindowTime => window_times(ends),
            GroupColumn::Key(i) => keys
                .get(*i)
                .map(Arc::clone)
                .ok_or_else(|| err!(Internal, "group key {i} missing")),
        })
        .collect()
}

/// `window_time` (`window_end` minus 1 ms) for each of `ends`, a timestamp
/// column.
fn window_times(ends: &ArrayRef) -> Result<ArrayRef> {
    let unit = match ends.data_type() {
        DataType::Timestamp(unit, _) => *unit,
        other => return Err(err!(Internal, "window ends of type {other}")),
    };
    let slack = crate::time::units_per_milli(unit);
    let values = to_type(ends, &DataType::Int64)?;
    let times = values
        .as_primitive::<Int64Type>()
        .unary::<_, Int64Type>(|end| end.saturating_sub(slack));
    int64_as(times, ends.data_type())
}

/// Each row's start (of its slice, or for sessions of its own window) from
/// the scan's per-row window column: `window_start` as is, `window_end`
/// minus `width`.
pub fn row_starts(
    bound: &(Arc<dyn PhysicalExpr>, GroupColumn),
    width: i64,
    batch: &RecordBatch,
) -> Result<Int64Array> {
    let (expr, column) = bound;
    let evaluated = evaluate(expr.as_ref(), batch)?;
    let slack = match evaluated.data_type() {
        DataType::Timestamp(unit, _) => crate::time::units_per_milli(*unit),
        _ => 1,
    };
    let values = to_type(&evaluated, &DataType::Int64)?;
    let values = values.as_primitive::<Int64Type>();
    if *column == GroupColumn::WindowEnd {
        return Ok(values.unary(|end| end.saturating_sub(width)));
    }
    if *column == GroupColumn::WindowTime {
        // window_time = end - 1 ms.
        return Ok(values.unary(|time| time.saturating_add(slack).saturating_sub(width)));
    }
    Ok(values.clone())
}

/// Fixed configuration of a window aggregate, derived from the plan.
#[derive(Debug, Clone)]
pub struct WindowAggregateConfig {
    /// The window function.
    pub window: WindowSpec,
    /// Its slice grid.
    pub grid: TumblingWindow,
    /// Expression giving each input row's slice bound (the scan's per-row
    /// window column), and which bound it is.
    pub slice_bound: (Arc<dyn PhysicalExpr>, GroupColumn),
    /// Group-by columns in output order.
    pub group_columns: Vec<GroupColumn>,
    /// Keys and aggregates.
    pub spec: AggregateSpec,
    /// Output schema: group columns then aggregate values (`AggregateExec`'s).
    pub output_schema: SchemaRef,
    /// Type of the window columns.
    pub time_type: DataType,
}

/// Window aggregate operator.
#[derive(Debug)]
pub struct WindowAggregate {
    config: WindowAggregateConfig,
    /// Slices holding state, by start.
    slices: BTreeMap<EventTime, GroupedAggregates>,
    /// End of the last window fired: windows end in increasing order.
    last_fired_end: Option<EventTime>,
    metrics: WindowMetrics,
}

impl WindowAggregate {
    /// Its keys and aggregates.
    pub fn spec(&self) -> &AggregateSpec {
        &self.config.spec
    }

    /// A new operator with the same configuration and no state.
    pub fn fresh(&self) -> Result<Self> {
        Ok(Self::new(self.config.clone()))
    }

    /// An operator with no state.
    pub fn new(config: WindowAggregateConfig) -> Self {
        Self {
            config,
            slices: BTreeMap::new(),
            last_fired_end: None,
            metrics: WindowMetrics::default(),
        }
    }

    /// One line for EXPLAIN.
    pub fn describe(&self, unit: arrow::datatypes::TimeUnit) -> String {
        let config = &self.config;
        let groups: Vec<String> = config
            .group_columns
            .iter()
            .map(|c| match c {
                GroupColumn::WindowStart => "window_start".to_string(),
                GroupColumn::WindowEnd => "window_end".to_string(),
                GroupColumn::WindowTime => "window_time".to_string(),
                GroupColumn::Key(i) => config.spec.keys[*i].to_string(),
            })
            .collect();
        format!(
            "WindowAggregate: {}, group by [{}], aggregates [{}], emit on window close, late rows dropped and counted",
            config.window.describe(unit),
            groups.join(", "),
            config.spec.aggregate_names()
        )
    }

    fn snapshot_fields(&self) -> Result<Vec<Field>> {
        let mut fields = vec![Field::new("slice", DataType::Int64, true)];
        fields.extend(
            self.config
                .spec
                .key_schema
                .fields()
                .iter()
                .map(|f| f.as_ref().clone().with_nullable(true)),
        );
        fields.extend(named_state_fields(&Accumulators::state_fields(
            &self.config.spec,
        )?));
        Ok(fields)
    }

    /// The operator's state: one row per (slice, group) with the group key
    /// and DataFusion's partial aggregate state. Leaves the operator as it was.
    pub fn snapshot(&mut self) -> Result<OperatorState> {
        let fields = self.snapshot_fields()?;
        let mut slice_starts = Vec::new();
        let mut parts: Vec<Vec<ArrayRef>> = vec![Vec::new(); fields.len() - 1];
        for (start, slice) in self.slices.iter_mut() {
            let partial = slice.snapshot()?;
            slice_starts.extend(std::iter::repeat_n(*start, partial.num_groups));
            let columns = partial
                .keys
                .into_iter()
                .chain(partial.states.into_iter().flatten());
            for (part, column) in parts.iter_mut().zip(columns) {
                part.push(column);
            }
        }
        let rows = slice_starts.len();
        let mut columns: Vec<ArrayRef> = vec![Arc::new(Int64Array::from(slice_starts))];
        for (part, field) in parts.iter().zip(&fields[1..]) {
            columns.push(if part.is_empty() {
                arrow::array::new_empty_array(field.data_type())
            } else {
                let refs: Vec<&dyn Array> = part.iter().map(|a| a.as_ref()).collect();
                arrow::compute::concat(&refs)?
            });
        }
        Ok(OperatorState {
            meta: json!({ "last_fired_end": self.last_fired_end, "metrics": metrics_json(&self.metrics) }),
            batch: Some(state::batch(fields, columns, rows)?),
        })
    }

    /// Replaces this operator's state with a snapshot's.
    pub fn restore(&mut self, snapshot: &OperatorState) -> Result<()> {
        let fields = self.snapshot_fields()?;
        let batch = snapshot
            .batch
            .as_ref()
            .ok_or_else(|| err!(CorruptCheckpoint, "window state has no data"))?;
        state::expect_schema(batch, &fields, "a window aggregate")?;
        let widths = Accumulators::state_widths(&self.config.spec)?;
        let key_count = self.config.spec.keys.len();
        let starts = batch.column(0).as_primitive::<Int64Type>();
        let mut slices = BTreeMap::new();
        let mut row = 0;
        while row < batch.num_rows() {
            let start = starts.value(row);
            let mut end = row;
            while end < batch.num_rows() && starts.value(end) == start {
                end += 1;
            }
            let length = end - row;
            let columns: Vec<ArrayRef> = batch.columns()[1..]
                .iter()
                .map(|c| c.slice(row, length))
                .collect();
            let partial = PartialState {
                keys: columns[..key_count].to_vec(),
                states: split_states(&columns[key_count..], &widths),
                num_groups: length,
            };
            let mut aggregates = GroupedAggregates::try_new(&self.config.spec)?;
            aggregates.merge_state(&partial)?;
            slices.insert(start, aggregates);
            row = end;
        }
        self.slices = slices;
        self.last_fired_end = meta_opt_i64(&snapshot.meta, "last_fired_end");
        self.metrics = metrics_from_json(&snapshot.meta)?;
        Ok(())
    }

    /// Counters so far.
    pub fn metrics(&self) -> &WindowMetrics {
        &self.metrics
    }

    /// Windows holding state: windows that have slices and have not fired.
    pub fn open_windows(&self) -> usize {
        let (Some(first), Some(last)) = (self.slices.keys().next(), self.slices.keys().next_back())
        else {
            return 0;
        };
        let width = self.config.grid.size();
        let mut end = first.saturating_add(width);
        if let Some(fired) = self.last_fired_end {
            end = end.max(fired.saturating_add(width));
        }
        // Windows end at slice ends, from the first unfired one to the last
        // slice's last window.
        let last_end = match self.config.window {
            WindowSpec::Tumble(_) => last.saturating_add(width),
            WindowSpec::Hop { size, .. } => last.saturating_add(size),
            WindowSpec::Cumulate { size, .. } => size.end_of(size.start_of(*last)),
            WindowSpec::Session(_) => last.saturating_add(width),
        };
        usize::try_from((last_end.saturating_sub(end)) / width + 1).unwrap_or(usize::MAX)
    }

    /// Approximate memory held, in bytes.
    pub fn state_size(&self) -> usize {
        self.slices.values().map(GroupedAggregates::size).sum()
    }

    /// Adds a batch. `row_watermarks[i]` is the watermark in force before
    /// row `i`. Windows are fired row by row as that watermark passes their
    /// end, exactly as if events arrived one at a time, so the results do not
    /// depend on how input is split into pushes. A row counts in every window
    /// covering it that has not fired yet (Flink's rule); a row whose windows
    /// have all fired is late: dropped, counted, and its position pushed to
    /// `late_rows` when given. Returns the windows fired inside the batch.
    pub fn process(
        &mut self,
        batch: &RecordBatch,
        row_watermarks: &Int64Array,
        mut late_rows: Option<&mut Vec<u32>>,
    ) -> Result<Vec<RecordBatch>> {
        let rows = batch.num_rows();
        if rows == 0 {
            return Ok(Vec::new());
        }
        self.metrics.rows_in += rows as u64;
        let starts = self.slice_starts(batch)?;
        let grid = self.config.grid;
        let input = AggregateInput::evaluate(&self.config.spec, batch)?;
        let mut fired = Vec::new();
        // Rows since the last firing, grouped by slice; usually one or two.
        let mut segment: Vec<(EventTime, Vec<u32>)> = Vec::new();
        let mut segment_rows = 0usize;
        // The first open slice and the first slice of the segment, kept up to
        // date here rather than looked up per row (a B-tree walk each time).
        let mut first_open = self.slices.keys().next().copied();
        let mut pending_first: Option<EventTime> = None;
        for (row, start) in starts.iter().enumerate() {
            let Some(start) = start else { continue };
            let watermark = row_watermarks.value(row);
            let first = match (first_open, pending_first) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
            if self.next_end_closed(watermark, first) {
                self.apply_segment(&input, std::mem::take(&mut segment), segment_rows == rows)?;
                segment_rows = 0;
                pending_first = None;
                fired.extend(self.advance(watermark)?);
                first_open = self.slices.keys().next().copied();
            }
            if grid.is_end_closed(self.config.window.last_end_covering(start), watermark) {
                self.metrics.late_rows_dropped += 1;
                if let Some(late_rows) = late_rows.as_mut() {
                    late_rows.push(row as u32);
                }
                continue;
            }
            // Rows arrive nearly in order: try the last slice first.
            let slot = match segment.last() {
                Some((s, _)) if *s == start => segment.len() - 1,
                _ => match segment.iter().position(|(s, _)| *s == start) {
                    Some(slot) => slot,
                    None => {
                        segment.push((start, Vec::new()));
                        segment.len() - 1
                    }
                },
            };
            segment[slot].1.push(row as u32);
            segment_rows += 1;
            pending_first = Some(pending_first.map_or(start, |p| p.min(start)));
        }
        self.apply_segment(&input, segment, segment_rows == rows)?;
        Ok(fired)
    }

    /// Whether the next window to fire is closed under `watermark`, given
    /// the first slice holding rows (applied or not yet).
    fn next_end_closed(&self, watermark: EventTime, first: Option<EventTime>) -> bool {
        let Some(first) = first else { return false };
        let width = self.config.grid.size();
        let mut end = first.saturating_add(width);
        if let Some(fired) = self.last_fired_end {
            end = end.max(fired.saturating_add(width));
        }
        self.config.grid.is_end_closed(end, watermark)
    }

    /// Adds rows (grouped by slice) to their slices.
    fn apply_segment(
        &mut self,
        input: &AggregateInput,
        segment: Vec<(EventTime, Vec<u32>)>,
        whole_batch: bool,
    ) -> Result<()> {
        let single = segment.len() == 1;
        for (start, indices) in segment {
            let state = match self.slices.entry(start) {
                std::collections::btree_map::Entry::Occupied(e) => e.into_mut(),
                std::collections::btree_map::Entry::Vacant(e) => {
                    e.insert(GroupedAggregates::try_new(&self.config.spec)?)
                }
            };
            if single && whole_batch {
                state.update(input, indices.len())?;
            } else {
                let count = indices.len();
                let taken = input.take(&UInt32Array::from(indices))?;
                state.update(&taken, count)?;
            }
        }
        Ok(())
    }

    /// Emits, in order of window end, every window closed under `watermark`.
    pub fn advance(&mut self, watermark: EventTime) -> Result<Vec<RecordBatch>> {
        let spec = self.config.window;
        let grid = self.config.grid;
        let width = grid.size();
        let mut out = Vec::new();
        // Each turn fires the first unfired window that covers the oldest
        // slice, so every turn emits and the loop is bounded by the output.
        while let Some((&first, _)) = self.slices.first_key_value() {
            let mut end = first.saturating_add(width);
            if let Some(fired) = self.last_fired_end {
                end = end.max(fired.saturating_add(width));
            }
            if !grid.is_end_closed(end, watermark) {
                break;
            }
            let start = spec.start_for_end(end);
            // Slices before this are covered by no later window.
            let keep_from = spec.start_for_end(end.saturating_add(width));
            let covered: Vec<EventTime> = self.slices.range(start..end).map(|(s, _)| *s).collect();
            if !covered.is_empty() {
                out.push(self.fire(start, end, &covered, keep_from)?);
                self.metrics.windows_emitted += 1;
            }
            self.last_fired_end = Some(end);
            let stale: Vec<EventTime> = self.slices.range(..keep_from).map(|(s, _)| *s).collect();
            for slice in stale {
                self.slices.remove(&slice);
            }
            if end == EventTime::MAX {
                self.slices.clear();
            }
        }
        // Windows that closed with no data count as fired too: a row that
        // arrives later must not reopen them.
        let closed_through = grid.last_closed_end(watermark);
        if self
            .last_fired_end
            .is_none_or(|fired| fired < closed_through)
        {
            self.last_fired_end = Some(closed_through);
            let keep_from = spec.start_for_end(closed_through.saturating_add(width));
            let stale: Vec<EventTime> = self.slices.range(..keep_from).map(|(s, _)| *s).collect();
            for slice in stale {
                self.slices.remove(&slice);
            }
        }
        Ok(out)
    }

    fn fire(
        &mut self,
        start: EventTime,
        end: EventTime,
        covered: &[EventTime],
        keep_from: EventTime,
    ) -> Result<RecordBatch> {
        // One slice that no later window needs (TUMBLE): emit it as is.
        if let [only] = covered {
            if *only < keep_from {
                let state = self
                    .slices
                    .remove(only)
                    .ok_or_else(|| err!(Internal, "slice vanished"))?;
                return self.emit_window(start, end, state);
            }
        }
        let mut window = GroupedAggregates::try_new(&self.config.spec)?;
        for slice_start in covered {
            let partial = if *slice_start < keep_from {
                let mut slice = self
                    .slices
                    .remove(slice_start)
                    .ok_or_else(|| err!(Internal, "slice vanished"))?;
                slice.take_state()?
            } else {
                self.slices
                    .get_mut(slice_start)
                    .ok_or_else(|| err!(Internal, "slice vanished"))?
                    .snapshot()?
            };
            window.merge_state(&partial)?;
        }
        self.emit_window(start, end, window)
    }

    fn slice_starts(&self, batch: &RecordBatch) -> Result<Int64Array> {
        row_starts(&self.config.slice_bound, self.config.grid.size(), batch)
    }

    fn emit_window(
        &self,
        start: EventTime,
        end: EventTime,
        state: GroupedAggregates,
    ) -> Result<RecordBatch> {
        let groups = state.num_groups();
        let (keys, values) = state.emit()?;
        let constant = |value: EventTime| -> Result<ArrayRef> {
            int64_as(
                Int64Array::from_value(value, groups),
                &self.config.time_type,
            )
        };
        let mut columns = group_columns(
            &self.config.group_columns,
            &constant(start)?,
            &constant(end)?,
            &keys,
        )?;
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
