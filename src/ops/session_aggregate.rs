//! Session window aggregation, per group key.
//!
//! ```text
//!  key A:  e1  e2      e3 ─ gap ─►|          e4  e5
//!          [── session 1 ─────────)          [── session 2 ─)
//!  a late-but-allowed e6 between e3 and e4 bridges them: one session
//! ```
//!
//! Each event opens the window `[ts, ts + gap)`; windows of one key that
//! overlap or touch merge (Flink's merging windows), including when an out-of-order
//! event bridges two sessions. A session closes when the watermark passes
//! its end. With a maximum length, a session never grows longer than that:
//! an event that would stretch it starts a new session.
//!
//! Every open session is a group of shared DataFusion grouped accumulators
//! ([`SessionGroups`]): a push is one call per aggregate whatever the number
//! of sessions it touches; merging two sessions merges one group's state
//! into the other's. An event is late when it would open a new session that
//! is already closed; an event that falls into an open session is never late.

use std::collections::BTreeMap;
use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, Int64Array, UInt32Array};
use arrow::datatypes::{DataType, Field, Int64Type, SchemaRef};
use arrow::record_batch::{RecordBatch, RecordBatchOptions};
use datafusion::common::ScalarValue;
use datafusion::physical_expr::PhysicalExpr;
// Small integer keys (session ids, key numbers): SipHash (std's default)
// would cost more than the work.
use foldhash::{HashMap, HashMapExt, HashSet};
use serde_json::json;

use super::changelog::{value_columns, Changes, Values};
use super::graph::WindowMetrics;
use super::grouped_aggregates::{Accumulators, AggregateInput, AggregateSpec};
use super::key_ids::KeyIds;
use super::session_groups::{Read, SessionGroups};
use super::snapshot::{
    metrics_from_json, metrics_json, named_state_fields, null_values, row_values, split_states,
    value_fields,
};
use super::window_aggregate::{group_columns, row_starts, GroupColumn};
use crate::codec::time_values::int64_as;
use crate::err;
use crate::error::Result;
use crate::state::{self, columns_from_rows, meta_i64, meta_opt_i64, OperatorState};
use crate::time::emit::EmitMode;
use crate::time::window::SessionWindow;
use crate::time::EventTime;

/// Fixed configuration of a session aggregate, derived from the plan.
#[derive(Debug, Clone)]
pub struct SessionAggregateConfig {
    /// Gap and maximum length.
    pub window: SessionWindow,
    /// Expression giving each row's own window bound, and which bound it is.
    pub row_bound: (Arc<dyn PhysicalExpr>, GroupColumn),
    /// Group-by columns in output order.
    pub group_columns: Vec<GroupColumn>,
    /// Keys and aggregates.
    pub spec: AggregateSpec,
    /// Output schema (`AggregateExec`'s).
    pub output_schema: SchemaRef,
    /// Type of the window columns.
    pub time_type: DataType,
    /// When results are emitted; anything but ON WINDOW CLOSE (or an
    /// allowed lateness) makes the output a changelog.
    pub emit: EmitMode,
    /// How long (ticks) after closing a session still takes late rows.
    pub allowed_lateness: i64,
}

struct Session {
    id: u64,
    start: EventTime,
    end: EventTime,
    /// Rows of the current batch, applied at the end of the batch.
    pending: Vec<u32>,
    /// Changelog modes: the row last emitted for this session.
    emitted: Option<EmittedSession>,
}

/// A session row as last emitted: bounds and values.
type EmittedSession = (EventTime, EventTime, Values);

/// Number of a group key (see [`KeyIds`]).
type KeyId = usize;

/// A change of one session: key, row before, row after.
type SessionChange = (KeyId, Option<EmittedSession>, Option<EmittedSession>);

