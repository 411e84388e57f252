// The real-report built-ins (scenarios/reports/, harness README "Real reports"), each run as a user
// runs it and held to the qualitative result its report describes: the hung-task chain, the figure
// that collapses, the checker catching the stale translation. Each also runs its control (the
// fault or the bug taken away), so the assertion can fail: the result is the report's cause, not
// the scenario's shape. Deterministic runs (LocalScheduler, seeded).
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { applyPolicies } from '../src/run/actors.js';
import { runScenario, type RunReport } from '../src/run/run-scenario.js';
import { builtinNames, loadScenario, reportScenarioNames } from '../src/scenario/load.js';
import type { Scenario } from '../src/scenario/types.js';

const cli = fileURLToPath(new URL('../dist/cli.js', import.meta.url));
const tmp = () => fs.mkdtempSync(path.join(os.tmpdir(), 'svmsim-reports-'));

function svmsim(...args: string[]): { code: number; out: string; err: string } {
  const r = spawnSync(process.execPath, [cli, ...args], { cwd: tmp(), encoding: 'utf8', timeout: 300_000 });
  return { code: r.status ?? -1, out: r.stdout, err: r.stderr };
}

/** A deterministic run in this process. */
async function run(s: Scenario, policies: Record<string, string> = {}, seed = 1): Promise<RunReport> {
  return runScenario(applyPolicies(s, policies), { seed, mode: 'deterministic', timeScale: 1, traceDir: tmp() });
}

type Figures = Record<string, number>;
const gpu = (r: RunReport, id = 'gpu0') => r.devices[id] as unknown as Figures;

