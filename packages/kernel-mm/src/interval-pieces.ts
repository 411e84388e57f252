// A sorted list of disjoint address pieces, each carrying a value, painted over range by range
// where a newer value wins: the checker's map of acked invalidations per subscription, and the
// unsafe twins' own copy of it (acked-invalidations.ts).

export interface Piece {
  start: number;
  end: number;
}

/** Index of the last element with start <= x (-1 if none); `a` sorted by start. */
export function lastAtOrBefore(a: readonly { start: number }[], x: number): number {
  let lo = 0, hi = a.length - 1, r = -1;
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    if (a[mid].start <= x) { r = mid; lo = mid + 1; } else hi = mid - 1;
  }
  return r;
}

/** The piece covering `x`, if any. */
export function pieceAt<P extends Piece>(pieces: readonly P[], x: number): P | undefined {
  const k = lastAtOrBefore(pieces, x);
  return k >= 0 && pieces[k].end > x ? pieces[k] : undefined;
}

/**
 * Paint [s, e) with `p`. Where an old piece `q` overlaps, `keeps(q, p)` says whether q stays
 * there; `same(a, b)` lets adjacent pieces of one value merge.
 */
export function paint<P extends Piece>(pieces: P[], s: number, e: number, p: Omit<P, 'start' | 'end'>, keeps: (q: P, p: Omit<P, 'start' | 'end'>) => boolean, same: (a: P, b: P) => boolean): void {
  let i = lastAtOrBefore(pieces, s);
  if (i < 0 || pieces[i].end <= s) i++;
  const out: P[] = [];
  const push = (q: P): void => {
    const last = out[out.length - 1];
    if (last && same(last, q) && last.end === q.start) last.end = q.end;
    else if (q.start < q.end) out.push(q);
  };
  const of = (start: number, end: number) => ({ ...p, start, end }) as P;
  let cur = s, j = i;
  for (; j < pieces.length && pieces[j].start < e; j++) {
    const q = pieces[j];
    if (q.start > cur) push(of(cur, q.start));
    if (q.start < s) push({ ...q, end: s });
    const lo = Math.max(q.start, s), hi = Math.min(q.end, e);
    push(keeps(q, p) ? { ...q, start: lo, end: hi } : of(lo, hi));
    if (q.end > e) push({ ...q, start: e });
    cur = hi;
  }
  if (cur < e) push(of(cur, e));
  pieces.splice(i, j - i, ...out);
}
