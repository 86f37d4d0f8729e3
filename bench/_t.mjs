import { fork } from "node:child_process";
const [wl, eng, n] = process.argv.slice(2);
const job = { mode: "throughput", workload: wl, engine: eng, events: Number(n), batch: 10000, seed: 1 };
const c = fork(new URL("./child.mjs", import.meta.url), [JSON.stringify(job)], { serialization: "advanced" });
c.on("message", (m) => { if (m.error) console.log(m.error); else console.log(eng, wl, m.ms.toFixed(0), "ms", (n / m.ms / 1000).toFixed(2), "M/s rows", m.rows.length, "rss MB", (m.maxRss/1e6).toFixed(0), (m.rssBefore/1e6).toFixed(0), JSON.stringify(m.rows[0])); });
