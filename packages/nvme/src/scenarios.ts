// The NVMe scenarios, each a set of configurations run on the controller's virtual clock with a
// seeded generator (deterministic: the same seed gives the same figures):
//   direct-io-vs-migration  O_DIRECT reads and writes holding short FOLL_PIN pins while NUMA
//                           migration and writeback pass over the same pages
//   nvme-reset              a controller that stops answering mid-run (lost interrupts, hang, dead)
//   p2p                     O_DIRECT reads into another controller's CMB (published p2pmem),
//                           allowed or refused by the PCI topology
// Each returns one row of figures per configuration.
import { NvmeController, type NvmeFailure } from './controller.js';
import { DmaChecker } from './dma-checker.js';
import { iomap_dio_rw, type DioHost } from './dio.js';
import { PinTable } from './direct-io.js';
import { migrate_page_under_pin, type PageKind } from './migration-meets-pins.js';
import { latencyFigures } from './nvme-actor.js';
import { calc_map_type_and_dist, pciTopology, type PciTopology, type P2pMapType } from './p2pdma.js';
import { P2pMemProvider } from './cmb.js';
import { EREMOTEIO } from './protocol.js';

export interface NvmeFigures {
  config: string;
  ios: number;
  iops: number;
  latencyP50Ns: number;
  latencyP99Ns: number;
  pinsHeldMax: number;
  pinsHeldTimeWeighted: number;
  migrationRetries: number;
  migrationPagesSkipped: number;
  migrationsFailed: number;
  writebackUnderDma: number;
  ioErrors: number;
  failedWrites: number;
  resets: number;
  violations: number;
  pinsLeft: number;
  [extra: string]: number | string;
}

/** mulberry32: a small seeded generator for the workloads. */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const BUFFER_PAGES = 256;
const NS_BLOCKS = 4096;

function newHost(ctrl: NvmeController, unsafe: boolean, pages = BUFFER_PAGES, mapP2p?: (pfns: Uint32Array) => number, queueSupportsP2p = false): DioHost {
  const memory = new Float64Array(pages);
  for (let i = 0; i < pages; i++) memory[i] = 1 + i;
  return { ctrl, pins: new PinTable(pages), memory, checker: new DmaChecker(), queueSupportsP2p, unsafe, ...(mapP2p ? { mapP2p } : {}) };
}

function figures(config: string, ctrl: NvmeController, h: DioHost, ios: number, extra: Partial<NvmeFigures> = {}): NvmeFigures {
  const lat = latencyFigures(ctrl.stats.latenciesNs, ctrl.now);
  return {
    config,
    ios,
    ...lat,
    pinsHeldMax: h.pins.pinsHeldMax,
    pinsHeldTimeWeighted: Math.round(h.pins.timeWeightedPins(ctrl.now) * 100) / 100,
    migrationRetries: 0,
    migrationPagesSkipped: 0,
    migrationsFailed: 0,
    writebackUnderDma: 0,
    ioErrors: ctrl.stats.ioErrors,
    failedWrites: h.checker.writesFailed,
    resets: ctrl.stats.resets,
    violations: h.checker.violations,
    pinsLeft: h.pins.pinsHeld,
    ...extra,
  };
}

/** One O_DIRECT I/O of 1–8 contiguous pages of the buffer at a random block: 70 % reads. */
function randomIo(h: DioHost, r: () => number, done: (ret: number) => void): void {
  const n = 1 + Math.floor(r() * 8);
  const first = Math.floor(r() * (BUFFER_PAGES - n));
  const pfns = Uint32Array.from({ length: n }, (_, i) => first + i);
  iomap_dio_rw(h, r() < 0.7, 1, Math.floor(r() * (NS_BLOCKS - n)), pfns, done);
}

export interface DirectIoVsMigrationConfig {
  readonly name: string;
  readonly pageKind: PageKind;
  readonly reason: 'compaction' | 'numa';
  readonly unsafe: boolean;
}

export const DIRECT_IO_VS_MIGRATION: readonly DirectIoVsMigrationConfig[] = [
  { name: 'file-pages/numa', pageKind: 'file', reason: 'numa', unsafe: false },
  { name: 'anon-pages/compaction', pageKind: 'anon-exclusive', reason: 'compaction', unsafe: false },
  { name: 'unsafe-nvme', pageKind: 'file', reason: 'numa', unsafe: true },
];

