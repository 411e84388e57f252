// The NVMe controller on a virtual clock (ns): its I/O queue pairs, its namespaces, a number of
// media channels that serve commands in parallel, the timeout and reset machinery. Commands
// finish in order of finish time, not submission (nvme_handle_cqe per CQE as it is posted).
// The host side (the block layer, direct I/O) gives each request a `transfer` hook: the data
// moves by DMA when the command is served, which is when host pages must still be pinned.
// Followed: drivers/nvme/host/pci.c and core.c of v6.6 (see README.md for the map).
import { commandNs, DEFAULT_NVME_COSTS, type NvmeCosts } from './cost.js';
import { NvmeNamespace } from './namespace.js';
import { nvme_map_data } from './prp.js';
import {
  EAGAIN,
  EIO,
  NVME_LBA_SIZE,
  NVME_SC_ABORT_REQ,
  NVME_SC_HOST_ABORTED_CMD,
  NVME_SC_INTERNAL,
  NVME_SC_SUCCESS,
  nvme_cmd_flush,
  nvme_cmd_read,
  nvme_cmd_write,
  type DmaSegment,
  type NvmeCompletion,
  type NvmeIo,
} from './protocol.js';
import { NvmeQueuePair, TAG_FREE, TAG_IN_FLIGHT, TAG_REQUEUED, NVME_IO_QUEUE_DEPTH_DEFAULT } from './queues.js';
import { nvme_decide_disposition, NVME_MAX_RETRIES } from './reset.js';
import { nvme_timeout, NVME_ABORT_LIMIT_DEFAULT, NVME_IO_TIMEOUT_NS, NVME_ADMIN_TIMEOUT_NS, type CtrlState } from './timeout.js';

/** How a controller fails when told to (`fail`): it stops posting completions. */
export type NvmeFailure =
  /** Completions are posted but their interrupts lost: the timeout's poll finds them. */
  | 'lost-interrupts'
  /** The controller stops answering; a reset brings it back. */
  | 'hang'
  /** The controller stops answering and never comes back: the reset fails, the disk is dead. */
  | 'dead';

export interface NvmeConfig {
  readonly ioQueues: number;
  readonly queueDepth: number;
  /** Commands the media serves at once. */
  readonly channels: number;
  readonly costs: NvmeCosts;
  readonly namespaceBlocks: readonly number[];
  readonly sglSupported: boolean;
  readonly ioTimeoutNs: number;
  readonly adminTimeoutNs: number;
  readonly abortLimit: number;
  readonly maxRetries: number;
  /** nvme_reset_work from disable to LIVE: controller enable and queue setup. */
  readonly resetNs: number;
  /**
   * Arm the blk-mq timeout of each command. A controller that is never failed always answers,
   * so its timers never fire; not arming them is the same run, without an event per command.
   */
  readonly armTimeouts: boolean;
}

export const DEFAULT_NVME_CONFIG: NvmeConfig = {
  ioQueues: 1,
  queueDepth: NVME_IO_QUEUE_DEPTH_DEFAULT,
  channels: 8,
  costs: DEFAULT_NVME_COSTS,
  namespaceBlocks: [1 << 16],
  sglSupported: true,
  ioTimeoutNs: NVME_IO_TIMEOUT_NS,
  adminTimeoutNs: NVME_ADMIN_TIMEOUT_NS,
  abortLimit: NVME_ABORT_LIMIT_DEFAULT,
  maxRetries: NVME_MAX_RETRIES,
  resetNs: 2_000_000_000,
  armTimeouts: true,
};

/** The host's side of one request's data: called at DMA time. */
export interface HostTransfer {
  readonly segs: readonly DmaSegment[];
  /** WRITE: the host memory's content tokens, read by the device now. */
  fetch?(nowNs: number): Float64Array;
  /** READ: the device writes these content tokens into host memory now. */
  deposit?(nowNs: number, data: Float64Array): void;
  /** The command was (re)sent and the device will finish it at `finishNs` if it keeps answering. */
  sent?(finishNs: number): void;
}

type Done = (c: NvmeCompletion) => void;

