// Steps and runs shared by the GPU driver's tests: a script actor plays the app (mmap, CPU stores,
// GEM_USERPTR, CS, WAIT_CS, GEM_CLOSE) against mm and one GPU under LocalScheduler, and the data
// oracle (kernel-mm's checker) judges every run from its trace.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { readTrace, type Message, type TraceLine } from '@svmsim/runtime';
import { MADV_PAGEOUT, MAP_ANONYMOUS, MAP_FIXED, MAP_PRIVATE, PAGE_SIZE, PROT_READ, PROT_WRITE } from '@svmsim/kernel-mm';
import { createGpu, type GpuConfig, type GpuPolicyName } from '@svmsim/gpu-driver';
import type { GpuSubmitResult } from '@svmsim/gpu-driver/gpu-protocol';
import { runMm, type Step } from '@svmsim/kernel-mm/testing/mm-harness';

export const A = 16 * 1024 * 1024;
export const B = 64 * 1024 * 1024;
export const RW = PROT_READ | PROT_WRITE;
export const PID = 1;

export const create: Step = { msg: { type: 'process_create' } as never };
export const mmapAt = (addr: number, pages: number): Step => ({
  msg: { type: 'mmap', pid: PID, addr, length: pages * PAGE_SIZE, prot: RW, flags: MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED } as never,
});
export const store = (addr: number, value: number): Step => ({ msg: { type: 'cpu_access', pid: PID, addr, write: true, value } as never });
export const load = (addr: number): Step => ({ msg: { type: 'cpu_access', pid: PID, addr, write: false } as never });
export const gpu = (msg: object): Step => ({ to: 'gpu0', msg: msg as Message });
export const boCreate = (addr: number, pages: number) => gpu({ type: 'gpu_bo_create', pid: PID, addr, pages });
export const submit = (bos: number[], touch: number, durationNs: number, value?: number, queue: 'gfx' | 'compute' = 'gfx') =>
  gpu({ type: 'gpu_submit', bos, pattern: { touch, write: true, value }, durationNs, queue });
/** WAIT_CS on the job of the last submission, if it succeeded. */
export const waitLast: Step = (results) => {
  const s = [...results].reverse().find((r) => r.type === 'gpu_submit_result') as GpuSubmitResult | undefined;
  return s && s.ret === 0 ? gpu({ type: 'gpu_wait', job: s.job }) : undefined;
};

