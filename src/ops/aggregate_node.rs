//! The aggregate nodes of the graph: window aggregates emitting each window
//! once it closes, and changelog aggregates emitting inserts, updates and
//! deletes. Each runs its query's HAVING and final SELECT (the steps after
//! the aggregate) on what it emits.

use std::sync::Arc;

use arrow::array::{Int64Array, UInt32Array};
use arrow::datatypes::{SchemaRef, TimeUnit};
use arrow::record_batch::RecordBatch;

use super::aggregate_spec::AggregateSpec;
use super::chain::StatelessChain;
use super::changelog::{changelog, Changes};
use super::gather::gather;
use super::graph::{Operator, OperatorMetrics, Output, Rows, WindowMetrics};
use super::refining_window_aggregate::RefiningWindowAggregate;
use super::session_aggregate::SessionAggregate;
use super::updating_aggregate::UpdatingAggregate;
use super::window_aggregate::WindowAggregate;
use crate::err;
use crate::error::Result;
use crate::state::OperatorState;
use crate::time::EventTime;

/// What a query does with rows that arrive after their window closed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum LatePolicy {
    /// Drop them and count them (`late_events_dropped`).
    #[default]
    Drop,
    /// Drop and count them, and hand them to the application as pushed.
    SideOutput,
}

/// An aggregate whose results change after they are emitted.
#[derive(Debug)]
pub enum ChangelogOperator {
    /// GROUP BY without a window.
    Groups(Box<UpdatingAggregate>),
    /// Windows with EMIT ON UPDATE or an allowed lateness.
    Windows(Box<RefiningWindowAggregate>),
    /// Sessions with EMIT ON UPDATE or an allowed lateness.
    Sessions(Box<SessionAggregate>),
}

impl ChangelogOperator {
    fn process(
        &mut self,
        batch: &RecordBatch,
        row_watermarks: &Int64Array,
        watermark: EventTime,
        late: Option<&mut Vec<u32>>,
    ) -> Result<Changes> {
        match self {
            ChangelogOperator::Groups(op) => op.process(batch, watermark),
            ChangelogOperator::Windows(op) => op.process(batch, row_watermarks, watermark, late),
            ChangelogOperator::Sessions(op) => {
                op.process(batch, row_watermarks, late)?;
                op.changes(watermark)
            }
        }
    }

    fn advance(&mut self, watermark: EventTime) -> Result<Changes> {
        match self {
            ChangelogOperator::Groups(op) => op.advance(watermark),
            ChangelogOperator::Windows(op) => op.advance(watermark),
            ChangelogOperator::Sessions(op) => op.changes(watermark),
        }
    }

    fn metrics(&self) -> &WindowMetrics {
        match self {
            ChangelogOperator::Groups(op) => op.metrics(),
            ChangelogOperator::Windows(op) => op.metrics(),
            ChangelogOperator::Sessions(op) => op.metrics(),
        }
    }

    fn open_windows(&self) -> usize {
        match self {
            ChangelogOperator::Groups(op) => op.groups(),
            ChangelogOperator::Windows(op) => op.open_windows(),
            ChangelogOperator::Sessions(op) => op.open_windows(),
        }
    }

    fn state_size(&self) -> usize {
        match self {
            ChangelogOperator::Groups(op) => op.state_size(),
            ChangelogOperator::Windows(op) => op.state_size(),
            ChangelogOperator::Sessions(op) => op.state_size(),
        }
    }

    fn describe(&self, unit: TimeUnit) -> String {
        match self {
            ChangelogOperator::Groups(op) => op.describe(unit),
            ChangelogOperator::Windows(op) => op.describe(unit),
            ChangelogOperator::Sessions(op) => op.describe(unit),
        }
    }
}

/// The window aggregate of a query.
// One per query, so the variants' sizes do not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
pub enum WindowOperator {
    /// TUMBLE, HOP, CUMULATE: slices merged into windows.
    Sliced(WindowAggregate),
    /// SESSION: per-key sessions.
    Session(SessionAggregate),
}

impl WindowOperator {
    /// Adds a batch; returns windows that closed inside it.
    fn process(
        &mut self,
        batch: &RecordBatch,
        row_watermarks: &Int64Array,
        late: Option<&mut Vec<u32>>,
    ) -> Result<Vec<RecordBatch>> {
        match self {
            WindowOperator::Sliced(op) => op.process(batch, row_watermarks, late),
            WindowOperator::Session(op) => {
                op.process(batch, row_watermarks, late)?;
                Ok(Vec::new())
            }
        }
    }

