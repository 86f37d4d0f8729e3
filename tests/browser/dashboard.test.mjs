// The live dashboard end to end: the demo server (event feed + www/) on
// 127.0.0.1, the page in headless Chromium. The table's numbers must equal
// the same query run at once on the lines the server sent; after a reload
// the restored page must continue with no gap and no double count.
import assert from "node:assert/strict";
import { mkdirSync } from "node:fs";
import { test } from "node:test";
import { fileURLToPath } from "node:url";

import { chromium } from "playwright-core";
import { Riffle } from "riffle-sql";

import { logText } from "../../demo/event-server.mjs";
import { startDemo } from "../../demo/serve.mjs";

const artifacts = fileURLToPath(new URL("../../.artifacts/", import.meta.url));

/** What the page's query emits for lines [from, to) pushed at once (windows closed by then). */
async function reference(config, ddl, sql, from, to) {
  const engine = await Riffle.create({ tickIntervalMs: 0 });
  await engine.sql(ddl);
  const query = engine.query(sql);
  const rows = [];
  query.subscribe((r) => rows.push(...r));
  engine.pushJson("trades", logText(config, from, to));
  engine.close();
  return rows;
}

const id = (row) => `${row.symbol}|${row.window_start}|${row.window_end}`;

async function waitFor(page, predicate, arg, what) {
  try {
    await page.waitForFunction(predicate, arg, { timeout: 60_000, polling: 100 });
  } catch (error) {
    throw new Error(`timed out waiting for ${what}: ${error.message}`);
  }
}

/** Pauses the feed and reads what the page computed, all in one turn of its event loop. */
async function pauseAndRead(page) {
  await page.click("#pause");
  await waitFor(page, () => window.__demo.stats().state === "paused", null, "the feed to pause");
  return page.evaluate(() => ({
    position: window.__demo.stats().position,
    history: window.__demo.history(),
    sql: document.getElementById("sql").value,
    table: [...document.querySelectorAll("#results tbody tr")].map((tr) => ({
      id: tr.dataset.id,
      cells: Object.fromEntries([...tr.cells].map((td) => [td.dataset.column, td.textContent])),
    })),
  }));
}

test("the dashboard shows correct windows live and continues after a reload", { timeout: 240_000 }, async () => {
  // Event time runs 5x faster than the wall clock (from ten minutes ago) so windows close quickly.
  const demo = await startDemo({ port: 0, rate: 500, spacingMs: 10, epoch: Date.now() - 600_000, keys: 4, lateFraction: 0.005, malformedFraction: 0.003 });
  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM_PATH ?? "/usr/bin/chromium",
    headless: true,
    args: ["--disable-gpu", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"],
  });
  try {
    const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
    const errors = [];
    page.on("pageerror", (error) => errors.push(error));
    await page.goto(demo.url);
    await waitFor(page, () => window.__demo?.ready === true, null, "the engine");
    const first = await page.evaluate(() => window.__demo.startedFrom());
    await waitFor(page, () => window.__demo.history().length >= 12, null, "a dozen windows");
    await waitFor(page, () => document.querySelectorAll("#results tbody tr").length >= 12, null, "the table");
    await waitFor(page, () => window.__demo.chartPoints() >= 3 && document.querySelector("#chart canvas")?.width > 0, null, "the chart");
    await waitFor(page, () => document.getElementById("rate").textContent !== "–", null, "the rate");

    const ddl = await page.evaluate(() => window.__demo.ddl);
    const before = await pauseAndRead(page);
    const expectedBefore = await reference(demo.events.config, ddl, before.sql, Number(first), Number(before.position));
    assert.ok(expectedBefore.length >= 12);
    assert.deepEqual(before.history.map(id).sort(), expectedBefore.map(id).sort(), "the same windows as the query run at once");
    const byId = new Map(expectedBefore.map((row) => [id(row), row]));
    for (const row of before.table) {
      const expected = byId.get(row.id);
      assert.ok(expected, `table row ${row.id} is a real window`);
      assert.equal(Number(row.cells.trades), expected.trades, `trades of ${row.id}`);
      assert.equal(Number(row.cells.volume), expected.volume, `volume of ${row.id}`);
    }
    // Show the policies at work: late events are counted, malformed ones listed.
    await page.click("#inject-late");
    await page.click("#inject-bad");
    await waitFor(page, () => document.querySelectorAll("#letters li").length >= 3, null, "the dead letters");
    const late = Number((await page.textContent("#late")).replace(/\D/g, ""));
    assert.ok(late >= 5, `late events shown: ${late}`);
    mkdirSync(artifacts, { recursive: true });
    await page.screenshot({ path: `${artifacts}dashboard.png`, fullPage: true });
    await page.click("#pause"); // resume the feed

    await waitFor(page, () => window.__demo.history().length >= 20, null, "more windows");
    await page.click("#reload");
    await page.waitForEvent("load");
    await waitFor(page, () => window.__demo?.ready === true && window.__demo.restored() !== null, null, "the restored engine");
    const restoredCount = await page.evaluate(() => window.__demo.history().length);
    assert.ok(restoredCount >= 20, `the chart's past came back: ${restoredCount} windows`);
    await waitFor(page, (n) => window.__demo.history().length >= n + 8, restoredCount, "windows after the reload");
    const after = await pauseAndRead(page);
    const expectedAfter = await reference(demo.events.config, ddl, after.sql, Number(first), Number(after.position));
    const want = new Map(expectedAfter.map((row) => [id(row), row]));
    assert.deepEqual(after.history.map(id).sort(), [...want.keys()].sort(), "no window missing, none twice");
    for (const row of after.history) assert.deepEqual(row, want.get(id(row)), `values of ${id(row)} across the reload`);
    await page.screenshot({ path: `${artifacts}dashboard-after-reload.png`, fullPage: true });
    assert.deepEqual(errors, []);
  } finally {
    await browser.close();
    await demo.close();
  }
});
