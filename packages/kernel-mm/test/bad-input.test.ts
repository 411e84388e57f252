// Bad input at mm's boundary (message-shapes.ts, runtime validate.ts): each malformed or
// out-of-range message gets one precise error reply, and mm's state is as it was — the invariant
// check runs after every message (checkInvariants) and the dump after the bad messages equals the
// dump before them. Table-driven: one row per message.
import { describe, expect, it } from 'vitest';
import { LocalScheduler, readTrace, type Actor, type Ctx, type Envelope, type Message } from '@svmsim/runtime';
import { createMm } from '@svmsim/kernel-mm/mm-actor';
import { createRamdisk } from '@svmsim/kernel-mm/ramdisk';
import { EFAULT, EINVAL, ENOENT, MAP_ANONYMOUS, MAP_PRIVATE, PAGE_SIZE } from '@svmsim/kernel-mm/protocol';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

type Ctx0 = { pid: number; addr: number; sub: number; seq: number };
type Row = [name: string, make: (c: Ctx0) => Message, expected: { ret: number; error?: RegExp; type?: string }];

const A = (c: Ctx0, page = 0) => c.addr + page * PAGE_SIZE;
const hrf = (c: Ctx0, start: number, end: number, extra: Record<string, unknown> = {}) =>
  ({ type: 'hmm_range_fault', sub: c.sub, notifier_seq: c.seq, start, end, default_flags: 1, pfn_flags_mask: 0, dev_private_owner: null, ...extra }) as Message;

