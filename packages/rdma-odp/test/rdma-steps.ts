// Steps and runs shared by the NIC's tests: a script actor plays the process (mmap, CPU stores,
// ibv_reg_mr, QPs, posts) and the remote application (peer_post) against mm, the NIC and its peer
// under LocalScheduler, and the data oracle (kernel-mm's checker) judges every run from its trace.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Sfc32, readTrace, type Actor, type Envelope, type Message, type TraceLine } from '@svmsim/runtime';
import { MAP_ANONYMOUS, MAP_FIXED, MAP_PRIVATE, PAGE_SIZE, PROT_READ, PROT_WRITE } from '@svmsim/kernel-mm';
import { runMm, type Step } from '@svmsim/kernel-mm/testing/mm-harness';
import {
  createPeer, createRdma, DEFAULT_QP_ATTRS, IBV_ACCESS_ALL_REMOTE, IBV_ACCESS_ON_DEMAND, SIZE_MAX,
  type IbvCreateQpResult, type IbvQpAttrs, type IbvRegMrResult, type IbvWrOpcode, type RdmaConfig,
} from '@svmsim/rdma-odp';

export const A = 16 * 1024 * 1024;
export const B = 64 * 1024 * 1024;
export const RW = PROT_READ | PROT_WRITE;
export const PID = 1;
export const NIC = 'rdma0';
export const PEER = 'rdma0.peer';
export const MEMLOCK_PAGES = 2048;

export const create: Step = { msg: { type: 'process_create' } as never };
export const mmapAt = (addr: number, pages: number, prot = RW): Step => ({
  msg: { type: 'mmap', pid: PID, addr, length: pages * PAGE_SIZE, prot, flags: MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED } as never,
});
export const store = (addr: number, value: number): Step => ({ msg: { type: 'cpu_access', pid: PID, addr, write: true, value } as never });
export const load = (addr: number): Step => ({ msg: { type: 'cpu_access', pid: PID, addr, write: false } as never });
export const nic = (msg: object): Step => ({ to: NIC, msg: msg as Message });
export const peer = (msg: object): Step => ({ to: PEER, msg: msg as Message });

export type MrKind = 'pinned' | 'odp' | 'implicit';
export const regMr = (kind: MrKind, addr: number, pages: number, access = IBV_ACCESS_ALL_REMOTE, memlock = MEMLOCK_PAGES, cap = false): Step =>
  nic({
    type: 'ibv_reg_mr', pid: PID, addr: kind === 'implicit' ? 0 : addr, length: kind === 'implicit' ? SIZE_MAX : pages * PAGE_SIZE,
    access: access | (kind === 'pinned' ? 0 : IBV_ACCESS_ON_DEMAND), memlock_limit_pages: memlock, cap_ipc_lock: cap,
  });
export const createQp = (attrs: Partial<IbvQpAttrs> = {}, qp_type: 'RC' | 'UD' = 'RC'): Step => nic({ type: 'ibv_create_qp', pid: PID, qp_type, ...DEFAULT_QP_ATTRS, ...attrs });

const last = <T>(results: Message[], type: string, n = 1): T => results.filter((r) => r.type === type).slice(-n)[0] as unknown as T;
/** The key of the n-th last MR registered (1: the last). */
export const keyOf = (results: Message[], n = 1): number => last<IbvRegMrResult>(results, 'ibv_reg_mr_result', n).lkey;
export const qpOf = (results: Message[], n = 1): IbvCreateQpResult => last<IbvCreateQpResult>(results, 'ibv_create_qp_result', n);

/** The peer RDMA-WRITEs `values` (one per page) at addr of the last MR, on the last QP. */
export const peerWrite = (addr: number, values: number[], mrBack = 1, qpBack = 1): Step => (r) =>
  peer({ type: 'peer_post', qpn: qpOf(r, qpBack).remote_qpn, opcode: 'IBV_WR_RDMA_WRITE', remote_addr: addr, rkey: keyOf(r, mrBack), pages: values.length, values });
export const peerOp = (opcode: IbvWrOpcode, addr: number, pages: number, extra: object = {}, mrBack = 1, qpBack = 1): Step => (r) =>
  peer({ type: 'peer_post', qpn: qpOf(r, qpBack).remote_qpn, opcode, remote_addr: addr, rkey: keyOf(r, mrBack), pages, ...extra });
