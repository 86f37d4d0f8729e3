//! `x NOT IN (SELECT y FROM ... WHERE <correlated equalities>)`: DataFusion
//! decorrelates it into a null-aware anti join whose keys are `x = y` and
//! the correlated equalities, then refuses to plan a null-aware join on
//! more than one key. A window join's `NOT IN` always has more (`window_start`
//! and `window_end`), so this rule keeps `x = y` as the join's key and
//! moves the other equalities into its filter, where the streaming join
//! reads the window bound out of them (and checks any other one per pair).
//!
//! The null-aware semantics stay those of the single key: a NULL `x` or
//! `y` meets every row the filter lets through.
//!
//! [`NotInOperand`], run right after the decorrelation, makes sure the key
//! is NOT IN's own pair: an `x` that reads no column of the outer query
//! (a constant) is refused.

use datafusion::common::tree_node::Transformed;
use datafusion::common::{plan_err, Result};
use datafusion::logical_expr::utils::{conjunction, split_conjunction};
use datafusion::logical_expr::{BinaryExpr, Expr, Join, JoinType, LogicalPlan, Operator};
use datafusion::optimizer::optimizer::ApplyOrder;
use datafusion::optimizer::{OptimizerConfig, OptimizerRule};

/// The rule; see the module documentation.
#[derive(Debug, Default)]
pub struct NotInKeys;

/// Runs right after DataFusion's decorrelation, whose null-aware anti join
/// then has no keys and a filter that starts with `x = y` (NOT IN's
/// operand against the subquery's column): refuses an `x` that reads no
/// column of the outer query (a constant), which would leave the key to a
/// correlated equality and NOT IN's NULL rule on the wrong column.
#[derive(Debug, Default)]
pub struct NotInOperand;

impl OptimizerRule for NotInOperand {
    fn name(&self) -> &str {
        "riffle_not_in_operand"
    }

    fn apply_order(&self) -> Option<ApplyOrder> {
        Some(ApplyOrder::BottomUp)
    }

    fn supports_rewrite(&self) -> bool {
        true
    }

    fn rewrite(
        &self,
        plan: LogicalPlan,
        _config: &dyn OptimizerConfig,
    ) -> Result<Transformed<LogicalPlan>> {
        if let LogicalPlan::Join(join) = &plan {
            if join.null_aware && join.join_type == JoinType::LeftAnti && join.on.is_empty() {
                let first = join
                    .filter
                    .as_ref()
                    .and_then(|f| split_conjunction(f).first().copied().cloned());
                let operand_is_outer = match &first {
                    Some(Expr::BinaryExpr(BinaryExpr {
                        left,
                        op: Operator::Eq,
                        ..
                    })) => {
                        let columns = left.column_refs();
                        !columns.is_empty()
                            && columns.iter().all(|c| join.left.schema().has_column(c))
                    }
                    _ => false,
                };
                if !operand_is_outer {
                    return plan_err!(
                        "NOT IN (subquery) over streams needs a column of the outer query on its left (x NOT IN (SELECT y ...)); for a constant, write NOT EXISTS (SELECT 1 ... WHERE y = <constant> ...)"
                    );
                }
            }
        }
        Ok(Transformed::no(plan))
    }
}

impl OptimizerRule for NotInKeys {
    fn name(&self) -> &str {
        "riffle_not_in_keys"
    }

    fn apply_order(&self) -> Option<ApplyOrder> {
        Some(ApplyOrder::BottomUp)
    }

    fn supports_rewrite(&self) -> bool {
        true
    }

    fn rewrite(
        &self,
        plan: LogicalPlan,
        _config: &dyn OptimizerConfig,
    ) -> Result<Transformed<LogicalPlan>> {
        match plan {
            LogicalPlan::Join(join)
                if join.null_aware && join.join_type == JoinType::LeftAnti && join.on.len() > 1 =>
            {
                // Decorrelation puts `x = y` first, the correlated
                // equalities after it.
                let mut on = join.on;
                let moved = on.split_off(1);
                let filter = conjunction(
                    moved
                        .into_iter()
                        .map(|(left, right)| left.eq(right))
                        .chain(join.filter),
                );
                Ok(Transformed::yes(LogicalPlan::Join(Join {
                    on,
                    filter,
                    ..join
                })))
            }
            plan => Ok(Transformed::no(plan)),
        }
    }
}
