// Crash-test worker: restores from the file store, replays from the offset,
// checkpoints every 500 events, appends results to a log; may be SIGKILLed.
import { appendFileSync } from "node:fs";

import { FileStore, Riffle } from "riffle-sql";
import { DDL, QUERY, generateTrades } from "../shared/scenario.mjs";

const [dir, results, count] = process.argv.slice(2);
const trades = generateTrades(21, Number(count));
const engine = await Riffle.create({ store: new FileStore(dir), keepCheckpoints: 2 });
await engine.sql(DDL);
const query = engine.query(QUERY);
// A sink that writes each result as it arrives (at-least-once: rows emitted
// after the last checkpoint come again after a restart, identical).
query.subscribe((rows) => appendFileSync(results, rows.map((r) => JSON.stringify(r) + "\n").join("")));
const restored = await engine.restore();
const start = restored ? restored.offsets.trades : 0;
for (let i = start; i < trades.length; i += 100) {
  engine.push("trades", trades.slice(i, Math.min(i + 100, trades.length)));
  if ((i + 100) % 500 === 0) await engine.checkpoint();
}
engine.finish();
appendFileSync(results, "DONE\n");