    fn advance(&mut self, watermark: EventTime) -> Result<Vec<RecordBatch>> {
        match self {
            WindowOperator::Sliced(op) => op.advance(watermark),
            WindowOperator::Session(op) => op.advance(watermark),
        }
    }

    fn metrics(&self) -> &WindowMetrics {
        match self {
            WindowOperator::Sliced(op) => op.metrics(),
            WindowOperator::Session(op) => op.metrics(),
        }
    }

    fn open_windows(&self) -> usize {
        match self {
            WindowOperator::Sliced(op) => op.open_windows(),
            WindowOperator::Session(op) => op.open_windows(),
        }
    }

    fn state_size(&self) -> usize {
        match self {
            WindowOperator::Sliced(op) => op.state_size(),
            WindowOperator::Session(op) => op.state_size(),
        }
    }

    fn describe(&self, unit: TimeUnit) -> String {
        match self {
            WindowOperator::Sliced(op) => op.describe(unit),
            WindowOperator::Session(op) => op.describe(unit),
        }
    }
}

impl ChangelogOperator {
    fn spec(&self) -> &AggregateSpec {
        match self {
            ChangelogOperator::Groups(op) => op.spec(),
            ChangelogOperator::Windows(op) => op.spec(),
            ChangelogOperator::Sessions(op) => op.spec(),
        }
    }

    fn kind(&self) -> &'static str {
        match self {
            ChangelogOperator::Groups(_) => "updating",
            ChangelogOperator::Windows(_) => "refining",
            ChangelogOperator::Sessions(_) => "session",
        }
    }

    fn on_wall_clock(&mut self, now_millis: i64) -> Result<Option<Changes>> {
        Ok(match self {
            ChangelogOperator::Windows(op) => Some(op.on_wall_clock(now_millis)?),
            ChangelogOperator::Sessions(op) => Some(op.on_wall_clock(now_millis)?),
            ChangelogOperator::Groups(_) => None,
        })
    }

    fn is_periodic(&self) -> bool {
        match self {
            ChangelogOperator::Windows(op) => op.is_periodic(),
            ChangelogOperator::Sessions(op) => op.is_periodic(),
            ChangelogOperator::Groups(_) => false,
        }
    }

    fn snapshot(&mut self) -> Result<OperatorState> {
        match self {
            ChangelogOperator::Groups(op) => op.snapshot(),
            ChangelogOperator::Windows(op) => op.snapshot(),
            ChangelogOperator::Sessions(op) => op.snapshot(),
        }
    }

    /// The same operator, fresh, with `state` restored into it.
    fn restored(&self, state: &OperatorState) -> Result<Self> {
        Ok(match self {
            ChangelogOperator::Groups(op) => {
                let mut fresh = op.fresh()?;
                fresh.restore(state)?;
                ChangelogOperator::Groups(Box::new(fresh))
            }
            ChangelogOperator::Windows(op) => {
                let mut fresh = op.fresh()?;
                fresh.restore(state)?;
                ChangelogOperator::Windows(Box::new(fresh))
            }
            ChangelogOperator::Sessions(op) => {
                let mut fresh = op.fresh()?;
                fresh.restore(state)?;
                ChangelogOperator::Sessions(Box::new(fresh))
            }
        })
    }
}

impl WindowOperator {
    fn spec(&self) -> &AggregateSpec {
        match self {
            WindowOperator::Sliced(op) => op.spec(),
            WindowOperator::Session(op) => op.spec(),
        }
    }

    fn kind(&self) -> &'static str {
        match self {
            WindowOperator::Sliced(_) => "window",
            WindowOperator::Session(_) => "session",
        }
    }

    fn snapshot(&mut self) -> Result<OperatorState> {
        match self {
            WindowOperator::Sliced(op) => op.snapshot(),
            WindowOperator::Session(op) => op.snapshot(),
        }
    }

    /// The same operator, fresh, with `state` restored into it.
    fn restored(&self, state: &OperatorState) -> Result<Self> {
        Ok(match self {
            WindowOperator::Sliced(op) => {
                let mut fresh = op.fresh()?;
                fresh.restore(state)?;
                WindowOperator::Sliced(fresh)
            }
            WindowOperator::Session(op) => {
                let mut fresh = op.fresh()?;
                fresh.restore(state)?;
                WindowOperator::Session(fresh)
            }
        })
    }
}

