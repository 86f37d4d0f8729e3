// Riffle's benchmark suite (issue 7): five workloads, three Riffle input
// paths, four baselines computing the same results in the same run, each
// in its own process (bench/child.mjs), checked for agreement.
//
//   npm run bench                                   # everything, default sizes (a few minutes)
//   npm run bench -- --only W1,W3 --events 200000   # some workloads, one size for all
//   npm run bench -- --engines riffle-arrow,duckdb  # some engines (js-objects, the reference, always runs)
//   npm run bench -- --no-latency --no-startup --no-chart
//   npm run bench -- --repeat 1                      # one throughput run per engine (default: median of 3)
//   npm run bench -- --no-warm                       # only the first (cold) run in each process
//
// Writes bench/results.json and bench/chart.png (bench/chart.mjs redraws
// the chart from the JSON). Exit code 1 when any result disagrees.
import { fork } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { cpus, loadavg } from "node:os";
import { fileURLToPath } from "node:url";
import { constants, brotliCompressSync, gzipSync } from "node:zlib";

import { ENGINES } from "./lib/engines.mjs";
import { RANK_TOLERANCE, WORKLOADS } from "./lib/workloads.mjs";

const here = (p) => fileURLToPath(new URL(p, import.meta.url));
const root = here("../");

const options = parseArgs(process.argv.slice(2), {
  events: 0, // 0: each workload's default
  only: Object.keys(WORKLOADS).join(","),
  engines: Object.keys(ENGINES).join(","),
  batch: 10_000,
  seed: 1,
  repeat: 3, // throughput rounds per workload, engines interleaved; the median counts
  warm: true, // each throughput run also timed a second time in its process (JIT warmed up)

  latency: true,
  "latency-seconds": 10,
  rate: 20_000,
  startup: true,
  chart: true,
  "latency-only": false, // re-measure latency (and start-up, size) into the last results.json
});

const REFERENCE = "js-objects";
const workloads = options.only.split(",").map((s) => s.trim().toUpperCase());
for (const w of workloads) if (!WORKLOADS[w]) throw new Error(`unknown workload ${w}`);
const engines = [...new Set([...options.engines.split(",").map((s) => s.trim()), REFERENCE])];
for (const e of engines) if (!ENGINES[e]) throw new Error(`unknown engine ${e} (have: ${Object.keys(ENGINES).join(", ")})`);
const order = Object.keys(ENGINES).filter((e) => engines.includes(e));

function child(job, execArgv = []) {
  return new Promise((resolve, reject) => {
    const proc = fork(here("./child.mjs"), [JSON.stringify(job)], { serialization: "advanced", execArgv: ["--expose-gc", ...execArgv] });
    let message;
    // A throughput job with a warm run sends its first run early ({ partial }).
    let partial = {};
    proc.on("message", (m) => {
      if (m.partial) partial = m.partial;
      else message = { ...partial, ...m };
    });
    proc.on("error", reject);
    proc.on("exit", (code) => {
      if (!message) reject(new Error(`child ${JSON.stringify(job)} exited ${code} without a result`));
      else if (message.error) reject(new Error(`${job.engine} ${job.workload ?? ""}: ${message.error}`));
      else resolve(message);
    });
  });
}

// ---------------------------------------------------------------- agreement

function agree(w, run, reference) {
  if (run.rows.length !== reference.rows.length) return { ok: false, why: `${run.rows.length} rows, reference has ${reference.rows.length}` };
  const ri = Object.fromEntries(reference.names.map((n, i) => [n, i]));
  const oi = Object.fromEntries(run.names.map((n, i) => [n, i]));
  const index = new Map(reference.rows.map((r) => [`${r[ri.key]}|${r[ri.window_start]}`, r]));
  let maxApproxError = 0;
  for (const row of run.rows) {
    const id = `${row[oi.key]}|${row[oi.window_start]}`;
    const ref = index.get(id);
    if (!ref) return { ok: false, why: `unexpected window ${id}` };
    for (const f of w.fields) {
      const a = row[oi[f]];
      const b = ref[ri[f]];
      if (w.approx?.includes(f)) {
        const lo = ref[ri[`${f}_lo`]];
        const hi = ref[ri[`${f}_hi`]];
        if (!(a >= lo - 1e-9 && a <= hi + 1e-9)) return { ok: false, why: `${f} of ${id}: ${a}, exact ${b}, allowed [${lo}, ${hi}]` };
        maxApproxError = Math.max(maxApproxError, Math.abs(a - b));
      } else if (f === "n" || f === "window_end") {
        if (a !== b) return { ok: false, why: `${f} of ${id}: ${a} vs ${b}` };
      } else if (!(Math.abs(a - b) <= 1e-9 * Math.max(1, Math.abs(b)))) {
        return { ok: false, why: `${f} of ${id}: ${a} vs ${b}` };
      }
    }
  }
  return { ok: true, maxApproxError: w.approx ? maxApproxError : undefined };
}

