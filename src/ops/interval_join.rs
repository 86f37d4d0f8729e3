//! Interval joins of two streams: `a JOIN b ON a.k = b.k AND b.ts BETWEEN
//! a.ts - x AND a.ts + y`, with state bounded by the watermark.
//!
//! A row of the left input at time `l` matches rows of the right input at
//! `r` with `lower <= r - l <= upper`. Rows at or before the watermark `W`
//! are late, so a left row is needed while `W < l + upper` and a right row
//! while `W < r - lower`. `W` is the minimum of both inputs' watermarks
//! (the graph's rule for a node with two inputs), so results do not depend
//! on which stream's push comes first.
//!
//! A pair comes out when its second row arrives. A row of an outer side
//! that never matched comes out padded with NULLs when it leaves state,
//! which is when the watermark proves no match can still arrive. A semi
//! join emits a row at its first match; an anti join when it leaves state
//! unmatched.
//!
//! Output rows carry either side's event time, and a stored row can be up
//! to `max(upper, -lower)` behind the watermark when it is emitted, so the
//! output watermark is held back by that much (as Flink's interval join
//! holds it), and the join's rows are never late for a window after it.
//!
//! State is the rows in the batches they arrived in, indexed by join key.
//! Rows leave through one heap ordered by the time they expire, so keys
//! that go quiet are cleaned as surely as busy ones; key lists and batches
//! are compacted once dead rows outnumber live ones.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::sync::Arc;

use arrow::array::{new_null_array, Array, ArrayRef, StringArray, UInt32Array};
use arrow::datatypes::{SchemaRef, TimeUnit};
use arrow::record_batch::{RecordBatch, RecordBatchOptions};
use arrow::row::RowConverter;
// DataFusion's map: hashbrown with a fast hasher.
use datafusion::common::{HashMap, JoinSide, JoinType};
use datafusion::physical_expr::PhysicalExprRef;
use datafusion::physical_plan::joins::utils::JoinFilter;

use super::aggregate_node::{late_batch, LatePolicy};
use super::changelog::op;
use super::gather::gather;
use super::graph::{Operator, OperatorMetrics, Output, Rows, WindowMetrics};
pub use super::join_input::TimeSource;
use super::join_input::{self, event_times, key_converter, key_rows, stored_column, LateOnce};
use super::join_state::{self, SideRows};
use crate::err;
use crate::error::Result;
use crate::metrics::{JoinMetrics, JoinSideMetrics};
use crate::state::OperatorState;
use crate::time::watermark::{END_OF_INPUT, NO_WATERMARK};
use crate::time::{format_duration, EventTime};

/// One interval join, as planned.
#[derive(Debug)]
pub struct IntervalJoinSpec {
    /// INNER, LEFT, RIGHT, FULL, or a semi / anti join.
    pub join_type: JoinType,
    /// Equality keys, evaluated on each side's rows (left, right).
    pub keys: [Vec<PhysicalExprRef>; 2],
    /// Whether NULL keys equal each other.
    pub nulls_equal: bool,
    /// `NOT IN`'s three-valued logic (a left anti join on one key): a row
    /// with a NULL key matches every row of the other side, so a NULL
    /// among the subquery's values, or a NULL tested against any value,
    /// keeps the left row out.
    pub null_aware: bool,
    /// Each side's event time.
    pub times: [TimeSource; 2],
    /// `lower <= right time - left time <= upper`, in ticks.
    pub lower: i64,
    /// See `lower`.
    pub upper: i64,
    /// The rest of the ON condition, over candidate pairs.
    pub filter: Option<JoinFilter>,
    /// Each side's input schema.
    pub input_schemas: [SchemaRef; 2],
    /// Per output column: the side (0 left, 1 right) and its column there.
    pub columns: Vec<(usize, usize)>,
    /// The rows it emits.
    pub output_schema: SchemaRef,
    /// Unit of the event times.
    pub unit: TimeUnit,
    /// What happens to late rows.
    pub late: LatePolicy,
    /// An updating join (Flink's regular join, bounded by a state TTL): a
    /// row of an outer side, or an anti join's row, comes out as soon as it
    /// arrives unmatched and is taken back (a `delete`) when its first
    /// match arrives, so the output is a changelog with an `_op` column
    /// (`output_schema` has it). Without it such rows wait for the
    /// watermark to prove they have no match.
    pub updating: bool,
}

