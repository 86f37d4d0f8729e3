// One adapter per engine and input path. `create(w, onRows)` returns
// { push(batch), finish(), close() }; each closed window reaches onRows as
// rows { key, window_start, [window_end], ...fields } (numbers, not BigInts).
//
// Baselines that re-query (DuckDB, Perspective, Arquero) do what an
// application would: keep the micro-batches, compute the watermark
// (max ts − 2 s) after each one, and query only the windows that closed
// since the last query; rows no window needs any more are dropped.
import { createRequire } from "node:module";
import { dirname, join } from "node:path";

import { DDL, DELAY, tableRows as w8TableRows } from "./workloads.mjs";
import { handWritten } from "./handwritten.mjs";

const require = createRequire(import.meta.url);

// W6 (two feeds, windows over windows) has no re-querying adapter: it would
// keep both feeds' watermarks and the 10 s results between queries itself.
const NOT_WRITTEN = "no adapter for two feeds and windows over windows (the re-query adapters run one feed through one window level)";
const NO_JOIN = "no adapter for a join of two feeds (the re-query adapters run one feed through one window level)";
const NO_TABLE = "no adapter for a table changed between batches (the re-query adapters run one feed through one window level)";
const twoFeeds = (w) => (w.table ? NO_TABLE : !w.feeds ? null : w.window.kind === "join" ? NO_JOIN : NOT_WRITTEN);

/** Engine name -> { input, label, create, supports(w) (null or a reason for n/a) }. */
export const ENGINES = {
  "riffle-ndjson": { label: "Riffle, NDJSON in", input: "text", create: riffle((e, s, b) => e.pushJson(s, b)) },
  "riffle-objects": { label: "Riffle, objects in", input: "objects", create: riffle((e, s, b) => e.push(s, b)) },
  "riffle-arrow": { label: "Riffle, Arrow IPC in", input: "arrow", create: riffle((e, s, b) => e.pushArrow(s, b)) },
  // Columnar end to end: results as Arrow IPC (`output: "arrow"`), what an
  // application drawing charts from columns would take instead of objects.
  "riffle-arrow-out": {
    label: "Riffle, Arrow IPC in and out",
    input: "arrow",
    create: riffle((e, s, b) => e.pushArrow(s, b), { output: "arrow" }),
  },
  "js-text": { label: "JS: JSON.parse + Map", input: "text", create: js((t) => parseLines(t)) },
  "js-objects": { label: "JS: Map on objects", input: "objects", create: js((b) => b) },
  duckdb: {
    label: "DuckDB-WASM, Arrow IPC in",
    input: "arrow",
    create: duckdb,
    // W7's join and W8's table have re-query adapters (below); W6 not.
    supports: (w) => (w.feeds && w.window.kind !== "join" ? NOT_WRITTEN : null),
  },
  perspective: {
    label: "Perspective, objects in",
    input: "objects",
    create: perspective,
    supports: (w) =>
      w.feeds || w.table
        ? twoFeeds(w)
        : w.window.kind === "hop"
        ? "a row belongs to 30 hopping windows; group_by puts each row in one group (the input would have to be copied 30x in JS)"
        : w.window.kind === "session"
          ? "no session windows, and no ordered window functions (lag) to derive them"
          : w.approx
            ? "only median and q3 as percentiles, and Perspective 3.8.0's median depends on insertion order (wrong on unsorted input; see BENCHMARKS.md)"
            : null,
  },
  arquero: { label: "Arquero, objects in", input: "objects", create: arquero, supports: twoFeeds },
};

function parseLines(text) {
  const lines = text.split("\n");
  const out = new Array(lines.length);
  for (let i = 0; i < lines.length; i++) out[i] = JSON.parse(lines[i]);
  return out;
}

// ---------------------------------------------------------------- Riffle

