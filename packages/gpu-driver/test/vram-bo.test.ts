// VRAM BOs and TTM eviction: a new BO that does not fit evicts the least recently used one, and
// what the eviction waits for is the policy's: the jobs' fences (gfx), or the process's eviction
// fence, which stops all of its queues until the restore 100 ms later (KFD, policy preempt).
import { describe, expect, it } from 'vitest';
import { ENOMEM } from '@svmsim/kernel-mm';
import type { TraceLine } from '@svmsim/runtime';
import { ret, type Step } from '@svmsim/kernel-mm/testing/mm-harness';
import { PID, create, gpu, run, submit, waitLast } from './gpu-steps.js';

const VA1 = 0x100000000; // GPU virtual addresses of the VRAM BOs
const VA2 = 0x200000000;
const vramBo = (addr: number, pages: number): Step => gpu({ type: 'gpu_bo_create', pid: PID, addr, pages, vram: true });
const JOB_NS = 1_000_000;
const CONFIG = { vramBos: { pages: 64, copyPerPageNs: 500 } };

/** BO1 (48 pages) under a 1 ms job, then BO2 (32 pages): only 64 pages of VRAM, so BO1 must go. */
const steps = (freeBo2: boolean): Step[] => [
  create,
  vramBo(VA1, 48),
  submit([1], 1, JOB_NS, 500, 'compute'),
  vramBo(VA2, 32),
  ...(freeBo2 ? [gpu({ type: 'gpu_bo_free', handle: 2 })] : []),
  waitLast,
  { sleepNs: 200_000_000 },
];

/** When app received the reply to its request of type `type` (the n-th such reply). */
function replyTime(trace: TraceLine[], type: string, n = 0): number {
  const sends = trace.filter((l) => l.ev === 'send' && l.actor === 'gpu0' && (l.msg as { type: string } | undefined)?.type === type);
  return sends[n].t;
}

describe('VRAM BOs', () => {
  it('gfx (userptr policy): evicting a BO waits for the fence of the job using it; the job is not stopped', async () => {
    const { results, gpu: g, trace, check } = await run('userptr', steps(false), 1, {}, CONFIG);
    expect(results.filter((r) => r.type === 'gpu_bo_create_result').map(ret)).toEqual([1, 2]);
    expect(results.filter((r) => r.type === 'gpu_wait_result').map(ret)).toEqual([0]);
    const jobEnd = trace.find((l) => l.ev === 'gpu_job_end')!.t;
    expect(replyTime(trace, 'gpu_bo_create_result', 1)).toBeGreaterThanOrEqual(jobEnd);
    expect(g.vramBoEvictions).toBe(1);
    expect(g.vramBoPagesEvicted).toBe(48);
    expect(g.jobStretchMax).toBeCloseTo(1, 3);
    expect(g.preemptions).toBe(0);
    // The job wrote its BO inside the GPU: nothing reached mm.
    expect(g.localAccesses).toBe(48);
    expect(check!.stats.dmaWrites).toBe(0);
  });

  it('KFD (preempt policy): the eviction fence stops the process, the move goes on at once, the restore resumes it 100 ms later and brings the BO back', async () => {
    const { results, gpu: g, trace } = await run('preempt', steps(true), 1, {}, CONFIG);
    expect(results.filter((r) => r.type === 'gpu_bo_create_result').map(ret)).toEqual([1, 2]);
    expect(results.filter((r) => r.type === 'gpu_wait_result').map(ret)).toEqual([0]);
    const jobEnd = trace.find((l) => l.ev === 'gpu_job_end')!.t;
    // BO2 was placed long before the job could have ended: the process was preempted instead.
    expect(replyTime(trace, 'gpu_bo_create_result', 1)).toBeLessThan(JOB_NS);
    expect(g.fenceEvictions).toBe(1);
    expect(g.preemptions).toBe(1);
    // Its queues stayed off for PROCESS_RESTORE_TIME_MS: the 1 ms job took over 100 ms.
    expect(g.queuesStoppedNs).toBeGreaterThanOrEqual(100_000_000);
    expect(jobEnd).toBeGreaterThan(100_000_000);
    expect(g.localAccesses).toBe(48);
    // BO2 was freed before the restore: BO1 went back into VRAM.
    expect(g.vramBoPagesEvicted).toBe(48);
    expect(g.vramBoPagesRestored).toBe(48);
    expect(g.processesStopped).toBe(0);
  });

  it('a BO larger than VRAM is refused with -ENOMEM', async () => {
    const { results, gpu: g } = await run('userptr', [create, vramBo(VA1, 65)], 1, {}, CONFIG);
    expect(results.filter((r) => r.type === 'gpu_bo_create_result').map(ret)).toEqual([ENOMEM]);
    expect(g.vramBoCreateFailures).toBe(1);
  });
});

describe('VRAM BOs: two placements at once', () => {
  it('the second waits for the eviction the first started rather than failing', async () => {
    // 64 pages: BO1 (48) under a job; BO2 and BO3 (32 each) both need BO1 out, which is one move.
    const s: Step[] = [
      create,
      vramBo(VA1, 48),
      submit([1], 1, JOB_NS, 500, 'compute'),
      { group: [vramBo(VA2, 32) as never, vramBo(VA2 + 32 * 4096, 32) as never] },
      waitLast,
    ];
    const { results, gpu: g } = await run('userptr', s, 1, {}, CONFIG);
    expect(results.filter((r) => r.type === 'gpu_bo_create_result').map(ret).sort()).toEqual([1, 2, 3]);
    expect(g.vramBoCreateFailures).toBe(0);
    expect(g.vramBoEvictions).toBe(1);
    expect(g.vramBoPagesFree).toBe(0);
  });
});
