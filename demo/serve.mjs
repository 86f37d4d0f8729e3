// The live demo: one HTTP server on 127.0.0.1 serving the dashboard (www/),
// the package (dist/, pkg/), uPlot from node_modules, and the event feed as
// a WebSocket on /events. Nothing is fetched from the internet.
//
//   node demo/serve.mjs [--port 8080] [--rate 200] [--keys 8] [--late 0.002] [--malformed 0.001]
import { readFile } from "node:fs/promises";
import { createServer } from "node:http";
import { extname, normalize } from "node:path";
import { fileURLToPath } from "node:url";

import { startEventServer } from "./event-server.mjs";

const root = fileURLToPath(new URL("..", import.meta.url));
const TYPES = {
  ".html": "text/html; charset=utf-8",
  ".js": "text/javascript; charset=utf-8",
  ".mjs": "text/javascript; charset=utf-8",
  ".css": "text/css; charset=utf-8",
  ".wasm": "application/wasm",
  ".map": "application/json",
  ".svg": "image/svg+xml",
};
/** URL prefix → directory under the repository. */
const ROUTES = [
  ["/vendor/uplot/", "node_modules/uplot/dist/"],
  ["/dist/", "dist/"],
  ["/pkg/", "pkg/"],
  ["/", "www/"],
];

/** Starts the demo; resolves to `{ url, events, close }`. */
export async function startDemo(options = {}) {
  const { port = 8080, ...feed } = options;
  let events;
  const http = createServer(async (request, response) => {
    const path = normalize(decodeURIComponent(new URL(request.url ?? "/", "http://x").pathname));
    if (path === "/api/feed") {
      // What the page needs to start live, and what tests need to recompute the log.
      response.writeHead(200, { "content-type": "application/json", "cache-control": "no-store" });
      response.end(JSON.stringify({ head: events.head(), config: events.config }));
      return;
    }
    const [prefix, dir] = ROUTES.find(([p]) => path.startsWith(p));
    const file = root + dir + (path.slice(prefix.length) || "index.html");
    try {
      const body = await readFile(file);
      response.writeHead(200, { "content-type": TYPES[extname(file)] ?? "application/octet-stream", "cache-control": "no-cache" });
      response.end(body);
    } catch {
      response.writeHead(404, { "content-type": "text/plain" }).end("not found\n");
    }
  });
  events = await startEventServer({ server: http, path: "/events", ...feed });
  await listen(http, port);
  const url = `http://127.0.0.1:${http.address().port}/`;
  return {
    url,
    events,
    async close() {
      await events.close();
      http.closeAllConnections?.();
      await new Promise((resolve) => http.close(resolve));
    },
  };
}

/** Listens on `port`, or on any free port when it is taken. */
function listen(http, port) {
  return new Promise((resolve, reject) => {
    http.once("error", (error) => {
      if (error.code !== "EADDRINUSE" || port === 0) return reject(error);
      http.listen(0, "127.0.0.1", resolve);
    });
    http.listen(port, "127.0.0.1", resolve);
  });
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const names = { port: "port", rate: "rate", keys: "keys", late: "lateFraction", malformed: "malformedFraction", disorder: "disorderMs" };
  const options = { lateFraction: 0.002, malformedFraction: 0.001 };
  const argv = process.argv.slice(2);
  for (let i = 0; i < argv.length; i += 2) {
    const key = names[argv[i].replace(/^--/, "")];
    if (!key) {
      console.error(`unknown option ${argv[i]}; options: ${Object.keys(names).map((n) => `--${n}`).join(" ")}`);
      process.exit(2);
    }
    options[key] = Number(argv[i + 1]);
  }
  const demo = await startDemo(options);
  const { rate, keys } = demo.events.config;
  console.log(`Riffle live dashboard: ${demo.url}`);
  console.log(`(event feed ${demo.events.url}: ${rate} trades/s over ${keys} symbols; Ctrl-C stops)`);
  const stop = () => demo.close().then(() => process.exit(0));
  process.on("SIGINT", stop);
  process.on("SIGTERM", stop);
}
