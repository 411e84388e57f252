// A sweep cut into shards for a batch system that already exists: a Slurm job array or a
// Kubernetes Indexed Job runs `svmsim sweep … --shard K/N --out DIR` once per index, each writes its
// results file into DIR, and `svmsim sweep-merge DIR` adds them up. Shard K of N takes a contiguous
// share of the seeds, so its file says which seeds it vouches for.
//
// The index comes from --shard K/N, or from the environment:
//   Slurm:      SLURM_ARRAY_TASK_ID − SLURM_ARRAY_TASK_MIN + 1 of SLURM_ARRAY_TASK_COUNT (a dense
//               --array=A-B; a stepped array needs --shard K/N)
//   Kubernetes: JOB_COMPLETION_INDEX + 1, of the N that --shard N gives (the Job's completions:
//               the pod is not told them)
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { UsageError } from '../run/actors.js';
import type { ScenarioText } from '../scenario/load.js';
import { MAX_SWEEP_SEEDS } from './common.js';
import type { SweepOutcome } from './sweep-worker.js';
import { SVMSIM_VERSION } from './version.js';

export interface Shard {
  /** 1-based. */
  index: number;
  count: number;
}

/** The most shards one sweep is cut into (a results file each). */
export const MAX_SHARDS = 1_000_000;

export const SHARD_FORMAT = 'svmsim-sweep-shard';
export const SHARD_FORMAT_VERSION = 1;

/** What one shard leaves in DIR. */
export interface ShardFile {
  format: typeof SHARD_FORMAT;
  formatVersion: number;
  svmsim: string;
  source: string;
  scenario: string;
  /** sha256 of the scenario's text: shards of one sweep ran the same scenario. */
  scenarioSha256: string;
  policies: Record<string, string>;
  /** The whole sweep's seeds. */
  seeds: { from: number; to: number };
  shard: Shard & { from: number; to: number };
  runs: number;
  failed: SweepOutcome[];
  failedDropped: number;
  wallMs: number;
}

type Env = Record<string, string | undefined>;

function envIndex(env: Env, name: string): number {
  const v = env[name] ?? '';
  if (!/^\d+$/.test(v)) throw new UsageError(`${name}=${v}: expected a whole number`);
  return Number(v);
}

/**
 * Which shard this process is, from --shard and the environment; undefined for an unsharded
 * sweep. Throws UsageError naming the flag or the variable.
 */
export function resolveShard(flag: string | undefined, env: Env = process.env): Shard | undefined {
  const check = (s: Shard, from: string): Shard => {
    if (s.count < 1 || s.count > MAX_SHARDS) throw new UsageError(`${from}: the shard count ${s.count} is out of range; expected 1 to ${MAX_SHARDS}`);
    if (s.index < 1 || s.index > s.count) throw new UsageError(`${from}: shard ${s.index} of ${s.count} does not exist; expected 1 to ${s.count}`);
    return s;
  };
  if (flag !== undefined) {
    const both = /^(\d+)\/(\d+)$/.exec(flag);
    if (both) return check({ index: Number(both[1]), count: Number(both[2]) }, `--shard ${flag}`);
    if (!/^\d+$/.test(flag)) throw new UsageError(`--shard ${flag}: expected K/N (shard K of N, from 1) or N with the index in SLURM_ARRAY_TASK_ID or JOB_COMPLETION_INDEX`);
    const count = Number(flag);
    if (env.JOB_COMPLETION_INDEX !== undefined) return check({ index: envIndex(env, 'JOB_COMPLETION_INDEX') + 1, count }, `--shard ${flag} with JOB_COMPLETION_INDEX=${env.JOB_COMPLETION_INDEX}`);
    if (env.SLURM_ARRAY_TASK_ID !== undefined) return check({ index: slurmIndex(env), count }, `--shard ${flag} with SLURM_ARRAY_TASK_ID=${env.SLURM_ARRAY_TASK_ID}`);
    throw new UsageError(`--shard ${flag}: which shard is this? Neither SLURM_ARRAY_TASK_ID nor JOB_COMPLETION_INDEX is set; pass --shard K/${flag}`);
  }
  if (env.SLURM_ARRAY_TASK_ID !== undefined && env.SLURM_ARRAY_TASK_COUNT !== undefined) {
    return check({ index: slurmIndex(env), count: envIndex(env, 'SLURM_ARRAY_TASK_COUNT') }, `SLURM_ARRAY_TASK_ID=${env.SLURM_ARRAY_TASK_ID} of SLURM_ARRAY_TASK_COUNT=${env.SLURM_ARRAY_TASK_COUNT}`);
  }
  if (env.JOB_COMPLETION_INDEX !== undefined) throw new UsageError(`JOB_COMPLETION_INDEX=${env.JOB_COMPLETION_INDEX} is set but the shard count is not: pass --shard N (the Job's completions)`);
  return undefined;
}