impl IntervalJoinSpec {
    /// How far behind the watermark an emitted row's time can be.
    fn hold(&self) -> i64 {
        self.upper.max(self.lower.saturating_neg()).max(0)
    }

    /// When a row of `side` at `time` can no longer match: once the
    /// watermark reaches this value.
    fn expiry(&self, side: usize, time: EventTime) -> EventTime {
        if side == 0 {
            time.saturating_add(self.upper)
        } else {
            time.saturating_sub(self.lower)
        }
    }

    /// Whether rows of `side` that never matched come out (padded, or as
    /// an anti join's result) when they leave state.
    fn emits_unmatched(&self, side: usize) -> bool {
        matches!(
            (self.join_type, side),
            (JoinType::Full, _)
                | (JoinType::Left | JoinType::LeftAnti, 0)
                | (JoinType::Right | JoinType::RightAnti, 1)
        )
    }

    /// The side a semi or anti join returns rows of.
    fn kept_side(&self) -> Option<usize> {
        match self.join_type {
            JoinType::LeftSemi | JoinType::LeftAnti => Some(0),
            JoinType::RightSemi | JoinType::RightAnti => Some(1),
            _ => None,
        }
    }

    fn is_semi(&self) -> bool {
        matches!(self.join_type, JoinType::LeftSemi | JoinType::RightSemi)
    }

    /// Whether rows of `side` without a match come out as they arrive (an
    /// updating join), rather than when they leave state.
    fn emits_unmatched_at_once(&self, side: usize) -> bool {
        self.updating && self.emits_unmatched(side)
    }
}

/// A row held in state.
#[derive(Debug, Clone, Copy)]
struct Stored {
    batch: u32,
    row: u32,
    time: EventTime,
    matched: bool,
    alive: bool,
}

/// One side's rows.
#[derive(Debug, Clone, Default)]
struct Side {
    batches: Vec<RecordBatch>,
    rows: Vec<Stored>,
    live: usize,
    /// Slots by join key (dead slots stay until compaction).
    by_key: HashMap<Box<[u8]>, Vec<u32>>,
    /// Slots of rows with a NULL key, for a null-aware join (they match
    /// every row of the other side).
    null_keyed: Vec<u32>,
    /// (expiry, slot), earliest first.
    expiry: BinaryHeap<Reverse<(EventTime, u32)>>,
    rows_in: u64,
    late: u64,
}

impl Side {
    /// Column `column` of the stored rows at `slots`.
    fn column(&self, column: usize, slots: &[u32]) -> Result<ArrayRef> {
        let at: Vec<(usize, usize)> = slots
            .iter()
            .map(|&s| {
                let stored = self.rows[s as usize];
                (stored.batch as usize, stored.row as usize)
            })
            .collect();
        stored_column(&self.batches, column, &at)
    }

    fn metrics(&self) -> JoinSideMetrics {
        JoinSideMetrics {
            rows_in: self.rows_in,
            late_rows_dropped: self.late,
            rows_held: self.live,
        }
    }

    fn live_slots(&self) -> Vec<u32> {
        (0..self.rows.len() as u32)
            .filter(|&s| self.rows[s as usize].alive)
            .collect()
    }
}

/// The interval join operator.
#[derive(Debug)]
pub struct IntervalJoin {
    spec: Arc<IntervalJoinSpec>,
    keys: Option<RowConverter>,
    sides: [Side; 2],
    late_once: LateOnce,
}

/// Rows a side needs before its key lists and batches are compacted.
const COMPACT_AT: usize = 1024;
/// Batches a side keeps before they are put together.
const MAX_BATCHES: usize = 64;

impl IntervalJoin {
    /// An empty join.
    pub fn try_new(spec: IntervalJoinSpec) -> Result<Self> {
        Self::empty(Arc::new(spec))
    }

    /// An empty join of `spec` (a new one, or one a restore fills).
    fn empty(spec: Arc<IntervalJoinSpec>) -> Result<Self> {
        Ok(Self {
            keys: key_converter(&spec.keys, &spec.input_schemas)?,
            spec,
            sides: [Side::default(), Side::default()],
            late_once: LateOnce::default(),
        })
    }

