//! Manual watermarks, idle streams, BIGINT event time and EXPLAIN.

mod common;

use common::*;
use riffle::{Engine, ErrorCode};

const COUNTS: &str = "SELECT window_start, count(*) AS n FROM TUMBLE(trades, ts, INTERVAL '1' MINUTE) GROUP BY window_start";

fn push(engine: &mut Engine, stream: &str, json: &str) -> Vec<Vec<String>> {
    let outputs = engine.push_json(stream, json).unwrap();
    outputs.iter().flat_map(|o| rows(&o.batch)).collect()
}

fn flatten(outputs: Vec<riffle::QueryOutput>) -> Vec<Vec<String>> {
    outputs.iter().flat_map(|o| rows(&o.batch)).collect()
}

#[test]
fn advance_watermark_closes_windows_and_never_moves_back() {
    let mut engine = Engine::new().unwrap();
    engine.execute(TRADES_DDL).unwrap();
    let query = engine.create_query(COUNTS).unwrap();
    push(
        &mut engine,
        "trades",
        r#"{"symbol":"A","price":1,"ts":10000}"#,
    );
    assert!(flatten(engine.advance_watermark("trades", 59_998).unwrap()).is_empty());
    let closed = flatten(engine.advance_watermark("trades", 59_999).unwrap());
    assert_eq!(closed, vec![vec!["0".to_string(), "1".to_string()]]);
    assert!(engine
        .advance_watermark("trades", 1_000)
        .unwrap()
        .is_empty());
    assert_eq!(
        engine.query_metrics(query).unwrap().watermark_millis,
        Some(59_999)
    );
    // Behind the manual watermark: late.
    push(
        &mut engine,
        "trades",
        r#"{"symbol":"A","price":1,"ts":30000}"#,
    );
    assert_eq!(engine.query_metrics(query).unwrap().late_events_dropped, 1);
    assert_eq!(
        engine.advance_watermark("nothere", 1).unwrap_err().code(),
        ErrorCode::UnknownStream
    );
}

