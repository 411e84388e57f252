// ODP page faults as the transport sees them: RNR NAKs and retries while the fault is served,
// rnr_retry exhaustion, the drop-and-retransmit alternative, requester faults, faults that fail,
// and ibv_advise_mr prefetch taking the faults out of the traffic.
import { describe, expect, it } from 'vitest';
import { PAGE_SIZE, PROT_READ } from '@svmsim/kernel-mm';
import { formatViolation } from '@svmsim/kernel-mm/checker';
import type { Step } from '@svmsim/kernel-mm/testing/mm-harness';
import {
  IBV_ADVISE_MR_ADVICE_PREFETCH, IBV_ADVISE_MR_ADVICE_PREFETCH_NO_FAULT, IBV_ADVISE_MR_ADVICE_PREFETCH_WRITE, IBV_ADVISE_MR_FLAG_FLUSH, RNR_TIMER_NS,
} from '@svmsim/rdma-odp';
import { A, PID, advise, create, createQp, load, mmapAt, of, peerOp, peerWrite, postSend, regMr, run, store } from './rdma-steps.js';

const wcs = (results: { type: string }[]) => of<{ status: string; rnr_naks: number; retries: number }>(results as never, 'peer_wc');

describe('RNR NAK while the fault is served', () => {
  it('a write into a fresh ODP page is RNR-NAKed, retried after the RNR timer, and lands; the fault maps the whole message', async () => {
    const { results, nic, peer, check } = await run([create, mmapAt(A, 8), regMr('odp', A, 8), createQp(), peerWrite(A, [1, 2, 3, 4, 5, 6, 7, 8]), load(A + 7 * PAGE_SIZE)]);
    const [w] = wcs(results);
    expect(w.status).toBe('IBV_WC_SUCCESS');
    expect(w.rnr_naks).toBe(1);
    expect(nic.rnrNaksSent).toBe(1);
    expect(peer.rnrRetries).toBe(1);
    expect(nic.odpFaults).toBe(1);
    expect(nic.pagesPerFault).toBe(8);
    // The write completed one RNR timer (min_rnr_timer 12: 0.64 ms) after the first attempt.
    expect(nic.lastMessageAt).toBeGreaterThan(RNR_TIMER_NS[12]);
    expect(of(results, 'cpu_access_result').map((r) => r.value)).toEqual([8]);
    expect(check!.violations.map(formatViolation)).toEqual([]);
  });

  // The first fault in an implicit MR's chunk makes its child (a UMR of 262144 entries, ~0.5 ms);
  // min_rnr_timer 1 is 10 µs.
  it('a short RNR timer: the retries come while the fault is still outstanding, each RNR-NAKed again', async () => {
    const { results, nic } = await run([create, mmapAt(A, 2), regMr('implicit', 0, 0), createQp({ min_rnr_timer: 1 }), peerWrite(A, [1])]);
    const [w] = wcs(results);
    expect(w.status).toBe('IBV_WC_SUCCESS');
    expect(w.rnr_naks).toBeGreaterThan(1);
    expect(nic.rnrNaksSent).toBe(w.rnr_naks);
    expect(nic.odpFaults).toBe(1);
  });

  it('rnr_retry 0: the first RNR NAK fails the WQE with IBV_WC_RNR_RETRY_EXC_ERR, the QP goes to error, nothing is written', async () => {
    const steps: Step[] = [create, mmapAt(A, 2), store(A, 5), regMr('odp', A, 2), createQp({ rnr_retry: 0 }), peerWrite(A + PAGE_SIZE, [1]), peerWrite(A, [2]), load(A + PAGE_SIZE), load(A)];
    const { results, check } = await run(steps);
    expect(wcs(results).map((w) => w.status)).toEqual(['IBV_WC_RNR_RETRY_EXC_ERR', 'IBV_WC_WR_FLUSH_ERR']);
    expect(of(results, 'cpu_access_result').slice(-2).map((r) => r.value)).toEqual([0, 5]);
    expect(check!.stats.dmaWrites).toBe(0);
  });

  it('rnr_retry 2 with a short timer: exhausted after three NAKs', async () => {
    const { results } = await run([create, mmapAt(A, 2), regMr('implicit', 0, 0), createQp({ rnr_retry: 2, min_rnr_timer: 1 }), peerWrite(A, [1])]);
    expect(wcs(results).map((w) => [w.status, w.rnr_naks])).toEqual([['IBV_WC_RNR_RETRY_EXC_ERR', 3]]);
  });

  it('a receive buffer that faults: the SEND is RNR-NAKed (errata 17: RNR belongs to receive WQEs) and lands after the retry', async () => {
    const { results, nic } = await run([create, mmapAt(A, 2), regMr('odp', A, 2), createQp(), (r) => ({ group: [
      { to: 'rdma0', msg: { type: 'ibv_post_recv', qpn: (r.filter((x) => x.type === 'ibv_create_qp_result').pop() as never as { qpn: number }).qpn, sge: { addr: A, length: PAGE_SIZE, lkey: 256 } } as never },
      (peerOp('IBV_WR_SEND', 0, 1, { values: [42] }) as (x: typeof r) => { to: string; msg: never })(r),
    ] }), load(A)]);
    expect(wcs(results).map((w) => [w.status, w.rnr_naks])).toEqual([['IBV_WC_SUCCESS', 1]]);
    expect(nic.odpFaultsByType).toEqual({ 'wqe-responder': 1 });
    expect(of(results, 'cpu_access_result').map((r) => r.value)).toEqual([42]);
  });
});

