// The kernel's hung-task detector over a trace (kernel/hung_task.c, v6.15 with
// CONFIG_DETECT_HUNG_TASK_BLOCKER): a task in uninterruptible sleep longer than
// hung_task_timeout_secs (120 s) is reported, at most hung_task_warnings (10) times, as
//
//   INFO: task kswapd0 blocked for more than 120 seconds.
//         Not tainted …
//   "echo 0 > /proc/sys/kernel/hung_task_timeout_secs" disables this message.
//   task:kswapd0 state:D …
//   Call Trace: …
//   INFO: task kswapd0 is blocked on mmu_notifier invalidate of [s, e) (clear) likely waited by gpu0
//   gpu0: amdgpu_hmm_invalidate_gfx waits for fence 1 of job 1 (compute, running since t=…)
//
// The uninterruptible waits mm models are its invalidations: the task that started one (kswapd0,
// a process's thread in direct reclaim or a syscall, ksmd…) sleeps until every subscriber has
// acked. Each invalidation still waiting `timeoutNs` after it started is one hung task, reported
// once, at the moment it crosses the timeout, with the state the trace shows then (its wait-for
// chain: wait-for.ts); khungtaskd would notice it at its next check, up to a timeout later, and
// report it again at each check while hung_task_warnings lasts. Reports are made as the trace is
// read, before the line that crosses the deadline is applied; the first hung_task_warnings keep
// their text, the rest are counted.
import { formatDuration } from '../scenario/units.js';
import { InvalidationTracker, type InvRecord } from './invalidations.js';
import { at, describeInvalidation, invalidationChain, type WaitForState } from './wait-for.js';

export interface HungTaskOptions {
  /** hung_task_timeout_secs, in ns. */
  timeoutNs: number;
  /** hung_task_warnings: reports printed before the rest are suppressed. */
  warningsMax: number;
}

export const HUNG_TASK_DEFAULTS: HungTaskOptions = { timeoutNs: 120e9, warningsMax: 10 };
/** The deadline queue is thinned of settled waits once it holds this many (and twice the open ones). */
const QUEUE_COMPACT_AT = 4096;

export interface HungTask {
  task: string;
  inv: number;
  blockedSinceT: number;
  reportedAtT: number;
  /** Subscribers' devices not answered when reported. */
  waitedBy: string[];
  /** How long it stayed blocked in all (to its last ack, or to the end of the trace if never). */
  blockedNs: number;
  stillBlockedAtEnd: boolean;
  deadlock: boolean;
  endsOn: string;
  /** The report in the kernel's form (kept for the first hung_task_warnings reports; empty after). */
  text: string[];
}

/** Hung waits kept as records (the first ones); past it they are counted only. */
export const HUNG_RECORDS_MAX = 10_000;

export class HungTaskDetector {
  private readonly queue: InvRecord[] = [];
  private head = 0;
  /** The first HUNG_RECORDS_MAX hung waits. */
  readonly reports: HungTask[] = [];
  /** Every hung wait. */
  count = 0;
  private readonly byInv = new Map<number, HungTask>();

  constructor(
    readonly options: HungTaskOptions,
    private readonly state: WaitForState,
  ) {}

  /** An invalidation started: it is due for a check `timeoutNs` later. */
  started(inv: InvRecord): void {
    this.queue.push(inv);
  }

  /** Every subscriber of `inv` answered (or it ended): a report made for it learns how long it lasted. */
  finished(inv: InvRecord, t: number): void {
    const h = this.byInv.get(inv.inv);
    if (h === undefined || !h.stillBlockedAtEnd) return;
    h.blockedNs = t - h.blockedSinceT;
    h.stillBlockedAtEnd = false;
    this.byInv.delete(inv.inv);
  }

  /** Before a line at `t` is applied: report every wait that has been blocked past the timeout by then. */
  advance(t: number): void {
    while (this.head < this.queue.length && this.queue[this.head].startT + this.options.timeoutNs <= t) {
      const inv = this.queue[this.head++];
      if (inv.endT === undefined && InvalidationTracker.waitingSubs(inv).length > 0) this.report(inv);
    }
    // Only waits still open can hang: drop the settled ones now and then (they are most), so the
    // queue holds what is open, not every invalidation of the last hung_task_timeout_secs.
    if (this.queue.length - this.head > QUEUE_COMPACT_AT && this.queue.length - this.head > 2 * this.openAtCompact) {
      const open = this.queue.slice(this.head).filter((inv) => inv.settledT === undefined);
      this.queue.length = 0;
      this.queue.push(...open);
      this.head = 0;
      this.openAtCompact = open.length;
    }
  }

