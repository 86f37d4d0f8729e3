// The package loaded by a page on 127.0.0.1 in real headless Chromium
// (Debian's chromium driven by playwright-core).
import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import { createServer } from "node:http";
import { extname, normalize } from "node:path";
import { after, before, test } from "node:test";
import { fileURLToPath } from "node:url";

import { chromium } from "playwright-core";

import { startEventServer } from "../../demo/event-server.mjs";
import { CONFORMANCE_FEED as FEED } from "../shared/conformance.mjs";
import { diffRows, generateTrades, referenceWindows, sortRows } from "../shared/scenario.mjs";

const root = fileURLToPath(new URL("../..", import.meta.url));
const TYPES = { ".html": "text/html", ".js": "text/javascript", ".mjs": "text/javascript", ".wasm": "application/wasm", ".map": "application/json" };
const SERVED = ["/dist/", "/pkg/", "/tests/browser/", "/tests/shared/", "/demo/"];

let server;
let browser;
let origin;

before(async () => {
  server = createServer(async (request, response) => {
    const path = normalize(decodeURIComponent(new URL(request.url, "http://x").pathname));
    if (!SERVED.some((prefix) => path.startsWith(prefix))) {
      response.writeHead(404).end();
      return;
    }
    try {
      const body = await readFile(root + path.slice(1));
      const headers = { "content-type": TYPES[extname(path)] ?? "application/octet-stream" };
      // ?csp: a policy that allows wasm but no code generated from strings.
      if (new URL(request.url, "http://x").searchParams.has("csp")) {
        headers["content-security-policy"] = "script-src 'self' 'wasm-unsafe-eval' 'nonce-riffle-test'";
      }
      response.writeHead(200, headers).end(body);
    } catch {
      response.writeHead(404).end();
    }
  });
  await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
  origin = `http://127.0.0.1:${server.address().port}`;
  browser = await chromium.launch({
    executablePath: process.env.CHROMIUM_PATH ?? "/usr/bin/chromium",
    headless: true,
    args: ["--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"],
  });
});

after(async () => {
  await browser?.close();
  await new Promise((resolve) => server?.close(resolve));
});

for (const csp of [false, true]) {
  const name = csp
    ? "under a Content-Security-Policy without 'unsafe-eval' the same rows come out (built field by field)"
    : "the windowed query runs in headless Chromium and matches the reference";
  test(name, () => windowedQueryInChromium(csp));
}

async function windowedQueryInChromium(csp) {
  const page = await browser.newPage();
  const errors = [];
  page.on("pageerror", (error) => errors.push(error));
  await page.goto(`${origin}/tests/browser/index.html${csp ? "?csp" : ""}`);
  await page.waitForFunction(() => window.__result !== undefined, null, { timeout: 120_000 });
  const result = await page.evaluate(() => window.__result);
  assert.equal(result.failure, undefined, result.failure);
  assert.deepEqual(errors, []);
  assert.match(result.userAgent, /HeadlessChrome/);
  const trades = generateTrades(1, 5_000);
  assert.equal(diffRows(result.rows, referenceWindows(trades)), null);
  assert.ok(result.beforeFinish > 0);
  assert.equal(result.metrics.eventsIn, 5_000);
  assert.equal(result.metrics.lateEventsDropped, 0);
  assert.equal(result.errorCode, "UNKNOWN_STREAM");
  // The policy refused code generation to the page (and so to Riffle's row builder).
  assert.equal(result.codeGeneration, !csp);
  await page.close();
}

test("checkpoint to IndexedDB, reload the page, restore and replay: nothing lost, nothing counted twice", async () => {
  const page = await browser.newPage();
  const run = async (phase) => {
    await page.goto(`${origin}/tests/browser/checkpoint.html?phase=${phase}`);
    await page.waitForFunction(() => window.__result !== undefined, null, { timeout: 120_000 });
    const result = await page.evaluate(() => window.__result);
    assert.equal(result.failure, undefined, result.failure);
    return result;
  };
  const before = await run(1);
  const after = await run(2);
  assert.equal(after.start, 1_500, "replay starts at the checkpoint's offset");
  const trades = generateTrades(5, 3_000);
  assert.equal(diffRows(sortRows([...before.rows, ...after.rows]), referenceWindows(trades)), null);
  await page.close();
});

test("conformance suite in Chromium, with the WebSocket source against the event server", async () => {
  const feed = await startEventServer(FEED);
  const page = await browser.newPage();
  try {
    const errors = [];
    page.on("pageerror", (error) => errors.push(error));
    const query = new URLSearchParams({ ws: feed.url, config: JSON.stringify(feed.config) });
    await page.goto(`${origin}/tests/browser/conformance.html?${query}`);
    await page.waitForFunction(() => window.__result !== undefined, null, { timeout: 120_000 });
    const result = await page.evaluate(() => window.__result);
    assert.equal(result.failure, undefined, result.failure);
    assert.ok(result.results.length >= 15, `${result.results.length} checks`);
    assert.deepEqual(result.results.filter((r) => r.failure !== null), []);
    assert.deepEqual(errors, []);
  } finally {
    await page.close();
    await feed.close();
  }
});
