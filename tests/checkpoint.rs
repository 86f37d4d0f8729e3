//! Checkpoint and restore: a restored engine, replaying from the returned
//! offsets, produces exactly what an uninterrupted one does, for every kind
//! of stateful operator; taking a checkpoint disturbs nothing; damaged or
//! foreign checkpoints are refused with typed errors.

mod common;

use common::*;
use riffle::state::checkpoint::Checkpoint;
use riffle::{Engine, ErrorCode, QueryId, QueryOptions};

// Two percentiles of one column share a digest in window aggregates.
const AGGS: &str = "count(*), sum(price), max(price), count(DISTINCT price > 500), median(price), \
    approx_percentile_cont(0.5) WITHIN GROUP (ORDER BY price), \
    approx_percentile_cont(0.9) WITHIN GROUP (ORDER BY price DESC), approx_median(price)";

fn queries() -> Vec<(String, QueryOptions)> {
    let window = |from: &str, emit: &str| {
        format!("SELECT symbol, window_start, window_end, {AGGS} FROM {from} GROUP BY symbol, window_start, window_end {emit}")
    };
    let lateness = QueryOptions {
        allowed_lateness_millis: 5_000,
        ..QueryOptions::default()
    };
    vec![
        (
            window("TUMBLE(trades, ts, INTERVAL '20' SECOND)", ""),
            QueryOptions::default(),
        ),
        (
            window(
                "HOP(trades, ts, INTERVAL '5' SECOND, INTERVAL '20' SECOND)",
                "",
            ),
            QueryOptions::default(),
        ),
        (
            window(
                "CUMULATE(trades, ts, INTERVAL '5' SECOND, INTERVAL '20' SECOND)",
                "",
            ),
            QueryOptions::default(),
        ),
        (
            window("SESSION(trades, ts, INTERVAL '3' SECOND)", ""),
            QueryOptions::default(),
        ),
        (
            window("TUMBLE(trades, ts, INTERVAL '20' SECOND)", "EMIT ON UPDATE"),
            QueryOptions::default(),
        ),
        (
            // Changes wait for the period or the window's close: the
            // groups changed since the last emission are state too.
            window(
                "TUMBLE(trades, ts, INTERVAL '20' SECOND)",
                "EMIT EVERY INTERVAL '5' SECOND",
            ),
            QueryOptions::default(),
        ),
        (
            window(
                "HOP(trades, ts, INTERVAL '5' SECOND, INTERVAL '20' SECOND)",
                "",
            ),
            lateness.clone(),
        ),
        (
            window("SESSION(trades, ts, INTERVAL '3' SECOND)", "EMIT ON UPDATE"),
            lateness,
        ),
        // Hundreds of rows per group: sketches (t-digest) compress, so the
        // rows they were fed before the checkpoint must be kept as they were.
        (
            window("TUMBLE(trades, ts, INTERVAL '1' HOUR)", ""),
            QueryOptions::default(),
        ),
        (
            format!("SELECT symbol, {AGGS} FROM trades GROUP BY symbol"),
            QueryOptions {
                state_ttl_millis: Some(30_000),
                ..QueryOptions::default()
            },
        ),
        // Two key columns: DataFusion interns them with its multi-column
        // group values, whose emptying differs from one column's.
        (
            format!(
                "SELECT symbol, price > 500 AS high, window_start, window_end, {AGGS} \
                 FROM HOP(trades, ts, INTERVAL '5' SECOND, INTERVAL '20' SECOND) \
                 GROUP BY symbol, price > 500, window_start, window_end"
            ),
            QueryOptions::default(),
        ),
        (
            format!(
                "SELECT symbol, price > 500 AS high, window_start, window_end, {AGGS} \
                 FROM TUMBLE(trades, ts, INTERVAL '20' SECOND) \
                 GROUP BY symbol, price > 500, window_start, window_end EMIT ON UPDATE"
            ),
            QueryOptions::default(),
        ),
        (
            format!("SELECT symbol, price > 500 AS high, {AGGS} FROM trades GROUP BY symbol, price > 500"),
            QueryOptions::default(),
        ),
        (
            "SELECT symbol, price FROM trades WHERE price > 900".to_string(),
            QueryOptions::default(),
        ),
    ]
}

