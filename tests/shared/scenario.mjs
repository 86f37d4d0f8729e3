// One scenario run the same way in every runtime: generate trades with
// disorder inside the watermark bound, push them in uneven batches, and
// compare the engine's window results with a plain JavaScript reference.

export const DDL = `CREATE STREAM trades (symbol VARCHAR, price DOUBLE, ts TIMESTAMP,
  WATERMARK FOR ts AS ts - INTERVAL '2' SECOND)`;

export const QUERY = `SELECT symbol, window_start, window_end, count(*) AS n, avg(price) AS avg_price, max(price) AS max_price
  FROM TUMBLE(trades, ts, INTERVAL '1' MINUTE) GROUP BY symbol, window_start, window_end`;

export function generateTrades(seed, count) {
  const random = mulberry32(seed);
  const base = 1_700_000_000_000;
  const trades = [];
  for (let i = 0; i < count; i++) {
    trades.push({
      symbol: `S${Math.floor(random() * 5)}`,
      price: Math.round(random() * 100_000) / 100,
      ts: base + i * 97 + Math.floor(random() * 1_500),
    });
  }
  return trades;
}

/** The expected result, computed the way a hand-written aggregator would. */
export function referenceWindows(trades) {
  const groups = new Map();
  for (const t of trades) {
    const start = Math.floor(t.ts / 60_000) * 60_000;
    const key = `${t.symbol}|${start}`;
    const g = groups.get(key) ?? { symbol: t.symbol, window_start: start, window_end: start + 60_000, n: 0, sum: 0, max: -Infinity };
    g.n += 1;
    g.sum += t.price;
    g.max = Math.max(g.max, t.price);
    groups.set(key, g);
  }
  return sortRows(
    [...groups.values()].map((g) => ({
      symbol: g.symbol,
      window_start: g.window_start,
      window_end: g.window_end,
      n: g.n,
      avg_price: g.sum / g.n,
      max_price: g.max,
    })),
  );
}

/** Runs the scenario on a `Riffle` class; returns rows, deliveries and metrics. */
export async function runScenario(Riffle, trades, options = {}) {
  const engine = await Riffle.create(options);
  await engine.sql(DDL);
  const query = engine.query(QUERY);
  const rows = [];
  let deliveries = 0;
  query.subscribe((batch) => {
    deliveries += 1;
    rows.push(...batch);
  });
  const random = mulberry32(99);
  for (let i = 0; i < trades.length; ) {
    const size = 1 + Math.floor(random() * 300);
    engine.push("trades", trades.slice(i, i + size));
    i += size;
  }
  const beforeFinish = rows.length;
  engine.finish();
  const metrics = query.metrics();
  engine.close();
  return { rows: sortRows(rows), deliveries, beforeFinish, metrics, columns: query.columns };
}

export function sortRows(rows) {
  return rows.sort((a, b) => a.window_start - b.window_start || a.symbol.localeCompare(b.symbol));
}

/** Compares rows, with a relative tolerance for floating-point averages. */
export function diffRows(actual, expected) {
  if (actual.length !== expected.length) return `row count ${actual.length} != ${expected.length}`;
  for (let i = 0; i < actual.length; i++) {
    for (const key of Object.keys(expected[i])) {
      const a = actual[i][key];
      const e = expected[i][key];
      const same = typeof e === "number" ? Math.abs(a - e) <= 1e-9 * Math.max(1, Math.abs(e)) : a === e;
      if (!same) return `row ${i} ${key}: ${JSON.stringify(a)} != ${JSON.stringify(e)}`;
    }
  }
  return null;
}

export function mulberry32(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
