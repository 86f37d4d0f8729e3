//! Windows whose results are refined after they are first emitted: early
//! results (`EMIT ON UPDATE`) and updates from late rows within an allowed
//! lateness. Output is a changelog.
//!
//! ```text
//!  EMIT ON UPDATE:        push ──► insert / update_before+after for each changed (window, key)
//!  EMIT ON WINDOW CLOSE:  close ──► insert for every key of the window
//!  allowed lateness L:    a row late by < L ──► update_before+after of the closed window
//!  end + L passed:        state forgotten; the last emitted rows are final
//! ```
//!
//! Each (window, key) group holds DataFusion `Accumulator`s of its own, so
//! its value can be read after every push without consuming it. A HOP or
//! CUMULATE row is added to each window covering it (not sliced): the
//! refining modes trade the slicing optimisation for readable state.

use std::collections::BTreeMap;
use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, Int64Array, UInt32Array};
use arrow::datatypes::{DataType, Field, Int64Type, Schema, SchemaRef};
use arrow::record_batch::{RecordBatch, RecordBatchOptions};
use datafusion::common::ScalarValue;
use datafusion::logical_expr::Accumulator;
use datafusion::physical_expr::PhysicalExpr;
use foldhash::{HashSet, HashSetExt};
use serde_json::json;

use super::changelog::{value_columns, ChangeList, Changes, Values};
use super::gather::gather;
use super::grouped_aggregates::{
    apply_run, create_accumulators, evaluate_accumulators, AggregateInput, AggregateSpec,
};
use super::key_ids::GroupsByKey;
use super::row_accumulators::RowAccumulator;
use super::snapshot::{
    key_types, metrics_from_json, metrics_json, value_fields, GroupLayout, GroupRow,
};
use super::window_aggregate::{group_columns, row_starts, GroupColumn, WindowMetrics};
use crate::codec::time_values::to_type;
use crate::err;
use crate::error::Result;
use crate::state::OperatorState;
use crate::time::emit::EmitMode;
use crate::time::window::{TumblingWindow, WindowSpec};
use crate::time::EventTime;

/// Fixed configuration, derived from the plan.
#[derive(Debug, Clone)]
pub struct RefiningWindowConfig {
    /// TUMBLE, HOP or CUMULATE.
    pub window: WindowSpec,
    /// Its slice grid (window ends fall on it).
    pub grid: TumblingWindow,
    /// Expression giving each row's slice bound, and which bound it is.
    pub slice_bound: (Arc<dyn PhysicalExpr>, GroupColumn),
    /// Group-by columns in output order.
    pub group_columns: Vec<GroupColumn>,
    /// Keys and aggregates.
    pub spec: AggregateSpec,
    /// Output schema (`AggregateExec`'s).
    pub output_schema: SchemaRef,
    /// Type of the window columns.
    pub time_type: DataType,
    /// When results are emitted.
    pub emit: EmitMode,
    /// How long (ticks) after closing a window still takes late rows.
    pub allowed_lateness: i64,
}

struct Group {
    id: u64,
    /// Its window's end (part of its key).
    end: EventTime,
    accumulators: Vec<RowAccumulator>,
    last: Option<Vec<ScalarValue>>,
}

/// Refining window aggregate operator.
pub struct RefiningWindowAggregate {
    config: RefiningWindowConfig,
    /// Keys are [window_start, window_end, user keys...]; groups by key number.
    groups: GroupsByKey<Group>,
    /// Groups by (window end, id) -> key number: windows close and are
    /// purged in end order.
    by_end: BTreeMap<(EventTime, u64), usize>,
    /// Windows ending at or before this have been emitted (ON WINDOW CLOSE).
    closed_through: Option<EventTime>,
    /// EMIT EVERY: groups (key numbers) changed since the last periodic emission.
    dirty: HashSet<usize>,
    /// EMIT EVERY: wall-clock time of the last periodic emission.
    last_emit_millis: Option<i64>,
    next_id: u64,
    metrics: WindowMetrics,
}

impl std::fmt::Debug for RefiningWindowAggregate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RefiningWindowAggregate")
            .field("groups", &self.groups.len())
            .finish()
    }
}

impl RefiningWindowAggregate {
    /// An operator with no state.
    pub fn try_new(config: RefiningWindowConfig) -> Result<Self> {
        if matches!(config.window, WindowSpec::Session(_)) {
            return Err(err!(
                Unsupported,
                "EMIT ON UPDATE and allowed lateness are not supported for SESSION windows yet"
            ));
        }
        Ok(Self {
            groups: GroupsByKey::try_new(&group_key_schema(&config.spec))?,
            config,
            by_end: BTreeMap::new(),
            closed_through: None,
            dirty: HashSet::new(),
            last_emit_millis: None,
            next_id: 0,
            metrics: WindowMetrics::default(),
        })
    }

