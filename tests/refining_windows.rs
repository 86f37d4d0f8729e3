//! Early results (EMIT ON UPDATE) and allowed lateness for windows: a
//! changelog that, applied in order, equals the batch result.

mod common;

use std::collections::BTreeMap;

use common::*;
use riffle::{Engine, QueryOptions};

fn engine() -> Engine {
    let mut engine = Engine::new().unwrap();
    engine.execute(TRADES_DDL).unwrap();
    engine
}

#[test]
fn emit_on_update_materialises_to_the_batch_result_after_every_push() {
    let data = trades(61, 3_000, 4, 60, 1_500);
    let mut engine = engine();
    let query = engine
        .create_query(
            "SELECT symbol, window_start, count(*), sum(price), max(price) FROM TUMBLE(trades, ts, INTERVAL '20' SECOND) \
             GROUP BY symbol, window_start EMIT ON UPDATE",
        )
        .unwrap();
    let mut view = BTreeMap::new();
    let mut rng = Rng::new(3);
    let mut seen = 0;
    while seen < data.len() {
        let take = (1 + rng.below(300) as usize).min(data.len() - seen);
        let outputs = engine
            .push_json("trades", &ndjson(&data[seen..seen + take]))
            .unwrap();
        seen += take;
        apply_changelog(&mut view, &rows_of(&outputs, query), 2);
        let expected = batch_sql(
            &data[..seen],
            "SELECT symbol, date_bin(INTERVAL '20 seconds', ts), count(*), sum(price), max(price) FROM t GROUP BY 1, 2",
        );
        assert_eq!(
            sorted(view.values().cloned().collect()),
            expected,
            "after {seen} events"
        );
    }
    apply_changelog(&mut view, &rows_of(&engine.finish().unwrap(), query), 2);
    assert_eq!(
        engine.query_metrics(query).unwrap().open_windows,
        0,
        "state is forgotten at close"
    );
}

#[test]
fn hop_with_early_results_ends_at_the_batch_result() {
    let data = trades(62, 2_000, 3, 80, 1_500);
    let mut engine = engine();
    let query = engine
        .create_query(
            "SELECT window_start, window_end, count(*), max(price) FROM HOP(trades, ts, INTERVAL '10' SECOND, INTERVAL '30' SECOND) \
             GROUP BY window_start, window_end EMIT ON UPDATE",
        )
        .unwrap();
    let mut view = BTreeMap::new();
    for chunk in data.chunks(97) {
        apply_changelog(
            &mut view,
            &rows_of(&engine.push_json("trades", &ndjson(chunk)).unwrap(), query),
            2,
        );
    }
    apply_changelog(&mut view, &rows_of(&engine.finish().unwrap(), query), 2);
    let copies: Vec<String> = (0..3)
        .map(|k| format!("SELECT price, date_bin(INTERVAL '10 seconds', ts) - INTERVAL '{}0 seconds' AS ws FROM t", k))
        .collect();
    let expected = batch_sql(
        &data,
        &format!(
            "SELECT ws, ws + INTERVAL '30 seconds', count(*), max(price) FROM ({}) GROUP BY 1, 2",
            copies.join(" UNION ALL ")
        ),
    );
    assert_eq!(sorted(view.values().cloned().collect()), expected);
}