#[test]
fn an_idle_stream_follows_the_wall_clock_so_windows_close_on_a_quiet_feed() {
    let mut engine = Engine::new().unwrap();
    engine
        .execute(
            "CREATE STREAM trades (symbol VARCHAR, price DOUBLE, ts TIMESTAMP, \
             WATERMARK FOR ts AS ts - INTERVAL '2' SECOND) WITH (idle_timeout = INTERVAL '5' SECOND)",
        )
        .unwrap();
    engine
        .execute("CREATE STREAM busy (ts TIMESTAMP, WATERMARK FOR ts AS ts)")
        .unwrap();
    let query = engine.create_query(COUNTS).unwrap();
    let other = engine
        .create_query("SELECT window_start, count(*) FROM TUMBLE(busy, ts, INTERVAL '1' MINUTE) GROUP BY window_start")
        .unwrap();
    let now = 1_700_000_050_000i64; // 10 s into a minute (22:14:10 UTC)
    engine.tick(now).unwrap();
    push(
        &mut engine,
        "trades",
        &format!(r#"{{"symbol":"A","price":1,"ts":{now}}}"#),
    );
    push(&mut engine, "busy", &format!(r#"{{"ts":{now}}}"#));
    // Quiet for 3 s: less than the timeout, nothing moves.
    assert!(engine.tick(now + 3_000).unwrap().is_empty());
    assert_eq!(
        engine.query_metrics(query).unwrap().watermark_millis,
        Some(now - 2_000)
    );
    // Quiet for 40 s: the watermark follows the wall clock (now - 5 s) but the
    // minute is not over yet.
    assert!(engine.tick(now + 40_000).unwrap().is_empty());
    assert_eq!(
        engine.query_metrics(query).unwrap().watermark_millis,
        Some(now + 35_000)
    );
    // Quiet for 56 s: now - 5 s passes the end of the minute; it closes.
    let closed = engine.tick(now + 56_000).unwrap();
    assert_eq!(closed.len(), 1);
    assert_eq!(closed[0].query, query);
    // The stream without an idle timeout stays where its events left it.
    assert_eq!(
        engine.query_metrics(other).unwrap().watermark_millis,
        Some(now)
    );
    assert_eq!(engine.query_metrics(other).unwrap().open_windows, 1);
}

#[test]
fn bigint_event_time_is_epoch_milliseconds() {
    let mut engine = Engine::new().unwrap();
    engine
        .execute("CREATE STREAM clicks (page VARCHAR, ts BIGINT, WATERMARK FOR ts AS ts - INTERVAL '1' SECOND)")
        .unwrap();
    let query = engine
        .create_query("SELECT page, window_start, window_end, count(*) FROM TUMBLE(clicks, ts, INTERVAL '10' SECOND) GROUP BY page, window_start, window_end")
        .unwrap();
    let schema = engine.query_schema(query).unwrap();
    assert_eq!(
        schema.field(1).data_type(),
        &arrow::datatypes::DataType::Timestamp(arrow::datatypes::TimeUnit::Millisecond, None)
    );
    push(&mut engine, "clicks", "{\"page\":\"/\",\"ts\":1000}\n{\"page\":\"/\",\"ts\":9999}\n{\"page\":\"/a\",\"ts\":10000}");
    let rows = sorted(flatten(engine.finish().unwrap()));
    assert_eq!(
        rows,
        vec![
            vec![
                "/".to_string(),
                "0".to_string(),
                "10000".to_string(),
                "2".to_string()
            ],
            vec![
                "/a".to_string(),
                "10000".to_string(),
                "20000".to_string(),
                "1".to_string()
            ],
        ]
    );
}

#[test]
fn explain_prints_the_streaming_operator_graph() {
    let mut engine = Engine::new().unwrap();
    engine.execute(TRADES_DDL).unwrap();
    let plan = engine
        .explain(
            "EXPLAIN SELECT symbol, window_start, count(*) AS n FROM HOP(trades, ts, INTERVAL '10' SECOND, INTERVAL '1' MINUTE) \
             WHERE price > 10 GROUP BY symbol, window_start HAVING count(*) > 1",
        )
        .unwrap();
    for part in [
        "StreamSource: trades (event time ts, watermark ts - 2s)",
        "StreamScan: HOP(slide 10s, size 1m)",
        "Filter: price@1 > 10",
        "WindowAggregate: HOP(slide 10s, size 1m), group by [symbol@0, window_start]",
        "count(Int64(1))",
        "Output: [symbol, window_start, n]",
    ] {
        assert!(plan.contains(part), "missing {part:?} in\n{plan}");
    }
    assert_eq!(
        engine
            .explain("SELECT * FROM trades ORDER BY ts")
            .unwrap_err()
            .code(),
        ErrorCode::Unsupported
    );
    assert_eq!(
        engine
            .create_query("EXPLAIN SELECT * FROM trades")
            .unwrap_err()
            .code(),
        ErrorCode::Unsupported
    );
}

#[test]
fn every_timestamp_unit_gives_the_same_windows() {
    let mut reference: Option<String> = None;
    for declared in [
        "TIMESTAMP(0)",
        "TIMESTAMP(3)",
        "TIMESTAMP(6)",
        "TIMESTAMP(9)",
        "TIMESTAMP WITH TIME ZONE",
        "BIGINT",
    ] {
        let mut engine = Engine::new().unwrap();
        engine
            .execute(&format!(
                "CREATE STREAM clicks (page VARCHAR, ts {declared}, WATERMARK FOR ts AS ts - INTERVAL '2' SECOND)"
            ))
            .unwrap();
        let query = engine
            .create_query(
                "SELECT page, window_start, window_end, count(*) AS n FROM HOP(clicks, ts, INTERVAL '5' SECOND, INTERVAL '10' SECOND) \
                 GROUP BY page, window_start, window_end",
            )
            .unwrap();
        let events: String = (0..40)
            .map(|i| {
                format!(
                    "{{\"page\":\"/p{}\",\"ts\":{}}}\n",
                    i % 3,
                    1_700_000_000_000i64 + (i * 7 % 40) * 1_000
                )
            })
            .collect();
        let mut outputs = engine.push_json("clicks", &events).unwrap();
        outputs.extend(engine.finish().unwrap());
        // As JavaScript sees them: timestamps become epoch milliseconds.
        let mut json: Vec<String> = outputs
            .iter()
            .filter(|o| o.query == query)
            .map(|o| riffle::codec::json::encode_rows(&o.batch).unwrap())
            .collect();
        json.sort();
        let json = json.join("\n");
        match &reference {
            None => reference = Some(json),
            Some(expected) => assert_eq!(&json, expected, "{declared}"),
        }
    }
}
