//! Flink's window table function syntax (issue 21): `TABLE(TUMBLE(TABLE t,
//! DESCRIPTOR(ts), ...))`, named arguments, `SESSION(TABLE t PARTITION BY
//! k, ...)`, in queries, views and INSERT INTO. Each form must give exactly
//! the rows of Riffle's own syntax on the same pushes (tests/flink_parity.rs
//! runs the goldens' Flink SQL against Flink's results).

mod common;

use common::{assert_refused, ndjson, rows_of, sorted, trades, TRADES_DDL};
use riffle::{Engine, ErrorCode};

/// (Flink's form, Riffle's) of the same query.
const PAIRS: [(&str, &str); 6] = [
    (
        "SELECT symbol, window_start, window_end, count(*) AS n, sum(price) AS total \
         FROM TABLE(TUMBLE(TABLE trades, DESCRIPTOR(ts), INTERVAL '10' SECOND)) GROUP BY symbol, window_start, window_end",
        "SELECT symbol, window_start, window_end, count(*) AS n, sum(price) AS total \
         FROM TUMBLE(trades, ts, INTERVAL '10' SECOND) GROUP BY symbol, window_start, window_end",
    ),
    (
        "SELECT window_start, max(price) AS hi FROM TABLE(HOP(\
           DATA => TABLE trades, TIMECOL => DESCRIPTOR(ts), SIZE => INTERVAL '30' SECOND, SLIDE => INTERVAL '10' SECOND)) \
         GROUP BY window_start, window_end",
        "SELECT window_start, max(price) AS hi FROM HOP(trades, ts, INTERVAL '10' SECOND, INTERVAL '30' SECOND) \
         GROUP BY window_start, window_end",
    ),
    (
        "SELECT symbol, window_end, count(*) AS n FROM TABLE(CUMULATE(TABLE trades, DESCRIPTOR(ts), \
           STEP => INTERVAL '5' SECOND, SIZE => INTERVAL '20' SECOND, OFFSET => INTERVAL '2' SECOND)) \
         GROUP BY symbol, window_start, window_end",
        "SELECT symbol, window_end, count(*) AS n FROM CUMULATE(trades, ts, INTERVAL '5' SECOND, INTERVAL '20' SECOND, INTERVAL '2' SECOND) \
         GROUP BY symbol, window_start, window_end",
    ),
    // Sessions per key.
    (
        "SELECT symbol, window_start, window_end, count(*) AS n FROM TABLE(SESSION(\
           TABLE trades PARTITION BY symbol, DESCRIPTOR(ts), INTERVAL '3' SECOND)) \
         GROUP BY symbol, window_start, window_end",
        "SELECT symbol, window_start, window_end, count(*) AS n FROM SESSION(trades, ts, INTERVAL '3' SECOND) \
         GROUP BY symbol, window_start, window_end",
    ),
    // Sessions over all rows.
    (
        "SELECT window_start, window_end, count(*) AS n FROM TABLE(SESSION(\
           TABLE trades, DESCRIPTOR(ts), INTERVAL '1' SECOND)) GROUP BY window_start, window_end",
        "SELECT window_start, window_end, count(*) AS n FROM SESSION(trades, ts, INTERVAL '1' SECOND) \
         GROUP BY window_start, window_end",
    ),
    // Rows of the window function themselves, and lower-case names.
    (
        "select symbol, price, window_start from table(tumble(table trades, descriptor(ts), interval '10' second)) where price > 900",
        "select symbol, price, window_start from tumble(trades, ts, interval '10' second) where price > 900",
    ),
];

#[test]
fn flinks_window_syntax_gives_riffles_results() {
    let events = trades(5, 3_000, 6, 170, 900);
    let mut engine = Engine::new().unwrap();
    engine.execute(TRADES_DDL).unwrap();
    let ids: Vec<_> = PAIRS
        .iter()
        .map(|(flink, riffle)| {
            (
                engine.create_query(flink).unwrap(),
                engine.create_query(riffle).unwrap(),
            )
        })
        .collect();
    let mut outputs = Vec::new();
    for chunk in events.chunks(97) {
        outputs.extend(engine.push_json("trades", &ndjson(chunk)).unwrap());
    }
    outputs.extend(engine.finish().unwrap());
    for ((flink, _), (a, b)) in PAIRS.iter().zip(ids) {
        let ours = sorted(rows_of(&outputs, a));
        assert!(!ours.is_empty(), "{flink}");
        assert_eq!(ours, sorted(rows_of(&outputs, b)), "{flink}");
    }
}

#[test]
fn views_and_jobs_take_flinks_syntax() {
    let mut engine = Engine::new().unwrap();
    engine.execute(TRADES_DDL).unwrap();
    engine
        .execute(
            "CREATE TEMPORARY VIEW per_10s AS SELECT symbol, window_time AS rowtime, count(*) AS n \
             FROM TABLE(TUMBLE(TABLE trades, DESCRIPTOR(ts), INTERVAL '10' SECOND)) \
             GROUP BY symbol, window_start, window_end, window_time",
        )
        .unwrap();
    engine
        .execute(
            "CREATE STREAM minutes (symbol VARCHAR, n BIGINT, t TIMESTAMP(3), WATERMARK FOR t AS t)",
        )
        .unwrap();
    engine
        .execute(
            "INSERT INTO minutes SELECT symbol, sum(n), window_time \
             FROM TABLE(TUMBLE(TABLE per_10s, DESCRIPTOR(rowtime), INTERVAL '1' MINUTE)) \
             GROUP BY symbol, window_start, window_end, window_time",
        )
        .unwrap();
    let total = engine
        .create_query("SELECT sum(n) AS n FROM minutes")
        .unwrap();
    let events = trades(8, 1_000, 4, 200, 900);
    let mut outputs = engine.push_json("trades", &ndjson(&events)).unwrap();
    outputs.extend(engine.finish().unwrap());
    let last = rows_of(&outputs, total).pop().unwrap();
    assert_eq!(last[0], "1000", "every event counted once: {last:?}");
}

