//! Riffle against Apache Flink 2.3: the same events, in the same order,
//! through the same window queries, must give Flink's results, late events
//! included. The goldens in tests/flink/golden were produced by real Flink
//! (tests/flink/make_golden.sh, per-record watermarks `ts - 2 s`); this test
//! needs no Flink.

mod common;

use std::sync::Arc;

use arrow::array::AsArray;
use arrow::datatypes::{DataType, Field, Float64Type, Int64Type, Schema};
use arrow::record_batch::RecordBatch;
use riffle::codec::json::{decode_ndjson, encode_rows};
use riffle::Engine;

const GOLDEN: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/flink/golden");
const SELECT: &str = "SELECT symbol, window_start, window_end, count(*) AS n, sum(price) AS total, min(price) AS lo, max(price) AS hi";

fn result_schema() -> Schema {
    Schema::new(vec![
        Field::new("symbol", DataType::Utf8, true),
        Field::new("window_start", DataType::Int64, true),
        Field::new("window_end", DataType::Int64, true),
        Field::new("n", DataType::Int64, true),
        Field::new("total", DataType::Float64, true),
        Field::new("lo", DataType::Float64, true),
        Field::new("hi", DataType::Float64, true),
    ])
}

/// Rows of a result batch in `result_schema`, money rounded to cents.
fn rows(batch: &RecordBatch) -> Vec<String> {
    let symbol = batch.column(0).as_string::<i32>();
    let int = |i: usize| batch.column(i).as_primitive::<Int64Type>();
    let money = |i: usize| batch.column(i).as_primitive::<Float64Type>();
    (0..batch.num_rows())
        .map(|r| {
            format!(
                "{} [{}, {}) n={} total={:.2} lo={:.2} hi={:.2}",
                symbol.value(r),
                int(1).value(r),
                int(2).value(r),
                int(3).value(r),
                money(4).value(r),
                money(5).value(r),
                money(6).value(r)
            )
        })
        .collect()
}

fn golden(name: &str) -> Vec<String> {
    let text = std::fs::read_to_string(format!("{GOLDEN}/{name}.ndjson")).unwrap();
    let mut got = rows(&decode_ndjson(&result_schema(), &text).unwrap());
    got.sort();
    got
}

fn riffle(events_file: &str, from: &str, chunk: usize) -> Vec<String> {
    let query = format!("{SELECT} FROM {from} GROUP BY symbol, window_start, window_end");
    riffle_sql(events_file, &[], &query, chunk)
}

/// `views` (CREATE VIEW statements) and `query` over the golden events,
/// pushed `chunk` lines at a time.
fn riffle_sql(events_file: &str, views: &[&str], query: &str, chunk: usize) -> Vec<String> {
    let events = std::fs::read_to_string(format!("{GOLDEN}/{events_file}.ndjson")).unwrap();
    let mut engine = Engine::new().unwrap();
    engine
        .execute("CREATE STREAM trades (symbol VARCHAR, price DOUBLE, ts TIMESTAMP, WATERMARK FOR ts AS ts - INTERVAL '2' SECOND)")
        .unwrap();
    for view in views {
        engine.execute(view).unwrap();
    }
    let query = engine.create_query(query).unwrap();
    let lines: Vec<&str> = events.lines().collect();
    let mut outputs = Vec::new();
    for part in lines.chunks(chunk) {
        outputs.extend(engine.push_json("trades", &part.join("\n")).unwrap());
    }
    outputs.extend(engine.finish().unwrap());
    let schema = Arc::new(result_schema());
    let mut got: Vec<String> = outputs
        .iter()
        .filter(|o| o.query == query && !o.late)
        .flat_map(|o| {
            // Through JSON, as JavaScript sees it: timestamps become epoch ms.
            let json = encode_rows(&o.batch).unwrap();
            let ndjson = json
                .trim_start_matches('[')
                .trim_end_matches(']')
                .replace("},{", "}\n{");
            rows(&decode_ndjson(&schema, &ndjson).unwrap())
        })
        .collect();
    got.sort();
    got
}

fn assert_same(name: &str, got: Vec<String>) {
    let expected = golden(name);
    let missing: Vec<&String> = expected.iter().filter(|r| !got.contains(r)).collect();
    let extra: Vec<&String> = got.iter().filter(|r| !expected.contains(r)).collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "{name}: {} rows from Flink, {} from Riffle\n  only Flink: {missing:#?}\n  only Riffle: {extra:#?}",
        expected.len(),
        got.len()
    );
}

#[test]
fn tumble_matches_flink() {
    for chunk in [1, 13, 3000] {
        assert_same(
            "tumble",
            riffle("events", "TUMBLE(trades, ts, INTERVAL '1' MINUTE)", chunk),
        );
    }
}

