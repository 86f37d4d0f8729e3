// One measurement in a fresh process (forked by run.mjs), so that each
// engine's peak RSS is its own. Modes:
//   throughput: generate a workload's data, push it in micro-batches, finish;
//               send back the time, the rows and the memory figures; with
//               `warm`, the same again on a new instance (steady-state JIT).
//   latency:    push at a fixed rate with timers; send back per-window latencies.
//   instantiate: time import + create of one engine.
import { toArrow } from "./lib/arrow-input.mjs";
import { ENGINES, openDuckDB } from "./lib/engines.mjs";
import { BASE, WORKLOADS, batchesOf, generate, rng } from "./lib/workloads.mjs";

const job = JSON.parse(process.argv[2]);

function inputs(events, size, input) {
  const batches = batchesOf(events, size);
  if (input === "objects") return batches;
  if (input === "text") return batches.map((b) => b.map((e) => JSON.stringify(e)).join("\n"));
  return batches.map(toArrow);
}

const keep = (w) => {
  const names = ["key", "window_start", ...(w.window.kind === "session" ? ["window_end"] : []), ...w.fields.filter((f) => f !== "window_end")];
  for (const f of w.approx ?? []) names.push(`${f}_lo`, `${f}_hi`);
  return names;
};

async function throughput() {
  const w = WORKLOADS[job.workload];
  const engine = ENGINES[job.engine];
  let events = generate(w, job.events, job.seed);
  const batches = inputs(events, job.batch, engine.input);
  const inputBytes = engine.input === "text" ? batches.reduce((n, t) => n + t.length, 0) : engine.input === "arrow" ? batches.reduce((n, b) => n + b.byteLength, 0) : null;
  if (engine.input !== "objects") events = null;
  globalThis.gc?.();
  const rssBefore = process.memoryUsage().rss;
  const names = keep(w);
  // One timed run on a new engine instance: push every batch, finish.
  const run = async () => {
    const rows = [];
    const instance = await engine.create(w, (out) => {
      for (const r of out) rows.push(r);
    });
    // RSS sampled after every push (cheap): the engine's own peak, which
    // maxRSS cannot show when generating the input was the process's peak.
    let rssPeak = process.memoryUsage.rss();
    const start = performance.now();
    for (const b of batches) {
      await instance.push(b);
      const rss = process.memoryUsage.rss();
      if (rss > rssPeak) rssPeak = rss;
    }
    await instance.finish();
    const ms = performance.now() - start;
    rssPeak = Math.max(rssPeak, process.memoryUsage.rss());
    const extra = await instance.close();
    const compact = rows.map((r) => names.map((n) => (typeof r[n] === "bigint" ? Number(r[n]) : r[n])));
    return { ms, rssPeak, rows: compact, extra };
  };
  // Cold: the first run in a fresh process, so the JIT (V8's baseline
  // compilers, then its optimising tiers) warms up during it. Memory
  // figures are the cold run's.
  const cold = await run();
  const maxRss = process.resourceUsage().maxRSS * 1024;
  const result = { ms: cold.ms, rssBefore, rssPeak: cold.rssPeak, maxRss, inputBytes, names, rows: cold.rows, extra: cold.extra };
  if (!job.warm) return result;
  // The first run's figures and rows go now, so that its rows (up to ~1M on
  // W5) do not weigh on the second run's garbage collections.
  await new Promise((resolve) => process.send({ partial: result }, resolve));
  cold.rows = null;
  result.rows = null;
  globalThis.gc?.();
  // Warm: the same again on a new instance in the same process, with the
  // code the first run made hot already optimised (steady state).
  const warm = await run();
  return { warmMs: warm.ms, warmRows: warm.rows };
}

/**
 * W1's query over 1-second windows at a fixed input rate: every 10 ms (a
 * timer) one push of rate/100 events covering 100 ms of event time, so
 * event time runs 10x the wall clock and a window closes about every
 * 100 ms. Latency: from the push's scheduled time (when its events
 * "arrived") to the moment the closed window's rows reach the subscriber,
 * so time spent behind schedule counts.
 */
async function latency() {
  const base = WORKLOADS.W1;
  const w = { ...base, window: { kind: "tumble", size: 1_000 }, sql: base.sql.replace("INTERVAL '1' MINUTE", "INTERVAL '1' SECOND") };
  const engine = ENGINES[job.engine];
  const perPush = Math.round(job.rate / 100);
  const pushes = Math.round(job.seconds * 100);
  const random = rng(job.seed);
  const events = [];
  for (let i = 0; i < perPush * pushes; i++) {
    events.push({
      key: `k${Math.floor(random() * 1000)}`,
      value: Math.round(random() * 10_000) / 100,
      ts: BASE + Math.floor((i * 100) / perPush) + Math.floor(random() * 500),
    });
  }
  const batches = inputs(events, perPush, engine.input);
  let scheduled = 0; // when the push's events arrive
  const samples = [];
  let windows = 0;
  let rowsOut = 0;
  const instance = await engine.create(w, (rows) => {
    samples.push(performance.now() - scheduled);
    rowsOut += rows.length;
    windows += new Set(rows.map((r) => r.window_start)).size;
  });
  const t0 = performance.now() + 50;
  let behind = 0;
  for (let k = 0; k < batches.length; k++) {
    scheduled = t0 + k * 10;
    const wait = scheduled - performance.now();
    if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
    else behind++;
    // A timer may fire up to 1 ms early: then the events arrive when the
    // push runs. Behind schedule, they arrived at the scheduled time.
    scheduled = Math.min(scheduled, performance.now());
    await instance.push(batches[k]);
  }
  const elapsed = performance.now() - t0;
  await instance.close();
  return ({ samples, windows, rowsOut, pushes: batches.length, behind, elapsed, events: events.length });
}

async function instantiate() {
  const start = performance.now();
  if (job.engine === "riffle") {
    const { Riffle } = await import("riffle-sql");
    const engine = await Riffle.create();
    const ms = performance.now() - start;
    engine.close();
    return { ms };
  } else if (job.engine === "duckdb") {
    await openDuckDB();
    return { ms: performance.now() - start };
  } else if (job.engine === "perspective") {
    const { default: psp } = await import("@finos/perspective");
    await psp.table({ a: "float" });
    return { ms: performance.now() - start };
  }
}

const modes = { throughput, latency, instantiate };
// Exits once the message is out (Perspective's and DuckDB's runtimes may keep the loop alive).
const send = (message) => process.send(message, () => process.exit(0));
modes[job.mode]().then(send, (error) => send({ error: String(error?.stack ?? error) }));
