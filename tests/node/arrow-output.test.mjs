// Arrow out on request: `query(sql, { output: "arrow" })` delivers one Arrow
// IPC stream per delivery, with the same rows the default output gives.
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { test } from "node:test";
import { fileURLToPath } from "node:url";

import { tableFromIPC } from "apache-arrow";
import { ArrowQuery, Query, Riffle, RiffleError } from "riffle-sql";
import { generateTrades, sortRows, DDL, QUERY } from "../shared/scenario.mjs";

/** Rows of an IPC delivery as plain objects: Int64 as numbers, timestamps as epoch ms. */
function rowsOf(ipc) {
  const table = tableFromIPC(ipc);
  assert.equal(table.batches.length, 1, "one batch per delivery");
  const rows = [];
  for (let i = 0; i < table.numRows; i++) {
    const row = {};
    for (const field of table.schema.fields) {
      const value = table.getChild(field.name).get(i);
      row[field.name] = typeof value === "bigint" ? Number(value) : value instanceof Date ? value.getTime() : value;
    }
    rows.push(row);
  }
  return rows;
}

test("an Arrow query delivers the same rows as a row query, one IPC stream per delivery", async () => {
  const engine = await Riffle.create();
  await engine.sql(DDL);
  const rowQuery = engine.query(QUERY);
  const arrowQuery = engine.query(QUERY, { output: "arrow" });
  assert.ok(rowQuery instanceof Query && rowQuery.output === "rows");
  assert.ok(arrowQuery instanceof ArrowQuery && arrowQuery.output === "arrow");
  assert.deepEqual(arrowQuery.columns, rowQuery.columns);
  const rowDeliveries = [];
  const arrowDeliveries = [];
  rowQuery.subscribe((rows) => rowDeliveries.push(rows));
  arrowQuery.subscribe((ipc) => {
    assert.ok(ipc instanceof Uint8Array);
    arrowDeliveries.push(ipc);
  });
  const trades = generateTrades(11, 4_000);
  for (let i = 0; i < trades.length; i += 300) engine.push("trades", trades.slice(i, i + 300));
  engine.finish();
  assert.ok(rowDeliveries.length > 2);
  assert.equal(arrowDeliveries.length, rowDeliveries.length);
  for (const [i, ipc] of arrowDeliveries.entries()) {
    assert.deepEqual(sortRows(rowsOf(ipc)), sortRows([...rowDeliveries[i]]), `delivery ${i}`);
  }
  const schema = tableFromIPC(arrowDeliveries[0]).schema;
  assert.deepEqual(
    schema.fields.map((f) => f.name),
    rowQuery.columns,
  );
  assert.match(String(schema.fields.find((f) => f.name === "window_start").type), /Timestamp/);
  assert.deepEqual(arrowQuery.metrics(), rowQuery.metrics());
  engine.close();
});

test("Arrow output for late rows, changelogs and stateless queries; unknown outputs are refused", async () => {
  const engine = await Riffle.create();
  await engine.sql(DDL);
  const windows = engine.query(QUERY, { output: "arrow", late: "sideOutput" });
  const changelog = engine.query("SELECT symbol, count(*) AS n FROM trades GROUP BY symbol", { output: "arrow" });
  const stateless = engine.query("SELECT symbol, price * 2 AS double_price, ts FROM trades WHERE price > 1", { output: "arrow" });
  const late = [];
  const changes = [];
  const passed = [];
  windows.subscribeLate((ipc) => late.push(...rowsOf(ipc)));
  changelog.subscribe((ipc) => changes.push(...rowsOf(ipc)));
  stateless.subscribe((ipc) => passed.push(...rowsOf(ipc)));
  engine.push("trades", [
    { symbol: "A", price: 1, ts: 10_000 },
    { symbol: "B", price: 2, ts: 70_000 },
  ]);
  engine.push("trades", [{ symbol: "Z", price: 9.5, ts: 30_000 }]);
  assert.deepEqual(late, [{ symbol: "Z", price: 9.5, ts: 30_000 }]);
  assert.equal(changelog.changelog, true);
  assert.deepEqual(changes, [
    { symbol: "A", n: 1, _op: "insert" },
    { symbol: "B", n: 1, _op: "insert" },
    { symbol: "Z", n: 1, _op: "insert" },
  ]);
  assert.deepEqual(passed, [
    { symbol: "B", double_price: 4, ts: 70_000 },
    { symbol: "Z", double_price: 19, ts: 30_000 },
  ]);
  assert.throws(() => engine.query(QUERY, { output: "csv" }), (e) => e instanceof RiffleError && e.code === "INVALID_INPUT");
  engine.close();
});

test("the TypeScript types tell row queries from Arrow queries", () => {
  const root = fileURLToPath(new URL("../..", import.meta.url));
  // Fails (and prints the diagnostics) if a type is wrong or a @ts-expect-error is not.
  execFileSync("node_modules/.bin/tsc", ["-p", "tests/types/tsconfig.json"], { cwd: root, stdio: "pipe" });
});
