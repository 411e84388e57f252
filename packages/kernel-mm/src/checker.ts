// The data oracle (DESIGN.md §5): from a trace and mm's final memory dump it proves that no
// acknowledged write was lost, that no device used a translation whose invalidation had been acked,
// and that no DMA touched a frame outside its process or wrote through a read-only mirror.
//
// It is independent of mm: it never imports mm's page tables, VMAs or frames. It rebuilds its own
// model of every process's memory from the oracle events (oracle-events.ts) alone. mm emits those
// at the moment a change takes effect, so the order of the lines is the order in which memory
// changed, and the model knows the exact word every page must hold at every line.
//
// Identities (what a "page" is, so that a value follows it through COW, migration, swap…):
//   - a private anonymous page: (pid, page address); `fork` copies it to the child, `zap`
//     (MADV_DONTNEED) makes it read 0 again;
//   - a file page: (file, page index); MAP_SHARED mappings alias it; a shared anonymous mapping is a
//     file of its own (negative `file` id), shared across fork;
//   - a MAP_PRIVATE file mapping aliases the file page until that pid first writes the page (cpu_store
//     or an applied dma_write / dev_write); from then on the page is the pid's own (COW). `zap`
//     reverts it to the file.
// Page index = pgoff + (addr - vma.start) / PAGE_SIZE. Never-written pages read 0. A write replaces
// the whole word. munmap removes [start, end) (splitting VMAs); mprotect has no effect on content;
// process_exit drops the pid.
//
// Rules (each violation names the device/pid/address/frame/time):
//   stale_translation  a mirror access (sub, seq) after (trace order) an ok ack by that sub of an
//                      invalidation covering the address with cur_seq > seq; or a mirror access whose
//                      PTE no longer maps the frame (pte_ok=false) where such an ack exists; or a
//                      peer-to-peer access to a dma-buf through a mapping of a placement the buffer
//                      had already left (a dmabuf_move to a later generation came before it);
//   readonly_write     a mirror dma_write through a valid PTE that does not allow writes;
//   outside_process    a pin access to a frame neither mapped at that address nor pinned, or a mirror
//                      access with pte_ok=false that no acked invalidation explains;
//   bad_load/bad_read  a cpu_load / a valid (pte_ok, not stale) dma_read returning another value than
//                      the model's;
//   unmapped_access    a cpu access or valid DMA at an address outside every VMA of the model;
//   lost_write         at the end, a dumped page whose value differs from the model's, or a page the
//                      model knows was written (non-zero) inside a live VMA missing from the dump;
//   unexpected_page    a dumped page outside every VMA of the model;
//   unpinned_dma       a bio's DMA (direct I/O: `bio`) to or from a frame that holds no pin at that
//                      moment: the bio released its pages before its DMA (bio_release_pages too
//                      early), so the frame may have been migrated, reclaimed or reused;
//   lost_block_write   a block read returning other words than the last acknowledged write of the
//                      block (blk_read / blk_write of a block device's media). A write that failed
//                      (ret < 0, reported to its caller as failed) is neither acknowledged nor lost:
//                      its blocks may hold the old or the new words until the next acknowledged write;
//   pin_leak           at the end of a run that freed every device buffer before its dump
//                      (finish's buffersFreed), a pin or gup reference a taker never gave back
//                      (pin-ledger.ts).
// Not violations, counted: a pin write to a frame no longer mapped but still pinned (the known gup
// coherency problem; applied to the file page if the frame is a page-cache page), and a pin write
// through a read-only PTE (gup vs writeback).
import type { TraceLine } from '@svmsim/runtime';
import type { EvDevWrite, EvDmaAccess, EvFork, EvInvalidateAck, EvInvalidateStart, EvMmap, EvMremap, EvCpuLoad, OracleEvents, EvZap, EvCow, EvDmabufMove, EvP2pAccess, EvBlk } from './oracle-events.js';
import { PinLedger } from './pin-ledger.js';
import { lastAtOrBefore, paint, pieceAt } from './interval-pieces.js';
import { PAGE_SIZE, ZERO_PFN } from './protocol.js';

export interface FinalPage { pid: number; addr: number; value: number }

