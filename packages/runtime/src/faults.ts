// Fault injection: what a run may do to its actors and their messages on purpose, so that tests
// and scenarios can show each failure's outcome. Both schedulers apply the same plan; under the
// LocalScheduler every fault is a function of the seed and virtual time (same seed, same trace).
//
//   kill      actor X dies at t (thread mode: its worker thread really exits). Every request
//             pending on X is answered with actor_died, every other actor is told once, and the
//             run goes on without X: later sends to X are dropped, later requests to X are
//             answered actor_died at once. The run's result names X in `died`.
//   delay     every envelope from A to B arrives `ns` (+ a uniform [0, jitterNs) draw) later,
//             FIFO per pair kept: an envelope never overtakes the one sent before it.
//   reorder   each envelope between two different actors is held back, with `probability`, by
//             a uniform [0, maxNs) draw (FIFO per pair kept): envelopes of other pairs sent later
//             overtake it. More interleavings than the scheduler's choice among ready channels,
//             which never lets a message sent later on another pair arrive first in virtual time.
//   drop      from `at` on, envelopes from A (to B, if named) of message type T are discarded
//             (traced as fault_drop): a device that stops answering invalidations is
//             `{from: dev, to: 'mm', type: 'invalidate_ack'}`.
//
// Every fault is bounded: a delay or hold is at most DELAY_NS_MAX, a plan holds at most
// FAULTS_MAX entries. An actor id the run does not have is a RunSetupError, not a silent no-op.
import { RunSetupError } from './errors.js';
import { Sfc32, hashString } from './rng.js';
import type { ActorId, Envelope } from './types.js';

export interface KillFault {
  actor: ActorId;
  atNs: number;
}
export interface DelayFault {
  from: ActorId;
  to: ActorId;
  ns: number;
  jitterNs?: number;
}
export interface ReorderFault {
  probability: number;
  /** The longest hold, ns (default 10 µs). */
  maxNs?: number;
}
export interface DropFault {
  from: ActorId;
  to?: ActorId;
  type: string;
  atNs: number;
}

export interface FaultPlan {
  kills?: KillFault[];
  delays?: DelayFault[];
  reorder?: ReorderFault;
  drops?: DropFault[];
}

/** The longest a delay or a hold may be: an hour of simulated time. */
export const DELAY_NS_MAX = 3.6e12;
/** Entries in one plan, all kinds together. */
export const FAULTS_MAX = 256;
export const REORDER_MAX_NS_DEFAULT = 10_000;

/** One actor that died during the run and how. */
export interface DeadActor {
  actor: ActorId;
  error: string;
  atNs: number;
  /** True for a kill the plan asked for. */
  injected: boolean;
}

/** Throws RunSetupError naming the entry if the plan is malformed or names an actor not in the run. */
export function checkFaultPlan(plan: FaultPlan | undefined, ids: readonly ActorId[]): void {
  if (plan === undefined) return;
  const known = new Set(ids);
  const n = (plan.kills?.length ?? 0) + (plan.delays?.length ?? 0) + (plan.drops?.length ?? 0);
  if (n > FAULTS_MAX) throw new RunSetupError(`faults: ${n} entries, at most ${FAULTS_MAX}`);
  const actor = (where: string, id: unknown) => {
    if (typeof id !== 'string' || !known.has(id)) throw new RunSetupError(`faults: ${where}: no actor ${JSON.stringify(id)} in this run (actors: ${ids.join(', ')})`);
  };
  const ns = (where: string, v: unknown, max = DELAY_NS_MAX) => {
    if (typeof v !== 'number' || !(v >= 0) || v > max) throw new RunSetupError(`faults: ${where}: ${JSON.stringify(v)} is not a time from 0 to ${max} ns`);
  };
  plan.kills?.forEach((k, i) => (actor(`kills[${i}].actor`, k.actor), ns(`kills[${i}].atNs`, k.atNs, Number.MAX_SAFE_INTEGER)));
  plan.delays?.forEach((d, i) => {
    actor(`delays[${i}].from`, d.from);
    actor(`delays[${i}].to`, d.to);
    ns(`delays[${i}].ns`, d.ns);
    if (d.jitterNs !== undefined) ns(`delays[${i}].jitterNs`, d.jitterNs);
  });
  plan.drops?.forEach((d, i) => {
    actor(`drops[${i}].from`, d.from);
    if (d.to !== undefined) actor(`drops[${i}].to`, d.to);
    if (typeof d.type !== 'string' || d.type.length === 0) throw new RunSetupError(`faults: drops[${i}].type: expected a message type`);
    ns(`drops[${i}].atNs`, d.atNs, Number.MAX_SAFE_INTEGER);
  });
  const r = plan.reorder;
  if (r !== undefined) {
    if (typeof r.probability !== 'number' || !(r.probability >= 0 && r.probability <= 1)) throw new RunSetupError(`faults: reorder.probability: ${JSON.stringify(r.probability)} is not from 0 to 1`);
    if (r.maxNs !== undefined) ns('reorder.maxNs', r.maxNs);
  }
}

