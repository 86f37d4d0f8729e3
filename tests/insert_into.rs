//! `INSERT INTO stream SELECT ...` (issue 19): a job's results become
//! events of a declared stream with the job's watermark, and every query on
//! that stream sees them — whether it was registered before the job or
//! after. Streams fed by several jobs (a union), chains of jobs (cascading
//! windows through streams), checkpoints at random cuts, failed calls and
//! what INSERT refuses. Results are compared with batch SQL.

mod common;

use std::collections::BTreeMap;

use common::{
    apply_changelog, assert_restore_equals_uninterrupted, batch_ab, batch_sql_with, feeds,
    interleaved, ndjson, rows_of, sorted, trades, Rng, Trade,
};
use riffle::{Engine, ErrorCode, QueryId, QueryOutput};

const STREAMS: [&str; 5] = [
    "CREATE STREAM a (symbol VARCHAR, price DOUBLE, ts TIMESTAMP, \
     WATERMARK FOR ts AS ts - INTERVAL '2' SECOND)",
    "CREATE STREAM b (symbol VARCHAR, price DOUBLE, ts TIMESTAMP, \
     WATERMARK FOR ts AS ts - INTERVAL '2' SECOND)",
    // Fed by two jobs: the union of a and b.
    "CREATE STREAM merged (symbol VARCHAR, price DOUBLE, ts TIMESTAMP, \
     WATERMARK FOR ts AS ts - INTERVAL '2' SECOND)",
    // Fed by a window aggregate: 2 s windows with their event time.
    "CREATE STREAM per_2s (symbol VARCHAR, n BIGINT, hi DOUBLE, rowtime TIMESTAMP, \
     WATERMARK FOR rowtime AS rowtime - INTERVAL '1' SECOND)",
    // Fed from per_2s: a chain of two jobs, in milliseconds where per_2s
    // has nanoseconds (watermarks convert).
    "CREATE STREAM per_10s (symbol VARCHAR, n BIGINT, windows BIGINT, rowtime TIMESTAMP(3), \
     WATERMARK FOR rowtime AS rowtime - INTERVAL '1' SECOND)",
];

const INSERTS: [&str; 4] = [
    "INSERT INTO merged SELECT symbol, price, ts FROM a",
    // Columns named and in another order; a WHERE on the way.
    "INSERT INTO merged (ts, symbol, price) SELECT ts, symbol, price FROM b WHERE price > 100",
    "INSERT INTO per_2s SELECT symbol, count(*), max(price), window_time \
     FROM TUMBLE(a, ts, INTERVAL '2' SECOND) GROUP BY symbol, window_start, window_time",
    "INSERT INTO per_10s SELECT symbol, sum(n), count(*), window_time \
     FROM TUMBLE(per_2s, rowtime, INTERVAL '10' SECOND) GROUP BY symbol, window_start, window_time",
];

/// Registered before the jobs that feed their streams.
const EARLY_QUERIES: [&str; 2] = [
    "SELECT symbol, window_start, count(*) AS n, sum(price) AS total \
     FROM TUMBLE(merged, ts, INTERVAL '10' SECOND) GROUP BY symbol, window_start",
    "SELECT symbol, window_start, sum(n) AS n, max(hi) AS hi, count(*) AS windows \
     FROM TUMBLE(per_2s, rowtime, INTERVAL '10' SECOND) GROUP BY symbol, window_start",
];

/// Registered after them.
const LATE_QUERIES: [&str; 4] = [
    "SELECT symbol, count(*) AS n FROM merged GROUP BY symbol",
    "SELECT symbol, n, hi, rowtime FROM per_2s",
    "SELECT symbol, n, windows, rowtime FROM per_10s",
    "SELECT window_start, sum(n) AS n FROM TUMBLE(per_10s, rowtime, INTERVAL '30' SECOND) GROUP BY window_start",
];

/// Which of EARLY_QUERIES ++ LATE_QUERIES emit a changelog (keyed by the
/// first column).
const CHANGELOG: [bool; 6] = [false, false, true, false, false, false];

fn setup() -> (Engine, Vec<QueryId>) {
    let mut engine = Engine::new().unwrap();
    for ddl in STREAMS {
        assert_eq!(engine.execute(ddl).unwrap(), None);
    }
    let mut ids: Vec<QueryId> = EARLY_QUERIES
        .iter()
        .map(|sql| engine.create_query(sql).unwrap())
        .collect();
    for insert in INSERTS {
        assert!(engine.execute(insert).unwrap().is_some(), "{insert}");
    }
    ids.extend(
        LATE_QUERIES
            .iter()
            .map(|sql| engine.create_query(sql).unwrap()),
    );
    (engine, ids)
}

