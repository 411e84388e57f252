import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  EBUSY, EFAULT, ENOMEM, EPERM, FOLL_FORCE, FOLL_LONGTERM, FOLL_WRITE, HMM_PFN_ERROR, HMM_PFN_REQ_FAULT, HMM_PFN_REQ_WRITE, HMM_PFN_VALID, HMM_PFN_WRITE,
  MADV_PAGEOUT, MAP_ANONYMOUS, MIGRATE_PFN_MIGRATE, MIGRATE_VMA_SELECT_DEVICE_PRIVATE, MIGRATE_VMA_SELECT_SYSTEM, MAP_FIXED, MAP_PRIVATE, MAP_SHARED, PAGE_SIZE, PROT_READ, PROT_WRITE, ZERO_PFN,
} from '@svmsim/kernel-mm';
import { readTrace, type Message } from '@svmsim/runtime';
import { ret, runMm, val, type Step } from '@svmsim/kernel-mm/testing/mm-harness';

const RW = PROT_READ | PROT_WRITE;
const A = 16 * 1024 * 1024;
const tmp = () => fs.mkdtempSync(path.join(os.tmpdir(), 'svmsim-mm-'));
const create: Step = { msg: { type: 'process_create' } as never };
const anon = (pages: number, prot = RW): Step => ({ msg: { type: 'mmap', pid: 1, addr: 0, length: pages * PAGE_SIZE, prot, flags: MAP_PRIVATE | MAP_ANONYMOUS } as never });
const store = (pid: number, page: number, value: number, base = A): Step => ({ msg: { type: 'cpu_access', pid, addr: base + page * PAGE_SIZE, write: true, value } as never });
const load = (pid: number, page: number, base = A): Step => ({ msg: { type: 'cpu_access', pid, addr: base + page * PAGE_SIZE, write: false } as never });
const subscribe = (pid = 1, start = A, length = 64 * PAGE_SIZE): Step => ({ msg: { type: 'mmu_interval_notifier_insert', pid, start, length } as never });
const readBegin = (sub = 1): Step => ({ msg: { type: 'mmu_interval_read_begin', sub } as never });
const hmm = (seq: (r: never[]) => number, start: number, pages: number, flags: number): Step => (results) => ({
  msg: { type: 'hmm_range_fault', sub: 1, notifier_seq: seq(results as never[]), start, end: start + pages * PAGE_SIZE, default_flags: flags, pfn_flags_mask: 0, dev_private_owner: null } as never,
});
/** The script plays a driver: it holds mmap_read_lock of pid 1 around hmm_range_fault and migrate_vma_setup. */
const rlock: Step = { msg: { type: 'mmap_read_lock', pid: 1 } as never };
const runlock: Step = { msg: { type: 'mmap_read_unlock', pid: 1 } as never };
const lastSeq = (results: never[]) => (results.filter((r: { type: string }) => r.type === 'read_begin_result').at(-1) as unknown as { seq: number }).seq;

