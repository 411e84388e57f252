// How a scenario's words become mm's arguments: protection strings, mmap flags for each kind of
// VMA, madvise advice, and errno names.
import {
  ERRNO_NAMES, MADV_DONTNEED, MADV_MERGEABLE, MADV_PAGEOUT, MAP_ANONYMOUS, MAP_PRIVATE, MAP_SHARED, PROT_EXEC, PROT_NONE, PROT_READ, PROT_WRITE,
} from '@svmsim/kernel-mm';
import { ETIMEDOUT } from '@svmsim/kernel-mm/dmirror';
import type { VmaSpec } from '../scenario/types.js';

/** "rw", "r", "rwx", "none", … → PROT_* bits; undefined for anything else. */
export function parseProt(prot: string): number | undefined {
  if (prot === 'none') return PROT_NONE;
  if (prot.length === 0) return undefined;
  let bits = 0;
  for (const c of prot) {
    const bit = c === 'r' ? PROT_READ : c === 'w' ? PROT_WRITE : c === 'x' ? PROT_EXEC : undefined;
    if (bit === undefined || bits & bit) return undefined;
    bits |= bit;
  }
  return bits;
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

export const ADVICE = { dontneed: MADV_DONTNEED, mergeable: MADV_MERGEABLE, pageout: MADV_PAGEOUT } as const;

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
