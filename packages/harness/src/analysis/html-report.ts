// `svmsim report TRACE -o report.html` and `svmsim compare --html DIR`: one self-contained HTML page
// (no network when it is viewed) with the plots an engineer wants of a run: notifier wait over time
// per subscriber, fault-latency histograms, free memory and pinned pages over time, a ping-pong
// heat map by page and time, and, for compare, bars of each policy's key figures.
//
// Plots are drawn by Observable Plot (with d3, which it needs), both inlined from their npm
// packages' UMD builds. Chosen over uPlot (fast lines, but no histograms, heat maps or grouped bars
// without hand-written drawing) and Vega-Lite (three times the size for the same marks): Plot has
// every mark needed (dot, line, rect, cell, bar), renders SVG that a test can look into, and is
// kept by Observable.
import fs from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { formatDuration } from '../scenario/units.js';
import { COUNTER_LABELS } from './counters.js';
import type { ModelRun } from './model.js';
import type { Analysis } from './summary.js';
import { analysisText } from './summary-text.js';

const require = createRequire(import.meta.url);

/** Points per plotted series, at most (the model's series already hold at most 4096). */
const POINTS_MAX = 4096;
/** Pages in the heat map. */
const HEAT_PAGES_MAX = 40;

export interface RunPlots {
  waits: { dev: string; tMs: number; waitUs: number }[];
  faults: { group: string; bucket: string; lo: number; count: number }[];
  counters: { name: string; tMs: number; pages: number }[];
  heat: { page: string; tMs: number; events: number }[];
  heatBinMs: number;
}

export interface ComparisonRow {
  scenario: string;
  policy: string;
  figure: string;
  value: number;
  unit: string;
}

/** The plotted data of one run, from its model and summary. */
export function runPlots(run: ModelRun, a: Analysis): RunPlots {
  const m = run.model;
  const waits: RunPlots['waits'] = [];
  for (const [dev, s] of m.invalidations.waitSeries) {
    const p = s.points();
    for (let i = 0; i < p.t.length && i < POINTS_MAX; i++) waits.push({ dev, tMs: p.t[i] / 1e6, waitUs: Math.max(p.v[i], 1) / 1e3 });
  }
  const faults: RunPlots['faults'] = [];
  const addHist = (group: string, hist: { lo: number; hi: number; count: number }[]) => {
    for (const b of hist) faults.push({ group, bucket: bucketLabel(b.lo, b.hi), lo: b.lo, count: b.count });
  };
  if (a.faults.cpuAll.count > 0) addHist('CPU faults (mm)', a.faults.cpuAll.hist);
  if (a.faults.remoteAll.count > 0) addHist('device-caused faults (mm)', a.faults.remoteAll.hist);
  for (const [dev, d] of Object.entries(a.faults.device)) if (d.latency.count > 0) addHist(`${dev} retry faults, raise → replay`, d.latency.hist);
  for (const r of a.requests) if (r.type === 'hmm_range_fault') addHist(`hmm_range_fault (${r.requester})`, r.hist);
  const counters: RunPlots['counters'] = [];
  for (const [name, s] of m.counters.series) {
    if (!/^(free|pinned)$|vram/.test(name)) continue;
    const p = s.points();
    const [dev, counter] = name.includes('.') ? name.split('.') : ['', name];
    const label = `${dev ? `${dev} ` : ''}${COUNTER_LABELS[counter] ?? counter}`;
    for (let i = 0; i < p.t.length; i++) counters.push({ name: label, tMs: p.t[i] / 1e6, pages: p.v[i] });
  }
  const hm = m.thrashing.heatMap(a.thrashing.top.slice(0, HEAT_PAGES_MAX));
  const heat: RunPlots['heat'] = [];
  for (const row of hm.rows) row.counts.forEach((n, i) => n > 0 && heat.push({ page: row.label, tMs: (hm.t0 + i * hm.binNs) / 1e6, events: n }));
  return { waits, faults, counters, heat, heatBinMs: hm.binNs / 1e6 };
}


function bucketLabel(lo: number, hi: number): string {
  if (lo === 0) return '0';
  return formatDuration(lo) + '–' + formatDuration(hi);
}

export interface ReportPage {
  title: string;
  subtitle: string;
  runs: { name: string; href?: string; analysis: Analysis; plots: RunPlots }[];
  comparison?: ComparisonRow[];
}

