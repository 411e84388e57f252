// What the NIC (rdma-actor.ts) and its remote peer (peer.ts) accept from other actors, field by
// field: the process's verbs (rdma-protocol.ts), mm's invalidate, an exporter's move_notify, an
// in-kernel ULP's RDMA read/write (rdma-rw.ts), and the wire between the two ends (ib-wire.ts).
// Each actor checks a message against its table before acting (runtime validate.ts): a message that does not fit is answered bad_message (-EINVAL, one
// line naming the field) and changes nothing. A key, QP or MR that does not exist is the driver's
// own answer (-EINVAL, or a completion with an error status), as mlx5 gives it.
import { ADDR_LIMIT, spanCheck, type MessageShape } from '@svmsim/runtime';
import { INVALIDATE_SHAPE } from '@svmsim/gpu-driver/message-shapes';
import type { IbRequest, IbResponse, PeerQpCreate, PeerQpDestroy } from './ib-wire.js';
import { IBV_WR_OPCODES, type PeerPost, type RdmaRequest } from './rdma-protocol.js';
import { RDMA_RW_PAGES_MAX } from './rdma-rw.js';

/** The most scatter-gather entries one ibv_advise_mr takes (mlx5: max_sge of the device, 32 here). */
export const ADVISE_SGES_MAX = 32;
/** The most pages one wire request or peer post carries (an RC message of 2 GiB: ib_mtu × 2^31 packets aside). */
export const WIRE_PAGES_MAX = 1 << 19;

const sge = (v: unknown): string | undefined => {
  const s = v as { addr?: unknown; length?: unknown; lkey?: unknown } | null;
  if (s === null || typeof s !== 'object') return `${JSON.stringify(v)} is not a scatter-gather entry {addr, length, lkey}`;
  for (const [k, x] of [['addr', s.addr], ['length', s.length]] as const) {
    if (!Number.isSafeInteger(x) || (x as number) < 0 || (x as number) > ADDR_LIMIT) return `${k}: ${JSON.stringify(x)} is not an integer from 0 to 2^52`;
  }
  if ((s.addr as number) + (s.length as number) > ADDR_LIMIT) return 'addr + length passes 2^52, the end of the address space';
  if (!Number.isSafeInteger(s.lkey) || (s.lkey as number) < 0) return `lkey: ${JSON.stringify(s.lkey)} is not a key`;
  return undefined;
};
const opcode = (v: unknown) => ((IBV_WR_OPCODES as readonly unknown[]).includes(v) ? undefined : `${JSON.stringify(v)} is not one of ${IBV_WR_OPCODES.join(', ')}`);
const wr = (v: unknown): string | undefined => {
  const w = v as { opcode?: unknown; sge?: unknown; remote_addr?: unknown; rkey?: unknown } | null;
  if (w === null || typeof w !== 'object') return `${JSON.stringify(v)} is not a work request {opcode, sge, …}`;
  const why = opcode(w.opcode) ?? sge(w.sge);
  if (why) return why;
  if (w.remote_addr !== undefined && (!Number.isSafeInteger(w.remote_addr) || (w.remote_addr as number) < 0)) return `remote_addr: ${JSON.stringify(w.remote_addr)} is not an address`;
  return undefined;
};
const sgList = (v: unknown): string | undefined => {
  if (!Array.isArray(v) || v.length > ADVISE_SGES_MAX) return `${Array.isArray(v) ? `${v.length} entries` : JSON.stringify(v)}: expected a list of at most ${ADVISE_SGES_MAX} scatter-gather entries`;
  for (let i = 0; i < v.length; i++) {
    const why = sge(v[i]);
    if (why) return `element ${i}: ${why}`;
  }
  return undefined;
};
/** A length, or SIZE_MAX (2^64 as a double): the implicit ODP MR's (addr 0, length SIZE_MAX). */
const mrLength = (v: unknown) => (v === 2 ** 64 || (Number.isSafeInteger(v) && (v as number) >= 0 && (v as number) <= ADDR_LIMIT) ? undefined : `${JSON.stringify(v)} is not a length (an integer from 0 to 2^52, or SIZE_MAX for the implicit MR)`);
const mrSpan = (m: Record<string, unknown>) => (m.length === 2 ** 64 ? undefined : spanCheck('addr', 'length')(m));
const REG_RESULT = { type: 'ibv_reg_mr_result', lkey: 0, rkey: 0 };
const IBV_RESULT = { type: 'ibv_result' };
const qpType = (v: unknown) => (v === 'RC' || v === 'UD' ? undefined : `${JSON.stringify(v)} is not one of RC, UD`);
const small = (max: number) => (v: unknown) => (Number.isSafeInteger(v) && (v as number) >= 0 && (v as number) <= max ? undefined : `${JSON.stringify(v)} is not an integer from 0 to ${max}`);
const pages = small(WIRE_PAGES_MAX);
const qpAttrs = { rnr_retry: small(7), min_rnr_timer: small(31), retry_cnt: small(7), timeout: small(31) };
const wireOpcode = (v: unknown) => (['SEND', 'RDMA_WRITE', 'RDMA_READ', 'CMP_SWP', 'FETCH_ADD'].includes(v as string) ? undefined : `${JSON.stringify(v)} is not an IB opcode`);
const syndrome = (v: unknown) => (['ACK', 'RNR_NAK', 'NAK_REMOTE_ACCESS', 'NAK_INVALID_REQUEST', 'NAK_REMOTE_OP'].includes(v as string) ? undefined : `${JSON.stringify(v)} is not an IB syndrome`);

