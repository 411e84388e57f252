// One pass over a trace, feeding every collector: the state `analyze`, `check`, `export` and
// `report` read. Each collector keeps what its figures need and no more, so the pass's memory is
// bounded by the simulated system (pages, requests and invalidations in flight, frames pinned),
// not by the length of the trace.
//
//   line ──► hung-task detector (before the line: waits that crossed the timeout by now)
//        ──► requests ──► remaps (hmm_range_fault answers) ──► thrashing; DMA in flight
//        ──► invalidations ──► revocations (acks) ──► thrashing; hung-task deadlines
//        ──► GPU jobs, faults, pins, reclaim, counters, the data oracle (if checking)
import { HMM_PFN_VALID } from '@svmsim/kernel-mm';
import { newTraceChecker, type FinalPage, type TraceChecker } from '@svmsim/kernel-mm/checker';
import { forEachTraceLine, traceMarksRequests, type MemoryTrace, type TraceLine, type TraceReadStats } from '@svmsim/runtime';
import { BlockedTime } from './blocked-time.js';
import { CounterSeries, type CounterSample } from './counters.js';
import { Distribution } from './distribution.js';
import { FaultStats } from './faults.js';
import { GpuJobs, type JobRecord } from './gpu-jobs.js';
import { HungTaskDetector, HUNG_TASK_DEFAULTS, type HungTaskOptions } from './hung-tasks.js';
import { InvalidationTracker, type InvalidationEvents, type InvRecord } from './invalidations.js';
import { PinStats } from './pins.js';
import { ReclaimStats } from './reclaim.js';
import { RequestTracker, type RequestEvents, type RequestRecord } from './requests.js';
import { ThrashingDetector, UVM_THRASHING, type ThrashingOptions } from './thrashing.js';

export interface ModelOptions {
  thrashing: ThrashingOptions;
  hungTask: HungTaskOptions;
  /** Run the data oracle too (`check`). */
  check: boolean;
  /**
   * `all`: every figure; `waits`: only what the checker's verdict needs (invalidations, jobs,
   * requests, hung tasks, the oracle) — the end of every run uses it.
   */
  collect: 'all' | 'waits';
  /** An exporter's view of the pass: every line after the collectors, and the trackers' events. */
  observer?: ModelObserver;
}

export interface ModelObserver extends RequestEvents, InvalidationEvents {
  line?(l: TraceLine, index: number): void;
  /** Every counter sample (counters.ts). */
  counter?: CounterSample;
  jobEnded?(j: JobRecord): void;
  end?(tEnd: number): void;
}

export const MODEL_DEFAULTS: ModelOptions = { thrashing: UVM_THRASHING, hungTask: HUNG_TASK_DEFAULTS, check: false, collect: 'all' };

export class TraceModel {
  readonly requests: RequestTracker;
  readonly invalidations: InvalidationTracker;
  readonly jobs = new GpuJobs();
  readonly faults = new FaultStats();
  readonly pins = new PinStats();
  readonly reclaim = new ReclaimStats();
  readonly counters: CounterSeries;
  readonly thrashing: ThrashingDetector;
  readonly hung: HungTaskDetector;
  readonly checker: TraceChecker | undefined;
  /** Request latency (send → answer at the requester) by type, then requester, then handler. */
  readonly latency = new Map<string, Map<string, Map<string, Distribution>>>();
  /** Per task: time blocked in invalidations (start → last ack), overlapping waits counted once. */
  readonly blocked = new BlockedTime();
  /** The last `final_pages` event: mm's final memory, as the app resolved it. */
  finalPages: FinalPage[] | null = null;
  finalPagesLine = -1;
  /** The app freed every device buffer before the dump (final_pages.buffersFreed). */
  finalPagesAfterTeardown = false;
  runEnd: Record<string, unknown> | null = null;
  tFirst = NaN;
  tEnd = 0;
  lines = 0;
  readonly actors = new Set<string>();
  readonly warnings: TraceLine[] = [];

  constructor(
    readonly options: ModelOptions,
    /** The trace marks its requests (requests.ts): else DMA in flight cannot be told. */
    readonly marked: boolean,
  ) {
    const o = options.observer ?? {};
    this.counters = new CounterSeries(o.counter?.bind(o));
    this.requests = new RequestTracker(
      {
        requested: (r) => {
          if (marked && r.type === 'dma_access') this.counters.dma(r.requester, r.sendT, 1);
          o.requested?.(r);
        },
        arrived: (r, t) => o.arrived?.(r, t),
        answered: (r, t) => o.answered?.(r, t),
        done: (r) => {
          this.requestDone(r);
          o.done?.(r);
        },
        oneWaySent: (m) => {
          if (m.type === 'dma_access') this.counters.dma(m.from, m.sendT, 1);
          o.oneWaySent?.(m);
        },
        oneWayArrived: (m, t) => {
          if (m.type === 'dma_access') this.counters.dma(m.from, t, -1);
          o.oneWayArrived?.(m, t);
        },
      },
      marked,
    );
    this.invalidations = new InvalidationTracker({
      started: (inv) => {
        this.hung.started(inv);
        this.blocked.begin(inv.task, inv.startT);
        o.started?.(inv);
      },
      acked: (inv, ack) => {
        if (ack.ok && this.all) this.thrashing.revoke(ack.sub, inv.start, inv.end, ack.t, `mm ${inv.task} ${inv.caller}`);
        if (InvalidationTracker.waitingSubs(inv).length === 0) this.waitOver(inv, ack.t);
        o.acked?.(inv, ack);
      },
      ended: (inv) => {
        this.waitOver(inv, inv.endT!);
        o.ended?.(inv);
      },
    });
    if (o.jobEnded) this.jobs.ended = (j) => o.jobEnded!(j);
    this.thrashing = new ThrashingDetector(options.thrashing, (sub) => this.invalidations.subs.get(sub));
    this.hung = new HungTaskDetector(options.hungTask, this);
    this.checker = options.check ? newTraceChecker() : undefined;
    this.all = options.collect === 'all';
    const read = (events: readonly string[], fn: (l: TraceLine, i: number) => void) => {
      for (const ev of events) {
        let list = this.readers.get(ev);
        if (list === undefined) this.readers.set(ev, (list = []));
        list.push(fn);
      }
    };
    read(RequestTracker.events, (l, i) => this.requests.line(l, i));
    read(InvalidationTracker.events, (l, i) => this.invalidations.line(l, i));
    read(GpuJobs.events, (l) => this.jobs.line(l));
    read(CounterSeries.events, (l) => this.counters.line(l));
    if (this.all) {
      read(FaultStats.events, (l) => this.faults.line(l));
      read(PinStats.events, (l, i) => this.pins.line(l, i));
      read(ReclaimStats.events, (l) => this.reclaim.line(l));
    }
  }

