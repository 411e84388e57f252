// Plain-text tables for the terminal: one row per run, the figure that tells the story first, the
// checker's verdict last. Times are in the unit a person reads; --json carries the raw numbers.
import type { RunReport } from '../run/run-scenario.js';
import { formatDuration } from '../scenario/units.js';

export interface Column {
  title: string;
  cell: (r: RunReport) => string;
}

export const verdict = (r: RunReport): string => {
  if (r.failed !== undefined) return 'run failed';
  if (!r.check.ok) return `${r.check.violations.length + r.check.violationsDropped} violation${r.check.violations.length === 1 ? '' : 's'}`;
  if (r.expectFailures > 0) return `${r.expectFailures} expect failed`;
  return 'ok';
};

const byEvent = (r: RunReport) =>
  Object.entries(r.mm.invalidationsByEvent)
    .map(([e, n]) => `${e.replace('MMU_NOTIFY_', '').toLowerCase()} ${n}`)
    .join(', ') || '-';

/** The columns of a run report, the story first and the verdict last (shared/EXPERIENCE.md). */
export const RUN_COLUMNS: Column[] = [
  { title: 'policy', cell: (r) => Object.values(r.policies).join(',') || '-' },
  { title: 'ops', cell: (r) => String(r.phases.reduce((n: number, p) => n + ((p as { ops?: number }).ops ?? 0), 0)) },
  { title: 'cpu faults', cell: (r) => String(r.mm.cpuFaults) },
  { title: 'hmm faults', cell: (r) => String(r.mm.hmmRangeFaults) },
  { title: 'invalidations', cell: (r) => String(r.mm.invalidations) },
  { title: 'notifier wait p50/p99/max', cell: (r) => [r.mm.notifierWaitNsP50, r.mm.notifierWaitNsP99, r.mm.notifierWaitNsMax].map(formatDuration).join(' / ') },
  { title: 'kswapd blocked', cell: (r) => formatDuration(r.mm.kswapdBlockedNs) },
  { title: 'direct reclaim', cell: (r) => String(r.mm.directReclaims) },
  { title: 'swap out/in', cell: (r) => `${r.mm.swapOuts}/${r.mm.swapIns}` },
  { title: 'OOM kills', cell: (r) => String(r.mm.oomKills) },
  { title: 'verdict', cell: verdict },
];

/** Figures of a device kind that tell its story: shown right after the policy when a run has one. */
const DEVICE_COLUMNS: Record<string, Column[]> = {
  gpu: [
    { title: 'submits', cell: (r) => String(gpuOf(r)?.submissions ?? '-') },
    { title: 'pages walked/submit', cell: (r) => String(gpuOf(r)?.pagesWalkedPerSubmissionMean ?? '-') },
    { title: 'submit p50', cell: (r) => (gpuOf(r) ? formatDuration(Number(gpuOf(r)!.submitLatencyP50Ns)) : '-') },
  ],
};

function gpuOf(r: RunReport): Record<string, unknown> | undefined {
  return Object.values(r.devices).find((d) => typeof d.pagesWalkedPerSubmissionMean === 'number');
}

/** The run columns, with the device figures of the kinds present in `rows` after the policy. */
export function columnsFor(rows: RunReport[]): Column[] {
  const extra = rows.some((r) => gpuOf(r) !== undefined) ? DEVICE_COLUMNS.gpu : [];
  return [RUN_COLUMNS[0], ...extra, ...RUN_COLUMNS.slice(1)];
}

export function table(rows: RunReport[], columns: Column[] = columnsFor(rows)): string {
  const cells = rows.map((r) => columns.map((c) => c.cell(r)));
  const widths = columns.map((c, i) => Math.max(c.title.length, ...cells.map((row) => row[i].length)));
  const line = (xs: string[]) => xs.map((x, i) => (i === 0 ? x.padEnd(widths[i]) : x.padStart(widths[i]))).join('  ');
  return [line(columns.map((c) => c.title)), ...cells.map(line)].join('\n');
}

/** The details under a single run's table: invalidations by event, steps, violations. */
export function details(r: RunReport): string {
  const out: string[] = [];
  if (r.failed !== undefined) out.push(`run failed: ${r.failed}`);
  out.push(`invalidations by event: ${byEvent(r)}`);
  for (const [id, d] of Object.entries(r.devices)) out.push(deviceLine(id, d));
  const failed = r.steps.filter((s) => s.failures.length > 0);
  if (r.steps.length > 0) out.push(`steps: ${r.steps.length}, ${failed.length} with an unmet expect`);
  for (const s of failed) for (const f of s.failures) out.push(`  step "${s.step}" (phase ${s.phase}): ${f}`);
  for (const v of r.check.violations.slice(0, 10)) out.push(`  ${v}`);
  if (r.check.violations.length > 10) out.push(`  … and ${r.check.violations.length - 10 + r.check.violationsDropped} more (report.json)`);
  return out.join('\n');
}

/** One line of a device's key figures (its summary()); for a gpu: submissions, walks, latency, jobs. */
export function deviceLine(id: string, d: Record<string, unknown>): string {
  const n = (k: string) => (typeof d[k] === 'number' ? (d[k] as number) : 0);
  const policy = typeof d.policy === 'string' ? ` (${d.policy})` : '';
  if ('submissions' in d) {
    const mean = n('pagesWalkedPerSubmissionMean');
    return (
      `${id}${policy}: ${n('submissions')} submissions, ${n('resubmissions')} resubmissions, ` +
      `${Number.isInteger(mean) ? mean : mean.toFixed(1)} pages walked per submission, ` +
      `submit latency p50/p99 ${formatDuration(n('submitLatencyP50Ns'))} / ${formatDuration(n('submitLatencyP99Ns'))}, ` +
      `${n('jobsDone')} jobs done, ${n('jobErrors')} job errors`
    );
  }
  // Other devices (dmirror): their non-zero numeric figures as they come.
  const figures = Object.entries(d).filter(([, v]) => typeof v === 'number' && v !== 0).map(([k, v]) => `${k} ${v}`);
  return `${id}${policy}: ${figures.join(', ') || '-'}`;
}
