// The RDMA NIC actor: one mlx5-like HCA and its driver (mlx5_ib with ib_core's umem and ODP code).
// It owns the MRs (pinned, explicit ODP, implicit ODP, dma-buf: mr-verbs.ts), their MTTs, the QPs
// (qp.ts; the NIC as requester: requester.ts, as responder: responder.ts), the page-fault EQ and its
// workqueue (page-fault.ts), the interval-notifier callback (odp-invalidate.ts), the dma-buf
// importer's move_notify (umem-dmabuf.ts) and prefetch (prefetch.ts). The link to the remote peer
// actor carries the IB transport (ib-wire.ts).
//
// It talks to the process with rdma-protocol.ts (verbs), to mm only through kernel-mm's protocol.ts,
// to a dma-buf exporter with gpu-driver's dma-buf-protocol.ts, to the peer with ib-wire.ts.
//
// Config (RdmaConfig): `mrKind` (the MR kind the harness registers with, for the summary), `unsafe`
// (unsafe-odp: the invalidate callback and move_notify ack before the DMA in flight drains),
// `peer` (default `${id}.peer`), `mm`, `costs`, `rkeyFaultResponse`.
import { rejectBadMessage, type Envelope as ShapeEnvelope } from '@svmsim/runtime';
import { RDMA_SHAPES } from './message-shapes.js';
import { Continuations, type Actor, type ActorId, type Ctx, type Envelope, type Incoming, type Message, type RuntimeMessage } from '@svmsim/runtime';
import { EINVAL, ENOENT, ENOMEM, type Invalidate } from '@svmsim/kernel-mm';
import type { DmaBufMoveNotify } from '@svmsim/gpu-driver/dma-buf-protocol';
import { badQpAttr, type IbRequest, type IbResponse, type PeerQpCreateResult } from './ib-wire.js';
import { Link } from './link.js';
import { MkeyTable, type LeafMr } from './mr.js';
import { mlx5_ib_dereg_mr, mlx5_ib_reg_user_mr, mlx5_ib_reg_user_mr_dmabuf } from './mr-verbs.js';
import { DEFAULT_NIC_COSTS, newNicStats, retOf, type NicCosts, type NicOut, type NicStats, type Reply } from './nic.js';
import { mlx5_ib_invalidate_range } from './odp-invalidate.js';
import { PageFaults } from './page-fault.js';
import { mlx5_ib_advise_mr } from './prefetch.js';
import { complete, qpToError, QPS_MAX, RQ_DEPTH_MAX, transmit, type Qp, type QpHost } from './qp.js';
import { RcRequester, SQ_DEPTH_MAX } from './rc-requester.js';
import { IBV_WR_OPCODES, type IbvCreateQp, type IbvDestroyQp, type IbvPostRecv, type IbvPostSend, type RdmaRequest } from './rdma-protocol.js';
import { onRequest } from './responder.js';
import { newRdmaRwStats, rdma_rw_ctx_post } from './rdma-rw.js';
import type { RdmaRwCtx } from '@svmsim/nvme';
import { kickSendQueue } from './requester.js';
import { mlx5_ib_dmabuf_invalidate_cb } from './umem-dmabuf.js';
import { PinnedVm } from './umem.js';
import { maxOf, percentile } from '@svmsim/gpu-driver/percentile';

export type MrKindName = 'pinned-mr' | 'odp' | 'implicit-odp' | 'dmabuf' | 'unsafe-odp';
export const RDMA_MR_KINDS: readonly MrKindName[] = ['pinned-mr', 'odp', 'implicit-odp', 'dmabuf', 'unsafe-odp'];

export interface RdmaConfig {
  /** The MR kind the process registers with (the scenario's policy); reported in the summary. */
  mrKind?: MrKindName;
  /** unsafe-odp: ack invalidations (and move_notify) before the DMA in flight drains. */
  unsafe?: boolean;
  mm?: string;
  peer?: string;
  costs?: Partial<NicCosts>;
  /** A responder's rkey fault on RDMA READ / WRITE / atomics: RNR NAK (default) or drop the packet (errata 17). */
  rkeyFaultResponse?: 'rnr-nak' | 'drop';
}

type RdmaIncoming = RdmaRequest | Invalidate | DmaBufMoveNotify | IbRequest | IbResponse | RdmaRwCtx | RuntimeMessage | { type: 'rdma_timer' };

