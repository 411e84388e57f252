// mlx5_ib_invalidate_range (drivers/infiniband/hw/mlx5/odp.c, v6.1): the interval notifier's
// invalidate callback of every ODP umem (an explicit MR, an implicit MR's child).
//
//   !mmu_notifier_range_blockable → return false (mm gets -EAGAIN): mlx5 refuses every
//                                   non-blockable range, whatever is mapped (errata 14)
//   mutex_lock(umem_mutex); mmu_interval_set_seq(cur_seq)   (a fault between read_begin and its
//                                   read_retry now retries)
//   nothing mapped (npages 0) → unlock, true
//   the ZAP UMR of the mapped entries in the range: the NIC stops translating through them, and the
//   UMR completes once the DMAs already translated through them are issued (umr.ts)
//   ib_umem_odp_unmap_dma_pages: DMA-unmap, set_page_dirty those mapped writable
//   a child left with no page mapped → destroy_unused_implicit_child_mr (implicit-odp.ts)
//   mutex_unlock; return true (the ack)
// mlx5 ignores range->event: mkclean, KSM, NUMA hinting and migration invalidate as munmap does.
//
// Interleaving it must survive, with the NIC mid-DMA:
//      NIC                                   mm                         driver (this)
//      translate page → entry E (inflight)   invalidate(range ∋ page) → lock; set_seq; ZAP E
//      … dmaPerPageNs …                                                 UMR waits: E inflight
//      dma_access(E's pfn, seq) ──────────▶  applied (before the ack: FIFO NIC → mm)
//                                                                       drained → unmap; ack ──▶ PTE changes
// unsafe-odp acks right after the ZAP is posted: the dma_access arrives after the ack, through a
// translation whose invalidation was acked, and the checker says stale_translation.
import { PAGE_SIZE, mmu_interval_set_seq, type Invalidate } from '@svmsim/kernel-mm';
import type { Envelope, Message } from '@svmsim/runtime';
import { destroy_unused_implicit_child_mr } from './implicit-odp.js';
import type { LeafMr } from './mr.js';
import { bump, type NicHost } from './nic.js';
import { ib_umem_odp_unmap_dma_pages } from './umem-odp.js';
import { umrZap } from './umr.js';

export function mlx5_ib_invalidate_range(host: NicHost, env: Envelope<Message>, m: Invalidate, mr: LeafMr): void {
  const ack = (ok: boolean) => host.reply(env, { type: 'invalidate_ack', sub: m.sub, ok });
  const s = host.stats;
  s.invalidations++;
  bump(s.invalidationsByEvent, m.event);
  if (!m.blockable) {
    s.invalidationsRefused++;
    return ack(false);
  }
  const n = mr.notifier!;
  const t0 = host.ctx.now();
  mr.umemMutex.lock(() => {
    mmu_interval_set_seq(host.ctx, env.from, n, m.cur_seq);
    n.known = true;
    const done = (): void => {
      mr.umemMutex.unlock();
      s.invalidateWaitNs.push(host.ctx.now() - t0);
      ack(true);
    };
    if (mr.mtt.npages === 0) return done();
    const from = Math.max(0, Math.floor((m.start - mr.startVa) / PAGE_SIZE));
    const to = Math.min(mr.mtt.entries, Math.ceil((m.end - mr.startVa) / PAGE_SIZE));
    if (from >= to) return done();
    umrZap(host, mr, from, to, (zapped) => {
      s.pagesInvalidated += zapped;
      const unmapped = ib_umem_odp_unmap_dma_pages(host, mr, from, to);
      host.sleep(unmapped * host.costs.dmaMapPerPageNs, () => {
        if (mr.mtt.npages === 0 && mr.parent) destroy_unused_implicit_child_mr(host, mr);
        host.trace('rdma_invalidate_done', { key: mr.key, sub: m.sub, event: m.event, zapped, unmapped });
        // unsafe-odp's bug path starts at this ack, not at the ZAP: a DMA issued before it (during
        // the unmap above) reaches mm before the ack (FIFO) and is legal.
        if (host.unsafe) mr.mtt.markAcked(from, to, m.cur_seq);
        done();
      });
    }, host.unsafe);
  });
}
