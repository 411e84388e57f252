// Plain-text tables for the terminal: one row per run, the figure that tells the story first, the
// checker's verdict last. Times are in the unit a person reads; --json carries the raw numbers.
import type { RunReport } from '../run/run-scenario.js';
import { formatDuration } from '../scenario/units.js';

export interface Column {
  title: string;
  cell: (r: RunReport) => string;
}

export const verdict = (r: RunReport): string => {
  if (r.endedBy === 'interrupted') return 'interrupted';
  if (r.failed !== undefined) return 'run failed';
  if (!r.check.ok) return `${r.check.violations.length + r.check.violationsDropped} violation${r.check.violations.length === 1 ? '' : 's'}`;
  if (r.expectFailures > 0) return `${r.expectFailures} expect failed`;
  return 'ok';
};

const byEvent = (r: RunReport) =>
  Object.entries(r.mm.invalidationsByEvent)
    .map(([e, n]) => `${e.replace('MMU_NOTIFY_', '').toLowerCase()} ${n}`)
    .join(', ') || '-';

/** A numeric figure of a summary, 0 when absent. */
const n = (d: Record<string, unknown> | undefined, k: string): number => (d && typeof d[k] === 'number' ? (d[k] as number) : 0);
const simS = (r: RunReport): number => Math.max(r.simNs, 1) / 1e9;
/** The GPU's busy span in seconds (first submission to last job end), else the run's. */
const busyS = (g: Record<string, unknown>, r: RunReport): number => {
  const first = n(g, 'firstSubmitAt');
  const last = n(g, 'lastJobEndAt');
  return first >= 0 && last > first ? (last - first) / 1e9 : simS(r);
};
/** A rate or ratio with three significant digits. */
const fig = (x: number): string => (x === 0 ? '0' : x >= 100 ? String(Math.round(x)) : x.toPrecision(3).replace(/\.?0+$/, ''));
const gpuCell = (f: (g: Record<string, unknown>, r: RunReport) => string) => (r: RunReport) => {
  const g = gpuOf(r);
  return g ? f(g, r) : '-';
};
/** A cell of the RDMA NIC's figures (its summary) and its peer's. */
const rdmaCell = (f: (d: Record<string, unknown>, peer: Record<string, unknown> | undefined, r: RunReport) => string) => (r: RunReport) => {
  const found = rdmaOf(r);
  return found ? f(found.nic, found.peer, r) : '-';
};
/** The NIC's busy span in seconds (first to last message completed), else the run's. */
const nicBusyS = (d: Record<string, unknown>, r: RunReport): number => {
  const first = n(d, 'firstMessageAt');
  const last = n(d, 'lastMessageAt');
  return first >= 0 && last > first ? (last - first) / 1e9 : simS(r);
};
const total = (d: Record<string, unknown> | undefined, k: string, skip: string[] = []): number =>
  Object.entries((d?.[k] as Record<string, number> | undefined) ?? {}).reduce((a, [key, v]) => (skip.includes(key) ? a : a + v), 0);
/** Each phase's RDMA messages per second, ODP faults and RNR NAKs, from the NIC counters read at its end. */
function rdmaPhases(r: RunReport): string {
  const found = rdmaOf(r);
  if (!found) return '-';
  let prev: Record<string, number> = {};
  const parts: string[] = [];
  for (const ph of r.phases as { name: string; durationNs: number; counters?: Record<string, Record<string, number>> }[]) {
    const c = ph.counters?.[found.id];
    if (!c) continue;
    const [msgs, faults, naks] = ['rdmaMessages', 'odpFaults', 'rnrNaksSent'].map((k) => (c[k] ?? 0) - (prev[k] ?? 0));
    prev = c;
    if (msgs === 0 && faults === 0) continue; // a phase without traffic (a script's prefetch)
    parts.push(`${ph.name}: ${fig((msgs / Math.max(ph.durationNs, 1)) * 1e9)}/s ${faults} faults ${naks} RNR`);
  }
  return parts.join(' · ') || '-';
}

