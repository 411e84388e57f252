// uvm's thrashing detection and mitigation, as NVIDIA's UVM driver does it
// (open-gpu-kernel-modules kernel-open/nvidia-uvm/uvm_perf_thrashing.c, read at commit
// 10d538dfbd349161507294d61d3b2f92fcfe2593; peers.md).
//
// State, per 2 MiB VA block (block_thrashing_info_t) and, once the block looks like it may thrash,
// per page of it (page_thrashing_info_t, here typed arrays indexed by the page's index in the block):
//
//   event       thrashing_event_cb, for every migration or revocation of a page: the per-page arrays
//               are made only when an event comes from another processor than the block's last one
//               within `lapse` (phase 0). Then per page: an event within `lapse` of the page's last
//               one counts (num_thrashing_events, saturating at 7); the count reaching `threshold`
//               is "thrashing detected" (counter `thrashing`); an event after a longer gap resets a
//               thrashing page that is not pinned.
//   hint        uvm_perf_thrashing_get_hint, at each GPU fault on the page (the fault handler asks
//               before servicing it):
//                 block quiet for `epoch` (and nothing pinned, fewer than `maxResets` resets) →
//                 the block's per-page state is dropped;
//                 fewer than `threshold` events → NONE;
//                 throttled and its nap not over → THROTTLE;
//                 last event older than `lapse` and not pinned → NONE;
//                 thrashing_throttle_update: a new throttling period (nap long) alternates the one
//                 processor that is not throttled in it (do_not_throttle);
//                 get_hint_for_migration_thrashing: a processor other than do_not_throttle is
//                 throttled (counter `throttle`: the fault is not serviced until the nap ends); the
//                 do_not_throttle one, after `pinThreshold` throttles of the page, pins it (counter
//                 `pin_local` when pinned on the requester, `pin_remote` elsewhere). A pinned page
//                 stays where it is pinned and is mapped there by every processor (the GPU maps
//                 system memory remotely) until `pin` has passed; a pinned page that keeps seeing
//                 revocations still throttles the processors that are not do_not_throttle.
//
// Two processors here: the CPU (its faults are mm's; it is the processor of every invalidation that
// takes a page away from the GPU, and of migrate_to_ram) and this GPU (the processor of the GPU's
// faults). UVM's HMM mode: a GPU can reach system memory (it maps it remotely over PCIe) but the CPU
// cannot reach device-private VRAM, so the only common location, where a page pinned while the CPU
// thrashes is kept for the GPU's remote mapping, is system memory.
//
// Departures: the pin deadline is checked when the page is next looked at (UVM's delayed work
// thrashing_unpin_pages runs at the deadline and also unmaps the remote mappings, so the next access
// faults; here the remote mapping stays until the next invalidation). Time stamps keep all bits (UVM
// drops the low 6, 64 ns).
import type { Pid } from '@svmsim/kernel-mm';

/** UVM_PAGE_SIZE_2M / PAGE_SIZE: pages of one VA block (PAGES_PER_UVM_VA_BLOCK). */
export const UVM_VA_BLOCK_PAGES = 512;

/** Processor ids (uvm_processor_id_t): UVM_ID_CPU, this GPU, UVM_ID_INVALID. */
export const UVM_ID_CPU = 0;
export const UVM_ID_GPU = 1;
export const UVM_ID_INVALID = -1;
const procBit = (id: number): number => 1 << id;

/** PAGE_THRASHING_NUM_EVENTS_BITS = 3: the event counter saturates at 7 (UVM_PERF_THRASHING_THRESHOLD_MAX). */
const NUM_EVENTS_MAX = 7;
/** PAGE_THRASHING_THROTTLING_COUNT_BITS = 8 (UVM_PERF_THRASHING_PIN_THRESHOLD_MAX). */
const THROTTLING_COUNT_MAX = 255;

