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

use datafusion::common::tree_node::Transformed;
use datafusion::common::Result;
use datafusion::logical_expr::utils::conjunction;
use datafusion::logical_expr::{Join, JoinType, LogicalPlan};
use datafusion::optimizer::optimizer::ApplyOrder;
use datafusion::optimizer::{OptimizerConfig, OptimizerRule};

/// The rule; see the module documentation.
#[derive(Debug, Default)]
pub struct NotInKeys;

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
