// One seed of a sweep, in a piscina worker: a deterministic run whose trace goes to a temporary
// directory (the checker needs it), removed afterwards: `svmsim replay` recreates it.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { applyPolicies } from '../run/actors.js';
import { exitCodeOf, runScenario } from '../run/run-scenario.js';
import { loadScenario } from '../scenario/load.js';

export interface SweepTask {
  source: string;
  policies: Record<string, string>;
  seed: number;
}

export interface SweepOutcome {
  seed: number;
  ok: boolean;
  violations: string[];
  violationCount: number;
  expectFailures: number;
  error?: string;
}

export default async function sweepOne(t: SweepTask): Promise<SweepOutcome> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'svmsim-sweep-'));
  try {
    const s = applyPolicies(loadScenario(t.source), t.policies);
    const r = await runScenario(s, { seed: t.seed, mode: 'deterministic', timeScale: 1, traceDir: dir });
    const ok = exitCodeOf(r) === 0;
    return {
      seed: t.seed, ok, violations: r.check.violations.slice(0, 3), violationCount: r.check.violations.length + r.check.violationsDropped, expectFailures: r.expectFailures,
      ...(r.failed !== undefined ? { error: r.failed } : {}),
    };
  } catch (e) {
    return { seed: t.seed, ok: false, violations: [], violationCount: 0, expectFailures: 0, error: e instanceof Error ? e.message : String(e) };
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}
