// The commands a host (the block layer, a process doing O_DIRECT) sends to the NVMe controller,
// and the completions it gets back. Opcodes and status codes follow include/linux/nvme.h
// (v6.6); errno values match @svmsim/kernel-mm's protocol.ts.

/** enum nvme_opcode, the I/O commands this controller models. */
export const nvme_cmd_flush = 0x00;
export const nvme_cmd_write = 0x01;
export const nvme_cmd_read = 0x02;
export type NvmeOpcode = typeof nvme_cmd_flush | typeof nvme_cmd_write | typeof nvme_cmd_read;

/** enum nvme_admin_opcode: Abort is the one admin command the timeout path sends. */
export const nvme_admin_abort_cmd = 0x08;

// ---- status field of a CQE (include/linux/nvme.h, v6.6) ----
export const NVME_SC_SUCCESS = 0x0;
export const NVME_SC_ABORT_REQ = 0x7;
export const NVME_SC_INTERNAL = 0x6;
/** Set by nvme_cancel_request on every request the reset cancels (no DNR: the request is retried). */
export const NVME_SC_HOST_ABORTED_CMD = 0x371;
/** Do Not Retry. */
export const NVME_SC_DNR = 0x4000;

// ---- errno values the caller sees (blk_status_to_errno) ----
export const EIO = 5;
export const EAGAIN = 11;
export const EINVAL = 22;
export const EREMOTEIO = 121;

/** Logical block size of a namespace: one page, so a block holds one page's content token. */
export const NVME_LBA_SIZE = 4096;
/** NVME_CTRL_PAGE_SIZE (drivers/nvme/host/nvme.h): the controller's memory page size for PRPs. */
export const NVME_CTRL_PAGE_SIZE = 4096;

/** A data buffer segment as the driver maps it: a DMA address and a length in bytes. */
export interface DmaSegment {
  readonly addr: number;
  readonly len: number;
}

/** An I/O request as blk-mq hands it to nvme_queue_rq. */
export interface NvmeIo {
  readonly opcode: NvmeOpcode;
  readonly nsid: number;
  /** First logical block. */
  readonly slba: number;
  /** Number of logical blocks (0 for FLUSH). */
  readonly nlb: number;
  /** The pages' content tokens for a WRITE (one per block). */
  readonly data?: Float64Array;
  /** REQ_FAILFAST_*: the request is not retried after a reset (nvme_decide_disposition). */
  readonly failfast?: boolean;
}

/** What the submitter is told when a request finishes (blk_mq_end_request). */
export interface NvmeCompletion {
  readonly tag: number;
  /** 0, or -errno. */
  readonly ret: number;
  /** The CQE status of the last attempt. */
  readonly status: number;
  /** The content tokens read, for a successful READ. */
  readonly data?: Float64Array;
  /** Times the request was sent (1 without a reset). */
  readonly attempts: number;
  readonly submittedNs: number;
  readonly completedNs: number;
}