/// 2 s windows of `a`, as batch SQL.
const PER_2S: &str = "SELECT symbol, count(*) AS n, max(price) AS hi, \
     ws + INTERVAL '2 seconds' - INTERVAL '1 millisecond' AS rowtime \
     FROM (SELECT *, date_bin(INTERVAL '2 seconds', ts, TIMESTAMP '1970-01-01') AS ws FROM a) \
     GROUP BY symbol, ws";

fn per_10s() -> String {
    format!(
        "SELECT symbol, sum(n) AS n, count(*) AS windows, \
         arrow_cast(ws + INTERVAL '10 seconds' - INTERVAL '1 millisecond', 'Timestamp(Millisecond, None)') AS rowtime \
         FROM (SELECT *, date_bin(INTERVAL '10 seconds', rowtime, TIMESTAMP '1970-01-01') AS ws FROM ({PER_2S})) \
         GROUP BY symbol, ws"
    )
}

/// The queries as batch SQL over tables a and b: each stream fed by jobs
/// is the jobs' queries inlined.
fn batch_queries() -> Vec<String> {
    let merged = "(SELECT symbol, price, ts FROM a UNION ALL SELECT symbol, price, ts FROM b WHERE price > 100)";
    let window = |secs: i64, time: &str, from: &str| {
        format!(
            "(SELECT *, date_bin(INTERVAL '{secs} seconds', {time}, TIMESTAMP '1970-01-01') AS window_start FROM {from})"
        )
    };
    vec![
        format!(
            "SELECT symbol, window_start, count(*) AS n, sum(price) AS total FROM {} GROUP BY symbol, window_start",
            window(10, "ts", merged)
        ),
        format!(
            "SELECT symbol, window_start, sum(n) AS n, max(hi) AS hi, count(*) AS windows FROM {} GROUP BY symbol, window_start",
            window(10, "rowtime", &format!("({PER_2S})"))
        ),
        format!("SELECT symbol, count(*) AS n FROM {merged} GROUP BY symbol"),
        format!("SELECT symbol, n, hi, rowtime FROM ({PER_2S})"),
        format!("SELECT symbol, n, windows, rowtime FROM ({})", per_10s()),
        format!(
            "SELECT window_start, sum(n) AS n FROM {} GROUP BY window_start",
            window(30, "rowtime", &format!("({})", per_10s()))
        ),
    ]
}

fn streamed(outputs: &[QueryOutput], id: QueryId, changelog: bool) -> Vec<Vec<String>> {
    let rows = rows_of(outputs, id);
    if changelog {
        let mut view = BTreeMap::new();
        apply_changelog(&mut view, &rows, 1);
        sorted(view.into_values().collect())
    } else {
        sorted(rows)
    }
}

#[test]
fn inserted_rows_reach_every_query_on_the_stream_and_equal_batch_sql() {
    let (a, b) = feeds(3);
    let expected: Vec<Vec<Vec<String>>> = batch_queries()
        .iter()
        .map(|sql| batch_ab(&a, &b, sql))
        .collect();
    for seed in 0..3 {
        let (mut engine, ids) = setup();
        let mut outputs = Vec::new();
        for (stream, rows) in interleaved(&a, &b, seed) {
            outputs.extend(engine.push_json(stream, &ndjson(&rows)).unwrap());
        }
        outputs.extend(engine.finish().unwrap());
        for (i, id) in ids.iter().enumerate() {
            assert!(!expected[i].is_empty(), "query {i} has no rows to compare");
            assert_eq!(
                streamed(&outputs, *id, CHANGELOG[i]),
                expected[i],
                "seed {seed}, query {i}"
            );
        }
        // Jobs emit nothing themselves: every output belongs to a query.
        assert!(outputs.iter().all(|o| ids.contains(&o.query)));
        // A query on a stream fed by jobs counts the events behind it.
        let metrics = engine.query_metrics(ids[4]).unwrap();
        assert_eq!(metrics.events_in, a.len() as u64);
        assert!(metrics.finished);
    }
}

