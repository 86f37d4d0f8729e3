// A local WebSocket event server for the demo and the tests: a replayable
// log of trade events, served on 127.0.0.1 only.
//
// Line `i` of the log is a pure function of the configuration and `i`, so
// any offset can be replayed, and a server restarted with the same `seed`
// and `epoch` serves exactly the same log. Lines become available at
// `rate` per second from `startAt`; late and malformed lines are mixed in by
// fraction. A client subscribes from an offset, either with `?from=N` in
// the URL or by sending `{"subscribe": "trades", "from": N}` (no `from`, or
// "latest": from the newest line), and receives
// NDJSON messages of consecutive lines (the resume position after a message
// is its first offset plus its line count).
//
//   node demo/event-server.mjs --port 8090 --rate 500 --late 0.01 --malformed 0.01
import { createServer } from "node:http";
import { WebSocketServer } from "ws";

import { DEFAULTS, logText, resolveConfig } from "./event-log.mjs";

export { DEFAULTS, logEntry, logText, resolveConfig, symbols } from "./event-log.mjs";

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
