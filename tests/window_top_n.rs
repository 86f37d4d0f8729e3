//! Flink's Window Top-N and window deduplication (issue 21): ROW_NUMBER(),
//! RANK() and DENSE_RANK() OVER (PARTITION BY window_start, window_end ...
//! ORDER BY ...) over window table function rows and over windowed
//! aggregates, each window's rows ranked when it closes. Against the same
//! SQL as batch, at random push sizes; restore ≡ uninterrupted; late rows;
//! state bounded by the limit; refusals.

mod common;

use common::{
    assert_refused, assert_restore_equals_uninterrupted, batch_sql, hop_copies_sql, ndjson,
    rows_of, sorted, stream, trades, TRADES_DDL,
};
use riffle::{Engine, ErrorCode, QueryId};

/// `TUMBLE(trades, ts, INTERVAL '<secs>' SECOND)` as batch SQL over `t`.
fn tumble_sql(secs: i64) -> String {
    format!(
        "(SELECT *, date_bin(INTERVAL '{secs} seconds', ts, TIMESTAMP '1970-01-01') AS window_start, \
         date_bin(INTERVAL '{secs} seconds', ts, TIMESTAMP '1970-01-01') + INTERVAL '{secs} seconds' AS window_end \
         FROM t)"
    )
}

const TUMBLE: &str = "TUMBLE(trades, ts, INTERVAL '2' SECOND)";

/// (streaming SQL, the same as batch SQL).
fn queries() -> Vec<(String, String)> {
    let per_symbol = format!(
        "SELECT symbol, window_start, window_end, count(*) AS n, sum(price) AS total \
         FROM {TUMBLE} GROUP BY symbol, window_start, window_end"
    );
    let streaming = vec![
        // Top 2 symbols by traded value per window (Top-N over a windowed aggregate).
        format!(
            "SELECT * FROM (SELECT symbol, window_start, n, total, ROW_NUMBER() OVER \
             (PARTITION BY window_start, window_end ORDER BY total DESC) AS rownum FROM ({per_symbol})) \
             WHERE rownum <= 2"
        ),
        // The 3 dearest trades per symbol and window (Top-N over TVF rows),
        // a condition beside the limit.
        format!(
            "SELECT symbol, price, ts, window_start, rn FROM (SELECT *, ROW_NUMBER() OVER \
             (PARTITION BY window_start, window_end, symbol ORDER BY price DESC, ts) AS rn \
             FROM {TUMBLE}) WHERE rn <= 3 AND price > 100"
        ),
        // Window deduplication: each symbol's first trade per window.
        format!(
            "SELECT symbol, price, ts, window_end FROM (SELECT *, ROW_NUMBER() OVER \
             (PARTITION BY symbol, window_start, window_end ORDER BY ts, price) AS rn \
             FROM {TUMBLE}) WHERE rn = 1"
        ),
        // RANK and DENSE_RANK share ties (counts per symbol tie often).
        format!(
            "SELECT symbol, window_start, n, r FROM (SELECT symbol, window_start, window_end, n, \
             RANK() OVER (PARTITION BY window_start, window_end ORDER BY n) AS r FROM ({per_symbol})) \
             WHERE r < 3"
        ),
        format!(
            "SELECT symbol, window_start, n, DENSE_RANK() OVER (PARTITION BY window_start, window_end \
             ORDER BY n DESC) AS d FROM ({per_symbol})"
        ),
    ];
    streaming
        .into_iter()
        .map(|sql| {
            let batch = sql.replace(TUMBLE, &tumble_sql(2));
            (sql, batch)
        })
        .collect()
}

fn engine_with(queries: &[String]) -> (Engine, Vec<QueryId>) {
    let mut engine = Engine::new().unwrap();
    engine.execute(TRADES_DDL).unwrap();
    let ids = queries
        .iter()
        .map(|sql| engine.create_query(sql).unwrap())
        .collect();
    (engine, ids)
}