describe('mm: who gets which mmu_notifier event', () => {
  it('munmap → UNMAP, mprotect → PROTECTION_VMA (only over populated entries), MADV_DONTNEED and COW → CLEAR', async () => {
    const { invalidations } = await runMm([
      create, anon(8), subscribe(),
      { msg: { type: 'mprotect', pid: 1, addr: A, length: PAGE_SIZE, prot: PROT_READ } as never }, // nothing populated: no event
      store(1, 1, 5),
      { msg: { type: 'mprotect', pid: 1, addr: A + PAGE_SIZE, length: PAGE_SIZE, prot: PROT_READ } as never },
      load(1, 2), store(1, 2, 6), // zero page then COW: CLEAR
      { msg: { type: 'madvise', pid: 1, addr: A + 2 * PAGE_SIZE, length: PAGE_SIZE, advice: 4 } as never },
      { msg: { type: 'munmap', pid: 1, addr: A, length: 8 * PAGE_SIZE } as never },
    ]);
    expect(invalidations.map((i) => i.event)).toEqual(['MMU_NOTIFY_PROTECTION_VMA', 'MMU_NOTIFY_CLEAR', 'MMU_NOTIFY_CLEAR', 'MMU_NOTIFY_UNMAP']);
    expect(invalidations.every((i) => i.blockable && i.cur_seq % 2 === 1)).toBe(true);
    expect(invalidations[3]).toMatchObject({ start: A, end: A + 8 * PAGE_SIZE });
  });

  it('fork → PROTECTION_PAGE on the parent; exit → RELEASE then UNMAP, and the subscription stays until removed', async () => {
    const { invalidations, results } = await runMm([
      create, anon(4), subscribe(), store(1, 0, 1),
      { msg: { type: 'fork', pid: 1 } as never },
      { msg: { type: 'exit', pid: 1 } as never },
      readBegin(1),
      { msg: { type: 'mmu_interval_notifier_remove', sub: 1 } as never },
    ]);
    expect(invalidations.map((i) => i.event)).toEqual(['MMU_NOTIFY_PROTECTION_PAGE', 'MMU_NOTIFY_RELEASE', 'MMU_NOTIFY_UNMAP']);
    expect(ret(results[6])).toBe(0);
    expect(ret(results[7])).toBe(0);
  });

  // mm/memory.c copy_page_range (v6.15; the same in the v6.18 tree): dup_mmap calls it per VMA,
  // and for a COW mapping it starts PROTECTION_PAGE over that VMA, copies, and ends it before the
  // next VMA's. So each is its own epoch of the mm's invalidate_seq (a fresh odd cur_seq), and a
  // shared mapping gets none.
  it('fork sends one PROTECTION_PAGE per populated COW VMA, each ended before the next starts', async () => {
    const B = A + 16 * PAGE_SIZE;
    const C = A + 32 * PAGE_SIZE;
    const S = A + 48 * PAGE_SIZE;
    const { invalidations, results } = await runMm([
      create,
      { msg: { type: 'mmap', pid: 1, addr: A, length: 2 * PAGE_SIZE, prot: RW, flags: MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED } as never },
      { msg: { type: 'mmap', pid: 1, addr: B, length: 2 * PAGE_SIZE, prot: RW, flags: MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED } as never },
      { msg: { type: 'mmap', pid: 1, addr: C, length: 2 * PAGE_SIZE, prot: RW, flags: MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED } as never },
      { msg: { type: 'mmap', pid: 1, addr: S, length: 2 * PAGE_SIZE, prot: RW, flags: MAP_SHARED | MAP_ANONYMOUS | MAP_FIXED } as never },
      subscribe(1, A, 64 * PAGE_SIZE),
      store(1, 0, 1), store(1, 0, 2, B), store(1, 1, 3, C), store(1, 0, 4, S),
      { msg: { type: 'fork', pid: 1 } as never },
      load(2, 0), load(2, 0, B), load(2, 1, C), load(2, 0, S),
    ]);
    const prot = invalidations.filter((i) => i.event === 'MMU_NOTIFY_PROTECTION_PAGE');
    expect(prot.map((i) => [i.start, i.end])).toEqual([[A, A + 2 * PAGE_SIZE], [B, B + 2 * PAGE_SIZE], [C, C + 2 * PAGE_SIZE]]);
    // Three epochs: each start finds the mm idle (even) and makes it odd anew.
    const seqs = prot.map((i) => i.cur_seq);
    expect(seqs.every((q) => q % 2 === 1)).toBe(true);
    expect(new Set(seqs).size).toBe(3);
    expect(seqs).toEqual([...seqs].sort((x, y) => x - y));
    expect([11, 12, 13, 14].map((i) => val(results[i]))).toEqual([1, 2, 3, 4]);
  });

  it('fork copies a pinned anonymous page at once: the parent keeps writing it without a fault', async () => {
    const dir = tmp();
    const { results, mm } = await runMm([
      create, anon(2), store(1, 0, 1),
      { msg: { type: 'get_user_pages', pid: 1, start: A, nr_pages: 1, gup_flags: FOLL_WRITE, pin: true } as never },
      { msg: { type: 'fork', pid: 1 } as never },
      store(1, 0, 2), load(2, 0), load(1, 0),
    ], { traceDir: dir });
    expect(ret(results[3])).toBe(1);
    expect(val(results[6])).toBe(1);
    expect(val(results[7])).toBe(2);
    expect(mm.cpuFaultsByKind.write_protect ?? 0).toBe(0);
    expect((results[5] as unknown as { faults: number }).faults).toBe(0);
  });
  it('fork copies a DMA-pinned page for the child: a device write through the pin lands in the parent only', async () => {
    // mm/memory.c copy_present_pte (v6.15): folio_try_dup_anon_rmap_pte fails for a page that may be
    // pinned (folio_needs_cow_for_dma), so copy_present_page gives the child its own copy and the
    // parent keeps the pinned frame.
    const pfnOf = (m: Message) => (m as unknown as { pfns: Float64Array }).pfns[0];
    // A DMA write has no reply: the step only sends it.
    const dmaWrite: Step = (results) => ({
      send: { msg: { type: 'dma_access', dev: 'app', pid: 1, addr: A, pfn: pfnOf(results[3] as never), write: true, value: 7, tr: { via: 'pin' } } as never },
    });
    const { results } = await runMm([
      create, anon(1), store(1, 0, 1),
      { msg: { type: 'get_user_pages', pid: 1, start: A, nr_pages: 1, gup_flags: FOLL_WRITE | FOLL_LONGTERM, pin: true } as never },
      { msg: { type: 'fork', pid: 1 } as never },
      dmaWrite, load(1, 0), load(2, 0),
    ]);
    expect(ret(results[3])).toBe(1);
    expect(val(results[5])).toBe(7);
    expect(val(results[6])).toBe(1);
  });
});