describe('rkey faults answered by dropping the packet (rkeyFaultResponse: drop)', () => {
  it('the requester retransmits after its ACK timeout and the write lands', async () => {
    // timeout 8: 4.096 µs × 2^8 ≈ 1 ms, longer than the fault.
    const { results, nic, peer } = await run([create, mmapAt(A, 2), regMr('odp', A, 2), createQp({ timeout: 8 }), peerWrite(A, [1])], { rdma: { rkeyFaultResponse: 'drop' } });
    expect(wcs(results).map((w) => [w.status, w.retries, w.rnr_naks])).toEqual([['IBV_WC_SUCCESS', 1, 0]]);
    expect(nic.requestsDroppedOnFault).toBe(1);
    expect(nic.rnrNaksSent).toBe(0);
    expect(peer.transportRetries).toBe(1);
  });

  it('retry_cnt 0 and a timeout shorter than the fault: IBV_WC_RETRY_EXC_ERR', async () => {
    const { results } = await run([create, mmapAt(A, 2), regMr('odp', A, 2), createQp({ timeout: 1, retry_cnt: 0 }), peerWrite(A, [1])], { rdma: { rkeyFaultResponse: 'drop' } });
    expect(wcs(results).map((w) => w.status)).toEqual(['IBV_WC_RETRY_EXC_ERR']);
  });
});

describe('faults that cannot be resolved', () => {
  it('a writable ODP MR faults with write intent (errata 13): a remote READ of a PROT_READ range fails with -EPERM → remote access error', async () => {
    const steps: Step[] = [create, mmapAt(A, 2), regMr('odp', A, 2), { msg: { type: 'mprotect', pid: PID, addr: A, length: 2 * PAGE_SIZE, prot: PROT_READ } as never }, createQp(), peerOp('IBV_WR_RDMA_READ', A, 1)];
    const { results, nic } = await run(steps);
    expect(wcs(results).map((w) => w.status)).toEqual(['IBV_WC_REM_ACCESS_ERR']);
    expect(nic.odpFaultErrors).toBe(1);
  });

  it('a requester fault on our SEND buffer stops the send queue until the resume; then the SEND goes', async () => {
    const { results, nic, check } = await run([create, mmapAt(A, 2), store(A + PAGE_SIZE, 3), regMr('odp', A, 2), { msg: { type: 'madvise', pid: PID, addr: A, length: 2 * PAGE_SIZE, advice: 4 } as never }, createQp(), postSend('IBV_WR_SEND', A, 2)]);
    expect(of(results, 'ibv_wc').map((w) => w.status)).toEqual(['IBV_WC_SUCCESS']);
    expect(nic.odpFaultsByType).toEqual({ 'wqe-requester': 1 });
    expect(check!.violations.map(formatViolation)).toEqual([]);
  });
});