function riffle(push, options = {}) {
  return async (w, onRows) => {
    const { Riffle } = await import("riffle-sql");
    const engine = await Riffle.create();
    for (const statement of w.setup ?? [DDL]) await engine.sql(statement);
    const query = engine.query(w.sql, options);
    // Batches go to the workload's feeds in turn (one stream for most).
    const feeds = w.feeds ?? ["events"];
    let pushes = 0;
    const deliveries = [];
    query.subscribe(options.output === "arrow" ? (ipc) => deliveries.push(ipc) : (rows) => onRows(rows));
    // W8: the table's rows, and its changes between batches.
    const upsert = (rows) => rows.length && engine.upsert(w.table.name, rows);
    return {
      push: (batch) => {
        if (w.table) upsert(w8TableRows(w, pushes));
        push(engine, feeds[pushes++ % feeds.length], batch);
      },
      finish: () => engine.finish(),
      close: async () => {
        const metrics = query.metrics();
        engine.close();
        // Arrow results become rows only now, after the timed run, for the
        // agreement check (apache-arrow gives BigInts for 64-bit integers).
        if (deliveries.length) {
          const { tableFromIPC } = await import("apache-arrow");
          for (const ipc of deliveries) onRows(tableFromIPC(ipc).toArray().map((row) => row.toJSON()));
        }
        return { lateEventsDropped: metrics.lateEventsDropped, eventsIn: metrics.eventsIn };
      },
    };
  };
}

// ---------------------------------------------------------------- hand-written JS

function js(parse) {
  return async (w, onRows) => {
    const agg = handWritten(w);
    const feeds = w.feeds?.length ?? 1;
    let pushes = 0;
    return {
      push: (batch) => {
        if (w.table) agg.upsert(w8TableRows(w, pushes));
        const rows = agg.push(parse(batch), pushes++ % feeds);
        if (rows.length) onRows(rows);
      },
      finish: () => {
        const rows = agg.finish();
        if (rows.length) onRows(rows);
      },
      close: () => ({}),
    };
  };
}

// ---------------------------------------------------------------- DuckDB-WASM

export async function openDuckDB() {
  const duck = require("@duckdb/duckdb-wasm/dist/duckdb-node-blocking.cjs");
  const dist = dirname(require.resolve("@duckdb/duckdb-wasm/dist/duckdb-node-blocking.cjs"));
  const db = await duck.createDuckDB(
    {
      mvp: { mainModule: join(dist, "duckdb-mvp.wasm"), mainWorker: join(dist, "duckdb-node-mvp.worker.cjs") },
      eh: { mainModule: join(dist, "duckdb-eh.wasm"), mainWorker: join(dist, "duckdb-node-eh.worker.cjs") },
    },
    new duck.VoidLogger(),
    duck.NODE_RUNTIME,
  );
  await db.instantiate();
  return db;
}

const num = (v) => (typeof v === "bigint" ? Number(v) : v);

function tableRows(table) {
  const names = table.schema.fields.map((f) => f.name);
  const columns = names.map((n) => table.getChild(n).toArray());
  const out = new Array(table.numRows);
  for (let i = 0; i < table.numRows; i++) {
    const row = {};
    for (let c = 0; c < names.length; c++) row[names[c]] = num(columns[c][i]);
    out[i] = row;
  }
  return out;
}

function duckAggregates(w) {
  const parts = [];
  for (const f of w.fields) {
    if (f === "n") parts.push("count(*)::DOUBLE AS n");
    else if (f === "sum") parts.push("sum(value) AS sum");
    else if (f === "avg") parts.push("avg(value) AS avg");
    else if (f === "min") parts.push("min(value) AS min");
    else if (f === "max") parts.push("max(value) AS max");
    else if (f === "p50") parts.push("quantile_cont(value, 0.5) AS p50");
    else if (f === "p75") parts.push("quantile_cont(value, 0.75) AS p75");
  }
  return parts.join(", ");
}

