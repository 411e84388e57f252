// A full consistency check of mm's state, run after every message when `checkInvariants` is set
// (tests and seed sweeps of small machines): every PTE against the frame it names, every frame's
// counts against the PTEs, pins and caches that hold it. O(frames + PTEs in VMAs): for small
// machines only.
import type { Kernel } from './kernel.js';
import type { Process } from './process.js';
import { PTE_DEVICE_EXCLUSIVE, PTE_KIND_MASK, PTE_MIGRATION, PTE_MIGRATION_DEVICE, PTE_PRESENT, PTE_SWAP, PTE_WRITE, VPN_LIMIT } from './page-table.js';
import { InvariantError, PG_ANON, PG_KSM, PG_USED, type Physmem } from './physmem.js';
import { GUP_PIN_COUNTING_BIAS, ZERO_PFN } from './protocol.js';

/** Why the check failed. (Not assert(): its message would be built for every frame after every message.) */
function fail(what: string): never {
  throw new InvariantError(`invariant: ${what}`);
}

/**
 * The PTE table holds more entries than the VMAs cover: find the first stray with one pass over the
 * address space in VMA order (the list is sorted; the gaps hold no PTE) and name it.
 */
function failOutsideVmas(p: Process, after: string, inside: number): never {
  const outside = (vpn: number) => fail(`after ${after}: pid ${p.pid} has a PTE at vpn ${vpn} outside every VMA`);
  let at = 0;
  for (const vma of p.vmas.list) {
    p.pt.forEach(at, vma.start, outside);
    at = vma.end;
  }
  p.pt.forEach(at, VPN_LIMIT, outside);
  fail(`after ${after}: pid ${p.pid} page table counts ${p.pt.nrEntries} entries but its VMAs hold ${inside}`);
}

/** Scratch for the PTE count per frame and per swap slot, kept between checks: the check runs after every message. */
let mapsScratch = new Int32Array(0);
let swapScratch = new Int32Array(0);

export function checkInvariants(k: Kernel, after: string): void {
  const pm = k.pm;
  if (mapsScratch.length !== pm.nrFrames) mapsScratch = new Int32Array(pm.nrFrames);
  if (swapScratch.length !== k.swap.nrSlots) swapScratch = new Int32Array(k.swap.nrSlots);
  const maps = mapsScratch;
  maps.fill(0);
  const swapUsers = newSwapUsers(swapScratch);
  const flags = pm.flags, mapcount = pm.mapcount, anonExclusive = pm.anonExclusive, nrFrames = pm.nrFrames;
  for (const p of k.procs.values()) {
    if (!p.alive && !p.forking) continue;
    // One walk from the first VMA's start to the last one's end, the gaps between VMAs included (an
    // entry there is a stray), rather than one per VMA: mprotect and munmap cut a mapping into tens
    // of VMAs. The entries it finds are counted: if that is every entry the table holds, none lies
    // below the first VMA or above the last, and the rest of the 2^20 pages need not be walked.
    const vmas = p.vmas.list;
    let vi = 0;
    let inside = 0;
    const check = (vpn: number, f: number, v: number) => {
      while (vmas[vi].end <= vpn) vi++;
      if (vpn < vmas[vi].start) fail(`after ${after}: pid ${p.pid} has a PTE at vpn ${vpn} outside every VMA`);
      inside++;
      const kind = f & PTE_KIND_MASK;
      if (kind === PTE_PRESENT || kind === PTE_DEVICE_EXCLUSIVE || kind === PTE_MIGRATION) {
        if (v === ZERO_PFN || f & PTE_MIGRATION_DEVICE) return;
        if (!(v >= 0 && v < nrFrames && (flags[v] & PG_USED) !== 0)) fail(`after ${after}: pid ${p.pid} vpn ${vpn} maps frame ${v}, which is free`);
        maps[v]++;
        // A writable PTE to an anonymous page means the page is this mapping's alone (PageAnonExclusive).
        if (kind === PTE_PRESENT && f & PTE_WRITE && flags[v] & PG_ANON) {
          if (!(mapcount[v] === 1 && !(flags[v] & PG_KSM))) fail(`after ${after}: pid ${p.pid} vpn ${vpn} maps anon frame ${v} writable, but it has ${mapcount[v]} mappings${flags[v] & PG_KSM ? ' and is a KSM page' : ''}`);
          if (!anonExclusive[v]) fail(`after ${after}: pid ${p.pid} vpn ${vpn} maps anon frame ${v} writable, but it is not PageAnonExclusive`);
        }
        if (anonExclusive[v] && (mapcount[v] > 1 || flags[v] & PG_KSM)) fail(`after ${after}: frame ${v} is PageAnonExclusive with ${mapcount[v]} mappings${flags[v] & PG_KSM ? ' as a KSM page' : ''}`);
      } else if (kind === PTE_SWAP) {
        swapUsers.add(v);
      }
    };
    if (vmas.length > 0) p.pt.forEach(vmas[0].start, vmas[vmas.length - 1].end, check);
    if (inside !== p.pt.nrEntries) failOutsideVmas(p, after, inside);
  }
  checkFrames(pm, maps, after);
  swapUsers.check(k.swap.swapMap, after);
  for (const p of k.procs.values()) {
    const mn = p.notifiers;
    if (!((mn.invalidate_seq & 1) === 1 ? mn.active_invalidate_ranges > 0 : true)) fail(`after ${after}: pid ${p.pid} invalidate_seq ${mn.invalidate_seq} odd with no invalidation running`);
  }
}