/** 2000 I/Os, one every 10 µs; a migration pass over 32 random pages every 50 µs; writeback every 200 µs. */
export function runDirectIoVsMigration(cfg: DirectIoVsMigrationConfig, seed = 1): NvmeFigures {
  const r = rng(seed);
  const ctrl = new NvmeController({ channels: 8, queueDepth: 64, namespaceBlocks: [NS_BLOCKS] });
  const h = newHost(ctrl, cfg.unsafe);
  const ios = 2000;
  let retries = 0;
  let skipped = 0;
  let failed = 0;
  let wbUnderDma = 0;
  for (let i = 0; i < ios; i++) {
    const t = i * 10_000;
    ctrl.run(t);
    randomIo(h, r, () => {});
    if (i % 5 === 4) {
      for (let k = 0; k < 32; k++) {
        const pfn = Math.floor(r() * BUFFER_PAGES);
        const o = migrate_page_under_pin(h.pins.isDmaPinned(pfn), cfg.pageKind, cfg.reason);
        if (o.skipped) skipped++;
        else if (!o.migrated) {
          failed++;
          retries += o.attempts - 1;
        }
      }
    }
    if (i % 20 === 19) {
      // Writeback does not look at pins (errata §9): it cleans the page while DMA may still write it.
      for (let pfn = 0; pfn < BUFFER_PAGES; pfn++) {
        if (!h.pins.dirty[pfn]) continue;
        if (h.pins.isDmaPinned(pfn)) wbUnderDma++;
        h.pins.dirty[pfn] = 0;
      }
    }
  }
  ctrl.run();
  return figures(cfg.name, ctrl, h, ios, { migrationRetries: retries, migrationPagesSkipped: skipped, migrationsFailed: failed, writebackUnderDma: wbUnderDma });
}

export interface NvmeResetConfig {
  readonly name: string;
  readonly failure: NvmeFailure | undefined;
}

export const NVME_RESET: readonly NvmeResetConfig[] = [
  { name: 'healthy', failure: undefined },
  { name: 'lost-interrupts', failure: 'lost-interrupts' },
  { name: 'hang', failure: 'hang' },
  { name: 'dead', failure: 'dead' },
];

/** 500 I/Os, one every 20 µs; the controller fails at 2 ms. */
export function runNvmeReset(cfg: NvmeResetConfig, seed = 1): NvmeFigures {
  const r = rng(seed);
  const ctrl = new NvmeController({ channels: 8, queueDepth: 64, namespaceBlocks: [NS_BLOCKS] });
  if (cfg.failure) ctrl.failAt(2_000_000, cfg.failure);
  const h = newHost(ctrl, false);
  const ios = 500;
  for (let i = 0; i < ios; i++) {
    ctrl.run(i * 20_000);
    randomIo(h, r, () => {});
  }
  ctrl.run();
  return figures(cfg.name, ctrl, h, ios, { timeouts: ctrl.stats.timeouts, aborts: ctrl.stats.aborts, retried: ctrl.stats.retries, polled: ctrl.stats.polledCompletions });
}

// ---- p2p ----

/**
 * rc0 ── rp0 ── sw-up ─┬─ sw-dp0 ── nvme0   (the controller doing the I/O)
 *                      └─ sw-dp1 ── nvme1   (its CMB published as p2pmem)
 *        rp1 ── nvme2                       (a CMB behind another root port)
 */
export function p2pTopology(acsRedirect: boolean, cpuSupportsP2pdma: boolean, whitelisted: boolean): PciTopology {
  return pciTopology(
    [
      { name: 'rp0', hostBridge: 'rc0' },
      { name: 'rp1', hostBridge: 'rc0' },
      { name: 'sw-up', upstream: 'rp0', hostBridge: 'rc0' },
      { name: 'sw-dp0', upstream: 'sw-up', hostBridge: 'rc0', acsRedirect },
      { name: 'sw-dp1', upstream: 'sw-up', hostBridge: 'rc0', acsRedirect },
      { name: 'nvme0', upstream: 'sw-dp0', hostBridge: 'rc0' },
      { name: 'nvme1', upstream: 'sw-dp1', hostBridge: 'rc0' },
      { name: 'nvme2', upstream: 'rp1', hostBridge: 'rc0' },
    ],
    whitelisted ? ['rc0'] : [],
    cpuSupportsP2pdma,
  );
}

