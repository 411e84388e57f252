// `svmsim replay`: re-run one seed deterministically, keep its full trace, and show the first
// violation with the last events of mm at its page before it.
import path from 'node:path';
import { readTrace } from '@svmsim/runtime';
import { applyPolicies } from '../run/actors.js';
import { exitCodeOf, runScenario } from '../run/run-scenario.js';
import { details, table } from '../report/table.js';
import { loadScenario } from '../scenario/load.js';
import { durationOption, runName, runsDir, withKernel, withProfile } from './common.js';

export interface ReplayOptions {
  seed: number;
  duration?: string;
  policy: Record<string, string>;
  trace?: string;
  json: boolean;
  /** --kernel: the era the replayed run used, if not the scenario's machine.kernel. */
  kernel?: string;
  /** --profile: the GPU cost profile the replayed run used, if not the scenario's machine.profile. */
  profile?: string;
}

/** How many trace lines of the page are shown before the first violation. */
const CONTEXT_LINES = 12;

export async function replayCommand(source: string, o: ReplayOptions): Promise<number> {
  let s = applyPolicies(loadScenario(source), o.policy);
  if (o.duration !== undefined) s = { ...s, duration: durationOption(o.duration) };
  s = withProfile(withKernel(s, o.kernel), o.profile);
  const policies = Object.fromEntries(s.devices.map((d) => [d.id, d.policy]));
  const traceDir = o.trace ?? path.join(runsDir(), `replay.${runName(s.name, policies, o.seed)}`);
  const r = await runScenario(s, { seed: o.seed, mode: 'deterministic', timeScale: 1, traceDir });
  if (o.json) {
    process.stdout.write(JSON.stringify(r, null, 2) + '\n');
  } else {
    process.stdout.write(`svmsim replay ${s.name} — seed ${o.seed}, deterministic, kernel ${s.machine.kernel}, profile ${s.machine.profile}\n\n${table([r])}\n${details(r)}\n`);
    const first = r.check.violations[0];
    const addr = first ? /addr (0x[0-9a-f]+)/.exec(first)?.[1] : undefined;
    const pid = first ? Number(/pid (\d+)/.exec(first)?.[1]) : NaN;
    const at = first ? Number(/ at t=(\d+)/.exec(first)?.[1] ?? Infinity) : Infinity;
    if (addr !== undefined) {
      const a = Number(addr);
      const lines = readTrace(traceDir).filter(
        (l) => l.actor === 'mm' && l.t <= at && (Number.isNaN(pid) || l.pid === pid) && (l.addr === a || (typeof l.start === 'number' && typeof l.end === 'number' && l.start <= a && a < l.end)),
      );
      process.stdout.write(`\nthe last ${CONTEXT_LINES} events of mm at ${addr} (whole trace: ${traceDir}):\n`);
      for (const l of lines.slice(-CONTEXT_LINES)) process.stdout.write(`  ${JSON.stringify(l)}\n`);
    }
    process.stdout.write(`\nTrace: ${traceDir}\n`);
  }
  return exitCodeOf(r);
}
