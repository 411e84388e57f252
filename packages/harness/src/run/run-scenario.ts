// One run of a scenario: build the actors, run them under the chosen scheduler with the trace on,
// check the trace and the final memory with the data oracle, and gather the figures a report shows.
import fs from 'node:fs';
import path from 'node:path';
import { LocalScheduler, TRACE_EXT, ThreadScheduler, type RunResult } from '@svmsim/runtime';
import { formatViolation } from '@svmsim/kernel-mm/checker';
import { InvalidationTracker } from '../analysis/invalidations.js';
import { readModel } from '../analysis/model.js';
import { formatDuration } from '../scenario/units.js';
import type { Scenario, StepResult } from '../scenario/types.js';
import { scenarioActors } from './actors.js';
import { describeFault, faultPlan, runBoundNs, withFaults } from './faults.js';

export interface RunOptions {
  seed: number;
  mode: 'deterministic' | 'threads';
  /** Thread mode: simulated ns per wall ns. */
  timeScale: number;
  /**
   * Where the trace and report.json go. Without it (deterministic runs only) the trace is kept in
   * memory for the checker and dropped, and no report.json is written: a seed sweep's runs.
   */
  traceDir?: string;
  /** Thread mode: Ctrl-C. The run stops, and its report says what happened up to then. */
  signal?: AbortSignal;
}

export interface RunReport {
  scenario: string;
  policies: Record<string, string>;
  /** The kernel era simulated (machine.kernel). */
  kernel: string;
  /** The GPUs' cost profile (machine.profile, gpu-driver cost-profiles.ts). */
  profile: string;
  /** machine.notifierPasses: 1 mainline, 2 the two-pass RFC. */
  notifierPasses: number;
  /** The scenario's report columns, if it names them. */
  columns?: string[];
  seed: number;
  mode: RunOptions['mode'];
  /** Absent for a run whose trace was kept in memory only (RunOptions.traceDir). */
  traceDir?: string;
  endedBy: string;
  reason: string;
  /** Set when the run could not finish (setup failed, a device never answered…): exit 3. */
  failed?: string;
  simNs: number;
  wallMs: number;
  mm: MmFigures;
  devices: Record<string, Record<string, unknown>>;
  phases: unknown[];
  steps: StepResult[];
  expectFailures: number;
  /** The faults injected (run/faults.ts), one line each; absent without faults. */
  faults?: string[];
  /** Devices killed by a fault: when, and what mm released for them (kernel-mm dead-driver.ts). */
  died?: { actor: string; error: string; atNs: number; pins: number; gets: number; subs: number }[];
  /** Envelopes the fault plan dropped (stop-invalidate-acks) and held back (reorder). */
  faultDrops?: number;
  faultHolds?: number;
  check: {
    ok: boolean;
    violations: string[];
    violationsDropped: number;
    stats: Record<string, number>;
    /** Tasks blocked longer than hung_task_timeout_secs (analysis/hung-tasks.ts): `svmsim check` prints them. */
    hungTasks: number;
  };
}

export interface MmFigures {
  cpuFaults: number;
  cpuFaultsByKind: Record<string, number>;
  invalidations: number;
  invalidationsByEvent: Record<string, number>;
  notifierWaitNsP50: number;
  notifierWaitNsP99: number;
  notifierWaitNsMax: number;
  /** munmap syscalls and their latency (request to reply: mmap_lock, the UNMAP invalidation, the zap). */
  munmaps: number;
  munmapNsP50: number;
  munmapNsP99: number;
  munmapNsMax: number;
  /** munmap / mprotect / mmap / madvise(write) that waited for mmap_lock, and p50/max of every write lock's wait. */
  mmapWriteLockWaits: number;
  mmapWriteLockWaitNsP50: number;
  mmapWriteLockWaitNsMax: number;
  kswapdRuns: number;
  kswapdBlockedNs: number;
  directReclaims: number;
  /** Time direct reclaim waited in notifiers. */
  directReclaimBlockedNs: number;
  /** Allocations that went to the slow path: how long they took. */
  allocStallNsP50: number;
  allocStallNsP99: number;
  allocStallNsMax: number;
  swapOuts: number;
  swapIns: number;
  oomKills: number;
  hmmRangeFaults: number;
  hmmEbusy: number;
  migrations: number;
  /** migrate_pages passes that retried a page after -EAGAIN (mm/migrate.c, up to NR_MAX_MIGRATE_PAGES_RETRY). */
  migrationRetries: number;
  /** Pages migrate_pages gave up on: pinned long-term, -EAGAIN still after the last pass, or a permanent failure. */
  migrationsFailed: number;
  /** Pages migrated on a retry pass (the pin or lock that made a pass fail had gone). */
  migratedAfterRetry: number;
  /** Pages the migrate_pages trigger did not attempt: maybe DMA-pinned in a COW mapping (prot_numa skip). */
  migrationsSkippedPinned: number;
  /** gup calls refused with -EREMOTEIO: P2P memory without FOLL_PCI_P2PDMA (a queue without P2P, an RDMA MR). */
  gupEremoteio: number;
  ksmMerged: number;
  writebacks: number;
  hungTaskWarnings: number;
}

