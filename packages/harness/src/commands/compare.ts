// `svmsim compare`: each scenario under each policy of its devices, one table per scenario.
// `npm start` runs it over the built-in scenarios. `--profile a,b` runs them under each GPU cost
// profile: one section of tables per profile, then a line per scenario saying which policy wins its
// headline figure under each profile (report/headline.ts).
import path from 'node:path';
import { DEVICE_KINDS, UsageError, defaultComparePolicies } from '../run/actors.js';
import { exitCodeOf, runScenario, traceDirOf, type RunReport } from '../run/run-scenario.js';
import { table, verdict } from '../report/table.js';
import { listBuiltinScenarios, loadScenario } from '../scenario/load.js';
import type { Scenario } from '../scenario/types.js';
import { EXIT_OK, runName, runsDir, THREAD_TIME_SCALE } from './common.js';
import { EXIT_INTERRUPTED, onInterrupt } from './interrupt.js';
import { progressBar } from './progress.js';
import { writeComparisonHtml } from './compare-html.js';
import { KERNEL_ERAS } from '@svmsim/gpu-driver/kernel-era';
import { gpuCostProfile, GPU_COST_PROFILE_NAMES } from '@svmsim/gpu-driver/cost-profiles';
import { verdictLine } from '../report/headline.js';
import { checkProfile } from './common.js';

export interface CompareOptions {
  policies?: string;
  seed?: number;
  threads: boolean;
  timeScale?: number;
  json: boolean;
  /** Write DIR/index.html: the policies' figures side by side and every run's plots. */
  html?: string;
  /** `--kernel A,B`: run every scenario under each kernel era, side by side (default: each scenario's machine.kernel). */
  kernels?: string;
  /** `--profile A,B`: run every scenario under each GPU cost profile, a section each (default: each scenario's machine.profile). */
  profiles?: string;
  /** `--passes 1,2`: run every scenario with each machine.notifierPasses, side by side (default: the scenario's). */
  passes?: string;
}

/** `--profile default,uvm-pcie`: the profiles, checked. */
function profileList(spec: string | undefined): string[] | undefined {
  if (spec === undefined) return undefined;
  const names = spec.split(',').map((k) => k.trim()).filter(Boolean);
  if (names.length === 0) throw new UsageError(`--profile: expected a comma-separated list of ${GPU_COST_PROFILE_NAMES.join(', ')}`);
  return names.map((p) => checkProfile(p));
}

/** `--passes 1,2`: the notifier pass counts, checked. */
function passesList(spec: string | undefined): (1 | 2)[] | undefined {
  if (spec === undefined) return undefined;
  const xs = spec.split(',').map((k) => k.trim()).filter(Boolean);
  if (xs.length === 0 || xs.some((x) => x !== '1' && x !== '2')) throw new UsageError(`--passes: expected a comma-separated list of 1 and 2, got "${spec}"`);
  return [...new Set(xs.map((x) => (x === '1' ? 1 : 2) as 1 | 2))];
}

/** `--kernel v4.9,latest`: the eras, checked. */
function kernelList(spec: string | undefined): string[] | undefined {
  if (spec === undefined) return undefined;
  const eras = spec.split(',').map((k) => k.trim()).filter(Boolean);
  if (eras.length === 0) throw new UsageError(`--kernel: expected a comma-separated list of ${KERNEL_ERAS.join(', ')}`);
  for (const k of eras) if (!(KERNEL_ERAS as readonly string[]).includes(k)) throw new UsageError(`--kernel: "${k}" is not one of ${KERNEL_ERAS.join(', ')}`);
  return eras;
}

/**
 * The policy sets a scenario is compared under: every safe policy of its first device, or those its
 * `compare:` list names (unsafe twins and report variants only when asked).
 */
function policySets(s: Scenario, only: string[] | undefined): Record<string, string>[] {
  const dev = s.devices[0];
  if (!dev) return [{}];
  const known = DEVICE_KINDS[dev.kind].policies;
  const chosen = only ? known.filter((p) => only.includes(p)) : (dev.compare ?? defaultComparePolicies(known));
  return chosen.map((p) => ({ [dev.id]: p }));
}

