// Requests and their answers, rebuilt from a trace's message lines (packages/runtime/README.md):
//
//   requester A                      handler B
//   send {to B, id X, request, msg}  ──►  recv {from A, id X}             the request arrives
//                                    ◄──  send {to A, id Y, replyTo X}    B answers
//   recv {from B, id Y, replyTo X}                                        the answer arrives: done
//   (or request_timeout {replyTo X} / actor_died {dead B, replyTo X} at A instead)
//
// Memory is bounded by the requests in flight, not by the trace. Every message is also counted by
// actor and type: out when it is sent, in when it is received. Traces from before requests were marked (NDJSON)
// cannot tell a request from a one-way message: there every send waits, in a FIFO bounded by
// LEGACY_PENDING_MAX, for an answer that may never come, and requests still open at the end are
// not known.
import type { TraceLine } from '@svmsim/runtime';

export const LEGACY_PENDING_MAX = 1 << 20;

export interface RequestRecord {
  requester: string;
  handler: string;
  id: number;
  type: string;
  msg: Record<string, unknown>;
  sendT: number;
  sendLine: number;
  /** When the handler received it (undefined: still in flight to it). */
  recvT?: number;
  /** When the handler sent its answer, and the answer. */
  replyT?: number;
  replyType?: string;
  reply?: Record<string, unknown>;
  /** When the requester got the answer, or gave up. */
  doneT?: number;
  outcome: 'open' | 'replied' | 'timeout' | 'died';
}

/** A one-way message between its send and its arrival (a DMA write, a notice). */
export interface OneWayRecord {
  from: string;
  to: string;
  id: number;
  type: string;
  msg: Record<string, unknown>;
  sendT: number;
}

export interface RequestEvents {
  /** A request was sent. */
  requested?(r: RequestRecord): void;
  /** The handler has received the request. */
  arrived?(r: RequestRecord, t: number): void;
  /** The handler sent its answer. */
  answered?(r: RequestRecord, t: number): void;
  /** The requester got the answer (or a timeout, or the handler died). */
  done?(r: RequestRecord): void;
  /** A one-way message was sent / arrived. */
  oneWaySent?(m: OneWayRecord): void;
  oneWayArrived?(m: OneWayRecord, t: number): void;
}

export class RequestTracker {
  /** The `ev`s of the lines it reads: the model hands it only those. */
  static readonly events: readonly string[] = ['send', 'recv', 'request_timeout', 'actor_died', 'late_reply'];

  /** Open requests by requester, then by its request id. */
  private readonly open = new Map<string, Map<number, RequestRecord>>();
  /** One-way messages in flight by sender, then id. */
  private readonly inFlight = new Map<string, Map<number, OneWayRecord>>();
  private legacyCount = 0;
  /** Messages sent, by actor then type; and received (when they arrive), by the receiving actor then type. */
  readonly out = new Map<string, Map<string, number>>();
  readonly in = new Map<string, Map<string, number>>();
  lateReplies = 0;

  /** `marked`: the trace marks its requests (binary traces do); else the legacy rules above apply. */
  constructor(
    private readonly on: RequestEvents = {},
    readonly marked = true,
  ) {}

  line(l: TraceLine, index: number): void {
    switch (l.ev) {
      case 'send':
        return this.sent(l, index);
      case 'recv':
        return this.received(l);
      case 'request_timeout':
        return this.finish(l.actor, l.replyTo as number, l.t, 'timeout');
      case 'actor_died':
        if (typeof l.replyTo === 'number' && l.replyTo !== 0) this.finish(l.actor, l.replyTo, l.t, 'died');
        return;
      case 'late_reply':
        this.lateReplies++;
        return;
    }
  }

  /** Requests still open, oldest first (none known in a trace that does not mark requests). */
  openRequests(): RequestRecord[] {
    if (!this.marked) return [];
    const all: RequestRecord[] = [];
    for (const m of this.open.values()) for (const r of m.values()) all.push(r);
    return all.sort((a, b) => a.sendT - b.sendT);
  }

