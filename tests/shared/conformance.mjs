// The conformance suite every runtime runs (Node, Chromium, Deno, workerd):
// create, DDL, query, push in each format, results against a reference,
// and the typed errors of bad input. Runtime-neutral: no Node APIs.
import { logText, resolveConfig } from "../../demo/event-log.mjs";
import { ARROW_COUNT, ARROW_SEED, TRADES_ARROW_BASE64 } from "./fixtures.mjs";
import { DDL, QUERY, diffRows, generateTrades, referenceWindows, sortRows } from "./scenario.mjs";

/** The event server configuration the WebSocket check expects (a finite, fast log with bad and late lines). */
export const CONFORMANCE_FEED = { seed: 4, rate: 5000, total: 3000, epoch: 1_700_000_000_000, spacingMs: 4, lateFraction: 0.01, malformedFraction: 0.01, batchMs: 20, maxBatch: 500 };

/** The stream and query the WebSocket check reads the event feed with. */
export const FEED_DDL = `CREATE STREAM trades (seq BIGINT, symbol VARCHAR NOT NULL, price DOUBLE, qty BIGINT, ts BIGINT,
  WATERMARK FOR ts AS ts - INTERVAL '1' SECOND) WITH (bad_rows = 'skip')`;
export const FEED_QUERY = `SELECT symbol, window_start, count(*) AS n, sum(qty) AS qty
  FROM TUMBLE(trades, ts, INTERVAL '1' SECOND) GROUP BY symbol, window_start`;

/**
 * Runs every check; resolves to `[{ name, failure }]` (failure null when it
 * passed). `webSocket: { url, config, WebSocket? }` adds the WebSocket source
 * check against a running event server serving `config`'s log.
 */