export type ViolationKind =
  | 'stale_translation' | 'readonly_write' | 'outside_process' | 'bad_load' | 'bad_read'
  | 'unmapped_access' | 'lost_write' | 'unexpected_page' | 'unpinned_dma' | 'lost_block_write' | 'pin_leak';

export interface Violation {
  kind: ViolationKind;
  t: number;
  actor: string;
  message: string;
  /** The trace lines that prove it, by index in the trace (the access, the invalidation, its ack, the write expected…). */
  lines: number[];
  pid?: number;
  addr?: number;
  pfn?: number;
  dev?: string;
  [detail: string]: unknown;
}

export interface CheckStats {
  cpuStores: number; cpuLoads: number; dmaWrites: number; dmaReads: number; devWrites: number;
  orphanPinnedWrites: number; pinnedWritesToReadOnly: number; invalidations: number; acks: number;
  pagesCompared: number; p2pAccesses: number;
  /** Block writes acknowledged / failed, and block reads checked (blk_write, blk_read). */
  blockWritesAcked?: number; blockWritesFailed?: number; blockReads?: number;
}

export interface CheckReport { violations: Violation[]; violationsDropped: number; stats: CheckStats; ok: boolean }

export const MAX_VIOLATIONS = 1000;

export function formatViolation(v: Violation): string {
  return `${v.kind}: ${v.message}`;
}

const ORACLE_EVENTS = new Set<string>([
  'cow',
  'mmap', 'munmap', 'mremap', 'mprotect', 'zap', 'fork', 'process_exit', 'file_create', 'cpu_store', 'cpu_load',
  'dma_write', 'dma_read', 'invalidate_start', 'invalidate_ack', 'invalidate_end', 'dev_write',
  'dmabuf_move', 'p2p_access', 'blk_read', 'blk_write',
] satisfies (keyof OracleEvents)[]);

const PIN_EVENTS = new Set<string>(PinLedger.events);

const hex = (n: number): string => `0x${n.toString(16)}`;
const pageOf = (addr: number): number => Math.floor(addr / PAGE_SIZE); // addresses exceed 2^32: no bitwise ops

/** A written word, who wrote it, and the index of the trace line that wrote it. Immutable: a write replaces the object, so fork can share them. */
interface Val { value: number; by: string; t: number; line: number }
const ZERO: Val = { value: 0, by: 'nobody (never written)', t: 0, line: -1 };
/** A block after a failed write: the old words or the new ones. */
const UNKNOWN: Val = { value: NaN, by: 'a failed write', t: 0, line: -1 };
const showVal = (v: Val): string => (v === ZERO ? '0 (never written)' : `${v.value} (written by ${v.by} at t=${v.t})`);

/** A VMA in pages: [start, end) page numbers; `file` is null for private anonymous memory. */
interface Vma { start: number; end: number; shared: boolean; file: number | null; pgoff: number }

interface Proc {
  vmas: Vma[]; // sorted by start, disjoint
  own: Map<number, Val>; // page number → value: private anon pages and COW'd private file pages
}

interface InvInfo { inv: number; pid: number; start: number; end: number; event: string; curSeq: number; line: number }
/** A piece of a subscription's "acked invalidation" map: the acked invalidation with the highest cur_seq over [start, end). */
interface AckPiece { start: number; end: number; inv: InvInfo; ackT: number; ackDev: string; ackLine: number }

/** Paint [s, e) with an acked invalidation, keeping the higher cur_seq where they overlap. */
function paintAck(pieces: AckPiece[], s: number, e: number, p: Omit<AckPiece, 'start' | 'end'>): void {
  paint(pieces, s, e, p, (q, n) => q.inv.curSeq >= n.inv.curSeq, (x, y) => x.inv === y.inv && x.ackLine === y.ackLine);
}

/** The checker over a whole trace in memory (tests; `svmsim check` streams with TraceChecker). */
export function checkTrace(lines: TraceLine[], finalPages: FinalPage[] | null): CheckReport {
  const c = newTraceChecker();
  lines.forEach((l, i) => c.line(l, i));
  return c.finish(finalPages);
}

/**
 * The checker fed line by line, in trace order (`index` = the line's place in the trace, for the
 * violations' proof), then finished with mm's final dump. Its memory is the model's: the pages,
 * VMAs and acked-invalidation maps of the processes, not the trace.
 */