/** The nvme device that did the most direct I/O (its summary has kind nvme), if any. */
function nvmeOf(r: RunReport): Record<string, unknown> | undefined {
  const all = Object.values(r.devices).filter((d) => d.kind === 'nvme');
  return all.sort((a, b) => n(b, 'dioReads') + n(b, 'dioWrites') - n(a, 'dioReads') - n(a, 'dioWrites'))[0];
}
const nvmeCell = (f: (d: Record<string, unknown>, r: RunReport) => string) => (r: RunReport) => {
  const d = nvmeOf(r);
  return d ? f(d, r) : '-';
};
const migratePagesLeft = (r: RunReport): number =>
  r.phases.reduce((a: number, p) => a + ((p as { migratePagesLeft?: number }).migratePagesLeft ?? 0), 0);

/**
 * Every column a report can show, by id. A scenario picks its own (`report:` in its file, the
 * story of that scenario first); without one a run shows DEFAULT_COLUMNS. `policy` always comes
 * first and `verdict` last.
 */
export const COLUMNS: Record<string, Column> = {
  policy: { title: 'policy', cell: (r) => Object.values(r.policies).join(',') || '-' },
  ops: { title: 'ops', cell: (r) => String(r.phases.reduce((n: number, p) => n + ((p as { ops?: number }).ops ?? 0), 0)) },
  'cpu-faults': { title: 'cpu faults', cell: (r) => String(r.mm.cpuFaults) },
  'hmm-faults': { title: 'hmm faults', cell: (r) => String(r.mm.hmmRangeFaults) },
  invalidations: { title: 'invalidations', cell: (r) => String(r.mm.invalidations) },
  'notifier-wait': { title: 'notifier wait p50/p99/max', cell: (r) => [r.mm.notifierWaitNsP50, r.mm.notifierWaitNsP99, r.mm.notifierWaitNsMax].map(formatDuration).join(' / ') },
  'munmap-latency': { title: 'munmap p50/p99/max', cell: (r) => (r.mm.munmaps === 0 ? '-' : [r.mm.munmapNsP50, r.mm.munmapNsP99, r.mm.munmapNsMax].map(formatDuration).join(' / ')) },
  // Every GPU's own callback time (its summary's invalidateWait), for runs with several GPUs.
  'gpus-notifier-wait': {
    title: 'each GPU inval wait p50/max',
    cell: (r) => Object.entries(r.devices).filter(([, d]) => typeof d.pagesWalkedPerSubmissionMean === 'number')
      .map(([id, g]) => `${id} ${formatDuration(n(g, 'invalidateWaitP50Ns'))} / ${formatDuration(n(g, 'invalidateWaitMaxNs'))}`).join(' · ') || '-',
  },
  'mmap-lock-wait': { title: 'mmap_lock waits, p50/max', cell: (r) => `${r.mm.mmapWriteLockWaits}, ${formatDuration(r.mm.mmapWriteLockWaitNsP50)} / ${formatDuration(r.mm.mmapWriteLockWaitNsMax)}` },
  'kswapd-blocked': { title: 'kswapd blocked', cell: (r) => formatDuration(r.mm.kswapdBlockedNs) },
  'direct-reclaim': { title: 'direct reclaim', cell: (r) => String(r.mm.directReclaims) },
  'direct-reclaim-blocked': { title: 'direct reclaim blocked', cell: (r) => formatDuration(r.mm.directReclaimBlockedNs) },
  'alloc-stall': { title: 'alloc stall p50/p99/max', cell: (r) => [r.mm.allocStallNsP50, r.mm.allocStallNsP99, r.mm.allocStallNsMax].map(formatDuration).join(' / ') },
  swap: { title: 'swap out/in', cell: (r) => `${r.mm.swapOuts}/${r.mm.swapIns}` },
  'oom-kills': { title: 'OOM kills', cell: (r) => String(r.mm.oomKills) },
  'hung-tasks': { title: 'hung tasks', cell: (r) => String(r.check.hungTasks) },
  // The GPU's own figures (its summary()).
  submits: { title: 'submits', cell: gpuCell((g) => String(n(g, 'submissions'))) },
  // Over the GPU's busy span (first submission to last job end), not the whole run with its drain.
  'submits-per-s': { title: 'submits/s', cell: gpuCell((g, r) => fig(n(g, 'submissions') / busyS(g, r))) },
  'pages-walked': { title: 'pages walked/submit', cell: gpuCell((g) => fig(n(g, 'pagesWalkedPerSubmissionMean'))) },
  'submit-latency': { title: 'submit p50/p99', cell: gpuCell((g) => `${formatDuration(n(g, 'submitLatencyP50Ns'))} / ${formatDuration(n(g, 'submitLatencyP99Ns'))}`) },
  resubmits: { title: 'resubmits', cell: gpuCell((g) => String(n(g, 'resubmissions'))) },
  'gpu-invalidations-per-page-s': { title: 'invalidated/page/s', cell: gpuCell((g, r) => fig(n(g, 'pagesInvalidated') / Math.max(1, n(g, 'boPagesCreated')) / simS(r))) },
  'rebinds-per-page-s': { title: 'rebound/page/s', cell: gpuCell((g, r) => fig(n(g, 'gpuvmRebinds') / Math.max(1, n(g, 'boPagesCreated')) / simS(r))) },
  'device-faults': { title: 'device faults', cell: gpuCell((g) => String(n(g, 'deviceFaults'))) },
  // uvm: batches fetched from the replayable fault buffer and faults coalesced into another of their batch.
  'fault-batches': { title: 'fault batches/coalesced', cell: gpuCell((g) => (g.faultsFetched === undefined ? '-' : `${n(g, 'faultBatches')}/${n(g, 'faultsCoalesced')}`)) },
  // uvm: its thrashing_stats (uvm_perf_thrashing.c): pages found thrashing, throttles, pins here / elsewhere.
  thrashing: {
    title: 'thrashing/throttle/pin local/remote',
    cell: gpuCell((g) => (g.pin_local === undefined ? '-' : `${n(g, 'thrashing')}/${n(g, 'throttle')}/${n(g, 'pin_local')}/${n(g, 'pin_remote')}`)),
  },
  // VRAM oversubscription (svm-fault, kfd-svm, uvm): evictions (uvm: whole 2 MiB root chunks), pages evicted, migrations to VRAM / back.
  'vram-evictions': {
    title: 'VRAM evictions (chunks), pages out; to VRAM/to RAM',
    cell: gpuCell((g) => (g.vramEvictions === undefined ? '-' : `${n(g, 'vramEvictions')} (${n(g, 'vramChunksEvicted')}), ${n(g, 'vramPagesEvicted')}; ${n(g, 'migratedToVram')}/${n(g, 'migratedToRam')}`)),
  },
  // gpusvm (drm_gpusvm + xe): ranges created / removed by the garbage collector / dropped whole by a partial munmap.
  'svm-ranges': {
    title: 'ranges created/collected/partial drops',
    cell: gpuCell((g) => (g.rangesGarbageCollected === undefined ? '-' : `${n(g, 'rangesCreated')}/${n(g, 'rangesGarbageCollected')}/${n(g, 'partialUnmapRangeDrops')}`)),
  },
  // gpusvm: drm_gpusvm_get_pages repeated (hmm_range_fault -EBUSY or a stale read_retry) and binds refused by drm_gpusvm_range_pages_valid.
  'get-pages-retries': { title: 'get_pages retries/bind retries', cell: gpuCell((g) => (g.getPagesRetries === undefined ? '-' : `${n(g, 'getPagesRetries')}/${n(g, 'bindRetries')}`)) },
  // gpusvm: whole-range migrations to VRAM (drm_pagemap_migrate_to_devmem), pages, and CPU faults the atomic time slice refused.
  'svm-migrations': {
    title: 'to VRAM ranges/pages, timeslice refusals',
    cell: gpuCell((g) => (g.timesliceRefusals === undefined ? '-' : `${n(g, 'migrationsToVram')}/${n(g, 'migratedToVram')}, ${n(g, 'timesliceRefusals')}`)),
  },
  'fault-latency': { title: 'fault p50/p99', cell: gpuCell((g) => `${formatDuration(n(g, 'faultLatencyP50Ns'))} / ${formatDuration(n(g, 'faultLatencyP99Ns'))}`) },
  preemptions: { title: 'preemptions', cell: gpuCell((g) => String(n(g, 'preemptions'))) },
  'restore-walked': { title: 'restore pages walked', cell: gpuCell((g) => String(n(g, 'restorePagesWalked'))) },
  'queues-stopped': { title: 'queues stopped', cell: gpuCell((g) => formatDuration(n(g, 'queuesStoppedNs'))) },
  // The restore worker's work against its progress (restore-storm): attempts and hmm_range_fault
  // walks per second of simulated time, and how many attempts resumed the queues.
  'restore-storm': {
    title: 'restore attempts/s, walks/s, done',
    cell: gpuCell((g, r) => (g.restoreAttempts === undefined ? '-' : `${fig(n(g, 'restoreAttempts') / simS(r))}, ${fig(n(g, 'restoreHmmCalls') / simS(r))}, ${n(g, 'restores')}`)),
  },
  // kfd: CPU faults whose migrate_to_ram queued on migrate_mutex (xnack-heap-reuse), and for how long.
  'cpu-migrate-wait': {
    title: 'CPU migrate_to_ram waits, total/max',
    cell: gpuCell((g) => (g.cpuMigrateWaits === undefined ? '-' : `${n(g, 'cpuMigrateWaits')} of ${n(g, 'migratedToRam')}, ${formatDuration(n(g, 'cpuMigrateWaitNs'))} / ${formatDuration(n(g, 'cpuMigrateWaitNsMax'))}`)),
  },
  // Each phase's simulated time, in order: a scenario whose phases do the same work two ways.
  'phase-times': { title: 'phase times', cell: (r) => (r.phases as { durationNs: number }[]).map((p) => formatDuration(p.durationNs)).join(' · ') },
  // kfd-svm-read-begin-outside-loop: -EBUSY retried with a stale sequence until the 1 s timeout.
  'stale-seq-spins': { title: '-EBUSY spins to timeout', cell: gpuCell((g) => (g.staleSeqSpins === undefined ? '-' : `${n(g, 'staleSeqSpins')} (${formatDuration(n(g, 'staleSeqSpinNs'))})`)) },
  // Each access of a job moves one page (4 KiB): the copy rate of jobs that read or write a buffer.
  'copy-throughput': {
    title: 'GPU copy MiB/s',
    cell: gpuCell((g) => (n(g, 'jobRunNsTotal') > 0 ? fig((n(g, 'jobAccessesTotal') * 4096) / 2 ** 20 / (n(g, 'jobRunNsTotal') / 1e9)) : '-')),
  },
  'job-stretch': { title: 'job time/duration', cell: gpuCell((g) => (n(g, 'jobsDone') > 0 ? `${fig(n(g, 'jobStretchMax'))}×` : `${n(g, 'jobsRunning')} running`)) },
  'job-errors': { title: 'job errors', cell: gpuCell((g) => String(n(g, 'jobErrors'))) },
  'jobs-lost': {
    title: 'jobs lost (timeout/reset)',
    cell: gpuCell((g) => {
      const lost = Object.entries((g.jobsLost as Record<string, number> | undefined) ?? {}).map(([e, k]) => `${k} ${e}`);
      return lost.join(', ') || '0';
    }),
  },
  'lockup-timeout': {
    title: 'compute lockup_timeout',
    cell: gpuCell((g) => {
      const t = g.lockupTimeoutMs as { compute: number } | null | undefined;
      return !t ? 'none' : t.compute < 0 ? 'infinite' : formatDuration(t.compute * 1e6);
    }),
  },
  'bos-refused': { title: 'BOs refused', cell: gpuCell((g) => String(n(g, 'boCreateErrors'))) },
  'pages-pinned': { title: 'pages pinned', cell: gpuCell((g) => String(n(g, 'pagesPinned'))) },
  'gpu-invalidations': { title: 'GPU invalidations', cell: gpuCell((g) => String(n(g, 'invalidations'))) },
  'gpu-notifier-wait': { title: 'GPU inval wait p50/max', cell: gpuCell((g) => `${formatDuration(n(g, 'invalidateWaitP50Ns'))} / ${formatDuration(n(g, 'invalidateWaitMaxNs'))}`) },
  'invalidations-by-event': { title: 'invalidations by event', cell: (r) => byEvent(r) },
  // The RDMA NIC's own figures (its summary()) and its peer's.
  'rdma-msgs': { title: 'RDMA msgs', cell: rdmaCell((d) => String(n(d, 'rdmaMessages'))) },
  // Over the NIC's busy span (first to last message completed).
  'rdma-msgs-per-s': { title: 'RDMA msgs/s', cell: rdmaCell((d, _p, r) => fig(n(d, 'rdmaMessages') / nicBusyS(d, r))) },
  'odp-faults': { title: 'ODP faults', cell: rdmaCell((d) => String(n(d, 'odpFaults'))) },
  'pages-per-fault': { title: 'pages/fault', cell: rdmaCell((d) => fig(n(d, 'pagesPerFault'))) },
  'odp-fault-latency': { title: 'ODP fault p50/p99', cell: rdmaCell((d) => `${formatDuration(n(d, 'faultLatencyP50Ns'))} / ${formatDuration(n(d, 'faultLatencyP99Ns'))}`) },
  'rnr-naks': { title: 'RNR NAKs/retries', cell: rdmaCell((d, p) => `${n(d, 'rnrNaksSent')}/${n(p, 'rnrRetries') + n(p, 'transportRetries')}`) },
  'wqe-errors': { title: 'WQE errors', cell: rdmaCell((d, p) => String(total(d, 'wqeErrors') + total(p, 'completions', ['IBV_WC_SUCCESS', 'IBV_WC_WR_FLUSH_ERR']))) },
  'rdma-invalidations': { title: 'NIC invalidations (pages)', cell: rdmaCell((d) => `${n(d, 'invalidations')} (${n(d, 'pagesInvalidated')})`) },
  'rdma-notifier-wait': { title: 'NIC inval wait p50/max', cell: rdmaCell((d) => `${formatDuration(n(d, 'invalidateWaitP50Ns'))} / ${formatDuration(n(d, 'invalidateWaitMaxNs'))}`) },
  'rdma-pinned': { title: 'pinned pages', cell: rdmaCell((d) => String(n(d, 'pinnedVmMaxPages'))) },
  'mrs-refused': { title: 'MRs refused', cell: rdmaCell((d) => String(total(d, 'regErrors'))) },
  'implicit-children': { title: 'children made/gone', cell: rdmaCell((d) => `${n(d, 'implicitChildrenCreated')}/${n(d, 'implicitChildrenDestroyed')}`) },
  'dmabuf-moves': { title: 'move_notify', cell: rdmaCell((d) => String(n(d, 'dmabufMoveNotifies'))) },
  'orphan-writes': { title: 'DMA to orphaned pins', cell: (r) => String(r.check.stats.orphanPinnedWrites ?? 0) },
  'rdma-phases': { title: 'by phase: msgs/s, faults, RNR NAKs', cell: rdmaPhases },
  // An nvme device's direct I/O (packages/nvme/src/blkdev-dio.ts summary), over the span from its
  // first request to its last completion.
  'dio-iops': { title: 'IOPS', cell: nvmeCell((d) => fig(n(d, 'dioIops'))) },
  'dio-ios': { title: 'I/Os r/w', cell: nvmeCell((d) => `${n(d, 'dioReads')}/${n(d, 'dioWrites')}`) },
  'dio-latency': { title: 'latency p50/p99', cell: nvmeCell((d) => `${formatDuration(n(d, 'dioLatencyP50Ns'))} / ${formatDuration(n(d, 'dioLatencyP99Ns'))}`) },
  'pins-held': { title: 'pins held max/mean', cell: nvmeCell((d) => `${n(d, 'pinsHeldMax')} / ${fig(n(d, 'pinsHeldTimeWeighted'))}`) },
  'io-errors': { title: 'I/O errors (failed writes)', cell: nvmeCell((d) => `${n(d, 'dioErrors')} (${n(d, 'dioFailedWrites')})`) },
  'p2p-refused': { title: 'P2P -EREMOTEIO', cell: nvmeCell((d) => String(n(d, 'dioEremoteio'))) },
  'nvme-resets': { title: 'timeouts/aborts/resets', cell: nvmeCell((d) => `${n(d, 'timeouts')}/${n(d, 'aborts')}/${n(d, 'resets')}`) },
  // Pages mm migrated, the retry passes migrate_pages made over pages that answered -EAGAIN (a short
  // pin, a locked page: up to NR_MAX_MIGRATE_PAGES_RETRY passes each), and the pages the workload's
  // migrate_pages asked for and migration left in place (pinned in a COW mapping: not attempted;
  // still busy after the last pass; not present).
  'migration-retries': { title: 'migrated / retries / left', cell: (r) => `${r.mm.migrations} / ${r.mm.migrationRetries} / ${migratePagesLeft(r)}` },
  'block-writes': { title: 'block writes acked/failed', cell: (r) => `${r.check.stats.blockWritesAcked ?? 0}/${r.check.stats.blockWritesFailed ?? 0}` },
  verdict: { title: 'verdict', cell: verdict },
};

