//! Shared helpers for integration tests: a seeded event generator, the
//! same events as a batch table, and row comparison.
#![allow(dead_code)]

use std::sync::Arc;

use arrow::array::{ArrayRef, Float64Array, StringArray, TimestampNanosecondArray};
use arrow::datatypes::{DataType, Field, Schema, TimeUnit};
use arrow::record_batch::RecordBatch;
use datafusion::common::ScalarValue;
use datafusion::datasource::MemTable;
use datafusion::prelude::{SessionConfig, SessionContext};
use riffle::{Engine, QueryId, QueryOutput};

pub const TRADES_DDL: &str = "CREATE STREAM trades (symbol VARCHAR, price DOUBLE, ts TIMESTAMP, \
     WATERMARK FOR ts AS ts - INTERVAL '2' SECOND)";

/// Small deterministic generator (SplitMix64), so failures reproduce.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Trade {
    pub symbol: String,
    pub price: f64,
    pub ts_ms: i64,
}

/// Trades with timestamps out of order by less than `max_disorder_ms`
/// (so none is late under a larger watermark delay).
pub fn trades(
    seed: u64,
    count: usize,
    symbols: u64,
    step_ms: i64,
    max_disorder_ms: u64,
) -> Vec<Trade> {
    let mut rng = Rng::new(seed);
    let base = 1_700_000_000_000i64;
    (0..count)
        .map(|i| Trade {
            symbol: format!("S{}", rng.below(symbols)),
            price: (rng.below(100_000) as f64) / 100.0,
            ts_ms: base + i as i64 * step_ms + rng.below(max_disorder_ms.max(1)) as i64,
        })
        .collect()
}

pub fn ndjson(trades: &[Trade]) -> String {
    trades
        .iter()
        .map(|t| {
            format!(
                "{{\"symbol\":\"{}\",\"price\":{},\"ts\":{}}}\n",
                t.symbol, t.price, t.ts_ms
            )
        })
        .collect()
}

pub fn batch(trades: &[Trade]) -> RecordBatch {
    let schema = Arc::new(Schema::new(vec![
        Field::new("symbol", DataType::Utf8, true),
        Field::new("price", DataType::Float64, true),
        Field::new("ts", DataType::Timestamp(TimeUnit::Nanosecond, None), true),
    ]));
    let columns: Vec<ArrayRef> = vec![
        Arc::new(StringArray::from_iter_values(
            trades.iter().map(|t| t.symbol.as_str()),
        )),
        Arc::new(Float64Array::from_iter_values(
            trades.iter().map(|t| t.price),
        )),
        Arc::new(TimestampNanosecondArray::from_iter_values(
            trades.iter().map(|t| t.ts_ms * 1_000_000),
        )),
    ];
    RecordBatch::try_new(schema, columns).unwrap()
}

/// Runs `sql` as a plain batch query over `trades` registered as table `t`.
pub fn batch_sql(trades: &[Trade], sql: &str) -> Vec<Vec<String>> {
    batch_sql_with(trades, sql, |_| {})
}

/// [`batch_sql`] with a hook to register functions first.
pub fn batch_sql_with(
    trades: &[Trade],
    sql: &str,
    setup: impl FnOnce(&SessionContext),
) -> Vec<Vec<String>> {
    let ctx = SessionContext::new_with_config(SessionConfig::new().with_target_partitions(1));
    setup(&ctx);
    let data = batch(trades);
    let table = MemTable::try_new(data.schema(), vec![vec![data]]).unwrap();
    ctx.register_table("t", Arc::new(table)).unwrap();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let batches = runtime
        .block_on(async { ctx.sql(sql).await?.collect().await })
        .unwrap();
    sorted(batches.iter().flat_map(rows).collect())
}

/// Pushes `trades` as NDJSON in batches of random sizes (1..=max_batch),
/// then finishes. Returns every output in order.
pub fn stream(
    engine: &mut Engine,
    trades: &[Trade],
    seed: u64,
    max_batch: u64,
) -> Vec<QueryOutput> {
    let mut rng = Rng::new(seed);
    let mut outputs = Vec::new();
    let mut rest = trades;
    while !rest.is_empty() {
        let take = (1 + rng.below(max_batch) as usize).min(rest.len());
        let (head, tail) = rest.split_at(take);
        outputs.extend(engine.push_json("trades", &ndjson(head)).unwrap());
        rest = tail;
    }
    outputs.extend(engine.finish().unwrap());
    outputs
}

