//! GROUP BY without a window: a changelog that, applied in order, always
//! equals the batch query over the events seen so far.

mod common;

use std::collections::BTreeMap;

use common::*;
use riffle::{Engine, ErrorCode, QueryOptions};

fn engine() -> Engine {
    let mut engine = Engine::new().unwrap();
    engine.execute(TRADES_DDL).unwrap();
    engine
}

#[test]
fn the_changelog_always_materialises_to_the_batch_result() {
    let data = trades(41, 3_000, 6, 50, 1_500);
    let mut engine = engine();
    let query = engine
        .create_query("SELECT symbol, count(*) AS n, sum(price), max(price), count(DISTINCT price > 500) FROM trades GROUP BY symbol EMIT ON UPDATE")
        .unwrap();
    let schema = engine.query_schema(query).unwrap();
    assert_eq!(schema.fields().last().unwrap().name(), "_op");
    let mut view = BTreeMap::new();
    let mut rng = Rng::new(7);
    let mut seen = 0;
    while seen < data.len() {
        let take = (1 + rng.below(400) as usize).min(data.len() - seen);
        let outputs = engine
            .push_json("trades", &ndjson(&data[seen..seen + take]))
            .unwrap();
        seen += take;
        apply_changelog(&mut view, &rows_of(&outputs, query), 1);
        // After every push the view equals the batch query over the prefix.
        if rng.below(4) == 0 || seen == data.len() {
            let expected = batch_sql(
                &data[..seen],
                "SELECT symbol, count(*), sum(price), max(price), count(DISTINCT price > 500) FROM t GROUP BY symbol",
            );
            let got: Vec<Vec<String>> = view.values().cloned().collect();
            assert_eq!(sorted(got), expected, "after {seen} events");
        }
    }
    assert!(
        engine.finish().unwrap().is_empty(),
        "finish changes nothing without a TTL"
    );
}

#[test]
fn having_turns_updates_into_inserts_and_deletes() {
    let mut engine = engine();
    let query = engine
        .create_query("SELECT symbol, count(*) AS n FROM trades GROUP BY symbol HAVING count(*) BETWEEN 2 AND 3")
        .unwrap();
    let mut ops = Vec::new();
    for i in 0..4 {
        let out = engine
            .push_json(
                "trades",
                &format!(r#"{{"symbol":"A","price":1,"ts":{}}}"#, 1000 * i),
            )
            .unwrap();
        ops.extend(rows_of(&out, query));
    }
    let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
    assert_eq!(
        ops,
        vec![
            s(&["A", "2", "insert"]),
            s(&["A", "2", "update_before"]),
            s(&["A", "3", "update_after"]),
            s(&["A", "3", "delete"]),
        ]
    );
}

#[test]
fn a_state_ttl_forgets_idle_groups_with_a_delete() {
    let mut engine = engine();
    let query = engine
        .create_query_with(
            "SELECT symbol, count(*) AS n FROM trades GROUP BY symbol",
            &QueryOptions {
                state_ttl_millis: Some(10_000),
                ..QueryOptions::default()
            },
        )
        .unwrap();
    let push = |engine: &mut Engine, symbol: &str, ts: i64| {
        let out = engine
            .push_json(
                "trades",
                &format!(r#"{{"symbol":"{symbol}","price":1,"ts":{ts}}}"#),
            )
            .unwrap();
        rows_of(&out, query)
    };
    push(&mut engine, "A", 0);
    push(&mut engine, "B", 5_000);
    assert_eq!(engine.query_metrics(query).unwrap().open_windows, 2);
    // Watermark 11 s: A was last updated at watermark -2 s (before any event); B at 0 s.
    let out = push(&mut engine, "B", 13_000);
    assert!(
        out.contains(&vec![
            "A".to_string(),
            "1".to_string(),
            "delete".to_string()
        ]),
        "{out:?}"
    );
    assert_eq!(engine.query_metrics(query).unwrap().open_windows, 1);
    // A comes back as a new group.
    let out = push(&mut engine, "A", 14_000);
    assert_eq!(
        out,
        vec![vec!["A".to_string(), "1".to_string(), "insert".to_string()]]
    );
}

#[test]
fn emit_clauses_are_checked_against_the_query() {
    let mut engine = engine();
    let window = "SELECT window_start, count(*) FROM TUMBLE(trades, ts, INTERVAL '1' MINUTE) GROUP BY window_start";
    engine
        .create_query(&format!("{window} EMIT ON WINDOW CLOSE"))
        .unwrap();
    engine
        .create_query("SELECT symbol, count(*) FROM trades GROUP BY symbol EMIT ON UPDATE;")
        .unwrap();
    let cases = [
        (
            "SELECT symbol, count(*) FROM trades GROUP BY symbol EMIT ON WINDOW CLOSE".to_string(),
            ErrorCode::Unsupported,
        ),
        (
            "SELECT symbol FROM trades EMIT ON UPDATE".to_string(),
            ErrorCode::Unsupported,
        ),
        (format!("{window} EMIT WHENEVER"), ErrorCode::SqlParse),
    ];
    for (sql, code) in cases {
        assert_eq!(engine.create_query(&sql).unwrap_err().code(), code, "{sql}");
    }
}

#[test]
fn thousands_of_keys_expiring_and_coming_back_keep_their_own_counts_across_checkpoints() {
    // 10 s blocks of 20 keys each; a block's keys return 100 blocks
    // (1,000 s) later, long after the 30 s TTL dropped their groups: 2,000
    // keys in all, so the operator's key numbers are compacted as groups
    // expire, while others are live and across checkpoints.
    let block_ms = 10_000;
    let data: Vec<Trade> = (0..30_000i64)
        .map(|i| {
            let ts_ms = i * 50;
            let block = ts_ms / block_ms;
            Trade {
                symbol: format!("K{}", (block % 100) * 20 + i % 20),
                price: 1.0,
                ts_ms,
            }
        })
        .collect();
    let sql = "SELECT symbol, count(*) AS n FROM trades GROUP BY symbol";
    let options = QueryOptions {
        state_ttl_millis: Some(30_000),
        ..QueryOptions::default()
    };
    let mut engine = engine();
    let query = engine.create_query_with(sql, &options).unwrap();
    let mut view = BTreeMap::new();
    for (n, chunk) in data.chunks(700).enumerate() {
        let outputs = engine.push_json("trades", &ndjson(chunk)).unwrap();
        apply_changelog(&mut view, &rows_of(&outputs, query), 1);
        let seen = &data[..(n * 700 + chunk.len())];
        // A key's count runs from its latest block: the one before expired.
        for row in view.values() {
            let latest = seen.iter().rev().find(|t| t.symbol == row[0]).unwrap();
            let block_start = latest.ts_ms / block_ms * block_ms;
            let count = seen
                .iter()
                .filter(|t| t.symbol == row[0] && t.ts_ms >= block_start)
                .count();
            assert_eq!(
                row[1],
                count.to_string(),
                "{row:?} after {} events",
                seen.len()
            );
        }
        // Expiry bounds the groups: a few blocks' keys, never all 2,000.
        assert!(view.len() <= 100, "{} groups", view.len());
        if n % 25 == 24 {
            let bytes = engine.checkpoint().unwrap().to_bytes();
            engine = self::engine();
            assert_eq!(engine.create_query_with(sql, &options).unwrap(), query);
            engine
                .restore(&riffle::state::checkpoint::Checkpoint::from_bytes(&bytes).unwrap())
                .unwrap();
        }
    }
}