describe('mm: gup and pin', () => {
  it('refuses a writable FOLL_LONGTERM pin of a file mapping that needs dirty tracking, not of shmem', async () => {
    const F = 64 * 1024 * 1024;
    const { results } = await runMm([
      create, { msg: { type: 'file_create', name: 'f', pages: 4 } as never },
      { msg: { type: 'mmap', pid: 1, addr: F, length: 4 * PAGE_SIZE, prot: RW, flags: MAP_SHARED | MAP_FIXED, file: 1, offset: 0 } as never },
      { msg: { type: 'mmap', pid: 1, addr: 2 * F, length: 4 * PAGE_SIZE, prot: RW, flags: MAP_SHARED | MAP_ANONYMOUS | MAP_FIXED } as never },
      { msg: { type: 'get_user_pages', pid: 1, start: F, nr_pages: 2, gup_flags: FOLL_WRITE | FOLL_LONGTERM, pin: true } as never },
      { msg: { type: 'get_user_pages', pid: 1, start: 2 * F, nr_pages: 2, gup_flags: FOLL_WRITE | FOLL_LONGTERM, pin: true } as never },
      { msg: { type: 'get_user_pages', pid: 1, start: F, nr_pages: 2, gup_flags: FOLL_WRITE, pin: true } as never },
    ]);
    expect(ret(results[4])).toBe(EFAULT);
    expect(ret(results[5])).toBe(2);
    expect(ret(results[6])).toBe(2);
  });

  it('fails a FOLL_LONGTERM pin with -ENOMEM when a page in ZONE_MOVABLE cannot be migrated (it is pinned already)', async () => {
    const { results, mm } = await runMm(
      [create, anon(4), store(1, 0, 1), store(1, 1, 2),
        { msg: { type: 'get_user_pages', pid: 1, start: A, nr_pages: 2, gup_flags: FOLL_WRITE, pin: true } as never },
        { msg: { type: 'get_user_pages', pid: 1, start: A, nr_pages: 2, gup_flags: FOLL_WRITE | FOLL_LONGTERM, pin: true } as never },
        load(1, 0), load(1, 1)],
      { mm: { frames: 256, movableStart: 128 } },
    );
    const short = (results[4] as unknown as { pfns: Float64Array }).pfns;
    expect([...short].every((p) => p >= 128)).toBe(true); // user pages come from the movable zone first
    expect(ret(results[5])).toBe(ENOMEM);
    expect(mm.migrations).toBe(0);
    expect([val(results[6]), val(results[7])]).toEqual([1, 2]);
  });

  it('pins pages from ZONE_MOVABLE long-term by migrating them first, contents intact', async () => {
    const { results, mm } = await runMm(
      [create, anon(4), store(1, 0, 1), store(1, 1, 2),
        { msg: { type: 'get_user_pages', pid: 1, start: A, nr_pages: 2, gup_flags: FOLL_WRITE | FOLL_LONGTERM, pin: true } as never },
        load(1, 0), load(1, 1)],
      { mm: { frames: 256, movableStart: 128 } },
    );
    expect(ret(results[4])).toBe(2);
    expect([...(results[4] as unknown as { pfns: Float64Array }).pfns].every((p) => p < 128)).toBe(true);
    expect(mm.migrations).toBe(2);
    expect([val(results[5]), val(results[6])]).toEqual([1, 2]);
  });
});

