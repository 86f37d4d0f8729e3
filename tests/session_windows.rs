//! SESSION windows against batch SQL (sessions found with window functions),
//! plus bridging, maximum length and lateness.

mod common;

use common::*;
use riffle::{Engine, ErrorCode};

fn engine(delay_s: u32) -> Engine {
    let mut engine = Engine::new().unwrap();
    engine
        .execute(&format!(
            "CREATE STREAM trades (symbol VARCHAR, price DOUBLE, ts TIMESTAMP, WATERMARK FOR ts AS ts - INTERVAL '{delay_s}' SECOND)"
        ))
        .unwrap();
    engine
}

#[test]
fn sessions_equal_batch_sql() {
    // 8 symbols, one event every 2.5 s overall: per symbol gaps of ~20 s on
    // average, so sessions both merge and split. Disorder below the 2 s bound.
    let data = trades(31, 3_000, 8, 2_500, 1_500);
    let mut engine = engine(2);
    let query = engine
        .create_query(
            "SELECT symbol, window_start, window_end, count(*), sum(price), max(price), median(price) \
             FROM SESSION(trades, ts, INTERVAL '30' SECOND) GROUP BY symbol, window_start, window_end",
        )
        .unwrap();
    let outputs = stream(&mut engine, &data, 5, 200);
    let expected = batch_sql(
        &data,
        &batch_sessions_sql(30, "count(*), sum(price), max(price), median(price)"),
    );
    assert!(
        expected.len() > 50,
        "the data should make many sessions: {}",
        expected.len()
    );
    assert_eq!(sorted(rows_of(&outputs, query)), expected);
    let metrics = engine.query_metrics(query).unwrap();
    assert_eq!(metrics.late_events_dropped, 0);
    assert_eq!(metrics.open_windows, 0);
}

#[test]
fn session_aggregates_honour_filter_clauses() {
    // Rows of a session arrive over several pushes and are fed to it in one
    // run per push: each aggregate's FILTER must still pick the right rows.
    let data = trades(33, 2_000, 6, 2_500, 1_500);
    let aggregates = "count(*), count(*) FILTER (WHERE price > 500), \
                      min(price) FILTER (WHERE price < 300), max(price), count(DISTINCT price > 250)";
    let mut engine = engine(2);
    let query = engine
        .create_query(&format!(
            "SELECT symbol, window_start, window_end, {aggregates} \
             FROM SESSION(trades, ts, INTERVAL '30' SECOND) GROUP BY symbol, window_start, window_end"
        ))
        .unwrap();
    let outputs = stream(&mut engine, &data, 7, 300);
    let expected = batch_sql(&data, &batch_sessions_sql(30, aggregates));
    assert!(expected.len() > 50, "{}", expected.len());
    assert_eq!(sorted(rows_of(&outputs, query)), expected);
}

#[test]
fn sessions_do_not_depend_on_the_split() {
    let data = trades(32, 1_500, 4, 4_000, 1_900);
    // Exact aggregates only: float sums merged in another order differ in the last bit.
    let sql = "SELECT symbol, window_start, window_end, count(*), min(price), max(price) FROM SESSION(trades, ts, INTERVAL '20' SECOND) \
               GROUP BY symbol, window_start, window_end";
    let mut reference = None;
    for (seed, max_batch) in [(1, 1), (2, 33), (3, 1_500)] {
        let mut engine = engine(2);
        let query = engine.create_query(sql).unwrap();
        let got = sorted(rows_of(&stream(&mut engine, &data, seed, max_batch), query));
        match &reference {
            None => reference = Some(got),
            Some(expected) => {
                let missing: Vec<_> = expected.iter().filter(|r| !got.contains(r)).collect();
                let extra: Vec<_> = got.iter().filter(|r| !expected.contains(r)).collect();
                assert!(
                    missing.is_empty() && extra.is_empty(),
                    "max batch {max_batch}: missing {missing:?}, extra {extra:?}"
                );
            }
        }
    }
}

fn push(engine: &mut Engine, symbol: &str, ts_s: i64) -> Vec<Vec<String>> {
    let json = format!(
        "{{\"symbol\":\"{symbol}\",\"price\":1,\"ts\":{}}}",
        ts_s * 1000
    );
    engine
        .push_json("trades", &json)
        .unwrap()
        .iter()
        .flat_map(|o| rows(&o.batch))
        .collect()
}

fn finish(engine: &mut Engine) -> Vec<Vec<String>> {
    engine
        .finish()
        .unwrap()
        .iter()
        .flat_map(|o| rows(&o.batch))
        .collect()
}

