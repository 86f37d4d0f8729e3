// The live dashboard: a Riffle engine in this tab, fed by the local event
// feed over WebSocket, checkpointed to IndexedDB. After a reload the engine
// restores and the feed resumes from the checkpoint's position, so windows
// continue with no gap and no double count.
import { IndexedDBStore, Riffle } from "/dist/index.js";
import uPlot from "/vendor/uplot/uPlot.esm.js";

const DDL = `CREATE STREAM trades (seq BIGINT, symbol VARCHAR NOT NULL, price DOUBLE, qty BIGINT, ts TIMESTAMP(3),
  WATERMARK FOR ts AS ts - INTERVAL '1' SECOND)
  WITH (bad_rows = 'dead_letter', max_future = INTERVAL '1' MINUTE)`;
// No idle_timeout: a paused feed must not let the watermark run ahead of the events it will replay.

const PRESETS = [
  {
    name: "Tumbling: trades and volume per symbol, 5 s",
    sql: `SELECT symbol, window_start, window_end,
       count(*) AS trades, sum(qty) AS volume, round(avg(price), 2) AS avg_price
FROM TUMBLE(trades, ts, INTERVAL '5' SECOND)
GROUP BY symbol, window_start, window_end`,
  },
  {
    name: "Hopping: 10 s moving average, every 2 s",
    sql: `SELECT symbol, window_start, window_end,
       round(avg(price), 2) AS moving_avg, count(*) AS trades
FROM HOP(trades, ts, INTERVAL '2' SECOND, INTERVAL '10' SECOND)
GROUP BY symbol, window_start, window_end`,
  },
  {
    name: "Session: bursts of big trades (1 s gap)",
    sql: `SELECT symbol, window_start, window_end,
       count(*) AS big_trades, sum(qty) AS volume
FROM SESSION(trades, ts, INTERVAL '1' SECOND)
WHERE qty >= 90
GROUP BY symbol, window_start, window_end`,
  },
  {
    name: "Percentiles: price p50 / p95 per symbol, 5 s",
    sql: `SELECT symbol, window_start, window_end,
       approx_percentile_cont(0.5) WITHIN GROUP (ORDER BY price) AS p50,
       approx_percentile_cont(0.95) WITHIN GROUP (ORDER BY price) AS p95,
       count(*) AS trades
FROM TUMBLE(trades, ts, INTERVAL '5' SECOND)
GROUP BY symbol, window_start, window_end`,
  },
];

const SQL_KEY = "riffle-demo-sql";
const HISTORY_KEY = "riffle-demo-history";
const MAX_HISTORY = 3000;
const TABLE_ROWS = 60;
const CHECKPOINT_EVERY_MS = 5000;

const $ = (id) => document.getElementById(id);
const store = new IndexedDBStore("riffle-demo");

/** What the page runs now. */
const live = {
  engine: null,
  query: null,
  connection: null,
  sql: "",
  /** Emitted windows by identity (key columns + window): re-emitted ones replace, never add. */
  history: new Map(),
  letters: [],
  lastCheckpoint: null,
  restoredFrom: null,
  chart: null,
  chartKeys: [],
  timers: [],
};
// For the end-to-end test: the state behind what is on screen.
window.__demo = {
  ready: false,
  history: () => [...live.history.values()],
  stats: () => live.connection?.stats(),
  metrics: () => live.query?.metrics(),
  restored: () => live.restoredFrom,
  chartPoints: () => (live.chart ? live.chart.data[0].length : 0),
  checkpoint: () => checkpointNow(),
  startedFrom: () => live.startedFrom,
  ddl: DDL,
};

function identity(row) {
  return `${keyOf(row)}|${row.window_start}|${row.window_end}`;
}

/** The first text column names the series (e.g. the symbol). */
function keyColumn(columns, row) {
  return columns.find((c) => typeof row[c] === "string") ?? null;
}