  /** Each collector's line reader, by the `ev`s it reads. */
  private readonly readers = new Map<string, ((l: TraceLine, index: number) => void)[]>();

  private readonly all: boolean;
  /** Actors whose messages the fault plan dropped, with the first drop's time (wait-for.ts). */
  readonly faultDrops = new Map<string, number>();
  /** Per dead driver: the pins, gup references and interval notifiers mm released for it. */
  readonly deadDriverReleases = new Map<string, { pins: number; gets: number; subs: number }>();

  line(l: TraceLine, index: number): void {
    this.hung.advance(l.t);
    if (Number.isNaN(this.tFirst)) this.tFirst = l.t;
    this.tEnd = Math.max(this.tEnd, l.t);
    this.lines++;
    this.actors.add(l.actor);
    const readers = this.readers.get(l.ev);
    if (readers !== undefined) for (let i = 0; i < readers.length; i++) readers[i](l, index);
    this.checker?.line(l, index);
    switch (l.ev) {
      case 'final_pages':
        this.finalPages = finalPagesOf(l);
        this.finalPagesLine = index;
        this.finalPagesAfterTeardown = l.buffersFreed === true;
        break;
      case 'run_end':
        this.runEnd = l;
        break;
      case 'fault_drop': {
        // The fault plan discarded a message: LocalScheduler traces it as the scheduler's line (`from`), a worker as its own.
        const from = typeof l.from === 'string' ? l.from : l.actor;
        if (!this.faultDrops.has(from)) this.faultDrops.set(from, l.t);
        break;
      }
      case 'dead_driver_released':
        // kernel-mm dead-driver.ts: what mm let go of for a driver that died.
        this.deadDriverReleases.set(l.dead as string, { pins: l.pins as number, gets: l.gets as number, subs: l.subs as number });
        break;
      case 'warn':
      case 'actor_died':
        if (this.warnings.length < 100) this.warnings.push(l);
        break;
    }
    this.options.observer?.line?.(l, index);
  }

  end(): void {
    this.hung.end(this.tEnd);
    this.options.observer?.end?.(this.tEnd);
  }

  /** A request's answer came back: its latency, and a device's hmm_range_fault result maps pages again. */
  private requestDone(r: RequestRecord): void {
    if (this.marked && r.type === 'dma_access') this.counters.dma(r.requester, r.doneT!, -1);
    if (!this.all) return;
    let byRequester = this.latency.get(r.type);
    if (byRequester === undefined) this.latency.set(r.type, (byRequester = new Map()));
    let byHandler = byRequester.get(r.requester);
    if (byHandler === undefined) byRequester.set(r.requester, (byHandler = new Map()));
    let d = byHandler.get(r.handler);
    if (d === undefined) byHandler.set(r.handler, (d = new Distribution()));
    d.add(r.doneT! - r.sendT);
    if (r.type !== 'hmm_range_fault' || r.outcome !== 'replied' || r.reply?.ret !== 0) return;
    const flags = (r.reply.flags as number[] | undefined) ?? [];
    const valid = Array.from(flags, (f) => (f & HMM_PFN_VALID) !== 0);
    this.thrashing.remap(r.msg.sub as number, r.msg.start as number, valid, r.doneT!, `${r.requester} hmm_range_fault`);
  }

  /** The invalidation's task stops waiting (its last ack, or its end if that comes first). */
  private waitOver(inv: InvRecord, t: number): void {
    if (inv.settledT !== undefined) return;
    inv.settledT = t;
    this.hung.finished(inv, t);
    this.blocked.end(inv.task, t);
  }
}

function finalPagesOf(l: TraceLine): FinalPage[] {
  const pid = (l.pid as number[]) ?? [], addr = (l.addr as number[]) ?? [], value = (l.value as number[]) ?? [];
  return pid.map((p, i) => ({ pid: p, addr: addr[i], value: value[i] }));
}

export interface ModelRun {
  model: TraceModel;
  read: TraceReadStats;
  wallMs: number;
}

/** Streams the trace at `target` (a run directory, one trace file or a trace kept in memory) through a new model. */
export function readModel(target: string | MemoryTrace, options: Partial<ModelOptions> = {}): ModelRun {
  const opts = { ...MODEL_DEFAULTS, ...options };
  const marked = traceMarksRequests(target);
  const model = new TraceModel(opts, marked);
  const t0 = performance.now();
  const read = forEachTraceLine(target, (l, i) => model.line(l, i));
  model.end();
  return { model, read, wallMs: performance.now() - t0 };
}
