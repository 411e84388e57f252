// Pages a script holds: a `pin` or `gup` step's pages stay pinned (pin_user_pages*, FOLL_PIN) or
// referenced (get_user_pages*, FOLL_GET) until an `unpin` step releases them, as a driver holds the
// pages of a DMA in flight. Each page keeps what it holds oldest first; an unpin releases the
// oldest of each page of its range: a pin with unpin_user_pages_dirty_lock (make_dirty) if taken
// for writing, else unpin_user_pages; a reference with put_page (set_page_dirty_lock first if
// taken for writing). A page of the range holding nothing makes the step's ret -EINVAL (the others
// are released all the same).
import { EINVAL, PAGE_SIZE, type UnpinUserPages } from '@svmsim/kernel-mm';
import type { Got } from './expectations.js';
import type { App, Proc } from './state.js';

/** Record the first `n` pfns a pin of the pages from `addr` returned. */
export function holdPins(proc: Proc, addr: number, pfns: Float64Array, n: number, write: boolean, pin = true): void {
  for (let i = 0; i < n; i++) {
    const page = addr + i * PAGE_SIZE;
    proc.pins.set(page, [...(proc.pins.get(page) ?? []), { pfn: pfns[i], write, pin }]);
  }
}

/** Release the oldest pin of each of `pages` pages from `addr` (fire and forget, as the kernel's). */
export function releasePins(app: App, proc: Proc, addr: number, pages: number): Got {
  // [pin, make_dirty] → pfns
  const groups = new Map<string, number[]>();
  let missing = 0;
  let released = 0;
  for (let i = 0; i < pages; i++) {
    const page = addr + i * PAGE_SIZE;
    const held = proc.pins.get(page);
    const pin = held?.shift();
    if (held && held.length === 0) proc.pins.delete(page);
    if (!pin) {
      missing++;
      continue;
    }
    const key = `${pin.pin}/${pin.write}`;
    groups.set(key, [...(groups.get(key) ?? []), pin.pfn]);
    released++;
  }
  for (const [key, pfns] of groups) {
    const [pin, make_dirty] = key.split('/').map((b) => b === 'true');
    app.io.send(app.mm, { type: 'unpin_user_pages', pfns: Float64Array.from(pfns), make_dirty, pin } satisfies UnpinUserPages);
  }
  return { ret: missing > 0 ? EINVAL : 0, unpinned: released };
}
