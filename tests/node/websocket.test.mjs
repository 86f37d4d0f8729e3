// The WebSocket source against the local event server (a real `ws` server on
// 127.0.0.1): every event counted once through server crashes, engine
// restores, malformed and late lines, oversized messages and Arrow frames.
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { once } from "node:events";
import { createInterface } from "node:readline";
import { test } from "node:test";
import { tableFromArrays, tableToIPC } from "apache-arrow";
import { WebSocket, WebSocketServer } from "ws";
import { MemoryStore, Riffle, RiffleError } from "riffle-sql";
import { logEntry, logText, resolveConfig, startEventServer } from "../../demo/event-server.mjs";

const DDL = `CREATE STREAM trades (seq BIGINT, symbol VARCHAR NOT NULL, price DOUBLE, qty BIGINT, ts BIGINT,
  WATERMARK FOR ts AS ts - INTERVAL '1' SECOND) WITH (bad_rows = 'dead_letter')`;
const QUERY = `SELECT symbol, window_start, count(*) AS n, sum(qty) AS qty, sum(seq) AS seqs
  FROM TUMBLE(trades, ts, INTERVAL '1' SECOND) GROUP BY symbol, window_start`;
const EPOCH = 1_700_000_000_000;
const subscribe = (from) => JSON.stringify({ subscribe: "trades", from: Number(from ?? 0) });

async function engineWith() {
  const engine = await Riffle.create({ tickIntervalMs: 0 });
  await engine.sql(DDL);
  return engine;
}

/** Results of the query over lines [0, total) pushed at once: the reference. */
async function reference(config) {
  const engine = await Riffle.create({ tickIntervalMs: 0 });
  await engine.sql(DDL);
  const query = engine.query(QUERY);
  const rows = [];
  query.subscribe((r) => rows.push(...r));
  engine.pushJson("trades", logText(config, 0, config.total));
  engine.finish();
  const metrics = query.metrics();
  engine.close();
  return { rows: sorted(rows), metrics };
}

function sorted(rows) {
  return rows.map((r) => `${r.symbol}|${r.window_start}|${r.n}|${r.qty}|${r.seqs}`).sort();
}

/** Collects a query's rows. */
function collect(engine, query) {
  const rows = [];
  query.subscribe((r) => rows.push(...r));
  return rows;
}

