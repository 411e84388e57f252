import { describe, expect, it } from 'vitest';
import type { TraceLine } from '@svmsim/runtime';
import { checkTrace, formatViolation, MAX_VIOLATIONS, newTraceChecker, type FinalPage, type Violation } from '@svmsim/kernel-mm/checker';

const PAGE = 0x1000;
const ANON = 0x10000; // private anonymous, 4 pages
const SHARED = 0x20000; // MAP_SHARED of file 1, 4 pages
const PRIV = 0x30000; // MAP_PRIVATE of file 1, 4 pages
const SHM = 0x40000; // shared anonymous (file -1), 1 page

/** One trace line: `{t, actor, ev, ...fields}`. */
function line(t: number, actor: string, ev: string, fields: Record<string, unknown> = {}): TraceLine {
  return { t, actor, ev, ...fields };
}

type Dma = { dev?: string; pid: number; addr: number; value: number; via?: 'pin' | 'mirror'; sub?: number | null; seq?: number | null;
  pte_ok?: boolean; writable?: boolean; pinned?: boolean; file?: number | null; idx?: number | null; pfn?: number };

/** Builds a trace, one line every 10 ns. */
class Tb {
  lines: TraceLine[] = [];
  t = 0;
  raw(actor: string, ev: string, fields: Record<string, unknown> = {}): this {
    this.lines.push(line((this.t += 10), actor, ev, fields));
    return this;
  }
  mm(ev: string, fields: Record<string, unknown>): this { return this.raw('mm', ev, fields); }
  fileCreate(file: number, pages: number): this { return this.mm('file_create', { file, pages }); }
  mmap(pid: number, start: number, pages: number, o: { shared?: boolean; file?: number | null; pgoff?: number } = {}): this {
    return this.mm('mmap', { pid, start, end: start + pages * PAGE, prot: 3, shared: o.shared ?? false, file: o.file ?? null, pgoff: o.pgoff ?? 0 });
  }
  munmap(pid: number, start: number, end: number): this { return this.mm('munmap', { pid, start, end }); }
  mprotect(pid: number, start: number, end: number, prot: number): this { return this.mm('mprotect', { pid, start, end, prot }); }
  zap(pid: number, start: number, end: number): this { return this.mm('zap', { pid, start, end }); }
  fork(pid: number, child: number): this { return this.mm('fork', { pid, child }); }
  exit(pid: number): this { return this.mm('process_exit', { pid }); }
  store(pid: number, addr: number, value: number): this { return this.mm('cpu_store', { pid, addr, pfn: 0x500 + pid, value }); }
  load(pid: number, addr: number, value: number): this { return this.mm('cpu_load', { pid, addr, pfn: 0x500 + pid, value }); }
  dma(ev: 'dma_write' | 'dma_read', d: Dma): this {
    return this.mm(ev, { dev: 'gpu0', pfn: 0x777, via: 'mirror', sub: null, seq: null, pte_ok: true, writable: true, pinned: false, file: null, idx: null, ...d });
  }
  inv(inv: number, pid: number, start: number, end: number, cur_seq: number, subs: number[]): this {
    return this.mm('invalidate_start', { inv, pid, start, end, event: 'MMU_NOTIFY_CLEAR', blockable: true, owner: null, cur_seq, subs });
  }
  ack(inv: number, sub: number, ok = true, dev = 'gpu0'): this { return this.mm('invalidate_ack', { inv, sub, dev, ok }); }
  invEnd(inv: number): this { return this.mm('invalidate_end', { inv }); }
  devWrite(dev: string, pid: number, addr: number, value: number): this { return this.raw(dev, 'dev_write', { pid, addr, dev_pfn: 0x9000, value }); }
}

/** pid 1 with the four mappings of the file header. */
function setup(): Tb {
  return new Tb().fileCreate(1, 4).mmap(1, ANON, 4).mmap(1, SHARED, 4, { shared: true, file: 1 }).mmap(1, PRIV, 4, { file: 1 })
    .mmap(1, SHM, 1, { shared: true, file: -1 });
}

