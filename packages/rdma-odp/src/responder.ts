// The NIC as responder: requests from the peer on one of our QPs (IBTA vol. 1 §9.7.4 responder;
// the ODP behaviour is mlx5's, research/drivers.md §4 and errata 17).
//
//   SEND         into the receive WQE at the head of the RQ. None posted → RNR NAK (the classic
//                receiver-not-ready). Its buffer's pages not all valid in the MTT → a responder WQE
//                page fault, the QP stops, RNR NAK.
//   RDMA WRITE   rkey → REMOTE_WRITE, bounds; READ → REMOTE_READ; atomics → REMOTE_ATOMIC and one
//   RDMA READ    8-byte-aligned word. Wrong → NAK remote access, the QP to error, nothing written.
//   atomics      Pages not valid (for writing: WRITE and atomics; reading: READ) → an RDMA page fault,
//                the QP stops, and the request is RNR-NAKed or dropped (`rkeyFaultResponse`): the
//                hardware does either, the kernel only resumes (errata 17).
//   while stopped on a fault: every request for the QP is answered the same way, until
//                PAGE_FAULT_RESUME. Resumed with error: NAK (remote access for rkeys, remote
//                operational for a receive), the QP to error.
//   executed:    DMA through the MTT (dma.ts), then the ACK / read response / atomic response.
// A duplicate (a PSN already executed) gets the last answer again; a retransmission of the request
// being executed is ignored (its answer is coming).
// UD: SENDs only; a receiver not ready, or a fault, drops the packet (no RNR on UD).
import { PAGE_SIZE } from '@svmsim/kernel-mm';
import { dmaAtomic, dmaStart, translate, type Translation } from './dma.js';
import type { IbRequest, IbResponse, IbSyndrome } from './ib-wire.js';
import { inMr, type Mr } from './mr.js';
import type { FaultSegment, FaultType } from './page-fault.js';
import { complete, messageDone, qpToError, transmit, type Qp, type QpHost } from './qp.js';
import { IBV_ACCESS_LOCAL_WRITE, IBV_ACCESS_REMOTE_ATOMIC, IBV_ACCESS_REMOTE_READ, IBV_ACCESS_REMOTE_WRITE } from './rdma-protocol.js';

const ATOMIC_BYTES = 8;

/** Pages one message may carry (a simulation bound: 16 MiB; IB allows 2 GiB). */
export const MESSAGE_PAGES_MAX = 4096;

export function onRequest(host: QpHost, qp: Qp, req: IbRequest): void {
  if (qp.state === 'ERR') return; // a QP in error answers nothing: the requester times out
  const carries = req.opcode === 'SEND' || req.opcode === 'RDMA_WRITE';
  if (!(Number.isInteger(req.pages) && req.pages >= 1 && req.pages <= MESSAGE_PAGES_MAX) || (carries && req.payload?.length !== req.pages)) {
    host.warn('malformed request packet', { qpn: qp.qpn, opcode: req.opcode, pages: req.pages });
    if (qp.type === 'RC') nak(host, qp, req, 'NAK_INVALID_REQUEST');
    return;
  }
  if (qp.type === 'UD') return udReceive(host, qp, req);
  if (req.psn < qp.epsn) {
    if (qp.lastResp?.psn === req.psn) respond(host, qp.lastResp);
    return;
  }
  if (req.psn === qp.executing) return;
  if (req.psn > qp.epsn) {
    host.warn('request out of sequence (one message in flight per QP: cannot happen)', { qpn: qp.qpn, psn: req.psn, epsn: qp.epsn });
    return;
  }
  if (qp.responderFault) return notReady(host, qp, req, false);
  if (req.opcode === 'SEND') return receive(host, qp, req);
  rdma(host, qp, req);
}

