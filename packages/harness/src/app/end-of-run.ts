// The end of a run, as kernel-mm's mirror stress does it: once nothing is in flight, ask mm for its
// dump (every mapped page of every live process), resolve the pages it found in device memory
// (`where: 'device'`, value = device pfn) with the devices' dmirror_devmem_read (gpu_devmem_read
// for GPU VRAM), and hand the final pages (what checkTrace compares its model with) to `done`,
// which ends the run. Several devices: each is asked for every device pfn and answers null for
// those not its own.
// Before the dump, every RDMA MR is deregistered and every QP destroyed (rdma.ts freeRdma), then
// every GPU BO is freed (GEM_CLOSE, after its fences): a `pin` BO's or pinned MR's pages are
// unpinned (dirtied) and interval notifiers are removed, so the dump sees no device pins. MRs go
// first: a dma-buf MR holds the VRAM BO it imports. Last, each nvme device drains: the unpins its
// completions sent mm reach mm before the dump.
import type { Dump, DumpResult } from '@svmsim/kernel-mm';
import type { FinalPage } from '@svmsim/kernel-mm/checker';
import type { DmirrorDevmemRead } from '@svmsim/kernel-mm/dmirror';
import type { GpuBoFree, GpuDevmemRead } from '@svmsim/gpu-driver';
import type { NvmeDrain } from '@svmsim/nvme/dio-protocol';
import { freeRdma } from './rdma.js';
import type { App } from './state.js';

/** gpu_bo_free of every BO a VMA record or a gpu_alloc holds, one after another; then `done`. */
export function freeGpuBos(app: App, done: () => void): void {
  const seen = new Set<string>();
  const bos: { device: string; handle: number }[] = [];
  for (const p of app.procs.values()) {
    for (const b of p.buffers.values()) bos.push(b);
    for (const v of p.vmas.values()) {
      // A fork child shares its parent's records: each BO once.
      if (v.bo && !seen.has(`${v.bo.device}/${v.bo.handle}`)) {
        seen.add(`${v.bo.device}/${v.bo.handle}`);
        bos.push(v.bo);
      }
    }
  }
  const next = (i: number): void => {
    if (i === bos.length) return done();
    app.io.call(bos[i].device, { type: 'gpu_bo_free', handle: bos[i].handle } satisfies GpuBoFree, () => next(i + 1));
  };
  next(0);
}

/**
 * nvme_drain of every nvme device, one after another; then `done`: the unpins their completions
 * sent mm have all reached it before the dump and its leak check (dio-protocol.ts NvmeDrain).
 */
function drainNvme(app: App, done: () => void): void {
  const nvmes = app.scenario.devices.filter((d) => d.kind === 'nvme').map((d) => d.id);
  const next = (i: number): void => {
    if (i === nvmes.length) return done();
    app.io.call(nvmes[i]!, { type: 'nvme_drain' } satisfies NvmeDrain, () => next(i + 1));
  };
  next(0);
}

/** Dump and resolve; `state` tells each stage as it starts; `fail` if the dump shows the run did not drain (a migration still open). */
export function dumpFinalPages(app: App, state: (s: 'dump' | 'devmem') => void, done: (pages: FinalPage[]) => void, fail: (reason: string) => void): void {
  state('dump');
  freeRdma(app, () => freeGpuBos(app, () => drainNvme(app, () => dumpOnly(app, state, done, fail))));
}

function dumpOnly(app: App, state: (s: 'dump' | 'devmem') => void, done: (pages: FinalPage[]) => void, fail: (reason: string) => void): void {
  app.io.call(app.mm, { type: 'dump' } satisfies Dump, (r) => {
    const pages = (r as unknown as DumpResult).pages ?? [];
    const migrating = pages.filter((p) => p.where === 'migrating');
    if (migrating.length > 0) {
      const first = migrating[0];
      return fail(`the dump found ${migrating.length} page(s) under a migration still open (first: pid ${first.pid} addr 0x${first.addr.toString(16)}): a device or mm had not finished a migration when the run drained`);
    }
    const finalPages = pages.map(({ pid, addr, value }) => ({ pid, addr, value }));
    const onDevice = pages.flatMap((p, index) => (p.where === 'device' ? [{ index, devPfn: p.value }] : []));
    const dev_pfns = onDevice.map((d) => d.devPfn);
    const asks: [string, DmirrorDevmemRead | GpuDevmemRead][] = [
      ...app.dmirrors().map((dev): [string, DmirrorDevmemRead] => [dev, { type: 'dmirror_devmem_read', dev_pfns }]),
      ...app.gpus().map((dev): [string, GpuDevmemRead] => [dev, { type: 'gpu_devmem_read', dev_pfns }]),
    ];
    if (onDevice.length === 0 || asks.length === 0) return done(finalPages);
    state('devmem');
    let left = asks.length;
    for (const [dev, msg] of asks) {
      app.io.call(dev, msg, (res) => {
        const values = (res.values ?? []) as (number | null)[];
        onDevice.forEach((d, i) => {
          if (typeof values[i] === 'number') finalPages[d.index].value = values[i];
        });
        if (--left === 0) done(finalPages);
      });
    }
  });
}