    /// Each row's key in row format, `None` where a NULL key matches nothing.
    fn key_rows(
        &self,
        side: usize,
        batch: &RecordBatch,
    ) -> Result<(Option<arrow::row::Rows>, Vec<bool>)> {
        key_rows(
            self.keys.as_ref(),
            &self.spec.keys[side],
            batch,
            self.spec.nulls_equal,
        )
    }

    /// Candidate pairs that pass the rest of the ON condition.
    fn filtered(
        &self,
        side: usize,
        batch: &RecordBatch,
        pairs: Vec<(u32, u32)>,
    ) -> Result<Vec<(u32, u32)>> {
        let Some(filter) = &self.spec.filter else {
            return Ok(pairs);
        };
        if pairs.is_empty() {
            return Ok(pairs);
        }
        let incoming = UInt32Array::from_iter_values(pairs.iter().map(|p| p.0));
        let stored: Vec<u32> = pairs.iter().map(|p| p.1).collect();
        let other = &self.sides[1 - side];
        let columns = filter
            .column_indices()
            .iter()
            .map(|c| {
                let from = match c.side {
                    JoinSide::Left => 0,
                    JoinSide::Right => 1,
                    JoinSide::None => {
                        return Err(err!(Internal, "a join filter column of neither side"))
                    }
                };
                if from == side {
                    gather(batch.column(c.index), &incoming)
                } else {
                    other.column(c.index, &stored)
                }
            })
            .collect::<Result<Vec<_>>>()?;
        let options = RecordBatchOptions::new().with_row_count(Some(pairs.len()));
        let candidates =
            RecordBatch::try_new_with_options(Arc::clone(filter.schema()), columns, &options)?;
        let verdict = super::evaluate_mask(filter.expression().as_ref(), &candidates)?;
        Ok(pairs
            .into_iter()
            .enumerate()
            .filter(|(i, _)| verdict.is_valid(*i) && verdict.value(*i))
            .map(|(_, pair)| pair)
            .collect())
    }

    /// Output rows: per row, the left and right source (`None`: NULLs).
    /// A source is the incoming batch's row (`Incoming`) or a stored slot.
    fn emit_rows(
        &self,
        incoming: Option<(usize, &RecordBatch)>,
        picks: &[[Pick; 2]],
        out: &mut Output,
    ) -> Result<()> {
        self.emit_changes(incoming, picks, op::INSERT, out)
    }

    /// [`IntervalJoin::emit_rows`] as changes of kind `kind` (an insert
    /// or a delete), for an updating join's changelog; other joins emit
    /// rows alone.
    fn emit_changes(
        &self,
        incoming: Option<(usize, &RecordBatch)>,
        picks: &[[Pick; 2]],
        kind: &str,
        out: &mut Output,
    ) -> Result<()> {
        if picks.is_empty() {
            return Ok(());
        }
        let mut columns = Vec::with_capacity(self.spec.output_schema.fields().len());
        for (index, &(side, column)) in self.spec.columns.iter().enumerate() {
            let data_type = self.spec.output_schema.field(index).data_type();
            let column = match picks[0][side] {
                Pick::Null => new_null_array(data_type, picks.len()),
                Pick::Incoming(_) => {
                    let Some((_, batch)) = incoming.filter(|(s, _)| *s == side) else {
                        return Err(err!(Internal, "join output from a batch it was not given"));
                    };
                    let rows = UInt32Array::from_iter_values(picks.iter().map(|p| match p[side] {
                        Pick::Incoming(row) => row,
                        _ => 0,
                    }));
                    gather(batch.column(column), &rows)?
                }
                Pick::Stored(_) => {
                    let slots: Vec<u32> = picks
                        .iter()
                        .map(|p| match p[side] {
                            Pick::Stored(slot) => slot,
                            _ => 0,
                        })
                        .collect();
                    self.sides[side].column(column, &slots)?
                }
            };
            // An outer join's padded side is nullable in the output schema.
            let column = if column.data_type() == data_type {
                column
            } else {
                arrow::compute::cast(&column, data_type)?
            };
            columns.push(column);
        }
        if self.spec.updating {
            columns.push(Arc::new(StringArray::from(vec![kind; picks.len()])));
        }
        let options = RecordBatchOptions::new().with_row_count(Some(picks.len()));
        out.emit(RecordBatch::try_new_with_options(
            Arc::clone(&self.spec.output_schema),
            columns,
            &options,
        )?);
        Ok(())
    }

