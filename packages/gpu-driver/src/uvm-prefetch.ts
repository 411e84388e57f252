// uvm's density prefetch inside a VA block, as uvm_perf_prefetch.c does it (open-gpu-kernel-modules
// kernel-open/nvidia-uvm, read at commit 10d538dfbd349161507294d61d3b2f92fcfe2593:
// uvm_perf_prefetch_prenotify_fault_migrations, init_bitmap_tree_from_region,
// grow_fault_granularity, compute_prefetch_mask, compute_prefetch_region).
//
//   bitmap      the pages of the block already resident on the faulting GPU (its VRAM) or faulted
//               in this batch, over the region prefetching may cover (for HMM,
//               uvm_hmm_get_prefetch_region: the block clipped to the VMA; here to the BO).
//   big pages   grow_fault_granularity: every 64 KiB big page with a fault and no thrashing page
//               is filled whole (the GPU maps big pages when it can).
//   tree        a binary tree over the region's pages (level_count = log2(roundup_pow_of_two(n)) +
//               1). For each faulted page not thrashing, walk from its leaf to the root and keep the
//               largest subregion where `counter * 100 > pages * threshold` (51 by default): that
//               subregion is prefetched.
//   result      the prefetch mask minus the faulted pages: those are serviced anyway.
//
// Departures: the first-touch rule (a block with nothing resident anywhere whose preferred location
// is the requester is populated whole) never applies: svmsim's processes set no preferred location.
// The big page size is 64 KiB always (UVM asks the GPU's page tables for it).

/** UVM_PREFETCH_THRESHOLD_DEFAULT: percent of a subregion resident or faulted before the rest is prefetched. */
export const UVM_PREFETCH_THRESHOLD_DEFAULT = 51;
/** UVM_PAGE_SIZE_64K / PAGE_SIZE: pages of a big page. */
export const UVM_BIG_PAGE_PAGES = 16;

export interface PrefetchInput {
  /** Pages of the region prefetching may cover, [0, pages) (at most one VA block). */
  pages: number;
  /** Page index of the region's first page within its 2 MiB block (big pages are aligned to the block). */
  firstInBlock: number;
  /** Per page: resident on the faulting GPU. */
  resident: Uint8Array;
  /** Per page: faulted in this batch. */
  faulted: Uint8Array;
  /** Per page: thrashing (uvm_perf_thrashing_get_thrashing_pages). */
  thrashing: Uint8Array;
  /** uvm_perf_prefetch_threshold, 0..100. */
  threshold: number;
  bigPagePages: number;
}

/** The pages to prefetch (not faulted ones), 1 per page of [0, pages). */
export function uvmPrefetchMask(inp: PrefetchInput): Uint8Array {
  const { pages, resident, faulted, thrashing, threshold } = inp;
  if (resident.length < pages || faulted.length < pages || thrashing.length < pages) throw new Error('uvm prefetch: masks shorter than the region');
  const tree = new Uint8Array(pages);
  for (let i = 0; i < pages; i++) tree[i] = resident[i] | faulted[i];
  growFaultGranularity(tree, inp);
  const out = new Uint8Array(pages);
  let leaves = 1;
  while (leaves < pages) leaves *= 2;
  for (let i = 0; i < pages; i++) {
    if (!faulted[i] || thrashing[i]) continue;
    const [first, outer] = computePrefetchRegion(i, tree, pages, leaves, threshold);
    for (let j = first; j < outer; j++) out[j] = 1;
    if (outer === pages) break; // prefetched to the end of the region already
  }
  for (let i = 0; i < pages; i++) if (faulted[i]) out[i] = 0;
  return out;
}

/** grow_fault_granularity: fill each big page (aligned to the block) that has a fault and no thrashing page. */
function growFaultGranularity(tree: Uint8Array, inp: PrefetchInput): void {
  const { pages, firstInBlock, faulted, thrashing, bigPagePages } = inp;
  let start = 0;
  while (start < pages) {
    const outer = Math.min(pages, start + bigPagePages - ((firstInBlock + start) % bigPagePages));
    let anyFault = false;
    let anyThrashing = false;
    for (let j = start; j < outer; j++) {
      anyFault ||= faulted[j] === 1;
      anyThrashing ||= thrashing[j] === 1;
    }
    if (anyFault && !anyThrashing) tree.fill(1, start, outer);
    start = outer;
  }
}

/** compute_prefetch_region: the largest subregion on page i's path to the root denser than `threshold`. */
function computePrefetchRegion(i: number, tree: Uint8Array, pages: number, leaves: number, threshold: number): [number, number] {
  let best: [number, number] = [0, 0];
  for (let size = 1; size <= leaves; size *= 2) {
    const first = i - (i % size);
    const outer = Math.min(pages, first + size);
    let counter = 0;
    for (let j = first; j < outer; j++) counter += tree[j];
    if (counter * 100 > (outer - first) * threshold) best = [first, outer];
  }
  return best;
}