const ROWS: Row[] = [
  ['unknown type', () => ({ type: 'frobnicate' }), { ret: EINVAL, error: /^mm: unknown message type "frobnicate"; mm takes process_create, mmap, munmap/ }],
  ['wrong field type (pid a string)', (c) => ({ type: 'munmap', pid: String(c.pid), addr: A(c), length: PAGE_SIZE }) as Message, { ret: EINVAL, type: 'syscall_result', error: /^mm: munmap\.pid: "1" is not an id/ }],
  ['missing field', (c) => ({ type: 'cpu_access', pid: c.pid, addr: A(c) }) as Message, { ret: EINVAL, type: 'cpu_access_result', error: /^mm: cpu_access\.write: missing$/ }],
  ['boolean field given a string', (c) => ({ type: 'cpu_access', pid: c.pid, addr: A(c), write: 'yes' }) as Message, { ret: EINVAL, type: 'cpu_access_result', error: /^mm: cpu_access\.write: "yes" is not true or false$/ }],
  ['negative address', (c) => ({ type: 'cpu_access', pid: c.pid, addr: -4096, write: true }) as Message, { ret: EINVAL, type: 'cpu_access_result', error: /^mm: cpu_access\.addr: -4096 is not an address/ }],
  ['fractional address', (c) => hrf(c, A(c) + 0.5, A(c, 1)), { ret: EINVAL, type: 'hmm_range_fault_result', error: /^mm: hmm_range_fault\.start: \d+\.5 is not an address/ }],
  ['NaN value', (c) => ({ type: 'cpu_access', pid: c.pid, addr: A(c), write: true, value: NaN }) as Message, { ret: EINVAL, type: 'cpu_access_result', error: /^mm: cpu_access\.value: NaN is not a finite number$/ }],
  ['length past 2^53', (c) => ({ type: 'munmap', pid: c.pid, addr: A(c), length: 2 ** 53 + 2 }) as Message, { ret: EINVAL, type: 'syscall_result', error: /^mm: munmap\.length: 9007199254740994 is not a length/ }],
  ['addr + length wraps past 2^52', (c) => ({ type: 'mprotect', pid: c.pid, addr: 2 ** 52 - PAGE_SIZE, length: 2 * PAGE_SIZE, prot: 1 }) as Message, { ret: EINVAL, type: 'syscall_result', error: /^mm: mprotect: addr \+ length = \d+ passes 2\^52/ }],
  ['notifier span past 2^52', (c) => ({ type: 'mmu_interval_notifier_insert', pid: c.pid, start: 2 ** 52 - 1, length: 2 }) as Message, { ret: EINVAL, type: 'mmu_interval_notifier_insert_result', error: /^mm: mmu_interval_notifier_insert: start \+ length/ }],
  ['range end before start', (c) => hrf(c, A(c, 1), A(c)), { ret: EINVAL, type: 'hmm_range_fault_result', error: /^mm: hmm_range_fault: end \d+ is below start \d+$/ }],
  ['flags_in of the wrong length', (c) => hrf(c, A(c), A(c, 2), { flags_in: new Uint8Array(5) }), { ret: EINVAL, type: 'hmm_range_fault_result', error: /^mm: hmm_range_fault: flags_in has 5 entries for a range of 2 pages$/ }],
  ['gup count past 2^32', (c) => ({ type: 'get_user_pages', pid: c.pid, start: A(c), nr_pages: 2 ** 40, gup_flags: 0, pin: true }) as Message, { ret: EINVAL, type: 'get_user_pages_result', error: /^mm: get_user_pages\.nr_pages: 1099511627776 is not a count/ }],
  ['unpin of a frame with no pin', () => ({ type: 'unpin_user_pages', pfns: new Float64Array([5]), make_dirty: false, pin: true }) as Message, { ret: EINVAL, error: /^mm: unpin_user_pages: pfns\[0\]: frame 5 holds 0 pins, fewer than this releases$/ }],
  ['unpin of a frame outside the machine', () => ({ type: 'unpin_user_pages', pfns: [1e9], make_dirty: false, pin: true }) as Message, { ret: EINVAL, error: /pfns\[0\]: 1000000000 is not a frame of this machine/ }],
  ['pfns not a list', () => ({ type: 'unpin_user_pages', pfns: 'abc', make_dirty: false, pin: true }) as Message, { ret: EINVAL, error: /^mm: unpin_user_pages\.pfns: "abc" is not a list of numbers$/ }],
  ['a translation of the wrong shape', (c) => ({ type: 'dma_access', dev: 'x', pid: c.pid, addr: A(c), pfn: 3, write: true, value: 1, tr: { via: 'bogus' } }) as Message, { ret: EINVAL, type: 'dma_read_result', error: /^mm: dma_access\.tr: not a translation/ }],
  // mm's own answers, as the kernel functions give them: the boundary lets these through.
  ['unknown subscription id (read_begin)', () => ({ type: 'mmu_interval_read_begin', sub: 999 }) as Message, { ret: ENOENT, type: 'read_begin_result' }],
  ['unknown subscription id (remove)', () => ({ type: 'mmu_interval_notifier_remove', sub: 999 }) as Message, { ret: ENOENT, type: 'syscall_result' }],
  ['address outside any VMA (CPU access)', () => ({ type: 'cpu_access', pid: 1, addr: 0x7000_0000, write: false }) as Message, { ret: EFAULT, type: 'cpu_access_result' }],
  ['address outside any VMA (hmm_range_fault)', (c) => hrf(c, A(c, 5), A(c, 6)), { ret: EFAULT, type: 'hmm_range_fault_result' }],
  // mm/hmm.c (v6.15) does not check the range against the notifier's interval: outside every VMA it is -EFAULT.
  ['range outside its notifier (hmm_range_fault)', (c) => hrf(c, 0x7000_0000, 0x7000_1000), { ret: EFAULT, type: 'hmm_range_fault_result' }],
  ['unaligned munmap', (c) => ({ type: 'munmap', pid: c.pid, addr: A(c) + 1, length: PAGE_SIZE }) as Message, { ret: EINVAL, type: 'syscall_result' }],
  ['unaligned gup start', (c) => ({ type: 'get_user_pages', pid: c.pid, start: A(c) + 8, nr_pages: 1, gup_flags: 0, pin: true }) as Message, { ret: EINVAL, type: 'get_user_pages_result' }],
];

