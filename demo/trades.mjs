// Live demo: a generator sends trades with some disorder (and a few late
// events) to a tumbling-window query; each window's results print as it
// closes, checked against the generator's own counts.
//
//   npm run demo -- --minutes 5 --speed 40 --symbols 4 --rate 25 --seed 7
import { Riffle } from "riffle-sql";

const options = parseArgs(process.argv.slice(2), {
  minutes: 5, // event time to simulate
  speed: 40, // event-time seconds per wall-clock second
  symbols: 4,
  rate: 25, // events per event-time second
  seed: 7,
});

const SYMBOLS = ["AAPL", "MSFT", "NVDA", "TSLA", "AMZN", "GOOG", "META", "NFLX"].slice(0, options.symbols);
const WINDOW_MS = 60_000;
const DELAY_MS = 2_000; // the watermark bound declared below
const DISORDER_MS = 1_500; // on-time events arrive at most this far out of order

const engine = await Riffle.create();
await engine.sql(`CREATE STREAM trades (
  symbol VARCHAR, price DOUBLE, ts TIMESTAMP,
  WATERMARK FOR ts AS ts - INTERVAL '2' SECOND)`);
const query = engine.query(`
  SELECT symbol, window_start, window_end, count(*) AS n, avg(price) AS avg_price, max(price) AS max_price
  FROM TUMBLE(trades, ts, INTERVAL '1' MINUTE)
  GROUP BY symbol, window_start, window_end`);

// What the generator knows it sent on time, per window and symbol.
const expected = new Map();
let windowsChecked = 0;
let mismatches = 0;

query.subscribe((rows) => {
  const byWindow = new Map();
  for (const row of rows) byWindow.set(row.window_start, [...(byWindow.get(row.window_start) ?? []), row]);
  for (const [start, windowRows] of byWindow) {
    const want = expected.get(start) ?? new Map();
    const watermark = query.metrics().watermark;
    console.log(
      `\nwindow ${clock(start)}–${clock(start + WINDOW_MS)}` +
        (watermark === null ? "  (closed at end of input)" : `  (closed at watermark ${clock(watermark, true)})`),
    );
    console.log("  symbol      n   avg price   max price  check");
    for (const row of windowRows.sort((a, b) => a.symbol.localeCompare(b.symbol))) {
      const ok = want.get(row.symbol) === row.n;
      if (!ok) mismatches += 1;
      console.log(
        `  ${row.symbol.padEnd(6)} ${String(row.n).padStart(6)} ${row.avg_price.toFixed(2).padStart(11)} ${row.max_price
          .toFixed(2)
          .padStart(11)}  ${ok ? "ok" : `MISMATCH (sent ${want.get(row.symbol) ?? 0})`}`,
      );
    }
    const missing = [...want.keys()].filter((s) => !windowRows.some((r) => r.symbol === s));
    if (missing.length > 0) {
      mismatches += missing.length;
      console.log(`  MISSING rows for ${missing.join(", ")}`);
    }
    windowsChecked += 1;
  }
});

// Generate and push, paced so that `speed` event-time seconds pass per second.
const random = mulberry32(options.seed);
const prices = new Map(SYMBOLS.map((s, i) => [s, 100 + 50 * i]));
const start = Math.floor(Date.now() / WINDOW_MS) * WINDOW_MS;
const total = Math.round(options.minutes * 60 * options.rate);
const stepMs = 1000 / options.rate;
const tickMs = 50;
let sent = 0;
let lateSent = 0;
let maxTs = -Infinity;

console.log(
  `Riffle demo: ${total} trades over ${options.minutes} min of event time, ${SYMBOLS.length} symbols, ` +
    `disorder up to ${DISORDER_MS} ms, watermark bound ${DELAY_MS} ms, 1-minute tumbling windows`,
);

for (let i = 0; i < total; ) {
  const until = Math.min(total, i + Math.ceil((options.speed * tickMs) / stepMs));
  const batch = [];
  for (; i < until; i++) {
    const symbol = SYMBOLS[Math.floor(random() * SYMBOLS.length)];
    const price = Math.max(1, prices.get(symbol) * (1 + (random() - 0.5) * 0.01));
    prices.set(symbol, price);
    const ts = start + Math.round(i * stepMs + random() * DISORDER_MS);
    batch.push({ symbol, price: Math.round(price * 100) / 100, ts });
    count(ts, symbol);
    maxTs = Math.max(maxTs, ts);
    // Now and then, an event from a window that has already closed.
    const watermark = maxTs - DELAY_MS;
    if (random() < 0.004 && watermark - WINDOW_MS >= start) {
      batch.push({ symbol, price, ts: watermark - WINDOW_MS });
      lateSent += 1;
    }
  }
  sent += batch.length;
  engine.push("trades", batch);
  await new Promise((resolve) => setTimeout(resolve, tickMs));
}
engine.finish();

const metrics = query.metrics();
console.log(
  `\n${sent} events pushed (${lateSent} deliberately late); engine counted ${metrics.eventsIn} in, ` +
    `${metrics.lateEventsDropped} late dropped; ${windowsChecked} windows checked, ${mismatches} mismatches.`,
);
if (mismatches > 0 || metrics.lateEventsDropped !== lateSent || metrics.eventsIn !== sent) {
  console.error("FAILED: results do not match what the generator sent");
  process.exit(1);
}
console.log("All window counts match the generator.");

function count(ts, symbol) {
  const windowStart = Math.floor(ts / WINDOW_MS) * WINDOW_MS;
  const perSymbol = expected.get(windowStart) ?? new Map();
  perSymbol.set(symbol, (perSymbol.get(symbol) ?? 0) + 1);
  expected.set(windowStart, perSymbol);
}

function clock(ms, withMillis = false) {
  return new Date(ms).toISOString().slice(11, withMillis ? 23 : 19);
}

function mulberry32(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function parseArgs(argv, defaults) {
  const result = { ...defaults };
  for (let i = 0; i < argv.length; i += 2) {
    const key = argv[i].replace(/^--/, "");
    if (!(key in defaults) || argv[i + 1] === undefined) {
      console.error(`unknown option ${argv[i]}; options: ${Object.keys(defaults).map((k) => `--${k}`).join(" ")}`);
      process.exit(2);
    }
    result[key] = Number(argv[i + 1]);
  }
  return result;
}
