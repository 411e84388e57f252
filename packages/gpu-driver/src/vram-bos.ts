// VRAM BOs: buffer objects in the GPU's own memory (AMDGPU_GEM_DOMAIN_VRAM), placed and evicted by
// TTM (drivers/gpu/drm/ttm/ttm_bo.c; amdgpu_ttm.c), as of v6.6. They are not process memory: mm
// never sees them, and jobs read and write them inside the GPU (GPUVM entries marked `local`).
//   create   ttm_bo_validate into VRAM: take `pages` of the VRAM BO budget; short of room, evict
//            least-recently-used VRAM BOs first (ttm_mem_evict_first), else fail with -ENOMEM
//            (amdgpu falls back to GTT only when the BO allows it; these do not).
//   evict    ttm_bo_evict: wait for the victim's reservation to be idle, then move it to GTT
//            (system memory the driver owns: `copyPerPageNs` per page, the SDMA copy). What
//            "idle" costs is the policy's (`evictionFence`): gfx (pin, userptr, svm-fault) waits
//            for the fences of the jobs using the BO; KFD (preempt) has the process's eviction
//            fence in every BO's reservation, and waiting on it evicts the whole process
//            (policy-preempt.ts). A BO in GTT stays usable, only its placement changed.
//   restore  restoreToVram: move a process's GTT BOs back while VRAM has room (KFD's
//            amdgpu_amdkfd_gpuvm_restore_process_bos validating into the preferred domain).
//            Departure: it never evicts others to make room (KFD's restore may, which is how two
//            processes evict each other in turn).
//   free     the BO's pages go back to the budget once its fences have signalled.
//   dma-buf  an exported BO (dma-buf-export.ts): one an importer pinned is never chosen for eviction;
//            before an exported BO moves its importers get move_notify (`BoMoves.beforeMove`), and
//            maps waiting for the move are answered after it (`afterMove`). The restore leaves
//            exported BOs where they are (a departure: KFD's validation would move them, with a
//            move_notify).
import { ENOMEM, PAGE_SIZE, type Pid } from '@svmsim/kernel-mm';
import type { Bo } from './bo.js';
import type { GpuHost } from './policy.js';

export interface VramBoOptions {
  /** VRAM available to BOs, pages. */
  pages: number;
  /** Moving one page between VRAM and GTT (SDMA copy), ns. */
  copyPerPageNs: number;
}
export const DEFAULT_VRAM_BOS: VramBoOptions = {
  // svmsim's VRAM budget for BOs (16 MiB), not a device's.
  pages: 4096,
  // No published figure; estimate because an SDMA copy of a page to GTT is bound by the PCIe link (256 ns at 16 GB/s, the
  // uvm-pcie profile's vramCopyPerPageNs) plus its share of the copy's setup.
  copyPerPageNs: 500,
};

/** What waiting on a BO's reservation before a move means: the policy's. */
export type EvictionFence = (bo: Bo, then: () => void) => void;

/** What a move means to the BO's dma-buf importers (dma-buf-export.ts). */
export interface BoMoves {
  /** No importer holds a pin on it. */
  movable(bo: Bo): boolean;
  /** Importers may map it. */
  exported(bo: Bo): boolean;
  /** Before the copy: move_notify every dynamic importer, then `then`. */
  beforeMove(bo: Bo, then: () => void): void;
  afterMove(bo: Bo): void;
}

export class VramBos {
  /** VRAM BOs in VRAM, least recently used first. */
  private readonly lru: Bo[] = [];
  /** Every live VRAM BO, in VRAM or in GTT. */
  private readonly live = new Set<Bo>();
  /** Placements waiting for an eviction under way to end. */
  private readonly moveEnded: (() => void)[] = [];
  private used = 0;
  evictions = 0;
  pagesEvicted = 0;
  pagesRestored = 0;
  createFailures = 0;

  constructor(
    private readonly host: GpuHost,
    private readonly opts: VramBoOptions,
    private readonly evictionFence: EvictionFence,
    private readonly moves: BoMoves,
  ) {}

  get usedPages(): number {
    return this.used;
  }

  get freePages(): number {
    return this.opts.pages - this.used;
  }

