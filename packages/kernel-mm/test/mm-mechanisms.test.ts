// Mechanisms drivers must cope with: NUMA hinting scans, soft-dirty clear_refs, accessed bits of
// secondary MMUs, and the mmap_lock contract of hmm_range_fault / migrate_vma_setup.
import { describe, expect, it } from 'vitest';
import {
  EINVAL, EOPNOTSUPP, HMM_PFN_REQ_FAULT, HMM_PFN_VALID, MAP_ANONYMOUS, MAP_PRIVATE, MIGRATE_VMA_SELECT_SYSTEM, PAGE_SIZE, PM_PRESENT, PM_SOFT_DIRTY,
  PROT_READ, PROT_WRITE, type PagemapResult,
} from '@svmsim/kernel-mm';
import type { Actor, Envelope, Message } from '@svmsim/runtime';
import { ret, runMm, val, type Step } from '@svmsim/kernel-mm/testing/mm-harness';

const RW = PROT_READ | PROT_WRITE;
const A = 16 * 1024 * 1024;
const create: Step = { msg: { type: 'process_create' } as never };
const anon = (pages: number, prot = RW): Step => ({ msg: { type: 'mmap', pid: 1, addr: 0, length: pages * PAGE_SIZE, prot, flags: MAP_PRIVATE | MAP_ANONYMOUS } as never });
const store = (page: number, value: number, pid = 1): Step => ({ msg: { type: 'cpu_access', pid, addr: A + page * PAGE_SIZE, write: true, value } as never });
const load = (page: number, pid = 1): Step => ({ msg: { type: 'cpu_access', pid, addr: A + page * PAGE_SIZE, write: false } as never });
const stores = (n: number): Step[] => Array.from({ length: n }, (_, i) => store(i, 100 + i));
const subscribe = (pages = 64): Step => ({ msg: { type: 'mmu_interval_notifier_insert', pid: 1, start: A, length: pages * PAGE_SIZE } as never });
const numaScan: Step = { msg: { type: 'numa_scan', pid: 1 } as never };
const pagemap = (pages: number): Step => ({ msg: { type: 'pagemap_read', pid: 1, addr: A, nr_pages: pages } as never });
const clearRefs = (value: string): Step => ({ msg: { type: 'clear_refs', pid: 1, value } as never });
const faults = (m: Message) => (m as unknown as { faults: number }).faults;
const bits = (m: Message, bit: number) => [...(m as unknown as PagemapResult).entries].map((e) => (e & bit ? 1 : 0));

describe('NUMA balancing: task_numa_work → change_prot_numa, do_numa_page', () => {
  it('makes present PTEs NUMA hinting entries behind one PROTECTION_VMA invalidation; the next access takes a hint fault and keeps the data', async () => {
    const { results, invalidations, mm } = await runMm([create, anon(8), ...stores(8), subscribe(), numaScan, load(3), load(3), store(5, 7), store(5, 8)]);
    expect(ret(results[11])).toBe(8); // PTEs updated
    expect(invalidations.map((i) => [i.event, i.start, i.end])).toEqual([['MMU_NOTIFY_PROTECTION_VMA', A, A + 8 * PAGE_SIZE]]);
    expect([faults(results[12]), val(results[12])]).toEqual([1, 103]);
    expect(faults(results[13])).toBe(0); // restored
    // An exclusive anon page comes back writable (can_change_pte_writable): one fault for the store.
    expect(faults(results[14])).toBe(1);
    expect(faults(results[15])).toBe(0);
    expect(mm).toMatchObject({ numaPteUpdates: 8, numaHintFaults: 2, numaHintFaultsLocal: 2, cowCopies: 0 });
    expect(mm.cpuFaultsByKind.numa).toBe(2);
  });

  it('skips what the kernel skips: the zero page, pages shared after fork, PTEs already protnone, read-only file VMAs — and still invalidates', async () => {
    const { results, invalidations, mm } = await runMm([
      create, anon(4), store(0, 1), store(1, 2), load(2), // page 2: the zero page; page 3: none
      { msg: { type: 'fork', pid: 1 } as never }, // pages 0, 1 now shared copy-on-write
      numaScan, store(0, 3), numaScan, numaScan,
    ]);
    expect(ret(results[6])).toBe(0); // nothing to update…
    // page 0 is the parent's own copy now; the next scan updates it, the one after finds it protnone.
    expect(ret(results[8])).toBe(1);
    expect(ret(results[9])).toBe(0);
    expect(mm.numaPteSkips).toEqual({ zero_page: 3, shared_cow: 4, protnone: 1 });
    // …but a populated range is invalidated first whatever is then skipped (change_pud_range).
    expect(mm.invalidationsByEvent.MMU_NOTIFY_PROTECTION_VMA).toBe(3);
    expect(invalidations).toHaveLength(0); // (no subscriber here)
  });

  it('hmm_range_fault reports a protnone page as not valid, and faults it back (do_numa_page) when asked to', async () => {
    const lock: Step = { msg: { type: 'mmap_read_lock', pid: 1 } as never };
    const hmm = (flags: number): Step => (r) => ({
      msg: { type: 'hmm_range_fault', sub: 1, notifier_seq: (r.filter((x) => x.type === 'read_begin_result').at(-1) as unknown as { seq: number }).seq, start: A, end: A + 2 * PAGE_SIZE, default_flags: flags, pfn_flags_mask: 0, dev_private_owner: null } as never,
    });
    const { results, mm } = await runMm([
      create, anon(2), ...stores(2), numaScan, subscribe(), { msg: { type: 'mmu_interval_read_begin', sub: 1 } as never }, lock, hmm(0), hmm(HMM_PFN_REQ_FAULT),
    ]);
    expect([...(results[8] as unknown as { flags: Uint8Array }).flags]).toEqual([0, 0]);
    expect(ret(results[9])).toBe(0);
    expect([...(results[9] as unknown as { flags: Uint8Array }).flags].every((f) => f & HMM_PFN_VALID)).toBe(true);
    expect(mm.numaHintFaults).toBe(2);
  });

  it('is off unless configured; configured, it scans periodically with the kernel\'s defaults overridable', async () => {
    const steps = [create, anon(4), ...stores(4), subscribe(), { sleepNs: 5e6 } as Step, load(0)];
    const off = await runMm(steps);
    expect(off.mm.numaScans).toBe(0);
    expect(faults(off.results[7])).toBe(0);
    const on = await runMm(steps, { mm: { numaBalancing: { scanDelayNs: 1e6, scanPeriodNs: 1e6 } } });
    expect(on.mm.numaScans).toBeGreaterThanOrEqual(4);
    expect(on.invalidations.some((i) => i.event === 'MMU_NOTIFY_PROTECTION_VMA')).toBe(true);
    expect(faults(on.results[7])).toBe(1); // a hinting fault
  });
});

