// Column-wise objects in: `push(objects)` must give exactly what
// `pushJson(JSON.stringify of the same objects)` gives — results, errors,
// bad-row reports, offsets — whether it went column-wise or fell back.
import assert from "node:assert/strict";
import { test } from "node:test";

import { Riffle } from "riffle-sql";
// The same module instance the package loads: lets the test count fallbacks.
import { Engine as WasmEngine } from "../../pkg/riffle.js";
import { generateTrades, DDL, QUERY } from "../shared/scenario.mjs";

const ALL_KINDS = (policy) => `CREATE STREAM ev (s VARCHAR, x DOUBLE, i INT, b BOOLEAN, r REAL, big BIGINT, ts TIMESTAMP,
  WATERMARK FOR ts AS ts - INTERVAL '1' SECOND) WITH (bad_rows = '${policy}', max_future = INTERVAL '1' DAY)`;
const NOW = Date.UTC(2024, 0, 1);

/** Counts the engine's NDJSON pushes (the column path's fallbacks). */
function countJsonPushes() {
  const original = WasmEngine.prototype.pushJsonInput;
  const counter = { calls: 0 };
  WasmEngine.prototype.pushJsonInput = function (...args) {
    counter.calls += 1;
    return original.apply(this, args);
  };
  counter.restore = () => {
    WasmEngine.prototype.pushJsonInput = original;
  };
  return counter;
}

/** Runs `batches` through one engine with `push` and returns everything observable. */
async function observe(ddl, queries, batches, push, options = {}) {
  const engine = await Riffle.create({ clock: () => NOW, tickIntervalMs: 0 });
  await engine.sql(ddl);
  const seen = queries.map(() => []);
  const handles = queries.map((sql, i) => {
    const query = engine.query(sql, { late: "sideOutput" });
    query.subscribe((rows) => seen[i].push(...rows));
    query.subscribeLate((rows) => seen[i].push({ late: rows }));
    return query;
  });
  const letters = [];
  engine.subscribeDeadLetters((batch) => letters.push(...batch));
  const errors = [];
  for (const [i, batch] of batches.entries()) {
    try {
      push(engine, batch, { resumeToken: `t${i}` });
    } catch (error) {
      errors.push({ batch: i, name: error.name, code: error.code, message: error.message });
    }
  }
  const snapshot = engine.snapshot();
  if (options.finish !== false) engine.finish();
  const metrics = handles.map((q) => q.metrics());
  const restored = await Riffle.create({ clock: () => NOW, tickIntervalMs: 0 });
  await restored.sql(ddl);
  for (const sql of queries) restored.query(sql, { late: "sideOutput" });
  const positions = restored.restoreSnapshot(snapshot);
  engine.close();
  restored.close();
  return { seen, letters, errors, metrics, positions };
}

const viaObjects = (engine, batch, options) => engine.push(batch.stream, batch.events, options);
const viaJson = (engine, batch, options) =>
  engine.pushJson(batch.stream, batch.events.map((e) => JSON.stringify(e)).join("\n"), options);

/** Asserts both paths agree and returns the NDJSON pushes the object path made. */
async function assertSame(ddl, queries, batches) {
  const counter = countJsonPushes();
  let objects;
  try {
    objects = await observe(ddl, queries, batches, viaObjects);
  } finally {
    counter.restore();
  }
  const json = await observe(ddl, queries, batches, viaJson);
  assert.deepEqual(objects, json);
  return { fallbacks: counter.calls, observed: objects };
}

const ALL = ["SELECT * FROM ev", "SELECT s, window_start, count(*) AS n, sum(x) AS sx, max(i) AS mi FROM TUMBLE(ev, ts, INTERVAL '1' MINUTE) GROUP BY s, window_start"];

/** Values the column path takes without falling back. */
function cleanButOdd() {
  const base = NOW - 3_600_000;
  return [
    { s: "plain", x: 1.5, i: 7, b: true, r: 0.5, big: 1, ts: base },
    { s: "é😀中文 \u0301 \"quoted\" \\ \n \u0000 \u2028", x: -0, i: -3, b: false, r: 2, big: 2 ** 53, ts: base + 1 },
    { s: null, x: NaN, i: null, b: null, r: null, big: null, ts: new Date(base + 2) },
    { x: Infinity, ts: new Date(base + 3).toISOString() },
    { s: "", x: -Infinity, ts: "2023-12-31 23:00:05" },
    { s: "extra fields", x: 1e300, ts: base + 5.9, nested: { deep: [1, 2] }, list: [1], fn() {} },
    { s: "undefined values", x: undefined, i: undefined, ts: base + 6, sym: Symbol("x") },
    { s: "no time" },
    { s: "null time", ts: null },
    { s: "invalid Date", ts: new Date(NaN) },
    { s: "far future", ts: NOW + 10 * 86_400_000 },
    { s: "old date", ts: new Date(Date.UTC(1500, 5, 1)) },
    { s: "tiny", x: 5e-324, r: 1.25, ts: base + 7 },
    Object.assign(Object.create(null), { s: "null prototype", x: 2, ts: base + 8 }),
  ];
}

