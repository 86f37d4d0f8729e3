//! Changelogs composed like any other result (issue 19): views whose query
//! is an updating aggregate, `WHERE` and `SELECT` expressions over them,
//! views over such views, `UNION ALL` of changelogs with each other and
//! with final rows, and aggregates over all of these. Each query's
//! changelog, applied change by change, must give the same table as its
//! SQL run as batch over everything pushed, at random push splits and
//! interleavings and through checkpoints at random cuts.

mod common;

use common::{
    assert_refused, assert_restore_equals_uninterrupted, batch_ab, interleaved, materialised,
    ndjson, rows_of, run_pushes, trades, Trade,
};
use riffle::{Engine, ErrorCode, QueryId};

const DDL: [&str; 2] = [
    "CREATE STREAM a (symbol VARCHAR, price DOUBLE, ts TIMESTAMP, \
     WATERMARK FOR ts AS ts - INTERVAL '2' SECOND)",
    "CREATE STREAM b (symbol VARCHAR, price DOUBLE, ts TIMESTAMP, \
     WATERMARK FOR ts AS ts - INTERVAL '2' SECOND)",
];

/// The view's own query, for batch SQL (where views are subqueries).
const PER_SYMBOL: &str = "SELECT symbol, count(*) AS n, sum(price) AS total FROM a GROUP BY symbol";
const HISTOGRAM: &str = "SELECT n, count(*) AS symbols FROM per_symbol GROUP BY n";
const BOTH_COUNTS: &str = "SELECT symbol, count(*) AS n FROM a GROUP BY symbol \
     UNION ALL SELECT symbol, count(*) AS n FROM b GROUP BY symbol";

const VIEWS: [(&str, &str); 3] = [
    ("per_symbol", PER_SYMBOL),
    // A changelog view over a changelog view.
    ("histogram", HISTOGRAM),
    // A changelog view that is a union of two.
    ("both_counts", BOTH_COUNTS),
];

/// Queries with the number of key columns of each result.
const QUERIES: [(&str, usize); 8] = [
    // The view's changelog as it is.
    ("SELECT * FROM per_symbol", 1),
    // Steps over it: both sides of a change pass or fail the WHERE.
    (
        "SELECT symbol, n * 10 AS tens, total / n AS mean FROM per_symbol WHERE n > 14",
        1,
    ),
    ("SELECT * FROM histogram", 1),
    // An aggregate over a filtered changelog view.
    (
        "SELECT count(*) AS busy, sum(n) AS events, max(total) AS top FROM per_symbol WHERE n > 14",
        0,
    ),
    // An aggregate over a union of two changelogs.
    (
        "SELECT n, count(*) AS entries, min(symbol) AS first FROM both_counts GROUP BY n",
        1,
    ),
    // A union of a changelog with final rows, which become inserts.
    (
        "SELECT symbol, sum(n) AS events, count(*) AS parts FROM \
         (SELECT symbol, n FROM per_symbol UNION ALL SELECT symbol, 1 AS n FROM b) GROUP BY symbol",
        1,
    ),
    // A union of changelogs as the query's own result.
    (
        "SELECT 'a' AS side, symbol, n FROM per_symbol \
         UNION ALL SELECT 'b' AS side, symbol, count(*) AS n FROM b GROUP BY symbol",
        2,
    ),
    // Three levels, through two views.
    (
        "SELECT max(symbols) AS widest, count(*) AS counts FROM histogram WHERE n > 10",
        0,
    ),
];

fn setup() -> (Engine, Vec<QueryId>) {
    let mut engine = Engine::new().unwrap();
    for ddl in DDL {
        engine.execute(ddl).unwrap();
    }
    for (name, sql) in VIEWS {
        engine
            .execute(&format!("CREATE VIEW {name} AS {sql}"))
            .unwrap();
    }
    let ids = QUERIES
        .iter()
        .map(|(sql, _)| engine.create_query(sql).unwrap())
        .collect();
    (engine, ids)
}

/// The query as batch SQL: each view read becomes its query.
fn as_batch(sql: &str) -> String {
    let mut sql = sql.to_string();
    // Outer views first: histogram reads per_symbol.
    for (name, query) in VIEWS.iter().rev() {
        sql = sql.replace(&format!("FROM {name}"), &format!("FROM ({query})"));
    }
    sql
}

/// Two feeds with many symbols and few events each, so counts move
/// through small values and the groups of the outer aggregates come and go.
fn feeds(seed: u64) -> (Vec<Trade>, Vec<Trade>) {
    (
        trades(seed, 800, 45, 97, 400),
        trades(seed + 1, 600, 35, 131, 400),
    )
}

