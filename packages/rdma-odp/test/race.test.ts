// Faults, retries and invalidations racing: remote writes, reads, atomics and local sends over an MR
// while the process munmaps and maps again, MADV_DONTNEEDs, forks, pages out and reclaims under
// it, some of it landing while a DMA is under way. Over many seeds under LocalScheduler (mm checks
// its invariants after every message), for every safe MR kind the checker finds nothing; the unsafe
// twin (acks before the DMA in flight drains) is caught.
import { describe, expect, it } from 'vitest';
import { MADV_DONTNEED, MADV_PAGEOUT, PAGE_SIZE } from '@svmsim/kernel-mm';
import { formatViolation } from '@svmsim/kernel-mm/checker';
import type { Step } from '@svmsim/kernel-mm/testing/mm-harness';
import { IBV_ADVISE_MR_ADVICE_PREFETCH_WRITE, IBV_ADVISE_MR_FLAG_FLUSH } from '@svmsim/rdma-odp';
import { A, B, PID, advise, create, createQp, deregLast, later, load, mmapAt, peerOp, peerWrite, postSend, prng, regMr, run, store, together, type MrKind } from './rdma-steps.js';

const PAGES = 12;
const OTHER = 24;

/** One round's operation on the process's memory (mostly over the traffic's pages `near`), sent to mm. */
function memoryOp(rnd: () => number, round: number, near: number): { steps: Step[]; first: object; rest: Step[] } {
  const page = rnd() < 0.7 ? near : Math.floor(rnd() * PAGES);
  const n = 1 + Math.floor(rnd() * Math.min(4, PAGES - page));
  const addr = A + page * PAGE_SIZE;
  const length = n * PAGE_SIZE;
  const mm = (msg: object): Step => ({ msg: msg as never });
  switch (Math.floor(rnd() * 5)) {
    case 0:
      return { first: { type: 'munmap', pid: PID, addr, length }, rest: [mmapAt(addr, n)], steps: [] };
    case 1:
      return { first: { type: 'madvise', pid: PID, addr, length, advice: MADV_DONTNEED }, rest: [], steps: [] };
    case 2:
      return { first: { type: 'madvise', pid: PID, addr, length, advice: MADV_PAGEOUT }, rest: [], steps: [] };
    case 3:
      return { first: { type: 'fork', pid: PID }, rest: [(r) => mm({ type: 'exit', pid: (r[r.length - 1] as never as { ret: number }).ret })], steps: [] };
    default:
      return {
        first: { type: 'reclaim', nr_pages: 16 },
        rest: [],
        steps: Array.from({ length: 6 }, (_, i) => store(B + Math.floor(rnd() * OTHER) * PAGE_SIZE, round * 100 + i)),
      };
  }
}

/** A traffic step on the MR, the pages it covers. */
function traffic(rnd: () => number, seed: number, round: number): { step: Step; page: number; n: number } {
  const page = Math.floor(rnd() * PAGES);
  const n = 1 + Math.floor(rnd() * Math.min(8, PAGES - page));
  const addr = A + page * PAGE_SIZE;
  switch (Math.floor(rnd() * 4)) {
    case 0:
    case 1:
      return { page, n, step: peerWrite(addr, Array.from({ length: n }, (_, i) => seed * 10_000 + round * 100 + i + 1)) };
    case 2:
      return { page, n, step: peerOp('IBV_WR_RDMA_READ', addr, n) };
    default:
      return { page, n: 1, step: rnd() < 0.5 ? peerOp('IBV_WR_ATOMIC_FETCH_AND_ADD', addr, 1, { compare_add: 1 }) : postSend('IBV_WR_RDMA_WRITE', addr, 1) };
  }
}