/// Result rows of `query` (late side-output rows excluded).
pub fn rows_of(outputs: &[QueryOutput], query: QueryId) -> Vec<Vec<String>> {
    outputs
        .iter()
        .filter(|o| o.query == query && !o.late)
        .flat_map(|o| rows(&o.batch))
        .collect()
}

/// Late input rows that `query` handed back (side output).
pub fn late_rows_of(outputs: &[QueryOutput], query: QueryId) -> Vec<Vec<String>> {
    outputs
        .iter()
        .filter(|o| o.query == query && o.late)
        .flat_map(|o| rows(&o.batch))
        .collect()
}

/// Rows as strings; floats rounded to 7 significant digits so that sums
/// taken in a different order still compare equal.
pub fn rows(batch: &RecordBatch) -> Vec<Vec<String>> {
    (0..batch.num_rows())
        .map(|row| {
            batch
                .columns()
                .iter()
                .map(
                    |column| match ScalarValue::try_from_array(column, row).unwrap() {
                        ScalarValue::Float64(Some(v)) => format!("{v:.6e}"),
                        other => other.to_string(),
                    },
                )
                .collect()
        })
        .collect()
}

pub fn sorted(mut rows: Vec<Vec<String>>) -> Vec<Vec<String>> {
    rows.sort();
    rows
}

/// Applies changelog rows (last column `_op`; the first `keys` columns
/// identify a result row) to a materialised view, checking that each change
/// is consistent with what the view holds.
pub fn apply_changelog(
    view: &mut std::collections::BTreeMap<Vec<String>, Vec<String>>,
    rows: &[Vec<String>],
    keys: usize,
) {
    for row in rows {
        let (values, op) = row.split_at(row.len() - 1);
        let key = values[..keys].to_vec();
        match op[0].as_str() {
            "insert" | "update_after" => {
                assert!(
                    view.insert(key, values.to_vec()).is_none(),
                    "{} of a row already there: {row:?}",
                    op[0]
                )
            }
            "update_before" | "delete" => {
                assert_eq!(
                    view.remove(&key).as_deref(),
                    Some(values),
                    "retracting a row that is not there: {row:?}"
                )
            }
            other => panic!("unknown op {other}"),
        }
    }
}

/// Table `t` with each row once per HOP window it belongs to (windows
/// `size_s` long, `slide_s` apart), the window's start as column `ws`:
/// batch SQL's view of HOP, for `FROM (...)`.
pub fn hop_copies_sql(slide_s: i64, size_s: i64) -> String {
    let copies: Vec<String> = (0..size_s / slide_s)
        .map(|k| {
            format!(
                "SELECT *, date_bin(INTERVAL '{slide_s} seconds', ts) - INTERVAL '{} seconds' AS ws FROM t",
                k * slide_s
            )
        })
        .collect();
    copies.join(" UNION ALL ")
}

/// Table `t` with each row once per CUMULATE window it belongs to (windows
/// growing by `step_s` up to `size_s`), the window's bounds as columns `ws`
/// and `we`: batch SQL's view of CUMULATE, for `FROM (...)`.
pub fn cumulate_copies_sql(step_s: i64, size_s: i64) -> String {
    let copies: Vec<String> = (1..=size_s / step_s)
        .map(|k| {
            let grown = k * step_s;
            format!(
                "SELECT *, date_bin(INTERVAL '{size_s} seconds', ts) AS ws, \
                 date_bin(INTERVAL '{size_s} seconds', ts) + INTERVAL '{grown} seconds' AS we FROM t \
                 WHERE ts < date_bin(INTERVAL '{size_s} seconds', ts) + INTERVAL '{grown} seconds'"
            )
        })
        .collect();
    copies.join(" UNION ALL ")
}

