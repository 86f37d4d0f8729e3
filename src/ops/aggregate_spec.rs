//! What an aggregate node computes: group keys and aggregate functions with
//! their arguments and filters, all taken from DataFusion's plan. Shared by
//! the grouped state, percentile digests and per-group accumulators.

use std::sync::Arc;

use arrow::datatypes::{Field, SchemaRef};
use datafusion::physical_expr::aggregate::AggregateFunctionExpr;
use datafusion::physical_expr::PhysicalExpr;

use super::retracting::Retractable;
use super::row_accumulators::RowFolds;
use crate::error::Result;

/// What to aggregate: group keys and aggregate functions with their
/// argument and `FILTER (WHERE ...)` expressions, all taken from the plan.
#[derive(Debug, Clone)]
pub struct AggregateSpec {
    /// Group key expressions (window columns excluded).
    pub keys: Vec<Arc<dyn PhysicalExpr>>,
    /// Schema of the evaluated keys.
    pub key_schema: SchemaRef,
    /// The aggregate functions.
    pub aggregates: Vec<Arc<AggregateFunctionExpr>>,
    /// Per aggregate: its argument expressions (count(*) gets the literal 1).
    pub arguments: Vec<Vec<Arc<dyn PhysicalExpr>>>,
    /// Per aggregate: its `FILTER (WHERE ...)` predicate.
    pub filters: Vec<Option<Arc<dyn PhysicalExpr>>>,
    /// Which aggregates fold natively in per-group state (from `aggregates`).
    row_folds: RowFolds,
    /// Over a changelog: each aggregate's retracting state.
    retractions: Option<Vec<Retractable>>,
}

impl AggregateSpec {
    /// Whether evaluating its inputs or updating or evaluating its
    /// aggregates can fail at run time (see [`super::fallible`]).
    pub fn may_fail(&self) -> bool {
        use super::fallible::{aggregate_may_fail, expr_may_fail};
        self.keys.iter().any(expr_may_fail)
            || self.arguments.iter().flatten().any(expr_may_fail)
            || self.filters.iter().flatten().any(expr_may_fail)
            || self.aggregates.iter().any(|a| aggregate_may_fail(a))
    }

    /// The spec of these keys and aggregates.
    pub fn new(
        keys: Vec<Arc<dyn PhysicalExpr>>,
        key_schema: SchemaRef,
        aggregates: Vec<Arc<AggregateFunctionExpr>>,
        arguments: Vec<Vec<Arc<dyn PhysicalExpr>>>,
        filters: Vec<Option<Arc<dyn PhysicalExpr>>>,
    ) -> Self {
        Self {
            keys,
            key_schema,
            row_folds: RowFolds::of(&aggregates),
            retractions: None,
            aggregates,
            arguments,
            filters,
        }
    }

    /// The same aggregates over a changelog: rows can be taken back out.
    /// Fails, naming it, for an aggregate that cannot retract.
    pub fn with_retractions(mut self) -> Result<Self> {
        let retractions = self
            .aggregates
            .iter()
            .map(|a| Retractable::of(a))
            .collect::<Result<Vec<_>>>()?;
        self.retractions = Some(retractions);
        Ok(self)
    }

    /// Each aggregate's retracting state, over a changelog.
    pub fn retractions(&self) -> Option<&[Retractable]> {
        self.retractions.as_deref()
    }

    /// Each aggregate's state columns in a snapshot.
    pub fn state_fields(&self) -> Result<Vec<Vec<Field>>> {
        if let Some(retractions) = &self.retractions {
            return Ok(retractions.iter().map(Retractable::state_fields).collect());
        }
        self.aggregates
            .iter()
            .map(|a| {
                Ok(a.state_fields()?
                    .iter()
                    .map(|f| f.as_ref().clone())
                    .collect())
            })
            .collect()
    }

    /// Which aggregates fold natively in per-group state.
    pub fn row_folds(&self) -> &RowFolds {
        &self.row_folds
    }

    /// The group key expressions, for EXPLAIN.
    pub fn key_names(&self) -> String {
        self.keys
            .iter()
            .map(|k| k.to_string())
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// The aggregate functions, for EXPLAIN.
    pub fn aggregate_names(&self) -> String {
        self.aggregates
            .iter()
            .map(|a| a.name())
            .collect::<Vec<_>>()
            .join(", ")
    }
}
