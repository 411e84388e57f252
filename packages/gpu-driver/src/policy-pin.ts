// Policy `pin`: the BO's pages are pinned for the BO's life, as RDMA's pinned MRs, VFIO and every
// driver that calls pin_user_pages(FOLL_LONGTERM) do (the GPU drivers do not: amdgpu's userptr
// before HMM took gup references at each CS under an mmu_notifier, amdgpu_mn.c, which is what the
// `userptr` policy models):
//   create  pin_user_pages(addr, pages, FOLL_LONGTERM | FOLL_WRITE) of the whole BO (FOLL_WRITE
//           unless read-only); a short pin is undone and fails the create; GPUVM filled from the pfns
//   submit  nothing to walk: the pages cannot move
//   DMA     through the pinned frames, translation {via:'pin'}
//   free    once the BO's fences signalled: clear GPUVM, unpin_user_pages_dirty_lock(make_dirty)
// No interval notifier (no invalidate callback): never invalidated. The cost: reclaim, migration and compaction skip the
// pages for the BO's life, and a munmap leaves the GPU writing frames the process no longer maps.
import { EFAULT, FOLL_LONGTERM, FOLL_WRITE, type GetUserPagesResult } from '@svmsim/kernel-mm';
import { boEnd, boFirstVpn, type Bo } from './bo.js';
import type { Job } from './job.js';
import { retOf, type GpuHost, type Policy, type SubmitOutcome } from './policy.js';

export function createPinPolicy(host: GpuHost): Policy {
  return {
    name: 'pin',
    createBo(bo: Bo, done: (ret: number) => void): void {
      const gup_flags = FOLL_LONGTERM | (bo.readonly ? 0 : FOLL_WRITE);
      host.call({ type: 'get_user_pages', pid: bo.pid, start: bo.addr, nr_pages: bo.pages, gup_flags, pin: true }, (r) => {
        const ret = retOf(r);
        const pfns = r.type === 'get_user_pages_result' ? (r as GetUserPagesResult).pfns : new Float64Array(0);
        if (ret < bo.pages) {
          // A short pin: undo it (amdgpu releases the pages it got and fails the ioctl).
          if (ret > 0) host.send({ type: 'unpin_user_pages', pfns: pfns.slice(0, ret), make_dirty: false, pin: true });
          return done(ret < 0 ? ret : EFAULT);
        }
        bo.pinned = pfns.slice(0, bo.pages);
        host.stats.pagesPinned += bo.pages;
        const first = boFirstVpn(bo);
        for (let i = 0; i < bo.pages; i++) host.vm.set(bo.pid, first + i, { pfn: bo.pinned[i], writable: !bo.readonly, tr: { via: 'pin' } });
        if (host.ctx.tracing) host.ctx.trace('gpu_pin', { handle: bo.handle, pid: bo.pid, addr: bo.addr, pages: bo.pages });
        host.sleep(bo.pages * host.costs.ptePerPageNs, () => done(0));
      });
    },
    submit(job: Job, done: (o: SubmitOutcome) => void): void {
      host.pushJob(job);
      done({ ret: 0, pagesWalked: 0, resubmissions: 0 });
    },
    freeBo(bo: Bo, done: () => void): void {
      const cleared = host.vm.clear(bo.pid, bo.addr, boEnd(bo));
      if (bo.pinned) {
        host.send({ type: 'unpin_user_pages', pfns: bo.pinned, make_dirty: !bo.readonly, pin: true });
        host.stats.pagesUnpinned += bo.pinned.length;
        if (host.ctx.tracing) host.ctx.trace('gpu_unpin', { handle: bo.handle, pages: bo.pinned.length });
        bo.pinned = null;
      }
      host.flushTlb(cleared, done);
    },
  };
}
