//! Streams as DataFusion tables, so DataFusion can plan queries over them.
//!
//! Planning a streaming query yields a physical plan whose leaf is a
//! [`StreamScanExec`]. The streaming planner (`crate::plan`) reads the plan
//! and never executes it: rows reach the operators by `push`, not by
//! `ExecutionPlan::execute`.

use std::fmt;
use std::sync::Arc;

use arrow::datatypes::SchemaRef;
use async_trait::async_trait;
use datafusion::catalog::{Session, TableProvider};
use datafusion::common::tree_node::TreeNodeRecursion;
use datafusion::common::{exec_err, Result as DFResult};
use datafusion::datasource::TableType;
use datafusion::execution::TaskContext;
use datafusion::logical_expr::Expr;
use datafusion::physical_expr::{EquivalenceProperties, PhysicalExpr};
use datafusion::physical_plan::execution_plan::{Boundedness, EmissionType};
use datafusion::physical_plan::{
    DisplayAs, DisplayFormatType, ExecutionPlan, Partitioning, PlanProperties,
    SendableRecordBatchStream,
};

use crate::catalog::StreamDef;
use crate::time::window::WindowSpec;

/// A stream seen as a table, optionally through a window table function
/// (which adds `window_start` and `window_end`).
#[derive(Debug)]
pub struct StreamTableProvider {
    stream: Arc<StreamDef>,
    window: Option<WindowSpec>,
    /// Flink's `SESSION(TABLE t PARTITION BY keys, ...)`: the keys (none:
    /// sessions over all rows). `None` for Riffle's own form, whose
    /// sessions are per GROUP BY key.
    session_partition: Option<Vec<String>>,
    /// Flink's `t FOR SYSTEM_TIME AS OF o.ts`: the stream read as a
    /// versioned table, as of the time named (as written).
    versioned_as_of: Option<String>,
    schema: SchemaRef,
}

impl StreamTableProvider {
    /// The bare stream.
    pub fn new(stream: Arc<StreamDef>) -> Self {
        let schema = Arc::clone(&stream.schema);
        Self {
            stream,
            window: None,
            session_partition: None,
            versioned_as_of: None,
            schema,
        }
    }

    /// The stream (or view) read.
    pub fn stream(&self) -> &Arc<StreamDef> {
        &self.stream
    }

    /// The stream as a versioned table, read as of `time` (as written).
    pub fn versioned(stream: Arc<StreamDef>, time: String) -> Self {
        Self {
            versioned_as_of: Some(time),
            ..Self::new(stream)
        }
    }

    /// The stream through a window table function.
    pub fn windowed(stream: Arc<StreamDef>, window: WindowSpec) -> Self {
        let schema = stream.windowed_schema();
        Self {
            stream,
            window: Some(window),
            session_partition: None,
            versioned_as_of: None,
            schema,
        }
    }

    /// The same, with Flink's session partition keys (see the field).
    pub fn with_session_partition(mut self, partition: Option<Vec<String>>) -> Self {
        self.session_partition = partition;
        self
    }
}

#[async_trait]
impl TableProvider for StreamTableProvider {
    fn schema(&self) -> SchemaRef {
        Arc::clone(&self.schema)
    }

    fn table_type(&self) -> TableType {
        TableType::Temporary
    }

    async fn scan(
        &self,
        _state: &dyn Session,
        projection: Option<&Vec<usize>>,
        _filters: &[Expr],
        _limit: Option<usize>,
    ) -> DFResult<Arc<dyn ExecutionPlan>> {
        let mut scan = StreamScanExec::try_new(
            Arc::clone(&self.stream),
            self.window,
            self.session_partition.clone(),
            Arc::clone(&self.schema),
            projection.cloned(),
        )?;
        scan.versioned_as_of = self.versioned_as_of.clone();
        Ok(Arc::new(scan))
    }
}

