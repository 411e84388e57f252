// The verbs a process (the `app` actor, a test script) sends to the NIC actor, standing for
// rdma-core's libibverbs calls on an mlx5 device (include/rdma/ib_verbs.h, rdma-core verbs.h):
//   ibv_reg_mr         IB_USER_VERBS_CMD_REG_MR: a pinned MR, an explicit ODP MR
//                      (IBV_ACCESS_ON_DEMAND), or the implicit ODP MR (addr 0, length SIZE_MAX)
//   ibv_reg_dmabuf_mr  IB_USER_VERBS_CMD_REG_DMABUF_MR: an MR over a dma-buf another driver exports
//   ibv_dereg_mr       IB_USER_VERBS_CMD_DEREG_MR
//   ibv_create_qp      a QP connected to the remote peer (the connection exchange folded in: the
//                      reply carries the peer's QP number and its MR, as an application learns
//                      them through rdma_cm or a socket)
//   ibv_destroy_qp
//   ibv_post_send      a send WQE; the reply is its work completion (ibv_poll_cq folded in)
//   ibv_post_recv      a receive WQE; the reply is its work completion, when a SEND consumed it
//   ibv_advise_mr      IB_USER_VERBS_EX_CMD_ADVISE_MR: PREFETCH, PREFETCH_WRITE, PREFETCH_NO_FAULT
// and the messages the process sends to the peer actor, the remote node's application (peer_post:
// the remote side posts a WQE towards our QP, and gets its completion).
// Every reply carries `ret` (0 or -errno, the values of @svmsim/kernel-mm's protocol.ts).
// Constants follow include/uapi/rdma/ib_user_verbs.h and rdma-core's verbs.h.
import type { Pid } from '@svmsim/kernel-mm';

// ---- access flags (enum ib_access_flags; rdma-core enum ibv_access_flags) ----
export const IBV_ACCESS_LOCAL_WRITE = 1 << 0;
export const IBV_ACCESS_REMOTE_WRITE = 1 << 1;
export const IBV_ACCESS_REMOTE_READ = 1 << 2;
export const IBV_ACCESS_REMOTE_ATOMIC = 1 << 3;
export const IBV_ACCESS_MW_BIND = 1 << 4;
export const IBV_ACCESS_ZERO_BASED = 1 << 5;
export const IBV_ACCESS_ON_DEMAND = 1 << 6;
/** The flags this NIC accepts (ib_check_mr_access: anything else is -EINVAL). */
export const IBV_ACCESS_SUPPORTED =
  IBV_ACCESS_LOCAL_WRITE | IBV_ACCESS_REMOTE_WRITE | IBV_ACCESS_REMOTE_READ | IBV_ACCESS_REMOTE_ATOMIC | IBV_ACCESS_MW_BIND | IBV_ACCESS_ZERO_BASED | IBV_ACCESS_ON_DEMAND;
/** What an application registers for RDMA traffic in both directions. */
export const IBV_ACCESS_ALL_REMOTE = IBV_ACCESS_LOCAL_WRITE | IBV_ACCESS_REMOTE_WRITE | IBV_ACCESS_REMOTE_READ | IBV_ACCESS_REMOTE_ATOMIC;

/** ib_access_writable (include/rdma/ib_verbs.h): the umem is mapped for writing (FOLL_WRITE, HMM_PFN_REQ_WRITE). */
export function ib_access_writable(access: number): boolean {
  return (access & (IBV_ACCESS_LOCAL_WRITE | IBV_ACCESS_REMOTE_WRITE | IBV_ACCESS_REMOTE_ATOMIC | IBV_ACCESS_MW_BIND)) !== 0;
}

/**
 * U64_MAX as the implicit ODP MR's length (`ibv_reg_mr(pd, NULL, SIZE_MAX, IBV_ACCESS_ON_DEMAND)`);
 * 2^64 - 1 is not a double, and rounds to 2^64.
 */
export const SIZE_MAX = 2 ** 64;

