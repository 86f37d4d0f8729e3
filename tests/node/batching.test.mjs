// enqueue(): many small calls coalesce into few pushes, with a bounded buffer.
import assert from "node:assert/strict";
import { test } from "node:test";

import { Riffle, RiffleError } from "riffle-sql";
import { DDL, QUERY, diffRows, generateTrades, referenceWindows, sortRows } from "../shared/scenario.mjs";

async function engineWith(options) {
  const engine = await Riffle.create(options);
  await engine.sql(DDL);
  const rows = [];
  engine.query(QUERY).subscribe((batch) => rows.push(...batch));
  return { engine, rows };
}

const tick = () => new Promise((resolve) => setTimeout(resolve, 0));

test("single-event enqueues coalesce into pushes and give the same results", async () => {
  const trades = generateTrades(4, 5_000);
  const { engine, rows } = await engineWith({ batching: { maxEvents: 1_000 } });
  for (const [i, trade] of trades.entries()) {
    assert.equal(engine.enqueue("trades", trade), true);
    // A full batch goes out at once; the rest waits for the end of the task.
    if (i === 2_499) assert.equal(engine.buffered("trades"), 500);
  }
  await tick();
  assert.equal(engine.buffered(), 0);
  engine.finish();
  assert.equal(diffRows(sortRows(rows), referenceWindows(trades)), null);
});

test("linger time, backpressure and errors of automatic pushes", async () => {
  const errors = [];
  const { engine } = await engineWith({ batching: { lingerMs: 40, maxBuffered: 10 }, onError: (e) => errors.push(e) });
  engine.enqueue("trades", { symbol: "A", price: 1, ts: 1 });
  await tick();
  assert.equal(engine.buffered(), 1, "waits for the linger time");
  await new Promise((resolve) => setTimeout(resolve, 80));
  assert.equal(engine.buffered(), 0);

  for (let i = 0; i < 10; i++) assert.equal(engine.enqueue("trades", { symbol: "A", price: 1, ts: 2 + i }), true);
  assert.equal(engine.enqueue("trades", { symbol: "A", price: 1, ts: 99 }), false, "buffer full: refused");
  assert.equal(engine.buffered("trades"), 10);
  engine.flush();
  assert.equal(engine.buffered(), 0);

  engine.enqueue("trades", { symbol: "A", price: "not a price", ts: 100 });
  await new Promise((resolve) => setTimeout(resolve, 80));
  assert.equal(errors.length, 1);
  assert.ok(errors[0] instanceof RiffleError && errors[0].code === "INVALID_INPUT");
  engine.close();
});
