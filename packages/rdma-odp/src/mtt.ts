// An MR's translation table, one entry per page of its umem, in typed arrays allocated in blocks of
// 512 entries as they are first written (an implicit ODP child covers MLX5_IMR_MTT_SIZE, 1 GiB:
// 262144 entries, of which a workload touches a few). Each entry holds what two structures of the
// kernel hold:
//   the driver's view, ib_umem_odp's dma_list: ODP_READ_ALLOWED / ODP_WRITE_ALLOWED once
//     ib_umem_odp_map_dma_single_page DMA-mapped the page (npages counts them);
//   the device's view, the mkey's MTT: MTT_READ / MTT_WRITE once a UMR wrote the entry
//     (mlx5r_umr_update_xlt → populate_mtt → umem_dma_to_mtt), cleared by a ZAP UMR.
// and what the simulation adds: the frame (pfn; a dma-buf MR: the page of the exported buffer), the
// sequence the translation was made at (the notifier's read_begin seq; a dma-buf MR: the mapping
// generation), so that every DMA carries the translation it used, and `inflight`: DMAs the NIC
// translated through the entry and has not issued yet (what a ZAP UMR's completion waits for);
// and, for unsafe-odp's counter only, `ackedSeq`: the cur_seq of the last invalidation of the
// entry the driver acked (a dma-buf MR: the generation it gave up at move_notify + 1).
export const MTT_READ = 1 << 0;
export const MTT_WRITE = 1 << 1;
export const ODP_READ_ALLOWED = 1 << 2;
export const ODP_WRITE_ALLOWED = 1 << 3;
const MTT_BITS = MTT_READ | MTT_WRITE;
const DMA_BITS = ODP_READ_ALLOWED | ODP_WRITE_ALLOWED;

const BLOCK_SHIFT = 9;
const BLOCK = 1 << BLOCK_SHIFT;
const MASK = BLOCK - 1;
/** A DMA in flight per entry: u16 (more than this many at once through one page is a simulator bug). */
const INFLIGHT_MAX = 0xffff;

interface Block {
  pfn: Float64Array;
  seq: Float64Array;
  flags: Uint8Array;
  inflight: Uint16Array;
  ackedSeq: Float64Array;
}

export class Mtt {
  private readonly blocks: (Block | undefined)[];
  /** Entries whose dma_list bits are set: ib_umem_odp's npages. */
  npages = 0;
  /** DMAs in flight over all entries. */
  inflightTotal = 0;

  constructor(readonly entries: number) {
    if (!Number.isInteger(entries) || entries <= 0) throw new Error(`mtt: ${entries} entries`);
    this.blocks = new Array(Math.ceil(entries / BLOCK));
  }

  private block(i: number, create: boolean): Block | undefined {
    const b = this.blocks[i >>> BLOCK_SHIFT];
    if (b || !create) return b;
    const nb: Block = { pfn: new Float64Array(BLOCK), seq: new Float64Array(BLOCK), flags: new Uint8Array(BLOCK), inflight: new Uint16Array(BLOCK), ackedSeq: new Float64Array(BLOCK) };
    this.blocks[i >>> BLOCK_SHIFT] = nb;
    return nb;
  }

  private check(i: number): void {
    if (!(Number.isInteger(i) && i >= 0 && i < this.entries)) throw new Error(`mtt: entry ${i} outside 0..${this.entries - 1}`);
  }

  flags(i: number): number {
    this.check(i);
    return this.block(i, false)?.flags[i & MASK] ?? 0;
  }
  pfn(i: number): number {
    return this.block(i, false)?.pfn[i & MASK] ?? 0;
  }
  seq(i: number): number {
    return this.block(i, false)?.seq[i & MASK] ?? 0;
  }
  inflight(i: number): number {
    return this.block(i, false)?.inflight[i & MASK] ?? 0;
  }
  ackedSeq(i: number): number {
    return this.block(i, false)?.ackedSeq[i & MASK] ?? 0;
  }