/** Our process posts a send WQE on the last QP, towards the peer's MR at page `remotePage`. */
export const postSend = (opcode: IbvWrOpcode, addr: number, pages: number, remotePage = 0, extra: object = {}, mrBack = 1): Step => (r) => {
  const q = qpOf(r);
  const length = opcode.startsWith('IBV_WR_ATOMIC') ? 8 : pages * PAGE_SIZE;
  return nic({ type: 'ibv_post_send', qpn: q.qpn, wr: { opcode, sge: { addr, length, lkey: keyOf(r, mrBack) }, remote_addr: q.remote_addr + remotePage * PAGE_SIZE, rkey: q.remote_rkey, ...extra } });
};
export const postRecv = (addr: number, pages: number, mrBack = 1): Step => (r) =>
  nic({ type: 'ibv_post_recv', qpn: qpOf(r).qpn, sge: { addr, length: pages * PAGE_SIZE, lkey: keyOf(r, mrBack) } });
/** Steps sent at once (a group), built from the results so far. */
export const together = (...steps: Step[]): Step => (r) => ({
  group: steps.map((s) => (typeof s === 'function' ? s(r) : s) as { to?: string; msg: Message }),
});
export const deregLast: Step = (r) => nic({ type: 'ibv_dereg_mr', lkey: keyOf(r) });
export const advise = (advice: number, flags: number, addr: number, pages: number): Step => (r) =>
  nic({ type: 'ibv_advise_mr', pid: PID, advice, flags, sg_list: [{ addr, length: pages * PAGE_SIZE, lkey: keyOf(r) }] });

export async function withTrace<T>(fn: (dir: string) => Promise<T>): Promise<T> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'svmsim-rdma-'));
  try {
    return await fn(dir);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

/**
 * `msg` to `to` after `delayNs`, through the relay actor (its reply comes back as the step's):
 * places an mm operation inside a DMA already under way, which a group alone cannot do.
 */
export const later = (delayNs: number, to: string, msg: object): Step => ({ to: 'relay', msg: { type: 'relay', delayNs, to, msg } as never });

/** The relay: waits, forwards one request, answers with its reply. */
function relayActor(): Actor<Message> {
  const pending = new Map<number, Envelope<Message>>();
  const timers = new Map<number, { env: Envelope<Message>; to: string; msg: Message }>();
  return {
    receive(env, ctx) {
      const m = env.msg as Message & { delayNs: number; to: string; msg: Message };
      if (m.type === 'relay') return void timers.set(ctx.after(m.delayNs, { type: 'relay_due' }), { env, to: m.to, msg: m.msg });
      if (m.type === 'relay_due') {
        const t = timers.get(env.id)!;
        timers.delete(env.id);
        return void pending.set(ctx.request(t.to, t.msg), t.env);
      }
      const back = pending.get(env.replyTo);
      if (back) {
        pending.delete(env.replyTo);
        ctx.reply(back, env.msg);
      }
    },
    summary: () => ({}),
  };
}

export interface RunOpts {
  seed?: number;
  mm?: { frames?: number; swapPages?: number };
  rdma?: Partial<RdmaConfig>;
  extra?: { id: string; actor: never }[];
}

/** mm, ramdisk, the NIC and its peer, and the script; the checker's report of the trace and final dump. */
export async function run(steps: Step[], o: RunOpts = {}) {
  return withTrace(async (dir) => {
    const rdma = createRdma({ mrKind: 'odp', ...o.rdma }, NIC);
    const peerActor = createPeer({ nic: NIC, pages: 256 }, PEER);
    const out = await runMm(steps, {
      seed: o.seed ?? 1, traceDir: dir, dumpAtEnd: true, mm: { frames: 256, swapPages: 256, checkInvariants: true, ...o.mm },
      extra: [{ id: NIC, actor: rdma }, { id: PEER, actor: peerActor }, { id: 'relay', actor: relayActor() as never }, ...(o.extra ?? [])],
    });
    return { ...out, nic: out.r.summaries[NIC] as Record<string, any>, peer: out.r.summaries[PEER] as Record<string, any>, trace: readTrace(dir) };
  });
}

export const of = <T = Record<string, any>>(results: Message[], type: string): T[] => results.filter((r) => r.type === type) as unknown as T[];
export const events = (trace: TraceLine[], ev: string): TraceLine[] => trace.filter((l) => l.ev === ev);

/** A seeded PRNG for building scripts. */
export const prng = (seed: number): (() => number) => {
  const r = new Sfc32(seed, 0x5eed);
  return () => r.next();
};
