// The two-pass notifier comparison from the CLI (`svmsim compare two-gpu-munmap --passes 1,2`): two
// GPUs mirror one buffer while the CPU munmaps it. One pass (mainline) calls each GPU's notifier in
// turn and each blocks on its own TLB flush, so an munmap waits for the sum of the flushes; two
// passes (the RFC's invalidate_multipass) start both flushes first, so it waits for about the
// longest. The scenario's GPUs flush in 20us, 2us of it to issue.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { beforeAll, describe, expect, it } from 'vitest';
import type { RunReport } from '../src/run/run-scenario.js';

const cli = fileURLToPath(new URL('../dist/cli.js', import.meta.url));
const FLUSH_NS = 20_000;
const ISSUE_NS = 2_000;

function svmsim(...args: string[]): { code: number; out: string; err: string } {
  const cwd = fs.mkdtempSync(path.join(os.tmpdir(), 'svmsim-multipass-'));
  const r = spawnSync(process.execPath, [cli, ...args], { cwd, encoding: 'utf8', timeout: 300_000 });
  return { code: r.status ?? -1, out: r.stdout, err: r.stderr };
}

describe('svmsim compare two-gpu-munmap --passes 1,2', () => {
  let one: RunReport;
  let two: RunReport;
  beforeAll(() => {
    const r = svmsim('compare', 'two-gpu-munmap', '--passes', '1,2', '--json');
    expect(r.code, r.err).toBe(0);
    const reports = JSON.parse(r.out) as RunReport[];
    expect(reports.map((x) => x.notifierPasses)).toEqual([1, 2]);
    [one, two] = reports;
  }, 300_000);

  it('runs both with the checker clean', () => {
    for (const r of [one, two]) {
      expect(r.failed).toBeUndefined();
      expect(r.check.violations).toEqual([]);
      expect(r.mm.munmaps).toBeGreaterThan(10);
    }
  });

  it('one pass waits for the sum of the GPUs\' flushes, two passes for about the longest one', () => {
    // The sum: each GPU's whole flush, one after the other.
    expect(one.mm.notifierWaitNsP50).toBeGreaterThanOrEqual(2 * FLUSH_NS);
    // Toward the max: one flush, plus the second GPU's issuing that came after the first's.
    expect(two.mm.notifierWaitNsP50).toBeGreaterThanOrEqual(FLUSH_NS);
    expect(two.mm.notifierWaitNsP50).toBeLessThanOrEqual(FLUSH_NS + 2 * ISSUE_NS);
    expect(two.mm.notifierWaitNsP99).toBeLessThan(one.mm.notifierWaitNsP50);
    // munmap carries the difference.
    expect(two.mm.munmapNsP50).toBeLessThan(one.mm.munmapNsP50 - FLUSH_NS / 2);
    // Each GPU's second passes did run (one per flush its first pass issued).
    for (const id of ['gpu0', 'gpu1']) expect((two.devices[id] as { secondPasses: number }).secondPasses, id).toBeGreaterThan(0);
    // One pass: the same drivers, opted in, are never called the two-pass way.
    expect(one.devices.gpu0.secondPasses).toBe(0);
  });

  it('the table shows the passes side by side', () => {
    const r = svmsim('compare', 'two-gpu-munmap', '--passes', '1,2');
    expect(r.code, r.err).toBe(0);
    expect(r.out).toMatch(/passes\s+munmap p50\/p99\/max/);
    expect(r.out).toMatch(/one-pass/);
    expect(r.out).toMatch(/two-pass/);
  });
});

describe('bad two-pass input: exit 2, one line naming the field', () => {
  function scenarioWith(dir: string, device: string): string {
    const file = path.join(dir, 'bad.yaml');
    fs.writeFileSync(file, `name: bad\ndevices:\n  - ${device}\nprocesses:\n  - { name: app, vmas: [{ name: buf, pages: 4, gpu: gpu0 }] }\n`);
    return file;
  }

  it('issuing a TLB invalidation cannot take longer than the whole flush', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'svmsim-multipass-bad-'));
    const r = svmsim('run', scenarioWith(dir, '{ id: gpu0, kind: gpu, policy: svm-fault, costs: { tlbFlushNs: 1us, tlbInvalIssueNs: 2us } }'));
    expect(r.code).toBe(2);
    expect(r.err.trim().split('\n')).toHaveLength(1);
    expect(r.err).toMatch(/devices\[0\]\.costs\.tlbInvalIssueNs: 2000 ns is more than tlbFlushNs \(1000 ns\)/);
  });

  it('a policy without a two-pass notifier refuses invalidateMultipass', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'svmsim-multipass-bad-'));
    const r = svmsim('run', scenarioWith(dir, '{ id: gpu0, kind: gpu, policy: pin, invalidateMultipass: true }'));
    expect(r.code).toBe(2);
    expect(r.err).toMatch(/devices\[0\]\.invalidateMultipass: true: policy pin has no two-pass notifier/);
  });
});