    /// The operator's state: one row per (window, key) group. Leaves the
    /// operator as it was.
    pub fn snapshot(&mut self) -> Result<OperatorState> {
        let layout = group_layout(&self.config);
        let dirty = &self.dirty;
        // Groups in the order they were opened.
        let (key_columns, groups) = self.groups.in_order(|g| g.id)?;
        let rows = groups
            .into_iter()
            .map(|(key, group)| GroupRow {
                id: group.id,
                extra: Vec::new(),
                accumulators: &mut group.accumulators,
                last: group.last.as_ref(),
                flag: dirty.contains(&key),
            })
            .collect();
        let batch = layout.write(key_columns, rows)?;
        Ok(OperatorState {
            meta: json!({
                "next_id": self.next_id,
                "closed_through": self.closed_through,
                "last_emit_millis": self.last_emit_millis,
                "metrics": metrics_json(&self.metrics),
            }),
            batch: Some(batch),
        })
    }

    /// Replaces this operator's state with a snapshot's.
    pub fn restore(&mut self, snapshot: &OperatorState) -> Result<()> {
        let batch = snapshot
            .batch
            .as_ref()
            .ok_or_else(|| err!(CorruptCheckpoint, "window state has no data"))?;
        let (key_columns, restored) =
            group_layout(&self.config).read(batch, "a refining window aggregate")?;
        // Key columns: [window_start, window_end, user keys...].
        let ends = key_columns[1].as_primitive::<Int64Type>();
        let flags: Vec<bool> = restored.iter().map(|group| group.flag).collect();
        let restored: Vec<Group> = restored
            .into_iter()
            .enumerate()
            .map(|(row, group)| Group {
                id: group.id,
                end: ends.value(row),
                accumulators: group.accumulators,
                last: group.last,
            })
            .collect();
        let (groups, keys) =
            GroupsByKey::restore(&group_key_schema(&self.config.spec), &key_columns, restored)?;
        let by_end = groups
            .iter()
            .map(|(key, group)| ((group.end, group.id), key))
            .collect();
        let dirty = keys
            .into_iter()
            .zip(flags)
            .filter_map(|(key, flag)| flag.then_some(key))
            .collect();
        self.groups = groups;
        self.by_end = by_end;
        self.dirty = dirty;
        self.next_id = crate::state::meta_i64(&snapshot.meta, "next_id")? as u64;
        self.closed_through = crate::state::meta_opt_i64(&snapshot.meta, "closed_through");
        self.last_emit_millis = crate::state::meta_opt_i64(&snapshot.meta, "last_emit_millis");
        self.metrics = metrics_from_json(&snapshot.meta)?;
        Ok(())
    }

    /// Counters so far.
    pub fn metrics(&self) -> &WindowMetrics {
        &self.metrics
    }

    /// Windows holding state.
    pub fn open_windows(&self) -> usize {
        let mut ends: Vec<EventTime> = self.by_end.keys().map(|(end, _)| *end).collect();
        ends.dedup();
        ends.len()
    }

    /// Approximate memory held, in bytes.
    pub fn state_size(&self) -> usize {
        self.groups
            .iter()
            .map(|(_, g)| g.accumulators.iter().map(|a| a.size()).sum::<usize>())
            .sum()
    }

    /// One line for EXPLAIN.
    pub fn describe(&self, unit: arrow::datatypes::TimeUnit) -> String {
        let emit = self.config.emit.describe();
        format!(
            "RefiningWindowAggregate: {}, aggregates [{}], {emit}, allowed lateness {}",
            self.config.window.describe(unit),
            self.config.spec.aggregate_names(),
            crate::time::format_duration(self.config.allowed_lateness, unit)
        )
    }

    fn purged(&self, end: EventTime, watermark: EventTime) -> bool {
        self.config
            .grid
            .is_end_closed(end.saturating_add(self.config.allowed_lateness), watermark)
    }

