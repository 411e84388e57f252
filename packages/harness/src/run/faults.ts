// Fault injection for a scenario run: the `faults:` block of a scenario file and `--inject` flags
// (both end as Scenario.faults, validated by schema.ts), turned into the runtime's FaultPlan
// (packages/runtime/src/faults.ts) and the app's part (hang-fence). Each fault has a defined outcome:
//
//   kill: DEV at: T             DEV's actor dies at T (thread mode: its worker thread exits). The
//                               runtime answers everything pending on it with actor_died; mm
//                               drops its pins, gup references, interval notifiers, mmap read
//                               locks and open migrations (kernel-mm dead-driver.ts); the app stops
//                               its phases and runs the end of the run without DEV (its BOs and MRs
//                               are gone with it), dumps and checks. The report names DEV, when it
//                               died and what mm released. Exit 0 if the checker passes, as for
//                               any run: the fault's outcome is the defined one.
//   hang-fence: DEV job: N      DEV's N-th job never signals its fence (gpu_submit hang). The
//                               driver's job timeout (machine.lockupTimeout, or `timeout:`) fires:
//                               amdgpu_job_timedout → GPU reset (gpu-driver job-timeout.ts): the
//                               fence signalled -ETIME, other jobs -ECANCELED, waiters released.
//                               The run goes on; the job's error is counted (job-errors). With KFD
//                               user queues (preempt, svm-fault, kfd-svm) there is no job timeout:
//                               the hang shows only when a preemption times out (HWS hang → reset).
//   hang-fence: DEV restore: N  the page-table update fence of DEV's N-th restore worker run never
//                               signals (kfd-svm, XNACK off: svm_range_restore_work waits for it
//                               holding svm_range_lock; gpu-driver policy-preempt.ts). No timeout
//                               ends that wait: the next invalidation of the process blocks behind
//                               the lock for good (the kswapd-fence-hang scenario).
//   stop-invalidate-acks: DEV at: T
//                               from T on, DEV's invalidate_acks (and a two-pass driver's
//                               invalidate_multipass_ack / invalidate_pass_done) never reach mm. mm does what the
//                               kernel does: it waits. mmu_interval_notifier invalidate callbacks
//                               have no timeout (mn_itree_invalidate calls ops->invalidate and
//                               waits for it to return), so the task that started the invalidation
//                               is blocked for good: khungtaskd reports it after
//                               hung_task_timeout_secs (120 s) and the run ends at its time limit,
//                               failed (exit 3), naming the task, the invalidation and DEV; `svmsim
//                               check` prints the hung-task report with the blocker chain. The
//                               deterministic run's limit is raised past T + 121 s so that the
//                               report is made.
//   delay: {from, to, ns, jitterNs}   envelopes from→to arrive later (FIFO per pair kept).
//   reorder: {probability, maxNs}     seeded holds that let other pairs' envelopes overtake.
//                               Safe policies must still show zero violations.
import type { FaultPlan } from '@svmsim/runtime';
import { z } from 'zod';
import { UsageError } from './actors.js';
import { checkFaults, faultListSchema, firstIssue, formatPath } from '../scenario/schema.js';
import type { FaultSpec, Scenario } from '../scenario/types.js';
import { formatDuration } from '../scenario/units.js';

/** hung_task_timeout_secs, and one more second so that the report is in the trace. */
export const HUNG_TASK_MARGIN_NS = 121e9;

/** The runtime's plan for a scenario's faults (hang-fence is the app's, not the scheduler's). */
export function faultPlan(faults: readonly FaultSpec[]): FaultPlan | undefined {
  if (faults.length === 0) return undefined;
  const plan: FaultPlan = {};
  for (const f of faults) {
    switch (f.kind) {
      case 'kill':
        (plan.kills ??= []).push({ actor: f.device, atNs: f.atNs });
        break;
      case 'stop-invalidate-acks':
        // Every answer to a callback: a two-pass driver's first and second passes too.
        for (const type of ['invalidate_ack', 'invalidate_multipass_ack', 'invalidate_pass_done']) (plan.drops ??= []).push({ from: f.device, to: 'mm', type, atNs: f.atNs });
        break;
      case 'delay':
        (plan.delays ??= []).push({ from: f.from, to: f.to, ns: f.ns, jitterNs: f.jitterNs });
        break;
      case 'reorder':
        plan.reorder = { probability: f.probability, maxNs: f.maxNs };
        break;
      case 'hang-fence':
        break;
      default: {
        const never: never = f;
        throw new Error(`unknown fault ${JSON.stringify(never)}`);
      }
    }
  }
  return plan;
}

/** The scenario as the faults change it: a hang-fence's timeout is machine.lockupTimeout's gfx and compute. */
export function withFaults(s: Scenario): Scenario {
  const t = s.faults.find((f): f is Extract<FaultSpec, { kind: 'hang-fence' }> => f.kind === 'hang-fence' && f.timeoutMs !== undefined)?.timeoutMs;
  if (t === undefined) return s;
  return { ...s, machine: { ...s.machine, lockupTimeout: { ...s.machine.lockupTimeout, gfx: t, compute: t } } };
}

