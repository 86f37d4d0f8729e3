// Draws bench/chart.png from bench/results.json (written by run.mjs):
// events per second per workload and engine, log scale, as an SVG rendered
// to PNG by headless Chromium (playwright-core, Debian's /usr/bin/chromium).
//
//   node bench/chart.mjs [results.json] [chart.png]
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";

import { chromium } from "playwright-core";

const COLORS = {
  "riffle-ndjson": "#1f5fbf",
  "riffle-objects": "#4f8fef",
  "riffle-arrow": "#0b2f6f",
  "js-text": "#c0392b",
  "js-objects": "#e67e73",
  duckdb: "#e0a800",
  perspective: "#2e9e5b",
  arquero: "#8e44ad",
};

export function chartSvg(results) {
  const names = Object.keys(results.workloads);
  const engines = [...new Set(names.flatMap((n) => Object.keys(results.workloads[n].runs)))];
  const labels = Object.fromEntries(names.flatMap((n) => Object.entries(results.workloads[n].runs).map(([e, r]) => [e, r.label])));
  const W = 1140;
  const H = 560;
  const left = 80;
  const right = 270;
  const top = 60;
  const bottom = 70;
  const plotW = W - left - right;
  const plotH = H - top - bottom;
  const values = names.flatMap((n) =>
    Object.values(results.workloads[n].runs)
      .filter((r) => !r.na)
      .flatMap((r) => [r.eventsPerSecond, r.eventsPerSecondWarm ?? r.eventsPerSecond]),
  );
  const warm = values.length > 0 && names.some((n) => Object.values(results.workloads[n].runs).some((r) => r.eventsPerSecondWarm));
  const lo = 10 ** Math.floor(Math.log10(Math.min(...values)));
  const hi = 10 ** Math.ceil(Math.log10(Math.max(...values)));
  const y = (v) => top + plotH - ((Math.log10(v) - Math.log10(lo)) / (Math.log10(hi) - Math.log10(lo))) * plotH;
  const group = plotW / names.length;
  const bar = (group * 0.85) / engines.length;
  const out = [];
  out.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" font-family="DejaVu Sans, Arial, sans-serif" font-size="12">`);
  out.push(`<rect width="100%" height="100%" fill="white"/>`);
  const m = results.machine;
  out.push(`<text x="${left}" y="24" font-size="17" font-weight="bold">Riffle vs baselines: events per second (log scale, higher is better)</text>`);
  const how = warm ? "; bars: 1st run in the process, dashed: 2nd (warm JIT)" : "";
  out.push(`<text x="${left}" y="44" fill="#555">${m.cores} cores, ${m.cpu}, Node ${m.node}; ${results.date.slice(0, 10)}; n/a = the baseline cannot express the workload${how}</text>`);
  for (let v = lo; v <= hi; v *= 10) {
    for (const k of [1, 2, 5]) {
      const t = v * k;
      if (t > hi) break;
      out.push(`<line x1="${left}" x2="${left + plotW}" y1="${y(t)}" y2="${y(t)}" stroke="${k === 1 ? "#bbb" : "#eee"}"/>`);
      if (k === 1 || plotH > 300) {
        const text = t >= 1e6 ? `${t / 1e6}M` : t >= 1e3 ? `${t / 1e3}k` : `${t}`;
        out.push(`<text x="${left - 8}" y="${y(t) + 4}" text-anchor="end" fill="${k === 1 ? "#000" : "#888"}">${text}</text>`);
      }
    }
  }
  names.forEach((n, i) => {
    const o = results.workloads[n];
    const x0 = left + i * group + group * 0.075;
    engines.forEach((e, j) => {
      const r = o.runs[e];
      const x = x0 + j * bar;
      if (!r) return;
      if (r.na) {
        out.push(`<text x="${x + bar / 2}" y="${top + plotH - 6}" font-size="9" text-anchor="middle" fill="#999" transform="rotate(-90 ${x + bar / 2} ${top + plotH - 6})">n/a</text>`);
        return;
      }
      const yy = y(r.eventsPerSecond);
      out.push(`<rect x="${x + 1}" y="${yy}" width="${bar - 2}" height="${top + plotH - yy}" fill="${COLORS[e] ?? "#777"}"${r.agree.ok ? "" : ' stroke="red" stroke-width="3"'}/>`);
      if (r.eventsPerSecondWarm) {
        // The warm run (second in the process) as an outline over the cold bar.
        const yw = y(r.eventsPerSecondWarm);
        out.push(`<rect x="${x + 1.5}" y="${yw}" width="${bar - 3}" height="${top + plotH - yw}" fill="none" stroke="${COLORS[e] ?? "#777"}" stroke-width="1.5" stroke-dasharray="3 2"/>`);
      }
    });
    out.push(`<text x="${left + i * group + group / 2}" y="${top + plotH + 20}" text-anchor="middle" font-weight="bold">${n}</text>`);
    const short = o.title.split(",")[0].replace(/^high cardinality: 1M keys/, "high cardinality");
    out.push(`<text x="${left + i * group + group / 2}" y="${top + plotH + 36}" text-anchor="middle" fill="#555" font-size="11">${short}</text>`);
    out.push(`<text x="${left + i * group + group / 2}" y="${top + plotH + 51}" text-anchor="middle" fill="#555" font-size="11">${(o.events / 1e3).toFixed(0)}k events, ${o.keys >= 1e6 ? "1M" : (o.keys / 1e3).toFixed(0) + "k"} keys</text>`);
  });
  out.push(`<line x1="${left}" x2="${left}" y1="${top}" y2="${top + plotH}" stroke="#000"/>`);
  out.push(`<line x1="${left}" x2="${left + plotW}" y1="${top + plotH}" y2="${top + plotH}" stroke="#000"/>`);
  engines.forEach((e, j) => {
    const ly = top + 10 + j * 22;
    out.push(`<rect x="${left + plotW + 20}" y="${ly - 10}" width="14" height="14" fill="${COLORS[e] ?? "#777"}"/>`);
    out.push(`<text x="${left + plotW + 40}" y="${ly + 1}">${labels[e]}</text>`);
  });
  if (results.latency) {
    let ly = top + 20 + engines.length * 22;
    out.push(`<text x="${left + plotW + 20}" y="${ly}" font-weight="bold">Window-close latency</text>`);
    out.push(`<text x="${left + plotW + 20}" y="${(ly += 16)}" fill="#555" font-size="11">${results.latency.rate / 1e3}k events/s, p50 / p99</text>`);
    for (const r of Object.values(results.latency.runs)) {
      out.push(`<text x="${left + plotW + 20}" y="${(ly += 18)}" font-size="11">${r.label.replace(" in", "").replace("JS: ", "")}: ${r.p50.toFixed(1)} / ${r.p99.toFixed(1)} ms</text>`);
    }
  }
  out.push(`</svg>`);
  return out.join("\n");
}

export async function renderChart(results, png) {
  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM_PATH ?? "/usr/bin/chromium",
    headless: true,
    args: ["--disable-gpu", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"],
  });
  try {
    const page = await browser.newPage({ viewport: { width: 1140, height: 560 }, deviceScaleFactor: 1.5 });
    await page.setContent(`<!doctype html><html><body style="margin:0">${chartSvg(results)}</body></html>`);
    await page.locator("svg").screenshot({ path: png });
  } finally {
    await browser.close();
  }
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const input = process.argv[2] ?? fileURLToPath(new URL("./results.json", import.meta.url));
  const output = process.argv[3] ?? fileURLToPath(new URL("./chart.png", import.meta.url));
  await renderChart(JSON.parse(readFileSync(input, "utf8")), output);
  console.log(`wrote ${output}`);
}
