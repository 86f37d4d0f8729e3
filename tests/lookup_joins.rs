//! Lookup joins (issue 20): a stream joined with a table the application
//! fills (`CREATE TABLE ... PRIMARY KEY`, `upsert`, `delete`). Each event
//! meets the table as it stands when the event is pushed: every push's
//! results are checked against the same query as batch SQL over the pushed
//! rows and the table's contents at that moment, at random upserts and
//! deletes between pushes. Checkpoints hold the tables; bad input changes
//! nothing; refusals say what to write.

mod common;

use std::collections::BTreeMap;
use std::sync::Arc;

use arrow::array::{ArrayRef, Int64Array, StringArray};
use arrow::datatypes::{DataType, Field, Schema};
use arrow::record_batch::RecordBatch;
use common::{
    assert_refused, assert_restore_equals_uninterrupted, batch, batch_sql_with, ndjson, rows_of,
    sorted, trades, Rng, Trade,
};
use datafusion::datasource::MemTable;
use riffle::{Engine, ErrorCode, QueryId};

const STREAM: &str = "CREATE STREAM a (symbol VARCHAR, price DOUBLE, ts TIMESTAMP, \
     WATERMARK FOR ts AS ts - INTERVAL '2' SECOND)";
const TABLE: &str =
    "CREATE TABLE symbols (symbol VARCHAR, name VARCHAR, tier BIGINT, PRIMARY KEY (symbol))";

/// Each query, run on the stream and as batch SQL over tables `a` (the
/// pushed rows) and `symbols` (the table as it stands): the same text.
const QUERIES: &[&str] = &[
    "SELECT a.symbol, a.price, a.ts, s.name, s.tier FROM a JOIN symbols s ON a.symbol = s.symbol",
    "SELECT a.symbol, a.price, s.name, s.tier FROM a LEFT JOIN symbols AS s ON s.symbol = a.symbol",
    // A condition on the table alone (pushed below the join) and on both.
    "SELECT a.symbol, a.price, s.name FROM a LEFT JOIN symbols s \
         ON a.symbol = s.symbol AND s.tier > 1 AND a.price > s.tier * 100",
    "SELECT a.symbol, a.price, s.name FROM a JOIN symbols s \
         ON a.symbol = s.symbol AND s.tier <> 2 AND a.price < 700",
    // The table first: the stream is the join's right side.
    "SELECT s.name, a.price FROM symbols s JOIN a ON s.symbol = a.symbol",
    "SELECT s.name, a.price, a.symbol FROM symbols s RIGHT JOIN a ON s.symbol = a.symbol",
    // Semi and anti joins.
    "SELECT symbol, price FROM a WHERE symbol IN (SELECT symbol FROM symbols WHERE tier <> 2)",
    "SELECT symbol, price FROM a WHERE NOT EXISTS (SELECT 1 FROM symbols s WHERE s.symbol = a.symbol)",
    "SELECT symbol, price FROM a WHERE EXISTS (SELECT 1 FROM symbols s WHERE s.symbol = a.symbol AND s.tier * 200 < a.price)",
    // A computed stream key, a computed output, and an equality beyond the key.
    "SELECT a.price, s.name || '!' AS shout FROM a JOIN symbols s ON upper(a.symbol) = s.symbol",
    "SELECT a.price, s.name FROM a JOIN symbols s ON a.symbol = s.symbol AND a.symbol = s.name",
];

fn engine_with(queries: &[&str]) -> (Engine, Vec<QueryId>) {
    let mut engine = Engine::new().unwrap();
    engine.execute(STREAM).unwrap();
    engine.execute(TABLE).unwrap();
    let ids = queries
        .iter()
        .map(|sql| engine.create_query(sql).unwrap())
        .collect();
    (engine, ids)
}

/// The table's rows as the test keeps them: symbol → (name, tier).
type Contents = BTreeMap<String, (Option<String>, Option<i64>)>;

fn table_batch(contents: &Contents) -> RecordBatch {
    let schema = Arc::new(Schema::new(vec![
        Field::new("symbol", DataType::Utf8, true),
        Field::new("name", DataType::Utf8, true),
        Field::new("tier", DataType::Int64, true),
    ]));
    let columns: Vec<ArrayRef> = vec![
        Arc::new(StringArray::from_iter_values(contents.keys())),
        Arc::new(StringArray::from_iter(
            contents.values().map(|v| v.0.clone()),
        )),
        Arc::new(Int64Array::from_iter(contents.values().map(|v| v.1))),
    ];
    RecordBatch::try_new(schema, columns).unwrap()
}

