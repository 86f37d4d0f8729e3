//! One query's operators, from the stream to its results.

use std::sync::Arc;

use arrow::array::{ArrayRef, Int64Array, UInt32Array};
use arrow::datatypes::{SchemaRef, TimeUnit};
use arrow::record_batch::RecordBatch;

use super::chain::StatelessChain;
use super::changelog::{changelog, Changes};
use super::gather::gather;
use super::refining_window_aggregate::RefiningWindowAggregate;
use super::scan::StreamScan;
use super::session_aggregate::SessionAggregate;
use super::source::SourceBatch;
use super::updating_aggregate::UpdatingAggregate;
use super::window_aggregate::{WindowAggregate, WindowMetrics};
use crate::err;
use crate::error::Result;
use crate::state::OperatorState;
use crate::time::EventTime;

/// What a query does after its stateless steps.
#[derive(Debug)]
pub enum Stage {
    /// Filter/project only: results per pushed batch.
    Stateless,
    /// A window aggregate, then the steps above it (HAVING, final SELECT).
    Window {
        /// The aggregate.
        aggregate: Box<WindowOperator>,
        /// Steps applied to each emitted window.
        post: StatelessChain,
    },
    /// A changelog: GROUP BY without a window, or windows with early
    /// results or allowed lateness.
    Updating {
        /// The aggregate.
        aggregate: Box<ChangelogOperator>,
        /// Steps applied to both sides of each change.
        post: StatelessChain,
    },
}

/// What a query does with rows that arrive after their window closed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum LatePolicy {
    /// Drop them and count them (`late_events_dropped`).
    #[default]
    Drop,
    /// Drop and count them, and hand them to the application as pushed.
    SideOutput,
}

/// Something a query emitted.
#[derive(Debug, Clone)]
pub enum Emitted {
    /// Result rows.
    Rows(RecordBatch),
    /// Late input rows, in the stream's schema (side output).
    Late(RecordBatch),
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

/// A query's operator graph.
#[derive(Debug)]
pub struct Pipeline {
    scan: StreamScan,
    pre: StatelessChain,
    stage: Stage,
    output_schema: SchemaRef,
    time_unit: TimeUnit,
    late: LatePolicy,
}

/// Counters for one query.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PipelineMetrics {
    /// Window counters (zero for stateless queries).
    pub window: WindowMetrics,
    /// Windows holding state.
    pub open_windows: usize,
    /// Approximate bytes of operator state.
    pub state_bytes: usize,
}

impl Pipeline {
    /// Assembles a pipeline; `output_schema` is the query's result schema.
    pub fn new(
        scan: StreamScan,
        pre: StatelessChain,
        stage: Stage,
        output_schema: SchemaRef,
        time_unit: TimeUnit,
    ) -> Self {
        Self {
            scan,
            pre,
            stage,
            output_schema,
            time_unit,
            late: LatePolicy::Drop,
        }
    }

