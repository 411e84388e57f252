// Reclaim's waits in notifiers that have not ended yet, so that a summary taken mid-wait (a run
// that ends while kswapd still waits for a device's ack) counts the time waited so far.
export type Waiter = 'kswapd' | 'direct';

export class ReclaimWaits {
  private readonly open = new Map<number, { who: Waiter; t0: number }>();
  private nextId = 1;

  begin(who: Waiter, t0: number): number {
    const id = this.nextId++;
    this.open.set(id, { who, t0 });
    return id;
  }

  end(id: number): void {
    this.open.delete(id);
  }

  /** Time waited so far by the waits still open, ns. */
  inProgressNs(who: Waiter, now: number): number {
    let ns = 0;
    for (const w of this.open.values()) if (w.who === who) ns += now - w.t0;
    return ns;
  }
}