describe('real-report built-ins', () => {
  it('are listed apart and kept out of compare\'s default set', () => {
    const reports = reportScenarioNames();
    expect(reports).toEqual(['kswapd-fence-hang', 'lock-not-pinned', 'read-begin-outside-loop', 'restore-storm', 'uvm-oversubscription', 'xnack-heap-reuse']);
    for (const name of reports) {
      expect(builtinNames()).not.toContain(name);
      const s = loadScenario(name);
      expect(s.name).toBe(name);
      expect(s.description, name).toMatch(/^Real report: /);
    }
    const list = svmsim('list');
    expect(list.code).toBe(0);
    expect(list.out).toMatch(/real reports \(svmsim run NAME; not in compare's default set\):\nkswapd-fence-hang +Real report: /);
  });
});

describe('kswapd-fence-hang', () => {
  it('kswapd0 hangs behind svm_range_restore_work holding svm_range_lock in dma_fence_wait; without the hung fence nothing hangs', async () => {
    const dir = tmp();
    const r = svmsim('run', 'kswapd-fence-hang', '--trace', dir);
    expect(r.code, r.out + r.err).toBe(3); // the run cannot finish: the machine of the report did not either
    expect(r.out).toContain('task kswapd0 is still blocked in invalidation');
    expect(r.out).toContain('faults injected: hang-fence gpu0 restore 1 (its page-table update fence)');
    const c = svmsim('check', dir);
    const kswapd = c.out.slice(c.out.indexOf('INFO: task kswapd0 blocked for more than 120 seconds.'));
    expect(kswapd.length, c.out).toBeGreaterThan(0);
    // The chain, link by link: kswapd0 → the notifier's mutex → the worker holding it → the fence.
    expect(kswapd).toMatch(/Call Trace:\n <TASK>\n __mutex_lock\n __mmu_notifier_invalidate_range_start\n try_to_unmap_one\n <\/TASK>/);
    expect(kswapd).toContain('INFO: task kswapd0 is blocked on a mutex likely owned by task kworker (svm_range_restore_work).');
    expect(kswapd).toMatch(/gpu0: svm_range_cpu_invalidate_pagetables waits for prange->lock \(svm_range_lock\), held by svm_range_restore_work since t=/);
    expect(kswapd).toMatch(/ {2}svm_range_restore_work: waits for the page-table update fence of restore #1 \(dma_fence_wait, no timeout; never signalled/);

    // The control: the same machine, the fence signals. The worker finishes, kswapd0 goes on.
    const s = loadScenario('kswapd-fence-hang');
    const ok = await run({ ...s, faults: [], duration: 50e6 });
    expect(ok.failed).toBeUndefined();
    expect(ok.check.hungTasks).toBe(0);
    expect(gpu(ok).restores).toBeGreaterThan(0);
    expect(gpu(ok).restoreFenceHangs).toBe(0);
  });
});

describe('restore-storm', () => {
  it('the restore worker walks hmm_range_fault hundreds of times a second and restores (almost) nothing; with room for both processes the worker stays idle', async () => {
    const r = svmsim('run', 'restore-storm', '--json');
    expect(r.code, r.err).toBe(0);
    const storm = JSON.parse(r.out) as RunReport;
    const g = gpu(storm);
    const perS = (k: string) => g[k] / (storm.simNs / 1e9);
    expect(perS('restoreAttempts'), JSON.stringify(g)).toBeGreaterThan(500); // AMDGPU_SVM_RANGE_RESTORE_DELAY_MS = 1: at most 1000/s
    expect(perS('restoreHmmCalls')).toBeGreaterThan(500);
    // No progress: at most one attempt in dozens resumes the process, and reclaim takes it again.
    expect(g.restoreAttempts).toBeGreaterThan(20 * Math.max(1, g.restores));
    expect(storm.check.ok).toBe(true);

    // The control: the same idle process on a machine with room for both: reclaim leaves it alone
    // and the worker has nothing to do.
    const s = loadScenario('restore-storm');
    const calm = await run({ ...s, machine: { ...s.machine, frames: 512 }, phases: [s.phases[0], s.phases[1]] });
    const c = gpu(calm);
    console.log(`restore-storm: ${g.restoreAttempts} attempts, ${g.restores} restores; control: ${c.restoreAttempts} attempts, ${c.restores} restores`);
    expect(c.restoreAttempts).toBeLessThanOrEqual(2);
    expect(c.restores).toBe(c.restoreAttempts);
  });
});

describe('read-begin-outside-loop', () => {
  it('with read_begin outside the retry loop every -EBUSY spins to the 1 s timeout and the copy rate collapses; the fixed driver copies at once; neither maps a stale page', () => {
    const r = svmsim('compare', 'read-begin-outside-loop', '--json');
    expect(r.code, r.err).toBe(0);
    const [fixed, backport] = JSON.parse(r.out) as RunReport[];
    expect(fixed.policies.gpu0).toBe('kfd-svm');
    expect(backport.policies.gpu0).toBe('kfd-svm-read-begin-outside-loop');
    const mibPerS = (x: RunReport) => (gpu(x).jobAccessesTotal * 4096) / 2 ** 20 / (gpu(x).jobRunNsTotal / 1e9);
    const f = gpu(fixed);
    const b = gpu(backport);
    // Both see the COW break's -EBUSY (kfd asks for write on a writable VMA); only one spins on it.
    expect(f.ebusyRetries).toBeGreaterThan(0);
    expect(f.staleSeqSpins).toBe(0);
    expect(b.staleSeqSpins).toBe(16);
    expect(b.staleSeqSpinNs).toBe(16e9);
    expect(b.jobRunNsTotal).toBeGreaterThanOrEqual(16e9); // sixteen 1 s windows, as in the report
    expect(mibPerS(fixed)).toBeGreaterThan(1000 * mibPerS(backport));
    // A stale sequence fails, it never maps: the checker has nothing to find. Only the figures show it.
    expect(fixed.check.ok && backport.check.ok).toBe(true);
    expect(b.jobsDone).toBe(1);
    expect(b.jobErrors).toBe(0);
  });
});

describe('xnack-heap-reuse', () => {
  // The control is in the run: the same buffer, munmapped and mmapped again, filled the same way.
  it('a recycled chunk still in VRAM: no unmap fires, the 8 filling threads queue on migrate_mutex and the fill is dozens of times slower than a fresh mapping\'s', async () => {
    const r = svmsim('run', 'xnack-heap-reuse', '--json');
    expect(r.code, r.err).toBe(0);
    const x = JSON.parse(r.out) as RunReport;
    const g = gpu(x);
    const [, reusedFill, freshFill] = x.phases as unknown as { durationNs: number }[];
    expect(x.mm.invalidationsByEvent.MMU_NOTIFY_UNMAP).toBe(1); // the unmapped buffer's only: free() of the reused one reached nothing
    expect(g.migratedToRam).toBe(512); // every page of the reused chunk comes back by a CPU fault
    expect(g.cpuMigrateWaits).toBeGreaterThan(0.9 * g.migratedToRam); // behind one another on the mutex
    expect(reusedFill.durationNs).toBeGreaterThan(20 * freshFill.durationNs);
    expect(x.check.ok).toBe(true);

  });
});

describe('lock-not-pinned', () => {
  it('compaction moves "locked" pages under the copy engine: the checker finds the stale translation; a real pin and XNACK\'s own path stay clean', () => {
    const r = svmsim('compare', 'lock-not-pinned', '--json');
    expect(r.code, r.err).toBe(1); // an invariant was violated
    const rows = JSON.parse(r.out) as RunReport[];
    const by = Object.fromEntries(rows.map((x) => [x.policies.gpu0, x]));
    const bad = by['unsafe-lock-not-pinned'];
    expect(bad.check.ok).toBe(false);
    expect(bad.check.violations[0]).toMatch(/^stale_translation: gpu0 dma_read .* used a stale translation: invalidation #\d+ \(MMU_NOTIFY_CLEAR .*\) was acked by gpu0/);
    expect(gpu(bad).lockedInvalidationsIgnored).toBeGreaterThan(0);
    // The fixes: a pin keeps compaction away (nothing invalidated), XNACK's notifier zaps and the engine refaults.
    expect(by.pin.check.ok).toBe(true);
    expect(gpu(by.pin).pagesPinned).toBe(64);
    expect(by['kfd-svm'].check.ok).toBe(true);
    expect(by['kfd-svm'].mm.invalidationsByEvent.MMU_NOTIFY_CLEAR).toBeGreaterThan(0);
    expect(gpu(by['kfd-svm']).deviceFaults).toBeGreaterThan(0);
  });
});

describe('uvm-oversubscription', () => {
  it('every fault into full VRAM evicts a whole root chunk; thrashing control takes the bouncing pages out of the cycle: far fewer evictions, more jobs done', () => {
    const r = svmsim('compare', 'uvm-oversubscription', '--json');
    expect(r.code, r.err).toBe(0);
    const rows = JSON.parse(r.out) as RunReport[];
    const on = gpu(rows.find((x) => x.policies.gpu0 === 'uvm')!);
    const off = gpu(rows.find((x) => x.policies.gpu0 === 'uvm-thrashing-off')!);
    for (const g of [on, off]) {
      expect(g.vramChunksEvicted).toBe(g.vramEvictions); // uvm evicts root chunks, never a page alone
      expect(g.vramPagesEvicted).toBeGreaterThan(10 * g.vramEvictions); // many pages per eviction
    }
    expect(off.thrashing).toBe(0); // uvm_perf_thrashing_enable=0
    expect(on.thrashing).toBeGreaterThan(0);
    expect(on.throttle).toBeGreaterThan(0);
    expect(off.vramChunksEvicted).toBeGreaterThan(2 * on.vramChunksEvicted);
    expect(off.migratedToVram).toBeGreaterThan(2 * on.migratedToVram);
    expect(on.jobsDone).toBeGreaterThan(2 * off.jobsDone);
    expect(rows.every((x) => x.check.ok)).toBe(true);
  });
});
