// The workloads: generated data (fixed seeds), the Riffle SQL, and the
// result shape every engine must produce (`fields`, compared by `agree`).
//
// Every workload's data has bounded disorder (up to 500 ms) well inside the
// 2 s watermark bound, so no event is late and every engine, whether it
// drops late rows or not, must produce exactly the same windows.

export const DELAY = 2_000;
export const BASE = 1_700_000_000_000;
/**
 * approx_percentile_cont (a t-digest) agrees with the exact percentile q
 * when its value lies between the window's sample values at ranks
 * q − 0.02 (rounded down) and q + 0.02 (rounded up): a rank error of at
 * most 2 points plus one sample, which matters in small windows.
 */
export const RANK_TOLERANCE = 0.02;

const COMMON = { key: "key", value: "value", ts: "ts" };

/**
 * events: default event count; keys: distinct keys; perMs: events per
 * millisecond of event time (1 = 1,000 events per second of event time).
 */
export const WORKLOADS = {
  W1: {
    title: "tumbling 1 min, count/sum/avg/min/max by key",
    events: 1_000_000,
    keys: 1_000,
    perMs: 1,
    window: { kind: "tumble", size: 60_000 },
    fields: ["n", "sum", "avg", "min", "max"],
    sql: `SELECT key, window_start, count(*) AS n, sum(value) AS sum, avg(value) AS avg, min(value) AS min, max(value) AS max
      FROM TUMBLE(events, ts, INTERVAL '1' MINUTE) GROUP BY key, window_start`,
  },
  W2: {
    title: "hopping 5 min sliding by 10 s, count/sum/avg/min/max by key",
    events: 300_000,
    keys: 1_000,
    perMs: 1,
    window: { kind: "hop", size: 300_000, slide: 10_000 },
    fields: ["n", "sum", "avg", "min", "max"],
    sql: `SELECT key, window_start, count(*) AS n, sum(value) AS sum, avg(value) AS avg, min(value) AS min, max(value) AS max
      FROM HOP(events, ts, INTERVAL '10' SECOND, INTERVAL '5' MINUTE) GROUP BY key, window_start`,
  },
  W3: {
    title: "session windows, 30 s gap, per key, count/sum/max",
    events: 500_000,
    keys: 1_000,
    perMs: 1,
    sessions: true, // keys alternate 60 s active / 60 s silent, each with its own phase
    window: { kind: "session", gap: 30_000 },
    fields: ["window_end", "n", "sum", "max"],
    sql: `SELECT key, window_start, window_end, count(*) AS n, sum(value) AS sum, max(value) AS max
      FROM SESSION(events, ts, INTERVAL '30' SECOND) GROUP BY key, window_start, window_end`,
  },
  W4: {
    title: "tumbling 1 min, count + approx_percentile_cont 0.5 / 0.75 by key",
    events: 500_000,
    keys: 1_000,
    perMs: 1,
    window: { kind: "tumble", size: 60_000 },
    fields: ["n", "p50", "p75"],
    approx: ["p50", "p75"],
    sql: `SELECT key, window_start, count(*) AS n,
        approx_percentile_cont(0.5) WITHIN GROUP (ORDER BY value) AS p50,
        approx_percentile_cont(0.75) WITHIN GROUP (ORDER BY value) AS p75
      FROM TUMBLE(events, ts, INTERVAL '1' MINUTE) GROUP BY key, window_start`,
  },
  W5: {
    title: "high cardinality: 1M keys, tumbling 1 min, count/sum/avg/min/max",
    events: 1_000_000,
    keys: 1_000_000,
    perMs: 4, // 240k events per window, ~210k distinct keys per window
    window: { kind: "tumble", size: 60_000 },
    fields: ["n", "sum", "avg", "min", "max"],
    sql: `SELECT key, window_start, count(*) AS n, sum(value) AS sum, avg(value) AS avg, min(value) AS min, max(value) AS max
      FROM TUMBLE(events, ts, INTERVAL '1' MINUTE) GROUP BY key, window_start`,
  },
  W6: {
    title: "cascade + union: two feeds merged, 10 s windows per key, 1 min windows over them",
    events: 1_000_000,
    keys: 1_000,
    perMs: 1,
    // Batches go to the two feeds in turn; the union's watermark is the
    // slower feed's.
    feeds: ["events_a", "events_b"],
    window: { kind: "cascade", inner: 10_000, size: 60_000 },
    fields: ["peak", "n", "sum"],
    setup: [
      "CREATE STREAM events_a (key VARCHAR, value DOUBLE, ts BIGINT, WATERMARK FOR ts AS ts - INTERVAL '2' SECOND)",
      "CREATE STREAM events_b (key VARCHAR, value DOUBLE, ts BIGINT, WATERMARK FOR ts AS ts - INTERVAL '2' SECOND)",
      "CREATE VIEW events AS SELECT key, value, ts FROM events_a UNION ALL SELECT key, value, ts FROM events_b",
      `CREATE VIEW per_10s AS SELECT key, window_time AS rowtime, count(*) AS n, sum(value) AS total
        FROM TUMBLE(events, ts, INTERVAL '10' SECOND) GROUP BY key, window_start, window_time`,
    ],
    sql: `SELECT key, window_start, max(n) AS peak, sum(n) AS n, sum(total) AS sum
      FROM TUMBLE(per_10s, rowtime, INTERVAL '1' MINUTE) GROUP BY key, window_start`,
  },
  W7: {
    title: "interval join: two feeds, 1k keys, pairs within 250 ms, counted per key in 10 s windows",
    events: 1_000_000,
    keys: 1_000,
    // 10k events per second of event time: a 10k batch is one second, and
    // batches go to the two feeds in turn, so each joins its neighbours.
    perMs: 10,
    feeds: ["events_a", "events_b"],
    window: { kind: "join", bound: 250, size: 10_000 },
    fields: ["n", "sum"],
    setup: [
      "CREATE STREAM events_a (key VARCHAR, value DOUBLE, ts BIGINT, WATERMARK FOR ts AS ts - INTERVAL '2' SECOND)",
      "CREATE STREAM events_b (key VARCHAR, value DOUBLE, ts BIGINT, WATERMARK FOR ts AS ts - INTERVAL '2' SECOND)",
      `CREATE VIEW pairs AS SELECT a.key, a.ts, b.value - a.value AS d FROM events_a AS a JOIN events_b AS b
        ON a.key = b.key AND b.ts BETWEEN a.ts - 250 AND a.ts + 250`,
    ],
    sql: `SELECT key, window_start, count(*) AS n, sum(d) AS sum
      FROM TUMBLE(pairs, ts, INTERVAL '10' SECOND) GROUP BY key, window_start`,
  },
  W8: {
    title: "lookup join: events enriched from a 1k-row table (20 rows upserted every 10 batches), 1 min windows per group",
    events: 1_000_000,
    keys: 1_000,
    perMs: 1,
    window: { kind: "lookup", size: 60_000 },
    // Every tenth key is missing from the table: the inner join drops it.
    table: { name: "dims", groups: 50, every: 10, changes: 20 },
    fields: ["n", "sum"],
    setup: [
      "CREATE STREAM events (key VARCHAR, value DOUBLE, ts BIGINT, WATERMARK FOR ts AS ts - INTERVAL '2' SECOND)",
      "CREATE TABLE dims (id VARCHAR, grp VARCHAR, weight DOUBLE, PRIMARY KEY (id))",
    ],
    sql: `SELECT d.grp AS key, window_start, count(*) AS n, sum(e.value * d.weight) AS sum
      FROM TUMBLE(events, ts, INTERVAL '1' MINUTE) AS e JOIN dims AS d ON e.key = d.id GROUP BY d.grp, window_start`,
  },
};

