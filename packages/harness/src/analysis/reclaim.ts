// Reclaim and the OOM killer in a trace (kernel-mm: the tracepoints mm_vmscan_kswapd_wake / _sleep
// {nr_reclaimed} (kswapd_wake / kswapd_sleep in older traces), mm_vmscan_direct_reclaim_begin /
// _end {task, nr_reclaimed}, alloc_stall {task, ns, ok}; oom_kill {pid, comm, rss, badness, free},
// oom_reaper {pid, complete, attempts}).
import type { TraceLine } from '@svmsim/runtime';
import { Distribution } from './distribution.js';

export interface OomKill {
  t: number;
  pid: number;
  comm: string;
  rss: number;
  badness: number;
}

export class ReclaimStats {
  /** The `ev`s of the lines it reads: the model hands it only those. */
  static readonly events: readonly string[] = ['mm_vmscan_kswapd_wake', 'kswapd_wake', 'mm_vmscan_kswapd_sleep', 'kswapd_sleep', 'mm_vmscan_direct_reclaim_end', 'alloc_stall', 'oom_kill', 'oom_reaper'];

  kswapdRuns = 0;
  kswapdAwakeNs = 0;
  kswapdReclaimed = 0;
  private kswapdSince = -1;
  directRounds = 0;
  directReclaimed = 0;
  readonly directByTask = new Map<string, { rounds: number; reclaimed: number }>();
  readonly allocStall = new Distribution();
  allocFailures = 0;
  readonly oomKills: OomKill[] = [];
  oomReaps = 0;
  oomReapsIncomplete = 0;

  line(l: TraceLine): void {
    switch (l.ev) {
      case 'mm_vmscan_kswapd_wake':
      case 'kswapd_wake':
        this.kswapdRuns++;
        this.kswapdSince = l.t;
        return;
      case 'mm_vmscan_kswapd_sleep':
      case 'kswapd_sleep':
        if (this.kswapdSince >= 0) this.kswapdAwakeNs += l.t - this.kswapdSince;
        this.kswapdSince = -1;
        this.kswapdReclaimed += (l.nr_reclaimed as number) ?? 0;
        return;
      case 'mm_vmscan_direct_reclaim_end': {
        const n = (l.nr_reclaimed as number) ?? 0;
        this.directRounds++;
        this.directReclaimed += n;
        const task = String(l.task);
        const d = this.directByTask.get(task) ?? { rounds: 0, reclaimed: 0 };
        d.rounds++;
        d.reclaimed += n;
        this.directByTask.set(task, d);
        return;
      }
      case 'alloc_stall':
        this.allocStall.add(l.ns as number);
        if (l.ok === false) this.allocFailures++;
        return;
      case 'oom_kill':
        this.oomKills.push({ t: l.t, pid: l.pid as number, comm: (l.comm as string) ?? '?', rss: l.rss as number, badness: l.badness as number });
        return;
      case 'oom_reaper':
        this.oomReaps++;
        if (l.complete === false) this.oomReapsIncomplete++;
        return;
    }
  }

  /** kswapd's time awake up to `tEnd` (a run that ends while it is awake counts until the end). */
  awakeNs(tEnd: number): number {
    return this.kswapdAwakeNs + (this.kswapdSince >= 0 ? tEnd - this.kswapdSince : 0);
  }
}