/** Values the column path must hand to NDJSON. */
function needJudgement() {
  const base = NOW - 3_600_000;
  class Trade {
    constructor() {
      this.s = "class";
      this.ts = base;
    }
  }
  return [
    [{ s: "number as string", x: "1.5", ts: base }],
    [{ s: "word in number", x: "lots", ts: base }],
    [{ s: "fraction in INT", i: 1.5, ts: base }],
    [{ s: "INT overflow", i: 2 ** 40, ts: base }],
    [{ s: "REAL not exact", r: 0.1, ts: base }],
    [{ s: 42, ts: base }],
    [{ s: "bool in number", x: true, ts: base }],
    [{ s: "number in bool", b: 1, ts: base }],
    [{ s: "object in number", x: { v: 1 }, ts: base }],
    [{ s: "array in string", ts: base, x: 1 }, { s: ["a"], ts: base }],
    [{ s: "bad time string", ts: "yesterday" }],
    [{ s: "bool time", ts: true }],
    [{ s: "huge time", ts: 2 ** 60 }],
    [{ s: "year 20000", ts: new Date(Date.UTC(20000, 0, 1)) }],
    [{ s: "lone \ud800 surrogate", ts: base }],
    [{ s: "string in BIGINT", big: "12", ts: base }],
    [new Trade()],
    [{ s: "ok", ts: base }, null],
    [[1, 2]],
  ];
}

for (const policy of ["reject", "skip", "dead_letter"]) {
  test(`column-wise push equals pushJson: nulls, missing fields, Dates, ISO strings, unicode, NaN (${policy})`, async () => {
    const events = cleanButOdd();
    const batches = [
      { stream: "ev", events: events.slice(0, 6) },
      { stream: "ev", events: events.slice(6) },
      { stream: "ev", events },
    ];
    const { fallbacks, observed } = await assertSame(ALL_KINDS(policy), ALL, batches);
    assert.equal(fallbacks, 0, "all of these go column-wise");
    if (policy === "dead_letter") {
      assert.ok(observed.letters.some((l) => /'ts' has no value/.test(l.reason)), JSON.stringify(observed.letters));
      assert.ok(observed.letters.some((l) => /max_future/.test(l.reason)));
      assert.deepEqual(
        observed.letters.slice(0, 3).map((l) => l.row),
        [1, 2, 3],
        "rows are numbered within their push",
      );
    }
    if (policy === "reject") assert.equal(observed.errors.length, 2);
  });

  test(`values that need JSON's judgement fall back and report the same (${policy})`, async () => {
    const good = { s: "good", x: 1, ts: NOW - 3_600_000 };
    const batches = needJudgement().map((bad) => ({ stream: "ev", events: [good, ...bad, good] }));
    const { fallbacks, observed } = await assertSame(ALL_KINDS(policy), ALL, batches);
    assert.equal(fallbacks, batches.length, "every one of these goes through NDJSON");
    // JSON decoding accepts some ("1.5" as DOUBLE, 0.1 as REAL) and refuses others.
    if (policy === "reject") assert.ok(observed.errors.length > batches.length / 2, JSON.stringify(observed.errors));
    else assert.ok(observed.metrics[0].badRows > batches.length / 2, JSON.stringify(observed.metrics));
  });
}

test("trades: the scenario's data goes column-wise with the same windows as NDJSON", async () => {
  const trades = generateTrades(7, 3_000);
  const batches = [];
  for (let i = 0; i < trades.length; i += 250) batches.push({ stream: "trades", events: trades.slice(i, i + 250) });
  const { fallbacks, observed } = await assertSame(DDL, [QUERY], batches);
  assert.equal(fallbacks, 0);
  assert.equal(observed.metrics[0].eventsIn, 3_000);
  assert.equal(observed.positions.offsets.trades, 3_000);
  assert.equal(observed.positions.resumeTokens.trades, `t${batches.length - 1}`);
});

test("unknown streams, closed engines and unserialisable events fail as before", async () => {
  const engine = await Riffle.create();
  await engine.sql(DDL);
  assert.throws(() => engine.push("nope", [{ ts: 1 }]), (e) => e.code === "UNKNOWN_STREAM" && /nope/.test(e.message));
  // Column-wise, fields the stream does not declare are never read (JSON.stringify would refuse the BigInt).
  engine.push("trades", [{ symbol: "A", price: 1, ts: 1, extra: 1n }]);
  assert.throws(() => engine.push("trades", [{ symbol: 1n, ts: 1 }]), (e) => e.code === "INVALID_INPUT" && /JSON/.test(e.message));
  engine.close();
  assert.throws(() => engine.push("trades", [{ symbol: "A", ts: 1 }]), (e) => e.code === "ENGINE_CLOSED");
});