/**
 * The message faults (delay, reorder, drop) as one decision per envelope sent. Its random draws
 * come from their own stream (seed, sender), so a plan without delays or reorders leaves every
 * other draw of the run as it was, and a run without a plan is the run it always was.
 */
export class MessageFaults {
  private readonly delays = new Map<string, DelayFault>();
  private readonly drops: DropFault[];
  private readonly reorder: ReorderFault | undefined;
  private readonly rngs = new Map<ActorId, Sfc32>();
  /** Per pair: the latest arrival handed out, so a later envelope never arrives before an earlier one. */
  private readonly lastArrival = new Map<string, number>();
  dropped = 0;
  held = 0;

  constructor(
    plan: FaultPlan | undefined,
    private readonly seed: number,
  ) {
    for (const d of plan?.delays ?? []) this.delays.set(`${d.from}\u0000${d.to}`, d);
    this.drops = plan?.drops ?? [];
    this.reorder = plan?.reorder && plan.reorder.probability > 0 ? plan.reorder : undefined;
  }

  get active(): boolean {
    return this.delays.size > 0 || this.drops.length > 0 || this.reorder !== undefined;
  }

  /** Is `env`, sent at `nowNs`, to be discarded? */
  matchDrop(env: Envelope, nowNs: number): DropFault | undefined {
    for (const d of this.drops) {
      if (d.from === env.from && (d.to === undefined || d.to === env.to) && d.type === env.msg.type && nowNs >= d.atNs) return d;
    }
    return undefined;
  }

  /** When `env`, sent at `nowNs`, arrives (nowNs: at once). Self-sends are never delayed. */
  arrival(env: Envelope, nowNs: number): number {
    if (env.from === env.to) return nowNs;
    const key = `${env.from}\u0000${env.to}`;
    let extra = 0;
    const d = this.delays.get(key);
    if (d !== undefined) extra += d.ns + (d.jitterNs ? this.rng(env.from).next() * d.jitterNs : 0);
    const r = this.reorder;
    if (r !== undefined && this.rng(env.from).next() < r.probability) {
      extra += this.rng(env.from).next() * (r.maxNs ?? REORDER_MAX_NS_DEFAULT);
      this.held++;
    }
    const last = this.lastArrival.get(key) ?? -Infinity;
    if (extra === 0 && last <= nowNs) return nowNs;
    const at = Math.max(last, nowNs + extra);
    this.lastArrival.set(key, at);
    return at;
  }

  private rng(from: ActorId): Sfc32 {
    let r = this.rngs.get(from);
    if (r === undefined) this.rngs.set(from, (r = new Sfc32(this.seed, hashString(`faults:${from}`))));
    return r;
  }
}

/** The error text a killed actor dies with. */
export function killedError(atNs: number): string {
  return `killed by fault injection at t=${atNs} ns`;
}
