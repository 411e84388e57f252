// Units of the scenario format: simulated durations and memory protections, as a person writes them
// ("50ms", "2m 30s", "rw") and as the simulator needs them (ns, PROT_* bits), and back for reports
// ("8.214 ms", "59m 58s").
//
// Why here and not in the schema: the runner, the CLI (--duration and the like) and the reports
// need the same conversions, and each error names the offending text and what is accepted, so the
// schema can hand the message on unchanged after the path of the field.
import { PROT_EXEC, PROT_NONE, PROT_READ, PROT_WRITE } from '@svmsim/kernel-mm/protocol';
import type { Ns } from './types.js';

/** ns per unit. "µs" is written with MICRO SIGN (U+00B5) or GREEK SMALL LETTER MU (U+03BC), or "us". */
const UNIT_NS: Record<string, number> = {
  ns: 1,
  us: 1e3,
  '\u00b5s': 1e3,
  '\u03bcs': 1e3,
  ms: 1e6,
  s: 1e9,
  m: 60e9,
  h: 3600e9,
};
/** The units as an error message lists them. */
export const DURATION_UNITS = 'ns, us, µs, ms, s, m, h';

// One "<number><unit>" component; components may be separated by spaces: "2m 30s", "1h30m", "1.5 s".
const COMPONENT = /^(\d+(?:\.\d+)?|\.\d+)\s*([^\d\s.]+)/;

/**
 * A duration in simulated ns. A number is ns already (finite, >= 0); a string is one or more
 * "<number><unit>" components, units ns, us, µs, ms, s, m, h, summed: "50ms", "1.5s", "2m 30s".
 * The result is rounded to whole ns. Throws an Error whose message quotes the input and says why.
 */
/** The longest duration anything takes: 100 days (simulated time is a double of ns, exact to 104 days). */
export const DURATION_MAX_NS = 100 * 86_400e9;

export function parseDuration(v: string | number): Ns {
  const ns = parseDurationUnbounded(v);
  if (ns > DURATION_MAX_NS) throw new Error(`${typeof v === 'string' ? JSON.stringify(v) : v} is past the limit of a duration, 100 days (${DURATION_MAX_NS} ns)`);
  return ns;
}

function parseDurationUnbounded(v: string | number): Ns {
  if (typeof v === 'number') {
    if (!Number.isFinite(v)) throw new Error(`${String(v)} is not a duration: expected a finite number of ns`);
    if (v < 0) throw new Error(`${v} is not a duration: it is negative`);
    return Math.round(v);
  }
  if (typeof v !== 'string') throw new Error(`${show(v)} is not a duration: expected a number of ns or a string such as "50ms"`);
  const text = v.trim();
  const bad = (why: string) => new Error(`${JSON.stringify(v)} is not a duration: ${why}`);
  if (text === '') throw bad(`expected a number and a unit (${DURATION_UNITS}), such as "50ms"`);
  if (text.startsWith('-')) throw bad('it is negative');
  let rest = text;
  let total = 0;
  while (rest !== '') {
    const m = COMPONENT.exec(rest);
    if (!m) {
      if (/^(\d+(?:\.\d+)?|\.\d+)$/.test(rest)) throw bad(`"${rest}" has no unit; units: ${DURATION_UNITS}`);
      throw bad(`expected a number and a unit (${DURATION_UNITS}) at "${rest}"`);
    }
    const [all, num, unit] = m;
    const scale = UNIT_NS[unit];
    if (scale === undefined) {
      const suggestion = didYouMean(unit, Object.keys(UNIT_NS));
      throw bad(`unknown unit "${unit}"; units: ${DURATION_UNITS}${suggestion}`);
    }
    total += Number(num) * scale;
    rest = rest.slice(all.length).trimStart();
  }
  return Math.round(total);
}

/**
 * ns for a person: three significant decimals at most, the largest unit under which the value is
 * >= 1: "120 ns", "1.2 µs", "8.214 ms", "3 s"; a minute or more as "59m 58s", "1h 2m 3s" (whole
 * seconds, zero components left out). Throws a RangeError for a value that is not finite.
 */
