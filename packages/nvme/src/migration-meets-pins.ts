// What a migration attempt does to a page a direct I/O holds pinned (mm/migrate.c migrate_pages,
// mm/rmap.c try_to_migrate_one, mm/compaction.c isolate_migratepages_block; v6.6, as errata.md §8
// reads them). A pin does not stop the invalidation: the page is unmapped (every device mapping
// invalidated) and the move then fails in folio_migrate_mapping with -EAGAIN, retried for
// NR_MAX_MIGRATE_PAGES_RETRY passes, each pass unmapping (and invalidating) again. Two exceptions:
// compaction skips an anon page whose refcount exceeds its mapcount before isolating it (no
// invalidation), and an exclusive anon page that is folio_maybe_dma_pinned gives up at unmap
// (__folio_try_share_anon_rmap → -EBUSY) before the notifier.

/** NR_MAX_MIGRATE_PAGES_RETRY (mm/migrate.c). */
export const NR_MAX_MIGRATE_PAGES_RETRY = 10;

export type MigrateReason = 'compaction' | 'numa';
export type PageKind = 'anon-exclusive' | 'shared-anon' | 'file';

export interface MigrateOutcome {
  readonly migrated: boolean;
  /** Passes that tried the page (1 when it moved at once). */
  readonly attempts: number;
  /** mmu_notifier_invalidate_range_start calls it cost. */
  readonly invalidations: number;
  /** Skipped before isolation (compaction's refcount check). */
  readonly skipped: boolean;
}

export function migrate_page_under_pin(pinned: boolean, kind: PageKind, reason: MigrateReason): MigrateOutcome {
  if (!pinned) return { migrated: true, attempts: 1, invalidations: 1, skipped: false };
  if (reason === 'compaction' && kind !== 'file') return { migrated: false, attempts: 0, invalidations: 0, skipped: true };
  const perPass = kind === 'anon-exclusive' ? 0 : 1;
  return { migrated: false, attempts: NR_MAX_MIGRATE_PAGES_RETRY, invalidations: NR_MAX_MIGRATE_PAGES_RETRY * perPass, skipped: false };
}
