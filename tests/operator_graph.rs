//! Queries over queries (issue 19): UNION ALL of streams and of windowed
//! results, aggregates over windowed results, watermarks as the minimum
//! over inputs, checkpoints of the graph, pushes that fail before any
//! state changes, and restores that change nothing when they fail. Every
//! result is compared with the same SQL run as batch DataFusion.

mod common;

use common::{
    assert_restore_equals_uninterrupted, batch_ab, feeds, interleaved, materialised, ndjson,
    rows_of, run_pushes, sorted, Rng, Trade,
};
use riffle::{Engine, ErrorCode, QueryId};

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

#[test]
fn union_all_of_streams_and_of_windowed_results_equals_batch_sql() {
    let (a, b) = feeds(1);
    let stateless =
        "SELECT symbol, price FROM a WHERE price > 100 UNION ALL SELECT symbol, price FROM b";
    let windowed = "SELECT symbol, window_start, count(*) AS n, sum(price) AS total \
         FROM TUMBLE(a, ts, INTERVAL '10' SECOND) GROUP BY symbol, window_start \
         UNION ALL \
         SELECT symbol, window_start, count(*) AS n, sum(price) AS total \
         FROM TUMBLE(b, ts, INTERVAL '10' SECOND) GROUP BY symbol, window_start";
    // One window aggregate over the union of two windowed scans.
    let over_union = "SELECT window_start, count(*) AS n, max(price) AS top FROM ( \
           SELECT window_start, price FROM TUMBLE(a, ts, INTERVAL '10' SECOND) \
           UNION ALL SELECT window_start, price FROM TUMBLE(b, ts, INTERVAL '10' SECOND)) \
         GROUP BY window_start";
    let updating = "SELECT symbol, count(*) AS n, sum(price) AS total FROM \
         (SELECT symbol, price FROM a UNION ALL SELECT symbol, price FROM b) GROUP BY symbol";
    for seed in 0..3 {
        let (mut engine, ids) = engine_with(&[stateless, windowed, over_union, updating]);
        let outputs = run_pushes(&mut engine, &interleaved(&a, &b, seed));
        assert_eq!(
            sorted(rows_of(&outputs, ids[0])),
            batch_ab(&a, &b, stateless),
            "seed {seed}: {stateless}"
        );
        // Window ends are stored as TIMESTAMPs in batch SQL: compare starts.
        let batch_windowed = windowed
            .replace("TUMBLE(a, ts, INTERVAL '10' SECOND)", &tumble_sql("a", 10))
            .replace("TUMBLE(b, ts, INTERVAL '10' SECOND)", &tumble_sql("b", 10));
        assert_eq!(
            sorted(rows_of(&outputs, ids[1])),
            batch_ab(&a, &b, &batch_windowed),
            "seed {seed}: {windowed}"
        );
        let batch_over_union = over_union
            .replace("TUMBLE(a, ts, INTERVAL '10' SECOND)", &tumble_sql("a", 10))
            .replace("TUMBLE(b, ts, INTERVAL '10' SECOND)", &tumble_sql("b", 10));
        assert_eq!(
            sorted(rows_of(&outputs, ids[2])),
            batch_ab(&a, &b, &batch_over_union),
            "seed {seed}: {over_union}"
        );
        assert_eq!(
            materialised(&rows_of(&outputs, ids[3]), 1),
            batch_ab(&a, &b, updating),
            "seed {seed}: {updating}"
        );
    }
}

/// Batch SQL's view of `TUMBLE(stream, ts, INTERVAL 'secs' SECOND)`.
fn tumble_sql(stream: &str, secs: i64) -> String {
    format!(
        "(SELECT *, date_bin(INTERVAL '{secs} seconds', ts, TIMESTAMP '1970-01-01') AS window_start FROM {stream})"
    )
}

