// Traffic over each MR kind: SEND/RECV, RDMA READ and WRITE, atomics, in both directions, RC and UD;
// and the access flags enforced (a disallowed access fails with a protection error and writes
// nothing). Every DMA goes through mm with the translation it used; the checker judges each run.
import { describe, expect, it } from 'vitest';
import { PAGE_SIZE } from '@svmsim/kernel-mm';
import { formatViolation } from '@svmsim/kernel-mm/checker';
import type { Step } from '@svmsim/kernel-mm/testing/mm-harness';
import { IBV_ACCESS_LOCAL_WRITE, IBV_ACCESS_REMOTE_ATOMIC, IBV_ACCESS_REMOTE_READ, IBV_ACCESS_REMOTE_WRITE } from '@svmsim/rdma-odp';
import { A, create, createQp, load, mmapAt, of, peerOp, peerWrite, postRecv, postSend, regMr, run, store, together, type MrKind } from './rdma-steps.js';

const KINDS: MrKind[] = ['pinned', 'odp', 'implicit'];
const statuses = (results: { type: string }[], type: string) => of<{ status: string }>(results as never, type).map((w) => w.status);

describe('traffic', () => {
  for (const kind of KINDS) {
    it(`${kind}: remote SEND / WRITE / READ / atomics and local SEND / WRITE / READ / atomics move the right words`, async () => {
      const steps: Step[] = [
        create, mmapAt(A, 8), ...[0, 1, 2, 3].map((i) => store(A + i * PAGE_SIZE, 100 + i)), regMr(kind, A, 8), createQp(),
        // remote-initiated, on our MR
        peerWrite(A + 4 * PAGE_SIZE, [40, 41]),
        peerOp('IBV_WR_RDMA_READ', A, 2),
        peerOp('IBV_WR_ATOMIC_FETCH_AND_ADD', A + 2 * PAGE_SIZE, 1, { compare_add: 5 }),
        peerOp('IBV_WR_ATOMIC_CMP_AND_SWP', A + 3 * PAGE_SIZE, 1, { compare_add: 103, swap: 7 }),
        together(postRecv(A + 6 * PAGE_SIZE, 2), peerOp('IBV_WR_SEND', 0, 2, { values: [60, 61] })),
        // local-initiated, towards the peer's memory
        postSend('IBV_WR_RDMA_WRITE', A, 2, 0),
        postSend('IBV_WR_RDMA_READ', A + 4 * PAGE_SIZE, 1, 1),
        postSend('IBV_WR_ATOMIC_FETCH_AND_ADD', A + 5 * PAGE_SIZE, 1, 0, { compare_add: 1 }),
        postSend('IBV_WR_SEND', A, 1),
        ...[0, 1, 2, 3, 4, 5, 6, 7].map((i) => load(A + i * PAGE_SIZE)),
      ];
      const { results, check, nic } = await run(steps);
      const peerWcs = of(results, 'peer_wc');
      expect(peerWcs.map((w) => w.status)).toEqual(Array(5).fill('IBV_WC_SUCCESS'));
      expect(peerWcs[1].values).toEqual([100, 101]);
      expect(peerWcs[2].value).toBe(102);
      expect(peerWcs[3].value).toBe(103);
      const wcs = of(results, 'ibv_wc');
      expect(wcs.map((w) => w.status)).toEqual(Array(5).fill('IBV_WC_SUCCESS'));
      expect(wcs[0].opcode).toBe('IBV_WC_RECV');
      expect(wcs[0].values).toEqual([60, 61]);
      // Local READ of peer page 1 (101, from the local WRITE), local FAA on peer page 0 (holding 100 from the WRITE): 100 lands locally.
      expect(wcs[3].value).toBe(100);
      const loads = of(results, 'cpu_access_result').slice(-8).map((r) => r.value);
      expect(loads).toEqual([100, 101, 107, 7, 101, 100, 60, 61]);
      expect(check!.violations.map(formatViolation)).toEqual([]);
      expect(check!.stats.dmaWrites).toBeGreaterThanOrEqual(8);
      expect(nic.rdmaMessages).toBe(9);
    });
  }

  it('UD: a SEND lands in a posted receive; without one it is dropped, never RNR-NAKed', async () => {
    // The receive buffer is present, so the registration maps it: a fault on UD would drop the packet too.
    const steps: Step[] = [
      create, mmapAt(A, 2), store(A, 1), regMr('odp', A, 2), createQp({}, 'UD'),
      together(postRecv(A, 1), peerOp('IBV_WR_SEND', 0, 1, { values: [9] })),
      peerOp('IBV_WR_SEND', 0, 1, { values: [10] }),
      { sleepNs: 10_000 }, // UD completes at the sender: let the packet arrive
      load(A),
    ];
    const { results, nic, check } = await run(steps);
    expect(statuses(results, 'peer_wc')).toEqual(['IBV_WC_SUCCESS', 'IBV_WC_SUCCESS']);
    expect(of(results, 'cpu_access_result').slice(-1).map((r) => r.value)).toEqual([9]);
    expect(nic.rnrNaksSent).toBe(0);
    expect(nic.udDrops).toBeGreaterThanOrEqual(1);
    expect(check!.violations.map(formatViolation)).toEqual([]);
  });
});

