// Compiled by tests/node/arrow-output.test.mjs: the public types keep row and
// Arrow queries apart without `any`.
import { Riffle, type ArrowQuery, type Query, type QueryOptions } from "riffle-sql";

declare const engine: Riffle;

interface Window {
  [key: string]: string | number;
  symbol: string;
  n: number;
}

const rows: Query<Window> = engine.query<Window>("SELECT ...");
rows.subscribe((batch: Window[]) => batch.map((r) => r.symbol.toUpperCase()));
const plain = engine.query("SELECT ...", { late: "sideOutput" });
plain.subscribe((batch) => batch.length);
const output: "rows" = plain.output;

const arrow: ArrowQuery = engine.query("SELECT ...", { output: "arrow" });
arrow.subscribe((ipc: Uint8Array) => ipc.byteLength);
arrow.subscribeLate((ipc: Uint8Array) => ipc.byteLength);
const arrowOutput: "arrow" = arrow.output;

// @ts-expect-error an Arrow query delivers bytes, not rows
arrow.subscribe((batch: Window[]) => batch.length);
// @ts-expect-error a row query delivers rows, not bytes
rows.subscribe((ipc: Uint8Array) => ipc.byteLength);
// @ts-expect-error only "rows" and "arrow"
engine.query("SELECT ...", { output: "csv" });

declare const options: QueryOptions;
const either: Query | ArrowQuery = engine.query("SELECT ...", options);
if (either.output === "arrow") either.subscribe((ipc) => ipc.byteLength);
else either.subscribe((batch) => batch.length);

export { output, arrowOutput };