interface Request {
  readonly io: NvmeIo;
  readonly host: HostTransfer | undefined;
  readonly done: Done;
  readonly submittedNs: number;
  listPages: number;
  bytes: number;
}

const EV_FINISH = 0;
const EV_TIMEOUT = 1;
const EV_RESET_DONE = 2;
const EV_FAIL = 3;
interface Event {
  readonly t: number;
  readonly seq: number;
  readonly kind: number;
  readonly qid: number;
  readonly tag: number;
  /** The tag's generation when scheduled: a stale event is ignored. */
  readonly gen: number;
}

export interface NvmeStats {
  completed: number;
  ioErrors: number;
  timeouts: number;
  aborts: number;
  resets: number;
  retries: number;
  polledCompletions: number;
  submitWaits: number;
  failedWrites: number;
  readonly latenciesNs: number[];
}

export class NvmeController {
  readonly config: NvmeConfig;
  readonly namespaces: NvmeNamespace[];
  readonly queues: NvmeQueuePair[];
  state: CtrlState = 'LIVE';
  now = 0;
  failure: NvmeFailure | undefined;
  readonly stats: NvmeStats = { completed: 0, ioErrors: 0, timeouts: 0, aborts: 0, resets: 0, retries: 0, polledCompletions: 0, submitWaits: 0, failedWrites: 0, latenciesNs: [] };
  private readonly requests: Array<Array<Request | undefined>>;
  private readonly gen: Float64Array[];
  private readonly events: Event[] = [];
  private seq = 0;
  private readonly channelFreeNs: Float64Array;
  private abortsOutstanding = 0;

  constructor(config: Partial<NvmeConfig> = {}) {
    this.config = { ...DEFAULT_NVME_CONFIG, ...config };
    const c = this.config;
    if (!Number.isInteger(c.ioQueues) || c.ioQueues < 1 || c.ioQueues > 128) throw new RangeError(`nvme ioQueues ${c.ioQueues}: must be an integer in [1, 128]`);
    if (!Number.isInteger(c.channels) || c.channels < 1 || c.channels > 1024) throw new RangeError(`nvme channels ${c.channels}: must be an integer in [1, 1024]`);
    this.namespaces = c.namespaceBlocks.map((blocks, i) => new NvmeNamespace(i + 1, blocks));
    // qid 0 is the admin queue; I/O queues are 1..ioQueues.
    this.queues = Array.from({ length: c.ioQueues + 1 }, (_, qid) => new NvmeQueuePair(qid, qid === 0 ? 32 : c.queueDepth));
    this.requests = this.queues.map((q) => new Array<Request | undefined>(q.depth));
    this.gen = this.queues.map((q) => new Float64Array(q.depth));
    this.channelFreeNs = new Float64Array(c.channels);
  }

  /** A namespace more (the actor creates one per block device on first use); returns its nsid. */
  addNamespace(blocks: number): number {
    this.namespaces.push(new NvmeNamespace(this.namespaces.length + 1, blocks));
    return this.namespaces.length;
  }

  /** blk_mq_submit_bio → nvme_queue_rq; waits for a tag when the queue is full (nowait: -EAGAIN). */
  submit(qid: number, io: NvmeIo, host: HostTransfer | undefined, done: Done, nowait = false): void {
    const q = this.queues[qid];
    if (!q || qid === 0) throw new RangeError(`nvme: no I/O queue ${qid}`);
    const submittedNs = this.now;
    if (this.state === 'DEAD') return this.failNow(io, done, submittedNs, -EIO, NVME_SC_INTERNAL);
    const req: Request = { io, host, done, submittedNs, listPages: 0, bytes: 0 };
    if (nowait) {
      const tag = q.tryGetTag();
      if (tag < 0) return this.failNow(io, done, submittedNs, -EAGAIN, NVME_SC_SUCCESS);
      return this.start(q, tag, req);
    }
    if (q.inFlight === q.depth) this.stats.submitWaits++;
    q.getTag((tag) => this.start(q, tag, req));
  }

