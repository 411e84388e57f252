// The process's side of an RDMA NIC (@svmsim/rdma-odp): what setup registers and connects, one
// RDMA operation as workloads and scripts run it, prefetch, and the teardown at the end of a run.
//   setup       per process and rdma device its VMAs name: `qps` QPs connected to the device's peer
//               (ibv_create_qp); per VMA an MR of the device's kind (its policy): pinned-mr →
//               ibv_reg_mr; odp, unsafe-odp → ibv_reg_mr with IBV_ACCESS_ON_DEMAND; implicit-odp →
//               one implicit MR (addr 0, SIZE_MAX) per process, shared by its VMAs; dmabuf → a VRAM
//               BO of the VMA's size on the `exporter` gpu, exported (dma_buf_export) and registered
//               (ibv_reg_dmabuf_mr) at the VMA's address as its iova, so the traffic's addresses stay
//               the VMA's while its data lands in VRAM. An MR the NIC refuses (-ENOMEM over
//               RLIMIT_MEMLOCK, say) is traced (`mr_refused`) and the VMA goes on without one.
//   operations  `-in`: the peer does it to us (peer_post on the QP's other end): an RDMA WRITE of
//               fresh unique words, an RDMA READ, a SEND into a receive we post at the same time,
//               a fetch-and-add on one word. `-out`: our process posts it (ibv_post_send) towards
//               the peer's MR: RDMA WRITE, READ, SEND, fetch-and-add. The result is the work
//               completion: ret 0 and its status; `data` holds the words moved.
//   teardown    every MR deregistered (unpinned, notifiers removed) and every QP destroyed before
//               the final dump, so the dump sees no pin of the NIC's.
import { PAGE_SIZE } from '@svmsim/kernel-mm';
import type { DmaBufExport } from '@svmsim/gpu-driver/dma-buf-protocol';
import {
  DEFAULT_QP_ATTRS, IBV_ACCESS_LOCAL_WRITE, IBV_ACCESS_ON_DEMAND, IBV_ACCESS_REMOTE_ATOMIC, IBV_ACCESS_REMOTE_READ, IBV_ACCESS_REMOTE_WRITE,
  IBV_ADVISE_MR_ADVICE_PREFETCH, IBV_ADVISE_MR_ADVICE_PREFETCH_NO_FAULT, IBV_ADVISE_MR_ADVICE_PREFETCH_WRITE, IBV_ADVISE_MR_FLAG_FLUSH, SIZE_MAX,
  type IbvAdviseMr, type IbvCreateQp, type IbvPostRecv, type IbvPostSend, type IbvRegDmabufMr, type IbvRegMr, type IbvWrOpcode, type PeerPost,
} from '@svmsim/rdma-odp';
import { rdmaPeerId } from '../run/actors.js';
import type { DeviceSpec, RdmaAccessFlag, RdmaAdvice, RdmaOp, VmaSpec } from '../scenario/types.js';
import type { Got } from './expectations.js';
import { errnoName } from './mapping.js';
import { p2pmemMapping } from './nvme.js';
import type { Reply, Request } from './requests.js';
import type { SetupStep } from './setup.js';
import type { App, Proc, VmaRecord } from './state.js';

const ACCESS: Record<RdmaAccessFlag, number> = {
  'local-write': IBV_ACCESS_LOCAL_WRITE, 'remote-read': IBV_ACCESS_REMOTE_READ, 'remote-write': IBV_ACCESS_REMOTE_WRITE, 'remote-atomic': IBV_ACCESS_REMOTE_ATOMIC,
};
const accessOf = (v: Pick<VmaSpec, 'rdmaAccess'>): number =>
  (v.rdmaAccess ?? (Object.keys(ACCESS) as RdmaAccessFlag[])).reduce((a, f) => a | ACCESS[f], 0);

const ADVICE: Record<RdmaAdvice, number> = {
  prefetch: IBV_ADVISE_MR_ADVICE_PREFETCH, 'prefetch-write': IBV_ADVISE_MR_ADVICE_PREFETCH_WRITE, 'prefetch-no-fault': IBV_ADVISE_MR_ADVICE_PREFETCH_NO_FAULT,
};

/** QPs a process gets per device by default. */
const DEFAULT_QPS = 4;

