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
fn several_percentiles_of_one_column_agree_with_batch_in_tumbling_and_hopping_windows() {
    // p50, p75, p90-descending and the median share one digest per group;
    // the filtered one and the one over another column have their own.
    let percentiles = "approx_percentile_cont(0.5) WITHIN GROUP (ORDER BY price), \
        approx_percentile_cont(0.75) WITHIN GROUP (ORDER BY price), \
        approx_percentile_cont(0.9) WITHIN GROUP (ORDER BY price DESC), \
        approx_percentile_cont(0.5) WITHIN GROUP (ORDER BY price) FILTER (WHERE symbol <> 'S1'), \
        approx_percentile_cont(0.25) WITHIN GROUP (ORDER BY price * 2), approx_median(price)";
    let data = trades(54, 3_000, 4, 90, 1_500);
    for (from, batch_window) in [
        (
            "TUMBLE(trades, ts, INTERVAL '30' SECOND)",
            "date_bin(INTERVAL '30 seconds', ts)",
        ),
        (
            "HOP(trades, ts, INTERVAL '10' SECOND, INTERVAL '30' SECOND)",
            "",
        ),
    ] {
        let mut engine = Engine::new().unwrap();
        engine.execute(TRADES_DDL).unwrap();
        let query = engine
            .create_query(&format!(
                "SELECT symbol, window_start, {percentiles} FROM {from} GROUP BY symbol, window_start"
            ))
            .unwrap();
        let got = sorted(rows_of(&stream(&mut engine, &data, 6, 150), query));
        let expected = if batch_window.is_empty() {
            // A 30 s window sliding by 10 s: each event in three windows.
            batch_sql(
                &data,
                &format!(
                    "SELECT symbol, ws, {percentiles} FROM ({}) GROUP BY 1, 2",
                    hop_copies_sql(10, 30)
                ),
            )
        } else {
            batch_sql(
                &data,
                &format!("SELECT symbol, {batch_window}, {percentiles} FROM t GROUP BY 1, 2"),
            )
        };
        assert!(expected.len() > 10, "{from}");
        assert_eq!(got.len(), expected.len(), "{from}");
        for (g, e) in got.iter().zip(&expected) {
            assert_eq!(g[..2], e[..2], "{from}");
            for column in 2..g.len() {
                if g[column] == e[column] {
                    continue; // equal, or both null (the filter keeps no row of S1)
                }
                let (a, b): (f64, f64) = (g[column].parse().unwrap(), e[column].parse().unwrap());
                assert!(
                    (a - b).abs() <= 0.02 * b.abs().max(1.0),
                    "{from} {:?} column {column}: {a} vs batch {b}",
                    g[..2].to_vec()
                );
            }
        }
        // The shared percentiles are distinct answers, not one copied.
        assert!(got.iter().any(|row| row[2] != row[3] && row[3] != row[4]));
    }
}

