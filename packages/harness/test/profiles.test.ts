// GPU cost profiles from the command line and scenario files: machine.profile and --profile change
// the figures they should, a gpu's own costs: win over the profile, bad names are one line and
// exit 2, and `compare --profile a,b` prints a section per profile and a verdict line per scenario.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const cli = fileURLToPath(new URL('../dist/cli.js', import.meta.url));
const tmp = () => fs.mkdtempSync(path.join(os.tmpdir(), 'svmsim-profiles-'));

function svmsim(...args: string[]): { code: number; out: string; err: string } {
  const r = spawnSync(process.execPath, [cli, ...args], { cwd: tmp(), encoding: 'utf8', timeout: 240_000 });
  return { code: r.status ?? -1, out: r.stdout, err: r.stderr };
}

/** A small userptr-walk: GPU jobs touching 5% of a 1024-page BO, so every policy runs in a moment. */
function scenarioFile(machine = '', gpu = ''): string {
  const file = path.join(tmp(), 'small-walk.yaml');
  fs.writeFileSync(
    file,
    `name: small-walk
description: GPU jobs touching 5% of a 1024-page userptr BO
duration: 5ms
report: [fault-latency, submit-latency, device-faults, job-stretch]
machine: { frames: 4096, swapPages: 256${machine} }
devices:
  - { id: gpu0, kind: gpu, devicePages: 0${gpu} }
processes:
  - name: app
    vmas:
      - { name: buf, pages: 1024, gpu: gpu0 }
phases:
  - workload: { name: submit, process: app, threads: 1, duration: 2ms, vmas: [buf], gpuTouch: 0.05, gpuJob: 50us, mix: { gpu_submit: 1 } }
`,
  );
  return file;
}

const faultP50 = (out: string): number => {
  const r = JSON.parse(out);
  return r.devices.gpu0.faultLatencyP50Ns as number;
};

describe('GPU cost profiles', () => {
  it('--profile uvm-pcie makes a resolved retry fault cost ≥ 20 µs; the default does not; the report names the profile', () => {
    const file = scenarioFile();
    const byDefault = svmsim('run', file, '--policy', 'gpu0=svm-fault', '--json', '--trace', tmp());
    const uvm = svmsim('run', file, '--policy', 'gpu0=svm-fault', '--profile', 'uvm-pcie', '--json', '--trace', tmp());
    expect(byDefault.code, byDefault.err).toBe(0);
    expect(uvm.code, uvm.err).toBe(0);
    expect(JSON.parse(byDefault.out).profile).toBe('default');
    expect(JSON.parse(uvm.out)).toMatchObject({ profile: 'uvm-pcie', devices: { gpu0: { costProfile: 'uvm-pcie' } } });
    expect(faultP50(byDefault.out)).toBeLessThan(20_000);
    expect(faultP50(uvm.out)).toBeGreaterThanOrEqual(20_000);
  });

  it("machine.profile does what --profile does, and a gpu's costs: win over it", () => {
    const profiled = svmsim('run', scenarioFile(', profile: uvm-pcie'), '--policy', 'gpu0=svm-fault', '--json', '--trace', tmp());
    const overridden = svmsim('run', scenarioFile(', profile: uvm-pcie', ', costs: { faultInterruptNs: 2us }'), '--policy', 'gpu0=svm-fault', '--json', '--trace', tmp());
    expect(profiled.code, profiled.err).toBe(0);
    expect(overridden.code, overridden.err).toBe(0);
    expect(faultP50(profiled.out)).toBeGreaterThanOrEqual(20_000);
    expect(faultP50(overridden.out)).toBeLessThan(20_000);
  });

  it('a preemption cost in costs: reaches the preempt policy (the invalidation waits for it)', () => {
    const slow = svmsim('run', 'kswapd-vs-compute', '--policy', 'gpu0=preempt', '--json', '--trace', tmp());
    expect(slow.code, slow.err).toBe(0);
    const file = path.join(tmp(), 'k.yaml');
    const text = fs.readFileSync(fileURLToPath(new URL('../scenarios/kswapd-vs-compute.yaml', import.meta.url)), 'utf8');
    const withCost = text.replace(/(- \{ id: gpu0, kind: gpu)/, '$1, costs: { preemptNs: 3ms }');
    expect(withCost).not.toBe(text);
    fs.writeFileSync(file, withCost);
    const r = svmsim('run', file, '--policy', 'gpu0=preempt', '--json', '--trace', tmp());
    expect(r.code, r.err).toBe(0);
    expect(JSON.parse(slow.out).mm.kswapdBlockedNs).toBeLessThan(1e6);
    expect(JSON.parse(r.out).mm.kswapdBlockedNs).toBeGreaterThanOrEqual(3e6);
  });

  it('an unknown profile is exit 2 with one line naming the field and the known names', () => {
    const flag = svmsim('run', scenarioFile(), '--profile', 'mi400');
    expect(flag.code).toBe(2);
    expect(flag.err.trim().split('\n')).toEqual(['--profile: "mi400" is not one of default, mi300-xnack, uvm-pcie']);
    const file = scenarioFile(', profile: mi400');
    const inFile = svmsim('run', file);
    expect(inFile.code).toBe(2);
    expect(inFile.err.trim().split('\n')).toHaveLength(1);
    expect(inFile.err).toContain(`${file}: machine.profile: "mi400" is not one of default, mi300-xnack, uvm-pcie`);
    for (const cmd of [['compare', scenarioFile(), '--profile', 'default,mi400'], ['sweep', scenarioFile(), '--seeds', '1..2', '--profile', 'mi400'], ['replay', scenarioFile(), '--seed', '1', '--profile', 'mi400']]) {
      const r = svmsim(...cmd);
      expect(r.code, cmd.join(' ')).toBe(2);
      expect(r.err, cmd.join(' ')).toMatch(/^--profile: "mi400" is not one of default, mi300-xnack, uvm-pcie\n$/);
    }
    const costsOnNic = path.join(tmp(), 'nic.yaml');
    fs.writeFileSync(costsOnNic, 'name: x\ndevices:\n  - { id: rdma0, kind: rdma, costs: { tlbFlushNs: 1us } }\n');
    const nic = svmsim('run', costsOnNic);
    expect(nic.code).toBe(2);
    expect(nic.err).toMatch(/devices\[0\]\.costs: .*costs applies to gpu devices only/);
  });

  it('compare --profile a,b prints one section per profile, then which policy wins the headline under each', () => {
    const r = svmsim('compare', scenarioFile(), '--policies', 'svm-fault,pin', '--profile', 'default,uvm-pcie');
    expect(r.code, r.err).toBe(0);
    const sections = r.out.split('\n').filter((l) => l.startsWith('== profile '));
    expect(sections.map((l) => l.split(' ')[2])).toEqual(['default', 'uvm-pcie']);
    // each section has the scenario's table with both policies
    for (const part of r.out.split('== profile ').slice(1)) {
      expect(part).toMatch(/\nsvm-fault /);
      expect(part).toMatch(/\npin /);
    }
    const verdicts = r.out.slice(r.out.indexOf('Verdicts by profile'));
    expect(verdicts).toMatch(/small-walk — device fault p50, lower wins: default: svm-fault \([\d.]+ µs\) · uvm-pcie: svm-fault \([\d.]+ µs\) — the same winner under every profile/);
  });
});
