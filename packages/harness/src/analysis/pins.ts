// gup and pins in a trace (kernel-mm's gup.ts: `pin_user_pages` / `get_user_pages` {pid, start,
// nr_pages, gup_flags, by, pfns}, `unpin_user_pages` / `put_user_pages` {by, pfns}). A pin's hold
// time is per frame, from the pin to the unpin that releases it: the oldest hold of that kind on the
// frame by the same taker (by another only if the taker holds none, which a correct driver never
// needs). Memory: one entry per frame held.
import { FOLL_LONGTERM, ZERO_PFN } from '@svmsim/kernel-mm';
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
  /** frame → when each pin or reference on it was taken, oldest first, with its taker. */
  private readonly held = new Map<number, { t: number; by: string; pin: boolean }[]>();
  unmatchedReleases = 0;

  line(l: TraceLine): void {
    switch (l.ev) {
      case 'pin_user_pages':
      case 'get_user_pages': {
        const pin = l.ev === 'pin_user_pages';
        const by = (l.by as string) ?? '?';
        const tk = this.taker(by, pin);
        tk.calls++;
        tk.pages += l.nr_pages as number;
        if ((l.gup_flags as number) & FOLL_LONGTERM) tk.longterm++;
        for (const pfn of (l.pfns as number[]) ?? []) {
          if (pfn === ZERO_PFN) continue;
          let list = this.held.get(pfn);
          if (list === undefined) this.held.set(pfn, (list = []));
          list.push({ t: l.t, by, pin });
        }
        return;
      }
      case 'unpin_user_pages':
      case 'put_user_pages': {
        const pin = l.ev === 'unpin_user_pages';
        for (const pfn of (l.pfns as number[]) ?? []) {
          if (pfn === ZERO_PFN) continue;
          const list = this.held.get(pfn);
          const by = (l.by as string) ?? '?';
          let i = list ? list.findIndex((h) => h.pin === pin && h.by === by) : -1;
          if (i < 0 && list) i = list.findIndex((h) => h.pin === pin);
          if (i < 0) {
            this.unmatchedReleases++;
            continue;
          }
          const [h] = list!.splice(i, 1);
          if (list!.length === 0) this.held.delete(pfn);
          this.taker(h.by, pin).hold.add(l.t - h.t);
        }
        return;
      }
    }
  }

  /** Frames still held at `tEnd`, and for how long they have been, per taker. */
  stillHeld(tEnd: number): Map<string, Distribution> {
    const out = new Map<string, Distribution>();
    for (const list of this.held.values()) {
      for (const h of list) {
        const k = `${h.by} ${h.pin ? 'pin' : 'get'}`;
        let d = out.get(k);
        if (d === undefined) out.set(k, (d = new Distribution()));
        d.add(tEnd - h.t);
      }
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
