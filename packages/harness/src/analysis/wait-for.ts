// Who waits for whom, from what a trace has shown so far: the chain below a waiting task, link by
// link, down to what it finally waits on (a job's fence, a device that never answered, or back to
// a waiter already in the chain: a deadlock).
//
//   a task in mm ──invalidation #n of [s, e) (event)──► a device's subscription
//   a device's callback ──gpu_invalidate_wait──► the fence of a job on its ring ──► the job running
//   a device's callback ──gpu_invalidate_wait {lock}──► the worker holding the lock ──► what it waits for
//   an actor ──open request──► the actor it asked (and what that one waits for, in turn)
//
// Links come from the trace alone: invalidations (invalidations.ts), the GPU's jobs and callback
// waits (gpu-jobs.ts), requests not yet answered (requests.ts).
import { formatDuration } from '../scenario/units.js';
import type { GpuJobs, JobRecord } from './gpu-jobs.js';
import { eventName, InvalidationTracker, type InvRecord } from './invalidations.js';
import type { RequestRecord, RequestTracker } from './requests.js';

/** Links followed below one waiter before the chain is cut short. */
export const CHAIN_DEPTH_MAX = 8;

export interface WaitForState {
  invalidations: InvalidationTracker;
  jobs: GpuJobs;
  requests: RequestTracker;
  /** Actors whose messages a fault plan dropped (`fault_drop`), with the first drop's time. */
  faultDrops?: Map<string, number>;
}

export interface Chain {
  lines: string[];
  /** The chain came back to a waiter already in it: a cycle of waits (a deadlock if it lasts). */
  deadlock: boolean;
  /** What it ends on: a job, a device that answered nothing, … */
  endsOn: string;
}

const hex = (n: number): string => `0x${n.toString(16)}`;
/** A point in simulated time: as a duration below a second, else seconds to the µs (`t=120.000221 s`). */
export const at = (t: number): string => `t=${t < 1e9 ? formatDuration(t) : `${(t / 1e9).toFixed(6)} s`}`;

/** The range, event and waiters of an invalidation, as the hung-task blocker line names them. */
export function describeInvalidation(inv: InvRecord): string {
  return `mmu_notifier invalidate of [${hex(inv.start)}, ${hex(inv.end)}) (${eventName(inv.event)})`;
}

/** The chain below the subscriptions of `inv` that have not answered. */
export function invalidationChain(s: WaitForState, inv: InvRecord, now: number): Chain {
  const lines: string[] = [];
  let deadlock = false;
  let endsOn = '';
  for (const sub of InvalidationTracker.waitingSubs(inv)) {
    const c = subscriberChain(s, inv, sub, now, new Set(['mm']), 0);
    lines.push(...c.lines);
    deadlock ||= c.deadlock;
    endsOn ||= c.endsOn;
  }
  return { lines, deadlock, endsOn };
}

/** What `actor` waits for when it has not answered an open request: its own open requests, in turn. */
export function requestChain(s: WaitForState, r: RequestRecord, now: number): Chain {
  return actorChain(s, r.handler, now, new Set([r.requester]), 0, r);
}

function subscriberChain(s: WaitForState, inv: InvRecord, sub: number, now: number, seen: Set<string>, depth: number): Chain {
  const info = s.invalidations.subs.get(sub);
  const dev = info?.dev ?? `subscription ${sub}`;
  const w = info ? s.jobs.waitOf(dev, sub) : undefined;
  if (w?.lock !== undefined) {
    // A driver lock held by a worker that itself waits (kfd-svm XNACK off: svm_range_restore_work
    // in dma_fence_wait inside svm_range_lock): two links, the lock and what its holder waits for.
    const l = w.lock;
    return {
      lines: [
        `${dev}: ${w.fn} waits for ${l.name}, held by ${l.holder} since ${at(l.since)} (${formatDuration(now - l.since)})`,
        `  ${l.holder}: waits for ${l.holderWaits}`,
      ],
      deadlock: false,
      endsOn: `${l.holder} holding ${l.name} while it waits for ${l.holderWaits.replace(/ \(.*$/, '')}`,
    };
  }
  if (w !== undefined) {
    const lines: string[] = [];
    let endsOn = '';
    for (const id of w.jobs) {
      const j = s.jobs.job(dev, id);
      if (j === undefined) continue; // ended: not what it waits for any more
      lines.push(`${dev}: ${w.fn} waits for fence ${j.fence} of job ${j.job} (${jobState(j, now)})`);
      endsOn ||= `job ${j.job} on ${dev}`;
    }
    if (lines.length > 0) return { lines, deadlock: false, endsOn };
  }
  return actorChain(s, dev, now, seen, depth, undefined, `${dev}: has not acked invalidation #${inv.inv} (sub ${sub}, waiting ${formatDuration(now - inv.startT)})`);
}

