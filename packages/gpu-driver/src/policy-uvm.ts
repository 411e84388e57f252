// Policy `uvm` (and `unsafe-uvm`): NVIDIA's UVM driver in HMM mode, for system-allocated memory
// (open-gpu-kernel-modules kernel-open/nvidia-uvm, read at commit
// 10d538dfbd349161507294d61d3b2f92fcfe2593: uvm_hmm.c, uvm_gpu_replayable_faults.c, uvm_va_block.c,
// uvm_perf_prefetch.c, uvm_perf_thrashing.c; research/peers.md). This file wires the hooks to its
// parts:
//   uvm-fault-batch.ts    the replayable fault buffer: batches of `batchCount`, coalescing, one replay per batch
//   uvm-block-service.ts  one VA block's faults: thrashing hints, prefetch, migrate_vma, the hmm_range_fault loop
//   uvm-prefetch.ts       the density prefetch inside a 2 MiB block
//   uvm-thrashing.ts      thrashing detection, throttling and pinning
//   svm-vram.ts           device-private VRAM, migrations in and out (shared with svm-fault)
//
//   create      uvm_hmm_va_block_find_create makes one va_block per 2 MiB with an
//               mmu_interval_notifier each (uvm_hmm_va_block_notifier_ops); here the BO's one
//               notifier covers its blocks. Nothing bound, nothing walked.
//   submit      nothing to validate: the job is pushed at once.
//   GPU fault   into the replayable fault buffer (uvm-fault-batch.ts).
//   access      through a VRAM entry: served in the GPU (svm-vram.ts); no access-driven migration
//               (UVM's access counters, which migrate hot remote pages, are not modelled).
//   invalidate  hmm_invalidate (uvm_hmm.c, the va_block's interval notifier callback): SOFT_DIRTY and
//               RELEASE return at once; non-blockable → false ("only called in
//               __oom_reap_task_mm()"); else va_block lock, mmu_interval_set_seq, uvm_va_block_unmap
//               of the overlap from every GPU mapping it, uvm_tracker_wait (the unmap's TLB
//               invalidate), unlock, true. UVM records no thrashing event here: an HMM invalidation
//               is not a UVM revocation (uvm_perf_event_notify_revocation comes from
//               uvm_va_block_revoke_prot only). Departure: for a MIGRATE (or EXCLUSIVE) whose owner
//               is UVM, hmm_invalidate returns true at once (no set_seq, no unmap: the migration maps
//               the new pages itself); here, as svm-fault does, it sets the seq and zaps the entries
//               of system pages, keeping those of our VRAM pages. SOFT_DIRTY is zapped like any
//               other event here (UVM ignores it: the GPU keeps writing through its mapping of a
//               page clear_refs write-protected, unseen by soft-dirty tracking).
//   migrate_to_ram  a CPU fault on our VRAM page (uvm_hmm_devmem_fault_handler →
//               uvm_hmm_va_block_cpu_fault): the page goes home, a thrashing migration event of the CPU.
//   free        the BO's faults are drained (a throttled one after its nap), then under
//               migrate_mutex the notifier is removed and the thrashing state of its blocks dropped.
//
// `unsafe-uvm` maps without mmu_interval_read_retry (uvm-block-service.ts).
import { PAGE_SIZE, mmu_interval_set_seq, type DevicePageFree, type Invalidate, type MigrateToRam, type Pid } from '@svmsim/kernel-mm';
import type { Envelope, Message } from '@svmsim/runtime';
import { boEnd, boFirstVpn, type Bo } from './bo.js';
import type { GpuPte } from './gpuvm.js';
import type { Job } from './job.js';
import { maxOf, percentile } from './percentile.js';
import type { GpuHost, Policy, SubmitOutcome, SubscribedBo } from './policy.js';
import { createSvmVram } from './svm-vram.js';
import { registerUserptr, unregisterUserptr } from './user-pages.js';
import { UvmBlockService } from './uvm-block-service.js';
import { UVM_FAULT_BATCH_COUNT_DEFAULT, UvmFaultBuffer } from './uvm-fault-batch.js';
import { UVM_PREFETCH_THRESHOLD_DEFAULT } from './uvm-prefetch.js';
import { UVM_ID_CPU, UVM_THRASHING_DEFAULTS, UvmThrashing, type UvmThrashingParams } from './uvm-thrashing.js';