async function duckdb(w, onRows) {
  const db = await openDuckDB();
  const c = db.connect();
  if (w.window.kind === "join") return duckdbJoin(w, c, onRows);
  c.query("CREATE TABLE events (key VARCHAR, value DOUBLE, ts BIGINT)");
  // W8: the table, and each batch enriched with it as it stands then (what
  // an application re-querying DuckDB would keep), one row per match.
  let pushes = 0;
  if (w.table) {
    c.query("CREATE TABLE dims (id VARCHAR PRIMARY KEY, grp VARCHAR, weight DOUBLE)");
    c.query("CREATE TABLE staged (key VARCHAR, value DOUBLE, ts BIGINT)");
  }
  const upsert = (rows) => {
    if (!rows.length) return;
    const values = rows.map((r) => `('${r.id}', '${r.grp}', ${r.weight})`).join(", ");
    c.query(`INSERT OR REPLACE INTO dims VALUES ${values}`);
  };
  const aggs = duckAggregates(w);
  // W8's enriched rows are windowed like W1's.
  const kind = w.window.kind === "lookup" ? "tumble" : w.window.kind;
  let maxTs = -Infinity;
  let next = -Infinity; // first window start (tumble/hop) not emitted yet
  const emit = (sql) => {
    const rows = tableRows(c.query(sql));
    if (rows.length) onRows(rows);
  };
  const closeUpTo = (watermark) => {
    if (kind === "tumble") {
      const size = w.window.size;
      // Windows [s, s + size) with s + size - 1 <= watermark.
      const end = Math.floor((watermark + 1) / size) * size;
      if (end <= next) return;
      const lo = Number.isFinite(next) ? next : -1e18;
      emit(`SELECT key, (ts // ${size}) * ${size} AS window_start, ${aggs} FROM events
            WHERE ts >= ${lo} AND ts < ${end} GROUP BY ALL`);
      c.query(`DELETE FROM events WHERE ts < ${end}`);
      next = end;
    } else if (kind === "hop") {
      const { size, slide } = w.window;
      const lastStart = Math.floor((watermark + 1 - size) / slide) * slide; // last closed window start
      if (lastStart < next) return;
      const lo = Number.isFinite(next) ? next : -1e15;
      // Each row into the windows closing now only: starts in [lo, lastStart] covering ts.
      emit(`SELECT key, ws AS window_start, ${aggs} FROM (
              SELECT key, value, unnest(generate_series(
                  greatest((ts // ${slide}) * ${slide} - ${size - slide}, ${lo}),
                  least((ts // ${slide}) * ${slide}, ${lastStart}), ${slide})) AS ws
              FROM events WHERE ts < ${lastStart + size})
            GROUP BY ALL`);
      next = lastStart + slide;
      // A row before the first open window start is in no open window.
      c.query(`DELETE FROM events WHERE ts < ${next}`);
    } else {
      const gap = w.window.gap;
      const bound = Number.isFinite(watermark) ? watermark : 9e15;
      c.query(`CREATE OR REPLACE TEMP TABLE closed AS
        WITH marked AS (
          SELECT key, value, ts, CASE WHEN ts - lag(ts) OVER (PARTITION BY key ORDER BY ts) < ${gap} THEN 0 ELSE 1 END AS first
          FROM events),
        numbered AS (SELECT *, sum(first) OVER (PARTITION BY key ORDER BY ts ROWS UNBOUNDED PRECEDING) AS session FROM marked)
        SELECT key, min(ts) AS window_start, max(ts) + ${gap} AS window_end, ${aggs}
        FROM numbered GROUP BY key, session HAVING max(ts) + ${gap} - 1 <= ${bound}`);
      emit("SELECT key, window_start::DOUBLE AS window_start, window_end::DOUBLE AS window_end, * EXCLUDE (key, window_start, window_end) FROM closed");
      c.query(`DELETE FROM events USING closed WHERE events.key = closed.key AND events.ts >= closed.window_start AND events.ts < closed.window_end`);
    }
  };
  return {
    push: (ipc) => {
      if (w.table) {
        upsert(w8TableRows(w, pushes++));
        c.insertArrowFromIPCStream(ipc, { name: "staged", create: false });
        const m = num(c.query("SELECT max(ts) AS m FROM staged").getChild("m").get(0));
        if (m !== null && m > maxTs) maxTs = m;
        c.query("INSERT INTO events SELECT d.grp, s.value * d.weight, s.ts FROM staged s JOIN dims d ON s.key = d.id");
        c.query("DELETE FROM staged");
        closeUpTo(maxTs - DELAY);
        return;
      }
      c.insertArrowFromIPCStream(ipc, { name: "events", create: false });
      const m = num(c.query("SELECT max(ts) AS m FROM events").getChild("m").get(0));
      if (m !== null && m > maxTs) maxTs = m;
      closeUpTo(maxTs - DELAY);
    },
    finish: () => closeUpTo(kind === "session" ? Infinity : maxTs + 1e9),
    close: () => {
      c.close();
      return {};
    },
  };
}

