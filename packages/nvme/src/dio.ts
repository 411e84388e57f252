// iomap_dio_rw for an O_DIRECT read or write of whole pages (fs/iomap/direct-io.c, v6.6):
// pin the user pages (bio_iov_iter_get_pages), build one bio → one NVMe command, and at its
// end release the pins (bio_release_pages, dirtying for a read) and report the result. A reset
// that requeues the command keeps the pins; only a final completion drops them.
// The `unsafe` twin releases the pins right after submission, before the DMA: the checker must
// catch the DMA that then touches an unpinned page.
import type { NvmeController } from './controller.js';
import { DmaChecker } from './dma-checker.js';
import { dioGupFlags, type PinTable } from './direct-io.js';
import { nvme_cmd_read, nvme_cmd_write, NVME_CTRL_PAGE_SIZE, type DmaSegment, type NvmeCompletion } from './protocol.js';

export interface DioHost {
  readonly ctrl: NvmeController;
  readonly pins: PinTable;
  /** Per pfn: the page's content token in host memory. */
  readonly memory: Float64Array;
  readonly checker: DmaChecker;
  /** The block queue has BLK_FEAT_PCI_P2PDMA (the NVMe controller supports P2P). */
  readonly queueSupportsP2p: boolean;
  readonly unsafe: boolean;
  /**
   * dma_map_sgtable's P2P check for the pages (pci_p2pdma_map_type against this controller):
   * 0, or -EREMOTEIO when a page is P2P memory the path cannot reach (nvme_map_data →
   * BLK_STS_TARGET). Absent: no P2P pages.
   */
  readonly mapP2p?: (pfns: Uint32Array) => number;
}

/** The bio's segments: contiguous pfns merge into one segment (bio_add_page / bvec merging). */
export function segmentsOf(pfns: ArrayLike<number>): DmaSegment[] {
  const segs: DmaSegment[] = [];
  for (let i = 0; i < pfns.length; i++) {
    const addr = pfns[i]! * NVME_CTRL_PAGE_SIZE;
    const last = segs[segs.length - 1];
    if (last && last.addr + last.len === addr) segs[segs.length - 1] = { addr: last.addr, len: last.len + NVME_CTRL_PAGE_SIZE };
    else segs.push({ addr, len: NVME_CTRL_PAGE_SIZE });
  }
  return segs;
}

/** An O_DIRECT read (isRead) or write of `pfns.length` blocks at `slba`; `done` gets 0 or -errno. */
export function iomap_dio_rw(host: DioHost, isRead: boolean, nsid: number, slba: number, pfns: Uint32Array, done: (ret: number) => void): void {
  const { ctrl, pins, memory, checker } = host;
  const ret = pins.pin(pfns, dioGupFlags(isRead, host.queueSupportsP2p), ctrl.now);
  if (ret < 0) return done(ret);
  const mapRet = host.mapP2p ? host.mapP2p(pfns) : 0;
  if (mapRet < 0) {
    pins.release(pfns, false, ctrl.now);
    return done(mapRet);
  }
  let released = false;
  const release = (): void => {
    if (released) return;
    released = true;
    pins.release(pfns, isRead, ctrl.now);
  };
  const onEnd = (c: NvmeCompletion): void => {
    release();
    if (!isRead) checker.writeEnded(nsid, slba, pfns.length, c.ret);
    done(c.ret);
  };
  ctrl.submit(1, { opcode: isRead ? nvme_cmd_read : nvme_cmd_write, nsid, slba, nlb: pfns.length }, {
    segs: segmentsOf(pfns),
    fetch: (nowNs) => {
      checker.dma(pins, pfns, nowNs, 'read');
      return Float64Array.from(pfns, (pfn) => memory[pfn]!);
    },
    deposit: (nowNs, data) => {
      checker.dma(pins, pfns, nowNs, 'write');
      for (let i = 0; i < pfns.length; i++) memory[pfns[i]!] = data[i]!;
    },
  }, onEnd);
  if (host.unsafe) release();
}
