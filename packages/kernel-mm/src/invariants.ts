// A full consistency check of mm's state, run after every message when `checkInvariants` is set
// (tests and seed sweeps of small machines): every PTE against the frame it names, every frame's
// counts against the PTEs, pins and caches that hold it. O(frames + PTEs in VMAs): for small
// machines only.
import type { Kernel } from './kernel.js';
import type { Process } from './process.js';
import { PTE_DEVICE_EXCLUSIVE, PTE_KIND_MASK, PTE_MIGRATION, PTE_MIGRATION_DEVICE, PTE_PRESENT, PTE_SWAP, PTE_WRITE, VPN_LIMIT } from './page-table.js';
import { InvariantError, PG_ANON, PG_KSM, PG_USED } from './physmem.js';
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

/** Scratch for the PTE count per frame, kept between checks: the check runs after every message. */
let mapsScratch = new Int32Array(0);

export function checkInvariants(k: Kernel, after: string): void {
  const pm = k.pm;
  if (mapsScratch.length !== pm.nrFrames) mapsScratch = new Int32Array(pm.nrFrames);
  const maps = mapsScratch;
  maps.fill(0);
  const swapUsers = new Map<number, number>();
  for (const p of k.procs.values()) {
    if (!p.alive) continue;
    const check = (vpn: number, f: number, v: number) => {
      const kind = f & PTE_KIND_MASK;
      if (kind === PTE_PRESENT || kind === PTE_DEVICE_EXCLUSIVE || kind === PTE_MIGRATION) {
        if (v === ZERO_PFN || f & PTE_MIGRATION_DEVICE) return;
        if (!(v >= 0 && v < pm.nrFrames && (pm.flags[v] & PG_USED) !== 0)) fail(`after ${after}: pid ${p.pid} vpn ${vpn} maps frame ${v}, which is free`);
        maps[v]++;
        // A writable PTE to an anonymous page means the page is this mapping's alone (PageAnonExclusive).
        if (kind === PTE_PRESENT && f & PTE_WRITE && pm.flags[v] & PG_ANON) {
          if (!(pm.mapcount[v] === 1 && !(pm.flags[v] & PG_KSM))) fail(`after ${after}: pid ${p.pid} vpn ${vpn} maps anon frame ${v} writable, but it has ${pm.mapcount[v]} mappings${pm.flags[v] & PG_KSM ? ' and is a KSM page' : ''}`);
          if (!pm.anonExclusive[v]) fail(`after ${after}: pid ${p.pid} vpn ${vpn} maps anon frame ${v} writable, but it is not PageAnonExclusive`);
        }
        if (pm.anonExclusive[v] && (pm.mapcount[v] > 1 || pm.flags[v] & PG_KSM)) fail(`after ${after}: frame ${v} is PageAnonExclusive with ${pm.mapcount[v]} mappings${pm.flags[v] & PG_KSM ? ' as a KSM page' : ''}`);
      } else if (kind === PTE_SWAP) {
        swapUsers.set(v, (swapUsers.get(v) ?? 0) + 1);
      }
    };
    // The PTEs inside the VMAs, counted: if that is every PTE the table holds, none lies outside a
    // VMA, and the gaps (most of the 2^20 pages) need not be walked after every message.
    let inside = 0;
    const checkCounted = (vpn: number, f: number, v: number) => {
      inside++;
      check(vpn, f, v);
    };
    for (const vma of p.vmas.list) p.pt.forEach(vma.start, vma.end, checkCounted);
    if (inside !== p.pt.nrEntries) failOutsideVmas(p, after, inside);
  }
  for (let pfn = 0; pfn < pm.nrFrames; pfn++) {
    const used = (pm.flags[pfn] & PG_USED) !== 0;
    if (!used) {
      if (!(pm.flags[pfn] === 0 && pm.refcount[pfn] === 0 && pm.mapcount[pfn] === 0 && pm.pincount[pfn] === 0)) fail(`after ${after}: free frame ${pfn} has flags ${pm.flags[pfn]} refcount ${pm.refcount[pfn]}`);
      continue;
    }
    if (!(pm.mapcount[pfn] === maps[pfn])) fail(`after ${after}: frame ${pfn} mapcount ${pm.mapcount[pfn]} but ${maps[pfn]} PTEs map it`);
    if (!(pm.pincount[pfn] >= 0)) fail(`after ${after}: frame ${pfn} pin count ${pm.pincount[pfn]}`);
    const cacheRef = pm.fileId[pfn] !== 0 ? 1 : 0;
    if (!(pm.refcount[pfn] >= pm.mapcount[pfn] + pm.pincount[pfn] * GUP_PIN_COUNTING_BIAS + cacheRef)) fail(`after ${after}: frame ${pfn} refcount ${pm.refcount[pfn]} below its mappings ${pm.mapcount[pfn]}, pins ${pm.pincount[pfn]} and cache ${cacheRef}`);
    if (!(pm.mappingCount(pfn) === pm.mapcount[pfn])) fail(`after ${after}: frame ${pfn} rmap has ${pm.mappingCount(pfn)} entries, mapcount ${pm.mapcount[pfn]}`);
  }
  for (const [slot, users] of swapUsers) {
    if (!(k.swap.swapMap[slot] >= users)) fail(`after ${after}: swap slot ${slot} count ${k.swap.swapMap[slot]} below its ${users} PTEs`);
  }
  for (const p of k.procs.values()) {
    const mn = p.notifiers;
    if (!((mn.invalidate_seq & 1) === 1 ? mn.active_invalidate_ranges > 0 : true)) fail(`after ${after}: pid ${p.pid} invalidate_seq ${mn.invalidate_seq} odd with no invalidation running`);
  }
}
