// The runtime's part of `npm run bench`: thread-mode and local figures, each beside a raw
// worker_threads baseline measured in the same run. Progress goes to stderr.
//
// Units are in the names: msgsPerSec (messages per wall second), rttUsP50/P99 (µs of wall time).
// Every figure is the median of REPS runs and is timed after a warm-up (in the same run for worker
// threads, which start cold each run); see runtime-runs.ts and raw-worker.ts for what is timed.
import os from 'node:os';
import { rawRoundTrip, rawThroughput } from './baselines.js';
import { progress } from './log.js';
import { localEchoPairs, localFlood, localPingPong, threadEcho, threadFlood } from './runtime-runs.js';
import { median, round } from './stats.js';

/** Message counts, chosen so the whole bench stays well under 90 s on 2 cores. */
const N = {
  flood: 1_000_000, // one-way messages measured (thread mode and the msgpackr-batch baseline)
  floodWarmup: 200_000,
  barePost: 200_000, // bare postMessage moves ~0.2 M msgs/s: fewer, or it alone would take 15 s
  barePostWarmup: 50_000,
  rtt: 20_000, // round trips measured
  rttWarmup: 2_000,
  local: 2_000_000, // LocalScheduler deliveries (flood, and ping-pong for comparison)
  localWarmup: 200_000,
};
/** Each measurement is repeated and its median run kept: two cores make single runs noisy. */
const REPS = 3;

/** Runs `fn` REPS times and returns the run whose `key` is the median. */
async function medianOf<T extends Record<string, unknown>>(what: string, key: keyof T, fn: () => Promise<T>): Promise<T> {
  const runs: T[] = [];
  for (let i = 0; i < REPS; i++) {
    runs.push(await fn());
    progress(`${what} #${i + 1}: ${JSON.stringify(runs[i])}`);
  }
  const m = median(runs.map((r) => r[key] as number));
  return runs.find((r) => r[key] === m)!;
}

function check(value: number, op: '>=' | '<=', target: number) {
  return { value: round(value, 3), op, target, met: op === '>=' ? value >= target : value <= target };
}

/** The runtime's figures (thread mode, round trip, LocalScheduler) with their baselines and targets. */
export async function runtimeBench(): Promise<Record<string, unknown>> {
  const started = performance.now();
  const loadAtStart = round(os.loadavg()[0], 2);

  // 1. Thread mode one way, beside (a) bare postMessage and (c) msgpackr batches.
  const barePost = await medianOf('raw postMessage', 'msgsPerSec', () => rawThroughput('post', N.barePost, N.barePostWarmup));
  const packrBatch = await medianOf('raw msgpackr batches', 'msgsPerSec', () => rawThroughput('packr', N.flood, N.floodWarmup));
  const threadOff = await medianOf('thread flood, trace off', 'msgsPerSec', () => threadFlood(N.flood, N.floodWarmup, false));
  const threadOn = await medianOf('thread flood, trace on', 'msgsPerSec', () => threadFlood(N.flood, N.floodWarmup, true));

  // 2. Thread mode round trip, beside (b) the bare postMessage round trip.
  const bareRtt = await medianOf('raw round trip', 'rttUsP50', () => rawRoundTrip(N.rtt, N.rttWarmup));
  const echoOff = await medianOf('thread echo, trace off', 'rttUsP50', () => threadEcho(N.rtt, N.rttWarmup, false));
  const echoOn = await medianOf('thread echo, trace on', 'rttUsP50', () => threadEcho(N.rtt, N.rttWarmup, true));

  // 3. LocalScheduler delivery rate (its target is absolute: no raw baseline), on request/reply
  // traffic with bounded queues (four pairs, 16 in flight each), as simulations make it. The flood
  // (a producer that never waits, so its whole output queues up) and ping-pong (one message in
  // flight) bracket it and are not targets.
  const pingPong = await medianOf('local ping-pong, trace off', 'msgsPerSec', () => localPingPong(N.local, N.localWarmup, false));
  const floodOff = await medianOf('local flood, trace off', 'msgsPerSec', () => localFlood(N.local, N.localWarmup, false));
  const localOff = await medianOf('local echo pairs, trace off', 'msgsPerSec', () => localEchoPairs(N.local, N.localWarmup, false));
  const localOn = await medianOf('local echo pairs, trace on', 'msgsPerSec', () => localEchoPairs(N.local, N.localWarmup, true));

  const ratios = {
    threadVsPackrBatch: round(threadOff.msgsPerSec / packrBatch.msgsPerSec, 3),
    threadVsBarePost: round(threadOff.msgsPerSec / barePost.msgsPerSec, 3),
    threadTraceOnOff: round(threadOn.msgsPerSec / threadOff.msgsPerSec, 3),
    rttP50VsBare: round(echoOff.rttUsP50 / bareRtt.rttUsP50, 3),
    rttP99VsBare: round(echoOff.rttUsP99 / bareRtt.rttUsP99, 3),
    rttP50TraceOnOff: round(echoOn.rttUsP50 / echoOff.rttUsP50, 3),
    localTraceOnOff: round(localOn.msgsPerSec / localOff.msgsPerSec, 3),
  };
  const report = {
    // Load average at the start: other work on these 2 cores makes every figure lower and noisier.
    machine: { cpus: os.cpus().length, node: process.version, loadAvg1mAtStart: loadAtStart },
    counts: { ...N, reps: REPS },
    threadThroughput: { traceOff: threadOff, traceOn: threadOn, baseline: { barePostMessage: barePost, msgpackrBatch512: packrBatch } },
    threadRoundTrip: { traceOff: echoOff, traceOn: echoOn, baseline: { barePostMessage: bareRtt } },
    localDelivery: { traceOff: localOff, traceOn: localOn, floodTraceOff: floodOff, pingPongTraceOff: pingPong },
    ratios,
    targets: {
      threadThroughputVsPackrBatch: check(ratios.threadVsPackrBatch, '>=', 0.5),
      rttP50VsBarePostMessage: check(ratios.rttP50VsBare, '<=', 1.5),
      localMsgsPerSec: check(localOff.msgsPerSec, '>=', 2_000_000),
      threadTraceOnOff: check(ratios.threadTraceOnOff, '>=', 0.5),
      localTraceOnOff: check(ratios.localTraceOnOff, '>=', 0.5),
    },
    benchSeconds: round((performance.now() - started) / 1e3, 1),
  };
  return report;
}