/** Setup's RDMA steps for one process: its QPs to each device its VMAs name, then an MR per VMA. */
export function rdmaSetupSteps(app: App, p: { name: string; vmas: VmaSpec[]; memlock: number; capIpcLock: boolean }): SetupStep[] {
  const proc = () => app.named.get(p.name)!;
  const steps: SetupStep[] = [];
  const devices = [...new Set(p.vmas.flatMap((v) => (v.rdma !== undefined ? [v.rdma] : [])))];
  for (const dev of devices) {
    const d = app.device(dev)!;
    for (let i = 0; i < (d.qps ?? DEFAULT_QPS); i++) {
      steps.push({
        what: `ibv_create_qp ${i} of ${p.name} on ${dev}`,
        to: dev,
        msg: (): IbvCreateQp => ({ type: 'ibv_create_qp', pid: proc().pid, qp_type: d.qpType === 'ud' ? 'UD' : 'RC', ...qpAttrs(d) }),
        ok: (r) => {
          const qps = proc().qps.get(dev) ?? [];
          qps.push({ qpn: r.qpn as number, remoteQpn: r.remote_qpn as number, remoteAddr: r.remote_addr as number, remoteRkey: r.remote_rkey as number, remotePages: r.remote_pages as number });
          proc().qps.set(dev, qps);
        },
      });
    }
  }
  const implicit = new Set<string>(); // devices whose implicit MR is registered already
  for (const v of p.vmas) {
    const dev = v.rdma;
    if (dev === undefined) continue;
    const d = app.device(dev)!;
    const rec = () => proc().vmas.get(v.name)!;
    const refused = (ret: number) => app.trace('mr_refused', { process: p.name, vma: v.name, device: dev, policy: d.policy, ret, errno: errnoName(ret) });
    // The implicit MR covers every VMA of the process on the device.
    const covered = d.policy === 'implicit-odp' ? p.vmas.filter((w) => w.rdma === dev).map((w) => w.name) : [v.name];
    const record = (lkey: number) => {
      for (const name of covered) proc().vmas.get(name)!.mr = { device: dev, lkey };
    };
    if (d.policy === 'dmabuf') {
      steps.push(...dmabufSteps(p.name, proc, v, d, record, refused));
      continue;
    }
    if (d.policy === 'implicit-odp') {
      if (implicit.has(dev)) continue;
      implicit.add(dev);
    }
    steps.push({
      what: `ibv_reg_mr ${p.name}.${v.name} on ${dev}`,
      to: dev,
      msg: (): IbvRegMr => {
        const odp = d.policy !== 'pinned-mr';
        const whole = d.policy === 'implicit-odp';
        return {
          type: 'ibv_reg_mr', pid: proc().pid, addr: whole ? 0 : rec().addr, length: whole ? SIZE_MAX : rec().pages * PAGE_SIZE,
          access: accessOf(v) | (odp ? IBV_ACCESS_ON_DEMAND : 0), memlock_limit_pages: p.memlock, cap_ipc_lock: p.capIpcLock,
        };
      },
      ok: (r) => record(r.lkey as number),
      refused,
    });
  }
  return steps;
}

/** policy dmabuf: a VRAM BO of the VMA's size, exported, registered at the VMA's address; any refusal leaves the VMA without an MR. */
function dmabufSteps(procName: string, proc: () => Proc, v: VmaSpec, d: DeviceSpec, record: (lkey: number) => void, refused: (ret: number) => void): SetupStep[] {
  const exporter = d.exporter!;
  const name = `${v.name}.dmabuf`;
  let fd = -1;
  let failed = false;
  const refuse = (ret: number): void => {
    failed = true;
    refused(ret);
  };
  const skip = () => failed;
  return [
    {
      what: `VRAM BO for ${procName}.${v.name} on ${exporter}`,
      to: exporter,
      msg: () => {
        const addr = proc().nextGpuVa;
        proc().nextGpuVa += v.pages * PAGE_SIZE;
        return { type: 'gpu_bo_create', pid: proc().pid, addr, pages: v.pages, vram: true };
      },
      ok: (r) => void proc().buffers.set(name, { device: exporter, handle: r.ret }),
      refused: refuse,
    },
    { what: `dma_buf_export of ${name}`, to: exporter, msg: (): DmaBufExport => ({ type: 'dma_buf_export', handle: proc().buffers.get(name)!.handle }), ok: (r) => void (fd = r.fd as number), refused: refuse, skip },
    {
      what: `ibv_reg_dmabuf_mr ${procName}.${v.name} on ${d.id}`,
      to: d.id,
      msg: (): IbvRegDmabufMr => ({ type: 'ibv_reg_dmabuf_mr', pid: proc().pid, exporter, fd, offset: 0, length: v.pages * PAGE_SIZE, iova: proc().vmas.get(v.name)!.addr, access: accessOf(v) }),
      ok: (r) => record(r.lkey as number),
      refused: refuse,
      skip,
    },
  ];
}