export function createRdma(config: unknown, id: ActorId): Actor<Message> {
  const c = (config ?? {}) as RdmaConfig;
  if (c.mrKind !== undefined && !RDMA_MR_KINDS.includes(c.mrKind)) throw new Error(`rdma config: mrKind must be one of ${RDMA_MR_KINDS.join(', ')}, got ${JSON.stringify(c.mrKind)}`);
  if (c.rkeyFaultResponse !== undefined && c.rkeyFaultResponse !== 'rnr-nak' && c.rkeyFaultResponse !== 'drop') throw new Error(`rdma config: rkeyFaultResponse must be rnr-nak or drop, got ${JSON.stringify(c.rkeyFaultResponse)}`);
  for (const [k, v] of Object.entries(c.costs ?? {})) {
    if (!(k in DEFAULT_NIC_COSTS) || !(typeof v === 'number' && v >= 0)) throw new Error(`rdma config: costs.${k} must be one of ${Object.keys(DEFAULT_NIC_COSTS).join(', ')} with a value >= 0 ns, got ${JSON.stringify(v)}`);
  }
  return new Rdma(c, id);
}

class Rdma implements Actor<Message>, QpHost {
  ctx!: Ctx<Message>;
  readonly mm: string;
  readonly peer: string;
  readonly costs: NicCosts;
  readonly stats: NicStats = newNicStats();
  /** The in-kernel ULPs' RDMA reads and writes (rdma-rw.ts: the NVMe-oF target's). */
  readonly rwStats = newRdmaRwStats();
  readonly mkeys = new MkeyTable();
  readonly bySub = new Map<number, LeafMr>();
  readonly pinnedVm = new PinnedVm();
  readonly unsafe: boolean;
  readonly rkeyFaultResponse: 'rnr-nak' | 'drop';
  readonly faults: PageFaults;
  readonly link: Link;
  private readonly qps = new Map<number, Qp>();
  private nextQpn = 0x40;
  private readonly waits = new Continuations<Reply>(() => this.ctx, 'rdma_timer');

  constructor(private readonly cfg: RdmaConfig, readonly id: ActorId) {
    this.mm = cfg.mm ?? 'mm';
    this.peer = cfg.peer ?? `${id}.peer`;
    this.costs = { ...DEFAULT_NIC_COSTS, ...cfg.costs };
    this.unsafe = cfg.unsafe === true || cfg.mrKind === 'unsafe-odp';
    this.rkeyFaultResponse = cfg.rkeyFaultResponse ?? 'rnr-nak';
    this.faults = new PageFaults(this);
    this.link = new Link(this.costs, () => this.ctx.now(), (ns, then) => void this.waits.after(ns, then));
  }

  start(ctx: Ctx<Message>): void {
    this.ctx = ctx;
  }

