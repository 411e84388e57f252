// nvme_timeout and reset: poll, abort, reset at 2 × io_timeout, requeue with pins kept, and a dead
// controller failing everything with -EIO and every pin dropped.
import { describe, expect, it } from 'vitest';
import { DmaChecker, EIO, NvmeController, PinTable, iomap_dio_rw, NVME_IO_TIMEOUT_NS, type DioHost } from '@svmsim/nvme';

function host(ctrl: NvmeController, unsafe = false): DioHost {
  const memory = new Float64Array(1024);
  for (let i = 0; i < memory.length; i++) memory[i] = 1000 + i;
  return { ctrl, pins: new PinTable(1024), memory, checker: new DmaChecker(), queueSupportsP2p: false, unsafe };
}

describe('timeout and reset', () => {
  it('a lost interrupt is found by the timeout poll, without abort or reset', () => {
    const ctrl = new NvmeController();
    const h = host(ctrl);
    ctrl.failAt(0, 'lost-interrupts');
    const rets: number[] = [];
    iomap_dio_rw(h, false, 1, 0, Uint32Array.of(5), (r) => rets.push(r));
    ctrl.run();
    expect(rets).toEqual([0]);
    expect(ctrl.stats.polledCompletions).toBe(1);
    expect(ctrl.stats.resets).toBe(0);
    expect(ctrl.now).toBe(NVME_IO_TIMEOUT_NS);
  });

  it('a hung controller: abort at 30 s, reset at 60 s, the I/O requeued and completed with its pins kept', () => {
    const ctrl = new NvmeController();
    const h = host(ctrl);
    ctrl.failAt(0, 'hang');
    const rets: number[] = [];
    const pfns = Uint32Array.of(10, 11, 12);
    iomap_dio_rw(h, true, 1, 0, pfns, (r) => rets.push(r));
    iomap_dio_rw(h, false, 1, 8, Uint32Array.of(20), (r) => rets.push(r));
    ctrl.run(NVME_IO_TIMEOUT_NS + 1);
    expect(ctrl.stats.aborts).toBe(2);
    expect(ctrl.stats.resets).toBe(0);
    ctrl.run(2 * NVME_IO_TIMEOUT_NS + 1);
    expect(ctrl.stats.resets).toBe(1);
    expect(rets).toEqual([]);
    expect(h.pins.pinsHeld).toBe(4); // requeued: still pinned through the reset
    ctrl.run();
    expect(rets.sort()).toEqual([0, 0]);
    expect(ctrl.stats.retries).toBe(2);
    expect(h.pins.pinsHeld).toBe(0);
    expect(h.checker.violations).toBe(0);
    expect(ctrl.namespaces[0]!.block(8)).toBe(1020);
    expect(ctrl.idle()).toBe(true);
  });

  it('a dead controller: every request fails with -EIO, failed writes are counted, no pin is left', () => {
    const ctrl = new NvmeController({ queueDepth: 2 });
    const h = host(ctrl);
    ctrl.failAt(0, 'dead');
    const rets: number[] = [];
    for (let i = 0; i < 5; i++) iomap_dio_rw(h, i % 2 === 0, 1, i, Uint32Array.of(100 + i), (r) => rets.push(r));
    ctrl.run();
    expect(rets).toEqual(new Array(5).fill(-EIO));
    expect(h.pins.pinsHeld).toBe(0);
    expect(h.checker.writesFailed).toBe(2);
    expect(h.checker.writesAcked).toBe(0);
    expect(Array.from(ctrl.namespaces[0]!.read(0, 5))).toEqual([0, 0, 0, 0, 0]);
    expect(ctrl.state).toBe('DEAD');
    expect(ctrl.idle()).toBe(true);
  });

  it('REQ_FAILFAST requests are not retried after the reset', () => {
    const ctrl = new NvmeController();
    ctrl.failAt(0, 'hang');
    const rets: number[] = [];
    ctrl.submit(1, { opcode: 2, nsid: 1, slba: 0, nlb: 1, failfast: true }, { segs: [{ addr: 0, len: 4096 }] }, (c) => rets.push(c.ret));
    ctrl.run();
    expect(rets).toEqual([-EIO]);
    expect(ctrl.stats.resets).toBe(1);
  });
});

describe('pins', () => {
  it('reads pin with FOLL_WRITE and dirty at release; pin/unpin balance; time-weighted pins', () => {
    const ctrl = new NvmeController({ channels: 1 });
    const h = host(ctrl);
    ctrl.namespaces[0]!.write(0, [7, 8]);
    iomap_dio_rw(h, true, 1, 0, Uint32Array.of(3, 4), () => {});
    expect(h.pins.pinsHeld).toBe(2);
    ctrl.run();
    expect(h.pins.pinsHeld).toBe(0);
    expect(h.pins.pinsHeldMax).toBe(2);
    expect([h.memory[3], h.memory[4]]).toEqual([7, 8]);
    expect([h.pins.dirty[3], h.pins.dirty[4]]).toEqual([1, 1]);
    expect(h.pins.timeWeightedPins(ctrl.now)).toBeCloseTo(2, 5);
    expect(h.checker.violations).toBe(0);
  });

  it('unsafe-nvme (unpins before the DMA) is caught by the checker', () => {
    const ctrl = new NvmeController();
    const h = host(ctrl, true);
    iomap_dio_rw(h, true, 1, 0, Uint32Array.of(3, 4), () => {});
    iomap_dio_rw(h, false, 1, 2, Uint32Array.of(5), () => {});
    ctrl.run();
    expect(h.checker.violations).toBe(3);
    expect(h.checker.firstViolations[0]).toMatch(/holds no pin/);
  });
});
