// Policy `kfd-svm-read-begin-outside-loop`: kfd-svm (XNACK on) with amdgpu_hmm_range_get_pages as a
// backport left it, the read-begin-outside-loop report (ROCm/legacy-rocm-build#5952 and #6523:
// Ubuntu's 7.0.0-28 kernel carries "drm/amdgpu: fix amdgpu_hmm_range_get_pages" (c08972f55594),
// which moved mmu_interval_read_begin() out of the retry loop, without its follow-up "drm/amdgpu:
// drop retry loop in amdgpu_hmm_range_get_pages" (342981fff328); host-to-device copies took one
// HMM_RANGE_DEFAULT_TIMEOUT (1000 ms) per 2 MiB range: 16 019 ms for 32 MiB against 18.6 ms).
//
// Why a stale sequence can never succeed (mm/hmm.c, hmm_range_fault, torvalds/linux; the model is
// kernel-mm hmm-range-fault.ts):
//
//   driver                                   mm
//   seq = mmu_interval_read_begin()
//   hmm_range_fault(seq)  ─────────────────► walk; a page needs a fault (REQ_WRITE over a COW
//                                            page, kfd's readonly = !(vma->vm_flags & VM_WRITE)):
//                                            handle_mm_fault breaks COW → invalidate_range_start
//                                            → the notifier's cur_seq moves past seq
//                                            loop: mmu_interval_check_retry(seq) → -EBUSY
//   retry:  hmm_range_fault(seq)  ─────────► mmu_interval_check_retry(seq): still stale → -EBUSY
//   …until time_after(jiffies, timeout)      (the notifier's sequence only moves forward)
//   return -EBUSY
//
// With read_begin inside the loop (before the backport, and every kernel's dmirror and nouveau
// loops) the second pass takes the new sequence and succeeds; after 342981fff328 there is no loop
// (-EBUSY is -EAGAIN at once and the GPU retries the fault: kfd-svm's default here). Coherence is
// never at risk — a stale sequence fails, it does not map — so no checker catches it: only the
// figures do (the `copy-throughput` column).
//
// Departure: the spin is one wait of the whole timeout after the first -EBUSY (the result is the
// same: nothing can make the stale sequence current), outside mmap_read_lock, where the kernel
// spins inside it.
import { HMM_RANGE_DEFAULT_TIMEOUT_MS } from './kernel-era.js';
import { createKfdSvmPolicy, type KfdSvmOptions } from './policy-kfd-svm.js';
import type { GpuHost, Policy } from './policy.js';

export function createKfdSvmReadBeginOutsideLoopPolicy(host: GpuHost, opts: KfdSvmOptions): Policy {
  return createKfdSvmPolicy(host, { ...opts, xnack: true, name: 'kfd-svm-read-begin-outside-loop', staleSeqRetryNs: HMM_RANGE_DEFAULT_TIMEOUT_MS * 1e6 });
}
