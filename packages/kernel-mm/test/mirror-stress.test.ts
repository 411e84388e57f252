// The kernel-mm acceptance run: the HMM test mirror (dmirror) racing everything mm does to the
// memory it mirrors — CPU stores and loads, munmap/re-mmap, mprotect, fork, migration, reclaim and
// MADV_PAGEOUT, KSM, writeback, migration to and from device memory, short pins — checked by the
// data oracle: 1,000 seeds under LocalScheduler (with mm's full invariant check after every
// message) and 30 s under ThreadScheduler find no violation; a mirror that skips read_retry is caught.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { LocalScheduler, ThreadScheduler, readTrace, type RunResult } from '@svmsim/runtime';
import { createMm, createRamdisk } from '@svmsim/kernel-mm';
import { checkTrace, formatViolation, type CheckReport } from '@svmsim/kernel-mm/checker';
import { createDmirror, type DmirrorUnsafe } from '@svmsim/kernel-mm/dmirror';
import { createMirrorStress } from '@svmsim/kernel-mm/testing/mirror-stress';

const dist = (file: string) => fileURLToPath(new URL(`../dist/${file}`, import.meta.url));

async function localSeed(seed: number, unsafe: false | DmirrorUnsafe): Promise<{ check: CheckReport; r: RunResult }> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'svmsim-stress-'));
  try {
    const r = await new LocalScheduler().run({
      seed,
      traceDir: dir,
      actors: [
        { id: 'mm', actor: createMm({ frames: 64, swapPages: 64, checkInvariants: true }, 'mm') },
        { id: 'ramdisk', actor: createRamdisk({}) },
        { id: 'dmirror0', actor: createDmirror(unsafe ? { unsafe } : {}, 'dmirror0') },
        { id: 'app', actor: createMirrorStress({ ops: 300 }) },
      ],
    });
    const app = r.summaries.app as { phase: string; finalPages: { pid: number; addr: number; value: number }[] };
    expect(app.phase, `seed ${seed}: ${r.reason}`).toBe('done');
    return { check: checkTrace(readTrace(dir), app.finalPages), r };
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

describe('dmirror racing mm', () => {
  it('finds no violation in 1,000 seeds under LocalScheduler', async () => {
    const ops: Record<string, number> = {};
    for (let seed = 1; seed <= 1000; seed++) {
      const { check, r } = await localSeed(seed, false);
      expect(check.violations.map(formatViolation), `seed ${seed}`).toEqual([]);
      for (const [k, n] of Object.entries((r.summaries.app as { counts: Record<string, number> }).counts)) ops[k] = (ops[k] ?? 0) + n;
    }
    // Every kind of operation was raced many times over.
    for (const kind of ['cpu_access', 'HMM_DMIRROR_READ', 'HMM_DMIRROR_WRITE', 'mmap', 'mprotect', 'fork', 'migrate_pages', 'madvise', 'reclaim', 'ksm_scan', 'writeback', 'HMM_DMIRROR_MIGRATE_TO_DEV', 'HMM_DMIRROR_MIGRATE_TO_SYS', 'get_user_pages']) {
      expect(ops[kind], kind).toBeGreaterThan(1000);
    }
  }, 600_000);

  it('catches a mirror that skips mmu_interval_read_retry', async () => {
    let caught = 0;
    for (let seed = 1; seed <= 100; seed++) {
      const { check } = await localSeed(seed, 'skip-read-retry');
      if (check.violations.some((v) => v.kind === 'stale_translation')) caught++;
    }
    expect(caught).toBeGreaterThan(0);
  }, 120_000);

  // Linux v6.15: only mmu_interval_set_seq writes sub->invalidate_seq (include/linux/mmu_notifier.h),
  // so a callback that zaps without it leaves read_retry, check_retry and read_begin all blind.
  it('catches a mirror that skips mmu_interval_set_seq in its invalidate callback', async () => {
    let caught = 0;
    for (let seed = 1; seed <= 100; seed++) {
      const { check } = await localSeed(seed, 'skip-set-seq');
      if (check.violations.some((v) => v.kind === 'stale_translation')) caught++;
    }
    console.log(`dmirror skip-set-seq caught in ${caught}/100 seeds`);
    expect(caught).toBeGreaterThan(0);
  }, 120_000);

  it('finds no violation in 30 s of real threads', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'svmsim-stress-threads-'));
    try {
      const r = await new ThreadScheduler().run({
        seed: 1,
        traceDir: dir,
        timeScale: 1,
        actors: [
          { id: 'mm', module: dist('mm-actor.js'), exportName: 'createMm', config: { frames: 64, swapPages: 64 } },
          { id: 'ramdisk', module: dist('ramdisk.js'), exportName: 'createRamdisk', config: {} },
          { id: 'dmirror0', module: dist('dmirror.js'), exportName: 'createDmirror', config: {} },
          { id: 'app', module: dist('testing/mirror-stress.js'), exportName: 'createMirrorStress', config: { durationNs: 30e9 } },
        ],
      });
      const app = r.summaries.app as { phase: string; issued: number; finalPages: { pid: number; addr: number; value: number }[] };
      expect(app.phase, r.reason).toBe('done');
      expect(app.issued).toBeGreaterThan(1000);
      const check = checkTrace(readTrace(dir), app.finalPages);
      expect(check.violations.map(formatViolation)).toEqual([]);
      expect(check.stats.dmaWrites).toBeGreaterThan(100);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  }, 120_000);
});