export interface P2pConfig {
  readonly name: string;
  readonly provider: 'nvme1' | 'nvme2';
  readonly acsRedirect: boolean;
  readonly cpuSupportsP2pdma: boolean;
  readonly whitelisted: boolean;
  /** The block queue of nvme0 supports P2P (else gup refuses the P2P pages). */
  readonly queueSupportsP2p: boolean;
}

export const P2P: readonly P2pConfig[] = [
  { name: 'same-switch', provider: 'nvme1', acsRedirect: false, cpuSupportsP2pdma: false, whitelisted: false, queueSupportsP2p: true },
  { name: 'acs-redirect', provider: 'nvme1', acsRedirect: true, cpuSupportsP2pdma: false, whitelisted: false, queueSupportsP2p: true },
  { name: 'acs-redirect/whitelisted', provider: 'nvme1', acsRedirect: true, cpuSupportsP2pdma: false, whitelisted: true, queueSupportsP2p: true },
  { name: 'other-root-port', provider: 'nvme2', acsRedirect: false, cpuSupportsP2pdma: false, whitelisted: false, queueSupportsP2p: true },
  { name: 'other-root-port/amd-zen', provider: 'nvme2', acsRedirect: false, cpuSupportsP2pdma: true, whitelisted: false, queueSupportsP2p: true },
  { name: 'queue-without-p2p', provider: 'nvme1', acsRedirect: false, cpuSupportsP2pdma: false, whitelisted: false, queueSupportsP2p: false },
];

/** 200 O_DIRECT reads by nvme0 of 1–8 blocks into pages of the provider's CMB, one every 20 µs. */
export function runP2p(cfg: P2pConfig, seed = 1): NvmeFigures {
  const r = rng(seed);
  const topo = p2pTopology(cfg.acsRedirect, cfg.cpuSupportsP2pdma, cfg.whitelisted);
  const { map, dist } = calc_map_type_and_dist(topo, cfg.provider, 'nvme0');
  const cmb = new P2pMemProvider(cfg.provider, 64);
  cmb.publish(true);
  const first = cmb.alloc(64);
  const ctrl = new NvmeController({ channels: 8, queueDepth: 64, namespaceBlocks: [NS_BLOCKS] });
  ctrl.namespaces[0]!.write(0, Array.from({ length: NS_BLOCKS }, (_, b) => 10_000 + b));
  const mapType: P2pMapType = map;
  const h = newHost(ctrl, false, 64, () => (mapType === 'PCI_P2PDMA_MAP_NOT_SUPPORTED' ? -EREMOTEIO : 0), cfg.queueSupportsP2p);
  h.pins.p2p.fill(1); // every page of this buffer is the provider's p2pmem (MEMORY_DEVICE_PCI_P2PDMA)
  const ios = 200;
  let refused = 0;
  let wrong = 0;
  for (let i = 0; i < ios; i++) {
    ctrl.run(i * 20_000);
    const n = 1 + Math.floor(r() * 8);
    const page = first + Math.floor(r() * (64 - n));
    const slba = Math.floor(r() * (NS_BLOCKS - n));
    const pfns = Uint32Array.from({ length: n }, (_, k) => page + k);
    iomap_dio_rw(h, true, 1, slba, pfns, (ret) => {
      if (ret === -EREMOTEIO) refused++;
      else if (ret === 0) for (let k = 0; k < n; k++) if (h.memory[page + k] !== 10_000 + slba + k) wrong++;
    });
  }
  ctrl.run();
  return figures(cfg.name, ctrl, h, ios, { mapType: map.replace('PCI_P2PDMA_MAP_', ''), distance: dist, eremoteio: refused, wrongContent: wrong, ioErrors: ctrl.stats.ioErrors + refused });
}

export const NVME_SCENARIOS = {
  'direct-io-vs-migration': () => DIRECT_IO_VS_MIGRATION.map((c) => runDirectIoVsMigration(c)),
  'nvme-reset': () => NVME_RESET.map((c) => runNvmeReset(c)),
  p2p: () => P2P.map((c) => runP2p(c)),
} as const;
export type NvmeScenarioName = keyof typeof NVME_SCENARIOS;
