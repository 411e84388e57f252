// The remote peer: another node's NIC and application at the other end of our QPs. Its memory is one
// MR of `pages` words, pinned (it never faults); it always has receives posted. It is the requester
// for what the process asks it to do to us (peer_post: a SEND into a receive we posted, RDMA WRITE /
// READ / atomics on our MRs), with the RC transport's retries (rc-requester.ts), and the responder
// for our NIC's requests to it.
//
// Config: { nic (the NIC actor, default 'rdma0'), pages (default 4096), costs (WireCosts and
// responderPerPageNs) }.
import { rejectBadMessage, type Envelope as ShapeEnvelope } from '@svmsim/runtime';
import { PEER_SHAPES } from './message-shapes.js';
import { Continuations, type Actor, type ActorId, type Ctx, type Envelope, type Incoming, type Message, type RuntimeMessage } from '@svmsim/runtime';
import { EINVAL, ENOENT, ENOMEM, PAGE_SIZE } from '@svmsim/kernel-mm';
import { badQpAttr, type IbRequest, type IbResponse, type PeerQpCreate, type PeerQpCreateResult, type PeerQpDestroy } from './ib-wire.js';
import { DEFAULT_WIRE, Link, type WireCosts } from './link.js';
import { RcRequester, type RequestBody } from './rc-requester.js';
import { IBV_WR_OPCODES, isAtomic, type IbvQpType, type IbvWcStatus, type PeerPost, type PeerWc } from './rdma-protocol.js';
import { bump } from './nic.js';
import { QPS_MAX } from './qp.js';

export interface PeerCosts extends WireCosts {
  /** The peer's NIC moving one page between the wire and its memory. */
  responderPerPageNs: number;
}
export const DEFAULT_PEER_COSTS: PeerCosts = { ...DEFAULT_WIRE, responderPerPageNs: 100 };

export interface PeerConfig {
  nic?: string;
  pages?: number;
  costs?: Partial<PeerCosts>;
}

/** The peer's MR: its rkey and where it starts in its address space. */
export const PEER_RKEY = 0x7e000;
export const PEER_BASE = 0x7f0000000000;

interface PeerQp {
  qpn: number;
  nicQpn: number;
  type: IbvQpType;
  requester: RcRequester;
}

const IB_OPCODE = { IBV_WR_SEND: 'SEND', IBV_WR_RDMA_WRITE: 'RDMA_WRITE', IBV_WR_RDMA_READ: 'RDMA_READ', IBV_WR_ATOMIC_CMP_AND_SWP: 'CMP_SWP', IBV_WR_ATOMIC_FETCH_AND_ADD: 'FETCH_ADD' } as const;

type PeerIncoming = PeerPost | PeerQpCreate | PeerQpDestroy | IbRequest | IbResponse | RuntimeMessage | { type: 'peer_timer' };

export function createPeer(config: unknown, id: ActorId): Actor<Message> {
  const c = (config ?? {}) as PeerConfig;
  const pages = c.pages ?? 4096;
  if (!Number.isInteger(pages) || pages < 1) throw new Error(`peer config: pages must be an integer >= 1, got ${pages}`);
  return new Peer(id, c.nic ?? 'rdma0', pages, { ...DEFAULT_PEER_COSTS, ...c.costs });
}

class Peer implements Actor<Message> {
  private ctx!: Ctx<Message>;
  private readonly memory: Float64Array;
  private readonly qps = new Map<number, PeerQp>();
  private nextQpn = 0x800;
  private readonly waits = new Continuations(() => this.ctx, 'peer_timer');
  private readonly link: Link;
  private readonly stats = { posts: 0, postErrors: 0, completions: {} as Record<string, number>, requestsServed: 0 };
  /** The transport counters of QPs already destroyed. */
  private readonly retired = { rnrNaksReceived: 0, rnrRetries: 0, transportRetries: 0 };

  constructor(readonly id: ActorId, private readonly nic: string, pages: number, private readonly costs: PeerCosts) {
    this.memory = new Float64Array(pages);
    this.link = new Link(costs, () => this.ctx.now(), (ns, then) => void this.waits.after(ns, then));
  }

  start(ctx: Ctx<Message>): void {
    this.ctx = ctx;
  }

  receive(env: Incoming<Message>, ctx: Ctx<Message>): void {
    this.ctx = ctx;
    if (this.waits.resume(env)) return;
    // The boundary: a malformed message is answered bad_message and changes nothing (message-shapes.ts).
    if (rejectBadMessage(env as ShapeEnvelope<Message>, ctx, PEER_SHAPES)) return;
    const m = env.msg as PeerIncoming;
    switch (m.type) {
      case 'peer_qp_create':
        return this.qpCreate(env, m);
      case 'peer_qp_destroy': {
        const qp = this.qps.get(m.qpn);
        if (!qp) return;
        qp.requester.flush();
        this.retired.rnrNaksReceived += qp.requester.rnrNaksReceived;
        this.retired.rnrRetries += qp.requester.rnrRetries;
        this.retired.transportRetries += qp.requester.transportRetries;
        this.qps.delete(m.qpn);
        return;
      }
      case 'peer_post':
        return this.post(env, m);
      case 'ib_req':
        return this.serve(m);
      case 'ib_resp':
        return this.qps.get(m.dst_qpn)?.requester.onResponse(m);
      case 'peer_timer': // a timer already cancelled
      case 'actor_died':
      case 'request_timeout':
        return;
      default: {
        const never: never = m;
        throw new Error(`${this.id}: unknown message '${(never as Message).type}' from ${env.from}`);
      }
    }
  }

