// The `sweep` block of `npm run bench`: seeded runs of `mirror-race` per second, on one thread
// in-process (LocalScheduler, the per-seed work of a sweep and nothing else) and on this machine's
// cores (the same pool `svmsim sweep` uses), and what the pool's rate makes of 10,000 seeds (target:
// under 10 minutes). Beside them, the raw baseline of the same bench run: the runtime block's
// LocalScheduler delivery rate (echo pairs, trace off).
import os from 'node:os';
import { performance } from 'node:perf_hooks';
import sweepOne from '../commands/sweep-worker.js';
import { runSeeds, seedPool } from '../commands/sweep-pool.js';
import { readScenarioText, type ScenarioText } from '../scenario/load.js';

const SCENARIO = 'mirror-race';
const WARMUP_SEEDS = 4;
const POOL_SEEDS = 60;
const IN_PROCESS_SEEDS = 20;
const TEN_THOUSAND = 10_000;

const round1 = (x: number) => Math.round(x * 10) / 10;

/** Seeds [from, from + n) one after another on this thread: runs per second. */
async function inProcessRate(scenario: ScenarioText, from: number, n: number): Promise<number> {
  const t0 = performance.now();
  for (let seed = from; seed < from + n; seed++) {
    const o = await sweepOne({ scenario, policies: {}, seed });
    if (!o.ok) throw new Error(`sweep bench: safe seed ${seed} failed in-process: ${o.error ?? o.violations.join('; ')}`);
  }
  return n / ((performance.now() - t0) / 1000);
}

export async function sweepBench(progress: (line: string) => void, rawLocalDeliveriesPerSec?: number): Promise<Record<string, unknown>> {
  const threads = Math.max(1, os.availableParallelism());
  const scenario = readScenarioText(SCENARIO);
  await inProcessRate(scenario, 1, WARMUP_SEEDS);
  progress(`sweep: ${IN_PROCESS_SEEDS} seeds of ${SCENARIO} in-process, one thread`);
  const inProcessPerSec = await inProcessRate(scenario, 2000, IN_PROCESS_SEEDS);
  const pool = seedPool(threads);
  try {
    let failing = 0;
    await runSeeds(pool, scenario, {}, { from: 1, to: WARMUP_SEEDS }, () => {});
    progress(`sweep: ${POOL_SEEDS} seeds of ${SCENARIO} on ${threads} threads`);
    const t0 = performance.now();
    await runSeeds(pool, scenario, {}, { from: 1000, to: 1000 + POOL_SEEDS - 1 }, (o) => (failing += o.ok ? 0 : 1));
    const s = (performance.now() - t0) / 1000;
    if (failing > 0) throw new Error(`sweep bench: ${failing} of ${POOL_SEEDS} safe seeds failed`);
    const seedsPerSec = POOL_SEEDS / s;
    return {
      scenario: SCENARIO,
      threads,
      seeds: POOL_SEEDS,
      seedsPerSec: round1(seedsPerSec),
      tenThousandSeedsMin: round1(TEN_THOUSAND / seedsPerSec / 60),
      targetTenThousandSeedsMin: 10,
      inProcess: { seeds: IN_PROCESS_SEEDS, seedsPerSec: round1(inProcessPerSec), msPerSeed: round1(1000 / inProcessPerSec), tenThousandSeedsMinOneThread: round1(TEN_THOUSAND / inProcessPerSec / 60) },
      baseline: { what: 'runtime.localDelivery.traceOff (LocalScheduler deliveries/s, echo pairs)', msgsPerSec: rawLocalDeliveriesPerSec ?? null },
    };
  } finally {
    await pool.close();
  }
}
