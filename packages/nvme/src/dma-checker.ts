// The checker's NVMe rules: a device DMA touches only pinned host pages (a page unpinned before
// its DMA ended may have been migrated, reclaimed or reused: a stale translation), and every
// write the host was told succeeded is on the media while every failed one is reported as
// failed. Counts, not text, are kept per event; the first violations keep a description.
import type { PinTable } from './direct-io.js';

export const CHECKER_KEPT_VIOLATIONS = 100;

export class DmaChecker {
  dmaPages = 0;
  violations = 0;
  readonly firstViolations: string[] = [];
  writesAcked = 0;
  writesFailed = 0;

  /** A DMA of the device's into (`write`) or out of (`read`) host pages at `nowNs`. */
  dma(pins: PinTable, pfns: ArrayLike<number>, nowNs: number, dir: 'read' | 'write'): void {
    for (let i = 0; i < pfns.length; i++) {
      const pfn = pfns[i]!;
      this.dmaPages++;
      if (pins.pinCount[pfn] === 0) {
        this.violations++;
        if (this.firstViolations.length < CHECKER_KEPT_VIOLATIONS) this.firstViolations.push(`t=${nowNs}ns: NVMe DMA ${dir} of pfn ${pfn}, which holds no pin (stale translation)`);
      }
    }
  }

  /** A write's final status, as the caller saw it. */
  writeEnded(_nsid: number, _slba: number, _nlb: number, ret: number): void {
    if (ret === 0) this.writesAcked++;
    else this.writesFailed++;
  }
}
