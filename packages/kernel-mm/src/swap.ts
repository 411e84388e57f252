// Swap space (mm/swapfile.c): slots with a use count per slot (swap_map), as many as the PTEs that
// hold the swap entry (a page shared after fork swaps out to one slot referenced by both).
// The slot's content lives on the block device (dev "swap", block = slot).
import { assert } from './physmem.js';

export class SwapSpace {
  readonly swapMap: Uint16Array;
  private readonly free: Int32Array;
  private freeTop = 0;

  constructor(readonly nrSlots: number) {
    this.swapMap = new Uint16Array(nrSlots);
    this.free = new Int32Array(nrSlots);
    for (let s = nrSlots - 1; s >= 0; s--) this.free[this.freeTop++] = s;
  }

  get nrFree(): number {
    return this.freeTop;
  }

  /** folio_alloc_swap: a slot with count `users`, or -1 when swap is full. */
  alloc(users: number): number {
    if (this.freeTop === 0) return -1;
    const s = this.free[--this.freeTop];
    this.swapMap[s] = users;
    return s;
  }

  dup(slot: number): void {
    assert(this.swapMap[slot] > 0, `swap_duplicate of free slot ${slot}`);
    this.swapMap[slot]++;
  }

  /** swap_free: drop one user; the slot is free at zero. */
  put(slot: number): void {
    assert(this.swapMap[slot] > 0, `swap_free of free slot ${slot}`);
    if (--this.swapMap[slot] === 0) this.free[this.freeTop++] = slot;
  }
}