const qpAttrs = (d: DeviceSpec) => ({
  rnr_retry: d.rnrRetry ?? DEFAULT_QP_ATTRS.rnr_retry, min_rnr_timer: d.minRnrTimer ?? DEFAULT_QP_ATTRS.min_rnr_timer,
  retry_cnt: d.retryCnt ?? DEFAULT_QP_ATTRS.retry_cnt, timeout: d.timeout ?? DEFAULT_QP_ATTRS.timeout,
});

/** How an operation's requests are made: through the phase's call (errors counted under its kind). */
export type Call = (to: string, msg: Request, then: (r: Reply) => void) => void;

const OPCODE: Record<'write' | 'read' | 'send' | 'atomic', IbvWrOpcode> = {
  write: 'IBV_WR_RDMA_WRITE', read: 'IBV_WR_RDMA_READ', send: 'IBV_WR_SEND', atomic: 'IBV_WR_ATOMIC_FETCH_AND_ADD',
};

/**
 * One RDMA operation `verb` on pages [page, page + pages) of the VMA's MR, over QP `qpIndex` (modulo
 * the process's QPs on the device). done(got): ret 0 and `status` once the work completion came, or
 * ret < 0 and an `error` if it could not be posted (no MR, no QP).
 */
export function rdmaOp(app: App, proc: Proc, device: string, v: VmaRecord, verb: RdmaOp, page: number, pages: number, qpIndex: number, call: Call, done: (got: Got) => void): void {
  const qps = proc.qps.get(device) ?? [];
  if (!v.mr || v.mr.device !== device) return done({ ret: -2, error: `VMA "${v.name}" has no MR on ${device} (refused at setup, or no rdma: ${device})` });
  if (qps.length === 0) return done({ ret: -2, error: `${proc.name} has no QP on ${device}` });
  const qp = qps[qpIndex % qps.length];
  const [what, dir] = verb.split('-') as ['write' | 'read' | 'send' | 'atomic', 'in' | 'out'];
  const n = what === 'atomic' ? 1 : pages;
  const addr = v.addr + page * PAGE_SIZE;
  const values = what === 'write' || what === 'send' ? Array.from({ length: n }, () => app.unique()) : undefined;
  const wc = (r: Reply, data?: unknown): Got => ({ ret: Math.min(0, r.ret), status: r.status, ...(data !== undefined && { data }), ...(typeof r.rnr_naks === 'number' && { rnrNaks: r.rnr_naks }) });
  if (dir === 'in') {
    const post: PeerPost = { type: 'peer_post', qpn: qp.remoteQpn, opcode: OPCODE[what], remote_addr: addr, rkey: v.mr.lkey, pages: n, ...(values && { values }), ...(what === 'atomic' && { compare_add: 1 }) };
    if (what !== 'send') return call(rdmaPeerId(device), post, (r) => done(wc(r, r.values ?? values ?? r.value)));
    // A SEND lands in a receive we post first (both at once: the receive reaches the NIC before the
    // SEND does). A SEND that fails leaves the receive posted: the operation ends without it.
    let recv: Reply | undefined, sent: Reply | undefined;
    const rv: IbvPostRecv = { type: 'ibv_post_recv', qpn: qp.qpn, sge: { addr, length: n * PAGE_SIZE, lkey: v.mr.lkey } };
    const recvId = app.io.call(device, rv, (r) => {
      recv = r;
      if (sent) done(wc(recv, recv.values));
    });
    return call(rdmaPeerId(device), post, (r) => {
      sent = r;
      if (r.status !== 'IBV_WC_SUCCESS') {
        if (!recv) app.io.forget(recvId);
        return done(wc(r));
      }
      if (recv) done(wc(recv, recv.values));
    });
  }
  const remotePage = page % Math.max(1, qp.remotePages - n);
  const ps: IbvPostSend = {
    type: 'ibv_post_send', qpn: qp.qpn,
    wr: { opcode: OPCODE[what], sge: { addr, length: what === 'atomic' ? 8 : n * PAGE_SIZE, lkey: v.mr.lkey }, remote_addr: qp.remoteAddr + remotePage * PAGE_SIZE, rkey: qp.remoteRkey, ...(what === 'atomic' && { compare_add: 1 }) },
  };
  call(device, ps, (r) => done(wc(r, r.value ?? undefined)));
}