/** The HTML page: its data inline as JSON, its script and libraries inline. */
export function renderHtml(page: ReportPage): string {
  const lib = (pkg: string, file: string) => fs.readFileSync(packageFile(pkg, file), 'utf8').replace(/<\/script/gi, '<\\/script');
  const data = JSON.stringify({
    title: page.title,
    comparison: page.comparison ?? [],
    runs: page.runs.map((r) => ({ name: r.name, href: r.href, plots: r.plots, text: analysisText(r.analysis, { hist: false }) })),
  }).replace(/</g, '\\u003c');
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>${escapeHtml(page.title)}</title>
<style>
body { font: 14px/1.4 system-ui, sans-serif; margin: 1.5em auto; max-width: 1100px; color: #222; }
h1 { font-size: 1.4em; } h2 { font-size: 1.15em; margin-top: 2em; border-bottom: 1px solid #ddd; }
figure { margin: 1em 0; } figcaption { color: #555; margin-bottom: .3em; }
pre { background: #f6f6f6; padding: .8em; overflow-x: auto; font-size: 12px; }
.empty { color: #888; font-style: italic; }
</style>
<script>${lib('d3', 'dist/d3.min.js')}</script>
<script>${lib('@observablehq/plot', 'dist/plot.umd.min.js')}</script>
</head>
<body>
<h1>${escapeHtml(page.title)}</h1>
<p>${escapeHtml(page.subtitle)}</p>
<div id="report"></div>
<script type="application/json" id="svmsim-data">${data}</script>
<script>
${PAGE_SCRIPT}
</script>
</body>
</html>
`;
}

/** A file inside an installed package (one whose `exports` do not list its browser builds). */
function packageFile(pkg: string, file: string): string {
  for (const dir of require.resolve.paths(pkg) ?? []) {
    const f = path.join(dir, pkg, file);
    if (fs.existsSync(f)) return f;
  }
  throw new Error(`${pkg}/${file} is not installed (npm install puts it in node_modules)`);
}

function escapeHtml(s: string): string {
  return s.replace(/[&<>"]/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;' })[c]!);
}

/** The page's own script: one section per run, a figure per plot; `data-plot` names each for tests. */
const PAGE_SCRIPT = String.raw`
const data = JSON.parse(document.getElementById('svmsim-data').textContent);
const root = document.getElementById('report');
const el = (tag, attrs = {}, text) => { const e = document.createElement(tag); for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v); if (text !== undefined) e.textContent = text; return e; };
function figure(parent, name, caption, draw, rows) {
  const f = el('figure', { 'data-plot': name });
  f.appendChild(el('figcaption', {}, caption));
  if (rows.length === 0) f.appendChild(el('p', { class: 'empty', 'data-empty': 'true' }, 'nothing to plot in this run'));
  else f.appendChild(draw(rows));
  parent.appendChild(f);
}
if (data.comparison.length > 0) {
  const sec = el('section');
  sec.appendChild(el('h2', {}, 'Policies compared'));
  for (const fig of [...new Set(data.comparison.map((r) => r.scenario + '\u0000' + r.figure))]) {
    const [scenario, name] = fig.split('\u0000');
    const rows = data.comparison.filter((r) => r.scenario === scenario && r.figure === name);
    figure(sec, 'compare', scenario + ': ' + name + ' (' + rows[0].unit + ')', (rs) => Plot.plot({
      marginLeft: 90, width: 700, height: 50 + 28 * rs.length, x: { grid: true, label: rows[0].unit, tickFormat: '~s' }, y: { label: null, domain: rs.map((r) => r.policy) },
      color: { domain: rs.map((r) => r.policy), scheme: 'tableau10' },
      marks: [Plot.barX(rs, { x: 'value', y: 'policy', fill: 'policy', tip: true }), Plot.text(rs, { x: 'value', y: 'policy', text: (r) => String(+r.value.toPrecision(4)), dx: 4, textAnchor: 'start' }), Plot.ruleX([0])],
    }), rows);
  }
  root.appendChild(sec);
}
for (const run of data.runs) {
  const sec = el('section');
  const h = el('h2', {}, run.name);
  if (run.href) { const a = el('a', { href: run.href }, ' (its own report)'); h.appendChild(a); }
  sec.appendChild(h);
  const p = run.plots;
  figure(sec, 'notifier-wait', 'Notifier wait over time, per subscriber: each invalidation, from its start to the subscriber\'s ack (µs, log scale)', (rows) => Plot.plot({
    width: 1000, height: 320, x: { label: 'simulated time (ms)' }, y: { type: 'log', label: 'wait (µs)', grid: true }, color: { legend: true },
    marks: [Plot.dot(rows, { x: 'tMs', y: 'waitUs', stroke: 'dev', r: 2, tip: true })],
  }), p.waits);
  const buckets = [...new Map(p.faults.map((r) => [r.bucket, r.lo])).entries()].sort((a, b) => a[1] - b[1]).map((e) => e[0]);
  figure(sec, 'fault-latency', 'Fault latency, power-of-two buckets (as bpftrace hist() buckets them)', (rows) => Plot.plot({
    width: 1000, height: 120 + 110 * new Set(rows.map((r) => r.group)).size, marginLeft: 60, marginRight: 230, marginBottom: 70,
    x: { label: 'latency', domain: buckets, tickRotate: -30 }, y: { label: 'faults', grid: true }, fy: { label: null },
    marks: [Plot.barY(rows, { x: 'bucket', y: 'count', fy: 'group', fill: 'steelblue', tip: true }), Plot.ruleY([0])],
  }), p.faults);
  figure(sec, 'memory', 'Free frames and pinned pages (and VRAM in use) over time, pages', (rows) => Plot.plot({
    width: 1000, height: 300, x: { label: 'simulated time (ms)' }, y: { label: 'pages', grid: true }, color: { legend: true },
    marks: [Plot.line(rows, { x: 'tMs', y: 'pages', stroke: 'name', curve: 'step-after', tip: true })],
  }), p.counters);
  figure(sec, 'ping-pong', 'Ping-pong heat map: invalidate/remap events per page and time slice (' + p.heatBinMs.toPrecision(3) + ' ms per slice)', (rows) => Plot.plot({
    width: 1000, height: 60 + 14 * new Set(rows.map((r) => r.page)).size, marginLeft: 230, x: { label: 'simulated time (ms)' }, y: { label: null },
    color: { scheme: 'reds', legend: true, label: 'events' },
    marks: [Plot.barX(rows, { x1: 'tMs', x2: (d) => d.tMs + p.heatBinMs, y: 'page', fill: 'events', tip: true })],
  }), p.heat);
  sec.appendChild(el('pre', {}, run.text));
  root.appendChild(sec);
}
document.body.setAttribute('data-rendered', 'true');
`;
