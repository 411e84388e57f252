// mlx5_ib_invalidate_range as mm sees it: non-blockable ranges refused, a blockable one acked once
// the ZAP has completed and the pages are unmapped (writable ones dirtied); an implicit child left
// empty is destroyed and made again by the next fault.
import { describe, expect, it } from 'vitest';
import { MADV_DONTNEED, PAGE_SIZE } from '@svmsim/kernel-mm';
import { formatViolation } from '@svmsim/kernel-mm/checker';
import type { Step } from '@svmsim/kernel-mm/testing/mm-harness';
import { A, PID, create, createQp, events, load, mmapAt, nic, of, peerWrite, regMr, run, store } from './rdma-steps.js';

const madvise = (addr: number, pages: number, advice: number): Step => ({ msg: { type: 'madvise', pid: PID, addr, length: pages * PAGE_SIZE, advice } as never });
const munmap = (addr: number, pages: number): Step => ({ msg: { type: 'munmap', pid: PID, addr, length: pages * PAGE_SIZE } as never });

describe('the invalidate callback', () => {
  it('refuses every non-blockable range (returns false), whatever is mapped', async () => {
    // The OOM reaper's non-blockable CLEAR, delivered as mm would (the sub is the MR's, the first mm handed out).
    const inv = { type: 'invalidate', sub: 1, pid: PID, start: A, end: A + PAGE_SIZE, event: 'MMU_NOTIFY_CLEAR', blockable: false, owner: null, cur_seq: 99 };
    const { results, nic: n } = await run([create, mmapAt(A, 2), store(A, 1), regMr('odp', A, 2), nic(inv)]);
    expect(of(results, 'invalidate_ack')).toEqual([{ type: 'invalidate_ack', sub: 1, ok: false }]);
    expect(n.invalidationsRefused).toBe(1);
    expect(n.pagesInvalidated).toBe(0);
  });

  it('a blockable one zaps the mapped entries, unmaps and dirties the writable ones; the next access faults again', async () => {
    const steps: Step[] = [create, mmapAt(A, 4), regMr('odp', A, 4), createQp(), peerWrite(A, [1, 2, 3, 4]), madvise(A, 2, MADV_DONTNEED), peerWrite(A, [5]), load(A), load(A + PAGE_SIZE), load(A + 2 * PAGE_SIZE)];
    const { results, nic: n, check, trace } = await run(steps);
    expect(n.invalidationsByEvent).toEqual({ MMU_NOTIFY_CLEAR: 1 });
    expect(n.pagesInvalidated).toBe(2);
    expect(n.pagesUnmapped).toBe(2);
    expect(n.pagesDirtiedAtUnmap).toBe(2);
    expect(n.odpFaults).toBe(2);
    // MADV_DONTNEED: the zapped page reads 0; the fault after it wrote 5.
    expect(of(results, 'cpu_access_result').map((r) => r.value)).toEqual([5, 0, 3]);
    expect(events(trace, 'invalidate_ack').every((l) => (l as unknown as { ok: boolean }).ok)).toBe(true);
    expect(check!.violations.map(formatViolation)).toEqual([]);
  });

  it('nothing mapped: set_seq and ack at once, no UMR', async () => {
    const { nic: n } = await run([create, mmapAt(A, 4), regMr('odp', A, 4), madvise(A, 4, MADV_DONTNEED)]);
    expect(n.invalidations).toBe(1);
    expect(n.umrs).toBe(1); // the registration's snapshot only
    expect(n.pagesInvalidated).toBe(0);
  });
});

describe('implicit ODP children', () => {
  it('a child whose last page is invalidated is destroyed; the next fault in its chunk makes a new one', async () => {
    const steps: Step[] = [create, mmapAt(A, 4), regMr('implicit', 0, 0), createQp(), peerWrite(A, [1, 2]), munmap(A, 4), { sleepNs: 100_000 }, mmapAt(A, 4), peerWrite(A, [3]), load(A)];
    const { results, nic: n, check } = await run(steps);
    expect(of(results, 'peer_wc').map((w) => w.status)).toEqual(['IBV_WC_SUCCESS', 'IBV_WC_SUCCESS']);
    expect(n.implicitChildrenCreated).toBe(2);
    expect(n.implicitChildrenDestroyed).toBe(1);
    expect(of(results, 'cpu_access_result').map((r) => r.value)).toEqual([3]);
    expect(check!.violations.map(formatViolation)).toEqual([]);
  });

  it('a child with pages still mapped stays', async () => {
    const { nic: n } = await run([create, mmapAt(A, 4), regMr('implicit', 0, 0), createQp(), peerWrite(A, [1, 2]), munmap(A, 1), { sleepNs: 100_000 }]);
    expect(n.implicitChildrenDestroyed).toBe(0);
  });

  it('two faults making the same child at once: one wins the cmpxchg, the other uses its child', async () => {
    const steps: Step[] = [create, mmapAt(A, 4), regMr('implicit', 0, 0), createQp(), createQp(),
      (r) => {
        const qps = r.filter((x) => x.type === 'ibv_create_qp_result') as never as { remote_qpn: number }[];
        const key = (r.filter((x) => x.type === 'ibv_reg_mr_result').pop() as never as { lkey: number }).lkey;
        const w = (qpn: number, page: number) => ({ to: 'rdma0.peer', msg: { type: 'peer_post', qpn, opcode: 'IBV_WR_RDMA_WRITE', remote_addr: A + page * PAGE_SIZE, rkey: key, pages: 1, values: [page + 1] } as never });
        return { group: [w(qps[0].remote_qpn, 0), w(qps[1].remote_qpn, 1)] };
      }];
    const { results, nic: n } = await run(steps);
    expect(of(results, 'peer_wc').map((w) => w.status)).toEqual(['IBV_WC_SUCCESS', 'IBV_WC_SUCCESS']);
    expect(n.implicitChildrenCreated).toBe(1);
    expect(n.implicitChildRaces).toBe(1);
  });
});