export async function compareCommand(sources: string[], o: CompareOptions): Promise<number> {
  const names = sources.length > 0 ? sources : listBuiltinScenarios().map((b) => b.name);
  const only = o.policies?.split(',').map((p) => p.trim()).filter(Boolean);
  const scenarios = names.map((n) => ({ source: n, s: loadScenario(n) }));
  if (only) {
    const known = new Set(scenarios.flatMap(({ s }) => s.devices.flatMap((d) => DEVICE_KINDS[d.kind].policies)));
    for (const p of only) if (!known.has(p)) throw new UsageError(`--policies: "${p}" is not one of ${[...known].join(', ') || '(no device in these scenarios)'}`);
  }
  const kernels = kernelList(o.kernels);
  const profiles = profileList(o.profiles);
  const passes = passesList(o.passes);
  // Each profile in turn (a section each), and within it each policy under each era (and pass
  // count), so that a table's rows pair up: userptr v4.9, userptr latest, …
  const jobs = (profiles ?? [undefined]).flatMap((profile) =>
    scenarios.flatMap(({ source, s }) =>
      policySets(s, only).flatMap((policies) =>
        (kernels ?? [s.machine.kernel]).flatMap((kernel) =>
          (passes ?? [s.machine.notifierPasses]).map((notifierPasses) => ({
            source,
            s: { ...s, machine: { ...s.machine, kernel, notifierPasses, profile: profile ?? s.machine.profile } },
            policies,
          })),
        ),
      ),
    ),
  );
  const dir = runsDir();
  const mode = o.threads ? 'threads' : 'deterministic';
  const eras =
    (kernels ? `kernels ${kernels.join(' vs ')}` : `kernel ${[...new Set(scenarios.map(({ s }) => s.machine.kernel))].join(', ')}`) +
    (profiles ? `, profiles ${profiles.join(' vs ')}` : '') +
    (passes ? `, notifier passes ${passes.join(' vs ')}` : '');
  if (!o.json) process.stdout.write(`svmsim compare — ${scenarios.length} scenarios × their policies, ${mode}${o.seed !== undefined ? `, seed ${o.seed}` : ''}, ${eras}   (svmsim compare --help)\n\n`);
  const bar = progressBar(jobs.length, 'runs');
  const reports: RunReport[] = [];
  // Ctrl-C in thread mode stops the run in progress; the tables show the runs done so far.
  const interrupt = o.threads ? onInterrupt() : undefined;
  try {
    for (const j of jobs) {
      if (interrupt?.signal.aborted) break;
      const s = { ...j.s, devices: j.s.devices.map((d) => (j.policies[d.id] ? { ...d, policy: j.policies[d.id] } : d)) };
      const seed = o.seed ?? s.seed;
      const name = runName(s.name, j.policies, seed) + (kernels ? `.${s.machine.kernel}` : '') + (profiles ? `.${s.machine.profile}` : '') + (passes ? `.passes${s.machine.notifierPasses}` : '');
      reports.push(await runScenario(s, { seed, mode, timeScale: o.timeScale ?? s.timeScale ?? THREAD_TIME_SCALE, traceDir: path.join(dir, name), signal: interrupt?.signal }));
      bar.tick(`${s.name} ${Object.values(j.policies).join(',')}${kernels ? ` ${s.machine.kernel}` : ''}${profiles ? ` ${s.machine.profile}` : ''}${passes ? ` passes ${s.machine.notifierPasses}` : ''}`);
    }
  } finally {
    bar.done();
    interrupt?.dispose();
  }
  const interrupted = Boolean(interrupt?.signal.aborted);
  if (interrupted && !o.json) process.stdout.write(`interrupted (Ctrl-C) after ${reports.length} of ${jobs.length} runs; the last one stopped part way\n\n`);
  if (o.json) process.stdout.write(JSON.stringify(reports, null, 2) + '\n');
  else {
    if (profiles) writeProfileSections(scenarios.map(({ s }) => s), profiles, reports);
    else writeTables(scenarios.map(({ s }) => s), reports);
    const rel = (d: string) => path.relative(process.cwd(), d) || d;
    process.stdout.write(`Traces: ${rel(dir)}/ (report.json in each; svmsim analyze ${reports[0] ? rel(traceDirOf(reports[0])) : rel(dir)})\n`);
    for (const r of reports.filter((x) => x.check.hungTasks > 0)) {
      process.stdout.write(`${r.scenario} ${Object.values(r.policies).join(',')}: ${r.check.hungTasks} hung task${r.check.hungTasks === 1 ? '' : 's'} — svmsim check ${rel(traceDirOf(r))} prints the kernel's reports and the chain\n`);
    }
    const bad = reports.filter((r) => verdict(r) !== 'ok');
    for (const r of bad) process.stdout.write(`${r.scenario} ${Object.values(r.policies).join(',')}: ${verdict(r)} — ${r.check.violations[0] ?? ''}\n`);
  }
  if (o.html !== undefined) {
    const file = writeComparisonHtml(o.html, reports, mode);
    if (!o.json) process.stdout.write(`HTML: ${path.relative(process.cwd(), file) || file} (the policies side by side and each run's plots)\n`);
  }
  return interrupted ? EXIT_INTERRUPTED : Math.max(EXIT_OK, ...reports.map(exitCodeOf));
}

/** One table per scenario (the runs it reached before any Ctrl-C). */
function writeTables(scenarios: Scenario[], reports: RunReport[]): void {
  for (const s of scenarios) {
    const rows = reports.filter((r) => r.scenario === s.name);
    if (rows.length === 0) continue; // not reached before a Ctrl-C
    process.stdout.write(`${s.name} — ${s.description}\n${table(rows)}\n\n`);
  }
}

/** `--profile a,b`: a section of tables per profile, then per scenario the winner of its headline figure under each. */
function writeProfileSections(scenarios: Scenario[], profiles: string[], reports: RunReport[]): void {
  for (const profile of profiles) {
    process.stdout.write(`== profile ${profile} — ${gpuCostProfile(profile).summary}\n\n`);
    writeTables(scenarios, reports.filter((r) => r.profile === profile));
  }
  process.stdout.write('Verdicts by profile (the headline figure of each scenario; only runs the checker passed compete):\n');
  for (const s of scenarios) {
    const byProfile = profiles.map((profile) => ({ profile, rows: reports.filter((r) => r.scenario === s.name && r.profile === profile) }));
    if (byProfile.every((p) => p.rows.length === 0)) continue;
    process.stdout.write(`  ${verdictLine(s.name, byProfile)}\n`);
  }
  process.stdout.write('\n');
}