#[test]
fn restore_equals_uninterrupted_through_insert_chains() {
    let (a, b) = feeds(13);
    for seed in 0..4 {
        let pushes: Vec<(&str, String)> = interleaved(&a, &b, seed)
            .into_iter()
            .map(|(stream, rows)| (stream, ndjson(&rows)))
            .collect();
        assert_restore_equals_uninterrupted(setup, &pushes, seed + 50, 5);
    }
    // The jobs are part of what a checkpoint was taken of.
    let (mut with_jobs, _) = setup();
    let checkpoint = with_jobs.checkpoint().unwrap();
    let mut without = Engine::new().unwrap();
    for ddl in STREAMS {
        without.execute(ddl).unwrap();
    }
    assert_eq!(
        without.restore(&checkpoint).unwrap_err().code(),
        ErrorCode::CheckpointMismatch
    );
}

fn event(symbol: &str, price: f64, ts: i64) -> String {
    format!("{{\"symbol\":\"{symbol}\",\"price\":{price},\"ts\":{ts}}}")
}

/// A 10 s window's row: its start (nanoseconds, as TIMESTAMP prints) and count.
fn window(start_secs: i64, n: u64) -> Vec<String> {
    vec![(start_secs * 1_000_000_000).to_string(), n.to_string()]
}

/// A stream fed by a job follows the job's watermark; pushed to as well,
/// it waits for the slower of the two (Flink's minimum over inputs).
#[test]
fn a_fed_stream_has_the_minimum_of_its_feeders_watermarks() {
    let mut engine = Engine::new().unwrap();
    engine.execute(STREAMS[0]).unwrap();
    engine.execute(STREAMS[2]).unwrap();
    let counts = engine
        .create_query(
            "SELECT window_start, count(*) AS n FROM TUMBLE(merged, ts, INTERVAL '10' SECOND) GROUP BY window_start",
        )
        .unwrap();
    engine
        .execute("INSERT INTO merged SELECT symbol, price, ts FROM a")
        .unwrap();
    assert!(engine
        .push_json("a", &event("X", 1.0, 1_000))
        .unwrap()
        .is_empty());
    // a's watermark (20 s) passes the first window: merged's follows.
    let out = engine.push_json("a", &event("X", 1.0, 22_000)).unwrap();
    assert_eq!(rows_of(&out, counts), vec![window(0, 1)]);
    assert_eq!(
        engine.query_metrics(counts).unwrap().watermark_millis,
        Some(20_000)
    );
    // A push straight to merged: from now on its own watermark counts too.
    assert!(engine
        .push_json("merged", &event("Y", 2.0, 23_000))
        .unwrap()
        .is_empty());
    // a moves to 48 s, merged's pushes only to 21 s: [20 s, 30 s) waits.
    assert!(engine
        .push_json("a", &event("X", 1.0, 50_000))
        .unwrap()
        .is_empty());
    assert_eq!(
        engine.query_metrics(counts).unwrap().watermark_millis,
        Some(21_000)
    );
    // merged's own pushes reach 43 s: [20 s, 30 s) closes with a row from
    // each feeder; [30 s, 40 s) had none.
    let out = engine
        .push_json("merged", &event("Y", 2.0, 45_000))
        .unwrap();
    assert_eq!(rows_of(&out, counts), vec![window(20, 2)]);
    // Closing the job: merged no longer waits for a.
    let job = 1;
    engine.close_query(job).unwrap();
    let out = engine
        .push_json("merged", &event("Y", 2.0, 70_000))
        .unwrap();
    assert_eq!(rows_of(&out, counts), vec![window(40, 1), window(50, 1)]);
    assert_eq!(
        engine.close_query(job).unwrap_err().code(),
        ErrorCode::UnknownQuery
    );
}