/** The bound on a run's simulated time: a stop-invalidate-acks fault needs the hung-task report to be made. */
export function runBoundNs(s: Scenario, mode: 'deterministic' | 'threads'): number {
  const base = s.duration * 2 + 10e9;
  if (mode !== 'deterministic') return base;
  const stops = s.faults.filter((f) => f.kind === 'stop-invalidate-acks').map((f) => (f as { atNs: number }).atNs + HUNG_TASK_MARGIN_NS);
  return Math.max(base, ...stops);
}

/** The most `--inject` flags one command takes. */
export const INJECT_FLAGS_MAX = 64;
const INJECT_TEXT_MAX = 200;

/**
 * `--inject` flags: `kill:gpu0@5ms`, `stop-invalidate-acks:rdma0@2ms`, `hang-fence:gpu0,job=2[,timeout=500ms]`, `hang-fence:gpu0,restore=1`,
 * `delay:from=mm,to=gpu0,ns=10us[,jitterNs=5us]`, `reorder:probability=0.1[,maxNs=10us]`.
 * Each becomes the entry a `faults:` block would hold and is validated by the same schema; a bad
 * one is a UsageError naming the flag and the field.
 */
export function parseInjectFlags(flags: readonly string[]): unknown[] {
  if (flags.length > INJECT_FLAGS_MAX) throw new UsageError(`--inject: ${flags.length} flags; at most ${INJECT_FLAGS_MAX}`);
  return flags.map((flag) => {
    const bad = (why: string): never => {
      throw new UsageError(`--inject ${JSON.stringify(flag)}: ${why}`);
    };
    if (flag.length > INJECT_TEXT_MAX) bad(`longer than ${INJECT_TEXT_MAX} characters`);
    const m = /^([a-z-]+):(.*)$/.exec(flag);
    if (!m) bad('expected KIND:…, e.g. kill:gpu0@5ms, hang-fence:gpu0,job=2, stop-invalidate-acks:rdma0@2ms, delay:from=mm,to=gpu0,ns=10us, reorder:probability=0.1');
    const [, kind, rest] = m!;
    const parts = rest.split(',');
    const pairs = (items: string[]) => {
      const out: Record<string, unknown> = {};
      for (const it of items) {
        const kv = /^([A-Za-z]+)=(.+)$/.exec(it);
        if (!kv) bad(`${JSON.stringify(it)} is not KEY=VALUE`);
        if (kv![1] in out) bad(`${kv![1]} given twice`);
        out[kv![1]] = /^-?\d+(\.\d+)?(e-?\d+)?$/.test(kv![2]) ? Number(kv![2]) : kv![2];
      }
      return out;
    };
    switch (kind) {
      case 'kill':
      case 'stop-invalidate-acks':
      case 'hang-fence': {
        const [target, ...more] = parts;
        const at = /^([^@]*)@(.+)$/.exec(target);
        const entry: Record<string, unknown> = { [kind]: at ? at[1] : target, ...pairs(more) };
        if (at) entry.at = /^\d+$/.test(at[2]) ? Number(at[2]) : at[2];
        return entry;
      }
      case 'delay':
      case 'reorder':
        return { [kind]: pairs(parts) };
      default:
        return bad(`"${kind}" is not one of kill, hang-fence, stop-invalidate-acks, delay, reorder`);
    }
  });
}

/** The scenario with `--inject` faults added, each checked as the file's would be; errors name the flag. */
export function injectFaults(s: Scenario, flags: readonly string[] | undefined): Scenario {
  if (!flags || flags.length === 0) return s;
  const entries = parseInjectFlags(flags);
  const parsed: FaultSpec[] = entries.map((e, i) => {
    const r = faultListSchema.safeParse([e], { reportInput: true });
    if (!r.success) {
      const { path, message } = firstIssue(r.error as z.ZodError);
      throw new UsageError(`--inject ${JSON.stringify(flags[i])}: ${path.replace(/^\[0\]\.?/, '') || 'value'}: ${message}`);
    }
    return r.data[0];
  });
  const out = { ...s, faults: [...s.faults, ...parsed] };
  checkFaults(out, (path, _input, message) => {
    const i = typeof path[1] === 'number' ? path[1] - s.faults.length : -1;
    const field = path.length > 3 ? `${formatPath(path.slice(2))}: ` : ''; // delay.to; the device of a kill is the flag's own
    throw new UsageError(i >= 0 ? `--inject ${JSON.stringify(flags[i])}: ${field}${message}` : `faults: ${message}`);
  });
  return out;
}

/** One line per fault, for the report. */
export function describeFault(f: FaultSpec): string {
  switch (f.kind) {
    case 'kill': return `kill ${f.device} at ${formatDuration(f.atNs)}`;
    case 'hang-fence':
      if (f.restore !== undefined) return `hang-fence ${f.device} restore ${f.restore} (its page-table update fence)`;
      return `hang-fence ${f.device} job ${f.job}${f.timeoutMs !== undefined ? ` (lockup timeout ${f.timeoutMs} ms)` : ''}`;
    case 'stop-invalidate-acks': return `stop-invalidate-acks ${f.device} from ${formatDuration(f.atNs)}`;
    case 'delay': return `delay ${f.from} → ${f.to} ${formatDuration(f.ns)} + up to ${formatDuration(f.jitterNs)}`;
    case 'reorder': return `reorder p=${f.probability} up to ${formatDuration(f.maxNs)}`;
  }
}
