//! The tumbling window query against the same data run as batch SQL.

mod common;

use common::*;
use riffle::{Engine, ErrorCode};

const STREAM_QUERY: &str =
    "SELECT symbol, window_start, window_end, count(*) AS n, avg(price) AS avg_price, max(price) \
     FROM TUMBLE(trades, ts, INTERVAL '1' MINUTE) GROUP BY symbol, window_start, window_end";

const BATCH_QUERY: &str = "SELECT symbol, date_bin(INTERVAL '1 minute', ts) AS ws, \
     date_bin(INTERVAL '1 minute', ts) + INTERVAL '1 minute' AS we, count(*), avg(price), max(price) \
     FROM t GROUP BY 1, 2, 3";

fn engine() -> Engine {
    let mut engine = Engine::new().unwrap();
    engine.execute(TRADES_DDL).unwrap();
    engine
}

#[test]
fn tumbling_window_equals_batch_sql_when_nothing_is_late() {
    // 6,000 trades over about 10 minutes, out of order by up to 1.5 s (< 2 s bound).
    let data = trades(1, 6_000, 7, 100, 1_500);
    let mut engine = engine();
    let query = engine.create_query(STREAM_QUERY).unwrap();
    let outputs = stream(&mut engine, &data, 2, 400);

    assert_eq!(
        sorted(rows_of(&outputs, query)),
        batch_sql(&data, BATCH_QUERY)
    );
    let metrics = engine.query_metrics(query).unwrap();
    assert_eq!(metrics.events_in, 6_000);
    assert_eq!(metrics.late_events_dropped, 0);
    assert_eq!(metrics.open_windows, 0);
    assert!(metrics.finished);
    assert!(metrics.windows_emitted >= 10, "{metrics:?}");
}

#[test]
fn results_do_not_depend_on_how_the_input_is_split() {
    let data = trades(3, 3_000, 5, 50, 1_900);
    let mut reference = None;
    for (seed, max_batch) in [(10, 1), (11, 7), (12, 3_000), (13, 250)] {
        let mut engine = engine();
        let query = engine.create_query(STREAM_QUERY).unwrap();
        // Window order of emission is part of the result, so compare unsorted.
        let got = rows_of(&stream(&mut engine, &data, seed, max_batch), query);
        match &reference {
            None => reference = Some(got),
            Some(expected) => {
                let mut a = expected.clone();
                let mut b = got.clone();
                // Within one window, group order follows first arrival, which is
                // the same for every split; still sort inside windows to be safe.
                a.sort_by(|x, y| (&x[1], &x[0]).cmp(&(&y[1], &y[0])));
                b.sort_by(|x, y| (&x[1], &x[0]).cmp(&(&y[1], &y[0])));
                assert_eq!(a, b, "split with max batch {max_batch}");
            }
        }
    }
}

#[test]
fn windows_close_in_order_once_the_watermark_passes_their_end() {
    let data = trades(5, 3_000, 3, 200, 1_000);
    let mut engine = engine();
    let query = engine.create_query(STREAM_QUERY).unwrap();
    let mut last_start: Option<String> = None;
    let mut emitted_before_finish = 0;
    for chunk in data.chunks(37) {
        let outputs = engine.push_json("trades", &ndjson(chunk)).unwrap();
        let watermark = engine
            .query_metrics(query)
            .unwrap()
            .watermark_millis
            .unwrap();
        for output in &outputs {
            let ends = output.batch.column(2);
            for row in rows(&output.batch) {
                if let Some(previous) = &last_start {
                    assert!(previous <= &row[1], "windows out of order");
                }
                last_start = Some(row[1].clone());
            }
            let end_ns = datafusion::common::ScalarValue::try_from_array(ends, 0).unwrap();
            let datafusion::common::ScalarValue::TimestampNanosecond(Some(end_ns), _) = end_ns
            else {
                panic!("window_end type")
            };
            assert!(
                watermark >= end_ns / 1_000_000 - 1,
                "window ending {end_ns} emitted at watermark {watermark}"
            );
            emitted_before_finish += 1;
        }
    }
    assert!(
        emitted_before_finish > 5,
        "windows should close while events flow"
    );
    assert!(
        !engine.finish().unwrap().is_empty(),
        "the last window closes at finish"
    );
}

fn push(engine: &mut Engine, symbol: &str, ts_ms: i64) -> usize {
    let json = format!("{{\"symbol\":\"{symbol}\",\"price\":1.0,\"ts\":{ts_ms}}}");
    engine
        .push_json("trades", &json)
        .unwrap()
        .iter()
        .map(|o| o.batch.num_rows())
        .sum()
}

