// kfd's SVM range list with XNACK on (kfd_svm.c svms->objects, read in the torvalds/linux copy at
// 006ad514 and the 2024–2025 checkpoint_ts patches): the ranges retry faults create, how big they
// are, and how an munmap splits them.
//
//   create   svm_range_get_range_boundaries: [ALIGN_DOWN(addr, 1 << granularity),
//            ALIGN(addr + 1, 1 << granularity)) clipped to the VMA (vma_lookup under the mmap
//            lock), to the end of the range before the address and the start of the one after it.
//            And to the BO here: the model's notifier is the BO's (kfd inserts one per range).
//   split    svm_range_unmap_from_cpu → svm_range_unmap_split: the part of a range an
//            MMU_NOTIFY_UNMAP covers becomes its own range, put on the deferred list with
//            SVM_OP_UNMAP_RANGE: it stays in the tree, faults on it are dropped
//            (svm_range_skip_recover), until svm_range_deferred_list_work removes it.
//
// Ranges are kept per process sorted by start and never overlap (the tree's WARN "Overlap with
// prev node and page fault addr" is an assertion here).
import type { Pid } from '@svmsim/kernel-mm';

/** One svm_range, in pages: [start, end). */
export interface SvmRange {
  readonly pid: Pid;
  start: number;
  end: number;
  /** prange->validate_timestamp: when a fault last mapped it, ns (-Infinity: never). */
  validatedAt: number;
  /** Its first fault happened: svm_range_best_restore_location sent it to VRAM then, and never again. */
  restoredOnce: boolean;
  /** On the deferred list for SVM_OP_UNMAP_RANGE: faults on it are dropped until the worker removes it. */
  unmapping: boolean;
}

/** Simulation bound: ranges per process (2 MiB each at least 1 page: 2^20 of them is 4 GiB of faults). */
export const SVM_RANGES_PER_PROCESS_MAX = 1 << 20;

export class SvmRangeList {
  private readonly byPid = new Map<Pid, SvmRange[]>();

  private list(pid: Pid): SvmRange[] {
    let l = this.byPid.get(pid);
    if (!l) this.byPid.set(pid, (l = []));
    return l;
  }

  /** Index of the first range of pid ending after vpn. */
  private upper(l: SvmRange[], vpn: number): number {
    let lo = 0;
    let hi = l.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (l[mid].end <= vpn) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  /** svm_range_from_addr. */
  find(pid: Pid, vpn: number): SvmRange | undefined {
    const l = this.byPid.get(pid);
    if (!l) return undefined;
    const r = l[this.upper(l, vpn)];
    return r && r.start <= vpn ? r : undefined;
  }

  /**
   * svm_range_get_range_boundaries + svm_range_new + svm_range_add_to_svms for a fault at vpn, the
   * VMA being [vmaStart, vmaEnd) and the BO [boStart, boEnd) (pages). The caller holds the mmap
   * write lock and has checked that no range contains vpn.
   */
  create(pid: Pid, vpn: number, granularityPages: number, vmaStart: number, vmaEnd: number, boStart: number, boEnd: number): SvmRange {
    const l = this.list(pid);
    const i = this.upper(l, vpn);
    if (l[i] && l[i].start <= vpn) throw new Error(`kfd-svm: a range already holds page ${vpn} of pid ${pid}`);
    const prevEnd = i > 0 ? l[i - 1].end : -Infinity;
    const nextStart = l[i]?.start ?? Infinity;
    const start = Math.max(vpn - (vpn % granularityPages), vmaStart, boStart, prevEnd);
    const end = Math.min(vpn - (vpn % granularityPages) + granularityPages, vmaEnd, boEnd, nextStart);
    if (!(start <= vpn && vpn < end)) throw new Error(`kfd-svm: range [${start}, ${end}) does not hold its fault at ${vpn}`);
    if (l.length >= SVM_RANGES_PER_PROCESS_MAX) throw new Error(`kfd-svm: more than ${SVM_RANGES_PER_PROCESS_MAX} ranges in pid ${pid}`);
    const r: SvmRange = { pid, start, end, validatedAt: -Infinity, restoredOnce: false, unmapping: false };
    l.splice(i, 0, r);
    return r;
  }

  /** svm_range_unmap_split of every range over [s, e): returns the pieces marked for removal. */
  unmapSplit(pid: Pid, s: number, e: number): SvmRange[] {
    const l = this.byPid.get(pid);
    if (!l) return [];
    const out: SvmRange[] = [];
    for (let i = this.upper(l, s); i < l.length && l[i].start < e; i++) {
      const r = l[i];
      if (r.unmapping) continue; // already all unmapped, and on the deferred list as it is
      const pieces: SvmRange[] = [];
      if (r.start < s) pieces.push({ ...r, end: s });
      const mid: SvmRange = { ...r, start: Math.max(r.start, s), end: Math.min(r.end, e), unmapping: true };
      pieces.push(mid);
      if (r.end > e) pieces.push({ ...r, start: e });
      l.splice(i, 1, ...pieces);
      i += pieces.length - 1;
      out.push(mid);
    }
    return out;
  }

  /** svm_range_handle_list_op(SVM_OP_UNMAP_RANGE): svm_range_unlink and free. */
  remove(r: SvmRange): boolean {
    const l = this.byPid.get(r.pid);
    const i = l?.indexOf(r) ?? -1;
    if (i < 0) return false;
    l!.splice(i, 1);
    return true;
  }

  /** A BO's teardown (gpu_bo_free): its ranges go with its notifier. Returns how many. */
  removeWithin(pid: Pid, start: number, end: number): number {
    const l = this.byPid.get(pid);
    if (!l) return 0;
    const before = l.length;
    this.byPid.set(pid, l.filter((r) => r.end <= start || r.start >= end));
    return before - this.byPid.get(pid)!.length;
  }

  count(): number {
    let n = 0;
    for (const l of this.byPid.values()) n += l.length;
    return n;
  }
}
