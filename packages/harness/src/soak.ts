// `npm run soak`: the reliability evidence. Every built-in scenario under every safe policy of its
// device for many seeds (LocalScheduler, on the sweep's worker pool), a thread-mode run of each, and
// every unsafe twin of its device over seeds too; one table: scenario, policy, mode, runs,
// violations, the twin's catch rate, wall time. Targets (exit 1 if missed): no violation in any
// safe run; each unsafe twin caught in >= 99% of the seeds where its bug can occur — the seeds in
// which its own counter (commands/unsafe-path-counters.ts) says its bug path was taken. A seed where
// it was not taken cannot be caught and is not counted. Each counter counts the bug's own act, not
// the window for it: unsafe-odp's the DMAs issued after their invalidation was acked (an early ack
// with a DMA still in flight is not enough: that DMA may be issued before the ack and be legal),
// unsafe-nvme's the requests whose pages were released before their DMA, unsafe-skip-read-retry's
// and unsafe-svm's the mappings made although read_retry said stale, unsafe-userptr's the acks
// sent while a job used the BO. A twin below target is a checker gap or a counter that claims
// more than its bug does; either is fixed, never the denominator.
//
//   npm run soak                          ≥ 10,000 safe runs (330 seeds per scenario × policy)
//   npm run soak -- --seeds 5 --thread-runs 1 --twin-seeds 10     CI's short version
//   options: --seeds N (safe seeds per scenario × policy), --twin-seeds N, --thread-runs N,
//            --jobs N (threads), --only a,b (scenarios), --json
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { applyPolicies, DEVICE_KINDS } from './run/actors.js';
import { runScenario } from './run/run-scenario.js';
import { listBuiltinScenarios, loadScenario, readScenarioText } from './scenario/load.js';
import { runSeeds, seedPool } from './commands/sweep-pool.js';
import { THREAD_TIME_SCALE } from './commands/common.js';
import { columns } from './analysis/summary-text.js';

/** The catch-rate target for an unsafe twin over the seeds where its bug path was taken. */
const CAUGHT_TARGET = 0.99;
/**
 * Unsafe policies whose bug the data checker does not see (it makes ioctls fail, it loses no
 * write): the hmm-tests suite catches them (npm run hmm-tests), so the soak leaves them out.
 */
const SUITE_CAUGHT_TWINS: ReadonlySet<string> = new Set(['unsafe-skip-owner-check']);
/** A bound on any one count option (a soak of more is a sweep's job: svmsim sweep --shard). */
const COUNT_MAX = 1_000_000;

interface Row {
  scenario: string;
  policy: string;
  mode: 'seeds' | 'threads';
  unsafe: boolean;
  runs: number;
  violations: number;
  /** Runs that did not finish or hit an error (an expect failure counts too). */
  errors: number;
  /** Unsafe twins: seeds whose bug path was taken, and of those, the caught ones. */
  bugSeeds: number;
  caught: number;
  wallMs: number;
}

function count(v: string | undefined, name: string, dflt: number): number {
  if (v === undefined) return dflt;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0 || n > COUNT_MAX) {
    process.stderr.write(`svmsim soak: --${name} must be an integer in [0, ${COUNT_MAX}], got ${JSON.stringify(v)}\n`);
    process.exit(2);
  }
  return n;
}

