// `svmsim sweep … --queue redis://HOST:PORT`: this process is the producer. It puts the seeds on a
// BullMQ queue in chunks (sweep-queue-protocol.ts), any number of `svmsim worker --queue …` on any
// machines run them, and the outcomes come back here to be printed as one sweep. Each seed is
// counted once however often it ran; Ctrl-C takes the jobs not yet started off the queue.
import crypto from 'node:crypto';
import { Queue, QueueEvents, type Job } from 'bullmq';
import type { ScenarioText } from '../scenario/load.js';
import { progressBar } from './progress.js';
import { probeRedis, type RedisTarget } from './redis-url.js';
import { SweepTally } from './sweep-result.js';
import { SWEEP_JOB_NAME, sweepJobId, type SweepJobData, type SweepJobResult } from './sweep-queue-protocol.js';
import type { SweepOutcome } from './sweep-worker.js';
import { SVMSIM_VERSION } from './version.js';

export interface QueuedSweep {
  target: RedisTarget;
  queueName: string;
  scenario: ScenarioText;
  policies: Record<string, string>;
  from: number;
  to: number;
  chunk: number;
  signal: AbortSignal;
  /** Progress lines go here (stderr). */
  log: (line: string) => void;
}

/** Jobs added to redis per call. */
const ADD_BATCH = 1000;
/** How often the producer also reads finished jobs from redis, in case it missed their events. */
const POLL_MS = 5000;
/** Finished jobs stay in redis this long (s) for a producer that missed their events; it removes them as it reads them. */
const FINISHED_KEPT_S = 24 * 3600;
/** After this long with no outcome, a line says how many workers the queue has. */
const QUIET_MS = 30_000;

export async function runQueuedSweep(q: QueuedSweep): Promise<{ tally: SweepTally; interrupted: boolean; redelivered: number }> {
  await probeRedis(q.target);
  const connection = q.target.options;
  const queue = new Queue<SweepJobData, SweepJobResult>(q.queueName, { connection });
  const events = new QueueEvents(q.queueName, { connection });
  const tally = new SweepTally(q.from, q.to);
  const total = q.to - q.from + 1;
  const sweep = crypto.randomUUID();
  const pending = new Set<string>(); // job ids not yet finished
  const chunkOf = new Map<string, { from: number; to: number }>();
  let redelivered = 0;
  let lastOutcomeAt = Date.now();
  const bar = progressBar(total, 'seeds');
  let finish!: () => void;
  const finished = new Promise<void>((resolve) => (finish = resolve));

  const settle = (jobId: string, outcomes: SweepOutcome[]) => {
    if (!pending.delete(jobId)) return;
    for (const o of outcomes) {
      if (tally.add(o)) bar.tick(`${tally.failing} failing`);
      else redelivered++;
    }
    lastOutcomeAt = Date.now();
    void queue.remove(jobId).catch(() => {});
    if (tally.runs === total || pending.size === 0) finish();
  };
  const completed = (jobId: string, returnvalue: unknown) => {
    const r = (typeof returnvalue === 'string' ? JSON.parse(returnvalue) : returnvalue) as SweepJobResult;
    settle(jobId, r.outcomes);
  };
  // A job that failed on the workers (it stalled MAX_STALLED_COUNT times, or a worker refused it):
  // its seeds did not run; each is reported as a run that could not finish, with the reason.
  const failed = (jobId: string, reason: string) => {
    const c = chunkOf.get(jobId);
    if (!c) return;
    const outcomes: SweepOutcome[] = [];
    for (let seed = c.from; seed <= c.to; seed++) if (!tally.has(seed)) outcomes.push({ seed, ok: false, violations: [], violationCount: 0, expectFailures: 0, error: `its queue job failed: ${reason}` });
    settle(jobId, outcomes);
  };
  events.on('completed', ({ jobId, returnvalue }) => pending.has(jobId) && completed(jobId, returnvalue));
  events.on('failed', ({ jobId, failedReason }) => pending.has(jobId) && failed(jobId, failedReason));
  const onAbort = () => finish();
  q.signal.addEventListener('abort', onAbort, { once: true });

  let poll: NodeJS.Timeout | undefined;
  try {
    await events.waitUntilReady();
    // Jobs are made and added a batch at a time: a million seeds are 50 000 jobs, each with the scenario.
    let jobCount = 0;
    for (let from = q.from; from <= q.to && !q.signal.aborted; ) {
      const batch = [];
      for (; from <= q.to && batch.length < ADD_BATCH; from += q.chunk) {
        const to = Math.min(q.to, from + q.chunk - 1);
        const jobId = sweepJobId(sweep, from);
        pending.add(jobId);
        chunkOf.set(jobId, { from, to });
        const data: SweepJobData = { sweep, svmsim: SVMSIM_VERSION, scenario: q.scenario, policies: q.policies, from, to };
        batch.push({ name: SWEEP_JOB_NAME, data, opts: { jobId, removeOnComplete: { age: FINISHED_KEPT_S }, removeOnFail: { age: FINISHED_KEPT_S } } });
      }
      await queue.addBulk(batch);
      jobCount += batch.length;
    }
    q.log(`svmsim: ${total} seeds in ${jobCount} jobs on ${q.target.shown} queue ${q.queueName}; run \`svmsim worker --queue ${q.target.shown}${q.queueName === 'svmsim-sweep' ? '' : ` --queue-name ${q.queueName}`}\` on any machine to take them`);
    const catchUp = async () => {
      // Events are fire-and-forget: a finished job whose event this process missed is still in redis.
      for (const state of ['completed', 'failed'] as const) {
        const list: Job<SweepJobData, SweepJobResult>[] = await queue.getJobs([state], 0, 999).catch(() => []);
        for (const j of list) {
          if (!j?.id || !pending.has(j.id)) continue;
          if (state === 'completed') completed(j.id, j.returnvalue);
          else failed(j.id, j.failedReason);
        }
      }
      if (Date.now() - lastOutcomeAt > QUIET_MS && pending.size > 0) {
        const workers = await queue.getWorkersCount().catch(() => NaN);
        q.log(`svmsim: ${tally.runs} of ${total} seeds done; ${Number.isNaN(workers) ? 'redis does not answer' : `${workers} worker${workers === 1 ? '' : 's'} on the queue`}`);
        lastOutcomeAt = Date.now();
      }
    };
    poll = setInterval(() => void catchUp(), POLL_MS);
    if (pending.size > 0) await finished;
    if (redelivered > 0) q.log(`svmsim: ${redelivered} seeds ran twice (a worker stopped in the middle of their job, which ran again elsewhere); each is counted once`);
    return { tally, interrupted: q.signal.aborted && tally.runs < total, redelivered };
  } finally {
    clearInterval(poll);
    q.signal.removeEventListener('abort', onAbort);
    bar.done();
    // What was not taken yet is taken off the queue; a job running on a worker finishes there and
    // its result is removed with the rest of this sweep's jobs.
    await Promise.all([...pending].map((id) => queue.remove(id).catch(() => 0)));
    await events.close();
    await queue.close();
  }
}
