// One side of a raw worker_threads baseline: no runtime, just a MessagePort between two workers.
// Each run is one stream of `warmup + count` messages (or round trips) in the same two threads,
// timed over the last `count` only, so that both sides run JIT-compiled code: the same method as
// the runtime figures (see runtime-runs.ts).
//
//   post  : a posts single envelope objects (structured clone), CHUNK per turn; b counts them
//   packr : a packs envelopes in batches of BATCH with msgpackr, copies and transfers each buffer,
//           CHUNK envelopes per turn; b unpacks and touches every envelope (the runtime's wire,
//           minus the runtime)
//   rtt   : a posts one envelope and waits for b's answer before the next (round trip)
// The side that measures (b for post/packr, a for rtt) posts a RawResult to the main thread.
import { setImmediate as nextTurn } from 'node:timers/promises';
import { parentPort, workerData, type MessagePort } from 'node:worker_threads';
import { Packr, Unpackr } from 'msgpackr';

export type RawMode = 'post' | 'packr' | 'rtt';

export interface RawWorkerData {
  mode: RawMode;
  role: 'a' | 'b';
  /** Messages (or round trips) measured, after `warmup` that are not. */
  count: number;
  warmup: number;
  port: MessagePort;
}

export interface RawResult {
  /** Wall ms from the `warmup`-th arrival to the last. */
  windowMs: number;
  /** Round trips after the warm-up, wall ns each (mode rtt). */
  rttNs?: number[];
}

/** The runtime worker's batch size and the flood example's sends per turn. */
const BATCH = 512;
const CHUNK = 4096;

const { mode, role, count, warmup, port } = workerData as RawWorkerData;
const total = warmup + count;

/** The runtime's envelope shape, with a fractional `t` like the runtime's simulated ns. */
function envelope(id: number, replyTo: number, type: string, n: number) {
  const t = performance.now() * 1e6 + 0.5;
  return role === 'a' ? { from: 'a', to: 'b', id, replyTo, t, msg: { type, n } } : { from: 'b', to: 'a', id, replyTo, t, msg: { type, n } };
}

/** a, modes post and packr: the whole stream, CHUNK messages per turn like the flooder. */
async function send(): Promise<void> {
  const packr = new Packr({ useRecords: true, moreTypes: true });
  let i = 0;
  while (i < total) {
    const end = Math.min(total, i + CHUNK);
    if (mode === 'post') {
      for (; i < end; i++) port.postMessage(envelope(i + 1, 0, 'data', i));
    } else {
      while (i < end) {
        const batch = [];
        for (const stop = Math.min(end, i + BATCH); i < stop; i++) batch.push(envelope(i + 1, 0, 'data', i));
        const buf = packr.pack(batch).slice(); // msgpackr reuses its buffer: copy, then transfer
        port.postMessage(buf, [buf.buffer as ArrayBuffer]);
      }
    }
    await nextTurn();
  }
}

/** b, modes post and packr: count arrivals, timing the window from the warmup-th to the last. */
function receive(): void {
  const unpackr = new Unpackr({ useRecords: true, moreTypes: true });
  let received = 0;
  let warmAt = 0;
  let sum = 0; // read so that the messages' contents are really touched
  const arrived = () => {
    if (++received === warmup) warmAt = performance.now();
    if (received === total) parentPort!.postMessage({ windowMs: performance.now() - warmAt, sum } satisfies RawResult & { sum: number });
  };
  port.on('message', (m: any) => {
    if (mode === 'post') {
      sum += m.msg.n;
      arrived();
    } else {
      for (const env of unpackr.unpack(m as Uint8Array) as any[]) {
        sum += env.msg.n;
        arrived();
      }
    }
  });
}

/** a, mode rtt: `total` strict round trips; reports the last `count`, in ns. */
function roundTrips(): void {
  const rttNs: number[] = [];
  let done = 0;
  let sentAt = 0;
  let warmAt = 0;
  const next = () => {
    sentAt = performance.now();
    port.postMessage(envelope(done + 1, 0, 'echo', done));
  };
  port.on('message', () => {
    const now = performance.now();
    if (++done > warmup) rttNs.push((now - sentAt) * 1e6);
    if (done === warmup) warmAt = now;
    if (done < total) return next();
    parentPort!.postMessage({ windowMs: now - warmAt, rttNs } satisfies RawResult);
  });
  next();
}

if (mode === 'rtt') {
  if (role === 'a') roundTrips();
  else port.on('message', (m: any) => port.postMessage(envelope(m.id, m.id, 'echo_reply', m.msg.n)));
} else if (role === 'a') {
  await send();
} else {
  receive();
}
