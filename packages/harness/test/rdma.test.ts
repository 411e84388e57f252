// The RDMA NIC from the CLI, as a user runs it: the three RDMA scenarios under every MR kind they
// compare, and what they show, in deterministic runs; in thread mode what holds under any
// interleaving (nothing lost, no stale access, the run ends); the unsafe twin caught; the
// scenario steps (rnr_retry exhaustion, an MR over RLIMIT_MEMLOCK, a dma-buf MR across an eviction).
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { beforeAll, describe, expect, it } from 'vitest';
import type { RunReport } from '../src/run/run-scenario.js';

const cli = fileURLToPath(new URL('../dist/cli.js', import.meta.url));
const fixture = (name: string) => fileURLToPath(new URL(`./fixtures/${name}`, import.meta.url));
const tmp = () => fs.mkdtempSync(path.join(os.tmpdir(), 'svmsim-rdma-'));

function svmsim(...args: string[]): { code: number; out: string; err: string } {
  const r = spawnSync(process.execPath, [cli, ...args], { cwd: tmp(), encoding: 'utf8', timeout: 300_000 });
  return { code: r.status ?? -1, out: r.stdout, err: r.stderr };
}

type Figures = Record<string, number> & { wqeErrors: Record<string, number>; invalidationsByEvent: Record<string, number> };
const nic = (r: RunReport) => r.devices.rdma0 as unknown as Figures;
const peer = (r: RunReport) => r.devices['rdma0.peer'] as unknown as Figures;
const gpu = (r: RunReport) => r.devices.gpu0 as unknown as Figures;
const SCENARIOS = ['two-drivers', 'odp-prefetch', 'odp-vs-reclaim'];

/** A phase's NIC counters minus the previous phase's. */
function phaseDelta(r: RunReport, phase: string, key: string): number {
  const phases = r.phases as { name: string; counters?: Record<string, Record<string, number>> }[];
  const i = phases.findIndex((p) => p.name === phase);
  const at = (j: number) => (j < 0 ? 0 : (phases[j].counters?.rdma0?.[key] ?? 0));
  return at(i) - at(i - 1);
}
const phaseNs = (r: RunReport, phase: string) => (r.phases as { name: string; durationNs: number }[]).find((p) => p.name === phase)!.durationNs;

describe('svmsim compare two-drivers odp-prefetch odp-vs-reclaim', () => {
  let runs: Map<string, RunReport>;
  let text: string;
  const get = (scenario: string, kind: string) => {
    const r = runs.get(`${scenario}/${kind}`);
    if (!r) throw new Error(`no run of ${scenario} under ${kind}`);
    return r;
  };

  beforeAll(() => {
    const r = svmsim('compare', ...SCENARIOS, '--json');
    expect(r.code, r.err).toBe(0);
    runs = new Map((JSON.parse(r.out) as RunReport[]).map((x) => [`${x.scenario}/${x.policies.rdma0}`, x]));
    text = svmsim('compare', 'odp-prefetch').out;
  }, 120_000);

  it('runs each scenario under the MR kinds it compares, and the checker finds nothing', () => {
    expect([...runs.keys()].sort()).toEqual([
      'odp-prefetch/dmabuf', 'odp-prefetch/implicit-odp', 'odp-prefetch/odp', 'odp-prefetch/pinned-mr',
      'odp-vs-reclaim/implicit-odp', 'odp-vs-reclaim/odp', 'odp-vs-reclaim/pinned-mr',
      'two-drivers/implicit-odp', 'two-drivers/odp', 'two-drivers/pinned-mr',
    ]);
    for (const [k, r] of runs) {
      expect(r.failed, k).toBeUndefined();
      expect(r.check.violations, k).toEqual([]);
      expect(r.expectFailures, k).toBe(0);
    }
  });

  it('odp-prefetch: without prefetch every first write to a page faults and is RNR-NAKed, at a tenth of the rate or less; prefetched, none is', () => {
    for (const kind of ['odp', 'implicit-odp']) {
      const r = get('odp-prefetch', kind);
      expect(phaseDelta(r, 'no-prefetch', 'odpFaults'), kind).toBeGreaterThan(100);
      expect(phaseDelta(r, 'no-prefetch', 'rnrNaksSent'), kind).toBeGreaterThan(100);
      expect(phaseDelta(r, 'prefetched', 'odpFaults'), kind).toBe(0);
      expect(phaseDelta(r, 'prefetched', 'rnrNaksSent'), kind).toBe(0);
      expect(nic(r).pagesPerFault, kind).toBe(1);
      const rate = (p: string) => phaseDelta(r, p, 'rdmaMessages') / phaseNs(r, p);
      expect(rate('prefetched') / rate('no-prefetch'), kind).toBeGreaterThan(10);
    }
    // Pinned and dma-buf MRs are mapped whole at registration: no fault in either phase.
    for (const kind of ['pinned-mr', 'dmabuf']) expect(nic(get('odp-prefetch', kind)).odpFaults, kind).toBe(0);
    expect(nic(get('odp-prefetch', 'pinned-mr')).pinnedVmMaxPages).toBe(256);
    expect(nic(get('odp-prefetch', 'implicit-odp')).implicitChildrenCreated).toBe(1);
    expect(text).toMatch(/\nodp,userptr\s+no-prefetch: \d+\/s 1\d\d faults 1\d\d RNR · prefetched: \d+\/s 0 faults 0 RNR/);
  });

  it('two-drivers: a pinned MR keeps reclaim off the buffer (no device invalidated); under ODP each page-out invalidates both, the GPU waiting for its jobs far longer than the NIC for its DMA', () => {
    const pinned = get('two-drivers', 'pinned-mr');
    expect(gpu(pinned).invalidations).toBe(0);
    expect(nic(pinned).invalidations).toBe(0);
    expect(nic(pinned).pinnedVmMaxPages).toBe(64);
    for (const kind of ['odp', 'implicit-odp']) {
      const r = get('two-drivers', kind);
      expect(r.mm.invalidationsByEvent.MMU_NOTIFY_CLEAR, kind).toBeGreaterThan(20);
      expect(gpu(r).invalidations, kind).toBeGreaterThan(20);
      expect(nic(r).invalidations, kind).toBeGreaterThan(20);
      expect(nic(r).odpFaults, kind).toBeGreaterThan(10);
      expect(gpu(r).invalidateWaitMaxNs, kind).toBeGreaterThan(10 * nic(r).invalidateWaitMaxNs);
    }
  });

  it('odp-vs-reclaim: ODP survives reclaim, MADV_DONTNEED and fork with nothing lost; a pinned MR writes frames the process no longer maps', () => {
    for (const kind of ['odp', 'implicit-odp']) {
      const r = get('odp-vs-reclaim', kind);
      const events = nic(r).invalidationsByEvent;
      expect(events.MMU_NOTIFY_CLEAR, kind).toBeGreaterThan(10);
      expect(events.MMU_NOTIFY_PROTECTION_PAGE, kind).toBeGreaterThan(0); // fork
      expect(nic(r).odpFaults, kind).toBeGreaterThan(50);
      expect(r.check.stats.orphanPinnedWrites, kind).toBe(0);
      expect(r.mm.swapOuts, kind).toBeGreaterThan(0);
    }
    const pinned = get('odp-vs-reclaim', 'pinned-mr');
    expect(nic(pinned).invalidations).toBe(0);
    expect(pinned.check.stats.orphanPinnedWrites).toBeGreaterThan(100);
  });
});

