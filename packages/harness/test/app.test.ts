// The process actor `app` running hand-written scenarios against the real mm, ramdisk and dmirror
// under LocalScheduler (mm checking its invariants after every message), with the data oracle
// (checkTrace) on each run's trace and the app's final pages.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { LocalScheduler, readTrace, type Actor, type Message, type RunResult } from '@svmsim/runtime';
import { createMm, createRamdisk } from '@svmsim/kernel-mm';
import { checkTrace, formatViolation, type CheckReport } from '@svmsim/kernel-mm/checker';
import { createDmirror } from '@svmsim/kernel-mm/dmirror';
import { createApp, type AppSummary } from '@svmsim/harness/app/app-actor';
import { PagePicker } from '@svmsim/harness/app/pages';
import { OP_KINDS, type ActionStep, type OpKind, type Scenario, type Step, type WorkloadPhase } from '@svmsim/harness/scenario/types';

const DEV = 'dmirror0';

/**
 * A scenario with one process `main` (anon `heap` of 32 pages, a MAP_PRIVATE file mapping `map` of
 * 8, a MAP_SHARED mapping `smap` of the same file and a shared-anonymous `shm` of 4) and one dmirror.
 */
function scenario(over: Partial<Scenario>): Scenario {
  return {
    name: 'test',
    description: '',
    seed: 1,
    duration: 10e9,
    machine: { frames: 64, movableFrames: 0, swapPages: 64, kswapd: false, diskLatency: 0, costs: {} },
    files: [{ name: 'data', pages: 8 }],
    devices: [{ id: DEV, kind: 'dmirror', policy: 'safe', devicePages: 64 }],
    processes: [
      {
        name: 'main',
        vmas: [
          { name: 'heap', kind: 'anon', pages: 32, prot: 'rw', shared: false, offset: 0, mergeable: true },
          { name: 'map', kind: 'file', pages: 8, prot: 'rw', shared: false, file: 'data', offset: 0, mergeable: false },
          { name: 'smap', kind: 'file', pages: 8, prot: 'rw', shared: true, file: 'data', offset: 0, mergeable: false },
          { name: 'shm', kind: 'shared-anon', pages: 4, prot: 'rw', shared: true, offset: 0, mergeable: false },
        ],
      },
    ],
    phases: [],
    ...over,
  };
}

interface Run {
  r: RunResult;
  app: AppSummary;
  check: CheckReport;
}

