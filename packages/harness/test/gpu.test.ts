// The GPU from the CLI, as a user runs it: the three GPU scenarios under every policy, and the
// results kernel engineers report for them, in deterministic runs (the numbers are exact per
// seed); and in thread mode, what holds under any interleaving (nothing lost, no stale access,
// every job done).
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { beforeAll, describe, expect, it } from 'vitest';
import type { RunReport } from '../src/run/run-scenario.js';

const cli = fileURLToPath(new URL('../dist/cli.js', import.meta.url));
const fixture = (name: string) => fileURLToPath(new URL(`./fixtures/${name}`, import.meta.url));
const tmp = () => fs.mkdtempSync(path.join(os.tmpdir(), 'svmsim-gpu-'));

function svmsim(...args: string[]): { code: number; out: string; err: string } {
  const r = spawnSync(process.execPath, [cli, ...args], { cwd: tmp(), encoding: 'utf8', timeout: 300_000 });
  return { code: r.status ?? -1, out: r.stdout, err: r.stderr };
}

type Gpu = Record<string, number>;
const SAFE = ['userptr', 'pin', 'preempt', 'svm-fault', 'kfd-svm', 'uvm', 'gpusvm'] as const;

/** `svmsim compare <scenarios> --json`: every report, by scenario and policy. */
function compare(...scenarios: string[]): Map<string, RunReport> {
  const r = svmsim('compare', ...scenarios, '--json');
  expect(r.code, r.err).toBe(0);
  const reports = JSON.parse(r.out) as RunReport[];
  return new Map(reports.map((x) => [`${x.scenario}/${x.policies.gpu0}`, x]));
}
const gpuOf = (r: RunReport) => r.devices.gpu0 as unknown as Gpu;

