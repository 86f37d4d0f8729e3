//! Column-wise pushes (what the TypeScript layer sends for arrays of
//! objects) behave exactly like NDJSON pushes of the same events: results,
//! bad-row reports, offsets; and values that need JSON's judgement ask for
//! NDJSON without changing anything.

mod common;

use common::*;
use riffle::codec::columns::ColumnarRows;
use riffle::ErrorCode;

/// The same five events as NDJSON and as columns: a missing symbol
/// (NOT NULL), a null price, a missing time, an ISO time.
const NDJSON: &str = r#"{"symbol":"A","price":1.5,"ts":1000}
{"price":2,"ts":2000}
{"symbol":"B","ts":3000}
{"symbol":"C","price":4}
{"symbol":"A","price":5,"ts":"1970-01-01T00:00:05Z"}"#;

fn columns() -> ColumnarRows<'static> {
    ColumnarRows {
        rows: 5,
        #[rustfmt::skip]
        numbers: &[
            1.5, 2.0, f64::NAN, 4.0, 5.0,                     // price
            1000.0, 2000.0, 3000.0, f64::NAN, f64::NAN,       // ts numbers
        ],
        #[rustfmt::skip]
        codes: &[
            1, 0, 2, 3, 1,                                    // symbol
            0, 0, 0, 0, 4,                                    // ts strings
        ],
        dictionary: "ABC1970-01-01T00:00:05Z",
        dictionary_lengths: &[1, 1, 1, 20],
    }
}

#[test]
fn columns_and_ndjson_give_the_same_results_and_bad_rows() {
    for policy in ["skip", "dead_letter"] {
        let (mut by_json, query) = policy_engine(policy);
        let (mut by_columns, _) = policy_engine(policy);
        let json_out = by_json.push_json("trades", NDJSON).unwrap();
        let column_out = by_columns
            .push_columns("trades", &columns())
            .unwrap()
            .expect("these values go column-wise");
        assert_eq!(rows_of(&column_out, query), rows_of(&json_out, query));
        assert_eq!(by_columns.take_dead_letters(), by_json.take_dead_letters());
        assert_eq!(
            rows_of(&by_columns.finish().unwrap(), query),
            rows_of(&by_json.finish().unwrap(), query)
        );
        let (a, b) = (
            by_columns.query_metrics(query).unwrap(),
            by_json.query_metrics(query).unwrap(),
        );
        assert_eq!((a.events_in, a.bad_rows), (b.events_in, b.bad_rows));
        assert_eq!((a.events_in, a.bad_rows), (3, 2), "{policy}");
        assert_eq!(
            by_columns.checkpoint().unwrap().manifest.streams,
            by_json.checkpoint().unwrap().manifest.streams
        );
    }
}

#[test]
fn reject_gives_the_same_error_and_changes_nothing() {
    let (mut by_json, query) = policy_engine("reject");
    let (mut by_columns, _) = policy_engine("reject");
    let json_error = by_json.push_json("trades", NDJSON).unwrap_err();
    let column_error = by_columns.push_columns("trades", &columns()).unwrap_err();
    assert_eq!(column_error, json_error);
    assert_eq!(column_error.code(), ErrorCode::InvalidInput);
    assert_eq!(by_columns.query_metrics(query).unwrap().events_in, 0);
}

#[test]
fn values_needing_json_ask_for_ndjson_and_change_nothing() {
    let (mut engine, query) = policy_engine("skip");
    let unparsable_time = ColumnarRows {
        rows: 1,
        numbers: &[1.0, f64::NAN],
        codes: &[1, 2],
        dictionary: "Asoon",
        dictionary_lengths: &[1, 4],
    };
    assert!(engine
        .push_columns("trades", &unparsable_time)
        .unwrap()
        .is_none());
    let metrics = engine.query_metrics(query).unwrap();
    assert_eq!((metrics.events_in, metrics.bad_rows), (0, 0));
    assert_eq!(
        engine.push_columns("nope", &columns()).unwrap_err().code(),
        ErrorCode::UnknownStream
    );
}
