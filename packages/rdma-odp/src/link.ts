// One direction of the link between the NIC and the peer: a packet leaves once the link has sent
// what was queued before it (serialisation, `perPageNs` per page of payload) and arrives
// `latencyNs` later. Arrival times never decrease, so packets arrive in the order they were sent,
// as on a real link (the timers that carry them fire in time order, ties in the order set).
export interface WireCosts {
  /** One way, through the switch, ns. */
  wireLatencyNs: number;
  /** Serialising one 4 KiB page of payload (100 Gb/s: ~330 ns). */
  wirePerPageNs: number;
}
export const DEFAULT_WIRE: WireCosts = { wireLatencyNs: 1_000, wirePerPageNs: 330 };

export class Link {
  private freeAt = 0;
  packets = 0;

  constructor(
    private readonly costs: WireCosts,
    private readonly now: () => number,
    private readonly after: (ns: number, then: () => void) => void,
  ) {}

  /** Send a packet carrying `pages` pages of payload: `deliver` runs when it arrives. */
  send(pages: number, deliver: () => void): void {
    const departs = Math.max(this.now(), this.freeAt) + pages * this.costs.wirePerPageNs;
    this.freeAt = departs;
    this.packets++;
    this.after(departs + this.costs.wireLatencyNs - this.now(), deliver);
  }
}
