// Result rows handed over column-wise (src/codec/row_columns.rs,
// ts/row-columns.ts) must equal the JSON rows they replace, value for value:
// odd strings, -0, NaN/±Infinity (null), integers past 2^53, nulls, time
// zones, and types that stay JSON rows (REAL) next to ones that do not.
import assert from "node:assert/strict";
import { test } from "node:test";

import { Riffle } from "riffle-sql";
// The same module instance the package loads: lets the test see which path ran.
import { Engine as WasmEngine } from "../../pkg/riffle.js";
import { generateTrades, DDL, QUERY } from "../shared/scenario.mjs";

const NOW = Date.UTC(2024, 0, 1);

/** Pushes `lines` (NDJSON batches) through queries; returns every delivery and the plane takes counted. */
async function deliveries(ddl, queries, batches, columnar) {
  const engine = await Riffle.create({ clock: () => NOW, tickIntervalMs: 0 });
  engine.callEngine((e) => e.setColumnarRows(columnar));
  await engine.sql(ddl);
  const seen = queries.map(() => []);
  queries.forEach((sql, i) => {
    const query = engine.query(sql, { late: "sideOutput" });
    query.subscribe((rows) => seen[i].push(rows));
    query.subscribeLate((rows) => seen[i].push({ late: rows }));
  });
  const original = WasmEngine.prototype.takeRowNumbers;
  let takes = 0;
  WasmEngine.prototype.takeRowNumbers = function (...args) {
    takes += 1;
    return original.apply(this, args);
  };
  try {
    for (const batch of batches) engine.pushJson(batch.stream ?? "ev", batch.text);
    engine.finish();
  } finally {
    WasmEngine.prototype.takeRowNumbers = original;
  }
  engine.close();
  return { seen, takes };
}

async function assertSame(ddl, queries, batches) {
  const json = await deliveries(ddl, queries, batches, false);
  const columns = await deliveries(ddl, queries, batches, true);
  assert.equal(json.takes, 0, "JSON rows only when column-wise rows are off");
  assert.ok(columns.takes > 0, "column-wise rows were used");
  assert.deepEqual(columns.seen, json.seen);
  // deepEqual treats -0 and 0 alike under strict mode? Object.is does not: check the signs too.
  const signs = (seen) => JSON.stringify(seen, (_, v) => (Object.is(v, -0) ? "-0" : v));
  assert.equal(signs(columns.seen), signs(json.seen));
  return columns.seen;
}

test("every value type comes out as the JSON rows give it", async () => {
  const ddl = `CREATE STREAM ev (s VARCHAR, x DOUBLE, i INT, b BOOLEAN, r REAL, big BIGINT, ts TIMESTAMP,
    WATERMARK FOR ts AS ts - INTERVAL '1' SECOND)`;
  const base = NOW - 3_600_000;
  const lines = [
    { s: "plain", x: 1.5, i: 7, b: true, r: 0.5, big: 1, ts: base },
    { s: "é😀中文 \u0301 \"quoted\" \\ \n \u0000 \u2028", x: -0, i: -3, b: false, r: 2, big: 2 ** 53 + 2, ts: base + 1 },
    { s: null, x: null, i: null, b: null, r: null, big: null, ts: base + 2 },
    { s: "", x: 1e300, i: 2147483647, big: -(2 ** 62), ts: "2023-12-31 23:00:05" },
    { s: "tiny", x: 5e-324, r: 0.1, big: 9007199254740993, ts: base + 70_000 },
  ];
  const text = lines.map((l) => JSON.stringify(l)).join("\n").replace("9007199254740992", "9007199254740993");
  const queries = [
    // REAL stays JSON rows; everything else goes column-wise.
    "SELECT * FROM ev",
    "SELECT s, x, i, b, big, ts, x / 0 AS inf, x - x AS maybe_nan, -x AS neg FROM ev",
    "SELECT s, window_start, window_end, count(*) AS n, sum(x) AS sx, max(i) AS mi, bool_and(b) AS all_b, max(big) AS mb FROM TUMBLE(ev, ts, INTERVAL '1' MINUTE) GROUP BY s, window_start, window_end",
  ];
  const seen = await assertSame(ddl, queries, [{ text }]);
  assert.equal(seen[0].flat().length, 5);
  assert.equal(seen[1].flat().length, 5);
});

test("a windowed feed with late rows delivers the same through both paths", async () => {
  const trades = generateTrades(11, 3_000);
  // Some late events: a copy of early trades pushed at the end.
  const late = trades.slice(0, 50).map((t) => ({ ...t, price: t.price + 1 }));
  const batches = [];
  for (let i = 0; i < trades.length; i += 400) {
    batches.push({ stream: "trades", text: trades.slice(i, i + 400).map((t) => JSON.stringify(t)).join("\n") });
  }
  batches.push({ stream: "trades", text: late.map((t) => JSON.stringify(t)).join("\n") });
  const seen = await assertSame(DDL, [QUERY, "SELECT symbol, count(*) AS n FROM trades GROUP BY symbol"], batches);
  assert.ok(seen[0].length > 5);
});

