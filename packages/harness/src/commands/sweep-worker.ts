// One seed of a sweep, in a piscina worker: a deterministic run whose trace is kept in memory for
// the checker and dropped: `svmsim replay` writes it again for a seed worth looking at.
import { applyPolicies } from '../run/actors.js';
import { exitCodeOf, runScenario } from '../run/run-scenario.js';
import { parseScenario, type ScenarioText } from '../scenario/load.js';
import type { Scenario } from '../scenario/types.js';
import { unsafePathsTaken } from './unsafe-path-counters.js';
import { withProfile } from './common.js';

export interface SweepTask {
  /** The scenario's text, not its path: a worker on another machine may not have the file. */
  scenario: ScenarioText;
  policies: Record<string, string>;
  seed: number;
  /** --profile: the GPU cost profile instead of the scenario's machine.profile (checked before the sweep starts). */
  profile?: string;
}

export interface SweepOutcome {
  seed: number;
  ok: boolean;
  violations: string[];
  violationCount: number;
  expectFailures: number;
  /** How often an unsafe policy's bug path was taken (unsafe-path-counters.ts): 0 for safe policies. */
  bugPaths?: number;
  error?: string;
}

/** The scenarios this thread has parsed, by text: every seed of a sweep shares one. */
const parsed = new Map<string, Scenario>();
const PARSED_MAX = 16;

function scenarioOf(t: SweepTask): Scenario {
  const key = `${t.scenario.sourceName}\0${JSON.stringify(t.policies)}\0${t.profile ?? ''}\0${t.scenario.text}`;
  let s = parsed.get(key);
  if (s === undefined) {
    if (parsed.size >= PARSED_MAX) parsed.clear();
    s = withProfile(applyPolicies(parseScenario(t.scenario.text, t.scenario.sourceName), t.policies), t.profile);
    parsed.set(key, s);
  }
  return s;
}

export default async function sweepOne(t: SweepTask): Promise<SweepOutcome> {
  try {
    const r = await runScenario(scenarioOf(t), { seed: t.seed, mode: 'deterministic', timeScale: 1 });
    const ok = exitCodeOf(r) === 0;
    return {
      seed: t.seed, ok, violations: r.check.violations.slice(0, 3), violationCount: r.check.violations.length + r.check.violationsDropped, expectFailures: r.expectFailures,
      bugPaths: unsafePathsTaken(r.devices),
      ...(r.failed !== undefined ? { error: r.failed } : {}),
    };
  } catch (e) {
    return { seed: t.seed, ok: false, violations: [], violationCount: 0, expectFailures: 0, bugPaths: 0, error: e instanceof Error ? e.message : String(e) };
  }
}
