// The npm package imported by name and exercised in Node.
import assert from "node:assert/strict";
import { test } from "node:test";

import { InsertJob, Riffle, RiffleError } from "riffle-sql";
import { diffRows, generateTrades, referenceWindows, runScenario, sortRows, DDL, QUERY } from "../shared/scenario.mjs";

test("window results equal a hand-written JavaScript aggregator", async () => {
  const trades = generateTrades(1, 5_000);
  const { rows, metrics, beforeFinish, columns } = await runScenario(Riffle, trades);
  assert.deepEqual(columns, ["symbol", "window_start", "window_end", "n", "avg_price", "max_price"]);
  assert.equal(diffRows(rows, referenceWindows(trades)), null);
  assert.ok(beforeFinish > 0, "windows close while events flow, before finish()");
  assert.equal(metrics.eventsIn, 5_000);
  assert.equal(metrics.lateEventsDropped, 0);
  assert.equal(metrics.openWindows, 0);
  assert.equal(metrics.finished, true);
});

test("a late event is dropped and counted, visible from JS", async () => {
  const engine = await Riffle.create();
  await engine.sql(DDL);
  const query = engine.query(QUERY);
  const seen = [];
  query.subscribe((rows) => seen.push(...rows));
  engine.push("trades", [
    { symbol: "A", price: 1, ts: 10_000 },
    { symbol: "A", price: 2, ts: new Date(65_000) },
  ]);
  assert.equal(seen.length, 1, "window [0, 60 s) closed at watermark 63 s");
  assert.deepEqual(seen[0], { symbol: "A", window_start: 0, window_end: 60_000, n: 1, avg_price: 1, max_price: 1 });
  engine.push("trades", [{ symbol: "A", price: 3, ts: "1970-01-01T00:00:30Z" }]);
  const metrics = query.metrics();
  assert.equal(metrics.lateEventsDropped, 1);
  assert.equal(metrics.watermark, 63_000);
  assert.equal(metrics.openWindows, 1);
  engine.finish();
  assert.equal(seen.length, 2);
  assert.equal(seen[1].n, 1);
});

test("errors are RiffleErrors with a code and a useful message", async () => {
  const engine = await Riffle.create();
  await engine.sql(DDL);
  const cases = [
    [() => engine.query("SELEC nothing"), "SQL_PARSE"],
    [() => engine.query("SELECT nope FROM trades"), "SQL_PLAN"],
    [() => engine.query("SELECT count(*) FROM TUMBLE(missing, ts, INTERVAL '1' MINUTE) GROUP BY window_start"), "UNKNOWN_STREAM"],
    [() => engine.query("SELECT symbol FROM trades ORDER BY ts"), "UNSUPPORTED"],
    [() => engine.push("missing", [{ ts: 1 }]), "UNKNOWN_STREAM"],
    [() => engine.push("trades", [{ symbol: "A", price: "cheap", ts: 1 }]), "INVALID_INPUT"],
    [() => engine.push("trades", [{ symbol: "A", price: 1 }]), "INVALID_INPUT"],
    [() => engine.pushJson("trades", '{"symbol": "A", "price": 1, "ts": '), "INVALID_INPUT"],
  ];
  for (const [call, code] of cases) {
    assert.throws(call, (error) => {
      assert.ok(error instanceof RiffleError, `${code}: ${error}`);
      assert.equal(error.code, code, error.message);
      assert.ok(error.message.length > 10);
      return true;
    });
  }
  await assert.rejects(engine.sql(DDL), (error) => error instanceof RiffleError && error.code === "STREAM_EXISTS");
  const unknown = (() => {
    try {
      engine.push("missing", [{ ts: 1 }]);
    } catch (error) {
      return error;
    }
  })();
  assert.match(unknown.message, /trades/, "the message lists the streams that exist");
  engine.close();
  assert.throws(() => engine.finish(), (error) => error.code === "ENGINE_CLOSED");
});

test("a throwing subscriber does not stop other subscribers or lose results", async () => {
  const engine = await Riffle.create();
  await engine.sql(DDL);
  const query = engine.query(QUERY);
  const got = [];
  query.subscribe(() => {
    throw new Error("subscriber bug");
  });
  query.subscribe((rows) => got.push(...rows));
  engine.push("trades", [{ symbol: "A", price: 1, ts: 1_000 }]);
  assert.throws(() => engine.finish(), /subscriber bug/);
  assert.equal(got.length, 1);
});

