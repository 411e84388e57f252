// The `sweep` block of `npm run bench`: seeds per second of a `mirror-race` sweep on this machine's
// cores (the same pool `svmsim sweep` uses), and what that makes of 10,000 seeds (target: under 10
// minutes). The raw baseline is the runtime block's LocalScheduler delivery rate of the same run.
import os from 'node:os';
import { performance } from 'node:perf_hooks';
import { readScenarioText } from '../scenario/load.js';
import { runSeeds, seedPool } from '../commands/sweep-pool.js';

const SCENARIO = 'mirror-race';
const WARMUP_SEEDS = 4;
const SEEDS = 60;

export async function sweepBench(progress: (line: string) => void): Promise<Record<string, unknown>> {
  const threads = Math.max(1, os.availableParallelism());
  const scenario = readScenarioText(SCENARIO);
  const pool = seedPool(threads);
  try {
    let failing = 0;
    await runSeeds(pool, scenario, {}, { from: 1, to: WARMUP_SEEDS }, () => {});
    progress(`sweep: ${SEEDS} seeds of ${SCENARIO} on ${threads} threads`);
    const t0 = performance.now();
    await runSeeds(pool, scenario, {}, { from: 1000, to: 1000 + SEEDS - 1 }, (o) => (failing += o.ok ? 0 : 1));
    const s = (performance.now() - t0) / 1000;
    if (failing > 0) throw new Error(`sweep bench: ${failing} of ${SEEDS} safe seeds failed`);
    const seedsPerSec = SEEDS / s;
    return { scenario: SCENARIO, threads, seeds: SEEDS, seedsPerSec: Math.round(seedsPerSec * 10) / 10, tenThousandSeedsMin: Math.round((10_000 / seedsPerSec / 60) * 10) / 10, targetTenThousandSeedsMin: 10, baseline: 'runtime.local (LocalScheduler deliveries/s)' };
  } finally {
    await pool.close();
  }
}
