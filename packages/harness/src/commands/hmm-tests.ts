// `svmsim hmm-tests`: the kernel's HMM selftest suite (tools/testing/selftests/mm/hmm-tests.c) as
// svmsim states it: every test that maps onto it is a built-in scenario (scenarios/hmm-tests/), run
// over the seeds asked (a test passes when every seed's run meets every expect and the checker
// finds nothing) and, with --threads, once more in thread mode; the others are listed as skipped
// with the reason. Output is kselftest's TAP (`ok 12 hmm.hmm_device_private.migrate`), a failing
// test followed by its first failing seed's unmet expectations and the command that replays it.
// Exit 1 if any test failed.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { applyPolicies } from '../run/actors.js';
import { exitCodeOf, runScenario } from '../run/run-scenario.js';
import { BUILTIN_DIR, parseScenario, type ScenarioText } from '../scenario/load.js';
import { hmmTestRuns, type HmmTest } from '../hmm-tests/cases.js';
import { parseSeedRange, THREAD_TIME_SCALE } from './common.js';
import { runSeeds, seedPool, type SeedPool } from './sweep-pool.js';

export interface HmmTestsOptions {
  seeds: string;
  jobs?: number;
  policy: Record<string, string>;
  threads: boolean;
  /** Only the tests whose name contains this. */
  filter?: string;
}

/** The directory of the suite's scenarios. */
export const HMM_TESTS_DIR = path.join(BUILTIN_DIR, 'hmm-tests');

export function hmmTestScenario(t: HmmTest): ScenarioText {
  const file = path.join(HMM_TESTS_DIR, `${t.name}.yaml`);
  return { sourceName: path.relative(process.cwd(), file) || file, text: fs.readFileSync(file, 'utf8') };
}

type Verdict = { ok: true } | { ok: false; lines: string[] };

export async function hmmTestsCommand(o: HmmTestsOptions, out: (line: string) => void = (l) => process.stdout.write(`${l}\n`)): Promise<number> {
  const seeds = parseSeedRange(o.seeds);
  const runs = hmmTestRuns().filter((r) => o.filter === undefined || r.test.name.includes(o.filter));
  out('TAP version 13');
  out(`1..${runs.length}`);
  const pool = seedPool(o.jobs ?? Math.max(1, os.availableParallelism()));
  const totals = { pass: 0, fail: 0, skip: 0 };
  try {
    for (const [i, r] of runs.entries()) {
      const skip = r.variantSkip ?? r.test.skip;
      if (skip !== undefined) {
        totals.skip++;
        out(`ok ${i + 1} ${r.id} # SKIP ${skip}`);
        continue;
      }
      const v = await runTest(pool, r.test, seeds, o);
      if (v.ok) {
        totals.pass++;
        out(`ok ${i + 1} ${r.id}`);
      } else {
        totals.fail++;
        for (const l of v.lines) out(`# ${l}`);
        out(`not ok ${i + 1} ${r.id}`);
      }
    }
  } finally {
    await pool.close();
  }
  out(`# ${totals.fail === 0 ? 'PASSED' : 'FAILED'}: ${totals.pass + totals.skip} / ${runs.length} tests passed.`);
  out(`# Totals: pass:${totals.pass} fail:${totals.fail} xfail:0 xpass:0 skip:${totals.skip} error:0`);
  return totals.fail === 0 ? 0 : 1;
}

/** Every seed on the pool, then (--threads) one thread-mode run; the first failure explained. */
async function runTest(pool: SeedPool, t: HmmTest, seeds: { from: number; to: number }, o: HmmTestsOptions): Promise<Verdict> {
  const text = hmmTestScenario(t);
  const s = applyPolicies(parseScenario(text.text, text.sourceName), o.policy);
  const policies = Object.fromEntries(s.devices.map((d) => [d.id, d.policy]));
  let firstBad: number | undefined;
  let bad = 0;
  await runSeeds(pool, text, o.policy, seeds, (r) => {
    if (r.ok) return;
    bad++;
    if (firstBad === undefined || r.seed < firstBad) firstBad = r.seed;
  });
  if (firstBad !== undefined) return { ok: false, lines: [`${bad} of ${seeds.to - seeds.from + 1} seeds failed; seed ${firstBad}:`, ...(await explain(s, firstBad, 'deterministic')), replayLine(text.sourceName, policies, firstBad)] };
  if (!o.threads) return { ok: true };
  const lines = await explain(s, seeds.from, 'threads');
  return lines.length === 0 ? { ok: true } : { ok: false, lines: ['in thread mode:', ...lines] };
}

/** One run in this process: its unmet expectations and violations, one line each (none: it passed). */
async function explain(s: ReturnType<typeof parseScenario>, seed: number, mode: 'deterministic' | 'threads'): Promise<string[]> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'svmsim-hmm-tests-'));
  try {
    const r = await runScenario(s, { seed, mode, timeScale: THREAD_TIME_SCALE, traceDir: dir });
    if (exitCodeOf(r) === 0) return [];
    const lines: string[] = [];
    if (r.failed !== undefined) lines.push(`  the run did not finish: ${r.failed}`);
    for (const st of r.steps) for (const f of st.failures) lines.push(`  ${st.phase}: step "${st.step}": ${f}`);
    for (const v of r.check.violations.slice(0, 5)) lines.push(`  ${v.split('\n')[0]}`);
    return lines.length > 0 ? lines.slice(0, 12) : ['  failed (no detail)'];
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

function replayLine(source: string, policies: Record<string, string>, seed: number): string {
  const pol = Object.entries(policies).map(([d, p]) => ` --policy ${d}=${p}`).join('');
  return `  replay: svmsim replay ${source}${pol} --seed ${seed} --trace out/`;
}