// ---------------------------------------------------------------- throughput

const results = {
  date: new Date().toISOString(),
  machine: machine(),
  options: { ...options, events: options.events || "per workload" },
  rankTolerance: RANK_TOLERANCE,
  workloads: {},
  latency: null,
  startup: null,
  sizes: null,
};
let failed = false;
const started = performance.now();

if (options["latency-only"]) {
  const previous = JSON.parse(readFileSync(here("./results.json"), "utf8"));
  Object.assign(results, { workloads: previous.workloads, date: previous.date, options: previous.options, machine: previous.machine, totalSeconds: previous.totalSeconds });
  results.latencyRunAt = new Date().toISOString();
}

for (const name of options["latency-only"] ? [] : workloads) {
  const w = WORKLOADS[name];
  const events = options.events || w.events;
  const outcome = { title: w.title, events, keys: w.keys, perMs: w.perMs, defaultEvents: w.events, sql: w.sql.replace(/\s+/g, " "), runs: {} };
  results.workloads[name] = outcome;
  console.error(`${name}: ${w.title}; ${events.toLocaleString("en-US")} events${options.events ? "" : " (default for this workload)"}`);
  // Rounds of every engine in turn, so a noisy stretch of the shared
  // machine hits all engines alike; each engine's median run counts.
  const job = (engine) => ({ mode: "throughput", workload: name, engine, events, batch: options.batch, seed: options.seed, warm: options.warm });
  const reference = await child(job(REFERENCE));
  // Each run is checked as it arrives and only its figures are kept: the
  // rows of every run of every engine (~1M each on W5) would not fit.
  // A warm run must agree with the reference too.
  const checked = (run, check) => {
    if (!check.ok || !run.warmRows) return check;
    const warm = agree(w, { rows: run.warmRows, names: run.names }, reference);
    return warm.ok ? check : { ok: false, why: `warm run: ${warm.why}` };
  };
  const summary = (run, check) => ({ ...run, rows: undefined, warmRows: undefined, rowCount: run.rows.length, check });
  const runsOf = new Map([[REFERENCE, [summary(reference, checked(reference, { ok: true, reference: true }))]]]);
  const rounds = Math.max(1, Number(options.repeat));
  for (let round = 0; round < rounds; round++) {
    for (const engine of order) {
      if (ENGINES[engine].supports?.(w) || (round === 0 && engine === REFERENCE)) continue;
      const run = await child(job(engine));
      const check = checked(run, engine === REFERENCE ? { ok: true, reference: true } : agree(w, run, reference));
      runsOf.set(engine, [...(runsOf.get(engine) ?? []), summary(run, check)]);
      const warm = run.warmMs ? `, warm ${(events / run.warmMs / 1000).toFixed(3)}` : "";
      console.error(`  ${ENGINES[engine].label.padEnd(28)} ${(events / run.ms / 1000).toFixed(3).padStart(7)} M events/s${warm} (round ${round + 1} of ${rounds})`);
    }
  }
  for (const engine of order) {
    const spec = ENGINES[engine];
    const na = spec.supports?.(w);
    if (na) {
      outcome.runs[engine] = { label: spec.label, na };
      continue;
    }
    const runs = runsOf.get(engine).slice(0, rounds);
    // Every run must agree with the reference, not only the median one.
    const check = runs.map((r) => r.check).find((c) => !c.ok) ?? runs[0].check;
    if (!check.ok) failed = true;
    const run = [...runs].sort((a, b) => a.ms - b.ms)[Math.floor((runs.length - 1) / 2)];
    const warmMs = runs.every((r) => r.warmMs) ? median(runs.map((r) => r.warmMs)) : undefined;
    outcome.runs[engine] = {
      label: spec.label,
      input: spec.input,
      ms: run.ms,
      msRuns: runs.map((r) => r.ms),
      eventsPerSecond: events / (run.ms / 1000),
      warmMs,
      warmMsRuns: warmMs ? runs.map((r) => r.warmMs) : undefined,
      eventsPerSecondWarm: warmMs ? events / (warmMs / 1000) : undefined,
      rows: run.rowCount,
      maxRss: run.maxRss,
      rssBefore: run.rssBefore,
      rssPeak: run.rssPeak,
      inputBytes: run.inputBytes,
      agree: check,
      extra: run.extra,
    };
    console.error(
      `  ${spec.label.padEnd(28)} ${(events / run.ms / 1000).toFixed(3).padStart(7)} M events/s median of ${runs.length}  ${(run.maxRss / 2 ** 20).toFixed(0).padStart(5)} MB peak  ${check.ok ? "agrees" : `DISAGREES: ${check.why}`}`,
    );
  }
}

