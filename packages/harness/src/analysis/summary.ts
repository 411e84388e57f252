// `svmsim analyze`: the figures of one pass over a trace (model.ts), as plain data (`--json`
// prints it as it is; summary-text.ts lays it out for a terminal). Times are ns.
import { pow2Buckets, type Distribution, type DistributionSummary, type Pow2Bucket } from './distribution.js';
import { hungTaskLine } from './hung-tasks.js';
import type { ModelRun } from './model.js';
import type { ThrashingReport } from './thrashing.js';

export interface Figures extends DistributionSummary {
  hist: Pow2Bucket[];
}

export interface Analysis {
  trace: { target: string; files: string[]; lines: number; bytes: number; wallMs: number; linesPerSec: number; tFirstNs: number; tEndNs: number; warnings: string[] };
  run: { endedBy: string; reason: string } | null;
  actors: Record<string, { out: Record<string, number>; in: Record<string, number> }>;
  requests: ({ type: string; requester: string; handler: string } & Figures)[];
  openRequests: number;
  lateReplies: number;
  faults: {
    cpu: Record<string, Figures>;
    remote: Record<string, Figures>;
    cpuAll: Figures;
    remoteAll: Figures;
    errors: number;
    device: Record<string, { raised: number; batches: number; resolved: number; latency: Figures }>;
  };
  invalidations: {
    total: number;
    byEvent: Record<string, number>;
    withSubscribers: number;
    withoutSubscribers: number;
    refused: number;
    duration: Figures;
    byDevice: Record<string, Figures>;
    byDeviceEvent: { dev: string; event: string; wait: Figures }[];
    whoWaitedOnWhom: { task: string; dev: string; wait: Figures }[];
    blockedByTaskNs: Record<string, number>;
  };
  pins: {
    byRequester: Record<string, { pin: Taken; get: Taken }>;
    stillHeld: Record<string, Figures>;
    unmatchedReleases: number;
  };
  reclaim: {
    kswapd: { runs: number; awakeNs: number; reclaimed: number; blockedNs: number };
    direct: { rounds: number; reclaimed: number; byTask: Record<string, { rounds: number; reclaimed: number }> };
    allocStall: Figures;
    allocFailures: number;
  };
  oom: { kills: { t: number; pid: number; comm: string; rss: number; badness: number }[]; reaps: number; reapsIncomplete: number };
  thrashing: ThrashingReport;
  hungTasks: { count: number; timeoutNs: number; tasks: { task: string; inv: number; blockedSinceT: number; blockedNs: number; stillBlockedAtEnd: boolean; waitedBy: string[]; endsOn: string; line: string }[] };
}

interface Taken {
  calls: number;
  pages: number;
  longterm: number;
  hold: Figures;
}

export function figures(d: Distribution): Figures {
  return { ...d.summary(), hist: pow2Buckets(d) };
}

const record = <V, W>(m: Map<string, V>, f: (v: V) => W): Record<string, W> => Object.fromEntries([...m].map(([k, v]) => [k, f(v)]));