#[test]
fn late_events_are_dropped_and_counted() {
    let mut engine = engine();
    let query = engine
        .create_query("SELECT window_start, count(*) AS n FROM TUMBLE(trades, ts, INTERVAL '1' MINUTE) GROUP BY window_start")
        .unwrap();
    assert_eq!(push(&mut engine, "A", 10_000), 0);
    assert_eq!(push(&mut engine, "A", 50_000), 0);
    // Watermark 63 s passes the end of [0, 60 s): that window is emitted.
    assert_eq!(push(&mut engine, "A", 65_000), 1);
    // Behind the watermark, in a closed window: dropped and counted.
    assert_eq!(push(&mut engine, "A", 20_000), 0);
    assert_eq!(push(&mut engine, "A", 59_999), 0);
    // Behind the newest event but inside the bound, window still open: kept.
    assert_eq!(push(&mut engine, "A", 63_500), 0);
    let metrics = engine.query_metrics(query).unwrap();
    assert_eq!(metrics.late_events_dropped, 2);
    assert_eq!(metrics.events_in, 6);
    assert_eq!(metrics.watermark_millis, Some(63_000));
    let last = engine.finish().unwrap();
    let rows = rows(&last[0].batch);
    assert_eq!(rows, vec![vec!["60000000000".to_string(), "2".to_string()]]);
}

#[test]
fn out_of_order_events_within_the_bound_are_included() {
    let mut engine = engine();
    let query = engine
        .create_query("SELECT symbol, window_start, count(*) AS n FROM TUMBLE(trades, ts, INTERVAL '1' MINUTE) GROUP BY symbol, window_start")
        .unwrap();
    push(&mut engine, "A", 59_900);
    push(&mut engine, "A", 61_000); // watermark 59 s: [0, 60 s) still open
    push(&mut engine, "A", 59_500); // 1.5 s behind the newest: on time
    push(&mut engine, "B", 58_000); // 3 s behind the newest but window still open: on time
    let outputs = engine.finish().unwrap();
    let got = sorted(rows_of(&outputs, query));
    assert_eq!(
        got,
        vec![
            vec!["A".to_string(), "0".to_string(), "2".to_string()],
            vec!["A".to_string(), "60000000000".to_string(), "1".to_string()],
            vec!["B".to_string(), "0".to_string(), "1".to_string()],
        ]
    );
    assert_eq!(engine.query_metrics(query).unwrap().late_events_dropped, 0);
}

#[test]
fn where_filter_having_and_expressions_match_batch_sql() {
    let data = trades(7, 4_000, 6, 60, 1_500);
    let mut engine = engine();
    let query = engine
        .create_query(
            "SELECT upper_sym, window_start, count(*) AS n, sum(price * 2) FILTER (WHERE price > 500) AS big, min(price) \
             FROM (SELECT symbol || '!' AS upper_sym, price, window_start FROM TUMBLE(trades, ts, INTERVAL '30' SECOND) WHERE symbol <> 'S2') \
             GROUP BY upper_sym, window_start HAVING count(*) > 20",
        )
        .unwrap();
    let outputs = stream(&mut engine, &data, 8, 300);
    let expected = batch_sql(
        &data,
        "SELECT symbol || '!', date_bin(INTERVAL '30 seconds', ts) AS ws, count(*), sum(price * 2) FILTER (WHERE price > 500), min(price) \
         FROM t WHERE symbol <> 'S2' GROUP BY 1, 2 HAVING count(*) > 20",
    );
    assert!(!expected.is_empty());
    assert_eq!(sorted(rows_of(&outputs, query)), expected);
}

#[test]
fn window_without_keys_and_offset_windows_match_batch_sql() {
    let data = trades(9, 3_000, 4, 80, 1_000);
    let mut engine = engine();
    let total = engine
        .create_query("SELECT window_end, count(*), sum(price) FROM TUMBLE(trades, ts, INTERVAL '1' MINUTE, INTERVAL '15' SECOND) GROUP BY window_end")
        .unwrap();
    let outputs = stream(&mut engine, &data, 4, 100);
    let expected = batch_sql(
        &data,
        "SELECT date_bin(INTERVAL '1 minute', ts, TIMESTAMP '1970-01-01 00:00:15') + INTERVAL '1 minute', count(*), sum(price) FROM t GROUP BY 1",
    );
    assert_eq!(sorted(rows_of(&outputs, total)), expected);
}

#[test]
fn stateless_queries_emit_per_push() {
    let data = trades(11, 500, 4, 100, 1_000);
    let mut engine = engine();
    let query = engine
        .create_query("SELECT symbol, price * 2 AS double_price FROM trades WHERE price > 500")
        .unwrap();
    let first = engine.push_json("trades", &ndjson(&data[..250])).unwrap();
    assert!(!first.is_empty(), "results come with the push");
    let mut outputs = first;
    outputs.extend(engine.push_json("trades", &ndjson(&data[250..])).unwrap());
    let expected = batch_sql(&data, "SELECT symbol, price * 2 FROM t WHERE price > 500");
    assert_eq!(sorted(rows_of(&outputs, query)), expected);
}

