// `svmsim worker --queue redis://HOST:PORT`: takes the chunks of seeds that queued sweeps put on
// the queue (sweep-queue-protocol.ts), runs them on a pool of threads, returns their outcomes.
// Runs until Ctrl-C / SIGTERM (it finishes nothing half: the job in hand goes back to the queue once
// its lock lapses) or, with --exit-when-idle, until the queue has no job for it.
import os from 'node:os';
import { Worker, type Job } from 'bullmq';
import { EXIT_OK } from './common.js';
import { EXIT_INTERRUPTED, onInterrupt } from './interrupt.js';
import { probeRedis, type RedisTarget } from './redis-url.js';
import { runSeeds, seedPool } from './sweep-pool.js';
import { MAX_STALLED_COUNT, SWEEP_JOB_NAME, type SweepJobData, type SweepJobResult } from './sweep-queue-protocol.js';
import type { SweepOutcome } from './sweep-worker.js';
import { SVMSIM_VERSION } from './version.js';

export interface QueueWorkerOptions {
  target: RedisTarget;
  queueName: string;
  jobs: number;
  lockDurationMs: number;
  exitWhenIdle: boolean;
}

export async function queueWorkerCommand(o: QueueWorkerOptions): Promise<number> {
  await probeRedis(o.target);
  const me = `${os.hostname()}:${process.pid}`;
  const log = (line: string) => process.stderr.write(`svmsim worker ${me}: ${line}\n`);
  const pool = seedPool(o.jobs);
  const interrupt = onInterrupt();
  const run = async (job: Job<SweepJobData, SweepJobResult>): Promise<SweepJobResult> => {
    const d = job.data;
    if (job.name !== SWEEP_JOB_NAME) throw new Error(`not an svmsim sweep job (${job.name})`);
    if (d.svmsim !== SVMSIM_VERSION) throw new Error(`the sweep is svmsim ${d.svmsim}'s and this worker is svmsim ${SVMSIM_VERSION}: seeds would not replay alike`);
    log(`job ${job.id}: seeds ${d.from}..${d.to} started`);
    const outcomes: SweepOutcome[] = [];
    const { interrupted } = await runSeeds(pool, d.scenario, d.policies, d, (r) => outcomes.push(r), interrupt.signal);
    // Stopped half way, the job is not done: thrown, BullMQ would fail it; its lock is left to lapse
    // instead (the worker closes without completing it), so that another worker runs it whole.
    if (interrupted) return new Promise<never>(() => {});
    log(`job ${job.id}: seeds ${d.from}..${d.to} done, ${outcomes.filter((r) => !r.ok).length} failing`);
    return { worker: me, outcomes };
  };
  const worker = new Worker<SweepJobData, SweepJobResult>(o.queueName, run, {
    connection: o.target.options,
    concurrency: 1,
    lockDuration: o.lockDurationMs,
    stalledInterval: o.lockDurationMs,
    maxStalledCount: MAX_STALLED_COUNT,
    autorun: false,
  });
  worker.on('error', (e) => log(`redis: ${e.message}`));
  log(`taking jobs from ${o.target.shown} queue ${o.queueName} with ${o.jobs} thread${o.jobs === 1 ? '' : 's'}`);
  const idle = new Promise<void>((resolve) => o.exitWhenIdle && worker.on('drained', () => resolve()));
  const stopped = new Promise<void>((resolve) => interrupt.signal.addEventListener('abort', () => resolve(), { once: true }));
  void worker.run();
  await Promise.race([idle, stopped]);
  // close(true): do not wait for the job in hand (an interrupted one never finishes, see above).
  await worker.close(interrupt.signal.aborted);
  await pool.close();
  interrupt.dispose();
  return interrupt.signal.aborted ? EXIT_INTERRUPTED : EXIT_OK;
}
