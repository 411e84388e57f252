// uvm's replayable fault buffer and batch loop, as uvm_gpu_replayable_faults.c does it
// (open-gpu-kernel-modules kernel-open/nvidia-uvm, read at commit
// 10d538dfbd349161507294d61d3b2f92fcfe2593: uvm_gpu_service_replayable_faults, fetch_fault_buffer_entries,
// preprocess_fault_batch, service_fault_batch, push_replay_on_gpu).
//
//   fetch       after the fault interrupt (`faultInterruptNs`), at most `batchCount` entries
//               (uvm_perf_fault_batch_count, 256) are taken from the buffer; later ones wait for the
//               next batch.
//   preprocess  sorted by (VA space, address, access type: writes first), and duplicates coalesced:
//               an entry for the same page whose access the first entry's covers is serviced with it
//               (`faultsCoalesced`; the fault_stats `duplicates`).
//   service     per 2 MiB VA block, in address order (service_fault_batch_block): the block's
//               faults go to the block service (uvm-block-service.ts) at once.
//   replay      UVM_PERF_FAULT_REPLAY_POLICY_BATCH_FLUSH: one replay after the batch (`replayNs`);
//               each serviced fault's access retries, a cancelled one is a VM fault. A throttled
//               fault is held by the block service until its nap ends, and replayed then.
//
// Departures: the buffer is unbounded (the HW ring overflows and the GPU retries); the flush of the
// HW buffer before the replay, the cap of 20 batches per service pass, and the early flush when
// more than half of a batch are duplicates are not modelled: a batch follows the previous one
// whenever faults are waiting.
import type { Pid } from '@svmsim/kernel-mm';
import type { Bo } from './bo.js';
import type { FaultBufferEntry } from './svm-fault-handler.js';
import type { GpuHost } from './policy.js';
import { UVM_VA_BLOCK_PAGES } from './uvm-thrashing.js';

/** UVM_PERF_FAULT_BATCH_COUNT_DEFAULT. */
export const UVM_FAULT_BATCH_COUNT_DEFAULT = 256;

/** One entry of the replayable fault buffer (uvm_fault_buffer_entry_t). */
export type UvmFault = FaultBufferEntry;

/** A fault and its coalesced duplicates, with the decision the service makes for them. */
export interface UvmFaultGroup {
  faults: UvmFault[];
  /** 'replay': serviced (or nothing to do); 'cancel': a VM fault; 'throttle': replayed at `untilNs`. */
  outcome: 'replay' | 'cancel' | 'throttle';
  untilNs: number;
}

/** The faults of one VA block in a batch, in address order. */
export interface UvmBlockFaults {
  pid: Pid;
  block: number;
  groups: UvmFaultGroup[];
}

export interface UvmBatchStats {
  faultBatches: number;
  faultBatchSizeMax: number;
  faultsFetched: number;
  faultsCoalesced: number;
  faultsThrottled: number;
  deviceFaultsResolved: number;
  deviceFaultsCancelled: number;
  faultLatencyNs: number[];
}

/** What the batch loop asks of the policy: service one block's faults, setting each group's outcome. */
export type ServiceBlock = (b: UvmBlockFaults, done: () => void) => void;

export class UvmFaultBuffer {
  readonly stats: UvmBatchStats = {
    faultBatches: 0, faultBatchSizeMax: 0, faultsFetched: 0, faultsCoalesced: 0, faultsThrottled: 0, deviceFaultsResolved: 0, deviceFaultsCancelled: 0, faultLatencyNs: [],
  };
  private buffer: UvmFault[] = [];
  /** Per BO, its faults raised and not yet decided (in the buffer, in a batch, or waiting out a nap). */
  private readonly undecided = new Map<Bo, number>();
  private readonly drainWaiters = new Map<Bo, (() => void)[]>();
  private state: 'idle' | 'scheduled' | 'running' = 'idle';

  constructor(
    private readonly host: GpuHost,
    private readonly batchCount: number,
    private readonly serviceBlock: ServiceBlock,
  ) {
    if (!Number.isInteger(batchCount) || batchCount < 1) throw new Error(`uvm: batchCount must be an integer >= 1, got ${JSON.stringify(batchCount)}`);
  }

  get pending(): number {
    return this.buffer.length;
  }

