//! One query's operators, from the stream to its results.

use arrow::array::{ArrayRef, Int64Array};
use arrow::datatypes::{SchemaRef, TimeUnit};
use arrow::record_batch::RecordBatch;

use super::chain::StatelessChain;
use super::changelog::changelog;
use super::scan::StreamScan;
use super::session_aggregate::SessionAggregate;
use super::source::SourceBatch;
use super::updating_aggregate::UpdatingAggregate;
use super::window_aggregate::{WindowAggregate, WindowMetrics};
use crate::err;
use crate::error::Result;
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
    /// A GROUP BY without a window: a changelog per push.
    Updating {
        /// The aggregate.
        aggregate: Box<UpdatingAggregate>,
        /// Steps applied to both sides of each change.
        post: StatelessChain,
    },
}

/// The window aggregate of a query.
#[derive(Debug)]
pub enum WindowOperator {
    /// TUMBLE, HOP, CUMULATE: slices merged into windows.
    Sliced(WindowAggregate),
    /// SESSION: per-key sessions.
    Session(SessionAggregate),
}

impl WindowOperator {
    fn process(&mut self, batch: &RecordBatch, row_watermarks: &Int64Array) -> Result<()> {
        match self {
            WindowOperator::Sliced(op) => op.process(batch, row_watermarks),
            WindowOperator::Session(op) => op.process(batch, row_watermarks),
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

    /// Whether results are a changelog (carry the `_op` column).
    pub fn is_changelog(&self) -> bool {
        matches!(self.stage, Stage::Updating { .. })
    }

    /// Whether the query aggregates over a window.
    pub fn has_window(&self) -> bool {
        matches!(self.stage, Stage::Window { .. })
    }

    /// The result schema.
    pub fn output_schema(&self) -> &SchemaRef {
        &self.output_schema
    }

    /// Runs a source batch through; returns the results it completes.
    pub fn on_batch(&mut self, input: &SourceBatch) -> Result<Vec<RecordBatch>> {
        let leaf = self.scan.apply(&input.batch, &input.event_times)?;
        let carried: ArrayRef = input.row_watermarks.clone();
        let (rows, carried) = self.pre.apply(leaf, Some(carried))?;
        match &mut self.stage {
            Stage::Stateless => Ok(if rows.num_rows() == 0 {
                vec![]
            } else {
                vec![rows]
            }),
            Stage::Updating { aggregate, post } => {
                let changes = aggregate.process(&rows, input.watermark)?;
                let mut out: Vec<RecordBatch> = changelog(changes, post, &self.output_schema)?
                    .into_iter()
                    .collect();
                out.extend(self.on_watermark(input.watermark)?);
                Ok(out)
            }
            Stage::Window { aggregate, .. } => {
                let watermarks = carried
                    .as_ref()
                    .and_then(|a| a.as_any().downcast_ref::<Int64Array>())
                    .ok_or_else(|| err!(Internal, "per-row watermarks lost in the chain"))?;
                aggregate.process(&rows, watermarks)?;
                self.on_watermark(input.watermark)
            }
        }
    }

    /// Emits what the watermark completes.
    pub fn on_watermark(&mut self, watermark: EventTime) -> Result<Vec<RecordBatch>> {
        if let Stage::Updating { aggregate, post } = &mut self.stage {
            let changes = aggregate.advance(watermark)?;
            return Ok(changelog(changes, post, &self.output_schema)?
                .into_iter()
                .collect());
        }
        let Stage::Window { aggregate, post } = &mut self.stage else {
            return Ok(vec![]);
        };
        let mut out = Vec::new();
        for window in aggregate.advance(watermark)? {
            let (rows, _) = post.apply(window, None)?;
            if rows.num_rows() > 0 {
                out.push(rows);
            }
        }
        Ok(out)
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
                open_windows: aggregate.groups(),
                state_bytes: aggregate.state_size(),
            },
        }
    }
}