#[test]
fn allowed_lateness_updates_a_closed_window_then_makes_it_final() {
    let mut engine = engine();
    let query = engine
        .create_query_with(
            "SELECT window_start, count(*) AS n FROM TUMBLE(trades, ts, INTERVAL '1' MINUTE) GROUP BY window_start",
            &QueryOptions {
                allowed_lateness_millis: 10_000,
                ..QueryOptions::default()
            },
        )
        .unwrap();
    let mut push = |ts: i64| {
        let out = engine
            .push_json(
                "trades",
                &format!(r#"{{"symbol":"A","price":1,"ts":{ts}}}"#),
            )
            .unwrap();
        rows_of(&out, query)
    };
    let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
    assert!(push(10_000).is_empty());
    // Watermark 63 s closes [0, 60 s): emitted once, as an insert.
    assert_eq!(push(65_000), vec![s(&["0", "1", "insert"])]);
    // Late, but within 10 s of allowed lateness: the window is updated.
    assert_eq!(
        push(30_000),
        vec![
            s(&["0", "1", "update_before"]),
            s(&["0", "2", "update_after"])
        ]
    );
    // Watermark 73 s passes 60 s + 10 s: the window is final and forgotten.
    push(75_000);
    assert!(push(20_000).is_empty());
    let metrics = engine.query_metrics(query).unwrap();
    assert_eq!(metrics.late_events_dropped, 1);
}

#[test]
fn emit_every_batches_changes_by_wall_clock_and_flushes_on_close() {
    let mut engine = engine();
    let query = engine
        .create_query(
            "SELECT window_start, count(*) AS n FROM TUMBLE(trades, ts, INTERVAL '1' MINUTE) \
             GROUP BY window_start EMIT EVERY INTERVAL '5' SECOND",
        )
        .unwrap();
    assert!(engine.needs_clock());
    let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
    let push = |engine: &mut Engine, ts: &[i64]| {
        let json: String = ts
            .iter()
            .map(|t| format!("{{\"symbol\":\"A\",\"price\":1,\"ts\":{t}}}\n"))
            .collect();
        rows_of(&engine.push_json("trades", &json).unwrap(), query)
    };
    let tick = |engine: &mut Engine, now: i64| rows_of(&engine.tick(now).unwrap(), query);
    assert!(
        push(&mut engine, &[10_000, 20_000]).is_empty(),
        "nothing before the first period"
    );
    assert_eq!(tick(&mut engine, 1_000), vec![s(&["0", "2", "insert"])]);
    assert!(push(&mut engine, &[30_000]).is_empty());
    assert!(tick(&mut engine, 3_000).is_empty(), "period not over");
    assert_eq!(
        tick(&mut engine, 6_000),
        vec![
            s(&["0", "2", "update_before"]),
            s(&["0", "3", "update_after"])
        ]
    );
    // The window closes inside this push: its pending change comes out at once.
    assert_eq!(
        push(&mut engine, &[40_000, 65_000]),
        vec![
            s(&["0", "3", "update_before"]),
            s(&["0", "4", "update_after"])
        ]
    );
    assert_eq!(
        tick(&mut engine, 12_000),
        vec![s(&["60000000000", "1", "insert"])]
    );
    assert!(engine
        .create_query("SELECT symbol FROM trades EMIT EVERY INTERVAL '1' SECOND")
        .is_err());
    assert!(engine
        .create_query("SELECT window_start, count(*) FROM TUMBLE(trades, ts, INTERVAL '1' MINUTE) GROUP BY window_start EMIT EVERY 5")
        .is_err());
}

#[test]
fn emit_every_changes_waiting_at_a_checkpoint_come_out_after_a_restore() {
    let sql =
        "SELECT symbol, window_start, count(*) AS n FROM TUMBLE(trades, ts, INTERVAL '1' MINUTE) \
               GROUP BY symbol, window_start EMIT EVERY INTERVAL '5' SECOND";
    let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
    let line =
        |symbol: &str, ts: i64| format!("{{\"symbol\":\"{symbol}\",\"price\":1,\"ts\":{ts}}}\n");
    let mut first = engine();
    let query = first.create_query(sql).unwrap();
    let pushed = first
        .push_json("trades", &(line("A", 10_000) + &line("B", 20_000)))
        .unwrap();
    assert!(rows_of(&pushed, query).is_empty());
    assert_eq!(rows_of(&first.tick(1_000).unwrap(), query).len(), 2);
    // A and B change; the period is not over when the checkpoint is taken.
    let pushed = first
        .push_json("trades", &(line("A", 30_000) + &line("B", 31_000)))
        .unwrap();
    assert!(rows_of(&pushed, query).is_empty());
    let bytes = first.checkpoint().unwrap().to_bytes();
    let mut second = engine();
    assert_eq!(second.create_query(sql).unwrap(), query);
    second
        .restore(&riffle::state::checkpoint::Checkpoint::from_bytes(&bytes).unwrap())
        .unwrap();
    // The window closes: both waiting changes come out at once.
    let closed = rows_of(
        &second.push_json("trades", &line("C", 65_000)).unwrap(),
        query,
    );
    assert_eq!(
        sorted(closed),
        sorted(vec![
            s(&["A", "0", "1", "update_before"]),
            s(&["A", "0", "2", "update_after"]),
            s(&["B", "0", "1", "update_before"]),
            s(&["B", "0", "2", "update_after"]),
        ])
    );
}

#[test]
fn session_emit_on_update_materialises_to_batch_sessions_after_every_push() {
    let data = trades(63, 1_500, 5, 2_000, 1_500);
    let mut engine = engine();
    let query = engine
        .create_query(
            "SELECT symbol, window_start, window_end, count(*), max(price) FROM SESSION(trades, ts, INTERVAL '10' SECOND) \
             GROUP BY symbol, window_start, window_end EMIT ON UPDATE",
        )
        .unwrap();
    let batch_sessions = &batch_sessions_sql(10, "count(*), max(price)");
    let mut view = BTreeMap::new();
    let mut rng = Rng::new(5);
    let mut seen = 0;
    while seen < data.len() {
        let take = (1 + rng.below(60) as usize).min(data.len() - seen);
        let outputs = engine
            .push_json("trades", &ndjson(&data[seen..seen + take]))
            .unwrap();
        seen += take;
        apply_changelog(&mut view, &rows_of(&outputs, query), 3);
        if rng.below(5) == 0 {
            assert_eq!(
                sorted(view.values().cloned().collect()),
                batch_sql(&data[..seen], batch_sessions),
                "after {seen}"
            );
        }
    }
    apply_changelog(&mut view, &rows_of(&engine.finish().unwrap(), query), 3);
    assert_eq!(
        sorted(view.values().cloned().collect()),
        batch_sql(&data, batch_sessions)
    );
}

#[test]
fn a_late_row_within_the_allowed_lateness_extends_a_closed_session() {
    let mut engine = engine();
    let query = engine
        .create_query_with(
            "SELECT symbol, window_start, window_end, count(*) AS n FROM SESSION(trades, ts, INTERVAL '10' SECOND) \
             GROUP BY symbol, window_start, window_end",
            &QueryOptions {
                allowed_lateness_millis: 60_000,
                ..QueryOptions::default()
            },
        )
        .unwrap();
    let mut push = |ts: i64| {
        let out = engine
            .push_json(
                "trades",
                &format!(r#"{{"symbol":"A","price":1,"ts":{ts}}}"#),
            )
            .unwrap();
        rows_of(&out, query)
    };
    let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
    let sec = |n: i64| (n * 1_000_000_000).to_string();
    assert!(push(0).is_empty());
    // Watermark 48 s closes [0, 10 s): emitted once.
    assert_eq!(push(50_000), vec![s(&["A", "0", &sec(10), "1", "insert"])]);
    // 5 s is late but within 60 s of lateness: the closed session grows.
    assert_eq!(
        push(5_000),
        vec![
            s(&["A", "0", &sec(10), "1", "update_before"]),
            s(&["A", "0", &sec(15), "2", "update_after"])
        ]
    );
    // Watermark 98 s: [0, 15 s) is past 15 s + 60 s and final; a row for it is dropped.
    push(100_000);
    assert!(push(3_000).is_empty());
    assert_eq!(engine.query_metrics(query).unwrap().late_events_dropped, 1);
}

#[test]
fn early_results_of_thousands_of_window_groups_equal_batch_sql_across_checkpoints() {
    // 200 symbols in 10 s windows over ~33 minutes: ~40k (window, key)
    // groups opened and purged, so the operator's key numbers are
    // compacted many times, with groups open and across checkpoints.
    let data = trades(64, 40_000, 200, 50, 1_500);
    let sql = "SELECT symbol, window_start, count(*), sum(price), min(price) FROM TUMBLE(trades, ts, INTERVAL '10' SECOND) \
               GROUP BY symbol, window_start EMIT ON UPDATE";
    let (_, view) = materialise_across_restores(&data, sql, 2, 1_000, |n| n % 7 == 6);
    let expected = batch_sql(
        &data,
        "SELECT symbol, date_bin(INTERVAL '10 seconds', ts), count(*), sum(price), min(price) FROM t GROUP BY 1, 2",
    );
    assert!(expected.len() > 20_000, "{}", expected.len());
    assert_eq!(sorted(view.values().cloned().collect()), expected);
}

#[test]
fn hopping_early_results_of_drifting_keys_equal_batch_sql_across_checkpoints() {
    // 1,800 keys that come and go: each key has three HOP windows open at
    // a time. Restores (which number only the keys with open windows) come
    // early; later, at 1,024 keys, the operator's key numbers are
    // compacted while other keys' windows are open.
    let data = drifting_keys(81);
    let sql = "SELECT symbol, window_start, count(*), sum(price), min(price) \
               FROM HOP(trades, ts, INTERVAL '10' SECOND, INTERVAL '30' SECOND) \
               GROUP BY symbol, window_start EMIT ON UPDATE";
    let ((engine, query), view) =
        materialise_across_restores(&data, sql, 2, 1_500, |n| n == 5 || n == 8);
    // Every window was purged at the end: none is held under a stale number.
    let metrics = engine.query_metrics(query).unwrap();
    assert_eq!((metrics.open_windows, metrics.state_bytes), (0, 0));
    let expected = batch_sql(
        &data,
        &format!(
            "SELECT symbol, ws, count(*), sum(price), min(price) FROM ({}) GROUP BY 1, 2",
            hop_copies_sql(10, 30)
        ),
    );
    assert!(expected.len() > 5_000, "{}", expected.len());
    assert_eq!(sorted(view.values().cloned().collect()), expected);
}

#[test]
fn cumulating_early_results_of_drifting_keys_equal_batch_sql_across_checkpoints() {
    // CUMULATE windows of one key share their start and differ in their
    // ends: each is its own group, kept by end.
    let data = drifting_keys(91);
    let sql = "SELECT symbol, window_start, window_end, count(*), sum(price), max(price) \
               FROM CUMULATE(trades, ts, INTERVAL '10' SECOND, INTERVAL '30' SECOND) \
               GROUP BY symbol, window_start, window_end EMIT ON UPDATE";
    let ((engine, query), view) = materialise_across_restores(&data, sql, 3, 1_200, |n| n % 6 == 5);
    let metrics = engine.query_metrics(query).unwrap();
    assert_eq!(metrics.late_events_dropped, 0);
    assert_eq!((metrics.open_windows, metrics.state_bytes), (0, 0));
    let expected = batch_sql(
        &data,
        &format!(
            "SELECT symbol, ws, we, count(*), sum(price), max(price) FROM ({}) GROUP BY 1, 2, 3",
            cumulate_copies_sql(10, 30)
        ),
    );
    assert!(expected.len() > 5_000, "{}", expected.len());
    assert_eq!(sorted(view.values().cloned().collect()), expected);
}

/// Pushes `data` in chunks of `chunk` rows to a new engine running `sql`
/// (a changelog whose first `keys` columns are its key), moving to a new
/// engine restored from a checkpoint after each chunk `restore_after`
/// picks, and finishes; returns the last engine with the query and the
/// materialised changelog.
fn materialise_across_restores(
    data: &[Trade],
    sql: &str,
    keys: usize,
    chunk: usize,
    restore_after: impl Fn(usize) -> bool,
) -> (
    (Engine, riffle::QueryId),
    BTreeMap<Vec<String>, Vec<String>>,
) {
    let mut engine = engine();
    let query = engine.create_query(sql).unwrap();
    let mut view = BTreeMap::new();
    for (n, chunk) in data.chunks(chunk).enumerate() {
        let outputs = engine.push_json("trades", &ndjson(chunk)).unwrap();
        apply_changelog(&mut view, &rows_of(&outputs, query), keys);
        if restore_after(n) {
            let bytes = engine.checkpoint().unwrap().to_bytes();
            engine = self::engine();
            assert_eq!(engine.create_query(sql).unwrap(), query);
            engine
                .restore(&riffle::state::checkpoint::Checkpoint::from_bytes(&bytes).unwrap())
                .unwrap();
        }
    }
    apply_changelog(&mut view, &rows_of(&engine.finish().unwrap(), query), keys);
    ((engine, query), view)
}