// ---- ibv_advise_mr (enum ib_uverbs_advise_mr_advice, ib_uverbs_advise_mr_flag) ----
export const IBV_ADVISE_MR_ADVICE_PREFETCH = 0;
export const IBV_ADVISE_MR_ADVICE_PREFETCH_WRITE = 1;
export const IBV_ADVISE_MR_ADVICE_PREFETCH_NO_FAULT = 2;
export const IBV_ADVISE_MR_FLAG_FLUSH = 1 << 0;

// ---- work requests and completions ----
export type IbvWrOpcode = 'IBV_WR_SEND' | 'IBV_WR_RDMA_WRITE' | 'IBV_WR_RDMA_READ' | 'IBV_WR_ATOMIC_CMP_AND_SWP' | 'IBV_WR_ATOMIC_FETCH_AND_ADD';
export const IBV_WR_OPCODES: readonly IbvWrOpcode[] = ['IBV_WR_SEND', 'IBV_WR_RDMA_WRITE', 'IBV_WR_RDMA_READ', 'IBV_WR_ATOMIC_CMP_AND_SWP', 'IBV_WR_ATOMIC_FETCH_AND_ADD'];
export const isAtomic = (op: IbvWrOpcode): boolean => op === 'IBV_WR_ATOMIC_CMP_AND_SWP' || op === 'IBV_WR_ATOMIC_FETCH_AND_ADD';

/** enum ibv_wc_status, the members this NIC reports. */
export type IbvWcStatus =
  | 'IBV_WC_SUCCESS'
  | 'IBV_WC_LOC_LEN_ERR'
  | 'IBV_WC_LOC_PROT_ERR'
  | 'IBV_WC_WR_FLUSH_ERR'
  | 'IBV_WC_REM_INV_REQ_ERR'
  | 'IBV_WC_REM_ACCESS_ERR'
  | 'IBV_WC_REM_OP_ERR'
  | 'IBV_WC_RETRY_EXC_ERR'
  | 'IBV_WC_RNR_RETRY_EXC_ERR';
export const IBV_WC_STATUSES: readonly IbvWcStatus[] = [
  'IBV_WC_SUCCESS', 'IBV_WC_LOC_LEN_ERR', 'IBV_WC_LOC_PROT_ERR', 'IBV_WC_WR_FLUSH_ERR', 'IBV_WC_REM_INV_REQ_ERR',
  'IBV_WC_REM_ACCESS_ERR', 'IBV_WC_REM_OP_ERR', 'IBV_WC_RETRY_EXC_ERR', 'IBV_WC_RNR_RETRY_EXC_ERR',
];

export type IbvQpType = 'RC' | 'UD';

/** A scatter/gather element: bytes [addr, addr + length) of the MR `lkey` (addresses are the MR's iova). */
export interface IbvSge { addr: number; length: number; lkey: number }

export interface IbvSendWr {
  opcode: IbvWrOpcode;
  sge: IbvSge;
  /** RDMA and atomics: where in the peer's MR. */
  remote_addr?: number;
  rkey?: number;
  /** FETCH_AND_ADD: the addend; CMP_AND_SWP: the compare value. */
  compare_add?: number;
  /** CMP_AND_SWP: the value swapped in. */
  swap?: number;
}

// ---- messages: the process → the NIC ----

/**
 * ibv_reg_mr. The caller's RLIMIT_MEMLOCK (pages) and CAP_IPC_LOCK come along, as ib_umem_get reads
 * them from `current`. Implicit ODP: addr 0, length SIZE_MAX, access with IBV_ACCESS_ON_DEMAND.
 */
export interface IbvRegMr {
  type: 'ibv_reg_mr';
  pid: Pid;
  addr: number;
  length: number;
  access: number;
  memlock_limit_pages: number;
  cap_ipc_lock: boolean;
}
/** ibv_reg_dmabuf_mr: bytes [offset, offset + length) of the dma-buf `fd` that `exporter` exports, at iova. */
export interface IbvRegDmabufMr {
  type: 'ibv_reg_dmabuf_mr';
  pid: Pid;
  exporter: string;
  fd: number;
  offset: number;
  length: number;
  iova: number;
  access: number;
}
/** ret 0 and the keys (lkey = rkey, as mlx5's mkey), or -errno. */
export interface IbvRegMrResult { type: 'ibv_reg_mr_result'; ret: number; lkey: number; rkey: number }
export interface IbvDeregMr { type: 'ibv_dereg_mr'; lkey: number }