const kinds = (vs: Violation[]): string[] => vs.map((v) => v.kind);

describe('checkTrace — a clean trace exercising every event', () => {
  const tb = setup()
    .raw('app', 'send', { to: 'mm', pid: 1, addr: ANON, value: 666 }) // not an oracle event: ignored
    .store(1, ANON, 11).load(1, ANON, 11).load(1, ANON + PAGE, 0)
    .store(1, SHARED, 21).load(1, PRIV, 21) // the private mapping aliases the file page
    .store(1, PRIV + PAGE, 31).load(1, SHARED + PAGE, 0).load(1, PRIV + PAGE, 31) // COW: the file is unchanged
    .store(1, SHM, 41)
    .mprotect(1, PRIV, PRIV + 2 * PAGE, 1)
    .fork(1, 2)
    .store(2, ANON, 12).load(1, ANON, 11).load(2, ANON, 12)
    .store(2, SHARED + 2 * PAGE, 23).load(1, SHARED + 2 * PAGE, 23).load(1, PRIV + 2 * PAGE, 23)
    .store(2, SHM, 42).load(1, SHM, 42)
    .load(2, PRIV + PAGE, 31) // fork copied the COW'd page
    .zap(1, PRIV + PAGE, PRIV + 2 * PAGE).load(1, PRIV + PAGE, 0).load(2, PRIV + PAGE, 31)
    .zap(1, ANON, ANON + PAGE).load(1, ANON, 0).load(2, ANON, 12)
    .zap(1, SHARED, SHARED + PAGE).load(1, SHARED, 21) // zap of a shared page changes nothing
    .munmap(2, ANON + PAGE, ANON + 2 * PAGE).store(2, ANON + 2 * PAGE, 13)
    .munmap(1, SHARED + PAGE, SHARED + 2 * PAGE).load(1, SHARED + 2 * PAGE, 23) // the right remnant keeps its pgoff
    .inv(1, 1, SHARED, SHARED + PAGE, 3, [5])
    .dma('dma_read', { pid: 1, addr: SHARED, value: 21, sub: 5, seq: 1 }) // old seq, but before the ack
    .ack(1, 5).invEnd(1)
    .dma('dma_write', { pid: 1, addr: SHARED, value: 99, sub: 5, seq: 3 }) // the new seq
    .dma('dma_read', { pid: 1, addr: SHARED + 3 * PAGE, value: 0, sub: 5, seq: 1 }) // old seq outside the invalidated range
    .load(2, SHARED, 99).load(2, PRIV, 99).load(1, PRIV, 99)
    .dma('dma_write', { dev: 'rdma0', pid: 1, addr: ANON + 2 * PAGE, value: 7, via: 'pin', pinned: true })
    .dma('dma_read', { dev: 'rdma0', pid: 1, addr: ANON + 2 * PAGE, value: 7, via: 'pin', pinned: true })
    .dma('dma_write', { dev: 'nvme0', pid: 1, addr: SHARED + 3 * PAGE, value: 5, via: 'pin', pinned: true, writable: false, file: 1, idx: 3 })
    .dma('dma_write', { dev: 'nvme0', pid: 1, addr: SHARED + 2 * PAGE, value: 77, via: 'pin', pte_ok: false, writable: false, pinned: true, file: 1, idx: 2 })
    .load(2, SHARED + 2 * PAGE, 77)
    .devWrite('gpu0', 2, ANON + 3 * PAGE, 55).load(2, ANON + 3 * PAGE, 55)
    .fork(2, 3).store(3, ANON, 1000).load(2, ANON, 12).exit(3);

  const dump: FinalPage[] = [
    { pid: 1, addr: ANON, value: 0 }, { pid: 1, addr: ANON + 2 * PAGE, value: 7 },
    { pid: 1, addr: SHARED, value: 99 }, { pid: 1, addr: SHARED + 2 * PAGE, value: 77 }, { pid: 1, addr: SHARED + 3 * PAGE, value: 5 },
    { pid: 1, addr: PRIV, value: 99 }, { pid: 1, addr: PRIV + PAGE, value: 0 }, { pid: 1, addr: PRIV + 2 * PAGE, value: 77 },
    { pid: 1, addr: PRIV + 3 * PAGE, value: 5 }, { pid: 1, addr: SHM, value: 42 },
    { pid: 2, addr: ANON, value: 12 }, { pid: 2, addr: ANON + 2 * PAGE, value: 13 }, { pid: 2, addr: ANON + 3 * PAGE, value: 55 },
    { pid: 2, addr: SHARED, value: 99 }, { pid: 2, addr: SHARED + PAGE, value: 0 }, { pid: 2, addr: SHARED + 2 * PAGE, value: 77 },
    { pid: 2, addr: SHARED + 3 * PAGE, value: 5 }, { pid: 2, addr: PRIV, value: 99 }, { pid: 2, addr: PRIV + PAGE, value: 31 },
    { pid: 2, addr: PRIV + 2 * PAGE, value: 77 }, { pid: 2, addr: PRIV + 3 * PAGE, value: 5 }, { pid: 2, addr: SHM, value: 42 },
  ];

  it('finds no violation and counts every kind of event', () => {
    const r = checkTrace(tb.lines, dump);
    expect(r.violations.map(formatViolation)).toEqual([]);
    expect(r.ok).toBe(true);
    expect(r.violationsDropped).toBe(0);
    expect(r.stats).toEqual({
      cpuStores: 9, cpuLoads: 23, dmaWrites: 4, dmaReads: 3, devWrites: 1, orphanPinnedWrites: 1,
      pinnedWritesToReadOnly: 1, invalidations: 1, acks: 1, pagesCompared: dump.length, p2pAccesses: 0,
      blockWritesAcked: 0, blockWritesFailed: 0, blockReads: 0,
    });
  });

  it('skips the final comparison without a dump', () => {
    const r = checkTrace(tb.lines, null);
    expect(r.ok).toBe(true);
    expect(r.stats.pagesCompared).toBe(0);
  });

  it('flags a dump missing a write, with a wrong value, or with a page outside the model', () => {
    const bad = dump.filter((p) => !(p.pid === 2 && p.addr === ANON + 3 * PAGE)); // the device-private write
    bad[0] = { pid: 1, addr: ANON, value: 11 }; // the zapped value came back
    bad.push({ pid: 3, addr: ANON, value: 1000 }); // pid 3 exited
    bad.push({ pid: 1, addr: SHARED + PAGE, value: 0 }); // unmapped by pid 1
    const r = checkTrace(tb.lines, bad);
    expect(kinds(r.violations).sort()).toEqual(['lost_write', 'lost_write', 'unexpected_page', 'unexpected_page']);
    const msgs = r.violations.map(formatViolation);
    expect(msgs).toContain('lost_write: final dump: pid 1 addr 0x10000 expected 0 (never written), found 11');
    expect(msgs.find((m) => m.includes('pid 2 addr 0x13000'))).toMatch(/expected 55 \(written by gpu0 \(device-private page 0x9000\) at t=\d+\), but the page is missing/);
    expect(msgs).toContain('unexpected_page: final dump: pid 3 addr 0x10000 (value 1000) lies outside every VMA of the model');
    expect(r.ok).toBe(false);
  });
});

