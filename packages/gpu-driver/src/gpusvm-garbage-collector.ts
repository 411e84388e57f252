// xe's SVM garbage collector (drivers/gpu/drm/xe/xe_svm.c as stored at 0131514f9789 in
// torvalds/linux): how ranges an munmap reached leave the GPU SVM.
//
//   add     xe_svm_range_notifier_event_end, inside the notifier (notifier lock held for write),
//           for an MMU_NOTIFY_UNMAP: drm_gpusvm_range_set_unmapped (unmapped; partial_unmap when the
//           munmap covers only part of the range), onto garbage_collector.range_list, and
//           queue_work(pf_wq, garbage_collector.work). The range is not split: all of it goes, and
//           what is still mapped on the CPU faults in again as new ranges, sized to the VMA left.
//   run     xe_svm_garbage_collector, under vm->lock for write: from the work item
//           (xe_svm_garbage_collector_work_func) and first thing in every GPU fault ("Always process
//           UNMAPs first so view SVM ranges is current"); per range __xe_svm_garbage_collector:
//           xe_vm_range_unbind (the GPU page-table entries, already zapped by the notifier) and
//           drm_gpusvm_range_remove under the notifier lock.
//
// Between the two a fault on an unmapped range finds it (drm_gpusvm_range_find) only if it ran
// before the collector: it never does here, as in xe, since the fault path collects first; a
// get_pages in flight for it sees `unmapped` under the notifier lock and fails with -EFAULT.
import type { Mutex } from '@svmsim/runtime';
import { DrmGpusvm, type DrmGpusvmRange } from './gpusvm-ranges.js';
import type { GpuHost } from './policy.js';
import { PAGE_SIZE } from '@svmsim/kernel-mm';

/** From queue_work to xe_svm_garbage_collector_work_func running on the page-fault workqueue: svmsim's cost, ns. */
export const XE_SVM_GC_WORK_NS = 10_000;

export class XeSvmGarbageCollector {
  private list: DrmGpusvmRange[] = [];
  private workQueued = false;
  readonly stats = { rangesGarbageCollected: 0, partialUnmapRangeDrops: 0, gcRuns: 0 };

  constructor(
    private readonly host: GpuHost,
    private readonly gpusvm: DrmGpusvm,
    /** vm->lock: the fault handler and the collector hold it for write. */
    private readonly vmLock: Mutex,
  ) {}

  /** xe_svm_garbage_collector_add_range (the caller holds the notifier lock and set the range unmapped). */
  add(r: DrmGpusvmRange): void {
    if (!r.flags.unmapped) throw new Error(`gpusvm: range [${r.start}, ${r.end}) queued for collection while mapped`);
    if (r.queuedForGc || r.removed) return;
    r.queuedForGc = true;
    if (r.flags.partial_unmap) this.stats.partialUnmapRangeDrops++;
    this.list.push(r);
    if (this.workQueued) return;
    this.workQueued = true;
    this.host.sleep(XE_SVM_GC_WORK_NS, () => {
      this.workQueued = false;
      this.vmLock.lock(() => {
        this.run();
        this.vmLock.unlock();
      });
    });
  }

  /** xe_svm_garbage_collector: the caller holds vm->lock. Synchronous: nothing here waits for mm. */
  run(): void {
    if (this.list.length === 0) return;
    this.stats.gcRuns++;
    for (const r of this.list.splice(0)) {
      r.queuedForGc = false;
      if (r.removed) continue; // the BO's teardown took it first
      // xe_vm_range_unbind: the entries are gone already (the notifier zapped the whole range), so
      // this clears nothing; kept for a range whose zap raced a bind.
      const cleared = this.host.vm.clear(r.pid, r.start * PAGE_SIZE, r.end * PAGE_SIZE);
      if (cleared > 0) this.host.vm.flushTlb();
      // drm_gpusvm_range_remove, under the notifier lock in the kernel: nothing here waits, so
      // no invalidation can run halfway through it (an invalidation holding the lock now keeps its
      // own list of the ranges it zaps).
      this.gpusvm.rangeRemove(r);
      this.stats.rangesGarbageCollected++;
      if (this.host.ctx.tracing) this.host.ctx.trace('gpusvm_range_gc', { pid: r.pid, start: r.start * PAGE_SIZE, end: r.end * PAGE_SIZE, partial: r.flags.partial_unmap });
    }
  }

  pending(): number {
    return this.list.length;
  }
}
