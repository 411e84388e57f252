// `npm run mutate`: the mutation check of the checker. Each mutant of mutants.ts is written into
// the compiled file it names, its killers run (sweeps the checker judges, tests), and the file is
// put back; a mutant is killed when one of its killers fails on it. The killers first run on the
// real code and must pass there. Prints the table of mutants killed / survived; exit 1 if any
// survived (a surviving mutant is a gap in the checker or the tests), 2 if a mutant no longer
// applies to its file, 3 if a killer fails on the real code.
//
// The compiled files are changed in place, so a mutant must never outlive the run: each is
// restored in a finally, on SIGINT/SIGTERM, and a marker in the mutated text lets the next run
// refuse to start over a file a killed process left mutated (rebuild it: rm -rf packages/*/dist).
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { columns } from '../analysis/summary-text.js';
import { KILLERS, MUTANTS, type Killer, type Mutant } from './mutants.js';

const MARKER = '/* svmsim-mutant */';
/** One killer's bound: past it a mutant counts as killed by a hang (the real code's run of it took seconds). */
const KILLER_TIMEOUT_MS = 180_000;

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../..');

interface Outcome {
  mutant: Mutant;
  killedBy: string | null;
  ms: number;
}

function runKiller(k: Killer): { ok: boolean; how: string; tail: string } {
  const r = spawnSync(process.execPath, k.argv, { cwd: root, encoding: 'utf8', timeout: KILLER_TIMEOUT_MS, env: { ...process.env, FORCE_COLOR: '0' } });
  const tail = `${r.stdout ?? ''}${r.stderr ?? ''}`.trim().split('\n').slice(-3).join(' | ');
  const how = r.status === null ? `hung past ${KILLER_TIMEOUT_MS / 1000} s` : `exit ${r.status}`;
  return { ok: r.status === 0, how, tail };
}

function mutated(m: Mutant, text: string): string {
  let out = text;
  for (const e of m.edits) {
    const n = out.split(e.search).length - 1;
    if (n === 0 || (!e.all && n !== 1)) {
      throw new MutantError(`mutant ${m.name}: ${n === 0 ? `"${e.search.slice(0, 60)}" no longer occurs` : `"${e.search.slice(0, 60)}" occurs ${n} times`} in ${m.file} (from ${m.source}); update mutants.ts`);
    }
    out = e.all ? out.split(e.search).join(e.replace) : out.replace(e.search, e.replace);
  }
  return `${MARKER}\n${out}`;
}

class MutantError extends Error {}

function main(): number {
  const only = process.argv.slice(2);
  const mutants = only.length > 0 ? MUTANTS.filter((m) => only.includes(m.name)) : MUTANTS;
  if (only.length > 0 && mutants.length !== only.length) {
    process.stderr.write(`svmsim mutate: unknown mutant among ${only.join(', ')}; known: ${MUTANTS.map((m) => m.name).join(', ')}\n`);
    return 2;
  }
  // Every file exists, is not left mutated, and every mutant applies — before anything runs.
  const originals = new Map<string, string>();
  try {
    for (const m of mutants) {
      const file = path.join(root, m.file);
      if (!fs.existsSync(file)) throw new MutantError(`mutant ${m.name}: ${m.file} does not exist (npm run build first)`);
      const text = originals.get(file) ?? fs.readFileSync(file, 'utf8');
      if (text.startsWith(MARKER)) throw new MutantError(`${m.file} is still mutated from an interrupted run: rm -rf packages/*/dist && npm run build`);
      originals.set(file, text);
      mutated(m, text);
      for (const k of m.killers) if (!KILLERS.some((x) => x.id === k)) throw new MutantError(`mutant ${m.name}: no killer named ${k}`);
    }
  } catch (e) {
    if (e instanceof MutantError) {
      process.stderr.write(`svmsim mutate: ${e.message}\n`);
      return 2;
    }
    throw e;
  }
  const restore = (): void => {
    for (const [file, text] of originals) fs.writeFileSync(file, text);
  };
  const onSignal = (): void => {
    restore();
    process.stderr.write('\nsvmsim mutate: interrupted; every file restored\n');
    process.exit(130);
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);

  const killersUsed = KILLERS.filter((k) => mutants.some((m) => m.killers.includes(k.id)));
  process.stdout.write(`svmsim mutate — ${mutants.length} mutants, ${killersUsed.length} killers\n\nbaseline (the real code):\n`);
  for (const k of killersUsed) {
    const t0 = Date.now();
    const r = runKiller(k);
    process.stdout.write(`  ${r.ok ? 'pass' : 'FAIL'}  ${k.id} (${((Date.now() - t0) / 1000).toFixed(1)} s)\n`);
    if (!r.ok) {
      process.stderr.write(`svmsim mutate: killer "${k.id}" fails on the real code (${r.how}): ${r.tail}\n`);
      return 3;
    }
  }

  const outcomes: Outcome[] = [];
  for (const m of mutants) {
    const file = path.join(root, m.file);
    const t0 = Date.now();
    let killedBy: string | null = null;
    try {
      fs.writeFileSync(file, mutated(m, originals.get(file)!));
      for (const id of m.killers) {
        const r = runKiller(KILLERS.find((k) => k.id === id)!);
        if (!r.ok) {
          killedBy = `${id} (${r.how})`;
          break;
        }
      }
    } finally {
      fs.writeFileSync(file, originals.get(file)!);
    }
    outcomes.push({ mutant: m, killedBy, ms: Date.now() - t0 });
    process.stdout.write(`  ${killedBy ? 'killed  ' : 'SURVIVED'}  ${m.name}${killedBy ? ` by ${killedBy}` : ''}\n`);
  }

  const rows = outcomes.map((o) => [o.mutant.name, o.killedBy ? 'killed' : 'SURVIVED', o.killedBy ?? '—', `${(o.ms / 1000).toFixed(1)} s`, o.mutant.rule]);
  const head = ['mutant', 'verdict', 'killed by', 'time', 'rule it breaks'];
  const survived = outcomes.filter((o) => !o.killedBy).length;
  process.stdout.write(`\n${columns([head, ...rows], head.length).join('\n')}\n\n${outcomes.length - survived} killed, ${survived} survived\n`);
  return survived > 0 ? 1 : 0;
}

process.exitCode = main();