/** One run; `devices` replaces the dmirror actors (fakes), `unsafe` makes the mirror skip read_retry. */
async function run(s: Scenario, seed: number, opts: { unsafe?: boolean; devices?: { id: string; actor: Actor<any> }[] } = {}): Promise<Run> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'svmsim-app-'));
  try {
    const devices = opts.devices ?? s.devices.map((d) => ({ id: d.id, actor: createDmirror({ devicePages: d.devicePages, ...(opts.unsafe ? { unsafe: 'skip-read-retry' } : {}) }, d.id) }));
    const r = await new LocalScheduler().run({
      seed,
      traceDir: dir,
      // A bound on a run that would not end (the longest here takes ~20,000 deliveries).
      maxSteps: 200_000,
      actors: [
        { id: 'mm', actor: createMm({ frames: s.machine.frames, swapPages: s.machine.swapPages, checkInvariants: true }, 'mm') },
        { id: 'ramdisk', actor: createRamdisk({}) },
        ...devices,
        { id: 'app', actor: createApp({ scenario: s, seed }, 'app') },
      ],
    });
    const app = r.summaries.app as unknown as AppSummary;
    return { r, app, check: checkTrace(readTrace(dir), app.finalPages) };
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

const violations = (c: CheckReport) => c.violations.map(formatViolation);

const ALL_KINDS: Partial<Record<OpKind, number>> = Object.fromEntries(OP_KINDS.map((k) => [k, k === 'load' || k === 'store' ? 4 : 1]));
const PATTERNS: WorkloadPhase['pattern'][] = ['random', 'sequential', 'hot-cold', 'strided'];

function workload(over: Partial<WorkloadPhase> = {}): WorkloadPhase {
  return { kind: 'workload', name: 'stress', process: 'main', threads: 4, ops: 200, mix: ALL_KINDS, pattern: 'random', hotShare: 0.8, stride: 3, ...over };
}

describe('app: page patterns', () => {
  const picks = (pattern: WorkloadPhase['pattern'], n: number, pages = 20, span = 1) => {
    let x = 12345;
    const rng = { next: () => ((x = (x * 1103515245 + 12345) % 2 ** 31) / 2 ** 31), int: (k: number) => Math.floor(rng.next() * k) };
    const p = new PagePicker({ pattern, hotShare: 0.9, stride: 3 }, () => rng);
    return Array.from({ length: n }, () => p.pick(pages, span));
  };
  it('sequential walks on past each span, strided by the stride, both wrapping; spans stay inside the VMA', () => {
    expect(picks('sequential', 6, 5)).toEqual([0, 1, 2, 3, 4, 0]);
    expect(picks('sequential', 4, 8, 3)).toEqual([0, 3, 5, 1]);
    expect(picks('strided', 6, 8)).toEqual([0, 3, 6, 1, 4, 7]);
  });
  it('hot-cold puts hotShare of the picks in the first 10% of the pages; random spreads them', () => {
    const hot = picks('hot-cold', 2000, 100).filter((p) => p < 10).length / 2000;
    expect(hot).toBeGreaterThan(0.85);
    expect(hot).toBeLessThan(0.95);
    const random = picks('random', 2000, 100);
    expect(random.filter((p) => p < 10).length / 2000).toBeLessThan(0.15);
    expect(new Set(random).size).toBe(100);
  });
});

describe('app: workload phases', () => {
  it('runs the requested number of operations, every kind of the mix, with no violation over 50 seeds', async () => {
    const total: Record<string, number> = {};
    for (let seed = 1; seed <= 50; seed++) {
      const s = scenario({ phases: [workload({ pattern: PATTERNS[seed % PATTERNS.length] })] });
      const { r, app, check } = await run(s, seed);
      expect(app.state, `seed ${seed}: ${r.reason}`).toBe('done');
      expect(r.reason).toBe('app: done (phases complete)');
      expect(violations(check), `seed ${seed}`).toEqual([]);
      expect(check.stats.pagesCompared, `seed ${seed}`).toBeGreaterThan(0);
      const [p] = app.phases;
      expect(p).toMatchObject({ name: 'stress', kind: 'workload', ops: 200 });
      expect(Object.values(p.counts).reduce((a, b) => a + b, 0)).toBe(200);
      for (const k of Object.keys(p.counts)) expect(OP_KINDS).toContain(k);
      for (const [k, n] of Object.entries(p.counts)) total[k] = (total[k] ?? 0) + n;
      expect(app.pids).toEqual({ main: 1 });
      expect(Object.keys(app.vmas).sort()).toEqual(['main.heap', 'main.map', 'main.shm', 'main.smap']);
    }
    for (const k of OP_KINDS) expect(total[k] ?? 0, k).toBeGreaterThan(20);
  }, 300_000);

  it('only issues the kinds of its mix, and counts their errors per errno', async () => {
    const { app, check } = await run(scenario({ phases: [workload({ mix: { store: 1, mprotect: 1 }, ops: 300 })] }), 3);
    expect(Object.keys(app.phases[0].counts).sort()).toEqual(['mprotect', 'store']);
    // Stores into a range mprotect made read-only fail with EFAULT, and are counted so.
    expect(app.phases[0].errors['store EFAULT']).toBeGreaterThan(0);
    expect(Object.keys(app.phases[0].errors).every((k) => /^(store|mprotect) E[A-Z]+$/.test(k))).toBe(true);
    expect(violations(check)).toEqual([]);
  });

  it('its final pages let the checker catch a mirror that skips mmu_interval_read_retry', async () => {
    let caught = 0;
    const mix = { store: 3, dmirror_read: 3, dmirror_write: 3, munmap: 1, mprotect: 1, madvise_dontneed: 1, migrate_pages: 1 };
    for (let seed = 1; seed <= 50 && caught === 0; seed++) {
      const { app, check } = await run(scenario({ phases: [workload({ mix, ops: 300 })] }), seed, { unsafe: true });
      expect(app.state).toBe('done');
      if (check.violations.some((v) => v.kind === 'stale_translation' || v.kind === 'lost_write')) caught++;
    }
    expect(caught).toBeGreaterThan(0);
  }, 300_000);

  it('gives the same summary for the same seed, another for another seed', async () => {
    const s = scenario({ phases: [workload({ pattern: 'hot-cold' })] });
    const a = await run(s, 7);
    const b = await run(s, 7);
    const c = await run(s, 8);
    expect(a.app.state).toBe('done');
    expect(b.app).toEqual(a.app);
    expect(b.r.endNs).toBe(a.r.endNs);
    expect(c.app).not.toEqual(a.app);
  });

  it('ends a long workload at scenario.duration, then dumps as usual', async () => {
    const s = scenario({ duration: 2e6, phases: [workload({ ops: 1e9 }), { kind: 'script', name: 'never', process: 'main', steps: [] }] });
    const { r, app, check } = await run(s, 5);
    expect(r.reason).toBe('app: done (scenario duration reached)');
    expect(app.state).toBe('done');
    expect(app.phases.map((p) => p.name)).toEqual(['stress']);
    expect(app.phases[0].ops).toBeGreaterThan(50);
    expect(app.phases[0].ops).toBeLessThan(1e9);
    expect(r.endNs).toBeGreaterThanOrEqual(2e6);
    expect(r.endNs).toBeLessThan(2e6 + 1e6);
    expect(app.finalPages.length).toBeGreaterThan(0);
    expect(violations(check)).toEqual([]);
  });

  it('ends a workload phase after its own duration and goes on to the next phase', async () => {
    const after: ActionStep = { name: 'after', action: { op: 'store', vma: 'heap', page: 0, pages: 1, value: 5 }, expect: { ret: 0 } };
    const s = scenario({ phases: [workload({ ops: undefined, duration: 1e6 }), { kind: 'script', name: 'then', process: 'main', steps: [after] }] });
    const { r, app, check } = await run(s, 2);
    expect(r.reason).toBe('app: done (phases complete)');
    expect(app.phases.map((p) => p.name)).toEqual(['stress', 'then']);
    expect(app.phases[0].durationNs).toBeGreaterThanOrEqual(1e6);
    expect(app.phases[0].ops).toBeGreaterThan(50);
    expect(app.steps).toEqual([{ phase: 'then', step: 'after', got: { ret: 0, faults: expect.any(Number), data: [5] }, failures: [] }]);
    expect(violations(check)).toEqual([]);
  });
});

// ---- scripts ----

const st = (name: string, action: ActionStep['action'], expectation?: ActionStep['expect']): ActionStep => ({ name, action, ...(expectation ? { expect: expectation } : {}) });

/** A selftest-like script: stores, loads, a mirror read, mprotect then a mirror write (EPERM), munmap racing a mirror read, a fork. */
const SCRIPT: Step[] = [
  st('store 1', { op: 'store', vma: 'heap', page: 0, pages: 4, value: 'unique' }, { ret: 0 }),
  st('load 2', { op: 'load', vma: 'heap', page: 0, pages: 4 }, { ret: 0, data: [1, 2, 3, 4] }),
  st('read 3', { op: 'dmirror', device: DEV, cmd: 'READ', vma: 'heap', page: 0, pages: 4 }, { ret: 0, cpages: 4, data: [1, 2, 3, 4] }),
  st('mprotect 4', { op: 'mprotect', vma: 'heap', page: 0, pages: 4, prot: 'r' }, { ret: 0 }),
  st('write 5', { op: 'dmirror', device: DEV, cmd: 'HMM_DMIRROR_WRITE', vma: 'heap', page: 0, pages: 4, data: [9, 9, 9, 9] }, { ret: 'EPERM' }),
  st('load 6', { op: 'load', vma: 'heap', page: 0, pages: 4 }, { data: [1, 2, 3, 4] }),
  st('store 7', { op: 'store', vma: 'heap', page: 8, pages: 2, value: 77 }, { ret: 0 }),
  st('read 8', { op: 'dmirror', device: DEV, cmd: 'READ', vma: 'heap', page: 8, pages: 2 }, { ret: 0, cpages: 2, data: [77, 77] }),
  {
    name: 'race',
    group: [
      st('munmap', { op: 'munmap', vma: 'heap', page: 8, pages: 2 }, { ret: 0 }),
      st('read', { op: 'dmirror', device: DEV, cmd: 'READ', vma: 'heap', page: 8, pages: 2 }),
    ],
  },
  st('fork 9', {
    op: 'fork',
    steps: [
      st('load', { op: 'load', vma: 'heap', page: 0, pages: 4 }, { data: [1, 2, 3, 4] }),
      st('store', { op: 'store', vma: 'heap', page: 4, pages: 1, value: 55 }, { ret: 0 }),
      st('load again', { op: 'load', vma: 'heap', page: 4, pages: 1 }, { data: [55] }),
      st('read', { op: 'dmirror', device: DEV, cmd: 'READ', vma: 'heap', page: 4, pages: 1 }, { ret: 0, cpages: 1, data: [55] }),
    ],
  }, { ret: 0 }),
  st('load 10', { op: 'load', vma: 'heap', page: 4, pages: 1 }, { data: [0] }),
  st('load 11', { op: 'load', vma: 'heap', page: 8, pages: 1 }, { ret: 'EFAULT' }),
  st('snapshot 12', { op: 'dmirror', device: DEV, cmd: 'SNAPSHOT', vma: 'heap', page: 12, pages: 1 }, { ret: 0, snapshot: [0] }),
];

describe('app: script phases', () => {
  it('runs a selftest-like script with every expectation met, over 20 seeds', async () => {
    const raceReads = new Set<number>();
    for (let seed = 1; seed <= 20; seed++) {
      const { r, app, check } = await run(scenario({ phases: [{ kind: 'script', name: 'selftest', process: 'main', steps: SCRIPT }] }), seed);
      expect(app.state, r.reason).toBe('done');
      expect(app.steps.filter((s) => s.failures.length > 0), `seed ${seed}`).toEqual([]);
      expect(app.expectFailures).toBe(0);
      expect(violations(check), `seed ${seed}`).toEqual([]);
      expect(app.steps.map((s) => s.step)).toEqual([
        'store 1', 'load 2', 'read 3', 'mprotect 4', 'write 5', 'load 6', 'store 7', 'read 8', 'race/munmap', 'race/read',
        'fork 9', 'fork 9/load', 'fork 9/store', 'fork 9/load again', 'fork 9/read', 'load 10', 'load 11', 'snapshot 12',
      ]);
      const byName = Object.fromEntries(app.steps.map((s) => [s.step, s]));
      expect(byName['store 1'].got).toMatchObject({ ret: 0, data: [1, 2, 3, 4] });
      expect(byName['write 5'].got).toMatchObject({ ret: -1 });
      // Both sides of the race are recorded: the munmap, and the read that saw the pages or not.
      expect(byName['race/munmap'].got.ret).toBe(0);
      const read = byName['race/read'].got;
      raceReads.add(read.ret as number);
      if (read.ret === 0) expect(read.data).toEqual([77, 77]);
      else expect(read.ret).toBe(-14);
      expect(byName['fork 9'].got.pid).toBeGreaterThan(1);
      expect(app.phases[0]).toMatchObject({ name: 'selftest', kind: 'script', ops: 18 });
      expect(app.phases[0].errors).toMatchObject({ 'dmirror_write EPERM': 1, 'load EFAULT': 1 });
    }
    expect([...raceReads].sort()).toEqual([-14, 0]);
  }, 120_000);

  it('reports an unmet expectation with its field, expected and actual value, and goes on', async () => {
    const steps: Step[] = [
      st('store', { op: 'store', vma: 'heap', page: 0, pages: 2, value: 'unique' }),
      st('wrong load', { op: 'load', vma: 'heap', page: 0, pages: 2 }, { data: [1, 3] }),
      st('wrong ret', { op: 'load', vma: 'heap', page: 0, pages: 1 }, { ret: 'ENOMEM' }),
      st('wrong cpages', { op: 'dmirror', device: DEV, cmd: 'READ', vma: 'heap', page: 0, pages: 2 }, { cpages: 3, data: [1, 2] }),
      st('later', { op: 'load', vma: 'heap', page: 1, pages: 1 }, { data: [2] }),
    ];
    const { app, check } = await run(scenario({ phases: [{ kind: 'script', name: 'wrong', process: 'main', steps }] }), 1);
    expect(app.state).toBe('done');
    expect(app.steps.map((s) => s.failures)).toEqual([
      [],
      ['data: expected [1,3], got [1,2]'],
      ['ret: expected -12 (ENOMEM), got 0'],
      ['cpages: expected 3, got 2'],
      [],
    ]);
    expect(app.expectFailures).toBe(3);
    expect(app.steps[4].got).toMatchObject({ ret: 0, data: [2] });
    expect(violations(check)).toEqual([]);
  });

  it('maps, pins, sleeps, remaps in place, writes back, and reports a step on a VMA that does not exist', async () => {
    const steps: Step[] = [
      st('mmap', { op: 'mmap', vma: 'extra', kind: 'anon', pages: 4, prot: 'rw', shared: false, offset: 0 }, { ret: 0 }),
      st('store', { op: 'store', vma: 'extra', page: 0, pages: 4, value: 'unique' }),
      st('pin', { op: 'pin', vma: 'extra', page: 0, pages: 2, write: true, longterm: false }, { ret: 0 }),
      st('sleep', { op: 'sleep', duration: 1e6 }),
      st('unpin', { op: 'unpin', vma: 'extra', page: 0, pages: 2 }, { ret: 0 }),
      st('unpin again', { op: 'unpin', vma: 'extra', page: 0, pages: 1 }, { ret: 'EINVAL' }),
      st('remap', { op: 'mmap', vma: 'extra', kind: 'anon', pages: 4, prot: 'rw', shared: false, offset: 0, fixed: true }, { ret: 0 }),
      st('load', { op: 'load', vma: 'extra', page: 0, pages: 4 }, { data: [0, 0, 0, 0] }),
      st('file store', { op: 'store', vma: 'shared', page: 1, pages: 1, value: 42 }),
      st('writeback', { op: 'writeback' }, { ret: 0 }),
      st('nowhere', { op: 'load', vma: 'nope', page: 0, pages: 1 }),
    ];
    const s = scenario({ phases: [{ kind: 'script', name: 'misc', process: 'main', steps }] });
    s.processes[0].vmas.push({ name: 'shared', kind: 'file', pages: 4, prot: 'rw', shared: true, file: 'data', offset: 4, mergeable: false });
    const { r, app, check } = await run(s, 4);
    expect(app.state, r.reason).toBe('done');
    const byName = Object.fromEntries(app.steps.map((s) => [s.step, s]));
    expect(Object.keys(app.vmas).sort()).toEqual(['main.extra', 'main.heap', 'main.map', 'main.shared', 'main.shm', 'main.smap']);
    expect(byName.mmap.got.addr).toBe(app.vmas['main.extra']);
    expect(byName.remap.got.addr).toBe(app.vmas['main.extra']);
    expect(byName.pin.got).toEqual({ ret: 0, pinned: 2 });
    expect(byName.unpin.got).toEqual({ ret: 0, unpinned: 2 });
    expect(byName.writeback.got.written).toBeGreaterThan(0);
    expect(byName.nowhere.failures).toEqual(['no VMA "nope" in main (pid 1)']);
    expect(app.steps.filter((s) => s.step !== 'nowhere' && s.failures.length > 0)).toEqual([]);
    expect(app.expectFailures).toBe(1);
    expect(app.phases[0].durationNs).toBeGreaterThanOrEqual(1e6);
    expect(violations(check)).toEqual([]);
  });
});

describe('app: ending the run early', () => {
  it('stops a workload whose process is gone (exited, or killed by the OOM killer) instead of spinning on ESRCH', async () => {
    // Exited by a script: the workload has nothing to run.
    const exit: Step = st('exit', { op: 'exit' }, { ret: 0 });
    const a = await run(scenario({ phases: [{ kind: 'script', name: 'bye', process: 'main', steps: [exit] }, workload({ ops: undefined, duration: 1e9 })] }), 1);
    expect(a.r.reason).toBe('app: done (phases complete)');
    expect(a.app.phases[1]).toMatchObject({ name: 'stress', ops: 0 });
    expect(a.app.finalPages).toEqual([]);
    // Killed: 16 frames, no swap, 64 pages to fill. Requests of a dead process cost no time: a
    // thread that went on would spin at one instant until maxSteps.
    const s = scenario({
      machine: { frames: 16, movableFrames: 0, swapPages: 0, kswapd: false, diskLatency: 0, costs: {} },
      devices: [],
      processes: [{ name: 'main', vmas: [{ name: 'heap', kind: 'anon', pages: 64, prot: 'rw', shared: false, offset: 0, mergeable: false }] }],
      phases: [workload({ ops: undefined, duration: 1e9, threads: 2, mix: { store: 1 }, pattern: 'sequential' })],
    });
    const b = await run(s, 1);
    expect(b.r.reason).toBe('app: done (phases complete)');
    expect((b.r.summaries.mm as { oomKills: number }).oomKills).toBe(1);
    expect(b.app.phases[0].ops).toBeLessThan(64);
    expect(b.r.endNs).toBeLessThan(1e9);
    expect(violations(b.check)).toEqual([]);
  });

  it('names the setup step and errno that failed', async () => {
    const s = scenario({ phases: [workload()] });
    s.processes[0].vmas.push({ name: 'huge', kind: 'anon', pages: 2 ** 21, prot: 'rw', shared: false, offset: 0, mergeable: false });
    const { r, app } = await run(s, 1);
    expect(r.endedBy).toBe('stopRun');
    expect(r.reason).toBe('app: setup: mmap main.huge failed with ENOMEM');
    expect(app.state).toBe('failed');
    expect(app.phases).toEqual([]);
  });

  for (const died of [false, true]) {
    const what = died ? 'actor_died' : 'request_timeout';
    it(`stops at a ${what} delivered in place of a reply`, async () => {
      // A device that answers its first request with the runtime's message instead of a reply.
      const fake: Actor<Message> = {
        receive(env, ctx) {
          const m = died ? { type: 'actor_died', actor: 'x', error: 'boom' } : { type: 'request_timeout', to: DEV, requestType: env.msg.type, timeoutNs: 5 };
          ctx.reply(env, m as Message);
        },
        summary: () => ({}),
      };
      const { r, app } = await run(scenario({ phases: [workload()] }), 1, { devices: [{ id: DEV, actor: fake }] });
      expect(r.endedBy).toBe('stopRun');
      expect(r.reason).toBe(died ? 'app: actor_died: x died (boom)' : `app: request_timeout: ${DEV} did not answer dmirror_open within 5 ns`);
      expect(app.state).toBe('failed');
    });
  }
});
