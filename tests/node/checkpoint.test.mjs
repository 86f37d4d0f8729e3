// Checkpoint stores in Node: files written atomically, the newest N kept,
// damaged checkpoints skipped for older ones, storage errors typed.
import assert from "node:assert/strict";
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";

import { FileStore, MemoryStore, Riffle, RiffleError } from "riffle-sql";
import { DDL, QUERY, diffRows, generateTrades, sortRows } from "../shared/scenario.mjs";

async function engineWith(options) {
  const engine = await Riffle.create(options);
  await engine.sql(DDL);
  const query = engine.query(QUERY);
  const rows = [];
  query.subscribe((batch) => rows.push(...batch));
  return { engine, rows };
}

function pushRange(engine, trades, from, to) {
  for (let i = from; i < to; i += 200) engine.push("trades", trades.slice(i, Math.min(i + 200, to)));
}

test("file store: restore skips a damaged newest checkpoint and replays from the older one", async () => {
  const dir = mkdtempSync(join(tmpdir(), "riffle-store-"));
  try {
    const trades = generateTrades(11, 3_000);
    const whole = await engineWith({});
    pushRange(whole.engine, trades, 0, trades.length);
    whole.engine.finish();

    const first = await engineWith({ store: new FileStore(dir), keepCheckpoints: 2 });
    pushRange(first.engine, trades, 0, 1_000);
    await first.engine.checkpoint();
    pushRange(first.engine, trades, 1_000, 1_400);
    const older = await first.engine.checkpoint();
    pushRange(first.engine, trades, 1_400, 2_000);
    const newest = await first.engine.checkpoint();
    const files = readdirSync(dir).sort();
    assert.deepEqual(files, [`${older.id}.ckpt`, `${newest.id}.ckpt`], "keeps the newest two, no temporary files");

    // Damage the newest checkpoint on disk.
    const path = join(dir, `${newest.id}.ckpt`);
    const bytes = readFileSync(path);
    bytes[bytes.length >> 1] ^= 0xff;
    writeFileSync(path, bytes);

    const second = await engineWith({ store: new FileStore(dir) });
    const restored = await second.engine.restore();
    assert.equal(restored.id, older.id);
    assert.equal(restored.skipped.length, 1);
    assert.equal(restored.skipped[0].error.code, "CORRUPT_CHECKPOINT");
    assert.equal(restored.offsets.trades, 1_400);
    pushRange(second.engine, trades, restored.offsets.trades, trades.length);
    second.engine.finish();
    // Windows the first engine emitted before its checkpoint at 1,400 events, plus what
    // the restored one emitted, equal the uninterrupted run.
    const replayed = await engineWith({});
    pushRange(replayed.engine, trades, 0, 1_400);
    const emittedBefore = new Set(replayed.rows.map((r) => `${r.symbol}|${r.window_start}`));
    const expected = whole.rows.filter((r) => !emittedBefore.has(`${r.symbol}|${r.window_start}`));
    assert.equal(diffRows(sortRows(second.rows), sortRows(expected)), null);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("memory store, missing store, other queries and storage errors", async () => {
  const store = new MemoryStore();
  const { engine } = await engineWith({ store, keepCheckpoints: 3 });
  for (let i = 0; i < 5; i++) {
    engine.push("trades", [{ symbol: "A", price: 1, ts: 1_000 * i }]);
    await engine.checkpoint();
  }
  assert.equal((await store.list()).length, 3);

  const bare = await engineWith({});
  await assert.rejects(bare.engine.checkpoint(), (e) => e instanceof RiffleError && e.code === "NO_STORE");

  const other = await Riffle.create({ store });
  await other.sql(DDL);
  await assert.rejects(other.restore(), (e) => e instanceof RiffleError && e.code === "CHECKPOINT_MISMATCH");
  assert.equal(await other.restore({ startEmptyOnMismatch: true }), null);

  // A store that cannot write (its directory is a file): typed error, engine keeps running.
  const dir = mkdtempSync(join(tmpdir(), "riffle-store-"));
  try {
    const file = join(dir, "not-a-dir");
    writeFileSync(file, "x");
    const broken = await engineWith({ store: new FileStore(join(file, "sub")) });
    await assert.rejects(broken.engine.checkpoint(), (e) => e instanceof RiffleError && e.code === "STORAGE");
    broken.engine.push("trades", [{ symbol: "A", price: 1, ts: 1 }]);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("Durable Object store chunks large checkpoints and removes stale chunks", async () => {
  // A Map standing in for DurableObjectStorage (the real one runs in tests/workerd/).
  const map = new Map();
  const storage = {
    async get(key) {
      return map.get(key);
    },
    async put(entries) {
      assert.ok(Object.keys(entries).length <= 128, "at most 128 keys per put");
      for (const [key, value] of Object.entries(entries)) {
        assert.ok(!(value instanceof Uint8Array) || value.length <= 1 << 20, "values fit the per-value limit");
        map.set(key, value);
      }
    },
    async delete(keys) {
      let deleted = 0;
      for (const key of keys) deleted += map.delete(key) ? 1 : 0;
      return deleted;
    },
    async list({ prefix }) {
      return new Map([...map].filter(([key]) => key.startsWith(prefix)));
    },
  };
  const { DurableObjectStore } = await import("riffle-sql");
  const store = new DurableObjectStore(storage);
  const big = new Uint8Array(3 * (1 << 20) + 17).map((_, i) => i % 251);
  map.set("riffle/chunk/orphan/0", new Uint8Array(4)); // a save that crashed before its index
  await store.save("0001", big, 2);
  await store.save("0002", big.slice(0, 10), 2);
  await store.save("0003", big.slice(0, 20), 2);
  assert.deepEqual(await store.list(), ["0002", "0003"]);
  assert.deepEqual(await store.load("0002"), big.slice(0, 10));
  assert.equal(await store.load("0001"), undefined);
  assert.ok(![...map.keys()].some((k) => k.includes("orphan") || k.includes("/0001/")), "stale chunks are gone");
  await store.save("0004", big, 5);
  assert.deepEqual(await store.load("0004"), big);
});

test("checkpointIntervalMs takes checkpoints on a timer; close() stops it", async () => {
  const store = new MemoryStore();
  const { engine } = await engineWith({ store, checkpointIntervalMs: 20, keepCheckpoints: 10 });
  engine.push("trades", [{ symbol: "A", price: 1, ts: 1_000 }]);
  await new Promise((resolve) => setTimeout(resolve, 120));
  const taken = (await store.list()).length;
  assert.ok(taken >= 2, `${taken} checkpoints on the timer`);
  engine.close();
  await new Promise((resolve) => setTimeout(resolve, 80));
  assert.ok((await store.list()).length <= taken + 1, "no checkpoints after close()");
});

test("setup + store restore on create; resume tokens come back with the offsets", async () => {
  const store = new MemoryStore();
  const setup = (engine) => {
    engine.sql(DDL);
    engine.query(QUERY);
  };
  const first = await Riffle.create({ store, setup });
  assert.equal(first.restored, null, "nothing to restore on a first start");
  first.push("trades", [{ symbol: "A", price: 1, ts: 1_000 }], { resumeToken: "seq-41" });
  await first.checkpoint();
  const second = await Riffle.create({ store, setup });
  assert.equal(second.restored.offsets.trades, 1);
  assert.equal(second.restored.resumeTokens.trades, "seq-41");
});
