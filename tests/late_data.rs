//! Late-data policies: drop and count, or hand late rows to a side output.

mod common;

use common::*;
use riffle::{Engine, LatePolicy, QueryOptions};

fn engine() -> Engine {
    let mut engine = Engine::new().unwrap();
    engine.execute(TRADES_DDL).unwrap();
    engine
}

fn side_output() -> QueryOptions {
    QueryOptions {
        late: LatePolicy::SideOutput,
        ..QueryOptions::default()
    }
}

fn event(symbol: &str, price: f64, ts_ms: i64) -> String {
    format!("{{\"symbol\":\"{symbol}\",\"price\":{price},\"ts\":{ts_ms}}}\n")
}

#[test]
fn late_rows_go_to_the_side_output_as_pushed_and_are_still_counted() {
    let mut engine = engine();
    let query = engine
        .create_query_with(
            "SELECT symbol, window_start, count(*) FROM TUMBLE(trades, ts, INTERVAL '1' MINUTE) WHERE price < 100 GROUP BY symbol, window_start",
            &side_output(),
        )
        .unwrap();
    let dropped_only = engine
        .create_query("SELECT window_start, count(*) FROM TUMBLE(trades, ts, INTERVAL '1' MINUTE) GROUP BY window_start")
        .unwrap();
    engine
        .push_json("trades", &event("A", 1.0, 10_000))
        .unwrap();
    engine
        .push_json("trades", &event("A", 1.0, 70_000))
        .unwrap(); // watermark 68 s closes [0, 60 s)
                   // One batch: an on-time row, a late row, a late row filtered out by WHERE, another late row.
    let batch = [
        event("B", 5.0, 69_000),
        event("C", 7.5, 30_000),
        event("D", 500.0, 20_000),
        event("E", 2.0, 59_999),
    ]
    .concat();
    let outputs = engine.push_json("trades", &batch).unwrap();
    let late = late_rows_of(&outputs, query);
    let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
    assert_eq!(
        late,
        vec![
            s(&["C", "7.500000e0", "30000000000"]),
            s(&["E", "2.000000e0", "59999000000"])
        ]
    );
    assert_eq!(engine.query_metrics(query).unwrap().late_events_dropped, 2);
    // The other query drops silently (three rows: it has no WHERE).
    assert!(late_rows_of(&outputs, dropped_only).is_empty());
    assert_eq!(
        engine
            .query_metrics(dropped_only)
            .unwrap()
            .late_events_dropped,
        3
    );
    // Late rows never reach the results.
    let results = sorted(rows_of(&engine.finish().unwrap(), query));
    assert_eq!(
        results,
        vec![s(&["A", "60000000000", "1"]), s(&["B", "60000000000", "1"])]
    );
}

#[test]
fn session_late_rows_go_to_the_side_output() {
    let mut engine = engine();
    let query = engine
        .create_query_with(
            "SELECT symbol, window_start, count(*) FROM SESSION(trades, ts, INTERVAL '10' SECOND) GROUP BY symbol, window_start",
            &side_output(),
        )
        .unwrap();
    engine.push_json("trades", &event("A", 1.0, 0)).unwrap();
    engine
        .push_json("trades", &event("A", 1.0, 40_000))
        .unwrap();
    let outputs = engine.push_json("trades", &event("A", 3.0, 5_000)).unwrap();
    assert_eq!(late_rows_of(&outputs, query).len(), 1);
}
