// UMR: how mlx5 rewrites an mkey's translation, mlx5r_umr_update_xlt (drivers/infiniband/hw/mlx5/umr.c,
// v6.1): a UMR WQE on the driver's UMR QP, posted and waited for (mlx5r_umr_post_send_wait). Two uses:
//   populate  write entries from the driver's dma_list (populate_mtt, MLX5_IB_UPD_XLT_ATOMIC): the
//             device sees them when the UMR completes; the caller holds umem_mutex throughout.
//   zap       MLX5_IB_UPD_XLT_ZAP: clear entries. The hardware stops translating through them at
//             once; the UMR completes when no DMA that already translated through them is left in
//             flight. That completion is the hardware's promise the invalidation relies on
//             ("We are now sure that the device will not access the memory", mlx5_ib_invalidate_range)
//             — errata 15: modelled as one device operation, its cost plus the drain.
//   unsafe    (unsafe-odp, for the invalidate callback and move_notify only) posts the ZAP and does
//             not wait for it: the caller goes on to ack while DMAs translated before the zap are
//             still on their way to memory.
import type { LeafMr } from './mr.js';
import type { NicHost } from './nic.js';

/** Write entries [from, from + n) of the MR's MTT from its dma_list; `then` when the UMR completes. */
export function umrPopulate(host: NicHost, mr: LeafMr, from: number, n: number, then: () => void): void {
  host.stats.umrs++;
  host.stats.mttEntriesWritten += n;
  host.sleep(host.costs.umrNs + n * host.costs.umrPerEntryNs, () => {
    for (let i = from; i < from + n; i++) mr.mtt.populate(i);
    then();
  });
}

/**
 * Zap the valid entries of [from, to); `then(zapped)` once the UMR has completed and the DMAs in
 * flight through them have been issued (`unsafe`: at once, without waiting for either).
 */
export function umrZap(host: NicHost, mr: LeafMr, from: number, to: number, then: (zapped: number) => void, unsafe = false): void {
  let zapped = 0;
  let inflight = 0;
  mr.mtt.forEachAllocated(from, to, (i) => {
    if (!mr.mtt.zap(i)) return;
    zapped++;
    inflight += mr.mtt.inflight(i);
  });
  if (zapped === 0) return then(0);
  host.stats.umrs++;
  host.stats.mttEntriesWritten += zapped;
  if (unsafe) {
    if (inflight > 0) host.stats.unsafeEarlyAcks++;
    return then(zapped);
  }
  let pending = 2;
  const part = (): void => {
    if (--pending === 0) then(zapped);
  };
  host.sleep(host.costs.umrNs + zapped * host.costs.umrPerEntryNs, part);
  if (inflight === 0) return part();
  host.stats.zapsWaitedForDma++;
  mr.drains.push({ from, to, left: inflight, done: part });
}

/** A DMA through entry `i` of the MR was issued: release it, and complete the zaps waiting for it. */
export function dmaIssued(mr: LeafMr, i: number): void {
  mr.mtt.inflightDec(i);
  if (mr.drains.length === 0) return;
  for (const d of [...mr.drains]) {
    if (i < d.from || i >= d.to) continue;
    if (--d.left === 0) {
      mr.drains.splice(mr.drains.indexOf(d), 1);
      d.done();
    }
  }
}