#[test]
fn what_does_not_fit_is_refused_with_what_to_write() {
    let mut engine = Engine::new().unwrap();
    engine.execute(TRADES_DDL).unwrap();
    let refused = |engine: &mut Engine, sql: &str, code: ErrorCode, says: &str| {
        assert_refused(engine.create_query(sql), code, says);
    };
    // Riffle's sessions are per GROUP BY key; Flink's are per PARTITION BY key.
    refused(
        &mut engine,
        "SELECT symbol, window_start, count(*) FROM TABLE(SESSION(TABLE trades, DESCRIPTOR(ts), INTERVAL '1' SECOND)) \
         GROUP BY symbol, window_start, window_end",
        ErrorCode::Unsupported,
        "over all rows",
    );
    refused(
        &mut engine,
        "SELECT window_start, count(*) FROM TABLE(SESSION(TABLE trades PARTITION BY symbol, DESCRIPTOR(ts), INTERVAL '1' SECOND)) \
         GROUP BY window_start, window_end",
        ErrorCode::Unsupported,
        "PARTITION BY must name the keys",
    );
    refused(
        &mut engine,
        "SELECT window_start, count(*) FROM TABLE(TUMBLE(TABLE trades, DESCRIPTOR(ts), WIDTH => INTERVAL '1' SECOND)) GROUP BY window_start",
        ErrorCode::SqlParse,
        "no parameter WIDTH",
    );
    refused(
        &mut engine,
        "SELECT window_start, count(*) FROM TABLE(TUMBLE(TABLE nowhere, DESCRIPTOR(ts), INTERVAL '1' SECOND)) GROUP BY window_start",
        ErrorCode::UnknownStream,
        "nowhere",
    );
    // A key renamed on the way is not the PARTITION BY column.
    refused(
        &mut engine,
        "SELECT symbol, window_start, count(*) FROM (SELECT price AS symbol, window_start, window_end \
           FROM TABLE(SESSION(TABLE trades PARTITION BY symbol, DESCRIPTOR(ts), INTERVAL '1' SECOND))) \
         GROUP BY symbol, window_start, window_end",
        ErrorCode::Unsupported,
        "PARTITION BY must name the keys",
    );
    // Sessions of different partitionings cannot be one window.
    refused(
        &mut engine,
        "SELECT symbol, window_start, count(*) FROM ( \
           SELECT symbol, window_start, window_end FROM TABLE(SESSION(TABLE trades, DESCRIPTOR(ts), INTERVAL '1' SECOND)) \
           UNION ALL SELECT symbol, window_start, window_end FROM SESSION(trades, ts, INTERVAL '1' SECOND)) \
         GROUP BY symbol, window_start, window_end",
        ErrorCode::Unsupported,
        "SESSION",
    );
    // As Flink: a HOP whose size is not a whole multiple of its slide.
    refused(
        &mut engine,
        "SELECT window_start, count(*) FROM TABLE(HOP(TABLE trades, DESCRIPTOR(ts), INTERVAL '3' SECOND, INTERVAL '10' SECOND)) \
         GROUP BY window_start, window_end",
        ErrorCode::Unsupported,
        "whole multiple",
    );
}

/// Flink's DDL: `CREATE TABLE` with Flink's type names, a watermark and
/// connector options, which are kept and shown, not used.
#[test]
fn flinks_create_table_declares_a_stream() {
    let mut engine = Engine::new().unwrap();
    engine
        .execute(
            "CREATE TEMPORARY TABLE trades (symbol STRING, price DOUBLE, qty INT, big BOOLEAN, ts TIMESTAMP(3), \
             WATERMARK FOR ts AS ts - INTERVAL '2' SECOND) \
             WITH ('connector' = 'kafka', 'topic' = 'trades', 'format' = 'json')",
        )
        .unwrap();
    let sql = "SELECT symbol, window_start, count(*) AS n, sum(qty) AS qty \
               FROM TABLE(TUMBLE(TABLE trades, DESCRIPTOR(ts), INTERVAL '1' SECOND)) \
               GROUP BY symbol, window_start, window_end";
    let plan = engine.explain(sql).unwrap();
    assert!(
        plan.contains(
            "WITH ('connector' = 'kafka', 'topic' = 'trades', 'format' = 'json') kept, not used"
        ),
        "{plan}"
    );
    let id = engine.create_query(sql).unwrap();
    let rows = r#"{"symbol":"A","price":1.5,"qty":3,"big":false,"ts":100}
{"symbol":"A","price":2.5,"qty":4,"big":true,"ts":900}
{"symbol":"B","price":1,"qty":1,"big":false,"ts":1500}
"#;
    let mut outputs = engine.push_json("trades", rows).unwrap();
    outputs.extend(engine.finish().unwrap());
    let got = sorted(rows_of(&outputs, id));
    assert_eq!(got.len(), 2, "{got:?}");
    assert_eq!(got[0][0], "A");
    assert_eq!(got[0][2..], ["2", "7"]);
    // Riffle's own options still apply; unknown ones are named.
    let error = engine
        .execute("CREATE TABLE t (ts TIMESTAMP(3), WATERMARK FOR ts AS ts) WITH (idle = INTERVAL '1' SECOND)")
        .unwrap_err();
    assert!(
        error.message().contains("unknown stream option 'idle'"),
        "{error}"
    );
}
