// A p2pmem provider for tests of mm and of drivers: a PCI device's published p2pmem pool of
// `pages` pages (first fit) that answers mm's p2pmem_alloc (p2pmem_alloc_mmap's gen_pool_alloc)
// and takes back the pages whose last reference went (p2pdma_page_free). The nvme actor's CMB is
// the real one (packages/nvme/src/blkdev-dio.ts p2pmemPool).
import type { Actor, Message } from '@svmsim/runtime';
import { ENOMEM } from '../protocol.js';

export type P2pmemTestProvider = Actor<Message> & { freed: number[]; allocated: Uint8Array };

export function p2pmemProvider(pages: number): P2pmemTestProvider {
  const allocated = new Uint8Array(pages);
  const freed: number[] = [];
  const actor: P2pmemTestProvider = {
    freed,
    allocated,
    receive(env, ctx) {
      const m = env.msg as unknown as { type: string; nr_pages: number; page: number };
      if (m.type === 'p2pmem_alloc') {
        let run = 0;
        for (let i = 0; i < pages; i++) {
          run = allocated[i] ? 0 : run + 1;
          if (run === m.nr_pages) {
            allocated.fill(1, i - run + 1, i + 1);
            return ctx.reply(env, { type: 'p2pmem_alloc_result', ret: 0, page: i - run + 1 } as never);
          }
        }
        return ctx.reply(env, { type: 'p2pmem_alloc_result', ret: ENOMEM, page: 0 } as never);
      }
      if (m.type === 'p2pdma_page_free') {
        allocated[m.page] = 0;
        freed.push(m.page);
        return;
      }
      if (m.type !== 'actor_died') throw new Error(`p2pmem test provider: unknown message '${m.type}'`);
    },
    summary: () => ({ allocatedPages: allocated.reduce((a, b) => a + b, 0) }),
  };
  return actor;
}