// mm/internal.h gup_must_unshare (v6.8–v6.15) and mm/gup.c __get_user_pages (v6.15).
describe('mm: gup_must_unshare and the pages gup keeps', () => {
  const F = 64 * 1024 * 1024;
  const pin = (start: number, nr: number, gup_flags: number): Step => ({ msg: { type: 'get_user_pages', pid: 1, start, nr_pages: nr, gup_flags, pin: true } as never });
  const pfnsOf = (m: Message) => [...(m as unknown as { pfns: Float64Array }).pfns];
  const dmaRead = (pfn: number, addr = A): Step => ({ msg: { type: 'dma_access', dev: 'app', pid: 1, addr, pfn, write: false, tr: { via: 'pin' } } as never });

  it('a read-only long-term pin of untouched anonymous memory unshares the zero page: the device sees the later CPU store', async () => {
    const { results } = await runMm([
      create, anon(2), load(1, 0), pin(A, 1, FOLL_LONGTERM),
      (r) => [store(1, 0, 7), dmaRead(pfnsOf(r[3])[0])],
    ]);
    expect(ret(results[3])).toBe(1);
    expect(pfnsOf(results[3])[0]).not.toBe(ZERO_PFN);
    expect(val(results[5])).toBe(7);
  });

  it('a read-only long-term pin of a MAP_PRIVATE file page unshares the page-cache page', async () => {
    const { results } = await runMm([
      create, { msg: { type: 'file_create', name: 'f', pages: 2 } as never },
      { msg: { type: 'mmap', pid: 1, addr: F, length: 2 * PAGE_SIZE, prot: RW, flags: MAP_PRIVATE | MAP_FIXED, file: 1, offset: 0 } as never },
      load(1, 0, F), pin(F, 1, FOLL_LONGTERM),
      (r) => [store(1, 0, 9, F), dmaRead(pfnsOf(r[4])[0], F)],
    ]);
    expect(ret(results[4])).toBe(1);
    expect(val(results[6])).toBe(9);
  });

  it('a short-term read pin still takes the zero page (no unshare without FOLL_LONGTERM)', async () => {
    const { results } = await runMm([create, anon(1), load(1, 0), pin(A, 1, 0)]);
    expect(ret(results[3])).toBe(1);
    expect(pfnsOf(results[3])[0]).toBe(ZERO_PFN);
  });

  it('keeps the pages pinned so far when it gives up at the fault bound, and returns their count', async () => {
    // Page 1 needs a fault: the bound (0 faults) is hit at once. The pin of page 0 is the caller's
    // now: fork copies the pinned page for the child, so the parent's next store takes no fault.
    const { results } = await runMm([
      create, anon(2), store(1, 0, 1), pin(A, 2, FOLL_WRITE), { msg: { type: 'fork', pid: 1 } as never }, store(1, 0, 2),
    ], { mm: { gupFaultsPerPageMax: 0 } });
    expect(ret(results[3])).toBe(1);
    expect((results[5] as unknown as { faults: number }).faults).toBe(0);
  });

  it('refuses a FOLL_FORCE write to a read-only shared mapping (check_vma_flags: not a COW mapping)', async () => {
    const { results } = await runMm([
      create, { msg: { type: 'file_create', name: 'f', pages: 1 } as never },
      { msg: { type: 'mmap', pid: 1, addr: F, length: PAGE_SIZE, prot: PROT_READ, flags: MAP_SHARED | MAP_FIXED, file: 1, offset: 0 } as never },
      load(1, 0, F), pin(F, 1, FOLL_WRITE | FOLL_FORCE),
    ]);
    expect(ret(results[4])).toBe(EFAULT);
  });
});