#[test]
fn two_queries_on_one_stream_each_get_their_results() {
    let data = trades(13, 1_000, 3, 100, 500);
    let mut engine = engine();
    let counts = engine.create_query(STREAM_QUERY).unwrap();
    let maxima = engine
        .create_query("SELECT window_start, max(price) FROM TUMBLE(trades, ts, INTERVAL '10' SECOND) GROUP BY window_start")
        .unwrap();
    let outputs = stream(&mut engine, &data, 1, 64);
    assert_eq!(
        sorted(rows_of(&outputs, counts)),
        batch_sql(&data, BATCH_QUERY)
    );
    assert_eq!(
        sorted(rows_of(&outputs, maxima)),
        batch_sql(
            &data,
            "SELECT date_bin(INTERVAL '10 seconds', ts), max(price) FROM t GROUP BY 1"
        )
    );
}

#[test]
fn bad_sql_and_bad_input_give_typed_errors_and_change_nothing() {
    let mut engine = engine();
    let query = engine.create_query(STREAM_QUERY).unwrap();
    let cases: &[(&str, ErrorCode)] = &[
        ("SELEC x FROM trades", ErrorCode::SqlParse),
        ("SELECT nope FROM trades", ErrorCode::SqlPlan),
        ("SELECT count(*) FROM TUMBLE(nothere, ts, INTERVAL '1' MINUTE) GROUP BY window_start", ErrorCode::UnknownStream),
        ("SELECT * FROM nothere", ErrorCode::UnknownStream),
        ("SELECT symbol FROM trades ORDER BY price", ErrorCode::Unsupported),
        ("SELECT symbol FROM trades LIMIT 3", ErrorCode::Unsupported),
        ("SELECT symbol, count(*) FROM TUMBLE(trades, ts, INTERVAL '1' MINUTE) GROUP BY symbol", ErrorCode::Unsupported),
        ("SELECT window_start, count(*) FROM TUMBLE(trades, ts, INTERVAL '1' MONTH) GROUP BY window_start", ErrorCode::Unsupported),
        ("SELECT window_start, count(*) FROM TUMBLE(trades, price, INTERVAL '1' MINUTE) GROUP BY window_start", ErrorCode::Unsupported),
        ("SELECT window_start, count(*) FROM TUMBLE(trades, ts) GROUP BY window_start", ErrorCode::SqlPlan),
    ];
    for (sql, code) in cases {
        let error = engine.create_query(sql).unwrap_err();
        assert_eq!(error.code(), *code, "{sql}: {error}");
        assert!(!error.message().is_empty());
    }
    assert_eq!(
        engine.execute(TRADES_DDL).unwrap_err().code(),
        ErrorCode::StreamExists
    );
    assert_eq!(
        engine
            .execute("CREATE STREAM x (a INT)")
            .unwrap_err()
            .code(),
        ErrorCode::SqlPlan
    );
    assert_eq!(
        engine
            .execute("CREATE STREAM y (a INT, WATERMARK FOR a AS a)")
            .unwrap_err()
            .code(),
        ErrorCode::Unsupported
    );

    engine
        .push_json("trades", r#"{"symbol":"A","price":1,"ts":1000}"#)
        .unwrap();
    let input_cases: &[(&str, &str)] = &[
        ("trades", r#"{"symbol":"A","price":"lots","ts":2000}"#),
        ("trades", r#"{"symbol":"A","price":1,"ts":2000"#),
        (
            "trades",
            "{\"symbol\":\"A\",\"price\":1,\"ts\":3000}\n{\"symbol\":\"B\",\"price\":2}",
        ),
        ("trades", r#"{"symbol":"A","price":1,"ts":null}"#),
        ("trades", r#"{"symbol":"A","price":1,"ts":"yesterday"}"#),
    ];
    for (stream, json) in input_cases {
        let error = engine.push_json(stream, json).unwrap_err();
        assert_eq!(error.code(), ErrorCode::InvalidInput, "{json}: {error}");
    }
    let error = engine.push_json("nothere", "{}").unwrap_err();
    assert_eq!(error.code(), ErrorCode::UnknownStream);
    assert!(
        error.message().contains("trades"),
        "lists known streams: {error}"
    );
    // Nothing of the rejected pushes was applied.
    let metrics = engine.query_metrics(query).unwrap();
    assert_eq!(metrics.events_in, 1);
    let outputs = engine.finish().unwrap();
    assert_eq!(rows_of(&outputs, query)[0][3], "1");
    assert_eq!(
        engine
            .push_json("trades", r#"{"ts":1}"#)
            .unwrap_err()
            .code(),
        ErrorCode::Finished
    );
    assert_eq!(
        engine.query_metrics(99).unwrap_err().code(),
        ErrorCode::UnknownQuery
    );
}
