// The runtime's own figures: thread-mode flood and echo, LocalScheduler flood, each with the trace
// off or on. With the trace on, the trace goes to a fresh temp directory that is deleted after.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import v8 from 'node:v8';
import vm from 'node:vm';
import { LocalScheduler } from '../local-scheduler.js';
import { ThreadScheduler } from '../thread-scheduler.js';
import type { ActorSpec, RunResult } from '../types.js';
import { round, rttUs } from './stats.js';

/** Compiled example module (workers load JavaScript: this file runs from dist/bench/). */
function example(file: string): string {
  return fileURLToPath(new URL(`../examples/${file}.js`, import.meta.url));
}

function floodActors(count: number, warmup: number): ActorSpec[] {
  return [
    { id: 'flooder', module: example('flood'), exportName: 'createFlooder', config: { to: 'sink', count } },
    { id: 'sink', module: example('timed-sink'), exportName: 'createTimedSink', config: { count, warmup } },
  ];
}

/** Runs `fn` with a temp trace directory (or none), and adds the trace's size in MB (0: none). */
async function withTrace<T>(trace: boolean, fn: (traceDir: string | undefined) => Promise<T>): Promise<T & { traceMB: number }> {
  if (!trace) return { ...(await fn(undefined)), traceMB: 0 };
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'svmsim-bench-'));
  try {
    const r = await fn(dir);
    const bytes = fs.readdirSync(dir).reduce((sum, f) => sum + fs.statSync(path.join(dir, f)).size, 0);
    return { ...r, traceMB: round(bytes / 2 ** 20, 1) };
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

function expectEnd(r: RunResult, what: string): void {
  if (r.endedBy !== 'stopRun') throw new Error(`${what}: run ended by ${r.endedBy} (${r.reason})`);
}

/**
 * Thread mode, one way: `warmup + count` messages flooder -> sink. msgsPerSec is the sink's rate over
 * the last `count` arrivals (the workers are fresh threads, so the warm-up must be in the run);
 * msgsPerSecFromStart counts every message from the run's epoch (start of messaging).
 */
export async function threadFlood(count: number, warmup: number, trace: boolean) {
  const total = warmup + count;
  return withTrace(trace, async (traceDir) => {
    const t0 = performance.now();
    const r = await new ThreadScheduler().run({ actors: floodActors(total, warmup), seed: 1, traceDir });
    const wallMs = performance.now() - t0;
    expectEnd(r, 'thread flood');
    const { received, warmNs, lastNs } = r.summaries.sink as { received: number; warmNs: number; lastNs: number };
    if (received !== total) throw new Error(`thread flood: sink got ${received} of ${total}`);
    return {
      msgsPerSec: round(count / ((lastNs - warmNs) / 1e9)),
      msgsPerSecFromStart: round(total / (lastNs / 1e9)),
      runWallMs: round(wallMs, 1),
    };
  });
}

/** Thread mode, request/reply with window 1: round trip µs p50/p99 after `warmup` round trips. */
export async function threadEcho(count: number, warmup: number, trace: boolean) {
  return withTrace(trace, async (traceDir) => {
    const actors: ActorSpec[] = [
      { id: 'client', module: example('echo'), exportName: 'createEchoClient', config: { server: 'server', count: warmup + count, window: 1, recordRtt: true } },
      { id: 'server', module: example('echo'), exportName: 'createEchoServer' },
    ];
    // timeScale 1: the client's simulated ns are wall ns.
    const r = await new ThreadScheduler().run({ actors, seed: 1, traceDir, timeScale: 1 });
    expectEnd(r, 'thread echo');
    const { replies, rttNs } = r.summaries.client as { replies: number; rttNs: number[] };
    if (replies !== warmup + count) throw new Error(`thread echo: ${replies} replies of ${warmup + count}`);
    return rttUs(rttNs.slice(warmup));
  });
}

/**
 * A full GC before each measured local run, so that garbage left by the previous run (2 M
 * envelopes, or 300 MB of trace strings) is not collected on this run's time. `npm run bench`
 * passes no node flags, hence the runtime switch.
 */
v8.setFlagsFromString('--expose-gc');
const fullGc = vm.runInNewContext('gc') as () => void;

/**
 * LocalScheduler: deliveries (timers included) per wall second around run(), after a smaller run
 * that warms up this thread's JIT. `actors(n)` builds a workload of about n deliveries.
 */
async function localRate(actors: (n: number) => ActorSpec[], count: number, warmup: number, trace: boolean) {
  const once = async (n: number, traceDir: string | undefined) => {
    const t0 = performance.now();
    const r = await new LocalScheduler().run({ actors: actors(n), seed: 1, traceDir });
    const ms = performance.now() - t0;
    expectEnd(r, 'local run');
    return { msgsPerSec: round(r.delivered / (ms / 1e3)), delivered: r.delivered, wallMs: round(ms, 1) };
  };
  await withTrace(trace, (dir) => once(warmup, dir));
  fullGc();
  return withTrace(trace, (dir) => once(count, dir));
}

/** The flood: the flooder's whole workload may queue up before the sink drains it. */
export function localFlood(count: number, warmup: number, trace: boolean) {
  return localRate((n) => floodActors(n, 0), count, warmup, trace);
}

/** Ping-pong: one message in flight at a time, so nothing queues (n deliveries = n/2 rounds). */
export function localPingPong(count: number, warmup: number, trace: boolean) {
  const actors = (n: number): ActorSpec[] => [
    { id: 'a', module: example('ping-pong'), exportName: 'createPingPong', config: { peer: 'b', rounds: Math.ceil(n / 2) } },
    { id: 'b', module: example('ping-pong'), exportName: 'createPingPong', config: { peer: 'a' } },
  ];
  return localRate(actors, count, warmup, trace);
}

/**
 * Request/reply traffic as simulations make it: `PAIRS` client/server pairs, each client keeping
 * `WINDOW` requests in flight. Queues stay bounded, so this measures delivery, not backlog.
 */
export function localEchoPairs(count: number, warmup: number, trace: boolean) {
  const PAIRS = 4;
  const WINDOW = 16;
  const actors = (n: number): ActorSpec[] =>
    Array.from({ length: PAIRS }, (_, i) => [
      { id: `client${i}`, module: example('echo'), exportName: 'createEchoClient', config: { server: `server${i}`, count: Math.ceil(n / 2 / PAIRS), window: WINDOW } },
      { id: `server${i}`, module: example('echo'), exportName: 'createEchoServer' },
    ]).flat();
  return localRate(actors, count, warmup, trace);
}