// ---------------------------------------------------------------- latency

if (options.latency) {
  results.latency = { rate: options.rate, seconds: options["latency-seconds"], windowMs: 1000, runs: {} };
  console.error(`latency: ${options.rate} events/s for ${options["latency-seconds"]} s, 1 s windows, event time 10x wall clock`);
  for (const engine of ["riffle-ndjson", "riffle-arrow", "js-text", "duckdb"].filter((e) => engines.includes(e))) {
    const r = await child({ mode: "latency", engine, rate: options.rate, seconds: options["latency-seconds"], seed: options.seed });
    const sorted = [...r.samples].sort((a, b) => a - b);
    const pick = (q) => sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)];
    results.latency.runs[engine] = {
      label: ENGINES[engine].label,
      samples: sorted.length,
      windows: r.windows,
      p50: pick(0.5),
      p99: pick(0.99),
      max: sorted[sorted.length - 1],
      pushesBehindSchedule: r.behind,
      pushes: r.pushes,
    };
    console.error(`  ${ENGINES[engine].label.padEnd(28)} p50 ${pick(0.5).toFixed(2)} ms, p99 ${pick(0.99).toFixed(2)} ms over ${sorted.length} windows; ${r.behind}/${r.pushes} pushes behind schedule`);
  }
}

// ---------------------------------------------------------------- startup and size

if (options.startup) {
  results.startup = {};
  for (const engine of ["riffle", "duckdb", "perspective"]) {
    const times = [];
    for (let i = 0; i < 3; i++) times.push((await child({ mode: "instantiate", engine })).ms);
    times.sort((a, b) => a - b);
    results.startup[engine] = { median: times[1], runs: times };
    console.error(`  startup ${engine}: ${times.map((t) => t.toFixed(0)).join(", ")} ms`);
  }
}
results.sizes = sizes();
if (!options["latency-only"]) {
  results.totalSeconds = (performance.now() - started) / 1000;
  results.machine.loadAtEnd = loadavg()[0];
}

writeFileSync(here("./results.json"), JSON.stringify(results, null, 1) + "\n");
console.log(report(results));
if (options.chart) {
  const { renderChart } = await import("./chart.mjs");
  await renderChart(results, here("./chart.png"));
  console.error("wrote bench/results.json and bench/chart.png");
}
if (failed) {
  console.error("RESULTS DISAGREE (see the table)");
  process.exitCode = 1;
}

// ---------------------------------------------------------------- helpers

