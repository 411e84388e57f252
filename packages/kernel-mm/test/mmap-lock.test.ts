import { describe, expect, it } from 'vitest';
import type { Kernel } from '@svmsim/kernel-mm/kernel';
import { mmap_lock_drop_owner, mmap_read_lock, mmap_read_trylock, mmap_read_unlock, mmap_write_downgrade, mmap_write_held_by, mmap_write_lock, mmap_write_unlock } from '@svmsim/kernel-mm/mmap-lock';
import { Process } from '@svmsim/kernel-mm/process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { readTrace } from '@svmsim/runtime';
import { MADV_DONTNEED, MAP_ANONYMOUS, MAP_FIXED, MAP_PRIVATE, PAGE_SIZE, PROT_READ, PROT_WRITE } from '@svmsim/kernel-mm';
import { ret, runMm } from '@svmsim/kernel-mm/testing/mm-harness';

/** Just what mmap-lock.ts uses of a Kernel: a clock, the stats, bounce, the processes. */
function fakeKernel() {
  const p = new Process(1, null, 'app');
  const k = {
    ctx: { now: () => 0, tracing: false },
    stats: { mmapWriteLockWaitNs: [] as number[] },
    bounce: (fn: () => void) => fn(),
    procs: new Map([[1, p]]),
  } as unknown as Kernel;
  return { k, p };
}

describe('mmap_lock (kernel/locking/rwsem.c semantics, latest)', () => {
  it('is writer-fair: a waiting writer blocks new readers; the readers queued behind it go in together after it', () => {
    const { k, p } = fakeKernel();
    const log: string[] = [];
    mmap_read_lock(k, p, 'gpu0', () => log.push('r1'));
    mmap_write_lock(k, p, () => log.push('w'));
    mmap_read_lock(k, p, 'gpu0', () => log.push('r2'));
    mmap_read_lock(k, p, 'rdma0', () => log.push('r3'));
    expect(log).toEqual(['r1']);
    expect(mmap_read_unlock(k, p, 'gpu0')).toBe(true);
    expect(log).toEqual(['r1', 'w']);
    mmap_write_unlock(k, p);
    expect(log).toEqual(['r1', 'w', 'r2', 'r3']);
    expect(p.mmapLock.readers).toBe(2);
    expect(mmap_read_unlock(k, p, 'nobody')).toBe(false);
  });

  it('actor_died: a driver that dies holding the read lock lets the munmap behind it in (mm-actor.ts mmap_lock_drop_owner)', () => {
    const { k, p } = fakeKernel();
    let written = false;
    mmap_read_lock(k, p, 'gpu0', () => {});
    mmap_read_lock(k, p, 'gpu0', () => {});
    mmap_write_lock(k, p, () => (written = true));
    expect(written).toBe(false);
    mmap_lock_drop_owner(k, 'gpu0');
    expect(written).toBe(true);
    expect(p.mmapLock.readers).toBe(0);
    mmap_write_unlock(k, p);
    expect(p.mmapLock.writer).toBe(false);
  });

  it('downgrade_write: the driver keeps a read lock and the readers queued at the head join it; a writer queued behind them still waits', () => {
    const { k, p } = fakeKernel();
    const log: string[] = [];
    mmap_write_lock(k, p, () => log.push('kfd w'), 'gpu0');
    mmap_read_lock(k, p, 'rdma0', () => log.push('r'));
    mmap_write_lock(k, p, () => log.push('munmap w'));
    expect(mmap_write_held_by(p, 'gpu0')).toBe(true);
    expect(mmap_write_held_by(p, 'rdma0')).toBe(false);
    mmap_write_downgrade(k, p);
    expect(log).toEqual(['kfd w', 'r']);
    expect(p.mmapLock.readersBy.get('gpu0')).toBe(1);
    expect(mmap_read_unlock(k, p, 'rdma0')).toBe(true);
    expect(log).toEqual(['kfd w', 'r']);
    expect(mmap_read_unlock(k, p, 'gpu0')).toBe(true);
    expect(log).toEqual(['kfd w', 'r', 'munmap w']);
  });

  it('actor_died: a driver that dies holding the write lock releases it', () => {
    const { k, p } = fakeKernel();
    let read = false;
    mmap_write_lock(k, p, () => {}, 'gpu0');
    mmap_read_lock(k, p, 'app', () => (read = true));
    mmap_lock_drop_owner(k, 'gpu0');
    expect(read).toBe(true);
    expect(p.mmapLock.writer).toBe(false);
  });

  it('mmap_read_trylock (down_read_trylock) fails under a writer and while anyone waits, and never queues', () => {
    const { k, p } = fakeKernel();
    expect(mmap_read_trylock(k, p, 'oom_reaper')).toBe(true);
    mmap_write_lock(k, p, () => {});
    expect(mmap_read_trylock(k, p, 'oom_reaper')).toBe(false); // a writer waits
    expect(p.mmapLock.waiting).toHaveLength(1);
    expect(mmap_read_unlock(k, p, 'oom_reaper')).toBe(true);
    expect(mmap_read_trylock(k, p, 'oom_reaper')).toBe(false); // the writer holds it
    mmap_write_unlock(k, p);
    expect(mmap_read_trylock(k, p, 'oom_reaper')).toBe(true);
  });
});

