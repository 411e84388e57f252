// `svmsim analyze` for a terminal: the story first (ping-pong, hung tasks, who waited on whom),
// then faults, requests, pins, reclaim and the messages per actor. Times in the unit a person
// reads; distributions as p50/p99/max, the main ones also as bpftrace-style histograms.
import { formatDuration } from '../scenario/units.js';
import { histLines } from './bpftrace-hist.js';
import type { Analysis, Figures } from './summary.js';

const hex = (n: number): string => `0x${n.toString(16)}`;
const dur = formatDuration;
const ppm = (f: Figures): string => (f.count === 0 ? '-' : `${dur(f.p50)} / ${dur(f.p99)} / ${dur(f.max)}`);

/** Left-aligned first column, the others right-aligned, two spaces apart. */
export function columns(rows: string[][], left = 1): string[] {
  if (rows.length === 0) return [];
  const widths = rows[0].map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length)));
  return rows.map((r) => '  ' + r.map((c, i) => (i < left ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join('  ').trimEnd());
}

function hist(name: string, f: Figures): string[] {
  return histLines(name, f.hist).map((l) => `  ${l}`);
}

export function analysisText(a: Analysis, opts: { hist: boolean }): string {
  const out: string[] = [];
  const t = a.trace;
  out.push(`svmsim analyze ${t.target} — ${t.lines} lines (${(t.bytes / 2 ** 20).toFixed(1)} MiB, ${t.files.length} file${t.files.length === 1 ? '' : 's'}) in ${t.wallMs} ms`);
  out.push(`simulated ${dur(t.tFirstNs)} → ${dur(t.tEndNs)}${a.run ? `; run ended by ${a.run.endedBy} (${a.run.reason})` : '; no run_end line (the run did not finish)'}`);
  for (const w of t.warnings.slice(0, 5)) out.push(`warning: ${w}`);
  if (t.warnings.length > 5) out.push(`… ${t.warnings.length - 5} more warnings (--json)`);

  const th = a.thrashing;
  out.push('', `== ping-pong: UVM thrashing (threshold ${th.options.threshold}, lapse ${dur(th.options.lapseNs)}) ==`);
  if (th.events === 0) out.push('  no device mapping was invalidated and re-established');
  else {
    const det = Object.entries(th.thrashing).map(([d, n]) => `${d} ${n}`).join(', ') || '0';
    out.push(`  thrashing detections: ${det}; pages thrashing ${th.pagesThrashing} of ${th.pagesTracked} pages the devices mapped; ${th.events} invalidate/remap events`);
    if (th.pairs.length > 0) {
      out.push('  who took the pages → who mapped them again:');
      out.push(...columns(th.pairs.slice(0, 8).map((p) => [`${p.takenBy} → ${p.mappedBy}`, String(p.count)])).map((l) => `  ${l}`));
    }
    out.push('  top pages:');
    const rows = [['device', 'pid', 'addr', 'events', 'taken', 'mapped', 'rate/s', 'detections', 'taken by', 'mapped by']];
    for (const p of th.top) {
      rows.push([p.dev, String(p.pid), hex(p.addr), String(p.events), String(p.revokes), String(p.remaps), fmtRate(p.ratePerS), String(p.detections), topOf(p.takenBy), topOf(p.mappedBy)]);
    }
    out.push(...columns(rows).map((l) => `  ${l}`));
  }

  if (a.hungTasks.count > 0) {
    out.push('', `== hung tasks (blocked > ${dur(a.hungTasks.timeoutNs)}): ${a.hungTasks.count} — svmsim check ${t.target} prints the kernel's reports ==`);
    for (const h of a.hungTasks.tasks.slice(0, 10)) out.push(`  ${h.line}`);
  }

  const inv = a.invalidations;
  out.push('', '== invalidations ==');
  out.push(`  ${inv.total}: ${Object.entries(inv.byEvent).map(([e, n]) => `${e} ${n}`).join(', ') || 'none'}; ${inv.withSubscribers} reached a subscriber, ${inv.refused} refused (non-blockable)`);
  if (inv.withSubscribers > 0) {
    out.push(`  duration (start → end) p50/p99/max: ${ppm(inv.duration)}`);
    out.push('  who waited on whom (start → ack):');
    const rows = [['task', 'device', 'waits', 'p50', 'p99', 'max', 'sum']];
    for (const w of inv.whoWaitedOnWhom) rows.push([w.task, w.dev, String(w.wait.count), dur(w.wait.p50), dur(w.wait.p99), dur(w.wait.max), dur(w.wait.sum)]);
    out.push(...columns(rows, 2).map((l) => `  ${l}`));
    out.push('  by device and event:');
    const ev = [['device', 'event', 'waits', 'p50', 'p99', 'max']];
    for (const w of inv.byDeviceEvent) ev.push([w.dev, w.event, String(w.wait.count), dur(w.wait.p50), dur(w.wait.p99), dur(w.wait.max)]);
    out.push(...columns(ev, 2).map((l) => `  ${l}`));
    if (opts.hist) for (const [dev, f] of Object.entries(inv.byDevice)) out.push(...hist(`notifier_wait_ns[${dev}]`, f));
  }

  const f = a.faults;
  out.push('', '== faults ==');
  const frows = [['side', 'kind', 'count', 'p50', 'p99', 'max']];
  for (const [kind, x] of Object.entries(f.cpu)) frows.push(['cpu', kind, String(x.count), dur(x.p50), dur(x.p99), dur(x.max)]);
  for (const [kind, x] of Object.entries(f.remote)) frows.push(['device (gup/hmm)', kind, String(x.count), dur(x.p50), dur(x.p99), dur(x.max)]);
  if (frows.length > 1) out.push('  time inside mm\'s fault handler (waits for the page lock, I/O, notifiers, memory; the fixed faultNs is charged to the access):', ...columns(frows, 2).map((l) => `  ${l}`));
  else out.push('  no page faults in mm');
  for (const [dev, d] of Object.entries(f.device)) {
    out.push(`  ${dev} retry faults: ${d.raised} raised, ${d.batches} batches, ${d.resolved} resolved; raise → replay p50/p99/max ${ppm(d.latency)}`);
    if (opts.hist) out.push(...hist(`${dev}_fault_ns`, d.latency));
  }
  if (opts.hist && f.cpuAll.count > 0) out.push(...hist('cpu_fault_ns', f.cpuAll));

  out.push('', '== requests (send → answer at the requester) ==');
  const rrows = [['type', 'from → to', 'count', 'p50', 'p99', 'max']];
  for (const r of a.requests) rrows.push([r.type, `${r.requester} → ${r.handler}`, String(r.count), dur(r.p50), dur(r.p99), dur(r.max)]);
  out.push(...columns(rrows, 2));
  if (a.openRequests > 0) out.push(`  ${a.openRequests} request(s) never answered: svmsim check ${t.target} names who waits for whom`);
  if (opts.hist) for (const r of a.requests.slice(0, 4)) out.push(...hist(`${r.type}_ns[${r.requester}]`, r));

  const pins = Object.entries(a.pins.byRequester);
  if (pins.length > 0) {
    out.push('', '== gup and pins ==');
    const prows = [['by', 'kind', 'calls', 'pages', 'longterm', 'hold p50', 'p99', 'max']];
    for (const [by, p] of pins) {
      for (const [kind, x] of [['pin (FOLL_PIN)', p.pin], ['get (FOLL_GET)', p.get]] as const) {
        if (x.calls > 0) prows.push([by, kind, String(x.calls), String(x.pages), String(x.longterm), dur(x.hold.p50), dur(x.hold.p99), dur(x.hold.max)]);
      }
    }
    out.push(...columns(prows, 2));
    for (const [k, h] of Object.entries(a.pins.stillHeld)) out.push(`  still held at the end: ${k}: ${h.count} frame(s), held ${dur(h.p50)} (p50) to ${dur(h.max)}`);
  }

  const r = a.reclaim;
  out.push('', '== reclaim ==');
  out.push(`  kswapd: ${r.kswapd.runs} run(s), awake ${dur(r.kswapd.awakeNs)}, ${r.kswapd.reclaimed} pages reclaimed, blocked in notifiers ${dur(r.kswapd.blockedNs)}`);
  out.push(`  direct reclaim: ${r.direct.rounds} round(s), ${r.direct.reclaimed} pages reclaimed${Object.keys(r.direct.byTask).length ? ` (${Object.entries(r.direct.byTask).map(([task, d]) => `${task} ${d.rounds}`).join(', ')})` : ''}`);
  out.push(`  allocation stalls: ${r.allocStall.count}, p50/p99/max ${ppm(r.allocStall)}${r.allocFailures ? `, ${r.allocFailures} failed (-ENOMEM)` : ''}`);
  const blocked = Object.entries(a.invalidations.blockedByTaskNs).filter(([, ns]) => ns > 0).sort((x, y) => y[1] - x[1]);
  if (blocked.length > 0) out.push(`  blocked in invalidations, per task name (a process's threads share one; overlapping waits count once): ${blocked.slice(0, 6).map(([task, ns]) => `${task} ${dur(ns)}`).join(', ')}`);
  if (a.oom.kills.length > 0 || a.oom.reaps > 0) {
    for (const k of a.oom.kills) out.push(`  Out of memory: Killed process ${k.pid} (${k.comm}) rss ${k.rss} pages, badness ${k.badness}, at t=${dur(k.t)}`);
    out.push(`  oom_reaper: ${a.oom.reaps} reap(s), ${a.oom.reapsIncomplete} incomplete (a VMA skipped: a notifier refused)`);
  }

  out.push('', '== messages per actor (sent / received, by type) ==');
  for (const [actor, m] of Object.entries(a.actors)) {
    if (Object.keys(m.out).length + Object.keys(m.in).length === 0) continue; // the scheduler's own lines
    const top = (x: Record<string, number>) => Object.entries(x).sort((p, q) => q[1] - p[1]).slice(0, 6).map(([k, n]) => `${k} ${n}`).join(', ') || '-';
    const sum = (x: Record<string, number>) => Object.values(x).reduce((s, n) => s + n, 0);
    out.push(`  ${actor}: out ${sum(m.out)} (${top(m.out)}); in ${sum(m.in)} (${top(m.in)})`);
  }
  out.push('');
  return out.join('\n');
}

function topOf(m: Record<string, number>): string {
  const e = Object.entries(m);
  if (e.length === 0) return '-';
  return e.slice(0, 2).map(([k, n]) => `${k.replace(/^mm /, '')} ${n}`).join(', ');
}

function fmtRate(x: number): string {
  if (x === 0) return '0';
  if (x >= 1e6) return `${(x / 1e6).toPrecision(3)}M`;
  if (x >= 1e3) return `${(x / 1e3).toPrecision(3)}k`;
  return x.toPrecision(3);
}