/** The module parameters (uvm_perf_thrashing_*), with UVM's defaults. */
export interface UvmThrashingParams {
  /** uvm_perf_thrashing_enable (1). */
  enable: boolean;
  /** uvm_perf_thrashing_threshold (3, 1..7): consecutive events within `lapse` that make a page thrash. */
  threshold: number;
  /** uvm_perf_thrashing_pin_threshold (10, 1..255): throttles before the page is pinned. */
  pinThreshold: number;
  /** uvm_perf_thrashing_lapse_usec (500 µs): two events closer than this are consecutive. */
  lapseNs: number;
  /** uvm_perf_thrashing_nap (1 × lapse, max 100): how long a throttled processor stays off the page. */
  nap: number;
  /** uvm_perf_thrashing_epoch (2000 × lapse = 1 s): a block quiet this long forgets its thrashing. */
  epoch: number;
  /** uvm_perf_thrashing_pin (300 × lapse = 150 ms; 0: for ever): how long a page stays pinned. */
  pin: number;
  /** uvm_perf_thrashing_max_resets (4): how many times a block may be reset to non-thrashing. */
  maxResets: number;
}

export const UVM_THRASHING_DEFAULTS: UvmThrashingParams = {
  enable: true, threshold: 3, pinThreshold: 10, lapseNs: 500_000, nap: 1, epoch: 2000, pin: 300, maxResets: 4,
};

/** The checks INIT_THRASHING_PARAMETER_* make (UVM logs and uses the default; svmsim refuses the option). */
export function checkThrashingParams(p: UvmThrashingParams): void {
  const int = (k: keyof UvmThrashingParams, min: number, max: number): void => {
    const v = p[k] as number;
    if (!Number.isInteger(v) || v < min || v > max) throw new Error(`uvm: thrashing ${k} must be an integer from ${min} to ${max}, got ${JSON.stringify(v)}`);
  };
  int('threshold', 1, NUM_EVENTS_MAX);
  int('pinThreshold', 1, THROTTLING_COUNT_MAX);
  int('nap', 1, 100);
  int('epoch', 1, 2 ** 32 - 1);
  int('pin', 0, 2 ** 32 - 1);
  int('maxResets', 0, 2 ** 32 - 1);
  if (!(p.lapseNs >= 1_000) || !Number.isFinite(p.lapseNs)) throw new Error(`uvm: thrashing lapseNs must be at least 1000 (1 µs), got ${JSON.stringify(p.lapseNs)}`);
  if (typeof p.enable !== 'boolean') throw new Error(`uvm: thrashing enable must be true or false, got ${JSON.stringify(p.enable)}`);
}

export type ThrashingHint = { type: 'none' } | { type: 'throttle'; endNs: number } | { type: 'pin'; residency: number };

/** page_thrashing_info_t of every page of a block, one typed array per field. */
class PageThrashing {
  readonly lastTs = new Float64Array(UVM_VA_BLOCK_PAGES);
  readonly numEvents = new Uint8Array(UVM_VA_BLOCK_PAGES);
  readonly hasMigrationEvents = new Uint8Array(UVM_VA_BLOCK_PAGES);
  readonly hasRevocationEvents = new Uint8Array(UVM_VA_BLOCK_PAGES);
  readonly pinned = new Uint8Array(UVM_VA_BLOCK_PAGES);
  readonly throttlingEnd = new Float64Array(UVM_VA_BLOCK_PAGES);
  readonly throttlingCount = new Uint8Array(UVM_VA_BLOCK_PAGES);
  /** Processor masks (bit per processor id). */
  readonly processors = new Uint8Array(UVM_VA_BLOCK_PAGES);
  readonly throttled = new Uint8Array(UVM_VA_BLOCK_PAGES);
  readonly pinnedResidency = new Int8Array(UVM_VA_BLOCK_PAGES).fill(UVM_ID_INVALID);
  readonly doNotThrottle = new Int8Array(UVM_VA_BLOCK_PAGES).fill(UVM_ID_INVALID);
  readonly pinDeadline = new Float64Array(UVM_VA_BLOCK_PAGES);
  /** block_thrashing->thrashing_pages. */
  readonly thrashing = new Uint8Array(UVM_VA_BLOCK_PAGES);
}