describe('thread mode', () => {
  it('the three scenarios under every MR kind they compare: nothing lost, no stale access, every run ends', () => {
    const r = svmsim('compare', ...SCENARIOS, '--threads', '--json');
    expect(r.code, r.err).toBe(0);
    const reports = JSON.parse(r.out) as RunReport[];
    expect(reports).toHaveLength(10);
    for (const x of reports) {
      const k = `${x.scenario}/${x.policies.rdma0}`;
      expect(x.mode, k).toBe('threads');
      expect(x.failed, k).toBeUndefined();
      expect(x.check.violations, k).toEqual([]);
      expect(nic(x).rdmaMessages, k).toBeGreaterThan(0);
      expect(nic(x).pendingCalls, k).toBe(0);
    }
  }, 300_000);
});

describe('the unsafe twin and the scenario steps', () => {
  it('unsafe-odp acks before its DMA drains: odp-vs-reclaim (seed 3) ends with a stale translation, exit 1', () => {
    const r = svmsim('run', 'odp-vs-reclaim', '--policy', 'rdma0=unsafe-odp', '--seed', '3');
    expect(r.code, r.err).toBe(1);
    expect(r.out).toMatch(/stale_translation: rdma0 dma_(write|read) .* used a stale translation/);
  });

  it('rnr_retry 0: a fault exhausts the retries at once (IBV_WC_RNR_RETRY_EXC_ERR) and the QP is flushed; a pinned MR has no fault, and one over RLIMIT_MEMLOCK is refused', () => {
    const odp = svmsim('run', fixture('rdma-script.yaml'), '--json');
    expect(odp.code, odp.err + odp.out).toBe(0);
    const r = JSON.parse(odp.out) as RunReport;
    expect(r.steps.map((s) => s.got.status)).toEqual(['IBV_WC_RNR_RETRY_EXC_ERR', 'IBV_WC_WR_FLUSH_ERR', 'IBV_WC_WR_FLUSH_ERR']);
    expect(peer(r).rnrNaksReceived).toBe(1);
    const pinned = svmsim('run', fixture('rdma-script.yaml'), '--policy', 'rdma0=pinned-mr', '--json');
    expect(pinned.code).toBe(1);
    const p = JSON.parse(pinned.out) as RunReport;
    expect(p.steps[0].failures).toEqual(['status: expected IBV_WC_RNR_RETRY_EXC_ERR, got "IBV_WC_SUCCESS"']);
    expect(nic(p).regErrors).toEqual({ ENOMEM: 1 });
  });

  it('a bad rdma value in a scenario file: exit 2, one line naming the field', () => {
    const dir = tmp();
    const file = path.join(dir, 'bad.yaml');
    fs.writeFileSync(file, fs.readFileSync(fixture('rdma-script.yaml'), 'utf8').replace('rnrRetry: 0', 'rnrRetry: 9'));
    const r = svmsim('run', file);
    expect(r.code).toBe(2);
    expect(r.err.trim()).toBe(`${file}: devices[0].rnrRetry: 9 is too big; expected at most 7`);
  });

  it('a dma-buf MR over VRAM: the eviction calls move_notify, the MR faults and maps the new placement, the data follows', () => {
    const res = svmsim('run', fixture('rdma-dmabuf.yaml'), '--json');
    expect(res.code, res.err + res.out).toBe(0);
    const r = JSON.parse(res.out) as RunReport;
    expect(gpu(r).vramBoEvictions).toBe(1);
    expect(nic(r).dmabufMoveNotifies).toBe(1);
    expect(nic(r).dmabufRemaps).toBe(2);
    // The read after the move returns the write during it (pages 0–15) and the one before (16–31).
    const data = (i: number) => r.steps[i].got.data as number[];
    expect(data(3)).toEqual([...data(1), ...data(0).slice(16)]);
    expect(r.check.stats.p2pAccesses).toBe(32 + 16 + 32);
  });
});
