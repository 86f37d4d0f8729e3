//! The session registers functions selectively (see `src/sql/session.rs`):
//! these tests pin down what SQL can still call.

mod common;

use common::*;
use riffle::{Engine, ErrorCode};

#[test]
fn every_datafusion_scalar_and_aggregate_function_is_registered() {
    let engine = Engine::new().unwrap();
    let state = engine.session().state();
    for udf in datafusion::functions::all_default_functions() {
        assert!(
            state.scalar_functions().contains_key(udf.name()),
            "scalar function {} is missing",
            udf.name()
        );
    }
    for udaf in datafusion::functions_aggregate::all_default_aggregate_functions() {
        assert!(
            state.aggregate_functions().contains_key(udaf.name()),
            "aggregate function {} is missing",
            udaf.name()
        );
    }
}

#[test]
fn string_math_datetime_regex_and_unicode_functions_plan_in_a_query() {
    let mut engine = Engine::new().unwrap();
    engine.execute(TRADES_DDL).unwrap();
    engine
        .create_query(
            "SELECT upper(symbol), concat(symbol, '!'), substr(symbol, 1, 2), \
                    SUBSTRING(symbol FROM 1 FOR 2) AS sub, POSITION('S' IN symbol), \
                    length(symbol), lpad(symbol, 5, '-'), split_part(symbol, 'S', 2), \
                    round(price, 1), sqrt(abs(price)), ln(price + 1), power(price, 2), \
                    EXTRACT(YEAR FROM ts), date_trunc('minute', ts), date_part('hour', ts), \
                    to_timestamp_millis(1000), \
                    regexp_replace(symbol, '[0-9]+', '#'), regexp_like(symbol, '^S'), \
                    coalesce(symbol, 'none'), CASE WHEN price > 10 THEN 'hi' ELSE 'lo' END, \
                    named_struct('p', price) \
             FROM trades WHERE symbol LIKE 'S%' AND symbol ~ '^S[0-9]+$' AND price IN (1.0, 2.0, 3.0)",
        )
        .unwrap();
}

#[test]
fn window_and_table_functions_are_sql_plan_errors() {
    let mut engine = Engine::new().unwrap();
    engine.execute(TRADES_DDL).unwrap();
    // Window functions other than the three rankings, and table
    // functions, are not registered.
    for sql in [
        "SELECT lag(price) OVER (ORDER BY ts) FROM trades",
        "SELECT ntile(4) OVER (ORDER BY ts) FROM trades",
        "SELECT * FROM generate_series(1, 3)",
    ] {
        let error = engine.create_query(sql).unwrap_err();
        assert_eq!(error.code(), ErrorCode::SqlPlan, "{sql}: {error}");
    }
    // The rankings are, and rank the rows of a window only.
    let error = engine
        .create_query("SELECT row_number() OVER (ORDER BY ts) FROM trades")
        .unwrap_err();
    assert_eq!(error.code(), ErrorCode::Unsupported, "{error}");
    assert!(
        error
            .to_string()
            .contains("PARTITION BY window_start, window_end"),
        "{error}"
    );
}
