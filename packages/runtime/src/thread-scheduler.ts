// ThreadScheduler: each actor in its own worker thread, hosted by piscina as one long-lived task.
//
// Topology: a full mesh of MessageChannels between actors (n·(n-1)/2 channels), plus one control
// channel per actor to this thread. Each task's ports travel in its transferList. Per-pair FIFO is
// the MessagePort's own order. Time is the wall clock times `timeScale` from a common epoch.
//
// Ending a run: an actor calls stopRun, or `durationNs` of simulated time passes, or `signal`
// aborts (Ctrl-C: the actors are stopped as at the end of the duration), or an actor dies.
// A death (receive threw, or the worker exited) is told to every other actor as actor_died (and
// answers their requests pending on it), then the run stops and rejects with ActorDiedError
// naming the actor. Every wait here is bounded: loading (SETUP_TIMEOUT_MS) and stopping
// (STOP_TIMEOUT_MS; an actor stuck in its own code cannot answer and is reported as hung).
// An injected kill (faults.ts) is the exception: the main thread tells the worker to exit at the
// kill's time, and when its task ends the others are told actor_died and the run goes on without
// it; the result names it in `died`.
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { MessageChannel, type MessagePort } from 'node:worker_threads';
import { Piscina } from 'piscina';
import { ActorDiedError, RunSetupError } from './errors.js';
import { checkFaultPlan, killedError, type DeadActor } from './faults.js';
import { checkSpecs } from './load.js';
import type { ActorTask, FromWorker, ToWorker, WorkerCounters } from './thread-protocol.js';
import { TraceSink } from './trace.js';
import { TRACE_EXT } from './trace-format.js';
import type { ActorId, RunOptions, RunResult } from './types.js';

export interface ThreadRunOptions extends RunOptions {
  /** Simulated ns per wall-clock ns. 1000 makes an hour of simulated time last 3.6 s. Default 1. */
  timeScale?: number;
}

const SETUP_TIMEOUT_MS = 30_000;
const STOP_TIMEOUT_MS = 2_000;

/** The trace file of one actor in a ThreadScheduler trace directory. */
export function threadTraceFile(traceDir: string, actor: ActorId): string {
  return path.join(traceDir, `${actor}${TRACE_EXT}`);
}

interface WorkerSlot {
  id: ActorId;
  control: MessagePort;
  ready: Deferred<void>;
  stopped: Deferred<{ summary: Record<string, unknown>; counters: WorkerCounters; endNs: number }>;
  stopSent: boolean;
  /** Killed by the fault plan: its death does not end the run. */
  killAt: number | undefined;
  dead: boolean;
}

type Ending = { kind: 'stopRun'; actor: ActorId; reason: string } | { kind: 'duration' } | { kind: 'interrupted' } | { kind: 'died'; error: ActorDiedError };

