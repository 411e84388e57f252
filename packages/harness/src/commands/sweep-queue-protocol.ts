// What a queued sweep's producer and its workers say to each other through BullMQ, and nothing
// else: a job is a chunk of seeds of one sweep; its return value is their outcomes.
//
//   producer                         redis (BullMQ queue)                 svmsim worker (any machine)
//   addBulk({sweep, chunk}) ───────▶ wait ──▶ active (locked) ─────────▶ runs the seeds
//   QueueEvents 'completed' ◀─────── completed ◀──── return {outcomes} ◀─┘
//                                    a worker that dies stops renewing its lock: another worker's
//                                    stalled-job check puts the job back in wait, and it runs again
//
// A seed may therefore run twice (the dead worker had done some); the producer counts each seed once.
import { UsageError } from '../run/actors.js';
import type { ScenarioText } from '../scenario/load.js';
import { durationOption } from './common.js';
import type { SweepOutcome } from './sweep-worker.js';

export const SWEEP_JOB_NAME = 'svmsim-seeds';

export interface SweepJobData {
  /** The producer's sweep id: many sweeps may share a queue and its workers. */
  sweep: string;
  /** The producer's svmsim: a worker of another version refuses the job (its seeds could differ). */
  svmsim: string;
  scenario: ScenarioText;
  policies: Record<string, string>;
  from: number;
  to: number;
}

export interface SweepJobResult {
  /** The worker's host and pid, for the producer's log. */
  worker: string;
  outcomes: SweepOutcome[];
}

/** A chunk's job id: the sweep and its first seed (BullMQ ids may not be bare integers or hold ':'). */
export function sweepJobId(sweep: string, from: number): string {
  return `${sweep}.${from}`;
}

/** Seeds per job unless --chunk says: big enough to amortise a round trip, small enough to re-run… */
export const DEFAULT_CHUNK_SEEDS = 20;
/** …and, for big sweeps, as many as keep the queue to this many jobs (each carries the scenario). */
export const DEFAULT_MAX_JOBS = 5000;

export function defaultChunk(seeds: number): number {
  return Math.min(MAX_CHUNK_SEEDS, Math.max(DEFAULT_CHUNK_SEEDS, Math.ceil(seeds / DEFAULT_MAX_JOBS)));
}
export const MAX_CHUNK_SEEDS = 10_000;

/** A dead worker's job is taken back once its lock is this old, unless --lock-duration says. */
export const DEFAULT_LOCK_DURATION_MS = 30_000;
/** Shorter locks would lapse under a loaded event loop and run every job twice. */
export const MIN_LOCK_DURATION_MS = 500;

/** `--lock-duration 30s`: a time of at least MIN_LOCK_DURATION_MS, in ms. */
export function lockDurationOption(v: string): number {
  const ms = durationOption(v, '--lock-duration') / 1e6;
  if (!(ms >= MIN_LOCK_DURATION_MS) || ms > 2 ** 31 - 1) throw new UsageError(`--lock-duration ${v}: expected from ${MIN_LOCK_DURATION_MS} ms to 24 days`);
  return ms;
}

/** A job whose worker died this many times fails, and its seeds are reported as not run. */
export const MAX_STALLED_COUNT = 3;