describe('checkTrace — each rule fires', () => {
  it('stale_translation: a mirror access with a seq older than an acked invalidation covering it', () => {
    const tb = setup().inv(7, 1, ANON, ANON + 2 * PAGE, 4, [5]).ack(7, 5).invEnd(7)
      .dma('dma_write', { pid: 1, addr: ANON + PAGE, value: 3, sub: 5, seq: 2 });
    const r = checkTrace(tb.lines, null);
    expect(kinds(r.violations)).toEqual(['stale_translation']);
    expect(r.violations[0]).toMatchObject({ pid: 1, addr: ANON + PAGE, dev: 'gpu0', sub: 5, seq: 2, inv: 7, curSeq: 4, ackT: 70 });
    expect(r.violations[0].message).toBe(
      'gpu0 dma_write at t=90: pid 1 addr 0x11000 pfn 0x777 via mirror sub 5 seq 2 used a stale translation: invalidation #7 ' +
        '(MMU_NOTIFY_CLEAR [0x10000, 0x12000) cur_seq 4) was acked by gpu0 at t=70, before this access at t=90');
    // A stale write is not applied: the page still reads 0.
    expect(checkTrace([...tb.lines, line(100, 'mm', 'cpu_load', { pid: 1, addr: ANON + PAGE, pfn: 1, value: 0 })], null).violations).toHaveLength(1);
  });

  it('stale_translation: a peer-to-peer access to a dma-buf through a placement it has left', () => {
    const p2p = (t: number, gen: number, write: boolean) => line(t, 'gpu0', 'p2p_access', { dev: 'rdma0', exporter: 'gpu0', buf: 3, page: 5, gen, write, value: 9 });
    const move = (t: number, gen: number) => line(t, 'gpu0', 'dmabuf_move', { exporter: 'gpu0', buf: 3, gen });
    // Through the mapping of placement 1, before and after the move to 2; then through 2; another buffer is not concerned.
    const r = checkTrace([p2p(10, 1, true), move(20, 2), p2p(30, 1, false), p2p(40, 2, true), line(50, 'gpu0', 'p2p_access', { dev: 'rdma0', exporter: 'gpu0', buf: 4, page: 0, gen: 1, write: true, value: 1 })], null);
    expect(kinds(r.violations)).toEqual(['stale_translation']);
    expect(r.violations[0].message).toBe(
      'rdma0 p2p read at t=30 of dma-buf 3 of gpu0 page 5 through the mapping of placement 1: the buffer moved to placement 2 at t=20, after its importers answered move_notify');
    expect(r.stats.p2pAccesses).toBe(4);
  });

  it('stale_translation only after an ok ack by that sub, and only for covered addresses', () => {
    const access = (tb: Tb, sub = 5, addr = ANON): Tb => tb.dma('dma_read', { pid: 1, addr, value: 0, sub, seq: 2 });
    expect(checkTrace(access(setup().inv(7, 1, ANON, ANON + PAGE, 4, [5])).lines, null).ok).toBe(true); // no ack yet
    expect(checkTrace(access(setup().inv(7, 1, ANON, ANON + PAGE, 4, [5]).ack(7, 5, false)).lines, null).ok).toBe(true); // refused
    expect(checkTrace(access(setup().inv(7, 1, ANON, ANON + PAGE, 4, [5, 6]).ack(7, 6), 5).lines, null).ok).toBe(true); // other sub
    expect(checkTrace(access(setup().inv(7, 1, ANON, ANON + PAGE, 4, [5]).ack(7, 5), 5, ANON + PAGE).lines, null).ok).toBe(true);
    expect(checkTrace(access(setup().inv(7, 1, ANON, ANON + PAGE, 4, [5]).ack(7, 5), 6).lines, null).ok).toBe(true);
  });

  it('stale_translation keeps the highest cur_seq when acks arrive out of order', () => {
    const tb = setup().inv(1, 1, ANON, ANON + 2 * PAGE, 5, [5]).inv(2, 1, ANON + PAGE, ANON + 3 * PAGE, 3, [5]).ack(1, 5).ack(2, 5)
      .dma('dma_read', { pid: 1, addr: ANON + PAGE, value: 0, sub: 5, seq: 4 }) // covered by cur_seq 5: stale
      .dma('dma_read', { pid: 1, addr: ANON + 2 * PAGE, value: 0, sub: 5, seq: 4 }); // only cur_seq 3: fine
    const r = checkTrace(tb.lines, null);
    expect(kinds(r.violations)).toEqual(['stale_translation']);
    expect(r.violations[0]).toMatchObject({ addr: ANON + PAGE, inv: 1, curSeq: 5 });
  });

  it('a mirror access whose PTE no longer maps the frame: stale if an ack explains it, else outside_process', () => {
    const stale = setup().inv(7, 1, ANON, ANON + PAGE, 4, [5]).ack(7, 5)
      .dma('dma_read', { pid: 1, addr: ANON, value: 0, sub: 5, seq: 4, pte_ok: false });
    expect(kinds(checkTrace(stale.lines, null).violations)).toEqual(['stale_translation']);
    const outside = setup().dma('dma_read', { pid: 1, addr: ANON, value: 0, sub: 5, seq: 4, pte_ok: false });
    const r = checkTrace(outside.lines, null);
    expect(kinds(r.violations)).toEqual(['outside_process']);
    expect(r.violations[0].message).toBe(
      'gpu0 dma_read at t=60: pid 1 addr 0x10000 pfn 0x777 via mirror sub 5 seq 4: the PTE does not map this frame and no acked invalidation covers the address');
  });

  it('readonly_write: a mirror write through a read-only PTE', () => {
    const r = checkTrace(setup().dma('dma_write', { pid: 1, addr: PRIV, value: 8, sub: 5, seq: 2, writable: false }).lines, null);
    expect(kinds(r.violations)).toEqual(['readonly_write']);
    expect(r.violations[0].message).toBe('gpu0 dma_write at t=60: pid 1 addr 0x30000 pfn 0x777 via mirror sub 5 seq 2 wrote 8 through a read-only PTE');
    // A pinned write through a read-only PTE is only counted.
    const p = checkTrace(setup().dma('dma_write', { pid: 1, addr: SHARED, value: 8, via: 'pin', pinned: true, writable: false }).lines, null);
    expect(p.ok).toBe(true);
    expect(p.stats.pinnedWritesToReadOnly).toBe(1);
  });

  it('outside_process: a pin access to a frame neither mapped there nor pinned', () => {
    const tb = setup()
      .dma('dma_write', { dev: 'rdma0', pid: 1, addr: ANON, value: 1, via: 'pin', pte_ok: false, pinned: false, pfn: 0x42 })
      .dma('dma_read', { dev: 'rdma0', pid: 1, addr: ANON, value: 1, via: 'pin', pte_ok: false, pinned: false, pfn: 0x42 })
      .load(1, ANON, 0); // the write was not applied
    const r = checkTrace(tb.lines, null);
    expect(kinds(r.violations)).toEqual(['outside_process', 'outside_process']);
    expect(r.violations[0].message).toBe('rdma0 dma_write at t=60: pid 1 addr 0x10000 pfn 0x42 via pin: the frame is neither mapped at this address nor pinned');
  });

  it('bad_load and bad_read: a load or a DMA read returning an old value', () => {
    const tb = setup().store(1, ANON, 1).store(1, ANON, 2).load(1, ANON, 1)
      .dma('dma_read', { dev: 'rdma0', pid: 1, addr: ANON, value: 1, via: 'pin', pinned: true });
    const r = checkTrace(tb.lines, null);
    expect(kinds(r.violations)).toEqual(['bad_load', 'bad_read']);
    expect(r.violations[0].message).toBe('cpu load at t=80: pid 1 addr 0x10000 pfn 0x501 returned 1, expected 2 (written by cpu pid 1 at t=70)');
    expect(r.violations[1].message).toBe('rdma0 dma_read at t=90: pid 1 addr 0x10000 pfn 0x777 via pin returned 1, expected 2 (written by cpu pid 1 at t=70)');
  });

  it('unmapped_access: a store outside every VMA of the model', () => {
    const r = checkTrace(setup().munmap(1, ANON, ANON + PAGE).store(1, ANON, 1).load(1, ANON + PAGE, 0).lines, null);
    expect(kinds(r.violations)).toEqual(['unmapped_access']);
    expect(r.violations[0].message).toBe('cpu store at t=70: pid 1 addr 0x10000 is outside every VMA of the model');
  });

  it('lost_write: a COW that wrote into the parent (the child store changed the parent page)', () => {
    const tb = setup().store(1, ANON, 11).fork(1, 2).store(2, ANON, 12);
    const good = checkTrace(tb.lines, [{ pid: 1, addr: ANON, value: 11 }, { pid: 2, addr: ANON, value: 12 }]);
    expect(good.ok).toBe(true);
    const r = checkTrace(tb.lines, [{ pid: 1, addr: ANON, value: 12 }, { pid: 2, addr: ANON, value: 12 }]);
    expect(kinds(r.violations)).toEqual(['lost_write']);
    expect(r.violations[0].message).toBe('final dump: pid 1 addr 0x10000 expected 11 (written by cpu pid 1 at t=60), found 12');
  });

  it('a store through MAP_PRIVATE does not change the file; one through MAP_SHARED is seen by another process', () => {
    const two = (): Tb => setup().mmap(2, SHARED, 4, { shared: true, file: 1 });
    expect(checkTrace(two().store(1, PRIV, 5).load(2, SHARED, 0).lines, null).ok).toBe(true);
    const leak = checkTrace(two().store(1, PRIV, 5).load(2, SHARED, 5).lines, null);
    expect(kinds(leak.violations)).toEqual(['bad_load']);
    expect(leak.violations[0]).toMatchObject({ pid: 2, addr: SHARED, expected: 0, found: 5 });
    expect(checkTrace(two().store(1, SHARED, 9).load(2, SHARED, 9).lines, null).ok).toBe(true);
    expect(kinds(checkTrace(two().store(1, SHARED, 9).load(2, SHARED, 0).lines, null).violations)).toEqual(['bad_load']);
    // Before its first write, a private mapping follows the file; a shared anonymous mapping is another file.
    expect(checkTrace(two().store(2, SHARED, 9).load(1, PRIV, 9).load(1, SHM, 0).lines, null).ok).toBe(true);
  });

  it('fork copies values: a parent store after fork is not visible in the child', () => {
    const tb = setup().store(1, ANON, 1).fork(1, 2).store(1, ANON, 2);
    expect(checkTrace(tb.lines.concat(line(999, 'mm', 'cpu_load', { pid: 2, addr: ANON, pfn: 1, value: 1 })), null).ok).toBe(true);
    const r = checkTrace(tb.lines.concat(line(999, 'mm', 'cpu_load', { pid: 2, addr: ANON, pfn: 1, value: 2 })), null);
    expect(kinds(r.violations)).toEqual(['bad_load']);
    expect(r.violations[0]).toMatchObject({ pid: 2, expected: 1, found: 2 });
  });

  it('an orphan pinned write to a file page is applied to the file, one to an anonymous frame is not', () => {
    const tb = setup().store(1, SHARED + PAGE, 4).store(1, ANON, 6)
      .dma('dma_write', { dev: 'nvme0', pid: 1, addr: SHARED + PAGE, value: 50, via: 'pin', pte_ok: false, writable: false, pinned: true, file: 1, idx: 1 })
      .dma('dma_write', { dev: 'nvme0', pid: 1, addr: ANON, value: 60, via: 'pin', pte_ok: false, writable: false, pinned: true });
    const r = checkTrace(tb.lines.concat(
      line(900, 'mm', 'cpu_load', { pid: 1, addr: PRIV + PAGE, pfn: 1, value: 50 }),
      line(901, 'mm', 'cpu_load', { pid: 1, addr: ANON, pfn: 1, value: 6 }),
    ), [{ pid: 1, addr: ANON, value: 6 }, { pid: 1, addr: SHARED + PAGE, value: 50 }, { pid: 1, addr: PRIV + PAGE, value: 50 }]);
    expect(r.violations).toEqual([]);
    expect(r.stats.orphanPinnedWrites).toBe(2);
    const lost = checkTrace(tb.lines, [{ pid: 1, addr: ANON, value: 6 }, { pid: 1, addr: SHARED + PAGE, value: 4 }]);
    expect(lost.violations.map(formatViolation)).toEqual([
      'lost_write: final dump: pid 1 addr 0x21000 expected 50 (written by nvme0 (orphan pinned write) at t=80), found 4',
      'lost_write: final dump: pid 1 addr 0x31000 expected 50 (written by nvme0 (orphan pinned write) at t=80), but the page is missing from the dump',
    ]);
  });

  it('caps the stored violations at MAX_VIOLATIONS and counts the rest', () => {
    const tb = setup();
    for (let i = 0; i < MAX_VIOLATIONS + 5; i++) tb.load(1, ANON, 1);
    const r = checkTrace(tb.lines, null);
    expect(r.violations).toHaveLength(MAX_VIOLATIONS);
    expect(r.violationsDropped).toBe(5);
    expect(r.ok).toBe(false);
  });
});