export function summarize(target: string, run: ModelRun, topPages: number): Analysis {
  const m = run.model;
  const split = (k: string): [string, string] => k.split('\u0000') as [string, string];
  const requests = [...m.latency].flatMap(([type, byRequester]) =>
    [...byRequester].flatMap(([requester, byHandler]) => [...byHandler].map(([handler, d]) => ({ type, requester, handler, ...figures(d) }))),
  );
  requests.sort((a, b) => b.count - a.count);
  const inv = m.invalidations;
  const actors: Analysis['actors'] = {};
  for (const a of [...m.actors].sort()) {
    actors[a] = { out: Object.fromEntries(m.requests.out.get(a) ?? []), in: Object.fromEntries(m.requests.in.get(a) ?? []) };
  }
  const faultSide = (side: string) => record(m.faults.mm.get(side) ?? new Map<string, Distribution>(), figures);
  const direct = m.reclaim.directByTask;
  const blocked = m.blocked.byTask(m.tEnd);
  return {
    trace: {
      target, files: run.read.files, lines: run.read.lines, bytes: run.read.bytes, wallMs: Math.round(run.wallMs),
      linesPerSec: Math.round(run.read.lines / Math.max(run.wallMs / 1e3, 1e-6)), tFirstNs: Number.isNaN(m.tFirst) ? 0 : m.tFirst, tEndNs: m.tEnd,
      warnings: [...run.read.warnings, ...m.warnings.map((w) => `t=${w.t} ${w.actor} ${w.ev}: ${String(w.what ?? w.error ?? '')}`)],
    },
    run: m.runEnd ? { endedBy: String(m.runEnd.endedBy), reason: String(m.runEnd.reason) } : null,
    actors,
    requests,
    openRequests: m.requests.openRequests().length,
    lateReplies: m.requests.lateReplies,
    faults: {
      cpu: faultSide('cpu'),
      remote: faultSide('remote'),
      cpuAll: figures(m.faults.mmAll.cpu),
      remoteAll: figures(m.faults.mmAll.remote),
      errors: m.faults.mmErrors,
      device: record(m.faults.device, (d) => ({ raised: d.raised, batches: d.batches, resolved: d.resolved, latency: figures(d.latency) })),
    },
    invalidations: {
      total: inv.withSubscribers + inv.withoutSubscribers,
      byEvent: Object.fromEntries(inv.byEvent),
      withSubscribers: inv.withSubscribers,
      withoutSubscribers: inv.withoutSubscribers,
      refused: inv.refused,
      duration: figures(inv.duration),
      byDevice: record(inv.waitByDev, figures),
      byDeviceEvent: [...inv.waitByDevEvent].map(([k, d]) => ({ dev: split(k)[0], event: split(k)[1], wait: figures(d) })),
      whoWaitedOnWhom: [...inv.waitByTaskDev].map(([k, d]) => ({ task: split(k)[0], dev: split(k)[1], wait: figures(d) })).sort((a, b) => b.wait.sum - a.wait.sum),
      blockedByTaskNs: Object.fromEntries(blocked),
    },
    pins: {
      byRequester: record(m.pins.byRequester, (t) => ({
        pin: { calls: t.pin.calls, pages: t.pin.pages, longterm: t.pin.longterm, hold: figures(t.pin.hold) },
        get: { calls: t.get.calls, pages: t.get.pages, longterm: t.get.longterm, hold: figures(t.get.hold) },
      })),
      stillHeld: record(m.pins.stillHeld(m.tEnd), figures),
      unmatchedReleases: m.pins.unmatchedReleases,
    },
    reclaim: {
      kswapd: { runs: m.reclaim.kswapdRuns, awakeNs: m.reclaim.awakeNs(m.tEnd), reclaimed: m.reclaim.kswapdReclaimed, blockedNs: blocked.get('kswapd0') ?? 0 },
      direct: {
        rounds: m.reclaim.directRounds,
        reclaimed: m.reclaim.directReclaimed,
        byTask: record(direct, (d) => ({ ...d })),
      },
      allocStall: figures(m.reclaim.allocStall),
      allocFailures: m.reclaim.allocFailures,
    },
    oom: { kills: m.reclaim.oomKills, reaps: m.reclaim.oomReaps, reapsIncomplete: m.reclaim.oomReapsIncomplete },
    thrashing: m.thrashing.report(topPages),
    hungTasks: {
      count: m.hung.count,
      timeoutNs: m.hung.options.timeoutNs,
      tasks: m.hung.reports.map((h) => ({
        task: h.task, inv: h.inv, blockedSinceT: h.blockedSinceT, blockedNs: h.blockedNs, stillBlockedAtEnd: h.stillBlockedAtEnd,
        waitedBy: h.waitedBy, endsOn: h.endsOn, line: hungTaskLine(h),
      })),
    },
  };
}
