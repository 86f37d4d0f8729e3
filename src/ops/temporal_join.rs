//! Event-time temporal joins: `orders AS o JOIN rates FOR SYSTEM_TIME AS OF
//! o.ts AS r ON o.currency = r.currency`. Each row of the probe side
//! (orders) joins the version of the versioned side (rates) valid at its
//! own time: the latest row with the same primary key at or before it.
//!
//! Flink's semantics: a probe row waits until the watermark (the minimum
//! of both sides') reaches its time, when every version up to it has
//! arrived; then it comes out joined, padded with NULLs (LEFT JOIN) or not
//! at all (INNER JOIN). Per key, versions older than the latest one at or
//! before the watermark can no longer be read and are dropped; the latest
//! stays, since a later probe row may still read it. Rows at or before the
//! watermark on either side are late.
//!
//! Its rows carry the probe side's event time; they leave when the
//! watermark passes that time, so the output watermark needs no hold.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap};
use std::sync::Arc;

use arrow::array::{new_null_array, Array, ArrayRef};
use arrow::datatypes::SchemaRef;
use arrow::record_batch::{RecordBatch, RecordBatchOptions};
use arrow::row::RowConverter;
// DataFusion's maps: hashbrown with a fast hasher.
use datafusion::common::{HashMap, HashSet, JoinSide, JoinType};
use datafusion::physical_expr::PhysicalExprRef;
use datafusion::physical_plan::joins::utils::JoinFilter;

use super::aggregate_node::{late_batch, LatePolicy};
use super::graph::{Operator, OperatorMetrics, Output, Rows, WindowMetrics};
use super::join_input::{self, event_times, key_rows, stored_column, LateOnce, TimeSource};
use super::join_state::{self, SideRows};
use crate::err;
use crate::error::Result;
use crate::metrics::{JoinMetrics, JoinSideMetrics};
use crate::state::OperatorState;
use crate::time::EventTime;

/// One temporal join, as planned.
#[derive(Debug)]
pub struct TemporalJoinSpec {
    /// INNER, or outer on the probe side.
    pub join_type: JoinType,
    /// Which input (0 left, 1 right) is the probe side; the other is the
    /// versioned table.
    pub probe: usize,
    /// Equality keys (the versioned side's primary key), per input.
    pub keys: [Vec<PhysicalExprRef>; 2],
    /// Each input's event time.
    pub times: [TimeSource; 2],
    /// The rest of the ON condition, checked on the version found.
    pub filter: Option<JoinFilter>,
    /// Each input's schema.
    pub input_schemas: [SchemaRef; 2],
    /// Per output column: the input and its column there.
    pub columns: Vec<(usize, usize)>,
    /// The rows it emits.
    pub output_schema: SchemaRef,
    /// What happens to late rows.
    pub late: LatePolicy,
}

impl TemporalJoinSpec {
    fn versioned(&self) -> usize {
        1 - self.probe
    }

    fn pads(&self) -> bool {
        matches!(
            (self.join_type, self.probe),
            (JoinType::Left, 0) | (JoinType::Right, 1)
        )
    }
}

/// Rows kept in the batches they arrived in; slots are stable until
/// [`RowStore::compact`].
#[derive(Debug, Clone, Default)]
struct RowStore {
    batches: Vec<RecordBatch>,
    /// (batch, row, alive) per slot.
    slots: Vec<(u32, u32, bool)>,
    live: usize,
    rows_in: u64,
    late: u64,
}

impl RowStore {
    fn add(&mut self, batch: RecordBatch, rows: &[usize]) -> Result<Vec<u32>> {
        let fits = |n: usize| u32::try_from(n).is_ok_and(|n| n < u32::MAX);
        if !fits(self.slots.len() + rows.len()) || !fits(self.batches.len() + 1) {
            return Err(err!(
                InvalidInput,
                "a temporal join would hold more than 2^32 rows of one side"
            ));
        }
        let index = self.batches.len() as u32;
        self.batches.push(batch);
        let first = self.slots.len() as u32;
        self.slots
            .extend(rows.iter().map(|&row| (index, row as u32, true)));
        self.live += rows.len();
        Ok((first..first + rows.len() as u32).collect())
    }

    fn kill(&mut self, slot: u32) {
        let entry = &mut self.slots[slot as usize];
        if entry.2 {
            entry.2 = false;
            self.live -= 1;
        }
    }