fn upsert_json(rows: &[(String, Option<String>, Option<i64>)]) -> String {
    rows.iter()
        .map(|(symbol, name, tier)| {
            let name = name
                .as_ref()
                .map_or("null".to_string(), |n| format!("\"{n}\""));
            let tier = tier.map_or("null".to_string(), |t| t.to_string());
            format!("{{\"symbol\":\"{symbol}\",\"name\":{name},\"tier\":{tier}}}\n")
        })
        .collect()
}

/// `sql` as batch SQL over the pushed rows and the table's contents.
fn batch_lookup(pushed: &[Trade], contents: &Contents, sql: &str) -> Vec<Vec<String>> {
    batch_sql_with(&[], sql, |ctx| {
        let data = batch(pushed);
        let stream = MemTable::try_new(data.schema(), vec![vec![data]]).unwrap();
        ctx.register_table("a", Arc::new(stream)).unwrap();
        let rows = table_batch(contents);
        let table = MemTable::try_new(rows.schema(), vec![vec![rows]]).unwrap();
        ctx.register_table("symbols", Arc::new(table)).unwrap();
    })
}

/// A random table change: a few upserts (names and tiers, sometimes NULL;
/// a symbol twice in one call, the last wins) or deletes.
fn change(rng: &mut Rng, contents: &mut Contents) -> (bool, String) {
    let count = 1 + rng.below(4) as usize;
    if rng.below(4) == 0 {
        let keys: Vec<String> = (0..count).map(|_| format!("S{}", rng.below(7))).collect();
        for key in &keys {
            contents.remove(key);
        }
        let text = keys
            .iter()
            .map(|k| format!("{{\"symbol\":\"{k}\"}}\n"))
            .collect();
        return (false, text);
    }
    let rows: Vec<(String, Option<String>, Option<i64>)> = (0..count)
        .map(|_| {
            let symbol = format!("S{}", rng.below(7));
            let name = match rng.below(5) {
                0 => None,
                1 => Some(symbol.clone()),
                n => Some(format!("N{n}{}", rng.below(3))),
            };
            let tier = (rng.below(6) != 0).then(|| rng.below(4) as i64);
            (symbol, name, tier)
        })
        .collect();
    for (symbol, name, tier) in &rows {
        contents.insert(symbol.clone(), (name.clone(), *tier));
    }
    (true, upsert_json(&rows))
}

#[test]
fn every_push_meets_the_table_as_it_stands_then() {
    for seed in 0..4u64 {
        let (mut engine, ids) = engine_with(QUERIES);
        let mut rng = Rng::new(seed + 40);
        let mut contents = Contents::new();
        let events = trades(seed, 500, 8, 150, 1500);
        let mut rest = &events[..];
        while !rest.is_empty() {
            if rng.below(2) == 0 {
                let (upsert, text) = change(&mut rng, &mut contents);
                if upsert {
                    engine.upsert_json("symbols", &text).unwrap();
                } else {
                    engine.delete_json("symbols", &text).unwrap();
                }
                assert_eq!(engine.table_len("symbols").unwrap(), contents.len());
            }
            let take = (1 + rng.below(30) as usize).min(rest.len());
            let (pushed, tail) = rest.split_at(take);
            rest = tail;
            let outputs = engine.push_json("a", &ndjson(pushed)).unwrap();
            for (sql, id) in QUERIES.iter().zip(&ids) {
                assert_eq!(
                    sorted(rows_of(&outputs, *id)),
                    batch_lookup(pushed, &contents, sql),
                    "seed {seed}: {sql}"
                );
            }
        }
        let metrics = engine.query_metrics(ids[1]).unwrap();
        assert_eq!(metrics.lookups.len(), 1);
        assert_eq!(metrics.lookups[0].table, "symbols");
        assert_eq!(metrics.lookups[0].rows_in, events.len() as u64);
        let matched = engine.query_metrics(ids[0]).unwrap().lookups[0].rows_matched;
        assert!(matched > 0 && matched < events.len() as u64, "{matched}");
    }
}