/** The columns of a run without a `report:` list, the story first and the verdict last (shared/EXPERIENCE.md). */
export const DEFAULT_COLUMNS = ['ops', 'cpu-faults', 'hmm-faults', 'invalidations', 'notifier-wait', 'kswapd-blocked', 'hung-tasks', 'direct-reclaim', 'swap', 'oom-kills'];
/** Shown after the policy when a run without a `report:` list has a GPU. */
const DEFAULT_GPU_COLUMNS = ['submits', 'pages-walked', 'submit-latency'];

export function gpuOf(r: RunReport): Record<string, unknown> | undefined {
  return Object.values(r.devices).find((d) => typeof d.pagesWalkedPerSubmissionMean === 'number');
}

/** The run's RDMA NIC (the device whose summary names its MR kind) and its peer. */
function rdmaOf(r: RunReport): { id: string; nic: Record<string, unknown>; peer: Record<string, unknown> | undefined } | undefined {
  const found = Object.entries(r.devices).find(([, d]) => 'mrKind' in d);
  return found && { id: found[0], nic: found[1], peer: r.devices[`${found[0]}.peer`] };
}

/** The columns for `rows`: the scenario's own list if it has one, else the defaults (with the GPU's figures when a run has a GPU). */
export function columnsFor(rows: RunReport[]): Column[] {
  const own = rows.find((r) => r.columns !== undefined)?.columns;
  const ids = own ?? [...(rows.some((r) => gpuOf(r) !== undefined) ? DEFAULT_GPU_COLUMNS : []), ...DEFAULT_COLUMNS];
  return ['policy', ...ids.filter((id) => id !== 'policy' && id !== 'verdict'), 'verdict'].map((id) => COLUMNS[id]);
}