    fn column(&self, column: usize, slots: &[u32]) -> Result<ArrayRef> {
        let at: Vec<(usize, usize)> = slots
            .iter()
            .map(|&s| {
                let (batch, row, _) = self.slots[s as usize];
                (batch as usize, row as usize)
            })
            .collect();
        stored_column(&self.batches, column, &at)
    }

    fn batch(&self, schema: &SchemaRef, slots: &[u32]) -> Result<RecordBatch> {
        let columns = (0..schema.fields().len())
            .map(|c| self.column(c, slots))
            .collect::<Result<Vec<_>>>()?;
        let options = RecordBatchOptions::new().with_row_count(Some(slots.len()));
        Ok(RecordBatch::try_new_with_options(
            Arc::clone(schema),
            columns,
            &options,
        )?)
    }

    fn live_slots(&self) -> Vec<u32> {
        (0..self.slots.len() as u32)
            .filter(|&s| self.slots[s as usize].2)
            .collect()
    }

    /// When dead rows outnumber live ones (or batches pile up): the live
    /// rows in one batch, and each old slot's new one (`u32::MAX`: gone).
    fn compact(&mut self, schema: &SchemaRef) -> Result<Option<Vec<u32>>> {
        let dead = self.slots.len() - self.live;
        if !(dead >= 1024 && dead > self.live || self.batches.len() > 64) {
            return Ok(None);
        }
        let live = self.live_slots();
        let batch = self.batch(schema, &live)?;
        let mut renumbered = vec![u32::MAX; self.slots.len()];
        for (new, &old) in live.iter().enumerate() {
            renumbered[old as usize] = new as u32;
        }
        self.batches = vec![batch];
        self.slots = (0..live.len() as u32).map(|row| (0, row, true)).collect();
        Ok(Some(renumbered))
    }

    fn metrics(&self) -> JoinSideMetrics {
        JoinSideMetrics {
            rows_in: self.rows_in,
            late_rows_dropped: self.late,
            rows_held: self.live,
        }
    }
}

/// The temporal join operator.
#[derive(Debug)]
pub struct TemporalJoin {
    spec: Arc<TemporalJoinSpec>,
    keys: RowConverter,
    stores: [RowStore; 2],
    /// Probe rows waiting for the watermark: (time, arrival, slot).
    pending: BinaryHeap<Reverse<(EventTime, u64, u32)>>,
    arrivals: u64,
    /// Per key: its versions by time.
    versions: HashMap<Box<[u8]>, BTreeMap<EventTime, u32>>,
    /// Keys with versions the watermark may have made unreadable.
    to_trim: HashSet<Box<[u8]>>,
    late_once: LateOnce,
}

impl TemporalJoin {
    /// An empty join.
    pub fn try_new(spec: TemporalJoinSpec) -> Result<Self> {
        Self::empty(Arc::new(spec))
    }

    /// An empty join of `spec` (a new one, or one a restore fills).
    fn empty(spec: Arc<TemporalJoinSpec>) -> Result<Self> {
        Ok(Self {
            keys: key_converter(&spec)?,
            spec,
            stores: [RowStore::default(), RowStore::default()],
            pending: BinaryHeap::new(),
            arrivals: 0,
            versions: HashMap::new(),
            to_trim: HashSet::new(),
            late_once: LateOnce::default(),
        })
    }

    /// Each row's key, and whether it can match (a NULL matches nothing).
    fn key_rows(&self, side: usize, batch: &RecordBatch) -> Result<(arrow::row::Rows, Vec<bool>)> {
        let (rows, usable) = key_rows(Some(&self.keys), &self.spec.keys[side], batch, false)?;
        let rows = rows.ok_or_else(|| err!(Internal, "temporal join keys without rows"))?;
        Ok((rows, usable))
    }

    /// Adds versions (already stored at `slots`) to the index.
    fn index_versions(
        &mut self,
        (keys, usable): &(arrow::row::Rows, Vec<bool>),
        rows: &[usize],
        slots: &[u32],
        times: &[EventTime],
    ) {
        let versioned = self.spec.versioned();
        for (&row, &slot) in rows.iter().zip(slots) {
            if !usable[row] {
                // A NULL key is no version of anything.
                self.stores[versioned].kill(slot);
                continue;
            }
            let key = keys.row(row).data();
            let versions = match self.versions.get_mut(key) {
                Some(versions) => versions,
                None => self.versions.entry(key.into()).or_default(),
            };
            // The later arrival at the same time is the version.
            if let Some(old) = versions.insert(times[row], slot) {
                self.stores[versioned].kill(old);
            }
            if !self.to_trim.contains(key) {
                self.to_trim.insert(key.into());
            }
        }
    }