function racingScript(seed: number, kind: MrKind): Step[] {
  const rnd = prng(seed * 7919 + 1);
  const steps: Step[] = [create, mmapAt(A, PAGES), mmapAt(B, OTHER)];
  for (let i = 0; i < PAGES; i++) steps.push(store(A + i * PAGE_SIZE, seed * 1000 + i));
  steps.push(regMr(kind, A, PAGES, undefined, 4096));
  for (let round = 0; round < 8; round++) {
    const t = traffic(rnd, seed, round);
    const op = memoryOp(rnd, round, t.page);
    // A fresh QP each round, so that one failed WQE does not silence the rest.
    steps.push(createQp(), ...op.steps);
    // Mostly the pages are mapped (prefetched) so the traffic's DMA starts without a fault, and the
    // memory operation lands around it: a remote message of n pages reaches the NIC some
    // 1 µs + n × 330 ns after it is posted and its DMA takes n × 200 ns.
    if (kind !== 'pinned' && rnd() < 0.7) steps.push(advise(IBV_ADVISE_MR_ADVICE_PREFETCH_WRITE, IBV_ADVISE_MR_FLAG_FLUSH, A + t.page * PAGE_SIZE, t.n));
    const arrives = 1_000 + t.n * 330;
    if (rnd() < 0.7) steps.push(together(t.step, later(arrives - 800 + Math.floor(rnd() * (t.n * 200 + 1_600)), 'mm', op.first)), ...op.rest);
    else steps.push({ msg: op.first as never }, ...op.rest, t.step);
    steps.push(store(A + Math.floor(rnd() * PAGES) * PAGE_SIZE, seed * 1000 + 500 + round));
  }
  steps.push(deregLast);
  for (let i = 0; i < PAGES; i++) steps.push(load(A + i * PAGE_SIZE));
  return steps;
}

const SEEDS = 30;
const MM = { frames: 96, swapPages: 128 };

describe('fault / invalidation races, many seeds', () => {
  for (const kind of ['pinned', 'odp', 'implicit'] as const) {
    it(`${kind}: zero violations over ${SEEDS} seeds`, async () => {
      let invalidations = 0;
      let waited = 0;
      for (let seed = 1; seed <= SEEDS; seed++) {
        const { check, nic } = await run(racingScript(seed, kind), { seed, mm: MM });
        expect(check!.violations.map(formatViolation), `seed ${seed}`).toEqual([]);
        expect(nic.pendingCalls, `seed ${seed}`).toBe(0);
        invalidations += nic.invalidations;
        waited += nic.zapsWaitedForDma;
      }
      if (kind === 'pinned') expect(invalidations).toBe(0);
      else {
        expect(invalidations).toBeGreaterThan(SEEDS);
        // Some invalidations did land on a DMA under way, and waited for it.
        expect(waited).toBeGreaterThan(0);
      }
    });
  }

  it(`unsafe-odp (acks before the DMA in flight drains) is caught: stale_translation`, async () => {
    let caught = 0;
    let early = 0;
    for (let seed = 1; seed <= SEEDS; seed++) {
      const { check, nic } = await run(racingScript(seed, 'odp'), { seed, mm: MM, rdma: { mrKind: 'unsafe-odp' } });
      early += nic.unsafeEarlyAcks;
      if (check!.violations.some((v) => v.kind === 'stale_translation')) caught++;
    }
    expect(early).toBeGreaterThan(0);
    // About half the seeds land an invalidation on a DMA under way (14 of 30 when written).
    expect(caught).toBeGreaterThanOrEqual(5);
  });

  // The soak's denominator (unsafeBugPaths): a seed where the twin's bug path was taken is one the
  // checker catches, and the checker catches no seed where it was not. An ack that comes while a
  // DMA is in flight is not enough: a DMA issued before the ack reaches mm first and is legal.
  it(`unsafe-odp's unsafeBugPaths counts exactly the seeds the checker catches`, async () => {
    let taken = 0;
    for (let seed = 1; seed <= SEEDS; seed++) {
      const { check, nic } = await run(racingScript(seed, 'odp'), { seed, mm: MM, rdma: { mrKind: 'unsafe-odp' } });
      const stale = check!.violations.some((v) => v.kind === 'stale_translation');
      expect(nic.unsafeBugPaths > 0, `seed ${seed}: ${nic.unsafeBugPaths} bug paths, stale_translation ${stale}`).toBe(stale);
      if (nic.unsafeBugPaths > 0) taken++;
    }
    expect(taken).toBeGreaterThan(0);
  });
});
