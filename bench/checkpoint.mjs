// Checkpoint cost: time and size of snapshot() and restoreSnapshot() for
// 10k, 100k and 1M group keys (a 1-minute tumbling window, one open window).
//
//   node bench/checkpoint.mjs [--keys 10000,100000,1000000]
import { Riffle } from "riffle-sql";

const arg = process.argv.indexOf("--keys");
const sizes = (arg > 0 ? process.argv[arg + 1] : "10000,100000,1000000").split(",").map(Number);
const DDL = "CREATE STREAM events (key VARCHAR, value DOUBLE, ts BIGINT, WATERMARK FOR ts AS ts - INTERVAL '2' SECOND)";
const QUERY = `SELECT key, window_start, count(*), sum(value), avg(value), min(value), max(value)
  FROM TUMBLE(events, ts, INTERVAL '1' MINUTE) GROUP BY key, window_start`;

async function engine() {
  const e = await Riffle.create();
  await e.sql(DDL);
  e.query(QUERY);
  return e;
}

console.log("| group keys | state | snapshot | restore | snapshot size |");
console.log("| ---: | --- | ---: | ---: | ---: |");
for (const keys of sizes) {
  const source = await engine();
  for (let i = 0; i < keys; i += 20_000) {
    let text = "";
    for (let k = i; k < Math.min(i + 20_000, keys); k++) text += `{"key":"k${k}","value":${k % 1000},"ts":${1_700_000_000_000 + (k % 1000)}}\n`;
    source.pushJson("events", text);
  }
  let start = performance.now();
  const bytes = source.snapshot();
  const snapshotMs = performance.now() - start;
  const target = await engine();
  start = performance.now();
  target.restoreSnapshot(bytes);
  const restoreMs = performance.now() - start;
  console.log(
    `| ${keys.toLocaleString()} | count, sum, avg, min, max | ${snapshotMs.toFixed(0)} ms | ${restoreMs.toFixed(0)} ms | ${(bytes.length / 1e6).toFixed(1)} MB |`,
  );
  source.close();
  target.close();
}