    /// Fails (before anything changes) when `rows` more rows would not
    /// fit `side`'s state, whose slots are 32-bit.
    fn check_room(&self, side: usize, rows: usize) -> Result<()> {
        let state = &self.sides[side];
        let fits = |n: usize| u32::try_from(n).is_ok_and(|n| n < u32::MAX);
        if fits(state.rows.len() + rows) && fits(state.batches.len() + 1) {
            return Ok(());
        }
        Err(err!(
            InvalidInput,
            "an interval join would hold more than 2^32 rows of one side; narrow its time bound"
        ))
    }

    /// Adds rows of `side` to its state.
    fn store(
        &mut self,
        side: usize,
        batch: RecordBatch,
        fresh: &[usize],
        times: &[EventTime],
        keys: &(Option<arrow::row::Rows>, Vec<bool>),
        matched: &[bool],
    ) -> Result<()> {
        if fresh.is_empty() {
            return Ok(());
        }
        self.check_room(side, fresh.len())?;
        let spec = Arc::clone(&self.spec);
        let state = &mut self.sides[side];
        let batch_index = state.batches.len() as u32;
        state.batches.push(batch);
        for &row in fresh {
            let slot = state.rows.len() as u32;
            state.rows.push(Stored {
                batch: batch_index,
                row: row as u32,
                time: times[row],
                matched: matched[row],
                alive: true,
            });
            state.live += 1;
            state
                .expiry
                .push(Reverse((spec.expiry(side, times[row]), slot)));
            if keys.1[row] {
                let key: &[u8] = match &keys.0 {
                    Some(rows) => rows.row(row).data(),
                    None => &[],
                };
                match state.by_key.get_mut(key) {
                    Some(slots) => slots.push(slot),
                    None => {
                        state.by_key.insert(key.into(), vec![slot]);
                    }
                }
            } else if spec.null_aware {
                state.null_keyed.push(slot);
            }
        }
        Ok(())
    }

    /// Puts a side's live rows into one batch when dead rows outnumber
    /// live ones, or batches pile up.
    fn compact(&mut self, side: usize) -> Result<()> {
        let state = &mut self.sides[side];
        let dead = state.rows.len() - state.live;
        if state.live == 0 {
            if !state.rows.is_empty() {
                let (rows_in, late) = (state.rows_in, state.late);
                *state = Side {
                    rows_in,
                    late,
                    ..Side::default()
                };
            }
            return Ok(());
        }
        if !(dead >= COMPACT_AT && dead > state.live || state.batches.len() > MAX_BATCHES) {
            return Ok(());
        }
        let live = state.live_slots();
        let batch = gathered_batch(state, &live)?;
        let mut renumbered = vec![u32::MAX; state.rows.len()];
        for (new, &old) in live.iter().enumerate() {
            renumbered[old as usize] = new as u32;
        }
        let rows: Vec<Stored> = live
            .iter()
            .enumerate()
            .map(|(new, &old)| Stored {
                batch: 0,
                row: new as u32,
                ..state.rows[old as usize]
            })
            .collect();
        let renumber = |slots: &mut Vec<u32>| {
            slots.retain_mut(|slot| {
                *slot = renumbered[*slot as usize];
                *slot != u32::MAX
            });
        };
        let mut by_key = std::mem::take(&mut state.by_key);
        by_key.retain(|_, slots| {
            renumber(slots);
            !slots.is_empty()
        });
        renumber(&mut state.null_keyed);
        let spec = &self.spec;
        state.expiry = rows
            .iter()
            .enumerate()
            .map(|(slot, r)| Reverse((spec.expiry(side, r.time), slot as u32)))
            .collect();
        state.by_key = by_key;
        state.batches = vec![batch];
        state.rows = rows;
        Ok(())
    }

    /// Takes a side's heap entries that expire under `watermark`, leaving
    /// the rows alive (see [`IntervalJoin::forget`]).
    fn expiring(&mut self, side: usize, watermark: EventTime) -> Vec<(EventTime, u32)> {
        let state = &mut self.sides[side];
        let mut expiring = Vec::new();
        while let Some(&Reverse(entry)) = state.expiry.peek() {
            if entry.0 > watermark {
                break;
            }
            state.expiry.pop();
            if state.rows[entry.1 as usize].alive {
                expiring.push(entry);
            }
        }
        expiring
    }

