// The page cache (mm/filemap.c filemap_fault → filemap_get_folio / page_cache_sync_ra →
// filemap_read_folio) and file creation. A cached page holds one reference of its own (the page
// cache's), is locked while its read I/O is in flight, and knows its (file, index).
// Shared anonymous mappings are shmem files with negative ids, backed by the block device as
// regular files are (shmem is swap-backed in the kernel).
import type { BioDone } from './protocol.js';
import { EIO_RET, type FileObj, type Kernel } from './kernel.js';
import { alloc_page, lockPage, unlockPage, waitOnPage } from './page-alloc.js';
import { PG_LOCKED } from './physmem.js';

export function createFile(k: Kernel, name: string, pages: number, shm: boolean): FileObj {
  const id = shm ? k.nextShmId-- : k.nextFileId++;
  const f: FileObj = { id, name, pages, cache: new Int32Array(pages).fill(-1) };
  k.files.set(id, f);
  k.oracle('file_create', { file: id, pages });
  return f;
}

export const blockDevOf = (file: number) => `file${file}`;

/** filemap_fault by `task`: the uptodate page-cache page of (file, idx), reading it in if needed. */
export function filemap_get_page(k: Kernel, f: FileObj, idx: number, task: string, then: (pfn: number) => void): void {
  const cached = f.cache[idx];
  if (cached >= 0) {
    if (!(k.pm.flags[cached] & PG_LOCKED)) return then(cached);
    // Locked (being read in, written back or migrated): wait, then look it up again from the start —
    // the page may have left the cache meanwhile and its frame been reused, even for this index.
    waitOnPage(k, cached, () => filemap_get_page(k, f, idx, task, then));
    return;
  }
  alloc_page(k, true, task, (pfn) => {
    if (pfn < 0) return then(-1);
    if (f.cache[idx] >= 0) {
      // Another fault filled the slot while we waited for memory.
      k.pm.put(pfn);
      return filemap_get_page(k, f, idx, task, then);
    }
    k.pm.fileId[pfn] = f.id;
    k.pm.fileIdx[pfn] = idx;
    f.cache[idx] = pfn;
    // Regular files and shmem alike read their block: a shmem page reclaimed earlier was written
    // out there (swap-backed in the kernel; here the block device stands for it), and a block
    // never written reads 0.
    lockPage(k, pfn);
    k.call(k.blockdev, { type: 'bio_submit', op: 'read', dev: blockDevOf(f.id), block: idx }, (reply) => {
      const done = reply as BioDone;
      if (reply.type !== 'bio_done' || done.ret < 0) {
        f.cache[idx] = -1;
        unlockPage(k, pfn);
        k.pm.fileId[pfn] = 0;
        k.pm.put(pfn);
        return then(EIO_RET);
      }
      k.pm.content[pfn] = done.value;
      unlockPage(k, pfn);
      then(pfn);
    });
  });
}

/** Drop a clean, unmapped, unreferenced page from the cache (__remove_mapping / delete_from_page_cache). */
export function removeFromPageCache(k: Kernel, pfn: number): void {
  const f = k.files.get(k.pm.fileId[pfn])!;
  f.cache[k.pm.fileIdx[pfn]] = -1;
  k.pm.put(pfn);
}
