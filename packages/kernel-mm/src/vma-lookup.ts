// vma_lookup for drivers (mm/mmap.c vma_lookup, include/linux/mm.h): the VMA that contains an
// address, as a driver reads it under mmap_read_lock. amdgpu_ttm_tt_get_user_pages (amdgpu_ttm.c,
// v6.6 and the latest tree) looks up the BO's first VMA to refuse a file-backed one for
// AMDGPU_GEM_USERPTR_ANONONLY (-EPERM; `vma->vm_file` is set for file mappings and for shared
// anonymous memory, which is a shmem file) and an address with no VMA (-EFAULT).
import type { Envelope, Message } from '@svmsim/runtime';
import type { Kernel } from './kernel.js';
import { EFAULT, PAGE_SIZE, type VmaLookup, type VmaLookupResult } from './protocol.js';

export function vma_lookup(k: Kernel, env: Envelope<Message>, m: VmaLookup): void {
  const p = k.proc(m.pid);
  const vma = p && Number.isInteger(m.addr / PAGE_SIZE) ? p.vmas.find(m.addr / PAGE_SIZE) : undefined;
  const r: VmaLookupResult = vma
    ? { type: 'vma_lookup_result', ret: 0, file: vma.file !== null, prot: vma.prot, start: vma.start * PAGE_SIZE, end: vma.end * PAGE_SIZE }
    : { type: 'vma_lookup_result', ret: EFAULT, file: false, prot: 0, start: 0, end: 0 };
  k.ctx.reply(env, r);
}
