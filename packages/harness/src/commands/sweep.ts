// `svmsim sweep`: deterministic runs of one scenario over a range of seeds, in parallel on a piscina
// pool; prints each failing seed with the exact command that replays it. Exit 1 if any failed.
import os from 'node:os';
import { Piscina } from 'piscina';
import { applyPolicies } from '../run/actors.js';
import { loadScenario } from '../scenario/load.js';
import { EXIT_OK, EXIT_RUN_FAILED, EXIT_VIOLATION, parseSeedRange } from './common.js';
import { progressBar } from './progress.js';
import type { SweepOutcome, SweepTask } from './sweep-worker.js';

export interface SweepOptions {
  seeds: string;
  jobs?: number;
  policy: Record<string, string>;
  json: boolean;
}

export async function sweepCommand(source: string, o: SweepOptions): Promise<number> {
  const { from, to } = parseSeedRange(o.seeds);
  const s = applyPolicies(loadScenario(source), o.policy); // validates the scenario and policies before any worker starts
  const policies = Object.fromEntries(s.devices.map((d) => [d.id, d.policy]));
  const jobs = o.jobs ?? Math.max(1, os.availableParallelism());
  const pool = new Piscina({ filename: new URL('./sweep-worker.js', import.meta.url).href, minThreads: 1, maxThreads: jobs, idleTimeout: 1000 });
  const total = to - from + 1;
  const bar = progressBar(total, 'seeds');
  const outcomes: SweepOutcome[] = [];
  try {
    await Promise.all(
      Array.from({ length: total }, (_, i) => {
        const task: SweepTask = { source, policies: o.policy, seed: from + i };
        return (pool.run(task) as Promise<SweepOutcome>).then((r) => {
          outcomes.push(r);
          bar.tick(`${outcomes.filter((x) => !x.ok).length} failing`);
        });
      }),
    );
  } finally {
    bar.done();
    await pool.destroy();
  }
  outcomes.sort((a, b) => a.seed - b.seed);
  const failed = outcomes.filter((r) => !r.ok);
  const pol = Object.entries(policies).map(([d, p]) => ` --policy ${d}=${p}`).join('');
  if (o.json) process.stdout.write(JSON.stringify({ scenario: s.name, policies, from, to, failed }, null, 2) + '\n');
  else {
    const violations = failed.reduce((n, r) => n + r.violationCount, 0);
    process.stdout.write(`svmsim sweep ${source}${pol} --seeds ${from}..${to}: ${total} runs, ${failed.length} failing${violations ? ` (${violations} violations)` : ''}\n`);
    for (const r of failed) {
      const why = r.error ?? r.violations[0] ?? `${r.expectFailures} unmet expect`;
      process.stdout.write(`seed ${r.seed}: ${why}\n  replay: svmsim replay ${source}${pol} --seed ${r.seed} --trace out/\n`);
    }
  }
  // A seed whose run could not finish is a failed run (3); otherwise any violation is 1.
  if (failed.some((r) => r.error !== undefined)) return EXIT_RUN_FAILED;
  return failed.length === 0 ? EXIT_OK : EXIT_VIOLATION;
}