function keyOf(row) {
  const column = keyColumn(live.query.columns, row);
  return column ? row[column] : "all";
}

function loadHistory(sql) {
  try {
    const saved = JSON.parse(localStorage.getItem(HISTORY_KEY) ?? "null");
    if (saved && saved.sql === sql) return saved.rows;
  } catch {
    // A damaged history only costs the chart its past.
  }
  return [];
}

function saveHistory() {
  const rows = [...live.history.values()].slice(-MAX_HISTORY);
  localStorage.setItem(HISTORY_KEY, JSON.stringify({ sql: live.sql, rows }));
}

function showError(error) {
  const box = $("error");
  box.hidden = !error;
  box.textContent = error ? `${error.code ?? "ERROR"}: ${error.message}` : "";
}

async function start(sql) {
  let query;
  const engine = await Riffle.create({
    store,
    keepCheckpoints: 3,
    startEmptyOnMismatch: true,
    onCheckpointError: showError,
    setup: async (e) => {
      await e.sql(DDL);
      query = e.query(sql);
    },
  });
  // The new query planned: retire the old one.
  stop();
  live.engine = engine;
  live.query = query;
  live.sql = sql;
  localStorage.setItem(SQL_KEY, sql);
  live.restoredFrom = engine.restored ? { id: engine.restored.id, position: engine.restored.resumeTokens.trades } : null;
  live.history = new Map();
  if (engine.restored) for (const row of loadHistory(sql)) live.history.set(identity(row), row);
  live.chart?.destroy();
  live.chart = null;
  setupMetricChoices();

  query.subscribe((rows) => {
    for (const row of rows) {
      live.history.delete(identity(row));
      live.history.set(identity(row), row);
    }
    while (live.history.size > MAX_HISTORY) live.history.delete(live.history.keys().next().value);
    scheduleRender();
  });
  engine.subscribeDeadLetters((letters) => {
    live.letters = [...letters.map((l) => `${l.reason} — ${l.text ?? ""}`), ...live.letters].slice(0, 30);
    renderLetters();
  });

  // Start where the checkpoint left off, or live.
  const feed = await (await fetch("/api/feed")).json();
  const resumeFrom = engine.restored?.resumeTokens.trades ?? String(feed.head);
  live.startedFrom = engine.restored ? null : resumeFrom;
  live.connection = engine.connect("trades", {
    url: `${location.origin.replace(/^http/, "ws")}/events`,
    subscribe: (from) => JSON.stringify({ subscribe: "trades", from: Number(from) }),
    resumeFrom,
    reconnect: { initialDelayMs: 250, maxDelayMs: 5000 },
  });
  live.connection.onState(renderConnection);
  live.connection.onError((error) => {
    if (error.code !== "CONNECTION") showError(error);
  });
  renderConnection(live.connection.state);
  $("pause").textContent = "Pause feed";

  live.timers.push(setInterval(renderIndicators, 1000));
  live.timers.push(setInterval(() => checkpointNow().catch(showError), CHECKPOINT_EVERY_MS));
  scheduleRender();
  window.__demo.ready = true;
}

function stop() {
  for (const timer of live.timers) clearInterval(timer);
  live.timers = [];
  live.connection?.close();
  live.engine?.close();
  live.engine = null;
}

async function checkpointNow() {
  if (!live.engine) return;
  const info = await live.engine.checkpoint();
  saveHistory();
  live.lastCheckpoint = { at: Date.now(), bytes: info.bytes };
  renderIndicators();
}

// ---- rendering ----

let renderPending = false;
function scheduleRender() {
  if (renderPending) return;
  renderPending = true;
  requestAnimationFrame(() => {
    renderPending = false;
    renderTable();
    renderChart();
  });
}

const time = (ms) => new Date(ms).toLocaleTimeString([], { hour12: false });
const format = (value, column) => {
  if (value === null || value === undefined) return "–";
  if (column === "window_start" || column === "window_end") return time(value);
  if (typeof value === "number" && !Number.isInteger(value)) return value.toFixed(2);
  return String(value);
};

