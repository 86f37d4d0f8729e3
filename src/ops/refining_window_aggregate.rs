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
//! Each (window, key) group holds accumulators of its own
//! ([`super::row_accumulators`]), so its value can be read after every push
//! without consuming it. A HOP or CUMULATE row is added to each window
//! covering it (not sliced): the refining modes trade the slicing
//! optimisation for readable state.

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
use super::graph::WindowMetrics;
use super::grouped_aggregates::{
    apply_run, create_accumulators, evaluate_accumulators, AggregateInput, AggregateSpec,
};
use super::key_ids::GroupsByKey;
use super::row_accumulators::RowAccumulator;
use super::snapshot::{
    key_types, metrics_from_json, metrics_json, value_fields, GroupLayout, GroupRow,
};
use super::window_aggregate::{group_columns, row_starts, GroupColumn};
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

/// One (window, key) group.
struct Group {
    id: u64,
    /// Its window's end (its start follows from it).
    end: EventTime,
    accumulators: Vec<RowAccumulator>,
    last: Option<Vec<ScalarValue>>,
}

/// Where a group is: its user key's number and its window's end.
type GroupAt = (usize, EventTime);

/// Refining window aggregate operator.
pub struct RefiningWindowAggregate {
    config: RefiningWindowConfig,
    /// Per user key (by number): the groups of its open windows, by end.
    /// Keys are numbered alone (one string key: one probe per row), not
    /// together with the window bounds (a three-column hash table).
    groups: GroupsByKey<Vec<Group>>,
    /// (window end, group id) -> key number: windows close and are purged
    /// in end order.
    by_end: BTreeMap<(EventTime, u64), usize>,
    /// Windows ending at or before this have been emitted (ON WINDOW CLOSE).
    closed_through: Option<EventTime>,
    /// EMIT EVERY: groups changed since the last periodic emission.
    dirty: HashSet<GroupAt>,
    /// EMIT EVERY: wall-clock time of the last periodic emission.
    last_emit_millis: Option<i64>,
    next_id: u64,
    metrics: WindowMetrics,
}

impl std::fmt::Debug for RefiningWindowAggregate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RefiningWindowAggregate")
            .field("groups", &self.by_end.len())
            .finish()
    }
}

impl RefiningWindowAggregate {
    /// Its keys and aggregates.
    pub fn spec(&self) -> &AggregateSpec {
        &self.config.spec
    }

    /// A new operator with the same configuration and no state.
    pub fn fresh(&self) -> Result<Self> {
        Self::try_new(self.config.clone())
    }