async function main(): Promise<number> {
  const { values } = parseArgs({
    options: {
      seeds: { type: 'string' }, 'twin-seeds': { type: 'string' }, 'thread-runs': { type: 'string' },
      jobs: { type: 'string' }, only: { type: 'string' }, json: { type: 'boolean' },
    },
  });
  const seeds = count(values.seeds, 'seeds', 330);
  const twinSeeds = count(values['twin-seeds'], 'twin-seeds', Math.max(20, Math.ceil(seeds / 10)));
  const threadRuns = count(values['thread-runs'], 'thread-runs', 1);
  const jobs = Math.max(1, count(values.jobs, 'jobs', os.availableParallelism()));
  const only = values.only?.split(',').map((s) => s.trim()).filter(Boolean);
  const names = listBuiltinScenarios().map((b) => b.name).filter((n) => !only || only.includes(n));
  if (only && names.length !== only.length) {
    process.stderr.write(`svmsim soak: --only: unknown scenario among ${only.join(', ')}\n`);
    return 2;
  }

  const rows: Row[] = [];
  const pool = seedPool(jobs);
  const t0 = Date.now();
  try {
    for (const name of names) {
      const s = loadScenario(name);
      const dev = s.devices[0];
      const policies = dev ? DEVICE_KINDS[dev.kind].policies : [];
      const safe = dev ? (dev.compare ?? policies.filter((p) => !p.startsWith('unsafe'))) : [''];
      const unsafe = policies.filter((p) => p.startsWith('unsafe') && !SUITE_CAUGHT_TWINS.has(p));
      const text = readScenarioText(name);
      const seedRow = async (policy: string, isUnsafe: boolean, n: number): Promise<void> => {
        const pol = dev && policy ? { [dev.id]: policy } : {};
        const row: Row = { scenario: name, policy: policy || '-', mode: 'seeds', unsafe: isUnsafe, runs: 0, violations: 0, errors: 0, bugSeeds: 0, caught: 0, wallMs: 0 };
        const t = Date.now();
        if (n > 0) {
          await runSeeds(pool, text, pol, { from: 1, to: n }, (o) => {
            row.runs++;
            if (o.violationCount > 0) row.violations++;
            if (o.error !== undefined || (o.expectFailures > 0 && !isUnsafe)) row.errors++;
            if ((o.bugPaths ?? 0) > 0) {
              row.bugSeeds++;
              if (o.violationCount > 0) row.caught++;
            }
          });
        }
        row.wallMs = Date.now() - t;
        rows.push(row);
        progress(row);
      };
      for (const p of safe) await seedRow(p, false, seeds);
      if (twinSeeds > 0) for (const p of unsafe) await seedRow(p, true, twinSeeds);
      for (const p of safe) {
        if (threadRuns === 0) continue;
        const row: Row = { scenario: name, policy: p || '-', mode: 'threads', unsafe: false, runs: 0, violations: 0, errors: 0, bugSeeds: 0, caught: 0, wallMs: 0 };
        const t = Date.now();
        const sc = dev && p ? applyPolicies(s, { [dev.id]: p }) : s;
        for (let i = 1; i <= threadRuns; i++) {
          const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'svmsim-soak-'));
          try {
            const r = await runScenario(sc, { seed: i, mode: 'threads', timeScale: s.timeScale ?? THREAD_TIME_SCALE, traceDir: dir });
            row.runs++;
            if (r.check.violations.length > 0) row.violations++;
            if (r.failed !== undefined || r.expectFailures > 0) row.errors++;
          } finally {
            fs.rmSync(dir, { recursive: true, force: true });
          }
        }
        row.wallMs = Date.now() - t;
        rows.push(row);
        progress(row);
      }
    }
  } finally {
    await pool.close();
  }

  const safeRuns = rows.filter((r) => !r.unsafe).reduce((a, r) => a + r.runs, 0);
  const safeBad = rows.filter((r) => !r.unsafe).reduce((a, r) => a + r.violations + r.errors, 0);
  const twinsMissed = rows.filter((r) => r.unsafe && r.bugSeeds > 0 && r.caught / r.bugSeeds < CAUGHT_TARGET);
  const ok = safeBad === 0 && twinsMissed.length === 0;
  if (values.json) {
    process.stdout.write(JSON.stringify({ rows, safeRuns, safeViolations: safeBad, twinsMissed: twinsMissed.map((r) => `${r.scenario}/${r.policy}`), wallMs: Date.now() - t0, ok }, null, 2) + '\n');
  } else {
    process.stdout.write(`\n${table(rows)}\n\n${safeRuns} safe runs, ${safeBad} with a violation or error; ${rows.filter((r) => r.unsafe).length} unsafe twins, ${twinsMissed.length} caught in fewer than ${CAUGHT_TARGET * 100}% of the seeds where their bug can occur; ${((Date.now() - t0) / 60000).toFixed(1)} min on ${jobs} threads\n`);
  }
  return ok ? 0 : 1;
}

function progress(r: Row): void {
  if (process.stderr.isTTY) process.stderr.write(`  ${r.scenario} ${r.policy} ${r.mode}: ${r.runs} runs, ${r.violations} with violations (${(r.wallMs / 1000).toFixed(1)} s)\n`);
}

function table(rows: Row[]): string {
  const head = ['scenario', 'policy', 'mode', 'runs', 'violations', 'unsafe twin caught (of seeds where its bug can occur)', 'wall'];
  const body = rows.map((r) => [
    r.scenario, r.policy, r.mode, String(r.runs),
    r.unsafe ? '—' : String(r.violations + r.errors),
    r.unsafe ? (r.bugSeeds === 0 ? 'bug never reachable in these seeds' : `${((100 * r.caught) / r.bugSeeds).toFixed(1)}% (${r.caught}/${r.bugSeeds})`) : '',
    `${(r.wallMs / 1000).toFixed(1)} s`,
  ]);
  return columns([head, ...body], head.length).join('\n');
}

main().then((code) => (process.exitCode = code), (e) => {
  process.stderr.write(`svmsim soak: ${e instanceof Error ? e.message : String(e)}\n`);
  process.exitCode = 3;
});