/** Every frame's counts against the PTEs found to map it (`maps`), its pins, its cache and its rmap. */
function checkFrames(pm: Physmem, maps: Int32Array, after: string): void {
  const flags = pm.flags, refcount = pm.refcount, mapcount = pm.mapcount, pincount = pm.pincount, fileId = pm.fileId, rmapPid = pm.rmapPid;
  // Most frames have one mapping at most: the side table of further ones is looked at only if it holds any.
  const rmapMore = pm.rmapMore.size > 0 ? pm.rmapMore : undefined;
  for (let pfn = 0; pfn < pm.nrFrames; pfn++) {
    const used = (flags[pfn] & PG_USED) !== 0;
    if (!used) {
      if (!(flags[pfn] === 0 && refcount[pfn] === 0 && mapcount[pfn] === 0 && pincount[pfn] === 0)) fail(`after ${after}: free frame ${pfn} has flags ${flags[pfn]} refcount ${refcount[pfn]}`);
      continue;
    }
    if (!(mapcount[pfn] === maps[pfn])) fail(`after ${after}: frame ${pfn} mapcount ${mapcount[pfn]} but ${maps[pfn]} PTEs map it`);
    if (!(pincount[pfn] >= 0)) fail(`after ${after}: frame ${pfn} pin count ${pincount[pfn]}`);
    const cacheRef = fileId[pfn] !== 0 ? 1 : 0;
    if (!(refcount[pfn] >= mapcount[pfn] + pincount[pfn] * GUP_PIN_COUNTING_BIAS + cacheRef)) fail(`after ${after}: frame ${pfn} refcount ${refcount[pfn]} below its mappings ${mapcount[pfn]}, pins ${pincount[pfn]} and cache ${cacheRef}`);
    const rmapEntries = rmapPid[pfn] < 0 ? 0 : 1 + (rmapMore?.get(pfn)?.length ?? 0);
    if (!(rmapEntries === mapcount[pfn])) fail(`after ${after}: frame ${pfn} rmap has ${pm.mappingCount(pfn)} entries, mapcount ${mapcount[pfn]}`);
  }
}

/** The slots the last check counted in swapScratch: zeroed by the next (a failed check leaves them set). */
let swapSeenScratch: number[] = [];

/**
 * The swap entries found in PTEs, counted per slot in a scratch array (a Map per check cost more
 * than the rest of the check), in the order first seen. A slot outside the swap area (a corrupt
 * entry) is counted aside, so that its check fails as the others do.
 */
function newSwapUsers(counts: Int32Array) {
  for (const slot of swapSeenScratch) if (slot >= 0 && slot < counts.length) counts[slot] = 0;
  const seen: number[] = (swapSeenScratch = []);
  let outsideArea: Map<number, number> | undefined;
  return {
    add(slot: number): void {
      if (slot >= 0 && slot < counts.length) {
        if (counts[slot]++ === 0) seen.push(slot);
      } else {
        outsideArea ??= new Map();
        const n = outsideArea.get(slot) ?? 0;
        if (n === 0) seen.push(slot);
        outsideArea.set(slot, n + 1);
      }
    },
    /** Each slot's swap_map count covers its PTEs. */
    check(swapMap: Uint16Array, after: string): void {
      for (const slot of seen) {
        const users = outsideArea?.get(slot) ?? counts[slot];
        if (!(swapMap[slot] >= users)) fail(`after ${after}: swap slot ${slot} count ${swapMap[slot]} below its ${users} PTEs`);
      }
    },
  };
}
