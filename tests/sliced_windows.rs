//! HOP and CUMULATE windows (slices merged through DataFusion's partial
//! aggregate states) against the same data run as batch SQL.

mod common;

use common::*;
use riffle::{Engine, ErrorCode};

const AGGREGATES: &str =
    "count(*), sum(price), avg(price), min(price), max(price), stddev(price), \
     median(price), approx_distinct(symbol), count(DISTINCT symbol), bool_and(price > 10)";

fn engine() -> Engine {
    let mut engine = Engine::new().unwrap();
    engine.execute(TRADES_DDL).unwrap();
    engine
}

/// Batch SQL for HOP: every row copied into each window it belongs to.
fn hop_reference(slide_s: i64, size_s: i64) -> String {
    format!(
        "SELECT symbol, ws, ws + INTERVAL '{size_s} seconds', {AGGREGATES} FROM ({}) GROUP BY 1, 2, 3",
        hop_copies_sql(slide_s, size_s)
    )
}

/// Batch SQL for CUMULATE: each row copied into every growing window that covers it.
fn cumulate_reference(step_s: i64, size_s: i64) -> String {
    format!(
        "SELECT symbol, ws, we, {AGGREGATES} FROM ({}) GROUP BY 1, 2, 3",
        cumulate_copies_sql(step_s, size_s)
    )
}

#[test]
fn hop_equals_batch_sql_for_many_aggregates() {
    let data = trades(21, 4_000, 5, 60, 1_500);
    let mut engine = engine();
    let query = engine
        .create_query(&format!(
            "SELECT symbol, window_start, window_end, {AGGREGATES} \
             FROM HOP(trades, ts, INTERVAL '10' SECOND, INTERVAL '1' MINUTE) GROUP BY symbol, window_start, window_end"
        ))
        .unwrap();
    let outputs = stream(&mut engine, &data, 3, 250);
    let expected = batch_sql(&data, &hop_reference(10, 60));
    assert!(expected.len() > 100);
    assert_eq!(sorted(rows_of(&outputs, query)), expected);
    assert_eq!(engine.query_metrics(query).unwrap().late_events_dropped, 0);
}

#[test]
fn cumulate_equals_batch_sql_for_many_aggregates() {
    let data = trades(22, 4_000, 4, 70, 1_500);
    let mut engine = engine();
    let query = engine
        .create_query(&format!(
            "SELECT symbol, window_start, window_end, {AGGREGATES} \
             FROM CUMULATE(trades, ts, INTERVAL '15' SECOND, INTERVAL '1' MINUTE) GROUP BY symbol, window_start, window_end"
        ))
        .unwrap();
    let outputs = stream(&mut engine, &data, 4, 250);
    assert_eq!(
        sorted(rows_of(&outputs, query)),
        batch_sql(&data, &cumulate_reference(15, 60))
    );
}

#[test]
fn hop_windows_are_emitted_in_end_order_and_do_not_depend_on_the_split() {
    let data = trades(23, 2_000, 3, 90, 1_900);
    let sql = "SELECT window_end, window_start, count(*), sum(price) FROM HOP(trades, ts, INTERVAL '5' SECOND, INTERVAL '20' SECOND) \
               GROUP BY window_start, window_end";
    let mut reference: Option<Vec<Vec<String>>> = None;
    for (seed, max_batch) in [(1, 1), (2, 17), (3, 2_000)] {
        let mut engine = engine();
        let query = engine.create_query(sql).unwrap();
        let got = rows_of(&stream(&mut engine, &data, seed, max_batch), query);
        let ends: Vec<i64> = got.iter().map(|row| row[0].parse().unwrap()).collect();
        assert!(
            ends.windows(2).all(|w| w[0] < w[1]),
            "one row per window, in end order"
        );
        match &reference {
            None => reference = Some(got),
            Some(expected) => assert_eq!(&got, expected, "max batch {max_batch}"),
        }
    }
}

fn push(engine: &mut Engine, ts_ms: i64) -> Vec<Vec<String>> {
    let outputs = engine
        .push_json(
            "trades",
            &format!("{{\"symbol\":\"A\",\"price\":1,\"ts\":{ts_ms}}}"),
        )
        .unwrap();
    outputs.iter().flat_map(|o| rows(&o.batch)).collect()
}

