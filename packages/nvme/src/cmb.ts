// The controller memory buffer published as P2P memory: nvme_map_cmb (drivers/nvme/host/pci.c)
// registers the CMB BAR with pci_p2pdma_add_resource and, when it can hold data (CMBSZ.WDS and
// RDS), pci_p2pmem_publish(pdev, true). Other devices find it with pci_p2pmem_find_many (the
// closest published provider by pci_p2pdma_distance_many) and carve buffers out of it with
// pci_alloc_p2pmem. Followed: v6.6 (pci.c) and drivers/pci/p2pdma.c of the same release.
import { pci_p2pdma_distance_many, type PciTopology } from './p2pdma.js';

/** The largest CMB a scenario may give a controller, in 4 KiB pages (1 GiB). */
export const CMB_PAGES_LIMIT = 1 << 18;

export class P2pMemProvider {
  readonly device: string;
  readonly pages: number;
  published = false;
  /** Per page: allocated by pci_alloc_p2pmem. */
  readonly allocated: Uint8Array;
  /** Per page: the content token last DMA'd into it. */
  readonly content: Float64Array;

  constructor(device: string, pages: number) {
    if (!Number.isInteger(pages) || pages < 1 || pages > CMB_PAGES_LIMIT) {
      throw new RangeError(`cmb of ${device}: pages ${pages} must be an integer in [1, ${CMB_PAGES_LIMIT}]`);
    }
    this.device = device;
    this.pages = pages;
    this.allocated = new Uint8Array(pages);
    this.content = new Float64Array(pages);
  }

  /** pci_p2pmem_publish. */
  publish(publish: boolean): void {
    this.published = publish;
  }

  /** pci_alloc_p2pmem: first fit of `count` contiguous pages; the first page, or -1 (NULL). */
  alloc(count: number): number {
    let run = 0;
    for (let i = 0; i < this.pages; i++) {
      run = this.allocated[i] ? 0 : run + 1;
      if (run === count) {
        const first = i - count + 1;
        this.allocated.fill(1, first, i + 1);
        return first;
      }
    }
    return -1;
  }

  /** pci_free_p2pmem. */
  free(first: number, count: number): void {
    for (let i = first; i < first + count; i++) {
      if (!this.allocated[i]) throw new Error(`p2pmem of ${this.device}: page ${i} freed but not allocated`);
    }
    this.allocated.fill(0, first, first + count);
  }
}

/**
 * pci_p2pmem_find_many: among published providers, those at the least distance from every client;
 * the kernel picks one of the ties at random, this model the first (deterministic runs).
 */
export function pci_p2pmem_find_many<P extends Pick<P2pMemProvider, 'device' | 'published'>>(topo: PciTopology, providers: readonly P[], clients: readonly string[]): P | undefined {
  let best: P | undefined;
  let bestDist = Infinity;
  for (const p of providers) {
    if (!p.published) continue;
    const d = pci_p2pdma_distance_many(topo, p.device, clients);
    if (d >= 0 && d < bestDist) {
      best = p;
      bestDist = d;
    }
  }
  return best;
}