export async function withTrace<T>(fn: (dir: string) => Promise<T>): Promise<T> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'svmsim-gpu-'));
  try {
    return await fn(dir);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

export async function run(policy: GpuPolicyName, steps: Step[], seed = 1, mm: { frames?: number; swapPages?: number } = {}, gpuConfig: Partial<GpuConfig> = {}) {
  return withTrace(async (dir) => {
    const gpuActor = createGpu({ ...gpuConfig, policy }, 'gpu0');
    const out = await runMm(steps, { seed, traceDir: dir, dumpAtEnd: true, mm: { frames: 128, swapPages: 128, checkInvariants: true, ...mm }, extra: [{ id: 'gpu0', actor: gpuActor }] });
    return { ...out, gpu: out.r.summaries.gpu0 as Record<string, any>, trace: readTrace(dir) };
  });
}

/** The mm trace's ack time of gpu0's invalidations, and the gpu's job end times. */
export function ackAndJobEnd(trace: TraceLine[]) {
  const acks = trace.filter((l) => l.ev === 'invalidate_ack' && l.dev === 'gpu0').map((l) => l.t);
  const ends = trace.filter((l) => l.ev === 'gpu_job_end').map((l) => l.t);
  return { acks, ends };
}

/** A small seeded PRNG for building scripts (mulberry32). */
export function prng(seed: number) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * Jobs on two userptr BOs racing munmap+remap, mprotect RO/RW and MADV_PAGEOUT, and CPU stores.
 * `pressure`: also stores to another region and asks for reclaim (run it on a small machine), and
 * ends by loading every page of the BOs (which brings VRAM pages home before the dump).
 */
export function racingScript(seed: number, { pressure = false } = {}): Step[] {
  const rnd = pressure ? prng(seed * 104729 + 3) : prng(seed * 7919 + 1);
  const pages = 12;
  const half = pages / 2;
  const other = 24;
  const steps: Step[] = [create, mmapAt(A, pages), ...(pressure ? [mmapAt(B, other)] : [])];
  for (let i = 0; i < pages; i++) steps.push(store(A + i * PAGE_SIZE, seed * 1000 + i));
  steps.push(boCreate(A, half), boCreate(A + half * PAGE_SIZE, half));
  for (let round = 0; round < 8; round++) {
    const dur = 20_000 + Math.floor(rnd() * 200_000);
    const bos = rnd() < 0.5 ? [1, 2] : [1 + Math.floor(rnd() * 2)];
    const sub = submit(bos, [0.2, 0.5, 1][Math.floor(rnd() * 3)], dur, undefined, rnd() < 0.5 ? 'gfx' : 'compute') as { to: string; msg: Message };
    const page = Math.floor(rnd() * pages);
    const n = 1 + Math.floor(rnd() * (pages - page));
    const addr = A + page * PAGE_SIZE;
    const len = n * PAGE_SIZE;
    const kind = Math.floor(rnd() * (pressure ? 4 : 3));
    const op: Step[] =
      kind === 0
        ? [{ msg: { type: 'munmap', pid: PID, addr, length: len } as never }, mmapAt(addr, n)]
        : kind === 1
          ? [{ msg: { type: 'mprotect', pid: PID, addr, length: len, prot: PROT_READ } as never }, { msg: { type: 'mprotect', pid: PID, addr, length: len, prot: RW } as never }]
          : kind === 2
            ? [{ msg: { type: 'madvise', pid: PID, addr, length: len, advice: MADV_PAGEOUT } as never }]
            : [...Array.from({ length: 8 }, (_, i) => store(B + Math.floor(rnd() * other) * PAGE_SIZE, round * 100 + i)), { msg: { type: 'reclaim', nr_pages: 16 } as never }];
    const first = op[0] as { msg: Message };
    if (rnd() < 0.3) {
      // Race the submit's walk itself.
      steps.push({ group: [sub, { to: 'mm', msg: first.msg }] }, ...op.slice(1));
    } else {
      steps.push(sub, { sleepNs: Math.floor(rnd() * dur) }, ...op);
    }
    steps.push({ sleepNs: Math.floor(rnd() * 50_000) }, store(A + Math.floor(rnd() * pages) * PAGE_SIZE, seed * 1000 + 100 + round), waitLast);
  }
  steps.push(gpu({ type: 'gpu_bo_free', handle: 1 }), gpu({ type: 'gpu_bo_free', handle: 2 }));
  if (pressure) for (let i = 0; i < pages; i++) steps.push(load(A + i * PAGE_SIZE));
  return steps;
}

/**
 * The read_retry race: a job faults a 32-page BO in windows of 16 pages while the CPU keeps
 * invalidating most or all of it (MADV_PAGEOUT, mprotect RO then RW) every few µs. mm computes the
 * pfns of a 16-page hmm_range_fault, then charges its walk (16 × hmmPerPageNs) before the reply
 * leaves; an invalidation that starts meanwhile reaches the GPU first (its invalidate message is
 * sent at once, the reply after the walk, on the same FIFO pair), is acked, and only then do the
 * pfns arrive: exactly what mmu_interval_read_retry exists to catch.
 */
export function readRetryRace(seed: number): Step[] {
  const rnd = prng(seed * 31337 + 7);
  const pages = 32;
  const steps: Step[] = [create, mmapAt(A, pages)];
  for (let i = 0; i < pages; i++) steps.push(store(A + i * PAGE_SIZE, seed * 1000 + i));
  steps.push(boCreate(A, pages));
  for (let job = 0; job < 4; job++) {
    steps.push(submit([1], 1, 64_000, undefined, 'compute'));
    for (let k = 0; k < 20; k++) {
      const first = rnd() < 0.6 ? 0 : Math.floor(rnd() * pages);
      const n = first === 0 ? pages : 1 + Math.floor(rnd() * Math.min(8, pages - first));
      const addr = A + first * PAGE_SIZE;
      const length = n * PAGE_SIZE;
      steps.push({ sleepNs: Math.floor(rnd() * 4_000) });
      if (rnd() < 0.5) steps.push({ msg: { type: 'madvise', pid: PID, addr, length, advice: MADV_PAGEOUT } as never });
      else steps.push({ msg: { type: 'mprotect', pid: PID, addr, length, prot: PROT_READ } as never }, { msg: { type: 'mprotect', pid: PID, addr, length, prot: RW } as never });
    }
    steps.push(waitLast);
  }
  steps.push(gpu({ type: 'gpu_bo_free', handle: 1 }));
  return steps;
}
