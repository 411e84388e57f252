// Fault injection end to end (run/faults.ts; packages/runtime/src/faults.ts): each fault's defined
// outcome, once under the LocalScheduler (exact, seeded) and once in thread mode (properties that
// hold under any interleaving). Every run is also checked by the data oracle: no acknowledged
// write lost, no stale access; and no pin left behind.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
// The compiled modules: thread mode's workers load dist/, and actors.ts names them relative to itself.
import { readModel } from '../dist/analysis/model.js';
import { injectFaults } from '../dist/run/faults.js';
import { applyPolicies, UsageError } from '../dist/run/actors.js';
import { exitCodeOf, runScenario } from '../dist/run/run-scenario.js';
import type { RunReport } from '../src/run/run-scenario.js';
import { loadScenario } from '../dist/scenario/load.js';

const cli = fileURLToPath(new URL('../dist/cli.js', import.meta.url));
const fixture = (f: string) => fileURLToPath(new URL(`./fixtures/${f}`, import.meta.url));
const tmp = () => fs.mkdtempSync(path.join(os.tmpdir(), 'svmsim-faults-'));

async function run(file: string, o: { inject?: string[]; policy?: Record<string, string>; threads?: boolean; timeScale?: number; seed?: number } = {}) {
  const s = injectFaults(applyPolicies(loadScenario(fixture(file)), o.policy ?? {}), o.inject);
  const traceDir = tmp();
  const r = await runScenario(s, { seed: o.seed ?? 1, mode: o.threads ? 'threads' : 'deterministic', timeScale: o.timeScale ?? 0.02, traceDir });
  return { r, traceDir };
}

/** Frames still pinned or referenced by gup at the end of the trace, per taker. */
function heldAtEnd(traceDir: string): Record<string, number> {
  const { model } = readModel(traceDir);
  return Object.fromEntries([...model.pins.stillHeld(model.tEnd)].map(([who, d]) => [who, d.count]));
}

const clean = (r: RunReport) => {
  expect(r.failed, r.reason).toBeUndefined();
  expect(r.check.violations).toEqual([]);
  expect(r.check.ok).toBe(true);
  expect(exitCodeOf(r)).toBe(0);
};

describe('kill: a device actor dies mid-run', () => {
  it('LocalScheduler: mm releases the dead GPU\'s 32 pins, the run ends cleanly naming it, nothing lost', async () => {
    const { r, traceDir } = await run('faults-gpu.yaml', { inject: ['kill:gpu0@5ms'], policy: { gpu0: 'pin' } });
    clean(r);
    expect(r.died).toEqual([{ actor: 'gpu0', error: 'killed by fault injection at t=5000000 ns', atNs: 5e6, pins: 32, gets: 0, subs: 0 }]);
    expect(r.devices.gpu0).toMatchObject({ died: 'killed by fault injection at t=5000000 ns' });
    expect(heldAtEnd(traceDir)).toEqual({});
    // Deterministic: the same seed gives the same outcome.
    const again = await run('faults-gpu.yaml', { inject: ['kill:gpu0@5ms'], policy: { gpu0: 'pin' } });
    expect({ ...again.r, traceDir: '', wallMs: 0 }).toEqual({ ...r, traceDir: '', wallMs: 0 });
  });

  it('LocalScheduler: a dead userptr GPU\'s interval notifier is removed; a dead NIC\'s MR notifier too', async () => {
    const gpu = await run('faults-gpu.yaml', { inject: ['kill:gpu0@5ms'] });
    clean(gpu.r);
    expect(gpu.r.died?.[0]).toMatchObject({ actor: 'gpu0', subs: 1 });
    const nic = await run('faults-gpu.yaml', { inject: ['kill:rdma0@3ms'] });
    clean(nic.r);
    expect(nic.r.died?.[0]).toMatchObject({ actor: 'rdma0', subs: 1 });
    expect(heldAtEnd(nic.traceDir)).toEqual({});
  });

  it('threads: the worker really exits; the run ends cleanly naming it, no pin left, nothing lost', async () => {
    const { r, traceDir } = await run('faults-gpu.yaml', { inject: ['kill:gpu0@5ms'], policy: { gpu0: 'pin' }, threads: true });
    clean(r);
    expect(r.died?.map((d) => d.actor)).toEqual(['gpu0']);
    expect(heldAtEnd(traceDir)).toEqual({});
  }, 60_000);
});

describe('hang-fence: a GPU job never signals its fence', () => {
  it('LocalScheduler: job timeout → GPU reset; the fence signals -ETIME, the waiting invalidation returns, the script goes on', async () => {
    const { r } = await run('faults-hang.yaml');
    clean(r);
    expect(r.steps.every((s) => s.failures.length === 0)).toBe(true);
    expect(r.devices.gpu0).toMatchObject({ jobTimeouts: 1, gpuResets: 1, jobsLost: { ETIME: 1 }, jobsDone: 2 });
    // lockup_timeout 2 ms + the soft-recovery deadline 10 ms + the reset 500 ms.
    expect(r.mm.notifierWaitNsMax).toBe(512e6);
  });

  it('threads: the same recovery under real races; the timeout may come from the fault', async () => {
    // 512 ms of simulated recovery at 0.5 simulated ns per wall ns: about a second.
    const { r } = await run('faults-hang.yaml', { threads: true, timeScale: 0.5, inject: ['hang-fence:gpu0,job=1,timeout=3ms'] });
    clean(r);
    expect(r.steps.every((s) => s.failures.length === 0)).toBe(true);
    // On a loaded machine a second job may run past the 3 ms too: at least the hung one times out.
    const gpu = r.devices.gpu0 as { lockupTimeoutMs: unknown; jobTimeouts: number; gpuResets: number; jobsLost: { ETIME?: number } };
    expect(gpu.lockupTimeoutMs).toMatchObject({ gfx: 3, compute: 3 });
    expect(gpu.jobTimeouts).toBeGreaterThanOrEqual(1);
    expect(gpu.gpuResets).toBeGreaterThanOrEqual(1);
    expect(gpu.jobsLost.ETIME).toBeGreaterThanOrEqual(1);
  }, 60_000);
});

