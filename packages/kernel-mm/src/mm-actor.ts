// The `mm` actor: Linux's mm/ for one machine. Every request is dispatched to the file of its
// mechanism; replies to mm's own requests (invalidate acks, bios, migrate_to_ram) resume the
// operation waiting for them (Kernel.call / resume).
import { sys_mremap } from './mremap.js';
import { CounterSampler, type Actor, type Ctx, type Envelope, type Incoming, type Message, type RuntimeMessage } from '@svmsim/runtime';
import { cpu_access, dma_access } from './access.js';
import { dump } from './dump.js';
import { sys_exit } from './exit.js';
import { createFile } from './filemap.js';
import { sys_fork } from './fork.js';
import { get_user_pages, unpin_user_pages } from './gup.js';
import { hmm_range_fault, mmu_interval_notifier_insert, mmu_interval_notifier_remove, mmu_interval_read_begin, mmu_interval_set_seq } from './hmm-range-fault.js';
import { vma_lookup } from './vma-lookup.js';
import { mmap_lock_drop_owner, mmap_read_lock, mmap_read_unlock, mmap_write_downgrade, mmap_write_held_by, mmap_write_lock, mmap_write_unlock } from './mmap-lock.js';
import { Kernel, type MmConfig, type MmInternal, type MmOutgoing } from './kernel.js';
import { migrate_pages } from './migrate.js';
import { vmaIsCow } from './vma.js';
import { abortMigrationsOf, installDeviceFaults, make_device_exclusive, migrate_vma_finalize, migrate_vma_setup } from './migrate-device.js';
import { ksm_scan } from './ksm.js';
import { installOom } from './oom.js';
import { writeback_dirty } from './writeback.js';
import { PTE_KIND_MASK, PTE_PRESENT, VPN_LIMIT } from './page-table.js';
import { Physmem } from './physmem.js';
import { checkInvariants } from './invariants.js';
import { clear_refs_write, pagemap_read } from './clear-refs.js';
import { mmu_notifier_drop_owner, mmu_notifier_register, mmu_notifier_unregister } from './mmu-notifier-young.js';
import { NUMA_BALANCING_SCAN_DELAY_NS, numa_balancing_tick, task_numa_work } from './numa-balancing.js';
import { EINVAL, ESRCH, PAGE_SIZE, ZERO_PFN, type MmRequest } from './protocol.js';
import { installReclaim, shrink_lruvec } from './reclaim.js';
import { sys_madvise, sys_mmap, sys_mprotect, sys_munmap, sys_process_create } from './syscalls.js';
import { processTask } from './task.js';
import { mmCounters } from './counters.js';
import { DriverRefs } from './dead-driver.js';
import { MM_SHAPES, checkWithState } from './message-shapes.js';
import { rejectBadMessage } from '@svmsim/runtime';


