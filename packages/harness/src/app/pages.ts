// Which pages of a VMA a workload thread's operations pick (WorkloadPhase.pattern):
//   sequential  a cursor per thread, advanced past each span picked;
//   random      uniform;
//   hot-cold    `hotShare` of the picks fall in the first 10% of the VMA's pages (at least one
//               page), the others uniformly in the rest;
//   strided     a cursor per thread, advanced by `stride` pages each pick.
// Cursors wrap at the VMA's end. A span never runs past the VMA: its first page is pulled back.
import type { Rng } from '@svmsim/runtime';
import type { WorkloadPhase } from '../scenario/types.js';

export class PagePicker {
  private cursor = 0;

  constructor(
    private readonly phase: Pick<WorkloadPhase, 'pattern' | 'hotShare' | 'stride'>,
    private readonly rng: () => Rng,
  ) {}

  /** The first page of a span of `n` pages (1 <= n <= pages) in a VMA of `pages` pages. */
  pick(pages: number, n = 1): number {
    const rng = this.rng();
    let page: number;
    switch (this.phase.pattern) {
      case 'sequential':
        page = this.cursor % pages;
        this.cursor = page + n;
        break;
      case 'strided':
        page = this.cursor % pages;
        this.cursor = page + this.phase.stride;
        break;
      case 'random':
        page = rng.int(pages);
        break;
      case 'hot-cold': {
        const hot = Math.max(1, Math.ceil(pages / 10));
        page = hot >= pages || rng.next() < this.phase.hotShare ? rng.int(hot) : hot + rng.int(pages - hot);
        break;
      }
    }
    return Math.max(0, Math.min(page, pages - n));
  }
}