#[test]
fn a_lookup_join_feeds_a_window_with_the_events_time() {
    let windowed = "SELECT s.name, window_start, count(*) AS n, sum(a.price) AS total \
         FROM TUMBLE(a, ts, INTERVAL '10' SECOND) AS a JOIN symbols s ON a.symbol = s.symbol \
         GROUP BY s.name, window_start, window_end";
    let hopped = "SELECT s.tier, window_start, count(*) AS n \
         FROM HOP(a, ts, INTERVAL '5' SECOND, INTERVAL '10' SECOND) AS a \
         LEFT JOIN symbols s ON a.symbol = s.symbol GROUP BY s.tier, window_start, window_end";
    let (mut engine, ids) = engine_with(&[windowed, hopped]);
    let mut contents = Contents::new();
    for i in 0..6 {
        let name = Some(format!("name{}", i % 3));
        contents.insert(format!("S{i}"), (name, Some(i % 2)));
    }
    let rows: Vec<_> = contents
        .iter()
        .map(|(k, v)| (k.clone(), v.0.clone(), v.1))
        .collect();
    engine.upsert_json("symbols", &upsert_json(&rows)).unwrap();
    let events = trades(3, 800, 8, 90, 1500);
    let mut outputs = Vec::new();
    for chunk in events.chunks(37) {
        outputs.extend(engine.push_json("a", &ndjson(chunk)).unwrap());
    }
    outputs.extend(engine.finish().unwrap());
    let expected = batch_lookup(
        &events,
        &contents,
        "SELECT s.name, date_bin(INTERVAL '10 seconds', a.ts) AS w, count(*), sum(a.price) \
         FROM a JOIN symbols s ON a.symbol = s.symbol GROUP BY s.name, w",
    );
    assert_eq!(sorted(rows_of(&outputs, ids[0])), expected);
    // Each event in its two hopping windows.
    let expected = batch_lookup(
        &events,
        &contents,
        "SELECT tier, w, count(*) FROM (\
           SELECT s.tier, date_bin(INTERVAL '5 seconds', a.ts) AS w FROM a LEFT JOIN symbols s ON a.symbol = s.symbol \
           UNION ALL \
           SELECT s.tier, date_bin(INTERVAL '5 seconds', a.ts) - INTERVAL '5 seconds' AS w FROM a LEFT JOIN symbols s ON a.symbol = s.symbol\
         ) GROUP BY tier, w",
    );
    assert_eq!(sorted(rows_of(&outputs, ids[1])), expected);
}

#[test]
fn keys_of_another_type_match_only_the_values_the_key_holds() {
    let mut engine = Engine::new().unwrap();
    engine
        .execute("CREATE STREAM e (k BIGINT, f DOUBLE, ts BIGINT, WATERMARK FOR ts AS ts)")
        .unwrap();
    engine
        .execute("CREATE TABLE ids (id INT, label VARCHAR, PRIMARY KEY (id))")
        .unwrap();
    let by_bigint = engine
        .create_query("SELECT e.k, i.label FROM e JOIN ids i ON e.k = i.id")
        .unwrap();
    let by_double = engine
        .create_query("SELECT e.f, i.label FROM e JOIN ids i ON e.f = i.id")
        .unwrap();
    engine
        .upsert_json(
            "ids",
            r#"[{"id": 2, "label": "two"}, {"id": 0, "label": "zero"}]"#,
        )
        .unwrap();
    // 2^32 + 2 is no INT, so it must not find 2; nor 2.5.
    let out = engine
        .push_json(
            "e",
            r#"{"k": 2, "f": 2.0, "ts": 1}
{"k": 4294967298, "f": 2.5, "ts": 2}
{"k": 0, "f": -0.0, "ts": 3}"#,
        )
        .unwrap();
    assert_eq!(
        sorted(rows_of(&out, by_bigint)),
        vec![vec!["0", "zero"], vec!["2", "two"]]
    );
    // -0.0 is not 0 to DataFusion's comparison (total order) either.
    assert_eq!(
        sorted(rows_of(&out, by_double)),
        vec![vec!["2.000000e0", "two"]]
    );
}