/// Session window operator.
pub struct SessionAggregate {
    config: SessionAggregateConfig,
    /// Numbers the group keys; state below is indexed by them.
    keys: KeyIds,
    /// Aggregation state of the open sessions.
    groups: SessionGroups,
    /// Sessions merged into others during the current batch, in order:
    /// their state moves after the batch's update, when every session
    /// opened in the batch has its group.
    merges: Vec<(u64, u64)>,
    /// Each key's open sessions by start (empty for quiet keys until
    /// the key numbers are compacted).
    sessions: Vec<Vec<Session>>,
    /// Keys with rows in the current batch, and a mark per key.
    touched: Vec<KeyId>,
    is_touched: Vec<bool>,
    /// Open sessions by (end, id), to close them in order. Updated lazily:
    /// an entry is added when a session opens, and a session's end only
    /// grows, so an entry may be earlier than the session's end (it is
    /// moved when reached) or name a session merged away (it is dropped
    /// when reached). This keeps the B-tree out of the per-row path.
    closing: BTreeMap<(EventTime, u64), KeyId>,
    /// Sessions open now (`closing` may hold stale entries).
    open: usize,
    next_id: u64,
    metrics: WindowMetrics,
    /// Changelog modes: sessions changed since they were last emitted (id -> key).
    dirty: HashMap<u64, KeyId>,
    /// Changelog modes: emitted sessions merged away since the last emission.
    retracted: Vec<(KeyId, EmittedSession)>,
    /// EMIT EVERY: wall-clock time of the last periodic emission.
    last_emit_millis: Option<i64>,
}

impl std::fmt::Debug for SessionAggregate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionAggregate")
            .field("open_sessions", &self.open)
            .finish()
    }
}

impl SessionAggregate {
    /// Its keys and aggregates.
    pub fn spec(&self) -> &AggregateSpec {
        &self.config.spec
    }

    /// A new operator with the same configuration and no state.
    pub fn fresh(&self) -> Result<Self> {
        Self::try_new(self.config.clone())
    }

    /// An operator with no sessions.
    pub fn try_new(config: SessionAggregateConfig) -> Result<Self> {
        Ok(Self {
            keys: KeyIds::try_new(&config.spec.key_schema)?,
            groups: SessionGroups::new(&config.spec),
            merges: Vec::new(),
            config,
            sessions: Vec::new(),
            touched: Vec::new(),
            is_touched: Vec::new(),
            closing: BTreeMap::new(),
            open: 0,
            next_id: 0,
            metrics: WindowMetrics::default(),
            dirty: HashMap::new(),
            retracted: Vec::new(),
            last_emit_millis: None,
        })
    }

    fn snapshot_fields(&self) -> Result<Vec<Field>> {
        let int = |name: &str| Field::new(name, DataType::Int64, true);
        let mut fields = vec![int("id"), int("start"), int("end")];
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
        fields.extend([
            Field::new("has_emitted", DataType::Boolean, true),
            int("emitted_start"),
            int("emitted_end"),
        ]);
        fields.extend(value_fields(
            &self.config.output_schema,
            self.config.group_columns.len(),
            "emitted_",
        ));
        fields.push(Field::new("dirty", DataType::Boolean, true));
        Ok(fields)
    }

