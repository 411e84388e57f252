// The seeds of a sweep on a piscina pool of worker threads, one deterministic run per task. Used by
// a sweep on this machine, by each shard of a sharded one and by `svmsim worker` for a queue's jobs.
import { Piscina } from 'piscina';
import type { ScenarioText } from '../scenario/load.js';
import type { SweepOutcome, SweepTask } from './sweep-worker.js';

export interface SeedPool {
  /** Runs one seed; rejects only if the pool was closed first. */
  run(task: SweepTask): Promise<SweepOutcome>;
  /** Terminates the threads: runs still going are abandoned (their promises reject). */
  close(): Promise<void>;
  readonly threads: number;
}

export function seedPool(threads: number): SeedPool {
  const pool = new Piscina({ filename: new URL('./sweep-worker.js', import.meta.url).href, minThreads: 1, maxThreads: threads, idleTimeout: 1000 });
  return {
    run: (task) => pool.run(task) as Promise<SweepOutcome>,
    close: () => pool.destroy(),
    threads,
  };
}

/**
 * Every seed in [from, to] of one scenario on `pool`, `onOutcome` called as each finishes (in
 * finishing order), at most TASKS_PER_THREAD × `pool.threads` in flight (a sweep of 10^7 seeds
 * queues no 10^7 tasks).
 * Once `signal` aborts no new seed starts, and the call returns with the seeds done so far (runs in
 * flight are left to `pool.close()`); the result says whether it was cut short.
 */
/**
 * Tasks handed to the pool per thread: a thread that finishes a seed finds the next one queued in
 * the pool, rather than idling until this thread (itself waiting for a core on a busy machine) has
 * read the outcome and posted another.
 */
const TASKS_PER_THREAD = 2;

export async function runSeeds(
  pool: SeedPool,
  scenario: ScenarioText,
  policies: Record<string, string>,
  seeds: { from: number; to: number },
  onOutcome: (o: SweepOutcome) => void,
  signal?: AbortSignal,
  /** --profile: the GPU cost profile every seed runs under (absent: the scenario's). */
  profile?: string,
): Promise<{ interrupted: boolean }> {
  let next = seeds.from;
  const aborted = new Promise<undefined>((resolve) => (signal?.aborted ? resolve(undefined) : signal?.addEventListener('abort', () => resolve(undefined), { once: true })));
  const lane = async () => {
    while (next <= seeds.to && !signal?.aborted) {
      const run = pool.run({ scenario, policies, seed: next++, ...(profile !== undefined && { profile }) });
      run.catch(() => {}); // rejected by pool.close() after an interrupt: nobody waits for it then
      const r = await Promise.race([run, aborted]);
      if (r === undefined) return;
      onOutcome(r);
    }
  };
  await Promise.all(Array.from({ length: pool.threads * TASKS_PER_THREAD }, lane));
  return { interrupted: Boolean(signal?.aborted) };
}
