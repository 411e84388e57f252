// The kernel-mm mechanisms drivers must cope with, as scenarios: clear_refs soft-dirty and NUMA
// hinting scans under a dmirror (test/fixtures/soft-dirty.yaml, numa-balancing.yaml).
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { runScenario } from '../src/run/run-scenario.js';
import { loadScenario, parseScenario } from '../src/scenario/load.js';
import type { Scenario } from '../src/scenario/types.js';

const fixture = (name: string) => fileURLToPath(new URL(`./fixtures/${name}`, import.meta.url));

async function run(s: Scenario) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'svmsim-mech-'));
  try {
    return await runScenario(s, { seed: 1, mode: 'deterministic', timeScale: 1, traceDir: dir });
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

describe('scenarios of kernel-mm mechanisms', () => {
  it('soft-dirty.yaml: every expectation met; one SOFT_DIRTY invalidation, the mirror faults again', async () => {
    const r = await run(loadScenario(fixture('soft-dirty.yaml')));
    expect(r.steps.flatMap((s) => s.failures)).toEqual([]);
    expect(r.expectFailures).toBe(0);
    expect(r.mm.invalidationsByEvent).toEqual({ MMU_NOTIFY_SOFT_DIRTY: 1 });
    expect(r.check.ok).toBe(true);
  });

  it('clear_refs takes only 4: another value is refused at load time, naming the field', () => {
    const src = fs.readFileSync(fixture('soft-dirty.yaml'), 'utf8').replace('clear_refs: 4', 'clear_refs: 1');
    expect(() => parseScenario(src, 'soft-dirty.yaml')).toThrow(/clear_refs.*4 \(CLEAR_REFS_SOFT_DIRTY; 1, 2, 3 and 5 are not modelled\)/);
  });

  it('numa-balancing.yaml: hinting faults and PROTECTION_VMA invalidations the same workload does not have without the scans', async () => {
    const s = loadScenario(fixture('numa-balancing.yaml'));
    const on = await run(s);
    expect(on.steps.flatMap((x) => x.failures)).toEqual([]);
    expect(on.check.ok).toBe(true);
    const { numaBalancing: _, ...machine } = s.machine;
    const off = await run({ ...s, machine });
    // The scripted numa_scan runs in both; only the periodic scans differ.
    expect(on.mm.invalidationsByEvent.MMU_NOTIFY_PROTECTION_VMA).toBeGreaterThan(off.mm.invalidationsByEvent.MMU_NOTIFY_PROTECTION_VMA);
    expect(on.mm.cpuFaultsByKind.numa).toBeGreaterThan(off.mm.cpuFaultsByKind.numa);
    const faults = (r: typeof on) => (r.devices.mirror0 as { faults: number }).faults;
    expect(faults(on)).toBeGreaterThan(faults(off));
    expect(off.check.ok).toBe(true);
  });
});