test("advanceWatermark closes windows; explain shows the operator graph", async () => {
  const engine = await Riffle.create();
  await engine.sql(DDL);
  const query = engine.query(QUERY);
  const seen = [];
  query.subscribe((rows) => seen.push(...rows));
  engine.push("trades", [{ symbol: "A", price: 2, ts: 10_000 }]);
  engine.advanceWatermark("trades", new Date(59_999));
  assert.equal(seen.length, 1);
  assert.equal(query.metrics().watermark, 59_999);
  const plan = engine.explain(`EXPLAIN ${QUERY}`);
  assert.match(plan, /StreamSource: trades/);
  assert.match(plan, /WindowAggregate: TUMBLE\(size 1m\)/);
  engine.close();
});

test("an idle stream's windows close on a quiet feed, driven by the engine's timer", async () => {
  let now = 1_700_000_050_000; // 10 s into a minute
  const engine = await Riffle.create({ clock: () => now, tickIntervalMs: 10 });
  await engine.sql(`CREATE STREAM trades (symbol VARCHAR, price DOUBLE, ts TIMESTAMP,
    WATERMARK FOR ts AS ts - INTERVAL '2' SECOND) WITH (idle_timeout = INTERVAL '5' SECOND)`);
  const query = engine.query(QUERY);
  const seen = [];
  query.subscribe((rows) => seen.push(...rows));
  engine.push("trades", [{ symbol: "A", price: 2, ts: now }]);
  now += 3_000;
  await new Promise((resolve) => setTimeout(resolve, 60));
  assert.equal(seen.length, 0, "not idle yet");
  now += 60_000;
  await new Promise((resolve) => setTimeout(resolve, 60));
  assert.equal(seen.length, 1, "the quiet minute closed by the timer");
  assert.equal(seen[0].n, 1);
  engine.close();
});

test("GROUP BY without a window emits a changelog; a TTL deletes idle groups", async () => {
  const engine = await Riffle.create();
  await engine.sql(DDL);
  const query = engine.query("SELECT symbol, count(*) AS n FROM trades GROUP BY symbol EMIT ON UPDATE", { stateTtlMs: 10_000 });
  assert.equal(query.changelog, true);
  const changes = [];
  query.subscribe((rows) => changes.push(...rows));
  engine.push("trades", [{ symbol: "A", price: 1, ts: 0 }, { symbol: "B", price: 1, ts: 1_000 }]);
  engine.push("trades", [{ symbol: "B", price: 2, ts: 2_000 }]);
  assert.deepEqual(changes, [
    { symbol: "A", n: 1, _op: "insert" },
    { symbol: "B", n: 1, _op: "insert" },
    { symbol: "B", n: 1, _op: "update_before" },
    { symbol: "B", n: 2, _op: "update_after" },
  ]);
  changes.length = 0;
  engine.push("trades", [{ symbol: "B", price: 2, ts: 20_000 }]);
  assert.deepEqual(changes.filter((c) => c._op === "delete"), [{ symbol: "A", n: 1, _op: "delete" }]);
  engine.close();
});

test("late rows reach subscribeLate with the sideOutput policy", async () => {
  const engine = await Riffle.create();
  await engine.sql(DDL);
  const query = engine.query(QUERY, { late: "sideOutput" });
  assert.equal(query.changelog, false);
  const late = [];
  query.subscribeLate((rows) => late.push(...rows));
  engine.push("trades", [{ symbol: "A", price: 1, ts: 10_000 }, { symbol: "A", price: 1, ts: 70_000 }]);
  engine.push("trades", [{ symbol: "Z", price: 9.5, ts: 30_000 }]);
  assert.deepEqual(late, [{ symbol: "Z", price: 9.5, ts: 30_000 }]);
  assert.equal(query.metrics().lateEventsDropped, 1);
  assert.throws(() => engine.query(QUERY, { late: "sometimes" }), (e) => e instanceof RiffleError && e.code === "INVALID_INPUT");
  engine.close();
});

test("allowed lateness turns a window query into a changelog that late rows update", async () => {
  const engine = await Riffle.create();
  await engine.sql(DDL);
  const query = engine.query("SELECT window_start, count(*) AS n FROM TUMBLE(trades, ts, INTERVAL '1' MINUTE) GROUP BY window_start", {
    allowedLatenessMs: 10_000,
  });
  assert.equal(query.changelog, true);
  const changes = [];
  query.subscribe((rows) => changes.push(...rows));
  engine.push("trades", [{ symbol: "A", price: 1, ts: 10_000 }, { symbol: "A", price: 1, ts: 65_000 }]);
  engine.push("trades", [{ symbol: "A", price: 1, ts: 30_000 }]);
  assert.deepEqual(changes, [
    { window_start: 0, n: 1, _op: "insert" },
    { window_start: 0, n: 1, _op: "update_before" },
    { window_start: 0, n: 2, _op: "update_after" },
  ]);
  engine.close();
});

