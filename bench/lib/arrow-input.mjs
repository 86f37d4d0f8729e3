// Events `{ key, value, ts }` as one Arrow IPC stream (what `pushArrow`
// takes), built with apache-arrow before the clock starts.
import { Float64, Int64, Utf8, makeTable, tableToIPC, vectorFromArray } from "apache-arrow";

export function toArrow(batch) {
  return tableToIPC(
    makeTable({
      key: vectorFromArray(batch.map((e) => e.key), new Utf8()),
      value: vectorFromArray(batch.map((e) => e.value), new Float64()),
      ts: vectorFromArray(BigInt64Array.from(batch.map((e) => BigInt(e.ts))), new Int64()),
    }),
    "stream",
  );
}
