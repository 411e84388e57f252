// mm's counters for the trace (`mm_counters`, in pages): what /proc/meminfo and vmstat would show.
import type { Kernel } from './kernel.js';

export function mmCounters(k: Kernel): Record<string, number> {
  let anon = 0, file = 0;
  for (const p of k.procs.values()) {
    anon += p.rssAnon;
    file += p.rssFile;
  }
  return { free: k.pm.nrFree, pinned: k.pm.nrPinned, swap_used: k.swap.nrSlots - k.swap.nrFree, rss_anon: anon, rss_file: file };
}