/** The kernel column, shown after the policy when a table's runs span more than one era. */
const KERNEL_COLUMN: Column = { title: 'kernel', cell: (r) => r.kernel };

/** The notifier passes column, shown after the policy when a table's runs differ in machine.notifierPasses. */
const PASSES_COLUMN: Column = { title: 'passes', cell: (r) => (r.notifierPasses === 2 ? 'two-pass' : 'one-pass') };

export function table(rows: RunReport[], columns: Column[] = withPasses(rows, withKernel(rows, columnsFor(rows)))): string {
  const cells = rows.map((r) => columns.map((c) => c.cell(r)));
  const widths = columns.map((c, i) => Math.max(c.title.length, ...cells.map((row) => row[i].length)));
  const line = (xs: string[]) => xs.map((x, i) => (i === 0 ? x.padEnd(widths[i]) : x.padStart(widths[i]))).join('  ');
  return [line(columns.map((c) => c.title)), ...cells.map(line)].join('\n');
}

function withPasses(rows: RunReport[], columns: Column[]): Column[] {
  if (new Set(rows.map((r) => r.notifierPasses ?? 1)).size < 2) return columns;
  return [columns[0], PASSES_COLUMN, ...columns.slice(1)];
}

function withKernel(rows: RunReport[], columns: Column[]): Column[] {
  if (new Set(rows.map((r) => r.kernel)).size < 2) return columns;
  return [columns[0], KERNEL_COLUMN, ...columns.slice(1)];
}