  private failNow(io: NvmeIo, done: Done, submittedNs: number, ret: number, status: number): void {
    this.stats.ioErrors++;
    if (io.opcode === nvme_cmd_write) this.stats.failedWrites++;
    done({ tag: -1, ret, status, attempts: 0, submittedNs, completedNs: this.now });
  }

  private start(q: NvmeQueuePair, tag: number, req: Request): void {
    if (this.state === 'DEAD') {
      q.putTag(tag);
      return this.failNow(req.io, req.done, req.submittedNs, -EIO, NVME_SC_INTERNAL);
    }
    const ns = this.namespaces[req.io.nsid - 1];
    if (!ns || !ns.inRange(req.io.slba, req.io.nlb)) {
      q.putTag(tag);
      return this.failNow(req.io, req.done, req.submittedNs, -EIO, NVME_SC_INTERNAL);
    }
    if (req.io.opcode !== nvme_cmd_flush) {
      const segs = req.host?.segs ?? [];
      const dp = nvme_map_data(segs, this.config.sglSupported, q.qid);
      if (dp === 'BLK_STS_IOERR') {
        q.putTag(tag);
        return this.failNow(req.io, req.done, req.submittedNs, -EIO, NVME_SC_INTERNAL);
      }
      req.listPages = dp.listPages;
      req.bytes = req.io.nlb * NVME_LBA_SIZE;
    }
    this.requests[q.qid]![tag] = req;
    if (this.state === 'RESETTING') {
      q.state[tag] = TAG_REQUEUED; // the queues are quiesced: dispatched once the reset ends
      return;
    }
    this.send(q, tag);
  }

  /** Rings the SQ doorbell for the request: it is served on the first free channel. */
  private send(q: NvmeQueuePair, tag: number): void {
    const req = this.requests[q.qid]![tag]!;
    q.state[tag] = TAG_IN_FLIGHT;
    q.attempts[tag]!++;
    q.sentNs[tag] = this.now;
    const g = ++this.gen[q.qid]![tag]!;
    let ch = 0;
    for (let i = 1; i < this.channelFreeNs.length; i++) if (this.channelFreeNs[i]! < this.channelFreeNs[ch]!) ch = i;
    const startNs = Math.max(this.now, this.channelFreeNs[ch]!);
    const finish = startNs + commandNs(this.config.costs, req.io.opcode, req.bytes, req.listPages);
    this.channelFreeNs[ch] = finish;
    q.finishNs[tag] = finish;
    if (this.failure !== 'hang' && this.failure !== 'dead') this.schedule(finish, EV_FINISH, q.qid, tag, g);
    req.host?.sent?.(finish);
    if (this.config.armTimeouts) this.schedule(this.now + (q.qid === 0 ? this.config.adminTimeoutNs : this.config.ioTimeoutNs), EV_TIMEOUT, q.qid, tag, g);
  }

  /** From `atNs` on, the controller fails in the given way. */
  failAt(atNs: number, failure: NvmeFailure): void {
    if (!this.config.armTimeouts) throw new Error('nvme: a controller that can fail needs armTimeouts');
    this.events.push({ t: atNs, seq: this.seq++, kind: EV_FAIL, qid: 0, tag: ['lost-interrupts', 'hang', 'dead'].indexOf(failure), gen: 0 });
  }

  private schedule(t: number, kind: number, qid: number, tag: number, gen: number): void {
    this.events.push({ t, seq: this.seq++, kind, qid, tag, gen });
  }

  private nextEvent(): Event | undefined {
    let best = -1;
    for (let i = 0; i < this.events.length; i++) {
      const e = this.events[i]!;
      const b = best >= 0 ? this.events[best]! : undefined;
      if (!b || e.t < b.t || (e.t === b.t && e.seq < b.seq)) best = i;
    }
    if (best < 0) return undefined;
    const e = this.events[best]!;
    this.events[best] = this.events[this.events.length - 1]!;
    this.events.pop();
    return e;
  }

