// The NIC's DMA engine: translating an MR's pages through its MTT (the implicit MR: the KSM entry,
// then the child's MTT), and the DMA itself. A translation is checked for every page of a message
// before any of it moves (a miss is a page fault: page-fault.ts); the DMA then takes
// `dmaPerPageNs` per page, and until it is issued every entry it translated through counts it in
// flight (mtt.ts inflight), which is what a ZAP UMR waits for (umr.ts).
// Each access carries the translation it used, for the checker: to mm a `dma_access` with
// {via: 'pin'} (a pinned MR) or {via: 'mirror', sub, seq} (ODP: the umem's notifier and the
// read_begin seq its entry was mapped at); to a dma-buf exporter a `dma_buf_access` with the
// mapping's generation.
import { PAGE_SIZE, type DmaAccess, type DmaReadResult } from '@svmsim/kernel-mm';
import type { DmaBufAccess, DmaBufAccessResult } from '@svmsim/gpu-driver/dma-buf-protocol';
import { MLX5_IMR_MTT_SHIFT, MLX5_IMR_MTT_SIZE, type LeafMr, type Mr } from './mr.js';
import { MTT_READ, MTT_WRITE } from './mtt.js';
import type { NicHost } from './nic.js';
import { dmaIssued } from './umr.js';

/** One page as translated: the MR whose MTT holds it, its entry, its address in that MR's iova space. */
export interface PageRef {
  mr: LeafMr;
  idx: number;
  va: number;
}

export type Translation = { ok: true; refs: PageRef[] } | { ok: false; missVa: number };

/** The MR holding page `va` of `mr` (the implicit MR: its child, as the KSM shows it), or undefined. */
export function leafOf(mr: Mr, va: number): LeafMr | undefined {
  if (mr.kind !== 'implicit') return mr as LeafMr;
  return mr.ksm!.get(Math.floor(va / MLX5_IMR_MTT_SIZE));
}

/**
 * Translate `pages` pages from page address `va` of `mr` for reading or writing. Every page valid:
 * the refs, each counted in flight from now (the caller issues them with dmaStart). A page not
 * valid for the access: the address of the first such page (a fault), nothing counted.
 */
export function translate(mr: Mr, va: number, pages: number, write: boolean): Translation {
  const need = write ? MTT_WRITE : MTT_READ;
  const refs: PageRef[] = [];
  for (let p = 0; p < pages; p++) {
    const pva = va + p * PAGE_SIZE;
    const leaf = leafOf(mr, pva);
    const idx = leaf ? (pva - leaf.startVa) / PAGE_SIZE : -1;
    if (!leaf || leaf.revoked || idx < 0 || idx >= leaf.mtt.entries || !(leaf.mtt.flags(idx) & need)) return { ok: false, missVa: pva };
    refs.push({ mr: leaf, idx, va: pva });
  }
  for (const r of refs) r.mr.mtt.inflightInc(r.idx);
  return { ok: true, refs };
}

/** Give back translations that will not be used (a message aborted before its DMA). */
export function untranslate(refs: PageRef[]): void {
  for (const r of refs) dmaIssued(r.mr, r.idx);
}

/** The child index of an implicit MR's address. */
export const childIndex = (va: number): number => Math.floor(va / 2 ** MLX5_IMR_MTT_SHIFT);

/**
 * DMA the translated pages: writes of `values` (one per page), or reads; `then` with the words read
 * (writes: []) once every read is answered. The accesses are issued after pages × dmaPerPageNs.
 */
export function dmaStart(host: NicHost, refs: PageRef[], write: boolean, values: ArrayLike<number> | undefined, then: (read: number[]) => void): void {
  if (write && (!values || values.length !== refs.length)) throw new Error(`${host.id}: a DMA write of ${refs.length} pages with ${values?.length ?? 0} values`);
  host.sleep(refs.length * host.costs.dmaPerPageNs, () => {
    const read = new Array<number>(write ? 0 : refs.length);
    let left = write ? 0 : refs.length;
    refs.forEach((r, i) => {
      issue(host, r, write, write ? values![i] : undefined, (v) => {
        read[i] = v;
        if (--left === 0) then(read);
      });
      dmaIssued(r.mr, r.idx);
    });
    host.stats.pagesTransferred += refs.length;
    if (write || refs.length === 0) then(read);
  });
}

/** Atomics in progress per MR entry, and those waiting behind them: the HCA serialises its atomics on a word. */
const atomicsBusy = new WeakMap<LeafMr, Map<number, (() => void)[]>>();

/**
 * An atomic's read-modify-write of one translated page (IBV_ATOMIC_HCA: atomic against the NIC's own
 * atomics, not against the CPU): the entry stays in flight from the read to the write. `then` with
 * the original word.
 */
export function dmaAtomic(host: NicHost, r: PageRef, compute: (orig: number) => number, then: (orig: number) => void): void {
  let busy = atomicsBusy.get(r.mr);
  if (!busy) atomicsBusy.set(r.mr, (busy = new Map()));
  const queue = busy.get(r.idx);
  const run = (): void =>
    host.sleep(host.costs.dmaPerPageNs, () =>
      issue(host, r, false, undefined, (orig) => {
        issue(host, r, true, compute(orig), () => {});
        dmaIssued(r.mr, r.idx);
        host.stats.pagesTransferred++;
        const waiting = busy!.get(r.idx)!;
        const next = waiting.shift();
        if (next) next();
        else busy!.delete(r.idx);
        then(orig);
      }),
    );
  if (queue) return void queue.push(run);
  busy.set(r.idx, []);
  run();
}

/** One page's access, to mm or to the dma-buf exporter, with the translation it used. */
function issue(host: NicHost, r: PageRef, write: boolean, value: number | undefined, got: (v: number) => void): void {
  const { mr, idx } = r;
  // A safe ZAP waits for this DMA before it acks. unsafe-odp may have acked the invalidation of
  // this entry already (its cur_seq above the seq the entry was mapped at): then the access uses a
  // translation the kernel was told is gone — its bug, which the checker must catch. A DMA issued
  // through a zapped entry before the ack is not (it reaches mm, or the exporter, first: FIFO).
  if (host.unsafe && mr.mtt.ackedSeq(idx) > mr.mtt.seq(idx)) host.stats.unsafeBugPaths++;
  const d = mr.dmabuf;
  if (d) {
    const m: DmaBufAccess = { type: 'dma_buf_access', dev: host.id, attachment: d.attachment, generation: mr.mtt.seq(idx), page: d.offsetPages + idx, write };
    if (write) {
      m.value = value;
      return host.send(d.exporter, m);
    }
    return host.call(d.exporter, m, (res) => got((res as unknown as DmaBufAccessResult).value ?? 0));
  }
  const n = mr.notifier;
  const m: DmaAccess = {
    type: 'dma_access', dev: host.id, pid: mr.pid, addr: mr.startVa + idx * PAGE_SIZE, pfn: mr.mtt.pfn(idx), write,
    tr: n ? { via: 'mirror', sub: n.sub, seq: mr.mtt.seq(idx) } : { via: 'pin' },
  };
  if (write) {
    m.value = value;
    return host.send(host.mm, m);
  }
  host.call(host.mm, m, (res) => got((res as unknown as DmaReadResult).value ?? 0));
}