// mm/memory.c do_wp_page (v6.5–v6.15): PageAnonExclusive, or else wp_can_reuse_anon_folio (refcount 1).
describe('mm: PageAnonExclusive and wp_can_reuse_anon_folio', () => {
  const get = (nr = 1): Step => ({ msg: { type: 'get_user_pages', pid: 1, start: A, nr_pages: nr, gup_flags: 0, pin: false } as never });
  const pfn0 = (m: Message) => (m as unknown as { pfns: Float64Array }).pfns[0];
  const dmaRead = (pfn: number): Step => ({ msg: { type: 'dma_access', dev: 'app', pid: 1, addr: A, pfn, write: false, tr: { via: 'pin' } } as never });

  it('fork clears PageAnonExclusive: after the child is gone, a write copies away from a page a gup reference holds', async () => {
    const { results, mm } = await runMm([
      create, anon(1), store(1, 0, 1), { msg: { type: 'fork', pid: 1 } as never }, { msg: { type: 'exit', pid: 2 } as never },
      get(), store(1, 0, 2), (r) => [dmaRead(pfn0(r[5])), load(1, 0)],
    ]);
    expect(ret(results[5])).toBe(1);
    expect(mm.cowCopies).toBe(1); // mapped once again, but refcount 2: wp_page_copy
    expect(val(results[7])).toBe(1); // the gup holder still sees the old page
    expect(val(results[8])).toBe(2);
  });

  it('without the reference the same write reuses the page (refcount 1) and marks it exclusive again', async () => {
    const { results, mm } = await runMm([
      create, anon(1), store(1, 0, 1), { msg: { type: 'fork', pid: 1 } as never }, { msg: { type: 'exit', pid: 2 } as never },
      store(1, 0, 2), load(1, 0),
    ]);
    expect(mm.cowCopies).toBe(0);
    expect(val(results[6])).toBe(2);
  });
});

// mm/vmscan.c shrink_folio_list (v6.15): only folio_maybe_dma_pinned keeps an anon page before
// add_to_swap; a plain reference fails __remove_mapping after try_to_unmap and pageout.
describe('mm: reclaim of an anon page a gup reference holds', () => {
  it('unmaps it (CLEAR), writes it to swap, keeps it in the swap cache; the next fault maps the same page', async () => {
    const get: Step = { msg: { type: 'get_user_pages', pid: 1, start: A, nr_pages: 1, gup_flags: 0, pin: false } as never };
    const { results, mm, invalidations } = await runMm([
      create, anon(1), store(1, 0, 5), subscribe(1, A, PAGE_SIZE), get,
      { msg: { type: 'madvise', pid: 1, addr: A, length: PAGE_SIZE, advice: MADV_PAGEOUT } as never },
      load(1, 0), get,
    ]);
    expect(invalidations.map((i) => i.event)).toEqual(['MMU_NOTIFY_CLEAR']);
    expect(mm.swapOuts).toBe(1);
    expect(mm.reclaimed).toBe(0);
    expect(val(results[6])).toBe(5);
    const pfnOf = (m: Message) => (m as unknown as { pfns: Float64Array }).pfns[0];
    expect(pfnOf(results[7])).toBe(pfnOf(results[4])); // swapped in from the swap cache: the page the reference holds
  });
});

