// Process exit (kernel/exit.c → mm/mmap.c exit_mmap, latest tree and v6.6 alike): mmu_notifier_release
// first, with no mmap lock (mn_itree_release: MMU_NOTIFY_RELEASE over [0, ULONG_MAX), blockable, to
// every subscription); then under mmap_read_lock, unmap_vmas (MMU_NOTIFY_UNMAP over [0, ULONG_MAX)),
// which subscriptions still in the tree get too; then under mmap_write_lock the VMAs go
// (free_pgtables, remove_vma). So a driver holding the read lock (a userptr walk) does not delay
// the unmap but does delay the teardown, and one holding it for write (kfd creating a range)
// delays both. The subscriptions are not removed: their drivers must call
// mmu_interval_notifier_remove.
import type { Envelope, Message } from '@svmsim/runtime';
import { p2pdmaVmaRefs } from './device-memory.js';
import { mmu_notifier_invalidate_range_end, mmu_notifier_invalidate_range_start } from './invalidate.js';
import type { Kernel } from './kernel.js';
import { mmap_read_lock, mmap_read_unlock, mmap_write_lock, mmap_write_unlock } from './mmap-lock.js';
import { VPN_LIMIT } from './page-table.js';
import type { Process } from './process.js';
import { ESRCH, type Exit } from './protocol.js';
import { processTask } from './task.js';

/** ULONG_MAX as far as a double can say it exactly. */
const ADDR_MAX = Number.MAX_SAFE_INTEGER;

export function sys_exit(k: Kernel, env: Envelope<Message>, m: Exit): void {
  const p = k.proc(m.pid);
  if (!p || p.exiting) return k.ctx.reply(env, { type: 'syscall_result', ret: ESRCH });
  exit_mmap(k, p, () => k.replyAfter(env, { type: 'syscall_result', ret: 0 }, k.costs.syscallNs));
}

export function exit_mmap(k: Kernel, p: Process, done: () => void): void {
  p.exiting = true; // from here every fault fails (fault.ts), as mmget_not_zero would
  const release = { start: 0, end: ADDR_MAX, event: 'MMU_NOTIFY_RELEASE' as const, blockable: true, owner: null, task: processTask(p), caller: 'exit_mmap' };
  mmu_notifier_invalidate_range_start(k, p, release, (_r, relInv) => {
    mmu_notifier_invalidate_range_end(k, relInv);
    const unmap = { ...release, event: 'MMU_NOTIFY_UNMAP' as const };
    // Lock order as every syscall has it: mmap_lock, then the range lock (range-lock.ts). Exit
    // once took the range lock first and held it across mmap_write_lock: a madvise holding the
    // read lock and waiting for the range deadlocked it.
    mmap_read_lock(k, p, '', () => p.locks.lock(0, VPN_LIMIT, 'exit_mmap', (lock) => {
      mmu_notifier_invalidate_range_start(k, p, unmap, (_r2, inv) => {
        p.pt.forEach(0, VPN_LIMIT, (vpn) => k.zapPte(p, vpn));
        mmu_notifier_invalidate_range_end(k, inv);
        p.locks.unlock(lock);
        mmap_read_unlock(k, p, '');
        p.oomSkip = true; // MMF_OOM_SKIP: the memory is gone, the reaper has nothing left to do
        mmap_write_lock(k, p, () => p.locks.lock(0, VPN_LIMIT, 'exit_mmap', (teardown) => {
          for (const v of p.vmas.list) p2pdmaVmaRefs(k, v, false);
          p.vmas.list.length = 0;
          p.alive = false;
          k.oracle('process_exit', { pid: p.pid });
          p.locks.unlock(teardown);
          mmap_write_unlock(k, p);
          done();
        }));
      });
    }));
  });
}
