// Queue pairs: their state, send and receive queues, completions and the error state (IBTA vol. 1
// §10.3 QP states, §11.6 completions; mlx5's QP as the verbs see it). A QP is RTS from creation
// (the INIT → RTR → RTS transitions and the connection exchange are folded into ibv_create_qp) and
// goes to ERR on any completion in error: then every WQE still queued completes with
// IBV_WC_WR_FLUSH_ERR, and later posts complete the same way.
import type { Envelope, Message } from '@svmsim/runtime';
import type { IbResponse, WireMessage } from './ib-wire.js';
import type { Link } from './link.js';
import { bump, type NicHost } from './nic.js';
import type { PageFaults } from './page-fault.js';
import type { RcRequester } from './rc-requester.js';
import type { IbvQpAttrs, IbvQpType, IbvSendWr, IbvSge, IbvWc, IbvWcStatus, IbvWrOpcode } from './rdma-protocol.js';

/** QPs one NIC holds (a simulation bound; the EQ's 0x1000 entries cover two outstanding faults per QP). */
export const QPS_MAX = 1024;
/** Receive WQEs one QP holds (max_recv_wr). */
export const RQ_DEPTH_MAX = 4096;
/** Page faults one send WQE may take before it fails (a simulation bound: the hardware faults for ever). */
export const WQE_REFAULTS_MAX = 64;

export interface RecvWqe {
  sge: IbvSge;
  env: Envelope<Message>;
}

export interface SendWqe {
  wr: IbvSendWr;
  env: Envelope<Message>;
  refaults: number;
}

export interface Qp {
  qpn: number;
  pid: number;
  type: IbvQpType;
  attrs: IbvQpAttrs;
  state: 'RTS' | 'ERR';
  /** The other end, and the peer's MR, as the connection exchange told us. */
  remote: { qpn: number; addr: number; rkey: number; pages: number };
  rq: RecvWqe[];
  sq: SendWqe[];
  /** The send queue's head is executing (requester.ts). */
  sqBusy: boolean;
  requester: RcRequester;
  /** Responder: the PSN expected next; the PSN being executed (0: none). */
  epsn: number;
  executing: number;
  /** Responder: stopped on an ODP page fault until PAGE_FAULT_RESUME. */
  responderFault: boolean;
  /** Responder: the answer to the last request executed (PSN epsn - 1), sent again to a duplicate. */
  lastResp: IbResponse | undefined;
}

/** What the QP code uses of the NIC besides NicHost: its faults, its link to the peer. */
export interface QpHost extends NicHost {
  readonly faults: PageFaults;
  readonly link: Link;
  readonly peer: string;
  /** What the responder does on an rkey fault of an RDMA READ / WRITE / atomic (errata 17). */
  readonly rkeyFaultResponse: 'rnr-nak' | 'drop';
}

/** Put a packet on the link to the peer. */
export function transmit(host: QpHost, msg: WireMessage, pages: number): void {
  host.link.send(pages, () => host.send(host.peer, msg));
}

/** A completion to the process (the reply to its post). */
export function complete(host: QpHost, env: Envelope<Message>, status: IbvWcStatus, opcode: IbvWrOpcode | 'IBV_WC_RECV', byte_len: number, extra: Partial<IbvWc> = {}): void {
  if (status !== 'IBV_WC_SUCCESS' && status !== 'IBV_WC_WR_FLUSH_ERR') bump(host.stats.wqeErrors, status);
  const wc: IbvWc = { type: 'ibv_wc', ret: 0, status, opcode, byte_len: status === 'IBV_WC_SUCCESS' ? byte_len : 0, ...extra };
  host.reply(env, wc);
}

/** A message this NIC completed (either direction): the figures of the busy span. */
export function messageDone(host: NicHost, opcode: string): void {
  const s = host.stats;
  s.rdmaMessages++;
  bump(s.rdmaMessagesByOpcode, opcode);
  const now = host.ctx.now();
  if (s.firstMessageAt < 0) s.firstMessageAt = now;
  s.lastMessageAt = now;
}

/** The QP goes to the error state: every WQE still queued completes with IBV_WC_WR_FLUSH_ERR. */
export function qpToError(host: QpHost, qp: Qp): void {
  if (qp.state === 'ERR') return;
  qp.state = 'ERR';
  host.trace('rdma_qp_error', { qpn: qp.qpn });
  qp.requester.flush();
  // The head may be executing (its own completion is on its way); flush what is behind it.
  const keep = qp.sqBusy ? qp.sq.splice(0, 1) : [];
  for (const w of qp.sq.splice(0)) complete(host, w.env, 'IBV_WC_WR_FLUSH_ERR', w.wr.opcode, 0);
  qp.sq.push(...keep);
  for (const r of qp.rq.splice(0)) complete(host, r.env, 'IBV_WC_WR_FLUSH_ERR', 'IBV_WC_RECV', 0);
}