describe('mm: reclaim of a swap-cache page', () => {
  it('frees a swap-cache page no PTE maps any more; the other PTE holding the slot reads it back from swap', async () => {
    const { results, mm } = await runMm([
      create, anon(1), store(1, 0, 5), { msg: { type: 'fork', pid: 1 } as never },
      { msg: { type: 'madvise', pid: 1, addr: A, length: PAGE_SIZE, advice: MADV_PAGEOUT } as never }, // both PTEs → the slot
      load(1, 0), // swapped in; the slot is still the child's: the page stays in the swap cache
      { msg: { type: 'munmap', pid: 1, addr: A, length: PAGE_SIZE } as never },
      { msg: { type: 'reclaim', nr_pages: 8 } as never }, // referenced (the load): a second chance
      { msg: { type: 'reclaim', nr_pages: 8 } as never },
      load(2, 0),
    ]);
    expect(val(results[5])).toBe(5);
    expect(ret(results[7]) + ret(results[8])).toBe(1);
    expect(mm.reclaimed).toBe(2); // the pageout, then the swap-cache page
    expect(val(results[9])).toBe(5);
  });
});

// mm/migrate_device.c migrate_vma_collect_pmd (v6.15).
describe('mm: migrate_vma_setup collection', () => {
  it('offers empty PTEs of an anonymous VMA whatever the flags, the zero page only with SELECT_SYSTEM', async () => {
    const { results } = await runMm([
      create, anon(2), load(1, 1), rlock, // page 0 empty, page 1 the zero page
      { msg: { type: 'migrate_vma_setup', pid: 1, start: A, end: A + 2 * PAGE_SIZE, flags: MIGRATE_VMA_SELECT_DEVICE_PRIVATE, pgmap_owner: 'app' } as never },
      (r) => ({ msg: { type: 'migrate_vma_finalize', migration: (r[4] as unknown as { migration: number }).migration, dst_pfns: new Float64Array(2).fill(-1) } as never }),
    ]);
    const setup = results[4] as unknown as { ret: number; cpages: number; src_flags: Uint8Array };
    expect(setup.ret).toBe(0);
    expect(setup.cpages).toBe(1);
    expect(setup.src_flags[0] & MIGRATE_PFN_MIGRATE).toBe(MIGRATE_PFN_MIGRATE);
    expect(setup.src_flags[1]).toBe(0);
  });
});

// mm/migrate_device.c (torvalds/linux 022a12de, after v6.15; these paths as in v6.15): only the
// pages migrate_vma_collect_pmd leaves under migration entries stay locked until
// migrate_vma_finalize; a hole is offered (MIGRATE_PFN_MIGRATE, no source) but left as it is, so a
// CPU fault on it goes ahead, and migrate_vma_insert_page then finds the PTE no longer none and
// backs off.
describe('mm: an open migration locks only its migration entries', () => {
  it('a CPU store to a hole completes before finalize, which then leaves that page out; the other hole and the collected page move', async () => {
    const { results } = await runMm([
      create, anon(3), store(1, 1, 7), rlock,
      { msg: { type: 'memremap_pages', nr_pages: 4 } as never },
      { msg: { type: 'migrate_vma_setup', pid: 1, start: A, end: A + 3 * PAGE_SIZE, flags: MIGRATE_VMA_SELECT_SYSTEM, pgmap_owner: 'app' } as never },
      store(1, 0, 5), // a hole: the fault does not wait for the migration
      (r) => {
        const base = (r[4] as unknown as { base: number }).base;
        return { msg: { type: 'migrate_vma_finalize', migration: (r[5] as unknown as { migration: number }).migration, dst_pfns: Float64Array.from([base, base + 1, base + 2]) } as never };
      },
      load(1, 0),
    ]);
    const setup = results[5] as unknown as { ret: number; cpages: number; src_flags: Uint8Array };
    expect(setup).toMatchObject({ ret: 0, cpages: 3 });
    expect(ret(results[6])).toBe(0);
    const fin = results[7] as unknown as { ret: number; migrated: number; src_flags: Uint8Array };
    expect(fin).toMatchObject({ ret: 0, migrated: 2 });
    expect([...fin.src_flags].map((f) => f & MIGRATE_PFN_MIGRATE)).toEqual([0, MIGRATE_PFN_MIGRATE, MIGRATE_PFN_MIGRATE]);
    // The CPU's page stayed: read without a fault, with the value stored during the migration.
    expect(results[8]).toMatchObject({ value: 5, faults: 0 });
  });

  it('a CPU write to the zero page offered by setup proceeds (wp_page_copy); the page is then not migrated', async () => {
    const { results } = await runMm([
      create, anon(2), load(1, 0), rlock,
      { msg: { type: 'memremap_pages', nr_pages: 2 } as never },
      { msg: { type: 'migrate_vma_setup', pid: 1, start: A, end: A + 2 * PAGE_SIZE, flags: MIGRATE_VMA_SELECT_SYSTEM, pgmap_owner: 'app' } as never },
      store(1, 0, 9),
      (r) => {
        const base = (r[4] as unknown as { base: number }).base;
        return { msg: { type: 'migrate_vma_finalize', migration: (r[5] as unknown as { migration: number }).migration, dst_pfns: Float64Array.from([base, base + 1]) } as never };
      },
      load(1, 0),
    ]);
    const setup = results[5] as unknown as { cpages: number; src_flags: Uint8Array };
    expect(setup.cpages).toBe(2);
    expect(ret(results[6])).toBe(0);
    const fin = results[7] as unknown as { migrated: number; src_flags: Uint8Array };
    expect(fin.migrated).toBe(1);
    expect(fin.src_flags[0] & MIGRATE_PFN_MIGRATE).toBe(0);
    expect(results[8]).toMatchObject({ value: 9, faults: 0 });
  });
});

