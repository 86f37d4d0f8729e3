// The package in Cloudflare's workerd (through Miniflare, which ships it):
// the same scenario as Node, Chromium and Deno.
import assert from "node:assert/strict";
import { test } from "node:test";
import { fileURLToPath } from "node:url";

import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

import { Miniflare } from "miniflare";

import { Riffle } from "riffle-sql";

import { logText, startEventServer } from "../../demo/event-server.mjs";
import { CONFORMANCE_FEED, FEED_DDL, FEED_QUERY } from "../shared/conformance.mjs";
import { diffRows, generateTrades, referenceWindows, sortRows } from "../shared/scenario.mjs";

const root = fileURLToPath(new URL("../..", import.meta.url));

/** Miniflare running `main` with the package and the shared test modules; wasm imported as a module. */
function workerOptions(main) {
  const file = (path) => ({ type: "ESModule", path: root + path });
  return {
    host: "127.0.0.1",
    port: 0,
    cf: false,
    compatibilityDate: "2026-04-01",
    modulesRoot: root,
    modules: [
      file(main),
      ...["index", "codegen", "columns", "row-columns", "errors", "connect", "load", "store"].map((m) => file(`dist/${m}.js`)),
      file("pkg/riffle.js"),
      file("tests/shared/scenario.mjs"),
      file("tests/shared/conformance.mjs"),
      file("tests/shared/fixtures.mjs"),
      file("demo/event-log.mjs"),
      { type: "CompiledWasm", path: root + "pkg/riffle_bg.wasm" },
    ],
  };
}

test("the conformance suite and the windowed query run in workerd with the wasm imported as a module", { timeout: 120_000 }, async () => {
  const mf = new Miniflare(workerOptions("tests/workerd/worker.mjs"));
  const feed = await startEventServer(CONFORMANCE_FEED);
  try {
    const query = new URLSearchParams({ ws: feed.url, config: JSON.stringify(feed.config) });
    const suite = await (await mf.dispatchFetch(`http://127.0.0.1/conformance?${query}`)).json();
    assert.equal(suite.failure, undefined, suite.failure);
    assert.ok(suite.results.length >= 15, `${suite.results.length} checks`);
    assert.deepEqual(suite.results.filter((r) => r.failure !== null), []);

    const response = await mf.dispatchFetch("http://127.0.0.1/");
    const result = await response.json();
    assert.equal(result.failure, undefined, result.failure);
    assert.equal(result.difference, null);
    assert.equal(result.eventsIn, 5_000);
    assert.ok(result.beforeFinish > 0);
    assert.equal(result.code, "UNKNOWN_STREAM");
  } finally {
    await mf.dispose();
    await feed.close();
  }
});

test("a Durable Object checkpoints to its storage and restores after workerd restarts", { timeout: 120_000 }, async () => {
  const persist = mkdtempSync(join(tmpdir(), "riffle-do-"));
  const options = {
    ...workerOptions("tests/workerd/durable-object.mjs"),
    durableObjects: { ENGINE: { className: "EngineObject", useSQLite: true } },
    durableObjectsPersist: persist,
  };
  const phase = async (n) => {
    const mf = new Miniflare(options);
    try {
      const result = await (await mf.dispatchFetch(`http://127.0.0.1/?phase=${n}`)).json();
      assert.equal(result.failure, undefined, result.failure);
      return result;
    } finally {
      await mf.dispose();
    }
  };
  try {
    const before = await phase(1);
    assert.equal(before.stored.length, 1);
    const after = await phase(2);
    assert.equal(after.start, 1_500);
    const trades = generateTrades(5, 3_000);
    assert.equal(diffRows(sortRows([...before.rows, ...after.rows]), referenceWindows(trades)), null);
  } finally {
    rmSync(persist, { recursive: true, force: true });
  }
});

test("a Durable Object ingests a WebSocket feed, answers over HTTP, and resumes from its checkpoint after workerd restarts", { timeout: 120_000 }, async () => {
  const persist = mkdtempSync(join(tmpdir(), "riffle-feed-"));
  const options = {
    ...workerOptions("tests/workerd/feed-object.mjs"),
    durableObjects: { FEED: { className: "FeedObject", useSQLite: true } },
    durableObjectsPersist: persist,
  };
  const feed = await startEventServer({ seed: 21, rate: 2500, total: 5000, epoch: 1_700_000_000_000, spacingMs: 4, malformedFraction: 0.01, batchMs: 20, maxBatch: 200 });
  const call = async (mf, path, method = "GET") => {
    const body = await (await mf.dispatchFetch(`http://127.0.0.1${path}`, { method })).json();
    assert.equal(body.failure, undefined, body.failure);
    return body;
  };
  const until = async (mf, done, what) => {
    const deadline = Date.now() + 60_000;
    for (;;) {
      const results = await call(mf, "/results");
      if (done(results)) return results;
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}: at ${results.position}`);
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  };
  try {
    const first = new Miniflare(options);
    const started = await call(first, `/start?feed=${encodeURIComponent(feed.url)}`, "POST");
    assert.equal(started.restored, null);
    const before = await until(first, (r) => Number(r.position) >= 2000, "2000 lines");
    await first.dispose(); // workerd goes away mid-stream

    const second = new Miniflare(options);
    const again = await call(second, `/start?feed=${encodeURIComponent(feed.url)}`, "POST");
    assert.ok(Number(again.restored) > 0 && Number(again.restored) <= Number(before.position), `restored at ${again.restored}`);
    const after = await until(second, (r) => r.position === "5000", "the whole log");
    await second.dispose();

    const engine = await Riffle.create({ tickIntervalMs: 0 });
    await engine.sql(FEED_DDL);
    const reference = [];
    engine.query(FEED_QUERY).subscribe((rows) => reference.push(...rows));
    engine.pushJson("trades", logText(feed.config, 0, 5000));
    engine.close();
    const key = (r) => `${r.symbol}|${r.window_start}`;
    const seen = new Map();
    for (const row of after.rows) {
      if (seen.has(key(row))) assert.deepEqual(row, seen.get(key(row)), "a window emitted again has the same values");
      seen.set(key(row), row);
    }
    assert.equal(after.rows.length >= reference.length, true);
    assert.deepEqual([...seen.values()].map(key).sort(), reference.map(key).sort(), "every window, once");
    for (const row of reference) assert.deepEqual(seen.get(key(row)), row);
  } finally {
    await feed.close();
    rmSync(persist, { recursive: true, force: true });
  }
});