#[test]
fn hop_matches_flink() {
    for chunk in [1, 13, 3000] {
        assert_same(
            "hop",
            riffle(
                "events",
                "HOP(trades, ts, INTERVAL '10' SECOND, INTERVAL '1' MINUTE)",
                chunk,
            ),
        );
    }
}

#[test]
fn cumulate_matches_flink() {
    for chunk in [1, 13, 3000] {
        assert_same(
            "cumulate",
            riffle(
                "events",
                "CUMULATE(trades, ts, INTERVAL '15' SECOND, INTERVAL '1' MINUTE)",
                chunk,
            ),
        );
    }
}

#[test]
fn session_matches_flink() {
    for chunk in [1, 13, 3000] {
        assert_same(
            "session",
            riffle("events", "SESSION(trades, ts, INTERVAL '10' SECOND)", chunk),
        );
    }
}

#[test]
fn session_late_event_cases_match_flink() {
    for chunk in [1, 2, 100] {
        assert_same(
            "session_probe",
            riffle(
                "session_probe_events",
                "SESSION(trades, ts, INTERVAL '10' SECOND)",
                chunk,
            ),
        );
    }
}

/// Cascading windows (Flink's cascading window aggregation): 1 min windows
/// over the 10 s windows' window_time, late events included (they drop out
/// of the 10 s windows).
#[test]
fn cascading_windows_over_window_time_match_flink() {
    let view = "CREATE VIEW per_10s AS SELECT symbol, window_start AS start_10s, window_end AS end_10s, \
                window_time AS rowtime, count(*) AS n, sum(price) AS total, min(price) AS lo, max(price) AS hi \
                FROM TUMBLE(trades, ts, INTERVAL '10' SECOND) GROUP BY symbol, window_start, window_end, window_time";
    let query = "SELECT symbol, window_start, window_end, sum(n) AS n, sum(total) AS total, min(lo) AS lo, max(hi) AS hi \
                 FROM TUMBLE(per_10s, rowtime, INTERVAL '1' MINUTE) GROUP BY symbol, window_start, window_end";
    for chunk in [1, 13, 3000] {
        assert_same("cascade", riffle_sql("events", &[view], query, chunk));
    }
}

/// The goldens' Flink SQL, run unchanged: Flink's window syntax
/// (`TABLE(HOP(TABLE t, DESCRIPTOR(ts), ...))`, `SESSION(TABLE t PARTITION
/// BY k, ...)`) and `CREATE TEMPORARY VIEW`, as Flink ran it.
#[test]
fn flinks_own_sql_runs_unchanged() {
    for name in ["tumble", "hop", "cumulate", "session", "cascade"] {
        let text = std::fs::read_to_string(format!("{GOLDEN}/{name}.sql")).unwrap();
        let mut statements: Vec<&str> = text
            .split(';')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .collect();
        assert!(text.contains("DESCRIPTOR"), "{name}: not Flink's syntax");
        let query = statements.pop().unwrap();
        for chunk in [13, 3000] {
            assert_same(name, riffle_sql("events", &statements, query, chunk));
        }
    }
}

/// A JSON row as `key=value` pairs in key order, numbers to two decimals
/// (Flink's JSON writes 200.0 where Riffle's writes 200).
fn normalised(row: &serde_json::Map<String, serde_json::Value>) -> String {
    let mut pairs: Vec<String> = row
        .iter()
        .filter(|(key, _)| key.as_str() != "prefix" && key.as_str() != "_op")
        .map(|(key, value)| match value {
            serde_json::Value::Number(n) => format!("{key}={:.2}", n.as_f64().unwrap()),
            other => format!("{key}={other}"),
        })
        .collect();
    pairs.sort();
    pairs.join(" ")
}