function renderTable() {
  const columns = live.query.columns;
  const head = $("results").tHead;
  if (head.dataset.sql !== live.sql) {
    head.dataset.sql = live.sql;
    head.innerHTML = "";
    const tr = head.insertRow();
    for (const column of columns) {
      const th = document.createElement("th");
      th.scope = "col";
      th.textContent = column;
      tr.append(th);
    }
  }
  const rows = [...live.history.values()].sort((a, b) => b.window_end - a.window_end || String(keyOf(a)).localeCompare(String(keyOf(b)))).slice(0, TABLE_ROWS);
  const body = $("results").tBodies[0];
  const previous = new Set([...body.rows].map((tr) => tr.dataset.id));
  body.innerHTML = "";
  for (const row of rows) {
    const tr = body.insertRow();
    tr.dataset.id = identity(row);
    if (previous.size > 0 && !previous.has(tr.dataset.id)) tr.className = "fresh";
    for (const column of columns) {
      const td = tr.insertCell();
      td.dataset.column = column;
      td.textContent = format(row[column], column);
    }
  }
  $("result-count").textContent = `(${live.history.size} windows so far)`;
}

function setupMetricChoices() {
  const select = $("metric");
  select.innerHTML = "";
  // The key column is dropped once the first row shows which it is; the first aggregate is the default.
  const numeric = live.query.columns.filter((c) => !["window_start", "window_end", "_op", "seq"].includes(c));
  for (const column of numeric) select.add(new Option(column, column));
  select.dataset.pending = "1";
}

function renderChart() {
  const select = $("metric");
  const sample = live.history.values().next().value;
  if (!sample || !("window_end" in sample)) return;
  if (select.dataset.pending) {
    // Drop the key column from the metric choices once a row shows which it is.
    const key = keyColumn(live.query.columns, sample);
    for (const option of [...select.options]) if (option.value === key) option.remove();
    delete select.dataset.pending;
  }
  const metric = select.value;
  const keys = [...new Set([...live.history.values()].map(keyOf))].sort();
  const ends = [...new Set([...live.history.values()].map((r) => r.window_end))].sort((a, b) => a - b).slice(-300);
  const index = new Map(ends.map((end, i) => [end, i]));
  const series = keys.map(() => new Array(ends.length).fill(null));
  const keyIndex = new Map(keys.map((k, i) => [k, i]));
  for (const row of live.history.values()) {
    const i = index.get(row.window_end);
    if (i !== undefined) series[keyIndex.get(keyOf(row))][i] = row[metric] ?? null;
  }
  const data = [ends.map((t) => t / 1000), ...series];
  $("chart-title").textContent = `${metric} per window end`;
  const el = $("chart");
  if (!live.chart || live.chartKeys.join() !== keys.join() || live.chart.metric !== metric) {
    live.chart?.destroy();
    const palette = ["#0b63c5", "#d9480f", "#2b8a3e", "#862e9c", "#e67700", "#0c8599", "#c2255c", "#5c940d", "#495057", "#1864ab", "#a61e4d", "#364fc7"];
    live.chart = new uPlot(
      {
        width: Math.max(280, el.clientWidth),
        height: 300,
        series: [{}, ...keys.map((k, i) => ({ label: String(k), stroke: palette[i % palette.length], width: 1.5, spanGaps: false }))],
        axes: [{}, { label: metric, size: 60 }],
        legend: { live: false },
      },
      data,
      el,
    );
    live.chart.metric = metric;
    live.chartKeys = keys;
  } else {
    live.chart.setData(data);
  }
}