describe('clear_refs 4 and pagemap bit 55 (soft-dirty)', () => {
  it('invalidates the whole mm (SOFT_DIRTY), write-protects and cleans every PTE; the next write reuses the page and is soft-dirty again', async () => {
    const { results, invalidations, mm } = await runMm([create, anon(4), ...stores(4), subscribe(), pagemap(4), clearRefs('4'), pagemap(4), store(2, 9), pagemap(4), store(2, 10)]);
    expect(bits(results[7], PM_SOFT_DIRTY)).toEqual([1, 1, 1, 1]); // VM_SOFTDIRTY of a new VMA
    expect(ret(results[8])).toBe(0);
    expect(invalidations.map((i) => [i.event, i.start, i.end])).toEqual([['MMU_NOTIFY_SOFT_DIRTY', A, A + 64 * PAGE_SIZE]]); // clipped to the subscription
    expect(bits(results[9], PM_SOFT_DIRTY)).toEqual([0, 0, 0, 0]);
    expect(bits(results[9], PM_PRESENT)).toEqual([1, 1, 1, 1]);
    expect(faults(results[10])).toBe(1); // write-protected: a write fault…
    expect(bits(results[11], PM_SOFT_DIRTY)).toEqual([0, 0, 1, 0]);
    const pfn = (m: Message) => (m as unknown as PagemapResult).pfns[2];
    expect(pfn(results[11])).toBe(pfn(results[9])); // …that reused the exclusive page (no copy)
    expect(faults(results[12])).toBe(0);
    expect(mm).toMatchObject({ cowCopies: 0, clearRefsSoftDirty: 1 });
  });

  it('leaves a pinned page of a private mapping writable (pte_is_pinned); refuses the values it does not model', async () => {
    const { results } = await runMm([
      create, anon(2), ...stores(2),
      { msg: { type: 'get_user_pages', pid: 1, start: A, nr_pages: 1, gup_flags: 1, pin: true } as never },
      clearRefs('4'), store(0, 5), store(1, 6), clearRefs('1'), clearRefs(' 9 '), pagemap(2),
    ]);
    expect(faults(results[6])).toBe(0); // pinned: still writable
    expect(faults(results[7])).toBe(1);
    expect(ret(results[8])).toBe(EOPNOTSUPP);
    expect((results[8] as unknown as { error: string }).error).toMatch(/only 4 \(CLEAR_REFS_SOFT_DIRTY\)/);
    expect(ret(results[9])).toBe(EINVAL);
    expect(bits(results[10], PM_SOFT_DIRTY)).toEqual([1, 1]); // the pinned PTE kept its bit too
  });
});