function sizes() {
  // Brotli 11 on 33 MB takes about a minute: reuse the last run's figures
  // when the wasm file is unchanged (same SHA-256).
  const file = `${root}pkg/riffle_bg.wasm`;
  const stamp = createHash("sha256").update(readFileSync(file)).digest("hex");
  const previous = existsSync(here("./results.json")) ? JSON.parse(readFileSync(here("./results.json"), "utf8")).sizes : null;
  const out = { riffle: previous?.riffle?.stamp === stamp ? previous.riffle : null, baselines: {} };
  if (!out.riffle) {
    console.error("  compressing pkg/riffle_bg.wasm (gzip 9, brotli 11: about a minute)");
    const bytes = readFileSync(file);
    out.riffle = {
      stamp,
      raw: bytes.length,
      gzip: gzipSync(bytes, { level: 9 }).length,
      brotli: brotliCompressSync(bytes, { params: { [constants.BROTLI_PARAM_QUALITY]: 11, [constants.BROTLI_PARAM_SIZE_HINT]: bytes.length } }).length,
    };
  }
  for (const [name, path] of [
    ["duckdb (duckdb-eh.wasm)", "node_modules/@duckdb/duckdb-wasm/dist/duckdb-eh.wasm"],
    ["perspective (perspective-server.wasm + perspective-js.wasm)", null],
  ]) {
    const paths = path ? [path] : ["node_modules/@finos/perspective/dist/wasm/perspective-server.wasm", "node_modules/@finos/perspective/dist/wasm/perspective-js.wasm"];
    let raw = 0;
    let gzip = 0;
    for (const p of paths) {
      const bytes = readFileSync(root + p);
      raw += bytes.length;
      gzip += gzipSync(bytes, { level: 9 }).length;
    }
    out.baselines[name] = { raw, gzip };
  }
  return out;
}

function machine() {
  const cpu = readFileSync("/proc/cpuinfo", "utf8").match(/model name\s*:\s*(.*)/)?.[1] ?? cpus()[0]?.model;
  return { cores: cpus().length, cpu, node: process.version, platform: `${process.platform} ${process.arch}`, loadAtStart: loadavg()[0] };
}

function median(values) {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted.length ? sorted[Math.floor((sorted.length - 1) / 2)] : NaN;
}

function mb(bytes) {
  return (bytes / 2 ** 20).toFixed(0);
}

function rate(r) {
  return r.eventsPerSecond >= 1e6 ? `${(r.eventsPerSecond / 1e6).toFixed(2)} M` : `${(r.eventsPerSecond / 1e3).toFixed(0)} k`;
}

