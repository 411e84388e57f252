// `svmsim export --perfetto`: the trace as Chrome trace-event JSON, which ui.perfetto.dev and
// chrome://tracing open (the format: "Trace Event Format", Google; Perfetto's JSON importer).
//
//   one process per actor; in each, tracks ("threads") by kind — requests out, requests in,
//   invalidations, faults, kswapd0, direct reclaim, a GPU's rings and retry faults — each split
//   into lanes so that its slices never overlap: a slice takes the first lane that has been free
//   since its start, so every lane is a sequence of disjoint `X` (complete) slices and nesting can
//   never be unbalanced (Perfetto rejects B/E that do not nest). An invalidation's lane holds it
//   and, nested inside, one child per subscriber from its start to that subscriber's ack.
//   flows (`s` → `f`, `bp: e`): request → where the handler took it, the handler's answer → the
//   requester, and an invalidation → each subscriber's invalidate callback.
//   counters (`C`): mm's free frames, pinned pages, swap in use, RSS; a GPU's VRAM in use; DMA in
//   flight per device.
// Slices last at least 1 ns, flow points sit inside their slices, and a flow's start is written
// before its end (Perfetto keeps file order among events of one time stamp), so every flow binds.
// Output is streamed: memory is the slices open at a time, not the trace.
import fs from 'node:fs';
import type { TraceLine } from '@svmsim/runtime';
import type { JobRecord } from './gpu-jobs.js';
import { eventName, type AckRecord, type InvRecord } from './invalidations.js';
import type { ModelObserver } from './model.js';
import { COUNTER_LABELS } from './counters.js';
import type { RequestRecord } from './requests.js';

/** The events this exporter writes (perfetto-schema.json describes them for tests). */
export type ChromeEvent =
  | { ph: 'M'; name: 'process_name' | 'thread_name' | 'process_sort_index' | 'thread_sort_index'; pid: number; tid?: number; args: Record<string, unknown> }
  | { ph: 'X'; name: string; cat: string; ts: number; dur: number; pid: number; tid: number; args?: Record<string, unknown> }
  | { ph: 's' | 'f'; name: string; cat: 'flow'; id: number; ts: number; pid: number; tid: number; bp?: 'e' }
  | { ph: 'C'; name: string; ts: number; pid: number; args: Record<string, number> };

/** Buffered output of the events, comma-separated, in one JSON object. */
class ChromeJsonWriter {
  private fd: number;
  private buf = '';
  private first = true;
  events = 0;

  constructor(file: string) {
    this.fd = fs.openSync(file, 'w');
    fs.writeSync(this.fd, '{"displayTimeUnit":"ns","traceEvents":[\n');
  }

  write(e: ChromeEvent): void {
    this.buf += (this.first ? '' : ',\n') + JSON.stringify(e);
    this.first = false;
    this.events++;
    if (this.buf.length >= 1 << 20) this.flush();
  }

  close(metadata: Record<string, unknown>): void {
    this.buf += `\n],"metadata":${JSON.stringify(metadata)}}\n`;
    this.flush();
    fs.closeSync(this.fd);
  }

  private flush(): void {
    fs.writeSync(this.fd, this.buf);
    this.buf = '';
  }
}

interface Lane {
  tid: number;
  open: boolean;
  /** The end of its last slice, ns (the lane is free for a slice starting at or after it). */
  lastEnd: number;
}

interface Flow {
  id: number;
  ph: 's' | 'f';
  ns: number;
}

interface Slice {
  pid: number;
  lane: Lane;
  startNs: number;
  name: string;
  cat: string;
  args?: Record<string, unknown>;
  flows: Flow[];
  /** Slices nested inside it (an invalidation's waits), written before it. */
  children?: { startNs: number; endNs: number; name: string; args?: Record<string, unknown> }[];
}

interface HeldRetro {
  actor: string;
  track: string;
  startNs: number;
  endNs: number;
  name: string;
  cat: string;
  args?: Record<string, unknown>;
  count: number;
}

const ns = (t: number): number => Math.round(t);
const us = (n: number): number => n / 1000;
const hex = (n: number): string => `0x${n.toString(16)}`;