/**
 * W7 by re-querying DuckDB: each feed's rows in a table; after each batch,
 * the pairs of the windows (of the first feed's time) that closed, once
 * the watermark held back by the bound passes them, as Riffle's join holds
 * it; then the rows no later row can meet are deleted.
 */
function duckdbJoin(w, c, onRows) {
  const { bound, size } = w.window;
  c.query("CREATE TABLE a (key VARCHAR, value DOUBLE, ts BIGINT)");
  c.query("CREATE TABLE b (key VARCHAR, value DOUBLE, ts BIGINT)");
  const tables = ["a", "b"];
  const maxTs = [-Infinity, -Infinity];
  let pushes = 0;
  let next = -1e18; // first window start not emitted yet
  const closeUpTo = (watermark) => {
    const end = Math.floor((watermark - bound + 1) / size) * size;
    if (end <= next) return;
    const rows = tableRows(
      c.query(`SELECT a.key, (a.ts // ${size}) * ${size} AS window_start, count(*)::DOUBLE AS n, sum(b.value - a.value) AS sum
        FROM a JOIN b ON a.key = b.key AND b.ts BETWEEN a.ts - ${bound} AND a.ts + ${bound}
        WHERE a.ts >= ${next} AND a.ts < ${end} GROUP BY ALL`),
    );
    if (rows.length) onRows(rows);
    c.query(`DELETE FROM a WHERE ts < ${end}`);
    c.query(`DELETE FROM b WHERE ts < ${end - bound}`);
    next = end;
  };
  return {
    push: (ipc) => {
      const feed = pushes++ % 2;
      c.insertArrowFromIPCStream(ipc, { name: tables[feed], create: false });
      const m = num(c.query(`SELECT max(ts) AS m FROM ${tables[feed]}`).getChild("m").get(0));
      if (m !== null && m > maxTs[feed]) maxTs[feed] = m;
      closeUpTo(Math.min(...maxTs) - DELAY);
    },
    finish: () => closeUpTo(9e15),
    close: () => {
      c.close();
      return {};
    },
  };
}

// ---------------------------------------------------------------- Perspective

async function perspective(w, onRows) {
  const { default: psp } = await import("@finos/perspective");
  const table = await psp.table({ key: "string", value: "float", ts: "float" });
  const size = w.window.size;
  const aggregates = {};
  const columns = [];
  const names = {}; // output field -> perspective column
  for (const f of w.fields) {
    const [column, aggregate] = {
      n: ["n", "count"],
      sum: ["sum", "sum"],
      avg: ["avg", "avg"],
      min: ["min", "min"],
      max: ["max", "max"],
      p50: ["p50", "median"],
      p75: ["p75", "q3"],
    }[f];
    columns.push(column);
    aggregates[column] = aggregate;
    names[f] = column;
  }
  const expressions = { ws: `floor("ts" / ${size}) * ${size}` };
  for (const c of columns) expressions[c] = '"value"';
  let maxTs = -Infinity;
  let next = -Infinity;
  const closeUpTo = async (watermark) => {
    const end = Math.floor((watermark + 1) / size) * size;
    if (end <= next) return;
    const filter = [["ws", "<", end]];
    if (Number.isFinite(next)) filter.push(["ws", ">=", next]);
    const view = await table.view({ group_by: ["ws", "key"], expressions, columns, aggregates, filter });
    const data = await view.to_columns();
    await view.delete();
    const paths = data.__ROW_PATH__;
    const rows = [];
    for (let i = 0; i < paths.length; i++) {
      if (paths[i].length !== 2) continue; // totals
      const row = { key: paths[i][1], window_start: paths[i][0] };
      for (const f of w.fields) row[f] = data[names[f]][i];
      rows.push(row);
    }
    next = end;
    if (rows.length) onRows(rows);
  };
  return {
    push: async (batch) => {
      await table.update(batch);
      for (const e of batch) if (e.ts > maxTs) maxTs = e.ts;
      await closeUpTo(maxTs - DELAY);
    },
    finish: () => closeUpTo(maxTs + 1e9),
    close: async () => {
      await table.delete();
      return {};
    },
  };
}

