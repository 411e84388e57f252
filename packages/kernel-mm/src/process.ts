// A process's mm_struct: its VMAs, its page table, its notifier subscriptions, its range locks and its mmap_lock.
import { MmuNotifierSubscriptions } from './interval-notifier.js';
import { PageTable } from './page-table.js';
import { MmapLock } from './mmap-lock.js';
import { RangeLocks } from './range-lock.js';
import { VmaList } from './vma.js';

/** Where bottom-up mmap placement starts: 16 MiB, page number 4096 (mmap_min_addr is far lower). */
export const MMAP_BASE_VPN = 4096;

export class Process {
  readonly vmas = new VmaList();
  readonly pt = new PageTable();
  readonly notifiers = new MmuNotifierSubscriptions();
  readonly locks = new RangeLocks();
  /** mm->mmap_lock (mmap-lock.ts). */
  readonly mmapLock = new MmapLock();
  /** MMF_HAS_PINNED: set by the first FOLL_PIN on this mm; fork then checks each anon page. */
  hasPinned = false;
  /** Exiting or reaped: no new faults. */
  exiting = false;
  alive = true;
  /** A child whose address space fork (dup_mmap) is still copying: not alive yet, but its PTEs count. */
  forking = false;
  /** The actor that runs this process's threads: it gets SIGKILL when the OOM killer picks it. */
  owner = '';
  /** Picked by the OOM killer (tsk_is_oom_victim). */
  oomVictim = false;
  /** MMF_OOM_SKIP: the OOM reaper has given up or finished; the killer may pick another victim. */
  oomSkip = false;
  /** mm->numa_scan_offset (a page number) and numa_scan_seq: where task_numa_work goes on. */
  numaScanOffset = 0;
  numaScanSeq = 0;
  rssAnon = 0;
  rssFile = 0;

  constructor(
    readonly pid: number,
    readonly parent: number | null,
    /** task_struct.comm (task.ts). */
    readonly comm: string,
  ) {}

  get rss(): number {
    return this.rssAnon + this.rssFile;
  }
}