  /**
   * A full GPU reset lost VRAM (amdgpu_device_gpu_recover, vram_lost): the contents of the BOs in
   * VRAM are gone (zeros here); those TTM had moved to GTT survive. Returns the pages lost.
   */
  loseContents(): number {
    let pages = 0;
    for (const bo of this.live) {
      if (bo.local?.placement !== 'vram') continue;
      bo.local.content.fill(0);
      pages += bo.pages;
    }
    return pages;
  }

  /** Place a new BO in VRAM, evicting others if needed; done(0) or done(-ENOMEM). */
  create(bo: Bo, done: (ret: number) => void): void {
    if (bo.pages > this.opts.pages) {
      this.createFailures++;
      return done(ENOMEM);
    }
    bo.local = { content: new Float64Array(bo.pages), placement: 'vram', moving: false };
    this.makeRoom(bo.pages, () => {
      if (this.freePages < bo.pages) {
        this.createFailures++;
        bo.local = null;
        return done(ENOMEM);
      }
      this.used += bo.pages;
      this.lru.push(bo);
      this.live.add(bo);
      this.map(bo);
      done(0);
    });
  }

  /** A job used the BO: most recently used. */
  touch(bo: Bo): void {
    const i = this.lru.indexOf(bo);
    if (i >= 0 && i !== this.lru.length - 1) this.lru.push(...this.lru.splice(i, 1));
  }

  /** The BO goes (its fences have signalled). */
  free(bo: Bo): void {
    this.live.delete(bo);
    const i = this.lru.indexOf(bo);
    if (i >= 0) {
      this.lru.splice(i, 1);
      this.used -= bo.pages;
    }
    if (this.host.vm.clear(bo.pid, bo.addr, bo.addr + bo.pages * PAGE_SIZE) > 0) this.host.vm.flushTlb(false); // GEM_CLOSE: amdgpu_vm_bo_del's update flushes
    bo.local = null;
  }

  /** Move pid's BOs in GTT back to VRAM while there is room (no eviction); then done. */
  restoreToVram(pid: Pid, done: () => void): void {
    let copies = 0;
    for (const bo of this.live) {
      if (bo.pid !== pid || !bo.local || bo.local.placement !== 'gtt' || bo.local.moving || bo.freeing || bo.pages > this.freePages || this.moves.exported(bo)) continue;
      bo.local.placement = 'vram';
      this.used += bo.pages;
      this.lru.push(bo);
      this.pagesRestored += bo.pages;
      copies += bo.pages;
    }
    this.host.sleep(copies * this.opts.copyPerPageNs, done);
  }

  /**
   * Evict LRU BOs until `need` pages are free or nothing is left to evict. When every candidate is
   * already on its way out (another placement's eviction), wait for one of those moves to end.
   */
  private makeRoom(need: number, done: () => void): void {
    if (this.freePages >= need) return done();
    const victim = this.lru.find((b) => !b.local!.moving && this.moves.movable(b));
    if (victim) return this.evict(victim, () => this.makeRoom(need, done));
    if (this.lru.some((b) => b.local!.moving)) return void this.moveEnded.push(() => this.makeRoom(need, done));
    done();
  }

  /** ttm_bo_evict: wait on the reservation (the policy's fence), tell the importers, copy to GTT. */
  private evict(bo: Bo, done: () => void): void {
    bo.local!.moving = true;
    this.evictions++;
    if (this.host.ctx.tracing) this.host.ctx.trace('gpu_vram_bo_evict', { handle: bo.handle, pid: bo.pid, pages: bo.pages });
    this.evictionFence(bo, () => this.moves.beforeMove(bo, () =>
      this.host.sleep(bo.pages * this.opts.copyPerPageNs, () => {
        // Freed meanwhile: free() gave its pages back already.
        const i = this.lru.indexOf(bo);
        if (i >= 0) {
          this.lru.splice(i, 1);
          this.used -= bo.pages;
          this.pagesEvicted += bo.pages;
        }
        if (bo.local) {
          bo.local.placement = 'gtt';
          bo.local.moving = false;
        }
        this.moves.afterMove(bo);
        done();
        for (const waiter of this.moveEnded.splice(0)) waiter();
      }),
    ));
  }

  /** GPUVM entries of the BO: its own memory, not process memory. */
  private map(bo: Bo): void {
    const first = bo.addr / PAGE_SIZE;
    for (let i = 0; i < bo.pages; i++) this.host.vm.set(bo.pid, first + i, { pfn: i, writable: true, tr: { via: 'pin' }, local: true });
  }
}