  /** The requests `requester` has open, oldest first (ids grow with time: a map keeps that order). */
  openBy(requester: string): RequestRecord[] {
    if (!this.marked) return [];
    const m = this.open.get(requester);
    return m === undefined ? [] : [...m.values()];
  }

  /** The open request `requester` made with `id`, if any. */
  find(requester: string, id: number): RequestRecord | undefined {
    return this.open.get(requester)?.get(id);
  }

  private sent(l: TraceLine, index: number): void {
    const msg = (l.msg ?? {}) as Record<string, unknown>;
    const type = typeof msg.type === 'string' ? msg.type : '?';
    const to = l.to as string, id = l.id as number;
    count(this.out, l.actor, type);
    const replyTo = typeof l.replyTo === 'number' ? l.replyTo : 0;
    if (replyTo !== 0) {
      const r = this.open.get(to)?.get(replyTo);
      if (r === undefined) return;
      r.replyT = l.t;
      r.replyType = type;
      r.reply = msg;
      this.on.answered?.(r, l.t);
      return;
    }
    if (l.request === true || !this.marked) {
      const r: RequestRecord = { requester: l.actor, handler: to, id, type, msg, sendT: l.t, sendLine: index, outcome: 'open' };
      mapOf(this.open, l.actor).set(id, r);
      if (!this.marked && ++this.legacyCount > LEGACY_PENDING_MAX) this.dropOldestLegacy();
      this.on.requested?.(r);
      return;
    }
    const m: OneWayRecord = { from: l.actor, to, id, type, msg, sendT: l.t };
    mapOf(this.inFlight, l.actor).set(id, m);
    this.on.oneWaySent?.(m);
  }

  private received(l: TraceLine): void {
    const from = l.from as string;
    if (from === l.actor) return; // a timer
    const replyTo = typeof l.replyTo === 'number' ? l.replyTo : 0;
    if (replyTo !== 0) return this.finish(l.actor, replyTo, l.t, 'replied');
    const id = l.id as number;
    const r = this.open.get(from)?.get(id);
    if (r !== undefined) {
      count(this.in, l.actor, r.type);
      r.recvT = l.t;
      this.on.arrived?.(r, l.t);
      return;
    }
    const sent = this.inFlight.get(from);
    const m = sent?.get(id);
    if (m === undefined) return;
    sent!.delete(id);
    count(this.in, l.actor, m.type);
    this.on.oneWayArrived?.(m, l.t);
  }

  private finish(requester: string, id: number, t: number, outcome: RequestRecord['outcome']): void {
    const mine = this.open.get(requester);
    const r = mine?.get(id);
    if (r === undefined) return;
    mine!.delete(id);
    if (!this.marked) this.legacyCount--;
    if (outcome === 'replied') count(this.in, requester, r.replyType ?? '?');
    r.doneT = t;
    r.outcome = outcome;
    this.on.done?.(r);
  }

  /** Forget the older half of the unanswered sends of a legacy trace (most were one-way messages). */
  private dropOldestLegacy(): void {
    const all: RequestRecord[] = [];
    for (const m of this.open.values()) for (const r of m.values()) all.push(r);
    all.sort((a, b) => a.sendT - b.sendT);
    for (const r of all.slice(0, all.length >> 1)) this.open.get(r.requester)!.delete(r.id);
    this.legacyCount = all.length - (all.length >> 1);
  }
}

function mapOf<V>(m: Map<string, Map<number, V>>, k: string): Map<number, V> {
  let v = m.get(k);
  if (v === undefined) m.set(k, (v = new Map()));
  return v;
}

function count(m: Map<string, Map<string, number>>, actor: string, type: string): void {
  let byType = m.get(actor);
  if (byType === undefined) m.set(actor, (byType = new Map()));
  byType.set(type, (byType.get(type) ?? 0) + 1);
}