test("checkpoint, restore into a new engine, replay from the offset: same results as an uninterrupted run", async () => {
  const trades = generateTrades(7, 3_000);
  const run = async (events, restoreFrom) => {
    const engine = await Riffle.create();
    await engine.sql(DDL);
    const query = engine.query(QUERY);
    const rows = [];
    query.subscribe((batch) => rows.push(...batch));
    let start = 0;
    if (restoreFrom) start = engine.restoreSnapshot(restoreFrom).offsets.trades;
    for (let i = start; i < events.length; i += 250) engine.push("trades", events.slice(i, Math.min(i + 250, events.length)));
    return { engine, rows };
  };
  const whole = await run(trades);
  whole.engine.finish();

  const first = await run(trades.slice(0, 1_500));
  const bytes = first.engine.snapshot();
  assert.ok(bytes instanceof Uint8Array && bytes.length > 100);
  const resumed = await run(trades, bytes);
  resumed.engine.finish();
  const key = (r) => `${r.symbol}|${r.window_start}`;
  const after = new Set([...first.rows].map(key));
  const expected = whole.rows.filter((r) => !after.has(key(r)));
  assert.equal(diffRows(sortRows(resumed.rows), sortRows(expected)), null);

  const damaged = bytes.slice();
  damaged[damaged.length >> 1] ^= 0xff;
  const fresh = await Riffle.create();
  await fresh.sql(DDL);
  fresh.query(QUERY);
  assert.throws(() => fresh.restoreSnapshot(damaged), (e) => e instanceof RiffleError && e.code === "CORRUPT_CHECKPOINT");
  const other = await Riffle.create();
  await other.sql(DDL);
  assert.throws(() => other.restoreSnapshot(bytes), (e) => e instanceof RiffleError && e.code === "CHECKPOINT_MISMATCH");
});

test("bad rows: skip keeps the good rows; dead letters reach JS with the reason", async () => {
  const engine = await Riffle.create();
  await engine.sql(`CREATE STREAM trades (symbol VARCHAR, price DOUBLE, ts TIMESTAMP,
    WATERMARK FOR ts AS ts - INTERVAL '2' SECOND) WITH (bad_rows = 'dead_letter')`);
  const query = engine.query(QUERY);
  const letters = [];
  engine.subscribeDeadLetters((batch) => letters.push(...batch));
  engine.push("trades", [
    { symbol: "A", price: 1, ts: 1_000 },
    { symbol: "A", price: "lots", ts: 2_000 },
    { symbol: "A", price: 2 },
    { symbol: "A", price: 3, ts: 3_000 },
  ]);
  assert.equal(query.metrics().eventsIn, 2);
  assert.equal(query.metrics().badRows, 2);
  assert.deepEqual(letters.map((l) => l.row), [1, 2]);
  assert.match(letters[0].reason, /lots/);
  assert.match(letters[1].reason, /'ts'/);
  assert.equal(JSON.parse(letters[0].text).price, "lots");
  engine.close();
});

test("Arrow IPC in: columns cross in bulk and give the same results", async () => {
  const { tableFromArrays, tableToIPC, TimestampMillisecond, Float64, Utf8, vectorFromArray, makeTable } = await import("apache-arrow");
  void tableFromArrays;
  const trades = generateTrades(3, 4_000);
  const engine = await Riffle.create();
  await engine.sql(DDL);
  const query = engine.query(QUERY);
  const rows = [];
  query.subscribe((batch) => rows.push(...batch));
  for (let i = 0; i < trades.length; i += 500) {
    const slice = trades.slice(i, i + 500);
    const table = makeTable({
      symbol: vectorFromArray(slice.map((t) => t.symbol), new Utf8()),
      price: vectorFromArray(slice.map((t) => t.price), new Float64()),
      ts: vectorFromArray(slice.map((t) => t.ts), new TimestampMillisecond()),
    });
    engine.pushArrow("trades", tableToIPC(table, "stream"));
  }
  engine.finish();
  assert.equal(diffRows(sortRows(rows), referenceWindows(trades)), null);
  assert.throws(() => engine.pushArrow("trades", new Uint8Array([1, 2, 3])), (e) => e.code === "INVALID_INPUT" || e.code === "FINISHED");
  const fresh = await Riffle.create();
  await fresh.sql(DDL);
  assert.throws(() => fresh.pushArrow("trades", new Uint8Array([1, 2, 3])), (e) => e instanceof RiffleError && e.code === "INVALID_INPUT");
});

