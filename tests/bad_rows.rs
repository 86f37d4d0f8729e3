//! Bad rows never drop the good rows of the same push: per stream, reject
//! the push (default), skip bad rows (counted) or hand them to a dead letter.

mod common;

use common::*;
use riffle::{Engine, ErrorCode};

const MIXED: &str = r#"{"symbol":"A","price":1.5,"ts":1000}
{"symbol":"B","price":"lots","ts":2000}
{"symbol":"A","price":2.5,"ts":3000}
{"symbol":"C","price":1,"ts":
{"symbol":"D","price":1,"ts":null}
{"price":4,"ts":4000}
{"symbol":"B","price":3,"ts":"1970-01-01T00:00:05Z"}"#;

#[test]
fn skip_keeps_the_good_rows_and_counts_the_bad() {
    let (mut engine, query) = policy_engine("skip");
    engine.push_json("trades", MIXED).unwrap();
    let rows = sorted(rows_of(&engine.finish().unwrap(), query));
    let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
    assert_eq!(
        rows,
        vec![
            s(&["A", "0", "2", "4.000000e0"]),
            s(&["B", "0", "1", "3.000000e0"])
        ]
    );
    let metrics = engine.query_metrics(query).unwrap();
    assert_eq!(metrics.events_in, 3);
    assert_eq!(metrics.bad_rows, 4);
    assert!(
        engine.take_dead_letters().is_empty(),
        "skip keeps no dead letters"
    );
}

#[test]
fn dead_letters_name_the_row_and_the_reason() {
    let (mut engine, query) = policy_engine("dead_letter");
    engine.push_json("trades", MIXED).unwrap();
    let letters = engine.take_dead_letters();
    let summary: Vec<(usize, &str)> = letters
        .iter()
        .map(|(_, r)| (r.row, r.reason.as_str()))
        .collect();
    assert_eq!(summary.len(), 4, "{summary:?}");
    let rows: Vec<usize> = summary.iter().map(|(row, _)| *row).collect();
    assert_eq!(rows, vec![1, 3, 4, 5], "in line order");
    assert!(
        summary.iter().any(|(_, reason)| reason.contains("lots")),
        "{summary:?}"
    );
    assert!(
        summary
            .iter()
            .any(|(_, reason)| reason.contains("'ts' has no value")),
        "{summary:?}"
    );
    assert!(
        summary
            .iter()
            .any(|(_, reason)| reason.contains("'symbol'")),
        "{summary:?}"
    );
    assert!(letters
        .iter()
        .all(|(stream, r)| stream == "trades" && r.text.is_some()));
    assert!(letters[1]
        .1
        .text
        .as_deref()
        .unwrap()
        .starts_with(r#"{"symbol":"C""#));
    assert!(engine.take_dead_letters().is_empty(), "taken once");
    assert_eq!(engine.query_metrics(query).unwrap().events_in, 3);
}

#[test]
fn reject_is_the_default_and_changes_nothing() {
    let mut engine = Engine::new().unwrap();
    engine.execute(TRADES_DDL).unwrap();
    let query = engine
        .create_query("SELECT window_start, count(*) FROM TUMBLE(trades, ts, INTERVAL '1' MINUTE) GROUP BY window_start")
        .unwrap();
    assert_eq!(
        engine.push_json("trades", MIXED).unwrap_err().code(),
        ErrorCode::InvalidInput
    );
    assert_eq!(engine.query_metrics(query).unwrap().events_in, 0);
    assert!(Engine::new()
        .unwrap()
        .execute(
            "CREATE STREAM s (ts TIMESTAMP, WATERMARK FOR ts AS ts) WITH (bad_rows = 'ignore')"
        )
        .is_err());
}

#[test]
fn arrow_batches_with_bad_rows_keep_their_good_rows() {
    use std::sync::Arc;

    use arrow::array::{Int64Array, StringArray};
    use arrow::datatypes::{DataType, Field, Schema};
    use arrow::record_batch::RecordBatch;

    let (mut engine, query) = policy_engine("skip");
    let schema = Arc::new(Schema::new(vec![
        Field::new("symbol", DataType::Utf8, true),
        Field::new("price", DataType::Utf8, true),
        Field::new("ts", DataType::Int64, true),
    ]));
    let batch = RecordBatch::try_new(
        schema,
        vec![
            Arc::new(StringArray::from(vec![Some("A"), Some("A"), None])),
            Arc::new(StringArray::from(vec!["1.5", "oops", "2"])),
            Arc::new(Int64Array::from(vec![
                1_000_000_000,
                2_000_000_000,
                3_000_000_000,
            ])),
        ],
    )
    .unwrap();
    engine.push("trades", &batch).unwrap();
    let metrics = engine.query_metrics(query).unwrap();
    assert_eq!((metrics.events_in, metrics.bad_rows), (1, 2));
}

#[test]
fn a_far_future_timestamp_cannot_drag_the_watermark_forward() {
    for policy in ["reject", "skip"] {
        let mut engine = Engine::new().unwrap();
        engine
            .execute(&format!(
                "CREATE STREAM trades (symbol VARCHAR, price DOUBLE, ts TIMESTAMP, WATERMARK FOR ts AS ts - INTERVAL '2' SECOND) \
                 WITH (max_future = INTERVAL '1' HOUR, bad_rows = '{policy}')"
            ))
            .unwrap();
        let query = engine
            .create_query("SELECT window_start, count(*) FROM TUMBLE(trades, ts, INTERVAL '1' MINUTE) GROUP BY window_start")
            .unwrap();
        assert!(engine.needs_clock());
        let now = 1_700_000_000_000i64;
        engine.tick(now).unwrap();
        engine
            .push_json(
                "trades",
                &format!(r#"{{"symbol":"A","price":1,"ts":{}}}"#, now + 600_000),
            )
            .unwrap();
        let far = engine.push_json(
            "trades",
            &format!(r#"{{"symbol":"A","price":1,"ts":{}}}"#, now + 7_200_000),
        );
        let metrics = engine.query_metrics(query).unwrap();
        match policy {
            "reject" => assert_eq!(far.unwrap_err().code(), ErrorCode::InvalidInput),
            _ => {
                far.unwrap();
                assert_eq!(metrics.bad_rows, 1);
            }
        }
        assert_eq!(metrics.events_in, 1);
        assert_eq!(
            metrics.watermark_millis,
            Some(now + 600_000 - 2_000),
            "{policy}: the watermark did not jump"
        );
    }
}

/// A JSON array holds the same rows as NDJSON, pretty-printed or not, and
/// its bad elements are reported by index like bad lines.
#[test]
fn a_json_array_is_read_like_ndjson() {
    let ndjson = r#"{"symbol":"A","price":1.5,"ts":1000}
{"symbol":"B","price":2,"ts":2000}
{"symbol":"A, [x]","price":2.5,"ts":3000}"#;
    let array = r#"  [
  {"symbol": "A", "price": 1.5, "ts": 1000},
  {"symbol": "B",
   "price": 2, "ts": 2000},
  {"symbol": "A, [x]", "price": 2.5, "ts": 3000}
]"#;
    let (mut from_lines, q1) = policy_engine("reject");
    from_lines.push_json("trades", ndjson).unwrap();
    let (mut from_array, q2) = policy_engine("reject");
    from_array.push_json("trades", array).unwrap();
    assert_eq!(
        sorted(rows_of(&from_array.finish().unwrap(), q2)),
        sorted(rows_of(&from_lines.finish().unwrap(), q1))
    );

    let (mut lettered, _) = policy_engine("dead_letter");
    lettered
        .push_json(
            "trades",
            r#"[{"symbol":"A","price":1,"ts":1000},{"symbol":"B","price":"x\"]","ts":2000},{"symbol":"C","price":3,"ts":3000}]"#,
        )
        .unwrap();
    let rows: Vec<usize> = lettered
        .take_dead_letters()
        .iter()
        .map(|(_, r)| r.row)
        .collect();
    assert_eq!(rows, vec![1]);
    assert_eq!(
        lettered.query_metrics(0).unwrap().events_in,
        2,
        "the good elements are kept"
    );
}
