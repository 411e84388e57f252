// p2pmem as a user mapping (drivers/pci/p2pdma.c p2pmem_alloc_mmap, v6.2+) and gup of its
// MEMORY_DEVICE_PCI_P2PDMA pages (mm/gup.c is_valid_gup_args, try_grab_page; v6.6–v6.15): only
// with FOLL_PCI_P2PDMA, never FOLL_LONGTERM; the last reference gives a page back to the provider.
import { describe, expect, it } from 'vitest';
import type { Message } from '@svmsim/runtime';
import {
  EFAULT, EINVAL, ENOMEM, EREMOTEIO, FOLL_LONGTERM, FOLL_PCI_P2PDMA, FOLL_WRITE, MAP_ANONYMOUS, MAP_FIXED, MAP_PRIVATE, MAP_SHARED, PAGE_SIZE, PROT_READ, PROT_WRITE,
  type GetUserPagesResult,
} from '@svmsim/kernel-mm';
import { ret, runMm, type Step } from '@svmsim/kernel-mm/testing/mm-harness';
import { p2pmemProvider } from '@svmsim/kernel-mm/testing/p2pmem-provider';

const RW = PROT_READ | PROT_WRITE;
const A = 16 * 1024 * 1024;

const provider = p2pmemProvider;

const create: Step = { msg: { type: 'process_create' } as never };
const p2pmem = (pages: number, flags = MAP_SHARED): Step => ({ msg: { type: 'mmap', pid: 1, addr: 0, length: pages * PAGE_SIZE, prot: RW, flags, p2pmem: 'cmb0' } as never });
const gup = (page: number, pages: number, gup_flags: number, base = A): Step => ({ msg: { type: 'get_user_pages', pid: 1, start: base + page * PAGE_SIZE, nr_pages: pages, gup_flags, pin: true } as never });
const unpin = (pick: (r: Message[]) => Float64Array): Step => (r) => ({ send: { msg: { type: 'unpin_user_pages', pfns: pick(r), make_dirty: true, pin: true } as never } });
/** unpin has no reply: a harmless request after it lets the script go on. */
const sync: Step = { msg: { type: 'process_create' } as never };

describe('mm: p2pmem_alloc_mmap and gup of P2PDMA pages', () => {
  it('gup with FOLL_PCI_P2PDMA pins the pages and names their provider; without it -EREMOTEIO; FOLL_LONGTERM -EREMOTEIO, with FOLL_PCI_P2PDMA -EINVAL', async () => {
    const cmb = provider(8);
    const { results } = await runMm([
      create, p2pmem(4),
      gup(0, 4, FOLL_WRITE | FOLL_PCI_P2PDMA), // the O_DIRECT read of a queue with BLK_FEAT_PCI_P2PDMA
      gup(0, 4, FOLL_WRITE), // the same without the flag: try_grab_page refuses the page
      gup(0, 4, FOLL_WRITE | FOLL_LONGTERM), // ib_umem_get
      gup(0, 4, FOLL_WRITE | FOLL_LONGTERM | FOLL_PCI_P2PDMA), // is_valid_gup_args
      gup(2, 1, FOLL_PCI_P2PDMA),
    ], { extra: [{ id: 'cmb0', actor: cmb }] });
    expect(ret(results[1])).toBe(A);
    expect([...cmb.allocated.subarray(0, 4)]).toEqual([1, 1, 1, 1]);
    const pinned = results[2] as unknown as GetUserPagesResult;
    expect(pinned.ret).toBe(4);
    expect(pinned.p2pdma).toEqual({ provider: 'cmb0', page: 0 });
    expect(ret(results[3])).toBe(EREMOTEIO);
    expect(ret(results[4])).toBe(EREMOTEIO);
    expect(ret(results[5])).toBe(EINVAL);
    expect((results[6] as unknown as GetUserPagesResult).p2pdma).toEqual({ provider: 'cmb0', page: 2 });
  });

  it('refuses a private mapping (-EINVAL), runs out of the pool (-ENOMEM), and CPU accesses are not modelled (-EFAULT)', async () => {
    const cmb = provider(4);
    const { results } = await runMm([
      create, p2pmem(2, MAP_PRIVATE), p2pmem(3), p2pmem(2),
      { msg: { type: 'cpu_access', pid: 1, addr: A, write: false } as never },
    ], { extra: [{ id: 'cmb0', actor: cmb }] });
    expect(ret(results[1])).toBe(EINVAL);
    expect(ret(results[2])).toBe(A);
    expect(ret(results[3])).toBe(ENOMEM);
    expect(ret(results[4])).toBe(EFAULT);
  });

  it('gup stops where P2P memory and host memory meet (a bio never mixes pgmaps)', async () => {
    const cmb = provider(4);
    const { results } = await runMm([
      create, p2pmem(2),
      { msg: { type: 'mmap', pid: 1, addr: A + 2 * PAGE_SIZE, length: 2 * PAGE_SIZE, prot: RW, flags: MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED } as never },
      gup(0, 4, FOLL_PCI_P2PDMA),
    ], { extra: [{ id: 'cmb0', actor: cmb }] });
    expect(ret(results[2])).toBe(A + 2 * PAGE_SIZE);
    expect(ret(results[3])).toBe(2);
  });

  it('munmap under a pin keeps the pages until the unpin; then the provider gets every page back', async () => {
    const cmb = provider(4);
    await runMm([
      create, p2pmem(2),
      gup(0, 2, FOLL_WRITE | FOLL_PCI_P2PDMA),
      { msg: { type: 'munmap', pid: 1, addr: A, length: 2 * PAGE_SIZE } as never },
      () => {
        expect(cmb.freed).toEqual([]); // the bio's pins still hold the pages
        return undefined;
      },
      unpin((r) => (r[2] as unknown as GetUserPagesResult).pfns),
      sync,
    ], { extra: [{ id: 'cmb0', actor: cmb }] });
    expect(cmb.freed.sort()).toEqual([0, 1]);
    expect([...cmb.allocated]).toEqual([0, 0, 0, 0]);
  });

  it('exit gives the pages back; fork shares them with the child, freed once both are gone', async () => {
    const cmb = provider(2);
    await runMm([
      create, p2pmem(2),
      { msg: { type: 'fork', pid: 1 } as never },
      { msg: { type: 'exit', pid: 1 } as never },
      () => {
        expect(cmb.freed).toEqual([]);
        return undefined;
      },
      { msg: { type: 'exit', pid: 2 } as never },
    ], { extra: [{ id: 'cmb0', actor: cmb }] });
    expect(cmb.freed.sort()).toEqual([0, 1]);
  });
});