test("NDJSON text of any size and script reaches the engine intact", async () => {
  // pushJson encodes straight into wasm memory: one byte per character
  // first, three when the text is not ASCII; input buffers past 4 MiB are
  // freed after their push. Symbols in several scripts, pushes of 3 bytes
  // to ~9 MB of UTF-8, in an order that reuses, grows and frees the buffer.
  const engine = await Riffle.create({ tickIntervalMs: 0 });
  await engine.sql("CREATE STREAM s (k VARCHAR, v BIGINT, ts BIGINT, WATERMARK FOR ts AS ts)");
  const counts = new Map();
  engine.query("SELECT k, count(*) AS n, sum(v) AS total FROM s GROUP BY k").subscribe((rows) => {
    for (const row of rows) if (row._op !== "-") counts.set(row.k, [row.n, row.total]);
  });
  const names = ["ascii", "é", "中文", "😀", "mixed é😀"];
  const expected = new Map();
  let ts = 0;
  for (const [k, lines] of [[0, 1], [1, 200_000], [2, 3], [3, 150_000], [4, 10], [0, 50_000]]) {
    const text = Array.from({ length: lines }, (_, i) => JSON.stringify({ k: names[k], v: i, ts: ts++ })).join("\n");
    engine.pushJson("s", text);
    const [n, total] = expected.get(names[k]) ?? [0, 0];
    expected.set(names[k], [n + lines, total + (lines * (lines - 1)) / 2]);
  }
  engine.finish();
  assert.deepEqual(counts, expected);
  engine.close();
});

// Issue 19: views shared by queries, windows over a view's window_time, and
// closing a query, through the public API.
test("views feed several queries and cascade windows; a closed query stops and frees its view", async () => {
  const engine = await Riffle.create();
  await engine.sql(DDL);
  await engine.sql(`CREATE VIEW per_10s AS
    SELECT symbol, window_start AS start_10s, window_time AS rowtime, count(*) AS n
    FROM TUMBLE(trades, ts, INTERVAL '10' SECOND) GROUP BY symbol, window_start, window_time`);
  const minutes = engine.query(`SELECT symbol, window_start, sum(n) AS n, count(*) AS slices
    FROM TUMBLE(per_10s, rowtime, INTERVAL '1' MINUTE) GROUP BY symbol, window_start`);
  const slices = engine.query("SELECT symbol, start_10s, n FROM per_10s WHERE n > 1");
  const seenMinutes = [];
  const seenSlices = [];
  minutes.subscribe((rows) => seenMinutes.push(...rows));
  slices.subscribe((rows) => seenSlices.push(...rows));
  const events = [];
  for (let i = 0; i < 120; i++) events.push({ symbol: i % 2 ? "A" : "B", price: 1, ts: i * 1_000 });
  engine.push("trades", events.slice(0, 80));
  // 10 s windows up to 70 s have closed; their minute [0, 60 s) with them.
  assert.deepEqual(sortRows(seenMinutes), sortRows([
    { symbol: "A", window_start: 0, n: 30, slices: 6 },
    { symbol: "B", window_start: 0, n: 30, slices: 6 },
  ]));
  assert.equal(seenSlices.length, 14, "7 closed 10 s windows per symbol, 5 events each");
  assert.throws(() => engine.push("per_10s", [{ symbol: "A" }]), (e) => e instanceof RiffleError && e.code === "INVALID_INPUT");
  await assert.rejects(engine.sql("DROP VIEW per_10s"), (e) => e instanceof RiffleError && e.code === "UNSUPPORTED");
  slices.close();
  const slicesBefore = seenSlices.length;
  minutes.close();
  await engine.sql("DROP VIEW per_10s");
  engine.push("trades", events.slice(80));
  engine.finish();
  assert.equal(seenSlices.length, slicesBefore, "a closed query delivers nothing more");
  assert.equal(seenMinutes.length, 2);
  assert.throws(() => minutes.metrics(), (e) => e instanceof RiffleError && e.code === "UNKNOWN_QUERY");
  minutes.close(); // closing twice is a no-op
  engine.close();
});