const SESSIONS_10S: &str = "SELECT symbol, window_start, window_end, count(*) FROM SESSION(trades, ts, INTERVAL '10' SECOND) \
                            GROUP BY symbol, window_start, window_end";

#[test]
fn an_out_of_order_event_bridges_two_sessions() {
    let mut engine = engine(30);
    engine.create_query(SESSIONS_10S).unwrap();
    push(&mut engine, "A", 0);
    push(&mut engine, "A", 15);
    push(&mut engine, "B", 16);
    push(&mut engine, "A", 8); // [8 s, 18 s) overlaps [0, 10) and [15, 25)
    let got = sorted(finish(&mut engine));
    let s = |secs: i64| (secs * 1_000_000_000).to_string();
    assert_eq!(
        got,
        vec![
            vec!["A".to_string(), s(0), s(25), "3".to_string()],
            vec!["B".to_string(), s(16), s(26), "1".to_string()],
        ]
    );
}

#[test]
fn a_maximum_length_splits_long_sessions() {
    let mut engine = engine(0);
    engine
        .create_query(
            "SELECT window_start, window_end, count(*) FROM SESSION(trades, ts, INTERVAL '10' SECOND, INTERVAL '30' SECOND) \
             GROUP BY window_start, window_end",
        )
        .unwrap();
    let mut got = Vec::new();
    for t in (0..=60).step_by(5) {
        got.extend(push(&mut engine, "A", t));
    }
    got.extend(finish(&mut engine));
    let s = |secs: i64| (secs * 1_000_000_000).to_string();
    assert_eq!(
        got,
        vec![
            vec![s(0), s(30), "5".to_string()],
            vec![s(25), s(55), "5".to_string()],
            vec![s(50), s(70), "3".to_string()],
        ]
    );
}

#[test]
fn late_events_open_no_closed_session_but_join_open_ones() {
    let mut engine = engine(2);
    let query = engine.create_query(SESSIONS_10S).unwrap();
    push(&mut engine, "A", 0);
    // Watermark 38 s closes A's session [0, 10).
    let closed = push(&mut engine, "A", 40);
    assert_eq!(closed.len(), 1);
    // Own window [5 s, 15 s) is closed and no open session covers it: late.
    assert!(push(&mut engine, "A", 5).is_empty());
    // Behind the watermark (37 s < 38 s) but inside A's open session [40, 50): joins it.
    push(&mut engine, "A", 37);
    assert_eq!(engine.query_metrics(query).unwrap().late_events_dropped, 1);
    let s = |secs: i64| (secs * 1_000_000_000).to_string();
    assert_eq!(
        finish(&mut engine),
        vec![vec!["A".to_string(), s(37), s(50), "2".to_string()]]
    );
}

#[test]
fn session_argument_errors() {
    let mut engine = engine(2);
    let cases = [
        ("SELECT window_start, count(*) FROM SESSION(trades, ts, INTERVAL '10' SECOND, INTERVAL '5' SECOND) GROUP BY window_start", ErrorCode::SqlPlan),
        ("SELECT window_start, count(*) FROM SESSION(trades, ts) GROUP BY window_start", ErrorCode::SqlPlan),
        ("SELECT symbol, window_start FROM SESSION(trades, ts, INTERVAL '10' SECOND)", ErrorCode::Unsupported),
        ("SELECT symbol, count(*) FROM SESSION(trades, ts, INTERVAL '10' SECOND) GROUP BY symbol", ErrorCode::Unsupported),
    ];
    for (sql, code) in cases {
        assert_eq!(engine.create_query(sql).unwrap_err().code(), code, "{sql}");
    }
}