#[test]
fn percentiles_of_one_column_hold_one_digest_per_group() {
    let mut engine = Engine::new().unwrap();
    engine.execute(TRADES_DDL).unwrap();
    let query = |engine: &mut Engine, aggregates: &[&str]| {
        engine
            .create_query(&format!(
                "SELECT symbol, window_start, {} FROM TUMBLE(trades, ts, INTERVAL '1' HOUR) GROUP BY symbol, window_start",
                aggregates.join(", ")
            ))
            .unwrap()
    };
    let p = |p: f64| format!("approx_percentile_cont({p}) WITHIN GROUP (ORDER BY price)");
    let one = query(&mut engine, &[&p(0.5)]);
    let five = query(
        &mut engine,
        &[&p(0.5), &p(0.9), &p(0.99), "approx_median(price)", &p(0.1)],
    );
    // One open window of 2k events: the state is the digests.
    let data = trades(55, 2_000, 4, 10, 100);
    engine.push_json("trades", &ndjson(&data)).unwrap();
    let bytes = |q| engine.query_metrics(q).unwrap().state_bytes;
    assert!(bytes(one) > 0);
    assert!(
        bytes(five) < bytes(one) * 3 / 2,
        "five percentiles {} bytes, one {} bytes",
        bytes(five),
        bytes(one)
    );
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

#[test]
fn keys_that_grow_past_twelve_bytes_mid_stream_keep_their_groups() {
    // Short keys are interned by their inline view; the first key over 12
    // bytes hands the groups to DataFusion's string group values mid-window.
    let mut data = trades(56, 3_000, 6, 40, 1_500);
    for (i, trade) in data.iter_mut().enumerate() {
        if i > 1_700 && i % 3 == 0 {
            trade.symbol = format!("{}-with-a-longer-name", trade.symbol);
        }
    }
    for (from, batch_from) in [
        (
            "TUMBLE(trades, ts, INTERVAL '30' SECOND)",
            "SELECT symbol, date_bin(INTERVAL '30 seconds', ts), count(*), sum(price) FROM t GROUP BY 1, 2",
        ),
        (
            "SESSION(trades, ts, INTERVAL '5' SECOND)",
            "",
        ),
    ] {
        let mut engine = Engine::new().unwrap();
        engine.execute(TRADES_DDL).unwrap();
        let query = engine
            .create_query(&format!(
                "SELECT symbol, window_start, count(*), sum(price) FROM {from} GROUP BY symbol, window_start{}",
                if from.starts_with("SESSION") { ", window_end" } else { "" }
            ))
            .unwrap();
        let got = sorted(rows_of(&stream(&mut engine, &data, 8, 120), query));
        let expected = if batch_from.is_empty() {
            batch_sql(&data, &batch_sessions_sql(5, "count(*), sum(price)"))
                .into_iter()
                .map(|mut row| {
                    row.remove(2); // window_end is not selected
                    row
                })
                .collect()
        } else {
            batch_sql(&data, batch_from)
        };
        assert!(got.iter().any(|row| row[0].len() > 12), "{from}");
        assert_eq!(got, sorted(expected), "{from}");
    }
}

#[test]
fn a_window_whose_only_aggregates_are_distinct_runs() {
    // Distinct users per minute, the commonest dashboard query: DataFusion
    // rewrites a lone DISTINCT into two aggregation levels, which Riffle's
    // session does not do (it failed as a nested aggregation).
    let data = trades(52, 2_000, 7, 90, 1_500);
    let mut engine = Engine::new().unwrap();
    engine.execute(TRADES_DDL).unwrap();
    let hop_batch = format!(
        "SELECT ws, count(DISTINCT symbol) FROM ({}) GROUP BY ws",
        hop_copies_sql(10, 30)
    );
    let cases = [
        (
            "SELECT window_start, count(DISTINCT symbol) AS users FROM TUMBLE(trades, ts, INTERVAL '30' SECOND) GROUP BY window_start",
            "SELECT date_bin(INTERVAL '30 seconds', ts), count(DISTINCT symbol) FROM t GROUP BY 1",
        ),
        (
            "SELECT symbol, window_start, count(DISTINCT CAST(price AS BIGINT) % 7) AS n, sum(DISTINCT CAST(price AS BIGINT) % 5) AS s \
             FROM TUMBLE(trades, ts, INTERVAL '1' MINUTE) GROUP BY symbol, window_start",
            "SELECT symbol, date_bin(INTERVAL '60 seconds', ts), count(DISTINCT CAST(price AS BIGINT) % 7), sum(DISTINCT CAST(price AS BIGINT) % 5) \
             FROM t GROUP BY 1, 2",
        ),
        (
            "SELECT window_start, count(DISTINCT symbol) FROM HOP(trades, ts, INTERVAL '10' SECOND, INTERVAL '30' SECOND) GROUP BY window_start",
            hop_batch.as_str(),
        ),
    ];
    let ids: Vec<_> = cases
        .iter()
        .map(|(sql, _)| engine.create_query(sql).unwrap())
        .collect();
    let outputs = stream(&mut engine, &data, 8, 120);
    for ((sql, batch), id) in cases.iter().zip(ids) {
        let expected = batch_sql(&data, batch);
        assert!(expected.len() > 5, "{sql}");
        assert_eq!(sorted(rows_of(&outputs, id)), expected, "{sql}");
    }
    // Without a window, an updating aggregate's lone DISTINCT too.
    let (mut engine, data) = (Engine::new().unwrap(), trades(53, 500, 5, 90, 1_500));
    engine.execute(TRADES_DDL).unwrap();
    let id = engine
        .create_query("SELECT count(DISTINCT symbol) AS symbols FROM trades")
        .unwrap();
    let outputs = stream(&mut engine, &data, 9, 50);
    assert_eq!(
        materialised(&rows_of(&outputs, id), 0),
        batch_sql(&data, "SELECT count(DISTINCT symbol) FROM t")
    );
}