/** SEND into the head receive WQE. */
function receive(host: QpHost, qp: Qp, req: IbRequest): void {
  const r = qp.rq[0];
  if (!r) return notReady(host, qp, req, true);
  const mr = host.mkeys.get(r.sge.lkey);
  const bytes = req.pages * PAGE_SIZE;
  if (!mr || mr.pid !== qp.pid || !(mr.access & IBV_ACCESS_LOCAL_WRITE) || !inMr(mr, r.sge.addr, r.sge.length)) return recvError(host, qp, req, 'IBV_WC_LOC_PROT_ERR', 'NAK_REMOTE_OP');
  if (r.sge.length < bytes) return recvError(host, qp, req, 'IBV_WC_LOC_LEN_ERR', 'NAK_INVALID_REQUEST');
  const t = translate(mr, pageOf(r.sge.addr), req.pages, true);
  if (!t.ok) return fault(host, qp, req, 'wqe-responder', { key: r.sge.lkey, va: r.sge.addr, bcnt: r.sge.length });
  qp.executing = req.psn;
  dmaStart(host, t.refs, true, req.payload, () => {
    // The QP may have gone to error meanwhile: its receives were flushed.
    if (qp.rq[0] === r) {
      qp.rq.shift();
      complete(host, r.env, 'IBV_WC_SUCCESS', 'IBV_WC_RECV', bytes, { values: [...req.payload!] });
    }
    done(host, qp, req, { syndrome: 'ACK' });
  });
}

/** RDMA WRITE, RDMA READ, atomics on one of our MRs. */
function rdma(host: QpHost, qp: Qp, req: IbRequest): void {
  const atomic = req.opcode === 'CMP_SWP' || req.opcode === 'FETCH_ADD';
  const need = req.opcode === 'RDMA_WRITE' ? IBV_ACCESS_REMOTE_WRITE : req.opcode === 'RDMA_READ' ? IBV_ACCESS_REMOTE_READ : IBV_ACCESS_REMOTE_ATOMIC;
  const bytes = atomic ? ATOMIC_BYTES : req.pages * PAGE_SIZE;
  const mr = host.mkeys.get(req.rkey);
  if (!mr || mr.pid !== qp.pid || !(mr.access & need) || !inMr(mr, req.raddr, bytes)) return nak(host, qp, req, 'NAK_REMOTE_ACCESS');
  if (atomic && req.raddr % ATOMIC_BYTES !== 0) return nak(host, qp, req, 'NAK_INVALID_REQUEST');
  const write = req.opcode !== 'RDMA_READ';
  const t: Translation = translate(mr, pageOf(req.raddr), atomic ? 1 : req.pages, write);
  if (!t.ok) return fault(host, qp, req, 'rdma', { key: req.rkey, va: req.raddr, bcnt: bytes });
  qp.executing = req.psn;
  switch (req.opcode) {
    case 'RDMA_WRITE':
      return dmaStart(host, t.refs, true, req.payload, () => done(host, qp, req, { syndrome: 'ACK' }));
    case 'RDMA_READ':
      return dmaStart(host, t.refs, false, undefined, (read) => done(host, qp, req, { syndrome: 'ACK', payload: Float64Array.from(read) }));
    case 'CMP_SWP':
    case 'FETCH_ADD':
      return dmaAtomic(host, t.refs[0], (orig) => (req.opcode === 'FETCH_ADD' ? orig + (req.compare_add ?? 0) : orig === req.compare_add ? (req.swap ?? 0) : orig),
        (orig) => done(host, qp, req, { syndrome: 'ACK', orig }));
    case 'SEND':
      throw new Error('unreachable: SEND is a receive');
  }
}

/** Executed: the answer, remembered for duplicates. */
function done(host: QpHost, qp: Qp, req: IbRequest, a: Pick<IbResponse, 'syndrome' | 'payload' | 'orig'>): void {
  const resp: IbResponse = { type: 'ib_resp', dst_qpn: req.src_qpn, psn: req.psn, ...a };
  qp.epsn = req.psn + 1;
  qp.executing = 0;
  qp.lastResp = resp;
  messageDone(host, req.opcode);
  if (qp.state === 'RTS') respond(host, resp);
}

function respond(host: QpHost, resp: IbResponse): void {
  transmit(host, resp, resp.payload?.length ?? 0);
}

