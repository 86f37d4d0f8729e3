//! Pushes that fail after state has changed (issue 19, part 3): an
//! expression after a window aggregate, after an updating aggregate and
//! after a session aggregate, and in a query over a view's windowed
//! results, each failing in a push that has already added rows to every
//! query's state and closed windows. The failed push must change nothing —
//! the engine's checkpoint is the same before and after it — and a run with
//! such pushes thrown in gives exactly the results (and counters) of one
//! where they never came.

mod common;

use common::Rng;
use riffle::state::checkpoint::Checkpoint;
use riffle::{Engine, ErrorCode, QueryId, QueryOutput};

const DDL: &str = "CREATE STREAM s (k VARCHAR, v BIGINT, ts TIMESTAMP, \
     WATERMARK FOR ts AS ts - INTERVAL '1' SECOND)";

/// Queries that never fail, on every engine.
const STEADY: &[&str] = &[
    "SELECT k, window_start, count(*) AS n, sum(v) AS total FROM TUMBLE(s, ts, INTERVAL '2' SECOND) GROUP BY k, window_start",
    "SELECT k, count(*) AS n, max(v) AS top FROM s GROUP BY k",
    "SELECT k, window_start, window_end, count(*) AS n FROM SESSION(s, ts, INTERVAL '1' SECOND) GROUP BY k, window_start, window_end",
    "SELECT k, window_start, min(v) AS low FROM HOP(s, ts, INTERVAL '1' SECOND, INTERVAL '3' SECOND) GROUP BY k, window_start",
];

/// Views some queries read.
const VIEWS: &[&str] = &[
    "CREATE VIEW per_window AS SELECT k, window_time AS t, min(v) AS m \
     FROM TUMBLE(s, ts, INTERVAL '2' SECOND) GROUP BY k, window_start, window_end, window_time",
    // A changelog view.
    "CREATE VIEW per_k AS SELECT k, min(v) AS m, count(*) AS n FROM s GROUP BY k",
];

/// Queries that fail (division by zero) once a row with v = -1 reaches the
/// step after their aggregate, each after state changed.
const FAILING: &[(&str, &str)] = &[
    (
        "after a window aggregate",
        "SELECT k, window_start, 100 / (min(v) + 1) AS r FROM TUMBLE(s, ts, INTERVAL '2' SECOND) GROUP BY k, window_start",
    ),
    (
        "after an updating aggregate",
        "SELECT k, count(*) AS n, 100 / (min(v) + 1) AS r FROM s GROUP BY k",
    ),
    (
        "after a session aggregate",
        "SELECT k, window_start, window_end, 100 / (min(v) + 1) AS r FROM SESSION(s, ts, INTERVAL '1' SECOND) GROUP BY k, window_start, window_end",
    ),
    (
        "in a step over a changelog view",
        "SELECT k, n, 100 / (m + 1) AS r FROM per_k WHERE n > 2",
    ),
    (
        "in a window over a view's windows",
        "SELECT k, window_start, sum(100 / (m + 1)) AS r FROM TUMBLE(per_window, t, INTERVAL '6' SECOND) GROUP BY k, window_start",
    ),
    (
        // The left side's rows are in the join's state when the right
        // side's fail the condition.
        "in an interval join's condition",
        "SELECT x.k, x.v, y.v AS w FROM s AS x JOIN s AS y ON x.k = y.k \
         AND y.ts BETWEEN x.ts - INTERVAL '1' SECOND AND x.ts AND 100 / (y.v + 1) > 0",
    ),
];

fn setup(failing: &str) -> (Engine, Vec<QueryId>) {
    let mut engine = Engine::new().unwrap();
    engine.execute(DDL).unwrap();
    for view in VIEWS {
        engine.execute(view).unwrap();
    }
    // The failing query in the middle: queries before and after it change
    // state in the failing push.
    let mut queries: Vec<&str> = STEADY.to_vec();
    queries.insert(2, failing);
    let ids = queries
        .iter()
        .map(|sql| engine.create_query(sql).unwrap())
        .collect();
    (engine, ids)
}

fn line(k: &str, v: i64, ts: i64) -> String {
    format!("{{\"k\":\"{k}\",\"v\":{v},\"ts\":{ts}}}\n")
}

/// Normal pushes: v ≥ 0, disorder inside the watermark's bound.
fn pushes(seed: u64) -> Vec<(String, i64)> {
    let mut rng = Rng::new(seed);
    let mut pushes = Vec::new();
    let mut at = 0i64;
    while pushes.len() < 120 {
        let rows = 1 + rng.below(25) as usize;
        let mut text = String::new();
        for _ in 0..rows {
            at += 20 + rng.below(60) as i64;
            let ts = at - rng.below(800) as i64;
            text.push_str(&line(
                &format!("K{}", rng.below(4)),
                rng.below(50) as i64,
                ts.max(0),
            ));
        }
        pushes.push((text, at));
    }
    pushes
}