#[test]
fn changelog_views_steps_and_unions_equal_batch_sql() {
    for seed in 0..4 {
        let (a, b) = feeds(seed);
        let (mut engine, ids) = setup();
        let outputs = run_pushes(&mut engine, &interleaved(&a, &b, seed));
        for ((sql, keys), id) in QUERIES.iter().zip(&ids) {
            let expected = batch_ab(&a, &b, &as_batch(sql));
            assert!(!expected.is_empty(), "{sql}");
            let rows = rows_of(&outputs, *id);
            assert_eq!(materialised(&rows, *keys), expected, "seed {seed}: {sql}");
        }
        // Rows left the filtered result as their n grew past nothing, and
        // entered it as it passed 14: both kinds of change happened.
        let ops = |id: QueryId| -> Vec<String> {
            rows_of(&outputs, id)
                .into_iter()
                .filter_map(|row| row.last().cloned())
                .collect()
        };
        let filtered = ops(ids[1]);
        assert!(filtered.iter().any(|op| op == "insert"), "seed {seed}");
        assert!(
            filtered.iter().any(|op| op == "update_after"),
            "seed {seed}"
        );
        assert!(
            ops(ids[2]).iter().any(|op| op == "delete"),
            "seed {seed}: no n of the histogram went away"
        );
    }
}

#[test]
fn restore_equals_uninterrupted_for_changelog_compositions() {
    for seed in 0..3 {
        let (a, b) = feeds(seed + 20);
        let texts: Vec<(&str, String)> = interleaved(&a, &b, seed)
            .iter()
            .map(|(stream, rows)| (*stream, ndjson(rows)))
            .collect();
        assert_restore_equals_uninterrupted(setup, &texts, seed + 3, 5);
    }
}

#[test]
fn what_a_changelog_cannot_feed_is_refused_and_changes_nothing() {
    let (mut engine, _) = setup();
    engine
        .execute(
            "CREATE STREAM totals (symbol VARCHAR, n BIGINT, ts TIMESTAMP, \
             WATERMARK FOR ts AS ts)",
        )
        .unwrap();
    // Steps over a changelog have a node of their own.
    let plan = engine
        .explain("SELECT symbol, n FROM per_symbol WHERE n > 3")
        .unwrap();
    assert!(plan.contains("ChangelogSteps"), "{plan}");
    let before = engine.checkpoint().unwrap();
    // Windows take final rows (Flink refuses these too).
    assert_refused(
        engine.create_query(
            "SELECT window_start, count(*) FROM TUMBLE(per_symbol, ts, INTERVAL '1' SECOND) GROUP BY window_start",
        ),
        ErrorCode::Unsupported,
        "changelog",
    );
    // A stream takes final rows.
    assert_refused(
        engine.execute(
            "INSERT INTO totals SELECT symbol, n, CAST(NULL AS TIMESTAMP) FROM per_symbol",
        ),
        ErrorCode::Unsupported,
        "changelog",
    );
    // A HOP's rows carry their slice, which a changelog cannot window.
    assert_refused(
        engine.create_query(
            "SELECT symbol FROM HOP(a, ts, INTERVAL '1' SECOND, INTERVAL '2' SECOND) \
             UNION ALL SELECT symbol FROM per_symbol",
        ),
        ErrorCode::Unsupported,
        "changelog",
    );
    // An aggregate that cannot retract, over a changelog view.
    assert_refused(
        engine.create_query("SELECT approx_median(n) FROM per_symbol"),
        ErrorCode::Unsupported,
        "approx_median",
    );
    assert!(before == engine.checkpoint().unwrap());
    // A view read by a query cannot go; once nothing reads it, it can.
    let error = engine.execute("DROP VIEW per_symbol").unwrap_err();
    assert_eq!(error.code(), ErrorCode::Unsupported, "{error}");
}

/// Queries that read none of a changelog view's columns still follow its
/// changes: a literal per row, and a count of them.
#[test]
fn queries_reading_no_column_of_a_changelog_view_run() {
    let (mut engine, _) = setup();
    let tags = engine
        .create_query("SELECT 'x' AS tag FROM per_symbol")
        .unwrap();
    let count = engine
        .create_query("SELECT count(*) AS rows FROM (SELECT 1 AS one FROM per_symbol)")
        .unwrap();
    let (a, b) = feeds(3);
    let outputs = run_pushes(&mut engine, &interleaved(&a, &b, 3));
    let symbols: i64 = batch_ab(&a, &b, "SELECT count(DISTINCT symbol) FROM a")[0][0]
        .parse()
        .unwrap();
    // Inserts less deletes (updates come in pairs that cancel).
    let net: i64 = rows_of(&outputs, tags)
        .iter()
        .map(|row| match row[1].as_str() {
            "insert" | "update_after" => 1,
            _ => -1,
        })
        .sum();
    assert_eq!(net, symbols);
    let last = rows_of(&outputs, count).pop().unwrap();
    assert_eq!(last[0], symbols.to_string());
}
