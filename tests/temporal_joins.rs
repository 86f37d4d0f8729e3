//! Event-time temporal joins (issue 20): each row of one stream joins the
//! version of a versioned stream (one with a PRIMARY KEY) valid at its own
//! time, once the watermarks pass it. Against the same join written as
//! batch SQL (the latest version at or before each row), at random
//! interleavings; versions bounded; checkpoints; refusals.

mod common;

use common::{
    assert_refused, assert_restore_equals_uninterrupted, batch_ab, finely_interleaved, interleaved,
    ndjson, rows_of, run_pushes, sorted, trades, Trade,
};
use riffle::{Engine, ErrorCode, QueryId};

const ORDERS: &str = "CREATE STREAM a (symbol VARCHAR, price DOUBLE, ts TIMESTAMP, \
     WATERMARK FOR ts AS ts - INTERVAL '2' SECOND)";
const RATES: &str = "CREATE STREAM b (symbol VARCHAR, price DOUBLE, ts TIMESTAMP, \
     PRIMARY KEY (symbol) NOT ENFORCED, WATERMARK FOR ts AS ts - INTERVAL '2' SECOND)";

fn engine_with(queries: &[&str]) -> (Engine, Vec<QueryId>) {
    let mut engine = Engine::new().unwrap();
    engine.execute(ORDERS).unwrap();
    engine.execute(RATES).unwrap();
    let ids = queries
        .iter()
        .map(|sql| engine.create_query(sql).unwrap())
        .collect();
    (engine, ids)
}

/// Orders and rates out of order by up to just under the watermark delay;
/// no two rates of one symbol at the same time (which version is valid
/// then is not defined).
fn feeds(seed: u64) -> (Vec<Trade>, Vec<Trade>) {
    let orders = trades(seed, 600, 4, 97, 1990);
    let mut seen = std::collections::HashSet::new();
    let rates = trades(seed + 1, 300, 4, 211, 1990)
        .into_iter()
        .filter(|t| seen.insert((t.symbol.clone(), t.ts_ms)))
        .collect();
    (orders, rates)
}

/// (streaming SQL, the same as batch SQL over tables a and b).
fn queries() -> Vec<(String, String)> {
    let select = "SELECT o.symbol, o.price, o.ts, r.price, r.ts";
    // The version valid at each order: the latest rate at or before it.
    let valid = "(SELECT a2.symbol AS s, a2.ts AS t, max(b2.ts) AS vt FROM a a2 \
         JOIN b b2 ON b2.symbol = a2.symbol AND b2.ts <= a2.ts GROUP BY a2.symbol, a2.ts) m \
         ON m.s = o.symbol AND m.t = o.ts";
    vec![
        (
            format!("{select} FROM a AS o JOIN b FOR SYSTEM_TIME AS OF o.ts AS r ON o.symbol = r.symbol"),
            format!("{select} FROM a o JOIN {valid} JOIN b r ON r.symbol = o.symbol AND r.ts = m.vt"),
        ),
        (
            format!("{select} FROM a AS o LEFT JOIN b FOR SYSTEM_TIME AS OF o.ts AS r ON r.symbol = o.symbol"),
            format!("{select} FROM a o LEFT JOIN {valid} LEFT JOIN b r ON r.symbol = o.symbol AND r.ts = m.vt"),
        ),
        // The rest of the condition is checked on the version found: a
        // version that fails it pads the row.
        (
            format!(
                "{select} FROM a AS o LEFT JOIN b FOR SYSTEM_TIME AS OF o.ts AS r \
                 ON o.symbol = r.symbol AND r.price > o.price"
            ),
            format!(
                "{select} FROM a o LEFT JOIN {valid} LEFT JOIN b r ON r.symbol = o.symbol \
                 AND r.ts = m.vt AND r.price > o.price"
            ),
        ),
    ]
}