describe('stop-invalidate-acks: a device stops answering invalidations', () => {
  it('LocalScheduler: mm waits as the kernel does (no timeout); the run fails naming the hung task and the device; check shows the report', async () => {
    const { r, traceDir } = await run('faults-acks.yaml');
    expect(exitCodeOf(r)).toBe(3);
    expect(r.failed).toMatch(/task app:1 is still blocked in invalidation #1, waiting for rdma0/);
    expect(r.check.hungTasks).toBe(1);
    expect(r.check.violations).toEqual([]);
    expect(r.faultDrops).toBe(1);
    const check = spawnSync(process.execPath, [cli, 'check', traceDir], { encoding: 'utf8', timeout: 60_000 });
    expect(check.stdout).toContain('INFO: task app:1 blocked for more than 120 seconds.');
    expect(check.stdout).toContain('likely waited by rdma0');
    expect(check.stdout).toMatch(/rdma0: waits for nothing; fault injection drops its answers since t=[\d.]+ µs \(fault_drop\)/);
  });

  it('threads: the same outcome, bounded by the run\'s time limit', async () => {
    const t0 = performance.now();
    const { r } = await run('faults-acks.yaml', { threads: true, timeScale: 5 });
    // The run does not finish either way (exit 3): mm is stuck on rdma0, or, on a loaded machine,
    // the run's time ran out before the MADV_PAGEOUT was reached (no invalidation yet).
    expect(exitCodeOf(r), r.failed).toBe(3);
    if (r.mm.invalidations > 0) {
      expect(r.failed).toMatch(/task app:1 is still blocked in invalidation #1, waiting for rdma0/);
      expect(r.faultDrops).toBe(1);
    } else {
      expect(r.failed).toMatch(/^the run did not finish \(/);
    }
    expect(performance.now() - t0).toBeLessThan(30_000);
  }, 60_000);
});

describe('delay and reorder', () => {
  it('LocalScheduler: seeded holds and a delayed pair change the interleaving, not the verdict', async () => {
    const plain = await run('faults-gpu.yaml');
    const { r } = await run('faults-gpu.yaml', { inject: ['reorder:probability=0.2,maxNs=20us', 'delay:from=mm,to=gpu0,ns=5us,jitterNs=5us'] });
    clean(r);
    expect(r.faultHolds).toBeGreaterThan(0);
    expect(r.simNs).not.toBe(plain.r.simNs);
    const again = await run('faults-gpu.yaml', { inject: ['reorder:probability=0.2,maxNs=20us', 'delay:from=mm,to=gpu0,ns=5us,jitterNs=5us'] });
    expect(again.r.simNs).toBe(r.simNs);
  });

  it('threads: delay and jitter between chosen pairs; safe policies stay clean', async () => {
    const { r } = await run('faults-gpu.yaml', { inject: ['delay:from=mm,to=rdma0,ns=50us,jitterNs=50us', 'delay:from=gpu0,to=mm,ns=20us', 'reorder:probability=0.1'], threads: true });
    clean(r);
  }, 60_000);
});

describe('--inject flags', () => {
  const s = () => loadScenario(fixture('faults-gpu.yaml'));
  it.each([
    ['kill:gpu9@5ms', /--inject "kill:gpu9@5ms": "gpu9" is not a device of this scenario; devices: gpu0, rdma0/],
    ['kill:gpu0', /--inject "kill:gpu0": at: missing; kill needs at/],
    ['kill:gpu0@5xs', /--inject "kill:gpu0@5xs": at: /],
    ['hang-fence:rdma0,job=1', /hang-fence needs a gpu/],
    ['hang-fence:gpu0,job=0', /job: 0 is too small; expected at least 1/],
    ['delay:from=mm,to=gpu7,ns=1us', /delay\.to: "gpu7" is not an actor of this run; expected one of mm, app, nvme, gpu0, rdma0, rdma0.peer \(did you mean gpu0\?\)/],
    ['reorder:probability=2', /reorder\.probability: 2 is too big; expected at most 1/],
    ['explode:gpu0', /"explode" is not one of kill, hang-fence/],
    ['kill', /expected KIND:/],
  ])('%s → one line naming the field', (flag, msg) => {
    expect(() => injectFaults(s(), [flag])).toThrow(UsageError);
    expect(() => injectFaults(s(), [flag])).toThrow(msg);
  });
});

describe('the README\'s fault-injection example', () => {
  it('runs as it says: the MADV_PAGEOUT waits 512 ms for the reset, then everything goes on', async () => {
    const readme = fs.readFileSync(fileURLToPath(new URL('../README.md', import.meta.url)), 'utf8');
    const section = readme.slice(readme.indexOf('## Fault injection'));
    const yaml = /```yaml\n([\s\S]*?)```/.exec(section)![1];
    const file = path.join(tmp(), 'readme-faults.yaml');
    fs.writeFileSync(file, yaml);
    const r = spawnSync(process.execPath, [cli, 'run', file, '--trace', tmp()], { encoding: 'utf8', timeout: 60_000 });
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toContain('faults injected: hang-fence gpu0 job 1');
    expect(r.stdout).toContain('1 job timeouts, 1 GPU resets, jobs lost: ETIME 1');
    expect(r.stdout).toMatch(/0 ns \/ 512 ms \/ 512 ms/);
    expect(r.stdout).toContain('steps: 5, 0 with an unmet expect');
  });
});