    /// The operators, one per line, source side first, for EXPLAIN.
    pub fn describe(&self) -> String {
        let unit = self.time_unit;
        let mut lines = vec![self.scan.describe(unit)];
        lines.extend(self.pre.describe());
        match &self.stage {
            Stage::Stateless => {}
            Stage::Window { aggregate, post } => {
                lines.push(aggregate.describe(unit));
                lines.extend(post.describe());
            }
            Stage::Updating { aggregate, post } => {
                lines.push(aggregate.describe(unit));
                lines.extend(post.describe());
            }
        }
        let columns: Vec<&str> = self
            .output_schema
            .fields()
            .iter()
            .map(|f| f.name().as_str())
            .collect();
        lines.push(format!("Output: [{}]", columns.join(", ")));
        lines
            .iter()
            .map(|l| format!("  └ {l}"))
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// Sets what happens to late rows.
    pub fn with_late_policy(mut self, late: LatePolicy) -> Self {
        self.late = late;
        self
    }

    /// Whether results are a changelog (carry the `_op` column).
    pub fn is_changelog(&self) -> bool {
        matches!(self.stage, Stage::Updating { .. })
    }

    /// Whether the query aggregates over a window.
    pub fn has_window(&self) -> bool {
        match &self.stage {
            Stage::Window { .. } => true,
            Stage::Updating { aggregate, .. } => {
                !matches!(aggregate.as_ref(), ChangelogOperator::Groups(_))
            }
            Stage::Stateless => false,
        }
    }

    /// The result schema.
    pub fn output_schema(&self) -> &SchemaRef {
        &self.output_schema
    }

    /// Runs a source batch through; returns the results it completes.
    pub fn on_batch(&mut self, input: &SourceBatch) -> Result<Vec<Emitted>> {
        let leaf = self.scan.apply(&input.batch, &input.event_times)?;
        let mut carried: Vec<ArrayRef> = vec![input.row_watermarks.clone()];
        let side_output = self.late == LatePolicy::SideOutput;
        if side_output {
            // Source row numbers, to hand late rows back as they were pushed.
            let rows = u32::try_from(input.batch.num_rows())
                .map_err(|_| err!(InvalidInput, "batch too large"))?;
            carried.push(Arc::new(UInt32Array::from_iter_values(0..rows)));
        }
        let (rows, carried) = self.pre.apply(leaf, carried)?;
        let watermarks = carried
            .first()
            .and_then(|a| a.as_any().downcast_ref::<Int64Array>())
            .ok_or_else(|| err!(Internal, "per-row watermarks lost in the chain"))?;
        let mut late_rows = Vec::new();
        let mut out = match &mut self.stage {
            Stage::Stateless => {
                if rows.num_rows() == 0 {
                    vec![]
                } else {
                    vec![Emitted::Rows(rows)]
                }
            }
            Stage::Updating { aggregate, post } => {
                let changes = aggregate.process(
                    &rows,
                    watermarks,
                    input.watermark,
                    side_output.then_some(&mut late_rows),
                )?;
                changelog(changes, post, &self.output_schema)?
                    .into_iter()
                    .map(Emitted::Rows)
                    .collect()
            }
            Stage::Window { aggregate, post } => {
                let windows =
                    aggregate.process(&rows, watermarks, side_output.then_some(&mut late_rows))?;
                let mut out = Vec::new();
                for window in windows {
                    let (rows, _) = post.apply(window, Vec::new())?;
                    if rows.num_rows() > 0 {
                        out.push(Emitted::Rows(rows));
                    }
                }
                out
            }
        };
        if !late_rows.is_empty() {
            let source_rows = carried
                .get(1)
                .and_then(|a| a.as_any().downcast_ref::<UInt32Array>())
                .ok_or_else(|| err!(Internal, "source row numbers lost in the chain"))?;
            let picked = UInt32Array::from_iter_values(
                late_rows.iter().map(|&i| source_rows.value(i as usize)),
            );
            let columns = input
                .batch
                .columns()
                .iter()
                .map(|c| gather(c, &picked))
                .collect::<Result<Vec<_>>>()?;
            out.push(Emitted::Late(RecordBatch::try_new(
                input.batch.schema(),
                columns,
            )?));
        }
        out.extend(self.on_watermark(input.watermark)?);
        Ok(out)
    }

    /// Emits what the watermark completes.
    pub fn on_watermark(&mut self, watermark: EventTime) -> Result<Vec<Emitted>> {
        match &mut self.stage {
            Stage::Stateless => Ok(Vec::new()),
            Stage::Updating { aggregate, post } => {
                let changes = aggregate.advance(watermark)?;
                Ok(changelog(changes, post, &self.output_schema)?
                    .into_iter()
                    .map(Emitted::Rows)
                    .collect())
            }
            Stage::Window { aggregate, post } => {
                let mut out = Vec::new();
                for window in aggregate.advance(watermark)? {
                    let (rows, _) = post.apply(window, Vec::new())?;
                    if rows.num_rows() > 0 {
                        out.push(Emitted::Rows(rows));
                    }
                }
                Ok(out)
            }
        }
    }

    /// Wall-clock tick: periodic emission (EMIT EVERY).
    pub fn on_wall_clock(&mut self, now_millis: i64) -> Result<Vec<Emitted>> {
        let Stage::Updating { aggregate, post } = &mut self.stage else {
            return Ok(Vec::new());
        };
        let changes = match aggregate.as_mut() {
            ChangelogOperator::Windows(windows) => windows.on_wall_clock(now_millis)?,
            ChangelogOperator::Sessions(sessions) => sessions.on_wall_clock(now_millis)?,
            ChangelogOperator::Groups(_) => return Ok(Vec::new()),
        };
        Ok(changelog(changes, post, &self.output_schema)?
            .into_iter()
            .map(Emitted::Rows)
            .collect())
    }

    /// Whether the query wants wall-clock ticks.
    pub fn needs_clock(&self) -> bool {
        match &self.stage {
            Stage::Updating { aggregate, .. } => match aggregate.as_ref() {
                ChangelogOperator::Windows(windows) => windows.is_periodic(),
                ChangelogOperator::Sessions(sessions) => sessions.is_periodic(),
                ChangelogOperator::Groups(_) => false,
            },
            _ => false,
        }
    }

    /// The operator state of the query (none for stateless queries), with
    /// the operator's kind. Leaves the query as it was.
    pub fn snapshot(&mut self) -> Result<Option<(&'static str, OperatorState)>> {
        Ok(match &mut self.stage {
            Stage::Stateless => None,
            Stage::Window { aggregate, .. } => match aggregate.as_mut() {
                WindowOperator::Sliced(op) => Some(("window", op.snapshot()?)),
                WindowOperator::Session(op) => Some(("session", op.snapshot()?)),
            },
            Stage::Updating { aggregate, .. } => match aggregate.as_mut() {
                ChangelogOperator::Groups(op) => Some(("updating", op.snapshot()?)),
                ChangelogOperator::Windows(op) => Some(("refining", op.snapshot()?)),
                ChangelogOperator::Sessions(op) => Some(("session", op.snapshot()?)),
            },
        })
    }

    /// Restores operator state written by [`Self::snapshot`] for the same query.
    pub fn restore(&mut self, kind: &str, state: &OperatorState) -> Result<()> {
        let expected = self.snapshot_kind();
        if expected != Some(kind) {
            return Err(err!(
                CheckpointMismatch,
                "the checkpoint holds '{kind}' state where this query has {}",
                expected.map_or("no state".to_string(), |k| format!("'{k}'"))
            ));
        }
        match &mut self.stage {
            Stage::Stateless => Ok(()),
            Stage::Window { aggregate, .. } => match aggregate.as_mut() {
                WindowOperator::Sliced(op) => op.restore(state),
                WindowOperator::Session(op) => op.restore(state),
            },
            Stage::Updating { aggregate, .. } => match aggregate.as_mut() {
                ChangelogOperator::Groups(op) => op.restore(state),
                ChangelogOperator::Windows(op) => op.restore(state),
                ChangelogOperator::Sessions(op) => op.restore(state),
            },
        }
    }

    fn snapshot_kind(&self) -> Option<&'static str> {
        match &self.stage {
            Stage::Stateless => None,
            Stage::Window { aggregate, .. } => Some(match aggregate.as_ref() {
                WindowOperator::Sliced(_) => "window",
                WindowOperator::Session(_) => "session",
            }),
            Stage::Updating { aggregate, .. } => Some(match aggregate.as_ref() {
                ChangelogOperator::Groups(_) => "updating",
                ChangelogOperator::Windows(_) => "refining",
                ChangelogOperator::Sessions(_) => "session",
            }),
        }
    }

    /// Counters and state size.
    pub fn metrics(&self) -> PipelineMetrics {
        match &self.stage {
            Stage::Stateless => PipelineMetrics::default(),
            Stage::Window { aggregate, .. } => PipelineMetrics {
                window: aggregate.metrics().clone(),
                open_windows: aggregate.open_windows(),
                state_bytes: aggregate.state_size(),
            },
            Stage::Updating { aggregate, .. } => PipelineMetrics {
                window: aggregate.metrics().clone(),
                open_windows: aggregate.open_windows(),
                state_bytes: aggregate.state_size(),
            },
        }
    }
}