#[test]
fn an_aggregate_over_windowed_results_equals_batch_sql() {
    let (a, _) = feeds(7);
    // Per-window counts per symbol, then per window the busiest symbol's
    // count and how many symbols traded: an updating aggregate over the
    // windows as they close.
    let cascade = "SELECT window_start, max(n) AS busiest, count(*) AS symbols FROM ( \
           SELECT symbol, window_start, count(*) AS n FROM TUMBLE(a, ts, INTERVAL '10' SECOND) \
           GROUP BY symbol, window_start) GROUP BY window_start";
    let batch_cascade =
        cascade.replace("TUMBLE(a, ts, INTERVAL '10' SECOND)", &tumble_sql("a", 10));
    for seed in 0..3 {
        let (mut engine, ids) = engine_with(&[cascade]);
        let pushes: Vec<(&str, Vec<Trade>)> = interleaved(&a, &[], seed);
        let outputs = run_pushes(&mut engine, &pushes);
        assert_eq!(
            materialised(&rows_of(&outputs, ids[0]), 1),
            batch_ab(&a, &[], &batch_cascade),
            "seed {seed}"
        );
    }
}

#[test]
fn a_union_closes_windows_at_the_minimum_of_its_inputs_watermarks() {
    let query = "SELECT window_start, count(*) AS n FROM ( \
           SELECT window_start FROM TUMBLE(a, ts, INTERVAL '10' SECOND) \
           UNION ALL SELECT window_start FROM TUMBLE(b, ts, INTERVAL '10' SECOND)) \
         GROUP BY window_start";
    let (mut engine, ids) = engine_with(&[query]);
    let row = |ts: i64| format!("{{\"symbol\":\"X\",\"price\":1,\"ts\":{ts}}}");
    assert!(engine.push_json("a", &row(1_000)).unwrap().is_empty());
    assert!(engine.push_json("b", &row(2_000)).unwrap().is_empty());
    // a's watermark passes the first window; b's does not: nothing closes.
    assert!(engine.push_json("a", &row(30_000)).unwrap().is_empty());
    assert_eq!(
        engine.query_metrics(ids[0]).unwrap().watermark_millis,
        Some(0)
    );
    // Now b's does too: the window [0, 10 s) closes with both rows.
    let out = engine.push_json("b", &row(25_000)).unwrap();
    assert_eq!(
        rows_of(&out, ids[0]),
        vec![vec!["0".to_string(), "2".to_string()]]
    );
    // A late row on b (its own watermark is 23 s) is dropped and counted.
    assert!(engine.push_json("b", &row(5_000)).unwrap().is_empty());
    assert_eq!(engine.query_metrics(ids[0]).unwrap().late_events_dropped, 1);
}

#[test]
fn explain_shows_a_union_and_its_inputs() {
    let (engine, _) = engine_with(&[]);
    let plan = engine
        .explain("SELECT symbol, count(*) FROM (SELECT symbol FROM a UNION ALL SELECT symbol FROM b) GROUP BY symbol")
        .unwrap();
    for part in [
        "StreamSource: a",
        "StreamSource: b",
        "StreamScan: [symbol] ← stream a",
        "StreamScan: [symbol] ← stream b",
        "Union: 2 inputs",
        "UpdatingAggregate",
    ] {
        assert!(plan.contains(part), "missing {part:?} in\n{plan}");
    }
}

/// Checkpoints at random cuts, each restored into a fresh engine that then
/// carries on: the same results as a run that was never interrupted.
#[test]
fn restore_equals_uninterrupted_for_unions_and_cascades() {
    let queries = [
        "SELECT symbol, window_start, count(*) AS n, sum(price) AS total \
         FROM TUMBLE(a, ts, INTERVAL '10' SECOND) GROUP BY symbol, window_start \
         UNION ALL SELECT symbol, window_start, count(*) AS n, sum(price) AS total \
         FROM TUMBLE(b, ts, INTERVAL '10' SECOND) GROUP BY symbol, window_start",
        "SELECT window_start, count(*) AS n, min(price) AS low FROM ( \
           SELECT window_start, price FROM TUMBLE(a, ts, INTERVAL '5' SECOND) \
           UNION ALL SELECT window_start, price FROM TUMBLE(b, ts, INTERVAL '5' SECOND)) \
         GROUP BY window_start",
        "SELECT window_start, max(n) AS busiest FROM ( \
           SELECT symbol, window_start, count(*) AS n FROM TUMBLE(a, ts, INTERVAL '10' SECOND) \
           GROUP BY symbol, window_start) GROUP BY window_start",
        "SELECT symbol, count(*) AS n FROM (SELECT symbol FROM a UNION ALL SELECT symbol FROM b) GROUP BY symbol",
    ];
    let (a, b) = feeds(11);
    for seed in 0..4 {
        let pushes: Vec<(&str, String)> = interleaved(&a, &b, seed)
            .into_iter()
            .map(|(stream, rows)| (stream, ndjson(&rows)))
            .collect();
        assert_restore_equals_uninterrupted(|| engine_with(&queries), &pushes, seed + 100, 6);
    }
}