    /// The operator's state: one row per open session (bounds, key,
    /// accumulator state, what was last emitted). Leaves the operator as it was.
    pub fn snapshot(&mut self) -> Result<OperatorState> {
        let fields = self.snapshot_fields()?;
        let emitted_fields = value_fields(
            &self.config.output_schema,
            self.config.group_columns.len(),
            "emitted_",
        );
        let mut sessions: Vec<(KeyId, &Session)> = self
            .sessions
            .iter()
            .enumerate()
            .flat_map(|(key, list)| list.iter().map(move |s| (key, s)))
            .collect();
        sessions.sort_by_key(|(_, s)| s.id);
        let keys: Vec<KeyId> = sessions.iter().map(|(key, _)| *key).collect();
        let ids: Vec<u64> = sessions.iter().map(|(_, s)| s.id).collect();
        let mut rows = Vec::with_capacity(sessions.len());
        for (_, session) in sessions {
            let mut row = vec![
                ScalarValue::Int64(Some(session.id as i64)),
                ScalarValue::Int64(Some(session.start)),
                ScalarValue::Int64(Some(session.end)),
            ];
            match &session.emitted {
                Some((start, end, values)) => {
                    row.extend([
                        ScalarValue::Boolean(Some(true)),
                        ScalarValue::Int64(Some(*start)),
                        ScalarValue::Int64(Some(*end)),
                    ]);
                    row.extend(values.iter().cloned());
                }
                None => {
                    row.extend([
                        ScalarValue::Boolean(Some(false)),
                        ScalarValue::Int64(None),
                        ScalarValue::Int64(None),
                    ]);
                    row.extend(null_values(&emitted_fields)?);
                }
            }
            row.push(ScalarValue::Boolean(Some(
                self.dirty.contains_key(&session.id),
            )));
            rows.push(row);
        }
        let key_count = self.config.spec.keys.len();
        let state_count: usize = Accumulators::state_widths(&self.config.spec)?.iter().sum();
        let mut non_state: Vec<Field> = fields[..3].to_vec();
        non_state.extend(fields[3 + key_count + state_count..].iter().cloned());
        let mut columns = columns_from_rows(&non_state, &rows)?;
        // State columns, one group per session, in the rows' order.
        let state_columns: Vec<ArrayRef> = if ids.is_empty() {
            fields[3 + key_count..3 + key_count + state_count]
                .iter()
                .map(|f| arrow::array::new_empty_array(f.data_type()))
                .collect()
        } else {
            self.groups
                .read(&ids, Read::State)?
                .states
                .into_iter()
                .flatten()
                .collect()
        };
        columns.splice(3..3, state_columns);
        if key_count > 0 {
            let key_columns = if keys.is_empty() {
                fields[3..3 + key_count]
                    .iter()
                    .map(|f| arrow::array::new_empty_array(f.data_type()))
                    .collect()
            } else {
                self.keys.columns(&keys)?
            };
            columns.splice(3..3, key_columns);
        }
        let count = rows.len();
        Ok(OperatorState {
            meta: json!({
                "next_id": self.next_id,
                "last_emit_millis": self.last_emit_millis,
                "metrics": metrics_json(&self.metrics),
            }),
            batch: Some(state::batch(fields, columns, count)?),
        })
    }

    /// Replaces this operator's state with a snapshot's.
    pub fn restore(&mut self, snapshot: &OperatorState) -> Result<()> {
        let fields = self.snapshot_fields()?;
        let batch = snapshot
            .batch
            .as_ref()
            .ok_or_else(|| err!(CorruptCheckpoint, "session state has no data"))?;
        state::expect_schema(batch, &fields, "a session aggregate")?;
        let key_count = self.config.spec.keys.len();
        let widths = Accumulators::state_widths(&self.config.spec)?;
        let state_count: usize = widths.iter().sum();
        let columns = batch.columns();
        let int = |i: usize| columns[i].as_primitive::<Int64Type>();
        let mut key_ids = KeyIds::try_new(&self.config.spec.key_schema)?;
        let mut keys = Vec::with_capacity(batch.num_rows());
        key_ids.intern(&columns[3..3 + key_count], batch.num_rows(), &mut keys)?;
        let states = &columns[3 + key_count..3 + key_count + state_count];
        let after_state = 3 + key_count + state_count;
        let value_count = self.config.spec.aggregates.len();
        let mut sessions: Vec<Vec<Session>> = Vec::new();
        sessions.resize_with(key_ids.len(), Vec::new);
        let (mut closing, mut dirty) = (BTreeMap::new(), HashMap::new());
        let mut ids = Vec::with_capacity(batch.num_rows());
        for (row, &key) in keys.iter().enumerate() {
            let id = int(0).value(row) as u64;
            let (start, end) = (int(1).value(row), int(2).value(row));
            let emitted = if columns[after_state].as_boolean().value(row) {
                let values = row_values(
                    &columns[after_state + 3..after_state + 3 + value_count],
                    row,
                )?;
                Some((
                    int(after_state + 1).value(row),
                    int(after_state + 2).value(row),
                    values,
                ))
            } else {
                None
            };
            if columns[after_state + 3 + value_count]
                .as_boolean()
                .value(row)
            {
                dirty.insert(id, key);
            }
            let session = Session {
                id,
                start,
                end,
                pending: Vec::new(),
                emitted,
            };
            ids.push(id);
            closing.insert((end, id), key);
            sessions[key].push(session);
        }
        self.groups.restore(&ids, &split_states(states, &widths))?;
        for list in &mut sessions {
            list.sort_by_key(|s: &Session| s.start);
        }
        self.open = closing.len();
        self.keys = key_ids;
        self.is_touched = vec![false; sessions.len()];
        self.touched.clear();
        self.sessions = sessions;
        self.closing = closing;
        self.dirty = dirty;
        self.retracted.clear();
        self.next_id = meta_i64(&snapshot.meta, "next_id")? as u64;
        self.last_emit_millis = meta_opt_i64(&snapshot.meta, "last_emit_millis");
        self.metrics = metrics_from_json(&snapshot.meta)?;
        Ok(())
    }