    /// Adds a batch; returns the changes it makes visible. `watermark` is the
    /// watermark after the push; late rows (every window purged) go to `late_rows`.
    pub fn process(
        &mut self,
        batch: &RecordBatch,
        row_watermarks: &Int64Array,
        watermark: EventTime,
        mut late_rows: Option<&mut Vec<u32>>,
    ) -> Result<Changes> {
        let rows = batch.num_rows();
        self.metrics.rows_in += rows as u64;
        let slices = self.slice_starts(batch)?;
        let input = AggregateInput::evaluate(&self.config.spec, batch)?;
        // (row, window start, window end) for every window a row still counts in.
        let mut assigned_rows = Vec::new();
        let mut starts = Vec::new();
        let mut ends = Vec::new();
        let width = self.config.grid.size();
        for row in 0..rows {
            if slices.is_null(row) {
                continue;
            }
            let slice = slices.value(row);
            let row_watermark = row_watermarks.value(row);
            let last_end = self.config.window.last_end_covering(slice);
            let mut end = slice.saturating_add(width);
            let mut counted = false;
            while end <= last_end {
                let start = self.config.window.start_for_end(end);
                if start <= slice && !self.purged(end, row_watermark) {
                    assigned_rows.push(row as u32);
                    starts.push(start);
                    ends.push(end);
                    counted = true;
                }
                if end == EventTime::MAX {
                    break;
                }
                end = end.saturating_add(width);
            }
            if !counted {
                self.metrics.late_rows_dropped += 1;
                if let Some(late_rows) = late_rows.as_mut() {
                    late_rows.push(row as u32);
                }
            }
        }
        let mut changes = ChangeList::default();
        if !assigned_rows.is_empty() {
            let picked = UInt32Array::from(assigned_rows);
            let ends = Int64Array::from(ends);
            let mut key_columns: Vec<ArrayRef> =
                vec![Arc::new(Int64Array::from(starts)), Arc::new(ends.clone())];
            for key in input.keys() {
                key_columns.push(gather(key, &picked)?);
            }
            let grouped = self.groups.group(&key_columns, picked.len())?;
            // Each group's rows together: one `take` per argument for the batch.
            let batch_rows: Vec<u32> = grouped
                .order
                .iter()
                .map(|&i| picked.value(i as usize))
                .collect();
            let taken = input.regroup(&UInt32Array::from(batch_rows))?;
            for (key, (offset, len)) in grouped.keys.into_iter().zip(grouped.runs) {
                // The window end is part of the key: its first row's.
                let end = ends.value(grouped.order[offset] as usize);
                let (spec, next_id, by_end) =
                    (&self.config.spec, &mut self.next_id, &mut self.by_end);
                let group = self.groups.get_or_insert(key, || {
                    let accumulators = create_accumulators(spec)?;
                    let id = *next_id;
                    *next_id += 1;
                    by_end.insert((end, id), key);
                    Ok(Group {
                        id,
                        end,
                        accumulators,
                        last: None,
                    })
                })?;
                apply_run(&mut group.accumulators, &taken, offset, len)?;
                let closed = self.config.grid.is_end_closed(end, watermark);
                let visible = match self.config.emit {
                    EmitMode::OnUpdate => true,
                    EmitMode::OnWindowClose | EmitMode::Every { .. } => closed,
                };
                if visible {
                    self.dirty.remove(&key);
                    self.emit_group(key, &mut changes)?;
                } else if self.is_periodic() {
                    self.dirty.insert(key);
                }
            }
        }
        let mut more = self.advance_into(watermark, changes)?;
        self.finish(std::mem::take(&mut more))
    }

    /// Emits windows that closed (ON WINDOW CLOSE) and forgets purged ones.
    pub fn advance(&mut self, watermark: EventTime) -> Result<Changes> {
        let changes = self.advance_into(watermark, ChangeList::default())?;
        self.finish(changes)
    }

    /// Whether this emits periodically (EMIT EVERY) and wants wall-clock ticks.
    pub fn is_periodic(&self) -> bool {
        matches!(self.config.emit, EmitMode::Every { .. })
    }

    /// EMIT EVERY: emits what changed since the last period, if one passed.
    pub fn on_wall_clock(&mut self, now_millis: i64) -> Result<Changes> {
        let EmitMode::Every { millis } = self.config.emit else {
            return self.finish(ChangeList::default());
        };
        if self
            .last_emit_millis
            .is_some_and(|last| now_millis.saturating_sub(last) < millis)
        {
            return self.finish(ChangeList::default());
        }
        self.last_emit_millis = Some(now_millis);
        let mut changes = ChangeList::default();
        // In the order the groups were opened.
        let mut dirty: Vec<(u64, usize)> = self
            .dirty
            .drain()
            .filter_map(|key| Some((self.groups.get(key)?.id, key)))
            .collect();
        dirty.sort_unstable();
        let dirty = dirty.into_iter().map(|(_, key)| key);
        for key in dirty {
            self.emit_group(key, &mut changes)?;
        }
        self.finish(changes)
    }

    /// Adds a group's change since its last emission, if any.
    fn emit_group(&mut self, key: usize, changes: &mut ChangeList<usize>) -> Result<()> {
        let Some(group) = self.groups.get_mut(key) else {
            return Ok(());
        };
        let values = evaluate_accumulators(&mut group.accumulators)?;
        if group.last.as_ref() != Some(&values) {
            changes.push(key, group.last.replace(values.clone()), Some(values));
        }
        Ok(())
    }