/// A push that fails in any query's expressions before its aggregate
/// (here a stateless query, a WHERE clause and an aggregate's argument,
/// divisions by zero) changes
/// nothing in any query; retried without the bad row, the run gives
/// exactly the results of one where the bad row never came.
#[test]
fn a_push_failing_before_any_aggregate_changes_no_query() {
    let ddl = "CREATE STREAM s (k VARCHAR, v BIGINT, ts TIMESTAMP, \
               WATERMARK FOR ts AS ts - INTERVAL '1' SECOND)";
    let queries = [
        "SELECT k, window_start, count(*) AS n, sum(v) AS total FROM TUMBLE(s, ts, INTERVAL '2' SECOND) GROUP BY k, window_start",
        "SELECT k, count(*) AS n FROM s GROUP BY k",
        "SELECT k, window_start, count(*) AS n FROM TUMBLE(s, ts, INTERVAL '3' SECOND) WHERE 10 / (v - 5) > 0 GROUP BY k, window_start",
        "SELECT k, 100 / (v - 6) AS r FROM s",
        // Fails inside the aggregate's argument: evaluated before any
        // aggregate changes, though this is the last query.
        "SELECT k, window_start, sum(100 / (v - 7)) AS odd FROM TUMBLE(s, ts, INTERVAL '4' SECOND) GROUP BY k, window_start",
    ];
    let setup = || {
        let mut engine = Engine::new().unwrap();
        engine.execute(ddl).unwrap();
        let ids: Vec<QueryId> = queries
            .iter()
            .map(|q| engine.create_query(q).unwrap())
            .collect();
        (engine, ids)
    };
    let mut rng = Rng::new(5);
    let events: Vec<(String, i64, i64)> = (0..2_000)
        .map(|i| {
            let v = rng.below(40) as i64;
            (
                format!("K{}", rng.below(5)),
                v,
                i * 37 + rng.below(500) as i64,
            )
        })
        .collect();
    let line =
        |(k, v, ts): &(String, i64, i64)| format!("{{\"k\":\"{k}\",\"v\":{v},\"ts\":{ts}}}\n");

    // Reference: the bad rows (v = 5, 6 or 7, each failing another query)
    // never pushed.
    let bad = |e: &&&(String, i64, i64)| (5..=7).contains(&e.1);
    let (mut reference, ids) = setup();
    let mut expected = Vec::new();
    let mut pushes: Vec<Vec<&(String, i64, i64)>> = Vec::new();
    let mut rest = &events[..];
    while !rest.is_empty() {
        let take = (1 + rng.below(30) as usize).min(rest.len());
        pushes.push(rest[..take].iter().collect());
        rest = &rest[take..];
    }
    for push in &pushes {
        let text: String = push.iter().filter(|e| !bad(e)).map(|e| line(e)).collect();
        if !text.is_empty() {
            expected.extend(reference.push_json("s", &text).unwrap());
        }
    }
    expected.extend(reference.finish().unwrap());

    // The same pushes with the bad rows in: each such push fails whole,
    // then is retried without them.
    let (mut engine, _) = setup();
    let mut outputs = Vec::new();
    let mut failures = 0;
    for push in &pushes {
        let text: String = push.iter().map(|e| line(e)).collect();
        match engine.push_json("s", &text) {
            Ok(out) => outputs.extend(out),
            Err(error) => {
                failures += 1;
                assert_eq!(error.code(), ErrorCode::Execution, "{error}");
                let retry: String = push.iter().filter(|e| !bad(e)).map(|e| line(e)).collect();
                if !retry.is_empty() {
                    outputs.extend(engine.push_json("s", &retry).unwrap());
                }
            }
        }
    }
    outputs.extend(engine.finish().unwrap());
    assert!(failures > 10, "only {failures} pushes failed");
    for (i, id) in ids.iter().enumerate() {
        assert_eq!(rows_of(&outputs, *id), rows_of(&expected, *id), "query {i}");
        assert_eq!(
            engine.query_metrics(*id).unwrap(),
            reference.query_metrics(*id).unwrap(),
            "query {i}: metrics"
        );
    }
}

