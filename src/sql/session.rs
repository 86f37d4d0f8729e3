//! The DataFusion session every engine plans with.
//!
//! Built with `SessionStateBuilder` instead of `SessionContext::new_with_config`,
//! which installs DataFusion's whole default surface. A registry holds its
//! entries behind `Arc<dyn ...>`, so everything registered stays reachable
//! and no linker (not even with LTO) can drop its code from the wasm. We
//! register only what a streaming query can run:
//! - every scalar function of `datafusion-functions` (core, math, string,
//!   unicode, datetime, regex, encoding) and every aggregate function;
//! - the expression planners the SQL planner needs for them (`EXTRACT`,
//!   `POSITION`, `SUBSTRING ... FROM`, struct literals, `count(*)`, ...).
//!
//! - the ranking window functions `row_number`, `rank` and `dense_rank`,
//!   which rank the rows of each window (Flink's Window Top-N).
//!
//! Left out, because our operator graphs cannot run them anyway: the other
//! window functions (`lag`, `lead`, `ntile`, ...), table functions
//! (`generate_series`, `range`), file formats and `CREATE EXTERNAL TABLE`
//! factories.

use std::sync::Arc;

use datafusion::common::{not_impl_err, plan_datafusion_err, Result};
use datafusion::execution::session_state::{SessionState, SessionStateBuilder};
use datafusion::functions::core::planner::CoreFunctionPlanner;
use datafusion::functions::datetime::planner::DatetimeFunctionPlanner;
use datafusion::functions::unicode::planner::UnicodeFunctionPlanner;
use datafusion::functions_aggregate::planner::AggregateFunctionPlanner;
use datafusion::logical_expr::planner::ExprPlanner;
use datafusion::logical_expr::LogicalPlan;
use datafusion::optimizer::{Optimizer, OptimizerRule};
use datafusion::prelude::{SessionConfig, SessionContext};
use datafusion::sql::parser::DFParserBuilder;
use datafusion::sql::sqlparser::dialect::GenericDialect;

/// A session with one partition and the functions streaming queries can use.
pub fn new_session() -> SessionContext {
    // One partition: there are no threads in wasm, and multi-partition
    // plans need a runtime there (apache/datafusion#15599).
    let config = SessionConfig::new().with_target_partitions(1);
    let planners: Vec<Arc<dyn ExprPlanner>> = vec![
        Arc::new(CoreFunctionPlanner::default()),
        Arc::new(DatetimeFunctionPlanner),
        Arc::new(UnicodeFunctionPlanner),
        Arc::new(AggregateFunctionPlanner),
    ];
    let state = SessionStateBuilder::new()
        .with_config(config)
        .with_scalar_functions(datafusion::functions::all_default_functions())
        .with_aggregate_functions(
            datafusion::functions_aggregate::all_default_aggregate_functions(),
        )
        .with_window_functions(vec![
            datafusion::functions_window::row_number::row_number_udwf(),
            datafusion::functions_window::rank::rank_udwf(),
            datafusion::functions_window::rank::dense_rank_udwf(),
        ])
        .with_expr_planners(planners)
        .with_optimizer_rules(optimizer_rules())
        .build();
    SessionContext::new_with_state(state)
}

/// DataFusion's optimizer rules, but one, and Riffle's.
///
/// Left out: `single_distinct_aggregation_to_group_by`, which turns an
/// aggregate whose only aggregates are DISTINCT over one column into two
/// aggregation levels (`GROUP BY k, x`, then `count(x)`). Over a window
/// that is an aggregate of an aggregate; every accumulator of a window
/// or changelog handles DISTINCT itself.
fn optimizer_rules() -> Vec<Arc<dyn OptimizerRule + Send + Sync>> {
    let mut rules = Vec::new();
    for rule in Optimizer::new().rules {
        let name = rule.name().to_string();
        if name == "single_distinct_aggregation_to_group_by" {
            continue;
        }
        rules.push(rule);
        if name == "decorrelate_predicate_subquery" {
            rules.push(Arc::new(super::not_in::NotInOperand));
        }
    }
    rules.push(Arc::new(super::not_in::NotInKeys));
    rules
}

/// Plans one SQL statement, as `SessionState::create_logical_plan` does.
///
/// Parses with sqlparser's generic dialect, DataFusion's default
/// (`datafusion.sql_parser.dialect`, which queries cannot change).
/// `create_logical_plan` looks the dialect up by name at run time, which
/// keeps every sqlparser dialect (MySQL, Snowflake, BigQuery, ...) and
/// its parsing code in the wasm.
pub fn plan_sql(state: &SessionState, sql: &str) -> Result<LogicalPlan> {
    let recursion_limit = state.config().options().sql_parser.recursion_limit.get();
    let mut statements = DFParserBuilder::new(sql)
        .with_dialect(&GenericDialect {})
        .with_recursion_limit(recursion_limit)
        .build()?
        .parse_statements()?;
    if statements.len() > 1 {
        return not_impl_err!("The context currently only supports a single SQL statement");
    }
    let statement = statements.pop_front().ok_or_else(|| {
        plan_datafusion_err!("No SQL statements were provided in the query string")
    })?;
    futures::executor::block_on(state.statement_to_plan(statement))
}
