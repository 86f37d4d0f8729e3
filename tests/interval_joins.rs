//! Interval joins of two streams (issue 20): every join kind against the
//! same join run as batch SQL on the same data, with disorder inside the
//! watermark delay on both sides, random push sizes and random
//! interleavings of the two streams; state bounded by the watermarks;
//! checkpoints; late rows; joins refused at planning.

mod common;

use common::{
    assert_refused, assert_restore_equals_uninterrupted, batch_ab, finely_interleaved, interleaved,
    materialised, ndjson, netted, rows_of, run_pushes, sorted, trades, Trade,
};

/// Two feeds out of order by up to just under the 2 s watermark delay, so
/// rows arrive as late as they may without being late: a join that lets a
/// row go a moment too early loses matches.
fn feeds(seed: u64) -> (Vec<Trade>, Vec<Trade>) {
    (
        trades(seed, 700, 4, 97, 1990),
        trades(seed + 1, 500, 3, 131, 1990),
    )
}

use riffle::{Engine, ErrorCode, QueryId, QueryOptions};

const A_DDL: &str = "CREATE STREAM a (symbol VARCHAR, price DOUBLE, ts TIMESTAMP, \
     WATERMARK FOR ts AS ts - INTERVAL '2' SECOND)";
const B_DDL: &str = "CREATE STREAM b (symbol VARCHAR, price DOUBLE, ts TIMESTAMP, \
     WATERMARK FOR ts AS ts - INTERVAL '2' SECOND)";

fn engine_with(queries: &[&str]) -> (Engine, Vec<QueryId>) {
    let mut engine = Engine::new().unwrap();
    engine.execute(A_DDL).unwrap();
    engine.execute(B_DDL).unwrap();
    let ids = queries
        .iter()
        .map(|sql| engine.create_query(sql).unwrap())
        .collect();
    (engine, ids)
}

const COLUMNS: &str = "a.symbol, a.price, a.ts, b.symbol, b.price, b.ts";
const BOUND: &str = "b.ts BETWEEN a.ts - INTERVAL '1' SECOND AND a.ts + INTERVAL '2' SECOND";

/// Every join kind, with BETWEEN and with strict bounds written either way
/// round, with and without a residual condition, with and without keys.
fn join_queries() -> Vec<String> {
    let mut queries = Vec::new();
    for kind in ["JOIN", "LEFT JOIN", "RIGHT JOIN", "FULL JOIN"] {
        queries.push(format!(
            "SELECT {COLUMNS} FROM a {kind} b ON a.symbol = b.symbol AND {BOUND}"
        ));
    }
    queries.extend([
        // Strict bounds, the interval on either side of the comparison.
        format!(
            "SELECT {COLUMNS} FROM a LEFT JOIN b ON a.symbol = b.symbol \
             AND a.ts < b.ts AND b.ts - INTERVAL '1500' MILLISECOND < a.ts"
        ),
        // The right side only before the left; a residual condition.
        format!(
            "SELECT {COLUMNS} FROM a FULL JOIN b ON a.symbol = b.symbol \
             AND b.ts >= a.ts - INTERVAL '3' SECOND AND b.ts <= a.ts - INTERVAL '1' SECOND \
             AND a.price > b.price"
        ),
        // No equality key: a nested-loop join to DataFusion.
        format!(
            "SELECT {COLUMNS} FROM a JOIN b ON b.ts BETWEEN a.ts - INTERVAL '200' MILLISECOND \
             AND a.ts + INTERVAL '100' MILLISECOND"
        ),
        // Expressions over both sides in the SELECT.
        "SELECT a.symbol, b.price - a.price AS spread, a.ts FROM a JOIN b \
         ON a.symbol = b.symbol AND b.ts BETWEEN a.ts AND a.ts + INTERVAL '1' SECOND \
         WHERE b.price > 10"
            .to_string(),
        // Semi and anti joins.
        "SELECT a.symbol, a.price, a.ts FROM a WHERE EXISTS (SELECT 1 FROM b \
         WHERE b.symbol = a.symbol AND b.ts BETWEEN a.ts - INTERVAL '1' SECOND AND a.ts)"
            .to_string(),
        "SELECT a.symbol, a.price, a.ts FROM a WHERE NOT EXISTS (SELECT 1 FROM b \
         WHERE b.symbol = a.symbol AND b.ts BETWEEN a.ts - INTERVAL '1' SECOND AND a.ts)"
            .to_string(),
        // A semi join with a residual condition.
        "SELECT a.symbol, a.price, a.ts FROM a WHERE EXISTS (SELECT 1 FROM b \
         WHERE b.symbol = a.symbol AND b.price > a.price \
         AND b.ts BETWEEN a.ts - INTERVAL '2' SECOND AND a.ts + INTERVAL '1' SECOND)"
            .to_string(),
        // Bounds that contradict each other: nothing matches, all padded.
        format!(
            "SELECT {COLUMNS} FROM a LEFT JOIN b ON a.symbol = b.symbol \
             AND b.ts BETWEEN a.ts + INTERVAL '2' SECOND AND a.ts + INTERVAL '1' SECOND"
        ),
        // Three inputs: the second join bounds b's copy by a's time.
        format!(
            "SELECT {COLUMNS}, c.price FROM a JOIN b ON a.symbol = b.symbol AND {BOUND} \
             JOIN b AS c ON c.symbol = a.symbol \
             AND c.ts BETWEEN a.ts - INTERVAL '300' MILLISECOND AND a.ts"
        ),
    ]);
    queries
}

