// What a sweep found, however it ran (one machine, shards merged by `sweep-merge`, or a queue):
// the summary line, each failing seed with the command that replays it, the JSON, the exit code.
// Only the failing seeds are kept; a million passing ones are a count.
import { EXIT_OK, EXIT_RUN_FAILED, EXIT_VIOLATION } from './common.js';
import type { SweepOutcome } from './sweep-worker.js';

export interface SweepResult {
  /** The scenario as the user named it (a built-in or a path): replay commands use it. */
  source: string;
  scenario: string;
  policies: Record<string, string>;
  /** --profile, when the sweep was given one: replay commands repeat it. */
  profile?: string;
  from: number;
  to: number;
  /** Seeds that ran to an outcome. */
  runs: number;
  /** Their failing outcomes (the first MAX_FAILED_KEPT of them). */
  failed: SweepOutcome[];
  /** Failing seeds past MAX_FAILED_KEPT: counted, not kept. */
  failedDropped: number;
  /** Seeds with no outcome: a Ctrl-C, or shards that are not there (listed). */
  missing?: { seeds: number; why: string };
}

/** The failing outcomes a sweep keeps: a planted bug fails most of a million seeds. */
export const MAX_FAILED_KEPT = 10_000;

/** Outcomes as they come, counted, each seed once (a queue may deliver a seed twice). */
export class SweepTally {
  runs = 0;
  failed: SweepOutcome[] = [];
  failedDropped = 0;
  /** A bit per seed of [from, to]: counted already. */
  private readonly seen: Uint8Array;

  constructor(
    private readonly from: number,
    private readonly to: number,
  ) {
    this.seen = new Uint8Array(Math.ceil((to - from + 1) / 8));
  }

  /** False if the seed was already counted (or is not one of this sweep's). */
  add(o: SweepOutcome): boolean {
    if (o.seed < this.from || o.seed > this.to || this.has(o.seed)) return false;
    const i = o.seed - this.from;
    this.seen[i >> 3] |= 1 << (i & 7);
    this.runs++;
    if (!o.ok) {
      if (this.failed.length < MAX_FAILED_KEPT) this.failed.push(o);
      else this.failedDropped++;
    }
    return true;
  }

  has(seed: number): boolean {
    const i = seed - this.from;
    return (this.seen[i >> 3] & (1 << (i & 7))) !== 0;
  }

  get failing(): number {
    return this.failed.length + this.failedDropped;
  }
}

export function printSweep(r: SweepResult, json: boolean, out: (s: string) => void = (s) => process.stdout.write(s)): void {
  const failed = [...r.failed].sort((a, b) => a.seed - b.seed);
  if (json) {
    out(JSON.stringify({ scenario: r.scenario, policies: r.policies, from: r.from, to: r.to, runs: r.runs, failing: failed.length + r.failedDropped, failed, ...(r.failedDropped ? { failedDropped: r.failedDropped } : {}), ...(r.missing ? { missing: r.missing } : {}) }, null, 2) + '\n');
    return;
  }
  const pol = Object.entries(r.policies).map(([d, p]) => ` --policy ${d}=${p}`).join('') + (r.profile !== undefined ? ` --profile ${r.profile}` : '');
  const violations = failed.reduce((n, x) => n + x.violationCount, 0);
  out(`svmsim sweep ${r.source}${pol} --seeds ${r.from}..${r.to}: ${r.runs} runs, ${failed.length + r.failedDropped} failing${violations ? ` (${violations}${r.failedDropped ? '+' : ''} violations)` : ''}\n`);
  if (r.missing) out(`${r.missing.seeds} seeds not run: ${r.missing.why}\n`);
  for (const x of failed) {
    const why = x.error ?? x.violations[0] ?? `${x.expectFailures} unmet expect`;
    out(`seed ${x.seed}: ${why}\n  replay: svmsim replay ${r.source}${pol} --seed ${x.seed} --trace out/\n`);
  }
  if (r.failedDropped) out(`… and ${r.failedDropped} more failing seeds (the first ${MAX_FAILED_KEPT} are listed)\n`);
}

/** 3 if a seed's run could not finish or seeds are missing; else 1 for any failing seed; else 0. */
export function sweepExitCode(r: SweepResult): number {
  if (r.missing || r.failed.some((x) => x.error !== undefined)) return EXIT_RUN_FAILED;
  return r.failed.length === 0 ? EXIT_OK : EXIT_VIOLATION;
}