export async function runScenario(scenario: Scenario, opts: RunOptions): Promise<RunReport> {
  const s = withFaults({ ...scenario, faults: scenario.faults ?? [] });
  const traceDir = opts.traceDir;
  if (traceDir === undefined && opts.mode !== 'deterministic') throw new Error('runScenario: a thread-mode run writes its trace: give it a traceDir');
  if (traceDir !== undefined) fs.mkdirSync(traceDir, { recursive: true });
  const actors = scenarioActors(s, { seed: opts.seed, checkInvariants: opts.mode === 'deterministic' && s.machine.frames <= 4096 });
  // A previous run's trace in the same directory would be merged into this one: remove exactly
  // the files a run writes, nothing else.
  if (traceDir !== undefined) {
    for (const name of ['trace', 'scheduler', ...actors.map((a) => a.id)]) {
      for (const ext of [TRACE_EXT, '.ndjson']) fs.rmSync(path.join(traceDir, name + ext), { force: true });
    }
  }
  const t0 = performance.now();
  // Past the scenario's duration the app drains and dumps by itself; the bound here only stops a run
  // that cannot end (a device that never answers): twice the duration plus a margin (past the
  // hung-task timeout when a fault stops a device's acks, so that khungtaskd's report is made).
  const durationNs = runBoundNs(s, opts.mode);
  const faults = faultPlan(s.faults);
  const r: RunResult =
    opts.mode === 'deterministic'
      ? await new LocalScheduler().run({ actors, seed: opts.seed, traceDir, traceInMemory: traceDir === undefined, durationNs, faults })
      : await new ThreadScheduler().run({ actors, seed: opts.seed, traceDir, timeScale: opts.timeScale, durationNs, signal: opts.signal, faults });
  const wallMs = performance.now() - t0;
  const app = r.summaries.app as { finalPages?: { pid: number; addr: number; value: number }[]; phases?: unknown[]; steps?: StepResult[]; expectFailures?: number; state?: string };
  // The data oracle and the hung-task detector in one pass over the trace, as `svmsim check` runs them.
  const { model } = readModel(traceDir ?? r.memoryTrace!, { check: true, collect: 'waits' });
  const check = model.checker!.finish(app.finalPages ?? null, model.finalPagesLine >= 0 ? model.finalPagesLine : undefined, { buffersFreed: model.finalPagesAfterTeardown });
  const devices: RunReport['devices'] = {};
  // The scenario's devices and the actors they bring along (an RDMA NIC's peer).
  for (const a of actors) if (a.id !== 'mm' && a.id !== 'ramdisk' && a.id !== 'nvme' && a.id !== 'app') devices[a.id] = r.summaries[a.id] ?? {};
  const released = model.deadDriverReleases;
  const hung = model.hung.reports[0];
  const notFinished = (): string => {
    // A run that never finished because mm waits for an ack that will not come: name the wait.
    if (hung?.stillBlockedAtEnd) return `the run did not finish (${r.reason}): task ${hung.task} is still blocked in invalidation #${hung.inv}, waiting for ${hung.waitedBy.join(', ')} (a hung task since t=${formatDuration(hung.blockedSinceT)}; svmsim check ${traceDir ?? 'on its trace (svmsim replay writes it)'} prints the report)`;
    // Shorter than hung_task_timeout_secs (a thread-mode run): the oldest invalidation still waiting, if any.
    const open = [...model.invalidations.open.values()].filter((inv) => inv.settledT === undefined && InvalidationTracker.waitingSubs(inv).length > 0);
    if (open.length > 0) {
      const inv = open.reduce((a, b) => (b.startT < a.startT ? b : a));
      const devs = [...new Set(InvalidationTracker.waitingSubs(inv).map((sub) => model.invalidations.subs.get(sub)?.dev ?? `subscription ${sub}`))];
      return `the run did not finish (${r.reason}): task ${inv.task} is still blocked in invalidation #${inv.inv}, waiting for ${devs.join(', ')} since t=${formatDuration(inv.startT)}`;
    }
    return `the run did not finish (${r.reason})`;
  };
  const report: RunReport = {
    scenario: s.name,
    policies: Object.fromEntries(s.devices.map((d) => [d.id, d.policy])),
    kernel: s.machine.kernel,
    profile: s.machine.profile,
    notifierPasses: s.machine.notifierPasses,
    columns: s.report,
    seed: opts.seed,
    mode: opts.mode,
    ...(traceDir !== undefined && { traceDir }),
    endedBy: r.endedBy,
    reason: r.reason,
    failed: app.state === 'done' ? undefined : r.endedBy === 'interrupted' ? 'interrupted (Ctrl-C) before the run finished' : notFinished(),
    simNs: r.endNs,
    wallMs: Math.round(wallMs),
    mm: pickMm(r.summaries.mm ?? {}),
    devices,
    phases: app.phases ?? [],
    steps: app.steps ?? [],
    expectFailures: app.expectFailures ?? 0,
    ...(s.faults.length > 0 && { faults: s.faults.map(describeFault) }),
    ...(r.died && { died: r.died.map((d) => ({ actor: d.actor, error: d.error, atNs: d.atNs, pins: 0, gets: 0, subs: 0, ...released.get(d.actor) })) }),
    ...(r.faultDrops !== undefined && { faultDrops: r.faultDrops, faultHolds: r.faultHolds }),
    check: {
      ok: check.ok,
      violations: check.violations.map(formatViolation),
      violationsDropped: check.violationsDropped,
      stats: { ...check.stats },
      hungTasks: model.hung.count,
    },
  };
  if (traceDir !== undefined) fs.writeFileSync(path.join(traceDir, 'report.json'), JSON.stringify(report, null, 2) + '\n');
  return report;
}