/// Sessions in batch SQL over table `t`: a new session starts where the gap
/// to the key's previous event exceeds `gap_secs` (windows that touch merge,
/// as in Flink). `aggregates` are computed per session after
/// `symbol, min(ts), max(ts) + gap`.
pub fn batch_sessions_sql(gap_secs: u32, aggregates: &str) -> String {
    format!(
        "WITH flagged AS (
            SELECT symbol, price, ts,
                   CASE WHEN lag(ts) OVER (PARTITION BY symbol ORDER BY ts) IS NULL
                          OR ts - lag(ts) OVER (PARTITION BY symbol ORDER BY ts) > INTERVAL '{gap_secs} seconds'
                        THEN 1 ELSE 0 END AS new_session
            FROM t),
        numbered AS (
            SELECT *, sum(new_session) OVER (PARTITION BY symbol ORDER BY ts ROWS UNBOUNDED PRECEDING) AS session
            FROM flagged)
        SELECT symbol, min(ts), max(ts) + INTERVAL '{gap_secs} seconds', {aggregates} FROM numbered GROUP BY symbol, session"
    )
}

/// A `trades` stream with the given `bad_rows` policy (symbol NOT NULL) and
/// a 1-minute count/sum query over it.
pub fn policy_engine(policy: &str) -> (Engine, QueryId) {
    let mut engine = Engine::new().unwrap();
    engine
        .execute(&format!(
            "CREATE STREAM trades (symbol VARCHAR NOT NULL, price DOUBLE, ts TIMESTAMP, \
             WATERMARK FOR ts AS ts - INTERVAL '2' SECOND) WITH (bad_rows = '{policy}')"
        ))
        .unwrap();
    let query = engine
        .create_query("SELECT symbol, window_start, count(*), sum(price) FROM TUMBLE(trades, ts, INTERVAL '1' MINUTE) GROUP BY symbol, window_start")
        .unwrap();
    (engine, query)
}

/// Keys that drift: each is busy for a while, goes quiet, and comes back
/// much later (after thousands of other keys), so an operator's key
/// numbers are compacted while its groups are open and reused afterwards.
pub fn drifting_keys(seed: u64) -> Vec<Trade> {
    let mut data = trades(seed, 40_000, 1, 100, 1_500);
    let mut rng = Rng::new(seed + 1);
    for (i, trade) in data.iter_mut().enumerate() {
        trade.symbol = format!("K{}", (i / 20 + rng.below(10) as usize) % 1_800);
    }
    data
}

