// dmirror (lib/test_hmm.c) against the real mm: the selftests of tools/testing/selftests/mm/hmm-tests.c
// that the simulated mm supports, each over many seeds with the data oracle on the trace, the
// mirror's race with munmap / mprotect (safe: never caught; skip-read-retry: caught), and unit
// tests of the driver's callbacks with a hand-driven context.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { LocalScheduler, readTrace, type Actor, type Ctx, type Envelope, type Message, type TraceLine } from '@svmsim/runtime';
import {
  createMm, createRamdisk, EBADF, EFAULT, EINVAL, ENOENT, EPERM, HMM_PFN_VALID, HMM_PFN_WRITE, MAP_ANONYMOUS, MAP_FIXED, MAP_PRIVATE, MAP_SHARED,
  MIGRATE_PFN_MIGRATE, MIGRATE_PFN_VALID, MIGRATE_PFN_WRITE, PAGE_SIZE, PROT_NONE, PROT_READ, PROT_WRITE,
  type DumpResult, type HmmRangeFault, type Invalidate, type MigrateVmaFinalize,
} from '@svmsim/kernel-mm';
import {
  createDmirror, HMM_DMIRROR_PROT_DEV_PRIVATE_LOCAL, HMM_DMIRROR_PROT_ERROR, HMM_DMIRROR_PROT_NONE, HMM_DMIRROR_PROT_READ,
  HMM_DMIRROR_PROT_WRITE, HMM_DMIRROR_PROT_ZERO, type DmirrorConfig, type DmirrorResult, type HmmDmirrorCmdName,
} from '@svmsim/kernel-mm/dmirror';
import { checkTrace, formatViolation, type CheckReport, type FinalPage } from '@svmsim/kernel-mm/checker';

const RW = PROT_READ | PROT_WRITE;
const SEEDS = 200;
const DEV = 'dmirror0';
const DEV1 = 'dmirror1';

// =====================================================================================
// A script actor: sends its steps in order, each waiting for its reply unless `nowait`; a `join`
// waits for every outstanding reply. At the end it asks mm for a dump and stops the run.
// =====================================================================================

type Vars = Record<string, number>;
interface Step {
  to?: string;
  label?: string;
  msg?: (v: Vars) => Message;
  then?: (reply: any, v: Vars) => void;
  nowait?: boolean;
  join?: boolean;
  /** Send after a random delay in [0, delayMaxNs) of simulated time (the script's seeded rng); implies nowait. */
  delayMaxNs?: number;
}

class Script implements Actor<Message> {
  readonly vars: Vars = {};
  readonly out: Record<string, any> = {};
  readonly order: string[] = [];
  readonly signals: Message[] = [];
  dump: DumpResult | undefined;
  /** mm's dump with the device pages' content asked of their devices. */
  final: FinalPage[] = [];
  private i = 0;
  private readonly outstanding = new Map<number, Step>();
  private waitingFor = 0;
  private joining = false;
  private dumpId = 0;
  private ctx!: Ctx<Message>;

  private devmemAsked = 0;
  private readonly delayed = new Map<number, Step>();

  constructor(private readonly steps: Step[], private readonly devices: string[]) {}

  start(ctx: Ctx<Message>): void {
    this.ctx = ctx;
    this.advance();
  }

  receive(env: Envelope<Message>, ctx: Ctx<Message>): void {
    this.ctx = ctx;
    if (env.replyTo === this.dumpId && this.dumpId !== 0) {
      this.dump = env.msg as DumpResult;
      this.final = this.dump.pages.map((p) => ({ pid: p.pid, addr: p.addr, value: p.where === 'device' ? NaN : p.value }));
      const devPfns = this.dump.pages.filter((p) => p.where === 'device').map((p) => p.value);
      if (devPfns.length === 0) return ctx.stopRun('script done');
      // The device pages' content lives in their devices: ask each.
      for (const d of this.devices) ctx.request(d, { type: 'dmirror_devmem_read', dev_pfns: devPfns } as Message);
      this.devmemAsked = this.devices.length;
      return;
    }
    if (env.msg.type === 'dmirror_devmem_result') {
      const values = (env.msg as unknown as { values: (number | null)[] }).values;
      let k = 0;
      this.dump!.pages.forEach((p, i) => {
        if (p.where !== 'device') return;
        const v = values[k++];
        if (v !== null) this.final[i].value = v;
      });
      if (--this.devmemAsked === 0) ctx.stopRun('script done');
      return;
    }
    if (env.msg.type === 'script_send') {
      const s = this.delayed.get(env.id)!;
      this.delayed.delete(env.id);
      this.outstanding.set(ctx.request(s.to ?? 'mm', s.msg!(this.vars)), s);
      return;
    }
    if (env.replyTo === 0) {
      this.signals.push(env.msg); // mm's `signal` (an OOM kill)
      return;
    }
    const step = this.outstanding.get(env.replyTo);
    if (!step) throw new Error(`script: unexpected ${env.msg.type} from ${env.from}`);
    this.outstanding.delete(env.replyTo);
    if (step.label) {
      this.out[step.label] = env.msg;
      this.order.push(step.label);
    }
    step.then?.(env.msg, this.vars);
    if (env.replyTo === this.waitingFor || (this.joining && this.outstanding.size === 0 && this.delayed.size === 0)) this.advance();
  }

  summary(): Record<string, unknown> {
    return { steps: this.steps.length, done: this.i };
  }

  private advance(): void {
    this.waitingFor = 0;
    this.joining = false;
    while (this.i < this.steps.length) {
      const s = this.steps[this.i++];
      if (s.delayMaxNs !== undefined) {
        this.delayed.set(this.ctx.after(this.ctx.rng.int(s.delayMaxNs), { type: 'script_send' } as Message), s);
        continue;
      }
      if (s.join) {
        if (this.outstanding.size > 0 || this.delayed.size > 0) {
          this.joining = true;
          return;
        }
        continue;
      }
      const id = this.ctx.request(s.to ?? 'mm', s.msg!(this.vars));
      this.outstanding.set(id, s);
      if (!s.nowait) {
        this.waitingFor = id;
        return;
      }
    }
    if (this.outstanding.size > 0 || this.delayed.size > 0) {
      this.joining = true;
      return;
    }
    if (this.dumpId === 0) this.dumpId = this.ctx.request('mm', { type: 'dump' } as Message);
  }
}

// ---- step builders ----

const S = {
  create: (): Step => ({ msg: () => ({ type: 'process_create' }) as Message, then: (r, v) => (v.pid = r.ret) }),
  mmap: (pages: number, prot = RW, name = 'buf'): Step => ({
    label: `mmap:${name}`,
    msg: (v) => ({ type: 'mmap', pid: v.pid, addr: 0, length: pages * PAGE_SIZE, prot, flags: MAP_PRIVATE | MAP_ANONYMOUS }) as Message,
    then: (r, v) => (v[name] = r.ret),
  }),
  mmapFixed: (page: number, pages: number, prot = RW, name = 'buf'): Step => ({
    label: `mmapFixed:${page}`,
    msg: (v) => ({ type: 'mmap', pid: v.pid, addr: v[name] + page * PAGE_SIZE, length: pages * PAGE_SIZE, prot, flags: MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED }) as Message,
  }),
  store: (page: number, value: number, name = 'buf'): Step => ({
    label: `store:${page}`,
    msg: (v) => ({ type: 'cpu_access', pid: v.pid, addr: v[name] + page * PAGE_SIZE, write: true, value }) as Message,
  }),
  load: (page: number, label: string, name = 'buf'): Step => ({
    label,
    msg: (v) => ({ type: 'cpu_access', pid: v.pid, addr: v[name] + page * PAGE_SIZE, write: false }) as Message,
  }),
  munmap: (page: number, pages: number, o: { nowait?: boolean; label?: string; delayMaxNs?: number } = {}, name = 'buf'): Step => ({
    label: o.label ?? `munmap:${page}`,
    nowait: o.nowait,
    delayMaxNs: o.delayMaxNs,
    msg: (v) => ({ type: 'munmap', pid: v.pid, addr: v[name] + page * PAGE_SIZE, length: pages * PAGE_SIZE }) as Message,
  }),
  mprotect: (page: number, pages: number, prot: number, o: { nowait?: boolean; label?: string; delayMaxNs?: number } = {}, name = 'buf'): Step => ({
    label: o.label ?? `mprotect:${page}:${prot}`,
    nowait: o.nowait,
    delayMaxNs: o.delayMaxNs,
    msg: (v) => ({ type: 'mprotect', pid: v.pid, addr: v[name] + page * PAGE_SIZE, length: pages * PAGE_SIZE, prot }) as Message,
  }),
  open: (label = 'open', dev = DEV): Step => ({ to: dev, label, msg: (v) => ({ type: 'dmirror_open', pid: v.pid }) as Message, then: (r, v) => (v.fd = r.ret) }),
  close: (label = 'close'): Step => ({ to: DEV, label, msg: (v) => ({ type: 'dmirror_close', fd: v.fd }) as Message }),
  cmd: (cmd: HmmDmirrorCmdName, page: number, npages: number, label: string, o: { data?: number[]; nowait?: boolean; dev?: string } = {}, name = 'buf'): Step => ({
    to: o.dev ?? DEV,
    label,
    nowait: o.nowait,
    msg: (v) => ({ type: 'dmirror_cmd', cmd, pid: v.pid, addr: v[name] + page * PAGE_SIZE, npages, data: o.data }) as Message,
  }),
  join: (): Step => ({ join: true }),
};

const stores = (first: number, n: number, value: (i: number) => number): Step[] => Array.from({ length: n }, (_, i) => S.store(first + i, value(first + i)));

interface Run {
  script: Script;
  out: Record<string, any>;
  summaries: Record<string, Record<string, unknown>>;
  lines: TraceLine[];
  report: CheckReport;
}

