// The NVMe controller from the CLI and from runScenario, as a user runs it: the three NVMe scenario
// files (direct-io-vs-migration, nvme-reset, p2p) with their figures; the unsafe-nvme twin caught
// by the checker over many seeds and by `svmsim check`; the safe driver with zero violations over
// many seeds and in thread mode (asserting only what holds under any interleaving); pins balanced
// on every path (success, -EREMOTEIO, reset, dead controller); bad input naming its field.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { beforeAll, describe, expect, it } from 'vitest';
import { readTrace } from '@svmsim/runtime';
import { applyPolicies } from '../src/run/actors.js';
import { runScenario, type RunReport } from '../src/run/run-scenario.js';
import { loadScenario } from '../src/scenario/load.js';

const cli = fileURLToPath(new URL('../dist/cli.js', import.meta.url));
const fixture = (name: string) => fileURLToPath(new URL(`./fixtures/${name}`, import.meta.url));
const tmp = () => fs.mkdtempSync(path.join(os.tmpdir(), 'svmsim-nvme-'));

function svmsim(...args: string[]): { code: number; out: string; err: string } {
  const r = spawnSync(process.execPath, [cli, ...args], { cwd: tmp(), encoding: 'utf8', timeout: 300_000 });
  return { code: r.status ?? -1, out: r.stdout, err: r.stderr };
}

type Figures = Record<string, number>;
const nvme = (r: RunReport, id = 'nvme0') => r.devices[id] as unknown as Figures;

/** Pages pinned and unpinned in a trace (pin_user_pages / unpin_user_pages lines of mm). */
function pinBalance(dir: string): { pinned: number; unpinned: number } {
  let pinned = 0;
  let unpinned = 0;
  for (const l of readTrace(dir) as unknown as Record<string, unknown>[]) {
    if (l.ev === 'pin_user_pages') pinned += (l.pfns as number[]).length;
    if (l.ev === 'unpin_user_pages') unpinned += (l.pfns as number[]).length;
  }
  return { pinned, unpinned };
}

/** A deterministic run in this process (LocalScheduler, seeded). */
async function run(source: string, policy: string, seed: number): Promise<{ r: RunReport; dir: string }> {
  const dir = tmp();
  const s = applyPolicies(loadScenario(source), { nvme0: policy });
  const r = await runScenario(s, { seed, mode: 'deterministic', timeScale: 1, traceDir: dir });
  return { r, dir };
}