/** block_thrashing_info_t. */
class BlockThrashing {
  pages: PageThrashing | null = null;
  lastProcessor = UVM_ID_INVALID;
  lastTs = 0;
  lastThrashingTs = 0;
  resetCount = 0;
  pinnedCount = 0;
}

export interface UvmThrashingStats {
  /** processor_thrashing_stats_t of this GPU (/proc/driver/nvidia-uvm/gpus/…/thrashing_stats). */
  thrashing: number;
  throttle: number;
  pin_local: number;
  pin_remote: number;
  /** Pages unpinned at their deadline. */
  thrashingUnpins: number;
  /** Blocks whose thrashing state was dropped after an epoch of quiet. */
  thrashingBlockResets: number;
}

export class UvmThrashing {
  readonly stats: UvmThrashingStats = { thrashing: 0, throttle: 0, pin_local: 0, pin_remote: 0, thrashingUnpins: 0, thrashingBlockResets: 0 };
  private readonly blocks = new Map<number, BlockThrashing>();
  private readonly napNs: number;
  private readonly epochNs: number;
  private readonly pinNs: number;

  constructor(readonly params: UvmThrashingParams) {
    checkThrashingParams(params);
    // va_space_thrashing_info_init_params: nap, epoch and pin are multiples of the lapse.
    this.napNs = params.lapseNs * params.nap;
    this.epochNs = params.lapseNs * params.epoch;
    this.pinNs = params.lapseNs * params.pin;
  }

  /**
   * thrashing_event_cb for pages [vpn, vpn + pages) of one VA block: a migration to `processor`
   * (UVM_PERF_EVENT_MIGRATION, cause fault or prefetch) or a revocation from it (REVOCATION).
   */
  event(pid: Pid, vpn: number, pages: number, processor: number, kind: 'migration' | 'revocation', now: number): void {
    if (!this.params.enable || pages <= 0) return;
    const first = vpn % UVM_VA_BLOCK_PAGES;
    if (first + pages > UVM_VA_BLOCK_PAGES) throw new Error(`uvm thrashing: event [${vpn}, +${pages}) crosses a VA block`);
    const b = this.block(pid, vpn, true)!;
    if (!b.pages) {
      // Phase 0: no per-page state unless two processors touch the block within a lapse.
      const potential = b.lastTs !== 0 && b.lastProcessor !== processor && now - b.lastTs <= this.params.lapseNs;
      if (potential) b.pages = new PageThrashing();
    }
    const p = b.pages;
    for (let i = first; p && i < first + pages; i++) {
      this.expirePin(b, p, i, now);
      const last = p.lastTs[i];
      p.processors[i] |= procBit(processor);
      p.lastTs[i] = now;
      if (last === 0) continue;
      if (now - last <= this.params.lapseNs) {
        if (p.numEvents[i] < NUM_EVENTS_MAX) p.numEvents[i]++;
        if (p.numEvents[i] === this.params.threshold) this.thrashingDetected(p, i);
        if (p.numEvents[i] >= this.params.threshold) b.lastThrashingTs = now;
        if (kind === 'migration') p.hasMigrationEvents[i] = 1;
        else p.hasRevocationEvents[i] = 1;
      } else if (p.numEvents[i] >= this.params.threshold && !p.pinned[i]) {
        this.resetPage(b, p, i);
      }
    }
    b.lastTs = now;
    b.lastProcessor = processor;
  }

