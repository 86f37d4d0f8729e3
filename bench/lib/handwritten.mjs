// What people write today: a Map per window, closed by a watermark
// (max ts − 2 s, a window [s, e) closes when watermark ≥ e − 1 ms, as in
// Riffle). One class per window kind; `push(events)` returns the rows it
// closed, `finish()` the rest. Percentiles are exact (linear interpolation,
// like quantile_cont), so they are the reference for approx_percentile_cont.
import { DELAY, RANK_TOLERANCE } from "./workloads.mjs";

function newAcc(keepValues) {
  return { n: 0, sum: 0, min: Infinity, max: -Infinity, values: keepValues ? [] : null };
}

function add(acc, value) {
  acc.n += 1;
  acc.sum += value;
  if (value < acc.min) acc.min = value;
  if (value > acc.max) acc.max = value;
  if (acc.values) acc.values.push(value);
}

export function quantile(sorted, q) {
  const pos = q * (sorted.length - 1);
  const lo = Math.floor(pos);
  const hi = Math.min(lo + 1, sorted.length - 1);
  return sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - lo);
}

function output(w, key, start, end, acc) {
  const row = { key, window_start: start };
  if (w.window.kind === "session") row.window_end = end;
  for (const f of w.fields) {
    if (f === "n") row.n = acc.n;
    else if (f === "sum") row.sum = acc.sum;
    else if (f === "avg") row.avg = acc.sum / acc.n;
    else if (f === "min") row.min = acc.min;
    else if (f === "max") row.max = acc.max;
  }
  if (acc.values) {
    const sorted = acc.values.sort((a, b) => a - b);
    // The reference for approximate percentiles: the exact value, and the
    // sample values at ranks q ∓ RANK_TOLERANCE, rounded outwards.
    for (const [name, q] of [["p50", 0.5], ["p75", 0.75]]) {
      row[name] = quantile(sorted, q);
      const last = sorted.length - 1;
      row[`${name}_lo`] = sorted[Math.max(0, Math.floor((q - RANK_TOLERANCE) * last))];
      row[`${name}_hi`] = sorted[Math.min(last, Math.ceil((q + RANK_TOLERANCE) * last))];
    }
  }
  return row;
}

/** Tumbling and hopping windows: Map(window start -> Map(key -> state)). */
class Windowed {
  constructor(w) {
    this.w = w;
    this.size = w.window.size;
    this.slide = w.window.slide ?? w.window.size;
    this.keep = (w.approx ?? []).length > 0;
    this.windows = new Map();
    this.maxTs = -Infinity;
  }
  push(events) {
    const { size, slide } = this;
    for (const e of events) {
      const watermark = this.maxTs - DELAY;
      const last = Math.floor(e.ts / slide) * slide;
      // Every window covering e.ts: starts in (ts − size, ts], one per slide.
      for (let start = last; start > e.ts - size; start -= slide) {
        if (start + size - 1 <= watermark) continue; // late for this window
        let perKey = this.windows.get(start);
        if (!perKey) this.windows.set(start, (perKey = new Map()));
        let acc = perKey.get(e.key);
        if (!acc) perKey.set(e.key, (acc = newAcc(this.keep)));
        add(acc, e.value);
      }
      if (e.ts > this.maxTs) this.maxTs = e.ts;
    }
    return this.close(this.maxTs - DELAY);
  }
  close(watermark) {
    const out = [];
    for (const [start, perKey] of this.windows) {
      if (start + this.size - 1 > watermark) continue;
      for (const [key, acc] of perKey) out.push(output(this.w, key, start, start + this.size, acc));
      this.windows.delete(start);
    }
    return out;
  }
  finish() {
    return this.close(Infinity);
  }
}