/** Sets up a process with a mapped, written VMA and a notifier over it, dumps, sends each row, dumps again. */
function prober(rows: Row[]) {
  const c: Ctx0 = { pid: 0, addr: 0, sub: 0, seq: 0 };
  const replies: Message[] = [];
  const dumps: unknown[] = [];
  const setup: ((ctx: Ctx<Message>) => Message)[] = [
    () => ({ type: 'process_create', comm: 'probe' }) as Message,
    () => ({ type: 'mmap', pid: c.pid, addr: 0, length: 4 * PAGE_SIZE, prot: 3, flags: MAP_PRIVATE | MAP_ANONYMOUS }) as Message,
    ...[0, 1, 2, 3].map((i) => () => ({ type: 'cpu_access', pid: c.pid, addr: A(c, i), write: true, value: 100 + i }) as Message),
    // The probe holds mmap_read_lock, as a driver must around hmm_range_fault and migrate_vma_setup.
    () => ({ type: 'mmap_read_lock', pid: c.pid }) as Message,
    // The notifier spans 8 pages, the VMA 4: the 4 above are inside the notifier and outside any VMA.
    () => ({ type: 'mmu_interval_notifier_insert', pid: c.pid, start: A(c), length: 8 * PAGE_SIZE }) as Message,
    () => ({ type: 'mmu_interval_read_begin', sub: c.sub }) as Message,
    () => ({ type: 'dump' }) as Message,
  ];
  let step = 0;
  const plan = [...setup, ...rows.map(([, make]) => () => make(c)), () => ({ type: 'dump' }) as Message];
  const actor: Actor<Message> = {
    start(ctx) {
      // A reply to a request mm never sent: the runtime drops it (late_reply) before mm sees it.
      ctx.reply({ from: 'mm', to: 'probe', id: 4242, replyTo: 0, t: 0, msg: { type: 'x' } } as Envelope<Message>, { type: 'invalidate_ack', sub: 1, ok: true } as Message);
      ctx.request('mm', plan[step++](ctx));
    },
    receive(env, ctx) {
      const m = env.msg as Message & { ret: number; sub?: number };
      if (m.type === 'invalidate') return ctx.reply(env as Envelope<Message>, { type: 'invalidate_ack', sub: (m as { sub: number }).sub, ok: true } as Message);
      if (step === 1) c.pid = m.ret;
      if (step === 2) c.addr = m.ret;
      if (step === setup.length - 2) c.sub = m.sub!;
      if (step === setup.length - 1) c.seq = (m as unknown as { seq: number }).seq;
      if (m.type === 'dump_result') dumps.push((m as unknown as { pages: unknown }).pages);
      else if (step > setup.length) replies.push(m);
      if (step === plan.length) return ctx.stopRun('probed');
      ctx.request('mm', plan[step++](ctx));
    },
    summary: () => ({}),
  };
  return { actor, replies, dumps };
}

describe('mm at its boundary: malformed and out-of-range messages', () => {
  it.each(ROWS.map((r, i) => [r[0], i] as const))('%s: a precise error reply, state untouched, invariants hold', async (_name, i) => {
    const p = prober([ROWS[i]]);
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'svmsim-badinput-'));
    const r = await new LocalScheduler().run({
      actors: [{ id: 'mm', actor: createMm({ frames: 64, swapPages: 16, checkInvariants: true }, 'mm') }, { id: 'ramdisk', actor: createRamdisk({}) }, { id: 'probe', actor: p.actor }],
      seed: 1, traceDir: dir, maxSteps: 100_000,
    });
    expect(r.reason).toBe('probe: probed');
    const [, , want] = ROWS[i];
    const got = p.replies[0] as Message & { ret: number; error?: string };
    expect(got.ret).toBe(want.ret);
    if (want.error) {
      // The request's own reply type, or bad_message for an unknown type or a message without a reply.
      expect(got.type).toBe(want.type ?? 'bad_message');
      expect(got.error).toMatch(want.error);
      expect(got.error).not.toContain('\n');
    } else expect(got.type).toBe(want.type);
    expect(p.dumps).toHaveLength(2);
    expect(p.dumps[1]).toEqual(p.dumps[0]);
    const lines = readTrace(dir);
    expect(lines.filter((l) => l.actor === 'mm' && l.ev === 'late_reply')).toHaveLength(1);
  });
});