/// Leaf of a streaming query's physical plan: names the stream, the window
/// table function (if any) and the columns the query reads.
#[derive(Debug)]
pub struct StreamScanExec {
    stream: Arc<StreamDef>,
    window: Option<WindowSpec>,
    session_partition: Option<Vec<String>>,
    versioned_as_of: Option<String>,
    /// Schema before projection: the stream's, plus window columns if windowed.
    full_schema: SchemaRef,
    projection: Option<Vec<usize>>,
    properties: Arc<PlanProperties>,
}

impl StreamScanExec {
    fn try_new(
        stream: Arc<StreamDef>,
        window: Option<WindowSpec>,
        session_partition: Option<Vec<String>>,
        full_schema: SchemaRef,
        projection: Option<Vec<usize>>,
    ) -> DFResult<Self> {
        let schema = match &projection {
            Some(indices) => Arc::new(full_schema.project(indices)?),
            None => Arc::clone(&full_schema),
        };
        // Declared bounded: DataFusion's sanity checks would otherwise refuse
        // the (unordered) aggregate above. The plan is never executed; the
        // streaming planner decides what can run incrementally.
        let properties = PlanProperties::new(
            EquivalenceProperties::new(schema),
            Partitioning::UnknownPartitioning(1),
            EmissionType::Incremental,
            Boundedness::Bounded,
        );
        Ok(Self {
            stream,
            window,
            session_partition,
            versioned_as_of: None,
            full_schema,
            projection,
            properties: Arc::new(properties),
        })
    }

    /// The stream read.
    pub fn stream(&self) -> &Arc<StreamDef> {
        &self.stream
    }

    /// The window table function applied, if any.
    pub fn window(&self) -> Option<WindowSpec> {
        self.window
    }

    /// Schema before projection.
    pub fn full_schema(&self) -> &SchemaRef {
        &self.full_schema
    }

    /// Flink's session partition keys, if the query gave them (see
    /// [`StreamTableProvider`]).
    pub fn session_partition(&self) -> Option<&[String]> {
        self.session_partition.as_deref()
    }

    /// For a versioned table (`FOR SYSTEM_TIME AS OF`): the time it is read
    /// as of, as written.
    pub fn versioned_as_of(&self) -> Option<&str> {
        self.versioned_as_of.as_deref()
    }

    /// Columns of `full_schema` that the query reads, in output order.
    pub fn projection(&self) -> Option<&[usize]> {
        self.projection.as_deref()
    }
}

impl DisplayAs for StreamScanExec {
    fn fmt_as(&self, _t: DisplayFormatType, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "StreamScanExec: stream={}", self.stream.name)?;
        if let Some(window) = self.window {
            write!(f, ", window={window:?}")?;
        }
        if let Some(time) = &self.versioned_as_of {
            write!(f, ", versioned as of {time}")?;
        }
        Ok(())
    }
}

impl ExecutionPlan for StreamScanExec {
    fn name(&self) -> &str {
        "StreamScanExec"
    }

    fn properties(&self) -> &Arc<PlanProperties> {
        &self.properties
    }

    fn children(&self) -> Vec<&Arc<dyn ExecutionPlan>> {
        vec![]
    }

    fn apply_expressions(
        &self,
        _f: &mut dyn FnMut(&Arc<dyn PhysicalExpr>) -> DFResult<TreeNodeRecursion>,
    ) -> DFResult<TreeNodeRecursion> {
        Ok(TreeNodeRecursion::Continue)
    }

    fn with_new_children(
        self: Arc<Self>,
        _children: Vec<Arc<dyn ExecutionPlan>>,
    ) -> DFResult<Arc<dyn ExecutionPlan>> {
        Ok(self)
    }

    fn execute(
        &self,
        _partition: usize,
        _context: Arc<TaskContext>,
    ) -> DFResult<SendableRecordBatchStream> {
        exec_err!(
            "stream '{}' is unbounded: it is read by pushing events, not by running a batch query",
            self.stream.name
        )
    }
}