    /// Counters so far.
    pub fn metrics(&self) -> &WindowMetrics {
        &self.metrics
    }

    /// Open sessions.
    pub fn open_windows(&self) -> usize {
        self.open
    }

    /// Approximate memory held by open sessions, in bytes.
    pub fn state_size(&self) -> usize {
        self.groups.size()
    }

    /// One line for EXPLAIN.
    pub fn describe(&self, unit: arrow::datatypes::TimeUnit) -> String {
        let config = &self.config;
        let emit = if self.is_refining() {
            format!(
                "{}, allowed lateness {}",
                config.emit.describe(),
                crate::time::format_duration(config.allowed_lateness, unit)
            )
        } else {
            "emit on window close".to_string()
        };
        format!(
            "SessionAggregate: {}, sessions per key [{}], aggregates [{}], {emit}, late rows dropped and counted",
            crate::time::window::WindowSpec::Session(config.window).describe(unit),
            config.spec.key_names(),
            config.spec.aggregate_names()
        )
    }

    /// Adds a batch. `row_watermarks[i]` is the watermark in force before row `i`.
    /// Late rows are dropped and counted; their positions go to `late_rows`
    /// when given.
    pub fn process(
        &mut self,
        batch: &RecordBatch,
        row_watermarks: &Int64Array,
        mut late_rows: Option<&mut Vec<u32>>,
    ) -> Result<()> {
        let rows = batch.num_rows();
        if rows == 0 {
            return Ok(());
        }
        self.metrics.rows_in += rows as u64;
        let times = self.event_times(batch)?;
        let input = AggregateInput::evaluate(&self.config.spec, batch)?;
        let mut keys = Vec::with_capacity(rows);
        self.keys.intern(input.keys(), rows, &mut keys)?;
        let known = self.keys.len();
        if self.sessions.len() < known {
            self.sessions.resize_with(known, Vec::new);
            self.is_touched.resize(known, false);
        }
        let mut outcome = Ok(());
        for (row, &key) in keys.iter().enumerate() {
            if times.is_null(row) {
                continue;
            }
            if !self.is_touched[key] {
                self.is_touched[key] = true;
                self.touched.push(key);
            }
            // The key's sessions, out of `self` while the row is assigned.
            let mut list = std::mem::take(&mut self.sessions[key]);
            let assigned = self.assign(
                &mut list,
                key,
                row as u32,
                times.value(row),
                row_watermarks.value(row),
            );
            self.sessions[key] = list;
            match assigned {
                Ok(true) => {}
                Ok(false) => {
                    self.metrics.late_rows_dropped += 1;
                    if let Some(late_rows) = late_rows.as_mut() {
                        late_rows.push(row as u32);
                    }
                }
                Err(e) => {
                    outcome = Err(e);
                    break;
                }
            }
        }
        // The batch's rows in one call per aggregate.
        if outcome.is_ok() {
            let sessions = self
                .touched
                .iter()
                .flat_map(|&key| &self.sessions[key])
                .filter(|s| !s.pending.is_empty())
                .map(|s| (s.id, s.pending.as_slice()));
            outcome = self.groups.update(&input, rows, sessions);
        }
        for (from, into) in std::mem::take(&mut self.merges) {
            if outcome.is_ok() {
                outcome = self.groups.merge(from, into);
            }
        }
        for key in self.touched.drain(..) {
            self.is_touched[key] = false;
            for session in &mut self.sessions[key] {
                session.pending.clear();
            }
        }
        outcome
    }