/// What an aggregate emits: closed windows, or changes to results.
#[derive(Debug)]
enum Emission {
    Windows(Vec<RecordBatch>),
    Changes(Box<Changes>),
}

/// The aggregate inside an [`AggregateNode`]: a window aggregate or a
/// changelog aggregate, seen the same way by the node.
trait NodeAggregate: std::fmt::Debug + Sized {
    fn kind(&self) -> &'static str;
    fn keys_and_aggregates(&self) -> &AggregateSpec;
    /// Adds rows (`watermarks[i]` in force before row `i`, `watermark`
    /// after them); late rows' positions go to `late`.
    fn add(
        &mut self,
        batch: &RecordBatch,
        watermarks: &Int64Array,
        watermark: EventTime,
        late: Option<&mut Vec<u32>>,
    ) -> Result<Emission>;
    fn advance_to(&mut self, watermark: EventTime) -> Result<Emission>;
    fn tick(&mut self, _now_millis: i64) -> Result<Option<Emission>> {
        Ok(None)
    }
    fn periodic(&self) -> bool {
        false
    }
    fn take_snapshot(&mut self) -> Result<OperatorState>;
    fn restored_from(&self, state: &OperatorState) -> Result<Self>;
    fn counters(&self) -> OperatorMetrics;
    fn line(&self, unit: TimeUnit) -> String;
}

impl NodeAggregate for WindowOperator {
    fn kind(&self) -> &'static str {
        WindowOperator::kind(self)
    }
    fn keys_and_aggregates(&self) -> &AggregateSpec {
        self.spec()
    }
    fn add(
        &mut self,
        batch: &RecordBatch,
        watermarks: &Int64Array,
        _watermark: EventTime,
        late: Option<&mut Vec<u32>>,
    ) -> Result<Emission> {
        Ok(Emission::Windows(self.process(batch, watermarks, late)?))
    }
    fn advance_to(&mut self, watermark: EventTime) -> Result<Emission> {
        Ok(Emission::Windows(self.advance(watermark)?))
    }
    fn take_snapshot(&mut self) -> Result<OperatorState> {
        self.snapshot()
    }
    fn restored_from(&self, state: &OperatorState) -> Result<Self> {
        self.restored(state)
    }
    fn counters(&self) -> OperatorMetrics {
        OperatorMetrics {
            window: self.metrics().clone(),
            open_windows: self.open_windows(),
            state_bytes: self.state_size(),
            joins: Vec::new(),
            lookups: Vec::new(),
        }
    }
    fn line(&self, unit: TimeUnit) -> String {
        self.describe(unit)
    }
}

impl NodeAggregate for ChangelogOperator {
    fn kind(&self) -> &'static str {
        ChangelogOperator::kind(self)
    }
    fn keys_and_aggregates(&self) -> &AggregateSpec {
        self.spec()
    }
    fn add(
        &mut self,
        batch: &RecordBatch,
        watermarks: &Int64Array,
        watermark: EventTime,
        late: Option<&mut Vec<u32>>,
    ) -> Result<Emission> {
        let changes = self.process(batch, watermarks, watermark, late)?;
        Ok(Emission::Changes(Box::new(changes)))
    }
    fn advance_to(&mut self, watermark: EventTime) -> Result<Emission> {
        Ok(Emission::Changes(Box::new(self.advance(watermark)?)))
    }
    fn tick(&mut self, now_millis: i64) -> Result<Option<Emission>> {
        Ok(self
            .on_wall_clock(now_millis)?
            .map(|changes| Emission::Changes(Box::new(changes))))
    }
    fn periodic(&self) -> bool {
        self.is_periodic()
    }
    fn take_snapshot(&mut self) -> Result<OperatorState> {
        self.snapshot()
    }
    fn restored_from(&self, state: &OperatorState) -> Result<Self> {
        self.restored(state)
    }
    fn counters(&self) -> OperatorMetrics {
        OperatorMetrics {
            window: self.metrics().clone(),
            open_windows: self.open_windows(),
            state_bytes: self.state_size(),
            joins: Vec::new(),
            lookups: Vec::new(),
        }
    }
    fn line(&self, unit: TimeUnit) -> String {
        self.describe(unit)
    }
}