describe('svmsim compare direct-io-vs-migration nvme-reset, svmsim run p2p', () => {
  let runs: Map<string, RunReport>;
  beforeAll(() => {
    const c = svmsim('compare', 'direct-io-vs-migration', 'nvme-reset', '--json');
    expect(c.code, c.err).toBe(0);
    const p = svmsim('run', 'p2p', '--json');
    expect(p.code, p.err + p.out.slice(0, 2000)).toBe(0);
    const all = [...(JSON.parse(c.out) as RunReport[]), JSON.parse(p.out) as RunReport];
    runs = new Map(all.map((x) => [`${x.scenario}/${x.policies.nvme0}`, x]));
  }, 300_000);
  const get = (k: string) => {
    const r = runs.get(k);
    if (!r) throw new Error(`no run ${k}: ${[...runs.keys()].join(', ')}`);
    return r;
  };

  it('runs every configuration with the checker satisfied, no pin left, every I/O answered', () => {
    expect([...runs.keys()].sort()).toEqual([
      'direct-io-vs-migration/safe', 'nvme-reset/dead', 'nvme-reset/hang', 'nvme-reset/lost-interrupts', 'nvme-reset/safe', 'p2p/safe',
    ]);
    for (const [k, r] of runs) {
      expect(r.check.violations, k).toEqual([]);
      expect(nvme(r).pinsHeld, k).toBe(0);
      expect(nvme(r).dioWaits, k).toBe(0);
      expect(nvme(r).dioReads + nvme(r).dioWrites, k).toBeGreaterThan(50);
      expect(r.steps.every((s) => s.failures.length === 0), k).toBe(true);
    }
  });

  it('direct-io-vs-migration: short pins make migration retry and leave pages; IOPS and latency from the controller', () => {
    const r = get('direct-io-vs-migration/safe');
    const f = nvme(r);
    expect(f.pinsHeldMax).toBeGreaterThan(8);
    expect(f.pinsHeldTimeWeighted).toBeGreaterThan(1);
    expect(f.dioIops).toBeGreaterThan(1000);
    expect(f.dioLatencyP99Ns).toBeGreaterThanOrEqual(f.dioLatencyP50Ns);
    expect(f.dioLatencyP50Ns).toBeGreaterThan(10_000); // the controller's costs, not zero
    const left = (r.phases as { migratePagesLeft?: number }[]).reduce((a, p) => a + (p.migratePagesLeft ?? 0), 0);
    expect(left).toBeGreaterThan(0);
    expect(r.mm.migrations).toBeGreaterThan(0);
    // migrate_pages retries -EAGAIN (a short O_DIRECT pin) up to NR_MAX_MIGRATE_PAGES_RETRY passes:
    // some pins end during the passes and those pages migrate; pinned heap pages are not attempted.
    expect(r.mm.migrationRetries).toBeGreaterThan(0);
    expect(r.mm.migratedAfterRetry).toBeGreaterThan(0);
    expect(r.mm.migrationsSkippedPinned).toBeGreaterThan(0);
    expect(left).toBeGreaterThanOrEqual(r.mm.migrationsFailed + r.mm.migrationsSkippedPinned);
    expect(r.check.stats.blockWritesAcked).toBe(f.dioWrites);
    expect(r.check.stats.blockReads).toBe(f.dioReads);
  });

  it('nvme-reset: lost interrupts found by the 30 s poll, a hang reset at ~60 s with nothing failed, a dead controller failing what was in flight', () => {
    const healthy = nvme(get('nvme-reset/safe'));
    const lost = nvme(get('nvme-reset/lost-interrupts'));
    const hang = nvme(get('nvme-reset/hang'));
    const dead = get('nvme-reset/dead');
    expect(healthy.resets + healthy.timeouts + healthy.dioErrors).toBe(0);
    expect(lost.timeouts).toBeGreaterThan(0);
    expect(lost.resets).toBe(0);
    expect(lost.dioErrors).toBe(0);
    expect(lost.dioLatencyP99Ns).toBeGreaterThanOrEqual(30e9);
    expect(hang.resets).toBe(1);
    expect(hang.aborts).toBeGreaterThan(0);
    expect(hang.dioErrors).toBe(0); // requeued, not failed (errata §1)
    expect(hang.dioLatencyP99Ns).toBeGreaterThanOrEqual(60e9);
    const d = nvme(dead);
    expect(d.dioErrors).toBeGreaterThan(0);
    expect(d.dioFailedWrites).toBeGreaterThan(0);
    // The checker counts every failed write as failed, not as acknowledged (and not as lost).
    expect(dead.check.stats.blockWritesFailed).toBe(d.dioFailedWrites);
    expect(dead.check.stats.blockWritesAcked).toBe(d.dioWrites - d.dioFailedWrites);
    // Pins are held through the whole timeout and reset window, then released.
    expect(hang.pinsHeldTimeWeighted).toBeGreaterThan(healthy.pinsHeldTimeWeighted);
  });

  it('p2p: O_DIRECT into a CMB behind the same switch, refused across an ACS port, another root port, a queue without P2P', () => {
    const r = get('p2p/safe');
    const names = r.steps.map((s) => `${s.step}: ${s.got.ret}`);
    expect(names).toContain('read into nvme1\'s CMB behind the same switch (bus address): 0');
    expect(names).toContain('nvme3\'s CMB behind an ACS-redirecting port (through the host bridge, not whitelisted): -121');
    expect(names).toContain('nvme2\'s CMB on another root port: -121');
    expect(names).toContain('nvme4\'s queue cannot do P2P: -121');
    expect(nvme(r).dioEremoteio).toBe(2);
    // nvme4's refusal is mm's gup (no FOLL_PCI_P2PDMA without BLK_FEAT_PCI_P2PDMA): the controller never sees the I/O.
    expect(nvme(r, 'nvme4').dioEremoteio ?? 0).toBe(0);
    // A pinned RDMA MR over the same p2pmem mapping: ib_umem_get's FOLL_LONGTERM pin is refused too (errata §11).
    expect(names).toContain('a pinned RDMA MR over nvme1\'s CMB (ib_umem_get pins FOLL_LONGTERM, never FOLL_PCI_P2PDMA): -121');
    expect(r.mm.gupEremoteio).toBe(2);
    expect(nvme(r).p2pWrites).toBeGreaterThan(0);
    expect(r.check.stats.p2pAccesses).toBeGreaterThan(0);
    // The data went host → blocks 0–7 → nvme1's CMB → blocks 100–107 → host: the checker read blocks 100–107 back.
    expect(r.check.stats.blockReads).toBeGreaterThan(0);
    expect((r.devices.rdma0 as Figures).dmabufMoveNotifies).toBe(1);
  });

  it('whitelisting the host bridge lets the ACS-redirected and the other-root-port CMBs through', () => {
    const dir = tmp();
    const text = fs.readFileSync(fileURLToPath(new URL('../scenarios/p2p.yaml', import.meta.url)), 'utf8')
      .replace('machine: { frames: 256,', 'machine: { pci: { hostBridgeWhitelisted: true }, frames: 256,');
    fs.writeFileSync(path.join(dir, 'p2p-wl.yaml'), text);
    const r = svmsim('run', path.join(dir, 'p2p-wl.yaml'), '--json');
    expect(r.code).toBe(1); // the EREMOTEIO expectations are now unmet
    const rep = JSON.parse(r.out) as RunReport;
    expect(rep.check.violations).toEqual([]);
    expect(nvme(rep).dioEremoteio).toBe(0);
    expect(rep.mm.gupEremoteio).toBe(2); // nvme4's queue still cannot, nor the RDMA MR: mm's gup refuses the pages
  });
});