// Issue 19: INSERT INTO a stream through sql(); the job's rows are events of
// the stream for queries made before and after it; closing the job stops it.
test("INSERT INTO feeds a stream from a window query; the job closes like a query", async () => {
  const engine = await Riffle.create();
  await engine.sql(DDL);
  assert.equal(await engine.sql(`CREATE STREAM per_10s (symbol VARCHAR, n BIGINT, rowtime TIMESTAMP(3),
    WATERMARK FOR rowtime AS rowtime - INTERVAL '1' SECOND)`), undefined);
  const minutes = engine.query(`SELECT symbol, window_start, sum(n) AS n, count(*) AS slices
    FROM TUMBLE(per_10s, rowtime, INTERVAL '1' MINUTE) GROUP BY symbol, window_start`);
  const job = await engine.sql(`INSERT INTO per_10s SELECT symbol, count(*), window_time
    FROM TUMBLE(trades, ts, INTERVAL '10' SECOND) GROUP BY symbol, window_start, window_time`);
  assert.ok(job instanceof InsertJob);
  assert.match(engine.explain(job.sql), /InsertInto: per_10s/);
  const slices = engine.query("SELECT symbol, n, rowtime FROM per_10s");
  const seenMinutes = [];
  const seenSlices = [];
  minutes.subscribe((rows) => seenMinutes.push(...rows));
  slices.subscribe((rows) => seenSlices.push(...rows));
  const events = [];
  for (let i = 0; i < 120; i++) events.push({ symbol: i % 2 ? "A" : "B", price: 1, ts: i * 1_000 });
  engine.push("trades", events.slice(0, 80));
  assert.deepEqual(sortRows(seenMinutes), sortRows([
    { symbol: "A", window_start: 0, n: 30, slices: 6 },
    { symbol: "B", window_start: 0, n: 30, slices: 6 },
  ]));
  assert.equal(seenSlices.length, 14, "7 closed 10 s windows per symbol");
  // per_10s is in milliseconds, trades in nanoseconds: the job's watermark
  // (77 s exactly) converts to the last millisecond it wholly covers.
  assert.equal(minutes.metrics().watermark, 76_999);
  assert.equal(minutes.metrics().eventsIn, 80, "the events behind the job count");
  assert.deepEqual(seenSlices.find((row) => row.symbol === "B" && row.rowtime === 9_999), { symbol: "B", n: 5, rowtime: 9_999 });
  await assert.rejects(engine.sql("INSERT INTO trades SELECT symbol, price, ts FROM trades"),
    (e) => e instanceof RiffleError && e.code === "UNSUPPORTED" && /itself/.test(e.message));
  job.close();
  job.close(); // closing twice is a no-op
  engine.push("trades", events.slice(80));
  engine.finish();
  assert.equal(seenSlices.length, 14, "a closed job inserts nothing more");
  // What it inserted before it closed stays: [60 s, 70 s) completes its minute.
  assert.deepEqual(sortRows(seenMinutes.slice(2)), sortRows([
    { symbol: "A", window_start: 60_000, n: 5, slices: 1 },
    { symbol: "B", window_start: 60_000, n: 5, slices: 1 },
  ]));
  engine.close();
});

// Issue 19: an aggregate over a changelog takes retracted rows back out.
test("an aggregate over GROUP BY results follows them as they change", async () => {
  const engine = await Riffle.create();
  await engine.sql(DDL);
  const histogram = engine.query(`SELECT n, count(*) AS symbols, max(symbol) AS last
    FROM (SELECT symbol, count(*) AS n FROM trades GROUP BY symbol) GROUP BY n`);
  assert.ok(histogram.changelog);
  const table = new Map();
  histogram.subscribe((rows) => {
    for (const { _op, ...row } of rows) {
      if (_op === "insert" || _op === "update_after") table.set(row.n, row);
      else {
        assert.deepEqual(table.get(row.n), row, "a retraction names the row it takes out");
        table.delete(row.n);
      }
    }
  });
  engine.push("trades", [{ symbol: "A", price: 1, ts: 1 }, { symbol: "B", price: 1, ts: 2 }]);
  assert.deepEqual([...table.values()], [{ n: 1, symbols: 2, last: "B" }]);
  engine.push("trades", [{ symbol: "B", price: 1, ts: 3 }]);
  assert.deepEqual([...table.values()].sort((x, y) => x.n - y.n), [{ n: 1, symbols: 1, last: "A" }, { n: 2, symbols: 1, last: "B" }]);
  engine.push("trades", [{ symbol: "A", price: 1, ts: 4 }]);
  assert.deepEqual([...table.values()], [{ n: 2, symbols: 2, last: "B" }], "n = 1 emptied and was deleted");
  assert.throws(() => engine.query("SELECT string_agg(symbol, ',') FROM (SELECT symbol, count(*) AS n FROM trades GROUP BY symbol)"),
    (e) => e instanceof RiffleError && e.code === "UNSUPPORTED" && /string_agg/.test(e.message));
  engine.close();
});