/// Restore ≡ uninterrupted: runs `pushes` (stream, NDJSON text) then
/// `finish()` through an engine from `setup`, once straight and once with
/// a checkpoint after a push (chance 1 in `every`, seeded) restored into a
/// fresh engine from `setup` that carries on; asserts that every query's
/// rows and metrics are the same.
pub fn assert_restore_equals_uninterrupted(
    setup: impl Fn() -> (Engine, Vec<QueryId>),
    pushes: &[(&str, String)],
    seed: u64,
    every: u64,
) {
    let (mut uninterrupted, ids) = setup();
    let mut expected = Vec::new();
    for (stream, text) in pushes {
        expected.extend(uninterrupted.push_json(stream, text).unwrap());
    }
    expected.extend(uninterrupted.finish().unwrap());
    let mut rng = Rng::new(seed);
    let (mut engine, _) = setup();
    let mut outputs = Vec::new();
    for (stream, text) in pushes {
        outputs.extend(engine.push_json(stream, text).unwrap());
        if rng.below(every) == 0 {
            let bytes = engine.checkpoint().unwrap().to_bytes();
            let (mut fresh, _) = setup();
            let checkpoint = riffle::state::checkpoint::Checkpoint::from_bytes(&bytes).unwrap();
            fresh.restore(&checkpoint).unwrap();
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
        assert_eq!(
            engine.query_metrics(*id).unwrap(),
            uninterrupted.query_metrics(*id).unwrap(),
            "seed {seed}, query {id}: metrics"
        );
    }
}

/// Batch SQL over tables `a` and `b`.
pub fn batch_ab(a: &[Trade], b: &[Trade], sql: &str) -> Vec<Vec<String>> {
    batch_sql_with(&[], sql, |ctx| {
        for (name, rows) in [("a", a), ("b", b)] {
            let data = batch(rows);
            let table = MemTable::try_new(data.schema(), vec![vec![data]]).unwrap();
            ctx.register_table(name, Arc::new(table)).unwrap();
        }
    })
}

/// The two feeds as pushes of random sizes, randomly interleaved.
pub fn interleaved(a: &[Trade], b: &[Trade], seed: u64) -> Vec<(&'static str, Vec<Trade>)> {
    let mut rng = Rng::new(seed);
    let (mut a, mut b) = (a, b);
    let mut pushes = Vec::new();
    while !a.is_empty() || !b.is_empty() {
        let pick_a = !a.is_empty() && (b.is_empty() || rng.below(2) == 0);
        let rest = if pick_a { &mut a } else { &mut b };
        let take = (1 + rng.below(40) as usize).min(rest.len());
        let (head, tail) = rest.split_at(take);
        pushes.push((if pick_a { "a" } else { "b" }, head.to_vec()));
        *rest = tail;
    }
    pushes
}

pub fn feeds(seed: u64) -> (Vec<Trade>, Vec<Trade>) {
    (
        trades(seed, 700, 4, 97, 400),
        trades(seed + 1, 500, 3, 131, 400),
    )
}

/// Pushes (stream, rows) in order as NDJSON, then finishes; every output.
pub fn run_pushes(engine: &mut Engine, pushes: &[(&str, Vec<Trade>)]) -> Vec<QueryOutput> {
    let mut outputs = Vec::new();
    for (stream, rows) in pushes {
        outputs.extend(engine.push_json(stream, &ndjson(rows)).unwrap());
    }
    outputs.extend(engine.finish().unwrap());
    outputs
}

/// The table a changelog describes (its first `keys` columns identify a
/// row), checking each change against it.
pub fn materialised(rows: &[Vec<String>], keys: usize) -> Vec<Vec<String>> {
    let mut view = std::collections::BTreeMap::new();
    apply_changelog(&mut view, rows, keys);
    sorted(view.into_values().collect())
}

/// The rows a changelog of rows that may repeat (a join's) nets to: each
/// insert adds a copy of its row, each delete takes one out, and a delete
/// of a row not there fails.
pub fn netted(rows: &[Vec<String>]) -> Vec<Vec<String>> {
    let mut counts = std::collections::BTreeMap::<Vec<String>, usize>::new();
    for row in rows {
        let (values, op) = row.split_at(row.len() - 1);
        match op[0].as_str() {
            "insert" | "update_after" => *counts.entry(values.to_vec()).or_default() += 1,
            "update_before" | "delete" => {
                let count = counts.get_mut(values);
                let count = count.unwrap_or_else(|| panic!("retracting a row not there: {row:?}"));
                *count -= 1;
                if *count == 0 {
                    counts.remove(values);
                }
            }
            other => panic!("unknown op {other}"),
        }
    }
    counts
        .into_iter()
        .flat_map(|(row, n)| std::iter::repeat_n(row, n))
        .collect()
}

/// Asserts that `result` failed with `code` and a message containing `says`.
pub fn assert_refused<T: std::fmt::Debug>(
    result: Result<T, riffle::RiffleError>,
    code: riffle::ErrorCode,
    says: &str,
) {
    let error = result.expect_err(says);
    assert_eq!(error.code(), code, "{error}");
    assert!(error.message().contains(says), "{error}");
}

/// The two feeds in pushes of 1 to 4 rows, interleaved by event time (a
/// random pick when their next rows are within a second): the streams'
/// watermarks stay close, so either can be the join's, and the watermark
/// moves between nearly every two rows. State that leaves a moment too
/// early shows.
pub fn finely_interleaved(a: &[Trade], b: &[Trade], seed: u64) -> Vec<(&'static str, Vec<Trade>)> {
    let mut rng = Rng::new(seed);
    let (mut a, mut b) = (a, b);
    let mut pushes = Vec::new();
    while !a.is_empty() || !b.is_empty() {
        let pick_a = match (a.first(), b.first()) {
            (Some(x), Some(y)) if (x.ts_ms - y.ts_ms).abs() < 1000 => rng.below(2) == 0,
            (Some(x), Some(y)) => x.ts_ms < y.ts_ms,
            (x, _) => x.is_some(),
        };
        let rest = if pick_a { &mut a } else { &mut b };
        let take = (1 + rng.below(4) as usize).min(rest.len());
        let (head, tail) = rest.split_at(take);
        pushes.push((if pick_a { "a" } else { "b" }, head.to_vec()));
        *rest = tail;
    }
    pushes
}
