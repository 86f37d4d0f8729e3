//! Riffle's interval join against DataFusion's `SymmetricHashJoinExec`
//! (which issue 20 asked to measure): bench W7's two feeds (1k keys, 10
//! events per ms, 10k-row batches to the feeds in turn), joined by key
//! within 250 ms, the pairs counted. `SymmetricHashJoinExec` prunes its
//! state only over inputs sorted by the time it bounds, so both engines get
//! each feed sorted by `ts` (Riffle needs no order; W7 feeds it disorder).
//!
//!   cargo bench --bench join_operators -- [--events N]

use std::sync::Arc;
use std::time::Instant;

use arrow::array::{Float64Array, Int64Array, StringArray};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use arrow::record_batch::RecordBatch;
use datafusion::catalog::streaming::StreamingTable;
use datafusion::execution::TaskContext;
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::streaming::PartitionStream;
use datafusion::physical_plan::{displayable, SendableRecordBatchStream};
use datafusion::prelude::{col, SessionConfig, SessionContext};
use futures::StreamExt;
use riffle::Engine;

const BASE: i64 = 1_700_000_000_000;
const BATCH: usize = 10_000;
const KEYS: f64 = 1_000.0;
const PAIRS: &str = "SELECT a.key, a.ts, b.value - a.value AS d FROM events_a AS a \
                     JOIN events_b AS b ON a.key = b.key AND b.ts BETWEEN a.ts - 250 AND a.ts + 250";

#[path = "shared/mulberry.rs"]
mod mulberry;
use mulberry::Rng;

fn schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("key", DataType::Utf8, false),
        Field::new("value", DataType::Float64, false),
        Field::new("ts", DataType::Int64, false),
    ]))
}

/// Both feeds' batches: W7's events, batch `i` to feed `i % 2`, each
/// batch sorted by time (batches follow each other in time).
fn feeds(events: usize) -> [Vec<RecordBatch>; 2] {
    let mut random = Rng(1);
    let mut rows: Vec<(String, f64, i64)> = (0..events)
        .map(|i| {
            let key = (random.next() * KEYS) as u64;
            let value = (random.next() * 10_000.0).round() / 100.0;
            let ts = BASE + (i / 10) as i64 + (random.next() * 500.0) as i64;
            (format!("k{key}"), value, ts)
        })
        .collect();
    let mut out = [Vec::new(), Vec::new()];
    for (i, chunk) in rows.chunks_mut(BATCH).enumerate() {
        chunk.sort_by_key(|r| r.2);
        out[i % 2].push(batch(chunk));
    }
    // Sorted within each feed as a whole too: batch i + 2 starts after
    // batch i ends (500 ms of disorder, two batches = two seconds).
    for feed in &out {
        for pair in feed.windows(2) {
            let last = |b: &RecordBatch| {
                let ts = b.column(2).as_any().downcast_ref::<Int64Array>().unwrap();
                (ts.value(0), ts.value(ts.len() - 1))
            };
            assert!(last(&pair[0]).1 <= last(&pair[1]).0, "feeds are sorted");
        }
    }
    out
}

fn batch(rows: &[(String, f64, i64)]) -> RecordBatch {
    RecordBatch::try_new(
        schema(),
        vec![
            Arc::new(StringArray::from_iter_values(
                rows.iter().map(|r| r.0.as_str()),
            )),
            Arc::new(Float64Array::from_iter_values(rows.iter().map(|r| r.1))),
            Arc::new(Int64Array::from_iter_values(rows.iter().map(|r| r.2))),
        ],
    )
    .expect("columns match the schema")
}

/// Pairs and seconds through Riffle: the feeds pushed in turn, then finish.
fn riffle(feeds: &[Vec<RecordBatch>; 2]) -> (usize, f64) {
    let mut engine = Engine::new().expect("engine");
    for name in ["events_a", "events_b"] {
        engine
            .execute(&format!(
                "CREATE STREAM {name} (key VARCHAR, value DOUBLE, ts BIGINT, \
                 WATERMARK FOR ts AS ts - INTERVAL '2' SECOND)"
            ))
            .expect("DDL");
    }
    engine.create_query(PAIRS).expect("query");
    let start = Instant::now();
    let mut rows = 0;
    let count = |outputs: Vec<riffle::QueryOutput>| -> usize {
        outputs.iter().map(|o| o.batch.num_rows()).sum()
    };
    for i in 0..feeds[0].len().max(feeds[1].len()) {
        for (feed, name) in feeds.iter().zip(["events_a", "events_b"]) {
            if let Some(batch) = feed.get(i) {
                rows += count(engine.push(name, batch).expect("push"));
            }
        }
    }
    rows += count(engine.finish().expect("finish"));
    (rows, start.elapsed().as_secs_f64())
}

/// One feed as an unbounded source.
#[derive(Debug)]
struct Feed(Vec<RecordBatch>);

impl PartitionStream for Feed {
    fn schema(&self) -> &SchemaRef {
        self.0[0].schema_ref()
    }

    fn execute(&self, _ctx: Arc<TaskContext>) -> SendableRecordBatchStream {
        let batches = self.0.clone().into_iter().map(Ok);
        Box::pin(RecordBatchStreamAdapter::new(
            schema(),
            futures::stream::iter(batches),
        ))
    }
}

/// Pairs and seconds through DataFusion's plan for the same SQL over two
/// unbounded sources sorted by `ts`: a `SymmetricHashJoinExec`.
fn symmetric_hash_join(feeds: &[Vec<RecordBatch>; 2]) -> (usize, f64) {
    let ctx = SessionContext::new_with_config(SessionConfig::new().with_target_partitions(1));
    for (feed, name) in feeds.iter().zip(["events_a", "events_b"]) {
        let table = StreamingTable::try_new(schema(), vec![Arc::new(Feed(feed.clone()))])
            .expect("table")
            .with_infinite_table(true)
            .with_sort_order(vec![col("ts").sort(true, false)]);
        ctx.register_table(name, Arc::new(table)).expect("register");
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let plan = ctx
            .sql(PAIRS)
            .await
            .expect("plan")
            .create_physical_plan()
            .await
            .expect("physical plan");
        let shown = displayable(plan.as_ref()).indent(true).to_string();
        assert!(
            shown.contains("SymmetricHashJoinExec"),
            "DataFusion plans another join:\n{shown}"
        );
        let start = Instant::now();
        let mut stream =
            datafusion::physical_plan::execute_stream(plan, ctx.task_ctx()).expect("execute");
        let mut rows = 0;
        while let Some(batch) = stream.next().await {
            rows += batch.expect("batch").num_rows();
        }
        (rows, start.elapsed().as_secs_f64())
    })
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let events: usize = args
        .iter()
        .position(|a| a == "--events")
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    let feeds = feeds(events);
    println!("| run | Riffle IntervalJoin | DataFusion SymmetricHashJoinExec | pairs |");
    println!("| --- | ---: | ---: | ---: |");
    // Alternating, so neither always runs on a warmer machine.
    for run in 1..=3 {
        let (ours, ours_s) = riffle(&feeds);
        let (theirs, theirs_s) = symmetric_hash_join(&feeds);
        assert_eq!(ours, theirs, "both joins give the same pairs");
        println!(
            "| {run} | {:.2} M events/s | {:.2} M events/s | {ours} |",
            events as f64 / ours_s / 1e6,
            events as f64 / theirs_s / 1e6
        );
    }
}
