// Bad input at each device's boundary (each package's message-shapes.ts, runtime validate.ts):
// table-driven, one table per actor. A prober sets up some state (a process, a mapping, a BO or
// an MR), sends each malformed message, then a valid request that must still work. Every
// malformed message gets one precise error reply; the state is untouched — the run's final
// summaries (device and mm) equal those of the same run without the bad messages — and mm's
// invariant check runs after every message (checkInvariants).
import { describe, expect, it } from 'vitest';
import { LocalScheduler, type Actor, type Message } from '@svmsim/runtime';
import { createMm } from '@svmsim/kernel-mm/mm-actor';
import { createRamdisk } from '@svmsim/kernel-mm/ramdisk';
import { MAP_ANONYMOUS, MAP_PRIVATE, PAGE_SIZE } from '@svmsim/kernel-mm/protocol';
import { createGpu } from '@svmsim/gpu-driver/gpu-actor';
import { createRdma } from '@svmsim/rdma-odp/rdma-actor';
import { createPeer } from '@svmsim/rdma-odp/peer';
import { createNvme } from '@svmsim/nvme/nvme-actor';

type Env = { pid: number; addr: number; handle: number; lkey: number; qpn: number };
type Step = { to: string; make: (e: Env) => Message; keep?: (r: Message & Record<string, number>, e: Env) => void };
type Row = [name: string, to: string, make: (e: Env) => Message, want: RegExp | { type: string; ret: number }];

const m = (x: Record<string, unknown>) => x as unknown as Message;
const P = PAGE_SIZE;

/** mm and a process with 8 written pages; each device's own setup after. */
const BASE: Step[] = [
  { to: 'mm', make: () => m({ type: 'process_create', comm: 'probe' }), keep: (r, e) => void (e.pid = r.ret) },
  { to: 'mm', make: (e) => m({ type: 'mmap', pid: e.pid, addr: 0, length: 8 * P, prot: 3, flags: MAP_PRIVATE | MAP_ANONYMOUS }), keep: (r, e) => void (e.addr = r.ret) },
  ...[0, 1, 2, 3, 4, 5, 6, 7].map((i): Step => ({ to: 'mm', make: (e) => m({ type: 'cpu_access', pid: e.pid, addr: e.addr + i * P, write: true, value: 10 + i }) })),
];

const GPU_SETUP: Step[] = [{ to: 'gpu0', make: (e) => m({ type: 'gpu_bo_create', pid: e.pid, addr: e.addr, pages: 8 }), keep: (r, e) => void (e.handle = r.ret) }];
const GPU_CHECK: Step[] = [
  { to: 'gpu0', make: (e) => m({ type: 'gpu_submit', bos: [e.handle], pattern: { touch: 1, write: true }, durationNs: 1000, queue: 'gfx' }), keep: (r, e) => void (e.qpn = r.job) },
  { to: 'gpu0', make: (e) => m({ type: 'gpu_wait', job: e.qpn }) },
];
const GPU_ROWS: Row[] = [
  ['unknown type', 'gpu0', () => m({ type: 'gpu_frobnicate' }), /^gpu0: unknown message type "gpu_frobnicate"; gpu0 takes gpu_bo_create, gpu_submit, /],
  ['wrong field type', 'gpu0', (e) => m({ type: 'gpu_bo_create', pid: 'x', addr: e.addr, pages: 1 }), /^gpu0: gpu_bo_create\.pid: "x" is not an id/],
  ['a BO of no pages', 'gpu0', (e) => m({ type: 'gpu_bo_create', pid: e.pid, addr: e.addr, pages: 0 }), /^gpu0: gpu_bo_create: pages: a BO of 0 pages$/],
  ['a BO past 2^52', 'gpu0', (e) => m({ type: 'gpu_bo_create', pid: e.pid, addr: 2 ** 52 - P, pages: 2 }), /^gpu0: gpu_bo_create: addr \+ pages pages passes 2\^52/],
  ['an empty BO list', 'gpu0', () => m({ type: 'gpu_submit', bos: [], pattern: { touch: 1, write: true }, durationNs: 1, queue: 'gfx' }), /^gpu0: gpu_submit\.bos: 0 handles; expected 1 to 4096$/],
  ['touch out of range', 'gpu0', (e) => m({ type: 'gpu_submit', bos: [e.handle], pattern: { touch: 2, write: true }, durationNs: 1, queue: 'gfx' }), /^gpu0: gpu_submit\.pattern: touch: 2 is not a fraction in \(0, 1\]$/],
  ['unknown queue', 'gpu0', (e) => m({ type: 'gpu_submit', bos: [e.handle], pattern: { touch: 1, write: true }, durationNs: 1, queue: 'sdma' }), /^gpu0: gpu_submit\.queue: "sdma" is not one of gfx, compute$/],
  ['negative duration', 'gpu0', (e) => m({ type: 'gpu_submit', bos: [e.handle], pattern: { touch: 1, write: true }, durationNs: -5, queue: 'gfx' }), /^gpu0: gpu_submit\.durationNs: -5 is not a duration/],
  ['negative job', 'gpu0', () => m({ type: 'gpu_wait', job: -1 }), /^gpu0: gpu_wait\.job: -1 is not an id/],
  ['unknown notifier event', 'gpu0', (e) => m({ type: 'invalidate', sub: 1, pid: e.pid, start: e.addr, end: e.addr + P, event: 'MMU_NOTIFY_BOGUS', blockable: true, owner: null, cur_seq: 3 }), /^gpu0: invalidate\.event: "MMU_NOTIFY_BOGUS" is not an mmu_notifier_event/],
  ['an invalidation ending before it starts', 'gpu0', (e) => m({ type: 'invalidate', sub: 1, pid: e.pid, start: e.addr + P, end: e.addr, event: 'MMU_NOTIFY_CLEAR', blockable: true, owner: null, cur_seq: 3 }), /^gpu0: invalidate: end \d+ is below start \d+$/],
  // The driver's own answers, as amdgpu gives them.
  ['a job never submitted', 'gpu0', () => m({ type: 'gpu_wait', job: 999 }), { type: 'gpu_wait_result', ret: -22 }],
  ['an unknown BO handle (free)', 'gpu0', () => m({ type: 'gpu_bo_free', handle: 999 }), { type: 'gpu_bo_free_result', ret: -2 }],
];