describe('svmsim compare userptr-walk gup-vs-readonly kswapd-vs-compute', () => {
  let runs: Map<string, RunReport>;
  const get = (scenario: string, policy: string) => {
    const r = runs.get(`${scenario}/${policy}`);
    if (!r) throw new Error(`no run of ${scenario} under ${policy}`);
    return r;
  };
  beforeAll(() => {
    runs = compare('userptr-walk', 'gup-vs-readonly', 'kswapd-vs-compute');
  }, 300_000);

  it('runs each scenario under each safe policy, and the checker finds nothing', () => {
    expect([...runs.keys()].sort()).toEqual(['userptr-walk', 'gup-vs-readonly', 'kswapd-vs-compute'].flatMap((s) => SAFE.map((p) => `${s}/${p}`)).sort());
    for (const [k, r] of runs) {
      expect(r.failed, k).toBeUndefined();
      expect(r.check.violations, k).toEqual([]);
    }
  });

  it('userptr-walk: userptr walks the whole 65536-page BO at every submission; svm-fault faults in only what the jobs touch', () => {
    const u = gpuOf(get('userptr-walk', 'userptr'));
    const s = gpuOf(get('userptr-walk', 'svm-fault'));
    const pin = gpuOf(get('userptr-walk', 'pin'));
    expect(u.pagesWalkedPerSubmissionMean).toBe(65536);
    expect(s.pagesWalkedPerSubmissionMean).toBe(0);
    expect(pin.pagesWalkedPerSubmissionMean).toBe(0);
    expect(pin.pagesPinned).toBe(65536);
    // The BO was freed before the dump: pin's pages unpinned, nothing left on the GPU.
    expect(pin.bosFreed).toBe(1);
    expect(pin.pagesUnpinned).toBe(pin.pagesPinned);
    expect(pin.bos).toBe(0);
    // The walk is the submission's cost: milliseconds against microseconds.
    expect(u.submitLatencyP50Ns).toBeGreaterThan(100 * s.submitLatencyP50Ns);
    // svm-fault's cost moved to device faults, at most one per page a job touched (655 per job).
    expect(s.deviceFaults).toBeGreaterThan(0);
    expect(s.deviceFaults).toBeLessThanOrEqual(s.submissions * 655);
    expect(s.jobErrors).toBe(0);
  });

  it('userptr-walk: kfd-svm resolves about one fault per 2 MiB range (svm_range_restore_pages, granularity 9, kfd_svm.c v6.6–latest), svm-fault one per page (nouveau_svm_fault, v6.6)', () => {
    const s = gpuOf(get('userptr-walk', 'svm-fault'));
    const k = gpuOf(get('userptr-walk', 'kfd-svm'));
    const ranges = 65536 / 512;
    // Each hmm_range_fault of kfd-svm covers a 512-page range, migrated to VRAM on its first fault.
    expect(k.hmmRangeFaults).toBeGreaterThan(0);
    expect(k.hmmRangeFaults).toBeLessThanOrEqual(2 * ranges);
    expect(k.pagesFaulted / k.hmmRangeFaults).toBeGreaterThan(400);
    expect(k.migratedToVram).toBeGreaterThan(0);
    // nouveau maps one page per fault (v6.6): two orders of magnitude more walks for the same jobs.
    expect(s.pagesFaulted / s.hmmRangeFaults).toBe(1);
    expect(s.hmmRangeFaults).toBeGreaterThan(50 * k.hmmRangeFaults);
    expect(k.jobErrors).toBe(0);
  });

  it('gup-vs-readonly: gfx userptr is refused the file mapping (ANONONLY, -EPERM: amdgpu_ttm_tt_get_user_pages, v6.6/latest) and ping-pongs with KSM; KFD userptr (preempt) takes the file mapping and ping-pongs with writeback', () => {
    const u = gpuOf(get('gup-vs-readonly', 'userptr'));
    const pre = gpuOf(get('gup-vs-readonly', 'preempt'));
    const pin = gpuOf(get('gup-vs-readonly', 'pin'));
    const s = gpuOf(get('gup-vs-readonly', 'svm-fault'));
    const byEvent = (g: Gpu) => (g as unknown as { invalidationsByEvent: Record<string, number> }).invalidationsByEvent;
    // libdrm's amdgpu_create_bo_from_user_mem passes ANONONLY | REGISTER | VALIDATE: the BO over the
    // shared file mapping fails at GEM_USERPTR; the one over KSM-merged anonymous memory is made.
    expect(u.boCreateErrors).toBe(1);
    expect(u.bosCreated).toBe(1);
    expect(byEvent(u).MMU_NOTIFY_PROTECTION_PAGE).toBeUndefined(); // no BO over what writeback cleans
    // The KSM half: every walk breaks the sharing ksm_scan set up again; each round the whole BO is revalidated.
    expect(byEvent(u).MMU_NOTIFY_CLEAR).toBeGreaterThan(0);
    expect(u.pagesInvalidated / u.boPagesCreated).toBeGreaterThan(5);
    expect(u.pagesRevalidated).toBeGreaterThan(u.boPagesCreated);
    expect(u.pagesRevalidated % 64).toBe(0); // whole BOs, never part of one
    // KFD userptr (flags 0) accepts the file mapping: page_mkclean invalidates it, and its restore walks write-fault it back.
    expect(pre.boCreateErrors).toBe(0);
    expect(byEvent(pre).MMU_NOTIFY_PROTECTION_PAGE).toBeGreaterThan(0);
    expect(pre.preemptions).toBeGreaterThan(0);
    // Read-only jobs fault read-only under nouveau's svm-fault: far fewer invalidations than userptr.
    expect(s.pagesInvalidated).toBeLessThan(u.pagesInvalidated / 3);
    // FOLL_LONGTERM of a shared file mapping is refused (v6.5): one BO of two; pinned pages are never invalidated.
    expect(pin.boCreateErrors).toBe(1);
    expect(pin.invalidations).toBe(0);
    // userptr's walks make its submissions the slowest.
    expect(u.submitLatencyP50Ns).toBeGreaterThan(pin.submitLatencyP50Ns);
  });

  it('kswapd-vs-compute, latest kernel: the compute ring\'s 2 s lockup_timeout ends the job (amdgpu_job_timedout → amdgpu_ring_soft_recovery, -ENODATA) and reclaim proceeds; KFD queues run their hour', () => {
    const u = get('kswapd-vs-compute', 'userptr');
    expect(u.kernel).toBe('latest');
    // kswapd waits in amdgpu_hmm_invalidate_gfx for the job's fence, which the timeout signals at 2 s.
    expect(u.mm.kswapdBlockedNs).toBeGreaterThan(1.9e9);
    expect(u.mm.kswapdBlockedNs).toBeLessThan(2.1e9);
    expect(u.mm.notifierWaitNsMax).toBeLessThan(2.1e9);
    expect(u.check.hungTasks).toBe(0);
    const ug = gpuOf(u);
    expect(ug.jobTimeouts).toBe(1);
    expect(ug.softRecoveries).toBe(1);
    expect(ug.gpuResets).toBe(0);
    expect((u.devices.gpu0 as { jobsLost: Record<string, number> }).jobsLost).toEqual({ ENODATA: 1 });
    // KFD user queues and nouveau have no job timeout: the job runs its hour and reclaim is never blocked for long.
    for (const p of ['preempt', 'svm-fault', 'kfd-svm']) {
      const r = get('kswapd-vs-compute', p);
      expect(r.mm.kswapdBlockedNs, p).toBeLessThan(1e9);
      expect(r.mm.notifierWaitNsMax, p).toBeLessThan(1e9);
      expect(r.mm.oomKills, p).toBe(0);
      expect(gpuOf(r).jobsDone, p).toBe(1);
      expect(gpuOf(r).jobTimeouts, p).toBe(0);
    }
    // preempt stops the queues and walks the whole BO again after each eviction.
    const pre = gpuOf(get('kswapd-vs-compute', 'preempt'));
    expect(pre.preemptions).toBeGreaterThan(0);
    expect(pre.restorePagesWalked).toBeGreaterThanOrEqual(192);
    // pin: the pinned BO cannot be reclaimed, the other process's memory runs out: the OOM killer.
    const pin = get('kswapd-vs-compute', 'pin');
    expect(gpuOf(pin).pagesPinned).toBe(192);
    expect(pin.mm.oomKills).toBeGreaterThan(0);
    expect(pin.mm.kswapdBlockedNs).toBe(0);
  });

  it('kswapd-vs-compute --kernel v4.9,latest: the hour-long stall where no compute job timeout exists (amdgpu_lockup_timeout 0 = MAX_SCHEDULE_TIMEOUT, v4.9), the timeout and recovery today', () => {
    const r = svmsim('compare', 'kswapd-vs-compute', '--policies', 'userptr', '--kernel', 'v4.9,latest');
    expect(r.code, r.err).toBe(0);
    expect(r.out).toMatch(/kernels v4\.9 vs latest/);
    expect(r.out).toMatch(/\nuserptr\s+v4\.9\s+1h\s+3\s+infinite\s+0\s/);
    expect(r.out).toMatch(/\nuserptr\s+latest\s+2 s\s+0\s+2 s\s+1 ENODATA\s/);
  });

  it('machine.lockupTimeout.compute -1 (the module parameter\'s infinite) brings the hour back under the latest kernel', () => {
    const dir = tmp();
    const src = fs.readFileSync(fileURLToPath(new URL('../scenarios/kswapd-vs-compute.yaml', import.meta.url)), 'utf8');
    const file = path.join(dir, 'no-timeout.yaml');
    fs.writeFileSync(file, src.replace('machine:\n', 'machine:\n  lockupTimeout: { compute: -1 }\n'));
    const r = svmsim('run', file, '--policy', 'gpu0=userptr', '--json');
    expect(r.code, r.err).toBe(0);
    const rep = JSON.parse(r.out) as RunReport;
    expect(rep.kernel).toBe('latest');
    expect(rep.mm.kswapdBlockedNs).toBeGreaterThan(0.9 * 3600e9);
    expect(gpuOf(rep).jobTimeouts).toBe(0);
  });

  it('prints one table per scenario with its own columns', () => {
    const r = svmsim('compare', 'kswapd-vs-compute', '--policies', 'userptr,svm-fault');
    expect(r.code, r.err).toBe(0);
    expect(r.out).toMatch(/deterministic, kernel latest/);
    const header = r.out.split('\n').find((l) => l.startsWith('policy'))!;
    expect(header).toMatch(/^policy\s+kswapd blocked\s+hung tasks\s+compute lockup_timeout\s+jobs lost \(timeout\/reset\)\s+direct reclaim blocked\s+alloc stall p50\/p99\/max\s+OOM kills/);
    expect(r.out).toMatch(/\nuserptr\s+2 s\s+0\s+2 s\s+1 ENODATA\s/);
  });
});

