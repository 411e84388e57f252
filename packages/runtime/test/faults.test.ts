// Fault injection (src/faults.ts) under both schedulers. LocalScheduler: exact outcomes, the same
// for one seed. ThreadScheduler: properties that hold under any interleaving (every request gets
// exactly one answer, FIFO per pair, the dead actor named), no timings beyond generous bounds.
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { LOCAL_TRACE_FILE, LocalScheduler, RunSetupError, ThreadScheduler, readTrace } from '@svmsim/runtime';
import { sequencePair, spec, tempDir } from './helpers.js';

const local = new LocalScheduler();
const threads = new ThreadScheduler();

/** A client with `window` requests in flight to a server answering each 1 µs later. */
const slowEcho = (count: number, window = 4) => [
  spec('client', 'echo', 'createEchoClient', { server: 'server', count, window }),
  spec('server', 'echo', 'createEchoServer', { delayNs: 1_000 }),
];

describe('fault injection, LocalScheduler', () => {
  it('kills an actor at its time: pending requests answered actor_died, later ones at once, the run goes on', async () => {
    const dir = tempDir('kill');
    const r = await local.run({ actors: slowEcho(1_000), seed: 3, traceDir: dir, faults: { kills: [{ actor: 'server', atNs: 50_000 }] } });
    expect(r.endedBy).toBe('stopRun');
    const c = r.summaries.client as { replies: number; died: number; mismatches: number };
    expect(c.mismatches).toBe(0);
    expect(c.replies + c.died).toBe(1_000);
    // 4 in flight, 1 µs each: about 200 replies in 50 µs, the rest answered by the death.
    expect(c.replies).toBeGreaterThan(150);
    expect(c.replies).toBeLessThan(250);
    expect(r.died).toEqual([{ actor: 'server', error: 'killed by fault injection at t=50000 ns', atNs: 50_000, injected: true }]);
    expect(r.summaries.server).toMatchObject({ died: 'killed by fault injection at t=50000 ns' });
    const lines = readTrace(dir);
    expect(lines.some((l) => l.actor === 'scheduler' && l.ev === 'actor_died' && l.dead === 'server')).toBe(true);
    // Nothing is delivered to the dead actor after its death.
    expect(lines.filter((l) => l.actor === 'server' && l.ev === 'recv' && (l.t as number) > 50_000)).toEqual([]);
  });

  it('is deterministic: the same plan and seed give the same trace byte for byte', async () => {
    const plan = { kills: [{ actor: 'server', atNs: 20_000 }], reorder: { probability: 0.3, maxNs: 5_000 }, delays: [{ from: 'client', to: 'server', ns: 500, jitterNs: 700 }] };
    const a = tempDir('det-a');
    const b = tempDir('det-b');
    await local.run({ actors: slowEcho(300), seed: 9, traceDir: a, faults: plan });
    await local.run({ actors: slowEcho(300), seed: 9, traceDir: b, faults: plan });
    expect(fs.readFileSync(path.join(a, LOCAL_TRACE_FILE)).equals(fs.readFileSync(path.join(b, LOCAL_TRACE_FILE)))).toBe(true);
  });

  it('delays one pair by ns + jitter and keeps FIFO order per pair', async () => {
    const plain = await local.run({ actors: slowEcho(100, 1), seed: 1 });
    const r = await local.run({ actors: slowEcho(100, 1), seed: 1, faults: { delays: [{ from: 'client', to: 'server', ns: 10_000, jitterNs: 2_000 }] } });
    expect(r.summaries.client).toMatchObject({ replies: 100, mismatches: 0 });
    // Each round trip 1 µs plus 10–12 µs on the way there.
    expect(r.endNs - plain.endNs).toBeGreaterThanOrEqual(100 * 10_000);
    expect(r.endNs - plain.endNs).toBeLessThanOrEqual(100 * 12_000);
    const fifo = await local.run({ actors: sequencePair(3, 300, 1), seed: 5, faults: { delays: [{ from: 'sender0', to: 'checker', ns: 1, jitterNs: 10_000 }], reorder: { probability: 0.5 } } });
    expect(fifo.summaries.checker).toMatchObject({ received: 900, outOfOrder: 0 });
  });

  it('reorders across pairs with the given probability, seeded', async () => {
    const r = await local.run({ actors: sequencePair(3, 300, 1), seed: 5, faults: { reorder: { probability: 0.25, maxNs: 1_000 } } });
    expect(r.summaries.checker).toMatchObject({ received: 900, outOfOrder: 0 });
    expect(r.faultHolds).toBeGreaterThan(150);
    expect(r.faultHolds).toBeLessThan(300);
  });

  it('drops one message type from one actor from a time on, and says so in the trace', async () => {
    const dir = tempDir('drop');
    const r = await local.run({
      actors: [spec('client', 'echo', 'createEchoClient', { server: 'server', count: 50, timeoutNs: 1e6 }), spec('server', 'echo', 'createEchoServer', { delayNs: 1_000 })],
      seed: 1, traceDir: dir, faults: { drops: [{ from: 'server', to: 'client', type: 'echo_reply', atNs: 10_000 }] },
    });
    const c = r.summaries.client as { replies: number; timeouts: number };
    // Replies at t = 1, 2, … µs: the one sent at 10 µs is the first dropped.
    expect(c.replies).toBe(9);
    expect(c.timeouts).toBe(41);
    expect(r.faultDrops).toBe(41);
    expect(readTrace(dir).filter((l) => l.ev === 'fault_drop')).toHaveLength(41);
  });

  it('refuses a plan naming an actor the run does not have', async () => {
    await expect(local.run({ actors: slowEcho(1), seed: 1, faults: { kills: [{ actor: 'gpu9', atNs: 0 }] } })).rejects.toThrow(RunSetupError);
    await expect(local.run({ actors: slowEcho(1), seed: 1, faults: { kills: [{ actor: 'gpu9', atNs: 0 }] } })).rejects.toThrow(/kills\[0\]\.actor: no actor "gpu9"/);
    await expect(local.run({ actors: slowEcho(1), seed: 1, faults: { reorder: { probability: 2 } } })).rejects.toThrow(/reorder\.probability/);
  });
});