/** The trace directory of a run that wrote its trace (every run but a sweep's). */
export function traceDirOf(r: RunReport): string {
  if (r.traceDir === undefined) throw new Error(`${r.scenario} seed ${r.seed}: its trace was kept in memory only; svmsim replay writes it`);
  return r.traceDir;
}

/** The exit code a report calls for: 3 if the run did not finish, 1 for a violation or unmet expect. */
export function exitCodeOf(r: RunReport): number {
  if (r.failed !== undefined) return 3;
  return r.check.ok && r.expectFailures === 0 ? 0 : 1;
}

function pickMm(mm: Record<string, unknown>): MmFigures {
  const n = (k: string) => (typeof mm[k] === 'number' ? (mm[k] as number) : 0);
  return {
    cpuFaults: n('cpuFaults'),
    cpuFaultsByKind: (mm.cpuFaultsByKind as Record<string, number>) ?? {},
    invalidations: n('invalidations'),
    invalidationsByEvent: (mm.invalidationsByEvent as Record<string, number>) ?? {},
    notifierWaitNsP50: n('notifierWaitNsP50'),
    notifierWaitNsP99: n('notifierWaitNsP99'),
    notifierWaitNsMax: n('notifierWaitNsMax'),
    munmaps: n('munmaps'),
    munmapNsP50: n('munmapNsP50'),
    munmapNsP99: n('munmapNsP99'),
    munmapNsMax: n('munmapNsMax'),
    mmapWriteLockWaits: n('mmapWriteLockWaits'),
    mmapWriteLockWaitNsP50: n('mmapWriteLockWaitNsP50'),
    mmapWriteLockWaitNsMax: n('mmapWriteLockWaitNsMax'),
    kswapdRuns: n('kswapdRuns'),
    kswapdBlockedNs: n('kswapdBlockedNs'),
    directReclaims: n('directReclaims'),
    directReclaimBlockedNs: n('directReclaimBlockedNs'),
    allocStallNsP50: n('allocStallNsP50'),
    allocStallNsP99: n('allocStallNsP99'),
    allocStallNsMax: n('allocStallNsMax'),
    swapOuts: n('swapOuts'),
    swapIns: n('swapIns'),
    oomKills: n('oomKills'),
    hmmRangeFaults: n('hmmRangeFaults'),
    hmmEbusy: n('hmmEbusy'),
    migrations: n('migrations'),
    migrationRetries: n('migrationRetries'),
    migrationsFailed: n('migrationsFailed'),
    migratedAfterRetry: n('migratedAfterRetry'),
    migrationsSkippedPinned: n('migrationsSkippedPinned'),
    gupEremoteio: n('gupEremoteio'),
    ksmMerged: n('ksmMerged'),
    writebacks: n('writebacks'),
    hungTaskWarnings: n('hungTaskWarnings'),
  };
}
