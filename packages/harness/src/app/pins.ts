// Pins a script holds: a `pin` step's pages stay pinned (pin_user_pages, FOLL_PIN) until an `unpin`
// step releases them, as a driver holds the pages of a DMA in flight. Each page keeps its pins
// oldest first; an unpin releases the oldest pin of each page of its range, with
// unpin_user_pages_dirty_lock (make_dirty) for pages pinned for writing and unpin_user_pages for
// the others. A page of the range with no pin held makes the step's ret -EINVAL (the others are
// released all the same).
import { EINVAL, PAGE_SIZE, type UnpinUserPages } from '@svmsim/kernel-mm';
import type { Got } from './expectations.js';
import type { App, Proc } from './state.js';

/** Record the first `n` pfns a pin of the pages from `addr` returned. */
export function holdPins(proc: Proc, addr: number, pfns: Float64Array, n: number, write: boolean): void {
  for (let i = 0; i < n; i++) {
    const page = addr + i * PAGE_SIZE;
    proc.pins.set(page, [...(proc.pins.get(page) ?? []), { pfn: pfns[i], write }]);
  }
}

/** Release the oldest pin of each of `pages` pages from `addr` (fire and forget, as the kernel's). */
export function releasePins(app: App, proc: Proc, addr: number, pages: number): Got {
  const dirty: number[] = [];
  const clean: number[] = [];
  let missing = 0;
  for (let i = 0; i < pages; i++) {
    const page = addr + i * PAGE_SIZE;
    const held = proc.pins.get(page);
    const pin = held?.shift();
    if (held && held.length === 0) proc.pins.delete(page);
    if (!pin) missing++;
    else (pin.write ? dirty : clean).push(pin.pfn);
  }
  for (const [pfns, make_dirty] of [[dirty, true], [clean, false]] as const) {
    if (pfns.length > 0) app.io.send(app.mm, { type: 'unpin_user_pages', pfns: Float64Array.from(pfns), make_dirty, pin: true } satisfies UnpinUserPages);
  }
  return { ret: missing > 0 ? EINVAL : 0, unpinned: dirty.length + clean.length };
}