const RDMA_SETUP: Step[] = [
  { to: 'rdma0', make: (e) => m({ type: 'ibv_reg_mr', pid: e.pid, addr: e.addr, length: 8 * P, access: 0xf, memlock_limit_pages: 2048, cap_ipc_lock: false }), keep: (r, e) => void (e.lkey = r.lkey) },
  { to: 'rdma0', make: (e) => m({ type: 'ibv_create_qp', pid: e.pid, qp_type: 'RC', rnr_retry: 7, min_rnr_timer: 1, retry_cnt: 7, timeout: 14 }), keep: (r, e) => void (e.qpn = r.qpn) },
];
const RDMA_CHECK: Step[] = [{ to: 'rdma0', make: () => m({ type: 'rdma_query_counters' }) }];
const RDMA_ROWS: Row[] = [
  ['unknown type', 'rdma0', () => m({ type: 'ibv_frobnicate' }), /^rdma0: unknown message type "ibv_frobnicate"; rdma0 takes ibv_reg_mr, /],
  ['an MR length past 2^53', 'rdma0', (e) => m({ type: 'ibv_reg_mr', pid: e.pid, addr: e.addr, length: 2 ** 53 + 2, access: 1, memlock_limit_pages: 1, cap_ipc_lock: false }), /^rdma0: ibv_reg_mr\.length: 9007199254740994 is not a length/],
  ['an MR that wraps', 'rdma0', (e) => m({ type: 'ibv_reg_mr', pid: e.pid, addr: 2 ** 52 - P, length: 2 * P, access: 1, memlock_limit_pages: 1, cap_ipc_lock: false }), /^rdma0: ibv_reg_mr: addr \+ length = \d+ passes 2\^52/],
  ['an unknown opcode', 'rdma0', (e) => m({ type: 'ibv_post_send', qpn: e.qpn, wr: { opcode: 'IBV_WR_BOGUS', sge: { addr: e.addr, length: P, lkey: e.lkey } } }), /^rdma0: ibv_post_send\.wr: "IBV_WR_BOGUS" is not one of IBV_WR_SEND/],
  ['an sge past 2^52', 'rdma0', (e) => m({ type: 'ibv_post_recv', qpn: e.qpn, sge: { addr: 2 ** 52 - 1, length: 2, lkey: e.lkey } }), /^rdma0: ibv_post_recv\.sge: addr \+ length passes 2\^52/],
  ['too many advise entries', 'rdma0', (e) => m({ type: 'ibv_advise_mr', pid: e.pid, advice: 0, flags: 0, sg_list: Array.from({ length: 33 }, () => ({ addr: e.addr, length: P, lkey: e.lkey })) }), /^rdma0: ibv_advise_mr\.sg_list: 33 entries: expected a list of at most 32/],
  ['an unknown advice is the driver\'s -EOPNOTSUPP', 'rdma0', (e) => m({ type: 'ibv_advise_mr', pid: e.pid, advice: 7, flags: 0, sg_list: [] }), { type: 'ibv_result', ret: -95 }],
  ['an IB attribute out of range', 'rdma0', (e) => m({ type: 'ibv_create_qp', pid: e.pid, qp_type: 'RC', rnr_retry: 9, min_rnr_timer: 1, retry_cnt: 7, timeout: 14 }), /^rdma0: ibv_create_qp\.rnr_retry: 9 is not an integer from 0 to 7$/],
  ['a wire request of too many pages', 'rdma0', (e) => m({ type: 'ib_req', dst_qpn: e.qpn, src_qpn: 1, qp_type: 'RC', psn: 0, opcode: 'RDMA_WRITE', raddr: e.addr, rkey: e.lkey, pages: 2 ** 20 }), /^rdma0: ib_req\.pages: 1048576 is not an integer from 0 to 524288$/],
  ['a peer post with a bad opcode', 'rdma0.peer', () => m({ type: 'peer_post', qpn: 1, opcode: 'X', remote_addr: 0, rkey: 1, pages: 1 }), /^rdma0\.peer: peer_post\.opcode: "X" is not one of IBV_WR_SEND/],
  ['unknown type at the peer', 'rdma0.peer', () => m({ type: 'ibv_reg_mr' }), /^rdma0\.peer: unknown message type "ibv_reg_mr"; rdma0\.peer takes peer_post, /],
  ['an rdma_rw_ctx of too many pages', 'rdma0', () => m({ type: 'rdma_rw_ctx', dir: 'read', pages: 257, values: new Float64Array(257) }), /^rdma0: rdma_rw_ctx\.pages: 257 is not an integer from 0 to 256$/],
  ['an rdma_rw_ctx to a p2pmem buffer without a provider', 'rdma0', () => m({ type: 'rdma_rw_ctx', dir: 'write', pages: 1, p2p: { page: 0 } }), /^rdma0: rdma_rw_ctx\.p2p: .* is not a p2pmem buffer \{provider, page\}$/],
  ['an rdma_rw_ctx READ without the host\'s words is the ULP API\'s -EINVAL', 'rdma0', () => m({ type: 'rdma_rw_ctx', dir: 'read', pages: 2 }), { type: 'rdma_rw_done', ret: -22 }],
];