  /** uvm_perf_thrashing_get_hint for a fault of this GPU (the requester) on (pid, vpn). */
  getHint(pid: Pid, vpn: number, now: number): ThrashingHint {
    const requester = UVM_ID_GPU;
    if (!this.params.enable) return { type: 'none' };
    const b = this.block(pid, vpn, false);
    if (!b?.pages) return { type: 'none' };
    if (b.lastThrashingTs !== 0 && now - b.lastThrashingTs > this.epochNs && b.pinnedCount === 0 && b.resetCount < this.params.maxResets) {
      b.resetCount++;
      b.pages = null;
      b.lastProcessor = UVM_ID_INVALID;
      b.lastTs = 0;
      b.lastThrashingTs = 0;
      this.stats.thrashingBlockResets++;
      return { type: 'none' };
    }
    const p = b.pages;
    const i = vpn % UVM_VA_BLOCK_PAGES;
    this.expirePin(b, p, i, now);
    if (p.numEvents[i] < this.params.threshold) return { type: 'none' };
    if (p.throttled[i] & procBit(requester)) {
      if (now < p.throttlingEnd[i] && p.doNotThrottle[i] !== requester) return this.throttle(p, i, requester);
      this.throttleEnd(p, i, requester);
    }
    if (now - p.lastTs[i] > this.params.lapseNs && !p.pinned[i]) return { type: 'none' };
    p.processors[i] |= procBit(requester);
    if (!p.hasMigrationEvents[i] && !p.hasRevocationEvents[i]) throw new Error('uvm thrashing: a thrashing page without events');
    this.throttleUpdate(p, i, requester, now);
    let hint: ThrashingHint;
    if (p.pinned[i] && p.hasRevocationEvents[i] && p.doNotThrottle[i] !== requester) hint = { type: 'throttle', endNs: 0 };
    else hint = this.hintForMigrationThrashing(p, i, requester);
    if (hint.type === 'pin') {
      this.pinPage(b, p, i, hint.residency, now);
      if (hint.residency === requester) this.stats.pin_local++;
      else this.stats.pin_remote++;
      return hint;
    }
    if (hint.type === 'throttle') return this.throttle(p, i, requester);
    if (p.pinned[i] || p.throttled[i] & procBit(requester)) throw new Error('uvm thrashing: no hint for a pinned or throttled page');
    return hint;
  }

  /** uvm_perf_thrashing_get_thrashing_pages: whether (pid, vpn) is a thrashing page (prefetch leaves those out). */
  isThrashing(pid: Pid, vpn: number): boolean {
    const p = this.block(pid, vpn, false)?.pages;
    return p ? p.thrashing[vpn % UVM_VA_BLOCK_PAGES] === 1 : false;
  }

  /** Whether (pid, vpn) is pinned, and where (UVM_ID_INVALID: not pinned). */
  pinnedResidency(pid: Pid, vpn: number): number {
    const p = this.block(pid, vpn, false)?.pages;
    return p && p.pinned[vpn % UVM_VA_BLOCK_PAGES] ? p.pinnedResidency[vpn % UVM_VA_BLOCK_PAGES] : UVM_ID_INVALID;
  }

  /** thrashing_block_munmap_cb / uvm_perf_thrashing_info_destroy: forget the pages of a range (a BO going). */
  forget(pid: Pid, startVpn: number, endVpn: number): void {
    for (let blk = Math.floor(startVpn / UVM_VA_BLOCK_PAGES); blk * UVM_VA_BLOCK_PAGES < endVpn; blk++) this.blocks.delete(blockKey(pid, blk));
  }

  private block(pid: Pid, vpn: number, create: boolean): BlockThrashing | undefined {
    const k = blockKey(pid, Math.floor(vpn / UVM_VA_BLOCK_PAGES));
    let b = this.blocks.get(k);
    if (!b && create) this.blocks.set(k, (b = new BlockThrashing()));
    return b;
  }

  private thrashingDetected(p: PageThrashing, i: number): void {
    p.thrashing[i] = 1;
    this.stats.thrashing++;
  }

  /** thrashing_reset_page. */
  private resetPage(b: BlockThrashing, p: PageThrashing, i: number): void {
    p.throttled[i] = 0;
    p.throttlingEnd[i] = 0;
    if (p.pinned[i]) this.unpinPage(b, p, i);
    p.lastTs[i] = 0;
    p.hasMigrationEvents[i] = 0;
    p.hasRevocationEvents[i] = 0;
    p.numEvents[i] = 0;
    p.processors[i] = 0;
    p.thrashing[i] = 0;
  }

  /** thrashing_throttle_update: a new throttling period picks the processor it does not throttle. */
  private throttleUpdate(p: PageThrashing, i: number, processor: number, now: number): void {
    if (now > p.throttlingEnd[i]) {
      p.throttlingEnd[i] = now + this.napNs;
      // Avoid choosing the same processor in consecutive periods.
      p.doNotThrottle[i] = p.doNotThrottle[i] === processor ? UVM_ID_INVALID : processor;
    } else if (p.doNotThrottle[i] === UVM_ID_INVALID) {
      p.doNotThrottle[i] = processor;
    }
  }