function slurmIndex(env: Env): number {
  const min = env.SLURM_ARRAY_TASK_MIN === undefined ? 0 : envIndex(env, 'SLURM_ARRAY_TASK_MIN');
  return envIndex(env, 'SLURM_ARRAY_TASK_ID') - min + 1;
}

/** Shard K's contiguous share of [from, to]: sizes differ by at most one (empty, to < from, when N exceeds the seeds). */
export function shardSeeds(from: number, to: number, s: Shard): { from: number; to: number } {
  const total = to - from + 1;
  const lo = from + Math.floor(((s.index - 1) * total) / s.count);
  const hi = from + Math.floor((s.index * total) / s.count) - 1;
  return { from: lo, to: hi };
}

export function shardFileName(s: Shard): string {
  const w = String(s.count).length;
  return `shard-${String(s.index).padStart(w, '0')}-of-${s.count}.json`;
}

export function scenarioSha256(t: ScenarioText): string {
  return crypto.createHash('sha256').update(t.text).digest('hex');
}

/** Written whole or not at all (a temporary file renamed): a killed shard leaves no half file. */
export function writeShardFile(dir: string, f: ShardFile): string {
  try {
    fs.mkdirSync(dir, { recursive: true });
  } catch (e) {
    throw new UsageError(`--out ${dir}: cannot create it (${(e as NodeJS.ErrnoException).code ?? String(e)})`);
  }
  const file = path.join(dir, shardFileName(f.shard));
  const tmp = `${file}.${process.pid}.tmp`;
  fs.writeFileSync(tmp, JSON.stringify(f) + '\n');
  fs.renameSync(tmp, file);
  return file;
}

const SHARD_FILE = /^shard-\d+-of-\d+\.json$/;

/** Every results file in DIR, checked for form. Throws UsageError naming the file. */
export function readShardFiles(dir: string): { file: string; shard: ShardFile }[] {
  let names: string[];
  try {
    names = fs.readdirSync(dir).filter((n) => SHARD_FILE.test(n)).sort();
  } catch (e) {
    throw new UsageError(`${dir}: cannot read it (${(e as NodeJS.ErrnoException).code ?? String(e)})`);
  }
  if (names.length === 0) throw new UsageError(`${dir}: no shard results (shard-K-of-N.json) in it; \`svmsim sweep … --shard K/N --out ${dir}\` writes them`);
  return names.map((n) => {
    const file = path.join(dir, n);
    let f: ShardFile;
    try {
      f = JSON.parse(fs.readFileSync(file, 'utf8')) as ShardFile;
    } catch (e) {
      throw new UsageError(`${file}: not a shard results file (${e instanceof Error ? e.message : String(e)})`);
    }
    if (f?.format !== SHARD_FORMAT) throw new UsageError(`${file}: not a shard results file (format is ${JSON.stringify(f?.format)}, expected "${SHARD_FORMAT}")`);
    if (f.formatVersion !== SHARD_FORMAT_VERSION) throw new UsageError(`${file}: shard format version ${f.formatVersion}; this svmsim reads version ${SHARD_FORMAT_VERSION}`);
    const ints = [f.seeds?.from, f.seeds?.to, f.shard?.index, f.shard?.count, f.shard?.from, f.shard?.to, f.runs, f.failedDropped];
    if (!ints.every((x) => Number.isSafeInteger(x)) || !Array.isArray(f.failed) || f.seeds.to - f.seeds.from >= MAX_SWEEP_SEEDS) throw new UsageError(`${file}: a shard results file with missing or malformed fields`);
    return { file, shard: f };
  });
}
