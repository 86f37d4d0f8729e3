//! Aggregates over changelogs (issue 19): an aggregate that reads the
//! results of GROUP BY without a window takes `update_before` and `delete`
//! rows back out (Flink's retraction), so its own changelog always equals
//! the same SQL run as batch over the whole input. Checked at random push
//! splits, through checkpoints at random cuts, and for what cannot retract.

mod common;

use std::collections::BTreeMap;

use common::{
    apply_changelog, assert_restore_equals_uninterrupted, batch_sql, ndjson, rows_of, sorted,
    trades, Rng, Trade, TRADES_DDL,
};
use riffle::{Engine, ErrorCode, QueryId, QueryOutput};

/// Queries over changelogs, with the number of key columns of each result.
const QUERIES: [(&str, usize); 9] = [
    // How many symbols have traded n times: groups come and go.
    (
        "SELECT n, count(*) AS symbols, min(symbol) AS first, max(symbol) AS last \
         FROM (SELECT symbol, count(*) AS n FROM trades GROUP BY symbol) GROUP BY n",
        1,
    ),
    // One row over every symbol's totals: extremes that are retracted.
    (
        "SELECT max(total) AS top, min(total) AS low, sum(total) AS everything, avg(n) AS mean, count(*) AS symbols \
         FROM (SELECT symbol, sum(price) AS total, count(*) AS n FROM trades GROUP BY symbol)",
        0,
    ),
    // Three levels.
    (
        "SELECT c, count(*) AS counts FROM ( \
           SELECT n, count(*) AS c FROM (SELECT symbol, count(*) AS n FROM trades GROUP BY symbol) GROUP BY n) \
         GROUP BY c",
        1,
    ),
    // Keys and arguments computed from the changelog's columns, a FILTER, HAVING.
    (
        "SELECT n % 3 AS bucket, sum(hi - lo) AS spread, count(*) FILTER (WHERE hi > 500) AS high \
         FROM (SELECT symbol, count(*) AS n, max(price) AS hi, min(price) AS lo FROM trades GROUP BY symbol) \
         GROUP BY n % 3 HAVING count(*) > 1",
        1,
    ),
    // count(DISTINCT) keeps each value with its multiplicity: a value
    // leaves when its last row is retracted. Alone and beside others.
    (
        "SELECT count(DISTINCT n) AS distinct_counts FROM (SELECT symbol, count(*) AS n FROM trades GROUP BY symbol)",
        0,
    ),
    (
        "SELECT n % 2 AS parity, count(DISTINCT n) AS distinct_counts, count(*) AS symbols \
         FROM (SELECT symbol, count(*) AS n FROM trades GROUP BY symbol) GROUP BY n % 2",
        1,
    ),
    // A WHERE over the changelog runs as the inner query's HAVING: rows
    // enter and leave the outer count as they pass and fail it.
    (
        "SELECT count(*) AS busy, sum(n) AS events FROM (SELECT symbol, count(*) AS n FROM trades GROUP BY symbol) WHERE n > 14",
        0,
    ),
    // A column of the query's own named like the change column.
    (
        "SELECT n, count(*) AS symbols, max(_op) AS last FROM (SELECT symbol AS _op, count(*) AS n FROM trades GROUP BY symbol) GROUP BY n",
        1,
    ),
    // Integer sums and averages of integers.
    (
        "SELECT sum(n) AS events, avg(n) AS per_symbol, max(n) AS busiest \
         FROM (SELECT symbol, count(*) AS n FROM trades GROUP BY symbol)",
        0,
    ),
];

fn setup() -> (Engine, Vec<QueryId>) {
    let mut engine = Engine::new().unwrap();
    engine.execute(TRADES_DDL).unwrap();
    let ids = QUERIES
        .iter()
        .map(|(sql, _)| engine.create_query(sql).unwrap())
        .collect();
    (engine, ids)
}

fn pushes(events: &[Trade], seed: u64) -> Vec<Vec<Trade>> {
    let mut rng = Rng::new(seed);
    let mut out = Vec::new();
    let mut rest = events;
    while !rest.is_empty() {
        let take = (1 + rng.below(30) as usize).min(rest.len());
        let (head, tail) = rest.split_at(take);
        out.push(head.to_vec());
        rest = tail;
    }
    out
}