  /**
   * The driver acked an invalidation (cur_seq `curSeq`) of the allocated entries of [from, to): a
   * DMA issued through one of them at an older seq from now on is one the kernel was told is over.
   */
  markAcked(from: number, to: number, curSeq: number): void {
    this.forEachAllocated(from, to, (i) => {
      const b = this.block(i, false)!;
      const j = i & MASK;
      if (b.ackedSeq[j] < curSeq) b.ackedSeq[j] = curSeq;
    });
  }

  /** ib_umem_odp_map_dma_single_page: the page is DMA-mapped (or its access resynced); true if newly mapped. */
  mapDma(i: number, pfn: number, seq: number, write: boolean): boolean {
    this.check(i);
    const b = this.block(i, true)!;
    const j = i & MASK;
    const wasMapped = (b.flags[j] & ODP_READ_ALLOWED) !== 0;
    b.pfn[j] = pfn;
    b.seq[j] = seq;
    b.flags[j] = (b.flags[j] & MTT_BITS) | ODP_READ_ALLOWED | (write ? ODP_WRITE_ALLOWED : 0);
    if (!wasMapped) this.npages++;
    return !wasMapped;
  }

  /** ib_umem_odp_unmap_dma_pages for one entry: returns its dma_list bits before (0: was not mapped). */
  unmapDma(i: number): number {
    const b = this.block(i, false);
    if (!b) return 0;
    const j = i & MASK;
    const was = b.flags[j] & DMA_BITS;
    if (was !== 0) {
      b.flags[j] &= ~DMA_BITS;
      this.npages--;
    }
    return was;
  }

  /** A UMR wrote the device entry from the driver's (populate_mtt): MTT bits follow the dma_list bits. */
  populate(i: number): void {
    const b = this.block(i, false);
    if (!b) return;
    const j = i & MASK;
    const f = b.flags[j];
    b.flags[j] = (f & DMA_BITS) | (f & ODP_READ_ALLOWED ? MTT_READ : 0) | (f & ODP_WRITE_ALLOWED ? MTT_WRITE : 0);
  }

  /** A pinned or dma-buf MR's entry, written at once in both views. */
  setPinned(i: number, pfn: number, seq: number, write: boolean): void {
    this.mapDma(i, pfn, seq, write);
    this.populate(i);
  }

  /** A ZAP UMR cleared the device entry; returns true if it was valid. */
  zap(i: number): boolean {
    const b = this.block(i, false);
    if (!b) return false;
    const j = i & MASK;
    const was = (b.flags[j] & MTT_BITS) !== 0;
    b.flags[j] &= ~MTT_BITS;
    return was;
  }

  inflightInc(i: number): void {
    const b = this.block(i, true)!;
    const j = i & MASK;
    if (b.inflight[j] === INFLIGHT_MAX) throw new Error(`mtt: entry ${i} has ${INFLIGHT_MAX} DMAs in flight`);
    b.inflight[j]++;
    this.inflightTotal++;
  }

  inflightDec(i: number): void {
    const b = this.block(i, false);
    const j = i & MASK;
    if (!b || b.inflight[j] === 0) throw new Error(`mtt: entry ${i} has no DMA in flight`);
    b.inflight[j]--;
    this.inflightTotal--;
  }

  /** Visit every entry of [from, to) in allocated blocks (entries never written are skipped). */
  forEachAllocated(from: number, to: number, fn: (i: number) => void): void {
    for (let bi = from >>> BLOCK_SHIFT; bi <= (to - 1) >>> BLOCK_SHIFT && bi < this.blocks.length; bi++) {
      if (!this.blocks[bi]) continue;
      const lo = Math.max(from, bi << BLOCK_SHIFT), hi = Math.min(to, (bi + 1) << BLOCK_SHIFT);
      for (let i = lo; i < hi; i++) fn(i);
    }
  }
}