// Issue 19: a changelog view, steps over it and a union with final rows.
test("a changelog view is read, filtered and unioned like any result", async () => {
  const engine = await Riffle.create();
  await engine.sql(DDL);
  await engine.sql("CREATE VIEW per_symbol AS SELECT symbol, count(*) AS n FROM trades GROUP BY symbol");
  const busy = engine.query("SELECT symbol, n * 10 AS tens FROM per_symbol WHERE n > 1");
  const merged = engine.query(`SELECT count(*) AS entries, sum(n) AS total FROM
    (SELECT symbol, n FROM per_symbol UNION ALL SELECT symbol, 100 AS n FROM trades WHERE price > 5)`);
  assert.ok(busy.changelog && merged.changelog);
  const busyRows = [];
  busy.subscribe((rows) => busyRows.push(...rows));
  let latest;
  merged.subscribe((rows) => { latest = rows.filter((r) => r._op !== "update_before").at(-1); });
  engine.push("trades", [{ symbol: "A", price: 1, ts: 1 }, { symbol: "B", price: 9, ts: 2 }]);
  assert.deepEqual(busyRows, [], "no symbol has n > 1 yet");
  assert.equal(latest.entries, 3);
  assert.equal(latest.total, 102);
  engine.push("trades", [{ symbol: "A", price: 1, ts: 3 }]);
  assert.deepEqual(busyRows, [{ symbol: "A", tens: 20, _op: "insert" }], "A passed the WHERE: an insert");
  engine.push("trades", [{ symbol: "A", price: 1, ts: 4 }]);
  assert.deepEqual(busyRows.slice(1), [
    { symbol: "A", tens: 20, _op: "update_before" },
    { symbol: "A", tens: 30, _op: "update_after" },
  ]);
  assert.equal(latest.entries, 3);
  assert.equal(latest.total, 104);
  assert.throws(() => engine.query("SELECT window_start, count(*) FROM TUMBLE(per_symbol, ts, INTERVAL '1' SECOND) GROUP BY window_start"),
    (e) => e instanceof RiffleError && e.code === "UNSUPPORTED" && /changelog/.test(e.message));
  engine.close();
});

// Issue 21: Flink's window syntax gives the rows of Riffle's own.
test("Flink's TABLE(TUMBLE(TABLE t, DESCRIPTOR(ts), ...)) runs as written", async () => {
  const engine = await Riffle.create();
  await engine.sql(DDL);
  const flink = engine.query(`SELECT symbol, window_start, count(*) AS n FROM TABLE(TUMBLE(
    DATA => TABLE trades, TIMECOL => DESCRIPTOR(ts), SIZE => INTERVAL '1' SECOND)) GROUP BY symbol, window_start, window_end`);
  const own = engine.query("SELECT symbol, window_start, count(*) AS n FROM TUMBLE(trades, ts, INTERVAL '1' SECOND) GROUP BY symbol, window_start, window_end");
  const got = { flink: [], own: [] };
  flink.subscribe((rows) => got.flink.push(...rows));
  own.subscribe((rows) => got.own.push(...rows));
  engine.push("trades", [{ symbol: "A", price: 1, ts: 10 }, { symbol: "B", price: 2, ts: 900 }, { symbol: "A", price: 3, ts: 1500 }]);
  engine.finish();
  assert.equal(got.flink.length, 3);
  assert.deepEqual(got.flink, got.own);
  assert.throws(() => engine.query("SELECT window_start, count(*) FROM TABLE(TUMBLE(TABLE trades, ts, INTERVAL '1' SECOND)) GROUP BY window_start"),
    (e) => e instanceof RiffleError && e.code === "SQL_PARSE" && /DESCRIPTOR/.test(e.message));
  engine.close();
});