/** The policy's options, each a UVM module parameter with UVM's default. */
export interface UvmOptions {
  unsafe: boolean;
  /** -EBUSY answers plus read_retry restarts of one run before its faults are cancelled. */
  maxBusyRetries: number;
  /** uvm_perf_fault_batch_count (256). */
  batchCount?: number;
  /** uvm_perf_prefetch_enable (1). */
  prefetch?: boolean;
  /** uvm_perf_prefetch_threshold (51, 0..100). */
  prefetchThreshold?: number;
  /** uvm_perf_thrashing_* (uvm-thrashing.ts). */
  thrashing?: Partial<UvmThrashingParams>;
  /** Device-private VRAM pages (svmsim's budget, as svm-fault's: default 64; 0: no VRAM, everything mapped remotely). */
  vramPages?: number;
}

export const UVM_DEFAULTS = { batchCount: UVM_FAULT_BATCH_COUNT_DEFAULT, prefetch: true, prefetchThreshold: UVM_PREFETCH_THRESHOLD_DEFAULT, vramPages: 64 } as const;

/** The options, checked: a bad one is an Error naming it. */
function checkedOptions(opts: UvmOptions) {
  const batchCount = opts.batchCount ?? UVM_DEFAULTS.batchCount;
  const prefetch = opts.prefetch ?? UVM_DEFAULTS.prefetch;
  const prefetchThreshold = opts.prefetchThreshold ?? UVM_DEFAULTS.prefetchThreshold;
  const vramPages = opts.vramPages ?? UVM_DEFAULTS.vramPages;
  if (!Number.isInteger(batchCount) || batchCount < 1) throw new Error(`uvm: batchCount must be an integer >= 1, got ${JSON.stringify(batchCount)}`);
  if (typeof prefetch !== 'boolean') throw new Error(`uvm: prefetch must be true or false, got ${JSON.stringify(prefetch)}`);
  if (!Number.isInteger(prefetchThreshold) || prefetchThreshold < 0 || prefetchThreshold > 100) throw new Error(`uvm: prefetchThreshold must be an integer from 0 to 100, got ${JSON.stringify(prefetchThreshold)}`);
  if (!Number.isInteger(vramPages) || vramPages < 0) throw new Error(`uvm: vramPages must be an integer >= 0, got ${JSON.stringify(vramPages)}`);
  for (const k of Object.keys(opts.thrashing ?? {})) if (!(k in UVM_THRASHING_DEFAULTS)) throw new Error(`uvm: unknown thrashing option ${JSON.stringify(k)}; known: ${Object.keys(UVM_THRASHING_DEFAULTS).join(', ')}`);
  const thrashing: UvmThrashingParams = { ...UVM_THRASHING_DEFAULTS, ...opts.thrashing };
  return { batchCount, prefetch, prefetchThreshold, vramPages, thrashing };
}

export function createUvmPolicy(host: GpuHost, opts: UvmOptions): Policy {
  const o = checkedOptions(opts);
  return new UvmPolicy(host, opts, o);
}

class UvmPolicy implements Policy {
  readonly name: string;
  /** BOs in freeBo or freed: their faults are cancelled and their queued migrations dropped. */
  private readonly closing = new WeakSet<Bo>();
  private readonly vram;
  private readonly thrashing: UvmThrashing;
  private readonly service: UvmBlockService;
  private readonly faults: UvmFaultBuffer;
  private readonly s = { deviceFaults: 0, invalidationsZapped: 0, ptesZapped: 0, ownMigrateInvalidations: 0 };

  constructor(
    private readonly host: GpuHost,
    opts: UvmOptions,
    o: ReturnType<typeof checkedOptions>,
  ) {
    this.name = opts.unsafe ? 'unsafe-uvm' : 'uvm';
    // No access-driven migration (hotThreshold infinite): UVM migrates on faults and on access counters only.
    this.vram = createSvmVram(host, { vramPages: o.vramPages, hotThreshold: Infinity, window: 1, closing: this.closing });
    this.thrashing = new UvmThrashing(o.thrashing);
    this.service = new UvmBlockService(host, { unsafe: opts.unsafe, maxBusyRetries: opts.maxBusyRetries, prefetch: o.prefetch, prefetchThreshold: o.prefetchThreshold, closing: this.closing }, this.vram, this.thrashing);
    this.faults = new UvmFaultBuffer(host, o.batchCount, (b, done) => this.service.service(b, done));
  }

  createBo(bo: Bo, done: (ret: number) => void): void {
    registerUserptr(this.host, bo, done);
  }

  submit(job: Job, done: (o: SubmitOutcome) => void): void {
    this.host.pushJob(job);
    done({ ret: 0, pagesWalked: 0, resubmissions: 0 });
  }

