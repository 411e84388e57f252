// Invalidations as the trace shows them (kernel-mm/src/invalidate.ts emits the events):
//
//   mmu_interval_notifier_insert {sub, pid, start, last, dev}   a device subscribes an interval
//   invalidate_start {inv, pid, start, end, event, subs, task, caller, …}   mm starts one; `task`
//                                         waits (kswapd0, a process's thread, ksmd…) until
//   invalidate_ack {inv, sub, dev, ok}    … every subscription has answered,
//   invalidate_end {inv}                  then changes the PTEs and ends it.
//
// For each invalidation the time each subscriber kept mm waiting is start → its ack: per
// mmu_notifier_event, per device, and per (waiting task, device): who waited on whom.
import type { TraceLine } from '@svmsim/runtime';
import { Distribution } from './distribution.js';
import { Series } from './series.js';

export interface SubInfo {
  sub: number;
  dev: string;
  pid: number;
  /** Bytes, [start, last]. */
  start: number;
  last: number;
}

export interface AckRecord {
  sub: number;
  dev: string;
  t: number;
  ok: boolean;
  line: number;
}

export interface InvRecord {
  inv: number;
  pid: number;
  start: number;
  end: number;
  event: string;
  blockable: boolean;
  owner: string | null;
  task: string;
  caller: string;
  subs: number[];
  startT: number;
  startLine: number;
  acks: AckRecord[];
  /** When its task stopped waiting: the last subscriber's ack (or the end). */
  settledT?: number;
  endT?: number;
}

export interface InvalidationEvents {
  started?(inv: InvRecord): void;
  acked?(inv: InvRecord, ack: AckRecord): void;
  ended?(inv: InvRecord): void;
}

/** "MMU_NOTIFY_CLEAR" → "clear", as the kernel's enum reads without its prefix. */
export function eventName(e: string): string {
  return e.replace(/^MMU_NOTIFY_/, '').toLowerCase();
}

export class InvalidationTracker {
  /** The `ev`s of the lines it reads: the model hands it only those. */
  static readonly events: readonly string[] = ['mmu_interval_notifier_insert', 'invalidate_start', 'invalidate_ack', 'invalidate_end'];

  readonly subs = new Map<number, SubInfo>();
  readonly open = new Map<number, InvRecord>();
  readonly byEvent = new Map<string, number>();
  /** Invalidations that reached at least one subscriber, and those that reached none. */
  withSubscribers = 0;
  withoutSubscribers = 0;
  refused = 0;
  /** start → ack, per device; per device and event; per (task, device). */
  readonly waitByDev = new Map<string, Distribution>();
  readonly waitByDevEvent = new Map<string, Distribution>();
  readonly waitByTaskDev = new Map<string, Distribution>();
  /** start → end of invalidations with subscribers. */
  readonly duration = new Distribution();
  /** Each ack's wait over time, per device (for plots). */
  readonly waitSeries = new Map<string, Series>();

  constructor(private readonly on: InvalidationEvents = {}) {}

  line(l: TraceLine, index: number): void {
    switch (l.ev) {
      case 'mmu_interval_notifier_insert': {
        const sub = l.sub as number;
        this.subs.set(sub, { sub, dev: l.dev as string, pid: l.pid as number, start: l.start as number, last: l.last as number });
        return;
      }
      case 'invalidate_start': {
        const subs = (l.subs as number[]) ?? [];
        const r: InvRecord = {
          inv: l.inv as number, pid: l.pid as number, start: l.start as number, end: l.end as number, event: l.event as string,
          blockable: l.blockable as boolean, owner: (l.owner as string | null) ?? null, task: (l.task as string) ?? '?',
          caller: (l.caller as string) ?? '?', subs, startT: l.t, startLine: index, acks: [],
        };
        const ev = eventName(r.event);
        this.byEvent.set(ev, (this.byEvent.get(ev) ?? 0) + 1);
        if (subs.length === 0) {
          this.withoutSubscribers++;
          return;
        }
        this.withSubscribers++;
        this.open.set(r.inv, r);
        this.on.started?.(r);
        return;
      }
      case 'invalidate_ack': {
        const r = this.open.get(l.inv as number);
        if (r === undefined) return;
        const ack: AckRecord = { sub: l.sub as number, dev: l.dev as string, t: l.t, ok: l.ok as boolean, line: index };
        r.acks.push(ack);
        if (!ack.ok) this.refused++;
        const wait = l.t - r.startT;
        add(this.waitByDev, ack.dev, wait);
        add(this.waitByDevEvent, `${ack.dev}\u0000${eventName(r.event)}`, wait);
        add(this.waitByTaskDev, `${r.task}\u0000${ack.dev}`, wait);
        let s = this.waitSeries.get(ack.dev);
        if (s === undefined) this.waitSeries.set(ack.dev, (s = new Series('max')));
        s.add(r.startT, wait);
        this.on.acked?.(r, ack);
        return;
      }
      case 'invalidate_end': {
        const r = this.open.get(l.inv as number);
        if (r === undefined) return;
        this.open.delete(r.inv);
        r.endT = l.t;
        this.duration.add(l.t - r.startT);
        this.on.ended?.(r);
        return;
      }
    }
  }

  /** The subscriptions of `r` that have not answered yet. */
  static waitingSubs(r: InvRecord): number[] {
    return r.subs.filter((s) => !r.acks.some((a) => a.sub === s));
  }
}

function add(m: Map<string, Distribution>, k: string, v: number): void {
  let d = m.get(k);
  if (d === undefined) m.set(k, (d = new Distribution()));
  d.add(v);
}