/** A secondary MMU with a full mmu_notifier (as KVM): it reports young the page addresses in `young`. */
function secondaryMmu(young: Set<number>, asked: number[]): Actor<Message> {
  let waiting: Envelope<Message> | undefined;
  return {
    receive(env, ctx) {
      const m = env.msg as unknown as { type: string; pid: number; ops: boolean; addrs: Float64Array };
      if (m.type === 'register') {
        waiting = env;
        ctx.request('mm', { type: 'mmu_notifier_register', pid: m.pid, clear_flush_young: m.ops, clear_young: m.ops, test_young: m.ops } as never);
      } else if (m.type === 'mmu_notifier_register_result') {
        ctx.reply(waiting!, env.msg);
      } else if (m.type === 'mmu_notifier_clear_flush_young') {
        asked.push(...m.addrs);
        ctx.reply(env, { type: 'mmu_notifier_young_result', young: Uint8Array.from(m.addrs, (a) => (young.has(a) ? 1 : 0)) } as never);
      }
    },
    summary: () => ({}),
  };
}

describe('folio_referenced and secondary MMUs (mmu_notifier clear_flush_young)', () => {
  const reclaimTwice: Step[] = [{ msg: { type: 'reclaim', nr_pages: 8 } as never }, { msg: { type: 'reclaim', nr_pages: 8 } as never }];
  const run = async (register: 'full' | 'full-without-young' | 'interval' | 'none') => {
    const asked: number[] = [];
    const reg: Step[] = register === 'full' || register === 'full-without-young'
      ? [{ to: 'kvm0', msg: { type: 'register', pid: 1, ops: register === 'full' } as never }]
      : register === 'interval' ? [subscribe()] : [];
    const r = await runMm([create, anon(8), ...stores(8), ...reg, ...reclaimTwice, pagemap(8)], {
      mm: { frames: 64, swapPages: 64 },
      extra: [{ id: 'kvm0', actor: secondaryMmu(new Set([A + 3 * PAGE_SIZE]), asked) }],
    });
    return { present: bits(r.results.at(-1)!, PM_PRESENT), asked, mm: r.mm };
  };

  it('keeps the page a registered secondary MMU reports young; others are reclaimed', async () => {
    const { present, asked, mm } = await run('full');
    expect(present).toEqual([0, 0, 0, 1, 0, 0, 0, 0]);
    expect(asked).toContain(A + 3 * PAGE_SIZE);
    expect(mm.secondaryMmuYoung).toBeGreaterThanOrEqual(1);
  });

  it('without clear_flush_young, or with an interval notifier only (every driver of ours), nothing keeps it', async () => {
    for (const how of ['full-without-young', 'interval', 'none'] as const) {
      const { present, asked } = await run(how);
      expect(present, how).toEqual([0, 0, 0, 0, 0, 0, 0, 0]);
      expect(asked, how).toEqual([]);
    }
  });
});

describe('the mmap_lock contract of hmm_range_fault and migrate_vma_setup (mmap_assert_locked)', () => {
  const hmm: Step = (r) => ({
    msg: { type: 'hmm_range_fault', sub: 1, notifier_seq: (r.filter((x) => x.type === 'read_begin_result').at(-1) as unknown as { seq: number }).seq, start: A, end: A + PAGE_SIZE, default_flags: HMM_PFN_REQ_FAULT, pfn_flags_mask: 0, dev_private_owner: null } as never,
  });
  const setup: Step = { msg: { type: 'migrate_vma_setup', pid: 1, start: A, end: A + PAGE_SIZE, flags: MIGRATE_VMA_SELECT_SYSTEM, pgmap_owner: 'app' } as never };

  it('refuses a requester that does not hold the lock, with a precise error, counted; read or write lock held: served', async () => {
    const { results, mm } = await runMm([
      create, anon(2), subscribe(), { msg: { type: 'mmu_interval_read_begin', sub: 1 } as never },
      hmm, setup,
      { msg: { type: 'mmap_read_lock', pid: 1 } as never }, hmm, { msg: { type: 'mmap_read_unlock', pid: 1 } as never },
      { msg: { type: 'mmap_write_lock', pid: 1 } as never }, hmm,
    ]);
    for (const [i, what] of [[4, 'hmm_range_fault'], [5, 'migrate_vma_setup']] as const) {
      expect(ret(results[i])).toBe(EINVAL);
      expect((results[i] as unknown as { error: string }).error).toBe(`mm: ${what}: app does not hold mmap_lock of pid 1 (mmap_assert_locked: take mmap_read_lock around it)`);
    }
    expect(ret(results[7])).toBe(0);
    expect(ret(results[10])).toBe(0);
    expect(mm).toMatchObject({ mmapLockContractViolations: 2, mmapLockContractViolationsBy: { 'app:hmm_range_fault': 1, 'app:migrate_vma_setup': 1 }, hmmRangeFaults: 2 });
  });
});
