// A script step's expectations: every field of `expect` given is compared with what the step got;
// each unmet one is a line naming the field, the expected and the actual value. An unmet
// expectation does not stop the script: it is recorded (StepResult.failures) and counted.
import type { Expect } from '../scenario/types.js';
import { errnoName, errnoValue } from './mapping.js';

/** What a step got: ret is 0 or the first -errno; the rest as the operation returned it. */
export type Got = { ret: number } & Record<string, unknown>;

/** The unmet expectations of `expect` against `got` (empty when all are met or none is given). */
export function unmet(expect: Expect | undefined, got: Got): string[] {
  const failures: string[] = [];
  if (typeof got.error === 'string') failures.push(got.error);
  if (!expect) return failures;
  if (expect.onlyIfOk && got.ret !== 0) return failures;
  if (expect.ret !== undefined) {
    const want = typeof expect.ret === 'number' ? expect.ret : errnoOf(expect.ret);
    if (want === undefined) failures.push(`ret: expected ${expect.ret}, which is no errno name`);
    else if (got.ret !== want) failures.push(`ret: expected ${showRet(want)}, got ${showRet(got.ret)}`);
  }
  for (const field of ['cpages', 'faults'] as const) {
    const want = expect[field];
    if (want !== undefined && got[field] !== want) failures.push(`${field}: expected ${want}, got ${show(got[field])}`);
  }
  if (expect.status !== undefined && got.status !== expect.status) failures.push(`status: expected ${expect.status}, got ${show(got.status)}`);
  for (const field of ['data', 'snapshot', 'buffer', 'softDirty'] as const) {
    const want = expect[field];
    if (want !== undefined && !sameWords(want, got[field])) failures.push(`${field}: ${differs(want, got[field])}`);
  }
  for (const [name, want] of Object.entries(expect.got ?? {})) {
    if (got[name] !== want) failures.push(`got.${name}: expected ${want}, got ${show(got[name])}`);
  }
  return failures;
}

/** "EPERM" (or "-EPERM") → -1, as the kernel returns it. */
function errnoOf(name: string): number | undefined {
  return errnoValue(name.startsWith('-') ? name.slice(1) : name);
}

function showRet(ret: number): string {
  return ret < 0 ? `${ret} (${errnoName(ret)})` : String(ret);
}

function show(v: unknown): string {
  return v === undefined ? 'nothing' : JSON.stringify(v);
}

/** Where two word lists part: the first differing index (long lists are not printed whole). */
function differs(want: number[], got: unknown): string {
  if (!Array.isArray(got) || want.length <= 16) return `expected ${show(want)}, got ${show(got)}`;
  if (got.length !== want.length) return `expected ${want.length} words, got ${got.length}`;
  const i = want.findIndex((w, j) => got[j] !== w);
  return `word ${i} of ${want.length}: expected ${want[i]}, got ${show(got[i])}`;
}

function sameWords(want: number[], got: unknown): boolean {
  return Array.isArray(got) && got.length === want.length && want.every((w, i) => got[i] === w);
}