/// The final table a changelog describes, checking every change against it.
fn materialised(outputs: &[QueryOutput], id: QueryId, keys: usize) -> Vec<Vec<String>> {
    let mut view = BTreeMap::new();
    apply_changelog(&mut view, &rows_of(outputs, id), keys);
    sorted(view.into_values().collect())
}

#[test]
fn aggregates_over_changelogs_equal_batch_sql() {
    // Many symbols, few events each: counts move through small values, so
    // groups of the outer aggregates appear and disappear.
    let events = trades(17, 900, 60, 50, 100);
    for seed in 0..4 {
        let (mut engine, ids) = setup();
        let mut outputs = Vec::new();
        for push in pushes(&events, seed) {
            outputs.extend(engine.push_json("trades", &ndjson(&push)).unwrap());
        }
        outputs.extend(engine.finish().unwrap());
        for ((sql, keys), id) in QUERIES.iter().zip(&ids) {
            let expected = batch_sql(&events, &sql.replace("FROM trades", "FROM t"));
            assert!(!expected.is_empty());
            assert_eq!(
                materialised(&outputs, *id, *keys),
                expected,
                "seed {seed}: {sql}"
            );
        }
        // Deletes happened: some n stopped having symbols.
        let deletes = rows_of(&outputs, ids[0])
            .iter()
            .filter(|row| row.last().map(String::as_str) == Some("delete"))
            .count();
        assert!(deletes > 0, "seed {seed}: no group of n went away");
    }
}

#[test]
fn restore_equals_uninterrupted_over_changelogs() {
    let events = trades(23, 700, 40, 50, 100);
    for seed in 0..4 {
        let texts: Vec<(&str, String)> = pushes(&events, seed)
            .iter()
            .map(|push| ("trades", ndjson(push)))
            .collect();
        assert_restore_equals_uninterrupted(setup, &texts, seed + 9, 4);
    }
}

#[test]
fn what_cannot_retract_is_refused_by_name() {
    let (mut engine, _) = setup();
    let inner = "(SELECT symbol, count(*) AS n, max(price) AS hi FROM trades GROUP BY symbol)";
    for (outer, names) in [
        (
            format!("SELECT approx_percentile_cont(0.5) WITHIN GROUP (ORDER BY hi) FROM {inner}"),
            "approx_percentile_cont",
        ),
        (
            format!("SELECT string_agg(symbol, ',') FROM {inner}"),
            "string_agg",
        ),
    ] {
        let error = engine.create_query(&outer).unwrap_err();
        assert_eq!(error.code(), ErrorCode::Unsupported, "{outer}: {error}");
        assert!(error.message().contains(names), "{outer}: {error}");
        assert!(
            error.message().contains("count, sum, avg, min and max"),
            "{error}"
        );
    }
    // Other DISTINCT aggregates cannot retract.
    let error = engine
        .create_query(&format!("SELECT sum(DISTINCT n), count(*) FROM {inner}"))
        .unwrap_err();
    assert!(error.message().contains("DISTINCT"), "{error}");
}

/// Over early window results (`EMIT ON UPDATE`: each push's partial counts,
/// each taken back by the next): the final table is the batch result over
/// the complete windows.
#[test]
fn an_aggregate_over_early_window_results_equals_batch_sql() {
    let sql = "SELECT symbol, max(n) AS busiest, count(*) AS windows, sum(n) AS events FROM ( \
                 SELECT symbol, window_start, count(*) AS n FROM TUMBLE(trades, ts, INTERVAL '10' SECOND) \
                 GROUP BY symbol, window_start) GROUP BY symbol";
    let batch = sql.replace(
        "TUMBLE(trades, ts, INTERVAL '10' SECOND)",
        "(SELECT *, date_bin(INTERVAL '10 seconds', ts, TIMESTAMP '1970-01-01') AS window_start FROM t)",
    );
    let events = trades(29, 800, 5, 97, 400);
    for seed in 0..3 {
        let mut engine = Engine::new().unwrap();
        engine.execute(TRADES_DDL).unwrap();
        let id = engine
            .create_query(&format!("{sql} EMIT ON UPDATE"))
            .unwrap();
        let mut outputs = Vec::new();
        for push in pushes(&events, seed) {
            outputs.extend(engine.push_json("trades", &ndjson(&push)).unwrap());
        }
        outputs.extend(engine.finish().unwrap());
        assert_eq!(
            materialised(&outputs, id, 1),
            batch_sql(&events, &batch),
            "seed {seed}"
        );
    }
}
