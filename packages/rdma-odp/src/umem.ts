// A pinned MR's umem: ib_umem_get and __ib_umem_release (drivers/infiniband/core/umem.c, v6.0–v6.6),
// the MTT written once at registration (create_real_mr → mlx5r_umr_update_mr_pas, mlx5/mr.c v6.1).
//
//   ib_umem_get   can_do_mlock(): RLIMIT_MEMLOCK 0 without CAP_IPC_LOCK → -EPERM (errata 20);
//                 mm->pinned_vm += npages, over RLIMIT_MEMLOCK without CAP_IPC_LOCK → undone, -ENOMEM;
//                 pin_user_pages_fast(FOLL_LONGTERM | FOLL_WRITE if writable) in batches of
//                 PAGE_SIZE / sizeof(struct page *) = 512 pages; any failure unpins what was pinned,
//                 gives the pinned_vm charge back and returns the error. (FOLL_LONGTERM migrates
//                 pages out of ZONE_MOVABLE first, and refuses a writable pin of a file mapping that
//                 needs dirty tracking, -EFAULT since v6.5: mm's gup does both.)
//   release       unpin_user_page_range_dirty_lock(make_dirty = umem->writable); pinned_vm -= npages.
// The pages stay pinned for the MR's life: no notifier, nothing invalidates them. mm may still unmap
// them (munmap, MADV_DONTNEED, reclaim of file pages): the MR then DMAs into frames the process no
// longer maps, as the kernel allows (errata 9; the checker counts those writes, orphanPinnedWrites).
//
// mm->pinned_vm is kept here per pid: in the simulation only ib_umem_get charges it (the GPU's pin
// policy, like amdgpu, does not), so the NIC owns the count.
import {
  EFAULT, ENOMEM, EPERM, FOLL_LONGTERM, FOLL_WRITE, PAGE_SIZE,
  type GetUserPages, type GetUserPagesResult, type Pid, type UnpinUserPages,
} from '@svmsim/kernel-mm';
import { retOf, type NicHost } from './nic.js';

/** pin_user_pages_fast's batch in ib_umem_get: one page of struct page pointers. */
export const UMEM_PIN_BATCH_PAGES = PAGE_SIZE / 8;

export interface MemlockLimit {
  /** RLIMIT_MEMLOCK of the calling task, pages. */
  limitPages: number;
  capIpcLock: boolean;
}

/** mm->pinned_vm, per process. */
export class PinnedVm {
  private readonly byPid = new Map<Pid, number>();
  max = 0;

  get(pid: Pid): number {
    return this.byPid.get(pid) ?? 0;
  }

  /** atomic64_add_return, and undo past the limit: false (the caller fails with -ENOMEM). */
  charge(pid: Pid, pages: number, lim: MemlockLimit): boolean {
    const next = this.get(pid) + pages;
    if (next > lim.limitPages && !lim.capIpcLock) return false;
    this.byPid.set(pid, next);
    this.max = Math.max(this.max, next);
    return true;
  }

  uncharge(pid: Pid, pages: number): void {
    const next = this.get(pid) - pages;
    if (next < 0) throw new Error(`pinned_vm of pid ${pid} below zero`);
    this.byPid.set(pid, next);
  }
}

/** ib_umem_get over pages [first, first + npages) of pid; done(0, pfns) or done(-errno). */
export function ib_umem_get(
  host: NicHost, pinnedVm: PinnedVm, pid: Pid, firstPageVa: number, npages: number, writable: boolean, lim: MemlockLimit,
  done: (ret: number, pfns?: Float64Array) => void,
): void {
  // can_do_mlock
  if (lim.limitPages === 0 && !lim.capIpcLock) return done(EPERM);
  if (!pinnedVm.charge(pid, npages, lim)) return done(ENOMEM);
  const pfns = new Float64Array(npages);
  const gup_flags = FOLL_LONGTERM | (writable ? FOLL_WRITE : 0);
  let pinned = 0;
  const fail = (ret: number): void => {
    if (pinned > 0) host.send(host.mm, { type: 'unpin_user_pages', pfns: pfns.slice(0, pinned), make_dirty: false, pin: true } satisfies UnpinUserPages);
    pinnedVm.uncharge(pid, npages);
    done(ret);
  };
  const batch = (): void => {
    if (pinned === npages) {
      host.stats.pagesPinned += npages;
      return done(0, pfns);
    }
    const n = Math.min(npages - pinned, UMEM_PIN_BATCH_PAGES);
    const m: GetUserPages = { type: 'get_user_pages', pid, start: firstPageVa + pinned * PAGE_SIZE, nr_pages: n, gup_flags, pin: true };
    host.call(host.mm, m, (r) => {
      const ret = retOf(r);
      if (ret < 0) return fail(ret);
      if (ret === 0) return fail(EFAULT); // pin_user_pages_fast makes progress or fails
      pfns.set((r as unknown as GetUserPagesResult).pfns.subarray(0, ret), pinned);
      pinned += ret;
      batch();
    });
  };
  batch();
}

/** __ib_umem_release: unpin (dirtying when writable) and give the pinned_vm charge back. */
export function ib_umem_release(host: NicHost, pinnedVm: PinnedVm, pid: Pid, pfns: Float64Array, writable: boolean): void {
  host.send(host.mm, { type: 'unpin_user_pages', pfns, make_dirty: writable, pin: true } satisfies UnpinUserPages);
  host.stats.pagesUnpinned += pfns.length;
  pinnedVm.uncharge(pid, pfns.length);
}
