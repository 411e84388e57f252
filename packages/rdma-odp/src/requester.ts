// The NIC as requester: the process's send WQEs, one at a time in order per QP (IBTA vol. 1 §9.7.5;
// the ODP behaviour is mlx5's requester WQE faults, research/drivers.md §4).
//
//   checks       the lkey's MR is the process's, covers the SGE, and allows what the WQE does to it:
//                LOCAL_WRITE to land a READ response or an atomic's result. Wrong → the WQE completes
//                with IBV_WC_LOC_PROT_ERR (IBV_WC_LOC_LEN_ERR for an atomic not 8 bytes), the QP to error.
//   SEND, WRITE  the local pages must be valid for reading: a miss is a requester WQE page fault, the
//                send queue stops until the resume, then the WQE runs again. Read (DMA), transmit.
//   READ, atomic transmit; the response lands in the local pages, which must then be valid for
//                writing: a miss faults and the WQE runs again from the start (a new request).
//   completion   the WQE's work completion is the reply to its ibv_post_send.
import { PAGE_SIZE } from '@svmsim/kernel-mm';
import { dmaStart, translate, untranslate } from './dma.js';
import type { IbOpcode } from './ib-wire.js';
import { inMr } from './mr.js';
import type { RequesterOutcome } from './rc-requester.js';
import { complete, messageDone, qpToError, WQE_REFAULTS_MAX, type Qp, type QpHost, type SendWqe } from './qp.js';
import { IBV_ACCESS_LOCAL_WRITE, isAtomic, type IbvWcStatus, type IbvWrOpcode } from './rdma-protocol.js';

const IB_OPCODE: Record<IbvWrOpcode, IbOpcode> = {
  IBV_WR_SEND: 'SEND', IBV_WR_RDMA_WRITE: 'RDMA_WRITE', IBV_WR_RDMA_READ: 'RDMA_READ', IBV_WR_ATOMIC_CMP_AND_SWP: 'CMP_SWP', IBV_WR_ATOMIC_FETCH_AND_ADD: 'FETCH_ADD',
};

/** Start the head of the send queue if it is not running. */
export function kickSendQueue(host: QpHost, qp: Qp): void {
  if (qp.sqBusy || qp.sq.length === 0 || qp.state === 'ERR') return;
  qp.sqBusy = true;
  run(host, qp, qp.sq[0]);
}

function run(host: QpHost, qp: Qp, w: SendWqe): void {
  const { wr } = w;
  const sge = wr.sge;
  const mr = host.mkeys.get(sge.lkey);
  const lands = wr.opcode === 'IBV_WR_RDMA_READ' || isAtomic(wr.opcode);
  if (!mr || mr.pid !== qp.pid || !inMr(mr, sge.addr, sge.length) || (lands && !(mr.access & IBV_ACCESS_LOCAL_WRITE))) return finish(host, qp, w, 'IBV_WC_LOC_PROT_ERR');
  if (isAtomic(wr.opcode) && sge.length !== 8) return finish(host, qp, w, 'IBV_WC_LOC_LEN_ERR');
  const first = sge.addr - (sge.addr % PAGE_SIZE);
  const pages = isAtomic(wr.opcode) ? 1 : Math.ceil((sge.addr + sge.length - first) / PAGE_SIZE);
  const again = (): void => fault(host, qp, w, () => run(host, qp, w));
  const body = { opcode: IB_OPCODE[wr.opcode], raddr: wr.remote_addr ?? 0, rkey: wr.rkey ?? 0, pages, compare_add: wr.compare_add, swap: wr.swap };
  if (!lands) {
    const t = translate(mr, first, pages, false);
    if (!t.ok) return again();
    return dmaStart(host, t.refs, false, undefined, (read) =>
      post(host, qp, w, { ...body, payload: Float64Array.from(read) }, () => finish(host, qp, w, 'IBV_WC_SUCCESS', pages)),
    );
  }
  post(host, qp, w, body, (o) => {
    const t = translate(mr, first, pages, true);
    if (!t.ok) return again();
    if (qp.state === 'ERR') {
      untranslate(t.refs);
      return finish(host, qp, w, 'IBV_WC_WR_FLUSH_ERR');
    }
    const words = isAtomic(wr.opcode) ? [o.resp!.orig ?? 0] : [...(o.resp!.payload ?? [])];
    if (words.length !== pages) {
      untranslate(t.refs);
      host.warn('response of the wrong size', { qpn: qp.qpn, opcode: wr.opcode, pages, got: words.length });
      return finish(host, qp, w, 'IBV_WC_REM_OP_ERR');
    }
    dmaStart(host, t.refs, true, words, () => finish(host, qp, w, 'IBV_WC_SUCCESS', pages, isAtomic(wr.opcode) ? { value: words[0] } : {}));
  });
}

/** Transmit through the QP's requester; a failed outcome completes the WQE with its status. */
function post(host: QpHost, qp: Qp, w: SendWqe, body: Parameters<Qp['requester']['post']>[0], ok: (o: RequesterOutcome) => void): void {
  const queued = qp.requester.post(body, (o) => (o.status === 'IBV_WC_SUCCESS' ? ok(o) : finish(host, qp, w, o.status)));
  if (!queued) finish(host, qp, w, 'IBV_WC_WR_FLUSH_ERR');
}

/** A requester WQE fault on the local buffer: the send queue waits for the resume, then `retry`. */
function fault(host: QpHost, qp: Qp, w: SendWqe, retry: () => void): void {
  if (++w.refaults > WQE_REFAULTS_MAX) {
    host.warn('send WQE faulted without progress', { qpn: qp.qpn, refaults: w.refaults });
    return finish(host, qp, w, 'IBV_WC_LOC_PROT_ERR');
  }
  const sge = w.wr.sge;
  host.faults.raise({
    type: 'wqe-requester', qpn: qp.qpn, segments: [{ key: sge.lkey, va: sge.addr, bcnt: sge.length }],
    resume: (error) => {
      if (qp.state === 'ERR') return finish(host, qp, w, 'IBV_WC_WR_FLUSH_ERR');
      if (error) return finish(host, qp, w, 'IBV_WC_LOC_PROT_ERR');
      retry();
    },
  });
}

/** The head WQE completes: reply, and go on with the next (or flush everything on an error). */
function finish(host: QpHost, qp: Qp, w: SendWqe, status: IbvWcStatus, pages = 0, extra: { value?: number } = {}): void {
  if (qp.sq[0] !== w) return; // flushed meanwhile (the QP went to error)
  qp.sq.shift();
  qp.sqBusy = false;
  complete(host, w.env, status, w.wr.opcode, pages * PAGE_SIZE, extra);
  if (status === 'IBV_WC_SUCCESS') {
    messageDone(host, IB_OPCODE[w.wr.opcode]);
    return kickSendQueue(host, qp);
  }
  qpToError(host, qp);
}