/// A restore whose second operator's state is bad (valid checksums, a
/// group named twice) fails and leaves the engine exactly as it was: the
/// first operator is not restored either.
#[test]
fn a_failed_restore_changes_nothing() {
    let queries = [
        "SELECT symbol, window_start, count(*) AS n FROM TUMBLE(a, ts, INTERVAL '10' SECOND) GROUP BY symbol, window_start",
        "SELECT symbol, count(*) AS n, sum(price) AS total FROM b GROUP BY symbol",
    ];
    let (a, b) = feeds(21);
    let pushes = interleaved(&a, &b, 3);
    let (first, second) = pushes.split_at(pushes.len() / 3);
    let (later, last) = second.split_at(second.len() / 2);

    let (mut source, _) = engine_with(&queries);
    for (stream, rows) in first {
        source.push_json(stream, &ndjson(rows)).unwrap();
    }
    let mut checkpoint = source.checkpoint().unwrap();
    // Every row of the updating aggregate's state twice, checksums mended.
    let blob = checkpoint
        .manifest
        .operators
        .iter_mut()
        .filter_map(|o| o.blob.as_mut())
        .last()
        .unwrap();
    let bytes = &mut checkpoint
        .blobs
        .iter_mut()
        .find(|(name, _)| *name == blob.name)
        .unwrap()
        .1;
    let state = riffle::state::read_ipc(bytes).unwrap();
    let doubled = arrow::compute::concat_batches(&state.schema(), [&state, &state]).unwrap();
    *bytes = riffle::state::write_ipc(&doubled).unwrap();
    blob.bytes = bytes.len() as u64;
    blob.crc32 = crc32fast::hash(bytes);

    let (mut uninterrupted, ids) = engine_with(&queries);
    let (mut engine, _) = engine_with(&queries);
    let mut expected = Vec::new();
    let mut outputs = Vec::new();
    for (stream, rows) in first.iter().chain(later) {
        expected.extend(uninterrupted.push_json(stream, &ndjson(rows)).unwrap());
        outputs.extend(engine.push_json(stream, &ndjson(rows)).unwrap());
    }
    let error = engine.restore(&checkpoint).unwrap_err();
    assert_eq!(error.code(), ErrorCode::CorruptCheckpoint, "{error}");
    for (stream, rows) in last {
        expected.extend(uninterrupted.push_json(stream, &ndjson(rows)).unwrap());
        outputs.extend(engine.push_json(stream, &ndjson(rows)).unwrap());
    }
    expected.extend(uninterrupted.finish().unwrap());
    outputs.extend(engine.finish().unwrap());
    for id in ids {
        assert_eq!(rows_of(&outputs, id), rows_of(&expected, id), "query {id}");
        assert_eq!(
            engine.query_metrics(id).unwrap(),
            uninterrupted.query_metrics(id).unwrap()
        );
    }
}

const VIEWS: [&str; 4] = [
    "CREATE VIEW big AS SELECT symbol, price, ts FROM a WHERE price > 300",
    "CREATE TEMPORARY VIEW both_feeds AS SELECT symbol, price FROM a UNION ALL SELECT symbol, price FROM b",
    "CREATE VIEW per_window AS SELECT symbol, window_start, count(*) AS n, sum(price) AS total \
     FROM TUMBLE(a, ts, INTERVAL '10' SECOND) GROUP BY symbol, window_start",
    // Windowed results with their event time: windows can sit downstream
    // (renamed, as in Flink, so the next window's columns do not clash).
    "CREATE VIEW per_2s AS SELECT symbol, window_start AS start_2s, window_end AS end_2s, window_time AS rowtime, \
     count(*) AS n, max(price) AS top \
     FROM TUMBLE(a, ts, INTERVAL '2' SECOND) GROUP BY symbol, window_start, window_end, window_time",
];

fn engine_with_views(queries: &[&str]) -> (Engine, Vec<QueryId>) {
    let mut engine = Engine::new().unwrap();
    engine.execute(A_DDL).unwrap();
    engine.execute(B_DDL).unwrap();
    for view in VIEWS {
        engine.execute(view).unwrap();
    }
    let ids = queries
        .iter()
        .map(|sql| engine.create_query(sql).unwrap())
        .collect();
    (engine, ids)
}