    /// The expiring rows of `side` that come out unmatched.
    fn unmatched(&self, side: usize, expiring: &[(EventTime, u32)]) -> Vec<u32> {
        if !self.spec.emits_unmatched(side) || self.spec.emits_unmatched_at_once(side) {
            return Vec::new();
        }
        let rows = &self.sides[side].rows;
        expiring
            .iter()
            .map(|&(_, slot)| slot)
            .filter(|&slot| !rows[slot as usize].matched)
            .collect()
    }

    /// Marks expired rows dead.
    fn forget(&mut self, side: usize, expiring: &[(EventTime, u32)]) {
        let state = &mut self.sides[side];
        for &(_, slot) in expiring {
            state.rows[slot as usize].alive = false;
        }
        state.live -= expiring.len();
    }
}

/// Where an output row's columns of one side come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Pick {
    Null,
    Incoming(u32),
    Stored(u32),
}

/// Output rows of `side`'s rows alone (the other side's columns NULL).
fn only(side: usize, rows: impl Iterator<Item = Pick>) -> Vec<[Pick; 2]> {
    rows.map(|pick| {
        let mut picks = [Pick::Null; 2];
        picks[side] = pick;
        picks
    })
    .collect()
}

/// The rows of a side at `slots` as one batch in its input schema.
fn gathered_batch(side: &Side, slots: &[u32]) -> Result<RecordBatch> {
    let schema = side
        .batches
        .first()
        .map(RecordBatch::schema)
        .ok_or_else(|| err!(Internal, "join rows without batches"))?;
    let columns = (0..schema.fields().len())
        .map(|c| side.column(c, slots))
        .collect::<Result<Vec<_>>>()?;
    let options = RecordBatchOptions::new().with_row_count(Some(slots.len()));
    Ok(RecordBatch::try_new_with_options(
        schema, columns, &options,
    )?)
}