/** A NAK that fails the requester's WQE: this QP goes to error too (IBTA class J/K errors). */
function nak(host: QpHost, qp: Qp, req: IbRequest, syndrome: IbSyndrome): void {
  transmit(host, { type: 'ib_resp', dst_qpn: req.src_qpn, psn: req.psn, syndrome }, 0);
  qpToError(host, qp);
}

function recvError(host: QpHost, qp: Qp, req: IbRequest, status: 'IBV_WC_LOC_PROT_ERR' | 'IBV_WC_LOC_LEN_ERR', syndrome: IbSyndrome): void {
  const r = qp.rq.shift()!;
  complete(host, r.env, status, 'IBV_WC_RECV', 0);
  nak(host, qp, req, syndrome);
}

/** No receive WQE, or stopped on a fault: RNR NAK, or (an rkey fault in drop mode) no answer at all. */
function notReady(host: QpHost, qp: Qp, req: IbRequest, noRecv: boolean): void {
  if (!noRecv && req.opcode !== 'SEND' && host.rkeyFaultResponse === 'drop') {
    host.stats.requestsDroppedOnFault++;
    return;
  }
  host.stats.rnrNaksSent++;
  transmit(host, { type: 'ib_resp', dst_qpn: req.src_qpn, psn: req.psn, syndrome: 'RNR_NAK', rnr_timer: qp.attrs.min_rnr_timer }, 0);
}

/** The QP stops on a page fault; the request is answered as not ready. */
function fault(host: QpHost, qp: Qp, req: IbRequest, type: FaultType, seg: FaultSegment): void {
  qp.responderFault = true;
  host.faults.raise({
    type, qpn: qp.qpn, segments: [seg],
    resume: (error) => {
      qp.responderFault = false;
      if (!error || qp.state === 'ERR') return;
      if (type === 'wqe-responder' && qp.rq.length > 0) return recvError(host, qp, req, 'IBV_WC_LOC_PROT_ERR', 'NAK_REMOTE_OP');
      nak(host, qp, req, 'NAK_REMOTE_ACCESS');
    },
  });
  notReady(host, qp, req, false);
}

/** UD: a SEND into the head receive, or dropped. */
function udReceive(host: QpHost, qp: Qp, req: IbRequest): void {
  const drop = () => void host.stats.udDrops++;
  const r = qp.rq[0];
  if (req.opcode !== 'SEND' || !r || qp.responderFault) return drop();
  const mr: Mr | undefined = host.mkeys.get(r.sge.lkey);
  if (!mr || mr.pid !== qp.pid || !(mr.access & IBV_ACCESS_LOCAL_WRITE) || !inMr(mr, r.sge.addr, r.sge.length) || r.sge.length < req.pages * PAGE_SIZE) {
    qp.rq.shift();
    complete(host, r.env, 'IBV_WC_LOC_PROT_ERR', 'IBV_WC_RECV', 0);
    return qpToError(host, qp);
  }
  const t = translate(mr, pageOf(r.sge.addr), req.pages, true);
  if (!t.ok) {
    qp.responderFault = true;
    host.faults.raise({
      type: 'wqe-responder', qpn: qp.qpn, segments: [{ key: r.sge.lkey, va: r.sge.addr, bcnt: r.sge.length }],
      resume: (error) => {
        qp.responderFault = false;
        if (error && qp.state === 'RTS' && qp.rq.length > 0) {
          complete(host, qp.rq.shift()!.env, 'IBV_WC_LOC_PROT_ERR', 'IBV_WC_RECV', 0);
          qpToError(host, qp);
        }
      },
    });
    return drop();
  }
  dmaStart(host, t.refs, true, req.payload, () => {
    if (qp.rq[0] === r) {
      qp.rq.shift();
      complete(host, r.env, 'IBV_WC_SUCCESS', 'IBV_WC_RECV', req.pages * PAGE_SIZE, { values: [...req.payload!] });
    }
    messageDone(host, req.opcode);
  });
}

const pageOf = (addr: number): number => addr - (addr % PAGE_SIZE);
