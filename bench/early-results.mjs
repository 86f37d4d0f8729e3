// Early results: W1's data and query with EMIT ON UPDATE (after every push,
// one changelog row pair per changed window and key), against the same
// written by hand: a Map per window, the changed groups' before/after rows
// after each push. One fresh process per run (first run, then a second,
// warm one on a new instance); engines take turns; medians of 3 rounds.
// Every engine must produce the same changelog rows, in number and, once
// applied, in final values.
//
//   node bench/early-results.mjs [--events 1000000] [--repeat 3]
import { fork } from "node:child_process";
import { fileURLToPath } from "node:url";

import { toArrow } from "./lib/arrow-input.mjs";
import { DDL, WORKLOADS, batchesOf, generate } from "./lib/workloads.mjs";

const W = WORKLOADS.W1;
const SQL = `${W.sql} EMIT ON UPDATE`;
const ENGINES = {
  "riffle-ndjson": "Riffle, NDJSON in",
  "riffle-arrow": "Riffle, Arrow IPC in",
  "js-text": "JS: JSON.parse + Map",
  "js-objects": "JS: Map on objects",
};
const arg = (name, fallback) => {
  const at = process.argv.indexOf(`--${name}`);
  return at > 0 ? Number(process.argv[at + 1]) : fallback;
};

if (process.argv[2] === "--child") {
  const { engine, events } = JSON.parse(process.argv[3]);
  const result = await measure(engine, events);
  process.send(result, () => process.exit(0));
} else {
  const events = arg("events", 1_000_000);
  const rounds = arg("repeat", 3);
  const runs = Object.fromEntries(Object.keys(ENGINES).map((e) => [e, []]));
  for (let round = 0; round < rounds; round++) {
    for (const engine of Object.keys(ENGINES)) runs[engine].push(await child(engine, events));
  }
  const reference = runs["js-objects"][0];
  const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor((xs.length - 1) / 2)];
  const rate = (ms) => `${(events / ms / 1000).toFixed(2)} M`;
  console.log(`W1 data with EMIT ON UPDATE: ${events.toLocaleString("en-US")} events, micro-batches of 10,000, ${rounds} rounds`);
  console.log("");
  console.log("| engine | first run | warm run | ÷ JSON.parse + Map (first, warm) | changelog rows | same final values |");
  console.log("| --- | ---: | ---: | ---: | ---: | --- |");
  const base = runs["js-text"];
  for (const [engine, label] of Object.entries(ENGINES)) {
    const r = runs[engine];
    const [first, warm] = [median(r.map((x) => x.ms)), median(r.map((x) => x.warmMs))];
    const ratio = `${(median(base.map((x) => x.ms)) / first).toFixed(2)}x, ${(median(base.map((x) => x.warmMs)) / warm).toFixed(2)}x`;
    const same = r.every((x) => x.rows === reference.rows && x.digest === reference.digest);
    console.log(`| ${label} | ${rate(first)} | ${rate(warm)} | ${ratio} | ${r[0].rows.toLocaleString("en-US")} | ${same ? "yes" : "NO"} |`);
  }
}

function child(engine, events) {
  return new Promise((resolve, reject) => {
    const proc = fork(fileURLToPath(import.meta.url), ["--child", JSON.stringify({ engine, events })]);
    proc.on("message", resolve);
    proc.on("exit", (code) => code !== 0 && reject(new Error(`${engine} exited with ${code}`)));
  });
}

async function measure(engine, count) {
  const batches = batchesOf(generate(W, count, 1), 10_000).map((b) =>
    engine.endsWith("text") || engine.endsWith("ndjson") ? b.map((e) => JSON.stringify(e)).join("\n") : engine === "riffle-arrow" ? toArrow(b) : b,
  );
  const once = engine.startsWith("riffle") ? await riffle(engine, batches) : handWritten(engine, batches);
  const first = await once();
  const warm = await (engine.startsWith("riffle") ? await riffle(engine, batches) : handWritten(engine, batches))();
  return { ms: first.ms, warmMs: warm.ms, rows: first.rows, digest: first.digest };
}

/** The changelog applied to a view, summed up: equal runs give equal digests. */
function digestOf(view) {
  let total = 0;
  for (const id of [...view.keys()].sort()) {
    const row = view.get(id);
    total += row.n * 7 + row.sum + row.min * 3 + row.max * 5 + row.avg;
  }
  return `${view.size}:${total.toFixed(6)}`;
}

function apply(view, row) {
  const id = `${row.key}|${row.window_start}`;
  if (row._op === "update_before" || row._op === "delete") view.delete(id);
  else view.set(id, row);
}

async function riffle(engine, batches) {
  const { Riffle } = await import("riffle-sql");
  const db = await Riffle.create();
  await db.sql(DDL);
  const query = db.query(SQL);
  let rows = 0;
  const delivered = [];
  query.subscribe((out) => {
    rows += out.length;
    delivered.push(out);
  });
  return () => {
    const start = performance.now();
    for (const b of batches) engine === "riffle-arrow" ? db.pushArrow("events", b) : db.pushJson("events", b);
    db.finish();
    const ms = performance.now() - start;
    db.close();
    const view = new Map();
    for (const out of delivered) for (const row of out) apply(view, row);
    return { ms, rows, digest: digestOf(view) };
  };
}

function handWritten(engine, batches) {
  return () => {
    const start = performance.now();
    const windows = new Map(); // window start -> Map(key -> state)
    let maxTs = -Infinity;
    let closedThrough = -Infinity;
    let rows = 0;
    const delivered = [];
    for (const batch of batches) {
      const events = engine === "js-text" ? batch.split("\n").map((line) => JSON.parse(line)) : batch;
      const changed = new Map();
      for (const e of events) {
        const windowStart = Math.floor(e.ts / 60_000) * 60_000;
        if (windowStart + 60_000 - 1 <= closedThrough) continue;
        let window = windows.get(windowStart);
        if (!window) windows.set(windowStart, (window = new Map()));
        let s = window.get(e.key);
        if (!s) window.set(e.key, (s = { n: 0, sum: 0, min: Infinity, max: -Infinity, last: null }));
        s.n += 1;
        s.sum += e.value;
        if (e.value < s.min) s.min = e.value;
        if (e.value > s.max) s.max = e.value;
        changed.set(s, [e.key, windowStart]);
        if (e.ts > maxTs) maxTs = e.ts;
      }
      const out = [];
      for (const [s, [key, windowStart]] of changed) {
        const now = { key, window_start: windowStart, n: s.n, sum: s.sum, avg: s.sum / s.n, min: s.min, max: s.max };
        if (s.last) out.push({ ...s.last, _op: "update_before" }, { ...now, _op: "update_after" });
        else out.push({ ...now, _op: "insert" });
        s.last = now;
      }
      rows += out.length;
      delivered.push(out);
      // Windows whose end the watermark (max ts - 2 s) passed take no more rows.
      for (const windowStart of windows.keys()) {
        if (windowStart + 60_000 - 1 <= maxTs - 2_000) {
          windows.delete(windowStart);
          closedThrough = Math.max(closedThrough, windowStart + 60_000 - 1);
        }
      }
    }
    const ms = performance.now() - start;
    const view = new Map();
    for (const out of delivered) for (const row of out) apply(view, row);
    return { ms, rows, digest: digestOf(view) };
  };
}
