// Raw worker_threads baselines: the same traffic as the runtime's thread mode with nothing but two
// workers and a MessageChannel between them (see raw-worker.ts for what each mode does).
import { MessageChannel, Worker } from 'node:worker_threads';
import type { RawMode, RawResult, RawWorkerData } from './raw-worker.js';
import { round, rttUs } from './stats.js';

async function runPair(mode: RawMode, count: number, warmup: number): Promise<RawResult> {
  if (!(warmup > 0 && count > 0)) throw new RangeError('raw baselines need count > 0 and warmup > 0');
  const { port1, port2 } = new MessageChannel();
  const url = new URL('./raw-worker.js', import.meta.url);
  const data = (role: 'a' | 'b', port: typeof port1): RawWorkerData => ({ mode, role, count, warmup, port });
  const a = new Worker(url, { workerData: data('a', port1), transferList: [port1] });
  const b = new Worker(url, { workerData: data('b', port2), transferList: [port2] });
  try {
    return await new Promise<RawResult>((resolve, reject) => {
      const measurer = mode === 'rtt' ? a : b;
      measurer.once('message', resolve);
      for (const w of [a, b]) {
        w.once('error', reject);
        // A sender that has posted everything may end; the measuring side may not before it reports.
        w.once('exit', (code) => (w === measurer || code !== 0) && reject(new Error(`raw ${mode} worker exited early (code ${code})`)));
      }
    });
  } finally {
    await Promise.all([a.terminate(), b.terminate()]);
  }
}

/** (a) single small objects, or (c) msgpackr batches of 512: messages/s at the receiver. */
export async function rawThroughput(mode: 'post' | 'packr', count: number, warmup: number): Promise<{ msgsPerSec: number; windowMs: number }> {
  const { windowMs } = await runPair(mode, count, warmup);
  return { msgsPerSec: round(count / (windowMs / 1e3)), windowMs: round(windowMs, 1) };
}

/** (b) strict round trips of one small object: µs p50 / p99 after the warm-up. */
export async function rawRoundTrip(count: number, warmup: number): Promise<{ rttUsP50: number; rttUsP99: number }> {
  const r = await runPair('rtt', count, warmup);
  return rttUs(r.rttNs!);
}