export function formatDuration(ns: Ns): string {
  if (!Number.isFinite(ns)) throw new RangeError(`formatDuration: ${String(ns)} is not a finite number of ns`);
  if (ns < 0) return `-${formatDuration(-ns)}`;
  const steps: [number, string, number][] = [
    [1, 'ns', 1e3],
    [1e3, 'µs', 1e3],
    [1e6, 'ms', 1e3],
    [1e9, 's', 60],
  ];
  for (const [scale, unit, next] of steps) {
    const rounded = Math.round((ns / scale) * 1000) / 1000;
    if (rounded < next) return `${trim(rounded)} ${unit}`;
  }
  const totalS = Math.round(ns / 1e9);
  const h = Math.floor(totalS / 3600);
  const m = Math.floor((totalS % 3600) / 60);
  const s = totalS % 60;
  const parts: string[] = [];
  if (h) parts.push(`${h}h`);
  if (m) parts.push(`${m}m`);
  if (s || parts.length === 0) parts.push(`${s}s`);
  return parts.join(' ');
}

function trim(x: number): string {
  return x.toFixed(3).replace(/\.?0+$/, '');
}

/** The spellings parseProt accepts, for messages. */
export const PROT_SPELLINGS = '"none" or letters r, w, x, each at most once ("r", "rw", "rx", "rwx")';

/**
 * A protection as PROT_* bits: "none" (PROT_NONE), or the letters r, w, x, each at most once, in
 * any order ("rw", "r", "rwx", "wr"). Throws an Error quoting the input.
 */
export function parseProt(s: string): number {
  if (typeof s !== 'string') throw new Error(`${show(s)} is not a protection: expected ${PROT_SPELLINGS}`);
  if (s === 'none') return PROT_NONE;
  const bad = (why: string) => new Error(`${JSON.stringify(s)} is not a protection: ${why}`);
  if (s === '') throw bad(`expected ${PROT_SPELLINGS}`);
  let prot = PROT_NONE;
  for (const ch of s) {
    const bit = ch === 'r' ? PROT_READ : ch === 'w' ? PROT_WRITE : ch === 'x' ? PROT_EXEC : -1;
    if (bit < 0) throw bad(`"${ch}" is not r, w or x; expected ${PROT_SPELLINGS}${didYouMean(s, ['none'])}`);
    if (prot & bit) throw bad(`"${ch}" appears twice; expected ${PROT_SPELLINGS}`);
    prot |= bit;
  }
  return prot;
}

/** PROT_* bits back to the letters parseProt reads ("none", "r", "rw", "rwx", …). */
export function formatProt(prot: number): string {
  if (prot === PROT_NONE) return 'none';
  return (prot & PROT_READ ? 'r' : '') + (prot & PROT_WRITE ? 'w' : '') + (prot & PROT_EXEC ? 'x' : '');
}

// ---- shared by the schema's messages ----

/** Edit distance (insertions, deletions, substitutions). */
export function levenshtein(a: string, b: string): number {
  if (a === b) return 0;
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const cur = [i];
    for (let j = 1; j <= b.length; j++) {
      cur[j] = Math.min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1));
    }
    prev = cur;
  }
  return prev[b.length];
}

/**
 * The closest candidate to `input` (case-insensitive): within edit distance 2 (and less than the
 * candidate's length, so a one-letter input does not "match" every short word), or one of the two a
 * prefix of the other. Undefined when none is close.
 */
export function closest(input: string, candidates: readonly string[]): string | undefined {
  const x = input.toLowerCase();
  if (x === '') return undefined;
  let best: string | undefined;
  let bestScore = Infinity;
  for (const c of candidates) {
    const y = c.toLowerCase();
    const d = levenshtein(x, y);
    // Ranked: distance 1, then the input begun ("unsafe" → "unsafe-skip-read-retry"), then
    // distance 2, then the input with a tail ("safely" → "safe"); ties: the earlier candidate.
    let score = Infinity;
    if (d <= 1 && d < y.length) score = d;
    else if (y.startsWith(x)) score = 1.5;
    else if (d === 2 && d < y.length) score = 2;
    else if (x.startsWith(y)) score = 2.5;
    if (score < bestScore) {
      bestScore = score;
      best = c;
    }
  }
  return best;
}

/** " (did you mean X?)" when a candidate is close, else "". */
export function didYouMean(input: string, candidates: readonly string[]): string {
  const c = closest(input, candidates);
  return c === undefined ? '' : ` (did you mean ${c}?)`;
}

/** A value as a message quotes it: JSON, shortened. */
export function show(v: unknown): string {
  if (v === undefined) return 'nothing';
  let s: string;
  try {
    s = JSON.stringify(v) ?? String(v);
  } catch {
    s = String(v);
  }
  return s.length > 60 ? `${s.slice(0, 57)}...` : s;
}