const VIEW_QUERIES: [&str; 8] = [
    "SELECT symbol, count(*) AS n, sum(price) AS total FROM big GROUP BY symbol",
    "SELECT symbol, price FROM big WHERE price < 600",
    "SELECT symbol, count(*) AS n FROM both_feeds GROUP BY symbol",
    "SELECT window_start, max(n) AS busiest, sum(total) AS total FROM per_window GROUP BY window_start",
    "SELECT symbol, window_start, n FROM per_window WHERE n > 3",
    // A window over a view's rows, on the stream's event-time column.
    "SELECT window_start, count(*) AS n, sum(price) AS total FROM TUMBLE(big, ts, INTERVAL '5' SECOND) GROUP BY window_start",
    // Cascading windows: 10 s windows over 2 s windows' window_time.
    "SELECT symbol, window_start, sum(n) AS n, max(top) AS top, count(*) AS windows \
     FROM TUMBLE(per_2s, rowtime, INTERVAL '10' SECOND) GROUP BY symbol, window_start",
    // And the 2 s windows themselves, as a view's reader sees them.
    "SELECT symbol, start_2s, end_2s, rowtime, n FROM per_2s",
];

/// Batch SQL's per_2s: 2 s windows with window_end and window_time.
const PER_2S: &str = "SELECT symbol, ws AS start_2s, ws + INTERVAL '2 seconds' AS end_2s, \
     ws + INTERVAL '2 seconds' - INTERVAL '1 millisecond' AS rowtime, count(*) AS n, max(price) AS top \
     FROM (SELECT *, date_bin(INTERVAL '2 seconds', ts, TIMESTAMP '1970-01-01') AS ws FROM a) \
     GROUP BY symbol, ws";

/// The view queries as batch SQL: each view inlined as a subquery.
fn batch_view_sql(sql: &str) -> String {
    sql.replace(
        "FROM big",
        "FROM (SELECT symbol, price, ts FROM a WHERE price > 300) AS big",
    )
    .replace(
        "FROM both_feeds",
        "FROM (SELECT symbol, price FROM a UNION ALL SELECT symbol, price FROM b) AS both_feeds",
    )
    .replace(
        "FROM TUMBLE(big, ts, INTERVAL '5' SECOND)",
        "FROM (SELECT *, date_bin(INTERVAL '5 seconds', ts, TIMESTAMP '1970-01-01') AS window_start FROM a WHERE price > 300)",
    )
    .replace(
        "FROM TUMBLE(per_2s, rowtime, INTERVAL '10' SECOND)",
        &format!(
            "FROM (SELECT *, date_bin(INTERVAL '10 seconds', rowtime, TIMESTAMP '1970-01-01') AS window_start FROM ({PER_2S}))"
        ),
    )
    .replace("FROM per_2s", &format!("FROM ({PER_2S})"))
    .replace(
        "FROM per_window",
        &format!(
            "FROM (SELECT symbol, window_start, count(*) AS n, sum(price) AS total FROM {} GROUP BY symbol, window_start) AS per_window",
            tumble_sql("a", 10)
        ),
    )
}

#[test]
fn views_are_shared_nodes_and_their_queries_equal_batch_sql() {
    let (a, b) = feeds(31);
    for seed in 0..3 {
        let (mut engine, ids) = engine_with_views(&VIEW_QUERIES);
        let outputs = run_pushes(&mut engine, &interleaved(&a, &b, seed));
        let changelog = [true, false, true, true, false, false, false, false];
        for ((sql, id), changes) in VIEW_QUERIES.iter().zip(&ids).zip(changelog) {
            let rows = rows_of(&outputs, *id);
            let streamed = if changes {
                materialised(&rows, 1)
            } else {
                sorted(rows)
            };
            assert_eq!(
                streamed,
                batch_ab(&a, &b, &batch_view_sql(sql)),
                "seed {seed}: {sql}"
            );
        }
        // Two queries read per_window; its window aggregate exists once.
        let checkpoint = engine.checkpoint().unwrap();
        let shared: Vec<&str> = checkpoint
            .manifest
            .operators
            .iter()
            .filter(|o| o.node.starts_with("v_per_window/") && o.operator.is_some())
            .map(|o| o.node.as_str())
            .collect();
        assert_eq!(shared.len(), 1, "{shared:?}");
        // Window aggregates: one per windowed view, one per windowed query
        // (the TUMBLE over big, the cascade); none copied for readers.
        let windows: Vec<&str> = checkpoint
            .manifest
            .operators
            .iter()
            .filter(|o| o.operator.as_deref() == Some("window"))
            .map(|o| o.node.as_str())
            .collect();
        assert_eq!(windows.len(), 4, "{windows:?}");
    }
}

