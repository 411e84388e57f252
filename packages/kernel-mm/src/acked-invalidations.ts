// What an unsafe driver twin keeps to count its bug's act, not its window: per subscription, the
// newest cur_seq among the invalidations it acked (ok) over each address. A mirror access through a
// translation validated at a `seq` below that is exactly what the checker's stale_translation rule
// (checker.ts) flags, since the ack reaches mm before the access on the same channel. So a seed
// counts in an unsafe twin's denominator when the twin made such an access, not when read_retry
// merely said stale (the invalidation may have covered other pages of the subscription) or an early
// ack merely happened (no access may follow it). Only the unsafe twins keep it.
import { paint, pieceAt, type Piece } from './interval-pieces.js';
import type { Invalidate } from './protocol.js';

interface Acked extends Piece {
  seq: number;
}

export class AckedInvalidations {
  private readonly bySub = new Map<number, Acked[]>();

  /** The driver acked `inv` with ok=true. */
  acked(inv: Invalidate): void {
    let pieces = this.bySub.get(inv.sub);
    if (!pieces) this.bySub.set(inv.sub, (pieces = []));
    paint(pieces, inv.start, inv.end, { seq: inv.cur_seq }, (q, p) => q.seq >= p.seq, (a, b) => a.seq === b.seq);
  }

  /** A mirror access at `addr` through a translation of `sub` validated at `seq` is stale. */
  stale(sub: number, addr: number, seq: number): boolean {
    const hit = pieceAt(this.bySub.get(sub) ?? [], addr);
    return hit !== undefined && hit.seq > seq;
  }
}
