//! The JS benchmark's workloads (bench/lib/workloads.mjs), natively: the
//! same generator, seed, SQL and micro-batches, so `cargo bench` next to
//! `npm run bench` shows what WebAssembly costs.
//!
//!   cargo bench --bench workloads -- [--events N] [--only W1,W3] [--batch 10000]

use std::sync::Arc;
use std::time::Instant;

use arrow::array::{Float64Array, Int64Array, StringArray};
use arrow::datatypes::{DataType, Field, Schema};
use arrow::record_batch::RecordBatch;
use riffle::Engine;

const DDL: &str = "CREATE STREAM events (key VARCHAR, value DOUBLE, ts BIGINT, \
                   WATERMARK FOR ts AS ts - INTERVAL '2' SECOND)";
const BASE: i64 = 1_700_000_000_000;
const AGGREGATES: &str =
    "count(*) AS n, sum(value) AS sum, avg(value) AS avg, min(value) AS min, max(value) AS max";

struct Workload {
    name: &'static str,
    events: usize,
    keys: u64,
    per_ms: u64,
    sessions: bool,
    sql: String,
}

fn workloads() -> Vec<Workload> {
    let tumble = "FROM TUMBLE(events, ts, INTERVAL '1' MINUTE) GROUP BY key, window_start";
    vec![
        Workload { name: "W1", events: 1_000_000, keys: 1_000, per_ms: 1, sessions: false, sql: format!("SELECT key, window_start, {AGGREGATES} {tumble}") },
        Workload {
            name: "W2",
            events: 300_000,
            keys: 1_000,
            per_ms: 1,
            sessions: false,
            sql: format!("SELECT key, window_start, {AGGREGATES} FROM HOP(events, ts, INTERVAL '10' SECOND, INTERVAL '5' MINUTE) GROUP BY key, window_start"),
        },
        Workload {
            name: "W3",
            events: 500_000,
            keys: 1_000,
            per_ms: 1,
            sessions: true,
            sql: "SELECT key, window_start, window_end, count(*) AS n, sum(value) AS sum, max(value) AS max \
                  FROM SESSION(events, ts, INTERVAL '30' SECOND) GROUP BY key, window_start, window_end"
                .into(),
        },
        Workload {
            name: "W4",
            events: 500_000,
            keys: 1_000,
            per_ms: 1,
            sessions: false,
            sql: format!(
                "SELECT key, window_start, count(*) AS n, \
                 approx_percentile_cont(0.5) WITHIN GROUP (ORDER BY value) AS p50, \
                 approx_percentile_cont(0.75) WITHIN GROUP (ORDER BY value) AS p75 {tumble}"
            ),
        },
        Workload { name: "W5", events: 1_000_000, keys: 1_000_000, per_ms: 4, sessions: false, sql: format!("SELECT key, window_start, {AGGREGATES} {tumble}") },
    ]
}

#[path = "shared/mulberry.rs"]
mod mulberry;
use mulberry::Rng;

struct Event {
    key: String,
    value: f64,
    ts: i64,
}

fn generate(w: &Workload, count: usize, seed: u32) -> Vec<Event> {
    let mut random = Rng(seed);
    let phase: Vec<u64> = if w.sessions {
        (0..w.keys)
            .map(|_| (random.next() * 120_000.0) as u64)
            .collect()
    } else {
        Vec::new()
    };
    (0..count)
        .map(|i| {
            let t = i as u64 / w.per_ms;
            let mut k = (random.next() * w.keys as f64) as u64;
            if w.sessions {
                while ((t + phase[k as usize]) / 60_000) % 2 == 1 {
                    k = (random.next() * w.keys as f64) as u64;
                }
            }
            let value = (random.next() * 10_000.0).round() / 100.0;
            let ts = BASE + t as i64 + (random.next() * 500.0) as i64;
            Event {
                key: format!("k{k}"),
                value,
                ts,
            }
        })
        .collect()
}

fn arrow_batch(events: &[Event]) -> RecordBatch {
    let schema = Arc::new(Schema::new(vec![
        Field::new("key", DataType::Utf8, false),
        Field::new("value", DataType::Float64, false),
        Field::new("ts", DataType::Int64, false),
    ]));
    RecordBatch::try_new(
        schema,
        vec![
            Arc::new(StringArray::from_iter_values(
                events.iter().map(|e| e.key.as_str()),
            )),
            Arc::new(Float64Array::from_iter_values(
                events.iter().map(|e| e.value),
            )),
            Arc::new(Int64Array::from_iter_values(events.iter().map(|e| e.ts))),
        ],
    )
    .expect("columns match the schema")
}

fn ndjson(events: &[Event]) -> String {
    let mut text = String::with_capacity(events.len() * 48);
    for e in events {
        text.push_str(&format!(
            "{{\"key\":\"{}\",\"value\":{},\"ts\":{}}}\n",
            e.key, e.value, e.ts
        ));
    }
    text
}

/// Events per second of one run (all pushes and the final `finish`) and the rows emitted.
fn run(
    w: &Workload,
    push: &mut dyn FnMut(&mut Engine, usize) -> usize,
    batches: usize,
    events: usize,
) -> (f64, usize) {
    let mut engine = Engine::new().expect("engine");
    engine.execute(DDL).expect("DDL");
    engine.create_query(&w.sql).expect("query");
    let start = Instant::now();
    let mut rows = 0;
    for i in 0..batches {
        rows += push(&mut engine, i);
    }
    rows += rows_of(engine.finish().expect("finish"));
    (events as f64 / start.elapsed().as_secs_f64(), rows)
}

fn rows_of(outputs: Vec<riffle::QueryOutput>) -> usize {
    outputs.iter().map(|o| o.batch.num_rows()).sum()
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let flag = |name: &str| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1))
            .cloned()
    };
    let events: Option<usize> = flag("--events").and_then(|v| v.parse().ok());
    let batch: usize = flag("--batch")
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000);
    let only: Option<Vec<String>> =
        flag("--only").map(|v| v.split(',').map(str::to_string).collect());

    println!("| workload | events | NDJSON text in | Arrow in | windows |");
    println!("| --- | ---: | ---: | ---: | ---: |");
    for w in workloads() {
        if only
            .as_ref()
            .is_some_and(|o| !o.iter().any(|n| n == w.name))
        {
            continue;
        }
        let count = events.unwrap_or(w.events);
        let data = generate(&w, count, 1);
        let texts: Vec<String> = data.chunks(batch).map(ndjson).collect();
        let arrows: Vec<RecordBatch> = data.chunks(batch).map(arrow_batch).collect();
        let (json_rate, json_rows) = run(
            &w,
            &mut |e, i| rows_of(e.push_json("events", &texts[i]).expect("push")),
            texts.len(),
            count,
        );
        let (arrow_rate, arrow_rows) = run(
            &w,
            &mut |e, i| rows_of(e.push("events", &arrows[i]).expect("push")),
            arrows.len(),
            count,
        );
        assert_eq!(
            json_rows, arrow_rows,
            "{}: both paths emit the same windows",
            w.name
        );
        println!(
            "| {} | {count} | {:.2} M/s | {:.2} M/s | {json_rows} |",
            w.name,
            json_rate / 1e6,
            arrow_rate / 1e6
        );
    }
}
