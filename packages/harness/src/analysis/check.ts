// `svmsim check TRACE`: the invariant checker over a trace alone — the data oracle
// (kernel-mm/src/checker.ts) with the final dump the app traced (`final_pages`), the kernel's
// hung-task reports (hung-tasks.ts), and the requests never answered with who waits for whom
// (wait-for.ts). Each violation comes with the trace lines that prove it, fetched by a second pass.
//
// What fails the check (exit 1): a violation of the oracle; a request never answered that had
// waited longer than the hung-task timeout when the trace ended (a hang; when its chain comes back
// to a waiter, a deadlock). Younger ones were merely in flight when the run stopped, or are a cycle
// too young to call: listed, not failed. Hung tasks are the kernel's warnings: reported, counted,
// not failed (a kernel without a job timeout does block kswapd behind a compute job; that is what
// the report is for).
import { formatViolation, type CheckReport, type Violation } from '@svmsim/kernel-mm/checker';
import { forEachTraceLine, type TraceLine } from '@svmsim/runtime';
import type { HungTask } from './hung-tasks.js';
import { readModel, type ModelOptions, type ModelRun } from './model.js';
import { requestChain, type Chain } from './wait-for.js';
import type { RequestRecord } from './requests.js';

/** Violations printed with their proof (the rest are counted). */
export const PROVEN_VIOLATIONS_MAX = 20;
/** Requests never answered whose wait-for chain is followed (the rest are counted). */
export const CHAINS_MAX = 20;

export interface Unanswered {
  request: RequestRecord;
  ageNs: number;
  /** Its wait-for chain, for the first CHAINS_MAX. */
  chain?: Chain;
  /** Older than the hung-task timeout: fails the check. */
  fails: boolean;
}

export interface CheckResult {
  run: ModelRun;
  oracle: CheckReport;
  /** Whether the trace had the final dump (else lost writes could not be checked). */
  hadFinalPages: boolean;
  /** The proof of the first violations: their lines, by index. */
  proof: Map<number, TraceLine>;
  hung: HungTask[];
  unanswered: Unanswered[];
  ok: boolean;
}

export function checkTraceDir(target: string, options: Partial<ModelOptions> = {}): CheckResult {
  const run = readModel(target, { ...options, check: true });
  const m = run.model;
  const oracle = m.checker!.finish(m.finalPages, m.finalPagesLine >= 0 ? m.finalPagesLine : undefined, { buffersFreed: m.finalPagesAfterTeardown });
  const unanswered = m.requests.openRequests().map((r, i): Unanswered => {
    const ageNs = m.tEnd - r.sendT;
    return { request: r, ageNs, chain: i < CHAINS_MAX ? requestChain(m, r, m.tEnd) : undefined, fails: ageNs > m.hung.options.timeoutNs };
  });
  const wanted = new Set<number>();
  for (const v of oracle.violations.slice(0, PROVEN_VIOLATIONS_MAX)) for (const i of v.lines) if (i >= 0) wanted.add(i);
  const proof = new Map<number, TraceLine>();
  if (wanted.size > 0) forEachTraceLine(target, (l, i) => void (wanted.has(i) && proof.set(i, l)));
  return {
    run, oracle, hadFinalPages: m.finalPages !== null, proof, hung: m.hung.reports, unanswered,
    ok: oracle.ok && !unanswered.some((u) => u.fails),
  };
}

/** A proof line printed at most this long (a message may carry thousands of pfns). */
const PROOF_LINE_CHARS_MAX = 400;

/** One violation and the lines that prove it, as NDJSON prefixed with their index in the trace. */
export function violationWithProof(v: Violation, proof: Map<number, TraceLine>): string[] {
  const out = [formatViolation(v)];
  for (const i of v.lines) {
    const l = proof.get(i);
    if (l === undefined) continue;
    if (l.ev === 'final_pages') {
      // The dump is every page: show the entry of the page at fault.
      const pids = l.pid as number[], addrs = l.addr as number[], values = l.value as number[];
      const k = pids.findIndex((p, j) => p === v.pid && addrs[j] === v.addr);
      out.push(`    #${i} {"t":${l.t},"actor":"${l.actor}","ev":"final_pages", …${k < 0 ? ` no entry for pid ${v.pid} addr 0x${(v.addr ?? 0).toString(16)}` : ` "pid":${pids[k]},"addr":${addrs[k]},"value":${values[k]}`} …}`);
      continue;
    }
    const text = JSON.stringify(l);
    out.push(`    #${i} ${text.length > PROOF_LINE_CHARS_MAX ? `${text.slice(0, PROOF_LINE_CHARS_MAX)}…` : text}`);
  }
  return out;
}
