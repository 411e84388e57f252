// migrate_pages' retry passes (mm/migrate.c v6.15: migrate_pages_batch, NR_MAX_MIGRATE_PAGES_RETRY)
// against pins: a pin that ends during the passes lets the page migrate; one that outlasts the ten
// passes leaves it, each pass having invalidated again; a maybe-pinned page of a COW mapping is not
// attempted (NUMA balancing's prot_numa skip, mm/mprotect.c change_pte_range).
import { describe, expect, it } from 'vitest';
import type { Message } from '@svmsim/runtime';
import { FOLL_WRITE, MAP_ANONYMOUS, MAP_PRIVATE, MAP_SHARED, PAGE_SIZE, PROT_READ, PROT_WRITE, type GetUserPagesResult } from '@svmsim/kernel-mm';
import { DEFAULT_COSTS } from '@svmsim/kernel-mm/kernel';
import { NR_MAX_MIGRATE_PAGES_RETRY } from '@svmsim/kernel-mm/migrate';
import { ret, runMm, val, type Step } from '@svmsim/kernel-mm/testing/mm-harness';

const RW = PROT_READ | PROT_WRITE;
const A = 16 * 1024 * 1024;
const create: Step = { msg: { type: 'process_create' } as never };
const map = (flags: number): Step => ({ msg: { type: 'mmap', pid: 1, addr: 0, length: 4 * PAGE_SIZE, prot: RW, flags } as never });
const store = (page: number, value: number): Step => ({ msg: { type: 'cpu_access', pid: 1, addr: A + page * PAGE_SIZE, write: true, value } as never });
const load = (page: number): Step => ({ msg: { type: 'cpu_access', pid: 1, addr: A + page * PAGE_SIZE, write: false } as never });
const pin: Step = { msg: { type: 'get_user_pages', pid: 1, start: A, nr_pages: 1, gup_flags: FOLL_WRITE, pin: true } as never };
/** The script as a mirroring driver over the range: it sees (and acks) every invalidation. */
const subscribe: Step = { msg: { type: 'mmu_interval_notifier_insert', pid: 1, start: A, length: 4 * PAGE_SIZE } as never };
const clears = (inv: { event: string }[]) => inv.filter((i) => i.event === 'MMU_NOTIFY_CLEAR' || i.event === 'clear').length;
const migrate: Message = { type: 'migrate_pages', pid: 1, addr: A, nr_pages: 1 } as never;
/** migrate_pages of page 0 while the pin of step `pinStep` is released `unpinAfterNs` later (an O_DIRECT completing). */
const migrateWhilePinned = (pinStep: number, unpinAfterNs: number): Step => (r) => ({
  group: [
    { msg: migrate },
    { msg: { type: 'unpin_user_pages', pfns: (r[pinStep] as unknown as GetUserPagesResult).pfns, make_dirty: true, pin: true } as never, afterNs: unpinAfterNs, noReply: true },
  ],
});
const figures = (m: Message) => m as unknown as { ret: number; retries: number; skipped_pinned: number; failed: number };
const passNs = DEFAULT_COSTS.migratePassNs;

describe('migrate_pages retries (NR_MAX_MIGRATE_PAGES_RETRY)', () => {
  it('a short pin on a shared page that ends during the passes: -EAGAIN, retried, then migrated; the content moves with it', async () => {
    const { results, mm, invalidations } = await runMm(
      [create, map(MAP_SHARED | MAP_ANONYMOUS), store(0, 42), pin, subscribe, migrateWhilePinned(3, 3.5 * passNs), load(0)],
      { mm: { checkInvariants: true } },
    );
    const m = figures(results[5]);
    expect(m.ret).toBe(1);
    expect(m.retries).toBeGreaterThanOrEqual(1);
    expect(m.retries).toBeLessThan(NR_MAX_MIGRATE_PAGES_RETRY - 1);
    expect(mm.migrationRetries).toBe(m.retries);
    expect(mm.migratedAfterRetry).toBe(1);
    expect(mm.migrations).toBe(1);
    expect(val(results[6])).toBe(42);
    // Every pass unmapped the page again: one MMU_NOTIFY_CLEAR per attempt.
    expect(clears(invalidations)).toBe(m.retries + 1);
  });

  it('a pin that outlasts the ten passes leaves the page: 9 retries, -EAGAIN, counted as failed', async () => {
    const { results, mm, invalidations } = await runMm(
      [create, map(MAP_SHARED | MAP_ANONYMOUS), store(0, 7), pin, subscribe, migrateWhilePinned(3, 100 * passNs), load(0)],
      { mm: { checkInvariants: true } },
    );
    const m = figures(results[5]);
    expect(m.ret).toBe(0);
    expect(m.retries).toBe(NR_MAX_MIGRATE_PAGES_RETRY - 1);
    expect(m.failed).toBe(1);
    expect(mm.migrationsFailed).toBe(1);
    expect(mm.migrations).toBe(0);
    expect(clears(invalidations)).toBe(NR_MAX_MIGRATE_PAGES_RETRY);
    expect(val(results[6])).toBe(7);
  });

  it('a pinned page of a private (COW) mapping is not attempted: no invalidation, no retry (prot_numa skip)', async () => {
    const { results, mm, invalidations } = await runMm([create, map(MAP_PRIVATE | MAP_ANONYMOUS), store(0, 5), pin, subscribe, migrateWhilePinned(3, 3.5 * passNs)]);
    const m = figures(results[5]);
    expect(m.ret).toBe(0);
    expect(m.skipped_pinned).toBe(1);
    expect(m.retries).toBe(0);
    expect(mm.migrationsSkippedPinned).toBe(1);
    expect(clears(invalidations)).toBe(0);
  });

  it('an unpinned page migrates at the first pass; the same seed gives the same figures twice', async () => {
    const steps = (): Step[] => [create, map(MAP_SHARED | MAP_ANONYMOUS), store(0, 1), pin, migrateWhilePinned(3, 3.5 * passNs)];
    const a = await runMm(steps(), { seed: 5 });
    const b = await runMm(steps(), { seed: 5 });
    expect(figures(a.results[4])).toEqual(figures(b.results[4]));
    const free = await runMm([create, map(MAP_SHARED | MAP_ANONYMOUS), store(0, 1), { msg: migrate }]);
    expect(figures(free.results[3])).toMatchObject({ ret: 1, retries: 0 });
    expect(ret(free.results[3])).toBe(1);
  });
});
