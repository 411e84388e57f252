// Policy `kfd-svm`: KFD's SVM ranges (drivers/gpu/drm/amd/amdkfd/kfd_svm.c, kfd_migrate.c,
// amdgpu_gmc.c; read in v6.6–v6.8 copies and the newest tree), the driver ROCm compute uses for
// hipMallocManaged / HMM memory. Same machinery as `svm-fault` (policy-svm-fault.ts), KFD's way:
//
// XNACK on (`xnack: true`, the default; retry faults):
//   IH          amdgpu_gmc_filter_faults drops a fault on a page already pending (the wave retries);
//               the soft IH ring hands svm_range_restore_pages one fault at a time: no batches, no
//               sort, no replay (the hardware retries the access itself).
//   range       svm_range_create_unregistered_range: a range of 1 << granularity pages (9: 2 MiB)
//               ALIGN_DOWN/ALIGN around the fault, clipped to the VMA and the ranges either side,
//               made under mmap_write_lock; the fault, under mmap_read_lock, migrates and maps the
//               granularity window of it (svm_range_validate_and_map): kfd-restore-pages.ts.
//   (granularity: svm_default_granularity, an option with amdgpu's default 9; the 2 ms below: retryFaultPendingNs)
//   dedup       a range validated less than 2 ms ago is "already restored": the fault is dropped
//               (AMDGPU_SVM_RANGE_RETRY_FAULT_PENDING) and retried by the hardware after.
//   no loop     hmm_range_fault's -EBUSY or a stale read under svm_range_lock is -EAGAIN: the fault is
//               dropped (amdgpu_gmc_filter_faults_remove) and the hardware faults again.
//   VRAM        best restore location for a range the fault created outside the initial heap and
//               stack: the faulting GPU, so its first fault migrates it to VRAM (svm_migrate_to_vram;
//               what does not fit stays in RAM). Every fault asks for write access when the VMA is
//               writable (faultPermission 'vma').
//   invalidate  svm_range_cpu_invalidate_pagetables: never checks blockable (it sleeps on
//               svm_range_lock), always returns true; svm_range_unmap_from_gpus: zero PTEs, wait the
//               update's fence, kfd_flush_tlb(TLB_FLUSH_HEAVYWEIGHT), inside the notifier; an
//               MMU_NOTIFY_UNMAP also splits the range (svm_range_unmap_split) and the deferred
//               list worker removes the unmapped piece under mmap_write_lock.
// XNACK off (`xnack: false`): no retry faults; an invalidation evicts the process's queues
//   (svm_range_evict → kgd2kfd_quiesce_mm) and svm_range_restore_work revalidates and resumes them
//   AMDGPU_SVM_RANGE_RESTORE_DELAY_MS (1 ms) later: the `preempt` machinery (policy-preempt.ts),
//   with the ranges mapped up front as svm_range_set_attr does.
import { createPreemptPolicy } from './policy-preempt.js';
import { createSvmFaultPolicy } from './policy-svm-fault.js';
import type { GpuHost, Policy } from './policy.js';
import { AMDGPU_SVM_RANGE_RETRY_FAULT_PENDING_NS } from './kfd-restore-pages.js';

/** amdgpu's svm_default_granularity module parameter (log2 pages; 9: 2 MiB ranges). */
export const KFD_SVM_DEFAULT_GRANULARITY = 9;
/**
 * svm_range_list_init clamps the parameter: min_t(u8, amdgpu_svm_default_granularity, 0x1B)
 * (kfd_svm.c, "drm/amdgpu: Surface svm_default_granularity, a RW module parameter", 2024, v6.12).
 */
export const KFD_SVM_GRANULARITY_MAX = 0x1b;

export interface KfdSvmOptions {
  /** XNACK (retry faults) on: the default on the GPUs that have it (gfx9.4+, `HSA_XNACK=1`). */
  xnack: boolean;
  /** VRAM pages for migrated ranges (0: none). */
  vramPages?: number;
  /**
   * svm_default_granularity (log2 pages): the size of a range the fault creates and of the window
   * each fault migrates and maps. Default 9 (2 MiB); at most 0x1B (27), as svm_range_list_init clamps.
   */
  granularity?: number;
  /** AMDGPU_SVM_RANGE_RETRY_FAULT_PENDING, ns: faults on a range validated less than this ago are dropped. Default 2 ms. */
  retryFaultPendingNs?: number;
}

export function createKfdSvmPolicy(host: GpuHost, opts: KfdSvmOptions): Policy {
  const granularity = Math.min(opts.granularity ?? KFD_SVM_DEFAULT_GRANULARITY, KFD_SVM_GRANULARITY_MAX);
  if (!Number.isInteger(granularity) || granularity < 0) throw new Error(`kfd-svm: granularity must be an integer from 0 to ${KFD_SVM_GRANULARITY_MAX}, got ${opts.granularity}`);
  const retryFaultPendingNs = opts.retryFaultPendingNs ?? AMDGPU_SVM_RANGE_RETRY_FAULT_PENDING_NS;
  if (!(retryFaultPendingNs >= 0)) throw new Error(`kfd-svm: retryFaultPendingNs must be >= 0, got ${opts.retryFaultPendingNs}`);
  if (!opts.xnack) return { ...createPreemptPolicy(host, {}), name: 'kfd-svm' };
  return createSvmFaultPolicy(host, {
    unsafe: false,
    name: 'kfd-svm',
    flavour: 'kfd',
    maxBusyRetries: 0, // kfd does not loop: -EBUSY is -EAGAIN at once
    faultWindowPages: 2 ** granularity,
    retryFaultPendingNs,
    hotThreshold: 1,
    faultPermission: 'vma',
    vramPages: opts.vramPages,
  });
}
