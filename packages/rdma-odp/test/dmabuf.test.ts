// dma-buf MRs over a GPU's VRAM BO: the GPU exports, the NIC imports (ib_umem_dmabuf), the peer
// writes through the MR while TTM evicts the BO. With CONFIG_DMABUF_MOVE_NOTIFY the eviction calls
// the NIC's move_notify, which zaps the MR; the next access faults and maps the new placement.
// Without it the BO is pinned while mapped: it is never evicted. The checker's peer-to-peer rule
// (no access through a placement the buffer has left) holds for the safe importer and catches the
// unsafe one.
import { describe, expect, it } from 'vitest';
import { ENOMEM, PAGE_SIZE } from '@svmsim/kernel-mm';
import { formatViolation } from '@svmsim/kernel-mm/checker';
import { ret, type Step } from '@svmsim/kernel-mm/testing/mm-harness';
import { createGpu } from '@svmsim/gpu-driver';
import { IBV_ACCESS_ALL_REMOTE } from '@svmsim/rdma-odp';
import { PID, create, createQp, later, nic, of, peerOp, prng, run, together } from './rdma-steps.js';

const VA1 = 0x100000000;
const VA2 = 0x200000000;
const IOVA = 0x300000000;
const PAGES = 32;
const gpu = (msg: object): Step => ({ to: 'gpu0', msg: msg as never });
const vramBo = (addr: number, pages: number) => gpu({ type: 'gpu_bo_create', pid: PID, addr, pages, vram: true });
const setup: Step[] = [
  create, vramBo(VA1, PAGES), gpu({ type: 'dma_buf_export', handle: 1 }),
  (r) => nic({ type: 'ibv_reg_dmabuf_mr', pid: PID, exporter: 'gpu0', fd: (r[r.length - 1] as never as { fd: number }).fd, offset: 0, length: PAGES * PAGE_SIZE, iova: IOVA, access: IBV_ACCESS_ALL_REMOTE }),
  createQp(),
];
const write = (page: number, values: number[]) => peerOp('IBV_WR_RDMA_WRITE', IOVA + page * PAGE_SIZE, values.length, { values });
const readAll = peerOp('IBV_WR_RDMA_READ', IOVA, PAGES);
const range = (n: number, base: number) => Array.from({ length: n }, (_, i) => base + i);

function withGpu(moveNotify: boolean) {
  return [{ id: 'gpu0', actor: createGpu({ policy: 'userptr', vramBos: { pages: 64, copyPerPageNs: 500 }, dmabufMoveNotify: moveNotify }, 'gpu0') as never }];
}

describe('dma-buf MR over a VRAM BO', () => {
  it('registration maps the whole buffer: remote writes and reads land in VRAM without a fault', async () => {
    const { results, nic: n, check } = await run([...setup, write(0, range(PAGES, 100)), readAll], { extra: withGpu(true) });
    expect(of(results, 'ibv_reg_mr_result').map(ret)).toEqual([0]);
    expect(of(results, 'peer_wc').map((w) => w.status)).toEqual(['IBV_WC_SUCCESS', 'IBV_WC_SUCCESS']);
    expect(of(results, 'peer_wc')[1].values).toEqual(range(PAGES, 100));
    expect(n.odpFaults).toBe(0);
    expect(check!.stats.p2pAccesses).toBe(2 * PAGES);
    expect(check!.violations.map(formatViolation)).toEqual([]);
  });

  it('CONFIG_DMABUF_MOVE_NOTIFY: evicted during traffic; move_notify zaps the MR, the next access faults and maps the new placement; nothing lost', async () => {
    const steps: Step[] = [...setup, write(0, range(PAGES, 100)),
      // A 48-page BO needs the exported one out of VRAM, while the peer writes 16 pages.
      together(write(0, range(16, 200)), vramBo(VA2, 48)),
      write(16, range(16, 300)), readAll];
    const { results, nic: n, check, r } = await run(steps, { extra: withGpu(true) });
    const g = r.summaries.gpu0 as Record<string, number>;
    expect(of(results, 'gpu_bo_create_result').map(ret)).toEqual([1, 2]);
    expect(g.vramBoEvictions).toBe(1);
    expect(g.dmabufMoveNotifies).toBe(1);
    expect(n.dmabufMoveNotifies).toBe(1);
    expect(n.dmabufRemaps).toBe(2);
    expect(n.odpFaults).toBeGreaterThanOrEqual(1);
    expect(of(results, 'peer_wc').map((w) => w.status)).toEqual(Array(4).fill('IBV_WC_SUCCESS'));
    expect(of(results, 'peer_wc')[3].values).toEqual([...range(16, 200), ...range(16, 300)]);
    expect(g.p2pStaleAccesses).toBe(0);
    expect(check!.violations.map(formatViolation)).toEqual([]);
  });

  it('without it the BO is pinned while the NIC maps it: TTM cannot evict it (-ENOMEM), move_notify never comes', async () => {
    const { results, nic: n, r } = await run([...setup, write(0, range(4, 1)), vramBo(VA2, 48), write(0, range(4, 5))], { extra: withGpu(false) });
    const g = r.summaries.gpu0 as Record<string, number>;
    expect(of(results, 'gpu_bo_create_result').map(ret)).toEqual([1, ENOMEM]);
    expect(g.vramBoEvictions).toBe(0);
    expect(n.dmabufMoveNotifies).toBe(0);
    expect(of(results, 'peer_wc').map((w) => w.status)).toEqual(['IBV_WC_SUCCESS', 'IBV_WC_SUCCESS']);
  });

  it('an eviction landing on a DMA under way: the safe importer waits for it; unsafe-odp answers move_notify first and the checker catches it', async () => {
    let caught = 0;
    for (let seed = 1; seed <= 12; seed++) {
      const rnd = prng(seed);
      // The 32-page write reaches the NIC after ~11.5 µs and its DMA takes 6.4 µs; the new BO comes 5–25 µs in.
      const steps: Step[] = [...setup, together(write(0, range(PAGES, 1)), later(5_000 + Math.floor(rnd() * 20_000), 'gpu0', { type: 'gpu_bo_create', pid: PID, addr: VA2, pages: 48, vram: true })), readAll];
      const safe = await run(steps, { seed, extra: withGpu(true) });
      expect(safe.check!.violations.map(formatViolation), `seed ${seed}`).toEqual([]);
      expect(of(safe.results, 'peer_wc')[1].values, `seed ${seed}`).toEqual(range(PAGES, 1));
      const unsafe = await run(steps, { seed, extra: withGpu(true), rdma: { mrKind: 'unsafe-odp' } });
      if (unsafe.check!.violations.some((v) => v.kind === 'stale_translation' && /p2p/.test(v.message))) caught++;
    }
    expect(caught).toBeGreaterThanOrEqual(2);
  });
});
