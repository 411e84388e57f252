// Counters over time in the trace: an actor's gauges (free frames, pinned pages, pages in VRAM…)
// as one event `ev` {name: value…}. Sampled when the actor asks (after handling a message), at most
// once per `intervalNs` of simulated time and only when a value changed, so that counter tracks
// cost a bounded share of a trace whatever the message rate. A trace event is not a message:
// sampling never changes a run.
import type { Ctx } from './types.js';

/** The default: at most one sample per 10 µs of simulated time. */
export const COUNTER_SAMPLE_INTERVAL_NS = 10_000;

export class CounterSampler {
  private lastNs = -Infinity;
  private last: number[] = [];

  constructor(
    private readonly ev: string,
    private readonly intervalNs = COUNTER_SAMPLE_INTERVAL_NS,
  ) {}

  /** `read` is called only when a sample is due. */
  sample(ctx: Ctx<never>, read: () => Record<string, number>): void {
    if (!ctx.tracing) return;
    const now = ctx.now();
    if (now - this.lastNs < this.intervalNs) return;
    const values = read();
    const list = Object.values(values);
    if (list.length === this.last.length && list.every((v, i) => v === this.last[i])) return;
    this.last = list;
    this.lastNs = now;
    ctx.trace(this.ev, values);
  }
}
