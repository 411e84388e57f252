// The O_DIRECT pin path: fs/iomap/direct-io.c iomap_dio_bio_iter → bio_iov_iter_get_pages
// (block/bio.c) → iov_iter_extract_pages → pin_user_pages_fast, and bio_release_pages at
// completion. Followed: v6.6. Since v6.3 the pages are pinned with FOLL_PIN (not FOLL_LONGTERM:
// the pin is short, so gup does not migrate them out of ZONE_MOVABLE/CMA first); FOLL_WRITE only
// for a read into memory (ITER_DEST); FOLL_PCI_P2PDMA (ITER_ALLOW_P2PDMA) only when the queue
// supports P2P. A read's pages are dirtied (bio_set_pages_dirty at submit, re-dirtied by
// bio_check_pages_dirty at completion) before they are unpinned.
// The pin counts live in a typed array indexed by pfn: kernel-mm's migration and reclaim consult
// `isDmaPinned` as folio_maybe_dma_pinned, and the checker reads `pinCount` at every DMA.
import { EREMOTEIO } from './protocol.js';

export const FOLL_WRITE = 0x01;
export const FOLL_PIN = 0x40000;
export const FOLL_LONGTERM = 0x100;
export const FOLL_PCI_P2PDMA = 0x200000;

/** The gup flags bio_iov_iter_get_pages passes for one direct I/O. */
export function dioGupFlags(isRead: boolean, queueSupportsP2p: boolean): number {
  return FOLL_PIN | (isRead ? FOLL_WRITE : 0) | (queueSupportsP2p ? FOLL_PCI_P2PDMA : 0);
}

/** The largest pfn space a pin table holds (2^24 pages = 64 GiB). */
export const PIN_TABLE_PAGES_LIMIT = 1 << 24;

export class PinTable {
  /** Per pfn: FOLL_PIN pins held by direct I/O (GUP_PIN_COUNTING_BIAS units folded to 1). */
  readonly pinCount: Uint32Array;
  /** Per pfn: the page is PCI P2PDMA memory (is_pci_p2pdma_page). */
  readonly p2p: Uint8Array;
  /** Per pfn: dirtied by a direct read (set_page_dirty_lock), for writeback to clean. */
  readonly dirty: Uint8Array;
  pinsHeld = 0;
  pinsHeldMax = 0;
  /** ∫ pinsHeld dt in page·ns, for the time-weighted mean. */
  pinPageNs = 0;
  private lastChangeNs = 0;

  constructor(pages: number) {
    if (!Number.isInteger(pages) || pages < 1 || pages > PIN_TABLE_PAGES_LIMIT) {
      throw new RangeError(`pin table of ${pages} pages: must be an integer in [1, ${PIN_TABLE_PAGES_LIMIT}]`);
    }
    this.pinCount = new Uint32Array(pages);
    this.p2p = new Uint8Array(pages);
    this.dirty = new Uint8Array(pages);
  }

  isDmaPinned(pfn: number): boolean {
    return this.pinCount[pfn]! > 0;
  }

  private account(nowNs: number): void {
    this.pinPageNs += this.pinsHeld * (nowNs - this.lastChangeNs);
    this.lastChangeNs = nowNs;
  }

  /**
   * pin_user_pages_fast for the I/O's pages; all or nothing. A P2PDMA page without
   * FOLL_PCI_P2PDMA fails the whole call with -EREMOTEIO (try_grab_folio, v6.2+).
   */
  pin(pfns: ArrayLike<number>, gupFlags: number, nowNs: number): number {
    if ((gupFlags & FOLL_PIN) === 0) throw new Error('direct I/O pins with FOLL_PIN');
    for (let i = 0; i < pfns.length; i++) {
      if (this.p2p[pfns[i]!] && (gupFlags & FOLL_PCI_P2PDMA) === 0) return -EREMOTEIO;
    }
    this.account(nowNs);
    for (let i = 0; i < pfns.length; i++) this.pinCount[pfns[i]!]!++;
    this.pinsHeld += pfns.length;
    if (this.pinsHeld > this.pinsHeldMax) this.pinsHeldMax = this.pinsHeld;
    return 0;
  }

  /** bio_release_pages(bio, mark_dirty): dirty the pages of a read, then unpin_user_page each. */
  release(pfns: ArrayLike<number>, markDirty: boolean, nowNs: number): void {
    this.account(nowNs);
    for (let i = 0; i < pfns.length; i++) {
      const pfn = pfns[i]!;
      if (this.pinCount[pfn] === 0) throw new Error(`unpin of pfn ${pfn}, which holds no pin`);
      if (markDirty && !this.p2p[pfn]) this.dirty[pfn] = 1;
      this.pinCount[pfn]!--;
    }
    this.pinsHeld -= pfns.length;
  }

  /** Mean pins held over [0, nowNs]. */
  timeWeightedPins(nowNs: number): number {
    this.account(nowNs);
    return nowNs > 0 ? this.pinPageNs / nowNs : 0;
  }
}
