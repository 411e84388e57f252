// The checker's NVMe rules (kernel-mm/src/checker.ts) on hand-made traces: a bio's DMA must find
// its frame pinned (unpinned_dma), the zero page excepted; a block read must return the last
// acknowledged write of the block (lost_block_write), and a failed write is neither acknowledged
// nor lost.
import { describe, expect, it } from 'vitest';
import type { TraceLine } from '@svmsim/runtime';
import { checkTrace } from '@svmsim/kernel-mm/checker';

const mmap = { t: 0, actor: 'mm', ev: 'mmap', pid: 1, start: 0x1000000, end: 0x1004000, prot: 3, shared: false, file: null, pgoff: 0 };
const dma = (over: Record<string, unknown>) => ({
  t: 10, actor: 'mm', ev: 'dma_write', dev: 'nvme0', pid: 1, addr: 0x1000000, pfn: 5, value: 7, via: 'pin', sub: null, seq: null,
  pte_ok: true, writable: true, pinned: true, file: null, idx: null, bio: true, ...over,
});
const blk = (ev: 'blk_write' | 'blk_read', slba: number, values: number[], ret = 0, t = 20) =>
  ({ t, actor: 'nvme0', ev, dev: 'nvme0', nsid: 2, slba, nlb: values.length, ret, attempts: 1, ...(ret === 0 ? { values } : {}) });
const kinds = (lines: object[]) => checkTrace(lines as TraceLine[], null).violations.map((v) => v.kind);

describe('unpinned_dma', () => {
  it('a bio DMA to a pinned frame is fine; to an unpinned one is a violation, whichever direction', () => {
    expect(kinds([mmap, dma({})])).toEqual([]);
    expect(kinds([mmap, dma({ pinned: false })])).toEqual(['unpinned_dma']);
    expect(kinds([mmap, dma({ ev: 'dma_read', pinned: false, value: 0 })])).toEqual(['unpinned_dma']);
  });
  it('applies to bios only (a device DMA via pin without `bio` keeps the older rules), and not to the zero page', () => {
    expect(kinds([mmap, dma({ pinned: false, bio: undefined })])).toEqual([]);
    expect(kinds([mmap, dma({ ev: 'dma_read', pinned: false, pfn: -1, value: 0 })])).toEqual([]);
  });
});

describe('lost_block_write', () => {
  it('a read returning the acknowledged words is fine; other words are a lost write', () => {
    expect(kinds([blk('blk_write', 4, [1, 2]), blk('blk_read', 4, [1, 2], 0, 30)])).toEqual([]);
    expect(kinds([blk('blk_write', 4, [1, 2]), blk('blk_read', 5, [9], 0, 30)])).toEqual(['lost_block_write']);
    expect(kinds([blk('blk_read', 8, [3])])).toEqual(['lost_block_write']); // never written: reads 0
  });
  it('a failed write leaves its blocks unknown: old or new words are both accepted until the next acknowledged write', () => {
    const failed = blk('blk_write', 4, [5, 6], -5);
    const r = checkTrace([blk('blk_write', 4, [1, 2]), failed, blk('blk_read', 4, [1, 6], 0, 30)] as unknown as TraceLine[], null);
    expect(r.violations).toEqual([]);
    expect(r.stats.blockWritesAcked).toBe(1);
    expect(r.stats.blockWritesFailed).toBe(1);
    expect(kinds([failed, blk('blk_write', 4, [8]), blk('blk_read', 4, [5], 0, 30)])).toEqual(['lost_block_write']);
  });
});