describe('fault injection, ThreadScheduler', () => {
  it('kills a worker thread mid-run: the worker really exits, every request gets one answer, the run goes on', async () => {
    const dir = tempDir('tkill');
    const r = await threads.run({ actors: slowEcho(200_000, 8), seed: 1, timeScale: 1, traceDir: dir, faults: { kills: [{ actor: 'server', atNs: 100e6 }] } });
    expect(r.endedBy).toBe('stopRun');
    const c = r.summaries.client as { replies: number; died: number; mismatches: number };
    expect(c.mismatches).toBe(0);
    expect(c.replies + c.died).toBe(200_000);
    expect(c.died).toBeGreaterThan(0);
    expect(r.died?.map((d) => d.actor)).toEqual(['server']);
    expect(r.summaries.server).toMatchObject({ died: 'killed by fault injection at t=100000000 ns' });
    expect(fs.existsSync(path.join(dir, 'server.svmt'))).toBe(true);
  }, 30_000);

  it('delays and reorders across pairs without breaking FIFO per pair', async () => {
    const r = await threads.run({
      actors: sequencePair(3, 2_000, 10), seed: 1, timeScale: 1,
      faults: { delays: [{ from: 'sender0', to: 'checker', ns: 2e6, jitterNs: 1e6 }], reorder: { probability: 0.2, maxNs: 500_000 } },
    });
    expect(r.summaries.checker).toMatchObject({ received: 6_000, outOfOrder: 0 });
    expect(r.faultHolds).toBeGreaterThan(0);
  }, 30_000);
});