    /// Puts one row into `sessions`, its key's sessions (taken out of
    /// `self.sessions` for the call). Returns false when it is late.
    fn assign(
        &mut self,
        sessions: &mut Vec<Session>,
        key: KeyId,
        row: u32,
        ts: EventTime,
        watermark: EventTime,
    ) -> Result<bool> {
        let window = self.config.window;
        let lateness = self.config.allowed_lateness;
        let refining = self.is_refining();
        let own_end = ts.saturating_add(window.gap);
        // Open sessions that the row's own window [ts, ts + gap) overlaps.
        // Inclusive bounds, as Flink's TimeWindow::intersects: windows that
        // only touch merge, so events exactly `gap` apart share a session.
        let overlaps = |s: &Session| {
            !window.is_end_closed(s.end.saturating_add(lateness), watermark)
                && s.start <= own_end
                && ts <= s.end
        };
        let fits = |start: EventTime, end: EventTime| {
            window
                .max_length
                .is_none_or(|max| end.saturating_sub(start) <= max)
        };
        // The common case, one overlapping session the row fits in: grow it
        // in place (its `closing` entry is moved when reached).
        let mut overlapping = sessions.iter().enumerate().filter(|(_, s)| overlaps(s));
        if let (Some((only, _)), None) = (overlapping.next(), overlapping.next()) {
            let session = &mut sessions[only];
            let (start, end) = (session.start.min(ts), session.end.max(own_end));
            if fits(start, end) {
                session.pending.push(row);
                let moved_start = start != session.start;
                session.start = start;
                session.end = end;
                if refining && !self.dirty.contains_key(&session.id) {
                    self.dirty.insert(session.id, key);
                }
                if moved_start {
                    sessions.sort_by_key(|s| s.start);
                }
                return Ok(true);
            }
        }
        let overlapping: Vec<usize> = sessions
            .iter()
            .enumerate()
            .filter(|(_, s)| overlaps(s))
            .map(|(i, _)| i)
            .collect();
        let span = |chosen: &[usize]| {
            let start = chosen
                .iter()
                .map(|&i| sessions[i].start)
                .min()
                .unwrap_or(ts)
                .min(ts);
            let end = chosen
                .iter()
                .map(|&i| sessions[i].end)
                .max()
                .unwrap_or(own_end)
                .max(own_end);
            (start, end)
        };
        let mut chosen = overlapping.clone();
        if !chosen.is_empty() && !fits(span(&chosen).0, span(&chosen).1) {
            // Too long merged: join the latest overlapping session it fits in, if any.
            chosen = overlapping
                .iter()
                .rev()
                .find(|&&i| fits(sessions[i].start.min(ts), sessions[i].end.max(own_end)))
                .map(|&i| vec![i])
                .unwrap_or_default();
        }
        if chosen.is_empty() {
            if window.is_end_closed(own_end.saturating_add(lateness), watermark) {
                return Ok(false);
            }
            let session = Session {
                id: self.next_id,
                start: ts,
                end: own_end,
                pending: vec![row],
                emitted: None,
            };
            self.groups.open(session.id)?;
            if refining {
                self.dirty.insert(session.id, key);
            }
            self.next_id += 1;
            self.open += 1;
            self.closing.insert((session.end, session.id), key);
            let at = sessions.partition_point(|s| s.start <= ts);
            sessions.insert(at, session);
            return Ok(true);
        }
        let (start, end) = span(&chosen);
        // Merge every chosen session into the first; their `closing`
        // entries are dropped when reached.
        let target = chosen[0];
        for &other in chosen[1..].iter().rev() {
            let merged = sessions.remove(other);
            self.open -= 1;
            self.dirty.remove(&merged.id);
            if let Some(emitted) = merged.emitted {
                self.retracted.push((key, emitted));
            }
            let session = &mut sessions[target];
            session.pending.extend(merged.pending);
            // Its state moves once the batch's rows are in (see `process`).
            self.merges.push((merged.id, session.id));
        }
        let session = &mut sessions[target];
        session.start = start;
        session.end = end;
        session.pending.push(row);
        if refining {
            self.dirty.insert(session.id, key);
        }
        sessions.sort_by_key(|s| s.start);
        Ok(true)
    }

