// The requester side of one QP's transport, shared by the NIC and the peer: it sends each WQE's
// request packet with the next PSN, and decides the WQE's outcome from what comes back (IBTA vol. 1
// §9.7.5 requester, §9.9 error handling):
//   ACK, read/atomic response   → IBV_WC_SUCCESS
//   RNR NAK                     → wait the responder's RNR timer and send again; after rnr_retry
//                                 retries (7: never give up) → IBV_WC_RNR_RETRY_EXC_ERR
//   nothing before the local ACK timeout (the responder dropped it) → send again; after retry_cnt
//                                 retries → IBV_WC_RETRY_EXC_ERR
//   NAK remote access / invalid request / remote operational → IBV_WC_REM_ACCESS_ERR /
//                                 REM_INV_REQ_ERR / REM_OP_ERR
// Any error moves the QP to the error state: the failed WQE completes with its status and every
// WQE queued behind it with IBV_WC_WR_FLUSH_ERR.
//
// Departure: one message in flight per QP (the requester waits for a message's answer before it
// sends the next), where hardware pipelines many with go-back-N on a NAK. Concurrency comes from
// several QPs, as rdma-core's tests and perftest use them.
import { ackTimeoutNs, RNR_RETRY_INFINITE, RNR_TIMER_NS, type IbRequest, type IbResponse } from './ib-wire.js';
import type { IbvQpAttrs, IbvQpType, IbvWcStatus } from './rdma-protocol.js';

/** WQEs a send queue holds (max_send_wr; mlx5 allows up to 32 Ki, a simulation bound here). */
export const SQ_DEPTH_MAX = 4096;
/** rnr_retry 7 retries for ever; "for ever" is bounded so that a run can end: past this many RNR NAKs of one message, IBV_WC_RNR_RETRY_EXC_ERR. */
export const RNR_RETRIES_INFINITE_MAX = 100_000;

export interface RequesterHost {
  /** Put a request packet on the wire to the responder. */
  transmit(req: IbRequest): void;
  timer(ns: number, then: () => void): number;
  cancelTimer(id: number): void;
}

export interface RequesterOutcome {
  status: IbvWcStatus;
  resp?: IbResponse;
  rnrNaks: number;
  retries: number;
}

/** A request still to be sent: everything but the PSN and the addressing the requester adds. */
export type RequestBody = Omit<IbRequest, 'type' | 'psn' | 'dst_qpn' | 'src_qpn' | 'qp_type'>;

interface Pending {
  body: RequestBody;
  done: (o: RequesterOutcome) => void;
}

export class RcRequester {
  private readonly queue: Pending[] = [];
  private current: (Pending & { req: IbRequest; rnrNaks: number; retries: number; timer: number }) | undefined;
  private nextPsn = 1;
  error = false;
  rnrNaksReceived = 0;
  rnrRetries = 0;
  transportRetries = 0;

  constructor(
    private readonly host: RequesterHost,
    private readonly attrs: IbvQpAttrs,
    private readonly qpType: IbvQpType,
    private readonly srcQpn: number,
    private readonly dstQpn: () => number,
    /** The QP went to the error state (its owner flushes its other queues). */
    private readonly onError: () => void,
  ) {}

  get depth(): number {
    return this.queue.length + (this.current ? 1 : 0);
  }

  /** Queue a request; `done` gets its outcome. false: the send queue is full (the post fails with -ENOMEM). */
  post(body: RequestBody, done: (o: RequesterOutcome) => void): boolean {
    if (this.depth >= SQ_DEPTH_MAX) return false;
    if (this.error) {
      done({ status: 'IBV_WC_WR_FLUSH_ERR', rnrNaks: 0, retries: 0 });
      return true;
    }
    this.queue.push({ body, done });
    if (!this.current) this.next();
    return true;
  }

