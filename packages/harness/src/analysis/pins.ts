// gup and pins in a trace (kernel-mm's gup.ts: `pin_user_pages` / `get_user_pages` {pid, start,
// nr_pages, gup_flags, by, pfns}, `unpin_user_pages` / `put_user_pages` {by, pfns}). A pin's hold
// time is per frame, from the pin to the unpin that releases it: the oldest hold of that kind on the
// frame by the same taker (by another only if the taker holds none, which a correct driver never
// needs; kernel-mm's pin-ledger.ts matches them, for the checker too). Memory: one entry per frame held.
import { FOLL_LONGTERM } from '@svmsim/kernel-mm';
import { PinLedger } from '@svmsim/kernel-mm/pin-ledger';
import type { TraceLine } from '@svmsim/runtime';
import { Distribution } from './distribution.js';

interface Taker {
  calls: number;
  pages: number;
  longterm: number;
  hold: Distribution;
}

export class PinStats {
  /** The `ev`s of the lines it reads: the model hands it only those. */
  static readonly events: readonly string[] = ['pin_user_pages', 'get_user_pages', 'unpin_user_pages', 'put_user_pages'];

  readonly byRequester = new Map<string, { pin: Taker; get: Taker }>();
  /** Who holds what on each frame, and which release gives back which hold (kernel-mm's pin ledger, the checker's too). */
  private readonly ledger = new PinLedger();

  get unmatchedReleases(): number {
    return this.ledger.unmatchedReleases;
  }

  line(l: TraceLine, index: number): void {
    const pin = l.ev === 'pin_user_pages' || l.ev === 'unpin_user_pages';
    if (l.ev === 'pin_user_pages' || l.ev === 'get_user_pages') {
      const tk = this.taker((l.by as string) ?? '?', pin);
      tk.calls++;
      tk.pages += l.nr_pages as number;
      if ((l.gup_flags as number) & FOLL_LONGTERM) tk.longterm++;
    }
    for (const h of this.ledger.line(l, index)) this.taker(h.by, pin).hold.add(l.t - h.t);
  }

  /** Frames still held at `tEnd`, and for how long they have been, per taker. */
  stillHeld(tEnd: number): Map<string, Distribution> {
    const out = new Map<string, Distribution>();
    for (const h of this.ledger.holds()) {
      const k = `${h.by} ${h.pin ? 'pin' : 'get'}`;
      let d = out.get(k);
      if (d === undefined) out.set(k, (d = new Distribution()));
      d.add(tEnd - h.t);
    }
    return out;
  }

  private taker(by: string, pin: boolean): Taker {
    let t = this.byRequester.get(by);
    if (t === undefined) {
      const fresh = (): Taker => ({ calls: 0, pages: 0, longterm: 0, hold: new Distribution() });
      this.byRequester.set(by, (t = { pin: fresh(), get: fresh() }));
    }
    return pin ? t.pin : t.get;
  }
}