const NVME_ROWS: Row[] = [
  ['unknown type', 'nvme', () => m({ type: 'nvme_format' }), /^nvme: unknown message type "nvme_format"; nvme takes bio_submit, nvme_dio, p2pmem_write, p2pmem_read, dma_buf_move_notify, p2pmem_alloc, p2pdma_page_free, nvmet_rdma_cmd, nvme_drain$/],
  ['a p2pmem allocation from a controller without a CMB', 'nvme', () => m({ type: 'p2pmem_alloc', nr_pages: 4 }), /^nvme: p2pmem_alloc: this controller publishes no CMB$/],
  ['an NVMe-oF command to a namespace no target exports', 'nvme', () => m({ type: 'nvmet_rdma_cmd', op: 'read', slba: 0, nlb: 1 }), /^nvme: nvmet_rdma_cmd: this controller's namespace is not exported by an NVMe-oF target$/],
  ['an NVMe-oF command with an unknown op', 'nvme', () => m({ type: 'nvmet_rdma_cmd', op: 'flush', slba: 0, nlb: 1 }), /^nvme: nvmet_rdma_cmd\.op: "flush" is not one of read, write$/],
  ['direct I/O to a controller without it', 'nvme', () => m({ type: 'nvme_dio', op: 'read', pid: 1, addr: 0x100000, pfns: new Float64Array(1), slba: 0 }), /^nvme: nvme_dio: this controller serves no direct I\/O$/],
  ['unknown op', 'nvme', () => m({ type: 'bio_submit', op: 'erase', dev: 'swap', block: 0 }), /^nvme: bio_submit\.op: "erase" is not one of read, write$/],
  ['a negative block', 'nvme', () => m({ type: 'bio_submit', op: 'read', dev: 'swap', block: -1 }), /^nvme: bio_submit\.block: -1 is not an id/],
  ['a device that is not a string', 'nvme', () => m({ type: 'bio_submit', op: 'read', dev: 5, block: 0 }), /^nvme: bio_submit\.dev: 5 is not a string/],
  ['a value that is not a number', 'nvme', () => m({ type: 'bio_submit', op: 'write', dev: 'swap', block: 0, value: '7' }), /^nvme: bio_submit\.value: "7" is not a finite number$/],
];
const NVME_CHECK: Step[] = [{ to: 'nvme', make: () => m({ type: 'bio_submit', op: 'write', dev: 'swap', block: 3, value: 42 }) }];

function prober(steps: Step[], replies: Message[]): Actor<Message> {
  const e: Env = { pid: 0, addr: 0, handle: 0, lkey: 0, qpn: 0 };
  let i = 0;
  const next = (ctx: Parameters<Actor<Message>['receive']>[1]) => (i === steps.length ? ctx.stopRun('probed') : void ctx.request(steps[i].to, steps[i].make(e)));
  return {
    start: (ctx) => next(ctx),
    receive(env, ctx) {
      if (env.replyTo === 0) return; // notices (a signal, actor_died)
      const r = env.msg as Message & Record<string, number>;
      steps[i].keep?.(r, e);
      replies.push(r);
      i++;
      next(ctx);
    },
    summary: () => ({}),
  };
}

async function probe(setup: Step[], rows: Row[], check: Step[]) {
  const replies: Message[] = [];
  const steps = [...BASE, ...setup, ...rows.map(([, to, make]): Step => ({ to, make })), ...check];
  const r = await new LocalScheduler().run({
    actors: [
      { id: 'mm', actor: createMm({ frames: 64, swapPages: 16, checkInvariants: true, blockdev: 'nvme' }, 'mm') },
      { id: 'nvme', actor: createNvme({ costs: { readCommandNs: 1000, writeCommandNs: 1000, transferNsPerKiB: 0, prpListPageNs: 0 }, channels: 16 }) },
      { id: 'ramdisk', actor: createRamdisk({}) },
      { id: 'gpu0', actor: createGpu({ policy: 'userptr' }, 'gpu0') },
      { id: 'rdma0', actor: createRdma({ mrKind: 'odp', peer: 'rdma0.peer' }, 'rdma0') },
      { id: 'rdma0.peer', actor: createPeer({ nic: 'rdma0' }, 'rdma0.peer') },
      { id: 'probe', actor: prober(steps, replies) },
    ],
    seed: 1,
    maxSteps: 1_000_000,
    durationNs: 10e9,
  });
  expect(r.reason).toBe('probe: probed');
  const base = BASE.length + setup.length;
  return { r, bad: replies.slice(base, base + rows.length), checked: replies.slice(base + rows.length) };
}

describe.each([
  ['gpu0 (gpu-driver)', GPU_SETUP, GPU_ROWS, GPU_CHECK],
  ['rdma0 and its peer (rdma-odp)', RDMA_SETUP, RDMA_ROWS, RDMA_CHECK],
  ['nvme', [] as Step[], NVME_ROWS, NVME_CHECK],
])('%s at its boundary', (_name, setup, rows, check) => {
  it('answers each malformed message with one precise error and leaves its state untouched', async () => {
    const withBad = await probe(setup, rows, check);
    const without = await probe(setup, [], check);
    rows.forEach(([name, , , want], i) => {
      const got = withBad.bad[i] as Message & { ret: number; error?: string };
      if (want instanceof RegExp) {
        // In the request's own reply type (bad_message for an unknown type or a message without one).
        expect(got, name).toMatchObject({ ret: -22 });
        expect(got.error, name).toMatch(want);
        expect(got.error, name).not.toContain('\n');
      } else expect(got, name).toMatchObject(want);
    });
    // The valid requests after them work as they would have, and every actor ends as it would have.
    expect(withBad.checked).toEqual(without.checked);
    expect((withBad.checked.at(-1) as unknown as { ret: number }).ret).toBeGreaterThanOrEqual(0);
    for (const id of ['mm', 'gpu0', 'rdma0', 'rdma0.peer', 'nvme']) expect(withBad.r.summaries[id], id).toEqual(without.r.summaries[id]);
  });
});