/** Session windows per key: open sessions [start, last + gap), merged when an event bridges them. */
class Sessions {
  constructor(w) {
    this.w = w;
    this.gap = w.window.gap;
    this.open = new Map(); // key -> [{ start, last, acc }]
    this.maxTs = -Infinity;
  }
  push(events) {
    const gap = this.gap;
    for (const e of events) {
      let list = this.open.get(e.key);
      if (!list) this.open.set(e.key, (list = []));
      let merged = { start: e.ts, last: e.ts, acc: newAcc(false) };
      add(merged.acc, e.value);
      const rest = [];
      for (const s of list) {
        if (s.start < merged.last + gap && merged.start < s.last + gap) {
          merged = {
            start: Math.min(s.start, merged.start),
            last: Math.max(s.last, merged.last),
            acc: mergeAcc(s.acc, merged.acc),
          };
        } else rest.push(s);
      }
      rest.push(merged);
      this.open.set(e.key, rest);
      if (e.ts > this.maxTs) this.maxTs = e.ts;
    }
    return this.close(this.maxTs - DELAY);
  }
  close(watermark) {
    const out = [];
    for (const [key, list] of this.open) {
      let kept = null;
      for (const s of list) {
        if (s.last + this.gap - 1 <= watermark) out.push(output(this.w, key, s.start, s.last + this.gap, s.acc));
        else (kept ??= []).push(s);
      }
      if (kept) this.open.set(key, kept);
      else this.open.delete(key);
    }
    return out;
  }
  finish() {
    return this.close(Infinity);
  }
}

function mergeAcc(a, b) {
  return { n: a.n + b.n, sum: a.sum + b.sum, min: Math.min(a.min, b.min), max: Math.max(a.max, b.max), values: null };
}

/**
 * Two feeds merged, 10 s windows per key, then 1 min windows over the 10 s
 * results (each at its window_time, end − 1 ms). The watermark is the
 * slower feed's max ts − 2 s; a 10 s window closes into its minute, a
 * minute closes when the watermark passes its end − 1 ms.
 */
class CascadeUnion {
  constructor(w) {
    this.w = w;
    this.inner = w.window.inner;
    this.size = w.window.size;
    this.maxTs = w.feeds.map(() => -Infinity);
    this.tens = new Map(); // 10 s window start -> Map(key -> { n, sum })
    this.minutes = new Map(); // minute start -> Map(key -> { peak, n, sum })
  }
  push(events, feed) {
    const inner = this.inner;
    let watermark = Math.min(...this.maxTs) - DELAY;
    let maxTs = this.maxTs[feed];
    for (const e of events) {
      const start = Math.floor(e.ts / inner) * inner;
      if (start + inner - 1 > watermark) {
        let perKey = this.tens.get(start);
        if (!perKey) this.tens.set(start, (perKey = new Map()));
        const acc = perKey.get(e.key);
        if (acc) {
          acc.n += 1;
          acc.sum += e.value;
        } else perKey.set(e.key, { n: 1, sum: e.value });
      }
      if (e.ts > maxTs) {
        maxTs = e.ts;
        this.maxTs[feed] = maxTs;
        watermark = Math.min(...this.maxTs) - DELAY;
      }
    }
    return this.close(watermark);
  }
  close(watermark) {
    for (const [start, perKey] of this.tens) {
      if (start + this.inner - 1 > watermark) continue;
      const rowtime = start + this.inner - 1;
      const minute = Math.floor(rowtime / this.size) * this.size;
      let perKeyMinute = this.minutes.get(minute);
      if (!perKeyMinute) this.minutes.set(minute, (perKeyMinute = new Map()));
      for (const [key, { n, sum }] of perKey) {
        const acc = perKeyMinute.get(key);
        if (acc) {
          if (n > acc.peak) acc.peak = n;
          acc.n += n;
          acc.sum += sum;
        } else perKeyMinute.set(key, { peak: n, n, sum });
      }
      this.tens.delete(start);
    }
    const out = [];
    for (const [start, perKey] of this.minutes) {
      if (start + this.size - 1 > watermark) continue;
      for (const [key, acc] of perKey) out.push({ key, window_start: start, peak: acc.peak, n: acc.n, sum: acc.sum });
      this.minutes.delete(start);
    }
    return out;
  }
  finish() {
    return this.close(Infinity);
  }
}

/**
 * W7: an interval join written by hand. Per feed and key, the rows a later
 * row of the other feed can still meet; each pair counted in the 10 s
 * window of the first feed's time. Rows leave once the watermark (the
 * slower feed's max ts - 2 s) passes ts + bound; a window closes once the
 * watermark, held back by the bound as Riffle's join holds it, passes its
 * end - 1 ms.
 */