fn setup() -> (Engine, Vec<QueryId>) {
    let mut engine = Engine::new().unwrap();
    engine.execute(TRADES_DDL).unwrap();
    let ids = queries()
        .iter()
        .map(|(sql, options)| engine.create_query_with(sql, options).unwrap())
        .collect();
    (engine, ids)
}

/// Pushes `data` in chunks; returns sorted result rows per query.
fn push_all(
    engine: &mut Engine,
    ids: &[QueryId],
    data: &[Trade],
    finish: bool,
) -> Vec<Vec<Vec<String>>> {
    let mut outputs = Vec::new();
    for chunk in data.chunks(37) {
        outputs.extend(engine.push_json("trades", &ndjson(chunk)).unwrap());
    }
    if finish {
        outputs.extend(engine.finish().unwrap());
    }
    ids.iter()
        .map(|&id| sorted(rows_of(&outputs, id)))
        .collect()
}

#[test]
fn a_restored_engine_continues_exactly_like_an_uninterrupted_one() {
    // Disorder beyond the 2 s bound, so late rows and lateness paths are exercised.
    let data = trades(71, 4_000, 5, 40, 4_000);
    let split = 1_776; // a multiple of the chunk size, so both runs push the same chunks
    let (mut uninterrupted, ids) = setup();
    let before = push_all(&mut uninterrupted, &ids, &data[..split], false);
    let after = push_all(&mut uninterrupted, &ids, &data[split..], true);

    // Taking a checkpoint leaves the engine as it was.
    let (mut checkpointed, _) = setup();
    assert_eq!(
        push_all(&mut checkpointed, &ids, &data[..split], false),
        before
    );
    checkpointed
        .set_resume_token("trades", Some(format!("msg-{split}")))
        .unwrap();
    let bytes = checkpointed.checkpoint().unwrap().to_bytes();
    let continued = push_all(&mut checkpointed, &ids, &data[split..], true);
    for (i, (sql, _)) in queries().iter().enumerate() {
        let differing: Vec<_> = continued[i]
            .iter()
            .zip(&after[i])
            .filter(|(a, b)| a != b)
            .take(2)
            .collect();
        assert!(
            continued[i] == after[i],
            "checkpointing disturbed query {i} ({sql}): {} vs {} rows, first differences {differing:?}",
            continued[i].len(),
            after[i].len()
        );
    }

    // A fresh engine restored from the bytes, replaying from the offset.
    let (mut restored, _) = setup();
    let positions = restored
        .restore(&Checkpoint::from_bytes(&bytes).unwrap())
        .unwrap();
    assert_eq!(positions.len(), 1);
    assert_eq!(
        (positions[0].name.as_str(), positions[0].offset),
        ("trades", split as u64)
    );
    assert_eq!(positions[0].resume_token.as_deref(), Some("msg-1776"));
    let resumed = push_all(
        &mut restored,
        &ids,
        &data[positions[0].offset as usize..],
        true,
    );
    for (i, (sql, _)) in queries().iter().enumerate() {
        assert_eq!(resumed[i], after[i], "query {i}: {sql}");
    }
    let (a, b) = (
        uninterrupted.query_metrics(ids[0]).unwrap(),
        restored.query_metrics(ids[0]).unwrap(),
    );
    assert_eq!(a, b, "metrics survive the restore");
}

#[test]
fn the_manifest_is_readable_and_names_every_stateful_query() {
    let (mut engine, _) = setup();
    push_all(&mut engine, &[], &trades(72, 300, 3, 100, 500), false);
    let checkpoint = engine.checkpoint().unwrap();
    let json = checkpoint.manifest_json();
    for part in [
        "\"format_version\": 2",
        "\"node\": \"q0/0\"",
        "\"input_watermarks\"",
        "\"fingerprint\"",
        "\"offset\": 300",
        "\"operator\": \"session\"",
        "\"crc32\"",
    ] {
        assert!(json.contains(part), "{part} missing from {json}");
    }
    // Every query but the stateless last one has one stateful operator.
    let stateful = checkpoint
        .manifest
        .operators
        .iter()
        .filter(|o| o.operator.is_some())
        .count();
    assert_eq!(stateful, queries().len() - 1);
}