async function until(condition, what, timeoutMs = 30_000) {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

/** Lines the engine has accounted for: accepted, dropped as bad, or late. */
function accounted(query) {
  const m = query.metrics();
  return m.eventsIn + m.badRows;
}

test("events from the event server match the same log pushed at once, bad lines reported", async () => {
  const server = await startEventServer({ seed: 7, rate: 4000, total: 3000, epoch: EPOCH, spacingMs: 7, lateFraction: 0.02, malformedFraction: 0.02, batchMs: 20, maxBatch: 300 });
  const expected = await reference(server.config);
  const engine = await Riffle.create({ tickIntervalMs: 0 });
  await engine.sql(DDL);
  const query = engine.query(QUERY);
  const rows = collect(engine, query);
  const letters = [];
  engine.subscribeDeadLetters((l) => letters.push(...l));
  const connection = engine.connect("trades", { url: server.url, WebSocket, subscribe });
  await connection.when("open");
  await until(() => accounted(query) === 3000, "3000 lines");
  engine.finish();
  assert.deepEqual(sorted(rows), expected.rows);
  assert.ok(expected.rows.length > 20, "windows were produced");
  const malformed = Array.from({ length: 3000 }, (_, i) => logEntry(server.config, i)).filter((e) => e.kind === "malformed");
  assert.ok(malformed.length > 20);
  assert.equal(letters.length, malformed.length, "every malformed line is a dead letter");
  assert.equal(query.metrics().lateEventsDropped, expected.metrics.lateEventsDropped);
  assert.ok(query.metrics().lateEventsDropped > 0, "late lines were dropped");
  assert.equal(connection.position, "3000");
  assert.ok(connection.stats().messages >= 10, "fed in many messages");
  engine.close();
  assert.equal(connection.state, "closed", "closing the engine closes its connections");
  await server.close();
});

/** Starts the event server as a child process; resolves with its first line. */
async function serverProcess(args) {
  const child = spawn(process.execPath, [new URL("../../demo/event-server.mjs", import.meta.url).pathname, ...args.map(String)], { stdio: ["ignore", "pipe", "inherit"] });
  const [line] = await once(createInterface({ input: child.stdout }), "line");
  return { child, info: JSON.parse(line) };
}

test("a server killed mid-stream and restarted: no event lost or counted twice", async () => {
  const startAt = Date.now();
  const args = ["--seed", 3, "--rate", 2500, "--total", 5000, "--epoch", EPOCH, "--spacing", 5, "--startAt", startAt, "--batchMs", 20, "--malformed", 0.01];
  let { child, info } = await serverProcess(["--port", 0, ...args]);
  const config = resolveConfig({ seed: 3, rate: 2500, total: 5000, epoch: EPOCH, spacingMs: 5, startAt, malformedFraction: 0.01 });
  const expected = await reference(config);

  const engine = await Riffle.create({ tickIntervalMs: 0 });
  await engine.sql(DDL);
  const query = engine.query(QUERY);
  const rows = collect(engine, query);
  const connection = engine.connect("trades", {
    url: info.url,
    WebSocket,
    subscribe,
    reconnect: { initialDelayMs: 50, maxDelayMs: 400 },
  });
  const states = [];
  connection.onState((s) => states.push(s));
  await until(() => accounted(query) >= 1500, "the first 1500 lines");
  child.kill("SIGKILL");
  await once(child, "exit");
  const before = accounted(query);
  assert.ok(before < 5000, "killed mid-stream");
  await until(() => connection.state === "reconnecting", "the drop to be noticed");
  await new Promise((resolve) => setTimeout(resolve, 300));
  ({ child } = await serverProcess(["--port", info.port, ...args]));
  await until(() => accounted(query) === 5000, "all 5000 lines after the restart");
  await new Promise((resolve) => setTimeout(resolve, 100));
  assert.equal(accounted(query), 5000, "nothing counted twice");
  engine.finish();
  assert.deepEqual(sorted(rows), expected.rows);
  assert.ok(connection.stats().reconnects >= 1);
  assert.ok(states.includes("reconnecting") && states.at(-1) === "open", states.join(","));
  engine.close();
  child.kill("SIGTERM");
  await once(child, "exit");
});

test("after a crash, a restored engine resumes from its checkpoint's position", async () => {
  const server = await startEventServer({ seed: 11, rate: 3000, total: 4000, epoch: EPOCH, spacingMs: 6, batchMs: 20, maxBatch: 250 });
  const expected = await reference(server.config);
  const store = new MemoryStore();
  let query;
  const setup = async (e) => {
    await e.sql(DDL);
    query = e.query(QUERY);
  };
  const first = await Riffle.create({ tickIntervalMs: 0, store, setup });
  const firstRows = collect(first, query);
  const connectionA = first.connect("trades", { url: server.url, WebSocket, subscribe });
  await until(() => Number(connectionA.position ?? 0) >= 1500, "1500 lines in the first engine");
  await first.checkpoint();
  await until(() => Number(connectionA.position ?? 0) >= 2500, "more lines after the checkpoint");
  first.close(); // a crash: what came after the checkpoint is lost with the engine

  const second = await Riffle.create({ tickIntervalMs: 0, store, setup });
  const resumeFrom = second.restored?.resumeTokens.trades;
  assert.ok(Number(resumeFrom) >= 1500 && Number(resumeFrom) < 2500, `resume from ${resumeFrom}`);
  const secondRows = collect(second, query);
  const connectionB = second.connect("trades", { url: server.url, WebSocket, subscribe });
  assert.equal(connectionB.position, resumeFrom, "asks for the restored position");
  await until(() => connectionB.position === "4000", "the rest of the log");
  second.finish();
  // Output is at-least-once with stable identities: windows the first engine emitted after its
  // checkpoint come again, with the same values; together they are the reference, once each.
  const byWindow = new Map();
  for (const row of sorted(firstRows)) byWindow.set(row.split("|").slice(0, 2).join("|"), row);
  for (const row of sorted(secondRows)) {
    const key = row.split("|").slice(0, 2).join("|");
    if (byWindow.has(key)) assert.equal(byWindow.get(key), row, "a repeated window has the same values");
    byWindow.set(key, row);
  }
  assert.deepEqual([...byWindow.values()].sort(), expected.rows);
  second.close();
  await server.close();
});

test("reconnects back off with jitter and give up after maxAttempts", async () => {
  const blocker = new WebSocketServer({ host: "127.0.0.1", port: 0 });
  await once(blocker, "listening");
  const port = blocker.address().port;
  await new Promise((resolve) => blocker.close(resolve));
  const engine = await engineWith();
  const times = [];
  const connection = engine.connect("trades", {
    url: `ws://127.0.0.1:${port}/`,
    WebSocket,
    reconnect: { initialDelayMs: 40, factor: 2, jitter: 0, maxAttempts: 3 },
  });
  const errors = [];
  connection.onError((e) => {
    errors.push(e);
    times.push(performance.now());
  });
  await connection.when("closed", 10_000);
  assert.ok(errors.every((e) => e instanceof RiffleError && e.code === "CONNECTION"));
  assert.match(errors.at(-1).message, /gave up after 3/);
  // Failures at t0, t0+40, t0+120, t0+280 (plus connect time): delays double.
  const gaps = times.slice(1, 4).map((t, i) => t - times[i]);
  assert.ok(gaps[0] >= 35 && gaps[1] >= 75 && gaps[2] >= 155, gaps.join(","));
  assert.ok(gaps[2] > gaps[1] && gaps[1] > gaps[0], gaps.join(","));
  engine.close();
});

test("oversized NDJSON is pushed in pieces, an oversized line or array is reported, Arrow frames are read", async () => {
  const wss = new WebSocketServer({ host: "127.0.0.1", port: 0 });
  await once(wss, "listening");
  const lines = Array.from({ length: 500 }, (_, i) => JSON.stringify({ seq: i, symbol: "A", price: 1, qty: 1, ts: EPOCH + i }));
  const big = lines.join("\n");
  const hugeLine = JSON.stringify({ seq: 1, symbol: "B".repeat(5000), price: 1, qty: 1, ts: EPOCH });
  const array = `[${lines.slice(0, 300).join(",")}]`;
  const arrow = tableToIPC(
    tableFromArrays({ seq: BigInt64Array.from([1n, 2n]), symbol: ["X", "Y"], price: Float64Array.from([1, 2]), qty: BigInt64Array.from([3n, 4n]), ts: BigInt64Array.from([BigInt(EPOCH), BigInt(EPOCH + 1)]) }),
    "stream",
  );
  wss.on("connection", (socket, request) => {
    if (request.url.includes("arrow")) {
      socket.send(arrow);
      socket.send("text is not arrow");
      return;
    }
    socket.send(big);
    socket.send(hugeLine);
    socket.send(array);
  });
  const url = `ws://127.0.0.1:${wss.address().port}`;

  const engine = await Riffle.create({ tickIntervalMs: 0 });
  await engine.sql(DDL);
  const query = engine.query(QUERY);
  const errors = [];
  const text = engine.connect("trades", { url: `${url}/text`, WebSocket, maxMessageBytes: 4096, reconnect: false });
  text.onError((e) => errors.push(e));
  await until(() => text.stats().messages === 3, "three messages");
  assert.equal(query.metrics().eventsIn, 500, "the big message arrived whole, in pieces");
  assert.deepEqual(errors.map((e) => e.code), ["MESSAGE_TOO_LARGE", "MESSAGE_TOO_LARGE"]);
  assert.equal(text.position, String(500 + 1 + 1), "positions count lines, skipped ones too");
  text.close();

  const arrowErrors = [];
  const binary = engine.connect("trades", { url: `${url}/arrow`, WebSocket, format: "arrow", reconnect: false });
  binary.onError((e) => arrowErrors.push(e));
  await until(() => binary.stats().messages === 2, "two messages");
  assert.equal(query.metrics().eventsIn, 502, "the Arrow frame's two rows");
  assert.equal(arrowErrors[0].code, "INVALID_INPUT");
  engine.close();
  await new Promise((resolve) => wss.close(resolve));
});

test("without a WebSocket class the error says what to pass", { skip: typeof globalThis.WebSocket === "function" }, async () => {
  const engine = await engineWith();
  assert.throws(() => engine.connect("trades", { url: "ws://127.0.0.1:9/" }), (e) => e instanceof RiffleError && e.code === "NO_WEBSOCKET" && /ws/.test(e.message));
  engine.close();
});