let lastCount = null;
function renderIndicators() {
  if (!live.query) return;
  const m = live.query.metrics();
  const count = m.eventsIn + m.badRows;
  const now = performance.now();
  if (lastCount) $("rate").textContent = Math.round(((count - lastCount.count) * 1000) / (now - lastCount.at)).toLocaleString();
  lastCount = { count, at: now };
  $("watermark").textContent = m.watermark === null ? "–" : time(m.watermark);
  $("lag").textContent = m.watermark === null ? "–" : `${((Date.now() - m.watermark) / 1000).toFixed(1)} s`;
  $("late").textContent = m.lateEventsDropped.toLocaleString();
  $("bad").textContent = m.badRows.toLocaleString();
  $("open").textContent = m.openWindows.toLocaleString();
  $("state").textContent = `${(m.stateBytes / 1024).toFixed(1)} KB`;
  $("checkpoint").textContent = live.lastCheckpoint
    ? `${time(live.lastCheckpoint.at)} (${(live.lastCheckpoint.bytes / 1024).toFixed(1)} KB)`
    : live.restoredFrom
      ? "restored"
      : "none yet";
}

function renderConnection(state) {
  const badge = $("connection");
  badge.dataset.state = state;
  const restored = live.restoredFrom ? ` · restored, resumed from event ${live.restoredFrom.position}` : "";
  badge.textContent = `feed ${state}${restored}`;
}

function renderLetters() {
  const list = $("letters");
  list.innerHTML = "";
  for (const letter of live.letters) {
    const li = document.createElement("li");
    const code = document.createElement("code");
    code.textContent = letter;
    li.append(code);
    list.append(li);
  }
}

// ---- controls ----

$("pause").addEventListener("click", () => {
  const connection = live.connection;
  if (!connection) return;
  if (connection.state === "paused") {
    connection.resume();
    $("pause").textContent = "Pause feed";
  } else {
    connection.pause();
    $("pause").textContent = "Resume feed";
  }
});

$("inject-late").addEventListener("click", () => {
  const watermark = live.query.metrics().watermark ?? Date.now();
  const events = Array.from({ length: 5 }, (_, i) => ({ seq: -1, symbol: "LATE", price: 1, qty: 1, ts: watermark - 60_000 - i }));
  live.engine.push("trades", events);
  renderIndicators();
});

$("inject-bad").addEventListener("click", () => {
  live.engine.pushJson("trades", `{"seq":-1,"symbol":"AAPL","price":\n{"seq":-1,"symbol":"AAPL","price":"cheap","qty":1,"ts":1}\n{"seq":-1,"symbol":"AAPL","price":1,"qty":1,"ts":null}`);
  renderIndicators();
});

$("checkpoint-now").addEventListener("click", () => checkpointNow().catch(showError));

$("reload").addEventListener("click", async () => {
  try {
    await checkpointNow();
  } finally {
    location.reload();
  }
});

$("metric").addEventListener("change", () => renderChart());

// Keep the chart as wide as its panel (laptop, phone, rotation).
new ResizeObserver(() => {
  if (live.chart) live.chart.setSize({ width: Math.max(280, $("chart").clientWidth), height: 300 });
}).observe($("chart"));

for (const [i, preset] of PRESETS.entries()) $("preset").add(new Option(preset.name, String(i)));
$("preset").addEventListener("change", () => {
  $("sql").value = PRESETS[Number($("preset").value)].sql;
});

$("run").addEventListener("click", async () => {
  showError(null);
  try {
    await start($("sql").value);
  } catch (error) {
    showError(error);
  }
});

window.addEventListener("pagehide", () => {
  if (live.engine) saveHistory();
});

const initial = localStorage.getItem(SQL_KEY) ?? PRESETS[0].sql;
$("sql").value = initial;
const presetIndex = PRESETS.findIndex((p) => p.sql === initial);
if (presetIndex >= 0) $("preset").value = String(presetIndex);
start(initial).catch((error) => {
  showError(error);
  // A stored query that no longer plans: fall back to the first preset.
  if (initial !== PRESETS[0].sql) {
    $("sql").value = PRESETS[0].sql;
    start(PRESETS[0].sql).catch(showError);
  }
});