    /// The next session in `closing` whose end (plus `lateness`) the
    /// watermark closes, removed from `closing` (not from `sessions`):
    /// stale entries on the way are moved to their session's end or
    /// dropped.
    fn next_closed(&mut self, watermark: EventTime, lateness: i64) -> Option<(u64, KeyId)> {
        let window = self.config.window;
        while let Some((&(end, id), _)) = self.closing.first_key_value() {
            if !window.is_end_closed(end.saturating_add(lateness), watermark) {
                return None;
            }
            let key = self.closing.remove(&(end, id))?;
            let current = self
                .sessions
                .get(key)
                .and_then(|sessions| sessions.iter().find(|s| s.id == id))
                .map(|s| s.end);
            match current {
                Some(current) if current == end => return Some((id, key)),
                Some(current) => {
                    self.closing.insert((current, id), key);
                }
                None => {} // merged away
            }
        }
        None
    }

    /// Whether results are a changelog (EMIT ON UPDATE / EVERY or an
    /// allowed lateness) rather than one final row per session.
    pub fn is_refining(&self) -> bool {
        self.config.emit != EmitMode::OnWindowClose || self.config.allowed_lateness > 0
    }

    /// Whether this emits periodically (EMIT EVERY).
    pub fn is_periodic(&self) -> bool {
        matches!(self.config.emit, EmitMode::Every { .. })
    }

    /// Changelog modes: the changes visible under `watermark` (a session is
    /// visible when it changes with EMIT ON UPDATE, otherwise once closed),
    /// then forgets sessions past their end plus the allowed lateness.
    pub fn changes(&mut self, watermark: EventTime) -> Result<Changes> {
        let window = self.config.window;
        let on_update = self.config.emit == EmitMode::OnUpdate;
        let mut list = self.take_retracted();
        self.emit_dirty(&mut list, |end| {
            on_update || window.is_end_closed(end, watermark)
        })?;
        let lateness = self.config.allowed_lateness;
        while let Some((id, key)) = self.next_closed(watermark, lateness) {
            self.dirty.remove(&id);
            self.open -= 1;
            if let Some(sessions) = self.sessions.get_mut(key) {
                sessions.retain(|s| s.id != id);
            }
            self.groups.forget(id)?;
        }
        // Changes name keys by number: built before numbers change.
        let changes = self.finish(list)?;
        self.compact_keys();
        Ok(changes)
    }

    /// EMIT EVERY: emits what changed since the last period, if one passed.
    pub fn on_wall_clock(&mut self, now_millis: i64) -> Result<Changes> {
        let EmitMode::Every { millis } = self.config.emit else {
            return self.finish(Vec::new());
        };
        if self
            .last_emit_millis
            .is_some_and(|last| now_millis.saturating_sub(last) < millis)
        {
            return self.finish(Vec::new());
        }
        self.last_emit_millis = Some(now_millis);
        let mut list = self.take_retracted();
        self.emit_dirty(&mut list, |_| true)?;
        self.finish(list)
    }