/** ibv_advise_mr over pages [page, page + pages) of the VMA's MR. done(got): ret. */
export function rdmaAdvise(proc: Proc, device: string, v: VmaRecord, page: number, pages: number, advice: RdmaAdvice, flush: boolean, call: Call, done: (got: Got) => void): void {
  if (!v.mr || v.mr.device !== device) return done({ ret: -2, error: `VMA "${v.name}" has no MR on ${device}` });
  const m: IbvAdviseMr = { type: 'ibv_advise_mr', pid: proc.pid, advice: ADVICE[advice], flags: flush ? IBV_ADVISE_MR_FLAG_FLUSH : 0, sg_list: [{ addr: v.addr + page * PAGE_SIZE, length: pages * PAGE_SIZE, lkey: v.mr.lkey }] };
  call(device, m, (r) => done({ ret: Math.min(0, r.ret) }));
}

/**
 * ibv_reg_mr of a pinned MR (no IBV_ACCESS_ON_DEMAND) over pages [page, page + pages) of the
 * process's mapping of `provider`'s p2pmem (made on first use, nvme.ts p2pmemMapping): ib_umem_get
 * pins with FOLL_LONGTERM | FOLL_WRITE, without FOLL_PCI_P2PDMA, so mm's gup refuses the p2pdma
 * pages and the registration fails with -EREMOTEIO (research/errata.md §11). An MR that is made
 * (it cannot be, over p2pmem) is deregistered with the others at the end of the run.
 */
export function rdmaRegMrP2pmem(app: App, proc: Proc, device: string, provider: string, page: number, pages: number, call: Call, done: (got: Got) => void): void {
  p2pmemMapping(app, proc, provider, call, (ret, addr) => {
    if (ret < 0) return done({ ret });
    const spec = app.scenario.processes.find((p) => p.name === proc.name);
    const m: IbvRegMr = {
      type: 'ibv_reg_mr', pid: proc.pid, addr: addr + page * PAGE_SIZE, length: pages * PAGE_SIZE,
      access: IBV_ACCESS_LOCAL_WRITE | IBV_ACCESS_REMOTE_READ | IBV_ACCESS_REMOTE_WRITE, memlock_limit_pages: spec?.memlock ?? 2048, cap_ipc_lock: spec?.capIpcLock ?? false,
    };
    call(device, m, (r) => {
      if (r.ret >= 0) proc.mrs.push({ device, lkey: r.lkey as number });
      done({ ret: Math.min(0, r.ret) });
    });
  });
}

/** Every MR deregistered and every QP destroyed, one after another; then `done`. */
export function freeRdma(app: App, done: () => void): void {
  const seen = new Set<string>();
  const calls: [string, Request][] = [];
  for (const p of app.procs.values()) {
    for (const v of p.vmas.values()) {
      // A fork child shares its parent's records, and the implicit MR its process's VMAs: each MR once.
      if (!v.mr || seen.has(`${v.mr.device}/${v.mr.lkey}`)) continue;
      seen.add(`${v.mr.device}/${v.mr.lkey}`);
      calls.push([v.mr.device, { type: 'ibv_dereg_mr', lkey: v.mr.lkey }]);
    }
    for (const mr of p.mrs.splice(0)) calls.push([mr.device, { type: 'ibv_dereg_mr', lkey: mr.lkey }]);
    for (const [dev, qps] of p.qps) for (const q of qps) calls.push([dev, { type: 'ibv_destroy_qp', qpn: q.qpn }]);
    p.qps.clear();
  }
  const next = (i: number): void => {
    if (i === calls.length) return done();
    app.io.call(calls[i][0], calls[i][1], () => next(i + 1));
  };
  next(0);
}

/** The counters of every rdma device, read at a phase's end; then `done(counters)`. */
export function readRdmaCounters(app: App, done: (counters: Record<string, Record<string, number>> | undefined) => void): void {
  const devs = app.rdmas();
  if (devs.length === 0) return done(undefined);
  const out: Record<string, Record<string, number>> = {};
  let left = devs.length;
  for (const dev of devs) {
    app.io.call(dev, { type: 'rdma_query_counters' }, (r) => {
      out[dev] = (r.counters as Record<string, number>) ?? {};
      if (--left === 0) done(out);
    });
  }
}