describe('the checker and unsafe-nvme (seeded LocalScheduler)', () => {
  it('catches unsafe-nvme (unpins at submit) on every seed; the safe driver has zero violations and balanced pins on every seed', async () => {
    for (let seed = 1; seed <= 12; seed++) {
      const bad = await run(fixture('nvme-dio-race.yaml'), 'unsafe-nvme', seed);
      expect(bad.r.check.violations.some((v) => v.startsWith('unpinned_dma')), `seed ${seed}`).toBe(true);
      const good = await run(fixture('nvme-dio-race.yaml'), 'safe', seed);
      expect(good.r.check.violations, `seed ${seed}`).toEqual([]);
      expect(nvme(good.r).pinsHeld).toBe(0);
      const b = pinBalance(good.dir);
      expect(b.pinned, `seed ${seed}`).toBeGreaterThan(0);
      expect(b.unpinned, `seed ${seed}`).toBe(b.pinned);
    }
  }, 300_000);

  it('balances pins on the dead controller path (every request failed with -EIO still unpins)', async () => {
    const { r, dir } = await run('nvme-reset', 'dead', 3);
    expect(nvme(r).dioErrors).toBeGreaterThan(0);
    const b = pinBalance(dir);
    expect(b.unpinned).toBe(b.pinned);
    expect(r.check.violations).toEqual([]);
    // svmsim check reads the same trace and says how many writes failed.
    const c = svmsim('check', dir);
    expect(c.code).toBe(0);
    expect(c.out).toContain(`writes acknowledged, ${nvme(r).dioFailedWrites} failed (reported to their callers as failed`);
  }, 120_000);

  it('svmsim check of an unsafe-nvme trace fails naming unpinned_dma; of a safe one passes', () => {
    const dir = tmp();
    expect(svmsim('run', fixture('nvme-dio-race.yaml'), '--policy', 'nvme0=unsafe-nvme', '--trace', path.join(dir, 'bad')).code).toBe(1);
    const bad = svmsim('check', path.join(dir, 'bad'));
    expect(bad.code).toBe(1);
    expect(bad.out).toMatch(/unpinned_dma: nvme0 dma_(read|write) at t=\d+: pid 1 addr 0x[0-9a-f]+ pfn 0x[0-9a-f]+: a bio's DMA to a frame that holds no pin/);
    expect(svmsim('run', fixture('nvme-dio-race.yaml'), '--trace', path.join(dir, 'good')).code).toBe(0);
    expect(svmsim('check', path.join(dir, 'good')).code).toBe(0);
    const a = svmsim('analyze', path.join(dir, 'good'));
    expect(a.code).toBe(0);
    expect(a.out).toMatch(/nvme_dio\s+app → nvme0/);
  }, 120_000);
});

describe('thread mode: what holds under any interleaving', () => {
  it('direct-io-vs-migration, nvme-reset (hang) and p2p end with zero violations, no pin held, every I/O answered', () => {
    for (const [source, policy] of [['direct-io-vs-migration', 'safe'], ['nvme-reset', 'hang'], ['p2p', 'safe']] as const) {
      // Thread mode loads the compiled actors: through the CLI.
      const dir = tmp();
      const out = svmsim('run', source, '--threads', '--policy', `nvme0=${policy}`, '--trace', dir, '--json');
      expect(out.code, `${source}: ${out.err}`).toBe(0);
      const r = JSON.parse(out.out) as RunReport;
      expect(r.failed, source).toBeUndefined();
      expect(r.check.violations, source).toEqual([]);
      expect(nvme(r).pinsHeld, source).toBe(0);
      expect(nvme(r).dioWaits, source).toBe(0);
      const b = pinBalance(dir);
      expect(b.unpinned, source).toBe(b.pinned);
    }
  }, 300_000);
});

describe('bad NVMe scenario input exits 2 naming the field', () => {
  const write = (body: string) => {
    const f = path.join(tmp(), 'bad.yaml');
    fs.writeFileSync(f, body);
    return f;
  };
  const base = (device: string, step: string) => `devices:\n  - ${device}\nprocesses:\n  - { name: app, vmas: [{ name: buf, pages: 4 }] }\nphases:\n  - script: { process: app, steps: [${step}] }\n`;
  it.each([
    [base('{ id: nvme0, kind: nvme, slot: bus }', '{ dio: { device: nvme0, io: read, vma: buf } }'), /devices\[0\]\.slot: "bus" is not one of switch, switch-acs, root-port/],
    [base('{ id: nvme0, kind: nvme, policy: unsafe }', '{ dio: { device: nvme0, io: read, vma: buf } }'), /devices\[0\]\.policy: "unsafe" is not one of safe, lost-interrupts, hang, dead, unsafe-nvme/],
    [base('{ id: gpu0, kind: gpu, cmbPages: 8 }', '{ sleep: 1ms }'), /devices\[0\]\.cmbPages: 8: cmbPages applies to nvme devices only/],
    [base('{ id: nvme0, kind: nvme }', '{ dio_p2p: { device: nvme0, io: read, provider: nvme0 } }'), /dio_p2p\.provider: "nvme0" is not an nvme device with a CMB \(cmbPages\)/],
    [base('{ id: nvme0, kind: nvme }', '{ dio: { device: nvme0, io: trim, vma: buf } }'), /dio\.io: "trim" is not one of read, write/],
  ])('%#', (yaml, message) => {
    const r = svmsim('run', write(yaml));
    expect(r.code).toBe(2);
    expect(r.err).toMatch(message);
  });
});

describe("the README's NVMe example", () => {
  it('runs with every expectation met and the checker satisfied', () => {
    const readme = fs.readFileSync(fileURLToPath(new URL('../README.md', import.meta.url)), 'utf8');
    const from = readme.indexOf("A scenario's own NVMe controllers");
    const yaml = /```yaml\n([\s\S]*?)```/.exec(readme.slice(from))![1];
    const file = path.join(tmp(), 'readme-nvme.yaml');
    fs.writeFileSync(file, yaml);
    const r = svmsim('run', file, '--json');
    expect(r.code, r.err).toBe(0);
    const rep = JSON.parse(r.out) as RunReport;
    expect(rep.steps.length).toBe(4);
    expect(rep.check.violations).toEqual([]);
    // The words went host → blocks 0–7 → nvme1's CMB, and blocks 0–7 → host again: the same words.
    expect(rep.steps[3].got.data).toEqual(rep.steps[0].got.data);
  });
});

describe('move_notify during I/O (the out-of-tree NVMe dma-buf importer into a VRAM BO)', () => {
  it('safe: the read in flight holds the move until it ends, and the data follows the BO to its new placement; over seeds', async () => {
    let waited = 0;
    for (let seed = 1; seed <= 8; seed++) {
      const { r } = await run(fixture('nvme-move-notify.yaml'), 'safe', seed);
      expect(r.check.violations, `seed ${seed}`).toEqual([]);
      expect(r.expectFailures, `seed ${seed}`).toBe(0);
      expect(nvme(r).dmabufMoveNotifies, `seed ${seed}`).toBe(1);
      waited += nvme(r).dmabufMoveNotifyWaits;
      // host → blocks 0–15 → the BO (moved meanwhile) → blocks 100–115 → host: the same words.
      const got = (name: string) => r.steps.find((s) => s.step.endsWith(name))!.got.data;
      expect(got('and read them back into host memory'), `seed ${seed}`).toEqual(got('store 0'));
    }
    expect(waited).toBeGreaterThan(0); // at least one seed had the move_notify arrive during the read
  }, 120_000);

  it('unsafe-nvme answers move_notify at once: its DMA into the old placement is a stale translation', async () => {
    let caught = 0;
    for (let seed = 1; seed <= 8; seed++) {
      const { r } = await run(fixture('nvme-move-notify.yaml'), 'unsafe-nvme', seed);
      if (r.check.violations.some((v) => v.startsWith('stale_translation') && v.includes('p2p write'))) caught++;
    }
    expect(caught).toBeGreaterThan(0);
  }, 120_000);

  it('a dio_dmabuf step on a controller without the importer is refused at load (exit 2)', () => {
    const dir = tmp();
    const text = fs.readFileSync(fixture('nvme-move-notify.yaml'), 'utf8').replace('dmabufImporter: true', 'dmabufImporter: false');
    fs.writeFileSync(path.join(dir, 'x.yaml'), text);
    const r = svmsim('run', path.join(dir, 'x.yaml'));
    expect(r.code).toBe(2);
    expect(r.err).toMatch(/dio_dmabuf\.device: "nvme0" is not an nvme device with the dma-buf importer/);
  });
});

describe('the NVMe-oF target over RDMA (nvmet-rdma): a NIC writing into a CMB', () => {
  it('stages a remote host\'s I/O in the CMB both reach, falls back to system memory, refuses a namespace it cannot serve; the data round-trips', async () => {
    for (const seed of [1, 2, 3]) {
      const { r } = await run(fixture('nvmet-p2p.yaml'), 'safe', seed);
      expect(r.steps.filter((s) => s.failures.length > 0).map((s) => `${s.step}: ${s.failures.join('; ')}`)).toEqual([]);
      expect(r.check.violations).toEqual([]);
      // auto, NIC and namespace behind the one switch: nvme1's CMB; the group's second 12-page
      // buffer finds it full (pci_p2pmem_alloc_sgl fails) and goes to system memory.
      expect(nvme(r).nvmetP2pDev).toBe('nvme1');
      expect(nvme(r).nvmetP2pmemSgls).toBe(4);
      expect(nvme(r).nvmetP2pAllocFailed).toBe(2);
      expect(nvme(r).nvmetSystemSgls).toBe(2);
      expect((r.devices.rdma0 as Figures).rdmaRwP2pPages).toBe(8 + 8 + 12 + 12);
      // Every SGL page went back to the provider's pool.
      expect(nvme(r, 'nvme1').cmbPagesAllocated).toBe(0);
      // The NIC on its own root port: no provider both reach, system memory only.
      expect(nvme(r, 'nvme2').nvmetP2pDev).toBe('none');
      expect(nvme(r, 'nvme2').nvmetSystemSgls).toBe(2);
      expect((r.devices.rdma1 as Figures).rdmaRwP2pPages).toBe(0);
      // nvmet_p2pmem_ns_enable refused the namespace: a provider across an ACS port, a queue without P2P.
      expect(nvme(r, 'nvme3').nvmetEnableRet).toBe(-22);
      expect(nvme(r, 'nvme5').nvmetEnableRet).toBe(-22);
      expect(nvme(r, 'nvme6').nvmetP2pDev).toBe('none');
      // The checker read the target's blocks back against the acknowledged writes.
      expect(r.check.stats.blockReads).toBeGreaterThan(0);
    }
  });

  it('p2p: the remote host\'s write lands in nvme5\'s CMB by the NIC\'s RDMA READ, and its read comes back the same words', () => {
    const r = svmsim('run', 'p2p', '--json');
    expect(r.code, r.err).toBe(0);
    const rep = JSON.parse(r.out) as RunReport;
    const read = rep.steps.find((s) => s.step.startsWith('the remote host reads them back'))!;
    expect(read.got.data).toEqual([11, 12, 13, 14, 15, 16, 17, 18]);
    expect(nvme(rep).nvmetP2pmemSgls).toBe(2);
    expect(nvme(rep).nvmetInlineSgls).toBe(1);
    expect(nvme(rep, 'nvme5').cmbPagesAllocated).toBe(0);
  });

  it.each([
    ['{ id: nvme0, kind: nvme, nvmet: { nic: rdma9 } }', '{ sleep: 1ms }', /devices\[0\]\.nvmet\.nic: "rdma9" is not a declared rdma device/],
    ['{ id: nvme0, kind: nvme, nvmet: { nic: rdma0, p2pmem: nvme0 } }', '{ sleep: 1ms }', /devices\[0\]\.nvmet\.p2pmem: "nvme0" is not off, auto, or an nvme device with a CMB/],
    ['{ id: nvme0, kind: nvme }', '{ nvmet: { device: nvme0, io: read } }', /nvmet\.device: "nvme0" is not an nvme device exported by an NVMe-oF target/],
    ['{ id: nvme0, kind: nvme, nvmet: { nic: rdma0 } }', '{ nvmet: { device: nvme0, io: write, pages: 2, values: [1] } }', /nvmet\.values: .*one per page: 2 words/],
  ])('bad nvmet input exits 2 naming the field (%#)', (device, step, message) => {
    const f = path.join(tmp(), 'bad.yaml');
    fs.writeFileSync(f, `devices:\n  - ${device}\n  - { id: rdma0, kind: rdma, policy: odp }\nprocesses:\n  - { name: app, vmas: [{ name: buf, pages: 4 }] }\nphases:\n  - script: { process: app, steps: [${step}] }\n`);
    const r = svmsim('run', f);
    expect(r.code).toBe(2);
    expect(r.err).toMatch(message);
  });
});