#[test]
fn table_changes_leave_emitted_results_alone_and_apply_to_later_events() {
    let (mut engine, ids) = engine_with(&[QUERIES[1]]);
    let push = |engine: &mut Engine, ts: i64| {
        let out = engine
            .push_json("a", &format!(r#"{{"symbol":"S1","price":1,"ts":{ts}}}"#))
            .unwrap();
        rows_of(&out, ids[0])
    };
    assert_eq!(
        push(&mut engine, 1000),
        vec![vec!["S1", "1.000000e0", "NULL", "NULL"]]
    );
    let change = engine
        .upsert_json("symbols", r#"{"symbol":"S1","name":"one","tier":1}"#)
        .unwrap();
    assert_eq!(change.inserted, 1);
    assert_eq!(
        push(&mut engine, 2000),
        vec![vec!["S1", "1.000000e0", "one", "1"]]
    );
    // An update, then an upsert of a row without the optional columns.
    let change = engine
        .upsert_json("symbols", r#"{"symbol":"S1","name":"uno"}"#)
        .unwrap();
    assert_eq!(change.updated, 1);
    assert_eq!(
        push(&mut engine, 3000),
        vec![vec!["S1", "1.000000e0", "uno", "NULL"]]
    );
    // Deleting by key; extra fields of the key rows are ignored.
    let change = engine
        .delete_json(
            "symbols",
            r#"[{"symbol":"S1","name":"whatever"},{"symbol":"S9"}]"#,
        )
        .unwrap();
    assert_eq!(change.deleted, 1);
    assert_eq!(
        push(&mut engine, 4000),
        vec![vec!["S1", "1.000000e0", "NULL", "NULL"]]
    );
    // Arrow: columns by name, cast to the declared types.
    let schema = Arc::new(Schema::new(vec![
        Field::new("tier", DataType::Int32, true),
        Field::new("symbol", DataType::Utf8, false),
    ]));
    let rows = RecordBatch::try_new(
        schema,
        vec![
            Arc::new(arrow::array::Int32Array::from(vec![7])),
            Arc::new(StringArray::from(vec!["S1"])),
        ],
    )
    .unwrap();
    let ipc = riffle::state::write_ipc(&rows).unwrap();
    engine.upsert_arrow_ipc("symbols", &ipc).unwrap();
    assert_eq!(
        push(&mut engine, 5000),
        vec![vec!["S1", "1.000000e0", "NULL", "7"]]
    );
}

#[test]
fn bad_table_input_is_refused_and_changes_nothing() {
    let (mut engine, ids) = engine_with(&[QUERIES[0]]);
    engine
        .upsert_json("symbols", r#"{"symbol":"S1","name":"one","tier":1}"#)
        .unwrap();
    let before = engine.checkpoint().unwrap().to_bytes();
    let refusals = [
        (
            engine.upsert_json(
                "symbols",
                "{\"symbol\":\"S2\",\"name\":\"two\"}\n{\"name\":\"keyless\"}",
            ),
            ErrorCode::InvalidInput,
            "symbol",
        ),
        (
            engine.upsert_json("symbols", r#"{"symbol":"S2","tier":"high"}"#),
            ErrorCode::InvalidInput,
            "table 'symbols'",
        ),
        (
            engine.upsert_json("symbols", "{not json"),
            ErrorCode::InvalidInput,
            "table 'symbols'",
        ),
        (
            engine.upsert_json("nope", "{}"),
            ErrorCode::UnknownStream,
            "unknown table 'nope'",
        ),
        (
            engine.upsert_json("a", "{}"),
            ErrorCode::UnknownStream,
            "'a' is a stream",
        ),
        (
            engine.delete_json("symbols", r#"{"name":"one"}"#),
            ErrorCode::InvalidInput,
            "symbol",
        ),
        (
            engine.upsert_arrow_ipc("symbols", b"not arrow"),
            ErrorCode::InvalidInput,
            "Arrow IPC",
        ),
    ];
    for (result, code, says) in refusals {
        assert_refused(result, code, says);
    }
    assert_refused(
        engine.push_json("symbols", r#"{"symbol":"S1"}"#),
        ErrorCode::InvalidInput,
        "is a table",
    );
    assert_refused(
        engine.execute("INSERT INTO symbols SELECT symbol, symbol AS name, 1 AS tier FROM a"),
        ErrorCode::Unsupported,
        "is a table",
    );
    assert_eq!(engine.checkpoint().unwrap().to_bytes(), before);
    let out = engine
        .push_json("a", r#"{"symbol":"S1","price":1,"ts":1000}"#)
        .unwrap();
    assert_eq!(rows_of(&out, ids[0]).len(), 1);
}

#[test]
fn what_a_lookup_join_cannot_do_is_refused_with_what_to_write() {
    let (mut engine, _) = engine_with(&[]);
    engine
        .execute("CREATE TABLE pairs (x VARCHAR, y VARCHAR, v BIGINT, PRIMARY KEY (x, y))")
        .unwrap();
    let refused = [
        (
            "SELECT * FROM a FULL JOIN symbols s ON a.symbol = s.symbol",
            "keeps rows of table 'symbols'",
        ),
        (
            "SELECT * FROM a LEFT JOIN symbols s ON a.symbol = s.name",
            "by its primary key (symbol)",
        ),
        (
            "SELECT * FROM a JOIN pairs p ON a.symbol = p.x",
            "by its primary key (x, y)",
        ),
        (
            "SELECT * FROM a JOIN symbols s ON a.price > s.tier",
            "by its primary key",
        ),
        ("SELECT * FROM symbols", "'symbols' is a table"),
        (
            "SELECT * FROM symbols s JOIN pairs p ON s.symbol = p.x AND s.name = p.y",
            "a join of two tables",
        ),
        (
            "SELECT * FROM (SELECT symbol, count(*) AS n FROM a GROUP BY symbol) c \
             JOIN symbols s ON c.symbol = s.symbol",
            "changelog",
        ),
        (
            "SELECT * FROM a JOIN symbols s ON a.price = s.symbol",
            "looked up by its key",
        ),
        (
            "SELECT * FROM a WHERE a.symbol NOT IN (SELECT symbol FROM symbols)",
            "NOT IN",
        ),
        // A HOP row's window_start is its slice's until an aggregate.
        (
            "SELECT h.symbol FROM HOP(a, ts, INTERVAL '1' SECOND, INTERVAL '2' SECOND) AS h \
             JOIN symbols s ON h.symbol = s.symbol AND extract(second FROM h.window_start) > s.tier",
            "not used in a join condition",
        ),
    ];
    for (sql, says) in refused {
        assert_refused(engine.create_query(sql), ErrorCode::Unsupported, says);
    }
    let ddl = [
        (
            "CREATE TABLE t (a BIGINT)",
            ErrorCode::SqlPlan,
            "has no PRIMARY KEY",
        ),
        (
            "CREATE TABLE t (a BIGINT, PRIMARY KEY (b))",
            ErrorCode::SqlPlan,
            "not a column of table 't'",
        ),
        (
            "CREATE TABLE t (a BIGINT, PRIMARY KEY (a)) WITH (idle_timeout = INTERVAL '1' SECOND)",
            ErrorCode::SqlPlan,
            "stream option",
        ),
        (
            "CREATE TABLE symbols (a BIGINT, PRIMARY KEY (a))",
            ErrorCode::StreamExists,
            "symbols",
        ),
        (
            "CREATE TABLE a (a BIGINT, PRIMARY KEY (a))",
            ErrorCode::StreamExists,
            "'a'",
        ),
        (
            "CREATE STREAM symbols (ts TIMESTAMP, WATERMARK FOR ts AS ts)",
            ErrorCode::StreamExists,
            "symbols",
        ),
        (
            "CREATE STREAM x (a BIGINT, PRIMARY KEY (a))",
            ErrorCode::SqlPlan,
            "CREATE TABLE x",
        ),
    ];
    for (sql, code, says) in ddl {
        assert_refused(engine.execute(sql), code, says);
    }
}

#[test]
fn a_composite_key_and_a_table_with_flink_connector_options() {
    let mut engine = Engine::new().unwrap();
    engine.execute(STREAM).unwrap();
    engine
        .execute(
            "CREATE TABLE prices (symbol VARCHAR, day BIGINT, ref DOUBLE, \
             PRIMARY KEY (symbol, day) NOT ENFORCED) WITH ('connector' = 'jdbc')",
        )
        .unwrap();
    let q = "SELECT a.symbol, p.ref FROM a JOIN prices p \
             ON p.day = CAST(a.price AS BIGINT) % 3 AND p.symbol = a.symbol";
    let id = engine.create_query(q).unwrap();
    engine
        .upsert_json(
            "prices",
            r#"[{"symbol":"S1","day":1,"ref":10},{"symbol":"S1","day":2,"ref":20},{"symbol":"S2","day":1,"ref":30}]"#,
        )
        .unwrap();
    let out = engine
        .push_json(
            "a",
            r#"{"symbol":"S1","price":4,"ts":1}
{"symbol":"S1","price":5,"ts":2}
{"symbol":"S2","price":5,"ts":3}
{"symbol":"S2","price":7,"ts":4}"#,
        )
        .unwrap();
    assert_eq!(
        sorted(rows_of(&out, id)),
        vec![
            vec!["S1", "1.000000e1"],
            vec!["S1", "2.000000e1"],
            vec!["S2", "3.000000e1"]
        ]
    );
    assert!(engine
        .explain(q)
        .unwrap()
        .contains("LookupJoin: Inner table=prices"));
    // A constant for part of the key, and Flink's lookup-join syntax (AS
    // OF a processing time: the table as it stands).
    let constant = engine
        .create_query(
            "SELECT a.symbol, p.ref FROM a JOIN prices p ON p.day = 1 AND p.symbol = a.symbol",
        )
        .unwrap();
    let flink = engine
        .create_query(
            "SELECT a.symbol, p.ref FROM a JOIN prices FOR SYSTEM_TIME AS OF a.proc_time AS p \
             ON p.symbol = a.symbol AND p.day = 2",
        )
        .unwrap();
    let out = engine
        .push_json(
            "a",
            r#"[{"symbol":"S1","price":1,"ts":5},{"symbol":"S2","price":1,"ts":6}]"#,
        )
        .unwrap();
    assert_eq!(
        sorted(rows_of(&out, constant)),
        vec![vec!["S1", "1.000000e1"], vec!["S2", "3.000000e1"]]
    );
    assert_eq!(rows_of(&out, flink), vec![vec!["S1", "2.000000e1"]]);
    // A constant for a column outside the key stands for no key column.
    assert_refused(
        engine.create_query(
            "SELECT a.symbol, p.ref FROM a JOIN prices p ON p.symbol = a.symbol AND p.ref = 1",
        ),
        ErrorCode::Unsupported,
        "by its primary key (symbol, day)",
    );
}

/// Pushes and table changes, as the checkpoint test replays them.
fn script(seed: u64) -> Vec<(&'static str, String)> {
    let mut rng = Rng::new(seed);
    let mut contents = Contents::new();
    let events = trades(seed, 400, 8, 150, 1500);
    let mut steps = Vec::new();
    for chunk in events.chunks(13) {
        if rng.below(2) == 0 {
            let (upsert, text) = change(&mut rng, &mut contents);
            steps.push((if upsert { "+symbols" } else { "-symbols" }, text));
        }
        steps.push(("a", ndjson(chunk)));
    }
    steps
}

#[test]
fn checkpoints_hold_the_tables_and_restore_equals_uninterrupted() {
    let queries = [
        QUERIES[1],
        QUERIES[2],
        "SELECT s.name, window_start, count(*) AS n FROM TUMBLE(a, ts, INTERVAL '10' SECOND) AS a \
         LEFT JOIN symbols s ON a.symbol = s.symbol GROUP BY s.name, window_start, window_end",
    ];
    for seed in 0..3 {
        let steps = script(seed);
        // Table changes go through the engine like pushes do.
        let run =
            |engine: &mut Engine, (target, text): &(&str, String)| match target.strip_prefix('+') {
                Some(table) => {
                    engine.upsert_json(table, text).unwrap();
                    Vec::new()
                }
                None => match target.strip_prefix('-') {
                    Some(table) => {
                        engine.delete_json(table, text).unwrap();
                        Vec::new()
                    }
                    None => engine.push_json(target, text).unwrap(),
                },
            };
        let (mut straight, ids) = engine_with(&queries);
        let mut expected = Vec::new();
        for step in &steps {
            expected.extend(run(&mut straight, step));
        }
        expected.extend(straight.finish().unwrap());
        let mut rng = Rng::new(seed + 9);
        let (mut engine, _) = engine_with(&queries);
        let mut outputs = Vec::new();
        for step in &steps {
            outputs.extend(run(&mut engine, step));
            if rng.below(5) == 0 {
                let bytes = engine.checkpoint().unwrap().to_bytes();
                let (mut fresh, _) = engine_with(&queries);
                let checkpoint = riffle::state::checkpoint::Checkpoint::from_bytes(&bytes).unwrap();
                fresh.restore(&checkpoint).unwrap();
                assert_eq!(
                    fresh.table_len("symbols").unwrap(),
                    engine.table_len("symbols").unwrap()
                );
                engine = fresh;
            }
        }
        outputs.extend(engine.finish().unwrap());
        for id in &ids {
            assert_eq!(
                rows_of(&outputs, *id),
                rows_of(&expected, *id),
                "seed {seed}, query {id}"
            );
        }
    }
    // Without table changes, the shared helper agrees too.
    let pushes: Vec<(&str, String)> = script(7).into_iter().filter(|s| s.0 == "a").collect();
    assert_restore_equals_uninterrupted(
        || {
            let (mut engine, ids) = engine_with(&queries);
            engine
                .upsert_json("symbols", r#"{"symbol":"S1","name":"one","tier":2}"#)
                .unwrap();
            (engine, ids)
        },
        &pushes,
        3,
        4,
    );
}

#[test]
fn a_crafted_table_in_a_checkpoint_is_refused_and_changes_nothing() {
    use riffle::state::checkpoint::{BlobRef, Checkpoint};
    let (mut engine, _) = engine_with(&[QUERIES[0]]);
    engine
        .upsert_json(
            "symbols",
            r#"[{"symbol":"S1","name":"one","tier":1},{"symbol":"S2","name":"two","tier":2}]"#,
        )
        .unwrap();
    let good = engine.checkpoint().unwrap();
    let with_blob = |rows: &RecordBatch, count: u64| {
        let mut checkpoint = good.clone();
        let bytes = riffle::state::write_ipc(rows).unwrap();
        let name = checkpoint.manifest.tables[0].blob.name.clone();
        checkpoint.manifest.tables[0].rows = count;
        checkpoint.manifest.tables[0].blob = BlobRef {
            name: name.clone(),
            bytes: bytes.len() as u64,
            crc32: crc32fast::hash(&bytes),
        };
        for blob in &mut checkpoint.blobs {
            if blob.0 == name {
                blob.1 = bytes.clone();
            }
        }
        checkpoint
    };
    let schema = engine.table_schema("symbols").unwrap();
    let in_schema = |rows: RecordBatch| {
        let columns = rows
            .columns()
            .iter()
            .zip(schema.fields())
            .map(|(c, f)| arrow::compute::cast(c, f.data_type()).unwrap())
            .collect();
        RecordBatch::try_new(Arc::clone(&schema), columns).unwrap()
    };
    let mut twice = Contents::new();
    twice.insert("S1".into(), (Some("x".into()), Some(1)));
    let twice = in_schema(table_batch(&twice));
    let twice = arrow::compute::concat_batches(&schema, &[twice.clone(), twice]).unwrap();
    let wrong_schema = RecordBatch::try_new(
        Arc::new(Schema::new(vec![Field::new(
            "symbol",
            DataType::Utf8,
            true,
        )])),
        vec![Arc::new(StringArray::from(vec!["S1"]))],
    )
    .unwrap();
    let null_key = in_schema(
        RecordBatch::try_new(
            table_batch(&Contents::new()).schema(),
            vec![
                Arc::new(StringArray::from(vec![None::<&str>])),
                Arc::new(StringArray::from(vec![Some("n")])),
                Arc::new(Int64Array::from(vec![Some(1)])),
            ],
        )
        .unwrap(),
    );
    let mut missing = good.clone();
    missing.manifest.tables.clear();
    let mut unknown = good.clone();
    unknown
        .manifest
        .tables
        .push(unknown.manifest.tables[0].clone());
    unknown.manifest.tables[1].name = "ghost".into();
    let crafted: Vec<(Checkpoint, ErrorCode, &str)> = vec![
        (
            with_blob(&twice, 2),
            ErrorCode::CorruptCheckpoint,
            "repeat a key",
        ),
        (
            with_blob(&twice, 5),
            ErrorCode::CorruptCheckpoint,
            "holds 5 rows",
        ),
        (
            with_blob(&wrong_schema, 1),
            ErrorCode::CorruptCheckpoint,
            "schema",
        ),
        (
            with_blob(&null_key, 1),
            ErrorCode::CorruptCheckpoint,
            "primary key",
        ),
        (missing, ErrorCode::CorruptCheckpoint, "table 'symbols'"),
        (unknown, ErrorCode::CheckpointMismatch, "'ghost'"),
    ];
    for (checkpoint, code, says) in crafted {
        let (mut fresh, ids) = engine_with(&[QUERIES[0]]);
        fresh
            .upsert_json("symbols", r#"{"symbol":"S3","name":"three","tier":3}"#)
            .unwrap();
        assert_refused(fresh.restore(&checkpoint), code, says);
        assert_eq!(fresh.table_len("symbols").unwrap(), 1, "{says}");
        let out = fresh
            .push_json("a", r#"{"symbol":"S3","price":1,"ts":1000}"#)
            .unwrap();
        assert_eq!(rows_of(&out, ids[0]).len(), 1, "{says}");
    }
    // The good one restores the rows.
    let (mut fresh, ids) = engine_with(&[QUERIES[0]]);
    fresh.restore(&good).unwrap();
    let out = fresh
        .push_json("a", r#"{"symbol":"S2","price":1,"ts":1000}"#)
        .unwrap();
    assert_eq!(rows_of(&out, ids[0])[0][3], "two");
}

#[test]
fn the_docs_example_runs_as_written() {
    // docs/SQL.md, "Lookup joins", verbatim.
    let table = "CREATE TABLE users (id BIGINT, name VARCHAR, plan VARCHAR, PRIMARY KEY (id));";
    let query = "SELECT c.page, u.name, u.plan, c.ts\nFROM clicks AS c LEFT JOIN users AS u ON c.user_id = u.id";
    let docs = std::fs::read_to_string("docs/SQL.md").unwrap();
    assert!(
        docs.contains(&format!("{table}\n{query}\n")),
        "docs/SQL.md changed"
    );
    let mut engine = Engine::new().unwrap();
    engine
        .execute(
            "CREATE STREAM clicks (user_id BIGINT, page VARCHAR, ts TIMESTAMP, \
             WATERMARK FOR ts AS ts - INTERVAL '1' SECOND)",
        )
        .unwrap();
    engine.execute(table).unwrap();
    let id = engine.create_query(query).unwrap();
    engine
        .upsert_json("users", r#"[{"id": 1, "name": "Ada", "plan": "pro"}]"#)
        .unwrap();
    let out = engine
        .push_json(
            "clicks",
            "{\"user_id\":1,\"page\":\"/\",\"ts\":1000}\n{\"user_id\":2,\"page\":\"/x\",\"ts\":2000}",
        )
        .unwrap();
    assert_eq!(
        sorted(rows_of(&out, id)),
        vec![
            vec!["/", "Ada", "pro", "1000000000"],
            vec!["/x", "NULL", "NULL", "2000000000"],
        ]
    );
}

#[test]
fn a_lookup_join_under_an_interval_join_and_in_a_view() {
    let mut engine = Engine::new().unwrap();
    engine.execute(STREAM).unwrap();
    engine
        .execute(
            "CREATE STREAM b (symbol VARCHAR, price DOUBLE, ts TIMESTAMP, \
             WATERMARK FOR ts AS ts - INTERVAL '2' SECOND)",
        )
        .unwrap();
    engine.execute(TABLE).unwrap();
    engine
        .execute(
            "CREATE VIEW named AS SELECT a.symbol, a.price, s.name FROM a JOIN symbols s ON a.symbol = s.symbol",
        )
        .unwrap();
    // The enriched stream, joined in time with another stream.
    let joined = engine
        .create_query(
            "SELECT x.symbol, s.name, y.price FROM a AS x JOIN symbols s ON x.symbol = s.symbol \
             JOIN b AS y ON y.symbol = x.symbol AND y.ts BETWEEN x.ts AND x.ts + INTERVAL '1' SECOND",
        )
        .unwrap();
    let viewed = engine
        .create_query("SELECT name, price FROM named")
        .unwrap();
    engine
        .upsert_json("symbols", r#"{"symbol":"S1","name":"one","tier":1}"#)
        .unwrap();
    let mut out = engine
        .push_json(
            "a",
            "{\"symbol\":\"S1\",\"price\":1,\"ts\":1000}\n{\"symbol\":\"S2\",\"price\":2,\"ts\":1000}",
        )
        .unwrap();
    out.extend(
        engine
            .push_json(
                "b",
                "{\"symbol\":\"S1\",\"price\":5,\"ts\":1500}\n{\"symbol\":\"S2\",\"price\":6,\"ts\":1500}",
            )
            .unwrap(),
    );
    out.extend(engine.finish().unwrap());
    assert_eq!(rows_of(&out, joined), vec![vec!["S1", "one", "5.000000e0"]]);
    assert_eq!(rows_of(&out, viewed), vec![vec!["one", "1.000000e0"]]);
}