    fn take_retracted(&mut self) -> Vec<SessionChange> {
        self.retracted
            .drain(..)
            .map(|(key, emitted)| (key, Some(emitted), None))
            .collect()
    }

    /// Adds the changed sessions that `visible` accepts (by end) to `list`.
    fn emit_dirty(
        &mut self,
        list: &mut Vec<SessionChange>,
        visible: impl Fn(EventTime) -> bool,
    ) -> Result<()> {
        let mut dirty: Vec<(u64, KeyId)> = self.dirty.iter().map(|(id, key)| (*id, *key)).collect();
        dirty.sort_by_key(|(id, _)| *id);
        // The visible ones, read in one pass over their generations.
        let mut visible_now = Vec::new();
        for (id, key) in dirty {
            let end = self
                .sessions
                .get(key)
                .and_then(|sessions| sessions.iter().find(|s| s.id == id))
                .map(|s| s.end);
            match end {
                None => {
                    self.dirty.remove(&id);
                }
                Some(end) if visible(end) => visible_now.push((id, key)),
                Some(_) => {}
            }
        }
        if visible_now.is_empty() {
            return Ok(());
        }
        let ids: Vec<u64> = visible_now.iter().map(|(id, _)| *id).collect();
        let columns = self.groups.read(&ids, Read::Peek)?.values;
        for (row, (id, key)) in visible_now.into_iter().enumerate() {
            self.dirty.remove(&id);
            let session = self
                .sessions
                .get_mut(key)
                .and_then(|sessions| sessions.iter_mut().find(|s| s.id == id))
                .ok_or_else(|| err!(Internal, "dirty session not found"))?;
            let values = row_values(&columns, row)?;
            let current = (session.start, session.end, values);
            if session.emitted.as_ref() != Some(&current) {
                let before = session.emitted.replace(current.clone());
                list.push((key, before, Some(current)));
            }
        }
        Ok(())
    }