describe('mm: hmm_range_fault', () => {
  it('faults pages in, reports VALID/WRITE, and -EBUSY when an invalidation intervened since read_begin', async () => {
    const { results } = await runMm([
      create, anon(4), subscribe(), readBegin(), rlock,
      hmm(lastSeq, A, 2, HMM_PFN_REQ_FAULT | HMM_PFN_REQ_WRITE),
      hmm(lastSeq, A + 2 * PAGE_SIZE, 2, HMM_PFN_REQ_FAULT), // read fault: the zero page, read-only
      runlock, // munmap takes the write lock
      { msg: { type: 'munmap', pid: 1, addr: A + 3 * PAGE_SIZE, length: PAGE_SIZE } as never },
      rlock, hmm(lastSeq, A, 1, HMM_PFN_REQ_FAULT), // seq is stale now
    ]);
    const r1 = results[5] as unknown as { ret: number; flags: Uint8Array };
    expect(r1.ret).toBe(0);
    expect([...r1.flags]).toEqual([HMM_PFN_VALID | HMM_PFN_WRITE, HMM_PFN_VALID | HMM_PFN_WRITE]);
    const r2 = results[6] as unknown as { ret: number; flags: Uint8Array; pfns: Float64Array };
    expect([...r2.flags]).toEqual([HMM_PFN_VALID, HMM_PFN_VALID]);
    expect([...r2.pfns]).toEqual([-1, -1]);
    expect(ret(results[10])).toBe(EBUSY);
  });

  it('walks a range that reaches past its notifier interval (mm/hmm.c does not check it)', async () => {
    const { results } = await runMm([create, anon(4), subscribe(1, A, PAGE_SIZE), readBegin(), rlock, hmm(lastSeq, A, 3, HMM_PFN_REQ_FAULT)]);
    expect(ret(results[5])).toBe(0);
  });

  it('returns -EPERM for a write to a read-only VMA, -EFAULT for a hole, and ERROR entries in a snapshot', async () => {
    const { results } = await runMm([
      create, anon(2, PROT_READ), subscribe(), readBegin(), rlock,
      hmm(lastSeq, A, 1, HMM_PFN_REQ_FAULT | HMM_PFN_REQ_WRITE),
      hmm(lastSeq, A + 2 * PAGE_SIZE, 1, HMM_PFN_REQ_FAULT),
      hmm(lastSeq, A + PAGE_SIZE, 2, 0),
    ]);
    expect(ret(results[5])).toBe(EPERM);
    expect(ret(results[6])).toBe(EFAULT);
    const snap = results[7] as unknown as { ret: number; flags: Uint8Array };
    expect(snap.ret).toBe(0);
    expect([...snap.flags]).toEqual([0, HMM_PFN_ERROR]);
  });

  // Linux v6.15 mm/mmu_notifier.c: mn_itree_invalidate hands cur_seq to the callback and never
  // stores it; only the driver's mmu_interval_set_seq (include/linux/mmu_notifier.h) writes
  // sub->invalidate_seq, which mmu_interval_check_retry (hmm_range_fault's -EBUSY) and read_begin read.
  it('leaves the subscription seq to the driver: without set_seq an invalidation gives no -EBUSY and read_begin no wait', async () => {
    const steps = (): Step[] => [
      create, anon(4), subscribe(), readBegin(), store(1, 0, 1),
      { msg: { type: 'munmap', pid: 1, addr: A + 3 * PAGE_SIZE, length: PAGE_SIZE } as never },
      rlock, hmm(lastSeq, A, 1, HMM_PFN_REQ_FAULT), readBegin(),
    ];
    const careful = await runMm(steps());
    expect(ret(careful.results[7])).toBe(EBUSY);
    expect((careful.results[8] as unknown as { seq: number }).seq).toBe(3); // the epoch's cur_seq, stored by set_seq
    const careless = await runMm(steps(), { skipSetSeq: true });
    expect(careless.invalidations).toHaveLength(1);
    expect(ret(careless.results[7])).toBe(0); // the stale seq still passes mmu_interval_check_retry
    expect((careless.results[8] as unknown as { seq: number }).seq).toBe(1); // the value insert set
  });

  it('makes read_begin wait while the subscription is being invalidated, and return the seq it read', async () => {
    let waitedSeeds = 0;
    for (let seed = 1; seed <= 12; seed++) {
      const dir = tmp();
      const { results } = await runMm(
        // read_begin sent 1 µs into the 5 µs the driver takes: after its set_seq (sent as the
        // invalidate arrives) when the munmap started first; before the invalidation otherwise.
        [create, anon(2), subscribe(), store(1, 0, 1), { group: [{ msg: { type: 'munmap', pid: 1, addr: A, length: PAGE_SIZE } as never }, { msg: readBegin().msg as never, afterNs: 1_000 }] }],
        { traceDir: dir, ackDelayNs: 5_000, seed },
      );
      const lines = readTrace(dir);
      const waited = lines.find((l) => l.ev === 'read_begin_waited');
      const seq = (results.find((r) => r.type === 'read_begin_result') as unknown as { seq: number }).seq;
      if (waited) {
        waitedSeeds++;
        expect(waited.waitedNs).toBeGreaterThan(0);
        expect(waited.waitedNs).toBeLessThanOrEqual(4_000);
        expect(seq).toBe(3); // the odd value of the epoch that invalidated it: read_retry(3) then passes
      } else {
        expect(seq).toBe(1); // read_begin came before the invalidation started
      }
    }
    expect(waitedSeeds).toBeGreaterThan(0);
  });
});

