// P2P DMA allowed and refused by the PCI topology (calc_map_type_and_dist), the published CMB
// found by distance, FOLL_PCI_P2PDMA at gup, and the scenarios' safety properties over seeds.
import { describe, expect, it } from 'vitest';
import {
  DIRECT_IO_VS_MIGRATION,
  EREMOTEIO,
  FOLL_PCI_P2PDMA,
  FOLL_PIN,
  FOLL_WRITE,
  NR_MAX_MIGRATE_PAGES_RETRY,
  NVME_RESET,
  P2P,
  P2pMemProvider,
  PinTable,
  calc_map_type_and_dist,
  dioGupFlags,
  migrate_page_under_pin,
  p2pTopology,
  pci_p2pdma_distance_many,
  pci_p2pmem_find_many,
  runDirectIoVsMigration,
  runNvmeReset,
  runP2p,
} from '@svmsim/nvme';

describe('pci p2pdma distance', () => {
  it('behind one switch: bus address, distance to the switch', () => {
    expect(calc_map_type_and_dist(p2pTopology(false, false, false), 'nvme1', 'nvme0')).toEqual({ map: 'PCI_P2PDMA_MAP_BUS_ADDR', dist: 4 });
  });
  it('an ACS-redirect port sends it through the host bridge: refused unless whitelisted or the CPU allows it', () => {
    expect(calc_map_type_and_dist(p2pTopology(true, false, false), 'nvme1', 'nvme0').map).toBe('PCI_P2PDMA_MAP_NOT_SUPPORTED');
    expect(calc_map_type_and_dist(p2pTopology(true, false, true), 'nvme1', 'nvme0').map).toBe('PCI_P2PDMA_MAP_THRU_HOST_BRIDGE');
    expect(calc_map_type_and_dist(p2pTopology(true, true, false), 'nvme1', 'nvme0').map).toBe('PCI_P2PDMA_MAP_THRU_HOST_BRIDGE');
  });
  it('different root ports share no upstream bridge: host bridge rules', () => {
    expect(calc_map_type_and_dist(p2pTopology(false, false, false), 'nvme2', 'nvme0').map).toBe('PCI_P2PDMA_MAP_NOT_SUPPORTED');
    expect(pci_p2pdma_distance_many(p2pTopology(false, false, false), 'nvme2', ['nvme0'])).toBe(-1);
    expect(pci_p2pdma_distance_many(p2pTopology(false, true, false), 'nvme2', ['nvme0'])).toBe(6);
  });
  it('a device is at distance 0 from itself', () => {
    expect(calc_map_type_and_dist(p2pTopology(false, false, false), 'nvme0', 'nvme0')).toEqual({ map: 'PCI_P2PDMA_MAP_BUS_ADDR', dist: 0 });
  });
  it('pci_p2pmem_find_many takes the closest published provider, never an unpublished one', () => {
    const topo = p2pTopology(false, true, false);
    const near = new P2pMemProvider('nvme1', 16);
    const far = new P2pMemProvider('nvme2', 16);
    far.publish(true);
    expect(pci_p2pmem_find_many(topo, [near, far], ['nvme0'])).toBe(far);
    near.publish(true);
    expect(pci_p2pmem_find_many(topo, [near, far], ['nvme0'])).toBe(near);
    expect(near.alloc(10)).toBe(0);
    expect(near.alloc(10)).toBe(-1);
    near.free(0, 10);
    expect(near.alloc(16)).toBe(0);
  });
});

describe('gup flags and P2P pages', () => {
  it('direct I/O pins FOLL_PIN, FOLL_WRITE only for reads, FOLL_PCI_P2PDMA only when the queue allows', () => {
    expect(dioGupFlags(true, false)).toBe(FOLL_PIN | FOLL_WRITE);
    expect(dioGupFlags(false, false)).toBe(FOLL_PIN);
    expect(dioGupFlags(false, true)).toBe(FOLL_PIN | FOLL_PCI_P2PDMA);
  });
  it('a P2P page without FOLL_PCI_P2PDMA fails the whole pin with -EREMOTEIO and pins nothing', () => {
    const pins = new PinTable(8);
    pins.p2p[3] = 1;
    expect(pins.pin(Uint32Array.of(2, 3), FOLL_PIN, 0)).toBe(-EREMOTEIO);
    expect(pins.pinsHeld).toBe(0);
    expect(pins.pin(Uint32Array.of(2, 3), FOLL_PIN | FOLL_PCI_P2PDMA, 0)).toBe(0);
    expect(pins.pinsHeld).toBe(2);
  });
});

describe('migration meets short pins', () => {
  it('a pinned file page is unmapped and retried NR_MAX_MIGRATE_PAGES_RETRY times; compaction skips a pinned anon page', () => {
    expect(migrate_page_under_pin(true, 'file', 'numa')).toEqual({ migrated: false, attempts: NR_MAX_MIGRATE_PAGES_RETRY, invalidations: NR_MAX_MIGRATE_PAGES_RETRY, skipped: false });
    expect(migrate_page_under_pin(true, 'anon-exclusive', 'compaction')).toMatchObject({ skipped: true, invalidations: 0 });
    expect(migrate_page_under_pin(false, 'file', 'numa')).toMatchObject({ migrated: true, attempts: 1 });
  });
});

describe('scenarios', () => {
  it('p2p: I/O succeeds with the right content where the topology allows, else every I/O gets -EREMOTEIO; no pin left', () => {
    for (const cfg of P2P) {
      const f = runP2p(cfg);
      expect(f.pinsLeft, cfg.name).toBe(0);
      expect(f.violations, cfg.name).toBe(0);
      expect(f.wrongContent, cfg.name).toBe(0);
      const allowed = cfg.queueSupportsP2p && f.mapType !== 'NOT_SUPPORTED';
      expect(f.eremoteio, cfg.name).toBe(allowed ? 0 : f.ios);
    }
  });
  it('direct-io-vs-migration: safe runs have no violation over seeds and short pins stall migration; unsafe-nvme is caught', () => {
    for (let seed = 1; seed <= 5; seed++) {
      for (const cfg of DIRECT_IO_VS_MIGRATION) {
        const f = runDirectIoVsMigration(cfg, seed);
        expect(f.pinsLeft).toBe(0);
        if (cfg.unsafe) expect(f.violations).toBeGreaterThan(0);
        else {
          expect(f.violations).toBe(0);
          expect(f.migrationRetries + f.migrationPagesSkipped).toBeGreaterThan(0);
        }
      }
    }
  });
  it('nvme-reset: every configuration ends with no pin and no outstanding I/O; hang retries, dead fails writes', () => {
    const byName = Object.fromEntries(NVME_RESET.map((c) => [c.name, runNvmeReset(c)]));
    for (const f of Object.values(byName)) expect([f.config, f.pinsLeft, f.violations]).toEqual([f.config, 0, 0]);
    expect(byName['hang']!.resets).toBe(1);
    expect(byName['hang']!.ioErrors).toBe(0);
    expect(byName['dead']!.ioErrors).toBeGreaterThan(0);
    expect(byName['dead']!.failedWrites).toBeGreaterThan(0);
    expect(byName['lost-interrupts']!.polled).toBeGreaterThan(0);
    expect(byName['lost-interrupts']!.resets).toBe(0);
  });
});
