//! Hostile input never panics (in wasm a panic kills the engine): random
//! text and absurd values give typed errors, and the engine keeps working.

mod common;

use common::*;
use riffle::{Engine, ErrorCode};

fn random_text(rng: &mut Rng, len: usize) -> String {
    const PIECES: &[&str] = &[
        "{",
        "}",
        "[",
        "]",
        "\"",
        ":",
        ",",
        "\n",
        " ",
        "null",
        "true",
        "1e309",
        "-0",
        "\"ts\"",
        "\"price\"",
        "\"symbol\"",
        "1700000000000",
        "-9223372036854775808",
        "99999999999999999999",
        "\"2023-13-45\"",
        "\\u0000",
        "é",
        "💥",
        "NaN",
        "{\"ts\":",
        "\"A\"",
    ];
    (0..len)
        .map(|_| PIECES[rng.below(PIECES.len() as u64) as usize])
        .collect()
}

#[test]
fn random_text_gives_typed_errors_and_never_panics() {
    let mut engine = Engine::new().unwrap();
    engine.execute(TRADES_DDL).unwrap();
    let query = engine
        .create_query("SELECT symbol, window_start, count(*) FROM TUMBLE(trades, ts, INTERVAL '1' MINUTE) GROUP BY symbol, window_start")
        .unwrap();
    let mut rng = Rng::new(99);
    let mut accepted = 0;
    for round in 0..2_000 {
        let len = 1 + rng.below(40) as usize;
        let text = random_text(&mut rng, len);
        match engine.push_json("trades", &text) {
            Ok(_) => accepted += 1,
            Err(error) => assert!(
                matches!(error.code(), ErrorCode::InvalidInput | ErrorCode::Execution),
                "round {round}: {text:?} gave {error}"
            ),
        }
    }
    // Still healthy afterwards.
    engine
        .push_json("trades", r#"{"symbol":"A","price":1,"ts":1700000000000}"#)
        .unwrap();
    engine.finish().unwrap();
    let metrics = engine.query_metrics(query).unwrap();
    assert!(metrics.events_in >= 1, "{accepted} random pushes accepted");
}

#[test]
fn absurd_times_and_sizes_are_errors_not_panics() {
    let mut engine = Engine::new().unwrap();
    engine.execute(TRADES_DDL).unwrap();
    for sql in [
        "SELECT window_start, count(*) FROM TUMBLE(trades, ts, INTERVAL '1000000000' DAY) GROUP BY window_start",
        "SELECT window_start, count(*) FROM TUMBLE(trades, ts, INTERVAL '0' SECOND) GROUP BY window_start",
        "SELECT window_start, count(*) FROM TUMBLE(trades, ts, INTERVAL '-5' SECOND) GROUP BY window_start",
        "SELECT window_start, count(*) FROM HOP(trades, ts, INTERVAL '0' SECOND, INTERVAL '1' MINUTE) GROUP BY window_start",
        "SELECT window_start, count(*) FROM SESSION(trades, ts, INTERVAL '0' SECOND) GROUP BY window_start",
        "SELECT window_start, count(*) FROM TUMBLE(trades, ts, INTERVAL '1' MINUTE, INTERVAL '1' MONTH) GROUP BY window_start",
    ] {
        assert!(engine.create_query(sql).is_err(), "{sql}");
    }
    let query = engine
        .create_query("SELECT window_start, count(*) FROM TUMBLE(trades, ts, INTERVAL '1' MINUTE) GROUP BY window_start")
        .unwrap();
    // Times at the edges of what nanosecond timestamps hold, and past them.
    for ts in [
        "-9223372036854",
        "9223372036854",
        "9223372036854775807",
        "-9223372036854775808",
        "1e18",
    ] {
        let _ = engine.push_json(
            "trades",
            &format!(r#"{{"symbol":"A","price":1,"ts":{ts}}}"#),
        );
    }
    assert!(engine.advance_watermark("trades", i64::MAX).is_ok());
    assert!(engine.advance_watermark("trades", i64::MIN).is_ok());
    engine.finish().unwrap();
    engine.query_metrics(query).unwrap();
}

/// A decoding error quotes a bounded part of the input, not all of it.
#[test]
fn errors_about_a_large_push_stay_short() {
    let mut engine = riffle::Engine::new().unwrap();
    engine
        .execute("CREATE STREAM s (a BIGINT, ts TIMESTAMP, WATERMARK FOR ts AS ts)")
        .unwrap();
    let mut text = String::from("{\"a\": \"not a number\", \"ts\": 1}\n");
    for i in 0..20_000 {
        text.push_str(&format!("{{\"a\": {i}, \"ts\": {i}}}\n"));
    }
    let error = engine.push_json("s", &text).unwrap_err();
    assert!(
        error.message().len() < 1_000,
        "{} chars",
        error.message().len()
    );
    assert!(
        error.message().contains("not a number"),
        "{}",
        error.message()
    );
}

/// Compressed Arrow IPC (the codecs are not built in) is refused with a
/// clear error and changes nothing; the same rows uncompressed go in.
#[test]
fn compressed_arrow_ipc_is_a_typed_error() {
    let mut engine = riffle::Engine::new().unwrap();
    engine
        .execute("CREATE STREAM trades (symbol VARCHAR, price DOUBLE, ts BIGINT, WATERMARK FOR ts AS ts)")
        .unwrap();
    let query = engine
        .create_query(
            "SELECT count(*) AS n FROM TUMBLE(trades, ts, INTERVAL '1' HOUR) GROUP BY window_start",
        )
        .unwrap();
    for (codec, bytes) in [
        ("zstd", &include_bytes!("fixtures/trades-zstd.arrows")[..]),
        ("lz4", &include_bytes!("fixtures/trades-lz4.arrows")[..]),
    ] {
        let error = engine.push_arrow_ipc("trades", bytes).unwrap_err();
        assert_eq!(
            error.code(),
            ErrorCode::InvalidInput,
            "{codec}: {}",
            error.message()
        );
        assert!(
            error.message().contains(codec) && error.message().contains("not supported"),
            "{codec}: {}",
            error.message()
        );
    }
    assert_eq!(engine.query_metrics(query).unwrap().events_in, 0);
}