async function run(steps: Step[], seed: number, dmirror: DmirrorConfig = {}, o: { second?: boolean; frames?: number } = {}): Promise<Run> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'svmsim-dmirror-'));
  try {
    const devices = o.second ? [DEV, DEV1] : [DEV];
    const script = new Script(steps, devices);
    const r = await new LocalScheduler().run({
      actors: [
        { id: 'mm', actor: createMm({ frames: o.frames ?? 256, swapPages: 64 }, 'mm') },
        { id: 'ramdisk', actor: createRamdisk({}) },
        ...devices.map((id) => ({ id, actor: createDmirror({ mm: 'mm', ...dmirror }, id) })),
        { id: 'app', actor: script },
      ],
      seed,
      traceDir: dir,
    });
    expect(r.endedBy, `seed ${seed}: ${r.reason}`).toBe('stopRun');
    expect(script.dump?.ret).toBe(0);
    const lines = readTrace(dir);
    expect(script.final.filter((p) => Number.isNaN(p.value)), 'device pages no device owns').toEqual([]);
    return { script, out: script.out, summaries: r.summaries, lines, report: checkTrace(lines, script.final) };
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

const noViolations = (r: Run, seed: number) =>
  expect(r.report.violations.map(formatViolation), `seed ${seed}`).toEqual([]);

const res = (r: Run, label: string): DmirrorResult => r.out[label] as DmirrorResult;
const val = (page: number) => 1000 + page;

// =====================================================================================
// hmm-tests.c, against the real mm
// =====================================================================================

describe('dmirror: hmm-tests.c cases against mm, every seed checked by the data oracle', () => {
  it('anon_read: the device reads what the CPU wrote (pte_none, zero page, written pages), faulting once', async () => {
    const N = 12;
    for (let seed = 1; seed <= SEEDS; seed++) {
      const r = await run([
        S.create(), S.mmap(N),
        ...stores(2, N - 2, val), // the first two pages: pte_none and the zero page
        S.mprotect(0, N, PROT_READ),
        S.load(1, 'load-zero'),
        S.open(),
        S.cmd('HMM_DMIRROR_READ', 0, N, 'read'),
        S.cmd('HMM_DMIRROR_READ', 0, N, 'read-again'),
      ], seed);
      expect(res(r, 'read')).toMatchObject({ ret: 0, cpages: N, faults: 1 });
      expect(res(r, 'read').data).toEqual([0, 0, ...Array.from({ length: N - 2 }, (_, i) => val(i + 2))]);
      // Every page is mirrored now: no fault.
      expect(res(r, 'read-again')).toMatchObject({ ret: 0, cpages: N, faults: 0 });
      noViolations(r, seed);
      if (seed === 1) {
        expect(r.report.stats.dmaReads).toBe(2 * N);
        expect(r.summaries[DEV]).toMatchObject({ dmaReads: 2 * N, faults: 1, commands: { HMM_DMIRROR_READ: 2 } });
      }
    }
  });

  it('anon_write: the device writes, the CPU loads what it wrote', async () => {
    const N = 10;
    const data = Array.from({ length: N }, (_, i) => -1 - i);
    for (let seed = 1; seed <= SEEDS; seed++) {
      const r = await run([
        S.create(), S.mmap(N), S.store(3, 5), S.open(),
        S.cmd('HMM_DMIRROR_WRITE', 0, N, 'write', { data }),
        ...data.map((_, i) => S.load(i, `load:${i}`)),
      ], seed);
      expect(res(r, 'write')).toMatchObject({ ret: 0, cpages: N, faults: 1 });
      expect(data.map((_, i) => r.out[`load:${i}`].value)).toEqual(data);
      noViolations(r, seed);
      expect(r.report.stats.dmaWrites).toBe(N);
    }
  });

  it('anon_read_prot: reading a PROT_NONE mapping or an unmapped range fails with -EFAULT', async () => {
    for (let seed = 1; seed <= SEEDS; seed++) {
      const r = await run([
        S.create(), S.mmap(4), ...stores(0, 4, val), S.mprotect(0, 4, PROT_NONE), S.mmap(4, RW, 'gone'), S.munmap(0, 4, {}, 'gone'),
        S.open(),
        S.cmd('HMM_DMIRROR_READ', 0, 4, 'read-prot-none'),
        S.cmd('HMM_DMIRROR_READ', 0, 4, 'read-unmapped', {}, 'gone'),
        S.cmd('HMM_DMIRROR_WRITE', 0, 4, 'write-unmapped', { data: [1, 2, 3, 4] }, 'gone'),
        S.mprotect(0, 4, PROT_READ), ...[0, 1, 2, 3].map((i) => S.load(i, `load:${i}`)),
      ], seed);
      expect(res(r, 'read-prot-none')).toMatchObject({ ret: EFAULT, cpages: 0, faults: 0 });
      expect(res(r, 'read-prot-none').data).toBeUndefined();
      expect(res(r, 'read-unmapped')).toMatchObject({ ret: EFAULT, cpages: 0 });
      expect(res(r, 'write-unmapped')).toMatchObject({ ret: EFAULT, cpages: 0 });
      expect([0, 1, 2, 3].map((i) => r.out[`load:${i}`].value)).toEqual([0, 1, 2, 3].map(val));
      noViolations(r, seed);
    }
  });

  it('anon_write_prot: a read mirrors the zero page; writing a PROT_READ mapping is -EPERM until mprotect allows it', async () => {
    const N = 6;
    const data = Array.from({ length: N }, (_, i) => 70 + i);
    for (let seed = 1; seed <= SEEDS; seed++) {
      const r = await run([
        S.create(), S.mmap(N, PROT_READ), S.open(),
        S.cmd('HMM_DMIRROR_READ', 0, 1, 'read-zero'),
        S.cmd('HMM_DMIRROR_WRITE', 0, N, 'write-ro', { data }),
        S.load(0, 'load-ro'),
        S.mprotect(0, N, RW),
        S.cmd('HMM_DMIRROR_WRITE', 0, N, 'write-rw', { data }),
        ...data.map((_, i) => S.load(i, `load:${i}`)),
      ], seed);
      expect(res(r, 'read-zero')).toMatchObject({ ret: 0, cpages: 1, faults: 1, data: [0] });
      expect(res(r, 'write-ro').ret).toBe(EPERM);
      expect(r.out['load-ro'].value).toBe(0);
      expect(res(r, 'write-rw')).toMatchObject({ ret: 0, cpages: N, faults: 1 });
      expect(data.map((_, i) => r.out[`load:${i}`].value)).toEqual(data);
      noViolations(r, seed);
    }
  });

  it('snapshot (hmm2.snapshot): ERROR for PROT_NONE and holes, ZERO|READ, READ, WRITE, NONE for pte_none; nothing faulted', async () => {
    for (let seed = 1; seed <= SEEDS; seed++) {
      const r = await run([
        S.create(), S.mmap(7, PROT_NONE),
        S.munmap(1, 1), // a hole after the first page
        S.mprotect(2, 1, PROT_READ), S.load(2, 'load-zero'), // page 2: the zero page, read-only
        S.mprotect(3, 1, RW), S.store(3, 3), S.mprotect(3, 1, PROT_READ), // page 3: read-only
        S.mprotect(4, 3, RW), S.store(4, 3), // page 4: writable; 5, 6: pte_none
        S.open(),
        S.cmd('HMM_DMIRROR_SNAPSHOT', 0, 7, 'snapshot'),
        S.cmd('HMM_DMIRROR_READ', 4, 1, 'read-after'),
      ], seed);
      expect(res(r, 'snapshot')).toMatchObject({ ret: 0, cpages: 7, faults: 0 });
      expect(res(r, 'snapshot').snapshot).toEqual([
        HMM_DMIRROR_PROT_ERROR, HMM_DMIRROR_PROT_ERROR, HMM_DMIRROR_PROT_ZERO | HMM_DMIRROR_PROT_READ, HMM_DMIRROR_PROT_READ,
        HMM_DMIRROR_PROT_WRITE, HMM_DMIRROR_PROT_NONE, HMM_DMIRROR_PROT_NONE,
      ]);
      // A snapshot does not program the mirror: the read faults.
      expect(res(r, 'read-after')).toMatchObject({ ret: 0, faults: 1, data: [3] });
      // The temporary notifier was inserted and removed.
      const dmirrorSubs = r.lines.filter((l) => l.ev === 'mmu_interval_notifier_insert' && l.dev === DEV).map((l) => l.sub);
      expect(dmirrorSubs).toHaveLength(2);
      expect(r.lines.filter((l) => l.ev === 'mmu_interval_notifier_remove').map((l) => l.sub)).toEqual([dmirrorSubs[1]]);
      noViolations(r, seed);
    }
  });

  it('munmap zaps the mirror: the invalidation is acked, a later READ faults again and sees the new mapping', async () => {
    const N = 8;
    for (let seed = 1; seed <= SEEDS; seed++) {
      const r = await run([
        S.create(), S.mmap(N), ...stores(0, N, val), S.open(),
        S.cmd('HMM_DMIRROR_READ', 0, N, 'read1'),
        S.cmd('HMM_DMIRROR_READ', 0, N, 'read2'),
        S.munmap(4, 4),
        S.cmd('HMM_DMIRROR_READ', 0, N, 'read-hole'),
        S.mmapFixed(4, 4), S.store(5, 55),
        S.cmd('HMM_DMIRROR_READ', 0, N, 'read3'),
      ], seed);
      expect(res(r, 'read1')).toMatchObject({ ret: 0, cpages: N, faults: 1 });
      expect(res(r, 'read2')).toMatchObject({ ret: 0, cpages: N, faults: 0 });
      // Pages 0-3 are still mirrored and copied; page 4 is gone.
      expect(res(r, 'read-hole')).toMatchObject({ ret: EFAULT, cpages: 4, faults: 0 });
      expect(res(r, 'read3')).toMatchObject({ ret: 0, cpages: N, faults: 1, data: [val(0), val(1), val(2), val(3), 0, 55, 0, 0] });
      // mm's trace: the UNMAP invalidation named dmirror's subscription, and dmirror acked it.
      const sub = r.lines.find((l) => l.ev === 'dmirror_open')!.sub as number;
      const unmap = r.lines.find((l) => l.ev === 'invalidate_start' && l.event === 'MMU_NOTIFY_UNMAP' && (l.subs as number[]).includes(sub))!;
      expect(unmap).toBeDefined();
      const ack = r.lines.find((l) => l.ev === 'invalidate_ack' && l.inv === unmap.inv);
      expect(ack).toMatchObject({ actor: 'mm', sub, dev: DEV, ok: true });
      const end = r.lines.findIndex((l) => l.ev === 'invalidate_end' && l.inv === unmap.inv);
      expect(r.lines.indexOf(ack!)).toBeLessThan(end);
      // dmirror_do_update also erases the page at `end` (xa_for_each_range's inclusive last index): none there.
      expect(r.summaries[DEV]).toMatchObject({ zappedEntries: 4, invalidationsByEvent: { MMU_NOTIFY_UNMAP: 1 } });
      noViolations(r, seed);
    }
  });

  it('exclusive_mprotect-like: mprotect(PROT_READ) zaps the writable mirror; the next WRITE is -EPERM', async () => {
    for (let seed = 1; seed <= 50; seed++) {
      const r = await run([
        S.create(), S.mmap(4), ...stores(0, 4, val), S.open(),
        S.cmd('HMM_DMIRROR_WRITE', 0, 4, 'write1', { data: [1, 2, 3, 4] }),
        S.mprotect(0, 4, PROT_READ),
        S.cmd('HMM_DMIRROR_WRITE', 0, 4, 'write2', { data: [5, 6, 7, 8] }),
        S.cmd('HMM_DMIRROR_READ', 0, 4, 'read'),
      ], seed);
      expect(res(r, 'write1')).toMatchObject({ ret: 0, faults: 1 });
      expect(res(r, 'write2').ret).toBe(EPERM);
      expect(res(r, 'read')).toMatchObject({ ret: 0, faults: 1, data: [1, 2, 3, 4] });
      expect(r.summaries[DEV]).toMatchObject({ invalidationsByEvent: { MMU_NOTIFY_PROTECTION_VMA: 1 } });
      noViolations(r, seed);
    }
  });

  it('migrate + migrate_fault: pages move to device memory, the device reads and writes them there, CPU faults bring them back', async () => {
    const N = 8;
    const LOCAL_W = HMM_DMIRROR_PROT_DEV_PRIVATE_LOCAL | HMM_DMIRROR_PROT_WRITE;
    for (let seed = 1; seed <= 50; seed++) {
      const r = await run([
        S.create(), S.mmap(N), ...stores(0, N, val), S.open(),
        S.cmd('HMM_DMIRROR_MIGRATE_TO_DEV', 0, N, 'migrate'),
        S.cmd('HMM_DMIRROR_SNAPSHOT', 0, N, 'snap-dev'),
        S.cmd('HMM_DMIRROR_READ', 0, N, 'read-dev'),
        // Fault half of the pages back (hmm-tests migrate_fault).
        ...[0, 1, 2, 3].map((i) => S.load(i, `load:${i}`)),
        S.cmd('HMM_DMIRROR_SNAPSHOT', 0, N, 'snap-half'),
        S.cmd('HMM_DMIRROR_MIGRATE_TO_DEV', 0, N, 'migrate-again'),
        S.cmd('HMM_DMIRROR_WRITE', 0, N, 'write-dev', { data: Array.from({ length: N }, (_, i) => 900 + i) }),
        S.load(6, 'load-written'),
      ], seed);
      expect(res(r, 'migrate')).toMatchObject({ ret: 0, cpages: N, data: Array.from({ length: N }, (_, i) => val(i)) });
      expect(res(r, 'snap-dev').snapshot).toEqual(Array(N).fill(LOCAL_W));
      // Device pages are read in device memory, with no fault and no DMA through mm.
      expect(res(r, 'read-dev')).toMatchObject({ ret: 0, cpages: N, faults: 0, data: Array.from({ length: N }, (_, i) => val(i)) });
      expect([0, 1, 2, 3].map((i) => r.out[`load:${i}`].value)).toEqual([0, 1, 2, 3].map(val));
      expect(res(r, 'snap-half').snapshot).toEqual([...Array(4).fill(HMM_DMIRROR_PROT_WRITE), ...Array(4).fill(LOCAL_W)]);
      expect(res(r, 'migrate-again')).toMatchObject({ ret: 0, cpages: N });
      expect(res(r, 'write-dev')).toMatchObject({ ret: 0, cpages: N, faults: 0 });
      expect(r.out['load-written'].value).toBe(906);
      expect(r.summaries[DEV]).toMatchObject({ dmaReads: 0, dmaWrites: 0, devWrites: N, migratedToDevice: 2 * N - 4, migrateToRam: 5 });
      noViolations(r, seed); // the dump's device pages resolved through dmirror_devmem_read
    }
  });

  it('migrate_release and MIGRATE_TO_SYS bring every page back to system memory', async () => {
    const N = 6;
    for (let seed = 1; seed <= 50; seed++) {
      const r = await run([
        S.create(), S.mmap(N), ...stores(0, N, val), S.mmap(N, RW, 'b2'), ...Array.from({ length: N }, (_, i) => ({ ...S.store(i, 60 + i, 'b2'), label: `s2:${i}` })),
        S.open(),
        S.cmd('HMM_DMIRROR_MIGRATE_TO_DEV', 0, N, 'migrate'),
        S.cmd('HMM_DMIRROR_RELEASE', 0, N, 'release'),
        S.cmd('HMM_DMIRROR_SNAPSHOT', 0, N, 'snap-released'),
        S.cmd('HMM_DMIRROR_MIGRATE_TO_DEV', 0, N, 'migrate2', {}, 'b2'),
        S.cmd('HMM_DMIRROR_MIGRATE_TO_SYS', 0, N, 'to-sys', {}, 'b2'),
        S.cmd('HMM_DMIRROR_SNAPSHOT', 0, N, 'snap-sys', {}, 'b2'),
        S.cmd('HMM_DMIRROR_MIGRATE_TO_SYS', 0, N, 'to-sys-again', {}, 'b2'),
        ...Array.from({ length: N }, (_, i) => S.load(i, `load:${i}`)),
        ...Array.from({ length: N }, (_, i) => S.load(i, `load2:${i}`, 'b2')),
      ], seed);
      expect(res(r, 'migrate')).toMatchObject({ ret: 0, cpages: N });
      expect(res(r, 'release').ret).toBe(0);
      expect(res(r, 'snap-released').snapshot).toEqual(Array(N).fill(HMM_DMIRROR_PROT_WRITE));
      expect(res(r, 'migrate2')).toMatchObject({ ret: 0, cpages: N });
      expect(res(r, 'to-sys')).toMatchObject({ ret: 0, cpages: N });
      expect(res(r, 'snap-sys').snapshot).toEqual(Array(N).fill(HMM_DMIRROR_PROT_WRITE));
      expect(res(r, 'to-sys-again')).toMatchObject({ ret: 0, cpages: 0 });
      expect(Array.from({ length: N }, (_, i) => r.out[`load:${i}`].value)).toEqual(Array.from({ length: N }, (_, i) => val(i)));
      expect(Array.from({ length: N }, (_, i) => r.out[`load2:${i}`].value)).toEqual(Array.from({ length: N }, (_, i) => 60 + i));
      expect(r.summaries[DEV]).toMatchObject({ devicePagesInUse: 0, calloc: 2 * N, cfree: 2 * N, migrateToRam: 0 });
      noViolations(r, seed);
    }
  });

  it('migrate_shared: shared anonymous memory does not move (-ENOENT)', async () => {
    const r = await run([
      S.create(),
      { label: 'mmap', msg: (v) => ({ type: 'mmap', pid: v.pid, addr: 0, length: 4 * PAGE_SIZE, prot: RW, flags: MAP_SHARED | MAP_ANONYMOUS }) as Message, then: (x, v) => (v.buf = x.ret) },
      S.open(),
      S.cmd('HMM_DMIRROR_MIGRATE_TO_DEV', 0, 4, 'migrate'),
    ], 1);
    expect(res(r, 'migrate').ret).toBe(ENOENT);
    noViolations(r, 1);
  });

  // mm/migrate_device.c (v6.15): a present shmem page has a mapping, so migrate_vma_collect_pmd
  // collects it (migrate_vma_check_page counts the page cache's reference) and args.cpages counts
  // it; migrate_vma_pages then clears MIGRATE_PFN_MIGRATE ("For now only support anonymous memory
  // migrating to device private"). A pte_none in the shmem VMA is not offered (not
  // vma_is_anonymous): hmm-tests' migrate_shared sees -ENOENT either way.
  it('migrate_shared with pages present: migrate_vma_setup collects them (cpages), migrate_vma_pages refuses them, the CPU still reads them', async () => {
    const r = await run([
      S.create(),
      { label: 'mmap', msg: (v) => ({ type: 'mmap', pid: v.pid, addr: 0, length: 4 * PAGE_SIZE, prot: RW, flags: MAP_SHARED | MAP_ANONYMOUS }) as Message, then: (x, v) => (v.buf = x.ret) },
      ...stores(0, 3, val),
      S.open(),
      S.cmd('HMM_DMIRROR_MIGRATE_TO_DEV', 0, 4, 'migrate'),
      S.load(1, 'load1'),
    ], 1);
    expect(res(r, 'migrate').ret).toBe(ENOENT);
    const setup = r.lines.find((l) => l.ev === 'migrate_vma_setup') as any;
    expect(setup.cpages).toBe(3);
    expect(r.lines.find((l) => l.ev === 'migrate_vma_finalize')).toMatchObject({ migrated: 0 });
    expect(r.out.load1).toMatchObject({ value: val(1), faults: 0 });
    noViolations(r, 1);
  });

  it('exclusive, check_exclusive: the device holds the pages atomically until the CPU touches them', async () => {
    const N = 5;
    for (let seed = 1; seed <= 50; seed++) {
      const r = await run([
        S.create(), S.mmap(N), ...stores(0, N, val), S.open(),
        S.cmd('HMM_DMIRROR_EXCLUSIVE', 0, N, 'exclusive'),
        S.cmd('HMM_DMIRROR_CHECK_EXCLUSIVE', 0, N, 'check-held'),
        ...Array.from({ length: N }, (_, i) => S.load(i, `load:${i}`)),
        ...Array.from({ length: N }, (_, i) => S.store(i, val(i) + 1)),
        S.cmd('HMM_DMIRROR_CHECK_EXCLUSIVE', 0, N, 'check-revoked'),
        S.cmd('HMM_DMIRROR_READ', 0, N, 'read'),
      ], seed);
      expect(res(r, 'exclusive')).toMatchObject({ ret: 0, cpages: N, data: Array.from({ length: N }, (_, i) => val(i)) });
      expect(res(r, 'check-held').ret).toBe(EPERM);
      expect(Array.from({ length: N }, (_, i) => r.out[`load:${i}`].value)).toEqual(Array.from({ length: N }, (_, i) => val(i)));
      expect(res(r, 'check-revoked').ret).toBe(0);
      expect(res(r, 'read')).toMatchObject({ ret: 0, faults: 1, data: Array.from({ length: N }, (_, i) => val(i) + 1) });
      noViolations(r, seed);
    }
  });

  it('exclusive_mprotect: after mprotect(PROT_READ) a device WRITE is -EPERM', async () => {
    for (let seed = 1; seed <= 50; seed++) {
      const r = await run([
        S.create(), S.mmap(4), ...stores(0, 4, val), S.open(),
        S.cmd('HMM_DMIRROR_EXCLUSIVE', 0, 4, 'exclusive'),
        S.mprotect(0, 4, PROT_READ),
        S.cmd('HMM_DMIRROR_WRITE', 0, 4, 'write', { data: [1, 2, 3, 4] }),
        ...[0, 1, 2, 3].map((i) => S.load(i, `load:${i}`)),
      ], seed);
      expect(res(r, 'exclusive')).toMatchObject({ ret: 0, cpages: 4 });
      expect(res(r, 'write').ret).toBe(EPERM);
      expect([0, 1, 2, 3].map((i) => r.out[`load:${i}`].value)).toEqual([0, 1, 2, 3].map(val));
      noViolations(r, seed);
    }
  });

  // lib/test_hmm.c v6.15 dmirror_migrate_to_device: vma_lookup(mm, addr), !vma or !(vm_flags & VM_READ) → -EINVAL.
  it('MIGRATE_TO_DEV refuses a range whose VMA is missing or not readable with -EINVAL, after migrating the VMAs before it', async () => {
    const r = await run([
      S.create(), S.mmap(3, PROT_NONE), S.mprotect(0, 2, RW), S.store(0, 7), S.store(1, 8), S.open('open0'),
      S.cmd('HMM_DMIRROR_MIGRATE_TO_DEV', 2, 1, 'prot-none'),
      S.cmd('HMM_DMIRROR_MIGRATE_TO_DEV', 0, 3, 'straddle'), // [0, 2) readable, page 2 not
      S.cmd('HMM_DMIRROR_MIGRATE_TO_DEV', 3, 1, 'no-vma'),
      S.cmd('HMM_DMIRROR_SNAPSHOT', 0, 3, 'snapshot'),
    ], 1);
    expect(res(r, 'prot-none').ret).toBe(EINVAL);
    expect(res(r, 'straddle').ret).toBe(EINVAL);
    expect(res(r, 'no-vma').ret).toBe(EINVAL);
    const LOCAL_W = HMM_DMIRROR_PROT_DEV_PRIVATE_LOCAL | HMM_DMIRROR_PROT_WRITE;
    expect(res(r, 'snapshot').snapshot.slice(0, 2)).toEqual([LOCAL_W, LOCAL_W]);
    noViolations(r, 1);
  });

  it('hmm2 snapshot and migrate_mixed: pages on this device are LOCAL, on the other device NONE; a page on the other device does not move', async () => {
    const LOCAL_W = HMM_DMIRROR_PROT_DEV_PRIVATE_LOCAL | HMM_DMIRROR_PROT_WRITE;
    for (let seed = 1; seed <= 50; seed++) {
      const r = await run([
        S.create(), S.mmap(7, PROT_NONE),
        S.munmap(1, 1),
        S.mprotect(2, 1, PROT_READ), S.load(2, 'load-zero'),
        S.mprotect(3, 1, RW), S.store(3, 3), S.mprotect(3, 1, PROT_READ),
        S.mprotect(4, 3, RW), S.store(4, 3), S.store(5, 5),
        S.open('open0'), S.open('open1', DEV1),
        S.cmd('HMM_DMIRROR_MIGRATE_TO_DEV', 0, 3, 'migrate-hole', { dev: DEV1 }), // the VMAs do not cover the range
        S.cmd('HMM_DMIRROR_MIGRATE_TO_DEV', 5, 1, 'migrate5', { dev: DEV }),
        S.cmd('HMM_DMIRROR_MIGRATE_TO_DEV', 6, 1, 'migrate6', { dev: DEV1 }),
        S.cmd('HMM_DMIRROR_SNAPSHOT', 0, 7, 'snapshot', { dev: DEV }),
        S.cmd('HMM_DMIRROR_MIGRATE_TO_DEV', 2, 3, 'migrate2-4', { dev: DEV1 }),
        S.cmd('HMM_DMIRROR_MIGRATE_TO_DEV', 6, 1, 'migrate6-to-0', { dev: DEV }),
        // Device 0 reads everything back: page 6 is faulted out of device 1 (double_map).
        S.cmd('HMM_DMIRROR_READ', 2, 5, 'read0', { dev: DEV }),
      ], seed, {}, { second: true });
      expect(res(r, 'migrate-hole').ret).toBe(EINVAL);
      expect(res(r, 'migrate5')).toMatchObject({ ret: 0, cpages: 1, data: [5] });
      expect(res(r, 'migrate6')).toMatchObject({ ret: 0, cpages: 1, data: [0] });
      expect(res(r, 'snapshot').snapshot).toEqual([
        HMM_DMIRROR_PROT_ERROR, HMM_DMIRROR_PROT_ERROR, HMM_DMIRROR_PROT_ZERO | HMM_DMIRROR_PROT_READ, HMM_DMIRROR_PROT_READ,
        HMM_DMIRROR_PROT_WRITE, LOCAL_W, HMM_DMIRROR_PROT_NONE,
      ]);
      expect(res(r, 'migrate2-4')).toMatchObject({ ret: 0, cpages: 3, data: [0, 3, 3] });
      expect(res(r, 'migrate6-to-0').ret).toBe(ENOENT);
      expect(res(r, 'read0')).toMatchObject({ ret: 0, cpages: 5, data: [0, 3, 3, 5, 0] });
      noViolations(r, seed);
    }
  });

  it('ioctl argument checks, files and close', async () => {
    const r = await run([
      S.create(),
      { to: DEV, label: 'no-file', msg: (v) => ({ type: 'dmirror_cmd', cmd: 'HMM_DMIRROR_READ', pid: v.pid, addr: 0x1000000, npages: 1 }) as Message },
      { to: DEV, label: 'open-bad-pid', msg: () => ({ type: 'dmirror_open', pid: 99 }) as Message },
      S.mmap(2), S.open(),
      { to: DEV, label: 'unaligned', msg: (v) => ({ type: 'dmirror_cmd', cmd: 'HMM_DMIRROR_READ', pid: v.pid, addr: v.buf + 8, npages: 1 }) as Message },
      S.cmd('HMM_DMIRROR_READ', 0, 0, 'zero-pages'),
      { to: DEV, label: 'unknown-cmd', msg: (v) => ({ type: 'dmirror_cmd', cmd: 'HMM_DMIRROR_FLAGS', pid: v.pid, addr: v.buf, npages: 1 }) as Message },
      S.cmd('HMM_DMIRROR_WRITE', 0, 2, 'short-data', { data: [1] }),
      S.cmd('HMM_DMIRROR_WRITE', 0, 2, 'write', { data: [1, 2] }),
      S.close(),
      S.cmd('HMM_DMIRROR_READ', 0, 2, 'after-close'),
      S.close('close-again'),
      S.open('reopen'),
      S.cmd('HMM_DMIRROR_READ', 0, 2, 'read-reopened'),
    ], 1);
    expect(res(r, 'no-file').ret).toBe(EBADF);
    expect(r.out['open-bad-pid']).toEqual({ type: 'dmirror_open_result', ret: EINVAL });
    expect(r.out.open.ret).toBeGreaterThanOrEqual(0);
    expect(res(r, 'unaligned').ret).toBe(EINVAL);
    expect(res(r, 'zero-pages').ret).toBe(EINVAL);
    expect(res(r, 'unknown-cmd').ret).toBe(EINVAL);
    expect(res(r, 'short-data').ret).toBe(EFAULT);
    expect(res(r, 'write')).toMatchObject({ ret: 0, cpages: 2 });
    expect(r.out.close).toEqual({ type: 'dmirror_close_result', ret: 0 });
    expect(res(r, 'after-close').ret).toBe(EBADF);
    expect(r.out['close-again'].ret).toBe(EBADF);
    expect(r.out.reopen.ret).not.toBe(r.out.open.ret);
    expect(res(r, 'read-reopened')).toMatchObject({ ret: 0, faults: 1, data: [1, 2] });
    expect(r.lines.filter((l) => l.ev === 'mmu_interval_notifier_remove')).toHaveLength(1);
    expect(r.summaries[DEV]).toMatchObject({ opens: 2, closes: 1, openFiles: 1 });
    noViolations(r, 1);
  });
});

// =====================================================================================
// The race read_retry closes: munmap / mprotect issued while a READ / WRITE runs
// =====================================================================================

type Race = { name: string; steps: Step[]; allowed: number[] };

/**
 * The racing syscall is sent with the command, after a random delay (hmm-tests anon_teardown:
 * hmm_nanosleep(hmm_random() % 32000) before the munmap): anywhere from before the device's
 * read_begin to after its last DMA (about 1.1 µs for 8 pages).
 */
const RACE_DELAY_NS = 2000;

function race(seed: number): Race {
  const N = 8;
  const data = Array.from({ length: N }, (_, i) => 500 + i);
  const setup = [S.create(), S.mmap(N), ...stores(0, N, val), S.open()];
  switch (seed % 4) {
    case 0:
      return { name: 'READ | munmap', allowed: [0, EFAULT], steps: [...setup, S.cmd('HMM_DMIRROR_READ', 0, N, 'cmd', { nowait: true }), S.munmap(N / 2, N / 2, { delayMaxNs: RACE_DELAY_NS, label: 'op' }), S.join()] };
    case 1:
      return { name: 'WRITE | mprotect(PROT_READ)', allowed: [0, EPERM], steps: [...setup, S.cmd('HMM_DMIRROR_WRITE', 0, N, 'cmd', { data, nowait: true }), S.mprotect(0, N, PROT_READ, { delayMaxNs: RACE_DELAY_NS, label: 'op' }), S.join()] };
    case 2:
      return { name: 'WRITE | munmap', allowed: [0, EFAULT], steps: [...setup, S.cmd('HMM_DMIRROR_WRITE', 0, N, 'cmd', { data, nowait: true }), S.munmap(0, N / 2, { delayMaxNs: RACE_DELAY_NS, label: 'op' }), S.join()] };
    default:
      return {
        name: 'READ | mprotect(PROT_NONE)', allowed: [0, EFAULT],
        steps: [...setup, S.cmd('HMM_DMIRROR_READ', 0, N, 'cmd', { nowait: true }), S.mprotect(0, N, PROT_NONE, { delayMaxNs: RACE_DELAY_NS, label: 'op' }), S.join()],
      };
  }
}

describe('dmirror racing munmap / mprotect', () => {
  it(`a safe dmirror is never caught (${SEEDS} seeds), and the race does happen`, async () => {
    let retried = 0;
    const rets: Record<string, Record<number, number>> = {};
    for (let seed = 1; seed <= SEEDS; seed++) {
      const rc = race(seed);
      const r = await run(rc.steps, seed);
      noViolations(r, seed);
      const ret = res(r, 'cmd').ret;
      expect(rc.allowed, `${rc.name} seed ${seed}`).toContain(ret);
      expect(r.out.op.ret).toBe(0);
      (rets[rc.name] ??= {})[ret] = (rets[rc.name][ret] ?? 0) + 1;
      const s = r.summaries[DEV] as { readRetries: number };
      if (s.readRetries > 0) retried++;
    }
    // read_retry caught an invalidation between hmm_range_fault and the programming of the table.
    expect(retried).toBeGreaterThan(0);
    // Each race ends both ways over the seeds.
    for (const name of Object.keys(rets)) expect(Object.keys(rets[name]).length, `${name}: ${JSON.stringify(rets[name])}`).toBe(2);
  });

  it(`unsafe: 'skip-read-retry' is caught by the data oracle`, async () => {
    let caught = 0;
    const kinds = new Set<string>();
    for (let seed = 1; seed <= SEEDS; seed++) {
      const r = await run(race(seed).steps, seed, { unsafe: 'skip-read-retry' });
      if (!r.report.ok) {
        caught++;
        for (const v of r.report.violations) kinds.add(v.kind);
      }
    }
    expect(caught).toBeGreaterThan(0);
    // The stale DMA itself; a stale write that reached memory also shows in the final dump.
    expect(kinds.has('stale_translation')).toBe(true);
    expect([...kinds].filter((k) => k !== 'stale_translation' && k !== 'lost_write')).toEqual([]);
  });
});

// =====================================================================================
// The driver's callbacks, driven by hand (no mm)
// =====================================================================================

interface Out { to: string; id: number; replyTo: number; msg: any }

/** A context the test drives: it records what the driver sends and fires timers on demand. */
class HandCtx implements Ctx<Message> {
  readonly self = DEV;
  readonly tracing = true;
  readonly rng = { next: () => 0, int: () => 0 };
  readonly out: Out[] = [];
  readonly timers = new Map<number, Message>();
  readonly traces: Record<string, unknown>[] = [];
  private nextId = 1;
  private envId = 1000;
  t = 0;
  constructor(readonly actor: Actor<Message>) {
    actor.start?.(this);
  }
  send(to: string, msg: Message): void { this.out.push({ to, id: this.nextId++, replyTo: 0, msg }); }
  request(to: string, msg: Message): number {
    const id = this.nextId++;
    // mm's mmap_lock is granted at once (answered once the driver's turn is over): the test plays
    // mm's lock and counts what the driver holds.
    if (msg.type === 'mmap_read_lock' || msg.type === 'mmap_read_unlock') this.lockRequests.push({ to, id, replyTo: 0, msg });
    else this.out.push({ to, id, replyTo: 0, msg });
    return id;
  }
  /** mmap read locks the driver holds now. */
  readLocksHeld = 0;
  private readonly lockRequests: Out[] = [];
  reply(env: Envelope<Message>, msg: Message): void { this.out.push({ to: env.from, id: this.nextId++, replyTo: env.id, msg }); }
  after(_ns: number, msg: Message): number { const id = this.nextId++; this.timers.set(id, msg); return id; }
  cancel(id: number): boolean { return this.timers.delete(id); }
  now(): number { return this.t; }
  trace(ev: string, fields?: Record<string, unknown>): void { this.traces.push({ ev, ...fields }); }
  stopRun(): void {}
  /** Deliver a message from `from`; returns its envelope id. */
  deliver(from: string, msg: Message, replyTo = 0): number {
    const id = this.envId++;
    this.actor.receive({ from, to: DEV, id, replyTo, t: this.t, msg }, this);
    for (let r = this.lockRequests.shift(); r !== undefined; r = this.lockRequests.shift()) {
      this.readLocksHeld += r.msg.type === 'mmap_read_lock' ? 1 : -1;
      this.actor.receive({ from: 'mm', to: DEV, id: this.envId++, replyTo: r.id, t: this.t, msg: { type: 'syscall_result', ret: 0 } as Message }, this);
    }
    return id;
  }
  /** Take the first message sent of this type (throws if none). */
  take(type: string): Out {
    const i = this.out.findIndex((o) => o.msg.type === type);
    if (i < 0) throw new Error(`nothing of type ${type} sent; sent: ${this.out.map((o) => o.msg.type).join(', ')}`);
    return this.out.splice(i, 1)[0];
  }
  has(type: string): boolean { return this.out.some((o) => o.msg.type === type); }
  fireTimers(): void {
    while (this.timers.size > 0) {
      const [id, msg] = this.timers.entries().next().value as [number, Message];
      this.timers.delete(id);
      this.actor.receive({ from: DEV, to: DEV, id, replyTo: 0, t: this.t, msg }, this);
    }
  }
}

const BUF = 0x1000000;

/** Open a file for pid 1 (sub 7) and mirror `n` pages at BUF through a READ; leaves the READ's DMA reads pending. */
function openAndFault(h: HandCtx, n: number, write = false): number {
  h.deliver('app', { type: 'dmirror_open', pid: 1 } as Message);
  h.deliver('mm', { type: 'mmu_interval_notifier_insert_result', ret: 0, sub: 7 } as Message, h.take('mmu_interval_notifier_insert').id);
  expect(h.take('dmirror_open_result').msg.ret).toBe(3);
  const cmdId = h.deliver('app', { type: 'dmirror_cmd', cmd: write ? 'HMM_DMIRROR_WRITE' : 'HMM_DMIRROR_READ', pid: 1, addr: BUF, npages: n, data: write ? Array(n).fill(9) : undefined } as Message);
  h.deliver('mm', { type: 'read_begin_result', ret: 0, seq: 4 } as Message, h.take('mmu_interval_read_begin').id);
  const hrf = h.take('hmm_range_fault');
  expect(hrf.msg as HmmRangeFault).toMatchObject({ sub: 7, notifier_seq: 4, start: BUF, end: BUF + n * PAGE_SIZE, default_flags: write ? 3 : 1, pfn_flags_mask: 0, dev_private_owner: DEV });
  expect(h.readLocksHeld).toBe(1); // dmirror_range_fault: mmap_read_lock around hmm_range_fault
  const flags = new Uint8Array(n).fill(HMM_PFN_VALID | HMM_PFN_WRITE);
  const pfns = Float64Array.from({ length: n }, (_, i) => 100 + i);
  h.deliver('mm', { type: 'hmm_range_fault_result', ret: 0, pfns, flags } as Message, hrf.id);
  expect(h.readLocksHeld).toBe(0); // and not after it: the mutex and read_retry come unlocked
  expect(h.has('dma_access')).toBe(false); // the scheduling gap before mutex_lock
  h.fireTimers();
  return cmdId;
}

const inval = (o: Partial<Invalidate>): Message =>
  ({ type: 'invalidate', sub: 7, pid: 1, start: BUF, end: BUF + PAGE_SIZE, event: 'MMU_NOTIFY_CLEAR', blockable: true, owner: null, cur_seq: 5, ...o }) as Message;

describe('dmirror callbacks, driven by hand', () => {
  it('holds the mutex across its DMA: a blockable invalidate waits for it, a non-blockable one is refused', () => {
    const h = new HandCtx(createDmirror({}, DEV));
    openAndFault(h, 2);
    // The first DMA read is out, under the mutex, with the seq read_retry validated.
    const dma1 = h.take('dma_access');
    expect(dma1.msg).toMatchObject({ dev: DEV, pid: 1, addr: BUF, pfn: 100, write: false, tr: { via: 'mirror', sub: 7, seq: 4 } });
    h.deliver('mm', inval({ blockable: false, cur_seq: 5 }));
    expect(h.take('invalidate_ack').msg).toEqual({ type: 'invalidate_ack', sub: 7, ok: false });
    const blockId = h.deliver('mm', inval({ cur_seq: 5 }));
    expect(h.has('invalidate_ack')).toBe(false);
    h.deliver('mm', { type: 'dma_read_result', ret: 0, value: 11 } as Message, dma1.id);
    h.fireTimers(); // dmaPageNs
    const dma2 = h.take('dma_access');
    expect(dma2.msg).toMatchObject({ addr: BUF + PAGE_SIZE, pfn: 101, tr: { seq: 4 } });
    expect(h.has('invalidate_ack')).toBe(false);
    h.deliver('mm', { type: 'dma_read_result', ret: 0, value: 12 } as Message, dma2.id);
    h.fireTimers();
    // The copy is done: the result, then the waiting invalidation runs.
    expect(h.take('dmirror_result').msg).toMatchObject({ ret: 0, cpages: 2, faults: 1, data: [11, 12] });
    const ack = h.take('invalidate_ack');
    expect(ack).toMatchObject({ replyTo: blockId, msg: { sub: 7, ok: true } });
    // The zap covered [BUF, BUF + PAGE) and, like xa_for_each_range, the page at its end.
    expect(h.actor.summary()).toMatchObject({ mirrorEntries: 0, zappedEntries: 2, invalidationsRefused: 1 });
  });

  it('retries when an invalidation was acked between hmm_range_fault and programming the table (read_retry)', () => {
    const h = new HandCtx(createDmirror({ costs: { dmaPageNs: 0 } }, DEV));
    h.deliver('app', { type: 'dmirror_open', pid: 1 } as Message);
    h.deliver('mm', { type: 'mmu_interval_notifier_insert_result', ret: 0, sub: 7 } as Message, h.take('mmu_interval_notifier_insert').id);
    h.take('dmirror_open_result');
    h.deliver('app', { type: 'dmirror_cmd', cmd: 'HMM_DMIRROR_READ', pid: 1, addr: BUF, npages: 1 } as Message);
    h.deliver('mm', { type: 'read_begin_result', ret: 0, seq: 2 } as Message, h.take('mmu_interval_read_begin').id);
    const hrf = h.take('hmm_range_fault');
    h.deliver('mm', inval({ cur_seq: 3 }));
    expect(h.take('invalidate_ack').msg.ok).toBe(true);
    h.deliver('mm', { type: 'hmm_range_fault_result', ret: 0, pfns: new Float64Array([100]), flags: new Uint8Array([HMM_PFN_VALID]) } as Message, hrf.id);
    h.fireTimers();
    // Stale: goto again.
    expect(h.has('dma_access')).toBe(false);
    // The epoch over, read_begin returns the subscription's seq: the cur_seq of its last invalidation.
    h.deliver('mm', { type: 'read_begin_result', ret: 0, seq: 3 } as Message, h.take('mmu_interval_read_begin').id);
    h.deliver('mm', { type: 'hmm_range_fault_result', ret: 0, pfns: new Float64Array([200]), flags: new Uint8Array([HMM_PFN_VALID]) } as Message, h.take('hmm_range_fault').id);
    // This time the invalidation comes after mmap_read_unlock, before mutex_lock (test_hmm.c's
    // window): it takes the free mutex, sets the seq and zaps; read_retry then says stale.
    expect(h.has('dma_access')).toBe(false);
    h.deliver('mm', inval({ cur_seq: 5 }));
    expect(h.take('invalidate_ack').msg.ok).toBe(true);
    h.fireTimers();
    expect(h.has('dma_access')).toBe(false);
    h.deliver('mm', { type: 'read_begin_result', ret: 0, seq: 5 } as Message, h.take('mmu_interval_read_begin').id);
    h.deliver('mm', { type: 'hmm_range_fault_result', ret: 0, pfns: new Float64Array([300]), flags: new Uint8Array([HMM_PFN_VALID]) } as Message, h.take('hmm_range_fault').id);
    h.fireTimers();
    expect(h.take('dma_access').msg).toMatchObject({ pfn: 300, tr: { sub: 7, seq: 5 } });
    expect(h.actor.summary()).toMatchObject({ readRetries: 2 });
  });

  it('skip-read-retry programs the stale pfns', () => {
    const h = new HandCtx(createDmirror({ costs: { dmaPageNs: 0 }, unsafe: 'skip-read-retry' }, DEV));
    h.deliver('app', { type: 'dmirror_open', pid: 1 } as Message);
    h.deliver('mm', { type: 'mmu_interval_notifier_insert_result', ret: 0, sub: 7 } as Message, h.take('mmu_interval_notifier_insert').id);
    h.deliver('app', { type: 'dmirror_cmd', cmd: 'HMM_DMIRROR_READ', pid: 1, addr: BUF, npages: 1 } as Message);
    h.deliver('mm', { type: 'read_begin_result', ret: 0, seq: 2 } as Message, h.take('mmu_interval_read_begin').id);
    const hrf = h.take('hmm_range_fault');
    h.deliver('mm', inval({ cur_seq: 3 }));
    h.deliver('mm', { type: 'hmm_range_fault_result', ret: 0, pfns: new Float64Array([100]), flags: new Uint8Array([HMM_PFN_VALID]) } as Message, hrf.id);
    h.fireTimers();
    expect(h.take('dma_access').msg).toMatchObject({ pfn: 100, tr: { seq: 2 } });
    expect(h.actor.summary()).toMatchObject({ readRetries: 0, readRetriesSkipped: 1 });
  });

  it('bounds dmirror_range_fault: -EBUSY after rangeFaultMaxAttempts', () => {
    const h = new HandCtx(createDmirror({ rangeFaultMaxAttempts: 3 }, DEV));
    h.deliver('app', { type: 'dmirror_open', pid: 1 } as Message);
    h.deliver('mm', { type: 'mmu_interval_notifier_insert_result', ret: 0, sub: 7 } as Message, h.take('mmu_interval_notifier_insert').id);
    h.deliver('app', { type: 'dmirror_cmd', cmd: 'HMM_DMIRROR_READ', pid: 1, addr: BUF, npages: 1 } as Message);
    for (let i = 0; i < 3; i++) {
      h.deliver('mm', { type: 'read_begin_result', ret: 0, seq: 2 } as Message, h.take('mmu_interval_read_begin').id);
      h.deliver('mm', { type: 'hmm_range_fault_result', ret: -16, pfns: new Float64Array(1), flags: new Uint8Array(1) } as Message, h.take('hmm_range_fault').id);
    }
    expect(h.take('dmirror_result').msg).toMatchObject({ ret: -16, cpages: 0 });
    expect(h.actor.summary()).toMatchObject({ ebusyRetries: 3, retryBoundHits: 1 });
  });

  it('for its own MMU_NOTIFY_MIGRATE: acks without the mutex, records the sequence, drops system-page entries only', () => {
    const h = new HandCtx(createDmirror({ costs: { dmaPageNs: 0 } }, DEV));
    openAndFault(h, 1);
    h.deliver('mm', { type: 'dma_read_result', ret: 0, value: 1 } as Message, h.take('dma_access').id);
    expect(h.take('dmirror_result').msg).toMatchObject({ ret: 0, data: [1] });
    // The entry names a system page that the migration is about to move: it goes, or a DMA could use it.
    h.deliver('mm', inval({ event: 'MMU_NOTIFY_MIGRATE', owner: DEV, cur_seq: 9 }));
    expect(h.take('invalidate_ack').msg.ok).toBe(true);
    expect(h.actor.summary()).toMatchObject({ mirrorEntries: 0, migrateZapsSkipped: 1 });
    h.deliver('mm', inval({ event: 'MMU_NOTIFY_MIGRATE', owner: 'other', cur_seq: 11 }));
    h.take('invalidate_ack');
    expect(h.actor.summary()).toMatchObject({ mirrorEntries: 0 });
    // An invalidate for a subscription it does not know: acked.
    h.deliver('mm', inval({ sub: 99 }));
    expect(h.take('invalidate_ack').msg).toEqual({ type: 'invalidate_ack', sub: 99, ok: true });
  });

  it('answers a request mm never answered with -ETIMEDOUT / -EIO', () => {
    const h = new HandCtx(createDmirror({}, DEV));
    h.deliver('app', { type: 'dmirror_open', pid: 1 } as Message);
    h.deliver('mm', { type: 'request_timeout', to: 'mm', requestType: 'mmu_interval_notifier_insert', timeoutNs: 1 } as Message, h.take('mmu_interval_notifier_insert').id);
    expect(h.take('dmirror_open_result').msg.ret).toBe(-110);
    h.deliver('app', { type: 'dmirror_open', pid: 1 } as Message);
    h.deliver('mm', { type: 'actor_died', actor: 'mm', error: 'x' } as Message, h.take('mmu_interval_notifier_insert').id);
    expect(h.take('dmirror_open_result').msg.ret).toBe(-5);
  });

  it('MIGRATE_TO_DEV: memremaps a chunk, copies into device memory, maps it, reads it back; migrate_to_ram hands it over', () => {
    const h = new HandCtx(createDmirror({ costs: { dmaPageNs: 0 }, devicePages: 4 }, DEV));
    h.deliver('app', { type: 'dmirror_open', pid: 1 } as Message);
    h.deliver('mm', { type: 'mmu_interval_notifier_insert_result', ret: 0, sub: 7 } as Message, h.take('mmu_interval_notifier_insert').id);
    h.take('dmirror_open_result');
    h.deliver('app', { type: 'dmirror_cmd', cmd: 'HMM_DMIRROR_MIGRATE_TO_DEV', pid: 1, addr: BUF, npages: 2 } as Message);
    // dmirror_migrate_to_device: vma_lookup first (a readable VMA that covers the range).
    const lookup = h.take('vma_lookup');
    expect(lookup.msg).toEqual({ type: 'vma_lookup', pid: 1, addr: BUF });
    h.deliver('mm', { type: 'vma_lookup_result', ret: 0, file: false, prot: PROT_READ | PROT_WRITE, start: BUF, end: BUF + 16 * PAGE_SIZE } as Message, lookup.id);
    const setup = h.take('migrate_vma_setup');
    expect(setup.msg).toMatchObject({ pid: 1, start: BUF, end: BUF + 2 * PAGE_SIZE, flags: 1, pgmap_owner: DEV });
    const F = MIGRATE_PFN_MIGRATE | MIGRATE_PFN_VALID | MIGRATE_PFN_WRITE;
    h.deliver('mm', { type: 'migrate_vma_setup_result', ret: 0, migration: 1, src_flags: new Uint8Array([F, F]), src_data: new Float64Array([41, 42]), cpages: 2 } as Message, setup.id);
    // dmirror_allocate_chunk: the device memory gets struct pages (all 4 pages of the device).
    const remap = h.take('memremap_pages');
    expect(remap.msg).toEqual({ type: 'memremap_pages', nr_pages: 4 });
    h.deliver('mm', { type: 'memremap_pages_result', ret: 0, base: 1 << 28 } as Message, remap.id);
    const fin = h.take('migrate_vma_finalize');
    const dst = Array.from((fin.msg as MigrateVmaFinalize).dst_pfns);
    expect(dst.every((p) => p >= 1 << 28 && p < (1 << 28) + 4)).toBe(true);
    h.deliver('mm', { type: 'migrate_vma_finalize_result', ret: 0, migrated: 2 } as Message, fin.id);
    expect(h.take('dmirror_result').msg).toMatchObject({ ret: 0, cpages: 2, data: [41, 42] });
    // A WRITE goes to device memory (a dev_write for the oracle), not to mm.
    h.deliver('app', { type: 'dmirror_cmd', cmd: 'HMM_DMIRROR_WRITE', pid: 1, addr: BUF, npages: 1, data: [77] } as Message);
    expect(h.take('dmirror_result').msg).toMatchObject({ ret: 0, cpages: 1, faults: 0 });
    expect(h.has('dma_access')).toBe(false);
    expect(h.traces.find((t) => t.ev === 'dev_write')).toMatchObject({ pid: 1, addr: BUF, dev_pfn: dst[0], value: 77 });
    // The CPU touches the page: its content goes back, the mirror entry goes.
    h.deliver('mm', { type: 'migrate_to_ram', pid: 1, addr: BUF, dev_pfn: dst[0] } as Message);
    expect(h.take('migrate_to_ram_result').msg).toEqual({ type: 'migrate_to_ram_result', ret: 0, value: 77 });
    h.deliver('mm', { type: 'device_page_free', dev_pfn: dst[0] } as Message);
    expect(h.actor.summary()).toMatchObject({ mirrorEntries: 1, devicePagesInUse: 1, calloc: 2, cfree: 1 });
    // A snapshot of a local device page.
    h.deliver('app', { type: 'dmirror_cmd', cmd: 'HMM_DMIRROR_SNAPSHOT', pid: 1, addr: BUF + PAGE_SIZE, npages: 1 } as Message);
    h.deliver('mm', { type: 'mmu_interval_notifier_insert_result', ret: 0, sub: 8 } as Message, h.take('mmu_interval_notifier_insert').id);
    h.deliver('mm', { type: 'read_begin_result', ret: 0, seq: 0 } as Message, h.take('mmu_interval_read_begin').id);
    h.deliver('mm', { type: 'hmm_range_fault_result', ret: 0, pfns: new Float64Array([dst[1]]), flags: new Uint8Array([HMM_PFN_VALID | HMM_PFN_WRITE | 0x80]) } as Message, h.take('hmm_range_fault').id);
    h.fireTimers();
    h.deliver('mm', { type: 'syscall_result', ret: 0 } as Message, h.take('mmu_interval_notifier_remove').id);
    expect(h.take('dmirror_result').msg).toMatchObject({ ret: 0, cpages: 1, snapshot: [HMM_DMIRROR_PROT_DEV_PRIVATE_LOCAL | HMM_DMIRROR_PROT_WRITE] });
    // RELEASE migrates the page still on the device back, through the mapping it was made for.
    h.deliver('app', { type: 'dmirror_cmd', cmd: 'HMM_DMIRROR_RELEASE', pid: 1, addr: BUF, npages: 1 } as Message);
    const evict = h.take('migrate_vma_setup');
    expect(evict.msg).toMatchObject({ pid: 1, start: BUF + PAGE_SIZE, end: BUF + 2 * PAGE_SIZE, flags: 2, pgmap_owner: DEV });
    h.deliver('mm', { type: 'migrate_vma_setup_result', ret: 0, migration: 2, src_flags: new Uint8Array([F]), src_data: new Float64Array([0]), cpages: 1 } as Message, evict.id);
    const efin = h.take('migrate_vma_finalize');
    expect(Array.from((efin.msg as MigrateVmaFinalize).dst_data!)).toEqual([42]);
    h.deliver('mm', { type: 'device_page_free', dev_pfn: dst[1] } as Message);
    h.deliver('mm', { type: 'migrate_vma_finalize_result', ret: 0, migrated: 1 } as Message, efin.id);
    expect(h.take('dmirror_result').msg.ret).toBe(0);
    expect(h.actor.summary()).toMatchObject({ mirrorEntries: 0, devicePagesInUse: 0, cfree: 2 });
  });
});

// test_hmm.c dmirror_range_fault: mmap_read_lock(mm) around hmm_range_fault. munmap and fork take
// mmap_write_lock, so none of the device's faults can run inside one of them.
describe('dmirror under mmap_read_lock: munmap and fork exclude its device faults', () => {
  // A second mirror reads `other` (256 pages of DMA under its mutex) when munmap of `other` comes:
  // the UNMAP waits for that mutex, so munmap holds the write lock for microseconds. Meanwhile the
  // first mirror faults `buf` in: without the read lock its faults would land inside that window.
  it('no remote fault of a dmirror read falls inside a munmap or fork holding the write lock (40 seeds)', async () => {
    let waited = 0;
    for (let seed = 1; seed <= 40; seed++) {
      const r = await run([
        S.create(), S.mmap(256), S.mmap(256, RW, 'other'), S.open(), S.open('open1', DEV1),
        { ...S.cmd('HMM_DMIRROR_READ', 0, 256, 'read1', { nowait: true, dev: DEV1 }, 'other') },
        S.munmap(0, 4, { nowait: true, delayMaxNs: 30_000 }, 'other'),
        { label: 'fork', nowait: true, delayMaxNs: 30_000, msg: (v) => ({ type: 'fork', pid: v.pid }) as Message },
        { ...S.cmd('HMM_DMIRROR_READ', 0, 256, 'read', { nowait: true }), delayMaxNs: 30_000 },
        S.join(),
      ], seed, {}, { second: true, frames: 2048 });
      expect(res(r, 'read')).toMatchObject({ ret: 0, cpages: 256 });
      const writeHeld: [number, number][] = [];
      let since = -1;
      for (const l of r.lines) {
        if (l.pid !== 1 || l.write !== true) continue;
        if (l.ev === 'mmap_lock_acquire_returned') since = l.t;
        if (l.ev === 'mmap_lock_released' && since >= 0) {
          writeHeld.push([since, l.t]);
          since = -1;
        }
      }
      const remote = r.lines.filter((l) => l.ev === 'page_fault' && l.remote === true && l.pid === 1).map((l) => [l.t - (l.ns as number), l.t] as const);
      expect(remote.length).toBeGreaterThanOrEqual(256);
      for (const [f0, f1] of remote) for (const [w0, w1] of writeHeld) expect(f1 <= w0 || f0 >= w1, `seed ${seed}: device fault [${f0}, ${f1}] inside write lock [${w0}, ${w1}]`).toBe(true);
      if (r.lines.some((l) => l.ev === 'mmap_lock_acquire_returned' && l.pid === 1 && l.write === false && (l.waitedNs as number) > 0)) waited++;
      noViolations(r, seed);
    }
    // Some seeds had a mirror wait for its read lock behind a writer: the exclusion was exercised.
    expect(waited).toBeGreaterThan(0);
  });
});

describe('dmirror with fork, exit, files, reclaim (more of hmm-tests.c)', () => {
  const fork = (): Step => ({ label: 'fork', msg: (v) => ({ type: 'fork', pid: v.pid }) as Message, then: (r, v) => (v.child = r.ret) });
  /** The step, done by the child. */
  const child = (st: Step): Step => ({ ...st, msg: (v) => st.msg!({ ...v, pid: v.child }) });
  const SEEDS_MORE = 30;

  it('anon_write_child: the child mirrors its own mm; its device write breaks COW', async () => {
    for (let seed = 1; seed <= SEEDS_MORE; seed++) {
      const r = await run([
        S.create(), S.mmap(3), ...stores(0, 3, val), fork(),
        child(S.open('child-open')),
        child(S.cmd('HMM_DMIRROR_WRITE', 0, 3, 'child-write', { data: [-1, -2, -3] })),
        child(S.load(0, 'child-load')), S.load(0, 'parent-load'),
      ], seed);
      expect(res(r, 'child-write')).toMatchObject({ ret: 0, cpages: 3, faults: 1 });
      expect(r.out['child-load'].value).toBe(-1);
      expect(r.out['parent-load'].value).toBe(val(0));
      noViolations(r, seed);
    }
  });

  it('exclusive_cow: fork after EXCLUSIVE, both processes write their own copy', async () => {
    for (let seed = 1; seed <= SEEDS_MORE; seed++) {
      const r = await run([
        S.create(), S.mmap(3), ...stores(0, 3, val), S.open(), S.cmd('HMM_DMIRROR_EXCLUSIVE', 0, 3, 'exclusive'), fork(),
        { ...child(S.store(0, 7)), label: 'child-store' }, { ...S.store(0, 8), label: 'parent-store' },
        child(S.load(0, 'child-load')), S.load(0, 'parent-load'), child(S.load(1, 'child-load1')), S.load(1, 'parent-load1'),
      ], seed);
      expect(res(r, 'exclusive')).toMatchObject({ ret: 0, cpages: 3 });
      expect([r.out['child-load'].value, r.out['parent-load'].value, r.out['child-load1'].value, r.out['parent-load1'].value]).toEqual([7, 8, val(1), val(1)]);
      noViolations(r, seed);
    }
  });

  it('hmm_cow_in_device: fork after MIGRATE_TO_DEV; the parent writes, gets system pages back; the child still reads the old values', async () => {
    for (let seed = 1; seed <= SEEDS_MORE; seed++) {
      const r = await run([
        S.create(), S.mmap(3), ...stores(0, 3, val), S.open(), S.cmd('HMM_DMIRROR_MIGRATE_TO_DEV', 0, 3, 'migrate'), fork(),
        ...stores(0, 3, (i) => 50 + i),
        S.cmd('HMM_DMIRROR_SNAPSHOT', 0, 3, 'snapshot'), child(S.load(0, 'child-load')), child(S.load(2, 'child-load2')),
      ], seed);
      expect(res(r, 'snapshot').snapshot).toEqual(Array(3).fill(HMM_DMIRROR_PROT_WRITE));
      expect([r.out['child-load'].value, r.out['child-load2'].value]).toEqual([val(0), val(2)]);
      noViolations(r, seed);
    }
  });

  // mm/migrate_device.c + mm/rmap.c (v6.15): migrate_to_ram's migrate_vma_setup → try_to_migrate
  // → remove_migration_ptes moves every mapping of the device page, not only the faulting one.
  it('a device page shared by fork comes back to RAM for both processes on the child\'s fault', async () => {
    for (let seed = 1; seed <= SEEDS_MORE; seed++) {
      const r = await run([
        S.create(), S.mmap(1), S.store(0, 9), S.open(), S.cmd('HMM_DMIRROR_MIGRATE_TO_DEV', 0, 1, 'migrate'), fork(),
        child(S.load(0, 'child-load')), S.load(0, 'parent-load'),
        S.cmd('HMM_DMIRROR_SNAPSHOT', 0, 1, 'snapshot'),
      ], seed);
      expect(res(r, 'migrate')).toMatchObject({ ret: 0, cpages: 1 });
      expect(r.out['child-load']).toMatchObject({ value: 9, faults: 1 });
      expect(r.out['parent-load']).toMatchObject({ value: 9, faults: 0 }); // already on the RAM page
      expect(res(r, 'snapshot').snapshot).toEqual([HMM_DMIRROR_PROT_READ]); // shared, read-only: COW
      noViolations(r, seed);
    }
  });

  // mm/migrate_device.c (v6.15): migrate_vma_collect_pmd collects a page mapped by parent and
  // child (not anon-exclusive after fork); migrate_device_unmap's try_to_migrate unmaps the
  // child's mapping, migrate_vma_check_page finds no reference beyond the mappings, and
  // remove_migration_ptes gives both the device page, read-only.
  it('MIGRATE_TO_DEV after fork moves the pages shared with the child too; the child\'s load brings them back', async () => {
    for (let seed = 1; seed <= SEEDS_MORE; seed++) {
      const r = await run([
        S.create(), S.mmap(3), ...stores(0, 3, val), fork(), S.open(), S.cmd('HMM_DMIRROR_MIGRATE_TO_DEV', 0, 3, 'migrate'),
        S.cmd('HMM_DMIRROR_SNAPSHOT', 0, 3, 'snapshot'),
        child(S.load(0, 'child-load')), S.load(1, 'parent-load1'),
      ], seed);
      expect(res(r, 'migrate')).toMatchObject({ ret: 0, cpages: 3, data: [val(0), val(1), val(2)] });
      expect(res(r, 'snapshot').snapshot).toEqual(Array(3).fill(HMM_DMIRROR_PROT_DEV_PRIVATE_LOCAL | HMM_DMIRROR_PROT_READ));
      expect(r.out['child-load']).toMatchObject({ value: val(0), faults: 1 });
      expect(r.out['parent-load1']).toMatchObject({ value: val(1), faults: 1 });
      // One CLEAR per page for the child's mapping (try_to_migrate_one).
      expect(r.lines.filter((l) => l.ev === 'invalidate_start' && (l as any).caller === 'try_to_migrate_one' && (l as any).event === 'MMU_NOTIFY_CLEAR').length).toBe(3);
      noViolations(r, seed);
    }
  });

  it('munmap and exit free the device pages; the file is closed after the process is gone', async () => {
    for (let seed = 1; seed <= SEEDS_MORE; seed++) {
      const r = await run([
        S.create(), S.mmap(4), ...stores(0, 4, val), S.open(), S.cmd('HMM_DMIRROR_MIGRATE_TO_DEV', 0, 4, 'migrate'),
        S.munmap(0, 2), S.cmd('HMM_DMIRROR_READ', 0, 4, 'read-unmapped'),
        { label: 'exit', msg: (v) => ({ type: 'exit', pid: v.pid }) as Message },
        S.cmd('HMM_DMIRROR_READ', 2, 2, 'read-exited'), S.close(),
      ], seed);
      expect(res(r, 'migrate')).toMatchObject({ ret: 0, cpages: 4 });
      expect(res(r, 'read-unmapped').ret).toBe(EFAULT);
      expect(res(r, 'read-exited').ret).toBe(EFAULT);
      expect(r.out.close.ret).toBe(0);
      expect(r.summaries[DEV]).toMatchObject({
        calloc: 4, cfree: 4, devicePagesInUse: 0, openFiles: 0, mirrorEntries: 0,
        invalidationsByEvent: { MMU_NOTIFY_MIGRATE: 1, MMU_NOTIFY_UNMAP: 2, MMU_NOTIFY_RELEASE: 1 },
      });
      noViolations(r, seed);
    }
  });

  it('file_read / file_write through a MAP_SHARED file, and reclaim zapping the mirror (MMU_NOTIFY_CLEAR)', async () => {
    for (let seed = 1; seed <= SEEDS_MORE; seed++) {
      const r = await run([
        S.create(),
        { label: 'file', msg: () => ({ type: 'file_create', name: 'f', pages: 4 }) as Message, then: (x, v) => (v.file = x.ret) },
        { label: 'mmap-file', msg: (v) => ({ type: 'mmap', pid: v.pid, addr: 0, length: 4 * PAGE_SIZE, prot: RW, flags: MAP_SHARED, file: v.file, offset: 0 }) as Message, then: (x, v) => (v.buf = x.ret) },
        S.mmap(4, RW, 'anon'), ...Array.from({ length: 4 }, (_, i) => ({ ...S.store(i, 30 + i, 'anon'), label: `anon-store:${i}` })),
        S.open(),
        S.cmd('HMM_DMIRROR_WRITE', 0, 4, 'file-write', { data: [1, 2, 3, 4] }),
        S.cmd('HMM_DMIRROR_READ', 0, 4, 'anon-read', {}, 'anon'),
        { label: 'reclaim', msg: () => ({ type: 'reclaim', nr_pages: 300 }) as Message },
        S.cmd('HMM_DMIRROR_READ', 0, 4, 'file-read'),
        S.cmd('HMM_DMIRROR_READ', 0, 4, 'anon-read2', {}, 'anon'),
        S.load(2, 'load'),
      ], seed);
      expect(res(r, 'file-write')).toMatchObject({ ret: 0, cpages: 4, faults: 1 });
      expect(r.out.reclaim.ret).toBeGreaterThan(0);
      // Reclaim unmapped the pages: the mirror was told, and faults them in again (from swap / the file).
      expect(res(r, 'file-read')).toMatchObject({ ret: 0, faults: 1, data: [1, 2, 3, 4] });
      expect(res(r, 'anon-read2')).toMatchObject({ ret: 0, faults: 1, data: [30, 31, 32, 33] });
      expect(r.out.load.value).toBe(3);
      expect((r.summaries[DEV].invalidationsByEvent as Record<string, number>).MMU_NOTIFY_CLEAR).toBeGreaterThan(0);
      noViolations(r, seed);
    }
  });

  // mprotect(PROT_READ) over device-private and device-exclusive entries makes them read-only, as
  // the kernel's change_pte_range does (make_readable_device_private_entry; restore_exclusive_pte
  // restores write only when the VMA allows it): a device WRITE through the mirror is then -EPERM.
  for (const how of ['MIGRATE_TO_DEV', 'EXCLUSIVE'] as const) {
    it(`mprotect(PROT_READ) after ${how}: the page comes back read-only`, async () => {
      const r = await run([
        S.create(), S.mmap(2), ...stores(0, 2, val), S.open(), S.cmd(`HMM_DMIRROR_${how}`, 0, 2, 'take'),
        S.mprotect(0, 2, PROT_READ), S.load(0, 'load0'), S.load(1, 'load1'),
        S.cmd('HMM_DMIRROR_SNAPSHOT', 0, 2, 'snapshot'),
        S.cmd('HMM_DMIRROR_READ', 0, 2, 'read'),
        S.cmd('HMM_DMIRROR_WRITE', 0, 2, 'write', { data: [-7, -8] }),
      ], 1);
      expect(res(r, 'take').ret).toBe(0);
      expect(res(r, 'snapshot').snapshot).toEqual([HMM_DMIRROR_PROT_READ, HMM_DMIRROR_PROT_READ]); // mm: WRITE, WRITE
      expect(res(r, 'write').ret).toBe(EPERM); // mm: 0, and the PROT_READ page now holds -7
    });
  }
});
