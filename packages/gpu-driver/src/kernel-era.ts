// The kernel era a run simulates (`machine.kernel`): the defaults that changed across Linux
// versions and that the GPU's figures depend on. Each value names where it comes from.
//
//   lockup_timeout (amdgpu_drv.c, parsed by amdgpu_device_get_job_timeout_settings), per ring type,
//   ms; -1 = MAX_SCHEDULE_TIMEOUT (no drm_sched job timeout):
//     v4.9    `int amdgpu_lockup_timeout = 0;` and amdgpu_fence_driver_init_ring turns 0 into
//             MAX_SCHEDULE_TIMEOUT: no ring has a timeout (the seed thread's 2016 kernels).
//     v6.6    bare metal: gfx/sdma/video 10000, compute 60000 (commit 67387dfe0f66 "drm/amdgpu:
//     v6.15   change the default timeout for kernel compute queues", v5.13, 2021, ended compute's
//             MAX_SCHEDULE_TIMEOUT of the 2019 per-ring-type parameter: "Infinite timeout can lead
//             to deadlocks in the kernel").
//     (v6.17  ec8fbb44b51e "drm/amdgpu: make compute timeouts consistent", A. Deucher, in
//             amd-drm-next-6.17-2025-07-17: compute 10000.)
//     latest  1bea57ea7544 "drm/amdgpu: reduce queue timeout to 2 seconds v2", C. König, in
//             amd-drm-next-6.19-2025-10-24 (so v6.19 and later): 2000 for all queues; one value
//             given applies to all of them.
//   softRecovery: amdgpu_ring_soft_recovery (v4.19+): amdgpu_job_timedout first kills the waves of
//     the job's VMID (the fence gets -ENODATA) before resetting anything.
//   hmmBusy: what amdgpu_hmm_range_get_pages does with hmm_range_fault's -EBUSY:
//     'budget'  v6.6/v6.15: retry (read_begin again) until max(chunk >> 29, 1) * HMM_RANGE_DEFAULT_TIMEOUT
//               (1 s per 512 MiB of the chunk) has passed, then fail with -EBUSY;
//     'eagain'  latest: one read_begin, -EBUSY returned as -EAGAIN (the CS ioctl restarts).
//   invalidateWaitsVm: amdgpu_hmm_invalidate_gfx waits on bo->tbo.base.resv (v6.6, v6.15: the BO's
//     own fences) or, after v6.15, on bo->parent's resv with amdgpu_vm_bo_invalidate: every fence
//     of the VM (all of the process's jobs), not just those using the BO.
//   kfdUnmapDrain: how kfd keeps retry faults raised before an munmap from recreating the range
//     (kfd_svm.c svm_range_unmap_from_cpu / svm_range_restore_pages):
//     'drain_pagefaults'  v6.6 (the torvalds/linux copy at 006ad514): every fault is dropped while
//                         a drain is pending; the deferred worker drains the IH ring first;
//     'checkpoint_ts'     v6.15, latest ("drm/amdkfd: Change kfd/svm page fault drain handling",
//                         2024): only faults stamped at or before the IH ring's newest entry at
//                         unmap time are dropped; the worker does not drain. (KFD SVM is v5.14+:
//                         for v4.9 the v6.6 behaviour stands in.)
//   KFD: user queues have no job timeout in any era; a queue that does not preempt within
//     queue_preemption_timeout_ms (kfd_device_queue_manager.c, default 9000) is an HWS hang → reset.
export type KernelEra = 'v4.9' | 'v6.6' | 'v6.15' | 'latest';
export const KERNEL_ERAS: readonly KernelEra[] = ['v4.9', 'v6.6', 'v6.15', 'latest'];
export const DEFAULT_KERNEL_ERA: KernelEra = 'latest';

/** A drm_sched ring type's lockup_timeout, ms; a negative value is infinite (the module parameter's meaning). */
export interface LockupTimeoutMs {
  gfx: number;
  compute: number;
  sdma: number;
}

export type KfdUnmapDrain = 'drain_pagefaults' | 'checkpoint_ts';

export interface KernelEraDefaults {
  lockupTimeoutMs: LockupTimeoutMs;
  kfdUnmapDrain: KfdUnmapDrain;
  softRecovery: boolean;
  hmmBusy: 'budget' | 'eagain';
  invalidateWaitsVm: boolean;
}

export const KERNEL_ERA_DEFAULTS: Record<KernelEra, KernelEraDefaults> = {
  'v4.9': { lockupTimeoutMs: { gfx: -1, compute: -1, sdma: -1 }, softRecovery: false, hmmBusy: 'budget', invalidateWaitsVm: false, kfdUnmapDrain: 'drain_pagefaults' },
  'v6.6': { lockupTimeoutMs: { gfx: 10_000, compute: 60_000, sdma: 10_000 }, softRecovery: true, hmmBusy: 'budget', invalidateWaitsVm: false, kfdUnmapDrain: 'drain_pagefaults' },
  'v6.15': { lockupTimeoutMs: { gfx: 10_000, compute: 60_000, sdma: 10_000 }, softRecovery: true, hmmBusy: 'budget', invalidateWaitsVm: false, kfdUnmapDrain: 'checkpoint_ts' },
  latest: { lockupTimeoutMs: { gfx: 2_000, compute: 2_000, sdma: 2_000 }, softRecovery: true, hmmBusy: 'eagain', invalidateWaitsVm: true, kfdUnmapDrain: 'checkpoint_ts' },
};

/** queue_preemption_timeout_ms (kfd_device_queue_manager.c): the HWS's bound on unmapping queues. */
export const QUEUE_PREEMPTION_TIMEOUT_MS = 9_000;

/** HMM_RANGE_DEFAULT_TIMEOUT (include/linux/hmm.h), ms. */
export const HMM_RANGE_DEFAULT_TIMEOUT_MS = 1_000;

/** v6.6's -EBUSY budget for one walk of `pages`: max(bytes >> 29, 1) * HMM_RANGE_DEFAULT_TIMEOUT, ns. */
export function hmmBusyBudgetNs(pages: number): number {
  return Math.max(Math.floor((pages * 4096) / 2 ** 29), 1) * HMM_RANGE_DEFAULT_TIMEOUT_MS * 1e6;
}

/** A lockup timeout in ms as drm_sched uses it: ns, or Infinity for a negative value (MAX_SCHEDULE_TIMEOUT). */
export const lockupTimeoutNs = (ms: number): number => (ms < 0 ? Infinity : ms * 1e6);