  private openAtCompact = 0;

  /** The end of the trace: waits crossing the timeout by then, and the length of those still open. */
  end(tEnd: number): void {
    this.advance(tEnd);
    for (const h of this.byInv.values()) h.blockedNs = tEnd - h.blockedSinceT;
  }

  /** The kernel's lines for every report, the suppression notice after hung_task_warnings. */
  printed(): string[] {
    const out: string[] = [];
    this.reports.slice(0, this.options.warningsMax).forEach((h) => out.push(...h.text));
    if (this.count > this.options.warningsMax) {
      out.push(`Future hung task reports are suppressed, see sysctl kernel.hung_task_warnings (${this.count - this.options.warningsMax} more)`);
    }
    return out;
  }

  private report(inv: InvRecord): void {
    if (this.count++ >= HUNG_RECORDS_MAX) return;
    const now = inv.startT + this.options.timeoutNs;
    const waiting = InvalidationTracker.waitingSubs(inv);
    const devs = [...new Set(waiting.map((s) => this.state.invalidations.subs.get(s)?.dev ?? `subscription ${s}`))];
    const chain = invalidationChain(this.state, inv, now);
    // The kernel prints whole seconds; a timeout under a second (an option for short runs) keeps its fraction.
    const secs = this.options.timeoutNs >= 1e9 ? String(Math.floor(this.options.timeoutNs / 1e9)) : String(+(this.options.timeoutNs / 1e9).toPrecision(3));
    const text = [
      `INFO: task ${inv.task} blocked for more than ${secs} seconds.`,
      `      Not tainted (svmsim kernel-mm model: mm/ of v6.6–v6.15)`,
      `"echo 0 > /proc/sys/kernel/hung_task_timeout_secs" disables this message.`,
      `task:${inv.task.padEnd(15)} state:D blocked since ${at(inv.startT)}, reported at ${at(now)}`,
      'Call Trace:',
      ' <TASK>',
      ' dma_resv_wait_timeout', // what a driver's callback sleeps in, when the chain shows a fence
      ' __mmu_notifier_invalidate_range_start',
      ` ${inv.caller}`,
      ' </TASK>',
      `INFO: task ${inv.task} is blocked on ${describeInvalidation(inv)} likely waited by ${devs.join(', ')}`,
      ...chain.lines,
    ];
    // What the callback sleeps in: a fence (dma_resv_wait_timeout), a driver mutex (__mutex_lock,
    // with kernel/hung_task.c's CONFIG_DETECT_HUNG_TASK_BLOCKER line naming the likely owner), or nothing shown.
    const lockLine = chain.lines.find((l) => / waits for .*, held by /.test(l));
    if (lockLine !== undefined) {
      text[6] = ' __mutex_lock';
      const owner = / held by (\S+)/.exec(lockLine)![1];
      text.splice(11, 0, `INFO: task ${inv.task} is blocked on a mutex likely owned by task kworker (${owner}).`);
    } else if (!chain.lines.some((l) => l.includes('waits for fence'))) text.splice(6, 1);
    const h: HungTask = {
      task: inv.task, inv: inv.inv, blockedSinceT: inv.startT, reportedAtT: now, waitedBy: devs, blockedNs: now - inv.startT,
      stillBlockedAtEnd: true, deadlock: chain.deadlock, endsOn: chain.endsOn, text: this.reports.length < this.options.warningsMax ? text : [],
    };
    this.reports.push(h);
    this.byInv.set(inv.inv, h);
  }
}

/** One line per hung task, for summaries. */
export function hungTaskLine(h: HungTask): string {
  const how = h.stillBlockedAtEnd ? `still blocked at the end (${formatDuration(h.blockedNs)})` : `blocked ${formatDuration(h.blockedNs)}`;
  return `${h.task}: ${how} in invalidation #${h.inv}, waited by ${h.waitedBy.join(', ')}${h.endsOn ? `, on ${h.endsOn}` : ''}`;
}