  /** thrashing_throttle_processor (first throttle of the period counts), and the THROTTLE hint. */
  private throttle(p: PageThrashing, i: number, processor: number): ThrashingHint {
    if (processor === p.doNotThrottle[i]) throw new Error('uvm thrashing: throttling the do_not_throttle processor');
    if (!(p.throttled[i] & procBit(processor))) {
      p.throttled[i] |= procBit(processor);
      if (!p.pinned[i] && p.throttlingCount[i] < THROTTLING_COUNT_MAX) p.throttlingCount[i]++;
    }
    this.stats.throttle++;
    return { type: 'throttle', endNs: p.throttlingEnd[i] };
  }

  /** thrashing_throttle_end_processor. */
  private throttleEnd(p: PageThrashing, i: number, processor: number): void {
    p.throttled[i] &= ~procBit(processor);
    if (p.throttled[i] === 0) p.throttlingEnd[i] = 0;
  }

  /**
   * get_hint_for_migration_thrashing with no preferred location, no NVLINK, and the HMM rule that a
   * page with no recorded residency is on the CPU. The CPU cannot reach device-private VRAM, so
   * thrashing_processors_can_access(requester = GPU) is false while the CPU is among the page's
   * processors, and the common location is the CPU's memory.
   */
  private hintForMigrationThrashing(p: PageThrashing, i: number, requester: number): ThrashingHint {
    const dnt = p.doNotThrottle[i];
    if (p.pinned[i]) {
      if (requester === dnt) return { type: 'pin', residency: this.locationAllCanAccess(p, i, requester) };
      // accessible_from[pinned residency] holds the GPU when it is the CPU's memory or its own.
      return { type: 'pin', residency: p.pinnedResidency[i] };
    }
    if (requester !== dnt) return { type: 'throttle', endNs: 0 };
    if (p.throttlingCount[i] >= this.params.pinThreshold) return { type: 'pin', residency: requester };
    return { type: 'none' };
  }

  /** The requester if every thrashing processor can access it, else the common location (the CPU). */
  private locationAllCanAccess(p: PageThrashing, i: number, requester: number): number {
    return p.processors[i] & procBit(UVM_ID_CPU) ? UVM_ID_CPU : requester;
  }

  /** thrashing_pin_page. */
  private pinPage(b: BlockThrashing, p: PageThrashing, i: number, residency: number, now: number): void {
    if (p.throttled[i] & procBit(UVM_ID_GPU)) throw new Error('uvm thrashing: pinning for a throttled requester');
    if (!p.pinned[i] || p.pinnedResidency[i] !== residency) {
      p.throttled[i] = 0;
      p.throttlingEnd[i] = 0;
    }
    if (!p.pinned[i]) {
      p.pinDeadline[i] = this.pinNs > 0 ? now + this.pinNs : Infinity;
      p.throttlingCount[i] = 0;
      p.pinned[i] = 1;
      b.pinnedCount++;
    }
    p.pinnedResidency[i] = residency;
  }

  /** thrashing_unpin_page. */
  private unpinPage(b: BlockThrashing, p: PageThrashing, i: number): void {
    if (!p.pinned[i]) throw new Error('uvm thrashing: unpinning a page that is not pinned');
    p.pinned[i] = 0;
    p.pinnedResidency[i] = UVM_ID_INVALID;
    p.pinDeadline[i] = 0;
    b.pinnedCount--;
  }

  /** thrashing_unpin_pages (the delayed work at the pin deadline), run when the page is next looked at. */
  private expirePin(b: BlockThrashing, p: PageThrashing, i: number, now: number): void {
    if (!p.pinned[i] || now < p.pinDeadline[i]) return;
    this.resetPage(b, p, i);
    this.stats.thrashingUnpins++;
  }
}

const blockKey = (pid: Pid, block: number): number => pid * 2 ** 32 + block;
