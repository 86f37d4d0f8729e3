//! What a join node of DataFusion's plan says, for the planners of stream
//! joins (`join.rs`) and lookup joins (`lookup.rs`): its inputs, keys,
//! condition and output columns, and whether one input reads only a table.

use std::sync::Arc;

use datafusion::common::{JoinType, NullEquality};
use datafusion::physical_expr::PhysicalExprRef;
use datafusion::physical_plan::joins::utils::JoinFilter;
use datafusion::physical_plan::joins::{HashJoinExec, NestedLoopJoinExec};
use datafusion::physical_plan::ExecutionPlan;

use super::{step_run, steps};
use crate::catalog::TableDef;
use crate::err;
use crate::error::Result;
use crate::ops::chain::StatelessChain;
use crate::sql::lookup_table::LookupScanExec;

/// What a join node of DataFusion's plan says.
pub(super) struct JoinParts {
    pub(super) left: Arc<dyn ExecutionPlan>,
    pub(super) right: Arc<dyn ExecutionPlan>,
    pub(super) on: Vec<(PhysicalExprRef, PhysicalExprRef)>,
    pub(super) filter: Option<JoinFilter>,
    pub(super) join_type: JoinType,
    pub(super) projection: Option<Vec<usize>>,
    pub(super) nulls_equal: bool,
    /// `NOT IN`'s NULL semantics (a NULL anywhere means no row passes).
    pub(super) null_aware: bool,
}

/// Whether `node` is a join the planner lowers.
pub(super) fn is_join(node: &dyn ExecutionPlan) -> bool {
    node.downcast_ref::<HashJoinExec>().is_some()
        || node.downcast_ref::<NestedLoopJoinExec>().is_some()
}

pub(super) fn parts_of(node: &dyn ExecutionPlan) -> Result<JoinParts> {
    if let Some(join) = node.downcast_ref::<HashJoinExec>() {
        return Ok(JoinParts {
            left: Arc::clone(join.left()),
            right: Arc::clone(join.right()),
            on: join.on().to_vec(),
            filter: join.filter().cloned(),
            join_type: *join.join_type(),
            projection: join.projection.as_ref().map(|p| p.to_vec()),
            nulls_equal: join.null_equality() == NullEquality::NullEqualsNull,
            null_aware: join.null_aware,
        });
    }
    if let Some(join) = node.downcast_ref::<NestedLoopJoinExec>() {
        return Ok(JoinParts {
            left: Arc::clone(join.left()),
            right: Arc::clone(join.right()),
            on: Vec::new(),
            filter: join.filter().cloned(),
            join_type: *join.join_type(),
            projection: join.projection().as_ref().map(|p| p.to_vec()),
            nulls_equal: false,
            null_aware: false,
        });
    }
    Err(err!(Internal, "{} is not a join", node.name()))
}

/// The join's output columns (input, column there): both inputs' columns
/// (one input's for semi and anti joins), through its projection.
pub(super) fn output_columns(parts: &JoinParts) -> Result<Vec<(usize, usize)>> {
    // DataFusion's widths: an input may carry its event time after them.
    let widths = [
        parts.left.schema().fields().len(),
        parts.right.schema().fields().len(),
    ];
    let joined: Vec<(usize, usize)> = match parts.join_type {
        JoinType::LeftSemi | JoinType::LeftAnti => (0..widths[0]).map(|c| (0, c)).collect(),
        JoinType::RightSemi | JoinType::RightAnti => (0..widths[1]).map(|c| (1, c)).collect(),
        _ => (0..widths[0])
            .map(|c| (0, c))
            .chain((0..widths[1]).map(|c| (1, c)))
            .collect(),
    };
    match &parts.projection {
        Some(projection) => projection
            .iter()
            .map(|&i| {
                joined
                    .get(i)
                    .copied()
                    .ok_or_else(|| err!(Internal, "join projection past its columns"))
            })
            .collect(),
        None => Ok(joined),
    }
}

/// One side of a join that reads only a table.
pub(super) struct TableSide {
    pub(super) table: Arc<TableDef>,
    /// Table columns the scan reads (all, in order, without a projection).
    pub(super) projection: Vec<usize>,
    pub(super) steps: StatelessChain,
}

impl TableSide {
    /// The table's name.
    pub(super) fn name(&self) -> &str {
        &self.table.name
    }
}

/// The table side `node` is, if it reads a table through stateless steps.
pub(super) fn table_side(node: &Arc<dyn ExecutionPlan>) -> Result<Option<TableSide>> {
    let (run, below) = step_run(node)?;
    let Some(scan) = (*below).downcast_ref::<LookupScanExec>() else {
        return Ok(None);
    };
    let table = Arc::clone(scan.table());
    let projection = match scan.projection() {
        Some(columns) => columns.to_vec(),
        None => (0..table.schema.fields().len()).collect(),
    };
    Ok(Some(TableSide {
        table,
        projection,
        steps: steps(&run)?,
    }))
}