/** The markdown report (stdout; BENCHMARKS.md quotes it). */
function report(res) {
  const lines = [];
  const m = res.machine;
  lines.push(
    `Machine: ${m.cores} cores, ${m.cpu}, Node ${m.node}; 1-minute load average ${m.loadAtStart?.toFixed(1)} at the start, ${m.loadAtEnd?.toFixed(1)} at the end. Run ${res.date}, ${res.totalSeconds?.toFixed(0) ?? "?"} s in all. Micro-batches of ${res.options.batch} events, seed ${res.options.seed}.`,
  );
  lines.push("");
  lines.push("### Throughput (events per second, higher is better) and peak memory");
  lines.push("");
  const spreads = Object.values(res.workloads).flatMap((o) =>
    Object.values(o.runs)
      .filter((r) => r.msRuns?.length > 1)
      .map((r) => Math.max(...r.msRuns) / Math.min(...r.msRuns)),
  );
  const repeats = Math.max(1, ...Object.values(res.workloads).flatMap((o) => Object.values(o.runs).map((r) => r.msRuns?.length ?? 1)));
  lines.push(
    `Each cell: events/s · peak RSS of that engine's process (input batches and collected results included). ✓ = same results as the reference (JS: Map on objects) in every run.${
      repeats > 1
        ? ` Median of ${repeats} runs per engine, the engines taking turns run by run; slowest ÷ fastest run of one engine: median ${median(spreads).toFixed(2)}, at most ${Math.max(...spreads).toFixed(2)}.`
        : ""
    }`,
  );
  lines.push("");
  const names = Object.keys(res.workloads);
  const engineList = [...new Set(names.flatMap((n) => Object.keys(res.workloads[n].runs)))];
  // One row per workload, one column per engine; `cell(run)` fills a cell.
  const engineTable = (cell, { titles = false } = {}) => {
    lines.push(`| workload | events | ${engineList.map((e) => res.workloads[names[0]].runs[e]?.label ?? ENGINES[e].label).join(" | ")} |`);
    lines.push(`| --- | ---: | ${engineList.map(() => "---:").join(" | ")} |`);
    for (const n of names) {
      const o = res.workloads[n];
      const cells = engineList.map((e) => {
        const r = o.runs[e];
        if (!r) return "";
        if (r.na) return "n/a¹";
        return cell(r);
      });
      lines.push(`| ${titles ? `${n} ${o.title}` : n} | ${(o.events / 1e3).toFixed(0)}k | ${cells.join(" | ")} |`);
    }
  };
  engineTable((r) => `${rate(r)} · ${mb(r.maxRss)} MB ${r.agree.ok ? "✓" : "✗"}`, { titles: true });
  const nas = names.flatMap((n) => Object.values(res.workloads[n].runs).filter((r) => r.na).map((r) => `${n} ${r.label}: ${r.na}`));
  if (nas.length) {
    lines.push("");
    lines.push(`¹ n/a: ${nas.join("; ")}.`);
  }
  const bad = names.flatMap((n) => Object.values(res.workloads[n].runs).filter((r) => r.agree && !r.agree.ok).map((r) => `${n} ${r.label}: ${r.agree.why}`));
  if (bad.length) {
    lines.push("");
    lines.push(`**Disagreements:** ${bad.join("; ")}.`);
  }
  const approx = names.flatMap((n) =>
    Object.values(res.workloads[n].runs)
      .filter((r) => r.agree?.maxApproxError !== undefined)
      .map((r) => `${r.label} ${r.agree.maxApproxError.toFixed(3)}`),
  );
  if (approx.length) {
    lines.push("");
    lines.push(
      `Percentiles (W4) agree when each value lies between the window's sample values at ranks q − ${res.rankTolerance} (rounded down) and q + ${res.rankTolerance} (rounded up): a rank error of at most ${res.rankTolerance * 100} points plus one sample. Largest absolute difference from the exact percentile (values 0–100): ${approx.join(", ")}.`,
    );
  }

  const warm = names.some((n) => Object.values(res.workloads[n].runs).some((r) => r.eventsPerSecondWarm));
  if (warm) {
    lines.push("");
    lines.push("### Throughput, warm: events per second of a second run in the same process");
    lines.push("");
    lines.push(
      `The run above is each engine's first in a fresh process: V8 runs new code in its baseline compilers and optimises what gets hot while the run goes on (for Riffle's wasm, function by function). Here each process ran the workload again on a new engine instance, with the JIT already warm: the steady state of a long-running stream. Median of the same runs; ${
        bad.length ? "warm runs are checked against the reference too (see the disagreements above)" : "every warm run agreed with the reference too"
      }.`,
    );
    lines.push("");
    engineTable((r) => (r.eventsPerSecondWarm ? rate({ eventsPerSecond: r.eventsPerSecondWarm }) : ""));
  }

  const pairs = [
    ["riffle-ndjson", "js-text", "NDJSON ÷ JSON.parse + Map"],
    ["riffle-objects", "js-objects", "objects ÷ Map on objects"],
    ["riffle-arrow", "js-objects", "Arrow ÷ Map on objects"],
    // The issue's columnar target is stated against JSON.parse + Map.
    ["riffle-arrow", "js-text", "Arrow ÷ JSON.parse + Map"],
    ["riffle-arrow-out", "js-text", "Arrow in and out ÷ JSON.parse + Map"],
    ["riffle-arrow", "duckdb", "Arrow ÷ DuckDB (Arrow)"],
    ["riffle-objects", "perspective", "objects ÷ Perspective (objects)"],
    ["riffle-arrow", "perspective", "Arrow ÷ Perspective"],
    ["riffle-objects", "arquero", "objects ÷ Arquero (objects)"],
    ["riffle-arrow", "arquero", "Arrow ÷ Arquero"],
  ].filter(([a, b]) => engineList.includes(a) && engineList.includes(b));
  const ratios = (title, figure) => {
    lines.push("");
    lines.push(title);
    lines.push("");
    lines.push(`| workload | ${pairs.map((p) => p[2]).join(" | ")} |`);
    lines.push(`| --- | ${pairs.map(() => "---:").join(" | ")} |`);
    for (const n of names) {
      const runs = res.workloads[n].runs;
      const cells = pairs.map(([a, b]) => {
        if (!runs[a] || !runs[b]) return "";
        if (runs[a].na || runs[b].na) return "n/a";
        if (!runs[a][figure] || !runs[b][figure]) return "";
        return `${(runs[a][figure] / runs[b][figure]).toFixed(2)}x`;
      });
      lines.push(`| ${n} | ${cells.join(" | ")} |`);
    }
  };
  ratios("### Ratios: Riffle's events/s divided by the baseline's (> 1: Riffle faster), same run", "eventsPerSecond");
  if (warm) ratios("### Ratios, warm runs", "eventsPerSecondWarm");

  lines.push("");
  lines.push("### Memory: engine's own peak, MB: RSS sampled after every push, minus RSS before the engine was created (input generated, garbage collected)");
  lines.push("");
  lines.push(`| workload | ${engineList.map((e) => res.workloads[names[0]].runs[e]?.label ?? ENGINES[e].label).join(" | ")} |`);
  lines.push(`| --- | ${engineList.map(() => "---:").join(" | ")} |`);
  for (const n of names) {
    const runs = res.workloads[n].runs;
    lines.push(`| ${n} | ${engineList.map((e) => (!runs[e] ? "" : runs[e].na ? "n/a" : mb(Math.max(0, runs[e].rssPeak - runs[e].rssBefore)))).join(" | ")} |`);
  }

  if (res.latency) {
    const l = res.latency;
    lines.push("");
    if (res.latencyRunAt) lines.push("", `(Latency, start-up and size re-measured at ${res.latencyRunAt} with \`--latency-only\`.)`);
    lines.push(
      `### Latency: push containing the closing event → result delivered (${(l.rate / 1e3).toFixed(0)}k events/s in pushes every 10 ms for ${l.seconds} s; 1 s windows, 1k keys; event time runs 10x the wall clock)`,
    );
    lines.push("");
    lines.push("| engine | p50 | p99 | max | windows | pushes behind schedule |");
    lines.push("| --- | ---: | ---: | ---: | ---: | ---: |");
    for (const r of Object.values(l.runs)) {
      lines.push(`| ${r.label} | ${r.p50.toFixed(2)} ms | ${r.p99.toFixed(2)} ms | ${r.max.toFixed(2)} ms | ${r.samples} | ${r.pushesBehindSchedule} / ${r.pushes} |`);
    }
  }

  lines.push("");
  lines.push("### Size and start-up");
  lines.push("");
  lines.push("| | raw | gzip -9 | brotli 11 | fresh process: import + create (median of 3) |");
  lines.push("| --- | ---: | ---: | ---: | ---: |");
  const s = res.sizes;
  const st = res.startup ?? {};
  const f = (b) => (b === undefined ? "" : `${(b / 1e6).toFixed(2)} MB`);
  const ms = (x) => (x ? `${x.median.toFixed(0)} ms` : "");
  lines.push(`| Riffle (pkg/riffle_bg.wasm) | ${f(s.riffle.raw)} | ${f(s.riffle.gzip)} | ${f(s.riffle.brotli)} | ${ms(st.riffle)} (Riffle.create) |`);
  for (const [name, b] of Object.entries(s.baselines)) {
    const key = name.split(" ")[0];
    lines.push(`| ${name} | ${f(b.raw)} | ${f(b.gzip)} | | ${ms(st[key])} |`);
  }
  return lines.join("\n");
}

function parseArgs(argv, defaults) {
  const result = { ...defaults };
  for (let i = 0; i < argv.length; i++) {
    let key = argv[i].replace(/^--/, "");
    if (key.startsWith("no-") && typeof defaults[key.slice(3)] === "boolean") {
      result[key.slice(3)] = false;
      continue;
    }
    if (!(key in defaults)) throw new Error(`unknown option ${argv[i]}`);
    if (typeof defaults[key] === "boolean" && (i + 1 >= argv.length || argv[i + 1].startsWith("--"))) {
      result[key] = true;
      continue;
    }
    const value = argv[++i];
    result[key] = typeof defaults[key] === "number" ? Number(value) : typeof defaults[key] === "boolean" ? value !== "false" : value;
  }
  return result;
}