#[test]
fn each_row_joins_the_version_valid_at_its_time() {
    let queries = queries();
    let streaming: Vec<&str> = queries.iter().map(|(s, _)| s.as_str()).collect();
    for seed in 0..4 {
        let (a, b) = feeds(seed);
        let (mut engine, ids) = engine_with(&streaming);
        let pushes = if seed % 2 == 0 {
            finely_interleaved(&a, &b, seed)
        } else {
            interleaved(&a, &b, seed)
        };
        let outputs = run_pushes(&mut engine, &pushes);
        for ((sql, batch), id) in queries.iter().zip(&ids) {
            let expected = batch_ab(&a, &b, batch);
            assert!(expected.len() > 100, "{sql}");
            assert_eq!(
                sorted(rows_of(&outputs, *id)),
                expected,
                "seed {seed}: {sql}"
            );
            assert_eq!(engine.query_metrics(*id).unwrap().late_events_dropped, 0);
        }
    }
}

#[test]
fn a_row_waits_for_both_watermarks_and_old_versions_go() {
    let sql = "SELECT o.symbol, o.price, r.price FROM a AS o LEFT JOIN b FOR SYSTEM_TIME AS OF o.ts AS r \
               ON o.symbol = r.symbol";
    let (mut engine, ids) = engine_with(&[sql]);
    let base = 1_700_000_000_000i64;
    let row = |symbol: &str, price: f64, ms: i64| Trade {
        symbol: symbol.to_string(),
        price,
        ts_ms: base + ms,
    };
    let push = |engine: &mut Engine, stream: &str, rows: &[Trade]| {
        rows_of(&engine.push_json(stream, &ndjson(rows)).unwrap(), ids[0])
    };
    assert!(push(&mut engine, "b", &[row("x", 1.0, 0), row("x", 2.0, 5_000)]).is_empty());
    // The order at 6 s waits: the rates' watermark is at 3 s.
    assert!(push(
        &mut engine,
        "a",
        // An order at a rate's own time reads that rate.
        &[
            row("x", 9.0, 5_000),
            row("x", 10.0, 6_000),
            row("y", 11.0, 6_500)
        ]
    )
    .is_empty());
    assert!(push(&mut engine, "a", &[row("f", 0.0, 20_000)]).is_empty());
    // Both watermarks past 6.5 s: x at 6 s gets the 5 s rate, y none.
    let out = push(&mut engine, "b", &[row("x", 3.0, 9_000)]);
    assert_eq!(
        sorted(out),
        [
            ["x", "1.000000e1", "2.000000e0"],
            ["x", "9.000000e0", "2.000000e0"],
            ["y", "1.100000e1", "NULL"]
        ]
    );
    // The rate at 0 s can no longer be read: only 5 s (valid at the
    // watermark) and 9 s stay.
    let held = &engine.query_metrics(ids[0]).unwrap().joins[0];
    assert_eq!(held.right.rows_held, 2);
    assert_eq!(held.left.rows_held, 1, "the order at 20 s waits");
}

#[test]
fn versions_stay_bounded_by_the_keys() {
    let sql = "SELECT o.symbol, r.price FROM a AS o JOIN b FOR SYSTEM_TIME AS OF o.ts AS r \
               ON o.symbol = r.symbol";
    let (mut engine, ids) = engine_with(&[sql]);
    let base = 1_700_000_000_000i64;
    let mut most = 0;
    for step in 0..300i64 {
        let rows: Vec<Trade> = (0..10)
            .map(|i| Trade {
                symbol: format!("K{}", i % 5),
                price: (step * 10 + i) as f64,
                ts_ms: base + step * 1000 + i * 100,
            })
            .collect();
        engine.push_json("b", &ndjson(&rows)).unwrap();
        engine.push_json("a", &ndjson(&rows)).unwrap();
        let join = &engine.query_metrics(ids[0]).unwrap().joins[0];
        if step > 10 {
            most = most.max(join.right.rows_held);
        }
    }
    // Five keys: each keeps its version valid at the watermark, plus the
    // ~3 s of versions after it (two a second per key).
    assert!(most <= 5 + 5 * 2 * 4, "versions held: {most}");
}