test("strings of several columns and queries in one push come out whole", async () => {
  // The distinct strings of a call travel as one UTF-8 text cut by lengths
  // in UTF-16 units: astral characters, a leading byte-order mark (which a
  // default TextDecoder would drop) and strings shared by two queries.
  const ddl = `CREATE STREAM ev (a VARCHAR, b VARCHAR, ts TIMESTAMP, WATERMARK FOR ts AS ts - INTERVAL '1' SECOND)`;
  const values = ["\uFEFFbom", "😀", "", "a string longer than twelve bytes", "\uFEFF", "é\u0301", "中文😀x"];
  const lines = [];
  for (let i = 0; i < 40; i++) {
    lines.push({ a: values[i % values.length], b: i % 3 === 0 ? null : values[(i * 5) % values.length], ts: NOW + i * 100 });
  }
  const text = lines.map((l) => JSON.stringify(l)).join("\n");
  const seen = await assertSame(
    ddl,
    [
      "SELECT a, b FROM ev",
      "SELECT b, a, count(*) AS n FROM TUMBLE(ev, ts, INTERVAL '1' SECOND) GROUP BY a, b, window_start, window_end",
    ],
    [{ text }, { text: JSON.stringify({ a: "z", b: "z", ts: NOW + 60_000 }) }],
  );
  const rows = seen[0].flat();
  assert.equal(rows[0].a, "\uFEFFbom");
  assert.deepEqual(
    rows.slice(0, 40).map((r) => r.a),
    lines.map((l) => l.a),
  );
  assert.ok(seen[1].flat().length > 7);
});

test("column names that mean something to JavaScript stay plain own properties", async () => {
  const ddl = `CREATE STREAM ev (s VARCHAR, x DOUBLE, ts TIMESTAMP, WATERMARK FOR ts AS ts - INTERVAL '1' SECOND)`;
  const text = [
    { s: "a", x: 1, ts: NOW },
    { s: null, x: null, ts: NOW + 1 },
  ]
    .map((l) => JSON.stringify(l))
    .join("\n");
  const seen = await assertSame(
    ddl,
    [`SELECT s AS "__proto__", x AS "constructor", x > 0 AS "0", s AS "a ""b"" \\ é" FROM ev`],
    [{ text }],
  );
  const [first] = seen[0].flat();
  assert.equal(Object.getPrototypeOf(first), Object.prototype);
  assert.ok(Object.hasOwn(first, "__proto__"));
  assert.deepEqual(Object.keys(first), ["0", "__proto__", "constructor", 'a "b" \\ é']);
});

test("rows built by generated code equal rows built field by field", async () => {
  // The field-by-field builder is what runs where code generation is
  // refused (Cloudflare Workers, a strict CSP).
  const { rowsFromColumns, rowsFromColumnsByField } = await import("../../dist/row-columns.js");
  const n = 1_000;
  const n0 = n;
  const names = ["key", "__proto__", "n", "flag", "7", "x y"];
  const kinds = ["string", "string", "number", "boolean", "number", "number"];
  const numbers = new Float64Array(names.length * n);
  const codes = new Uint32Array(names.length * n);
  const strings = ["", "é😀", "__proto__", "plain"];
  for (let i = 0; i < numbers.length; i++) {
    numbers[i] = [NaN, -0, 1, 0, 2 ** 53 + 2, -1.5, Infinity][i % 7];
    codes[i] = i % (strings.length + 1);
  }
  const fields = names.map((name, j) => ({
    name,
    kind: kinds[j],
    at: j * n,
    ...(kinds[j] === "string" ? { strings } : {}),
  }));
  const columns = { n, fields };
  const generated = rowsFromColumns(columns, numbers, codes);
  const byField = rowsFromColumnsByField(columns, numbers, codes);
  const signs = (rows) => JSON.stringify(rows, (_, v) => (Object.is(v, -0) ? "-0" : v));
  assert.equal(signs(generated), signs(byField));
  assert.deepEqual(generated, byField);
  generated.forEach((row, i) => {
    const n = numbers[2 * n0 + i];
    assert.equal(row.n, Number.isNaN(n) ? null : n);
    const flag = numbers[3 * n0 + i];
    assert.equal(row.flag, Number.isNaN(flag) ? null : flag === 1);
    const code = codes[i];
    assert.equal(row.key, code === 0 ? null : strings[code - 1]);
  });
  assert.ok(generated.every((row) => Object.getPrototypeOf(row) === Object.prototype));
});

test("a large delivery of distinct keys equals the JSON rows", async () => {
  // 60k keys in one window: planes of megabytes, and key strings past
  // the sample after which distinct columns are no longer deduplicated.
  const ddl = `CREATE STREAM ev (s VARCHAR, x DOUBLE, ts TIMESTAMP, WATERMARK FOR ts AS ts - INTERVAL '1' SECOND)`;
  const lines = [];
  for (let i = 0; i < 60_000; i++) {
    const key = i % 3 === 0 ? `key ${i} with a longer name é` : `k${i}`;
    lines.push(JSON.stringify({ s: key, x: i / 7, ts: NOW - 3_600_000 + (i % 50_000) }));
  }
  const batches = [];
  for (let i = 0; i < lines.length; i += 20_000) batches.push({ text: lines.slice(i, i + 20_000).join("\n") });
  const seen = await assertSame(
    ddl,
    ["SELECT s, window_start, count(*) AS n, sum(x) AS sx FROM TUMBLE(ev, ts, INTERVAL '1' MINUTE) GROUP BY s, window_start"],
    batches,
  );
  assert.equal(seen[0].flat().length, 60_000);
});