#[test]
fn a_late_hop_row_counts_in_the_windows_that_have_not_fired() {
    // Flink's rule (checked against Flink 2.3 with tests/flink/late_rule.py):
    // a row is dropped only from windows that already fired.
    let mut engine = engine();
    let query = engine
        .create_query(
            "SELECT window_start, window_end, count(*) FROM HOP(trades, ts, INTERVAL '10' SECOND, INTERVAL '30' SECOND) \
             GROUP BY window_start, window_end",
        )
        .unwrap();
    assert!(push(&mut engine, 5_000).is_empty());
    // Watermark 43 s: windows ending 10, 20, 30, 40 s close; the three holding 5 s are emitted.
    let closed = push(&mut engine, 45_000);
    let ends: Vec<&str> = closed.iter().map(|r| r[1].as_str()).collect();
    assert_eq!(ends, ["10000000000", "20000000000", "30000000000"]);
    // 25 s: windows [0, 30) and [10, 40) fired, [20, 50) is open: counted there only.
    assert!(push(&mut engine, 25_000).is_empty());
    // 15 s: every window covering it (ending 20, 30, 40 s) fired: late.
    assert!(push(&mut engine, 15_000).is_empty());
    assert!(push(&mut engine, 41_000).is_empty());
    assert_eq!(engine.query_metrics(query).unwrap().late_events_dropped, 1);
    let rest: Vec<Vec<String>> = engine
        .finish()
        .unwrap()
        .iter()
        .flat_map(|o| rows(&o.batch))
        .collect();
    let counts: Vec<(&str, &str)> = rest
        .iter()
        .map(|r| (r[1].as_str(), r[2].as_str()))
        .collect();
    assert_eq!(
        counts,
        [
            ("50000000000", "3"),
            ("60000000000", "2"),
            ("70000000000", "2")
        ]
    );
}

#[test]
fn late_rows_do_not_make_results_depend_on_the_split() {
    // Disorder of up to 6 s against a 2 s bound: many rows are late for some
    // or all of their windows. Windows fire row by row, so every split agrees.
    for sql in [
        "SELECT window_start, window_end, count(*), max(price) FROM HOP(trades, ts, INTERVAL '5' SECOND, INTERVAL '20' SECOND) GROUP BY window_start, window_end",
        "SELECT window_start, window_end, count(*), max(price) FROM CUMULATE(trades, ts, INTERVAL '5' SECOND, INTERVAL '20' SECOND) GROUP BY window_start, window_end",
        "SELECT symbol, window_start, count(*), max(price) FROM TUMBLE(trades, ts, INTERVAL '10' SECOND) GROUP BY symbol, window_start",
        "SELECT symbol, window_start, window_end, count(*), max(price) FROM SESSION(trades, ts, INTERVAL '3' SECOND) GROUP BY symbol, window_start, window_end",
    ] {
        let data = trades(24, 3_000, 4, 100, 6_000);
        let mut reference: Option<(Vec<Vec<String>>, u64)> = None;
        for (seed, max_batch) in [(1, 1), (2, 9), (3, 200), (4, 3_000)] {
            let mut engine = engine();
            let query = engine.create_query(sql).unwrap();
            let got = sorted(rows_of(&stream(&mut engine, &data, seed, max_batch), query));
            let late = engine.query_metrics(query).unwrap().late_events_dropped;
            match &reference {
                None => {
                    // HOP and CUMULATE rows here are late for some windows only,
                    // which Flink does not count as dropped either.
                    let whole_rows_late = sql.contains("TUMBLE") || sql.contains("SESSION");
                    assert!(!whole_rows_late || late > 0, "the data should have late rows: {sql}");
                    reference = Some((got, late));
                }
                Some((expected, expected_late)) => {
                    assert_eq!(&got, expected, "{sql}, max batch {max_batch}");
                    assert_eq!(late, *expected_late, "{sql}, max batch {max_batch}");
                }
            }
        }
    }
}

#[test]
fn sliced_windows_reject_window_columns_in_expressions() {
    let mut engine = engine();
    let cases = [
        "SELECT window_start, count(*) FROM HOP(trades, ts, INTERVAL '10' SECOND, INTERVAL '1' MINUTE) WHERE window_start > TIMESTAMP '2020-01-01' GROUP BY window_start",
        "SELECT window_start, max(window_end) FROM HOP(trades, ts, INTERVAL '10' SECOND, INTERVAL '1' MINUTE) GROUP BY window_start",
        "SELECT symbol, window_start FROM HOP(trades, ts, INTERVAL '10' SECOND, INTERVAL '1' MINUTE)",
        "SELECT window_start, count(*) FROM HOP(trades, ts, INTERVAL '7' SECOND, INTERVAL '1' MINUTE) GROUP BY window_start",
        "SELECT window_start, count(*) FROM CUMULATE(trades, ts, INTERVAL '7' SECOND, INTERVAL '1' MINUTE) GROUP BY window_start",
    ];
    for sql in cases {
        let error = engine.create_query(sql).unwrap_err();
        assert_eq!(error.code(), ErrorCode::Unsupported, "{sql}: {error}");
    }
    // Tumbling windows may filter on their window columns.
    engine
        .create_query("SELECT window_start, count(*) FROM TUMBLE(trades, ts, INTERVAL '1' MINUTE) WHERE window_start > TIMESTAMP '2020-01-01' GROUP BY window_start")
        .unwrap();
}