/// Aggregates over a changelog (an aggregate over GROUP BY without a
/// window): after each of several prefixes of the golden events, the table
/// Riffle's changelog describes equals the one Flink's does (Flink's own
/// changelog applied in tests/flink/make_golden.sh). Every change Riffle
/// emits is checked against the table it changes.
#[test]
fn aggregates_over_changelogs_match_flink() {
    let events = std::fs::read_to_string(format!("{GOLDEN}/events.ndjson")).unwrap();
    let lines: Vec<&str> = events.lines().collect();
    for (name, keys) in [("changelog", 1usize), ("changelog_global", 0)] {
        let sql = std::fs::read_to_string(format!("{GOLDEN}/{name}.sql")).unwrap();
        let golden = std::fs::read_to_string(format!("{GOLDEN}/{name}.ndjson")).unwrap();
        let mut expected: std::collections::BTreeMap<usize, Vec<String>> = Default::default();
        for line in golden.lines() {
            let row: serde_json::Map<String, serde_json::Value> =
                serde_json::from_str(line).unwrap();
            let prefix = row["prefix"].as_u64().unwrap() as usize;
            expected.entry(prefix).or_default().push(normalised(&row));
        }
        assert!(expected.len() >= 5, "{name}: {} prefixes", expected.len());
        for (&prefix, rows) in &expected {
            for chunk in [1, 13, prefix] {
                let mut engine = Engine::new().unwrap();
                engine
                    .execute("CREATE STREAM trades (symbol VARCHAR, price DOUBLE, ts TIMESTAMP, WATERMARK FOR ts AS ts - INTERVAL '2' SECOND)")
                    .unwrap();
                let query = engine.create_query(&sql).unwrap();
                let columns: Vec<String> = engine
                    .query_schema(query)
                    .unwrap()
                    .fields()
                    .iter()
                    .map(|f| f.name().clone())
                    .collect();
                let mut table: std::collections::BTreeMap<
                    String,
                    serde_json::Map<String, serde_json::Value>,
                > = Default::default();
                for part in lines[..prefix].chunks(chunk) {
                    for output in engine.push_json("trades", &part.join("\n")).unwrap() {
                        let json = encode_rows(&output.batch).unwrap();
                        let changes: Vec<serde_json::Map<String, serde_json::Value>> =
                            serde_json::from_str(&json).unwrap();
                        for change in changes {
                            let key: Vec<String> = columns[..keys]
                                .iter()
                                .map(|c| change[c].to_string())
                                .collect();
                            let key = key.join(",");
                            match change["_op"].as_str().unwrap() {
                                "insert" | "update_after" => {
                                    assert!(
                                        table.insert(key, change).is_none(),
                                        "{name}: a second row for a key"
                                    );
                                }
                                _ => {
                                    let held = table
                                        .remove(&key)
                                        .expect("retracting a row that is not there");
                                    assert_eq!(
                                        normalised(&held),
                                        normalised(&change),
                                        "{name}: retracted row"
                                    );
                                }
                            }
                        }
                    }
                }
                let mut got: Vec<String> = table.values().map(normalised).collect();
                got.sort();
                let mut want = rows.clone();
                want.sort();
                assert_eq!(
                    got, want,
                    "{name}, first {prefix} events, pushes of {chunk}"
                );
            }
        }
    }
}

/// `views` and `query` over golden events `events_file`, pushed `chunk`
/// lines at a time; every result row through JSON, [`normalised`].
fn riffle_json(events_file: &str, views: &[&str], query: &str, chunk: usize) -> Vec<String> {
    let events = std::fs::read_to_string(format!("{GOLDEN}/{events_file}.ndjson")).unwrap();
    let mut engine = Engine::new().unwrap();
    engine
        .execute("CREATE STREAM trades (symbol VARCHAR, price DOUBLE, ts TIMESTAMP, WATERMARK FOR ts AS ts - INTERVAL '2' SECOND)")
        .unwrap();
    for view in views {
        engine.execute(view).unwrap();
    }
    let query = engine.create_query(query).unwrap();
    let lines: Vec<&str> = events.lines().collect();
    let mut outputs = Vec::new();
    for part in lines.chunks(chunk) {
        outputs.extend(engine.push_json("trades", &part.join("\n")).unwrap());
    }
    outputs.extend(engine.finish().unwrap());
    assert_eq!(engine.query_metrics(query).unwrap().late_events_dropped, 0);
    let mut got: Vec<String> = outputs
        .iter()
        .filter(|o| o.query == query && !o.late)
        .flat_map(|o| {
            let rows: Vec<serde_json::Map<String, serde_json::Value>> =
                serde_json::from_str(&encode_rows(&o.batch).unwrap()).unwrap();
            rows.iter().map(normalised).collect::<Vec<_>>()
        })
        .collect();
    got.sort();
    got
}

/// Interval joins (issue 20): a LEFT self-join with a residual condition,
/// a FULL join of two filtered views, a TUMBLE over a joined view, and
/// window joins (FULL, of two windowed aggregates, IN, of HOP and CUMULATE
/// rows), in Flink's SQL as
/// written, give Flink 2.3's rows (the goldens of
/// tests/flink/make_join_golden.sh, over events out of order by less than
/// the watermark delay).
#[test]
fn interval_joins_match_flink() {
    for name in [
        "join_left",
        "join_full",
        "join_windowed",
        "join_window_full",
        "join_window_aggregates",
        "join_window_semi",
        "join_window_hop",
        "join_window_cumulate",
        "join_window_anti",
    ] {
        assert_matches_flink_over_join_events(name);
    }
}

