//! Which expressions and aggregates can fail at run time.
//!
//! The graph keeps an undo image of a stateful node only when something
//! that runs after it in a push can fail (see [`super::graph`]), so a query
//! whose steps after its aggregate cannot fail pays nothing for
//! all-or-nothing pushes. The answer is conservative: anything not known to
//! be safe counts as able to fail.

use std::sync::Arc;

use arrow::datatypes::DataType;
use datafusion::logical_expr::Operator;
use datafusion::physical_expr::aggregate::AggregateFunctionExpr;
use datafusion::physical_expr::expressions::{
    BinaryExpr, CaseExpr, Column, IsNotNullExpr, IsNullExpr, Literal, NotExpr,
};
use datafusion::physical_expr::PhysicalExpr;

/// Whether evaluating `expr` can return an error: column references,
/// literals, comparisons, AND / OR / NOT, IS [NOT] NULL and CASE over such
/// expressions cannot; arithmetic (overflow, division by zero), casts and
/// functions may.
pub fn expr_may_fail(expr: &Arc<dyn PhysicalExpr>) -> bool {
    let safe_here = expr.downcast_ref::<Column>().is_some()
        || expr.downcast_ref::<Literal>().is_some()
        || expr.downcast_ref::<IsNullExpr>().is_some()
        || expr.downcast_ref::<IsNotNullExpr>().is_some()
        || expr.downcast_ref::<NotExpr>().is_some()
        || expr.downcast_ref::<CaseExpr>().is_some()
        || expr.downcast_ref::<BinaryExpr>().is_some_and(|binary| {
            matches!(
                binary.op(),
                Operator::Eq
                    | Operator::NotEq
                    | Operator::Lt
                    | Operator::LtEq
                    | Operator::Gt
                    | Operator::GtEq
                    | Operator::IsDistinctFrom
                    | Operator::IsNotDistinctFrom
                    | Operator::And
                    | Operator::Or
            )
        });
    !safe_here || expr.children().into_iter().any(expr_may_fail)
}

/// Whether updating or evaluating `aggregate` can fail: DataFusion's
/// count, sum, min, max and avg of non-decimal values (integer sums wrap)
/// and the approximate percentile and distinct count cannot, given
/// arguments that cannot fail; anything else may.
pub fn aggregate_may_fail(aggregate: &AggregateFunctionExpr) -> bool {
    const SAFE: &[&str] = &[
        "count",
        "sum",
        "min",
        "max",
        "avg",
        "approx_percentile_cont",
        "approx_distinct",
    ];
    let decimal = matches!(
        aggregate.field().data_type(),
        DataType::Decimal32(..)
            | DataType::Decimal64(..)
            | DataType::Decimal128(..)
            | DataType::Decimal256(..)
    );
    !SAFE.contains(&aggregate.fun().name())
        || decimal
        || aggregate.expressions().iter().any(expr_may_fail)
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::datatypes::{Field, Schema};
    use datafusion::common::ScalarValue;
    use datafusion::physical_expr::expressions::{binary, col, lit};

    #[test]
    fn comparisons_are_safe_and_arithmetic_is_not() {
        let schema = Schema::new(vec![Field::new("v", DataType::Int64, true)]);
        let v = col("v", &schema).unwrap();
        let compare = binary(
            Arc::clone(&v),
            Operator::Gt,
            lit(ScalarValue::Int64(Some(5))),
            &schema,
        )
        .unwrap();
        assert!(!expr_may_fail(&v));
        assert!(!expr_may_fail(&compare));
        let divide = binary(
            lit(ScalarValue::Int64(Some(100))),
            Operator::Divide,
            Arc::clone(&v),
            &schema,
        )
        .unwrap();
        assert!(expr_may_fail(&divide));
        // A safe node over an unsafe child is unsafe.
        let nested = binary(
            divide,
            Operator::Gt,
            lit(ScalarValue::Int64(Some(1))),
            &schema,
        )
        .unwrap();
        assert!(expr_may_fail(&nested));
    }
}