export async function conformance(Riffle, RiffleError, options = {}) {
  const { wasm, webSocket } = options;
  const create = () => Riffle.create({ wasm, tickIntervalMs: 0 });
  const results = [];
  const check = async (name, run) => {
    try {
      const failure = await run();
      results.push({ name, failure: failure ?? null });
    } catch (error) {
      results.push({ name, failure: `threw ${error && error.stack ? error.stack : error}` });
    }
  };
  const expectCode = async (code, run) => {
    try {
      await run();
    } catch (error) {
      if (!(error instanceof RiffleError)) return `threw a ${error?.constructor?.name}, not a RiffleError: ${error}`;
      return error.code === code ? null : `code ${error.code} (${error.message}), expected ${code}`;
    }
    return `did not throw ${code}`;
  };
  /** Pushes with `push(engine)` and compares the windows with the reference of `trades`. */
  const windowsOf = async (trades, push) => {
    const engine = await create();
    await engine.sql(DDL);
    const query = engine.query(QUERY);
    const rows = [];
    query.subscribe((r) => rows.push(...r));
    push(engine);
    engine.finish();
    engine.close();
    return diffRows(sortRows(rows), referenceWindows(trades));
  };
  const trades = generateTrades(9, 2_000);

  await check("JS objects", () => windowsOf(trades, (e) => e.push("trades", trades)));
  await check("NDJSON text", () => windowsOf(trades, (e) => e.pushJson("trades", trades.map((t) => JSON.stringify(t)).join("\n"))));
  await check("JSON array text", () =>
    windowsOf(trades, (e) => {
      for (let i = 0; i < trades.length; i += 500) e.pushJson("trades", JSON.stringify(trades.slice(i, i + 500), null, 1));
    }),
  );
  await check("Arrow IPC bytes", () => {
    const bytes = Uint8Array.from(atob(TRADES_ARROW_BASE64), (c) => c.charCodeAt(0));
    return windowsOf(generateTrades(ARROW_SEED, ARROW_COUNT), (e) => e.pushArrow("trades", bytes));
  });
  await check("ISO strings and Dates as event time", () =>
    windowsOf(trades, (e) => {
      e.push("trades", trades.slice(0, 1000).map((t) => ({ ...t, ts: new Date(t.ts) })));
      e.push("trades", trades.slice(1000).map((t) => ({ ...t, ts: new Date(t.ts).toISOString() })));
    }),
  );
  await check("snapshot and restore into a fresh engine", async () => {
    const run = async (cut) => {
      const rows = [];
      let engine = await create();
      await engine.sql(DDL);
      engine.query(QUERY).subscribe((r) => rows.push(...r));
      engine.push("trades", trades.slice(0, cut));
      if (cut < trades.length) {
        const snapshot = engine.snapshot();
        engine.close();
        engine = await create();
        await engine.sql(DDL);
        engine.query(QUERY).subscribe((r) => rows.push(...r));
        const { offsets } = engine.restoreSnapshot(snapshot);
        if (offsets.trades !== cut) throw new Error(`offset ${offsets.trades}, expected ${cut}`);
        engine.push("trades", trades.slice(cut));
      }
      engine.finish();
      engine.close();
      // Windows emitted before the snapshot are not emitted again: the union is the reference.
      return sortRows(rows);
    };
    return diffRows(await run(777), referenceWindows(trades));
  });

  await check("a lookup join reads a table upserted from JS, across a snapshot", async () => {
    const TABLE = "CREATE TABLE names (symbol VARCHAR, name VARCHAR, PRIMARY KEY (symbol))";
    const JOINED = "SELECT t.symbol, t.ts, n.name FROM trades AS t LEFT JOIN names AS n ON t.symbol = n.symbol";
    const setUp = async () => {
      const engine = await create();
      await engine.sql(DDL);
      await engine.sql(TABLE);
      const rows = [];
      engine.query(JOINED).subscribe((r) => rows.push(...r));
      return { engine, rows };
    };
    const names = new Map();
    const expected = [];
    const reference = (batch) => {
      for (const t of batch) expected.push({ symbol: t.symbol, ts: t.ts, name: names.get(t.symbol) ?? null });
    };
    const first = await setUp();
    const symbols = [...new Set(trades.map((t) => t.symbol))];
    first.engine.upsert("names", symbols.slice(1).map((symbol) => ({ symbol, name: `${symbol} Inc.` })));
    for (const symbol of symbols.slice(1)) names.set(symbol, `${symbol} Inc.`);
    first.engine.push("trades", trades.slice(0, 500));
    reference(trades.slice(0, 500));
    first.engine.delete("names", [{ symbol: symbols[1] }]);
    names.delete(symbols[1]);
    const snapshot = first.engine.snapshot();
    first.engine.close();
    const second = await setUp();
    second.engine.restoreSnapshot(snapshot);
    second.engine.push("trades", trades.slice(500, 900));
    reference(trades.slice(500, 900));
    const size = second.engine.tableSize("names");
    second.engine.close();
    if (size !== symbols.length - 2) return `the restored table holds ${size} rows, expected ${symbols.length - 2}`;
    const lines = (rows) => rows.map((r) => JSON.stringify([r.symbol, r.ts, r.name])).sort();
    const [actual, wanted] = [lines([...first.rows, ...second.rows]), lines(expected)];
    if (actual.length !== wanted.length) return `${actual.length} rows, expected ${wanted.length}`;
    const at = actual.findIndex((line, i) => line !== wanted[i]);
    return at < 0 ? null : `row ${at}: ${actual[at]}, expected ${wanted[at]}`;
  });
  await check("bad SQL is SQL_PARSE", async () => {
    const engine = await create();
    try {
      return await expectCode("SQL_PARSE", () => engine.sql("CREATE STREAM ("));
    } finally {
      engine.close();
    }
  });
  await check("an unknown table is UNKNOWN_STREAM", async () => {
    const engine = await create();
    try {
      return await expectCode("UNKNOWN_STREAM", () => engine.query("SELECT * FROM missing"));
    } finally {
      engine.close();
    }
  });
  await check("pushing to an unknown stream is UNKNOWN_STREAM", async () => {
    const engine = await create();
    try {
      return await expectCode("UNKNOWN_STREAM", () => engine.pushJson("nope", '{"a":1}'));
    } finally {
      engine.close();
    }
  });
  await check("malformed JSON is INVALID_INPUT and changes nothing", async () => {
    const engine = await create();
    await engine.sql(DDL);
    const query = engine.query(QUERY);
    try {
      const failure = await expectCode("INVALID_INPUT", () => engine.pushJson("trades", '{"symbol":"A","price":1,"ts":1000}\n{"symbol":'));
      if (failure) return failure;
      return query.metrics().eventsIn === 0 ? null : `eventsIn ${query.metrics().eventsIn} after a rejected push`;
    } finally {
      engine.close();
    }
  });
  await check("a mistyped field names the row and the field", async () => {
    const engine = await create();
    await engine.sql(DDL);
    try {
      engine.pushJson("trades", '{"symbol":"A","price":1,"ts":1000}\n{"symbol":"B","price":"high","ts":2000}');
      return "accepted a string price";
    } catch (error) {
      if (!(error instanceof RiffleError) || error.code !== "INVALID_INPUT") return `unexpected ${error}`;
      return /price/.test(error.message) ? null : `message does not name the field: ${error.message}`;
    } finally {
      engine.close();
    }
  });
  await check("dead letters keep the good rows and report the bad", async () => {
    const engine = await create();
    await engine.sql(`${DDL.trim()} WITH (bad_rows = 'dead_letter', max_future = INTERVAL '1' HOUR)`);
    const query = engine.query(QUERY);
    const letters = [];
    engine.subscribeDeadLetters((l) => letters.push(...l));
    const now = Date.now();
    engine.pushJson(
      "trades",
      [
        `{"symbol":"A","price":1,"ts":${now}}`,
        `{"symbol":"A","price":"x","ts":${now}}`,
        `{"symbol":"B","price":2,"ts":null}`,
        `{"symbol":"B","price":2,"ts":${now + 10 * 365 * 86_400_000}}`,
        `not json`,
        `{"symbol":"C","price":3,"ts":${now + 1}}`,
      ].join("\n"),
    );
    const rows = letters.map((l) => l.row).sort((a, b) => a - b).join(",");
    const { eventsIn, badRows } = query.metrics();
    engine.close();
    if (rows !== "1,2,3,4") return `dead letter rows ${rows}, expected 1,2,3,4`;
    return eventsIn === 2 && badRows === 4 ? null : `eventsIn ${eventsIn}, badRows ${badRows}; expected 2 and 4`;
  });
  await check("a damaged snapshot is CORRUPT_CHECKPOINT", async () => {
    const engine = await create();
    await engine.sql(DDL);
    engine.query(QUERY);
    engine.push("trades", trades.slice(0, 100));
    const snapshot = engine.snapshot();
    snapshot[Math.floor(snapshot.length / 2)] ^= 0xff;
    engine.close();
    const fresh = await create();
    await fresh.sql(DDL);
    fresh.query(QUERY);
    try {
      return await expectCode("CORRUPT_CHECKPOINT", () => fresh.restoreSnapshot(snapshot));
    } finally {
      fresh.close();
    }
  });
  await check("a closed engine is ENGINE_CLOSED", async () => {
    const engine = await create();
    engine.close();
    return expectCode("ENGINE_CLOSED", () => engine.pushJson("trades", "{}"));
  });

  if (webSocket) {
    await check("WebSocket source against the event server", async () => {
      const config = resolveConfig({ ...webSocket.config, total: webSocket.config.total ?? Infinity });
      const expected = await feedWindows(Riffle, wasm, (e) => e.pushJson("trades", logText(config, 0, config.total)));
      let connection;
      const actual = await feedWindows(Riffle, wasm, async (e) => {
        connection = e.connect("trades", {
          url: webSocket.url,
          subscribe: (from) => JSON.stringify({ subscribe: "trades", from: Number(from ?? 0) }),
          WebSocket: webSocket.WebSocket,
        });
        const deadline = Date.now() + 30_000;
        while (connection.position !== String(config.total)) {
          if (Date.now() > deadline) throw new Error(`stopped at ${connection.position} (${connection.state}, ${connection.stats().lastError?.message})`);
          await new Promise((resolve) => setTimeout(resolve, 20));
        }
      });
      if (actual.length === 0) return "no windows";
      return JSON.stringify(actual) === JSON.stringify(expected) ? null : `windows differ: ${actual.length} vs ${expected.length}`;
    });
  }
  return results;
}

async function feedWindows(Riffle, wasm, feed) {
  const engine = await Riffle.create({ wasm, tickIntervalMs: 0 });
  await engine.sql(FEED_DDL);
  const query = engine.query(FEED_QUERY);
  const rows = [];
  query.subscribe((r) => rows.push(...r));
  await feed(engine);
  engine.finish();
  engine.close();
  return rows.map((r) => `${r.symbol}|${r.window_start}|${r.n}|${r.qty}`).sort();
}
