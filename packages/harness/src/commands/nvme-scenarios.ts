// `svmsim run` and `svmsim compare` for the NVMe scenarios (direct-io-vs-migration, nvme-reset,
// p2p): deterministic runs of the NVMe controller model in @svmsim/nvme, one row per
// configuration, with the NVMe figures (IOPS, latency p50/p99, pins held max and time-weighted,
// migration retries, I/O errors). A safe configuration with a checker violation exits 1; the
// unsafe-nvme twin is expected to be caught.
import { NVME_SCENARIOS, type NvmeFigures, type NvmeScenarioName } from '@svmsim/nvme';
import { formatDuration } from '../scenario/units.js';

export const isNvmeScenario = (name: string): name is NvmeScenarioName => Object.hasOwn(NVME_SCENARIOS, name);

const COLUMNS: ReadonlyArray<[string, (f: NvmeFigures) => string]> = [
  ['config', (f) => f.config],
  ['IOPS', (f) => String(f.iops)],
  ['latency p50/p99', (f) => `${formatDuration(f.latencyP50Ns)} / ${formatDuration(f.latencyP99Ns)}`],
  ['pins max', (f) => String(f.pinsHeldMax)],
  ['pins time-weighted', (f) => String(f.pinsHeldTimeWeighted)],
  ['migration retries', (f) => String(f.migrationRetries)],
  ['pages skipped', (f) => String(f.migrationPagesSkipped)],
  ['writeback under DMA', (f) => String(f.writebackUnderDma)],
  ['I/O errors', (f) => String(f.ioErrors)],
  ['failed writes', (f) => String(f.failedWrites)],
  ['resets', (f) => String(f.resets)],
  ['verdict', verdict],
];

function verdict(f: NvmeFigures): string {
  if (f.pinsLeft > 0) return `PINS LEFT ${f.pinsLeft}`;
  if (f.violations > 0) return f.config.startsWith('unsafe') ? `caught: ${f.violations} DMAs to unpinned pages` : `VIOLATION ×${f.violations}`;
  if (f.wrongContent) return `WRONG CONTENT ×${f.wrongContent}`;
  return 'ok';
}

function failed(f: NvmeFigures): boolean {
  return f.pinsLeft > 0 || Boolean(f.wrongContent) || (f.violations > 0 && !f.config.startsWith('unsafe'));
}

function table(rows: readonly NvmeFigures[]): string {
  const cells = [COLUMNS.map(([h]) => h), ...rows.map((r) => COLUMNS.map(([, get]) => get(r)))];
  const widths = COLUMNS.map((_, i) => Math.max(...cells.map((c) => c[i]!.length)));
  return cells.map((c) => c.map((v, i) => v.padEnd(widths[i]!)).join('  ').trimEnd()).join('\n');
}

function extras(rows: readonly NvmeFigures[]): string {
  const known = new Set(['config', 'ios', 'iops', 'latencyP50Ns', 'latencyP99Ns', 'pinsHeldMax', 'pinsHeldTimeWeighted', 'migrationRetries', 'migrationPagesSkipped', 'migrationsFailed', 'writebackUnderDma', 'ioErrors', 'failedWrites', 'resets', 'violations', 'pinsLeft', 'wrongContent']);
  return rows.map((r) => `${r.config}: ios ${r.ios}, migrations failed ${r.migrationsFailed}` + Object.entries(r).filter(([k]) => !known.has(k)).map(([k, v]) => `, ${k} ${v}`).join('')).join('\n');
}

/** Runs the named NVMe scenarios and prints one table each; returns the exit code. */
export function nvmeScenarioCommand(names: readonly NvmeScenarioName[], json: boolean): number {
  let code = 0;
  const out: Record<string, NvmeFigures[]> = {};
  for (const name of names) {
    const t0 = performance.now();
    const rows = NVME_SCENARIOS[name]();
    out[name] = rows;
    if (rows.some(failed)) code = 1;
    if (!json) process.stdout.write(`svmsim ${name} — deterministic NVMe model, ${Math.round(performance.now() - t0)} ms\n\n${table(rows)}\n${extras(rows)}\n\n`);
  }
  if (json) process.stdout.write(JSON.stringify(out, null, 2) + '\n');
  return code;
}