  /** The time of the next live event, or Infinity (stale events are dropped on the way). */
  nextEventNs(): number {
    let t = Infinity;
    for (let i = this.events.length - 1; i >= 0; i--) {
      const e = this.events[i]!;
      if (this.stale(e)) {
        this.events[i] = this.events[this.events.length - 1]!;
        this.events.pop();
        continue;
      }
      if (e.t < t) t = e.t;
    }
    return t;
  }

  /** Outstanding requests (in flight, requeued, or waiting for a tag). */
  get outstanding(): number {
    let n = 0;
    for (let qid = 1; qid < this.queues.length; qid++) n += this.queues[qid]!.inFlight + this.queues[qid]!.waiting;
    return n;
  }

  /** An event for a request that has since finished or been re-sent: dropped without moving the clock. */
  private stale(e: Event): boolean {
    if (e.kind !== EV_FINISH && e.kind !== EV_TIMEOUT) return false;
    return this.queues[e.qid]!.state[e.tag] !== TAG_IN_FLIGHT || this.gen[e.qid]![e.tag] !== e.gen;
  }

  /** Runs events in time order up to `untilNs` (default: until none is left). */
  run(untilNs = Infinity): void {
    for (;;) {
      const e = this.nextEvent();
      if (!e) {
        if (untilNs !== Infinity) this.now = Math.max(this.now, untilNs);
        return;
      }
      if (this.stale(e)) continue;
      if (e.t > untilNs) {
        this.events.push(e);
        this.now = untilNs;
        return;
      }
      this.now = Math.max(this.now, e.t);
      this.handle(e);
    }
  }

  private handle(e: Event): void {
    if (e.kind === EV_FAIL) {
      this.failure = (['lost-interrupts', 'hang', 'dead'] as const)[e.tag];
      return;
    }
    if (e.kind === EV_RESET_DONE) return this.resetDone();
    const q = this.queues[e.qid]!;
    if (q.state[e.tag] !== TAG_IN_FLIGHT || this.gen[e.qid]![e.tag] !== e.gen) return;
    if (e.kind === EV_FINISH) {
      if (this.failure === 'lost-interrupts') return; // posted to the CQ, interrupt lost
      if (this.failure === 'hang' || this.failure === 'dead') return;
      return this.complete(q, e.tag, NVME_SC_SUCCESS);
    }
    this.timedOut(q, e.tag);
  }

  /** nvme_handle_cqe → nvme_pci_complete_rq: the DMA happened; the request ends. */
  private complete(q: NvmeQueuePair, tag: number, status: number): void {
    const req = this.requests[q.qid]![tag]!;
    let data: Float64Array | undefined;
    if (status === NVME_SC_SUCCESS) {
      const ns = this.namespaces[req.io.nsid - 1]!;
      if (req.io.opcode === nvme_cmd_write) ns.write(req.io.slba, req.host?.fetch ? req.host.fetch(this.now) : req.io.data ?? new Float64Array(req.io.nlb));
      else if (req.io.opcode === nvme_cmd_read) {
        data = ns.read(req.io.slba, req.io.nlb);
        req.host?.deposit?.(this.now, data);
      } else ns.flush();
    }
    this.finish(q, tag, status === NVME_SC_SUCCESS ? 0 : -EIO, status, data);
  }

  private finish(q: NvmeQueuePair, tag: number, ret: number, status: number, data?: Float64Array): void {
    const req = this.requests[q.qid]![tag]!;
    const attempts = q.attempts[tag]!;
    this.requests[q.qid]![tag] = undefined;
    this.gen[q.qid]![tag]!++;
    if (ret === 0) {
      this.stats.completed++;
      this.stats.latenciesNs.push(this.now - req.submittedNs);
    } else {
      this.stats.ioErrors++;
      if (req.io.opcode === nvme_cmd_write) this.stats.failedWrites++;
    }
    const c: NvmeCompletion = { tag, ret, status, attempts, submittedNs: req.submittedNs, completedNs: this.now, ...(data ? { data } : {}) };
    q.putTag(tag);
    req.done(c);
  }

