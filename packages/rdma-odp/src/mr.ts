// Memory regions and the mkey table (drivers/infiniband/hw/mlx5/mr.c, odp.c; include/rdma/ib_umem.h,
// ib_umem_odp.h; v6.1 for mlx5, v6.0–v6.6 for ib_core). An MR is what an lkey / rkey names; its umem
// says where its pages are:
//   pinned   ib_umem_get: pinned for the MR's life, its MTT written once (umem.ts)
//   odp      ib_umem_odp_get: an interval notifier over the MR, pages mapped by faults (umem-odp.ts)
//   implicit ib_umem_odp_alloc_implicit: the whole address space, a KSM mkey whose entries point at
//            child MRs of MLX5_IMR_MTT_SIZE, each an ib_umem_odp with its own notifier (implicit-odp.ts)
//   dmabuf   ib_umem_dmabuf_get: pages of a buffer another device exports (umem-dmabuf.ts)
// The table is dev->odp_mkeys and the mkey xarray in one: key → MR. mlx5 uses one mkey for lkey and
// rkey; so do we.
import { PAGE_SIZE, type MmuIntervalNotifier, type Pid } from '@svmsim/kernel-mm';
import { Mutex } from '@svmsim/runtime';
import { Mtt } from './mtt.js';

export type MrKind = 'pinned' | 'odp' | 'implicit' | 'dmabuf';

/** MLX5_IMR_MTT_SHIFT = 30: an implicit MR's children cover 1 GiB each (MLX5_IMR_MTT_SIZE). */
export const MLX5_IMR_MTT_SHIFT = 30;
export const MLX5_IMR_MTT_SIZE = 2 ** MLX5_IMR_MTT_SHIFT;
export const MLX5_IMR_MTT_ENTRIES = MLX5_IMR_MTT_SIZE / PAGE_SIZE;
/**
 * The simulated process's address space (kernel-mm's page tables: 2^20 pages, 4 GiB). The implicit
 * MR's KSM has TASK_SIZE / MLX5_IMR_MTT_SIZE entries (mlx5_imr_ksm_entries, from TASK_SIZE in the kernel).
 */
export const TASK_SIZE = 2 ** 32;
export const MLX5_IMR_KSM_ENTRIES = TASK_SIZE / MLX5_IMR_MTT_SIZE;

export interface OdpNotifier extends MmuIntervalNotifier {
  /** An invalidate has set invalidate_seq (until then it is adopted from read_begin: the insert reply gives none). */
  known: boolean;
}

/** A ZAP waiting for the DMAs in flight through the entries it zapped (umr.ts). */
export interface DrainWaiter {
  from: number;
  to: number;
  left: number;
  done: () => void;
}

/** An MR whose pages have an MTT of their own: every kind but the implicit parent. */
export interface LeafMr extends Mr {
  mtt: Mtt;
  /** The address (in the MR's iova space) of MTT entry 0: page aligned. */
  startVa: number;
}

export interface Mr {
  key: number;
  kind: MrKind;
  pid: Pid;
  access: number;
  /** Bytes [iova, iova + length) are the MR (the implicit MR: [0, TASK_SIZE)). */
  iova: number;
  length: number;
  /** umem->writable (ib_access_writable): mapped for writing, faulted with write intent. */
  writable: boolean;
  /** The device's view is gone (dereg under way, or a child destroyed): no new translation or fault. */
  revoked: boolean;
  /** References the fault and prefetch paths hold (mmkey.usecount): dereg waits for them. */
  usecount: number;
  idleWaiters: (() => void)[];
  /** odp, implicit children: the umem's notifier and its umem_mutex. */
  notifier: OdpNotifier | null;
  umemMutex: Mutex;
  /** ZAPs of this MR waiting for DMA in flight. */
  drains: DrainWaiter[];
  /** implicit: its children by index (the implicit_children xarray) and what the KSM shows (the HW view). */
  children: Map<number, LeafMr> | null;
  ksm: Map<number, LeafMr> | null;
  /** An implicit MR's child: its parent and index. */
  parent: Mr | null;
  childIdx: number;
  /** pinned: the frames, for the unpin at dereg. */
  pinnedPfns: Float64Array | null;
  /** dmabuf: the attachment (umem-dmabuf.ts). */
  dmabuf: DmabufUmem | null;
}

export interface DmabufUmem {
  exporter: string;
  fd: number;
  attachment: number;
  /** The first page of the buffer the MR covers. */
  offsetPages: number;
  /** umem_dmabuf->sgt: mapped (at `generation`), or not. */
  mapped: boolean;
  generation: number;
  /** The map pinned the buffer (the exporter has no CONFIG_DMABUF_MOVE_NOTIFY): it will not move while mapped. */
  pinned: boolean;
}

export function newMr(key: number, kind: MrKind, pid: Pid, access: number, iova: number, length: number, writable: boolean): Mr {
  return {
    key, kind, pid, access, iova, length, writable, revoked: false, usecount: 0, idleWaiters: [], notifier: null,
    umemMutex: new Mutex(`umem_mutex of mkey 0x${key.toString(16)}`), drains: [], children: kind === 'implicit' ? new Map() : null,
    ksm: kind === 'implicit' ? new Map() : null, parent: null, childIdx: -1, pinnedPfns: null, dmabuf: null,
  };
}

export function withMtt(mr: Mr, startVa: number, pages: number): LeafMr {
  const leaf = mr as LeafMr;
  leaf.startVa = startVa;
  leaf.mtt = new Mtt(pages);
  return leaf;
}

/** The pages [first, last] of bytes [addr, addr + length). */
export function pageSpan(addr: number, length: number): { first: number; pages: number } {
  const first = Math.floor(addr / PAGE_SIZE);
  const last = Math.floor((addr + Math.max(length, 1) - 1) / PAGE_SIZE);
  return { first, pages: last - first + 1 };
}

/** [addr, addr + length) lies in the MR (its iova range). */
export function inMr(mr: Mr, addr: number, length: number): boolean {
  return Number.isFinite(addr) && Number.isFinite(length) && length >= 0 && addr >= mr.iova && addr + length <= mr.iova + mr.length;
}

/** mmkey.usecount: take a reference (the fault and prefetch paths, mlx5r_deref_odp_mkey to drop it). */
export function mrGet(mr: Mr): void {
  mr.usecount++;
}

export function mrPut(mr: Mr): void {
  if (mr.usecount <= 0) throw new Error(`mkey 0x${mr.key.toString(16)}: usecount below zero`);
  if (--mr.usecount === 0) for (const w of mr.idleWaiters.splice(0)) w();
}

/** mlx5r_deref_wait_odp_mkey: `then` once no reference is held. */
export function mrWaitIdle(mr: Mr, then: () => void): void {
  if (mr.usecount === 0) return then();
  mr.idleWaiters.push(then);
}

/** Keys: mlx5 mkeys are an index and a variant byte; here an index from 0x100 up, never reused. */
export class MkeyTable {
  private readonly mrs = new Map<number, Mr>();
  private next = 0x100;

  alloc(): number {
    return this.next++;
  }
  set(mr: Mr): void {
    this.mrs.set(mr.key, mr);
  }
  /** xa_load(&dev->odp_mkeys) / the mkey lookup the HW does: a revoked MR is not found. */
  get(key: number): Mr | undefined {
    const mr = this.mrs.get(key);
    return mr && !mr.revoked ? mr : undefined;
  }
  delete(key: number): void {
    this.mrs.delete(key);
  }
  get size(): number {
    return this.mrs.size;
  }
  values(): IterableIterator<Mr> {
    return this.mrs.values();
  }
}
