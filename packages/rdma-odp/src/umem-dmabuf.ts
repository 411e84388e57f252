// dma-buf MRs: the importer side (drivers/infiniband/core/umem_dmabuf.c of v5.17–v6.1,
// mlx5/mr.c mlx5_ib_reg_user_mr_dmabuf and mlx5_ib_dmabuf_invalidate_cb, odp.c
// pagefault_dmabuf_mr, v6.1; research/drivers.md §4–5, errata 12). The exporter is another actor
// (the GPU's VRAM BOs); the messages are @svmsim/gpu-driver's dma-buf-protocol.ts.
//
//   ib_umem_dmabuf_get      dma_buf_dynamic_attach with mlx5_ib_dmabuf_attach_ops
//                           (allow_peer2peer, move_notify)
//   mlx5_ib_init_dmabuf_mr  pagefault_dmabuf_mr over the whole MR at registration
//   pagefault_dmabuf_mr     dma_resv_lock; ib_umem_dmabuf_map_pages (dma_buf_map_attachment if not
//                           mapped, then wait for the exporter's move fence); update the MR's PAS
//                           (every entry); dma_resv_unlock. The dma-buf MR runs on the ODP fault
//                           machinery: an access after a move_notify page-faults into here.
//   move_notify             mlx5_ib_dmabuf_invalidate_cb, called by the exporter with the resv lock
//                           held: not mapped → nothing; else ZAP every MTT entry (the UMR completes
//                           once no DMA through them is in flight) and ib_umem_dmabuf_unmap_pages.
//                           The importer adds no fence of its own: the synchronous ZAP is what makes
//                           the exporter's copy safe.
//   ib_umem_dmabuf_release  lock; unmap; unlock; dma_buf_detach.
// Without CONFIG_DMABUF_MOVE_NOTIFY (the exporter's machine setting) dma_buf_map_attachment pins
// the buffer and dma_buf_unmap_attachment unpins it: while mapped it never moves and move_notify
// never comes (errata 12). ib_umem_dmabuf_get_pinned (a pinned dma-buf MR) is not modelled.
//
// The reservation lock belongs to the exporter. Here the importer's side of it is the MR's
// umem_mutex, held from the map request to the end of the PAS update and by move_notify; the
// exporter's side is that it answers a map only when no move is under way, and moves only after
// every importer answered move_notify. Exporter → importer messages are FIFO, so a map reply always
// arrives before a move_notify sent after it.
import { EINVAL, PAGE_SIZE } from '@svmsim/kernel-mm';
import type { Envelope, Message } from '@svmsim/runtime';
import type {
  DmaBufAttach, DmaBufAttachResult, DmaBufDetach, DmaBufMapAttachment, DmaBufMapResult, DmaBufMoveNotify, DmaBufUnmapAttachment,
} from '@svmsim/gpu-driver/dma-buf-protocol';
import type { LeafMr } from './mr.js';
import { retOf, type NicHost } from './nic.js';
import { umrPopulate, umrZap } from './umr.js';

/** ib_umem_dmabuf_get: attach to `fd` of `exporter`; done(0) or done(-errno). mr.dmabuf set on success. */
export function ib_umem_dmabuf_get(host: NicHost, mr: LeafMr, exporter: string, fd: number, offset: number, done: (ret: number) => void): void {
  const m: DmaBufAttach = { type: 'dma_buf_attach', fd, dynamic: true, allow_peer2peer: true };
  host.call(exporter, m, (r) => {
    const ret = retOf(r);
    if (ret < 0) return done(ret);
    const a = r as unknown as DmaBufAttachResult;
    // dmabuf->size < offset + size: -EINVAL
    if (offset / PAGE_SIZE + mr.mtt.entries > a.pages) {
      host.send(exporter, { type: 'dma_buf_detach', attachment: a.attachment } satisfies DmaBufDetach);
      return done(EINVAL);
    }
    mr.dmabuf = { exporter, fd, attachment: a.attachment, offsetPages: offset / PAGE_SIZE, mapped: false, generation: 0, pinned: false };
    done(0);
  });
}

/** pagefault_dmabuf_mr: map (if need be) and write every entry; done(pages) or done(-errno). */
export function pagefault_dmabuf_mr(host: NicHost, mr: LeafMr, done: (ret: number) => void): void {
  const d = mr.dmabuf!;
  mr.umemMutex.lock(() => {
    const fill = (): void => {
      for (let i = 0; i < mr.mtt.entries; i++) mr.mtt.mapDma(i, d.offsetPages + i, d.generation, mr.writable);
      umrPopulate(host, mr, 0, mr.mtt.entries, () => {
        mr.umemMutex.unlock();
        done(mr.mtt.entries);
      });
    };
    if (d.mapped) return fill();
    host.call(d.exporter, { type: 'dma_buf_map_attachment', attachment: d.attachment } satisfies DmaBufMapAttachment, (r) => {
      const ret = retOf(r);
      if (ret < 0) {
        mr.umemMutex.unlock();
        return done(ret);
      }
      const map = r as unknown as DmaBufMapResult;
      d.mapped = true;
      d.generation = map.generation;
      d.pinned = map.pinned;
      host.stats.dmabufRemaps++;
      fill();
    });
  });
}

/** mlx5_ib_dmabuf_invalidate_cb: the exporter's move_notify. Answered once the MR no longer uses the mapping. */
export function mlx5_ib_dmabuf_invalidate_cb(host: NicHost, env: Envelope<Message>, m: DmaBufMoveNotify, mr: LeafMr | undefined): void {
  const answer = () => host.reply(env, { type: 'dma_buf_move_notify_done', attachment: m.attachment });
  host.stats.dmabufMoveNotifies++;
  if (!mr) return answer(); // the MR is gone: nothing maps the buffer
  mr.umemMutex.lock(() => {
    const d = mr.dmabuf!;
    if (!d.mapped) {
      mr.umemMutex.unlock();
      return answer();
    }
    const given = d.generation;
    unmapAll(host, mr, (zapped) => {
      host.stats.pagesInvalidated += zapped;
      if (host.unsafe) mr.mtt.markAcked(0, mr.mtt.entries, given + 1);
      mr.umemMutex.unlock();
      answer();
    }, host.unsafe);
  });
}

/** ZAP every entry (waiting for the DMA in flight unless `unsafe`), then ib_umem_dmabuf_unmap_pages; then(entries zapped). Under the MR's lock. */
function unmapAll(host: NicHost, mr: LeafMr, then: (zapped: number) => void, unsafe = false): void {
  const d = mr.dmabuf!;
  umrZap(host, mr, 0, mr.mtt.entries, (zapped) => {
    for (let i = 0; i < mr.mtt.entries; i++) mr.mtt.unmapDma(i);
    d.mapped = false;
    host.send(d.exporter, { type: 'dma_buf_unmap_attachment', attachment: d.attachment } satisfies DmaBufUnmapAttachment);
    then(zapped);
  }, unsafe);
}

/** ib_umem_dmabuf_release: unmap, detach; then done. */
export function ib_umem_dmabuf_release(host: NicHost, mr: LeafMr, done: () => void): void {
  const d = mr.dmabuf!;
  mr.umemMutex.lock(() => {
    const detach = (): void => {
      mr.umemMutex.unlock();
      host.call(d.exporter, { type: 'dma_buf_detach', attachment: d.attachment } satisfies DmaBufDetach, () => done());
    };
    if (d.mapped) unmapAll(host, mr, detach);
    else detach();
  });
}
