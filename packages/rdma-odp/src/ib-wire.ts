// The wire between the NIC and the remote peer: InfiniBand RC/UD transport packets at message
// granularity (one request packet per WQE, one ACK / NAK / read or atomic response), and the
// connection set-up that rdma_cm would do. Followed: IBTA spec vol. 1 §9.7 (reliable service:
// PSNs, ACK/NAK syndromes, RNR NAK with its timer, the local ACK timeout, retry_cnt/rnr_retry).
//
//   requester                          responder
//   ib_req {psn, opcode, ...}  ───▶    ePSN == psn: execute → ib_resp ACK (READ: data; atomic: the
//                                        original word); psn < ePSN: a duplicate, answered again
//                                      not ready (no receive WQE; an ODP page fault outstanding):
//   ◀─── ib_resp RNR_NAK {rnr_timer}     RNR NAK; the requester waits the timer and sends again,
//                                        at most rnr_retry times (7: for ever)
//   (no answer: a packet dropped)      the requester's ACK timeout fires: send again, retry_cnt times
//   ◀─── NAK_REMOTE_ACCESS etc.         a bad rkey, access or bound: the WQE fails, both QPs to error
//
// UD: a SEND only, never answered; a receiver not ready drops it.
import type { IbvQpAttrs, IbvQpType } from './rdma-protocol.js';

export type IbOpcode = 'SEND' | 'RDMA_WRITE' | 'RDMA_READ' | 'CMP_SWP' | 'FETCH_ADD';

export interface IbRequest {
  type: 'ib_req';
  /** The QP it is for, on the receiving side. */
  dst_qpn: number;
  src_qpn: number;
  qp_type: IbvQpType;
  psn: number;
  opcode: IbOpcode;
  /** RDMA and atomics: where, in the responder's MR `rkey`. */
  raddr: number;
  rkey: number;
  /** Pages the message covers (one for atomics). */
  pages: number;
  /** SEND and RDMA WRITE: the words carried, one per page. */
  payload?: Float64Array;
  compare_add?: number;
  swap?: number;
}

export type IbSyndrome = 'ACK' | 'RNR_NAK' | 'NAK_REMOTE_ACCESS' | 'NAK_INVALID_REQUEST' | 'NAK_REMOTE_OP';

export interface IbResponse {
  type: 'ib_resp';
  dst_qpn: number;
  psn: number;
  syndrome: IbSyndrome;
  /** RNR NAK: the responder's min_rnr_timer (an index into RNR_TIMER_NS). */
  rnr_timer?: number;
  /** RDMA READ response: the words read. */
  payload?: Float64Array;
  /** Atomic response: the original word. */
  orig?: number;
}

/** The NIC asks the peer for the other end of a new QP (what rdma_cm's connect does). */
export interface PeerQpCreate extends IbvQpAttrs { type: 'peer_qp_create'; remote_qpn: number; qp_type: IbvQpType }
/** The peer's QP and its MR (the peer's memory, registered once: pinned, never faulting). */
export interface PeerQpCreateResult { type: 'peer_qp_create_result'; ret: number; qpn: number; addr: number; rkey: number; pages: number }
export interface PeerQpDestroy { type: 'peer_qp_destroy'; qpn: number }

export type WireMessage = IbRequest | IbResponse | PeerQpCreate | PeerQpCreateResult | PeerQpDestroy;

/**
 * The RNR NAK timer encoding (IBTA vol. 1 Table 45; ibv_modify_qp(3) min_rnr_timer), ns: index 0 is
 * 655.36 ms, 1..31 run from 10 µs to 491.52 ms.
 */
export const RNR_TIMER_NS: readonly number[] = [
  655.36, 0.01, 0.02, 0.03, 0.04, 0.06, 0.08, 0.12, 0.16, 0.24, 0.32, 0.48, 0.64, 0.96, 1.28, 1.92,
  2.56, 3.84, 5.12, 7.68, 10.24, 15.36, 20.48, 30.72, 40.96, 61.44, 81.92, 122.88, 163.84, 245.76, 327.68, 491.52,
].map((ms) => Math.round(ms * 1e6));

/** rnr_retry 7 means retry for ever (IBTA 9.7.5.2.8). */
export const RNR_RETRY_INFINITE = 7;

/** The local ACK timeout: 4.096 µs × 2^timeout; 0 disables it (ibv_modify_qp(3)). */
export function ackTimeoutNs(timeout: number): number {
  return timeout === 0 ? Infinity : 4096 * 2 ** timeout;
}

/** svmsim's defaults (the harness's and the tests'): rnr_retry 7 (for ever), min_rnr_timer 12 (0.64 ms), retry_cnt 7, timeout 14 (67 ms). */
export const DEFAULT_QP_ATTRS: IbvQpAttrs = { rnr_retry: RNR_RETRY_INFINITE, min_rnr_timer: 12, retry_cnt: 7, timeout: 14 };

/** Check QP attributes are in their IB ranges; a message naming the first bad one, or undefined. */
export function badQpAttr(a: IbvQpAttrs): string | undefined {
  const int = (v: number, lo: number, hi: number) => Number.isInteger(v) && v >= lo && v <= hi;
  if (!int(a.rnr_retry, 0, 7)) return `rnr_retry ${a.rnr_retry} is not an integer in 0..7`;
  if (!int(a.min_rnr_timer, 0, 31)) return `min_rnr_timer ${a.min_rnr_timer} is not an integer in 0..31`;
  if (!int(a.retry_cnt, 0, 7)) return `retry_cnt ${a.retry_cnt} is not an integer in 0..7`;
  if (!int(a.timeout, 0, 31)) return `timeout ${a.timeout} is not an integer in 0..31`;
  return undefined;
}
