// `svmsim check` for a terminal: the oracle's verdict with each violation's proof, the kernel's
// hung-task reports, and the requests never answered with their wait-for chains.
import { formatDuration } from '../scenario/units.js';
import { CHAINS_MAX, PROVEN_VIOLATIONS_MAX, violationWithProof, type CheckResult } from './check.js';
import { at } from './wait-for.js';

export function checkText(target: string, c: CheckResult): string {
  const m = c.run.model;
  const s = c.oracle.stats;
  const out: string[] = [];
  out.push(`svmsim check ${target} — ${c.run.read.lines} lines, ${formatDuration(m.tEnd)} simulated`);
  for (const w of c.run.read.warnings) out.push(`warning: ${w}`);
  out.push(
    `data oracle: ${s.cpuStores} CPU stores, ${s.cpuLoads} loads, ${s.dmaWrites} DMA writes, ${s.dmaReads} DMA reads, ${s.devWrites} device-memory writes; ` +
      `${s.invalidations} invalidations, ${s.acks} acks; ` +
      (c.hadFinalPages ? `${s.pagesCompared} final pages compared` : `no final dump in the trace (${m.runEnd ? 'a run of an earlier version, which did not trace it' : 'the run did not finish'}): lost writes not checked`),
  );
  if (s.orphanPinnedWrites + s.pinnedWritesToReadOnly > 0) {
    out.push(`  not violations (the kernel allows them): ${s.orphanPinnedWrites} writes through a pin to a frame no longer mapped, ${s.pinnedWritesToReadOnly} through a pin under a read-only PTE`);
  }
  const acked = s.blockWritesAcked ?? 0, failed = s.blockWritesFailed ?? 0;
  if (acked + failed > 0) {
    out.push(`  block media: ${acked} writes acknowledged, ${failed} failed (reported to their callers as failed: neither acknowledged nor lost), ${s.blockReads ?? 0} reads checked against them`);
  }
  const n = c.oracle.violations.length + c.oracle.violationsDropped;
  if (n === 0) out.push('violations: none');
  else {
    out.push(`violations: ${n}`);
    for (const v of c.oracle.violations.slice(0, PROVEN_VIOLATIONS_MAX)) out.push(...violationWithProof(v, c.proof).map((l, i) => (i === 0 ? `  ${l}` : l)));
    if (n > PROVEN_VIOLATIONS_MAX) out.push(`  … ${n - PROVEN_VIOLATIONS_MAX} more (--json)`);
  }

  out.push('');
  if (m.hung.count === 0) out.push(`hung tasks: none blocked longer than ${formatDuration(m.hung.options.timeoutNs)}`);
  else {
    out.push(`hung tasks: ${m.hung.count} blocked longer than ${formatDuration(m.hung.options.timeoutNs)} (hung_task_timeout_secs), as kernel/hung_task.c reports them:`);
    out.push('');
    out.push(...m.hung.printed());
  }

  out.push('');
  if (c.unanswered.length === 0) out.push('requests never answered: none');
  else {
    out.push(`requests never answered: ${c.unanswered.length}`);
    for (const u of c.unanswered.slice(0, CHAINS_MAX)) {
      const r = u.request;
      const cycle = u.chain?.deadlock === true;
      const why = u.fails ? (cycle ? `DEADLOCK (a cycle of waits, ${formatDuration(u.ageNs)} old)` : `HUNG (${formatDuration(u.ageNs)})`) : cycle ? 'a cycle of waits, too young to call a deadlock' : 'in flight when the run stopped';
      out.push(`  ${r.requester} → ${r.handler}: ${r.type} sent ${at(r.sendT)} — ${why}`);
      for (const l of u.chain?.lines ?? []) out.push(`    ${l}`);
    }
    if (c.unanswered.length > CHAINS_MAX) out.push(`  … ${c.unanswered.length - CHAINS_MAX} more, ${c.unanswered.filter((u) => u.fails).length} of all hung (--json)`);
  }
  out.push('', c.ok ? 'check: ok' : 'check: FAILED', '');
  return out.join('\n');
}

/** The result as plain data, for --json. */
export function checkJson(target: string, c: CheckResult): unknown {
  return {
    target,
    ok: c.ok,
    lines: c.run.read.lines,
    tEndNs: c.run.model.tEnd,
    oracle: { ...c.oracle, violations: c.oracle.violations.map((v) => ({ ...v, proof: v.lines.map((i) => c.proof.get(i) ?? null) })) },
    hadFinalPages: c.hadFinalPages,
    hungTasks: c.hung.map((h) => ({ task: h.task, inv: h.inv, blockedSinceT: h.blockedSinceT, reportedAtT: h.reportedAtT, blockedNs: h.blockedNs, stillBlockedAtEnd: h.stillBlockedAtEnd, waitedBy: h.waitedBy, endsOn: h.endsOn, report: h.text })),
    unanswered: c.unanswered.map((u) => ({
      requester: u.request.requester, handler: u.request.handler, type: u.request.type, sendT: u.request.sendT, ageNs: u.ageNs,
      cycle: u.chain?.deadlock ?? null, fails: u.fails, chain: u.chain?.lines ?? null,
    })),
  };
}
