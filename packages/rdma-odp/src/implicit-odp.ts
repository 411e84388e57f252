// The implicit ODP MR (ibv_reg_mr(NULL, SIZE_MAX, IBV_ACCESS_ON_DEMAND)): mlx5/odp.c of v6.1,
// research/drivers.md §4, errata 19.
//
//   mlx5_ib_alloc_implicit_mr     a KSM mkey over the whole address space, every entry the null
//                                 mkey; no notifier of its own
//   pagefault_implicit_mr         for each MLX5_IMR_MTT_SIZE (1 GiB) chunk the fault covers: the
//                                 child from implicit_children, or implicit_get_child_mr; fault the
//                                 part in the child (pagefault_real_mr); then, if children were
//                                 created, rewrite those KSM entries under the parent's umem_mutex
//                                 (the hardware reaches a child only through the KSM)
//   implicit_get_child_mr         ib_umem_odp_alloc_child (a notifier over the chunk), a ZAP|ENABLE
//                                 UMR of its 262144 entries, then __xa_cmpxchg into implicit_children:
//                                 a concurrent fault that installed its child first wins, ours is
//                                 released and theirs used (implicitChildRaces)
//   destroy_unused_implicit_child_mr   called by mlx5_ib_invalidate_range when an invalidation left
//                                 the child with no page mapped: xa_erase, then a work item
//                                 (free_implicit_child_mr_work): wait for the child's mkey
//                                 references, rewrite its KSM entry under the parent's umem_mutex
//                                 (null, or a child a later fault made meanwhile), deregister it. A
//                                 fault after the xa_erase makes a new child for the chunk.
import { EFAULT } from '@svmsim/kernel-mm';
import { childIndex } from './dma.js';
import { MLX5_IMR_MTT_ENTRIES, MLX5_IMR_MTT_SIZE, TASK_SIZE, mrGet, mrPut, mrWaitIdle, newMr, withMtt, type LeafMr, type Mr } from './mr.js';
import type { NicHost } from './nic.js';
import { ib_umem_odp_get, ib_umem_odp_release, ib_umem_odp_unmap_dma_pages } from './umem-odp.js';
import { umrZap } from './umr.js';

/** The fault of one child: pagefault_real_mr (page-fault.ts), passed in to keep the two files acyclic. */
export type RealFault = (mr: LeafMr, va: number, bcnt: number, done: (ret: number) => void) => void;

/** pagefault_implicit_mr: done(pages mapped) or done(-errno). */
export function pagefault_implicit_mr(host: NicHost, imr: Mr, va: number, bcnt: number, realFault: RealFault, done: (ret: number) => void): void {
  if (va < 0 || va >= TASK_SIZE || TASK_SIZE - va < bcnt) return done(EFAULT);
  const created: number[] = [];
  let npages = 0;
  const finish = (ret: number): void => {
    if (created.length === 0) return done(ret);
    // Any change to implicit_children is followed by the KSM update before returning.
    imr.umemMutex.lock(() =>
      updateKsm(host, imr, created, () => {
        imr.umemMutex.unlock();
        done(ret);
      }),
    );
  };
  const next = (cur: number, left: number): void => {
    if (left <= 0) return finish(npages);
    const idx = childIndex(cur);
    const withChild = (child: LeafMr): void => {
      const len = Math.min(cur + left, child.startVa + MLX5_IMR_MTT_SIZE) - cur;
      realFault(child, cur, len, (ret) => {
        mrPut(child);
        if (ret < 0) return finish(ret);
        npages += ret;
        next(cur + len, left - len);
      });
    };
    const have = imr.children!.get(idx);
    if (have) {
      mrGet(have);
      return withChild(have);
    }
    implicit_get_child_mr(host, imr, idx, (child, ret) => {
      if (!child) return finish(ret);
      created.push(idx);
      withChild(child);
    });
  };
  next(va, bcnt);
}

