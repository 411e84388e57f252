// A buffer object. A userptr BO (amdgpu_bo with a ttm_tt over user pages, amdgpu_ttm_tt_set_userptr)
// is [addr, addr + pages*PAGE_SIZE) of process pid; a VRAM BO is GPU memory mapped at that GPU
// virtual address in pid's GPUVM (vram-bos.ts). Its reservation object (dma_resv) is modelled as
// the set of jobs whose fences have not signalled yet.
import { PAGE_SIZE, type MmuIntervalNotifier, type Pid } from '@svmsim/kernel-mm';
import type { Job } from './job.js';

export interface UserptrNotifier extends MmuIntervalNotifier {
  /** An invalidate has set invalidate_seq (until then it is adopted from read_begin: the insert reply gives none). */
  known: boolean;
}

/** A VRAM BO's memory: its content, where TTM has it, whether a move is under way. */
export interface LocalMemory {
  content: Float64Array;
  placement: 'vram' | 'gtt';
  moving: boolean;
}

export interface Bo {
  handle: number;
  /** userptr: over process memory (the policy's business); vram: the GPU's own memory (vram-bos.ts). */
  domain: 'userptr' | 'vram';
  pid: Pid;
  addr: number;
  pages: number;
  /** AMDGPU_GEM_USERPTR_READONLY: faulted without HMM_PFN_REQ_WRITE, pinned without FOLL_WRITE. */
  readonly: boolean;
  /** The unsignalled fences in the BO's reservation object. */
  fences: Set<Job>;
  /** Submissions naming the BO that are still being validated (the CS's BO-list references): GEM_CLOSE waits for them. */
  submitting: number;
  /** Called when `submitting` drops to 0. */
  submitIdle: (() => void)[];
  /** policy pin: the pinned frames, one per page. */
  pinned: Float64Array | null;
  /** policy userptr: the BO's mmu_interval_notifier. */
  notifier: UserptrNotifier | null;
  /** GEM_CLOSE received: no new submissions. */
  freeing: boolean;
  /** A VRAM BO's memory (null for userptr BOs). */
  local: LocalMemory | null;
}

export const boEnd = (bo: Bo): number => bo.addr + bo.pages * PAGE_SIZE;
export const boFirstVpn = (bo: Bo): number => bo.addr / PAGE_SIZE;

export function newBo(handle: number, pid: Pid, addr: number, pages: number, readonly: boolean, domain: Bo['domain'] = 'userptr'): Bo {
  return { handle, domain, pid, addr, pages, readonly, fences: new Set(), submitting: 0, submitIdle: [], pinned: null, notifier: null, freeing: false, local: null };
}
