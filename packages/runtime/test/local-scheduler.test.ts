import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { ActorDiedError, forEachTraceLine, LOCAL_TRACE_FILE, LocalScheduler, readTrace, type Actor, type Message, type TraceLine } from '@svmsim/runtime';
import { echoPair, sequencePair, spec, tempDir } from './helpers.js';

const local = new LocalScheduler();

describe('LocalScheduler', () => {
  it('carries requests and replies, each reply answering its own request', async () => {
    const r = await local.run({ actors: echoPair(500, 8), seed: 1 });
    expect(r.endedBy).toBe('stopRun');
    expect(r.summaries.client).toMatchObject({ replies: 500, mismatches: 0, timeouts: 0 });
    expect(r.summaries.server).toMatchObject({ served: 500 });
  });

  it('plays ping-pong to the end', async () => {
    const r = await local.run({
      actors: [spec('a', 'ping-pong', 'createPingPong', { peer: 'b', rounds: 100 }), spec('b', 'ping-pong', 'createPingPong', { peer: 'a' })],
      seed: 3,
    });
    expect(r.summaries.a).toMatchObject({ pongs: 100, outOfOrder: 0 });
    expect(r.summaries.b).toMatchObject({ pings: 100 });
  });

  it('keeps FIFO order per pair under every seed', async () => {
    for (let seed = 1; seed <= 20; seed++) {
      const r = await local.run({ actors: sequencePair(3, 200, 7), seed });
      expect(r.summaries.checker).toMatchObject({ received: 600, outOfOrder: 0 });
    }
  });

  it('gives the same trace byte for byte for one seed', async () => {
    const a = tempDir('same-a');
    const b = tempDir('same-b');
    await local.run({ actors: [...sequencePair(2, 50), ...echoPair(20, 3)].map((s) => (s.id === 'client' ? { ...s, config: { server: 'server', count: 20, window: 3 } } : s)), seed: 42, traceDir: a });
    await local.run({ actors: [...sequencePair(2, 50), ...echoPair(20, 3)], seed: 42, traceDir: b });
    const ta = fs.readFileSync(path.join(a, LOCAL_TRACE_FILE));
    const tb = fs.readFileSync(path.join(b, LOCAL_TRACE_FILE));
    expect(ta.length).toBeGreaterThan(1000);
    expect(ta.equals(tb)).toBe(true);
  });

  it('keeps the trace in memory when asked: the same lines as the file, and no file', async () => {
    const dir = tempDir('memory');
    const actors = () => [...sequencePair(2, 600), ...echoPair(200, 3)];
    await local.run({ actors: actors(), seed: 9, traceDir: dir });
    const memoryDir = tempDir('memory-none');
    const r = await local.run({ actors: actors(), seed: 9, traceDir: memoryDir, traceInMemory: true });
    expect(fs.readdirSync(memoryDir)).toEqual([]);
    const lines: TraceLine[] = [];
    const read = forEachTraceLine(r.memoryTrace!, (l) => lines.push(l));
    expect(lines.length).toBeGreaterThan(3000);
    expect(read.lines).toBe(lines.length);
    expect(lines).toEqual(readTrace(dir));
  });

  it('interleaves a racy pair differently under different seeds', async () => {
    const orders = new Set<string>();
    for (let seed = 1; seed <= 10; seed++) {
      const r = await local.run({ actors: sequencePair(2, 16), seed });
      orders.add(r.summaries.checker.order as string);
    }
    expect(orders.size).toBeGreaterThan(1);
  });

  it('delivers a typed timeout when a request is not answered, and drops the late reply', async () => {
    const r = await local.run({
      actors: [spec('client', 'echo', 'createEchoClient', { server: 'server', count: 5, timeoutNs: 1_000 }), spec('server', 'faulty', 'createFaulty', { mode: 'silent' })],
      seed: 1,
    });
    expect(r.summaries.client).toMatchObject({ replies: 0, timeouts: 5 });
    expect(r.endNs).toBe(5_000);

    // A server that answers after the timeout: the client sees the timeout only.
    const slow: Actor<Message> = {
      receive(env, ctx) {
        if (env.msg.type === 'echo') ctx.after(1_500, { type: 'late', env } as unknown as Message);
        if (env.msg.type === 'late') ctx.reply((env.msg as unknown as { env: typeof env }).env, { type: 'echo_reply', n: 0 } as Message);
      },
      summary: () => ({}),
    };
    const dir = tempDir('late');
    const r2 = await local.run({
      actors: [spec('client', 'echo', 'createEchoClient', { server: 'server', count: 3, timeoutNs: 1_000 }), { id: 'server', actor: slow }],
      seed: 1,
      traceDir: dir,
    });
    // Replies at 1500 and 2500 answer requests that timed out at 1000 and 2000; the run ends at 3000.
    expect(r2.summaries.client).toMatchObject({ replies: 0, timeouts: 3, mismatches: 0 });
    expect(readTrace(dir).filter((l) => l.ev === 'late_reply')).toHaveLength(2);
  });

  it('ends the run with an error naming an actor that throws', async () => {
    const run = local.run({ actors: [spec('client', 'echo', 'createEchoClient', { server: 'gpu0', count: 1 }), spec('gpu0', 'faulty', 'createFaulty', { mode: 'throw' })], seed: 1 });
    await expect(run).rejects.toThrow(ActorDiedError);
    await expect(run).rejects.toThrow(/actor gpu0 died while handling 'echo': planted failure/);
  });

  it('fires timers in time order and skips cancelled ones', async () => {
    const fired: string[] = [];
    const timers: Actor<Message> = {
      start(ctx) {
        ctx.after(300, { type: 'c' });
        ctx.after(100, { type: 'a' });
        const b = ctx.after(200, { type: 'b' });
        ctx.after(100, { type: 'a2' });
        expect(ctx.cancel(b)).toBe(true);
        expect(ctx.cancel(b)).toBe(false);
      },
      receive(env, ctx) {
        fired.push(`${env.msg.type}@${ctx.now()}`);
      },
      summary: () => ({}),
    };
    const r = await local.run({ actors: [{ id: 'timers', actor: timers }], seed: 9 });
    expect(fired).toEqual(['a@100', 'a2@100', 'c@300']);
    expect(r.endedBy).toBe('quiescent');
  });

  it('stamps domain events with the simulated time at which they happen', async () => {
    const dir = tempDir('events');
    const tracer: Actor<Message> = {
      start: (ctx) => void ctx.after(250, { type: 'tick' }),
      receive(_env, ctx) {
        ctx.trace('tick_seen', { at: ctx.now() });
        if (ctx.now() < 750) ctx.after(250, { type: 'tick' });
      },
      summary: () => ({}),
    };
    await local.run({ actors: [{ id: 'tracer', actor: tracer }], seed: 1, traceDir: dir });
    const ticks = readTrace(dir).filter((l) => l.ev === 'tick_seen');
    expect(ticks.map((l) => [l.t, l.at, l.actor])).toEqual([[250, 250, 'tracer'], [500, 500, 'tracer'], [750, 750, 'tracer']]);
  });

  it('stops at the duration and bounds runaway actors by steps', async () => {
    const ticker: Actor<Message> = {
      start: (ctx) => void ctx.after(10, { type: 'tick' }),
      receive: (_env, ctx) => void ctx.after(10, { type: 'tick' }),
      summary: () => ({}),
    };
    const r = await local.run({ actors: [{ id: 'ticker', actor: ticker }], seed: 1, durationNs: 1_005 });
    expect(r).toMatchObject({ endedBy: 'duration', endNs: 1_005, delivered: 100 });
    const r2 = await local.run({ actors: [{ id: 'ticker', actor: ticker }], seed: 1, maxSteps: 50 });
    expect(r2).toMatchObject({ endedBy: 'steps', delivered: 50 });
  });

  it('rejects a send to an actor that does not exist, naming both', async () => {
    const lost: Actor<Message> = { start: (ctx) => ctx.send('nobody', { type: 'x' }), receive() {}, summary: () => ({}) };
    await expect(local.run({ actors: [{ id: 'app', actor: lost }], seed: 1 })).rejects.toThrow(/actor app died while handling 'start': no actor 'nobody'/);
  });

  it('writes every message sent and received to the trace', async () => {
    const dir = tempDir('every');
    const r = await local.run({ actors: [...echoPair(100, 4), ...sequencePair(2, 100, 5)], seed: 5, traceDir: dir });
    const lines = readTrace(dir);
    const sends = new Set(lines.filter((l) => l.ev === 'send').map((l) => `${l.actor}>${l.to}#${l.id}`));
    const recvs = new Set(lines.filter((l) => l.ev === 'recv' && l.from !== l.actor).map((l) => `${l.from}>${l.actor}#${l.id}`));
    // The run stops when the checker has everything; the echo pair may still have messages in flight.
    const inFlight = [...sends].filter((k) => !recvs.has(k));
    for (const k of inFlight) expect(k).toMatch(/client|server/);
    expect([...recvs].filter((k) => !sends.has(k))).toEqual([]);
    expect(sends.size).toBeGreaterThan(200);
    const delivered = lines.filter((l) => l.ev === 'recv').length;
    expect(delivered).toBe(r.delivered);
    for (const l of lines) expect(typeof l.t).toBe('number');
  });
});