/** The details under a single run's table: invalidations by event, steps, violations. */
export function details(r: RunReport): string {
  const out: string[] = [];
  if (r.failed !== undefined) out.push(`run failed: ${r.failed}`);
  if (r.faults) out.push(`faults injected: ${r.faults.join('; ')}${r.faultDrops ? ` (${r.faultDrops} messages dropped)` : ''}${r.faultHolds ? ` (${r.faultHolds} messages held back)` : ''}`);
  for (const d of r.died ?? []) {
    out.push(`${d.actor} died at ${formatDuration(d.atNs)} (${d.error}); mm released its ${d.pins} pins, ${d.gets} gup references and ${d.subs} interval notifiers`);
  }
  out.push(`invalidations by event: ${byEvent(r)}`);
  for (const [id, d] of Object.entries(r.devices)) out.push(typeof d.died === 'string' ? `${id}: dead (${d.died})` : deviceLine(id, d));
  const failed = r.steps.filter((s) => s.failures.length > 0);
  if (r.steps.length > 0) out.push(`steps: ${r.steps.length}, ${failed.length} with an unmet expect`);
  for (const s of failed) for (const f of s.failures) out.push(`  step "${s.step}" (phase ${s.phase}): ${f}`);
  if (r.check.hungTasks > 0) out.push(`hung tasks: ${r.check.hungTasks} blocked longer than hung_task_timeout_secs; the kernel's reports and their chains: svmsim check ${r.traceDir ?? 'on its trace (svmsim replay writes it)'}`);
  for (const v of r.check.violations.slice(0, 10)) out.push(`  ${v}`);
  if (r.check.violations.length > 10) out.push(`  … and ${r.check.violations.length - 10 + r.check.violationsDropped} more (report.json)`);
  return out.join('\n');
}