export function createMm(config: unknown, _id: string): Actor<Message> {
  const cfg = validateConfig(config);
  const k = new Kernel(cfg);
  const counters = new CounterSampler('mm_counters');
  const refs = new DriverRefs();
  installReclaim();
  installDeviceFaults();
  installOom();
  return {
    start(ctx) {
      k.ctx = refs.wrap(ctx as Ctx<MmOutgoing>);
      // The periodic flusher (dirty_writeback_centisecs).
      if (cfg.writebackIntervalNs) ctx.after(cfg.writebackIntervalNs, { type: 'mm_writeback_tick' });
      // task_numa_work's first run after the scan delay, then every scan period (numa-balancing.ts).
      if (cfg.numaBalancing) ctx.after(cfg.numaBalancing.scanDelayNs ?? NUMA_BALANCING_SCAN_DELAY_NS, { type: 'mm_numa_tick' });
    },
    receive(env: Incoming<Message>, ctx: Ctx<Message>) {
      k.ctx = refs.wrap(ctx as Ctx<MmOutgoing>);
      // The boundary: a malformed request is answered bad_message and changes nothing (message-shapes.ts).
      if (rejectBadMessage(env, ctx, MM_SHAPES, (m) => checkWithState(k, m))) return;
      dispatch(env, ctx);
      if (cfg.checkInvariants) checkInvariants(k, env.msg.type);
      counters.sample(ctx, () => mmCounters(k));
    },
    summary() {
      return summarize();
    },
  };

  function dispatch(env: Incoming<Message>, ctx: Ctx<Message>): void {
      if (env.replyTo !== 0 && k.resume(env)) return;
      const m = env.msg as MmRequest | MmInternal | RuntimeMessage;
      switch (m.type) {
        case 'mm_reply_due':
          return k.replyDue(env.id);
        case 'mm_later':
          return k.runLater();
        case 'actor_died':
          // A driver's thread died: what it left half done must not block everyone else.
          mmap_lock_drop_owner(k, m.actor);
          mmu_notifier_drop_owner(k, m.actor);
          refs.releaseAll(k, m.actor);
          return abortMigrationsOf(k, m.actor);
        case 'request_timeout':
          return;
        case 'mm_sleep_done':
          return k.wake(env.id);
        case 'mm_writeback_tick':
          writeback_dirty(k, () => {});
          ctx.after(cfg.writebackIntervalNs!, { type: 'mm_writeback_tick' });
          return;
        case 'mm_hung_task_check': {
          const check = k.hungChecks.get(env.id);
          k.hungChecks.delete(env.id);
          return check?.();
        }
        case 'process_create':
          return sys_process_create(k, env, m);
        case 'file_create': {
          if (!Number.isInteger(m.pages) || m.pages <= 0) return k.ctx.reply(env, { type: 'syscall_result', ret: EINVAL });
          const f = createFile(k, m.name, m.pages, false);
          return k.ctx.reply(env, { type: 'syscall_result', ret: f.id });
        }
        case 'mmap':
          return sys_mmap(k, env, m);
        case 'munmap':
          return sys_munmap(k, env, m);
        case 'mprotect':
          return sys_mprotect(k, env, m);
        case 'madvise':
          return sys_madvise(k, env, m);
        case 'mremap':
          return sys_mremap(k, env, m);
        case 'fork':
          return sys_fork(k, env, m);
        case 'exit':
          return sys_exit(k, env, m);
        case 'cpu_access':
          return cpu_access(k, env, m);
        case 'mmu_interval_notifier_insert':
          return mmu_interval_notifier_insert(k, env, m);
        case 'mmu_interval_notifier_remove':
          return mmu_interval_notifier_remove(k, env, m);
        case 'mmu_interval_read_begin':
          return mmu_interval_read_begin(k, env, m);
        case 'mmu_interval_set_seq':
          return mmu_interval_set_seq(k, env, m);
        case 'hmm_range_fault':
          return hmm_range_fault(k, env, m);
        case 'mmap_read_lock': {
          const p = k.proc(m.pid);
          if (!p) return k.ctx.reply(env, { type: 'syscall_result', ret: ESRCH });
          return mmap_read_lock(k, p, env.from, () => k.ctx.reply(env, { type: 'syscall_result', ret: 0 }));
        }
        case 'mmap_read_unlock': {
          const p = k.procs.get(m.pid);
          const ok = p !== undefined && mmap_read_unlock(k, p, env.from);
          return k.ctx.reply(env, { type: 'syscall_result', ret: ok ? 0 : EINVAL });
        }
        case 'mmap_write_lock': {
          const p = k.proc(m.pid);
          if (!p) return k.ctx.reply(env, { type: 'syscall_result', ret: ESRCH });
          return mmap_write_lock(k, p, () => k.ctx.reply(env, { type: 'syscall_result', ret: 0 }), env.from);
        }
        case 'mmap_write_downgrade':
        case 'mmap_write_unlock': {
          const p = k.procs.get(m.pid);
          if (!p || !mmap_write_held_by(p, env.from)) return k.ctx.reply(env, { type: 'syscall_result', ret: EINVAL });
          if (m.type === 'mmap_write_downgrade') mmap_write_downgrade(k, p);
          else mmap_write_unlock(k, p);
          return k.ctx.reply(env, { type: 'syscall_result', ret: 0 });
        }
        case 'vma_lookup':
          return vma_lookup(k, env, m);
        case 'get_user_pages':
          return get_user_pages(k, env, m);
        case 'unpin_user_pages':
          refs.released(env.from, m);
          return unpin_user_pages(k, env, m);
        case 'dma_access':
          return dma_access(k, env, m);
        case 'reclaim':
          return shrink_lruvec(k, m.nr_pages, 'direct', env.from, (n: number) => k.ctx.reply(env, { type: 'op_result', ret: n }));
        case 'migrate_pages':
          return migratePagesOf(k, env, m.pid, m.addr, m.nr_pages);
        case 'dump':
          return dump(k, env);
        case 'clear_refs':
          return clear_refs_write(k, env, m);
        case 'pagemap_read':
          return pagemap_read(k, env, m);
        case 'mmu_notifier_register':
          return mmu_notifier_register(k, env, m);
        case 'mmu_notifier_unregister':
          return mmu_notifier_unregister(k, env, m);
        case 'numa_scan': {
          const p = k.proc(m.pid);
          if (!p) return k.ctx.reply(env, { type: 'op_result', ret: ESRCH });
          return task_numa_work(k, p, (updated) => k.ctx.reply(env, { type: 'op_result', ret: updated }));
        }
        case 'mm_numa_tick':
          return numa_balancing_tick(k);
        case 'migrate_vma_setup':
          return migrate_vma_setup(k, env, m);
        case 'migrate_vma_finalize':
          return migrate_vma_finalize(k, env, m);
        case 'make_device_exclusive':
          return make_device_exclusive(k, env, m);
        case 'memremap_pages': {
          if (!Number.isInteger(m.nr_pages) || m.nr_pages <= 0) return k.ctx.reply(env, { type: 'memremap_pages_result', ret: EINVAL, base: 0 });
          return k.ctx.reply(env, { type: 'memremap_pages_result', ret: 0, base: k.devicePages.memremap(env.from, m.nr_pages) });
        }
        case 'ksm_scan':
          return ksm_scan(k, (merged) => k.ctx.reply(env, { type: 'op_result', ret: merged }));
        case 'writeback':
          return writeback_dirty(k, (written) => k.ctx.reply(env, { type: 'op_result', ret: written }));
        default: {
          const unknown: never = m;
          throw new Error(`mm: unknown message '${(unknown as Message).type}' from ${env.from}`);
        }
      }
  }

  function summarize() {
      return {
        ...k.stats,
        notifierWaitNs: undefined,
        mmapWriteLockWaitNs: undefined,
        // mmap / munmap / mprotect / madvise(write) behind mmap_lock: how many waited at all, how long.
        mmapWriteLockWaits: k.stats.mmapWriteLockWaitNs.filter((ns) => ns > 0).length,
        mmapWriteLockWaitNsP50: percentile(k.stats.mmapWriteLockWaitNs, 0.5),
        mmapWriteLockWaitNsMax: percentile(k.stats.mmapWriteLockWaitNs, 1),
        directReclaimNs: undefined,
        notifierWaitNsP50: percentile(k.stats.notifierWaitNs, 0.5),
        notifierWaitNsP99: percentile(k.stats.notifierWaitNs, 0.99),
        notifierWaitNsMax: percentile(k.stats.notifierWaitNs, 1),
        munmapNs: undefined,
        munmaps: k.stats.munmapNs.length,
        munmapNsP50: percentile(k.stats.munmapNs, 0.5),
        munmapNsP99: percentile(k.stats.munmapNs, 0.99),
        munmapNsMax: percentile(k.stats.munmapNs, 1),
        notifierPasses: k.notifierPasses,
        // Waits still going on when the summary is taken count up to now.
        kswapdBlockedNs: k.reclaimWaits.blockedNs('kswapd', k.ctx.now()),
        directReclaimBlockedNs: k.reclaimWaits.blockedNs('direct', k.ctx.now()),
        allocStallNsP50: percentile(k.stats.directReclaimNs, 0.5),
        allocStallNsP99: percentile(k.stats.directReclaimNs, 0.99),
        allocStallNsMax: percentile(k.stats.directReclaimNs, 1),
        framesFree: k.pm.nrFree,
        // Frames with a FOLL_PIN count at the summary: after a run's teardown (every BO freed, MR
        // deregistered, I/O completed) a leaked pin is all that can leave one.
        framesPinned: k.pm.nrPinned,
        processes: [...k.procs.values()].filter((p) => p.alive).length,
        pendingCalls: k.pendingCalls,
        pendingReplies: k.pendingReplies,
        bytesPerFrame: Physmem.bytesPerFrame(),
      };
  }
}

