// What the commands share: option parsing, where runs go, exit codes, and printing errors as one line.
import fs from 'node:fs';
import path from 'node:path';
import { ActorDiedError, RunSetupError, TraceFormatError } from '@svmsim/runtime';
import { KERNEL_ERAS } from '@svmsim/gpu-driver/kernel-era';
import { GPU_COST_PROFILE_NAMES } from '@svmsim/gpu-driver/cost-profiles';
import { UsageError } from '../run/actors.js';
import type { Scenario } from '../scenario/types.js';
import { ScenarioError } from '../scenario/load.js';
import { parseDuration } from '../scenario/units.js';

/** Exit codes, as README documents them. */
export const EXIT_OK = 0;
export const EXIT_VIOLATION = 1;
export const EXIT_USAGE = 2;
export const EXIT_RUN_FAILED = 3;

/** Thread mode's simulated ns per wall ns when neither --time-scale nor the scenario says. */
export const THREAD_TIME_SCALE = 0.02;

/** `--policy dev=policy`, repeatable. */
export function collectPolicy(value: string, previous: Record<string, string>): Record<string, string> {
  const m = /^([A-Za-z][A-Za-z0-9_.-]*)=([A-Za-z0-9_.-]+)$/.exec(value);
  if (!m) throw new UsageError(`--policy ${value}: expected DEVICE=POLICY, e.g. --policy dmirror0=safe`);
  return { ...previous, [m[1]]: m[2] };
}

/** `--inject KIND:…`, repeatable (run/faults.ts parses and checks them against the scenario). */
export function collectInject(value: string, previous: string[]): string[] {
  return [...previous, value];
}

export function parseSeed(value: string): number {
  if (!/^\d+$/.test(value) || !Number.isSafeInteger(Number(value))) throw new UsageError(`--seed ${value}: expected a whole number`);
  return Number(value);
}

/** `--duration 50ms` (or another time flag): a bad value is a usage error (exit 2) naming the flag. */
/** `--kernel ERA` over a scenario's machine.kernel (run, replay), checked. */
export function withKernel(s: Scenario, kernel: string | undefined): Scenario {
  if (kernel === undefined) return s;
  if (!(KERNEL_ERAS as readonly string[]).includes(kernel)) throw new UsageError(`--kernel: "${kernel}" is not one of ${KERNEL_ERAS.join(', ')}`);
  return { ...s, machine: { ...s.machine, kernel } };
}

/** `--profile NAME`, checked: one of the GPU cost profiles (gpu-driver cost-profiles.ts). */
export function checkProfile(profile: string, flag = '--profile'): string {
  if (!GPU_COST_PROFILE_NAMES.includes(profile)) throw new UsageError(`${flag}: "${profile}" is not one of ${GPU_COST_PROFILE_NAMES.join(', ')}`);
  return profile;
}

/** `--profile NAME` over a scenario's machine.profile (run, replay, sweep), checked. */
export function withProfile(s: Scenario, profile: string | undefined): Scenario {
  if (profile === undefined) return s;
  return { ...s, machine: { ...s.machine, profile: checkProfile(profile) } };
}

export function durationOption(v: string, flag = '--duration'): number {
  try {
    return parseDuration(v);
  } catch (e) {
    throw new UsageError(`${flag}: ${e instanceof Error ? e.message : String(e)}`);
  }
}

/** `--jobs N`: a whole number of worker threads. */
export function parseJobs(value: string): number {
  const n = Number(value);
  if (!Number.isSafeInteger(n) || n < 1 || n > 256) throw new UsageError(`--jobs ${value}: expected a whole number from 1 to 256`);
  return n;
}

export function parsePositive(name: string, value: string): number {
  const n = Number(value);
  if (!(n > 0) || !Number.isFinite(n)) throw new UsageError(`${name} ${value}: expected a positive number`);
  return n;
}

/**
 * The most seeds one sweep names, sharded or queued (a sweep keeps a count of passing seeds and at
 * most MAX_FAILED_KEPT failing outcomes, so this bounds a number, not memory).
 */
export const MAX_SWEEP_SEEDS = 100_000_000;

/** `1..N` or `A..B` or a single number. */
export function parseSeedRange(value: string): { from: number; to: number } {
  const m = /^(\d+)(?:\.\.(\d+))?$/.exec(value);
  if (!m || !Number.isSafeInteger(Number(m[1])) || (m[2] !== undefined && !Number.isSafeInteger(Number(m[2])))) throw new UsageError(`--seeds ${value}: expected FROM..TO, e.g. --seeds 1..200`);
  const from = Number(m[1]);
  const to = m[2] === undefined ? from : Number(m[2]);
  if (to < from) throw new UsageError(`--seeds ${value}: ${to} is below ${from}`);
  if (to - from >= MAX_SWEEP_SEEDS) throw new UsageError(`--seeds ${value}: at most ${MAX_SWEEP_SEEDS} seeds in one sweep`);
  return { from, to };
}

/** An `-o FILE` the command can write: a usage error (exit 2) naming it if it cannot. */
export function writableOutput(file: string): string {
  try {
    fs.closeSync(fs.openSync(file, 'w'));
  } catch (e) {
    throw new UsageError(`-o ${file}: cannot write it (${(e as NodeJS.ErrnoException).code ?? String(e)})`);
  }
  return file;
}

/** A whole number for a flag, in [min, max]: digits only (no 0x3, 1e3 or 2.0). */
export function wholeNumber(flag: string, value: string, min: number, max: number, hint = ''): number {
  const n = Number(value);
  if (!/^\d+$/.test(value) || n < min || n > max) throw new UsageError(`${flag} ${value}: expected a whole number from ${min} to ${max}${hint}`);
  return n;
}

/** runs/<date-time>/ for this invocation. */
export function runsDir(): string {
  const stamp = new Date().toISOString().replace(/[:]/g, '-').replace(/\..*$/, '');
  return path.join(process.cwd(), 'runs', stamp);
}

export function runName(scenario: string, policies: Record<string, string>, seed: number): string {
  const p = Object.values(policies).join('+');
  return `${scenario}${p ? `.${p}` : ''}.seed${seed}`;
}

/** Print an error as one line (a stack only with --debug) and return its exit code. */
export function reportError(e: unknown, debug: boolean): number {
  const say = (line: string) => process.stderr.write(`svmsim: ${line}\n`);
  if (e instanceof ScenarioError || e instanceof UsageError || e instanceof TraceFormatError) {
    process.stderr.write(`${e.message}\n`);
    return EXIT_USAGE;
  }
  if (e instanceof ActorDiedError) {
    say(e.message);
    if (debug && e.detail) process.stderr.write(`${e.detail}\n`);
    return EXIT_RUN_FAILED;
  }
  if (e instanceof RunSetupError) {
    say(e.message);
    return EXIT_RUN_FAILED;
  }
  say(e instanceof Error ? e.message : String(e));
  if (debug && e instanceof Error && e.stack) process.stderr.write(`${e.stack}\n`);
  return EXIT_RUN_FAILED;
}
