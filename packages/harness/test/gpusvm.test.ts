// gpusvm (xe's DRM GPU SVM, drivers/gpu/drm/drm_gpusvm.c and xe_svm.c) from the CLI, as a user runs
// it: the fixture's qualitative results (a partial munmap drops the whole range, the atomic time
// slice refuses migrate_to_ram and then lets it through), bad gpusvm keys refused with the field
// named, and thread mode, where only properties hold (the checker finds nothing, every job ends).
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { beforeAll, describe, expect, it } from 'vitest';
import type { RunReport } from '../src/run/run-scenario.js';

const cli = fileURLToPath(new URL('../dist/cli.js', import.meta.url));
const fixture = (name: string) => fileURLToPath(new URL(`./fixtures/${name}`, import.meta.url));
const tmp = () => fs.mkdtempSync(path.join(os.tmpdir(), 'svmsim-gpusvm-'));

function svmsim(...args: string[]): { code: number; out: string; err: string } {
  const r = spawnSync(process.execPath, [cli, ...args], { cwd: tmp(), encoding: 'utf8', timeout: 300_000 });
  return { code: r.status ?? -1, out: r.stdout, err: r.stderr };
}

type Gpu = Record<string, number>;
const gpuOf = (r: RunReport) => r.devices.gpu0 as unknown as Gpu;
const FIXTURE = 'gpusvm-unmap-timeslice.yaml';

/** `svmsim run <file> --json [extra]`: the report, after checking the run exited 0. */
function runJson(file: string, ...extra: string[]): RunReport {
  const r = svmsim('run', file, '--json', '--trace', tmp(), ...extra);
  expect(r.code, r.err + r.out).toBe(0);
  return JSON.parse(r.out) as RunReport;
}

/** The fixture with `gpusvm: <keys>` added to its gpu device, written to a scratch file. */
function fixtureWithGpusvmKeys(keys: string): string {
  const text = fs.readFileSync(fixture(FIXTURE), 'utf8');
  const device = 'policy: gpusvm, devicePages: 2048 }';
  expect(text).toContain(device);
  const file = path.join(tmp(), 'gpusvm-bad-key.yaml');
  fs.writeFileSync(file, text.replace(device, `policy: gpusvm, devicePages: 2048, gpusvm: ${keys} }`));
  return file;
}

describe(`svmsim run ${FIXTURE}`, () => {
  let report: RunReport;
  beforeAll(() => {
    report = runJson(fixture(FIXTURE));
  }, 300_000);

  it('the checker finds nothing, every step meets its expect, every job ends', () => {
    expect(report.policies.gpu0).toBe('gpusvm');
    expect(report.failed).toBeUndefined();
    expect(report.check.violations).toEqual([]);
    expect(report.steps.flatMap((s) => s.failures)).toEqual([]);
    const g = gpuOf(report);
    expect(g.jobsDone).toBe(g.submissions);
    expect(g.jobErrors).toBe(0);
    expect(g.jobsPending).toBe(0);
  });

  it('the partial munmap drops a whole range: MMU_NOTIFY_UNMAP, the garbage collector removes it, the next job faults smaller ranges', () => {
    const g = gpuOf(report);
    expect(g.partialUnmapRangeDrops).toBeGreaterThan(0);
    expect(g.rangesGarbageCollected).toBeGreaterThan(0);
    expect(g.gcPending).toBe(0);
    const byChunk = (report.devices.gpu0 as unknown as { rangesByChunk: Record<string, number> }).rangesByChunk;
    expect(byChunk['2M']).toBeGreaterThan(0);
    // What is left of the first 2 MiB range no longer fits a 2 MiB chunk.
    expect(byChunk['64K']).toBeGreaterThan(0);
  });

  it('the atomic time slice refuses migrate_to_ram while it lasts; after it the CPU takes its pages home', () => {
    const g = gpuOf(report);
    expect(g.migrationsToVram).toBeGreaterThan(0);
    expect(g.timesliceRefusals).toBeGreaterThan(0);
    expect(g.timesliceWaitNs).toBeGreaterThan(0);
    // Both CPU stores on `atom` (inside the slice and after it) ended with their page in RAM.
    expect(g.migratedToRam).toBeGreaterThanOrEqual(2);
  });
});

describe('a bad gpusvm key is one line naming the field, exit 2', () => {
  it('chunkSizesKiB with a size that is not a power of two', () => {
    const r = svmsim('run', fixtureWithGpusvmKeys('{ chunkSizesKiB: [2048, 60, 4] }'));
    expect(r.code, r.err + r.out).toBe(2);
    expect(r.err.trim().split('\n')).toHaveLength(1);
    expect(r.err).toMatch(/devices\[0\]\.gpusvm\.chunkSizesKiB/);
  });

  it('chunkSizesKiB not in descending order, or not ending with a page', () => {
    for (const keys of ['{ chunkSizesKiB: [64, 2048, 4] }', '{ chunkSizesKiB: [2048, 64] }']) {
      const r = svmsim('run', fixtureWithGpusvmKeys(keys));
      expect(r.code, keys + r.err + r.out).toBe(2);
      expect(r.err.trim().split('\n'), keys).toHaveLength(1);
      expect(r.err, keys).toMatch(/devices\[0\]\.gpusvm\.chunkSizesKiB/);
    }
  });

  it('notifierSizeMiB past the limit, or not a power of two; atomicTimesliceMs past its bound', () => {
    for (const [keys, field] of [
      ['{ notifierSizeMiB: 8192 }', /devices\[0\]\.gpusvm\.notifierSizeMiB/],
      ['{ notifierSizeMiB: 384 }', /devices\[0\]\.gpusvm\.notifierSizeMiB/],
      ['{ atomicTimesliceMs: 3600000 }', /devices\[0\]\.gpusvm\.atomicTimesliceMs/],
    ] as const) {
      const r = svmsim('run', fixtureWithGpusvmKeys(keys));
      expect(r.code, keys + r.err + r.out).toBe(2);
      expect(r.err.trim().split('\n'), keys).toHaveLength(1);
      expect(r.err, keys).toMatch(field);
    }
  });
});

describe('thread mode', () => {
  it(`${FIXTURE} and svm-race under gpusvm: the checker finds nothing, every job ends`, () => {
    for (const [file, extra] of [[fixture(FIXTURE), []], [fixture('svm-race.yaml'), ['--policy', 'gpu0=gpusvm']]] as const) {
      const x = runJson(file, '--threads', ...extra);
      expect(x.mode, file).toBe('threads');
      expect(x.policies.gpu0, file).toBe('gpusvm');
      expect(x.failed, file).toBeUndefined();
      expect(x.check.violations, file).toEqual([]);
      const g = gpuOf(x);
      const failedSubmits = Object.values((x.devices.gpu0 as unknown as { submitErrors: Record<string, number> }).submitErrors).reduce((a, b) => a + b, 0);
      expect(g.jobsDone, file).toBe(g.submissions - failedSubmits);
      expect(g.jobsPending, file).toBe(0);
    }
  }, 300_000);
});