/// A job whose row the stream would not take (a NULL event time) fails
/// the push, which then changes nothing; retried without the row, the run
/// equals one where the row never came. The job fails before any aggregate
/// (a per-row CASE) or after one (a window's result), with queries on the
/// source and on the fed stream around it.
#[test]
fn a_row_the_stream_refuses_fails_the_push_and_changes_nothing() {
    let jobs = [
        "INSERT INTO merged SELECT symbol, price, CASE WHEN price = 1000 THEN NULL ELSE ts END FROM a",
        "INSERT INTO per_2s SELECT symbol, count(*), max(price), \
         CASE WHEN max(price) = 1000 THEN NULL ELSE window_time END \
         FROM TUMBLE(a, ts, INTERVAL '2' SECOND) GROUP BY symbol, window_start, window_time",
    ];
    for (job, fed) in jobs.iter().zip(["merged", "per_2s"]) {
        let time = if fed == "merged" { "ts" } else { "rowtime" };
        let make = || {
            let mut engine = Engine::new().unwrap();
            for ddl in &STREAMS[..4] {
                engine.execute(ddl).unwrap();
            }
            let windows = engine
                .create_query(
                    "SELECT symbol, window_start, count(*) AS n FROM TUMBLE(a, ts, INTERVAL '5' SECOND) GROUP BY symbol, window_start",
                )
                .unwrap();
            engine.execute(job).unwrap();
            let counts = engine
                .create_query(&format!(
                    "SELECT symbol, window_start, count(*) AS n FROM TUMBLE({fed}, {time}, INTERVAL '5' SECOND) GROUP BY symbol, window_start"
                ))
                .unwrap();
            let totals = engine
                .create_query(&format!(
                    "SELECT symbol, count(*) AS n FROM {fed} GROUP BY symbol"
                ))
                .unwrap();
            (engine, vec![windows, counts, totals])
        };
        // Prices stay below 1000.
        let events = trades(5, 400, 3, 150, 300);
        let (mut clean, ids) = make();
        let mut expected = Vec::new();
        let (mut engine, _) = make();
        let mut outputs = Vec::new();
        for (i, chunk) in events.chunks(40).enumerate() {
            expected.extend(clean.push_json("a", &ndjson(chunk)).unwrap());
            if i % 3 == 1 {
                // First in the push, in a window the rest of the push closes.
                let mut poisoned = vec![Trade {
                    symbol: "S0".into(),
                    price: 1000.0,
                    ts_ms: chunk[0].ts_ms - 500,
                }];
                poisoned.extend_from_slice(chunk);
                let before = engine.checkpoint().unwrap();
                let error = engine.push_json("a", &ndjson(&poisoned)).unwrap_err();
                assert_eq!(error.code(), ErrorCode::Execution, "{job}: {error}");
                assert!(
                    error.message().contains(&format!("INSERT INTO {fed}")),
                    "{error}"
                );
                let after = engine.checkpoint().unwrap();
                assert_eq!(
                    before.to_bytes(),
                    after.to_bytes(),
                    "{job}: push {i} changed state"
                );
            }
            outputs.extend(engine.push_json("a", &ndjson(chunk)).unwrap());
        }
        expected.extend(clean.finish().unwrap());
        outputs.extend(engine.finish().unwrap());
        for id in ids {
            assert!(!rows_of(&expected, id).is_empty(), "{job}: query {id}");
            assert_eq!(
                rows_of(&outputs, id),
                rows_of(&expected, id),
                "{job}: query {id}"
            );
            assert_eq!(
                engine.query_metrics(id).unwrap(),
                clean.query_metrics(id).unwrap()
            );
        }
    }
}

#[test]
fn insert_refuses_what_it_cannot_do_and_changes_nothing() {
    let (mut engine, _) = setup();
    engine
        .execute("CREATE VIEW big AS SELECT symbol, price, ts FROM a WHERE price > 300")
        .unwrap();
    let before = engine.checkpoint().unwrap().to_bytes();
    let cases = [
        ("INSERT INTO nowhere SELECT symbol, price, ts FROM a", ErrorCode::UnknownStream, "nowhere"),
        ("INSERT INTO big SELECT symbol, price, ts FROM a", ErrorCode::Unsupported, "view"),
        ("INSERT INTO a SELECT symbol, price, ts FROM a", ErrorCode::Unsupported, "itself"),
        // Through a view and through the jobs already feeding merged.
        ("INSERT INTO a SELECT symbol, price, ts FROM big", ErrorCode::Unsupported, "itself"),
        ("INSERT INTO a SELECT symbol, price, ts FROM merged", ErrorCode::Unsupported, "itself"),
        ("INSERT INTO per_2s SELECT symbol, n, 1.0, rowtime FROM per_10s", ErrorCode::Unsupported, "itself"),
        ("INSERT INTO merged SELECT symbol, price FROM a", ErrorCode::SqlPlan, "Column count"),
        (
            "INSERT INTO per_2s SELECT symbol, count(*), max(price), max(ts) FROM a GROUP BY symbol",
            ErrorCode::Unsupported,
            "changelog",
        ),
        ("INSERT OVERWRITE merged SELECT symbol, price, ts FROM a", ErrorCode::Unsupported, "new events"),
        ("INSERT INTO merged VALUES ('X', 1.0, TIMESTAMP '2024-01-01 00:00:00')", ErrorCode::Unsupported, "stream"),
    ];
    for (sql, code, says) in cases {
        let error = engine
            .execute(sql)
            .expect_err(&format!("{sql} was accepted"));
        assert_eq!(error.code(), code, "{sql}: {error}");
        assert!(error.message().contains(says), "{sql}: {error}");
    }
    assert_eq!(engine.checkpoint().unwrap().to_bytes(), before);
    // query() points to sql() for INSERT.
    let error = engine
        .create_query("INSERT INTO merged SELECT symbol, price, ts FROM a")
        .unwrap_err();
    assert!(error.message().contains("sql()"), "{error}");
}