export interface TraceChecker {
  line(l: TraceLine, index: number): void;
  /** `buffersFreed`: the run freed every device buffer before the dump, so every pin must be back (pin_leak). */
  finish(finalPages: FinalPage[] | null, dumpLine?: number, opts?: { buffersFreed?: boolean }): CheckReport;
}

export function newTraceChecker(): TraceChecker {
  const stats: CheckStats = {
    cpuStores: 0, cpuLoads: 0, dmaWrites: 0, dmaReads: 0, devWrites: 0, orphanPinnedWrites: 0,
    pinnedWritesToReadOnly: 0, invalidations: 0, acks: 0, pagesCompared: 0, p2pAccesses: 0,
    blockWritesAcked: 0, blockWritesFailed: 0, blockReads: 0,
  };
  /** "dev/nsid" → block → the last acknowledged write, or UNKNOWN after a failed one. */
  const media = new Map<string, Map<number, Val>>();
  const violations: Violation[] = [];
  let dropped = 0;
  const pins = new PinLedger();
  const report = (v: Violation): void => {
    if (violations.length < MAX_VIOLATIONS) violations.push(v);
    else dropped++;
  };

  const procs = new Map<number, Proc>();
  const files = new Map<number, Map<number, Val>>(); // file → page index → value
  const invs = new Map<number, InvInfo>();
  const acked = new Map<number, AckPiece[]>(); // sub → acked invalidations by address
  const dmabufMoves = new Map<string, { gen: number; t: number; line: number }>(); // "exporter/buf" → its latest move

  const proc = (pid: number): Proc => {
    let p = procs.get(pid);
    if (!p) procs.set(pid, (p = { vmas: [], own: new Map() }));
    return p;
  };
  const fileMap = (file: number): Map<number, Val> => {
    let f = files.get(file);
    if (!f) files.set(file, (f = new Map()));
    return f;
  };
  const findVma = (p: Proc | undefined, page: number): Vma | undefined => {
    if (!p) return undefined;
    const i = lastAtOrBefore(p.vmas, page);
    return i >= 0 && p.vmas[i].end > page ? p.vmas[i] : undefined;
  };
  /** Forget the pid's own pages in [s, e) (pages), walking whichever is smaller. */
  const dropOwn = (p: Proc, s: number, e: number): void => {
    if (e - s <= p.own.size) for (let pg = s; pg < e; pg++) p.own.delete(pg);
    else for (const pg of p.own.keys()) if (pg >= s && pg < e) p.own.delete(pg);
  };
  const unmap = (p: Proc, s: number, e: number): void => {
    dropOwn(p, s, e);
    let i = lastAtOrBefore(p.vmas, s);
    if (i < 0 || p.vmas[i].end <= s) i++;
    const keep: Vma[] = [];
    let j = i;
    for (; j < p.vmas.length && p.vmas[j].start < e; j++) {
      const v = p.vmas[j];
      if (v.start < s) keep.push({ ...v, end: s });
      if (v.end > e) keep.push({ ...v, start: e, pgoff: v.pgoff + (e - v.start) });
    }
    p.vmas.splice(i, j - i, ...keep);
  };

  /** The value the model holds at (pid, addr), or undefined if no VMA maps it. */
  const read = (pid: number, addr: number): Val | undefined => {
    const p = procs.get(pid), pg = pageOf(addr), v = findVma(p, pg);
    if (!p || !v) return undefined;
    if (v.file === null) return p.own.get(pg) ?? ZERO;
    const fromFile = (): Val => files.get(v.file!)?.get(v.pgoff + pg - v.start) ?? ZERO;
    return v.shared ? fromFile() : (p.own.get(pg) ?? fromFile());
  };
  /** Apply a write seen through (pid, addr); false if no VMA maps it. */
  const write = (pid: number, addr: number, val: Val): boolean => {
    const p = procs.get(pid), pg = pageOf(addr), v = findVma(p, pg);
    if (!p || !v) return false;
    if (v.shared && v.file !== null) fileMap(v.file).set(v.pgoff + pg - v.start, val);
    else p.own.set(pg, val); // private anon, or COW of a private file page
    return true;
  };

  const where = (pid: number, addr: number, pfn?: number): string =>
    `pid ${pid} addr ${hex(addr)}${pfn === undefined ? '' : (pfn === ZERO_PFN ? " the zero page" : ` pfn ${hex(pfn)}`)}`;
  let cur = -1; // the index of the line being checked
  let dumpLines: number[] = [];
  let lastT = 0;
  const unmapped = (l: TraceLine, what: string, pid: number, addr: number): void =>
    report({ kind: 'unmapped_access', t: l.t, actor: l.actor, pid, addr, lines: [cur],
      message: `${what} at t=${l.t}: ${where(pid, addr)} is outside every VMA of the model` });

  /** Rules 1–3 for a DMA access; returns whether the access went through a valid translation. */
  const checkDma = (l: TraceLine, a: EvDmaAccess): boolean => {
    const at = `${a.dev} ${l.ev} at t=${l.t}: ${where(a.pid, a.addr, a.pfn)}`;
    const base = { t: l.t, actor: l.actor, dev: a.dev, pid: a.pid, addr: a.addr, pfn: a.pfn, lines: [cur] };
    // The shared zero page is never pin-counted (try_grab_folio / is_zero_folio, v6.5+): a write
    // bio reading it reads zeros that cannot move.
    if (a.bio === true && !a.pinned && a.pfn !== ZERO_PFN) {
      report({ ...base, kind: 'unpinned_dma', message: `${at}: a bio's DMA to a frame that holds no pin (its pages were released before the DMA ended)` });
    }
    if (a.via === 'pin') {
      // The shared zero page is a legitimate source for a pin taken before the process's first
      // store to the page (the store COWs away from it; the DMA still reads zeros): not outside.
      if (!a.pte_ok && !a.pinned && a.pfn !== ZERO_PFN) {
        report({ ...base, kind: 'outside_process', message: `${at} via pin: the frame is neither mapped at this address nor pinned` });
      }
      return a.pte_ok;
    }
    const pieces = a.sub === null ? undefined : acked.get(a.sub);
    const hit = pieces ? pieceAt(pieces, a.addr) : undefined;
    const mirror = `${at} via mirror sub ${a.sub} seq ${a.seq}`;
    if (hit && (!a.pte_ok || (a.seq !== null && hit.inv.curSeq > a.seq))) {
      const i = hit.inv;
      report({ ...base, kind: 'stale_translation', sub: a.sub, seq: a.seq, inv: i.inv, curSeq: i.curSeq, ackT: hit.ackT, lines: [i.line, hit.ackLine, cur],
        message: `${mirror}${a.pte_ok ? '' : ' (the PTE no longer maps this frame)'} used a stale translation: invalidation #${i.inv} ` +
          `(${i.event} [${hex(i.start)}, ${hex(i.end)}) cur_seq ${i.curSeq}) was acked by ${hit.ackDev} at t=${hit.ackT}, before this access at t=${l.t}` });
      return false;
    }
    if (!a.pte_ok) {
      report({ ...base, kind: 'outside_process', sub: a.sub, seq: a.seq,
        message: `${mirror}: the PTE does not map this frame and no acked invalidation covers the address` });
      return false;
    }
    if (l.ev === 'dma_write' && !a.writable) {
      report({ ...base, kind: 'readonly_write', sub: a.sub, seq: a.seq,
        message: `${mirror} wrote ${a.value} through a read-only PTE` });
    }
    return true;
  };

  return { line: checkLine, finish };

  function checkLine(l: TraceLine, index: number): void {
    lastT = l.t;
    if (PIN_EVENTS.has(l.ev)) return void pins.line(l, index);
    if (!ORACLE_EVENTS.has(l.ev)) return;
    cur = index;
    const f = l as unknown as Record<string, unknown>;
    switch (l.ev as keyof OracleEvents) {
      case 'mmap': {
        const m = f as unknown as EvMmap, p = proc(m.pid);
        const s = pageOf(m.start), e = pageOf(m.end + PAGE_SIZE - 1);
        unmap(p, s, e); // a MAP_FIXED mapping replaces what was there
        const v: Vma = { start: s, end: e, shared: m.shared, file: m.file, pgoff: m.pgoff };
        p.vmas.splice(lastAtOrBefore(p.vmas, s) + 1, 0, v);
        break;
      }
      case 'munmap': {
        const p = procs.get(f.pid as number);
        if (p) unmap(p, pageOf(f.start as number), pageOf((f.end as number) + PAGE_SIZE - 1));
        break;
      }
      case 'mremap': {
        const r = f as unknown as EvMremap, p = proc(r.pid);
        const s = pageOf(r.old_start), e = pageOf(r.old_end), d = pageOf(r.new_start), de = pageOf(r.new_end);
        const v = findVma(p, s);
        if (!v) break;
        if (d === s) {
          v.end = Math.max(v.end, de); // grown in place
          break;
        }
        const own = [...p.own].filter(([pg]) => pg >= s && pg < e);
        dropOwn(p, s, e);
        unmap(p, d, de);
        p.vmas.splice(lastAtOrBefore(p.vmas, d) + 1, 0, { ...v, start: d, end: de, pgoff: v.pgoff + (s - v.start) });
        for (const [pg, val] of own) p.own.set(d + (pg - s), val);
        break;
      }
      case 'mprotect':
        break;
      case 'invalidate_end':
        invs.delete(f.inv as number); // acks come before the end: nothing refers to it by number any more
        break;
      case 'zap': {
        const z = f as unknown as EvZap, p = procs.get(z.pid);
        // Only private pages are in `own`: anon pages read 0 again, private file pages alias the file again.
        if (p) dropOwn(p, pageOf(z.start), pageOf(z.end + PAGE_SIZE - 1));
        break;
      }
      case 'cow': {
        // The private file page is the pid's own from now on, with the file's current value.
        const c = f as unknown as EvCow, p = procs.get(c.pid), pg = pageOf(c.addr), v = findVma(p, pg);
        if (p && v && v.file !== null && !v.shared && !p.own.has(pg)) p.own.set(pg, read(c.pid, c.addr)!);
        break;
      }
      case 'fork': {
        const k = f as unknown as EvFork, parent = proc(k.pid);
        if (k.start === undefined || k.end === undefined) {
          procs.set(k.child, { vmas: parent.vmas.map((v) => ({ ...v })), own: new Map(parent.own) });
          break;
        }
        // One VMA's private pages, at the instant its copy_page_range ran.
        let child = procs.get(k.child);
        if (!child) procs.set(k.child, (child = { vmas: parent.vmas.map((v) => ({ ...v })), own: new Map() }));
        const s = pageOf(k.start), e = pageOf(k.end);
        if (e - s <= parent.own.size) {
          for (let pg = s; pg < e; pg++) {
            const w = parent.own.get(pg);
            if (w !== undefined) child.own.set(pg, w);
          }
        } else {
          for (const [pg, w] of parent.own) if (pg >= s && pg < e) child.own.set(pg, w);
        }
        break;
      }
      case 'process_exit':
        procs.delete(f.pid as number);
        break;
      case 'file_create':
        fileMap(f.file as number);
        break;
      case 'cpu_store': {
        stats.cpuStores++;
        const pid = f.pid as number, addr = f.addr as number;
        if (!write(pid, addr, { value: f.value as number, by: `cpu pid ${pid}`, t: l.t, line: cur })) unmapped(l, 'cpu store', pid, addr);
        break;
      }
      case 'cpu_load': {
        stats.cpuLoads++;
        const c = f as unknown as EvCpuLoad, want = read(c.pid, c.addr);
        if (!want) unmapped(l, 'cpu load', c.pid, c.addr);
        else if (want.value !== c.value) {
          report({ kind: 'bad_load', t: l.t, actor: l.actor, pid: c.pid, addr: c.addr, pfn: c.pfn, expected: want.value, found: c.value, lines: proof(want),
            message: `cpu load at t=${l.t}: ${where(c.pid, c.addr, c.pfn)} returned ${c.value}, expected ${showVal(want)}` });
        }
        break;
      }
      case 'dma_write': {
        stats.dmaWrites++;
        const a = f as unknown as EvDmaAccess;
        const valid = checkDma(l, a);
        const val: Val = { value: a.value, by: `${a.dev} (dma via ${a.via})`, t: l.t, line: cur };
        if (valid) {
          if (a.via === 'pin' && !a.writable) stats.pinnedWritesToReadOnly++;
          if (!write(a.pid, a.addr, val)) unmapped(l, `${a.dev} dma_write`, a.pid, a.addr);
        } else if (a.via === 'pin' && !a.pte_ok && a.pinned) {
          stats.orphanPinnedWrites++; // the pinned frame is no longer mapped there: it still is its page-cache page, if any
          if (a.file !== null && a.idx !== null) fileMap(a.file).set(a.idx, { ...val, by: `${a.dev} (orphan pinned write)` });
        }
        break;
      }
      case 'dma_read': {
        stats.dmaReads++;
        const a = f as unknown as EvDmaAccess;
        if (!checkDma(l, a)) break;
        const want = read(a.pid, a.addr);
        if (!want) unmapped(l, `${a.dev} dma_read`, a.pid, a.addr);
        else if (want.value !== a.value) {
          report({ kind: 'bad_read', t: l.t, actor: l.actor, dev: a.dev, pid: a.pid, addr: a.addr, pfn: a.pfn, expected: want.value, found: a.value, lines: proof(want),
            message: `${a.dev} dma_read at t=${l.t}: ${where(a.pid, a.addr, a.pfn)} via ${a.via} returned ${a.value}, expected ${showVal(want)}` });
        }
        break;
      }
      case 'dev_write': {
        stats.devWrites++;
        const d = f as unknown as EvDevWrite;
        write(d.pid, d.addr, { value: d.value, by: `${l.actor} (device-private page ${hex(d.dev_pfn)})`, t: l.t, line: cur });
        break;
      }
      case 'dmabuf_move': {
        const d = f as unknown as EvDmabufMove;
        dmabufMoves.set(`${d.exporter}/${d.buf}`, { gen: d.gen, t: l.t, line: cur });
        break;
      }
      case 'p2p_access': {
        stats.p2pAccesses++;
        const a = f as unknown as EvP2pAccess, moved = dmabufMoves.get(`${a.exporter}/${a.buf}`);
        if (moved && moved.gen > a.gen) {
          report({ kind: 'stale_translation', t: l.t, actor: l.actor, dev: a.dev, exporter: a.exporter, buf: a.buf, page: a.page, gen: a.gen, lines: [moved.line, cur],
            message: `${a.dev} p2p ${a.write ? 'write' : 'read'} at t=${l.t} of dma-buf ${a.buf} of ${a.exporter} page ${a.page} through the mapping of placement ${a.gen}: ` +
              `the buffer moved to placement ${moved.gen} at t=${moved.t}, after its importers answered move_notify` });
        }
        break;
      }
      case 'blk_write':
      case 'blk_read': {
        const b = f as unknown as EvBlk, key = `${b.dev}/${b.nsid}`;
        let m = media.get(key);
        if (!m) media.set(key, (m = new Map()));
        if (l.ev === 'blk_write') {
          if (b.ret < 0) {
            stats.blockWritesFailed!++;
            for (let i = 0; i < b.nlb; i++) m.set(b.slba + i, UNKNOWN);
          } else {
            stats.blockWritesAcked!++;
            for (let i = 0; i < b.nlb; i++) m.set(b.slba + i, { value: b.values?.[i] ?? 0, by: `${b.dev} write of block ${b.slba + i}`, t: l.t, line: cur });
          }
          break;
        }
        if (b.ret < 0 || !b.values) break;
        stats.blockReads!++;
        for (let i = 0; i < b.nlb; i++) {
          const want = m.get(b.slba + i) ?? ZERO, found = b.values[i];
          if (want === UNKNOWN || want.value === found) continue;
          report({ kind: 'lost_block_write', t: l.t, actor: l.actor, dev: b.dev, block: b.slba + i, expected: want.value, found, lines: proof(want),
            message: `${b.dev} read of block ${b.slba + i} (nsid ${b.nsid}) at t=${l.t} returned ${found}, expected ${showVal(want)}` });
        }
        break;
      }
      case 'invalidate_start': {
        stats.invalidations++;
        const s = f as unknown as EvInvalidateStart;
        invs.set(s.inv, { inv: s.inv, pid: s.pid, start: s.start, end: s.end, event: s.event, curSeq: s.cur_seq, line: cur });
        break;
      }
      case 'invalidate_ack': {
        stats.acks++;
        const k = f as unknown as EvInvalidateAck, i = invs.get(k.inv);
        if (!k.ok || !i) break;
        let pieces = acked.get(k.sub);
        if (!pieces) acked.set(k.sub, (pieces = []));
        paintAck(pieces, i.start, i.end, { inv: i, ackT: l.t, ackDev: k.dev, ackLine: cur });
        break;
      }
    }
  }

  /** The write the model expects, then the line being checked. */
  function proof(want: Val): number[] {
    return want.line >= 0 ? [want.line, cur] : [cur];
  }

  /** `dumpLine`: the trace line that holds the final dump, if it is in the trace. */
  function finish(finalPages: FinalPage[] | null, dumpLine?: number, opts: { buffersFreed?: boolean } = {}): CheckReport {
    dumpLines = dumpLine === undefined ? [] : [dumpLine];
    if (finalPages) compareFinal(finalPages, lastT);
    if (finalPages && opts.buffersFreed) {
      for (const x of pins.leaks()) {
        report({ kind: 'pin_leak', t: lastT, actor: x.by, lines: x.lines,
          message: `${x.by} still holds ${x.frames} frame${x.frames === 1 ? '' : 's'} ${x.pin ? 'pinned (FOLL_PIN)' : 'referenced (FOLL_GET)'} after the run's teardown, the first since t=${x.firstT}: never ${x.pin ? 'unpinned' : 'put'}` });
      }
    }
    return { violations, violationsDropped: dropped, stats, ok: violations.length === 0 && dropped === 0 };
  }

  function compareFinal(pages: FinalPage[], tEnd: number): void {
    const dumped = new Map<number, Set<number>>(); // pid → page numbers in the dump
    for (const fp of pages) {
      const pg = pageOf(fp.addr);
      let s = dumped.get(fp.pid);
      if (!s) dumped.set(fp.pid, (s = new Set()));
      s.add(pg);
      const want = read(fp.pid, fp.addr);
      if (!want) {
        report({ kind: 'unexpected_page', t: tEnd, actor: 'mm', pid: fp.pid, addr: fp.addr, found: fp.value, lines: dumpLines,
          message: `final dump: pid ${fp.pid} addr ${hex(fp.addr)} (value ${fp.value}) lies outside every VMA of the model` });
        continue;
      }
      stats.pagesCompared++;
      if (want.value !== fp.value) {
        report({ kind: 'lost_write', t: tEnd, actor: 'mm', pid: fp.pid, addr: fp.addr, expected: want.value, found: fp.value, writer: want.by, writeT: want.t, lines: [...proof(want).slice(0, -1), ...dumpLines],
          message: `final dump: pid ${fp.pid} addr ${hex(fp.addr)} expected ${showVal(want)}, found ${fp.value}` });
      }
    }
    const missing = (pid: number, pg: number, want: Val): void => {
      if (want.value === 0 || dumped.get(pid)?.has(pg)) return; // a page absent from the dump reads 0
      const addr = pg * PAGE_SIZE;
      report({ kind: 'lost_write', t: tEnd, actor: 'mm', pid, addr, expected: want.value, found: null, writer: want.by, writeT: want.t, lines: [...proof(want).slice(0, -1), ...dumpLines],
        message: `final dump: pid ${pid} addr ${hex(addr)} expected ${showVal(want)}, but the page is missing from the dump` });
    };
    for (const [pid, p] of procs) {
      for (const [pg, val] of p.own) if (findVma(p, pg)) missing(pid, pg, val);
      for (const v of p.vmas) {
        const fm = v.file === null ? undefined : files.get(v.file);
        if (!fm || fm.size === 0) continue;
        const n = v.end - v.start;
        const visit = (idx: number, val: Val): void => {
          const pg = v.start + idx - v.pgoff;
          if (v.shared || !p.own.has(pg)) missing(pid, pg, val);
        };
        if (n <= fm.size) {
          for (let idx = v.pgoff; idx < v.pgoff + n; idx++) { const val = fm.get(idx); if (val) visit(idx, val); }
        } else for (const [idx, val] of fm) if (idx >= v.pgoff && idx < v.pgoff + n) visit(idx, val);
      }
    }
  }
}