// Issue 20: an interval join of two streams in the wasm build, against the
// same join written in JavaScript; its state survives a checkpoint.
test("an interval join of two streams equals a hand-written join, across a checkpoint", async () => {
  const ddl = (name) => `CREATE STREAM ${name} (ad VARCHAR, ts TIMESTAMP(3), WATERMARK FOR ts AS ts - INTERVAL '2' SECOND)`;
  const sql = `SELECT i.ad, i.ts AS shown, c.ts AS clicked FROM impressions AS i LEFT JOIN clicks AS c
    ON c.ad = i.ad AND c.ts BETWEEN i.ts AND i.ts + INTERVAL '3' SECOND`;
  // Out of order by less than the watermark delay: nothing is late.
  let seed = 7;
  const random = () => ((seed = (seed * 1103515245 + 12345) % 2147483648) / 2147483648);
  const events = (n, step) => Array.from({ length: n }, (_, k) => ({ ad: `ad${Math.floor(random() * 5)}`, ts: k * step + Math.floor(random() * 1900) }));
  const impressions = events(400, 100);
  const clicks = events(300, 130);
  const expected = [];
  for (const i of impressions) {
    const matches = clicks.filter((c) => c.ad === i.ad && c.ts >= i.ts && c.ts <= i.ts + 3_000);
    if (matches.length === 0) expected.push({ ad: i.ad, shown: i.ts, clicked: null });
    for (const c of matches) expected.push({ ad: i.ad, shown: i.ts, clicked: c.ts });
  }
  const open = async () => {
    const engine = await Riffle.create();
    await engine.sql(ddl("impressions"));
    await engine.sql(ddl("clicks"));
    const query = engine.query(sql);
    const rows = [];
    query.subscribe((batch) => rows.push(...batch));
    return { engine, rows, query };
  };
  const pushes = [];
  for (let k = 0; k < 20; k++) {
    pushes.push(["impressions", impressions.slice(k * 20, k * 20 + 20)]);
    pushes.push(["clicks", clicks.slice(k * 15, k * 15 + 15)]);
  }
  let { engine, rows, query } = await open();
  const before = [];
  for (const [stream, batch] of pushes.slice(0, 21)) engine.push(stream, batch);
  const checkpoint = engine.snapshot();
  before.push(...rows);
  engine.close();
  ({ engine, rows, query } = await open());
  engine.restoreSnapshot(checkpoint);
  for (const [stream, batch] of pushes.slice(21)) engine.push(stream, batch);
  engine.finish();
  const got = [...before, ...rows].map((r) => ({ ad: r.ad, shown: r.shown, clicked: r.clicked }));
  assert.ok(expected.some((r) => r.clicked === null) && expected.some((r) => r.clicked !== null));
  const inOrder = (list) => list.map((r) => JSON.stringify(r)).sort();
  assert.deepEqual(inOrder(got), inOrder(expected));
  // Per-side counters carried through the checkpoint.
  assert.deepEqual(query.metrics().joins, [
    { left: { rowsIn: 400, lateRowsDropped: 0, rowsHeld: 0 }, right: { rowsIn: 300, lateRowsDropped: 0, rowsHeld: 0 } },
  ]);
  engine.close();
});

// Issue 20: a join without a time condition under a state TTL is an
// updating join: an order without a payment comes out at once, padded, and
// its payment deletes that row.
test("a join under a state TTL pads at once and deletes the padded row at its first match", async () => {
  const engine = await Riffle.create();
  await engine.sql("CREATE STREAM orders (id BIGINT, ts TIMESTAMP(3), WATERMARK FOR ts AS ts)");
  await engine.sql("CREATE STREAM payments (order_id BIGINT, status VARCHAR, ts TIMESTAMP(3), WATERMARK FOR ts AS ts)");
  const query = engine.query("SELECT o.id, p.status FROM orders AS o LEFT JOIN payments AS p ON p.order_id = o.id", { stateTtlMs: 60_000 });
  const rows = [];
  query.subscribe((batch) => rows.push(...batch));
  engine.push("orders", [{ id: 1, ts: 1_000 }]);
  assert.deepEqual(rows, [{ id: 1, status: null, _op: "insert" }]);
  engine.push("payments", [{ order_id: 1, status: "paid", ts: 2_000 }]);
  assert.deepEqual(rows.slice(1), [{ id: 1, status: null, _op: "delete" }, { id: 1, status: "paid", _op: "insert" }]);
  // Past the TTL the payment meets nothing; the order stays as it was.
  engine.push("payments", [{ order_id: 1, status: "again", ts: 70_000 }]);
  engine.finish();
  assert.equal(rows.length, 3);
  assert.match(engine.explain("SELECT /*+ STATE_TTL('o' = '1 min', 'p' = '1 min') */ o.id FROM orders AS o LEFT JOIN payments AS p ON p.order_id = o.id"), /updating/);
  engine.close();
});