  gpuFault(job: Job, pid: Pid, addr: number, write: boolean, resolve: (replay: boolean) => void): void {
    this.s.deviceFaults++;
    const bo = job.bos.find((b) => b.pid === pid && addr >= b.addr && addr < boEnd(b));
    const vpn = Math.floor(addr / PAGE_SIZE);
    if (this.host.ctx.tracing) this.host.ctx.trace('gpu_retry_fault', { job: job.id, pid, addr: vpn * PAGE_SIZE, write });
    this.faults.raise({ job, bo, pid, vpn, write, raisedAt: this.host.ctx.now(), resolve });
  }

  access(job: Job, bo: Bo, page: number, pte: GpuPte, value: number): boolean {
    return this.vram.access(job, bo, page, pte, value);
  }

  invalidate(env: Envelope<Message>, m: Invalidate, bo: SubscribedBo): void {
    const ack = (ok: boolean) => this.host.reply(env, { type: 'invalidate_ack', sub: m.sub, ok });
    if (!m.blockable) {
      // hmm_invalidate: mmu_notifier_range_blockable() false → return false.
      this.host.stats.invalidationsRefused++;
      return ack(false);
    }
    const start = Math.max(m.start, bo.addr);
    const end = Math.min(m.end, boEnd(bo));
    const own = m.event === 'MMU_NOTIFY_MIGRATE' && m.owner === this.host.id;
    if (own) this.s.ownMigrateInvalidations++;
    const t0 = this.host.ctx.now();
    const lock = this.host.notifierLock;
    lock.lock(() => {
      mmu_interval_set_seq(this.host.ctx, env.from, bo.notifier, m.cur_seq);
      bo.notifier.known = true;
      const zapped = start < end ? this.zap(bo.pid, start, end, own) : 0;
      if (zapped > 0) {
        this.s.invalidationsZapped++;
        this.s.ptesZapped += zapped;
      }
      this.host.flushTlb(zapped, () => {
        lock.unlock();
        this.host.stats.invalidateWaitNs.push(this.host.ctx.now() - t0);
        if (this.host.ctx.tracing) this.host.ctx.trace('gpu_invalidate_done', { sub: m.sub, handle: bo.handle, zapped, own });
        ack(true);
      });
    });
  }

  /** Zap [start, end) (bytes) of pid from GPUVM; `keepVram` keeps entries of our VRAM pages. Returns entries zapped. */
  private zap(pid: Pid, start: number, end: number, keepVram: boolean): number {
    if (!keepVram) return this.host.vm.clear(pid, start, end);
    let n = 0;
    for (let vpn = Math.floor(start / PAGE_SIZE); vpn < Math.ceil(end / PAGE_SIZE); vpn++) {
      const pte = this.host.vm.lookup(pid, vpn * PAGE_SIZE);
      if (pte && !pte.vram) n += this.host.vm.clear(pid, vpn * PAGE_SIZE, (vpn + 1) * PAGE_SIZE);
    }
    return n;
  }

  freeBo(bo: Bo, done: () => void): void {
    this.closing.add(bo);
    this.faults.drain(bo, () =>
      this.vram.lockMigrate((unlock) => {
        this.thrashing.forget(bo.pid, boFirstVpn(bo), boFirstVpn(bo) + bo.pages);
        unregisterUserptr(this.host, bo, () => {
          unlock();
          done();
        });
      }),
    );
  }

  receive(env: Envelope<Message>, m: Message): boolean {
    switch (m.type) {
      case 'migrate_to_ram': {
        const mr = m as unknown as MigrateToRam;
        this.recordMigrateToRam(mr);
        this.vram.migrateToRam(env, mr);
        return true;
      }
      case 'device_page_free':
        this.vram.pageFree(m as unknown as DevicePageFree);
        return true;
      default:
        return false;
    }
  }

  /** A CPU fault brings a page of ours home: a thrashing migration event of the CPU. */
  private recordMigrateToRam(m: MigrateToRam): void {
    const vpn = Math.floor(m.addr / PAGE_SIZE);
    this.thrashing.event(m.pid, vpn, 1, UVM_ID_CPU, 'migration', this.host.ctx.now());
  }

  devmemRead(devPfns: number[]): (number | null)[] {
    return this.vram.devmemRead(devPfns);
  }

  vramPagesInUse(): number {
    return this.vram.pagesInUse();
  }

  summary(): Record<string, unknown> {
    const b = this.faults.stats;
    return {
      ...this.s,
      ...b,
      ...this.service.stats,
      ...this.thrashing.stats,
      ...this.vram.summary(),
      faultLatencyNs: undefined,
      faultLatencyP50Ns: percentile(b.faultLatencyNs, 50),
      faultLatencyP99Ns: percentile(b.faultLatencyNs, 99),
      faultLatencyMaxNs: maxOf(b.faultLatencyNs),
      faultsPending: this.faults.pending,
    };
  }
}