describe('exit_mmap and the mmap lock (mm/mmap.c exit_mmap, latest)', () => {
  it('a driver holding mmap_read_lock does not delay the unmap (read lock) but delays the VMAs\' teardown (write lock) until its unlock', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'svmsim-exit-'));
    try {
      const A = 1 << 24;
      const UNLOCK_NS = 1e6;
      await runMm([
        { msg: { type: 'process_create' } as never },
        { msg: { type: 'mmap', pid: 1, addr: A, length: PAGE_SIZE, prot: PROT_READ | PROT_WRITE, flags: MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED } as never },
        { msg: { type: 'cpu_access', pid: 1, addr: A, write: true, value: 7 } as never },
        { group: [
          { msg: { type: 'mmap_read_lock', pid: 1 } as never },
          { msg: { type: 'exit', pid: 1 } as never, afterNs: 1_000 },
          { msg: { type: 'mmap_read_unlock', pid: 1 } as never, afterNs: UNLOCK_NS },
        ] },
      ], { traceDir: dir });
      const t = readTrace(dir);
      const unmap = t.find((l) => l.event === 'MMU_NOTIFY_UNMAP');
      // The first write lock after the exit is sent (the mmap's came before).
      const writeGranted = t.find((l) => l.ev === 'mmap_lock_acquire_returned' && l.write === true && l.t > 1_000);
      expect(unmap, 'exit_mmap sends MMU_NOTIFY_UNMAP').toBeDefined();
      expect(unmap!.t).toBeLessThan(UNLOCK_NS);
      expect(writeGranted!.t).toBeGreaterThanOrEqual(UNLOCK_NS);
      expect(writeGranted!.waitedNs as number).toBeGreaterThan(0);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('a madvise granted the read lock together with exit does not deadlock it (lock order: mmap_lock, then the range)', async () => {
    const A = 1 << 24;
    // A writer holds mmap_lock while madvise and then exit queue for the read lock; its unlock
    // grants both at once. Exit once held the range lock from before its read lock to after its
    // write lock, so madvise (read lock held, waiting for the range) and exit (range held, waiting
    // for the write lock) waited on each other and the run ended quiescent with both unanswered.
    const { r, results } = await runMm([
      { msg: { type: 'process_create' } as never },
      { msg: { type: 'mmap', pid: 1, addr: A, length: 4 * PAGE_SIZE, prot: PROT_READ | PROT_WRITE, flags: MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED } as never },
      { msg: { type: 'cpu_access', pid: 1, addr: A, write: true, value: 7 } as never },
      { group: [
        { msg: { type: 'mmap_write_lock', pid: 1 } as never },
        { msg: { type: 'madvise', pid: 1, addr: A, length: 4 * PAGE_SIZE, advice: MADV_DONTNEED } as never, afterNs: 1_000 },
        { msg: { type: 'exit', pid: 1 } as never, afterNs: 2_000 },
        { msg: { type: 'mmap_write_unlock', pid: 1 } as never, afterNs: 10_000 },
      ] },
    ]);
    expect(r.endedBy).not.toBe('quiescent');
    const [madvise, exit] = results.slice(-3, -1).map(ret);
    expect(madvise).toBe(0);
    expect(exit).toBe(0);
  });
});