/** implicit_get_child_mr: done(child) holding a reference on it, or done(undefined, -errno). */
export function implicit_get_child_mr(host: NicHost, imr: Mr, idx: number, done: (child: LeafMr | undefined, ret: number) => void): void {
  const child = withMtt(newMr(host.mkeys.alloc(), 'odp', imr.pid, imr.access, idx * MLX5_IMR_MTT_SIZE, MLX5_IMR_MTT_SIZE, imr.writable), idx * MLX5_IMR_MTT_SIZE, MLX5_IMR_MTT_ENTRIES);
  child.parent = imr;
  child.childIdx = idx;
  ib_umem_odp_get(host, child, (ret) => {
    if (ret < 0) return done(undefined, ret);
    // The ZAP | ENABLE UMR of every entry of the child.
    host.stats.umrs++;
    host.sleep(host.costs.umrNs + MLX5_IMR_MTT_ENTRIES * host.costs.umrPerEntryNs, () => {
      const winner = imr.children!.get(idx);
      if (winner || imr.revoked) {
        // __xa_cmpxchg found another thread's child (or the parent is going): use theirs, drop ours.
        if (winner) host.stats.implicitChildRaces++;
        child.revoked = true;
        return ib_umem_odp_release(host, child, () => {
          if (!winner) return done(undefined, EFAULT);
          mrGet(winner);
          done(winner, 0);
        });
      }
      // One reference for implicit_children, one for the caller.
      child.usecount = 1;
      imr.children!.set(idx, child);
      host.stats.implicitChildrenCreated++;
      host.trace('rdma_implicit_child', { parent: imr.key, idx, sub: child.notifier?.sub, created: true });
      mrGet(child);
      done(child, 0);
    });
  });
}

/** Under the parent's umem_mutex: rewrite KSM entries `idxs` from implicit_children (populate_klm). */
function updateKsm(host: NicHost, imr: Mr, idxs: number[], then: () => void): void {
  host.stats.umrs++;
  host.stats.mttEntriesWritten += idxs.length;
  host.sleep(host.costs.umrNs + idxs.length * host.costs.umrPerEntryNs, () => {
    for (const idx of idxs) {
      const child = imr.children!.get(idx);
      if (child) imr.ksm!.set(idx, child);
      else imr.ksm!.delete(idx);
    }
    then();
  });
}

/** destroy_unused_implicit_child_mr, from the invalidate callback (the child's umem_mutex held). */
export function destroy_unused_implicit_child_mr(host: NicHost, child: LeafMr): void {
  const imr = child.parent!;
  if (imr.revoked) return; // refcount_inc_not_zero(&imr->mmkey.usecount) failed: the parent is going
  if (imr.children!.get(child.childIdx) !== child) return; // already erased
  mrGet(imr);
  imr.children!.delete(child.childIdx);
  host.trace('rdma_implicit_child', { parent: imr.key, idx: child.childIdx, sub: child.notifier?.sub, created: false });
  // free_implicit_child_mr_work on system_unbound_wq
  host.sleep(host.costs.workQueueNs, () => {
    mrPut(child); // implicit_children's reference
    mrWaitIdle(child, () =>
      imr.umemMutex.lock(() =>
        updateKsm(host, imr, [child.childIdx], () => {
          imr.umemMutex.unlock();
          destroyChild(host, child, () => {
            host.stats.implicitChildrenDestroyed++;
            mrPut(imr);
          });
        }),
      ),
    );
  });
}

/**
 * mlx5_ib_dereg_mr of a child: revoke it, zap and unmap what parallel faults may still have mapped
 * into it, remove its notifier. The KSM no longer points at it.
 */
export function destroyChild(host: NicHost, child: LeafMr, done: () => void): void {
  child.revoked = true;
  child.umemMutex.lock(() =>
    umrZap(host, child, 0, child.mtt.entries, () => {
      const n = ib_umem_odp_unmap_dma_pages(host, child, 0, child.mtt.entries);
      host.sleep(n * host.costs.dmaMapPerPageNs, () => {
        child.umemMutex.unlock();
        ib_umem_odp_release(host, child, done);
      });
    }),
  );
}

/** mlx5_ib_free_odp_mr of an implicit MR: every child deregistered; then done. */
export function freeImplicitChildren(host: NicHost, imr: Mr, done: () => void): void {
  const children = [...imr.children!.values()];
  imr.children!.clear();
  imr.ksm!.clear();
  let left = children.length;
  if (left === 0) return done();
  for (const c of children) {
    mrPut(c); // implicit_children's reference
    mrWaitIdle(c, () => destroyChild(host, c, () => --left === 0 && done()));
  }
}