class IntervalJoinWindows {
  constructor(w) {
    this.bound = w.window.bound;
    this.size = w.window.size;
    this.maxTs = w.feeds.map(() => -Infinity);
    this.held = w.feeds.map(() => new Map()); // key -> [{ ts, value }]
    this.windows = new Map(); // window start -> Map(key -> { n, sum })
  }
  count(key, a, b) {
    const start = Math.floor(a.ts / this.size) * this.size;
    let perKey = this.windows.get(start);
    if (!perKey) this.windows.set(start, (perKey = new Map()));
    const acc = perKey.get(key);
    if (acc) {
      acc.n += 1;
      acc.sum += b.value - a.value;
    } else perKey.set(key, { n: 1, sum: b.value - a.value });
  }
  push(events, feed) {
    const bound = this.bound;
    const own = this.held[feed];
    const other = this.held[1 - feed];
    let maxTs = this.maxTs[feed];
    for (const e of events) {
      const rows = other.get(e.key);
      if (rows) {
        for (const r of rows) {
          if (r.ts >= e.ts - bound && r.ts <= e.ts + bound) {
            if (feed === 0) this.count(e.key, e, r);
            else this.count(e.key, r, e);
          }
        }
      }
      const mine = own.get(e.key);
      const row = { ts: e.ts, value: e.value };
      if (mine) mine.push(row);
      else own.set(e.key, [row]);
      if (e.ts > maxTs) maxTs = e.ts;
    }
    this.maxTs[feed] = maxTs;
    const watermark = Math.min(...this.maxTs) - DELAY;
    // Rows no later row can meet: ts + bound at or before the watermark.
    for (const held of this.held) {
      for (const [key, rows] of held) {
        const kept = rows.filter((r) => r.ts + bound > watermark);
        if (kept.length === 0) held.delete(key);
        else if (kept.length !== rows.length) held.set(key, kept);
      }
    }
    return this.close(watermark - bound);
  }
  close(watermark) {
    const out = [];
    for (const [start, perKey] of this.windows) {
      if (start + this.size - 1 > watermark) continue;
      for (const [key, acc] of perKey) out.push({ key, window_start: start, n: acc.n, sum: acc.sum });
      this.windows.delete(start);
    }
    return out;
  }
  finish() {
    return this.close(Infinity);
  }
}

/**
 * W8: a lookup join written by hand. A Map of the table's rows by id,
 * changed by `upsert`; each event that finds its row counts in the 1 min
 * window of its time for the row's group; a window closes once the
 * watermark (max ts - 2 s) passes its end - 1 ms.
 */
class LookupWindows {
  constructor(w) {
    this.size = w.window.size;
    this.table = new Map();
    this.maxTs = -Infinity;
    this.windows = new Map(); // window start -> Map(group -> { n, sum })
  }
  upsert(rows) {
    for (const row of rows) this.table.set(row.id, row);
  }
  push(events) {
    const size = this.size;
    let maxTs = this.maxTs;
    for (const e of events) {
      if (e.ts > maxTs) maxTs = e.ts;
      const dim = this.table.get(e.key);
      if (!dim) continue;
      const start = Math.floor(e.ts / size) * size;
      let perGroup = this.windows.get(start);
      if (!perGroup) this.windows.set(start, (perGroup = new Map()));
      const acc = perGroup.get(dim.grp);
      if (acc) {
        acc.n += 1;
        acc.sum += e.value * dim.weight;
      } else perGroup.set(dim.grp, { n: 1, sum: e.value * dim.weight });
    }
    this.maxTs = maxTs;
    return this.close(maxTs - DELAY);
  }
  close(watermark) {
    const out = [];
    for (const [start, perGroup] of this.windows) {
      if (start + this.size - 1 > watermark) continue;
      for (const [key, acc] of perGroup) out.push({ key, window_start: start, n: acc.n, sum: acc.sum });
      this.windows.delete(start);
    }
    return out;
  }
  finish() {
    return this.close(Infinity);
  }
}

export function handWritten(w) {
  if (w.window.kind === "cascade") return new CascadeUnion(w);
  if (w.window.kind === "lookup") return new LookupWindows(w);
  if (w.window.kind === "join") return new IntervalJoinWindows(w);
  return w.window.kind === "session" ? new Sessions(w) : new Windowed(w);
}