export class PerfettoExporter implements ModelObserver {
  private readonly out: ChromeJsonWriter;
  private readonly pids = new Map<string, number>();
  private readonly tracks = new Map<string, Lane[]>();
  private nextTid = 1;
  private nextFlow = 1;
  private readonly requestOut = new Map<RequestRecord, Slice>();
  private readonly requestIn = new Map<RequestRecord, Slice>();
  private readonly invSlices = new Map<number, Slice>();
  /** Per subscription, invalidations whose invalidate request has not been seen yet (mm sends them in order). */
  private readonly invBySub = new Map<number, InvRecord[]>();
  /** The flow from an invalidation to its subscriber's callback, by the invalidate request. */
  private readonly invFlow = new Map<RequestRecord, number>();
  /** The flow of an answer, from the handler's slice to the requester's, by request. */
  private readonly replyFlow = new Map<RequestRecord, number>();
  private readonly kswapd = new Map<string, Slice>();
  private readonly direct = new Map<string, Slice>();
  private readonly jobSlices = new Map<string, Slice>();
  /** Per track, the last slice known only at its end, held back in case the next one is its twin. */
  private readonly heldRetro = new Map<string, HeldRetro>();
  slices = 0;
  flows = 0;

  /** `marked`: the trace marks its requests; if not (an old trace), sends never answered were one-way messages, not open requests. */
  constructor(
    file: string,
    private readonly marked = true,
  ) {
    this.out = new ChromeJsonWriter(file);
  }

  // ---- requests ----

  requested(r: RequestRecord): void {
    const s = this.open(r.requester, 'requests out', ns(r.sendT), `${r.type} → ${r.handler}`, 'request', { id: r.id });
    this.requestOut.set(r, s);
    if (r.type === 'invalidate' || r.type === 'invalidate_multipass') {
      const queue = this.invBySub.get(r.msg.sub as number);
      const inv = queue?.shift();
      const from = inv && this.invSlices.get(inv.inv);
      if (from) {
        const id = this.nextFlow++;
        this.flowAtStart(from, id, 's');
        this.invFlow.set(r, id);
      }
    }
  }

  arrived(r: RequestRecord, t: number): void {
    const s = this.open(r.handler, 'requests in', ns(t), `${r.type} ← ${r.requester}`, 'request', { id: r.id });
    this.requestIn.set(r, s);
    const out = this.requestOut.get(r);
    if (out) {
      const id = this.nextFlow++;
      this.flowAtStart(out, id, 's');
      this.flowAtStart(s, id, 'f');
    }
    const fromInv = this.invFlow.get(r);
    if (fromInv !== undefined) {
      this.flowAtStart(s, fromInv, 'f');
      this.invFlow.delete(r);
    }
  }

  answered(r: RequestRecord, t: number): void {
    const s = this.requestIn.get(r);
    if (!s) return;
    this.requestIn.delete(r);
    if (this.requestOut.has(r)) {
      const id = this.nextFlow++;
      s.flows.push({ id, ph: 's', ns: ns(t) });
      this.replyFlow.set(r, id);
    }
    this.close(s, ns(t), { reply: r.replyType });
  }

  done(r: RequestRecord): void {
    const s = this.requestOut.get(r);
    if (!s) return;
    this.requestOut.delete(r);
    const reply = this.replyFlow.get(r);
    if (reply !== undefined) {
      this.replyFlow.delete(r);
      s.flows.push({ id: reply, ph: 'f', ns: ns(r.doneT!) });
    }
    this.close(s, ns(r.doneT!), { outcome: r.outcome, reply: r.replyType });
  }

  // ---- invalidations ----

  started(inv: InvRecord): void {
    const s = this.open('mm', 'invalidations', ns(inv.startT), `${eventName(inv.event)} [${hex(inv.start)}, ${hex(inv.end)})`, 'invalidation', {
      inv: inv.inv, pid: inv.pid, task: inv.task, caller: inv.caller, blockable: inv.blockable, subs: inv.subs,
    });
    s.children = [];
    this.invSlices.set(inv.inv, s);
    for (const sub of inv.subs) {
      let q = this.invBySub.get(sub);
      if (q === undefined) this.invBySub.set(sub, (q = []));
      q.push(inv);
    }
  }

  acked(inv: InvRecord, ack: AckRecord): void {
    const s = this.invSlices.get(inv.inv);
    s?.children!.push({ startNs: ns(inv.startT), endNs: ns(ack.t), name: `waits for ${ack.dev}${ack.ok ? '' : ' (refused)'}`, args: { sub: ack.sub, waitNs: ack.t - inv.startT } });
  }

  ended(inv: InvRecord): void {
    const s = this.invSlices.get(inv.inv);
    if (!s) return;
    this.invSlices.delete(inv.inv);
    for (const sub of inv.subs) {
      const q = this.invBySub.get(sub);
      const i = q ? q.indexOf(inv) : -1;
      if (i >= 0) q!.splice(i, 1);
    }
    this.close(s, ns(inv.endT!), { acks: inv.acks.map((a) => ({ dev: a.dev, sub: a.sub, ok: a.ok, waitNs: a.t - inv.startT })) });
  }