impl Operator for IntervalJoin {
    fn state_kind(&self) -> Option<&'static str> {
        Some("interval_join")
    }

    fn may_fail(&self) -> bool {
        join_input::may_fail(self.spec.filter.as_ref(), &self.spec.keys)
    }

    fn process(&mut self, input: usize, rows: Rows, out: &mut Output) -> Result<()> {
        if input > 1 {
            return Err(err!(Internal, "a join has two inputs, not input {input}"));
        }
        let side = input;
        let batch = &rows.batch;
        let count = batch.num_rows();
        self.check_room(side, count)?;
        let times = event_times(self.spec.times[side], batch)?;
        let watermarks = rows.row_watermarks.materialize(count);
        let (mut fresh, mut late) = (Vec::with_capacity(count), Vec::new());
        for (row, &time) in times.iter().enumerate() {
            if time <= watermarks.value(row) {
                late.push(row as u32);
            } else {
                fresh.push(row);
            }
        }
        let keys = self.key_rows(side, batch)?;
        // Candidates: stored rows of the other side with the same key and a
        // time inside the bounds.
        let other = &self.sides[1 - side];
        let (lower, upper) = (i128::from(self.spec.lower), i128::from(self.spec.upper));
        let mut pairs = Vec::new();
        let kept = self.spec.kept_side();
        // A null-aware join's NULL-keyed rows meet every row.
        let every_slot: Vec<u32> = if self.spec.null_aware && fresh.iter().any(|&r| !keys.1[r]) {
            (0..other.rows.len() as u32).collect()
        } else {
            Vec::new()
        };
        for &row in &fresh {
            let (keyed, null_keyed): (&[u32], &[u32]) = if !keys.1[row] {
                if !self.spec.null_aware {
                    continue;
                }
                (&every_slot, &[])
            } else {
                let key: &[u8] = match &keys.0 {
                    Some(rows) => rows.row(row).data(),
                    None => &[],
                };
                let keyed = other.by_key.get(key).map(Vec::as_slice).unwrap_or_default();
                (keyed, &other.null_keyed)
            };
            for &slot in keyed.iter().chain(null_keyed) {
                let stored = other.rows[slot as usize];
                // A semi or anti join's kept row that matched already has
                // its answer.
                if !stored.alive || (kept == Some(1 - side) && stored.matched) {
                    continue;
                }
                let (left, right) = if side == 0 {
                    (times[row], stored.time)
                } else {
                    (stored.time, times[row])
                };
                let gap = i128::from(right) - i128::from(left);
                if gap >= lower && gap <= upper {
                    pairs.push((row as u32, slot));
                    // A new kept row needs one match, when no condition
                    // is left to check on the pair.
                    if kept == Some(side) && self.spec.filter.is_none() {
                        break;
                    }
                }
            }
        }
        let pairs = self.filtered(side, batch, pairs)?;
        let mut matched = vec![false; count];
        for &(row, _) in &pairs {
            matched[row as usize] = true;
        }
        // Stored rows of the other side that match for the first time.
        let other_side = 1 - side;
        let needs_first = self.spec.emits_unmatched_at_once(other_side)
            || (self.spec.is_semi() && self.spec.kept_side() == Some(other_side));
        let first = if !needs_first {
            Vec::new()
        } else {
            let rows = &self.sides[other_side].rows;
            let mut first: Vec<u32> = pairs
                .iter()
                .map(|&(_, slot)| slot)
                .filter(|&slot| !rows[slot as usize].matched)
                .collect();
            first.sort_unstable();
            first.dedup();
            first
        };
        // An updating join takes back their padded rows before their pairs
        // come out.
        if self.spec.emits_unmatched_at_once(other_side) {
            let picks = only(other_side, first.iter().copied().map(Pick::Stored));
            self.emit_changes(None, &picks, op::DELETE, out)?;
        }
        match self.spec.kept_side() {
            None => {
                let picks: Vec<[Pick; 2]> = pairs
                    .iter()
                    .map(|&(row, slot)| {
                        let mut pick = [Pick::Stored(slot); 2];
                        pick[side] = Pick::Incoming(row);
                        pick
                    })
                    .collect();
                self.emit_rows(Some((side, batch)), &picks, out)?;
            }
            Some(kept) if kept == side => {
                if self.spec.is_semi() {
                    let picks: Vec<[Pick; 2]> = (0..count as u32)
                        .filter(|&row| matched[row as usize])
                        .map(|row| {
                            let mut pick = [Pick::Null; 2];
                            pick[side] = Pick::Incoming(row);
                            pick
                        })
                        .collect();
                    self.emit_rows(Some((side, batch)), &picks, out)?;
                }
            }
            Some(kept) => {
                // A semi join's stored kept rows at their first match.
                if self.spec.is_semi() {
                    let picks = only(kept, first.iter().copied().map(Pick::Stored));
                    self.emit_rows(None, &picks, out)?;
                }
            }
        }
        // An updating join's unmatched new rows come out now (padded, or
        // as an anti join's rows).
        if self.spec.emits_unmatched_at_once(side) {
            let unmatched = fresh
                .iter()
                .filter(|&&row| !matched[row])
                .map(|&row| Pick::Incoming(row as u32));
            let picks = only(side, unmatched);
            self.emit_rows(Some((side, batch)), &picks, out)?;
        }
        let late = self.late_once.unseen(&rows, &late);
        if self.spec.late == LatePolicy::SideOutput && rows.origin.is_some() {
            if let Some(late) = late_batch(&rows, &late)? {
                out.late(late);
            }
        }
        // Nothing failed: the state changes.
        self.late_once.remember(&rows, &late);
        if self.spec.kept_side() != Some(side) {
            let other = &mut self.sides[1 - side];
            for &(_, slot) in &pairs {
                other.rows[slot as usize].matched = true;
            }
        }
        let state = &mut self.sides[side];
        state.rows_in += count as u64;
        state.late += late.len() as u64;
        // Rows no later row could match leave at the next watermark (and
        // come out padded then, if they must).
        self.store(side, rows.batch, &fresh, &times, &keys, &matched)
    }

    fn on_watermark(&mut self, watermark: EventTime, out: &mut Output) -> Result<EventTime> {
        // Everything that can fail runs before state changes: a failed
        // call leaves the join as it was.
        let expiring = [self.expiring(0, watermark), self.expiring(1, watermark)];
        let mut emitted = Ok(());
        for (side, expiring) in expiring.iter().enumerate() {
            let picks: Vec<[Pick; 2]> = self
                .unmatched(side, expiring)
                .into_iter()
                .map(|slot| {
                    let mut pick = [Pick::Null; 2];
                    pick[side] = Pick::Stored(slot);
                    pick
                })
                .collect();
            emitted = emitted.and_then(|()| self.emit_rows(None, &picks, out));
        }
        if let Err(error) = emitted {
            for (side, expiring) in expiring.into_iter().enumerate() {
                self.sides[side]
                    .expiry
                    .extend(expiring.into_iter().map(Reverse));
            }
            return Err(error);
        }
        for (side, expiring) in expiring.iter().enumerate() {
            self.forget(side, expiring);
            // Compaction builds its result before swapping it in: when it
            // fails the state stays as it is, only less compact.
            let _ = self.compact(side);
        }
        Ok(match watermark {
            NO_WATERMARK | END_OF_INPUT => watermark,
            w => w.saturating_sub(self.spec.hold()).max(NO_WATERMARK + 1),
        })
    }

    fn snapshot(&mut self) -> Result<Option<OperatorState>> {
        let side_rows = |side: usize| -> Result<SideRows> {
            let state = &self.sides[side];
            let live = state.live_slots();
            let mut rows = if live.is_empty() {
                SideRows::empty(&self.spec.input_schemas[side])
            } else {
                SideRows {
                    batch: gathered_batch(state, &live)?,
                    times: live.iter().map(|&s| state.rows[s as usize].time).collect(),
                    flags: live
                        .iter()
                        .map(|&s| state.rows[s as usize].matched)
                        .collect(),
                    rows_in: 0,
                    late: 0,
                }
            };
            rows.rows_in = state.rows_in;
            rows.late = state.late;
            Ok(rows)
        };
        Ok(Some(join_state::encode([side_rows(0)?, side_rows(1)?])?))
    }

    fn restored(&self, state: Option<&OperatorState>) -> Result<Box<dyn Operator>> {
        let mut join = IntervalJoin::empty(Arc::clone(&self.spec))?;
        let Some(state) = state else {
            return Ok(Box::new(join));
        };
        let sides = join_state::decode(state, &self.spec.input_schemas, "interval join")?;
        for (side, rows) in sides.into_iter().enumerate() {
            let keys = join.key_rows(side, &rows.batch)?;
            let all: Vec<usize> = (0..rows.times.len()).collect();
            join.store(side, rows.batch, &all, &rows.times, &keys, &rows.flags)?;
            join.sides[side].rows_in = rows.rows_in;
            join.sides[side].late = rows.late;
        }
        Ok(Box::new(join))
    }

    fn metrics(&self) -> OperatorMetrics {
        OperatorMetrics {
            window: WindowMetrics {
                rows_in: self.sides.iter().map(|s| s.rows_in).sum(),
                late_rows_dropped: self.sides.iter().map(|s| s.late).sum(),
                windows_emitted: 0,
            },
            open_windows: self.sides.iter().map(|s| s.live).sum(),
            // Per live row: its values, its slot and its heap entry.
            state_bytes: (0..2)
                .map(|side| {
                    self.sides[side].live
                        * (join_state::row_bytes(&self.spec.input_schemas[side]) + 40)
                })
                .sum(),
            joins: vec![JoinMetrics {
                left: self.sides[0].metrics(),
                right: self.sides[1].metrics(),
            }],
            lookups: Vec::new(),
        }
    }

    fn describe(&self) -> String {
        let spec = &self.spec;
        let keys: Vec<String> = spec.keys[0]
            .iter()
            .zip(&spec.keys[1])
            .map(|(l, r)| format!("{l} = {r}"))
            .collect();
        let bound = |ticks: i64| {
            if ticks < 0 {
                format!("-{}", format_duration(ticks.saturating_neg(), spec.unit))
            } else {
                format_duration(ticks, spec.unit)
            }
        };
        let mut line = format!(
            "IntervalJoin: {} on [{}], right time - left time in [{}, {}]",
            spec.join_type,
            keys.join(", "),
            bound(spec.lower),
            bound(spec.upper)
        );
        if let Some(filter) = &spec.filter {
            line.push_str(&format!(", filter {}", filter.expression()));
        }
        line.push_str(&format!(
            ", state kept until the watermark passes, output watermark {} behind",
            format_duration(spec.hold(), spec.unit)
        ));
        if spec.updating {
            line.push_str(
                ", updating: unmatched rows come out at once and are deleted at their first match",
            );
        }
        line
    }

    fn output_schema(&self) -> SchemaRef {
        Arc::clone(&self.spec.output_schema)
    }
}