  /** A response packet for this QP. Responses to anything but the request in flight are stale duplicates. */
  onResponse(resp: IbResponse): void {
    const c = this.current;
    if (!c || resp.psn !== c.req.psn) return;
    this.host.cancelTimer(c.timer);
    switch (resp.syndrome) {
      case 'ACK':
        return this.finish({ status: 'IBV_WC_SUCCESS', resp, rnrNaks: c.rnrNaks, retries: c.retries });
      case 'RNR_NAK': {
        c.rnrNaks++;
        this.rnrNaksReceived++;
        const limit = this.attrs.rnr_retry === RNR_RETRY_INFINITE ? RNR_RETRIES_INFINITE_MAX : this.attrs.rnr_retry;
        if (c.rnrNaks > limit) {
          return this.fail({ status: 'IBV_WC_RNR_RETRY_EXC_ERR', rnrNaks: c.rnrNaks, retries: c.retries });
        }
        this.rnrRetries++;
        c.timer = this.host.timer(RNR_TIMER_NS[resp.rnr_timer ?? 0], () => this.current === c && this.transmit());
        return;
      }
      case 'NAK_REMOTE_ACCESS':
        return this.fail({ status: 'IBV_WC_REM_ACCESS_ERR', rnrNaks: c.rnrNaks, retries: c.retries });
      case 'NAK_INVALID_REQUEST':
        return this.fail({ status: 'IBV_WC_REM_INV_REQ_ERR', rnrNaks: c.rnrNaks, retries: c.retries });
      case 'NAK_REMOTE_OP':
        return this.fail({ status: 'IBV_WC_REM_OP_ERR', rnrNaks: c.rnrNaks, retries: c.retries });
      default: {
        const never: never = resp.syndrome;
        throw new Error(`rc requester: unknown syndrome ${String(never)}`);
      }
    }
  }

  /** The QP is being destroyed or moved to error by its owner: flush everything. */
  flush(): void {
    if (this.current) this.host.cancelTimer(this.current.timer);
    this.error = true;
    const all = [...(this.current ? [this.current] : []), ...this.queue.splice(0)];
    this.current = undefined;
    for (const p of all) p.done({ status: 'IBV_WC_WR_FLUSH_ERR', rnrNaks: 0, retries: 0 });
  }

  private next(): void {
    const p = this.queue.shift();
    if (!p) return;
    const b = p.body;
    const req: IbRequest = {
      type: 'ib_req', dst_qpn: this.dstQpn(), src_qpn: this.srcQpn, qp_type: this.qpType, psn: this.nextPsn++,
      opcode: b.opcode, raddr: b.raddr, rkey: b.rkey, pages: b.pages, payload: b.payload, compare_add: b.compare_add, swap: b.swap,
    };
    this.current = { body: b, done: p.done, req, rnrNaks: 0, retries: 0, timer: -1 };
    this.transmit();
  }

  private transmit(): void {
    const c = this.current!;
    this.host.transmit(c.req);
    if (this.qpType === 'UD') return this.finish({ status: 'IBV_WC_SUCCESS', rnrNaks: 0, retries: 0 });
    const timeoutNs = ackTimeoutNs(this.attrs.timeout);
    if (!Number.isFinite(timeoutNs)) return;
    c.timer = this.host.timer(timeoutNs, () => {
      if (this.current !== c) return;
      if (c.retries >= this.attrs.retry_cnt) return this.fail({ status: 'IBV_WC_RETRY_EXC_ERR', rnrNaks: c.rnrNaks, retries: c.retries });
      c.retries++;
      this.transportRetries++;
      this.transmit();
    });
  }

  private finish(o: RequesterOutcome): void {
    const c = this.current!;
    this.current = undefined;
    c.done(o);
    this.next();
  }

  private fail(o: RequesterOutcome): void {
    const c = this.current!;
    this.current = undefined;
    this.error = true;
    c.done(o);
    for (const p of this.queue.splice(0)) p.done({ status: 'IBV_WC_WR_FLUSH_ERR', rnrNaks: 0, retries: 0 });
    this.onError();
  }
}
