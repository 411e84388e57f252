// The messages of the in-kernel NVMe-oF target over RDMA (drivers/nvme/target/rdma.c, core.c,
// io-cmd-bdev.c; followed: torvalds/linux master of 2025, the p2pmem code as of v6.6–v6.15): a
// remote host's command capsule arriving at the target, and the target's RDMA transfers that the
// NIC carries out (rdma_rw_ctx_init / rdma_rw_ctx_post, drivers/infiniband/core/rw.c). The NIC
// (packages/rdma-odp/src/rdma-rw.ts) implements the second; it imports these types, as a ULP's
// calls into ib_core are declared by the caller's needs here.

/**
 * A command capsule from the remote host on one of the target's I/O queues
 * (nvmet_rdma_handle_command → nvmet_req_init → nvmet_bdev_parse_io_cmd). A write carries the host
 * buffer's words: the data the target pulls with an RDMA READ from the host's keyed SGL, or the
 * in-capsule data of a small write. Reply: nvmet_rdma_result.
 */
export interface NvmetRdmaCmd {
  type: 'nvmet_rdma_cmd';
  op: 'read' | 'write';
  slba: number;
  nlb: number;
  values?: Float64Array;
}

/** Where a command's data was staged in the target (nvmet_req_alloc_sgls, nvmet_rdma_map_sgl_inline). */
export type NvmetSgl = 'p2pmem' | 'system' | 'inline';

export interface NvmetRdmaResult {
  type: 'nvmet_rdma_result';
  /** Blocks moved, or -errno (the NVMe status the host sees, as its block layer maps it). */
  ret: number;
  /** A read's words as they reached the host's buffer (the RDMA WRITE's payload). */
  data?: Float64Array;
  sgl?: NvmetSgl;
  /** The p2pmem provider whose memory held the data (sgl p2pmem). */
  provider?: string;
}

/**
 * One rdma_rw_ctx of the target on its QP to the remote host: `read` pulls the host's words into
 * the local buffer (RDMA READ), `write` pushes the local buffer to the host (RDMA WRITE). The local
 * buffer is `pages` pages of a provider's p2pmem (pci_p2pmem_alloc_sgl: the NIC's DMA goes to the
 * provider's BAR) or, without `p2p`, the target's system memory (sgl_alloc), whose words travel
 * with the request (`values` for a write) and its answer (`values` for a read). Reply: rdma_rw_done.
 */
export interface RdmaRwCtx {
  type: 'rdma_rw_ctx';
  dir: 'read' | 'write';
  pages: number;
  /** read: the host's words, what its memory holds (the remote end of the transfer). write, system memory: the words to send. */
  values?: Float64Array;
  p2p?: { provider: string; page: number };
}

export interface RdmaRwDone {
  type: 'rdma_rw_done';
  ret: number;
  /** read into system memory: the words now in the target's buffer. write: the words that reached the host. */
  values?: Float64Array;
}

export type NvmetMessage = NvmetRdmaCmd | NvmetRdmaResult | RdmaRwCtx | RdmaRwDone;