#[test]
fn explain_shows_the_job_and_the_stream_it_feeds() {
    let (engine, _) = setup();
    let plan = engine
        .explain("EXPLAIN INSERT INTO per_2s SELECT symbol, count(*), max(price), window_time FROM TUMBLE(a, ts, INTERVAL '2' SECOND) GROUP BY symbol, window_start, window_time")
        .unwrap();
    for part in ["StreamSource: a", "WindowAggregate", "InsertInto: per_2s"] {
        assert!(plan.contains(part), "missing {part:?} in\n{plan}");
    }
}

/// Two jobs into one stream, and a third from it into another: one push
/// hands the third job rows and watermarks of both feeders in turn, and
/// every row must be counted where it belongs (each event twice).
#[test]
fn rows_between_watermarks_of_several_jobs_are_counted_where_they_belong() {
    let ddl = |name: &str| {
        format!(
            "CREATE STREAM {name} (symbol VARCHAR, price DOUBLE, ts TIMESTAMP, \
             WATERMARK FOR ts AS ts - INTERVAL '0' SECOND)"
        )
    };
    let events = trades(21, 400, 3, 113, 1);
    for seed in 0..3 {
        let mut engine = Engine::new().unwrap();
        for name in ["t", "s2", "s3"] {
            engine.execute(&ddl(name)).unwrap();
        }
        for job in [
            "INSERT INTO s2 SELECT symbol, price, ts FROM t",
            "INSERT INTO s2 SELECT symbol, price, ts FROM t",
            "INSERT INTO s3 SELECT symbol, price, ts FROM s2",
        ] {
            engine.execute(job).unwrap();
        }
        let counts = engine
            .create_query(
                "SELECT window_start, count(*) AS n FROM TUMBLE(s3, ts, INTERVAL '10' SECOND) GROUP BY window_start",
            )
            .unwrap();
        let mut rng = Rng::new(seed);
        let mut outputs = Vec::new();
        let mut rest = events.as_slice();
        while !rest.is_empty() {
            let take = (1 + rng.below(60) as usize).min(rest.len());
            let (head, tail) = rest.split_at(take);
            outputs.extend(engine.push_json("t", &ndjson(head)).unwrap());
            rest = tail;
        }
        outputs.extend(engine.finish().unwrap());
        let doubled = "SELECT date_bin(INTERVAL '10 seconds', ts, TIMESTAMP '1970-01-01') AS window_start, 2 * count(*) AS n \
                       FROM t GROUP BY 1";
        assert_eq!(
            sorted(rows_of(&outputs, counts)),
            batch_sql_with(&events, doubled, |_| {}),
            "seed {seed}"
        );
        assert_eq!(engine.query_metrics(counts).unwrap().late_events_dropped, 0);
    }
}

/// A stream's first push behind the watermark its job already gave it:
/// the row is late (dropped and counted), not taken into a window that
/// already closed.
#[test]
fn a_first_push_behind_a_fed_streams_watermark_is_late() {
    let mut engine = Engine::new().unwrap();
    engine.execute(STREAMS[0]).unwrap();
    engine.execute(STREAMS[2]).unwrap();
    engine
        .execute("INSERT INTO merged SELECT symbol, price, ts FROM a")
        .unwrap();
    let counts = engine
        .create_query(
            "SELECT window_start, count(*) AS n FROM TUMBLE(merged, ts, INTERVAL '10' SECOND) GROUP BY window_start",
        )
        .unwrap();
    engine.push_json("a", &event("X", 1.0, 1_000)).unwrap();
    let out = engine.push_json("a", &event("X", 1.0, 22_000)).unwrap();
    assert_eq!(rows_of(&out, counts), vec![window(0, 1)]);
    assert!(engine
        .push_json("merged", &event("Y", 1.0, 5_000))
        .unwrap()
        .is_empty());
    assert_eq!(engine.query_metrics(counts).unwrap().late_events_dropped, 1);
    let out = engine.finish().unwrap();
    assert_eq!(rows_of(&out, counts), vec![window(20, 1)]);
}