    fn finish(&mut self, list: Vec<SessionChange>) -> Result<Changes> {
        self.metrics.windows_emitted += list.len() as u64;
        let (mut old, mut old_positions, mut new, mut new_positions) =
            (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        let count = list.len();
        for (position, (key, before, after)) in list.into_iter().enumerate() {
            if let Some(row) = before {
                old.push((key, row));
                old_positions.push(position as u32);
            }
            if let Some(row) = after {
                new.push((key, row));
                new_positions.push(position as u32);
            }
        }
        Ok(Changes {
            count,
            old: self.change_batch(&old)?,
            old_positions: UInt32Array::from(old_positions),
            new: self.change_batch(&new)?,
            new_positions: UInt32Array::from(new_positions),
        })
    }

    fn change_batch(&self, rows: &[(KeyId, EmittedSession)]) -> Result<RecordBatch> {
        let schema = &self.config.output_schema;
        let keys: Vec<KeyId> = rows.iter().map(|(key, _)| *key).collect();
        let keys = self.keys.columns(&keys)?;
        let starts = int64_as(
            Int64Array::from_iter_values(rows.iter().map(|(_, r)| r.0)),
            &self.config.time_type,
        )?;
        let ends = int64_as(
            Int64Array::from_iter_values(rows.iter().map(|(_, r)| r.1)),
            &self.config.time_type,
        )?;
        let mut columns = group_columns(&self.config.group_columns, &starts, &ends, &keys)?;
        let first = columns.len();
        let values: Vec<Values> = rows.iter().map(|(_, r)| r.2.clone()).collect();
        columns.extend(value_columns(schema, first, &values)?);
        let options = RecordBatchOptions::new().with_row_count(Some(rows.len()));
        Ok(RecordBatch::try_new_with_options(
            Arc::clone(schema),
            columns,
            &options,
        )?)
    }

    /// Emits every session closed under `watermark`, in order of end.
    pub fn advance(&mut self, watermark: EventTime) -> Result<Vec<RecordBatch>> {
        let mut closed: Vec<(KeyId, Session)> = Vec::new();
        while let Some((id, key)) = self.next_closed(watermark, 0) {
            self.open -= 1;
            let sessions = self
                .sessions
                .get_mut(key)
                .ok_or_else(|| err!(Internal, "closing session has no key"))?;
            let at = sessions
                .iter()
                .position(|s| s.id == id)
                .ok_or_else(|| err!(Internal, "closing session not found"))?;
            let session = sessions.remove(at);
            closed.push((key, session));
        }
        if closed.is_empty() {
            return Ok(Vec::new());
        }
        self.metrics.windows_emitted += closed.len() as u64;
        let ids: Vec<u64> = closed.iter().map(|(_, s)| s.id).collect();
        let values = self.groups.read(&ids, Read::Close)?.values;
        let batch = self.emit(closed, values)?;
        self.compact_keys();
        Ok(vec![batch])
    }

    fn emit(&self, closed: Vec<(KeyId, Session)>, values: Vec<ArrayRef>) -> Result<RecordBatch> {
        let count = closed.len();
        let keys: Vec<KeyId> = closed.iter().map(|(key, _)| *key).collect();
        let keys = self.keys.columns(&keys)?;
        let times =
            |pick: fn(&Session) -> EventTime, closed: &[(KeyId, Session)]| -> Result<ArrayRef> {
                let values = Int64Array::from_iter_values(closed.iter().map(|(_, s)| pick(s)));
                int64_as(values, &self.config.time_type)
            };
        let starts = times(|s| s.start, &closed)?;
        let ends = times(|s| s.end, &closed)?;
        let mut columns = group_columns(&self.config.group_columns, &starts, &ends, &keys)?;
        columns.extend(values);
        let options = RecordBatchOptions::new().with_row_count(Some(count));
        Ok(RecordBatch::try_new_with_options(
            Arc::clone(&self.config.output_schema),
            columns,
            &options,
        )?)
    }

    /// Drops the numbers of keys with no open session (and nothing to
    /// emit) when enough have gone quiet, renumbering what refers to keys.
    fn compact_keys(&mut self) {
        let (sessions, dirty, retracted) = (&self.sessions, &self.dirty, &self.retracted);
        let live = |key: KeyId| sessions.get(key).is_some_and(|list| !list.is_empty());
        // Rarely needed: built only when the numbers are reviewed.
        let referenced = std::cell::OnceCell::new();
        let referenced = |key: KeyId| {
            referenced
                .get_or_init(|| {
                    let keys = dirty.values().chain(retracted.iter().map(|(key, _)| key));
                    keys.copied().collect::<HashSet<KeyId>>()
                })
                .contains(&key)
        };
        let Some(renumbered) = self.keys.compact(|key| live(key) || referenced(key)) else {
            return;
        };
        self.sessions = renumbered.items(std::mem::take(&mut self.sessions));
        self.is_touched = vec![false; self.sessions.len()];
        // Entries of keys without sessions are stale: dropped.
        self.closing = renumbered.values(std::mem::take(&mut self.closing));
        self.dirty = std::mem::take(&mut self.dirty)
            .into_iter()
            .filter_map(|(id, key)| Some((id, renumbered.get(key)?)))
            .collect();
        self.retracted = std::mem::take(&mut self.retracted)
            .into_iter()
            .filter_map(|(key, emitted)| Some((renumbered.get(key)?, emitted)))
            .collect();
    }

    fn event_times(&self, batch: &RecordBatch) -> Result<Int64Array> {
        // A row's own window is [ts, ts + gap): its start is the event time.
        row_starts(&self.config.row_bound, self.config.window.gap, batch)
    }
}