describe('checkTrace — scale', () => {
  it('checks a million lines in a few seconds', () => {
    const lines: TraceLine[] = [];
    let t = 0;
    const L = (ev: string, f: Record<string, unknown>): void => { lines.push({ t: ++t, actor: 'mm', ev, ...f }); };
    const PAGES = 1 << 16, BASE = 2 ** 45; // addresses above 2^32
    L('mmap', { pid: 1, start: BASE, end: BASE + PAGES * PAGE, prot: 3, shared: false, file: null, pgoff: 0 });
    const val = new Float64Array(PAGES);
    let seq = 0, inv = 0;
    for (let i = 0; lines.length < 1_000_000; i++) {
      const pg = (i * 7919) % PAGES, addr = BASE + pg * PAGE;
      L('cpu_store', { pid: 1, addr, pfn: pg, value: (val[pg] = i) });
      L('cpu_load', { pid: 1, addr, pfn: pg, value: val[pg] });
      if (i % 64 === 0) {
        seq += 2; inv++;
        L('invalidate_start', { inv, pid: 1, start: addr, end: addr + 4 * PAGE, event: 'MMU_NOTIFY_CLEAR', blockable: true, owner: null, cur_seq: seq, subs: [1] });
        L('invalidate_ack', { inv, sub: 1, dev: 'gpu0', ok: true });
        L('invalidate_end', { inv });
        L('dma_read', { dev: 'gpu0', pid: 1, addr, pfn: pg, value: val[pg], via: 'mirror', sub: 1, seq, pte_ok: true, writable: true, pinned: false, file: null, idx: null });
      }
    }
    const start = performance.now();
    const r = checkTrace(lines, null);
    const ms = performance.now() - start;
    expect(r.violations).toEqual([]);
    expect(r.stats.acks).toBeGreaterThan(5_000);
    expect(ms).toBeLessThan(10_000);
  });
});

