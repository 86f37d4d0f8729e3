// Crash test: a child process killed with SIGKILL at random points, restarted
// from the file store and replaying from the offsets, ends with exactly the
// results of an uninterrupted run.
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { fileURLToPath } from "node:url";

import { diffRows, generateTrades, mulberry32, referenceWindows, sortRows } from "../shared/scenario.mjs";

const worker = fileURLToPath(new URL("./crash-worker.mjs", import.meta.url));
const EVENTS = 20_000;

function runWorker(dir, results, killAfterMs) {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [worker, dir, results, String(EVENTS)], { stdio: ["ignore", "ignore", "pipe"] });
    let stderr = "";
    child.stderr.on("data", (chunk) => (stderr += chunk));
    const timer = killAfterMs === undefined ? undefined : setTimeout(() => child.kill("SIGKILL"), killAfterMs);
    child.on("error", reject);
    child.on("exit", (code, signal) => {
      clearTimeout(timer);
      if (signal === "SIGKILL") resolve("killed");
      else if (code === 0) resolve("done");
      else reject(new Error(`worker failed (${code}): ${stderr}`));
    });
  });
}

test("SIGKILL at random points, restart from the file store: same results as an uninterrupted run", { timeout: 300_000 }, async () => {
  const expected = referenceWindows(generateTrades(21, EVENTS));
  const random = mulberry32(2026);
  // Time an uninterrupted run, so kills land inside runs on any machine.
  const timing = mkdtempSync(join(tmpdir(), "riffle-crash-"));
  const started = performance.now();
  await runWorker(join(timing, "store"), join(timing, "results.ndjson"));
  const runMs = performance.now() - started;
  rmSync(timing, { recursive: true, force: true });
  let totalKills = 0;
  for (let trial = 0; trial < 6; trial++) {
    const dir = mkdtempSync(join(tmpdir(), "riffle-crash-"));
    const results = join(dir, "results.ndjson");
    try {
      let kills = 0;
      // Kill up to three times at random moments, then let it finish.
      for (;;) {
        const killAt = kills < 3 ? Math.floor(runMs * (0.2 + 0.7 * random())) : undefined;
        const outcome = await runWorker(join(dir, "store"), results, killAt);
        if (outcome === "done") break;
        kills += 1;
      }
      const lines = existsSync(results) ? readFileSync(results, "utf8").trim().split("\n") : [];
      assert.equal(lines.at(-1), "DONE");
      // The sink deduplicates by result identity (window and key).
      const unique = new Map();
      // A run that finished just before its kill leaves a DONE; skip those markers.
      for (const line of lines.filter((l) => l !== "DONE")) {
        const row = JSON.parse(line);
        const key = `${row.symbol}|${row.window_start}`;
        if (unique.has(key)) assert.deepEqual(unique.get(key), row, "a re-emitted result is identical");
        unique.set(key, row);
      }
      assert.equal(diffRows(sortRows([...unique.values()]), expected), null, `trial ${trial} with ${kills} kills`);
      totalKills += kills;
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }
  assert.ok(totalKills >= 6, `the workers were really killed mid-run (${totalKills} kills in runs of ${runMs.toFixed(0)} ms)`);
});