describe('mm: blocking', () => {
  it('warns of a hung task when a driver takes longer than hungTaskTimeoutNs to ack, and completes after the ack', async () => {
    const { results, mm } = await runMm([create, anon(2), subscribe(), store(1, 0, 1), { msg: { type: 'munmap', pid: 1, addr: A, length: PAGE_SIZE } as never }], {
      ackDelayNs: 200e9,
    });
    expect(ret(results[4])).toBe(0);
    expect(mm.hungTaskWarnings).toBe(1);
    expect(mm.notifierWaitNsMax).toBeGreaterThanOrEqual(200e9);
  });

  it('lets the OOM reaper skip a VMA whose driver refuses a non-blockable invalidation, then give up', async () => {
    const dir = tmp();
    const steps: Step[] = [create, anon(200), subscribe(1, A, 200 * PAGE_SIZE)];
    for (let i = 0; i < 200; i++) steps.push(store(1, i, i + 1));
    steps.push({ sleepNs: 10e9 });
    const { mm, signals } = await runMm(steps, { mm: { frames: 96, swapPages: 0 }, ackDelayNs: 3_600e9, refuseNonblocking: true, traceDir: dir });
    expect(mm.oomKills).toBe(1);
    expect(signals).toHaveLength(1);
    const reaper = readTrace(dir).filter((l) => l.ev === 'oom_reaper');
    expect(reaper).toHaveLength(1);
    expect(reaper[0]).toMatchObject({ complete: false, attempts: 10 });
  });
});
