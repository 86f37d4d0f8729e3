//! Lowering of `ROW_NUMBER()` / `RANK()` / `DENSE_RANK()` `OVER (PARTITION
//! BY window_start, window_end, ... ORDER BY ...)` over windowed rows: a
//! [`WindowRank`] node (Flink's Window Top-N and window deduplication).
//! DataFusion plans it as a window aggregate over a sort; the sort goes
//! (stream rows are never sorted: the operator orders each window), and a
//! `rownum <= N` filter right above becomes the operator's limit.

use std::sync::Arc;

use datafusion::common::ScalarValue;
use datafusion::logical_expr::Operator as BinaryOp;
use datafusion::physical_expr::expressions::{BinaryExpr, Column, Literal};
use datafusion::physical_expr::utils::split_conjunction;
use datafusion::physical_expr::window::WindowExpr;
use datafusion::physical_expr::{LexOrdering, PhysicalExpr};
use datafusion::physical_plan::filter::FilterExec;
use datafusion::physical_plan::projection::ProjectionExec;
use datafusion::physical_plan::sorts::sort::SortExec;
use datafusion::physical_plan::windows::{BoundedWindowAggExec, WindowAggExec};
use datafusion::physical_plan::ExecutionPlan;

use super::{is_step, Lowered, Lowering};
use crate::err;
use crate::error::Result;
use crate::ops::graph::InputRef;
use crate::ops::window_aggregate::GroupColumn;
use crate::ops::window_rank::{RankKind, WindowRank, WindowRankSpec};
use crate::time::window::WindowSpec;

/// A window-function node's functions and its input.
type WindowFunctions<'a> = (&'a [Arc<dyn WindowExpr>], &'a Arc<dyn ExecutionPlan>);

/// The window functions and input of a window-function node, if `node` is one.
pub(super) fn window_functions(node: &dyn ExecutionPlan) -> Option<WindowFunctions<'_>> {
    if let Some(bounded) = node.downcast_ref::<BoundedWindowAggExec>() {
        return Some((bounded.window_expr(), bounded.input()));
    }
    node.downcast_ref::<WindowAggExec>()
        .map(|exec| (exec.window_expr(), exec.input()))
}

/// The limit a run of steps (top first) right above the ranking puts on
/// its rank column (`rank_column` of the ranking's output): the `N` of
/// `rownum <= N`, `rownum < N + 1` or `rownum = N` in the first filter,
/// followed through projections that keep the column.
pub(super) fn rank_limit(run: &[Arc<dyn ExecutionPlan>], rank_column: usize) -> Option<u64> {
    let mut column = rank_column;
    for node in run.iter().rev() {
        if let Some(filter) = node.downcast_ref::<FilterExec>() {
            return split_conjunction(filter.predicate())
                .into_iter()
                .filter_map(|c| limit_of(c.as_ref(), column))
                .min();
        }
        if super::PASS_THROUGH.contains(&node.name()) {
            continue;
        }
        let projection = node.downcast_ref::<ProjectionExec>()?;
        column = projection.expr().iter().position(|p| {
            p.expr
                .downcast_ref::<Column>()
                .is_some_and(|c| c.index() == column)
        })?;
    }
    None
}

/// `N` if `conjunct` keeps only ranks up to `N` of `column`.
fn limit_of(conjunct: &dyn PhysicalExpr, column: usize) -> Option<u64> {
    let binary = conjunct.downcast_ref::<BinaryExpr>()?;
    let is_rank = |e: &Arc<dyn PhysicalExpr>| {
        e.downcast_ref::<Column>()
            .is_some_and(|c| c.index() == column)
    };
    let value = |e: &Arc<dyn PhysicalExpr>| -> Option<i128> {
        match e.downcast_ref::<Literal>()?.value() {
            ScalarValue::Int64(Some(v)) => Some(i128::from(*v)),
            ScalarValue::UInt64(Some(v)) => Some(i128::from(*v)),
            ScalarValue::Int32(Some(v)) => Some(i128::from(*v)),
            _ => None,
        }
    };
    let (op, n) = if is_rank(binary.left()) {
        (*binary.op(), value(binary.right())?)
    } else if is_rank(binary.right()) {
        let flipped = match binary.op() {
            BinaryOp::GtEq => BinaryOp::LtEq,
            BinaryOp::Gt => BinaryOp::Lt,
            BinaryOp::Eq => BinaryOp::Eq,
            _ => return None,
        };
        (flipped, value(binary.left())?)
    } else {
        return None;
    };
    let limit = match op {
        BinaryOp::LtEq | BinaryOp::Eq => n,
        BinaryOp::Lt => n - 1,
        _ => return None,
    };
    u64::try_from(limit.max(0)).ok()
}

/// `plan` without its sorts, down to the first node that is not a step.
fn without_sorts(plan: &Arc<dyn ExecutionPlan>) -> Result<Arc<dyn ExecutionPlan>> {
    if let Some(sort) = plan.downcast_ref::<SortExec>() {
        if sort.fetch().is_some() {
            return Err(super::unsupported_node(sort));
        }
        return without_sorts(sort.input());
    }
    if !is_step(plan.as_ref()) {
        return Ok(Arc::clone(plan));
    }
    let children = plan
        .children()
        .into_iter()
        .map(without_sorts)
        .collect::<Result<Vec<_>>>()?;
    Ok(
        datafusion::physical_plan::execution_plan::replace_children_if_necessary(
            Arc::clone(plan),
            children,
        )?,
    )
}

