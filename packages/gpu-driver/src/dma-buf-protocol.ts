// dma-buf: how a device shares its buffers with another device's driver, as messages between the
// exporter (the GPU: its VRAM BOs, amdgpu_dma_buf.c) and an importer (the RDMA NIC's dma-buf MRs;
// the NVMe drive may be another). Followed: include/linux/dma-buf.h and drivers/dma-buf/dma-buf.c of
// v6.6 (move_notify: renamed invalidate_mappings by a 2025/26 series not followed here).
//
//   app → exporter     dma_buf_export           DRM_IOCTL_PRIME_HANDLE_TO_FD: a dma-buf fd for a BO
//   importer → exp.    dma_buf_attach           dma_buf_dynamic_attach (importer_ops with move_notify:
//                                               `dynamic`; allow_peer2peer) → an attachment
//                      dma_buf_map_attachment   the pages as the buffer lies now (here: its placement
//                                               generation); answered once the exporter's move fence,
//                                               if a move is under way, has signalled (the importer
//                                               waits on the DMA_RESV_USAGE_KERNEL fence,
//                                               ib_umem_dmabuf_map_pages). Without
//                                               CONFIG_DMABUF_MOVE_NOTIFY a dynamic exporter pins the
//                                               buffer at map (errata 12): it never moves after that.
//                      dma_buf_unmap_attachment (unpins what the map pinned), dma_buf_detach
//   exporter → imp.    dma_buf_move_notify      before the buffer moves (TTM eviction): the importer
//                                               must stop using its mapping and answer
//                                               dma_buf_move_notify_done; the exporter copies only then.
//   importer → exp.    dma_buf_access           the importer device's DMA to the buffer (a PCIe
//                                               peer-to-peer transaction on the exporter's BAR) with
//                                               the generation of the mapping it translated through.
// Every reply carries `ret` (0 or -errno).

export interface DmaBufExport { type: 'dma_buf_export'; handle: number }
export interface DmaBufExportResult { type: 'dma_buf_export_result'; ret: number; fd: number; pages: number }

export interface DmaBufAttach {
  type: 'dma_buf_attach';
  fd: number;
  /** importer_ops with a move_notify (dma_buf_dynamic_attach); false: a static importer (dma_buf_attach). */
  dynamic: boolean;
  allow_peer2peer: boolean;
}
export interface DmaBufAttachResult { type: 'dma_buf_attach_result'; ret: number; attachment: number; pages: number }
export interface DmaBufDetach { type: 'dma_buf_detach'; attachment: number }
export interface DmaBufMapAttachment { type: 'dma_buf_map_attachment'; attachment: number }
/** `generation` names the placement the mapping points at; `pinned`: the map pinned the buffer (no move_notify will come). */
export interface DmaBufMapResult { type: 'dma_buf_map_result'; ret: number; generation: number; pinned: boolean }
/** Fire and forget. */
export interface DmaBufUnmapAttachment { type: 'dma_buf_unmap_attachment'; attachment: number }
export interface DmaBufResult { type: 'dma_buf_result'; ret: number }

/** exporter → importer, a request: the importer answers once it no longer uses its mapping. */
export interface DmaBufMoveNotify { type: 'dma_buf_move_notify'; attachment: number }
export interface DmaBufMoveNotifyDone { type: 'dma_buf_move_notify_done'; attachment: number }

/** A DMA by the importer's device to page `page` of the buffer, through the mapping of `generation`. Reads are answered. */
export interface DmaBufAccess { type: 'dma_buf_access'; dev: string; attachment: number; generation: number; page: number; write: boolean; value?: number }
export interface DmaBufAccessResult { type: 'dma_buf_access_result'; ret: number; value: number }

export type DmaBufRequest = DmaBufExport | DmaBufAttach | DmaBufDetach | DmaBufMapAttachment | DmaBufUnmapAttachment | DmaBufAccess;
export type DmaBufReply = DmaBufExportResult | DmaBufAttachResult | DmaBufMapResult | DmaBufResult | DmaBufAccessResult;