const ibReq: MessageShape = {
  fields: { dst_qpn: 'id', src_qpn: 'id', qp_type: qpType, psn: 'int', opcode: wireOpcode, raddr: 'addr', rkey: 'id', pages, payload: 'f64s?', compare_add: 'num?', swap: 'num?' },
};
const ibResp: MessageShape = { fields: { dst_qpn: 'id', psn: 'int', syndrome, rnr_timer: 'count?', payload: 'f64s?', orig: 'num?' } };

const rwDir = (v: unknown) => (v === 'read' || v === 'write' ? undefined : `${JSON.stringify(v)} is not one of read, write`);
const p2pBuffer = (v: unknown) =>
  v === undefined || (typeof v === 'object' && v !== null && typeof (v as { provider?: unknown }).provider === 'string' && Number.isInteger((v as { page?: unknown }).page) && (v as { page: number }).page >= 0)
    ? undefined
    : `${JSON.stringify(v)} is not a p2pmem buffer {provider, page}`;

export const RDMA_SHAPES = {
  ibv_reg_mr: { fields: { pid: 'id', addr: 'addr', length: mrLength, access: 'int', memlock_limit_pages: 'count', cap_ipc_lock: 'bool' }, check: mrSpan, reply: REG_RESULT },
  ibv_reg_dmabuf_mr: { fields: { pid: 'id', exporter: 'str', fd: 'id', offset: 'len', length: 'len', iova: 'addr', access: 'int' }, check: spanCheck('iova', 'length'), reply: REG_RESULT },
  ibv_dereg_mr: { fields: { lkey: 'id' }, reply: IBV_RESULT },
  ibv_create_qp: { fields: { pid: 'id', qp_type: qpType, ...qpAttrs }, reply: { type: 'ibv_create_qp_result', qpn: 0, remote_qpn: 0, remote_addr: 0, remote_rkey: 0, remote_pages: 0 } },
  ibv_destroy_qp: { fields: { qpn: 'id' }, reply: IBV_RESULT },
  ibv_post_send: { fields: { qpn: 'id', wr }, reply: { type: 'ibv_wc', status: 'IBV_WC_WR_FLUSH_ERR', opcode: 'IBV_WR_SEND', byte_len: 0 } },
  ibv_post_recv: { fields: { qpn: 'id', sge }, reply: { type: 'ibv_wc', status: 'IBV_WC_WR_FLUSH_ERR', opcode: 'IBV_WC_RECV', byte_len: 0 } },
  // An unknown advice is the driver's -EOPNOTSUPP (mlx5_ib_advise_mr), not the boundary's.
  ibv_advise_mr: { fields: { pid: 'id', advice: 'int', flags: 'int', sg_list: sgList }, reply: IBV_RESULT },
  rdma_query_counters: { fields: {}, reply: { type: 'rdma_counters', counters: {} } },
  invalidate: INVALIDATE_SHAPE,
  dma_buf_move_notify: { fields: { attachment: 'id' } },
  ib_req: ibReq,
  ib_resp: ibResp,
  rdma_rw_ctx: { fields: { dir: rwDir, pages: small(RDMA_RW_PAGES_MAX), values: 'f64s?', p2p: p2pBuffer }, reply: { type: 'rdma_rw_done' } },
} satisfies Record<RdmaRequest['type'] | 'invalidate' | 'dma_buf_move_notify' | IbRequest['type'] | IbResponse['type'] | 'rdma_rw_ctx', MessageShape>;

export const PEER_SHAPES = {
  peer_post: { fields: { qpn: 'id', opcode, remote_addr: 'addr', rkey: 'id', pages, values: 'f64s?', compare_add: 'num?', swap: 'num?' }, reply: { type: 'peer_wc', status: 'IBV_WC_WR_FLUSH_ERR', rnr_naks: 0, retries: 0 } },
  peer_qp_create: { fields: { remote_qpn: 'id', qp_type: qpType, ...qpAttrs }, reply: { type: 'peer_qp_create_result', qpn: 0, addr: 0, rkey: 0, pages: 0 } },
  peer_qp_destroy: { fields: { qpn: 'id' } },
  ib_req: ibReq,
  ib_resp: ibResp,
} satisfies Record<PeerPost['type'] | PeerQpCreate['type'] | PeerQpDestroy['type'] | IbRequest['type'] | IbResponse['type'], MessageShape>;
