// Queue semantics: tags and waiting submitters, completion in finish order, PRP/SGL shapes, namespaces.
import { describe, expect, it } from 'vitest';
import {
  EAGAIN,
  EIO,
  NvmeController,
  NvmeQueuePair,
  invalidCostField,
  nvme_cmd_read,
  nvme_cmd_write,
  nvme_map_data,
  nvme_pci_setup_prps,
  type NvmeCompletion,
} from '@svmsim/nvme';

const seg = (pfn: number, pages = 1) => ({ addr: pfn * 4096, len: pages * 4096 });

describe('queue pair tags', () => {
  it('a full queue makes the submitter wait, in FIFO order, and never drops', () => {
    const q = new NvmeQueuePair(1, 2);
    const got: number[] = [];
    q.getTag((t) => got.push(t));
    q.getTag((t) => got.push(t));
    q.getTag((t) => got.push(100 + t));
    q.getTag((t) => got.push(200 + t));
    expect(got.length).toBe(2);
    expect(q.waiting).toBe(2);
    q.putTag(got[0]!);
    expect(got[2]).toBe(100 + got[0]!);
    q.putTag(got[1]!);
    expect(got[3]).toBe(200 + got[1]!);
    expect(q.waiting).toBe(0);
  });
  it('depth past the CAP.MQES limit is refused by name', () => {
    expect(() => new NvmeQueuePair(1, 70000)).toThrow(/queue depth 70000/);
  });
});

describe('controller', () => {
  it('completes in order of finish, not of submission (a write overtakes a slower read)', () => {
    const c = new NvmeController({ channels: 4, queueDepth: 8 });
    const order: string[] = [];
    c.submit(1, { opcode: nvme_cmd_read, nsid: 1, slba: 0, nlb: 1 }, { segs: [seg(1)] }, () => order.push('read'));
    c.submit(1, { opcode: nvme_cmd_write, nsid: 1, slba: 1, nlb: 1, data: Float64Array.of(7) }, { segs: [seg(2)] }, () => order.push('write'));
    c.run();
    expect(order).toEqual(['write', 'read']);
    expect(c.namespaces[0]!.block(1)).toBe(7);
    expect(c.idle()).toBe(true);
  });
  it('with a queue of depth 2, 10 submissions all complete and the waits are counted', () => {
    const c = new NvmeController({ channels: 1, queueDepth: 2 });
    const done: NvmeCompletion[] = [];
    for (let i = 0; i < 10; i++) c.submit(1, { opcode: nvme_cmd_write, nsid: 1, slba: i, nlb: 1, data: Float64Array.of(i + 1) }, { segs: [seg(i)] }, (x) => done.push(x));
    expect(c.queues[1]!.waiting).toBe(8);
    c.run();
    expect(done.map((d) => d.ret)).toEqual(new Array(10).fill(0));
    expect(c.stats.submitWaits).toBe(8);
    expect(Array.from(c.namespaces[0]!.read(0, 10))).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
  });
  it('REQ_NOWAIT on a full queue gets -EAGAIN', () => {
    const c = new NvmeController({ queueDepth: 2 });
    const rets: number[] = [];
    for (let i = 0; i < 3; i++) c.submit(1, { opcode: nvme_cmd_read, nsid: 1, slba: 0, nlb: 1 }, { segs: [seg(i)] }, (x) => rets.push(x.ret), true);
    expect(rets).toEqual([-EAGAIN]);
    c.run();
    expect(rets.sort()).toEqual([-EAGAIN, 0, 0].sort());
  });
  it('an LBA past the namespace is an I/O error, not a write elsewhere', () => {
    const c = new NvmeController({ namespaceBlocks: [4] });
    const rets: number[] = [];
    c.submit(1, { opcode: nvme_cmd_write, nsid: 1, slba: 3, nlb: 2, data: Float64Array.of(1, 2) }, { segs: [seg(0, 2)] }, (x) => rets.push(x.ret));
    c.run();
    expect(rets).toEqual([-EIO]);
    expect(c.stats.failedWrites).toBe(1);
  });
});

describe('PRPs and SGLs (nvme_pci_setup_prps, nvme_pci_use_sgls)', () => {
  it('one page: PRP1 only; two pages: PRP1+PRP2; more: a list, chained every 511 entries', () => {
    expect(nvme_pci_setup_prps([seg(0)])).toEqual({ kind: 'prp', entries: 1, listPages: 0 });
    expect(nvme_pci_setup_prps([seg(0, 2)])).toEqual({ kind: 'prp', entries: 2, listPages: 0 });
    expect(nvme_pci_setup_prps([seg(0, 3)])).toEqual({ kind: 'prp', entries: 3, listPages: 1 });
    expect(nvme_pci_setup_prps([seg(0, 513)])).toEqual({ kind: 'prp', entries: 513, listPages: 1 });
    expect(nvme_pci_setup_prps([seg(0, 514)])).toEqual({ kind: 'prp', entries: 514, listPages: 2 });
  });
  it('an unaligned first segment spills into one more PRP entry', () => {
    expect(nvme_pci_setup_prps([{ addr: 512, len: 4096 }])).toEqual({ kind: 'prp', entries: 2, listPages: 0 });
  });
  it('a middle segment that does not start on a page is an invalid payload', () => {
    expect(nvme_pci_setup_prps([seg(0), { addr: 8192 + 512, len: 1024 }, seg(9)])).toBe('BLK_STS_IOERR');
  });
  it('SGLs only on I/O queues, when supported, with segments of at least 32 KiB on average', () => {
    expect(nvme_map_data([seg(0, 8), seg(100, 8)], true, 1)).toMatchObject({ kind: 'sgl', entries: 2 });
    expect(nvme_map_data([seg(0, 8), seg(100, 8)], false, 1)).toMatchObject({ kind: 'prp' });
    expect(nvme_map_data([seg(0, 8), seg(100, 8)], true, 0)).toMatchObject({ kind: 'prp' });
    expect(nvme_map_data([seg(0), seg(100)], true, 1)).toMatchObject({ kind: 'prp' });
  });
});

describe('cost table', () => {
  it('names the invalid field', () => {
    expect(invalidCostField({ readCommandNs: -1 })).toBe('readCommandNs');
    expect(invalidCostField({ readCommandNs: 5, transferNsPerKiB: 1e12 })).toBe('transferNsPerKiB');
    expect(invalidCostField({ bogus: 1 } as never)).toBe('bogus');
    expect(invalidCostField({ writeCommandNs: 1 })).toBeUndefined();
  });
});