// Issue 21: Flink's Window Top-N in the wasm build.
test("a window top-N ranks each window's rows when it closes", async () => {
  const engine = await Riffle.create();
  await engine.sql("CREATE STREAM trades (symbol VARCHAR, price DOUBLE, ts TIMESTAMP(3), WATERMARK FOR ts AS ts)");
  const query = engine.query(`SELECT symbol, price, rownum FROM (SELECT *, ROW_NUMBER() OVER
    (PARTITION BY window_start, window_end ORDER BY price DESC) AS rownum FROM TUMBLE(trades, ts, INTERVAL '1' SECOND))
    WHERE rownum <= 2`);
  const rows = [];
  query.subscribe((batch) => rows.push(...batch));
  engine.push("trades", [{ symbol: "a", price: 1, ts: 0 }, { symbol: "b", price: 3, ts: 10 }, { symbol: "c", price: 2, ts: 20 }]);
  assert.deepEqual(rows, [], "the window is open");
  engine.push("trades", [{ symbol: "d", price: 9, ts: 1_500 }]);
  assert.deepEqual(rows.map((r) => [r.symbol, r.price, Number(r.rownum)]), [["b", 3, 1], ["c", 2, 2]]);
  engine.finish();
  assert.deepEqual(rows.slice(2).map((r) => [r.symbol, Number(r.rownum)]), [["d", 1]]);
  assert.match(engine.explain("SELECT * FROM (SELECT *, RANK() OVER (PARTITION BY window_start, window_end ORDER BY price) AS r FROM TUMBLE(trades, ts, INTERVAL '1' SECOND)) WHERE r <= 3"), /WindowRank: rank\(\).*top 3/);
  engine.close();
});

// Issue 20: an event-time temporal join in the wasm build.
test("a temporal join gives each order the rate valid at its time", async () => {
  const engine = await Riffle.create();
  await engine.sql(`CREATE STREAM rates (currency VARCHAR, rate DOUBLE, ts TIMESTAMP(3),
    PRIMARY KEY (currency) NOT ENFORCED, WATERMARK FOR ts AS ts - INTERVAL '1' SECOND)`);
  await engine.sql("CREATE STREAM orders (id BIGINT, amount DOUBLE, currency VARCHAR, ts TIMESTAMP(3), WATERMARK FOR ts AS ts - INTERVAL '1' SECOND)");
  const query = engine.query(`SELECT o.id, o.amount * r.rate AS converted FROM orders AS o
    LEFT JOIN rates FOR SYSTEM_TIME AS OF o.ts AS r ON o.currency = r.currency`);
  const rows = [];
  query.subscribe((batch) => rows.push(...batch));
  engine.push("rates", [{ currency: "EUR", rate: 2, ts: 1_000 }, { currency: "EUR", rate: 3, ts: 3_000 }]);
  engine.push("orders", [{ id: 1, amount: 10, currency: "EUR", ts: 2_000 }, { id: 2, amount: 10, currency: "GBP", ts: 2_500 }, { id: 3, amount: 10, currency: "EUR", ts: 3_000 }]);
  // Both watermarks at 2 s: order 1 is out; 2 and 3 wait for the rates.
  assert.deepEqual(rows, [{ id: 1, converted: 20 }]);
  engine.push("rates", [{ currency: "EUR", rate: 4, ts: 9_000 }]);
  engine.push("orders", [{ id: 4, amount: 1, currency: "EUR", ts: 9_500 }]);
  assert.deepEqual(rows.map((r) => [r.id, r.converted]).sort((a, b) => a[0] - b[0]), [[1, 20], [2, null], [3, 30]]);
  assert.equal(rows.length, 3, "order 4 waits");
  engine.finish();
  assert.deepEqual(rows.at(-1), { id: 4, converted: 4 });
  assert.equal(query.metrics().joins[0].right.rowsHeld, 1, "one rate per currency kept");
  assert.match(engine.explain("SELECT o.id FROM orders AS o JOIN rates FOR SYSTEM_TIME AS OF o.ts AS r ON o.currency = r.currency"), /TemporalJoin/);
  engine.close();
});