/// The golden `name` (Flink SQL and Flink's rows over join_events.ndjson)
/// run unchanged through Riffle at three push sizes.
fn assert_matches_flink_over_join_events(name: &str) {
    let text = std::fs::read_to_string(format!("{GOLDEN}/{name}.sql")).unwrap();
    let mut statements: Vec<&str> = text
        .split(';')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .collect();
    let query = statements.pop().unwrap();
    let golden = std::fs::read_to_string(format!("{GOLDEN}/{name}.ndjson")).unwrap();
    let mut expected: Vec<String> = golden
        .lines()
        .map(|line| normalised(&serde_json::from_str(line).unwrap()))
        .collect();
    expected.sort();
    assert!(expected.len() > 50, "{name}: {} rows", expected.len());
    for chunk in [1, 17, 1500] {
        let got = riffle_json("join_events", &statements, query, chunk);
        assert!(
            got == expected,
            "{name}, pushes of {chunk}: {} rows from Flink, {} from Riffle",
            expected.len(),
            got.len()
        );
    }
}

/// Flink's Window Top-N over a windowed aggregate and over TUMBLE rows,
/// and its window deduplication (issue 21), in Flink's SQL as written,
/// give Flink 2.3's rows (tests/flink/make_join_golden.sh).
#[test]
fn window_top_n_matches_flink() {
    for name in ["top_n_aggregate", "top_n_rows", "dedup_first"] {
        assert_matches_flink_over_join_events(name);
    }
}

/// Event-time temporal joins (issue 20): trades joined with the version of
/// a second stream (`rates`, PRIMARY KEY (symbol)) valid at each trade's
/// time, LEFT and INNER with a condition on the version, give Flink 2.3's
/// rows (tests/flink/make_join_golden.sh; the streams pushed in
/// alternating chunks).
#[test]
fn temporal_joins_match_flink() {
    let read = |name: &str| std::fs::read_to_string(format!("{GOLDEN}/{name}.ndjson")).unwrap();
    let (trades, rates) = (read("join_events"), read("rates_events"));
    let (trades, rates): (Vec<&str>, Vec<&str>) =
        (trades.lines().collect(), rates.lines().collect());
    for name in ["temporal_left", "temporal_inner"] {
        let sql = std::fs::read_to_string(format!("{GOLDEN}/{name}.sql")).unwrap();
        let mut expected: Vec<String> = read(name)
            .lines()
            .map(|line| normalised(&serde_json::from_str(line).unwrap()))
            .collect();
        expected.sort();
        assert!(expected.len() > 100, "{name}: {} rows", expected.len());
        for chunk in [1, 17, 1500] {
            let mut engine = Engine::new().unwrap();
            engine
                .execute("CREATE STREAM trades (symbol VARCHAR, price DOUBLE, ts TIMESTAMP, WATERMARK FOR ts AS ts - INTERVAL '2' SECOND)")
                .unwrap();
            engine
                .execute("CREATE STREAM rates (symbol VARCHAR, price DOUBLE, ts TIMESTAMP, PRIMARY KEY (symbol) NOT ENFORCED, WATERMARK FOR ts AS ts - INTERVAL '2' SECOND)")
                .unwrap();
            let query = engine.create_query(&sql).unwrap();
            let mut outputs = Vec::new();
            // Rates come about 3.6 times slower: push them in step.
            let rate_chunk = (chunk * 4 / 15).max(1);
            let (mut t, mut r) = (trades.chunks(chunk), rates.chunks(rate_chunk));
            loop {
                let (a, b) = (t.next(), r.next());
                if a.is_none() && b.is_none() {
                    break;
                }
                if let Some(part) = a {
                    outputs.extend(engine.push_json("trades", &part.join("\n")).unwrap());
                }
                if let Some(part) = b {
                    outputs.extend(engine.push_json("rates", &part.join("\n")).unwrap());
                }
            }
            outputs.extend(engine.finish().unwrap());
            assert_eq!(engine.query_metrics(query).unwrap().late_events_dropped, 0);
            let mut got: Vec<String> = outputs
                .iter()
                .filter(|o| o.query == query)
                .flat_map(|o| {
                    let rows: Vec<serde_json::Map<String, serde_json::Value>> =
                        serde_json::from_str(&encode_rows(&o.batch).unwrap()).unwrap();
                    rows.iter().map(normalised).collect::<Vec<_>>()
                })
                .collect();
            got.sort();
            assert!(
                got == expected,
                "{name}, pushes of {chunk}: {} rows from Flink, {} from Riffle",
                expected.len(),
                got.len()
            );
        }
    }
}
