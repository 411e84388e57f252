// Page faults in a trace: the CPU's and those mm handled for a device (kernel-mm's `page_fault`
// {pid, addr, write, remote, kind, ret, ns}: `remote` = FAULT_FLAG_REMOTE, a fault from gup or
// hmm_range_fault), and the GPU's own retry faults (`gpu_retry_fault`, and `gpu_fault_replay`
// {faults, resolved, ns[]}: each fault's time from raise to replay).
import type { TraceLine } from '@svmsim/runtime';
import { Distribution } from './distribution.js';

export class FaultStats {
  /** The `ev`s of the lines it reads: the model hands it only those. */
  static readonly events: readonly string[] = ['page_fault', 'gpu_retry_fault', 'gpu_fault_replay'];

  /** By "cpu" / "remote", then kind: latency of mm's handling. */
  readonly mm = new Map<string, Map<string, Distribution>>();
  readonly mmAll = { cpu: new Distribution(), remote: new Distribution() };
  mmErrors = 0;
  /** Per device: faults raised, batches replayed, latency raise → replay. */
  readonly device = new Map<string, { raised: number; batches: number; resolved: number; latency: Distribution }>();

  line(l: TraceLine): void {
    switch (l.ev) {
      case 'page_fault': {
        const side = l.remote ? 'remote' : 'cpu';
        const kind = String(l.kind);
        let byKind = this.mm.get(side);
        if (byKind === undefined) this.mm.set(side, (byKind = new Map()));
        let d = byKind.get(kind);
        if (d === undefined) byKind.set(kind, (d = new Distribution()));
        d.add(l.ns as number);
        this.mmAll[side].add(l.ns as number);
        if ((l.ret as number) < 0) this.mmErrors++;
        return;
      }
      case 'gpu_retry_fault':
        this.dev(l.actor).raised++;
        return;
      case 'gpu_fault_replay': {
        const d = this.dev(l.actor);
        d.batches++;
        d.resolved += (l.resolved as number) ?? 0;
        for (const ns of (l.ns as number[]) ?? []) d.latency.add(ns);
        return;
      }
    }
  }

  private dev(id: string) {
    let d = this.device.get(id);
    if (d === undefined) this.device.set(id, (d = { raised: 0, batches: 0, resolved: 0, latency: new Distribution() }));
    return d;
  }
}