export class ThreadScheduler {
  async run(opts: ThreadRunOptions): Promise<RunResult> {
    checkSpecs(opts.actors);
    const timeScale = opts.timeScale ?? 1;
    if (!(timeScale > 0) || !Number.isFinite(timeScale)) throw new RunSetupError(`timeScale must be a positive number, got ${timeScale}`);
    const n = opts.actors.length;
    checkFaultPlan(opts.faults, opts.actors.map((a) => a.id));
    const died: DeadActor[] = [];
    const sink = opts.traceDir === undefined ? undefined : new TraceSink(threadTraceFile(opts.traceDir, 'scheduler'));
    const pool = new Piscina({
      filename: new URL('./thread-worker.js', import.meta.url).href,
      minThreads: n,
      maxThreads: n,
      concurrentTasksPerWorker: 1,
      idleTimeout: 60_000,
      atomics: 'disabled',
    });
    let epochMs = NaN;
    const simNow = () => (Number.isNaN(epochMs) ? 0 : (performance.timeOrigin + performance.now() - epochMs) * 1e6 * timeScale);
    const ending = new Deferred<Ending>();
    const end = (e: Ending) => ending.resolve(e);

    // The mesh: ports[i][j] is i's end of the channel between i and j.
    const ports: MessagePort[][] = Array.from({ length: n }, () => new Array<MessagePort>(n));
    for (let i = 0; i < n; i++) {
      for (let j = i + 1; j < n; j++) {
        const ch = new MessageChannel();
        ports[i][j] = ch.port1;
        ports[j][i] = ch.port2;
      }
    }

    const slots: WorkerSlot[] = opts.actors.map((spec, i) => {
      const ch = new MessageChannel();
      const killAt = opts.faults?.kills?.find((k) => k.actor === spec.id)?.atNs;
      const slot: WorkerSlot = { id: spec.id, control: ch.port1, ready: new Deferred(), stopped: new Deferred(), stopSent: false, killAt, dead: false };
      const peers: Record<ActorId, MessagePort> = {};
      for (let j = 0; j < n; j++) if (j !== i) peers[opts.actors[j].id] = ports[i][j];
      const task: ActorTask = {
        spec,
        seed: opts.seed,
        timeScale,
        traceFile: opts.traceDir === undefined ? null : threadTraceFile(opts.traceDir, spec.id),
        control: ch.port2,
        peers,
        faults: opts.faults,
      };
      const onDeath = (error: ActorDiedError) => {
        if (slot.killAt !== undefined && slot.ready.settled && !slot.dead) {
          // The death the plan asked for: the others hear of it and go on.
          slot.dead = true;
          const why = killedError(slot.killAt);
          died.push({ actor: spec.id, error: why, atNs: simNow(), injected: true });
          sink?.event(simNow(), 'scheduler', 'actor_died', { dead: spec.id, error: why });
          slot.stopped.resolve({ summary: { died: why, diedAtNs: simNow() }, counters: { sent: 0, received: 0, lateReplies: 0, pendingRequests: 0, faultDrops: 0, faultHolds: 0 }, endNs: simNow() });
          for (const s of slots) if (s !== slot && !s.dead && !s.stopSent) post(s, { kind: 'actorDied', actor: spec.id, error: why });
          return;
        }
        sink?.event(simNow(), 'scheduler', 'actor_died', { dead: spec.id, error: error.message });
        slot.ready.reject(error);
        slot.stopped.reject(error);
        end({ kind: 'died', error });
      };
      const diedOf = onDeath;
      slot.control.on('message', (m: FromWorker) => {
        switch (m.kind) {
          case 'ready':
            slot.ready.resolve();
            return;
          case 'stopRun':
            end({ kind: 'stopRun', actor: spec.id, reason: m.reason });
            return;
          case 'died':
            diedOf(new ActorDiedError(spec.id, m.error, m.during, m.stack));
            return;
          case 'stopped':
            slot.stopped.resolve(m);
            return;
          default: {
            const never: never = m;
            throw new Error(`unknown message from worker: ${JSON.stringify(never)}`);
          }
        }
      });
      // Once the run is stopping, a task that ends (or a worker that pool.destroy() terminates) is expected.
      pool.run(task, { transferList: [ch.port2, ...Object.values(peers)] as never }).then(
        () => slot.stopSent || diedOf(new ActorDiedError(spec.id, 'its task returned before the run stopped')),
        (e: unknown) => {
          if (slot.stopSent && !slot.dead) return;
          const why = e instanceof Error ? e.message : String(e);
          diedOf(new ActorDiedError(spec.id, slot.ready.settled ? `its worker thread exited: ${why}` : why));
        },
      );
      return slot;
    });
    const post = (slot: WorkerSlot, m: ToWorker) => slot.control.postMessage(m);

    try {
      await withTimeout(
        Promise.all(slots.map((s) => s.ready.promise)),
        SETUP_TIMEOUT_MS,
        () => new RunSetupError(`actors did not load within ${SETUP_TIMEOUT_MS} ms: ${slots.filter((s) => !s.ready.settled).map((s) => s.id).join(', ')}`),
      );
    } catch (e) {
      await pool.destroy();
      sink?.close();
      throw e instanceof ActorDiedError ? new RunSetupError(e.why) : e;
    }

    epochMs = performance.timeOrigin + performance.now();
    for (const s of slots) post(s, { kind: 'start', epochMs });
    const killTimers = slots.flatMap((s) =>
      s.killAt === undefined ? [] : [setTimeout(() => s.dead || s.stopSent || post(s, { kind: 'kill', error: killedError(s.killAt!) }), s.killAt / 1e6 / timeScale)],
    );
    let durationTimer: NodeJS.Timeout | undefined;
    if (opts.durationNs !== undefined) durationTimer = setTimeout(() => end({ kind: 'duration' }), opts.durationNs / 1e6 / timeScale);
    const interrupted = () => end({ kind: 'interrupted' });
    if (opts.signal?.aborted) interrupted();
    opts.signal?.addEventListener('abort', interrupted, { once: true });
    const how = await ending.promise;
    clearTimeout(durationTimer);
    killTimers.forEach(clearTimeout);
    opts.signal?.removeEventListener('abort', interrupted);

    if (how.kind === 'died') {
      for (const s of slots) if (s.id !== how.error.actor && !s.stopped.settled) post(s, { kind: 'actorDied', actor: how.error.actor, error: how.error.why });
    }
    for (const s of slots) {
      s.stopSent = true;
      if (!s.stopped.settled) post(s, { kind: 'stop' });
    }
    let faultDrops = 0;
    let faultHolds = 0;
    const summaries: RunResult['summaries'] = {};
    let delivered = 0;
    let endNs = 0;
    let hung: ActorDiedError | undefined;
    const stops = await Promise.allSettled(
      slots.map((s) => withTimeout(s.stopped.promise, STOP_TIMEOUT_MS, () => new ActorDiedError(s.id, `did not answer stop within ${STOP_TIMEOUT_MS} ms (hung in its own code?)`))),
    );
    stops.forEach((st, i) => {
      if (st.status === 'fulfilled') {
        summaries[slots[i].id] = st.value.summary;
        delivered += st.value.counters.received;
        faultDrops += st.value.counters.faultDrops;
        faultHolds += st.value.counters.faultHolds;
        endNs = Math.max(endNs, st.value.endNs);
      } else if (st.reason instanceof ActorDiedError && st.reason.actor === slots[i].id && how.kind !== 'died') {
        hung ??= st.reason;
      }
    });
    for (const s of slots) s.control.close();
    await pool.destroy();
    const endedBy = how.kind === 'died' ? 'stopRun' : how.kind;
    const reason = how.kind === 'stopRun' ? `${how.actor}: ${how.reason}` : how.kind === 'died' ? how.error.message : how.kind === 'interrupted' ? 'interrupted (Ctrl-C)' : 'duration';
    sink?.event(Math.max(endNs, simNow()), 'scheduler', 'run_end', { endedBy, reason, delivered });
    sink?.close();
    if (how.kind === 'died') throw how.error;
    if (hung) throw hung;
    const result: RunResult = { endedBy, reason, endNs, summaries, delivered };
    if (died.length > 0) result.died = died;
    if (opts.faults?.delays?.length || opts.faults?.drops?.length || opts.faults?.reorder) Object.assign(result, { faultDrops, faultHolds });
    return result;
  }
}

class Deferred<T> {
  readonly promise: Promise<T>;
  settled = false;
  resolve!: (v: T) => void;
  reject!: (e: unknown) => void;
  constructor() {
    this.promise = new Promise<T>((res, rej) => {
      this.resolve = (v) => {
        if (!this.settled) (this.settled = true), res(v);
      };
      this.reject = (e) => {
        if (!this.settled) (this.settled = true), rej(e);
      };
    });
    this.promise.catch(() => {}); // a rejection nobody awaits is not an unhandled one
  }
}

async function withTimeout<T>(p: Promise<T>, ms: number, error: () => Error): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([p, new Promise<never>((_, rej) => (timer = setTimeout(() => rej(error()), ms)))]);
  } finally {
    clearTimeout(timer);
  }
}
