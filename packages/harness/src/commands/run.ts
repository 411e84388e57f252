// `svmsim run`: one run of a scenario, a report table, the trace and report.json on disk.
import path from 'node:path';
import { applyPolicies } from '../run/actors.js';
import { injectFaults } from '../run/faults.js';
import { exitCodeOf, runScenario, type RunReport } from '../run/run-scenario.js';
import { details, table } from '../report/table.js';
import { loadScenario } from '../scenario/load.js';
import { formatDuration } from '../scenario/units.js';
import { durationOption, EXIT_OK, runName, runsDir, THREAD_TIME_SCALE, withKernel, withProfile } from './common.js';
import { EXIT_INTERRUPTED, onInterrupt } from './interrupt.js';

export interface RunCommandOptions {
  policy: Record<string, string>;
  seed?: number;
  threads: boolean;
  timeScale?: number;
  duration?: string;
  trace?: string;
  json: boolean;
  /** --kernel: the era instead of the scenario's machine.kernel. */
  kernel?: string;
  /** --profile: the GPU cost profile instead of the scenario's machine.profile. */
  profile?: string;
  /** --inject: faults added to the scenario's (run/faults.ts). */
  inject?: string[];
}

export async function runCommand(source: string, o: RunCommandOptions): Promise<number> {
  let s = injectFaults(applyPolicies(loadScenario(source), o.policy), o.inject);
  if (o.duration !== undefined) s = { ...s, duration: durationOption(o.duration) };
  s = withProfile(withKernel(s, o.kernel), o.profile);
  const seed = o.seed ?? s.seed;
  const traceDir = o.trace ?? path.join(runsDir(), runName(s.name, Object.fromEntries(s.devices.map((d) => [d.id, d.policy])), seed));
  // Only thread mode owns threads to stop; a deterministic run ends at Ctrl-C as any process does.
  const interrupt = o.threads ? onInterrupt() : undefined;
  try {
    const r = await runScenario(s, { seed, mode: o.threads ? 'threads' : 'deterministic', timeScale: o.timeScale ?? s.timeScale ?? THREAD_TIME_SCALE, traceDir, signal: interrupt?.signal });
    if (o.json) process.stdout.write(JSON.stringify(r, null, 2) + '\n');
    else process.stdout.write(render(r, source, o.duration !== undefined ? s.duration : undefined, o.kernel, o.inject ?? [], o.profile));
    return r.endedBy === 'interrupted' ? EXIT_INTERRUPTED : exitCodeOf(r);
  } finally {
    interrupt?.dispose();
  }
}

function render(r: RunReport, source: string, durationNs: number | undefined, kernel: string | undefined, inject: string[], profile?: string): string {
  const policies = Object.entries(r.policies).map(([d, p]) => ` --policy ${d}=${p}`).join('');
  const duration = durationNs === undefined ? '' : ` --duration ${durationNs}ns`;
  const era = (kernel === undefined ? '' : ` --kernel ${kernel}`) + (profile === undefined ? '' : ` --profile ${profile}`);
  // A thread-mode run cannot be replayed; the deterministic run of the same seed is the next step.
  // `replay` takes no --inject: a run with injected faults is re-run with them.
  const faults = inject.map((f) => ` --inject '${f}'`).join('');
  const replay = faults ? `svmsim run ${source}${policies}${duration}${era}${faults} --seed ${r.seed}` : `svmsim replay ${source}${policies}${duration}${era} --seed ${r.seed}`;
  return [
    `svmsim run ${r.scenario} — ${r.mode}, seed ${r.seed}, kernel ${r.kernel}, profile ${r.profile}, ${formatDuration(r.simNs)} simulated in ${r.wallMs} ms`,
    '',
    table([r]),
    details(r),
    '',
    `Trace: ${r.traceDir} (report.json beside it)`,
    ...(exitCodeOf(r) === EXIT_OK ? [] : [`${r.mode === 'threads' ? 'deterministic re-run' : 'replay'}: ${replay} --trace out/`]),
    '',
  ].join('\n');
}