describe('access flags (enforced by the NIC: a protection error, nothing written)', () => {
  for (const kind of ['pinned', 'odp'] as const) {
    it(`${kind}: remote write, read and atomic each need their REMOTE_ flag`, async () => {
      const only = (flags: number): Step[] => [regMr(kind, A, 2, flags), createQp()];
      const steps: Step[] = [
        create, mmapAt(A, 2), store(A, 1),
        ...only(IBV_ACCESS_LOCAL_WRITE | IBV_ACCESS_REMOTE_READ), peerWrite(A, [2]), peerWrite(A, [3]),
        ...only(IBV_ACCESS_LOCAL_WRITE | IBV_ACCESS_REMOTE_WRITE), peerOp('IBV_WR_RDMA_READ', A, 1),
        ...only(IBV_ACCESS_LOCAL_WRITE | IBV_ACCESS_REMOTE_READ), peerOp('IBV_WR_ATOMIC_FETCH_AND_ADD', A, 1, { compare_add: 1 }),
        ...only(IBV_ACCESS_LOCAL_WRITE | IBV_ACCESS_REMOTE_WRITE | IBV_ACCESS_REMOTE_ATOMIC), peerWrite(A + 2 * PAGE_SIZE, [4]),
        load(A),
      ];
      const { results, check, nic } = await run(steps);
      // The second write goes on a QP already in error: flushed.
      expect(statuses(results, 'peer_wc')).toEqual(['IBV_WC_REM_ACCESS_ERR', 'IBV_WC_WR_FLUSH_ERR', 'IBV_WC_REM_ACCESS_ERR', 'IBV_WC_REM_ACCESS_ERR', 'IBV_WC_REM_ACCESS_ERR']);
      expect(of(results, 'cpu_access_result').slice(-1).map((r) => r.value)).toEqual([1]);
      expect(check!.stats.dmaWrites).toBe(0);
      expect(check!.stats.dmaReads).toBe(0);
      expect(nic.qpsInError).toBe(4);
      expect(check!.violations.map(formatViolation)).toEqual([]);
    });

    it(`${kind}: an MR without LOCAL_WRITE cannot take a READ response, an atomic result or a receive`, async () => {
      const steps: Step[] = [
        create, mmapAt(A, 2), store(A, 1), regMr(kind, A, 2, IBV_ACCESS_REMOTE_READ),
        createQp(), postSend('IBV_WR_RDMA_READ', A, 1),
        createQp(), postSend('IBV_WR_ATOMIC_FETCH_AND_ADD', A, 1, 0, { compare_add: 1 }),
        createQp(), together(postRecv(A, 1), peerOp('IBV_WR_SEND', 0, 1, { values: [5] })),
        load(A),
      ];
      const { results, check } = await run(steps);
      expect(statuses(results, 'ibv_wc')).toEqual(['IBV_WC_LOC_PROT_ERR', 'IBV_WC_LOC_PROT_ERR', 'IBV_WC_LOC_PROT_ERR']);
      expect(statuses(results, 'peer_wc')).toEqual(['IBV_WC_REM_OP_ERR']);
      expect(of(results, 'cpu_access_result').slice(-1).map((r) => r.value)).toEqual([1]);
      expect(check!.stats.dmaWrites).toBe(0);
    });
  }

  it('outside the MR: remote access error; a bad lkey: local protection error', async () => {
    const steps: Step[] = [
      create, mmapAt(A, 4), regMr('odp', A, 2), createQp(), peerWrite(A + PAGE_SIZE, [1, 2]),
      createQp(), (r) => postSend('IBV_WR_RDMA_WRITE', A, 1)(r) as never,
      createQp(), (r) => ({ to: 'rdma0', msg: { type: 'ibv_post_send', qpn: (r.filter((x) => x.type === 'ibv_create_qp_result').pop() as never as { qpn: number }).qpn, wr: { opcode: 'IBV_WR_SEND', sge: { addr: A, length: 4096, lkey: 4242 } } } as never }),
    ];
    const { results, check } = await run(steps);
    expect(statuses(results, 'peer_wc')).toEqual(['IBV_WC_REM_ACCESS_ERR']);
    expect(statuses(results, 'ibv_wc')).toEqual(['IBV_WC_SUCCESS', 'IBV_WC_LOC_PROT_ERR']);
    expect(check!.violations.map(formatViolation)).toEqual([]);
  });
});