    /// An operator with no state.
    pub fn try_new(config: RefiningWindowConfig) -> Result<Self> {
        if matches!(config.window, WindowSpec::Session(_)) {
            return Err(err!(
                Unsupported,
                "EMIT ON UPDATE and allowed lateness are not supported for SESSION windows yet"
            ));
        }
        Ok(Self {
            groups: GroupsByKey::try_new(&config.spec.key_schema)?,
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
        // Groups in the order they were opened, with their keys.
        let mut order: Vec<(u64, GroupAt)> = self
            .groups
            .iter()
            .flat_map(|(key, windows)| windows.iter().map(move |g| (g.id, (key, g.end))))
            .collect();
        order.sort_unstable();
        let ends: Vec<EventTime> = order.iter().map(|(_, (_, end))| *end).collect();
        let starts: Vec<EventTime> = ends
            .iter()
            .map(|&end| self.config.window.start_for_end(end))
            .collect();
        let numbers: Vec<usize> = order.iter().map(|(_, (key, _))| *key).collect();
        // Key columns: [window_start, window_end, user keys...].
        let mut key_columns: Vec<ArrayRef> = vec![
            Arc::new(Int64Array::from(starts)),
            Arc::new(Int64Array::from(ends)),
        ];
        key_columns.extend(self.groups.columns(&numbers)?);
        let layout = group_layout(&self.config);
        let dirty = &self.dirty;
        // The same groups again, to write their state: ids are unique, so
        // sorting by id gives the order of the key columns.
        let mut groups: Vec<(usize, &mut Group)> = self
            .groups
            .iter_mut()
            .flat_map(|(key, windows)| windows.iter_mut().map(move |g| (key, g)))
            .collect();
        groups.sort_unstable_by_key(|(_, group)| group.id);
        let rows = groups
            .into_iter()
            .map(|(key, group)| GroupRow {
                id: group.id,
                extra: Vec::new(),
                flag: dirty.contains(&(key, group.end)),
                accumulators: &mut group.accumulators,
                last: group.last.as_ref(),
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
        let mut groups = GroupsByKey::<Vec<Group>>::try_new(&self.config.spec.key_schema)?;
        let mut numbers = Vec::new();
        groups.intern(&key_columns[2..], restored.len(), &mut numbers)?;
        let (mut by_end, mut dirty) = (BTreeMap::new(), HashSet::new());
        for ((row, group), key) in restored.into_iter().enumerate().zip(numbers) {
            let end = ends.value(row);
            let windows = groups.get_or_insert(key, || Ok(Vec::new()))?;
            let Err(at) = windows.binary_search_by_key(&end, |g| g.end) else {
                return Err(err!(
                    CorruptCheckpoint,
                    "two groups of one window and key in a snapshot"
                ));
            };
            windows.insert(
                at,
                Group {
                    id: group.id,
                    end,
                    accumulators: group.accumulators,
                    last: group.last,
                },
            );
            if by_end.insert((end, group.id), key).is_some() {
                return Err(err!(
                    CorruptCheckpoint,
                    "two window groups with one id in a snapshot"
                ));
            }
            if group.flag {
                dirty.insert((key, end));
            }
        }
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
            .flat_map(|(_, windows)| windows)
            .map(|g| g.accumulators.iter().map(|a| a.size()).sum::<usize>())
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
        // (row, window end) for every window a row still counts in.
        let mut assigned_rows = Vec::new();
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
            let mut row_keys = Vec::with_capacity(rows);
            self.groups.intern(input.keys(), rows, &mut row_keys)?;
            let keys: Vec<usize> = assigned_rows
                .iter()
                .map(|&row| row_keys[row as usize])
                .collect();
            let mut grouped = self.groups.runs(&keys)?;
            // Within a key, its windows in end order (a HOP row is assigned
            // to its windows one after the other).
            for &(offset, len) in &grouped.runs {
                let run = &mut grouped.order[offset..offset + len];
                if !run.is_sorted_by_key(|&i| ends[i as usize]) {
                    run.sort_by_key(|&i| ends[i as usize]);
                }
            }
            // Each group's rows together: one `take` per argument for the batch.
            let batch_rows: Vec<u32> = grouped
                .order
                .iter()
                .map(|&i| assigned_rows[i as usize])
                .collect();
            let taken = input.regroup(&UInt32Array::from(batch_rows))?;
            for (key, (offset, len)) in grouped.keys.into_iter().zip(grouped.runs) {
                let mut at = offset;
                while at < offset + len {
                    let end = ends[grouped.order[at] as usize];
                    let mut run_end = at + 1;
                    while run_end < offset + len && ends[grouped.order[run_end] as usize] == end {
                        run_end += 1;
                    }
                    self.add_run(
                        (key, end),
                        &taken,
                        at,
                        run_end - at,
                        watermark,
                        &mut changes,
                    )?;
                    at = run_end;
                }
            }
        }
        let mut more = self.advance_into(watermark, changes)?;
        self.finish(std::mem::take(&mut more))
    }

    /// Adds rows `offset..offset + len` of `input` to the group at `at`
    /// (opened if new) and records the change if it is visible now.
    fn add_run(
        &mut self,
        at: GroupAt,
        input: &AggregateInput,
        offset: usize,
        len: usize,
        watermark: EventTime,
        changes: &mut ChangeList<GroupAt>,
    ) -> Result<()> {
        let (key, end) = at;
        let found = self
            .groups
            .get(key)
            .map(|windows| windows.binary_search_by_key(&end, |g| g.end));
        let index = match found {
            Some(Ok(index)) => index,
            _ => {
                // Accumulators first: on error, nothing is half made.
                let group = Group {
                    id: self.next_id,
                    end,
                    accumulators: create_accumulators(&self.config.spec)?,
                    last: None,
                };
                let windows = self.groups.get_or_insert(key, || Ok(Vec::new()))?;
                let index = windows.partition_point(|g| g.end < end);
                self.next_id += 1;
                self.by_end.insert((end, group.id), key);
                windows.insert(index, group);
                index
            }
        };
        let windows = self
            .groups
            .get_mut(key)
            .ok_or_else(|| err!(Internal, "a window group just opened is gone"))?;
        apply_run(&mut windows[index].accumulators, input, offset, len)?;
        let closed = self.config.grid.is_end_closed(end, watermark);
        let visible = match self.config.emit {
            EmitMode::OnUpdate => true,
            EmitMode::OnWindowClose | EmitMode::Every { .. } => closed,
        };
        if visible {
            self.dirty.remove(&at);
            self.emit_group(at, changes)?;
        } else if self.is_periodic() {
            self.dirty.insert(at);
        }
        Ok(())
    }

    /// The group at `at`, if open.
    fn group_mut(&mut self, (key, end): GroupAt) -> Option<&mut Group> {
        let windows = self.groups.get_mut(key)?;
        let index = windows.binary_search_by_key(&end, |g| g.end).ok()?;
        windows.get_mut(index)
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
        let dirty: Vec<GroupAt> = self.dirty.drain().collect();
        let mut dirty: Vec<(u64, GroupAt)> = dirty
            .into_iter()
            .filter_map(|at| Some((self.group_mut(at)?.id, at)))
            .collect();
        dirty.sort_unstable();
        for (_, at) in dirty {
            self.emit_group(at, &mut changes)?;
        }
        self.finish(changes)
    }

    /// Adds a group's change since its last emission, if any.
    fn emit_group(&mut self, at: GroupAt, changes: &mut ChangeList<GroupAt>) -> Result<()> {
        let Some(group) = self.group_mut(at) else {
            return Ok(());
        };
        let values = evaluate_accumulators(&mut group.accumulators)?;
        if group.last.as_ref() != Some(&values) {
            changes.push(at, group.last.replace(values.clone()), Some(values));
        }
        Ok(())
    }

    fn advance_into(
        &mut self,
        watermark: EventTime,
        mut changes: ChangeList<GroupAt>,
    ) -> Result<ChangeList<GroupAt>> {
        if self.is_periodic() {
            // Closing windows emit their pending changes at once.
            let from = self
                .closed_through
                .map_or(EventTime::MIN, |c| c.saturating_add(1));
            let closed: Vec<GroupAt> = self
                .by_end
                .range((from, 0)..)
                .take_while(|((end, _), _)| self.config.grid.is_end_closed(*end, watermark))
                .map(|(&(end, _), &key)| (key, end))
                .collect();
            for at in closed {
                if self.dirty.remove(&at) {
                    self.emit_group(at, &mut changes)?;
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
            let closed: Vec<GroupAt> = self
                .by_end
                .range((from, 0)..)
                .take_while(|((end, _), _)| self.config.grid.is_end_closed(*end, watermark))
                .map(|(&(end, _), &key)| (key, end))
                .collect();
            for at in closed {
                let Some(group) = self.group_mut(at) else {
                    continue;
                };
                if group.last.is_none() {
                    let values = evaluate_accumulators(&mut group.accumulators)?;
                    group.last = Some(values.clone());
                    changes.push(at, None, Some(values));
                }
            }
            let through = self.config.grid.last_closed_end(watermark);
            self.closed_through = Some(self.closed_through.map_or(through, |c| c.max(through)));
        }
        while let Some((&(end, id), &key)) = self.by_end.first_key_value() {
            if !self.purged(end, watermark) {
                break;
            }
            self.by_end.remove(&(end, id));
            self.remove_group((key, end));
            self.dirty.remove(&(key, end));
        }
        Ok(changes)
    }

    /// Forgets the group at `at`, and its key once it has no window open.
    fn remove_group(&mut self, (key, end): GroupAt) {
        let Some(windows) = self.groups.get_mut(key) else {
            return;
        };
        if let Ok(index) = windows.binary_search_by_key(&end, |g| g.end) {
            windows.remove(index);
        }
        if windows.is_empty() {
            self.groups.remove(key);
        }
    }

    /// Turns changes into output, then lets the key numbers be compacted
    /// (changes name keys by number, so not before).
    fn finish(&mut self, changes: ChangeList<GroupAt>) -> Result<Changes> {
        self.metrics.windows_emitted += changes.len() as u64;
        let changes = changes.into_changes(|at, values| self.batch(at, values))?;
        if let Some(renumbered) = self.groups.compact() {
            self.by_end = renumbered.values(std::mem::take(&mut self.by_end));
            self.dirty = self
                .dirty
                .drain()
                .filter_map(|(key, end)| Some((renumbered.get(key)?, end)))
                .collect();
        }
        Ok(changes)
    }

    fn batch(&self, groups: &[GroupAt], values: Vec<Values>) -> Result<RecordBatch> {
        let schema = &self.config.output_schema;
        let numbers: Vec<usize> = groups.iter().map(|&(key, _)| key).collect();
        let ends = Int64Array::from_iter_values(groups.iter().map(|&(_, end)| end));
        let starts = Int64Array::from_iter_values(
            groups
                .iter()
                .map(|&(_, end)| self.config.window.start_for_end(end)),
        );
        let starts: ArrayRef = Arc::new(starts);
        let ends: ArrayRef = Arc::new(ends);
        let mut columns = group_columns(
            &self.config.group_columns,
            &to_type(&starts, &self.config.time_type)?,
            &to_type(&ends, &self.config.time_type)?,
            &self.groups.columns(&numbers)?,
        )?;
        let first_aggregate = columns.len();
        columns.extend(value_columns(schema, first_aggregate, &values)?);
        let options = RecordBatchOptions::new().with_row_count(Some(groups.len()));
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
