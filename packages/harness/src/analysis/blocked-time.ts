// Time each task spent blocked in invalidations: the union of its waits, not their sum. One task
// name can have several invalidations open at once (kswapd's is one thread, but a process's name
// stands for all its threads, and kthreads like the writeback flusher work through several pages
// in turn with overlapping waits): time counts once while at least one of them is open.
export class BlockedTime {
  private readonly open = new Map<string, { n: number; since: number }>();
  private readonly totalNs = new Map<string, number>();

  begin(task: string, t: number): void {
    const o = this.open.get(task);
    if (o === undefined || o.n === 0) this.open.set(task, { n: 1, since: t });
    else o.n++;
  }

  end(task: string, t: number): void {
    const o = this.open.get(task);
    if (o === undefined || o.n === 0) return;
    if (--o.n === 0) this.totalNs.set(task, (this.totalNs.get(task) ?? 0) + (t - o.since));
  }

  /** Per task, ns blocked up to `now` (waits still open count to `now`). */
  byTask(now: number): Map<string, number> {
    const out = new Map(this.totalNs);
    for (const [task, o] of this.open) if (o.n > 0) out.set(task, (out.get(task) ?? 0) + (now - o.since));
    return out;
  }
}
