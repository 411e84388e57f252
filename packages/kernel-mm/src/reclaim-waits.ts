// How long reclaim waited in notifiers, per waiter (kswapd, direct reclaim): the waits that ended
// and those still open, so that a summary taken mid-wait (a run that ends while kswapd still waits
// for a device's ack) counts the time waited so far.
export type Waiter = 'kswapd' | 'direct';

export class ReclaimWaits {
  private readonly open = new Map<number, { who: Waiter; t0: number }>();
  private readonly endedNs: Record<Waiter, number> = { kswapd: 0, direct: 0 };
  private nextId = 1;

  begin(who: Waiter, t0: number): number {
    const id = this.nextId++;
    this.open.set(id, { who, t0 });
    return id;
  }

  end(id: number, now: number): void {
    const w = this.open.get(id)!;
    this.open.delete(id);
    this.endedNs[w.who] += now - w.t0;
  }

  /** Time `who` has waited in notifiers up to `now`, ns: the waits that ended and those still open. */
  blockedNs(who: Waiter, now: number): number {
    let ns = this.endedNs[who];
    for (const w of this.open.values()) if (w.who === who) ns += now - w.t0;
    return ns;
  }
}
