// The package in Cloudflare's workerd (through Miniflare, which ships it):
// the same scenario as Node, Chromium and Deno.
import assert from "node:assert/strict";
import { test } from "node:test";
import { fileURLToPath } from "node:url";

import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

import { Miniflare } from "miniflare";

import { diffRows, generateTrades, referenceWindows, sortRows } from "../shared/scenario.mjs";

const root = fileURLToPath(new URL("../..", import.meta.url));

test("the windowed query runs in workerd with the wasm imported as a module", { timeout: 120_000 }, async () => {
  const file = (path) => ({ type: "ESModule", path: root + path });
  const mf = new Miniflare({
    host: "127.0.0.1",
    port: 0,
    cf: false,
    compatibilityDate: "2026-04-01",
    modulesRoot: root,
    modules: [
      { type: "ESModule", path: root + "tests/workerd/worker.mjs" },
      file("dist/index.js"),
      file("dist/columns.js"),
      file("dist/errors.js"),
      file("dist/load.js"),
      file("dist/store.js"),
      file("pkg/riffle.js"),
      file("tests/shared/scenario.mjs"),
      { type: "CompiledWasm", path: root + "pkg/riffle_bg.wasm" },
    ],
  });
  try {
    const response = await mf.dispatchFetch("http://127.0.0.1/");
    const result = await response.json();
    assert.equal(result.failure, undefined, result.failure);
    assert.equal(result.difference, null);
    assert.equal(result.eventsIn, 5_000);
    assert.ok(result.beforeFinish > 0);
    assert.equal(result.code, "SQL_PLAN");
  } finally {
    await mf.dispose();
  }
});

test("a Durable Object checkpoints to its storage and restores after workerd restarts", { timeout: 120_000 }, async () => {
  const persist = mkdtempSync(join(tmpdir(), "riffle-do-"));
  const file = (path) => ({ type: "ESModule", path: root + path });
  const options = {
    host: "127.0.0.1",
    port: 0,
    cf: false,
    compatibilityDate: "2026-04-01",
    modulesRoot: root,
    modules: [
      file("tests/workerd/durable-object.mjs"),
      file("dist/index.js"),
      file("dist/columns.js"),
      file("dist/errors.js"),
      file("dist/load.js"),
      file("dist/store.js"),
      file("pkg/riffle.js"),
      file("tests/shared/scenario.mjs"),
      { type: "CompiledWasm", path: root + "pkg/riffle_bg.wasm" },
    ],
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
