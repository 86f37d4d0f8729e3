// A local WebSocket event server for the demo and the tests: a replayable
// log of trade events, served on 127.0.0.1 only.
//
// Line `i` of the log is a pure function of the configuration and `i`, so
// any offset can be replayed, and a server restarted with the same `seed`
// and `epoch` serves exactly the same log. Lines become available at
// `rate` per second from `epoch`; late and malformed lines are mixed in by
// fraction. A client subscribes from an offset, either with `?from=N` in
// the URL or by sending `{"subscribe": "trades", "from": N}` (no `from`, or
// "latest": from the newest line), and receives
// NDJSON messages of consecutive lines (the resume position after a message
// is its first offset plus its line count).
//
//   node demo/event-server.mjs --port 8090 --rate 500 --late 0.01 --malformed 0.01
import { createServer } from "node:http";
import { WebSocketServer } from "ws";

const SYMBOLS = ["AAPL", "MSFT", "NVDA", "AMZN", "GOOG", "META", "TSLA", "NFLX", "AMD", "INTC", "ORCL", "IBM"];

/** Every option, with its default. `epoch` defaults to the start time. */
export const DEFAULTS = Object.freeze({
  seed: 1,
  /** Lines per second made available. */
  rate: 200,
  /** Event time between consecutive lines; default 1000 / rate. */
  spacingMs: undefined,
  /** Distinct symbols. */
  keys: 8,
  /** Events arrive up to this much earlier in event time than their slot. */
  disorderMs: 500,
  /** Fraction of lines that are late by `lateMs`. */
  lateFraction: 0,
  lateMs: 120_000,
  /** Fraction of lines that are malformed (bad JSON, wrong types, missing or null time). */
  malformedFraction: 0,
  /** Log length; Infinity for an endless feed. */
  total: Infinity,
  /** How often clients are sent what became available. */
  batchMs: 50,
  /** Most lines in one message (a replaying client catches up in steps). */
  maxBatch: 2000,
  /** Wall-clock time (epoch ms) line 0 became available; default now. */
  startAt: undefined,
  /** Event time of line 0 (epoch ms); default `startAt`. */
  epoch: undefined,
});

/** The symbol names the log uses for `keys` distinct keys. */
export function symbols(keys) {
  return Array.from({ length: keys }, (_, k) => SYMBOLS[k] ?? `SYM${k}`);
}