function actorChain(s: WaitForState, actor: string, now: number, seen: Set<string>, depth: number, asked?: RequestRecord, head?: string): Chain {
  const lines: string[] = [];
  if (head) lines.push(head);
  if (seen.has(actor)) {
    // The trace shows who asked whom, not that the answer waits on the question: a cycle of open
    // requests is a deadlock only if it lasts (check fails it once past the hung-task timeout).
    lines.push(`${actor}: already in this chain: a cycle (a deadlock if it lasts)`);
    return { lines, deadlock: true, endsOn: `a cycle back to ${actor}` };
  }
  if (depth >= CHAIN_DEPTH_MAX) {
    lines.push('… (chain cut)');
    return { lines, deadlock: false, endsOn: 'a chain too deep to follow' };
  }
  // Its requests sent since the one it has not answered reached it.
  const since = asked === undefined ? -Infinity : (asked.recvT ?? asked.sendT);
  const mine = s.requests.openBy(actor).filter((r) => r.sendT >= since);
  const next = new Set([...seen, actor]);
  let deadlock = false;
  let endsOn = '';
  for (const r of mine.slice(0, 4)) {
    lines.push(`${actor}: waits for ${r.handler}: ${r.type} (sent ${at(r.sendT)}, ${formatDuration(now - r.sendT)} ago${r.recvT === undefined ? ', not yet received' : ''})`);
    const c = actorChain(s, r.handler, now, next, depth + 1, r);
    lines.push(...c.lines.map((l) => `  ${l}`));
    deadlock ||= c.deadlock;
    endsOn ||= c.endsOn;
  }
  if (actor === 'mm') {
    // mm's own waits: invalidations still waiting for a device — those of the asking process's
    // task if it has any (a fault of pid P waits in direct reclaim run as P), else all.
    const waiting = [...s.invalidations.open.values()].filter((inv) => InvalidationTracker.waitingSubs(inv).length > 0);
    const pid = asked?.msg.pid;
    const own = typeof pid === 'number' ? waiting.filter((inv) => inv.task.endsWith(`:${pid}`)) : [];
    for (const inv of (own.length > 0 ? own : waiting).slice(0, 4)) {
      lines.push(`mm: ${inv.task} waits in ${describeInvalidation(inv)} #${inv.inv} (${inv.caller}, since ${at(inv.startT)})`);
      for (const sub of InvalidationTracker.waitingSubs(inv)) {
        const c = subscriberChain(s, inv, sub, now, next, depth + 1);
        lines.push(...c.lines.map((l) => `  ${l}`));
        deadlock ||= c.deadlock;
        endsOn ||= c.endsOn;
      }
    }
  }
  if (lines.length === (head ? 1 : 0)) {
    const dropped = s.faultDrops?.get(actor);
    if (dropped !== undefined) {
      // stop-invalidate-acks (harness run/faults.ts): it did answer; the answer never arrived.
      lines.push(`${actor}: waits for nothing; fault injection drops its answers since ${at(dropped)} (fault_drop)`);
      endsOn ||= `${actor}, whose answers fault injection drops`;
    } else {
      lines.push(`${actor}: waits for nothing the trace shows (it never answered)`);
      endsOn ||= `${actor}, which never answered`;
    }
  }
  return { lines, deadlock, endsOn };
}

function jobState(j: JobRecord, now: number): string {
  if (j.startT === undefined) return `${j.queue}, queued since ${at(j.queuedT)}`;
  const ends = j.durationNs === undefined ? '' : `, runs ${formatDuration(j.durationNs)}, due to end at ${at(j.startT + j.durationNs)}`;
  return `${j.queue}, running since ${at(j.startT)} (${formatDuration(now - j.startT)})${ends}`;
}