describe('thread mode', () => {
  it('gup-vs-readonly and kswapd-vs-compute under every safe policy: the checker finds nothing, every job ends', () => {
    const r = svmsim('compare', 'gup-vs-readonly', 'kswapd-vs-compute', '--threads', '--json');
    expect(r.code, r.err).toBe(0);
    const reports = JSON.parse(r.out) as RunReport[];
    expect(reports).toHaveLength(2 * SAFE.length);
    for (const x of reports) {
      const k = `${x.scenario}/${x.policies.gpu0}`;
      expect(x.mode, k).toBe('threads');
      expect(x.failed, k).toBeUndefined();
      expect(x.check.violations, k).toEqual([]);
      const g = gpuOf(x);
      const failedSubmits = Object.values((x.devices.gpu0 as { submitErrors: Record<string, number> }).submitErrors).reduce((a, b) => a + b, 0);
      expect(g.jobsDone, k).toBe(g.submissions - failedSubmits);
      expect(g.jobsPending, k).toBe(0);
    }
  }, 300_000);
});

describe('VRAM BOs from a scenario (gpu_alloc, gpu_free, a gpu step on a buffer)', () => {
  const runJson = (policy: string) => {
    const r = svmsim('run', fixture('vram-eviction.yaml'), '--policy', `gpu0=${policy}`, '--json');
    expect(r.code, r.err + r.out).toBe(0);
    return JSON.parse(r.out) as RunReport;
  };

  it('gfx: placing a BO evicts another process\'s after its job; the job runs undisturbed', () => {
    const g = gpuOf(runJson('userptr'));
    expect(g.vramBoEvictions).toBe(1);
    expect(g.localAccesses).toBe(48);
    expect(g.jobStretchMax).toBeCloseTo(1, 3);
    expect(g.preemptions).toBe(0);
  });

  it('KFD: the eviction fence stops the other process\'s queues for the 100 ms restore delay', () => {
    const g = gpuOf(runJson('preempt'));
    expect(g.vramBoEvictions).toBe(1);
    expect(g.fenceEvictions).toBe(1);
    expect(g.queuesStoppedNs).toBeGreaterThanOrEqual(100e6);
    // The 50 ms job took over 150 ms.
    expect(g.jobStretchMax).toBeGreaterThan(3);
  });
});