/** A generator of the deterministic per-line randomness: same (seed, i), same numbers. */
function randomFor(seed, i) {
  let state = (Math.imul(seed >>> 0, 0x9e3779b1) ^ Math.imul(i + 1, 0x85ebca6b)) >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = Math.imul(state ^ (state >>> 15), state | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Fills in defaults; `epoch` becomes a number. */
export function resolveConfig(options = {}) {
  const config = { ...DEFAULTS, ...Object.fromEntries(Object.entries(options).filter(([, v]) => v !== undefined)) };
  config.startAt ??= Date.now();
  config.epoch ??= config.startAt;
  config.spacingMs ??= 1000 / config.rate;
  return config;
}

/**
 * Line `i` of the log: `kind` is "event", "late" or "malformed"; `event` is
 * the object a good or late line holds; `line` is the text sent.
 */
export function logEntry(config, i) {
  const random = randomFor(config.seed, i);
  const k = Math.floor(random() * config.keys);
  const symbol = symbols(config.keys)[k];
  const base = 50 + 40 * k;
  const price = Math.round(base * (1 + 0.05 * Math.sin(i / 400 + k)) * 100 + random() * 100) / 100;
  const qty = 1 + Math.floor(random() * 100);
  let ts = Math.floor(config.epoch + i * config.spacingMs - random() * config.disorderMs);
  const roll = random();
  if (roll < config.malformedFraction) {
    const variants = [
      `{"seq":${i},"symbol":"${symbol}","price":`,
      `{"seq":${i},"symbol":"${symbol}","price":"n/a","qty":${qty},"ts":${ts}}`,
      `{"seq":${i},"symbol":"${symbol}","price":${price},"qty":${qty}}`,
      `{"seq":${i},"symbol":"${symbol}","price":${price},"qty":${qty},"ts":null}`,
      `not json at all ${i}`,
    ];
    return { kind: "malformed", line: variants[Math.floor(random() * variants.length)] };
  }
  const late = roll < config.malformedFraction + config.lateFraction;
  if (late) ts -= config.lateMs;
  const event = { seq: i, symbol, price, qty, ts };
  return { kind: late ? "late" : "event", event, line: JSON.stringify(event) };
}

/** Lines [from, to) of the log as NDJSON. */
export function logText(config, from, to) {
  const lines = [];
  for (let i = from; i < to; i++) lines.push(logEntry(config, i).line);
  return lines.join("\n");
}

/**
 * Starts the server. With `server` (a node:http Server) it serves WebSocket
 * upgrades on `path` of that server; otherwise it listens on its own port
 * (`port`, 0 for any) on 127.0.0.1. Resolves to a handle: `url`, `config`,
 * `head()` (lines available now), `pause()`, `resume()`, `clients()`, `close()`.
 */
export async function startEventServer(options = {}) {
  const { server: attachTo, path = "/events", port = 0, ...rest } = options;
  const config = resolveConfig(rest);
  let pausedAt = null;
  let pausedTotal = 0;
  const head = () => {
    const now = pausedAt ?? Date.now();
    const due = Math.floor(((now - pausedTotal - config.startAt) * config.rate) / 1000);
    return Math.max(0, Math.min(config.total, due));
  };

  const http = attachTo ?? createServer((_, response) => response.writeHead(426).end("WebSocket only\n"));
  const wss = new WebSocketServer({ server: http, path, maxPayload: 64 * 1024 });
  const clients = new Set();
  wss.on("connection", (socket, request) => {
    const client = { socket, cursor: null, sent: 0 };
    clients.add(client);
    const start = (from) => (from === undefined || from === null || from === "latest" ? head() : offset(from));
    const from = new URL(request.url ?? "/", "http://localhost").searchParams.get("from");
    if (from !== null) client.cursor = start(from);
    socket.on("message", (data, binary) => {
      if (binary) return;
      try {
        const message = JSON.parse(String(data));
        if (message && typeof message === "object") client.cursor = start(message.from);
      } catch {
        socket.close(1003, "expected a JSON subscribe message");
      }
    });
    socket.on("close", () => clients.delete(client));
    socket.on("error", () => clients.delete(client));
  });

  const timer = setInterval(() => {
    const available = head();
    for (const client of clients) {
      // Back off a client that does not read (bounded memory per client).
      if (client.cursor === null || client.socket.readyState !== 1 || client.socket.bufferedAmount > 4 << 20) continue;
      const end = Math.min(available, client.cursor + config.maxBatch);
      if (end <= client.cursor) continue;
      client.socket.send(logText(config, client.cursor, end));
      client.sent += end - client.cursor;
      client.cursor = end;
    }
  }, config.batchMs);

  if (!attachTo) await new Promise((resolve, reject) => http.once("error", reject).listen(port, "127.0.0.1", resolve));
  return {
    /** The feed's URL (once the HTTP server listens). */
    get url() {
      return `ws://127.0.0.1:${http.address().port}${path}`;
    },
    get port() {
      return http.address().port;
    },
    config,
    head,
    pause() {
      pausedAt ??= Date.now();
    },
    resume() {
      if (pausedAt === null) return;
      pausedTotal += Date.now() - pausedAt;
      pausedAt = null;
    },
    clients: () => [...clients].map((c) => ({ cursor: c.cursor, sent: c.sent })),
    /** Drops every connection abruptly (as a crash would) and stops listening. */
    async close() {
      clearInterval(timer);
      for (const client of clients) client.socket.terminate();
      clients.clear();
      await new Promise((resolve) => wss.close(resolve));
      if (!attachTo) await new Promise((resolve) => http.close(resolve));
    },
  };
}

function offset(value) {
  const n = Number(value);
  return Number.isSafeInteger(n) && n >= 0 ? n : 0;
}

function parseArgs(argv) {
  const names = { late: "lateFraction", malformed: "malformedFraction", disorder: "disorderMs", spacing: "spacingMs" };
  const options = {};
  for (let i = 0; i < argv.length; i += 2) {
    const flag = argv[i].replace(/^--/, "");
    const key = names[flag] ?? flag;
    if (!(key in DEFAULTS) && key !== "port") throw new Error(`unknown option ${argv[i]}`);
    options[key] = Number(argv[i + 1]);
  }
  return options;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const server = await startEventServer(parseArgs(process.argv.slice(2)));
  // One JSON line for whoever started us (tests read it).
  const { url, port, config } = server;
  console.log(JSON.stringify({ url, port, epoch: config.epoch, startAt: config.startAt, seed: config.seed }));
  const stop = () => server.close().then(() => process.exit(0));
  process.on("SIGINT", stop);
  process.on("SIGTERM", stop);
}
