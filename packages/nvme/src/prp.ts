// Building a command's data pointer: PRP entries (nvme_pci_setup_prps) or an SGL
// (nvme_pci_setup_sgls), and the choice between them (nvme_pci_use_sgls), as in
// drivers/nvme/host/pci.c of v6.6. Only the shape is modelled (how many entries, how many list
// pages the driver allocates, whether the payload is valid), not the bytes of the lists.
import { NVME_CTRL_PAGE_SIZE, type DmaSegment } from './protocol.js';

/** PRP entries in one list page (NVME_CTRL_PAGE_SIZE >> 3); the last one chains to the next page. */
export const PRPS_PER_PAGE = NVME_CTRL_PAGE_SIZE >> 3;
/** SGL descriptors (16 bytes each) in one list page. */
export const SGES_PER_PAGE = NVME_CTRL_PAGE_SIZE / 16;
/** sgl_threshold module parameter default (SZ_32K): below this average segment size, PRPs. */
export const SGL_THRESHOLD_BYTES = 32 * 1024;
/** NVME_MAX_SEGS (v6.6): segments blk-mq hands one request at most. */
export const NVME_MAX_SEGS = 128;

export interface DataPointer {
  readonly kind: 'prp' | 'sgl';
  /** PRP: entries in PRP1/PRP2 plus the list; SGL: data descriptors. */
  readonly entries: number;
  /** List pages allocated from the dma pools (0 when the command holds everything inline). */
  readonly listPages: number;
}

/** nvme_pci_use_sgls: the controller supports SGLs, it is an I/O queue, and segments are large on average. */
export function nvme_pci_use_sgls(sglSupported: boolean, qid: number, payloadBytes: number, nseg: number): boolean {
  if (!sglSupported || qid === 0 || nseg === 0) return false;
  const avgSegSize = Math.ceil(payloadBytes / nseg);
  return avgSegSize >= SGL_THRESHOLD_BYTES;
}

/**
 * nvme_pci_setup_prps: PRP1 covers the first segment up to its page end, PRP2 the next page or a
 * list of the rest, one entry per controller page, chaining list pages every PRPS_PER_PAGE entries.
 * Every segment but the first must start on a page, and every one but the last end on one
 * (the queue's virt_boundary_mask guarantees it; if not, "Invalid SGL for payload" → BLK_STS_IOERR).
 */
export function nvme_pci_setup_prps(segs: readonly DmaSegment[]): DataPointer | 'BLK_STS_IOERR' {
  const mask = NVME_CTRL_PAGE_SIZE - 1;
  for (let i = 0; i < segs.length; i++) {
    const s = segs[i]!;
    if (s.len <= 0) return 'BLK_STS_IOERR';
    if (i > 0 && (s.addr & mask) !== 0) return 'BLK_STS_IOERR';
    if (i < segs.length - 1 && ((s.addr + s.len) & mask) !== 0) return 'BLK_STS_IOERR';
  }
  if (segs.length === 0) return 'BLK_STS_IOERR';
  let length = segs.reduce((n, s) => n + s.len, 0);
  const offset = segs[0]!.addr & mask;
  length -= NVME_CTRL_PAGE_SIZE - offset;
  if (length <= 0) return { kind: 'prp', entries: 1, listPages: 0 };
  if (length <= NVME_CTRL_PAGE_SIZE) return { kind: 'prp', entries: 2, listPages: 0 };
  const nprps = Math.ceil(length / NVME_CTRL_PAGE_SIZE);
  // Each full list page gives up its last slot to the chain pointer.
  const listPages = nprps <= PRPS_PER_PAGE ? 1 : 1 + Math.ceil((nprps - PRPS_PER_PAGE) / (PRPS_PER_PAGE - 1));
  return { kind: 'prp', entries: 1 + nprps, listPages };
}

/** nvme_pci_setup_sgls: one data descriptor inline for one segment, else a segment list. */
export function nvme_pci_setup_sgls(segs: readonly DmaSegment[]): DataPointer {
  if (segs.length === 1) return { kind: 'sgl', entries: 1, listPages: 0 };
  return { kind: 'sgl', entries: segs.length, listPages: Math.ceil(segs.length / SGES_PER_PAGE) };
}

/** nvme_map_data's choice and build. */
export function nvme_map_data(segs: readonly DmaSegment[], sglSupported: boolean, qid: number): DataPointer | 'BLK_STS_IOERR' {
  if (segs.length > NVME_MAX_SEGS) return 'BLK_STS_IOERR';
  const bytes = segs.reduce((n, s) => n + s.len, 0);
  return nvme_pci_use_sgls(sglSupported, qid, bytes, segs.length) ? nvme_pci_setup_sgls(segs) : nvme_pci_setup_prps(segs);
}