  private timedOut(q: NvmeQueuePair, tag: number): void {
    this.stats.timeouts++;
    const action = nvme_timeout({
      csts_fatal: false,
      completionPosted: this.failure === 'lost-interrupts' && q.finishNs[tag]! <= this.now,
      ctrlState: this.state,
      qid: q.qid,
      aborted: q.aborted[tag] === 1,
      abortsOutstanding: this.abortsOutstanding,
      abortLimit: this.config.abortLimit,
    });
    const g = this.gen[q.qid]![tag]!;
    switch (action) {
      case 'POLLED_DONE':
        this.stats.polledCompletions++;
        return this.complete(q, tag, NVME_SC_SUCCESS);
      case 'RESET_TIMER':
        return this.schedule(this.now + this.config.ioTimeoutNs, EV_TIMEOUT, q.qid, tag, g);
      case 'ABORT':
        // The Abort admin command: a live controller aborts the command (status Abort Requested,
        // retried by the disposition); a hung one answers neither, and the re-armed timer resets.
        this.stats.aborts++;
        q.aborted[tag] = 1;
        if (this.failure === undefined || this.failure === 'lost-interrupts') return this.cancelOne(q, tag, NVME_SC_ABORT_REQ, false);
        this.abortsOutstanding++;
        return this.schedule(this.now + this.config.ioTimeoutNs, EV_TIMEOUT, q.qid, tag, g);
      case 'RESET':
      case 'REMOVE':
        return this.disable();
    }
  }

  /** nvme_cancel_request for one request, then nvme_decide_disposition: requeue or fail. */
  private cancelOne(q: NvmeQueuePair, tag: number, status: number, dying: boolean): void {
    const req = this.requests[q.qid]![tag]!;
    const retries = q.attempts[tag]! - 1;
    if (nvme_decide_disposition(status, retries, req.io.failfast === true, dying, this.config.maxRetries) === 'COMPLETE') {
      return this.finish(q, tag, -EIO, status);
    }
    this.stats.retries++;
    this.gen[q.qid]![tag]!++;
    q.state[tag] = TAG_REQUEUED;
    if (this.state === 'LIVE') this.send(q, tag);
  }

  /** nvme_dev_disable + nvme_reset_ctrl: cancel every outstanding command, reset after resetNs. */
  private disable(): void {
    if (this.state === 'RESETTING' || this.state === 'DEAD') return;
    this.state = 'RESETTING';
    this.stats.resets++;
    this.abortsOutstanding = 0;
    for (let qid = 1; qid < this.queues.length; qid++) {
      const q = this.queues[qid]!;
      for (let tag = 0; tag < q.depth; tag++) if (q.state[tag] === TAG_IN_FLIGHT) this.cancelOne(q, tag, NVME_SC_HOST_ABORTED_CMD, false);
    }
    this.schedule(this.now + this.config.resetNs, EV_RESET_DONE, 0, 0, 0);
  }

  /** nvme_reset_work's end: LIVE and requeued requests sent again, or the controller removed. */
  private resetDone(): void {
    if (this.failure === 'dead') {
      this.state = 'DEAD';
      // nvme_remove_dead_ctrl: the disks are marked dead; everything outstanding fails.
      for (let qid = 1; qid < this.queues.length; qid++) {
        const q = this.queues[qid]!;
        for (let tag = 0; tag < q.depth; tag++) if (q.state[tag] === TAG_REQUEUED) this.finish(q, tag, -EIO, NVME_SC_HOST_ABORTED_CMD);
      }
      return;
    }
    this.failure = undefined;
    this.state = 'LIVE';
    for (let qid = 1; qid < this.queues.length; qid++) {
      const q = this.queues[qid]!;
      for (let tag = 0; tag < q.depth; tag++) if (q.state[tag] === TAG_REQUEUED) this.send(q, tag);
    }
  }

  /** True when no tag is in use on any queue (used to prove nothing was left behind). */
  idle(): boolean {
    return this.queues.every((q) => q.inFlight === 0 && q.waiting === 0) && this.queues.every((q) => q.state.every((s) => s === TAG_FREE));
  }
}

export { nvme_cmd_read, nvme_cmd_write, nvme_cmd_flush };