    /// The output rows for probe rows `probe` (slots) joined with their
    /// versions (`None`: padded), or left out for an inner join.
    fn emit(&self, probe: &[u32], found: &[Option<u32>], out: &mut Output) -> Result<()> {
        let spec = &self.spec;
        let (p, v) = (spec.probe, spec.versioned());
        let picked: Vec<usize> = (0..probe.len())
            .filter(|&i| found[i].is_some() || spec.pads())
            .collect();
        if picked.is_empty() {
            return Ok(());
        }
        let probe_slots: Vec<u32> = picked.iter().map(|&i| probe[i]).collect();
        let version_slots: Vec<Option<u32>> = picked.iter().map(|&i| found[i]).collect();
        let nulls = version_slots.iter().filter(|s| s.is_none()).count();
        let filled: Vec<u32> = version_slots.iter().map(|s| s.unwrap_or(0)).collect();
        let mut columns = Vec::with_capacity(spec.columns.len());
        for (index, &(side, column)) in spec.columns.iter().enumerate() {
            let data_type = spec.output_schema.field(index).data_type();
            let values = if side == p {
                self.stores[p].column(column, &probe_slots)?
            } else if nulls == picked.len() {
                new_null_array(data_type, picked.len())
            } else {
                let values = self.stores[v].column(column, &filled)?;
                if nulls == 0 {
                    values
                } else {
                    // Padded rows: NULL where no version was found.
                    let valid = arrow::array::BooleanArray::from_iter(
                        version_slots.iter().map(|s| Some(s.is_some())),
                    );
                    arrow::compute::nullif(&values, &arrow::compute::not(&valid)?)?
                }
            };
            columns.push(values);
        }
        let options = RecordBatchOptions::new().with_row_count(Some(picked.len()));
        out.emit(RecordBatch::try_new_with_options(
            Arc::clone(&spec.output_schema),
            columns,
            &options,
        )?);
        Ok(())
    }

    /// The versions found for `probe` rows that pass the rest of the ON
    /// condition.
    fn filtered(&self, probe: &[u32], found: Vec<Option<u32>>) -> Result<Vec<Option<u32>>> {
        let Some(filter) = &self.spec.filter else {
            return Ok(found);
        };
        let pairs: Vec<(usize, u32)> = found
            .iter()
            .enumerate()
            .filter_map(|(i, v)| v.map(|v| (i, v)))
            .collect();
        if pairs.is_empty() {
            return Ok(found);
        }
        let (p, v) = (self.spec.probe, self.spec.versioned());
        let probe_slots: Vec<u32> = pairs.iter().map(|&(i, _)| probe[i]).collect();
        let version_slots: Vec<u32> = pairs.iter().map(|&(_, v)| v).collect();
        let columns = filter
            .column_indices()
            .iter()
            .map(|c| {
                let side = match c.side {
                    JoinSide::Left => 0,
                    JoinSide::Right => 1,
                    JoinSide::None => {
                        return Err(err!(Internal, "a join filter column of neither side"))
                    }
                };
                if side == p {
                    self.stores[p].column(c.index, &probe_slots)
                } else {
                    self.stores[v].column(c.index, &version_slots)
                }
            })
            .collect::<Result<Vec<_>>>()?;
        let options = RecordBatchOptions::new().with_row_count(Some(pairs.len()));
        let candidates =
            RecordBatch::try_new_with_options(Arc::clone(filter.schema()), columns, &options)?;
        let verdict = super::evaluate_mask(filter.expression().as_ref(), &candidates)?;
        let mut found = found;
        for (k, &(i, _)) in pairs.iter().enumerate() {
            if !(verdict.is_valid(k) && verdict.value(k)) {
                found[i] = None;
            }
        }
        Ok(found)
    }

    /// Drops versions no probe row can read any more: per key, those
    /// before the latest at or before `watermark`.
    fn trim(&mut self, watermark: EventTime) {
        let versioned = self.spec.versioned();
        let keys: Vec<Box<[u8]>> = self.to_trim.drain().collect();
        for key in keys {
            let Some(versions) = self.versions.get_mut(&key) else {
                continue;
            };
            let Some((&latest, _)) = versions.range(..=watermark).next_back() else {
                self.to_trim.insert(key);
                continue;
            };
            let newer = versions.split_off(&latest);
            for (_, slot) in std::mem::replace(versions, newer) {
                self.stores[versioned].kill(slot);
            }
            // Versions after the watermark: trimmed by a later one.
            if versions.len() > 1 {
                self.to_trim.insert(key);
            }
        }
    }