/// A push that closes windows and brings v = -1 into a window it closes:
/// its rows go into every query's state before the failing step runs.
fn poison(latest: i64) -> String {
    line("K0", 3, latest) + &line("K1", -1, latest) + &line("K2", 7, latest + 9_000)
}

fn checkpoint_state(engine: &mut Engine) -> Checkpoint {
    engine.checkpoint().unwrap()
}

#[test]
fn a_push_failing_after_state_changed_changes_nothing() {
    for (name, failing) in FAILING {
        let normal = pushes(11);
        let (mut reference, ids) = setup(failing);
        let mut expected: Vec<QueryOutput> = Vec::new();
        for (text, _) in &normal {
            expected.extend(reference.push_json("s", text).unwrap());
        }
        expected.extend(reference.finish().unwrap());

        let (mut engine, _) = setup(failing);
        let mut outputs = Vec::new();
        let mut failures = 0;
        for (i, (text, latest)) in normal.iter().enumerate() {
            if i % 7 == 3 {
                let before = checkpoint_state(&mut engine);
                let error = engine
                    .push_json("s", &poison(*latest))
                    .expect_err("the poisoned push fails");
                assert_eq!(error.code(), ErrorCode::Execution, "{name}: {error}");
                failures += 1;
                assert!(
                    before == checkpoint_state(&mut engine),
                    "{name}: the failed push {i} changed the engine's state"
                );
            }
            outputs.extend(engine.push_json("s", text).unwrap());
        }
        outputs.extend(engine.finish().unwrap());
        assert!(failures >= 15, "{name}: only {failures} failures");
        for (q, id) in ids.iter().enumerate() {
            assert_eq!(
                common::rows_of(&outputs, *id),
                common::rows_of(&expected, *id),
                "{name}: query {q}"
            );
            assert_eq!(
                engine.query_metrics(*id).unwrap(),
                reference.query_metrics(*id).unwrap(),
                "{name}: query {q}: metrics"
            );
        }
    }
}

/// `finish()` failing in one query leaves every query open: fed more rows
/// and finished again without the bad value, the results are those of a
/// run that never failed.
#[test]
fn a_failed_finish_changes_nothing() {
    let failing = FAILING[0].1;
    let normal = pushes(12);
    let (mut reference, ids) = setup(failing);
    let (mut engine, _) = setup(failing);
    let (mut expected, mut outputs) = (Vec::new(), Vec::new());
    for (text, _) in &normal {
        expected.extend(reference.push_json("s", text).unwrap());
        outputs.extend(engine.push_json("s", text).unwrap());
    }
    // A row with v = -1 in the last open window: the push closes nothing,
    // finish() fails on it. Undo the row by restoring from before it.
    let latest = normal.last().unwrap().1;
    let saved = engine.checkpoint().unwrap();
    engine
        .push_json("s", &line("K3", -1, latest))
        .expect("the row alone closes no window");
    let before = checkpoint_state(&mut engine);
    let error = engine.finish().expect_err("finish meets the bad row");
    assert_eq!(error.code(), ErrorCode::Execution, "{error}");
    assert!(
        before == checkpoint_state(&mut engine),
        "finish changed state"
    );
    engine.restore(&saved).unwrap();
    expected.extend(reference.finish().unwrap());
    outputs.extend(engine.finish().unwrap());
    for id in &ids {
        assert_eq!(
            common::rows_of(&outputs, *id),
            common::rows_of(&expected, *id)
        );
    }
}

