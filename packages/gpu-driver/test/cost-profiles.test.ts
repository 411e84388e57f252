// Cost profiles (cost-profiles.ts): each figure cites a source, a profile changes the figures it
// names and only those, and a device's own costs win over it. Deterministic runs under LocalScheduler.
import { describe, expect, it } from 'vitest';
import { formatViolation } from '@svmsim/kernel-mm/checker';
import type { Step } from '@svmsim/kernel-mm/testing/mm-harness';
import { createGpu, DEFAULT_GPU_COSTS, GPU_COST_KEYS, GPU_COST_PROFILES, profileOverrides, splitCostOverrides, type GpuPolicyName } from '@svmsim/gpu-driver';
import type { GpuConfig } from '@svmsim/gpu-driver';
import { PAGE_SIZE } from '@svmsim/kernel-mm';
import { A, boCreate, create, load, mmapAt, run, submit, waitLast } from './gpu-steps.js';

const pages = 8;
/**
 * One job touching every page of a fresh BO, then the CPU reading them back (bringing any page the
 * GPU migrated home before the final dump). One wave: one retry fault at a time, so every fault
 * waits its own interrupt rather than joining a batch already being handled.
 */
const faultEveryPage: Step[] = [create, mmapAt(A, pages), boCreate(A, pages), submit([1], 1, 100_000), waitLast, ...Array.from({ length: pages }, (_, i) => load(A + i * PAGE_SIZE))];

async function faultP50(policy: GpuPolicyName, config: Partial<GpuConfig>): Promise<number> {
  const { check, gpu: g } = await run(policy, faultEveryPage, 1, {}, { waves: 1, ...config });
  expect(check!.violations.map(formatViolation)).toEqual([]);
  expect(g.deviceFaults).toBeGreaterThan(0);
  return g.faultLatencyP50Ns as number;
}

describe('cost profiles', () => {
  it('name a source for every figure they set, and set only known keys', () => {
    expect(GPU_COST_PROFILES.map((p) => p.name)).toEqual(['default', 'mi300-xnack', 'uvm-pcie']);
    expect(GPU_COST_PROFILES[0].figures).toEqual({}); // default: today's figures
    for (const p of GPU_COST_PROFILES) {
      for (const [k, f] of Object.entries(p.figures)) {
        expect(GPU_COST_KEYS as readonly string[], `${p.name}.${k}`).toContain(k);
        expect(f!.source.length, `${p.name}.${k}`).toBeGreaterThan(40);
        expect(Number.isFinite(f!.ns) && f!.ns >= 0, `${p.name}.${k}`).toBe(true);
      }
    }
  });

  it('the uvm-pcie figures are the ones UVM Smart configures: 45 µs far fault, 4 KiB at 16 GB/s', () => {
    expect(profileOverrides('uvm-pcie')).toEqual({ faultInterruptNs: 45_000, migratePerPageNs: 256, vramCopyPerPageNs: 256 });
  });

  it('split overrides into the tables that hold them, refusing an unknown key or a negative figure', () => {
    expect(splitCostOverrides({ faultInterruptNs: 1, preemptNs: 2, gpuResetNs: 3, vramCopyPerPageNs: 4 })).toEqual({
      costs: { faultInterruptNs: 1 }, preempt: { preemptNs: 2 }, recovery: { gpuResetNs: 3 }, vramBos: { copyPerPageNs: 4 },
    });
    expect(() => splitCostOverrides({ bogusNs: 1 } as never)).toThrow(/unknown cost "bogusNs"/);
    expect(() => splitCostOverrides({ tlbFlushNs: -1 })).toThrow(/tlbFlushNs must be a finite number/);
    expect(() => createGpu({ policy: 'svm-fault', profile: 'mi400' }, 'gpu0')).toThrow(/profile must be one of default, mi300-xnack, uvm-pcie, got "mi400"/);
  });

  it('uvm-pcie makes a resolved retry fault cost what published far faults cost (≥ 20 µs); default stays under it', async () => {
    const vramOff = { svm: { vramPages: 0 } };
    const byDefault = await faultP50('svm-fault', vramOff);
    const uvmPcie = await faultP50('svm-fault', { ...vramOff, profile: 'uvm-pcie' });
    expect(byDefault).toBeLessThan(20_000);
    expect(uvmPcie).toBeGreaterThanOrEqual(45_000); // UVM Smart's far-fault latency, plus the handler's own work
    expect(uvmPcie - byDefault).toBeGreaterThanOrEqual(45_000 - DEFAULT_GPU_COSTS.faultInterruptNs - 1);
  });

  it("a device's own costs win over its profile", async () => {
    const vramOff = { svm: { vramPages: 0 } };
    const byDefault = await faultP50('svm-fault', vramOff);
    const overridden = await faultP50('svm-fault', { ...vramOff, profile: 'uvm-pcie', costs: { faultInterruptNs: DEFAULT_GPU_COSTS.faultInterruptNs } });
    expect(overridden).toBe(byDefault);
  });

  it("mi300-xnack's copy within HBM makes kfd-svm's migrate-on-first-fault cheaper", async () => {
    const vram = { svm: { vramPages: 64 } };
    const byDefault = await faultP50('kfd-svm', vram);
    const mi300 = await faultP50('kfd-svm', { ...vram, profile: 'mi300-xnack' });
    // The range's 8 pages migrate on its first fault: 8 × (1000 - 2) ns less under mi300-xnack.
    expect(byDefault - mi300).toBeGreaterThanOrEqual(pages * (DEFAULT_GPU_COSTS.migratePerPageNs - 2) - 1);
  });
});