#[test]
fn every_join_kind_equals_batch_sql_at_random_interleavings() {
    let queries = join_queries();
    let refs: Vec<&str> = queries.iter().map(String::as_str).collect();
    for seed in 0..4 {
        let (a, b) = feeds(seed);
        let (mut engine, ids) = engine_with(&refs);
        let pushes = if seed % 2 == 0 {
            finely_interleaved(&a, &b, seed + 10)
        } else {
            interleaved(&a, &b, seed + 10)
        };
        let outputs = run_pushes(&mut engine, &pushes);
        for (sql, id) in queries.iter().zip(&ids) {
            let expected = batch_ab(&a, &b, sql);
            assert!(
                !expected.is_empty(),
                "seed {seed}: the data must give {sql} rows"
            );
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
fn a_join_does_not_depend_on_which_stream_is_pushed_first() {
    let (a, b) = feeds(5);
    let sql = format!("SELECT {COLUMNS} FROM a FULL JOIN b ON a.symbol = b.symbol AND {BOUND}");
    let run = |pushes: Vec<(&str, Vec<Trade>)>| {
        let (mut engine, ids) = engine_with(&[&sql]);
        sorted(rows_of(&run_pushes(&mut engine, &pushes), ids[0]))
    };
    let a_first = run(vec![("a", a.clone()), ("b", b.clone())]);
    let b_first = run(vec![("b", b.clone()), ("a", a.clone())]);
    assert_eq!(a_first, b_first);
    assert_eq!(a_first, batch_ab(&a, &b, &sql));
}

#[test]
fn equal_times_join_as_an_equality_key() {
    // Times on a 250 ms grid, so equal times are common.
    let grid = |rows: Vec<Trade>| -> Vec<Trade> {
        rows.into_iter()
            .map(|t| Trade {
                ts_ms: t.ts_ms / 250 * 250,
                ..t
            })
            .collect()
    };
    let (a, b) = (
        grid(trades(3, 400, 3, 97, 300)),
        grid(trades(4, 300, 3, 131, 300)),
    );
    for kind in ["JOIN", "FULL JOIN"] {
        let sql =
            format!("SELECT {COLUMNS} FROM a {kind} b ON a.symbol = b.symbol AND a.ts = b.ts");
        let (mut engine, ids) = engine_with(&[&sql]);
        let outputs = run_pushes(&mut engine, &interleaved(&a, &b, 2));
        let expected = batch_ab(&a, &b, &sql);
        assert!(expected.iter().any(|r| r[0] != "NULL" && r[3] != "NULL"));
        assert_eq!(sorted(rows_of(&outputs, ids[0])), expected, "{sql}");
    }
}

#[test]
fn a_joined_stream_feeds_a_window() {
    // The join's rows carry a's event time, under a watermark held back by
    // the join's bound: no row is late for the window after it.
    let (a, b) = feeds(8);
    let view = format!(
        "CREATE VIEW pairs AS SELECT a.symbol, a.price AS pa, b.price AS pb, a.ts \
         FROM a JOIN b ON a.symbol = b.symbol AND {BOUND}"
    );
    let windowed = "SELECT symbol, window_start, count(*) AS n, sum(pb - pa) AS spread \
         FROM TUMBLE(pairs, ts, INTERVAL '5' SECOND) GROUP BY symbol, window_start";
    let batch = format!(
        "SELECT symbol, window_start, count(*) AS n, sum(pb - pa) AS spread FROM ( \
           SELECT a.symbol, a.price AS pa, b.price AS pb, \
             date_bin(INTERVAL '5 seconds', a.ts, TIMESTAMP '1970-01-01') AS window_start \
           FROM a JOIN b ON a.symbol = b.symbol AND {BOUND}) \
         GROUP BY symbol, window_start"
    );
    for seed in 0..3 {
        let mut engine = Engine::new().unwrap();
        engine.execute(A_DDL).unwrap();
        engine.execute(B_DDL).unwrap();
        engine.execute(&view).unwrap();
        let id = engine.create_query(windowed).unwrap();
        let outputs = run_pushes(&mut engine, &interleaved(&a, &b, seed));
        assert_eq!(
            sorted(rows_of(&outputs, id)),
            batch_ab(&a, &b, &batch),
            "seed {seed}"
        );
        assert_eq!(engine.query_metrics(id).unwrap().late_events_dropped, 0);
    }
}

#[test]
fn join_state_stays_bounded_as_keys_rotate() {
    // Keys change every few seconds and never come back: rows of keys that
    // went quiet must leave state too.
    let sql = format!("SELECT {COLUMNS} FROM a LEFT JOIN b ON a.symbol = b.symbol AND {BOUND}");
    let (mut engine, ids) = engine_with(&[&sql]);
    let base = 1_700_000_000_000i64;
    let mut held = Vec::new();
    let (mut all_a, mut all_b, mut outputs) = (Vec::new(), Vec::new(), Vec::new());
    for step in 0..200i64 {
        let rows = |offset: i64| -> Vec<Trade> {
            (0..20)
                .map(|i| Trade {
                    symbol: format!("K{}", (step * 20 + i) / 50),
                    price: i as f64,
                    ts_ms: base + step * 1000 + i * 50 + offset,
                })
                .collect()
        };
        outputs.extend(engine.push_json("a", &ndjson(&rows(0))).unwrap());
        outputs.extend(engine.push_json("b", &ndjson(&rows(7))).unwrap());
        let metrics = engine.query_metrics(ids[0]).unwrap();
        let join = &metrics.joins[0];
        assert_eq!(
            metrics.open_windows,
            join.left.rows_held + join.right.rows_held
        );
        held.push(metrics.open_windows);
        all_a.extend(rows(0));
        all_b.extend(rows(7));
    }
    outputs.extend(engine.finish().unwrap());
    // Through many compactions of the join's state, the rows are right.
    assert_eq!(
        sorted(rows_of(&outputs, ids[0])),
        batch_ab(&all_a, &all_b, &sql)
    );
    let late = &held[100..];
    let most = *late.iter().max().unwrap();
    // About 5 s of both streams (the 2 s watermark delay plus the 2 s
    // bound, and a push): 20 rows a second per side.
    assert!(most <= 2 * 20 * 6, "rows held grew: {held:?}");
    assert!(most > 0);
}

#[test]
fn restore_equals_uninterrupted_at_random_cuts() {
    let queries = join_queries();
    let (a, b) = feeds(11);
    let pushes: Vec<(&str, String)> = interleaved(&a, &b, 4)
        .into_iter()
        .map(|(s, rows)| (s, ndjson(&rows)))
        .collect();
    for seed in 0..3 {
        assert_restore_equals_uninterrupted(
            || {
                let refs: Vec<&str> = queries.iter().map(String::as_str).collect();
                engine_with(&refs)
            },
            &pushes,
            seed,
            3,
        );
    }
}

#[test]
fn late_rows_on_either_side_are_dropped_and_counted_or_handed_back() {
    let sql = format!("SELECT {COLUMNS} FROM a LEFT JOIN b ON a.symbol = b.symbol AND {BOUND}");
    let base = 1_700_000_000_000i64;
    let row = |symbol: &str, ts_ms: i64| Trade {
        symbol: symbol.to_string(),
        price: 1.0,
        ts_ms,
    };
    for side_output in [false, true] {
        let mut engine = Engine::new().unwrap();
        engine.execute(A_DDL).unwrap();
        engine.execute(B_DDL).unwrap();
        let options = QueryOptions {
            late: if side_output {
                riffle::LatePolicy::SideOutput
            } else {
                riffle::LatePolicy::Drop
            },
            ..QueryOptions::default()
        };
        let id = engine.create_query_with(&sql, &options).unwrap();
        let mut outputs = Vec::new();
        // Both watermarks reach base + 8 s.
        outputs.extend(
            engine
                .push_json("a", &ndjson(&[row("x", base + 10_000)]))
                .unwrap(),
        );
        outputs.extend(
            engine
                .push_json("b", &ndjson(&[row("x", base + 10_000)]))
                .unwrap(),
        );
        // At or before the watermark on each side: late.
        outputs.extend(
            engine
                .push_json("a", &ndjson(&[row("y", base + 8_000)]))
                .unwrap(),
        );
        outputs.extend(
            engine
                .push_json("b", &ndjson(&[row("y", base + 7_000)]))
                .unwrap(),
        );
        outputs.extend(engine.finish().unwrap());
        let metrics = engine.query_metrics(id).unwrap();
        assert_eq!(metrics.late_events_dropped, 2);
        // Per side: two rows in, one late; nothing held after finish().
        assert_eq!(metrics.joins.len(), 1);
        for side in [&metrics.joins[0].left, &metrics.joins[0].right] {
            assert_eq!(
                (side.rows_in, side.late_rows_dropped, side.rows_held),
                (2, 1, 0)
            );
        }
        let joined = rows_of(&outputs, id);
        assert_eq!(joined.len(), 1, "{joined:?}");
        assert_eq!(joined[0][0], "x");
        let late = common::late_rows_of(&outputs, id);
        if side_output {
            assert_eq!(late.len(), 2, "{late:?}");
            assert!(late.iter().all(|r| r[0] == "y"));
        } else {
            assert!(late.is_empty());
        }
    }
}

#[test]
fn joins_without_a_time_bound_on_both_sides_are_refused() {
    let (mut engine, _) = engine_with(&[]);
    for (sql, says) in [
        (
            "SELECT * FROM a JOIN b ON a.symbol = b.symbol",
            "needs a time bound on both sides",
        ),
        (
            "SELECT * FROM a JOIN b ON a.symbol = b.symbol AND b.ts >= a.ts",
            "not how late",
        ),
        (
            "SELECT * FROM a JOIN b ON a.symbol = b.symbol AND b.ts < a.ts + INTERVAL '1' SECOND",
            "not how early",
        ),
        ("SELECT * FROM a CROSS JOIN b", "join"),
        // After a join, a row's event time is the first side's: a bound
        // against the other side's time is no bound on it.
        (
            "SELECT * FROM a JOIN b ON a.symbol = b.symbol AND b.ts BETWEEN a.ts AND a.ts + INTERVAL '1' SECOND \
             JOIN b AS c ON c.symbol = b.symbol AND c.ts BETWEEN b.ts AND b.ts + INTERVAL '1' SECOND",
            "needs a time bound",
        ),
        (
            "SELECT a.symbol FROM a WHERE a.symbol NOT IN (SELECT b.symbol FROM b)",
            "needs a time bound",
        ),
        (
            "SELECT * FROM a JOIN (SELECT symbol, count(*) AS n FROM b GROUP BY symbol) c \
             ON a.symbol = c.symbol",
            "changelog",
        ),
        (
            "SELECT * FROM SESSION(a, ts, INTERVAL '1' SECOND) x \
             JOIN SESSION(b, ts, INTERVAL '1' SECOND) y \
             ON x.symbol = y.symbol AND x.window_start = y.window_start",
            "SESSION rows",
        ),
        // Windows are joined by window, not by the rows' own times.
        (
            "SELECT * FROM TUMBLE(a, ts, INTERVAL '1' SECOND) x JOIN b \
             ON x.symbol = b.symbol AND b.ts BETWEEN x.ts AND x.ts + INTERVAL '1' SECOND",
            "needs a time bound",
        ),
    ] {
        assert_refused(engine.create_query(sql), ErrorCode::Unsupported, says);
    }
}

#[test]
fn a_row_stays_in_state_until_the_watermark_reaches_its_last_match() {
    // right time - left time in [-1 s, 2 s]. A row of a at 10 s can meet b
    // up to 12 s, so it must stay while the watermark is below 12 s; a row
    // of b at 20 s can meet a up to 21 s.
    let base = 1_700_000_000_000i64;
    let row = |symbol: &str, ms: i64| Trade {
        symbol: symbol.to_string(),
        price: 1.0,
        ts_ms: base + ms,
    };
    let pushes = vec![
        ("a", vec![row("x", 10_000)]),
        // Both watermarks 1 ms short of 12 s.
        ("a", vec![row("f", 13_999)]),
        ("b", vec![row("f", 13_999)]),
        ("b", vec![row("x", 12_000)]),
        ("b", vec![row("y", 20_000)]),
        // Both watermarks 1 ms short of 21 s.
        ("a", vec![row("f", 22_999)]),
        ("b", vec![row("f", 22_999)]),
        ("a", vec![row("y", 21_000)]),
    ];
    // Every row finds its match: a full join pads none (a row gone too
    // early would come out padded, and its match too).
    for kind in ["JOIN", "FULL JOIN"] {
        let sql = format!("SELECT {COLUMNS} FROM a {kind} b ON a.symbol = b.symbol AND {BOUND}");
        let (mut engine, ids) = engine_with(&[&sql]);
        let joined = sorted(rows_of(&run_pushes(&mut engine, &pushes), ids[0]));
        let symbols: Vec<&str> = joined.iter().map(|r| r[0].as_str()).collect();
        assert_eq!(symbols, ["f", "f", "x", "y"], "{sql}: {joined:?}");
    }
}

#[test]
fn the_documented_joins_run_as_documented() {
    // docs/SQL.md, "Interval joins": its two queries, verbatim.
    let left_join = "SELECT i.ad, i.ts AS shown, c.ts AS clicked
FROM impressions AS i LEFT JOIN clicks AS c
  ON c.ad = i.ad AND c.ts BETWEEN i.ts AND i.ts + INTERVAL '10' SECOND";
    let view = "CREATE VIEW shown_and_clicked AS
  SELECT i.ad, i.ts, c.ts AS clicked FROM impressions AS i JOIN clicks AS c
    ON c.ad = i.ad AND c.ts BETWEEN i.ts AND i.ts + INTERVAL '10' SECOND";
    let windowed = "SELECT ad, window_start, count(*) AS clicks
FROM TUMBLE(shown_and_clicked, ts, INTERVAL '1' MINUTE) GROUP BY ad, window_start";
    let docs = std::fs::read_to_string("docs/SQL.md").unwrap();
    for sql in [left_join, view, windowed] {
        assert!(docs.contains(sql), "docs/SQL.md no longer shows: {sql}");
    }
    let mut engine = Engine::new().unwrap();
    for stream in ["impressions", "clicks"] {
        engine
            .execute(&format!(
                "CREATE STREAM {stream} (ad VARCHAR, ts TIMESTAMP(3), \
                 WATERMARK FOR ts AS ts - INTERVAL '1' SECOND)"
            ))
            .unwrap();
    }
    let joined = engine.create_query(left_join).unwrap();
    engine.execute(view).unwrap();
    let counted = engine.create_query(windowed).unwrap();
    let events = |rows: &[(&str, i64)]| -> String {
        rows.iter()
            .map(|(ad, ts)| format!("{{\"ad\":\"{ad}\",\"ts\":{ts}}}\n"))
            .collect()
    };
    let mut early = Vec::new();
    early.extend(
        engine
            .push_json(
                "impressions",
                &events(&[("A", 0), ("B", 1_000), ("C", 2_000)]),
            )
            .unwrap(),
    );
    early.extend(
        engine
            .push_json("clicks", &events(&[("A", 4_000), ("C", 15_000)]))
            .unwrap(),
    );
    // Both watermarks pass 12 s: B and C can no longer be clicked.
    early.extend(
        engine
            .push_json("impressions", &events(&[("X", 30_000)]))
            .unwrap(),
    );
    early.extend(
        engine
            .push_json("clicks", &events(&[("X", 30_000)]))
            .unwrap(),
    );
    assert_eq!(
        sorted(rows_of(&early, joined)),
        [
            ["A", "0", "4000"],
            ["B", "1000", "NULL"],
            ["C", "2000", "NULL"],
            ["X", "30000", "30000"]
        ]
    );
    let rest = engine.finish().unwrap();
    assert!(rows_of(&rest, joined).is_empty());
    assert_eq!(
        sorted(rows_of(&rest, counted)),
        [["A", "0", "1"], ["X", "0", "1"]],
        "one click each, both in the first minute"
    );
}

/// `TUMBLE(stream, ts, INTERVAL '<secs>' SECOND)` as batch SQL.
fn tumble_sql(stream: &str, secs: i64) -> String {
    format!(
        "(SELECT *, date_bin(INTERVAL '{secs} seconds', ts, TIMESTAMP '1970-01-01') AS window_start, \
         date_bin(INTERVAL '{secs} seconds', ts, TIMESTAMP '1970-01-01') + INTERVAL '{secs} seconds' AS window_end \
         FROM {stream})"
    )
}

/// Window joins (Flink's): both sides windowed by the same TUMBLE, joined on
/// window_start, window_end and keys, every kind; and joins of two windowed
/// aggregates. Against batch SQL at random interleavings.
#[test]
fn window_joins_equal_batch_sql() {
    let x = "TUMBLE(a, ts, INTERVAL '5' SECOND)";
    let y = "TUMBLE(b, ts, INTERVAL '5' SECOND)";
    let same_window = "x.window_start = y.window_start AND x.window_end = y.window_end";
    let mut queries = Vec::new();
    for kind in ["JOIN", "LEFT JOIN", "RIGHT JOIN", "FULL JOIN"] {
        queries.push(format!(
            "SELECT x.symbol, x.price, y.symbol, y.price, x.window_start, y.window_end \
             FROM {x} AS x {kind} {y} AS y ON x.symbol = y.symbol AND {same_window}"
        ));
    }
    queries.extend([
        format!(
            "SELECT x.symbol, x.price, x.window_start FROM {x} AS x WHERE EXISTS \
             (SELECT 1 FROM {y} AS y WHERE y.symbol = x.symbol AND {same_window})"
        ),
        format!(
            "SELECT x.symbol, x.price, x.window_start FROM {x} AS x WHERE NOT EXISTS \
             (SELECT 1 FROM {y} AS y WHERE y.symbol = x.symbol AND {same_window} AND y.price > x.price)"
        ),
        // Two windowed aggregates, joined per window and key.
        format!(
            "SELECT x.symbol, x.window_start, x.n, y.n, x.total - y.total AS gap FROM \
             (SELECT symbol, window_start, window_end, count(*) AS n, sum(price) AS total \
              FROM {x} GROUP BY symbol, window_start, window_end) AS x \
             FULL JOIN \
             (SELECT symbol, window_start, window_end, count(*) AS n, sum(price) AS total \
              FROM {y} GROUP BY symbol, window_start, window_end) AS y \
             ON x.symbol = y.symbol AND {same_window}"
        ),
    ]);
    let refs: Vec<&str> = queries.iter().map(String::as_str).collect();
    for seed in 0..3 {
        let (a, b) = feeds(seed + 20);
        let (mut engine, ids) = engine_with(&refs);
        let pushes = if seed % 2 == 0 {
            finely_interleaved(&a, &b, seed)
        } else {
            interleaved(&a, &b, seed)
        };
        let outputs = run_pushes(&mut engine, &pushes);
        for (sql, id) in queries.iter().zip(&ids) {
            let batch = sql
                .replace(x, &tumble_sql("a", 5))
                .replace(y, &tumble_sql("b", 5));
            let expected = batch_ab(&a, &b, &batch);
            assert!(!expected.is_empty(), "{sql}");
            assert_eq!(
                sorted(rows_of(&outputs, *id)),
                expected,
                "seed {seed}: {sql}"
            );
            assert_eq!(engine.query_metrics(*id).unwrap().late_events_dropped, 0);
        }
    }
}

/// `HOP(stream, ts, slide, size)` rows as batch SQL: each row once per
/// window it belongs to.
fn hop_rows_sql(stream: &str, slide: i64, size: i64) -> String {
    let copies: Vec<String> = (0..size / slide)
        .map(|k| {
            format!(
                "SELECT symbol, price, ts, date_bin(INTERVAL '{slide} seconds', ts, TIMESTAMP '1970-01-01') \
                 - INTERVAL '{} seconds' AS ws FROM {stream}",
                k * slide
            )
        })
        .collect();
    format!(
        "(SELECT symbol, price, ts, ws AS window_start, ws + INTERVAL '{size} seconds' AS window_end FROM ({}) c)",
        copies.join(" UNION ALL ")
    )
}

/// `CUMULATE(stream, ts, step, size)` rows as batch SQL.
fn cumulate_rows_sql(stream: &str, step: i64, size: i64) -> String {
    let copies: Vec<String> = (1..=size / step)
        .map(|k| {
            let period = format!("date_bin(INTERVAL '{size} seconds', ts, TIMESTAMP '1970-01-01')");
            let grown = k * step;
            format!(
                "SELECT symbol, price, ts, {period} AS window_start, {period} + INTERVAL '{grown} seconds' AS window_end \
                 FROM {stream} WHERE ts < {period} + INTERVAL '{grown} seconds'"
            )
        })
        .collect();
    format!("({})", copies.join(" UNION ALL "))
}

/// Window joins of HOP and CUMULATE rows: each row joins in every window
/// it belongs to. Against batch SQL over each row's window copies.
#[test]
fn hop_and_cumulate_window_joins_equal_batch_sql() {
    let same_window = "x.window_start = y.window_start AND x.window_end = y.window_end";
    for (function, batch_rows) in [
        ("HOP", hop_rows_sql as fn(&str, i64, i64) -> String),
        ("CUMULATE", cumulate_rows_sql),
    ] {
        let x = format!("{function}(a, ts, INTERVAL '2' SECOND, INTERVAL '6' SECOND)");
        let y = format!("{function}(b, ts, INTERVAL '2' SECOND, INTERVAL '6' SECOND)");
        let mut queries = Vec::new();
        for kind in ["JOIN", "LEFT JOIN", "FULL JOIN"] {
            queries.push(format!(
                "SELECT x.symbol, x.price, y.price, x.window_start, x.window_end, y.window_start \
                 FROM {x} AS x {kind} {y} AS y ON x.symbol = y.symbol AND {same_window}"
            ));
        }
        queries.push(format!(
            "SELECT x.symbol, x.price, x.window_end FROM {x} AS x WHERE NOT EXISTS \
             (SELECT 1 FROM {y} AS y WHERE y.symbol = x.symbol AND {same_window} AND y.price > x.price)"
        ));
        let refs: Vec<&str> = queries.iter().map(String::as_str).collect();
        for seed in 0..2 {
            let (a, b) = feeds(seed + 60);
            let (a, b) = (&a[..300], &b[..200]);
            let (mut engine, ids) = engine_with(&refs);
            let pushes = if seed == 0 {
                finely_interleaved(a, b, seed)
            } else {
                interleaved(a, b, seed)
            };
            let outputs = run_pushes(&mut engine, &pushes);
            for (sql, id) in queries.iter().zip(&ids) {
                let batch = sql
                    .replace(&x, &batch_rows("a", 2, 6))
                    .replace(&y, &batch_rows("b", 2, 6));
                let expected = batch_ab(a, b, &batch);
                assert!(!expected.is_empty(), "{sql}");
                assert_eq!(
                    sorted(rows_of(&outputs, *id)),
                    expected,
                    "seed {seed}: {sql}"
                );
                assert_eq!(engine.query_metrics(*id).unwrap().late_events_dropped, 0);
            }
        }
    }
    let (mut engine, _) = engine_with(&[]);
    assert!(engine
        .explain(&format!(
            "SELECT x.symbol FROM HOP(a, ts, INTERVAL '2' SECOND, INTERVAL '6' SECOND) AS x \
             JOIN HOP(b, ts, INTERVAL '2' SECOND, INTERVAL '6' SECOND) AS y \
             ON x.symbol = y.symbol AND {same_window}"
        ))
        .unwrap()
        .contains("WindowCopies"));
    assert_refused(
        engine.create_query(
            "SELECT x.symbol FROM HOP(a, ts, INTERVAL '2' SECOND, INTERVAL '6' SECOND) AS x \
             JOIN b AS y ON x.symbol = y.symbol AND y.ts BETWEEN x.ts AND x.ts + INTERVAL '1' SECOND",
        ),
        ErrorCode::Unsupported,
        "join ON both sides' window_start and window_end",
    );
}

#[test]
fn the_documented_window_join_runs_as_documented() {
    // docs/SQL.md, "Window joins", verbatim.
    let sql = "SELECT v.symbol, v.window_start, v.n, c.n AS clicks
FROM (SELECT symbol, window_start, window_end, count(*) AS n
      FROM TUMBLE(views, ts, INTERVAL '1' MINUTE) GROUP BY symbol, window_start, window_end) AS v
LEFT JOIN (SELECT symbol, window_start, window_end, count(*) AS n
      FROM TUMBLE(clicks, ts, INTERVAL '1' MINUTE) GROUP BY symbol, window_start, window_end) AS c
ON v.symbol = c.symbol AND v.window_start = c.window_start AND v.window_end = c.window_end";
    let docs = std::fs::read_to_string("docs/SQL.md").unwrap();
    assert!(docs.contains(sql), "docs/SQL.md no longer shows: {sql}");
    let mut engine = Engine::new().unwrap();
    for stream in ["views", "clicks"] {
        engine
            .execute(&format!(
                "CREATE STREAM {stream} (symbol VARCHAR, ts TIMESTAMP(3), \
                 WATERMARK FOR ts AS ts - INTERVAL '1' SECOND)"
            ))
            .unwrap();
    }
    let id = engine.create_query(sql).unwrap();
    // The documented window anti join, over the same events.
    let not_in = "SELECT x.symbol, x.window_start FROM TUMBLE(views, ts, INTERVAL '1' MINUTE) AS x
WHERE x.symbol NOT IN (SELECT y.symbol FROM TUMBLE(clicks, ts, INTERVAL '1' MINUTE) AS y
  WHERE y.window_start = x.window_start AND y.window_end = x.window_end)";
    assert!(
        docs.contains(not_in),
        "docs/SQL.md no longer shows: {not_in}"
    );
    let unclicked = engine.create_query(not_in).unwrap();
    let events = |rows: &[(&str, i64)]| -> String {
        rows.iter()
            .map(|(s, ts)| format!("{{\"symbol\":\"{s}\",\"ts\":{ts}}}\n"))
            .collect()
    };
    let mut outputs = Vec::new();
    outputs.extend(
        engine
            .push_json("views", &events(&[("A", 0), ("A", 10_000), ("B", 20_000)]))
            .unwrap(),
    );
    outputs.extend(
        engine
            .push_json("clicks", &events(&[("A", 30_000)]))
            .unwrap(),
    );
    assert!(rows_of(&outputs, id).is_empty(), "the minute is still open");
    // Both streams pass the first minute: its rows come out, B's padded.
    outputs.extend(
        engine
            .push_json("views", &events(&[("B", 70_000)]))
            .unwrap(),
    );
    outputs.extend(
        engine
            .push_json("clicks", &events(&[("B", 75_000)]))
            .unwrap(),
    );
    assert_eq!(
        sorted(rows_of(&outputs, id)),
        [["A", "0", "2", "1"], ["B", "0", "1", "NULL"]]
    );
    assert_eq!(rows_of(&outputs, unclicked), [["B", "0"]]);
    // A click without a symbol in the third minute: NOT IN keeps C out.
    let mut rest = engine
        .push_json("views", &events(&[("C", 130_000)]))
        .unwrap();
    rest.extend(
        engine
            .push_json("clicks", r#"{"symbol":null,"ts":140000}"#)
            .unwrap(),
    );
    rest.extend(engine.finish().unwrap());
    assert_eq!(
        sorted(rows_of(&rest, id)),
        [["B", "60000", "1", "1"], ["C", "120000", "1", "NULL"]]
    );
    assert!(rows_of(&rest, unclicked).is_empty());
}

#[test]
fn bigint_event_times_take_bounds_in_milliseconds() {
    let mut engine = Engine::new().unwrap();
    for stream in ["x", "y"] {
        engine
            .execute(&format!(
                "CREATE STREAM {stream} (k VARCHAR, ts BIGINT, WATERMARK FOR ts AS ts - INTERVAL '1' SECOND)"
            ))
            .unwrap();
    }
    let id = engine
        .create_query("SELECT x.k, x.ts, y.ts FROM x JOIN y ON x.k = y.k AND y.ts BETWEEN x.ts - 250 AND x.ts + 250")
        .unwrap();
    let mut outputs = engine
        .push_json("x", "{\"k\":\"a\",\"ts\":1000}\n{\"k\":\"a\",\"ts\":5000}")
        .unwrap();
    outputs.extend(
        engine
            .push_json(
                "y",
                "{\"k\":\"a\",\"ts\":1250}\n{\"k\":\"a\",\"ts\":1251}\n{\"k\":\"a\",\"ts\":4750}",
            )
            .unwrap(),
    );
    outputs.extend(engine.finish().unwrap());
    assert_eq!(
        sorted(rows_of(&outputs, id)),
        [["a", "1000", "1250"], ["a", "5000", "4750"]]
    );
}

#[test]
fn a_state_ttl_bounds_a_join_without_a_time_condition() {
    // With stateTtlMs, rows meet rows at most the TTL apart in event time:
    // the join of `b.ts BETWEEN a.ts - ttl AND a.ts + ttl`, deterministic
    // (Flink's TTL forgets rows by processing time).
    let (a, b) = feeds(31);
    let sql = format!("SELECT {COLUMNS} FROM a LEFT JOIN b ON a.symbol = b.symbol");
    let one_sided =
        format!("SELECT {COLUMNS} FROM a JOIN b ON a.symbol = b.symbol AND b.ts >= a.ts");
    let mut engine = Engine::new().unwrap();
    engine.execute(A_DDL).unwrap();
    engine.execute(B_DDL).unwrap();
    let options = QueryOptions {
        state_ttl_millis: Some(1_500),
        ..QueryOptions::default()
    };
    let ids = [
        engine.create_query_with(&sql, &options).unwrap(),
        engine.create_query_with(&one_sided, &options).unwrap(),
    ];
    let outputs = run_pushes(&mut engine, &interleaved(&a, &b, 2));
    let bound =
        "b.ts BETWEEN a.ts - INTERVAL '1500' MILLISECOND AND a.ts + INTERVAL '1500' MILLISECOND";
    // A LEFT JOIN under a TTL is an updating join: its changes net to the
    // bounded join.
    assert_eq!(
        netted(&rows_of(&outputs, ids[0])),
        batch_ab(&a, &b, &format!("{sql} AND {bound}"))
    );
    // The condition's own bound stays; the TTL adds the missing one.
    assert_eq!(
        sorted(rows_of(&outputs, ids[1])),
        batch_ab(
            &a,
            &b,
            &format!("{one_sided} AND b.ts <= a.ts + INTERVAL '1500' MILLISECOND")
        )
    );
}

#[test]
fn flinks_state_ttl_hint_sets_each_inputs_ttl() {
    // `/*+ STATE_TTL('a' = ..., 'b' = ...) */`: a left row kept for a's TTL
    // meets right rows up to that much later; a right row kept for b's TTL
    // left rows up to that much later. By stream name or by alias.
    let (a, b) = feeds(32);
    let hinted = [
        format!("SELECT /*+ STATE_TTL('a' = '1500 ms', 'b' = '1 s') */ {COLUMNS} FROM a LEFT JOIN b ON a.symbol = b.symbol"),
        "SELECT /*+ STATE_TTL('x' = '1500ms', 'y' = '1s') */ x.symbol, x.price, x.ts, y.symbol, y.price, y.ts FROM a AS x JOIN b AS y ON x.symbol = y.symbol".to_string(),
        // One hint, and the condition's own bound for the other direction.
        format!("SELECT /*+ STATE_TTL('a' = '2s') */ {COLUMNS} FROM a JOIN b ON a.symbol = b.symbol AND b.ts >= a.ts - INTERVAL '500' MILLISECOND"),
    ];
    let (mut engine, ids) = engine_with(&hinted.iter().map(String::as_str).collect::<Vec<_>>());
    let outputs = run_pushes(&mut engine, &interleaved(&a, &b, 4));
    let expected = [
        format!("SELECT {COLUMNS} FROM a LEFT JOIN b ON a.symbol = b.symbol AND b.ts BETWEEN a.ts - INTERVAL '1' SECOND AND a.ts + INTERVAL '1500' MILLISECOND"),
        format!("SELECT {COLUMNS} FROM a JOIN b ON a.symbol = b.symbol AND b.ts BETWEEN a.ts - INTERVAL '1' SECOND AND a.ts + INTERVAL '1500' MILLISECOND"),
        format!("SELECT {COLUMNS} FROM a JOIN b ON a.symbol = b.symbol AND b.ts BETWEEN a.ts - INTERVAL '500' MILLISECOND AND a.ts + INTERVAL '2' SECOND"),
    ];
    for (n, ((id, expected), sql)) in ids.iter().zip(&expected).zip(&hinted).enumerate() {
        // The LEFT JOIN is an updating join (a changelog), the inner joins
        // give final rows.
        let rows = rows_of(&outputs, *id);
        let rows = if n == 0 { netted(&rows) } else { sorted(rows) };
        assert_eq!(rows, batch_ab(&a, &b, expected), "{sql}");
    }
    // A hint used by an inner join is not refused by the join above it;
    // aliases match as identifiers do (unquoted, any case); Flink's OPTIONS
    // table hint is ignored.
    let (mut engine, _) = engine_with(&[]);
    for sql in [
        "SELECT /*+ STATE_TTL('a' = '1 s') */ a.symbol FROM a JOIN b ON a.symbol = b.symbol \
         AND b.ts >= a.ts - INTERVAL '1' SECOND \
         JOIN b AS c ON c.symbol = a.symbol AND c.ts BETWEEN a.ts AND a.ts + INTERVAL '1' SECOND",
        "SELECT /*+ STATE_TTL('X' = '1 s', 'Y' = '1 s') */ X.symbol FROM a AS X JOIN a AS Y ON X.symbol = Y.symbol",
        "SELECT a.symbol FROM a /*+ OPTIONS('scan.startup.mode' = 'earliest-offset') */",
    ] {
        engine.create_query(sql).unwrap();
    }
    // In a view too.
    let (mut engine, _) = engine_with(&[]);
    engine
        .execute(
            "CREATE VIEW pairs AS SELECT /*+ STATE_TTL('a' = '1500 ms', 'b' = '1 s') */ \
             a.symbol, a.price, a.ts, b.symbol AS bs, b.price AS bp, b.ts AS bt \
             FROM a LEFT JOIN b ON a.symbol = b.symbol",
        )
        .unwrap();
    let viewed = engine.create_query("SELECT * FROM pairs").unwrap();
    let outputs = run_pushes(&mut engine, &interleaved(&a, &b, 4));
    assert_eq!(
        netted(&rows_of(&outputs, viewed)),
        batch_ab(&a, &b, &expected[0])
    );
    // On a GROUP BY without a window, the hint is its state TTL.
    let (mut engine, _) = engine_with(&[]);
    let hinted = engine
        .create_query(
            "SELECT /*+ STATE_TTL('a' = '3 s') */ symbol, count(*) AS n FROM a GROUP BY symbol",
        )
        .unwrap();
    let option = engine
        .create_query_with(
            "SELECT symbol, count(*) AS n FROM a GROUP BY symbol",
            &QueryOptions {
                state_ttl_millis: Some(3_000),
                ..QueryOptions::default()
            },
        )
        .unwrap();
    let outputs = run_pushes(&mut engine, &interleaved(&a, &[], 5));
    assert_eq!(rows_of(&outputs, hinted), rows_of(&outputs, option));
    assert!(rows_of(&outputs, hinted)
        .iter()
        .any(|r| r.last().is_some_and(|op| op == "delete")));
    // What the hint cannot set is refused.
    let (mut engine, _) = engine_with(&[]);
    for (sql, code, says) in [
        (
            "SELECT /*+ STATE_TTL('a' = '1h') */ * FROM a JOIN b ON a.symbol = b.symbol",
            ErrorCode::Unsupported,
            "needs a time bound on both sides",
        ),
        (
            "SELECT /*+ STATE_TTL('c' = '1h') */ * FROM a JOIN b ON a.symbol = b.symbol",
            ErrorCode::SqlPlan,
            "'c', which this query does not read",
        ),
        (
            "SELECT /*+ STATE_TTL('a' = '1h') */ symbol, window_start, count(*) FROM TUMBLE(a, ts, INTERVAL '1' MINUTE) GROUP BY symbol, window_start",
            ErrorCode::Unsupported,
            "is not an input of a join",
        ),
        (
            "SELECT /*+ STATE_TTL('x' = '1h', 'y' = '2h') */ * FROM a AS x JOIN a AS y ON x.symbol = y.symbol",
            ErrorCode::Unsupported,
            "two TTLs",
        ),
        (
            "SELECT /*+ LOOKUP('table' = 'b') */ * FROM a",
            ErrorCode::Unsupported,
            "LOOKUP is not supported",
        ),
        // A self-join's inputs each take the TTL, through their aliases.
        (
            "SELECT /*+ STATE_TTL('a' = '1h') */ * FROM a AS x JOIN a AS y ON x.symbol = y.symbol",
            ErrorCode::Unsupported,
            "hint each of its aliases ('x', 'y')",
        ),
        (
            "SELECT /*+ STATE_TTL('x' = '1h') */ * FROM a AS x JOIN a AS y ON x.symbol = y.symbol",
            ErrorCode::Unsupported,
            "hint each of its aliases",
        ),
        (
            "SELECT x.symbol FROM HOP(a, ts, INTERVAL '1' SECOND, INTERVAL '2' HOUR) AS x \
             JOIN HOP(b, ts, INTERVAL '1' SECOND, INTERVAL '2' HOUR) AS y \
             ON x.symbol = y.symbol AND x.window_start = y.window_start AND x.window_end = y.window_end",
            ErrorCode::Unsupported,
            "7200 windows",
        ),
    ] {
        assert_refused(engine.create_query(sql), code, says);
    }
}

#[test]
fn crafted_join_state_is_refused_and_changes_nothing() {
    // Checkpoints whose checksums are right but whose join state lies:
    // row counts that do not add up or overflow, a column of another type.
    let queries = [
        format!("SELECT {COLUMNS} FROM a FULL JOIN b ON a.symbol = b.symbol AND {BOUND}"),
        "SELECT o.symbol, r.price FROM a AS o JOIN b FOR SYSTEM_TIME AS OF o.ts AS r ON o.symbol = r.symbol"
            .to_string(),
    ];
    let setup = || {
        let mut engine = Engine::new().unwrap();
        engine.execute(A_DDL).unwrap();
        engine
            .execute(
                "CREATE STREAM b (symbol VARCHAR, price DOUBLE, ts TIMESTAMP, \
                 PRIMARY KEY (symbol) NOT ENFORCED, WATERMARK FOR ts AS ts - INTERVAL '2' SECOND)",
            )
            .unwrap();
        for sql in &queries {
            engine.create_query(sql).unwrap();
        }
        engine
    };
    let (a, b) = feeds(41);
    let pushes = interleaved(&a, &b, 5);
    let (first, rest) = pushes.split_at(pushes.len() / 2);
    let mut source = setup();
    for (stream, rows) in first {
        source.push_json(stream, &ndjson(rows)).unwrap();
    }
    let checkpoint = source.checkpoint().unwrap();
    // As taken, it restores.
    setup().restore(&checkpoint.clone()).unwrap();
    type Craft = Box<dyn Fn(&mut serde_json::Value, &mut Vec<u8>)>;
    let crafts: Vec<(&str, Craft)> = vec![
        (
            "counts that do not add up",
            Box::new(|meta, _| {
                meta["rows"][0] = serde_json::json!(meta["rows"][0].as_u64().unwrap() + 1)
            }),
        ),
        (
            "counts past any size",
            Box::new(|meta, _| meta["rows"][1] = serde_json::json!(u64::MAX)),
        ),
        (
            "no counts",
            Box::new(|meta, _| meta["rows"] = serde_json::json!("many")),
        ),
        (
            "times of another type",
            Box::new(|_, bytes| {
                let state = riffle::state::read_ipc(bytes).unwrap();
                let mut columns = state.columns().to_vec();
                columns[1] =
                    arrow::compute::cast(&columns[1], &arrow::datatypes::DataType::Utf8).unwrap();
                let mut fields: Vec<arrow::datatypes::Field> = state
                    .schema()
                    .fields()
                    .iter()
                    .map(|f| f.as_ref().clone())
                    .collect();
                fields[1] =
                    arrow::datatypes::Field::new("__time", arrow::datatypes::DataType::Utf8, false);
                let batch = arrow::record_batch::RecordBatch::try_new(
                    std::sync::Arc::new(arrow::datatypes::Schema::new(fields)),
                    columns,
                )
                .unwrap();
                *bytes = riffle::state::write_ipc(&batch).unwrap();
            }),
        ),
    ];
    for kind in ["interval_join", "temporal_join"] {
        for (what, craft) in &crafts {
            let mut crafted = checkpoint.clone();
            let operator = crafted
                .manifest
                .operators
                .iter_mut()
                .find(|o| o.operator.as_deref() == Some(kind))
                .unwrap();
            let blob = operator.blob.as_mut().unwrap();
            let bytes = &mut crafted
                .blobs
                .iter_mut()
                .find(|(name, _)| *name == blob.name)
                .unwrap()
                .1;
            craft(&mut operator.meta, bytes);
            blob.bytes = bytes.len() as u64;
            blob.crc32 = crc32fast::hash(bytes);
            let mut engine = setup();
            let error = engine.restore(&crafted).unwrap_err();
            assert!(
                matches!(
                    error.code(),
                    ErrorCode::CorruptCheckpoint | ErrorCode::CheckpointMismatch
                ),
                "{kind}, {what}: {error}"
            );
            assert!(error.message().contains("join"), "{kind}, {what}: {error}");
            // Nothing changed: the engine runs on as a fresh one.
            for (stream, rows) in rest {
                engine.push_json(stream, &ndjson(rows)).unwrap();
            }
            engine.finish().unwrap();
        }
    }
}

#[test]
fn a_self_join_counts_and_hands_back_a_late_row_once() {
    let sql = "SELECT x.symbol, y.symbol FROM a AS x JOIN a AS y ON x.symbol = y.symbol \
               AND y.ts BETWEEN x.ts - INTERVAL '1' SECOND AND x.ts";
    let base = 1_700_000_000_000i64;
    let row = |symbol: &str, ms: i64| Trade {
        symbol: symbol.to_string(),
        price: 1.0,
        ts_ms: base + ms,
    };
    for side_output in [false, true] {
        let mut engine = Engine::new().unwrap();
        engine.execute(A_DDL).unwrap();
        let options = QueryOptions {
            late: if side_output {
                riffle::LatePolicy::SideOutput
            } else {
                riffle::LatePolicy::Drop
            },
            ..QueryOptions::default()
        };
        let id = engine.create_query_with(sql, &options).unwrap();
        let mut outputs = engine.push_json("a", &ndjson(&[row("p", 10_000)])).unwrap();
        // Behind the watermark (8 s) on both inputs: one late event.
        outputs.extend(
            engine
                .push_json("a", &ndjson(&[row("q", 5_000), row("p", 10_500)]))
                .unwrap(),
        );
        outputs.extend(engine.finish().unwrap());
        assert_eq!(engine.query_metrics(id).unwrap().late_events_dropped, 1);
        let late = common::late_rows_of(&outputs, id);
        assert_eq!(late.len(), usize::from(side_output), "{late:?}");
        assert_eq!(
            rows_of(&outputs, id).len(),
            3,
            "p-p twice and p(10.5)-p(10)"
        );
    }
}

#[test]
fn the_documented_state_ttl_hint_runs_as_documented() {
    // docs/SQL.md, "Interval joins", the STATE_TTL example verbatim.
    let sql = "SELECT /*+ STATE_TTL('o' = '1h', 'p' = '10 min') */ o.id, p.status\nFROM orders AS o LEFT JOIN payments AS p ON p.order_id = o.id";
    let docs = std::fs::read_to_string("docs/SQL.md").unwrap();
    assert!(docs.contains(sql), "docs/SQL.md no longer shows: {sql}");
    let mut engine = Engine::new().unwrap();
    engine
        .execute("CREATE STREAM orders (id BIGINT, ts BIGINT, WATERMARK FOR ts AS ts)")
        .unwrap();
    engine
        .execute("CREATE STREAM payments (order_id BIGINT, status VARCHAR, ts BIGINT, WATERMARK FOR ts AS ts)")
        .unwrap();
    let id = engine.create_query(sql).unwrap();
    let minute = 60_000;
    // Payments 20 and 5 minutes before order 1, 30 minutes and 2 hours
    // after; order 2 paid 3 minutes after it.
    let mut changes = Vec::new();
    for (stream, text) in [
        (
            "payments",
            format!(r#"{{"order_id":1,"status":"early","ts":{}}}"#, 40 * minute),
        ),
        (
            "payments",
            format!(
                r#"{{"order_id":1,"status":"just before","ts":{}}}"#,
                55 * minute
            ),
        ),
        ("orders", format!(r#"{{"id":1,"ts":{}}}"#, 60 * minute)),
        ("orders", format!(r#"{{"id":2,"ts":{}}}"#, 61 * minute)),
        (
            "payments",
            format!(r#"{{"order_id":2,"status":"paid","ts":{}}}"#, 64 * minute),
        ),
        (
            "payments",
            format!(r#"{{"order_id":1,"status":"paid","ts":{}}}"#, 90 * minute),
        ),
        (
            "payments",
            format!(r#"{{"order_id":1,"status":"late","ts":{}}}"#, 180 * minute),
        ),
    ] {
        let out = engine.push_json(stream, &text).unwrap();
        changes.push(rows_of(&out, id));
    }
    assert!(rows_of(&engine.finish().unwrap(), id).is_empty());
    // An updating join: order 2 comes out at once without a payment, and
    // is taken back when its payment arrives.
    let change = |id: &str, status: &str, op: &str| vec![id.to_string(), status.into(), op.into()];
    assert_eq!(
        changes,
        vec![
            vec![],
            vec![],
            vec![change("1", "just before", "insert")],
            vec![change("2", "NULL", "insert")],
            vec![change("2", "NULL", "delete"), change("2", "paid", "insert")],
            vec![change("1", "paid", "insert")],
            vec![],
        ]
    );
}

/// Joins a state TTL bounds (no time condition), of every kind.
fn updating_join_queries() -> Vec<String> {
    let mut queries: Vec<String> = ["JOIN", "LEFT JOIN", "RIGHT JOIN", "FULL JOIN"]
        .iter()
        .map(|kind| format!("SELECT {COLUMNS} FROM a {kind} b ON a.symbol = b.symbol"))
        .collect();
    queries.extend([
        // One bound from the condition, the other from the TTL.
        format!(
            "SELECT {COLUMNS} FROM a FULL JOIN b ON a.symbol = b.symbol AND b.ts >= a.ts \
             AND b.price > a.price"
        ),
        "SELECT a.symbol, a.price, a.ts FROM a WHERE NOT EXISTS \
         (SELECT 1 FROM b WHERE b.symbol = a.symbol)"
            .to_string(),
        "SELECT a.symbol, a.price, a.ts FROM a WHERE EXISTS \
         (SELECT 1 FROM b WHERE b.symbol = a.symbol AND b.price > a.price)"
            .to_string(),
    ]);
    queries
}

/// The bound a 1500 ms TTL sets where the condition sets none.
const TTL_BOUND: &str =
    "b.ts BETWEEN a.ts - INTERVAL '1500' MILLISECOND AND a.ts + INTERVAL '1500' MILLISECOND";

fn ttl_engine(queries: &[String]) -> (Engine, Vec<QueryId>) {
    let (mut engine, _) = engine_with(&[]);
    let options = QueryOptions {
        state_ttl_millis: Some(1_500),
        ..QueryOptions::default()
    };
    let ids = queries
        .iter()
        .map(|sql| engine.create_query_with(sql, &options).unwrap())
        .collect();
    (engine, ids)
}

#[test]
fn joins_under_a_state_ttl_are_updating_joins_whose_changes_net_to_batch_sql() {
    // Flink's regular join: an outer row comes out at once, padded, and is
    // deleted when its first match arrives; an anti join's row likewise.
    // Inner and semi rows are final (no _op column). Whatever the
    // interleaving, the changes net to the join bounded by the TTL.
    let queries = updating_join_queries();
    let batch_queries: Vec<String> = queries
        .iter()
        .map(|sql| {
            let sql = sql.replace(
                "b.symbol = a.symbol",
                &format!("b.symbol = a.symbol AND {TTL_BOUND}"),
            );
            match sql.find("b.ts >= a.ts") {
                Some(_) => sql.replace(
                    "b.ts >= a.ts",
                    "b.ts >= a.ts AND b.ts <= a.ts + INTERVAL '1500' MILLISECOND",
                ),
                None if !sql.contains(TTL_BOUND) => format!("{sql} AND {TTL_BOUND}"),
                None => sql,
            }
        })
        .collect();
    for seed in 0..3 {
        let (a, b) = feeds(40 + seed);
        let (mut engine, ids) = ttl_engine(&queries);
        let pushes = if seed == 1 {
            finely_interleaved(&a, &b, seed + 50)
        } else {
            interleaved(&a, &b, seed + 50)
        };
        let outputs = run_pushes(&mut engine, &pushes);
        for ((sql, id), batch) in queries.iter().zip(&ids).zip(&batch_queries) {
            let expected = batch_ab(&a, &b, batch);
            assert!(!expected.is_empty(), "the data must give {batch} rows");
            let rows = rows_of(&outputs, *id);
            let updating = sql.contains("LEFT")
                || sql.contains("RIGHT")
                || sql.contains("FULL")
                || sql.contains("NOT EXISTS");
            let width = expected[0].len();
            if updating {
                assert!(
                    rows.iter().all(|r| r.len() == width + 1),
                    "{sql}: an _op column"
                );
                assert!(
                    rows.iter().any(|r| r[width] == "delete"),
                    "seed {seed}: {sql} takes back rows"
                );
                // A delete takes back a row that came out unmatched: its
                // other side's columns are NULL.
                for row in rows.iter().filter(|r| r[width] == "delete") {
                    assert!(row.iter().any(|v| v == "NULL") || width == 3, "{row:?}");
                }
                assert_eq!(netted(&rows), expected, "seed {seed}: {sql}");
            } else {
                assert!(rows.iter().all(|r| r.len() == width), "{sql}: final rows");
                assert_eq!(sorted(rows), expected, "seed {seed}: {sql}");
            }
        }
    }
}

#[test]
fn an_updating_join_pads_a_row_at_once_and_deletes_it_at_its_first_match() {
    let (mut engine, ids) = ttl_engine(&[
        format!("SELECT {COLUMNS} FROM a FULL JOIN b ON a.symbol = b.symbol"),
        "SELECT a.symbol, a.ts FROM a WHERE NOT EXISTS (SELECT 1 FROM b WHERE b.symbol = a.symbol)"
            .to_string(),
    ]);
    let base = 1_700_000_000_000i64;
    let push = |engine: &mut Engine, stream: &str, symbol: &str, ms: i64| {
        let text = format!(r#"{{"symbol":"{symbol}","price":1.0,"ts":{}}}"#, base + ms);
        let out = engine.push_json(stream, &text).unwrap();
        (rows_of(&out, ids[0]), rows_of(&out, ids[1]))
    };
    let ops = |rows: &[Vec<String>]| -> Vec<String> {
        rows.iter()
            .map(|r| format!("{}:{}", r[0], r.last().unwrap()))
            .collect()
    };
    // An a row without a match: out at once, padded (and as NOT EXISTS).
    let (full, anti) = push(&mut engine, "a", "x", 0);
    assert_eq!(ops(&full), ["x:insert"]);
    assert_eq!(full[0][3], "NULL");
    assert_eq!(ops(&anti), ["x:insert"]);
    // Its first match deletes the padded row; the pair comes out.
    let (full, anti) = push(&mut engine, "b", "x", 1000);
    assert_eq!(
        ops(&full),
        ["NULL:delete", "x:insert"].map(|s| s.replacen("NULL", "x", 1))
    );
    assert_eq!(full[0][3], "NULL");
    assert_eq!(full[1][3], "x");
    assert_eq!(ops(&anti), ["x:delete"]);
    // A second match only adds a pair.
    let (full, anti) = push(&mut engine, "b", "x", 1200);
    assert_eq!(ops(&full), ["x:insert"]);
    assert!(anti.is_empty());
    // A b row past the TTL meets nothing: padded at once, a's side NULL.
    let (full, anti) = push(&mut engine, "b", "x", 1600);
    assert_eq!(ops(&full), ["NULL:insert"]);
    assert!(anti.is_empty());
    // Nothing comes out when rows leave state: it all came out already.
    let (full, anti) = push(&mut engine, "a", "y", 60_000);
    assert_eq!(ops(&full), ["y:insert"]);
    assert_eq!(ops(&anti), ["y:insert"]);
    assert!(rows_of(&engine.finish().unwrap(), ids[0]).is_empty());
}

#[test]
fn an_aggregate_over_an_updating_join_takes_its_deletes_back_out() {
    // Matched and unmatched rows per symbol, over a LEFT JOIN the inputs'
    // TTLs bound (hinted: a TTL option would forget the aggregate's idle
    // groups too): the aggregate's changelog materialises to batch SQL's.
    let sql = "SELECT symbol, count(*) AS n, count(bp) AS matched, sum(bp) AS total FROM \
               (SELECT /*+ STATE_TTL('a' = '1500 ms', 'b' = '1500 ms') */ a.symbol, b.price AS bp \
               FROM a LEFT JOIN b ON a.symbol = b.symbol) GROUP BY symbol";
    let view_sql = "SELECT symbol, n, matched FROM pairs_per_symbol WHERE n > 3";
    let (a, b) = feeds(47);
    let (mut engine, mut ids) = engine_with(&[sql]);
    engine
        .execute(&format!("CREATE VIEW pairs_per_symbol AS {sql}"))
        .unwrap();
    ids.push(engine.create_query(view_sql).unwrap());
    let outputs = run_pushes(&mut engine, &interleaved(&a, &b, 9));
    let batch = sql
        .replace("/*+ STATE_TTL('a' = '1500 ms', 'b' = '1500 ms') */ ", "")
        .replace(
            "ON a.symbol = b.symbol",
            &format!("ON a.symbol = b.symbol AND {TTL_BOUND}"),
        );
    let expected = batch_ab(&a, &b, &batch);
    assert_eq!(materialised(&rows_of(&outputs, ids[0]), 1), expected);
    let filtered: Vec<Vec<String>> = expected
        .iter()
        .filter(|r| r[1].parse::<i64>().unwrap() > 3)
        .map(|r| r[..3].to_vec())
        .collect();
    assert!(!filtered.is_empty());
    assert_eq!(materialised(&rows_of(&outputs, ids[1]), 1), filtered);
}

#[test]
fn an_updating_join_restores_to_the_same_changes_and_refuses_windows_and_joins() {
    let queries = updating_join_queries();
    let (a, b) = feeds(48);
    let pushes: Vec<(&str, String)> = interleaved(&a, &b, 6)
        .into_iter()
        .map(|(s, rows)| (s, ndjson(&rows)))
        .collect();
    for seed in 0..2 {
        assert_restore_equals_uninterrupted(|| ttl_engine(&queries), &pushes, seed, 3);
    }
    // Its rows are a changelog: no event time to window, and no join.
    let (mut engine, _) = ttl_engine(&[]);
    engine
        .execute(
            "CREATE VIEW padded AS SELECT /*+ STATE_TTL('a' = '1 s', 'b' = '1 s') */ \
             a.symbol, a.ts FROM a LEFT JOIN b ON a.symbol = b.symbol",
        )
        .unwrap();
    let options = QueryOptions {
        state_ttl_millis: Some(1_500),
        ..QueryOptions::default()
    };
    for (sql, says) in [
        (
            "SELECT window_start, count(*) FROM TUMBLE(padded, ts, INTERVAL '1' SECOND) \
             GROUP BY window_start",
            "changelog",
        ),
        (
            "SELECT x.symbol FROM (SELECT a.symbol, a.ts FROM a LEFT JOIN b ON a.symbol = b.symbol) AS x \
             JOIN b AS c ON c.symbol = x.symbol AND c.ts BETWEEN x.ts AND x.ts + INTERVAL '1' SECOND",
            "changelog",
        ),
    ] {
        assert_refused(engine.create_query_with(sql, &options), ErrorCode::Unsupported, says);
    }
}

/// `NOT IN` is null-aware: `k NOT IN (subquery)` keeps a row only when no
/// value of the subquery equals `k`, none is NULL, and `k` is not NULL
/// (unless the subquery is empty) — the meaning of NOT EXISTS with
/// `(y = k OR y IS NULL OR k IS NULL)`, which batch SQL computes here.
#[test]
fn not_in_keeps_sqls_three_valued_meaning_in_interval_window_and_updating_joins() {
    // Keys NULL now and then on each side.
    let ka = "CASE WHEN a.price < 60 THEN NULL ELSE a.symbol END";
    let kb = "CASE WHEN b.price < 25 THEN NULL ELSE b.symbol END";
    let kx = ka.replace("a.", "x.");
    let ky = kb.replace("b.", "y.");
    let x = "TUMBLE(a, ts, INTERVAL '2' SECOND)";
    let y = "TUMBLE(b, ts, INTERVAL '2' SECOND)";
    let same_window = "y.window_start = x.window_start AND y.window_end = x.window_end";
    let bound = "b.ts BETWEEN a.ts - INTERVAL '1' SECOND AND a.ts + INTERVAL '500' MILLISECOND";
    let cases = [
        (
            format!("SELECT a.symbol, a.price, a.ts FROM a WHERE {ka} NOT IN (SELECT {kb} FROM b WHERE {bound})"),
            format!("SELECT a.symbol, a.price, a.ts FROM a WHERE NOT EXISTS (SELECT 1 FROM b WHERE ({kb} = {ka} OR {kb} IS NULL OR {ka} IS NULL) AND {bound})"),
        ),
        // A residual condition narrows the subquery's rows.
        (
            format!("SELECT a.symbol, a.price, a.ts FROM a WHERE {ka} NOT IN (SELECT {kb} FROM b WHERE {bound} AND b.price + 300 > a.price)"),
            format!("SELECT a.symbol, a.price, a.ts FROM a WHERE NOT EXISTS (SELECT 1 FROM b WHERE ({kb} = {ka} OR {kb} IS NULL OR {ka} IS NULL) AND {bound} AND b.price + 300 > a.price)"),
        ),
        // A correlated equality beside the bound: NOT IN's column stays
        // the key, the equality is checked per pair.
        (
            format!("SELECT a.symbol, a.price, a.ts FROM a WHERE {ka} NOT IN (SELECT {kb} FROM b WHERE {bound} AND CAST(b.price AS BIGINT) % 3 = CAST(a.price AS BIGINT) % 3)"),
            format!("SELECT a.symbol, a.price, a.ts FROM a WHERE NOT EXISTS (SELECT 1 FROM b WHERE ({kb} = {ka} OR {kb} IS NULL OR {ka} IS NULL) AND {bound} AND CAST(b.price AS BIGINT) % 3 = CAST(a.price AS BIGINT) % 3)"),
        ),
        // Flink's window anti join.
        (
            format!("SELECT x.symbol, x.price, x.window_start FROM {x} AS x WHERE {kx} NOT IN (SELECT {ky} FROM {y} AS y WHERE {same_window})"),
            format!("SELECT x.symbol, x.price, x.window_start FROM {} AS x WHERE NOT EXISTS (SELECT 1 FROM {} AS y WHERE ({ky} = {kx} OR {ky} IS NULL OR {kx} IS NULL) AND {same_window})", tumble_sql("a", 2), tumble_sql("b", 2)),
        ),
    ];
    for seed in 0..3 {
        let (a, b) = feeds(60 + seed);
        let queries: Vec<&str> = cases.iter().map(|c| c.0.as_str()).collect();
        let (mut engine, ids) = engine_with(&queries);
        let outputs = run_pushes(&mut engine, &interleaved(&a, &b, seed));
        for ((sql, batch), id) in cases.iter().zip(&ids) {
            let expected = batch_ab(&a, &b, batch);
            // The NULLs matter: the same query without them keeps more.
            let plain = batch_ab(
                &a,
                &b,
                &batch
                    .replace(&format!(" OR {kb} IS NULL"), "")
                    .replace(&format!(" OR {ky} IS NULL"), ""),
            );
            assert!(
                !expected.is_empty() && plain.len() > expected.len(),
                "{sql}"
            );
            assert_eq!(
                sorted(rows_of(&outputs, *id)),
                expected,
                "seed {seed}: {sql}"
            );
        }
    }
    // Under a state TTL: an updating anti join, a NULL deleting the rows
    // it keeps out.
    let (a, b) = feeds(63);
    let sql =
        format!("SELECT a.symbol, a.price, a.ts FROM a WHERE {ka} NOT IN (SELECT {kb} FROM b)");
    let (mut engine, ids) = ttl_engine(std::slice::from_ref(&sql));
    let outputs = run_pushes(&mut engine, &interleaved(&a, &b, 7));
    let expected = batch_ab(
        &a,
        &b,
        &format!("SELECT a.symbol, a.price, a.ts FROM a WHERE NOT EXISTS (SELECT 1 FROM b WHERE ({kb} = {ka} OR {kb} IS NULL OR {ka} IS NULL) AND {TTL_BOUND})"),
    );
    assert!(!expected.is_empty());
    assert_eq!(netted(&rows_of(&outputs, ids[0])), expected, "{sql}");
    // A constant on NOT IN's left would make a correlated equality the
    // key: refused.
    let (mut engine, _) = engine_with(&[]);
    assert_refused(
        engine.create_query(&format!(
            "SELECT x.symbol FROM {x} AS x WHERE 'S1' NOT IN (SELECT y.symbol FROM {y} AS y WHERE {same_window})"
        )),
        ErrorCode::SqlPlan,
        "column of the outer query",
    );
    // A table's NOT IN would depend on the whole table.
    let (mut engine, _) = engine_with(&[]);
    engine
        .execute("CREATE TABLE names (symbol VARCHAR, name VARCHAR, PRIMARY KEY (symbol))")
        .unwrap();
    assert_refused(
        engine.create_query(
            "SELECT a.symbol FROM a WHERE a.symbol NOT IN (SELECT symbol FROM names)",
        ),
        ErrorCode::Unsupported,
        "write NOT EXISTS",
    );
}