describe('pin_leak (pin-ledger.ts)', () => {
  const pin = (t: number, by: string, pfns: number[]) => ({ t, actor: 'mm', ev: 'pin_user_pages', by, pid: 1, start: 0, nr_pages: pfns.length, gup_flags: 0, pfns });
  const unpin = (t: number, by: string, pfns: number[]) => ({ t, actor: 'mm', ev: 'unpin_user_pages', by, pfns, make_dirty: false });
  const run = (lines: object[], buffersFreed: boolean) => {
    const c = newTraceChecker();
    lines.forEach((l, i) => c.line(l as never, i));
    return c.finish([], undefined, { buffersFreed });
  };

  it('a pin never given back after the run freed every buffer is a violation naming the taker, with the pin line as proof', () => {
    const r = run([pin(10, 'gpu0', [5, 6]), pin(20, 'rdma0', [7]), unpin(30, 'rdma0', [7])], true);
    expect(r.violations.map((v) => v.kind)).toEqual(['pin_leak']);
    expect(r.violations[0].actor).toBe('gpu0');
    expect(r.violations[0].message).toMatch(/gpu0 still holds 2 frames pinned \(FOLL_PIN\).*since t=10/);
    expect(r.violations[0].lines).toEqual([0]);
  });

  it('no violation when every pin came back, or when the run did not free its buffers before the dump', () => {
    expect(run([pin(10, 'gpu0', [5]), unpin(20, 'gpu0', [5])], true).violations).toEqual([]);
    expect(run([pin(10, 'gpu0', [5])], false).violations).toEqual([]);
  });
});
