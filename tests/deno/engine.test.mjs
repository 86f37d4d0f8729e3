// The package under Deno: the same scenario as Node and Chromium.
// Run: node_modules/.bin/deno test --allow-read --allow-env --no-prompt tests/deno/
import { Riffle, RiffleError } from "../../dist/index.js";
import { diffRows, generateTrades, referenceWindows, runScenario } from "../shared/scenario.mjs";

function check(condition, message) {
  if (!condition) throw new Error(message);
}

Deno.test("window results equal the reference under Deno", async () => {
  const trades = generateTrades(1, 5_000);
  const { rows, metrics, beforeFinish } = await runScenario(Riffle, trades);
  const difference = diffRows(rows, referenceWindows(trades));
  check(difference === null, `results differ: ${difference}`);
  check(beforeFinish > 0, "windows close before finish()");
  check(metrics.eventsIn === 5_000, `eventsIn ${metrics.eventsIn}`);
});

Deno.test("typed errors and snapshots under Deno", async () => {
  const engine = await Riffle.create();
  await engine.sql("CREATE STREAM s (k VARCHAR, ts TIMESTAMP, WATERMARK FOR ts AS ts)");
  let code = null;
  try {
    engine.query("SELECT nope FROM s");
  } catch (error) {
    code = error instanceof RiffleError ? error.code : String(error);
  }
  check(code === "SQL_PLAN", `error code ${code}`);
  engine.query("SELECT k, window_start, count(*) FROM TUMBLE(s, ts, INTERVAL '1' SECOND) GROUP BY k, window_start");
  engine.push("s", [{ k: "a", ts: 100 }]);
  const bytes = engine.snapshot();
  check(bytes.length > 0, "snapshot is empty");
  engine.close();
});