#[test]
fn restore_equals_uninterrupted_at_random_cuts() {
    let queries = queries();
    let (a, b) = feeds(9);
    let pushes: Vec<(&str, String)> = interleaved(&a, &b, 4)
        .into_iter()
        .map(|(s, rows)| (s, ndjson(&rows)))
        .collect();
    for seed in 0..3 {
        assert_restore_equals_uninterrupted(
            || {
                let streaming: Vec<&str> = queries.iter().map(|(s, _)| s.as_str()).collect();
                engine_with(&streaming)
            },
            &pushes,
            seed,
            3,
        );
    }
}

#[test]
fn temporal_joins_that_cannot_run_are_refused() {
    let (mut engine, _) = engine_with(&[]);
    let on = "ON o.symbol = r.symbol";
    for (sql, code, says) in [
        (
            format!("SELECT * FROM b AS o JOIN a FOR SYSTEM_TIME AS OF o.ts AS r {on}"),
            ErrorCode::SqlPlan,
            "PRIMARY KEY",
        ),
        (
            "SELECT * FROM a AS o JOIN b FOR SYSTEM_TIME AS OF o.ts AS r ON o.price = r.price"
                .to_string(),
            ErrorCode::Unsupported,
            "primary key (symbol)",
        ),
        (
            format!("SELECT * FROM a AS o FULL JOIN b FOR SYSTEM_TIME AS OF o.ts AS r {on}"),
            ErrorCode::Unsupported,
            "LEFT JOIN",
        ),
        (
            format!("SELECT * FROM a AS o JOIN b FOR SYSTEM_TIME AS OF o.price AS r {on}"),
            ErrorCode::Unsupported,
            "event-time column (ts)",
        ),
        (
            format!("SELECT * FROM a AS o JOIN b FOR SYSTEM_TIME AS OF PROCTIME() AS r {on}"),
            ErrorCode::Unsupported,
            "processing-time",
        ),
    ] {
        assert_refused(engine.create_query(&sql), code, says);
    }
    assert_refused(
        engine.execute(
            "CREATE STREAM c (k VARCHAR, ts TIMESTAMP, PRIMARY KEY (id) NOT ENFORCED, \
             WATERMARK FOR ts AS ts)",
        ),
        ErrorCode::SqlPlan,
        "'id'",
    );
}

#[test]
fn the_documented_temporal_join_runs_as_documented() {
    // docs/SQL.md, "Temporal joins", verbatim.
    let ddl = "CREATE STREAM rates (currency VARCHAR, rate DOUBLE, ts TIMESTAMP(3),
  PRIMARY KEY (currency) NOT ENFORCED,
  WATERMARK FOR ts AS ts - INTERVAL '2' SECOND)";
    let sql = "SELECT o.id, o.amount * r.rate AS converted, o.ts
FROM orders AS o LEFT JOIN rates FOR SYSTEM_TIME AS OF o.ts AS r
  ON o.currency = r.currency";
    let docs = std::fs::read_to_string("docs/SQL.md").unwrap();
    assert!(
        docs.contains(ddl) && docs.contains(sql),
        "docs/SQL.md changed"
    );
    let mut engine = Engine::new().unwrap();
    engine.execute(ddl).unwrap();
    engine
        .execute(
            "CREATE STREAM orders (id BIGINT, amount DOUBLE, currency VARCHAR, ts TIMESTAMP(3), \
             WATERMARK FOR ts AS ts - INTERVAL '2' SECOND)",
        )
        .unwrap();
    let id = engine.create_query(sql).unwrap();
    let mut outputs = Vec::new();
    for (stream, text) in [
        (
            "rates",
            r#"{"currency":"EUR","rate":1.1,"ts":1000}
{"currency":"EUR","rate":1.2,"ts":5000}"#,
        ),
        (
            "orders",
            r#"{"id":1,"amount":10,"currency":"EUR","ts":4000}
{"id":2,"amount":10,"currency":"EUR","ts":6000}
{"id":3,"amount":10,"currency":"USD","ts":6000}"#,
        ),
        ("rates", r#"{"currency":"EUR","rate":1.3,"ts":20000}"#),
        (
            "orders",
            r#"{"id":4,"amount":10,"currency":"EUR","ts":20000}"#,
        ),
    ] {
        outputs.extend(engine.push_json(stream, text).unwrap());
    }
    // Both watermarks are at 18 s: orders 1 to 3 are out, order 4 waits.
    let early = sorted(rows_of(&outputs, id));
    assert_eq!(
        early,
        [
            ["1", "1.100000e1", "4000"],
            ["2", "1.200000e1", "6000"],
            ["3", "NULL", "6000"]
        ]
    );
    let rest = engine.finish().unwrap();
    assert_eq!(rows_of(&rest, id), [["4", "1.300000e1", "20000"]]);
}

