// Issue 20: lookup joins in the wasm build. A table the application fills
// (upsert, upsertArrow, delete) joined with a stream, against a
// hand-written JavaScript Map join of each push with the table as it
// stood; the table's rows survive a snapshot and restore.
import assert from "node:assert/strict";
import { test } from "node:test";

import { tableFromArrays, tableToIPC } from "apache-arrow";
import { Riffle } from "riffle-sql";

const STREAM = `CREATE STREAM clicks (user_id BIGINT, page VARCHAR, ts BIGINT,
  WATERMARK FOR ts AS ts - INTERVAL '1' SECOND)`;
const TABLE = "CREATE TABLE users (id BIGINT, name VARCHAR, plan VARCHAR, PRIMARY KEY (id))";
const JOINED = `SELECT c.user_id, c.page, c.ts, u.name, u.plan FROM clicks AS c
  LEFT JOIN users AS u ON c.user_id = u.id`;

/** Seeded generator, so a failure reproduces. */
function random(seed) {
  let state = seed >>> 0;
  return (n) => {
    state = (state * 1664525 + 1013904223) >>> 0;
    return state % n;
  };
}

async function engineWith(sql) {
  const engine = await Riffle.create();
  await engine.sql(STREAM);
  await engine.sql(TABLE);
  const query = engine.query(sql);
  const rows = [];
  query.subscribe((batch) => rows.push(...batch));
  return { engine, query, rows };
}

const key = (row) => JSON.stringify(row);

test("each click meets the users table as it stood when pushed", async () => {
  const { engine, query, rows } = await engineWith(JOINED);
  const users = new Map();
  const expected = [];
  const next = random(7);
  let ts = 1_000;
  for (let step = 0; step < 200; step++) {
    const roll = next(10);
    if (roll < 3) {
      const batch = Array.from({ length: 1 + next(3) }, () => {
        const id = next(12);
        return { id, name: `user${id}-${next(100)}`, plan: next(2) === 0 ? "free" : null };
      });
      engine.upsert("users", batch);
      for (const user of batch) users.set(user.id, { name: user.name, plan: user.plan });
    } else if (roll < 4) {
      const ids = [next(12), next(12)];
      engine.delete("users", ids.map((id) => ({ id })));
      for (const id of ids) users.delete(id);
    }
    assert.equal(engine.tableSize("users"), users.size);
    const clicks = Array.from({ length: 1 + next(5) }, () => ({ user_id: next(14), page: `/p${next(3)}`, ts: (ts += 10) }));
    engine.push("clicks", clicks);
    for (const click of clicks) {
      const user = users.get(click.user_id);
      expected.push({ ...click, name: user?.name ?? null, plan: user?.plan ?? null });
    }
  }
  assert.deepEqual(rows.map(key).sort(), expected.map(key).sort());
  const [lookup] = query.metrics().lookups;
  assert.equal(lookup.table, "users");
  assert.equal(lookup.rowsIn, expected.length);
  assert.equal(lookup.rowsMatched, expected.filter((r) => r.name !== null).length);
});

test("upsertArrow, refused input, and a table restored from a snapshot", async () => {
  const windowed = `SELECT u.plan, window_start, count(*) AS n FROM TUMBLE(clicks, ts, INTERVAL '10' SECOND) AS c
    JOIN users AS u ON c.user_id = u.id GROUP BY u.plan, window_start, window_end`;
  const first = await engineWith(windowed);
  const ipc = tableToIPC(tableFromArrays({ id: [1, 2, 3], plan: ["pro", "free", "pro"], name: ["a", "b", "c"] }), "stream");
  assert.deepEqual(first.engine.upsertArrow("users", ipc), { inserted: 3, updated: 0, deleted: 0 });
  assert.deepEqual(first.engine.upsert("users", [{ id: 2, plan: "pro" }]), { inserted: 0, updated: 1, deleted: 0 });
  // A key missing in one row: the whole call is refused, nothing changes.
  assert.throws(
    () => first.engine.upsert("users", [{ id: 9, plan: "x" }, { plan: "keyless" }]),
    (e) => e.code === "INVALID_INPUT" && /id/.test(e.message),
  );
  assert.throws(() => first.engine.upsert("clicks", [{ id: 1 }]), (e) => e.code === "UNKNOWN_STREAM" && /is a stream/.test(e.message));
  assert.throws(() => first.engine.push("users", [{ id: 1 }]), (e) => e.code === "INVALID_INPUT" && /is a table/.test(e.message));
  // An empty call is checked like any other.
  assert.throws(() => first.engine.upsert("nope", []), (e) => e.code === "UNKNOWN_STREAM" && /unknown table 'nope'/.test(e.message));
  assert.deepEqual(first.engine.delete("users", []), { inserted: 0, updated: 0, deleted: 0 });
  assert.equal(first.engine.tableSize("users"), 3);
  first.engine.push("clicks", [
    { user_id: 1, page: "/", ts: 1_000 },
    { user_id: 2, page: "/", ts: 2_000 },
  ]);
  const snapshot = first.engine.snapshot();

  const second = await engineWith(windowed);
  second.engine.restoreSnapshot(snapshot);
  assert.equal(second.engine.tableSize("users"), 3);
  for (const { engine } of [first, second]) {
    engine.push("clicks", [
      { user_id: 3, page: "/", ts: 3_000 },
      { user_id: 4, page: "/", ts: 4_000 },
    ]);
    engine.finish();
  }
  assert.deepEqual(second.rows, [{ plan: "pro", window_start: 0, n: 3 }]);
  assert.deepEqual(second.rows, first.rows);
});