export interface IbvQpAttrs {
  /** Requester: RNR NAKs retried before IBV_WC_RNR_RETRY_EXC_ERR; 7 retries for ever. */
  rnr_retry: number;
  /** Responder: the RNR timer (an index into IB's table, 0..31) sent in its RNR NAKs. */
  min_rnr_timer: number;
  /** Requester: transport retries (no response within `timeout`) before IBV_WC_RETRY_EXC_ERR. */
  retry_cnt: number;
  /** Requester: the local ACK timeout, 4.096 µs × 2^timeout (0: none). */
  timeout: number;
}
export interface IbvCreateQp extends IbvQpAttrs { type: 'ibv_create_qp'; pid: Pid; qp_type: IbvQpType }
/** The QP and what the connection exchange told the process about the peer: its QP and its MR. */
export interface IbvCreateQpResult {
  type: 'ibv_create_qp_result';
  ret: number;
  qpn: number;
  remote_qpn: number;
  remote_addr: number;
  remote_rkey: number;
  remote_pages: number;
}
export interface IbvDestroyQp { type: 'ibv_destroy_qp'; qpn: number }
export interface IbvPostSend { type: 'ibv_post_send'; qpn: number; wr: IbvSendWr }
export interface IbvPostRecv { type: 'ibv_post_recv'; qpn: number; sge: IbvSge }
export interface IbvAdviseMr { type: 'ibv_advise_mr'; pid: Pid; advice: number; flags: number; sg_list: IbvSge[] }
/** ret for the calls that return only one (dereg_mr, destroy_qp, advise_mr). */
export interface IbvResult { type: 'ibv_result'; ret: number }
/**
 * A work completion (struct ibv_wc). ret is 0 when the WQE was posted (its outcome is `status`), or
 * -errno when the post itself failed (-EINVAL: no such QP, a malformed WR). `value`: an atomic's
 * original word; `values`: the words a receive got (one per page).
 */
export interface IbvWc { type: 'ibv_wc'; ret: number; status: IbvWcStatus; opcode: IbvWrOpcode | 'IBV_WC_RECV'; byte_len: number; value?: number; values?: number[] }

/** Not a verb: the counters a run reads at each phase's end, as `rdma statistic show` reads hw_counters. */
export interface RdmaQueryCounters { type: 'rdma_query_counters' }
export interface RdmaCounters { type: 'rdma_counters'; ret: number; counters: Record<string, number> }

export type RdmaRequest = IbvRegMr | IbvRegDmabufMr | IbvDeregMr | IbvCreateQp | IbvDestroyQp | IbvPostSend | IbvPostRecv | IbvAdviseMr | RdmaQueryCounters;
export type RdmaReply = IbvRegMrResult | IbvCreateQpResult | IbvResult | IbvWc | RdmaCounters;

// ---- messages: the process → the peer (the remote application posting on its QP) ----

/**
 * The remote side posts one WQE on its QP `qpn` towards ours: a SEND (into a receive we posted), an
 * RDMA WRITE / READ of `pages` pages at remote_addr of our MR `rkey`, or an atomic on one word.
 * `values`: the words a SEND or WRITE carries, one per page.
 */
export interface PeerPost {
  type: 'peer_post';
  qpn: number;
  opcode: IbvWrOpcode;
  remote_addr: number;
  rkey: number;
  pages: number;
  values?: number[];
  compare_add?: number;
  swap?: number;
}
/** Its completion on the remote side; `rnr_naks` and `retries` it took (the transport's view). */
export interface PeerWc { type: 'peer_wc'; ret: number; status: IbvWcStatus; value?: number; values?: number[]; rnr_naks: number; retries: number }

export type PeerRequest = PeerPost;
export type PeerReply = PeerWc;