/// Late rows (positions in the aggregate's input) as they were pushed.
pub(crate) fn late_batch(rows: &Rows, late_rows: &[u32]) -> Result<Option<RecordBatch>> {
    if late_rows.is_empty() {
        return Ok(None);
    }
    let origin = rows
        .origin
        .as_ref()
        .ok_or_else(|| err!(Internal, "late rows without their origin"))?;
    let picked =
        UInt32Array::from_iter_values(late_rows.iter().map(|&i| origin.rows.value(i as usize)));
    let columns = origin
        .batch
        .columns()
        .iter()
        .map(|c| gather(c, &picked))
        .collect::<Result<Vec<_>>>()?;
    Ok(Some(RecordBatch::try_new(origin.batch.schema(), columns)?))
}

/// An aggregate and the steps after it (HAVING, the final SELECT), run on
/// each window it emits or on both sides of each change.
#[derive(Debug)]
pub struct AggregateNode<A> {
    aggregate: A,
    post: StatelessChain,
    /// The result schema (with the `_op` column for changelogs).
    output_schema: SchemaRef,
    time_unit: TimeUnit,
    late: LatePolicy,
}

/// A window aggregate: each window emitted once, when it closes.
pub type WindowNode = AggregateNode<WindowOperator>;

/// An aggregate emitting a changelog (GROUP BY without a window; windows
/// with early results or allowed lateness).
pub type ChangelogNode = AggregateNode<ChangelogOperator>;

impl<A> AggregateNode<A> {
    /// A node running `aggregate`, then `post` on what it emits.
    pub fn new(
        aggregate: A,
        post: StatelessChain,
        output_schema: SchemaRef,
        time_unit: TimeUnit,
        late: LatePolicy,
    ) -> Self {
        Self {
            aggregate,
            post,
            output_schema,
            time_unit,
            late,
        }
    }

    fn emit(&self, emission: Emission, out: &mut Output) -> Result<()> {
        match emission {
            Emission::Windows(windows) => {
                for window in windows {
                    let (rows, _) = self.post.apply(window, Vec::new())?;
                    out.emit(rows);
                }
            }
            Emission::Changes(changes) => {
                if let Some(batch) = changelog(*changes, &self.post, &self.output_schema)? {
                    out.emit(batch);
                }
            }
        }
        Ok(())
    }
}

impl<A: NodeAggregate + 'static> Operator for AggregateNode<A> {
    fn state_kind(&self) -> Option<&'static str> {
        Some(self.aggregate.kind())
    }

    fn may_fail(&self) -> bool {
        self.aggregate.keys_and_aggregates().may_fail() || self.post.may_fail()
    }

    fn process(&mut self, _input: usize, rows: Rows, out: &mut Output) -> Result<()> {
        let watermarks = rows.row_watermarks.materialize(rows.batch.num_rows());
        let side_output = self.late == LatePolicy::SideOutput && rows.origin.is_some();
        let mut late_rows = Vec::new();
        let emission = self.aggregate.add(
            &rows.batch,
            &watermarks,
            rows.watermark_after,
            side_output.then_some(&mut late_rows),
        )?;
        self.emit(emission, out)?;
        if let Some(late) = late_batch(&rows, &late_rows)? {
            out.late(late);
        }
        Ok(())
    }

    fn on_watermark(&mut self, watermark: EventTime, out: &mut Output) -> Result<EventTime> {
        let emission = self.aggregate.advance_to(watermark)?;
        self.emit(emission, out)?;
        Ok(watermark)
    }

    fn on_wall_clock(&mut self, now_millis: i64, out: &mut Output) -> Result<()> {
        if let Some(emission) = self.aggregate.tick(now_millis)? {
            self.emit(emission, out)?;
        }
        Ok(())
    }

    fn needs_clock(&self) -> bool {
        self.aggregate.periodic()
    }

    fn snapshot(&mut self) -> Result<Option<OperatorState>> {
        Ok(Some(self.aggregate.take_snapshot()?))
    }

    fn restored(&self, state: Option<&OperatorState>) -> Result<Box<dyn Operator>> {
        let state = state.ok_or_else(|| {
            err!(
                CheckpointMismatch,
                "the checkpoint has no state for an aggregate"
            )
        })?;
        Ok(Box::new(Self {
            aggregate: self.aggregate.restored_from(state)?,
            post: self.post.clone(),
            output_schema: Arc::clone(&self.output_schema),
            time_unit: self.time_unit,
            late: self.late,
        }))
    }

    fn metrics(&self) -> OperatorMetrics {
        self.aggregate.counters()
    }

    fn describe(&self) -> String {
        let mut lines = vec![self.aggregate.line(self.time_unit)];
        lines.extend(self.post.describe());
        lines.join(" ▸ ")
    }

    fn output_schema(&self) -> SchemaRef {
        Arc::clone(&self.output_schema)
    }
}
