// Who mm works for: the kernel task in whose context an operation runs, named as the kernel's
// hung-task report names it (kernel/hung_task.c: `comm:pid` for a process's thread, the kthread's
// comm otherwise). mm stamps every invalidation with its task and the kernel function that started
// it (`invalidate_start` fields `task`, `caller`), so that a trace says who waited for whom.
//
// Simplification: work a device asks for (hmm_range_fault, gup, migrate_vma) runs in the context of
// the process whose memory it is — as amdgpu's CS ioctl does; a driver's fault worker (a kworker in
// the kernel) is named by its device only where mm knows no process.
import type { Process } from './process.js';

/** task_struct.comm holds TASK_COMM_LEN - 1 = 15 characters. */
export const TASK_COMM_LEN = 16;

export const KSWAPD = 'kswapd0';
export const KSMD = 'ksmd';
export const OOM_REAPER = 'oom_reaper';
/** The writeback flusher (kworker/u*:*+flush-<bdi>). */
export const FLUSHER = 'kworker/flush';

/** A process's (main) thread, `comm:pid`. */
export function processTask(p: Process): string {
  return `${p.comm}:${p.pid}`;
}

/** What `comm` a process gets: the name it was created with, cut to TASK_COMM_LEN - 1 characters. */
export function commOf(name: unknown, pid: number): string {
  if (typeof name !== 'string' || name.length === 0) return `pid${pid}`;
  return name.slice(0, TASK_COMM_LEN - 1);
}