describe('the unsafe GPU policies are caught', () => {
  it('unsafe-userptr acks before the fences: stale translations in gup-vs-readonly, exit 1', () => {
    const r = svmsim('run', 'gup-vs-readonly', '--policy', 'gpu0=unsafe-userptr');
    expect(r.code, r.err).toBe(1);
    expect(r.out).toMatch(/stale_translation: gpu0 dma_read/);
  });

  it('kfd-svm racing munmap+remap, pageout and mprotect: no violation over 20 seeds (latest: checkpoint_ts), 4 under v6.6 (drain_pagefaults), nor in thread mode', () => {
    const r = svmsim('sweep', fixture('kfd-svm-race.yaml'), '--seeds', '1..20', '--jobs', '2');
    expect(r.code, r.err + r.out).toBe(0);
    for (let seed = 1; seed <= 4; seed++) {
      const v = svmsim('run', fixture('kfd-svm-race.yaml'), '--kernel', 'v6.6', '--seed', String(seed), '--trace', tmp());
      expect(v.code, v.out + v.err).toBe(0);
    }
    const t = svmsim('run', fixture('kfd-svm-race.yaml'), '--threads', '--json', '--trace', tmp());
    expect(t.code, t.err).toBe(0);
    const x = JSON.parse(t.out) as RunReport;
    expect(x.check.violations).toEqual([]);
    const g = gpuOf(x);
    expect(g.jobsPending).toBe(0);
    expect(g.svmRangesCreated).toBeGreaterThan(0);
  }, 120_000);

  it('unsafe-svm skips read_retry: a sweep of the svm race finds failing seeds; svm-fault has none', () => {
    const unsafe = svmsim('sweep', fixture('svm-race.yaml'), '--policy', 'gpu0=unsafe-svm', '--seeds', '1..6', '--jobs', '2');
    expect(unsafe.code, unsafe.err).toBe(1);
    expect(unsafe.out).toMatch(/stale_translation/);
    const safe = svmsim('sweep', fixture('svm-race.yaml'), '--seeds', '1..6', '--jobs', '2');
    expect(safe.code, safe.err + safe.out).toBe(0);
  }, 120_000);
});