/**
 * The `migrate_pages` trigger (NUMA balancing: migrate_misplaced_folio, MIGRATE_ASYNC): migrate each
 * mapped page of the range, each with migrate_pages' retry passes (migrate.ts). A page of a COW
 * mapping that may be DMA-pinned is not attempted at all: change_pte_range's prot_numa skip
 * (mm/mprotect.c v6.6–v6.15: "Also skip shared copy-on-write pages", folio_maybe_dma_pinned) never
 * makes it a NUMA hinting fault. The reply: ret the pages migrated; `retries`, `skipped_pinned`,
 * `failed` beside it.
 */
function migratePagesOf(k: Kernel, env: Envelope<Message>, pid: number, addr: number, nr: number): void {
  const p = k.proc(pid);
  if (!p) return k.ctx.reply(env, { type: 'op_result', ret: ESRCH });
  if (!Number.isInteger(addr) || addr < 0 || !Number.isInteger(nr) || nr <= 0 || nr > VPN_LIMIT) return k.ctx.reply(env, { type: 'op_result', ret: EINVAL });
  const start = Math.floor(addr / PAGE_SIZE);
  let moved = 0;
  let retries = 0;
  let skipped = 0;
  let failed = 0;
  const present = (vpn: number): number => {
    const pfn = p.pt.value(vpn);
    return (p.pt.flags(vpn) & PTE_KIND_MASK) === PTE_PRESENT && pfn !== ZERO_PFN ? pfn : -1;
  };
  // Each page is looked up when its turn comes: earlier migrations wait for acks, meanwhile PTEs change.
  const next = (vpn: number): void => {
    for (; vpn < start + nr; vpn++) {
      const pfn = present(vpn);
      if (pfn < 0) continue;
      const vma = p.vmas.find(vpn);
      if (vma && vmaIsCow(vma) && k.pm.maybeDmaPinned(pfn)) {
        skipped++;
        k.stats.migrationsSkippedPinned++;
        continue;
      }
      const at = vpn;
      // The folio stays isolated across the passes: a pass whose page is no longer the one mapped here stops.
      migrate_pages(k, () => (present(at) === pfn ? pfn : -1), true, processTask(p), (o) => {
        retries += o.retries;
        if (o.ret >= 0) moved++;
        else failed++;
        k.bounce(() => next(at + 1));
      });
      return;
    }
    k.ctx.reply(env, { type: 'op_result', ret: moved, retries, skipped_pinned: skipped, failed });
  };
  next(start);
}

function percentile(xs: number[], q: number): number {
  if (xs.length === 0) return 0;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(q * s.length))];
}

function validateConfig(config: unknown): MmConfig {
  const c = (config ?? {}) as Partial<MmConfig>;
  if (!Number.isInteger(c.frames) || c.frames! < 16) throw new Error(`mm config: frames must be an integer >= 16, got ${JSON.stringify(c.frames)}`);
  const nb = c.numaBalancing;
  if (nb !== undefined) {
    for (const [key, v] of Object.entries(nb)) {
      if (v !== undefined && !(Number.isFinite(v) && v > 0)) throw new Error(`mm config: numaBalancing.${key} must be a number > 0, got ${JSON.stringify(v)}`);
    }
  }
  return c as MmConfig;
}
