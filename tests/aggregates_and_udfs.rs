//! Every kind of DataFusion aggregate inside a window, and user functions
//! registered from Rust, against the same query run as batch SQL.

mod common;

use std::sync::Arc;

use arrow::array::{ArrayRef, Float64Array};
use arrow::datatypes::DataType;
use common::*;
use datafusion::logical_expr::{create_udf, ColumnarValue, Volatility};
use riffle::Engine;

const AGGREGATES: &[&str] = &[
    "count(*)",
    "count(DISTINCT symbol)",
    "sum(price)",
    "avg(price)",
    "min(price)",
    "max(price)",
    "stddev(price)",
    "var_pop(price)",
    "median(price)",
    "approx_distinct(symbol)",
    // Ties on ts would make these ambiguous; price breaks them.
    "first_value(price ORDER BY ts, price)",
    "last_value(price ORDER BY ts, price)",
    "array_agg(price ORDER BY price)",
    "bool_and(price > 5)",
    "bool_or(price > 990)",
    "sum(price) FILTER (WHERE symbol = 'S1')",
];

#[test]
fn every_kind_of_aggregate_matches_batch_sql_in_a_tumbling_window() {
    let data = trades(51, 2_500, 4, 90, 1_500);
    let list = AGGREGATES.join(", ");
    let mut engine = Engine::new().unwrap();
    engine.execute(TRADES_DDL).unwrap();
    let query = engine
        .create_query(&format!(
            "SELECT window_start, {list} FROM TUMBLE(trades, ts, INTERVAL '30' SECOND) GROUP BY window_start"
        ))
        .unwrap();
    let outputs = stream(&mut engine, &data, 6, 150);
    let expected = batch_sql(
        &data,
        &format!("SELECT date_bin(INTERVAL '30 seconds', ts), {list} FROM t GROUP BY 1"),
    );
    assert!(expected.len() > 5);
    let got = sorted(rows_of(&outputs, query));
    assert_eq!(got.len(), expected.len());
    for (g, e) in got.iter().zip(&expected) {
        for (column, (a, b)) in g.iter().zip(e).enumerate() {
            assert_eq!(
                a,
                b,
                "window {}, aggregate {:?}",
                g[0],
                AGGREGATES.get(column.wrapping_sub(1))
            );
        }
    }
    // Aggregates that need sorted input (DataFusion's hard ordering
    // requirement) cannot run on a stream and say so.
    let error = engine
        .create_query("SELECT window_start, string_agg(symbol, ',' ORDER BY symbol) FROM TUMBLE(trades, ts, INTERVAL '30' SECOND) GROUP BY window_start")
        .unwrap_err();
    assert_eq!(error.code(), riffle::ErrorCode::Unsupported);
    assert!(error.message().contains("sorted"), "{error}");
}

#[test]
fn approximate_percentiles_agree_with_batch_within_the_sketch_error() {
    // t-digest results depend on insertion order (the batch plan sorts its
    // input first), so compare within a tolerance rather than exactly.
    let data = trades(53, 2_500, 4, 90, 1_500);
    let mut engine = Engine::new().unwrap();
    engine.execute(TRADES_DDL).unwrap();
    let query = engine
        .create_query(
            "SELECT window_start, approx_percentile_cont(0.9) WITHIN GROUP (ORDER BY price) \
             FROM TUMBLE(trades, ts, INTERVAL '30' SECOND) GROUP BY window_start",
        )
        .unwrap();
    let got = sorted(rows_of(&stream(&mut engine, &data, 6, 150), query));
    let expected = batch_sql(
        &data,
        "SELECT date_bin(INTERVAL '30 seconds', ts), approx_percentile_cont(0.9) WITHIN GROUP (ORDER BY price) FROM t GROUP BY 1",
    );
    assert_eq!(got.len(), expected.len());
    for (g, e) in got.iter().zip(&expected) {
        assert_eq!(g[0], e[0]);
        let (g, e): (f64, f64) = (g[1].parse().unwrap(), e[1].parse().unwrap());
        assert!(
            (g - e).abs() <= 0.01 * e.abs().max(1.0),
            "p90 {g} vs batch {e}"
        );
    }
}

#[test]
fn scalar_udfs_registered_from_rust_work_in_window_queries() {
    let mut engine = Engine::new().unwrap();
    engine.execute(TRADES_DDL).unwrap();
    // A user function: price in cents.
    let cents = create_udf(
        "cents",
        vec![DataType::Float64],
        DataType::Float64,
        Volatility::Immutable,
        Arc::new(|args: &[ColumnarValue]| {
            let arrays = ColumnarValue::values_to_arrays(args)?;
            let prices = arrays[0]
                .as_any()
                .downcast_ref::<Float64Array>()
                .expect("declared Float64");
            let out: Float64Array = prices
                .iter()
                .map(|p| p.map(|p| (p * 100.0).round()))
                .collect();
            Ok(ColumnarValue::Array(Arc::new(out) as ArrayRef))
        }),
    );
    engine.session().register_udf(cents.clone());
    let data = trades(52, 500, 3, 200, 1_000);
    let query = engine
        .create_query("SELECT symbol, window_start, sum(cents(price)) FROM TUMBLE(trades, ts, INTERVAL '1' MINUTE) GROUP BY symbol, window_start")
        .unwrap();
    let outputs = stream(&mut engine, &data, 3, 50);
    let expected = batch_sql_with(
        &data,
        "SELECT symbol, date_bin(INTERVAL '1 minute', ts), sum(cents(price)) FROM t GROUP BY 1, 2",
        |ctx| ctx.register_udf(cents.clone()),
    );
    assert_eq!(sorted(rows_of(&outputs, query)), expected);
}