  summary(): Record<string, unknown> {
    const t = { ...this.retired };
    for (const q of this.qps.values()) {
      t.rnrNaksReceived += q.requester.rnrNaksReceived;
      t.rnrRetries += q.requester.rnrRetries;
      t.transportRetries += q.requester.transportRetries;
    }
    return { ...this.stats, ...t, qps: this.qps.size, linkPackets: this.link.packets };
  }

  private qpCreate(env: Envelope<Message>, m: PeerQpCreate): void {
    const answer = (r: PeerQpCreateResult) => this.ctx.reply(env, r);
    const fail = (ret: number) => answer({ type: 'peer_qp_create_result', ret, qpn: 0, addr: 0, rkey: 0, pages: 0 });
    if (badQpAttr(m) !== undefined || (m.qp_type !== 'RC' && m.qp_type !== 'UD')) return fail(EINVAL);
    if (this.qps.size >= QPS_MAX) return fail(ENOMEM);
    const qpn = this.nextQpn++;
    const requester = new RcRequester(
      {
        transmit: (req) => this.link.send(req.payload?.length ?? 0, () => this.ctx.send(this.nic, req)),
        timer: (ns, then) => this.waits.after(ns, then),
        cancelTimer: (t) => void this.waits.cancel(t),
      },
      m, m.qp_type, qpn, () => m.remote_qpn, () => {},
    );
    this.qps.set(qpn, { qpn, nicQpn: m.remote_qpn, type: m.qp_type, requester });
    answer({ type: 'peer_qp_create_result', ret: 0, qpn, addr: PEER_BASE, rkey: PEER_RKEY, pages: this.memory.length });
  }

  /** The remote application posts a WQE towards our NIC. */
  private post(env: Envelope<Message>, m: PeerPost): void {
    const wc = (ret: number, status: IbvWcStatus, extra: Partial<PeerWc> = {}) => {
      bump(this.stats.completions, status);
      const w: PeerWc = { type: 'peer_wc', ret, status, rnr_naks: 0, retries: 0, ...extra };
      this.ctx.reply(env, w);
    };
    const qp = this.qps.get(m.qpn);
    if (!qp) return wc(ENOENT, 'IBV_WC_WR_FLUSH_ERR');
    const bad = !IBV_WR_OPCODES.includes(m.opcode) || !(Number.isInteger(m.pages) && m.pages >= 1) || !Number.isFinite(m.remote_addr) || !Number.isInteger(m.rkey)
      || ((m.opcode === 'IBV_WR_SEND' || m.opcode === 'IBV_WR_RDMA_WRITE') && (!Array.isArray(m.values) || m.values.length !== m.pages))
      || (isAtomic(m.opcode) && m.pages !== 1) || (qp.type === 'UD' && m.opcode !== 'IBV_WR_SEND');
    if (bad) {
      this.stats.postErrors++;
      return wc(EINVAL, 'IBV_WC_WR_FLUSH_ERR');
    }
    this.stats.posts++;
    const body: RequestBody = {
      opcode: IB_OPCODE[m.opcode], raddr: m.remote_addr, rkey: m.rkey, pages: m.pages,
      ...(m.values && { payload: Float64Array.from(m.values) }), compare_add: m.compare_add, swap: m.swap,
    };
    const queued = qp.requester.post(body, (o) => {
      const extra: Partial<PeerWc> = { rnr_naks: o.rnrNaks, retries: o.retries };
      if (o.resp?.payload) extra.values = [...o.resp.payload];
      if (o.resp?.orig !== undefined) extra.value = o.resp.orig;
      wc(0, o.status, extra);
    });
    if (!queued) wc(ENOMEM, 'IBV_WC_WR_FLUSH_ERR');
  }

  /** Our NIC's request: served from the peer's pinned memory. */
  private serve(req: IbRequest): void {
    const qp = this.qps.get(req.dst_qpn);
    if (!qp) return;
    const answer = (resp: Omit<IbResponse, 'type' | 'dst_qpn' | 'psn'>) => {
      if (qp.type === 'UD') return;
      const r: IbResponse = { type: 'ib_resp', dst_qpn: req.src_qpn, psn: req.psn, ...resp };
      this.link.send(r.payload?.length ?? 0, () => this.ctx.send(this.nic, r));
    };
    this.stats.requestsServed++;
    if (req.opcode === 'SEND') return this.waits.sleep(req.pages * this.costs.responderPerPageNs, () => answer({ syndrome: 'ACK' }));
    const first = (req.raddr - PEER_BASE) / PAGE_SIZE;
    const n = isAtomicIb(req.opcode) ? 1 : req.pages;
    if (req.rkey !== PEER_RKEY || !Number.isInteger(first) || first < 0 || first + n > this.memory.length) return answer({ syndrome: 'NAK_REMOTE_ACCESS' });
    this.waits.sleep(n * this.costs.responderPerPageNs, () => {
      switch (req.opcode) {
        case 'RDMA_WRITE':
          if (req.payload?.length !== n) return answer({ syndrome: 'NAK_INVALID_REQUEST' });
          this.memory.set(req.payload, first);
          return answer({ syndrome: 'ACK' });
        case 'RDMA_READ':
          return answer({ syndrome: 'ACK', payload: this.memory.slice(first, first + n) });
        case 'CMP_SWP':
        case 'FETCH_ADD': {
          const orig = this.memory[first];
          this.memory[first] = req.opcode === 'FETCH_ADD' ? orig + (req.compare_add ?? 0) : orig === req.compare_add ? (req.swap ?? 0) : orig;
          return answer({ syndrome: 'ACK', orig });
        }
      }
    });
  }
}

const isAtomicIb = (op: IbRequest['opcode']): boolean => op === 'CMP_SWP' || op === 'FETCH_ADD';