/** One line of a device's key figures (its summary()); for a gpu: submissions, walks, latency, jobs. */
export function deviceLine(id: string, d: Record<string, unknown>): string {
  const f = (k: string) => n(d, k);
  const policy = typeof d.policy === 'string' ? ` (${d.policy})` : '';
  if ('submissions' in d) {
    const mean = f('pagesWalkedPerSubmissionMean');
    return (
      `${id}${policy}: ${f('submissions')} submissions, ${f('resubmissions')} resubmissions, ` +
      `${Number.isInteger(mean) ? mean : mean.toFixed(1)} pages walked per submission, ` +
      `submit latency p50/p99 ${formatDuration(f('submitLatencyP50Ns'))} / ${formatDuration(f('submitLatencyP99Ns'))}, ` +
      `${f('jobsDone')} jobs done, ${f('jobErrors')} job errors` +
      // The job timeout and GPU reset (gpu-driver job-timeout.ts), when they happened.
      (f('jobTimeouts') > 0 ? `, ${f('jobTimeouts')} job timeouts, ${f('gpuResets')} GPU resets, jobs lost: ${Object.entries((d.jobsLost ?? {}) as Record<string, number>).map(([e, k]) => `${e} ${k}`).join(', ')}` : '')
    );
  }
  if ('mrKind' in d) {
    return (
      `${id}${policy}: ${f('rdmaMessages')} RDMA messages, ${f('odpFaults')} ODP faults (${fig(f('pagesPerFault'))} pages each), ` +
      `${f('rnrNaksSent')} RNR NAKs, ${f('invalidations')} invalidations (${f('invalidationsRefused')} refused), ` +
      `${f('pinnedVmMaxPages')} pages pinned at most, ${total(d, 'wqeErrors')} WQE errors`
    );
  }
  // Other devices (dmirror, an RDMA peer): their non-zero numeric figures as they come.
  const figures = Object.entries(d).filter(([, v]) => typeof v === 'number' && v !== 0).map(([k, v]) => `${k} ${v}`);
  return `${id}${policy}: ${figures.join(', ') || '-'}`;
}