impl Lowering<'_> {
    /// A ranking of windowed rows; `limit` from the filter above.
    pub(super) fn lower_window_rank(
        &mut self,
        node: &Arc<dyn ExecutionPlan>,
        limit: Option<u64>,
    ) -> Result<Lowered> {
        let (functions, child) = window_functions(node.as_ref())
            .ok_or_else(|| err!(Internal, "not a window-function node"))?;
        let [function] = functions else {
            return Err(err!(
                Unsupported,
                "OVER (...) with several window functions cannot run on a stream yet; rank with one ROW_NUMBER(), RANK() or DENSE_RANK()"
            ));
        };
        let name = function.name();
        let kind = [RankKind::RowNumber, RankKind::Rank, RankKind::DenseRank]
            .into_iter()
            .find(|kind| name.starts_with(&format!("{}(", kind.name())))
            .ok_or_else(|| {
                err!(
                    Unsupported,
                    "{}: over a stream, OVER (...) ranks windowed rows (ROW_NUMBER(), RANK() or DENSE_RANK() OVER (PARTITION BY window_start, window_end ORDER BY ...)); aggregate over TUMBLE(...) with GROUP BY window_start, window_end for the rest",
                    name.split(" PARTITION BY").next().unwrap_or(name)
                )
            })?;
        let input_plan = without_sorts(child)?;
        let mut input = self.lower(&input_plan)?;
        super::refuse_versioned(&input)?;
        if input.changelog {
            return Err(err!(
                Unsupported,
                "{}() over a changelog is not supported: rank the windows of a stream or of a windowed aggregate",
                kind.name()
            ));
        }
        // Rows of a window table function: held until their window closes,
        // so the output watermark is held back by the longest window, and
        // a row is never behind the watermark before it.
        let hold = match input.window {
            Some(WindowSpec::Session(_)) => {
                return Err(err!(
                    Unsupported,
                    "{}() over SESSION rows is not supported (a session's bounds are known only once it closes); rank the windowed aggregates (GROUP BY window_start, window_end)",
                    kind.name()
                ))
            }
            Some(_) if self.options.allowed_lateness_millis > 0 => {
                return Err(err!(
                    Unsupported,
                    "{}() ranks each window once, when it closes: allowed lateness cannot update it; drop allowedLatenessMs",
                    kind.name()
                ))
            }
            Some(WindowSpec::Tumble(tumble)) => tumble.size(),
            Some(WindowSpec::Hop { size, .. }) => size,
            Some(WindowSpec::Cumulate { size, .. }) => size.size(),
            None => 0,
        };
        self.copy_per_window(&mut input, "partitioned by and selected")?;
        // PARTITION BY window_start, window_end (Flink's rule: the rows
        // of one window are ranked together once it closes).
        // A window table function's rows name their window columns; a
        // windowed aggregate's results hold them as offsets from
        // window_time (the end 1 ms after it, the start before it).
        let slack = crate::time::units_per_milli(input.time.unit);
        let is_window_column = |i: usize, wanted: GroupColumn| {
            let offset = input.time_offsets.get(i).copied().flatten();
            input.window_columns.get(i).copied().flatten() == Some(wanted)
                || match wanted {
                    GroupColumn::WindowEnd => offset == Some(slack),
                    GroupColumn::WindowStart => offset.is_some_and(|o| o < 0),
                    _ => false,
                }
        };
        let window_column = |wanted: GroupColumn| {
            function.partition_by().iter().find_map(|e| {
                e.downcast_ref::<Column>()
                    .map(Column::index)
                    .filter(|&i| is_window_column(i, wanted))
            })
        };
        let (Some(_), Some(window_end)) = (
            window_column(GroupColumn::WindowStart),
            window_column(GroupColumn::WindowEnd),
        ) else {
            return Err(err!(
                Unsupported,
                "{}() over a stream ranks the rows of each window: PARTITION BY window_start, window_end (and any keys) of a window table function or a windowed aggregate",
                kind.name()
            ));
        };
        if function.order_by().is_empty() {
            return Err(err!(
                Unsupported,
                "{}() OVER (...) needs an ORDER BY: which rows of a window come first",
                kind.name()
            ));
        }
        let schema = node.schema();
        let spec = WindowRankSpec {
            kind,
            partition: function.partition_by().to_vec(),
            order: LexOrdering::new(function.order_by().to_vec())
                .ok_or_else(|| err!(Internal, "an empty ordering"))?,
            window_end,
            limit,
            input_schema: Arc::clone(&input.schema),
            output_schema: Arc::clone(&schema),
            unit: input.time.unit,
            late: self.options.late,
            hold,
        };
        if input.schema.fields().len() + 1 != schema.fields().len() {
            return Err(err!(
                Internal,
                "a ranking's input has {} columns, its output {}",
                input.schema.fields().len(),
                schema.fields().len()
            ));
        }
        let operator = Box::new(WindowRank::try_new(spec)?);
        let node = self.plan.add(operator, vec![input.node.clone()]);
        let mut window_columns = input.window_columns.clone();
        window_columns.push(None);
        let mut stream_columns = input.stream_columns.clone();
        stream_columns.push(None);
        let mut time_offsets = input.time_offsets.clone();
        time_offsets.push(None);
        Ok(Lowered {
            node: InputRef::Node(node),
            schema,
            window_columns,
            stream_columns,
            time_offsets,
            window: None,
            window_in_expression: None,
            ..input
        })
    }
}
