// The final content of every virtual page of every live process, read through its page table, for
// the data oracle: RAM and the zero page directly, swapped and unfaulted file pages from the block
// device, device-private pages marked `device` (their content is the device's to tell).
import type { Envelope, Message } from '@svmsim/runtime';
import { blockDevOf } from './filemap.js';
import type { Kernel } from './kernel.js';
import { PTE_DEVICE_EXCLUSIVE, PTE_DEVICE_PRIVATE, PTE_KIND_MASK, PTE_MIGRATION, PTE_NONE, PTE_PRESENT, PTE_SWAP } from './page-table.js';
import { PAGE_SIZE, ZERO_PFN, type BioDone, type DumpedPage } from './protocol.js';
import { fileIndex } from './vma.js';

export function dump(k: Kernel, env: Envelope<Message>): void {
  const pages: DumpedPage[] = [];
  const reads: { page: DumpedPage; dev: string; block: number }[] = [];
  for (const p of k.procs.values()) {
    if (!p.alive) continue;
    for (const v of p.vmas.list) {
      for (let vpn = v.start; vpn < v.end; vpn++) {
        const f = p.pt.flags(vpn);
        const val = p.pt.value(vpn);
        const page: DumpedPage = { pid: p.pid, addr: vpn * PAGE_SIZE, value: 0, where: 'ram' };
        switch (f & PTE_KIND_MASK) {
          case PTE_PRESENT:
          case PTE_DEVICE_EXCLUSIVE:
            page.value = val === ZERO_PFN ? 0 : k.pm.content[val];
            page.where = val === ZERO_PFN ? 'zero' : 'ram';
            break;
          case PTE_SWAP: {
            const cached = k.swapCache.get(val);
            if (cached !== undefined) page.value = k.pm.content[cached];
            else reads.push({ page, dev: 'swap', block: val });
            page.where = 'swap';
            break;
          }
          case PTE_MIGRATION:
            // A migration still open: whoever runs it has not finalized. Say so rather than guess.
            page.where = 'migrating';
            break;
          case PTE_DEVICE_PRIVATE:
            page.where = 'device';
            page.value = val; // the device pfn: the harness asks the owner for the content
            break;
          case PTE_NONE:
            if (v.file === null) {
              page.where = 'zero';
              break;
            }
            page.where = 'file';
            {
              const f2 = k.files.get(v.file)!;
              const idx = fileIndex(v, vpn);
              const cached = idx < f2.pages ? f2.cache[idx] : -1;
              if (cached >= 0) page.value = k.pm.content[cached];
              else if (idx < f2.pages) reads.push({ page, dev: blockDevOf(v.file), block: idx });
            }
            break;
        }
        pages.push(page);
      }
    }
  }
  const next = (i: number) => {
    if (i === reads.length) return k.ctx.reply(env, { type: 'dump_result', ret: 0, pages });
    const r = reads[i];
    k.call(k.blockdev, { type: 'bio_submit', op: 'read', dev: r.dev, block: r.block }, (reply) => {
      r.page.value = (reply as BioDone).value ?? 0;
      k.bounce(() => next(i + 1));
    });
  };
  next(0);
}