// ---------------------------------------------------------------- Arquero

async function arquero(w, onRows) {
  const aq = await import("arquero");
  const { op } = aq;
  const { kind } = w.window;
  const rollup = {};
  for (const f of w.fields) {
    if (f === "n") rollup.n = op.count();
    else if (f === "sum") rollup.sum = op.sum("value");
    else if (f === "avg") rollup.avg = op.mean("value");
    else if (f === "min") rollup.min = op.min("value");
    else if (f === "max") rollup.max = op.max("value");
    else if (f === "p50") rollup.p50 = op.quantile("value", 0.5);
    else if (f === "p75") rollup.p75 = op.quantile("value", 0.75);
  }
  let pending = []; // tables of the batches since the last close
  let rest = null; // rows still needed by open windows
  let maxTs = -Infinity;
  let next = -Infinity;
  const all = () => {
    let t = rest;
    for (const p of pending) t = t ? t.concat(p) : p;
    pending = [];
    return t;
  };
  const closeUpTo = (watermark) => {
    if (kind === "tumble") {
      const size = w.window.size;
      const end = Math.floor((watermark + 1) / size) * size;
      if (end <= next) return;
      const t = all();
      const lo = Number.isFinite(next) ? next : -Infinity;
      const params = { lo, end, size };
      const out = t
        .params(params)
        .filter((d, $) => d.ts >= $.lo && d.ts < $.end)
        .derive({ window_start: (d, $) => op.floor(d.ts / $.size) * $.size })
        .groupby("key", "window_start")
        .rollup(rollup);
      rest = t.params(params).filter((d, $) => d.ts >= $.end);
      next = end;
      if (out.numRows()) onRows(out.objects());
    } else if (kind === "hop") {
      const { size, slide } = w.window;
      const lastStart = Math.floor((watermark + 1 - size) / slide) * slide;
      if (lastStart < next) return;
      const t = all();
      const lo = Number.isFinite(next) ? next : -Infinity;
      const params = { lo, lastStart, size, slide };
      const out = t
        .params(params)
        .filter((d, $) => d.ts < $.lastStart + $.size)
        // Only the windows closing now: starts in [lo, lastStart] covering ts.
        .derive({
          window_start: (d, $) =>
            op.sequence(
              op.greatest(op.floor(d.ts / $.slide) * $.slide - $.size + $.slide, $.lo),
              op.least(op.floor(d.ts / $.slide) * $.slide, $.lastStart) + 1,
              $.slide,
            ),
        })
        .unroll("window_start")
        .groupby("key", "window_start")
        .rollup(rollup);
      next = lastStart + slide;
      rest = t.params({ next }).filter((d, $) => d.ts >= $.next);
      if (out.numRows()) onRows(out.objects());
    } else {
      const gap = w.window.gap;
      const t = all();
      if (!t) return;
      const bound = watermark;
      const sessions = t
        .params({ gap })
        .groupby("key")
        .orderby("ts")
        .derive({ first: (d, $) => (d.ts - op.lag(d.ts, 1, -Infinity) < $.gap ? 0 : 1) })
        .derive({ session: aq.rolling((d) => op.sum(d.first)) })
        .ungroup()
        .unorder();
      const grouped = sessions
        .groupby("key", "session")
        .rollup({ window_start: op.min("ts"), last: op.max("ts"), ...rollup })
        .params({ bound, gap })
        .derive({ window_end: (d, $) => d.last + $.gap })
        .derive({ closed: (d, $) => d.window_end - 1 <= $.bound });
      const closed = grouped.filter((d) => d.closed);
      rest = sessions.semijoin(grouped.filter((d) => !d.closed), [["key", "session"], ["key", "session"]]).select("key", "value", "ts");
      if (closed.numRows()) onRows(closed.select("key", "window_start", "window_end", ...w.fields.filter((f) => f !== "window_end")).objects());
    }
  };
  return {
    push: (batch) => {
      pending.push(aq.from(batch));
      for (const e of batch) if (e.ts > maxTs) maxTs = e.ts;
      closeUpTo(maxTs - DELAY);
    },
    finish: () => closeUpTo(kind === "session" ? Infinity : maxTs + 1e9),
    close: () => ({}),
  };
}