/**
 * W8's table rows: all of them before the first push (`push` 0), then
 * the rows upserted before push `push` (every `every` pushes), the same
 * for every engine.
 */
export function tableRows(w, push) {
  const { groups, every, changes } = w.table;
  const row = (k, shift) => ({ id: `k${k}`, grp: `g${(k + shift) % groups}`, weight: 1 + ((k + shift) % 7) / 4 });
  if (push === 0) return Array.from({ length: w.keys }, (_, k) => k).filter((k) => k % 10 !== 9).map((k) => row(k, 0));
  if (push % every !== 0) return [];
  return Array.from({ length: changes }, (_, j) => (push * 37 + j * 53) % w.keys)
    .filter((k) => k % 10 !== 9)
    .map((k) => row(k, push));
}

export const DDL = `CREATE STREAM events (key VARCHAR, value DOUBLE, ts BIGINT, WATERMARK FOR ts AS ts - INTERVAL '2' SECOND)`;
export { COMMON };

export function rng(seed) {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = Math.imul(state ^ (state >>> 15), state | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Events in arrival order: ts grows by 1/perMs ms per event plus up to 500 ms of disorder. */
export function generate(w, count, seed) {
  const random = rng(seed);
  const events = new Array(count);
  // Session data: key k is active while floor((t + phase_k) / 60 s) is even.
  const phase = w.sessions ? Array.from({ length: w.keys }, () => Math.floor(random() * 120_000)) : null;
  for (let i = 0; i < count; i++) {
    const t = Math.floor(i / w.perMs);
    let k = Math.floor(random() * w.keys);
    if (phase) {
      while (Math.floor((t + phase[k]) / 60_000) % 2 === 1) k = Math.floor(random() * w.keys);
    }
    events[i] = {
      key: `k${k}`,
      value: Math.round(random() * 10_000) / 100,
      ts: BASE + t + Math.floor(random() * 500),
    };
  }
  return events;
}

export function batchesOf(events, size) {
  const out = [];
  for (let i = 0; i < events.length; i += size) out.push(events.slice(i, i + size));
  return out;
}