#[test]
fn damaged_or_foreign_checkpoints_are_refused_and_change_nothing() {
    let (mut engine, ids) = setup();
    push_all(&mut engine, &ids, &trades(73, 500, 3, 100, 500), false);
    let bytes = engine.checkpoint().unwrap().to_bytes();

    let mut flipped = bytes.clone();
    let middle = flipped.len() / 2;
    flipped[middle] ^= 0x10;
    let truncated = &bytes[..bytes.len() - 100];
    for damaged in [
        flipped.as_slice(),
        truncated,
        b"not a checkpoint at all".as_slice(),
        &[],
    ] {
        let error = Checkpoint::from_bytes(damaged).unwrap_err();
        assert_eq!(error.code(), ErrorCode::CorruptCheckpoint, "{error}");
    }

    // A blob whose checksum does not match the manifest.
    let mut checkpoint = Checkpoint::from_bytes(&bytes).unwrap();
    checkpoint.blobs[0].1[40] ^= 1;
    assert_eq!(
        checkpoint.verify().unwrap_err().code(),
        ErrorCode::CorruptCheckpoint
    );

    // A checkpoint of another set of queries.
    let mut other = Engine::new().unwrap();
    other.execute(TRADES_DDL).unwrap();
    other
        .create_query("SELECT window_start, count(*) FROM TUMBLE(trades, ts, INTERVAL '1' MINUTE) GROUP BY window_start")
        .unwrap();
    let error = other
        .restore(&Checkpoint::from_bytes(&bytes).unwrap())
        .unwrap_err();
    assert_eq!(error.code(), ErrorCode::CheckpointMismatch);
    assert!(error.message().contains("start empty"), "{error}");
    // The refused engine still works from empty.
    other
        .push_json("trades", r#"{"symbol":"A","price":1,"ts":1000}"#)
        .unwrap();
}

/// A checkpoint whose state names one group twice (well-formed and with
/// valid checksums, as a buggy or hostile writer could make it) is refused.
#[test]
fn state_with_a_group_twice_is_a_corrupt_checkpoint() {
    for sql in [
        "SELECT symbol, window_start, count(*), sum(price) FROM TUMBLE(trades, ts, INTERVAL '20' SECOND) \
         GROUP BY symbol, window_start EMIT ON UPDATE",
        "SELECT symbol, count(*), sum(price) FROM trades GROUP BY symbol",
    ] {
        let fresh = || {
            let mut engine = Engine::new().unwrap();
            engine.execute(TRADES_DDL).unwrap();
            engine.create_query(sql).unwrap();
            engine
        };
        let mut engine = fresh();
        engine
            .push_json("trades", &ndjson(&trades(5, 300, 4, 100, 500)))
            .unwrap();
        let mut checkpoint = engine.checkpoint().unwrap();
        // Every row of the query's state twice, checksums made to match.
        let (name, bytes) = &mut checkpoint.blobs[0];
        let batch = riffle::state::read_ipc(bytes).unwrap();
        assert!(batch.num_rows() > 0);
        let doubled =
            arrow::compute::concat_batches(&batch.schema(), [&batch, &batch]).unwrap();
        *bytes = riffle::state::write_ipc(&doubled).unwrap();
        let blob = checkpoint
            .manifest
            .operators
            .iter_mut()
            .find_map(|o| o.blob.as_mut().filter(|b| &b.name == name))
            .unwrap();
        blob.bytes = bytes.len() as u64;
        blob.crc32 = crc32fast::hash(bytes);
        checkpoint.verify().unwrap();
        let error = fresh().restore(&checkpoint).unwrap_err();
        assert_eq!(error.code(), ErrorCode::CorruptCheckpoint, "{sql}: {error}");
        assert!(error.message().contains("two groups"), "{sql}: {error}");
    }
}