    fn advance_into(
        &mut self,
        watermark: EventTime,
        mut changes: ChangeList<usize>,
    ) -> Result<ChangeList<usize>> {
        if self.is_periodic() {
            // Closing windows emit their pending changes at once.
            let from = self
                .closed_through
                .map_or(EventTime::MIN, |c| c.saturating_add(1));
            let closed: Vec<usize> = self
                .by_end
                .range((from, 0)..)
                .take_while(|((end, _), _)| self.config.grid.is_end_closed(*end, watermark))
                .map(|(_, key)| *key)
                .collect();
            for key in closed {
                if self.dirty.remove(&key) {
                    self.emit_group(key, &mut changes)?;
                }
            }
            let through = self.config.grid.last_closed_end(watermark);
            self.closed_through = Some(self.closed_through.map_or(through, |c| c.max(through)));
        }
        if self.config.emit == EmitMode::OnWindowClose {
            // Windows that closed since the last call, in end order.
            let from = self
                .closed_through
                .map_or(EventTime::MIN, |c| c.saturating_add(1));
            let closed: Vec<(EventTime, u64)> = self
                .by_end
                .range((from, 0)..)
                .map(|(k, _)| *k)
                .take_while(|(end, _)| self.config.grid.is_end_closed(*end, watermark))
                .collect();
            for (end, id) in closed {
                let Some(&key) = self.by_end.get(&(end, id)) else {
                    continue;
                };
                let Some(group) = self.groups.get_mut(key) else {
                    continue;
                };
                if group.last.is_none() {
                    let values = evaluate_accumulators(&mut group.accumulators)?;
                    group.last = Some(values.clone());
                    changes.push(key, None, Some(values));
                }
            }
            let through = self.config.grid.last_closed_end(watermark);
            self.closed_through = Some(self.closed_through.map_or(through, |c| c.max(through)));
        }
        while let Some((&(end, id), _)) = self.by_end.first_key_value() {
            if !self.purged(end, watermark) {
                break;
            }
            if let Some(key) = self.by_end.remove(&(end, id)) {
                self.groups.remove(key);
                self.dirty.remove(&key);
            }
        }
        Ok(changes)
    }

    /// Turns changes into output, then lets the key numbers be compacted
    /// (changes name keys by number, so not before).
    fn finish(&mut self, changes: ChangeList<usize>) -> Result<Changes> {
        self.metrics.windows_emitted += changes.len() as u64;
        let changes = changes.into_changes(|keys, values| self.batch(keys, values))?;
        if let Some(renumbered) = self.groups.compact() {
            self.by_end = renumbered.values(std::mem::take(&mut self.by_end));
            self.dirty = self
                .dirty
                .drain()
                .filter_map(|key| renumbered.get(key))
                .collect();
        }
        Ok(changes)
    }

    fn batch(&self, keys: &[usize], values: Vec<Values>) -> Result<RecordBatch> {
        let schema = &self.config.output_schema;
        let key_columns = self.groups.columns(keys)?;
        // Interned keys are [window_start, window_end, user keys...].
        let mut columns = group_columns(
            &self.config.group_columns,
            &to_type(&key_columns[0], &self.config.time_type)?,
            &to_type(&key_columns[1], &self.config.time_type)?,
            &key_columns[2..],
        )?;
        let first_aggregate = columns.len();
        columns.extend(value_columns(schema, first_aggregate, &values)?);
        let options = RecordBatchOptions::new().with_row_count(Some(keys.len()));
        Ok(RecordBatch::try_new_with_options(
            Arc::clone(schema),
            columns,
            &options,
        )?)
    }

    fn slice_starts(&self, batch: &RecordBatch) -> Result<Int64Array> {
        row_starts(&self.config.slice_bound, self.config.grid.size(), batch)
    }
}

/// How a group is laid out in a snapshot: key (window bounds and user
/// keys), id, accumulator state, last emitted values, changed flag. A free
/// function so `snapshot` can hold it while borrowing the groups mutably.
fn group_layout(config: &RefiningWindowConfig) -> GroupLayout<'_> {
    GroupLayout {
        key_types: key_types(&group_key_schema(&config.spec)),
        extra: &[],
        spec: &config.spec,
        values: value_fields(&config.output_schema, config.group_columns.len(), "last_"),
    }
}

/// The schema of a group's key: window start and end, then the user's keys.
fn group_key_schema(spec: &AggregateSpec) -> Schema {
    let mut fields = vec![
        Field::new("window_start", DataType::Int64, false),
        Field::new("window_end", DataType::Int64, false),
    ];
    fields.extend(spec.key_schema.fields().iter().map(|f| f.as_ref().clone()));
    Schema::new(fields)
}
