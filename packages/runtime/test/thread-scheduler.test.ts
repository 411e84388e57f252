import fs from 'node:fs';
import { describe, expect, it } from 'vitest';
import { ActorDiedError, ThreadScheduler, readTrace, threadTraceFile } from '@svmsim/runtime';
import { echoPair, sequencePair, spec, tempDir } from './helpers.js';

// Properties that hold under any interleaving: nothing lost, order per pair, one answer per
// request, errors named. No timings are asserted except the bound on reporting a death.
const threads = new ThreadScheduler();

describe('ThreadScheduler', () => {
  it('carries requests and replies between worker threads', async () => {
    const r = await threads.run({ actors: echoPair(2_000, 16), seed: 1 });
    expect(r.endedBy).toBe('stopRun');
    expect(r.summaries.client).toMatchObject({ replies: 2_000, mismatches: 0, timeouts: 0 });
    expect(r.summaries.server).toMatchObject({ served: 2_000 });
  });

  it('plays ping-pong to the end', async () => {
    const r = await threads.run({
      actors: [spec('a', 'ping-pong', 'createPingPong', { peer: 'b', rounds: 300 }), spec('b', 'ping-pong', 'createPingPong', { peer: 'a' })],
      seed: 1,
    });
    expect(r.summaries.a).toMatchObject({ pongs: 300, outOfOrder: 0 });
  });

  it('keeps FIFO order per pair with three concurrent senders', async () => {
    const r = await threads.run({ actors: sequencePair(3, 5_000, 100), seed: 1 });
    expect(r.summaries.checker).toMatchObject({ received: 15_000, outOfOrder: 0 });
  });

  it('delivers a typed timeout when the target never answers', async () => {
    const r = await threads.run({
      actors: [spec('client', 'echo', 'createEchoClient', { server: 'server', count: 3, timeoutNs: 5e6 }), spec('server', 'faulty', 'createFaulty', { mode: 'silent' })],
      seed: 1,
    });
    expect(r.summaries.client).toMatchObject({ replies: 0, timeouts: 3, died: 0 });
    expect(r.endNs).toBeGreaterThanOrEqual(15e6);
  });

  for (const mode of ['throw', 'exit'] as const) {
    it(`reports an actor whose worker ${mode === 'throw' ? 'throws' : 'exits'} within a second, naming it`, async () => {
      const dir = tempDir(`died-${mode}`);
      const t0 = performance.now();
      const run = threads.run({
        actors: [spec('client', 'echo', 'createEchoClient', { server: 'nvme0', count: 1 }), spec('nvme0', 'faulty', 'createFaulty', { mode })],
        seed: 1,
        traceDir: dir,
      });
      const err = await run.then(
        () => undefined,
        (e: unknown) => e,
      );
      const elapsedMs = performance.now() - t0;
      expect(err).toBeInstanceOf(ActorDiedError);
      expect((err as ActorDiedError).actor).toBe('nvme0');
      expect((err as Error).message).toMatch(mode === 'throw' ? /actor nvme0 died while handling 'echo': planted failure/ : /actor nvme0 died: its worker thread exited/);
      // Setting up the workers is part of the run; the death itself is reported at once.
      expect(elapsedMs).toBeLessThan(5_000);
      // The client was waiting on nvme0: its request was answered with actor_died.
      const clientLines = readTrace(dir).filter((l) => l.actor === 'client');
      expect(clientLines.some((l) => l.ev === 'actor_died' && l.dead === 'nvme0' && l.replyTo === 2)).toBe(true);
    });
  }

  it('reports a death within a second of it happening', async () => {
    const dir = tempDir('died-fast');
    const run = threads.run({
      actors: [spec('client', 'echo', 'createEchoClient', { server: 'gpu0', count: 1 }), spec('gpu0', 'faulty', 'createFaulty', { mode: 'throw' })],
      seed: 1,
      traceDir: dir,
    });
    await expect(run).rejects.toThrow(/gpu0/);
    const lines = readTrace(dir);
    const diedAt = lines.find((l) => l.actor === 'gpu0' && l.ev === 'actor_died')!.t;
    const endAt = lines.find((l) => l.ev === 'run_end')!.t;
    expect(endAt - diedAt).toBeLessThan(1e9);
  });

  it('reports an actor that hangs in its own code when the run stops', async () => {
    const run = threads.run({
      actors: [spec('client', 'echo', 'createEchoClient', { server: 'rdma0', count: 2, timeoutNs: 2e6 }), spec('rdma0', 'faulty', 'createFaulty', { mode: 'spin' })],
      seed: 1,
    });
    await expect(run).rejects.toThrow(/actor rdma0 died: did not answer stop/);
  });

  it('writes every message sent and received to the per-actor trace files', async () => {
    const dir = tempDir('thread-every');
    const r = await threads.run({ actors: sequencePair(2, 2_000, 50), seed: 1, traceDir: dir });
    for (const id of ['checker', 'sender0', 'sender1', 'scheduler']) expect(fs.existsSync(threadTraceFile(dir, id))).toBe(true);
    const lines = readTrace(dir);
    const sends = lines.filter((l) => l.ev === 'send').map((l) => `${l.actor}>${l.to}#${l.id}`);
    const recvs = lines.filter((l) => l.ev === 'recv' && l.from !== l.actor).map((l) => `${l.from}>${l.actor}#${l.id}`);
    expect(sends.length).toBe(4_002);
    expect(new Set(recvs)).toEqual(new Set(sends));
    expect(lines.filter((l) => l.ev === 'recv').length).toBe(r.delivered);
    // Merged by simulated time.
    for (let i = 1; i < lines.length; i++) expect(lines[i].t).toBeGreaterThanOrEqual(lines[i - 1].t);
  });

  it('refuses bad actor specs with a clear error', async () => {
    await expect(threads.run({ actors: [spec('a', 'echo', 'nope')], seed: 1 })).rejects.toThrow(/actor a: module .* has no exported factory 'nope'/);
    await expect(threads.run({ actors: [spec('a b', 'echo', 'createEchoServer')], seed: 1 })).rejects.toThrow(/actor id "a b" must match/);
  });
});