    fn compact(&mut self) -> Result<()> {
        let (p, v) = (self.spec.probe, self.spec.versioned());
        if let Some(renumbered) = self.stores[p].compact(&self.spec.input_schemas[p])? {
            self.pending = self
                .pending
                .drain()
                .map(|Reverse((t, a, slot))| Reverse((t, a, renumbered[slot as usize])))
                .collect();
        }
        if let Some(renumbered) = self.stores[v].compact(&self.spec.input_schemas[v])? {
            for versions in self.versions.values_mut() {
                for slot in versions.values_mut() {
                    *slot = renumbered[*slot as usize];
                }
            }
        }
        Ok(())
    }
}

fn key_converter(spec: &TemporalJoinSpec) -> Result<RowConverter> {
    join_input::key_converter(&spec.keys, &spec.input_schemas)?
        .ok_or_else(|| err!(Internal, "a temporal join needs keys on both sides"))
}

impl Operator for TemporalJoin {
    fn state_kind(&self) -> Option<&'static str> {
        Some("temporal_join")
    }

    /// Its calls change state only after what can fail (evaluating keys
    /// and the condition): only those make it fail.
    fn may_fail(&self) -> bool {
        join_input::may_fail(self.spec.filter.as_ref(), &self.spec.keys)
    }

    fn process(&mut self, input: usize, rows: Rows, out: &mut Output) -> Result<()> {
        if input > 1 {
            return Err(err!(Internal, "a join has two inputs, not input {input}"));
        }
        let batch = &rows.batch;
        let times = event_times(self.spec.times[input], batch)?;
        let watermarks = rows.row_watermarks.materialize(batch.num_rows());
        let (mut fresh, mut late) = (Vec::new(), Vec::new());
        for (row, &time) in times.iter().enumerate() {
            if time <= watermarks.value(row) {
                late.push(row as u32);
            } else {
                fresh.push(row);
            }
        }
        let late = self.late_once.unseen(&rows, &late);
        if self.spec.late == LatePolicy::SideOutput && rows.origin.is_some() {
            if let Some(late) = late_batch(&rows, &late)? {
                out.late(late);
            }
        }
        // What can fail runs before the state changes.
        let keys = if input == self.spec.versioned() {
            Some(self.key_rows(input, batch)?)
        } else {
            None
        };
        let slots = if fresh.is_empty() {
            Vec::new()
        } else {
            self.stores[input].add(rows.batch.clone(), &fresh)?
        };
        self.late_once.remember(&rows, &late);
        let store = &mut self.stores[input];
        store.rows_in += batch.num_rows() as u64;
        store.late += late.len() as u64;
        match keys {
            None => {
                for (&row, &slot) in fresh.iter().zip(&slots) {
                    self.pending
                        .push(Reverse((times[row], self.arrivals, slot)));
                    self.arrivals += 1;
                }
            }
            Some(keys) => self.index_versions(&keys, &fresh, &slots, &times),
        }
        Ok(())
    }

    fn on_watermark(&mut self, watermark: EventTime, out: &mut Output) -> Result<EventTime> {
        let mut due = Vec::new();
        while let Some(&Reverse(entry)) = self.pending.peek() {
            if entry.0 > watermark {
                break;
            }
            self.pending.pop();
            due.push(entry);
        }
        if !due.is_empty() {
            let slots: Vec<u32> = due.iter().map(|&(_, _, slot)| slot).collect();
            let result = (|| -> Result<()> {
                let p = self.spec.probe;
                let batch = self.stores[p].batch(&self.spec.input_schemas[p], &slots)?;
                let (keys, usable) = self.key_rows(p, &batch)?;
                let found: Vec<Option<u32>> = due
                    .iter()
                    .enumerate()
                    .map(|(i, &(time, _, _))| {
                        if !usable[i] {
                            return None;
                        }
                        let versions = self.versions.get(keys.row(i).data())?;
                        versions.range(..=time).next_back().map(|(_, &slot)| slot)
                    })
                    .collect();
                let found = self.filtered(&slots, found)?;
                self.emit(&slots, &found, out)
            })();
            if let Err(error) = result {
                self.pending.extend(due.into_iter().map(Reverse));
                return Err(error);
            }
            let p = self.spec.probe;
            for slot in slots {
                self.stores[p].kill(slot);
            }
        }
        self.trim(watermark);
        // Compaction builds before it swaps: a failure leaves the state
        // as it was, only less compact.
        let _ = self.compact();
        Ok(watermark)
    }

    fn snapshot(&mut self) -> Result<Option<OperatorState>> {
        let (p, v) = (self.spec.probe, self.spec.versioned());
        let mut probe: Vec<(EventTime, u64, u32)> =
            self.pending.iter().map(|Reverse(entry)| *entry).collect();
        probe.sort_unstable();
        let mut versions: Vec<(EventTime, u32)> = self
            .versions
            .values()
            .flat_map(|versions| versions.iter().map(|(&t, &slot)| (t, slot)))
            .collect();
        versions.sort_unstable();
        let rows = |side: usize, slots: Vec<u32>, times: Vec<EventTime>| -> Result<SideRows> {
            let store = &self.stores[side];
            let schema = &self.spec.input_schemas[side];
            let mut rows = if slots.is_empty() {
                SideRows::empty(schema)
            } else {
                SideRows {
                    batch: store.batch(schema, &slots)?,
                    flags: vec![false; slots.len()],
                    times,
                    rows_in: 0,
                    late: 0,
                }
            };
            rows.rows_in = store.rows_in;
            rows.late = store.late;
            Ok(rows)
        };
        let mut sides = [
            rows(
                p,
                probe.iter().map(|e| e.2).collect(),
                probe.iter().map(|e| e.0).collect(),
            )?,
            rows(
                v,
                versions.iter().map(|e| e.1).collect(),
                versions.iter().map(|e| e.0).collect(),
            )?,
        ];
        if p == 1 {
            sides.swap(0, 1);
        }
        Ok(Some(join_state::encode(sides)?))
    }

    fn restored(&self, state: Option<&OperatorState>) -> Result<Box<dyn Operator>> {
        let mut join = TemporalJoin::empty(Arc::clone(&self.spec))?;
        let Some(state) = state else {
            return Ok(Box::new(join));
        };
        let sides = join_state::decode(state, &self.spec.input_schemas, "temporal join")?;
        for (side, rows) in sides.into_iter().enumerate() {
            let all: Vec<usize> = (0..rows.times.len()).collect();
            let slots = if all.is_empty() {
                Vec::new()
            } else {
                join.stores[side].add(rows.batch.clone(), &all)?
            };
            join.stores[side].rows_in = rows.rows_in;
            join.stores[side].late = rows.late;
            if side == self.spec.probe {
                for (&slot, &time) in slots.iter().zip(&rows.times) {
                    join.pending.push(Reverse((time, join.arrivals, slot)));
                    join.arrivals += 1;
                }
            } else if !all.is_empty() {
                let keys = join.key_rows(side, &rows.batch)?;
                join.index_versions(&keys, &all, &slots, &rows.times);
            }
        }
        Ok(Box::new(join))
    }

    fn metrics(&self) -> OperatorMetrics {
        OperatorMetrics {
            window: WindowMetrics {
                rows_in: self.stores.iter().map(|s| s.rows_in).sum(),
                late_rows_dropped: self.stores.iter().map(|s| s.late).sum(),
                windows_emitted: 0,
            },
            open_windows: self.stores.iter().map(|s| s.live).sum(),
            // Per live row its values and slot; per key its version map.
            state_bytes: (0..2)
                .map(|side| {
                    self.stores[side].live
                        * (join_state::row_bytes(&self.spec.input_schemas[side]) + 32)
                })
                .sum::<usize>()
                + self.versions.len() * 64,
            joins: vec![JoinMetrics {
                left: self.stores[0].metrics(),
                right: self.stores[1].metrics(),
            }],
            lookups: Vec::new(),
        }
    }

    fn describe(&self) -> String {
        let spec = &self.spec;
        let keys: Vec<String> = spec.keys[spec.probe]
            .iter()
            .zip(&spec.keys[spec.versioned()])
            .map(|(p, v)| format!("{p} = {v}"))
            .collect();
        let mut line = format!(
            "TemporalJoin: {} on [{}], each {} row with the {} version valid at its time, once the watermark passes it",
            spec.join_type,
            keys.join(", "),
            ["left", "right"][spec.probe],
            ["left", "right"][spec.versioned()]
        );
        if let Some(filter) = &spec.filter {
            line.push_str(&format!(", filter {}", filter.expression()));
        }
        line
    }

    fn output_schema(&self) -> SchemaRef {
        Arc::clone(&self.spec.output_schema)
    }
}