#[test]
fn window_rankings_equal_batch_sql_at_random_push_sizes() {
    let cases = queries();
    let sqls: Vec<String> = cases.iter().map(|c| c.0.clone()).collect();
    for seed in 0..3 {
        let data = trades(seed, 3000, 6, 7, 1900);
        let (mut engine, ids) = engine_with(&sqls);
        let outputs = stream(&mut engine, &data, seed + 5, [1, 40, 700][seed as usize]);
        for ((sql, batch), id) in cases.iter().zip(&ids) {
            let expected = batch_sql(&data, batch);
            assert!(expected.len() > 20, "{sql}: {} rows", expected.len());
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
fn a_window_is_ranked_once_when_it_closes() {
    let (mut engine, ids) = engine_with(&[format!(
        "SELECT symbol, price, rn FROM (SELECT *, ROW_NUMBER() OVER \
         (PARTITION BY window_start, window_end ORDER BY price DESC) AS rn FROM {TUMBLE}) WHERE rn <= 2"
    )]);
    let base = 1_700_000_000_000i64;
    let push = |engine: &mut Engine, rows: &[(&str, f64, i64)]| {
        let text: String = rows
            .iter()
            .map(|(s, p, ms)| {
                format!(
                    "{{\"symbol\":\"{s}\",\"price\":{p},\"ts\":{}}}\n",
                    base + ms
                )
            })
            .collect();
        rows_of(&engine.push_json("trades", &text).unwrap(), ids[0])
    };
    // The window [0 s, 2 s) takes rows until the watermark (ts - 2 s)
    // reaches 2 s - 1 ms.
    assert!(push(
        &mut engine,
        &[("a", 5.0, 0), ("b", 9.0, 500), ("c", 7.0, 1900)]
    )
    .is_empty());
    assert!(push(&mut engine, &[("d", 8.0, 3998)]).is_empty());
    assert_eq!(
        push(&mut engine, &[("e", 1.0, 3999)]),
        [["b", "9.000000e0", "1"], ["c", "7.000000e0", "2"]]
    );
    // Its rows are late now: dropped and counted.
    assert!(push(&mut engine, &[("f", 99.0, 100)]).is_empty());
    assert_eq!(engine.query_metrics(ids[0]).unwrap().late_events_dropped, 1);
    assert_eq!(
        rows_of(&engine.finish().unwrap(), ids[0]),
        [["d", "8.000000e0", "1"], ["e", "1.000000e0", "2"]]
    );
    let plan = engine
        .explain(&format!(
            "SELECT * FROM (SELECT *, RANK() OVER (PARTITION BY window_start, window_end ORDER BY price) AS r \
             FROM {TUMBLE}) WHERE r <= 5"
        ))
        .unwrap();
    assert!(plan.contains("WindowRank: rank() partition by"), "{plan}");
    assert!(plan.contains("top 5"), "{plan}");
}

#[test]
fn hop_rows_rank_in_every_window_they_belong_to() {
    let sql = "SELECT symbol, price, window_start, rn FROM (SELECT *, ROW_NUMBER() OVER \
               (PARTITION BY window_start, window_end ORDER BY price DESC, ts) AS rn \
               FROM HOP(trades, ts, INTERVAL '1' SECOND, INTERVAL '3' SECOND)) WHERE rn <= 2";
    let batch = format!(
        "SELECT symbol, price, ws, rn FROM (SELECT *, ROW_NUMBER() OVER \
         (PARTITION BY ws ORDER BY price DESC, ts) AS rn FROM ({})) WHERE rn <= 2",
        hop_copies_sql(1, 3)
    );
    let data = trades(9, 1500, 5, 11, 1900);
    let (mut engine, ids) = engine_with(&[sql.to_string()]);
    let outputs = stream(&mut engine, &data, 3, 50);
    let expected = batch_sql(&data, &batch);
    assert!(expected.len() > 20, "{} rows", expected.len());
    assert_eq!(sorted(rows_of(&outputs, ids[0])), expected);
}

#[test]
fn ranking_state_stays_bounded_by_the_limit_and_survives_checkpoints() {
    // One long window, many rows: a top 3 keeps about 2 x 1024 rows, not all.
    let sql = "SELECT symbol, price, rn FROM (SELECT *, ROW_NUMBER() OVER \
               (PARTITION BY window_start, window_end, symbol ORDER BY price DESC, ts) AS rn \
               FROM TUMBLE(trades, ts, INTERVAL '1' HOUR)) WHERE rn <= 3";
    let data = trades(4, 30_000, 4, 1, 1900);
    let (mut engine, ids) = engine_with(&[sql.to_string()]);
    for chunk in data.chunks(1000) {
        engine.push_json("trades", &ndjson(chunk)).unwrap();
    }
    let unlimited = 30_000 * (8 + 8 + 16 + 3);
    let held = engine.query_metrics(ids[0]).unwrap().state_bytes;
    assert!(held * 5 < unlimited, "held {held} bytes");
    let outputs = engine.finish().unwrap();
    let batch = format!(
        "SELECT symbol, price, rn FROM (SELECT *, ROW_NUMBER() OVER \
         (PARTITION BY window_start, symbol ORDER BY price DESC, ts) AS rn FROM {}) WHERE rn <= 3",
        tumble_sql(3600)
    );
    assert_eq!(sorted(rows_of(&outputs, ids[0])), batch_sql(&data, &batch));
    // Restored, a ranking cuts its windows where the uninterrupted one does
    // (the metrics compared include the state's size).
    let pushes: Vec<(&str, String)> = data.chunks(1000).map(|c| ("trades", ndjson(c))).collect();
    assert_restore_equals_uninterrupted(|| engine_with(&[sql.to_string()]), &pushes, 1, 3);
    // Restore ≡ uninterrupted, for every ranking.
    let cases = queries();
    let sqls: Vec<String> = cases.iter().map(|c| c.0.clone()).collect();
    let data = trades(12, 1500, 6, 7, 1900);
    let pushes: Vec<(&str, String)> = data.chunks(37).map(|c| ("trades", ndjson(c))).collect();
    for seed in 0..3 {
        assert_restore_equals_uninterrupted(|| engine_with(&sqls), &pushes, seed, 4);
    }
}

#[test]
fn rankings_that_cannot_run_on_a_stream_are_refused() {
    let (mut engine, _) = engine_with(&[]);
    for (sql, says) in [
        (
            "SELECT *, ROW_NUMBER() OVER (PARTITION BY symbol ORDER BY price) FROM trades",
            "PARTITION BY window_start, window_end",
        ),
        (
            "SELECT *, ROW_NUMBER() OVER (PARTITION BY window_start ORDER BY price) FROM TUMBLE(trades, ts, INTERVAL '1' SECOND)",
            "PARTITION BY window_start, window_end",
        ),
        (
            "SELECT *, ROW_NUMBER() OVER (PARTITION BY window_start, window_end) FROM TUMBLE(trades, ts, INTERVAL '1' SECOND)",
            "needs an ORDER BY",
        ),
        (
            "SELECT *, sum(price) OVER (PARTITION BY window_start, window_end ORDER BY ts) FROM TUMBLE(trades, ts, INTERVAL '1' SECOND)",
            "ranks windowed rows",
        ),
        (
            "SELECT * FROM (SELECT symbol, n, ROW_NUMBER() OVER (PARTITION BY symbol ORDER BY n) AS r \
             FROM (SELECT symbol, count(*) AS n FROM trades GROUP BY symbol)) WHERE r = 1",
            "changelog",
        ),
        (
            "SELECT *, ROW_NUMBER() OVER (PARTITION BY window_start, window_end ORDER BY price) \
             FROM SESSION(trades, ts, INTERVAL '1' SECOND)",
            "SESSION rows",
        ),
    ] {
        assert_refused(engine.create_query(sql), ErrorCode::Unsupported, says);
    }
}

#[test]
fn the_documented_top_n_runs_as_documented() {
    // docs/SQL.md, "Window Top-N and deduplication", verbatim.
    let sql = "SELECT * FROM (
  SELECT symbol, window_start, total,
    ROW_NUMBER() OVER (PARTITION BY window_start, window_end ORDER BY total DESC) AS rownum
  FROM (SELECT symbol, window_start, window_end, sum(price * qty) AS total
        FROM TUMBLE(trades, ts, INTERVAL '1' MINUTE) GROUP BY symbol, window_start, window_end))
WHERE rownum <= 3";
    let docs = std::fs::read_to_string("docs/SQL.md").unwrap();
    assert!(docs.contains(sql), "docs/SQL.md no longer shows: {sql}");
    let mut engine = Engine::new().unwrap();
    engine
        .execute(
            "CREATE STREAM trades (symbol VARCHAR, price DOUBLE, qty BIGINT, ts TIMESTAMP(3), \
             WATERMARK FOR ts AS ts - INTERVAL '1' SECOND)",
        )
        .unwrap();
    let id = engine.create_query(sql).unwrap();
    let rows: String = [
        ("A", 10.0, 1, 0),
        ("B", 5.0, 4, 1_000),
        ("C", 1.0, 1, 2_000),
        ("D", 3.0, 3, 3_000),
        ("A", 1.0, 1, 4_000),
        ("E", 2.0, 1, 70_000),
    ]
    .iter()
    .map(|(s, p, q, ts)| format!("{{\"symbol\":\"{s}\",\"price\":{p},\"qty\":{q},\"ts\":{ts}}}\n"))
    .collect();
    let mut out = engine.push_json("trades", &rows).unwrap();
    out.extend(engine.finish().unwrap());
    // Minute 0: B 20, A 11, D 9, C 1; minute 1: E 2.
    let got: Vec<Vec<String>> = rows_of(&out, id)
        .into_iter()
        .map(|r| vec![r[0].clone(), r[3].clone()])
        .collect();
    assert_eq!(got, [["B", "1"], ["A", "2"], ["D", "3"], ["E", "1"]]);
}

#[test]
fn ranked_window_rows_keep_their_event_time_for_what_follows() {
    // The top 2 trades of each 2 s window, as a view whose rows keep their
    // own ts: windowed again by ts in 500 ms windows, none of them is late (the ranking holds
    // its watermark back by the window it waits for).
    let data = trades(14, 2000, 5, 9, 1900);
    let (mut engine, _) = engine_with(&[]);
    engine
        .execute(&format!(
            "CREATE VIEW top2 AS SELECT symbol, price, ts FROM (SELECT *, ROW_NUMBER() OVER \
             (PARTITION BY window_start, window_end ORDER BY price DESC, ts) AS rn FROM {TUMBLE}) \
             WHERE rn <= 2"
        ))
        .unwrap();
    let id = engine
        .create_query(
            "SELECT window_start, count(*) AS n, max(price) AS top FROM TUMBLE(top2, ts, INTERVAL '500' MILLISECOND) \
             GROUP BY window_start",
        )
        .unwrap();
    let outputs = stream(&mut engine, &data, 2, 60);
    let batch = format!(
        "SELECT date_bin(INTERVAL '500 milliseconds', ts, TIMESTAMP '1970-01-01'), count(*), max(price) FROM \
         (SELECT *, ROW_NUMBER() OVER (PARTITION BY window_start ORDER BY price DESC, ts) AS rn FROM {}) \
         WHERE rn <= 2 GROUP BY 1",
        tumble_sql(2)
    );
    let expected = batch_sql(&data, &batch);
    assert!(expected.len() > 3);
    assert_eq!(sorted(rows_of(&outputs, id)), expected);
    assert_eq!(engine.query_metrics(id).unwrap().late_events_dropped, 0);
}

#[test]
fn a_row_whose_ranking_key_fails_fails_its_own_push() {
    // ORDER BY 100 / (price - 50) divides by zero for a price of 50: the
    // push bringing it fails and changes nothing, instead of every later
    // push failing when its window closes.
    let sql = format!(
        "SELECT symbol, rn FROM (SELECT *, ROW_NUMBER() OVER (PARTITION BY window_start, window_end \
         ORDER BY 100 / (CAST(price AS BIGINT) - 50)) AS rn FROM {TUMBLE}) WHERE rn <= 1"
    );
    let (mut engine, ids) = engine_with(&[sql]);
    let base = 1_700_000_000_000i64;
    let row = |s: &str, p: f64, ms: i64| {
        format!(
            "{{\"symbol\":\"{s}\",\"price\":{p},\"ts\":{}}}\n",
            base + ms
        )
    };
    engine.push_json("trades", &row("a", 60.0, 0)).unwrap();
    assert!(engine.push_json("trades", &row("bad", 50.0, 10)).is_err());
    engine.push_json("trades", &row("b", 70.0, 20)).unwrap();
    let out = engine.finish().unwrap();
    // 100 / 10 = 10, 100 / 20 = 5: b ranks first.
    assert_eq!(rows_of(&out, ids[0]), [["b", "1"]]);
}