  /** A replayable fault written into the buffer. */
  raise(f: UvmFault): void {
    if (f.bo) this.undecided.set(f.bo, (this.undecided.get(f.bo) ?? 0) + 1);
    this.buffer.push(f);
    this.schedule();
  }

  /**
   * The BO's faults drained (uvm_hmm's teardown waits for the block's faults the same way, under
   * the va_block lock): `then` once every fault of the BO raised so far is decided.
   */
  drain(bo: Bo, then: () => void): void {
    if (!this.undecided.has(bo)) return then();
    const w = this.drainWaiters.get(bo);
    if (w) w.push(then);
    else this.drainWaiters.set(bo, [then]);
  }

  private decided(f: UvmFault): void {
    if (!f.bo) return;
    const left = this.undecided.get(f.bo)! - 1;
    if (!(left >= 0)) throw new Error(`uvm: BO ${f.bo.handle} has more faults decided than raised`);
    if (left > 0) return void this.undecided.set(f.bo, left);
    this.undecided.delete(f.bo);
    const waiters = this.drainWaiters.get(f.bo) ?? [];
    this.drainWaiters.delete(f.bo);
    for (const w of waiters) w();
  }

  private schedule(): void {
    if (this.state !== 'idle' || this.buffer.length === 0) return;
    this.state = 'scheduled';
    const delay = Math.max(0, this.buffer[0].raisedAt + this.host.costs.faultInterruptNs - this.host.ctx.now());
    this.host.sleep(delay, () => this.runBatch());
  }

  /** fetch_fault_buffer_entries + preprocess_fault_batch + service_fault_batch, then the replay. */
  private runBatch(): void {
    this.state = 'running';
    const batch = this.buffer.splice(0, this.batchCount);
    this.stats.faultBatches++;
    this.stats.faultsFetched += batch.length;
    this.stats.faultBatchSizeMax = Math.max(this.stats.faultBatchSizeMax, batch.length);
    const blocks = this.preprocess(batch);
    if (this.host.ctx.tracing) this.host.ctx.trace('uvm_fault_batch', { faults: batch.length, blocks: blocks.length });
    const next = (i: number): void => {
      if (i === blocks.length) return void this.host.sleep(this.host.costs.replayNs, () => this.replay(blocks));
      this.serviceBlock(blocks[i], () => next(i + 1));
    };
    next(0);
  }

  /** Sort by (pid, page, writes first), coalesce duplicates, split by VA block. */
  private preprocess(batch: UvmFault[]): UvmBlockFaults[] {
    batch.sort((a, b) => a.pid - b.pid || a.vpn - b.vpn || Number(b.write) - Number(a.write));
    const blocks: UvmBlockFaults[] = [];
    let group: UvmFaultGroup | undefined;
    for (const f of batch) {
      const first = group?.faults[0];
      if (first && first.pid === f.pid && first.vpn === f.vpn && (first.write || !f.write)) {
        group!.faults.push(f);
        this.stats.faultsCoalesced++;
        continue;
      }
      group = { faults: [f], outcome: 'replay', untilNs: 0 };
      const block = Math.floor(f.vpn / UVM_VA_BLOCK_PAGES);
      const last = blocks[blocks.length - 1];
      if (last && last.pid === f.pid && last.block === block) last.groups.push(group);
      else blocks.push({ pid: f.pid, block, groups: [group] });
    }
    return blocks;
  }

  /** push_replay_on_gpu (BATCH_FLUSH): every fault of the batch retries, or is cancelled, or waits out its nap. */
  private replay(blocks: UvmBlockFaults[]): void {
    this.state = 'idle';
    const now = this.host.ctx.now();
    for (const b of blocks) {
      for (const g of b.groups) {
        if (g.outcome === 'throttle') {
          this.stats.faultsThrottled += g.faults.length;
          this.host.sleep(g.untilNs - now, () => this.finish(g, true));
        } else this.finish(g, g.outcome === 'replay');
      }
    }
    this.schedule();
  }

  private finish(g: UvmFaultGroup, ok: boolean): void {
    const now = this.host.ctx.now();
    for (const f of g.faults) {
      if (ok && f.job.endedAt < 0) this.stats.deviceFaultsResolved++;
      else this.stats.deviceFaultsCancelled++;
      this.stats.faultLatencyNs.push(now - f.raisedAt);
      this.decided(f);
      f.resolve(ok && f.job.endedAt < 0);
    }
  }
}