#[test]
fn versioned_reads_only_in_a_temporal_join_and_conditions_on_the_version_only() {
    let (mut engine, _) = engine_with(&[]);
    for (sql, says) in [
        // Filtering the versions first would pick an older one.
        (
            "SELECT * FROM a AS o JOIN b FOR SYSTEM_TIME AS OF o.ts AS r \
             ON o.symbol = r.symbol WHERE r.price > 10",
            "versioned side alone",
        ),
        ("SELECT * FROM b FOR SYSTEM_TIME AS OF ts", "temporal join"),
        (
            "SELECT symbol, count(*) FROM b FOR SYSTEM_TIME AS OF ts GROUP BY symbol",
            "temporal join",
        ),
        (
            "SELECT * FROM a AS o JOIN b FOR SYSTEM_TIME AS OF r.ts AS r ON o.symbol = r.symbol",
            "not r's own",
        ),
        // Two columns named ts on the other side: which is meant is unknown.
        (
            "SELECT * FROM a AS x JOIN a AS y ON x.symbol = y.symbol \
             AND y.ts BETWEEN x.ts AND x.ts + INTERVAL '1' SECOND \
             JOIN b FOR SYSTEM_TIME AS OF y.ts AS r ON x.symbol = r.symbol",
            "several columns named ts",
        ),
    ] {
        assert_refused(engine.create_query(sql), ErrorCode::Unsupported, says);
    }
    // A condition on the orders alone, and columns DataFusion drops from
    // the scans: the join still reads both times.
    let sql = "SELECT r.price FROM a AS o JOIN b FOR SYSTEM_TIME AS OF o.ts AS r \
               ON o.symbol = r.symbol WHERE o.price > 500";
    let (a, b) = feeds(3);
    let (mut engine, ids) = engine_with(&[sql]);
    let outputs = run_pushes(&mut engine, &interleaved(&a, &b, 1));
    let batch = "SELECT r.price FROM a o JOIN (SELECT a2.symbol AS s, a2.ts AS t, max(b2.ts) AS vt FROM a a2 \
         JOIN b b2 ON b2.symbol = a2.symbol AND b2.ts <= a2.ts GROUP BY a2.symbol, a2.ts) m \
         ON m.s = o.symbol AND m.t = o.ts JOIN b r ON r.symbol = o.symbol AND r.ts = m.vt WHERE o.price > 500";
    let expected = batch_ab(&a, &b, batch);
    assert!(!expected.is_empty());
    assert_eq!(sorted(rows_of(&outputs, ids[0])), expected);
    // Flink's column-level primary key.
    engine
        .execute(
            "CREATE TABLE c (k STRING PRIMARY KEY NOT ENFORCED, v INT, ts TIMESTAMP, \
             WATERMARK FOR ts AS ts)",
        )
        .unwrap();
    assert!(engine
        .explain("SELECT * FROM a AS o JOIN c FOR SYSTEM_TIME AS OF o.ts AS r ON o.symbol = r.k")
        .unwrap()
        .contains("TemporalJoin"));
}