  receive(env: Incoming<Message>, ctx: Ctx<Message>): void {
    this.ctx = ctx;
    if (this.waits.resume(env)) return;
    // The boundary: a malformed message is answered bad_message and changes nothing (message-shapes.ts).
    if (rejectBadMessage(env as ShapeEnvelope<Message>, ctx, RDMA_SHAPES)) return;
    const m = env.msg as RdmaIncoming;
    switch (m.type) {
      case 'ibv_reg_mr':
        return mlx5_ib_reg_user_mr(this, env, m);
      case 'ibv_reg_dmabuf_mr':
        return mlx5_ib_reg_user_mr_dmabuf(this, env, m);
      case 'ibv_dereg_mr':
        return mlx5_ib_dereg_mr(this, env, m);
      case 'ibv_create_qp':
        return this.createQp(env, m);
      case 'ibv_destroy_qp':
        return this.destroyQp(env, m);
      case 'ibv_post_send':
        return this.postSend(env, m);
      case 'ibv_post_recv':
        return this.postRecv(env, m);
      case 'ibv_advise_mr':
        return mlx5_ib_advise_mr(this, env, m);
      case 'rdma_query_counters':
        return this.reply(env, { type: 'rdma_counters', ret: 0, counters: this.counters() });
      case 'invalidate': {
        const mr = this.bySub.get(m.sub);
        if (!mr) {
          // Not one of ours (a umem already released): nothing to stop.
          this.warn('invalidate for an unknown subscription', { sub: m.sub });
          return this.reply(env, { type: 'invalidate_ack', sub: m.sub, ok: true });
        }
        return mlx5_ib_invalidate_range(this, env, m, mr);
      }
      case 'dma_buf_move_notify': {
        const mr = [...this.mkeys.values()].find((x) => x.dmabuf?.attachment === m.attachment && x.dmabuf.exporter === env.from) as LeafMr | undefined;
        return mlx5_ib_dmabuf_invalidate_cb(this, env, m, mr);
      }
      case 'ib_req': {
        const qp = this.qps.get(m.dst_qpn);
        if (!qp) return this.warn('request for an unknown QP', { qpn: m.dst_qpn });
        return onRequest(this, qp, m);
      }
      case 'ib_resp':
        return this.qps.get(m.dst_qpn)?.requester.onResponse(m);
      case 'rdma_rw_ctx':
        return rdma_rw_ctx_post(this, this.rwStats, env as Envelope<Message>, m);
      case 'rdma_timer': // a timer already cancelled
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
    const s = this.stats;
    let qpsInError = 0;
    for (const q of this.qps.values()) if (q.state === 'ERR') qpsInError++;
    return {
      mrKind: this.cfg.mrKind ?? null,
      policy: this.cfg.mrKind ?? null,
      ...s,
      ...this.rwStats,
      faultLatencyNs: undefined,
      invalidateWaitNs: undefined,
      faultLatencyP50Ns: percentile(s.faultLatencyNs, 50),
      faultLatencyP99Ns: percentile(s.faultLatencyNs, 99),
      invalidateWaitP50Ns: percentile(s.invalidateWaitNs, 50),
      invalidateWaitMaxNs: maxOf(s.invalidateWaitNs),
      invalidateWaitTotalNs: s.invalidateWaitNs.reduce((a, b) => a + b, 0),
      pagesPerFault: s.odpFaultsResolved > 0 ? s.odpFaultPages / s.odpFaultsResolved : 0,
      pinnedVmMaxPages: this.pinnedVm.max,
      faultsOutstandingMax: this.faults.outstandingMax,
      mrs: this.mkeys.size,
      qps: this.qps.size,
      qpsInError,
      linkPackets: this.link.packets,
      pendingCalls: this.waits.pendingRequests,
    };
  }

  /** The hardware counters a run reads at phase ends: every numeric figure of the summary. */
  private counters(): Record<string, number> {
    const out: Record<string, number> = {};
    for (const [k, v] of Object.entries(this.summary())) if (typeof v === 'number') out[k] = v;
    return out;
  }

  // ---- NicHost ----

  call(to: string, msg: NicOut, then: (r: Reply) => void): void {
    this.waits.request(to, msg, then);
  }
  send(to: string, msg: NicOut): void {
    this.ctx.send(to, msg);
  }
  reply(env: Envelope<Message>, msg: NicOut): void {
    this.ctx.reply(env, msg);
  }
  sleep(ns: number, then: () => void): void {
    this.waits.sleep(ns, then);
  }
  timer(ns: number, then: () => void): number {
    return this.waits.after(ns, then);
  }
  cancelTimer(id: number): void {
    this.waits.cancel(id);
  }
  trace(ev: string, fields: Record<string, unknown>): void {
    if (this.ctx.tracing) this.ctx.trace(ev, fields);
  }
  warn(what: string, fields: Record<string, unknown> = {}): void {
    this.stats.warnings++;
    if (this.ctx.tracing) this.ctx.trace('warn', { what: `${this.id}: ${what}`, ...fields });
  }

  // ---- QP verbs ----

  private createQp(env: Envelope<Message>, m: IbvCreateQp): void {
    const fail = (ret: number) => this.reply(env, { type: 'ibv_create_qp_result', ret, qpn: 0, remote_qpn: 0, remote_addr: 0, remote_rkey: 0, remote_pages: 0 });
    if ((m.qp_type !== 'RC' && m.qp_type !== 'UD') || badQpAttr(m) !== undefined || !Number.isInteger(m.pid)) return fail(EINVAL);
    if (this.qps.size >= QPS_MAX) return fail(ENOMEM);
    const qpn = this.nextQpn++;
    const attrs = { rnr_retry: m.rnr_retry, min_rnr_timer: m.min_rnr_timer, retry_cnt: m.retry_cnt, timeout: m.timeout };
    this.call(this.peer, { type: 'peer_qp_create', remote_qpn: qpn, qp_type: m.qp_type, ...attrs }, (r) => {
      const ret = retOf(r);
      if (ret < 0) return fail(ret);
      const p = r as unknown as PeerQpCreateResult;
      const qp: Qp = {
        qpn, pid: m.pid, type: m.qp_type, attrs, state: 'RTS', remote: { qpn: p.qpn, addr: p.addr, rkey: p.rkey, pages: p.pages },
        rq: [], sq: [], sqBusy: false, epsn: 1, executing: 0, responderFault: false, lastResp: undefined,
        requester: undefined as unknown as RcRequester,
      };
      qp.requester = new RcRequester(
        { transmit: (req) => transmit(this, req, req.payload?.length ?? 0), timer: (ns, then) => this.timer(ns, then), cancelTimer: (t) => this.cancelTimer(t) },
        attrs, m.qp_type, qpn, () => qp.remote.qpn, () => qpToError(this, qp),
      );
      this.qps.set(qpn, qp);
      this.reply(env, { type: 'ibv_create_qp_result', ret: 0, qpn, remote_qpn: p.qpn, remote_addr: p.addr, remote_rkey: p.rkey, remote_pages: p.pages });
    });
  }

  private destroyQp(env: Envelope<Message>, m: IbvDestroyQp): void {
    const qp = this.qps.get(m.qpn);
    if (!qp) return this.reply(env, { type: 'ibv_result', ret: ENOENT });
    qpToError(this, qp);
    this.qps.delete(qp.qpn);
    this.send(this.peer, { type: 'peer_qp_destroy', qpn: qp.remote.qpn });
    this.reply(env, { type: 'ibv_result', ret: 0 });
  }

  private postSend(env: Envelope<Message>, m: IbvPostSend): void {
    const qp = this.qps.get(m.qpn);
    const wr = m.wr;
    const fail = (ret: number) => this.reply(env, { type: 'ibv_wc', ret, status: 'IBV_WC_WR_FLUSH_ERR', opcode: wr?.opcode ?? 'IBV_WR_SEND', byte_len: 0 });
    const sgeOk = (s: { addr: number; length: number; lkey: number } | undefined) => s !== undefined && Number.isFinite(s.addr) && Number.isInteger(s.length) && s.length > 0 && Number.isInteger(s.lkey);
    if (!qp) return fail(ENOENT);
    if (!wr || !IBV_WR_OPCODES.includes(wr.opcode) || !sgeOk(wr.sge)) return fail(EINVAL);
    if (qp.type === 'UD' && wr.opcode !== 'IBV_WR_SEND') return fail(EINVAL);
    if (wr.opcode !== 'IBV_WR_SEND' && !(Number.isFinite(wr.remote_addr) && Number.isInteger(wr.rkey))) return fail(EINVAL);
    if (qp.state === 'ERR') return complete(this, env, 'IBV_WC_WR_FLUSH_ERR', wr.opcode, 0);
    if (qp.sq.length >= SQ_DEPTH_MAX) return fail(ENOMEM);
    qp.sq.push({ wr, env, refaults: 0 });
    this.sleep(this.costs.postNs, () => kickSendQueue(this, qp));
  }

  private postRecv(env: Envelope<Message>, m: IbvPostRecv): void {
    const qp = this.qps.get(m.qpn);
    const s = m.sge;
    const fail = (ret: number) => this.reply(env, { type: 'ibv_wc', ret, status: 'IBV_WC_WR_FLUSH_ERR', opcode: 'IBV_WC_RECV', byte_len: 0 });
    if (!qp) return fail(ENOENT);
    if (!s || !Number.isFinite(s.addr) || !Number.isInteger(s.length) || s.length <= 0 || !Number.isInteger(s.lkey)) return fail(EINVAL);
    if (qp.state === 'ERR') return complete(this, env, 'IBV_WC_WR_FLUSH_ERR', 'IBV_WC_RECV', 0);
    if (qp.rq.length >= RQ_DEPTH_MAX) return fail(ENOMEM);
    qp.rq.push({ sge: s, env });
  }
}