#[test]
fn thousands_of_open_sessions_over_several_generations_equal_batch_sql_across_a_checkpoint() {
    // ~5k sessions open at once: more than one generation of grouped
    // accumulators (4,096 groups each), so closing, merging (disorder
    // bridges sessions) and checkpointing read several generations.
    let data = trades(34, 30_000, 6_000, 3, 1_500);
    let sql = "SELECT symbol, window_start, window_end, count(*), sum(price), max(price) \
               FROM SESSION(trades, ts, INTERVAL '30' SECOND) GROUP BY symbol, window_start, window_end";
    let expected = batch_sql(
        &data,
        &batch_sessions_sql(30, "count(*), sum(price), max(price)"),
    );
    assert!(expected.len() > 6_000, "{}", expected.len());

    let mut uninterrupted = engine(2);
    let query = uninterrupted.create_query(sql).unwrap();
    let outputs = stream(&mut uninterrupted, &data, 9, 700);
    assert_eq!(sorted(rows_of(&outputs, query)), expected);

    let half = 15_000;
    let mut first = engine(2);
    let query = first.create_query(sql).unwrap();
    let mut outputs = Vec::new();
    for chunk in data[..half].chunks(500) {
        outputs.extend(first.push_json("trades", &ndjson(chunk)).unwrap());
    }
    let open = first.query_metrics(query).unwrap().open_windows;
    assert!(open > 4_096, "{open} sessions open");
    let bytes = first.checkpoint().unwrap().to_bytes();
    let mut second = engine(2);
    assert_eq!(second.create_query(sql).unwrap(), query);
    second
        .restore(&riffle::state::checkpoint::Checkpoint::from_bytes(&bytes).unwrap())
        .unwrap();
    assert_eq!(second.query_metrics(query).unwrap().open_windows, open);
    for chunk in data[half..].chunks(500) {
        outputs.extend(second.push_json("trades", &ndjson(chunk)).unwrap());
    }
    outputs.extend(second.finish().unwrap());
    assert_eq!(sorted(rows_of(&outputs, query)), expected);
}

#[test]
fn sessions_without_aggregates_are_their_bounds() {
    let data = trades(35, 2_000, 5, 2_500, 1_500);
    let mut engine = engine(2);
    let query = engine
        .create_query(
            "SELECT symbol, window_start, window_end FROM SESSION(trades, ts, INTERVAL '30' SECOND) \
             GROUP BY symbol, window_start, window_end",
        )
        .unwrap();
    let outputs = stream(&mut engine, &data, 3, 100);
    let expected: Vec<Vec<String>> = batch_sql(&data, &batch_sessions_sql(30, "count(*)"))
        .into_iter()
        .map(|mut row| {
            row.pop();
            row
        })
        .collect();
    assert!(expected.len() > 20);
    assert_eq!(sorted(rows_of(&outputs, query)), sorted(expected));
}

#[test]
fn keys_that_go_quiet_and_come_back_equal_batch_sql_across_a_checkpoint() {
    let data = drifting_keys(36);
    let sql = "SELECT symbol, window_start, window_end, count(*), sum(price) \
               FROM SESSION(trades, ts, INTERVAL '30' SECOND) GROUP BY symbol, window_start, window_end";
    let expected = batch_sql(&data, &batch_sessions_sql(30, "count(*), sum(price)"));
    assert!(expected.len() > 1_900, "{}", expected.len());
    let mut uninterrupted = engine(2);
    let query = uninterrupted.create_query(sql).unwrap();
    let outputs = stream(&mut uninterrupted, &data, 10, 400);
    assert_eq!(sorted(rows_of(&outputs, query)), expected);

    // Checkpoints taken after compactions restore to the same results.
    let mut engine_now = engine(2);
    let query = engine_now.create_query(sql).unwrap();
    let mut outputs = Vec::new();
    for (n, chunk) in data.chunks(3_000).enumerate() {
        outputs.extend(engine_now.push_json("trades", &ndjson(chunk)).unwrap());
        if n % 4 == 3 {
            let bytes = engine_now.checkpoint().unwrap().to_bytes();
            engine_now = engine(2);
            assert_eq!(engine_now.create_query(sql).unwrap(), query);
            engine_now
                .restore(&riffle::state::checkpoint::Checkpoint::from_bytes(&bytes).unwrap())
                .unwrap();
        }
    }
    outputs.extend(engine_now.finish().unwrap());
    assert_eq!(sorted(rows_of(&outputs, query)), expected);
}

#[test]
fn changelog_sessions_of_drifting_keys_materialise_to_batch_sql() {
    let data = drifting_keys(36);
    let mut engine = engine(2);
    let query = engine
        .create_query(
            "SELECT symbol, window_start, window_end, count(*), max(price) \
             FROM SESSION(trades, ts, INTERVAL '30' SECOND) GROUP BY symbol, window_start, window_end EMIT ON UPDATE",
        )
        .unwrap();
    let mut view = std::collections::BTreeMap::new();
    for chunk in data.chunks(700) {
        let outputs = engine.push_json("trades", &ndjson(chunk)).unwrap();
        apply_changelog(&mut view, &rows_of(&outputs, query), 3);
    }
    apply_changelog(&mut view, &rows_of(&engine.finish().unwrap(), query), 3);
    assert_eq!(
        sorted(view.values().cloned().collect()),
        batch_sql(&data, &batch_sessions_sql(30, "count(*), max(price)"))
    );
}