#[test]
fn views_checkpoint_and_restore_like_everything_else() {
    let (a, b) = feeds(41);
    for seed in 0..3 {
        let pushes: Vec<(&str, String)> = interleaved(&a, &b, seed)
            .into_iter()
            .map(|(stream, rows)| (stream, ndjson(&rows)))
            .collect();
        assert_restore_equals_uninterrupted(
            || engine_with_views(&VIEW_QUERIES),
            &pushes,
            seed + 7,
            5,
        );
    }
    // A checkpoint of an engine with views does not restore into one without.
    let (mut with_views, _) = engine_with_views(&[]);
    let checkpoint = with_views.checkpoint().unwrap();
    let (mut without, _) = engine_with(&[]);
    assert_eq!(
        without.restore(&checkpoint).unwrap_err().code(),
        ErrorCode::CheckpointMismatch
    );
}

#[test]
fn views_refuse_what_they_cannot_do_and_change_nothing() {
    let (mut engine, _) = engine_with_views(&[VIEW_QUERIES[0]]);
    let code = |engine: &mut Engine, sql: &str| engine.execute(sql).unwrap_err().code();
    // Names are shared with streams.
    assert_eq!(
        code(&mut engine, "CREATE VIEW a AS SELECT symbol FROM b"),
        ErrorCode::StreamExists
    );
    assert_eq!(
        code(&mut engine, "CREATE VIEW big AS SELECT symbol FROM b"),
        ErrorCode::StreamExists
    );
    // A changelog view cannot be windowed (tests/changelog_composition.rs
    // has what it can do).
    engine
        .execute("CREATE VIEW counts AS SELECT symbol, count(*) AS n FROM a GROUP BY symbol")
        .unwrap();
    let error = engine
        .create_query("SELECT window_start, count(*) FROM TUMBLE(counts, ts, INTERVAL '1' SECOND) GROUP BY window_start")
        .unwrap_err();
    assert_eq!(error.code(), ErrorCode::Unsupported);
    assert!(error.message().contains("changelog"), "{error}");
    // Rows come from the view's query, not from pushes.
    let error = engine
        .push_json("big", r#"{"symbol":"X","price":1,"ts":1}"#)
        .unwrap_err();
    assert_eq!(error.code(), ErrorCode::InvalidInput);
    assert!(error.message().contains("view"), "{error}");
    // A window needs the view's event-time column.
    let error = engine
        .create_query("SELECT window_start, count(*) FROM TUMBLE(both_feeds, ts, INTERVAL '1' SECOND) GROUP BY window_start")
        .unwrap_err();
    assert_eq!(error.code(), ErrorCode::Unsupported, "{error}");
    assert!(error.message().contains("no event-time column"), "{error}");
    let error = engine
        .create_query("SELECT window_start, count(*) FROM TUMBLE(per_2s, end_2s, INTERVAL '10' SECOND) GROUP BY window_start")
        .unwrap_err();
    assert_eq!(error.code(), ErrorCode::Unsupported, "{error}");
    assert!(error.message().contains("rowtime"), "{error}");
    // A view that kept the window's own column names: say to rename them.
    engine
        .execute(
            "CREATE VIEW raw_windows AS SELECT symbol, window_start, window_time, count(*) AS n \
             FROM TUMBLE(a, ts, INTERVAL '2' SECOND) GROUP BY symbol, window_start, window_time",
        )
        .unwrap();
    let error = engine
        .create_query("SELECT window_start, count(*) FROM TUMBLE(raw_windows, window_time, INTERVAL '10' SECOND) GROUP BY window_start")
        .unwrap_err();
    assert_eq!(error.code(), ErrorCode::Unsupported, "{error}");
    assert!(error.message().contains("rename"), "{error}");
    // A view a query reads cannot be dropped; an unread one can, and its name is free again.
    assert_eq!(code(&mut engine, "DROP VIEW big"), ErrorCode::Unsupported);
    assert_eq!(
        code(&mut engine, "DROP VIEW nothing"),
        ErrorCode::UnknownStream
    );
    assert_eq!(code(&mut engine, "DROP VIEW a"), ErrorCode::UnknownStream);
    engine.execute("DROP VIEW IF EXISTS nothing").unwrap();
    engine.execute("DROP VIEW per_window").unwrap();
    assert_eq!(
        engine
            .create_query("SELECT * FROM per_window")
            .unwrap_err()
            .code(),
        ErrorCode::UnknownStream
    );
    engine
        .execute("CREATE VIEW per_window AS SELECT symbol FROM b")
        .unwrap();
    engine
        .execute("CREATE OR REPLACE VIEW per_window AS SELECT symbol, price FROM b")
        .unwrap();
    assert_eq!(
        code(&mut engine, "SELECT symbol FROM a"),
        ErrorCode::Unsupported
    );
    // The engine still works, and the query on `big` sees its rows.
    let out = engine
        .push_json("a", r#"{"symbol":"X","price":500,"ts":1000}"#)
        .unwrap();
    assert_eq!(out.len(), 1);
    let plan = engine.explain(VIEW_QUERIES[0]).unwrap();
    assert!(plan.contains("View: big"), "{plan}");
}

/// Closing a query removes its operators and state: the other queries go
/// on exactly as if it had never been there, the views it read can be
/// dropped, and checkpoints no longer hold its state.
#[test]
fn closing_a_query_removes_it_and_nothing_else() {
    let (a, b) = feeds(51);
    let pushes = interleaved(&a, &b, 1);
    let (mut reference, reference_ids) = engine_with_views(&[VIEW_QUERIES[0], VIEW_QUERIES[6]]);
    let (mut engine, ids) = engine_with_views(&[VIEW_QUERIES[0], VIEW_QUERIES[3], VIEW_QUERIES[6]]);
    let (first, rest) = pushes.split_at(pushes.len() / 2);
    let mut expected = Vec::new();
    let mut outputs = Vec::new();
    for (stream, rows) in first {
        expected.extend(reference.push_json(stream, &ndjson(rows)).unwrap());
        outputs.extend(engine.push_json(stream, &ndjson(rows)).unwrap());
    }
    // per_window is read by query 1 only.
    assert_eq!(
        engine.execute("DROP VIEW per_window").unwrap_err().code(),
        ErrorCode::Unsupported
    );
    engine.close_query(ids[1]).unwrap();
    assert_eq!(
        engine.close_query(ids[1]).unwrap_err().code(),
        ErrorCode::UnknownQuery
    );
    assert_eq!(
        engine.query_metrics(ids[1]).unwrap_err().code(),
        ErrorCode::UnknownQuery
    );
    engine.execute("DROP VIEW per_window").unwrap();
    reference.execute("DROP VIEW per_window").unwrap();
    // A checkpoint now holds no operator of the closed query or the view.
    let checkpoint = engine.checkpoint().unwrap();
    assert!(
        checkpoint
            .manifest
            .operators
            .iter()
            .all(|o| !o.node.starts_with(&format!("q{}/", ids[1]))
                && !o.node.starts_with("v_per_window/")),
        "{:?}",
        checkpoint.manifest.operators
    );
    let closed_before = rows_of(&outputs, ids[1]).len();
    assert!(
        closed_before > 0,
        "the closed query emitted before it was closed"
    );
    for (stream, rows) in rest {
        expected.extend(reference.push_json(stream, &ndjson(rows)).unwrap());
        outputs.extend(engine.push_json(stream, &ndjson(rows)).unwrap());
    }
    expected.extend(reference.finish().unwrap());
    outputs.extend(engine.finish().unwrap());
    assert_eq!(
        rows_of(&outputs, ids[1]).len(),
        closed_before,
        "nothing after closing"
    );
    for (ours, theirs) in [(ids[0], reference_ids[0]), (ids[2], reference_ids[1])] {
        assert_eq!(rows_of(&outputs, ours), rows_of(&expected, theirs));
        assert_eq!(
            engine.query_metrics(ours).unwrap(),
            reference.query_metrics(theirs).unwrap()
        );
    }
}