describe('uvm (NVIDIA UVM, HMM mode)', () => {
  const runJson = (file: string) => {
    const r = svmsim('run', file, '--json');
    expect(r.code, r.err + r.out).toBe(0);
    return JSON.parse(r.out) as RunReport;
  };

  it('CPU stores and GPU jobs on 8 pages: thrashing control throttles, pins the pages in system memory and cuts the migrations', () => {
    const on = runJson(fixture('uvm-thrash.yaml'));
    const offFile = path.join(tmp(), 'uvm-thrash-off.yaml');
    fs.writeFileSync(offFile, fs.readFileSync(fixture('uvm-thrash.yaml'), 'utf8').replace('policy: uvm, devicePages: 64 }', 'policy: uvm, devicePages: 64, uvm: { thrashing: { enable: false } } }'));
    const off = runJson(offFile);
    const g = gpuOf(on);
    const g0 = gpuOf(off);
    for (const x of [on, off]) expect(x.check.violations).toEqual([]);
    expect(g0.thrashing).toBe(0);
    expect(g.thrashing).toBeGreaterThan(0);
    expect(g.throttle).toBeGreaterThan(0);
    expect(g.pin_local + g.pin_remote).toBeGreaterThan(0);
    expect(g.pagesMappedRemotePinned).toBeGreaterThan(0);
    // 3920 → 938 at the time of writing.
    expect(g.migratedToVram).toBeLessThan(g0.migratedToVram / 2);
  }, 120_000);

  it('a bad uvm option is one line naming the field, exit 2', () => {
    const bad = path.join(tmp(), 'bad.yaml');
    fs.writeFileSync(bad, fs.readFileSync(fixture('uvm-thrash.yaml'), 'utf8').replace('policy: uvm, devicePages: 64 }', 'policy: uvm, devicePages: 64, uvm: { thrashing: { threshold: 9 } } }'));
    const r = svmsim('run', bad);
    expect(r.code).toBe(2);
    expect(r.err.trim().split('\n')).toHaveLength(1);
    expect(r.err).toMatch(/devices\[0\]\.uvm\.thrashing\.threshold/);
  });

  it('unsafe-uvm skips read_retry: a sweep of the svm race finds failing seeds; uvm has none, in thread mode neither', () => {
    const unsafe = svmsim('sweep', fixture('svm-race.yaml'), '--policy', 'gpu0=unsafe-uvm', '--seeds', '1..6', '--jobs', '2');
    expect(unsafe.code, unsafe.err).toBe(1);
    expect(unsafe.out).toMatch(/stale_translation/);
    const safe = svmsim('sweep', fixture('svm-race.yaml'), '--policy', 'gpu0=uvm', '--seeds', '1..20', '--jobs', '2');
    expect(safe.code, safe.err + safe.out).toBe(0);
    const t = svmsim('run', fixture('uvm-thrash.yaml'), '--threads', '--json', '--trace', tmp());
    expect(t.code, t.err).toBe(0);
    const x = JSON.parse(t.out) as RunReport;
    expect(x.check.violations).toEqual([]);
    expect(gpuOf(x).jobsPending).toBe(0);
  }, 300_000);
});
