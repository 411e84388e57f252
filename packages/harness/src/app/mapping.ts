// How a scenario's words become mm's arguments: protection strings, mmap flags for each kind of
// VMA, madvise advice, and errno names.
import {
  ERRNO_NAMES, MADV_DONTNEED, MADV_FREE, MADV_MERGEABLE, MADV_PAGEOUT, MAP_ANONYMOUS, MAP_PRIVATE, MAP_SHARED,
} from '@svmsim/kernel-mm';
import { parseProt as parseProtOrThrow } from '../scenario/units.js';
import { ETIMEDOUT } from '@svmsim/kernel-mm/dmirror';
import type { VmaSpec } from '../scenario/types.js';

/** "rw", "r", "rwx", "none", … → PROT_* bits (units.ts parses them); undefined for anything else. */
export function parseProt(prot: string): number | undefined {
  try {
    return parseProtOrThrow(prot);
  } catch {
    return undefined;
  }
}

/** The mmap flags of a VMA kind (without MAP_FIXED). */
export function mapFlags(kind: VmaSpec['kind'], shared: boolean): number {
  switch (kind) {
    case 'anon':
      return MAP_PRIVATE | MAP_ANONYMOUS;
    case 'shared-anon':
      return MAP_SHARED | MAP_ANONYMOUS;
    case 'file':
      return shared ? MAP_SHARED : MAP_PRIVATE;
  }
}

export const ADVICE = { dontneed: MADV_DONTNEED, mergeable: MADV_MERGEABLE, pageout: MADV_PAGEOUT, free: MADV_FREE } as const;

/** Every errno mm or a device returns, by name (dmirror adds ETIMEDOUT for requests mm never answered). */
const ERRNOS: Record<number, string> = { ...ERRNO_NAMES, [ETIMEDOUT]: 'ETIMEDOUT' };

/** -14 → "EFAULT"; an unknown code → its number. */
export function errnoName(ret: number): string {
  return ERRNOS[ret] ?? String(ret);
}

/** "EFAULT" → -14; undefined for an unknown name. */
export function errnoValue(name: string): number | undefined {
  for (const [value, n] of Object.entries(ERRNOS)) if (n === name) return Number(value);
  return undefined;
}
