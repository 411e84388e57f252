// The ioctl-like messages an application (the `app` actor, a test script) sends to the GPU actor,
// standing for amdgpu's uapi (include/uapi/drm/amdgpu_drm.h):
//   gpu_bo_create   DRM_IOCTL_AMDGPU_GEM_USERPTR (a BO over [addr, addr + pages*PAGE_SIZE) of pid),
//                   or DRM_IOCTL_AMDGPU_GEM_CREATE in VRAM (`vram: true`)
//   gpu_submit      DRM_IOCTL_AMDGPU_CS (a job over a BO list; replies once the job is queued)
//   gpu_wait        DRM_IOCTL_AMDGPU_WAIT_CS (replies when the job's fence signals)
//   gpu_bo_free     DRM_IOCTL_GEM_CLOSE (the BO goes once its fences have signalled)
// Every reply carries `ret` (>= 0 or -errno, the values of @svmsim/kernel-mm's protocol.ts).
import type { Pid } from '@svmsim/kernel-mm';

export type GpuQueue = 'gfx' | 'compute';

/** Fence errors of a job lost to a timeout or reset (include/uapi/asm-generic/errno.h). */
export const ENODATA = -61;
export const ETIME = -62;
export const ECANCELED = -125;
export const GPU_ERRNO_NAMES: Record<number, string> = { [ENODATA]: 'ENODATA', [ETIME]: 'ETIME', [ECANCELED]: 'ECANCELED' };

/**
 * A userptr BO over [addr, addr + pages*PAGE_SIZE) of pid (default), or with `vram: true` a VRAM BO
 * (AMDGPU_GEM_CREATE in AMDGPU_GEM_DOMAIN_VRAM) of `pages` mapped at GPU virtual address `addr` of
 * pid's GPUVM: GPU memory, not process memory.
 */
export interface GpuBoCreate { type: 'gpu_bo_create'; pid: Pid; addr: number; pages: number; readonly?: boolean; vram?: boolean }
/** ret = the BO handle (> 0), or -errno. */
export interface GpuBoCreateResult { type: 'gpu_bo_create_result'; ret: number; handle: number }

/** What a job does with its BOs. */
export interface AccessPattern {
  /** Fraction (0, 1] of each BO's pages the job accesses, evenly spread over the BO. */
  touch: number;
  /** Writes (DMA writes) or reads. */
  write: boolean;
  /** The word written to page i of a BO is value + i. Default: jobId * 1e6 + 1. */
  value?: number;
  /** Where in the BO the touched pages start, as a fraction [0, 1) of the spacing between them (default 0): jobs with different shifts touch different pages. */
  shift?: number;
  /** Atomics (read-modify-write, so writes too): under gpusvm they need the page in this GPU's VRAM. */
  atomic?: boolean;
}

export interface GpuSubmit {
  type: 'gpu_submit';
  /** BO handles. */
  bos: number[];
  pattern: AccessPattern;
  /** How long the job runs once it reaches the head of its queue (simulated ns). */
  durationNs: number;
  queue: GpuQueue;
  /** Injected fault: the job never signals its fence by itself (a hung shader); a job timeout or reset ends it. */
  hang?: boolean;
}
/** ret 0 and the job id, or -errno (-EAGAIN only after maxResubmits restarts; -EFAULT, -EPERM from the walk…). */
export interface GpuSubmitResult { type: 'gpu_submit_result'; ret: number; job: number; pagesWalked: number; resubmissions: number }

export interface GpuWait { type: 'gpu_wait'; job: number }
/**
 * ret 0 when the job completed (or ended so long ago that its status is gone), -EFAULT if it took a
 * GPU page fault (a job error), the fence's error if a timeout or reset ended it (-ENODATA soft
 * recovery, -ETIME the guilty job of a reset, -ECANCELED lost to one), -EINVAL for a job never submitted.
 */
export interface GpuWaitResult { type: 'gpu_wait_result'; ret: number; job: number; value: number }

export interface GpuBoFree { type: 'gpu_bo_free'; handle: number }
export interface GpuBoFreeResult { type: 'gpu_bo_free_result'; ret: number }

/**
 * Not an ioctl: the end of a run reads the content of VRAM pages the CPU page tables still map
 * (device-private pages), as the checker's final snapshot needs every page's content. values[i] is
 * the word in dev_pfns[i], or null if that pfn is not this GPU's.
 */
export interface GpuDevmemRead { type: 'gpu_devmem_read'; dev_pfns: number[] }
export interface GpuDevmemResult { type: 'gpu_devmem_result'; ret: number; values: (number | null)[] }

export type GpuRequest = GpuBoCreate | GpuSubmit | GpuWait | GpuBoFree | GpuDevmemRead;
export type GpuReply = GpuBoCreateResult | GpuSubmitResult | GpuWaitResult | GpuBoFreeResult | GpuDevmemResult;