/// A graph with every kind of operator: scans, chains, window, HOP,
/// session, updating and refining aggregates, a union, a view read by two
/// queries, an INSERT INTO job and a stream it feeds, an aggregate over a
/// changelog, steps over a changelog view and a union with a changelog.
fn every_operator() -> (Engine, Vec<QueryId>) {
    let mut engine = Engine::new().unwrap();
    engine.execute(DDL).unwrap();
    engine
        .execute(
            "CREATE STREAM fed (k VARCHAR, n BIGINT, t TIMESTAMP, WATERMARK FOR t AS t - INTERVAL '1' SECOND)",
        )
        .unwrap();
    for view in VIEWS {
        engine.execute(view).unwrap();
    }
    engine
        .execute(
            "CREATE VIEW enriched AS SELECT s.k, fed.n, s.ts FROM s JOIN fed \
             ON s.k = fed.k AND fed.t BETWEEN s.ts - INTERVAL '3' SECOND AND s.ts",
        )
        .unwrap();
    let mut ids: Vec<QueryId> = STEADY
        .iter()
        .map(|sql| engine.create_query(sql).unwrap())
        .collect();
    engine
        .execute(
            "INSERT INTO fed SELECT k, count(*), window_time FROM TUMBLE(s, ts, INTERVAL '1' SECOND) \
             GROUP BY k, window_start, window_time",
        )
        .unwrap();
    for sql in [
        "SELECT k, window_start, sum(n) AS n FROM TUMBLE(fed, t, INTERVAL '4' SECOND) GROUP BY k, window_start",
        "SELECT k, m FROM per_window WHERE m > 10 UNION ALL SELECT k, v AS m FROM s WHERE v > 45",
        "SELECT window_start, max(m) AS top FROM TUMBLE(per_window, t, INTERVAL '6' SECOND) GROUP BY window_start",
        "SELECT n, count(*) AS keys FROM (SELECT k, count(*) AS n FROM s GROUP BY k) GROUP BY n",
        "SELECT k, window_start, count(*) AS n FROM TUMBLE(s, ts, INTERVAL '2' SECOND) GROUP BY k, window_start EMIT ON UPDATE",
        // Steps over a changelog view, a union of a changelog with final
        // rows, and an aggregate over it.
        "SELECT m, count(*) AS keys FROM (SELECT k, m FROM per_k WHERE n > 1 UNION ALL SELECT k, v AS m FROM s WHERE v > 45) GROUP BY m",
        // Interval joins: of a stream with itself, and with a stream fed by
        // INSERT INTO, then windowed.
        "SELECT x.k, x.v, y.v AS w FROM s AS x LEFT JOIN s AS y ON x.k = y.k \
         AND y.ts BETWEEN x.ts - INTERVAL '1' SECOND AND x.ts AND x.v > y.v",
        "SELECT k, window_start, count(*) AS n, sum(n) AS fed FROM TUMBLE(enriched, ts, INTERVAL '2' SECOND) \
         GROUP BY k, window_start",
    ] {
        ids.push(engine.create_query(sql).unwrap());
    }
    (engine, ids)
}

/// Fault injection at every operator of a multi-query graph, in turn: a
/// push that fails there (whatever ran before it in the push, in any
/// query) changes nothing, and a run with such failed pushes retried gives
/// exactly the results and counters of a run where they never failed.
#[test]
fn a_failure_injected_at_any_operator_changes_nothing() {
    let normal = pushes(5);
    let (clean, ids) = every_operator();
    let operators = clean.operator_ids();
    assert!(operators.len() >= 25, "{} operators", operators.len());
    let mut clean = clean;
    let mut expected: Vec<QueryOutput> = Vec::new();
    for (text, _) in &normal {
        expected.extend(clean.push_json("s", text).unwrap());
    }
    expected.extend(clean.finish().unwrap());
    for operator in &operators {
        let (mut engine, _) = every_operator();
        let mut outputs = Vec::new();
        let mut failed = 0;
        for (i, (text, _)) in normal.iter().enumerate() {
            if i % 7 == 3 {
                engine.inject_failure(Some(operator)).unwrap();
                let before = engine.checkpoint().unwrap().to_bytes();
                let error = engine.push_json("s", text).unwrap_err();
                assert_eq!(error.code(), ErrorCode::Execution, "{operator}: {error}");
                assert!(error.message().contains(operator.as_str()), "{error}");
                assert_eq!(
                    engine.checkpoint().unwrap().to_bytes(),
                    before,
                    "a failure at {operator} changed the engine"
                );
                engine.inject_failure(None).unwrap();
                failed += 1;
            }
            outputs.extend(engine.push_json("s", text).unwrap());
        }
        // finish() fails there too, and changes nothing.
        engine.inject_failure(Some(operator)).unwrap();
        let before = engine.checkpoint().unwrap().to_bytes();
        assert!(engine.finish().is_err(), "{operator}: finish");
        assert_eq!(engine.checkpoint().unwrap().to_bytes(), before);
        engine.inject_failure(None).unwrap();
        outputs.extend(engine.finish().unwrap());
        assert!(failed > 10);
        for id in &ids {
            assert_eq!(
                common::rows_of(&outputs, *id),
                common::rows_of(&expected, *id),
                "failures at {operator}: query {id}"
            );
            assert_eq!(
                engine.query_metrics(*id).unwrap(),
                clean.query_metrics(*id).unwrap(),
                "failures at {operator}: query {id}"
            );
        }
    }
}
