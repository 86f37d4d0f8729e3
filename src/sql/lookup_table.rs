//! Tables the application fills (`CREATE TABLE ... PRIMARY KEY`) as
//! DataFusion tables, so DataFusion can plan a stream joined with one.
//!
//! Like a stream's scan, the leaf [`LookupScanExec`] is never executed: the
//! streaming planner turns a join with it into a lookup join that reads the
//! table's rows as they stand when each event is processed.

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

use crate::catalog::TableDef;

/// A declared table seen by DataFusion.
#[derive(Debug)]
pub struct LookupTableProvider {
    table: Arc<TableDef>,
}

impl LookupTableProvider {
    /// The provider of `table`.
    pub fn new(table: Arc<TableDef>) -> Self {
        Self { table }
    }
}

#[async_trait]
impl TableProvider for LookupTableProvider {
    fn schema(&self) -> SchemaRef {
        Arc::clone(&self.table.schema)
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
        Ok(Arc::new(LookupScanExec::try_new(
            Arc::clone(&self.table),
            projection.cloned(),
        )?))
    }
}

/// Leaf of a query plan that reads a table: names it and the columns read.
#[derive(Debug)]
pub struct LookupScanExec {
    table: Arc<TableDef>,
    projection: Option<Vec<usize>>,
    properties: Arc<PlanProperties>,
}

impl LookupScanExec {
    fn try_new(table: Arc<TableDef>, projection: Option<Vec<usize>>) -> DFResult<Self> {
        let schema = match &projection {
            Some(indices) => Arc::new(table.schema.project(indices)?),
            None => Arc::clone(&table.schema),
        };
        let properties = PlanProperties::new(
            EquivalenceProperties::new(schema),
            Partitioning::UnknownPartitioning(1),
            EmissionType::Final,
            Boundedness::Bounded,
        );
        Ok(Self {
            table,
            projection,
            properties: Arc::new(properties),
        })
    }

    /// The table read.
    pub fn table(&self) -> &Arc<TableDef> {
        &self.table
    }

    /// Columns of the table read, in output order (`None`: all).
    pub fn projection(&self) -> Option<&[usize]> {
        self.projection.as_deref()
    }
}

impl DisplayAs for LookupScanExec {
    fn fmt_as(&self, _t: DisplayFormatType, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "LookupScanExec: table={}", self.table.name)
    }
}

impl ExecutionPlan for LookupScanExec {
    fn name(&self) -> &str {
        "LookupScanExec"
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
            "table '{}' is read by lookup joins of streams, not by running a batch query",
            self.table.name
        )
    }
}
