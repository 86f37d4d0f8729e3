// The event log the local feed serves, as pure functions: line `i` depends
// only on the configuration and `i`, so any runtime (a browser page, Deno,
// workerd) can recompute what the server sent and check results against it.

const SYMBOLS = ["AAPL", "MSFT", "NVDA", "AMZN", "GOOG", "META", "TSLA", "NFLX", "AMD", "INTC", "ORCL", "IBM"];

/** Every option, with its default. `epoch` defaults to the start time. */
export const DEFAULTS = Object.freeze({
  seed: 1,
  /** Lines per second made available. */
  rate: 200,
  /** Event time between consecutive lines; default 1000 / rate. */
  spacingMs: undefined,
  /** Distinct symbols. */
  keys: 8,
  /** Events arrive up to this much earlier in event time than their slot. */
  disorderMs: 500,
  /** Fraction of lines that are late by `lateMs`. */
  lateFraction: 0,
  lateMs: 120_000,
  /** Fraction of lines that are malformed (bad JSON, wrong types, missing or null time). */
  malformedFraction: 0,
  /** Log length; Infinity for an endless feed. */
  total: Infinity,
  /** How often clients are sent what became available. */
  batchMs: 50,
  /** Most lines in one message (a replaying client catches up in steps). */
  maxBatch: 2000,
  /** Wall-clock time (epoch ms) line 0 became available; default now. */
  startAt: undefined,
  /** Event time of line 0 (epoch ms); default `startAt`. */
  epoch: undefined,
});

/** The symbol names the log uses for `keys` distinct keys. */
export function symbols(keys) {
  return Array.from({ length: keys }, (_, k) => SYMBOLS[k] ?? `SYM${k}`);
}

/** A generator of the deterministic per-line randomness: same (seed, i), same numbers. */
function randomFor(seed, i) {
  let state = (Math.imul(seed >>> 0, 0x9e3779b1) ^ Math.imul(i + 1, 0x85ebca6b)) >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = Math.imul(state ^ (state >>> 15), state | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Fills in defaults; `epoch` becomes a number. */
export function resolveConfig(options = {}) {
  const config = { ...DEFAULTS, ...Object.fromEntries(Object.entries(options).filter(([, v]) => v !== undefined)) };
  config.startAt ??= Date.now();
  config.epoch ??= config.startAt;
  config.spacingMs ??= 1000 / config.rate;
  return config;
}

/**
 * Line `i` of the log: `kind` is "event", "late" or "malformed"; `event` is
 * the object a good or late line holds; `line` is the text sent.
 */
export function logEntry(config, i) {
  const random = randomFor(config.seed, i);
  const k = Math.floor(random() * config.keys);
  const symbol = symbols(config.keys)[k];
  const base = 50 + 40 * k;
  const price = Math.round(base * (1 + 0.05 * Math.sin(i / 400 + k)) * 100 + random() * 100) / 100;
  const qty = 1 + Math.floor(random() * 100);
  let ts = Math.floor(config.epoch + i * config.spacingMs - random() * config.disorderMs);
  const roll = random();
  if (roll < config.malformedFraction) {
    const variants = [
      `{"seq":${i},"symbol":"${symbol}","price":`,
      `{"seq":${i},"symbol":"${symbol}","price":"n/a","qty":${qty},"ts":${ts}}`,
      `{"seq":${i},"symbol":"${symbol}","price":${price},"qty":${qty}}`,
      `{"seq":${i},"symbol":"${symbol}","price":${price},"qty":${qty},"ts":null}`,
      `not json at all ${i}`,
    ];
    return { kind: "malformed", line: variants[Math.floor(random() * variants.length)] };
  }
  const late = roll < config.malformedFraction + config.lateFraction;
  if (late) ts -= config.lateMs;
  const event = { seq: i, symbol, price, qty, ts };
  return { kind: late ? "late" : "event", event, line: JSON.stringify(event) };
}

/** Lines [from, to) of the log as NDJSON. */
export function logText(config, from, to) {
  const lines = [];
  for (let i = from; i < to; i++) lines.push(logEntry(config, i).line);
  return lines.join("\n");
}

