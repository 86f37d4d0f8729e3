// Throughput of Riffle against a hand-written JavaScript aggregator, on the
// same generated events, computing the same results (checked).
//
//   npm run bench -- --events 1000000 --keys 1000 --batch 10000
//
// W1: 1-minute tumbling count/sum/avg/min/max per key, events 1 ms apart
// with up to 500 ms of disorder, watermark bound 2 s. Figures are for this
// run only: compare ratios, not absolute numbers, on a shared machine.
import { Float64, Int64, Utf8, makeTable, tableToIPC, vectorFromArray } from "apache-arrow";
import { Riffle } from "riffle-sql";

const options = parseArgs(process.argv.slice(2), { events: 1_000_000, keys: 1000, batch: 10_000, seed: 1 });
const WINDOW = 60_000;
const DELAY = 2_000;

function generate() {
  let state = options.seed >>> 0;
  const random = () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = Math.imul(state ^ (state >>> 15), state | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const base = 1_700_000_000_000;
  const events = new Array(options.events);
  for (let i = 0; i < options.events; i++) {
    events[i] = {
      key: `k${Math.floor(random() * options.keys)}`,
      value: Math.round(random() * 10_000) / 100,
      ts: base + i + Math.floor(random() * 500),
    };
  }
  return events;
}

/** What people write today: a Map per window, closed by a watermark. */
function handWritten(batches, parse) {
  const windows = new Map(); // window start -> Map(key -> state)
  const out = [];
  let maxTs = -Infinity;
  for (const batch of batches) {
    const events = parse(batch);
    for (const e of events) {
      const watermark = maxTs - DELAY;
      const start = Math.floor(e.ts / WINDOW) * WINDOW;
      if (start + WINDOW - 1 <= watermark) continue; // late
      let perKey = windows.get(start);
      if (!perKey) windows.set(start, (perKey = new Map()));
      let s = perKey.get(e.key);
      if (!s) perKey.set(e.key, (s = { n: 0, sum: 0, min: Infinity, max: -Infinity }));
      s.n += 1;
      s.sum += e.value;
      if (e.value < s.min) s.min = e.value;
      if (e.value > s.max) s.max = e.value;
      if (e.ts > maxTs) maxTs = e.ts;
    }
    const watermark = maxTs - DELAY;
    for (const [start, perKey] of windows) {
      if (start + WINDOW - 1 > watermark) continue;
      for (const [key, s] of perKey) out.push({ key, window_start: start, n: s.n, sum: s.sum, avg: s.sum / s.n, min: s.min, max: s.max });
      windows.delete(start);
    }
  }
  for (const [start, perKey] of windows) {
    for (const [key, s] of perKey) out.push({ key, window_start: start, n: s.n, sum: s.sum, avg: s.sum / s.n, min: s.min, max: s.max });
  }
  return out;
}

async function riffle(batches, push) {
  const engine = await Riffle.create();
  await engine.sql(`CREATE STREAM events (key VARCHAR, value DOUBLE, ts BIGINT, WATERMARK FOR ts AS ts - INTERVAL '2' SECOND)`);
  const query = engine.query(`SELECT key, window_start, count(*) AS n, sum(value) AS sum, avg(value) AS avg, min(value) AS min, max(value) AS max
    FROM TUMBLE(events, ts, INTERVAL '1' MINUTE) GROUP BY key, window_start`);
  const out = [];
  query.subscribe((rows) => {
    for (const row of rows) out.push(row);
  });
  for (const batch of batches) push(engine, batch);
  engine.finish();
  engine.close();
  return out;
}

function time(label, run) {
  const start = performance.now();
  const result = run();
  return Promise.resolve(result).then((rows) => ({ label, ms: performance.now() - start, rows }));
}

function agree(a, b) {
  if (a.length !== b.length) return `${a.length} vs ${b.length} rows`;
  const index = new Map(b.map((r) => [`${r.key}|${r.window_start}`, r]));
  for (const r of a) {
    const o = index.get(`${r.key}|${r.window_start}`);
    if (!o) return `missing ${r.key} ${r.window_start}`;
    for (const f of ["n", "sum", "avg", "min", "max"]) {
      if (Math.abs(r[f] - o[f]) > 1e-6 * Math.max(1, Math.abs(o[f]))) return `${f} differs for ${r.key} ${r.window_start}: ${r[f]} vs ${o[f]}`;
    }
  }
  return null;
}

const events = generate();
const objectBatches = [];
for (let i = 0; i < events.length; i += options.batch) objectBatches.push(events.slice(i, i + options.batch));
const textBatches = objectBatches.map((batch) => batch.map((e) => JSON.stringify(e)).join("\n"));
// Arrow IPC, as an app holding columns (or receiving Arrow) would push it.
const arrowBatches = objectBatches.map((batch) =>
  tableToIPC(
    makeTable({
      key: vectorFromArray(batch.map((e) => e.key), new Utf8()),
      value: vectorFromArray(batch.map((e) => e.value), new Float64()),
      ts: vectorFromArray(BigInt64Array.from(batch.map((e) => BigInt(e.ts))), new Int64()),
    }),
    "stream",
  ),
);
const megabytes = textBatches.reduce((n, t) => n + t.length, 0) / 1e6;

console.log(`W1 tumbling 1 min, ${options.events.toLocaleString()} events, ${options.keys} keys, batches of ${options.batch}, ${megabytes.toFixed(1)} MB of NDJSON`);
const results = [];
results.push(await time("JS: JSON.parse + Map (text in)", () => handWritten(textBatches, (t) => t.split("\n").map((l) => JSON.parse(l)))));
results.push(await time("Riffle: NDJSON text in", () => riffle(textBatches, (e, t) => e.pushJson("events", t))));
results.push(await time("JS: Map (objects in)", () => handWritten(objectBatches, (b) => b)));
results.push(await time("Riffle: objects in", () => riffle(objectBatches, (e, b) => e.push("events", b))));
results.push(await time("Riffle: Arrow IPC in", () => riffle(arrowBatches, (e, b) => e.pushArrow("events", b))));

const reference = results[0].rows;
console.log("\n| path | events/s | vs JS, same input | results agree |");
console.log("| --- | ---: | ---: | --- |");
for (const [i, r] of results.entries()) {
  // Text paths compare with JSON.parse + Map; object and columnar paths with Map on objects.
  const baseline = results[i < 2 ? 0 : 2];
  const rate = options.events / (r.ms / 1000);
  const disagreement = agree(r.rows, reference);
  console.log(
    `| ${r.label} | ${(rate / 1e6).toFixed(2)} M | ${(baseline.ms / r.ms).toFixed(2)}x | ${disagreement ? `NO: ${disagreement}` : "yes"} |`,
  );
  if (disagreement) process.exitCode = 1;
}

function parseArgs(argv, defaults) {
  const result = { ...defaults };
  for (let i = 0; i < argv.length; i += 2) {
    const key = argv[i].replace(/^--/, "");
    if (!(key in defaults)) throw new Error(`unknown option ${argv[i]}`);
    result[key] = Number(argv[i + 1]);
  }
  return result;
}