describe('ibv_advise_mr', () => {
  const fresh = (pages: number): Step[] => [create, mmapAt(A, pages), regMr('odp', A, pages), createQp()];
  const writes = (pages: number): Step[] => Array.from({ length: pages }, (_, i) => peerWrite(A + ((i * 5) % pages) * PAGE_SIZE, [i + 1]));

  it('PREFETCH_WRITE with FLUSH before out-of-order writes: no fault, no RNR NAK', async () => {
    const { results, nic } = await run([...fresh(8), advise(IBV_ADVISE_MR_ADVICE_PREFETCH_WRITE, IBV_ADVISE_MR_FLAG_FLUSH, A, 8), ...writes(8)]);
    expect(of(results, 'ibv_result').map((r) => r.ret)).toEqual([0]);
    expect(wcs(results).every((w) => w.status === 'IBV_WC_SUCCESS' && w.rnr_naks === 0)).toBe(true);
    expect(nic.odpFaults).toBe(0);
    expect(nic.prefetchPages).toBe(8);
  });

  it('without it every out-of-order write faults and is RNR-NAKed', async () => {
    const { results, nic } = await run([...fresh(8), ...writes(8)]);
    expect(wcs(results).every((w) => w.status === 'IBV_WC_SUCCESS' && w.rnr_naks === 1)).toBe(true);
    expect(nic.odpFaults).toBe(8);
    expect(nic.pagesPerFault).toBe(1);
  });

  it('PREFETCH maps read-only (MLX5_PF_FLAGS_DOWNGRADE): reads go through, a write faults again', async () => {
    const { results, nic } = await run([...fresh(2), advise(IBV_ADVISE_MR_ADVICE_PREFETCH, IBV_ADVISE_MR_FLAG_FLUSH, A, 2), peerOp('IBV_WR_RDMA_READ', A, 2), peerWrite(A, [1])]);
    expect(wcs(results).map((w) => [w.status, w.rnr_naks])).toEqual([['IBV_WC_SUCCESS', 0], ['IBV_WC_SUCCESS', 1]]);
    expect(nic.odpFaults).toBe(1);
  });

  it('PREFETCH_NO_FAULT maps only what is present; asynchronous prefetch answers at once and maps later', async () => {
    const steps: Step[] = [create, mmapAt(A, 4), regMr('odp', A, 4), store(A, 1), createQp(), advise(IBV_ADVISE_MR_ADVICE_PREFETCH_NO_FAULT, IBV_ADVISE_MR_FLAG_FLUSH, A, 4), peerWrite(A, [2]), peerWrite(A + PAGE_SIZE, [3]),
      advise(IBV_ADVISE_MR_ADVICE_PREFETCH_WRITE, 0, A + 2 * PAGE_SIZE, 2), { sleepNs: 100_000 }, peerWrite(A + 3 * PAGE_SIZE, [4])];
    const { results, nic } = await run(steps);
    expect(wcs(results).map((w) => w.rnr_naks)).toEqual([0, 1, 0]);
    expect(nic.odpFaults).toBe(1);
    expect(nic.prefetches).toBe(2);
  });

  it('errors: a pinned MR (-ENOENT), another process (-EPERM), PREFETCH_WRITE of a read-only MR (-EPERM)', async () => {
    const steps: Step[] = [create, mmapAt(A, 2), store(A, 1), regMr('pinned', A, 2), advise(IBV_ADVISE_MR_ADVICE_PREFETCH, IBV_ADVISE_MR_FLAG_FLUSH, A, 1),
      regMr('odp', A, 2, 4 /* REMOTE_READ only */), advise(IBV_ADVISE_MR_ADVICE_PREFETCH_WRITE, IBV_ADVISE_MR_FLAG_FLUSH, A, 1),
      (r) => ({ to: 'rdma0', msg: { type: 'ibv_advise_mr', pid: PID + 7, advice: 0, flags: 1, sg_list: [{ addr: A, length: 4096, lkey: (r.filter((x) => x.type === 'ibv_reg_mr_result').pop() as never as { lkey: number }).lkey }] } as never })];
    const { results } = await run(steps);
    expect(of(results, 'ibv_result').map((r) => r.ret)).toEqual([-2, -1, -1]);
  });
});