  // ---- everything else, from the lines ----

  jobEnded(j: JobRecord): void {
    const key = `${j.dev}\u0000${j.job}`;
    const s = this.jobSlices.get(key);
    if (s) {
      this.jobSlices.delete(key);
      this.close(s, ns(j.endT!), {});
    }
  }

  line(l: TraceLine): void {
    switch (l.ev) {
      case 'gpu_job_start':
        this.jobSlices.set(`${l.actor}\u0000${l.job}`, this.open(l.actor, `jobs ${l.queue}`, ns(l.t), `job ${l.job}`, 'job', { job: l.job, durationNs: l.durationNs, waves: l.waves }));
        return;
      case 'gpu_submit_done':
        this.retro(l.actor, 'submissions', ns(l.t - (l.latencyNs as number)), ns(l.t), `submit job ${l.job}`, 'submission', { pagesWalked: l.pagesWalked, resubmissions: l.resubmissions });
        return;
      case 'page_fault':
        this.retro(l.actor, l.remote ? 'faults (for devices)' : 'faults', ns(l.t - (l.ns as number)), ns(l.t), `${l.kind} fault pid ${l.pid}`, 'fault', { addr: hex(l.addr as number), write: l.write, ret: l.ret });
        return;
      case 'gpu_fault_replay':
        for (const n of (l.ns as number[]) ?? []) this.retro(l.actor, 'retry faults', ns(l.t - n), ns(l.t), 'retry fault', 'fault', { latencyNs: n });
        return;
      case 'mm_vmscan_kswapd_wake':
      case 'kswapd_wake':
        if (!this.kswapd.has(l.actor)) this.kswapd.set(l.actor, this.open(l.actor, 'kswapd0', ns(l.t), 'kswapd', 'reclaim', { free: l.free }));
        return;
      case 'mm_vmscan_kswapd_sleep':
      case 'kswapd_sleep': {
        const s = this.kswapd.get(l.actor);
        if (s) {
          this.kswapd.delete(l.actor);
          this.close(s, ns(l.t), { free: l.free, nr_reclaimed: l.nr_reclaimed });
        }
        return;
      }
      case 'mm_vmscan_direct_reclaim_begin': {
        const key = `${l.actor}\u0000${l.task}`;
        if (!this.direct.has(key)) this.direct.set(key, this.open(l.actor, `direct reclaim ${l.task}`, ns(l.t), 'direct reclaim', 'reclaim', { task: l.task }));
        return;
      }
      case 'mm_vmscan_direct_reclaim_end': {
        const key = `${l.actor}\u0000${l.task}`;
        const s = this.direct.get(key);
        if (s) {
          this.direct.delete(key);
          this.close(s, ns(l.t), { nr_reclaimed: l.nr_reclaimed });
        }
        return;
      }
        return;
    }
  }

  /** The end of the trace: what is still open is closed there, marked open. */
  end(tEnd: number): void {
    const t = ns(tEnd);
    for (const h of this.heldRetro.values()) this.emitRetro(h);
    this.heldRetro.clear();
    const open = [this.invSlices, this.kswapd, this.direct, this.jobSlices, ...(this.marked ? [this.requestIn, this.requestOut] : [])] as Map<unknown, Slice>[];
    for (const m of open) {
      for (const s of m.values()) this.close(s, t, { open: true });
      m.clear();
    }
  }

  finish(metadata: Record<string, unknown>): { events: number; slices: number; flows: number } {
    this.out.close(metadata);
    return { events: this.out.events, slices: this.slices, flows: this.flows };
  }

  // ---- lanes and slices ----

  /** A counter sample (the model's counters.ts): a counter track of the actor's process. */
  counter(actor: string, counter: string, t: number, value: number): void {
    this.out.write({ ph: 'C', name: COUNTER_LABELS[counter] ?? counter, ts: us(ns(t)), pid: this.pid(actor), args: { value } });
  }

  private pid(actor: string): number {
    let p = this.pids.get(actor);
    if (p !== undefined) return p;
    p = this.pids.size + 1;
    this.pids.set(actor, p);
    this.out.write({ ph: 'M', name: 'process_name', pid: p, args: { name: actor } });
    this.out.write({ ph: 'M', name: 'process_sort_index', pid: p, args: { sort_index: sortIndex(actor) } });
    return p;
  }

