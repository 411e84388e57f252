// The data oracle's pin ledger: every pin (FOLL_PIN, pin_user_pages) and reference (FOLL_GET,
// get_user_pages) a taker gets from gup is given back (unpin_user_pages / put_user_pages), by the
// end of a run that tore down every device buffer before its final dump. A leaked pin keeps the
// frame from reclaim, migration and compaction forever, and a leaked reference keeps it allocated:
// the kernel never sees it, so only the ledger can. Read from gup.ts's trace events
// ({by, pfns}); the zero page is not counted (gup takes no reference on it here, as the kernel).
// The harness's pin figures (analysis/pins.ts: hold times per taker) read the same ledger.
import type { TraceLine } from '@svmsim/runtime';
import { ZERO_PFN } from './protocol.js';

/** Trace lines kept per taker as the proof of a leak. */
const PROOF_LINES_MAX = 3;

/** One pin or reference held on a frame: who took it, which kind, at which trace line and time. */
export interface Hold {
  by: string;
  pin: boolean;
  line: number;
  t: number;
}

export interface PinLeak {
  by: string;
  pin: boolean;
  frames: number;
  firstT: number;
  lines: number[];
}

export class PinLedger {
  static readonly events: readonly string[] = ['pin_user_pages', 'get_user_pages', 'unpin_user_pages', 'put_user_pages'];
  /** frame → its holds, oldest first. */
  private readonly held = new Map<number, Hold[]>();

  /** Releases that matched no hold (an unpin of a frame the trace never saw pinned). */
  unmatchedReleases = 0;

  /** One gup trace line: a take records a hold per frame; a release returns the holds it gave back. */
  line(l: TraceLine, index: number): Hold[] {
    const pin = l.ev === 'pin_user_pages' || l.ev === 'unpin_user_pages';
    const take = l.ev === 'pin_user_pages' || l.ev === 'get_user_pages';
    const by = typeof l.by === 'string' ? l.by : '?';
    const released: Hold[] = [];
    for (const pfn of (l.pfns as number[] | undefined) ?? []) {
      if (pfn === ZERO_PFN) continue;
      let list = this.held.get(pfn);
      if (take) {
        if (!list) this.held.set(pfn, (list = []));
        list.push({ by, pin, line: index, t: l.t });
        continue;
      }
      // The taker's own hold of that kind first; another's only if it holds none (a correct
      // driver never needs that: an O_DIRECT bio releases the process's pins, though).
      let i = list ? list.findIndex((h) => h.pin === pin && h.by === by) : -1;
      if (i < 0 && list) i = list.findIndex((h) => h.pin === pin);
      if (i < 0) {
        this.unmatchedReleases++;
        continue;
      }
      released.push(list!.splice(i, 1)[0]);
      if (list!.length === 0) this.held.delete(pfn);
    }
    return released;
  }

  /** Every hold still open, frame by frame. */
  *holds(): IterableIterator<Hold> {
    for (const list of this.held.values()) yield* list;
  }

  /** What is still held, per taker and kind. */
  leaks(): PinLeak[] {
    const out = new Map<string, PinLeak>();
    for (const h of this.holds()) {
      const k = `${h.by}/${h.pin}`;
      let x = out.get(k);
      if (!x) out.set(k, (x = { by: h.by, pin: h.pin, frames: 0, firstT: h.t, lines: [] }));
      x.frames++;
      x.firstT = Math.min(x.firstT, h.t);
      if (x.lines.length < PROOF_LINES_MAX && !x.lines.includes(h.line)) x.lines.push(h.line);
    }
    return [...out.values()];
  }
}
