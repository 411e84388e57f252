// The nvme actor under the seeded LocalScheduler: bios written then read back, through a hang
// (retried after the reset, nothing lost) and a dead controller (-EIO for every bio, none left).
import { describe, expect, it } from 'vitest';
import { LocalScheduler, type Actor, type Message } from '@svmsim/runtime';
import { createNvme, type NvmeActorConfig } from '@svmsim/nvme';

const N = 200;

async function writeThenRead(cfg: NvmeActorConfig): Promise<{ writes: number[]; reads: Array<{ ret: number; value: number }>; nvme: Record<string, number> }> {
  const writes: number[] = [];
  const reads: Array<{ ret: number; value: number }> = [];
  let phase: 'write' | 'read' = 'write';
  const client: Actor<Message> = {
    start: (ctx) => {
      for (let b = 0; b < N; b++) ctx.request('nvme', { type: 'bio_submit', op: 'write', dev: b % 2 ? 'swap' : 'file1', block: b, value: 1000 + b } as Message);
    },
    receive(env, ctx) {
      const m = env.msg as unknown as { ret: number; value: number };
      if (phase === 'write') {
        writes.push(m.ret);
        if (writes.length === N) {
          phase = 'read';
          for (let b = 0; b < N; b++) ctx.request('nvme', { type: 'bio_submit', op: 'read', dev: b % 2 ? 'swap' : 'file1', block: b } as Message);
        }
        return;
      }
      reads.push({ ret: m.ret, value: m.value });
      if (reads.length === N) ctx.stopRun('done');
    },
    summary: () => ({}),
  };
  const r = await new LocalScheduler().run({ actors: [{ id: 'client', actor: client }, { id: 'nvme', actor: createNvme(cfg) }], seed: 7 });
  return { writes, reads, nvme: r.summaries.nvme as Record<string, number> };
}

describe('nvme actor', () => {
  it('stores each block device apart and reads back what was written', async () => {
    const { writes, reads, nvme } = await writeThenRead({});
    expect(writes).toEqual(new Array(N).fill(0));
    expect(reads.every((r) => r.ret === 0)).toBe(true);
    expect(reads.map((r) => r.value).sort((a, b) => a - b)).toEqual(Array.from({ length: N }, (_, b) => 1000 + b));
    expect(nvme.outstanding).toBe(0);
  });

  it('a hang mid-run: reset, every bio retried, nothing lost, nothing outstanding', async () => {
    const { writes, reads, nvme } = await writeThenRead({ failure: 'hang', failAtNs: 50_000, queueDepth: 16, channels: 2 });
    expect(writes).toEqual(new Array(N).fill(0));
    expect(reads.map((r) => r.value).sort((a, b) => a - b)).toEqual(Array.from({ length: N }, (_, b) => 1000 + b));
    expect(nvme.resets).toBe(1);
    expect(nvme.retries).toBeGreaterThan(0);
    expect(nvme.outstanding).toBe(0);
  });

  it('a dead controller: every bio after the failure gets -EIO, and the run still ends', async () => {
    const { writes, reads, nvme } = await writeThenRead({ failure: 'dead', failAtNs: 50_000, queueDepth: 16, channels: 2 });
    expect(writes.filter((r) => r === -5).length).toBeGreaterThan(0);
    expect(reads.every((r) => r.ret === -5)).toBe(true);
    expect(nvme.failedWrites).toBe(writes.filter((r) => r === -5).length);
    expect(nvme.outstanding).toBe(0);
  });
});
