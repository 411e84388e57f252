// `svmsim compare --html DIR`: DIR/index.html with each scenario's policies side by side (bars of
// the figures that differ between them) and every run's plots (analysis/html-report.ts).
import fs from 'node:fs';
import path from 'node:path';
import { renderHtml, runPlots, type ComparisonRow } from '../analysis/html-report.js';
import { readModel } from '../analysis/model.js';
import { summarize, type Analysis } from '../analysis/summary.js';
import { traceDirOf, type RunReport } from '../run/run-scenario.js';

/** The figures compared, from a run's report and its trace's analysis. */
const FIGURES: { figure: string; unit: string; value: (r: RunReport, a: Analysis) => number }[] = [
  { figure: 'kswapd blocked in notifiers', unit: 's', value: (r) => r.mm.kswapdBlockedNs / 1e9 },
  { figure: 'hung tasks', unit: 'tasks', value: (r) => r.check.hungTasks },
  { figure: 'notifier wait p99', unit: 'µs', value: (r) => r.mm.notifierWaitNsP99 / 1e3 },
  { figure: 'allocation stall p99', unit: 'µs', value: (r) => r.mm.allocStallNsP99 / 1e3 },
  { figure: 'invalidations', unit: 'count', value: (r) => r.mm.invalidations },
  { figure: 'thrashing detections (UVM definition)', unit: 'count', value: (_r, a) => Object.values(a.thrashing.thrashing).reduce((s, n) => s + n, 0) },
  { figure: 'CPU faults', unit: 'count', value: (r) => r.mm.cpuFaults },
  { figure: 'device faults', unit: 'count', value: (r) => Object.values(r.devices).reduce((s, d) => s + (typeof d.deviceFaults === 'number' ? d.deviceFaults : 0), 0) },
  { figure: 'OOM kills', unit: 'count', value: (r) => r.mm.oomKills },
  { figure: 'swap-outs', unit: 'pages', value: (r) => r.mm.swapOuts },
];

export function writeComparisonHtml(dir: string, reports: RunReport[], mode: string): string {
  fs.mkdirSync(dir, { recursive: true });
  const runs = reports.map((r) => {
    const run = readModel(traceDirOf(r));
    const analysis = summarize(traceDirOf(r), run, 40);
    return { report: r, name: `${r.scenario} · ${Object.values(r.policies).join(',') || 'no device'} · seed ${r.seed}`, analysis, plots: runPlots(run, analysis) };
  });
  const comparison: ComparisonRow[] = [];
  for (const scenario of [...new Set(reports.map((r) => r.scenario))]) {
    const mine = runs.filter((x) => x.report.scenario === scenario);
    for (const f of FIGURES) {
      const values = mine.map((x) => f.value(x.report, x.analysis));
      if (values.every((v) => v === values[0])) continue; // the same under every policy: nothing to compare
      mine.forEach((x, i) => comparison.push({ scenario, policy: Object.values(x.report.policies).join(',') || '-', figure: f.figure, value: values[i], unit: f.unit }));
    }
  }
  const file = path.join(dir, 'index.html');
  fs.writeFileSync(file, renderHtml({
    title: 'svmsim compare',
    subtitle: `${reports.length} runs, ${mode}: ${[...new Set(reports.map((r) => r.scenario))].join(', ')}`,
    runs: runs.map((x) => ({ name: x.name, analysis: x.analysis, plots: x.plots })),
    comparison,
  }));
  return file;
}