  /** A lane of `track` free since `startNs` (a new one if none is). */
  private lane(actor: string, track: string, startNs: number): { pid: number; lane: Lane } {
    const pid = this.pid(actor);
    const key = `${actor}\u0000${track}`;
    let lanes = this.tracks.get(key);
    if (lanes === undefined) this.tracks.set(key, (lanes = []));
    let lane = lanes.find((l) => !l.open && l.lastEnd <= startNs);
    if (lane === undefined) {
      lane = { tid: this.nextTid++, open: false, lastEnd: -Infinity };
      lanes.push(lane);
      const name = lanes.length === 1 ? track : `${track} (${lanes.length})`;
      this.out.write({ ph: 'M', name: 'thread_name', pid, tid: lane.tid, args: { name } });
      this.out.write({ ph: 'M', name: 'thread_sort_index', pid, tid: lane.tid, args: { sort_index: lane.tid } });
    }
    lane.open = true;
    return { pid, lane };
  }

  private open(actor: string, track: string, startNs: number, name: string, cat: string, args?: Record<string, unknown>): Slice {
    const { pid, lane } = this.lane(actor, track, startNs);
    return { pid, lane, startNs, name, cat, args, flows: [] };
  }

  /**
   * A slice known only once it ended (a fault's duration comes with its end). Those of one track
   * with the same name, start and end (a walk faulting thousands of pages in one instant) become one
   * slice that counts them, or every one would need a lane of its own.
   */
  private retro(actor: string, track: string, startNs: number, endNs: number, name: string, cat: string, args?: Record<string, unknown>): void {
    const key = `${actor}\u0000${track}`;
    const held = this.heldRetro.get(key);
    if (held && held.startNs === startNs && held.endNs === endNs && held.name === name) {
      held.count++;
      return;
    }
    if (held) this.emitRetro(held);
    this.heldRetro.set(key, { actor, track, startNs, endNs, name, cat, args, count: 1 });
  }

  private emitRetro(h: HeldRetro): void {
    const args = h.count > 1 ? { ...h.args, count: h.count } : h.args;
    this.close(this.open(h.actor, h.track, h.startNs, h.count > 1 ? `${h.name} ×${h.count}` : h.name, h.cat, args), h.endNs, undefined);
  }

  /**
   * A flow end at the start of an open slice, written now: a flow's start must come before its end
   * in the file, since Perfetto keeps file order among events of one time stamp (an end read first
   * is an end without a start, and the arrow is lost).
   */
  private flowAtStart(s: Slice, id: number, ph: 's' | 'f'): void {
    const ts = us(s.startNs), tid = s.lane.tid;
    this.out.write(ph === 's' ? { ph: 's', name: 'message', cat: 'flow', id, ts, pid: s.pid, tid } : { ph: 'f', bp: 'e', name: 'message', cat: 'flow', id, ts, pid: s.pid, tid });
    if (ph === 's') this.flows++;
  }

  private close(s: Slice, endNs: number, more: Record<string, unknown> | undefined): void {
    const end = Math.max(endNs, s.startNs + 1);
    const tid = s.lane.tid;
    this.out.write({ ph: 'X', name: s.name, cat: s.cat, ts: us(s.startNs), dur: us(end - s.startNs), pid: s.pid, tid, args: { ...s.args, ...more } });
    this.slices++;
    for (const c of s.children ?? []) {
      const cs = Math.max(s.startNs, c.startNs), ce = Math.min(end, Math.max(c.endNs, cs + 1));
      this.out.write({ ph: 'X', name: c.name, cat: s.cat, ts: us(cs), dur: us(ce - cs), pid: s.pid, tid, args: c.args });
      this.slices++;
    }
    for (const f of s.flows) {
      // Inside the slice: [start, end - 1 ns].
      const at = Math.min(Math.max(f.ns, s.startNs), end - 1);
      this.out.write(f.ph === 's' ? { ph: 's', name: 'message', cat: 'flow', id: f.id, ts: us(at), pid: s.pid, tid } : { ph: 'f', bp: 'e', name: 'message', cat: 'flow', id: f.id, ts: us(at), pid: s.pid, tid });
      if (f.ph === 's') this.flows++;
    }
    s.lane.open = false;
    s.lane.lastEnd = end;
  }
}

/** mm first, then devices, the app, the scheduler. */
function sortIndex(actor: string): number {
  if (actor === 'mm') return 0;
  if (actor === 'app') return 80;
  if (actor === 'scheduler') return 90;
  return 10;
}
