// Bad input from a user: scenario files and command-line flags, fuzzed with fast-check (seeded).
// Structured arbitraries mutate a valid scenario where the schema has a field (wrong types,
// numbers past their limits, unknown keys, missing parts) and mix in byte-level garbage; flags get
// garbage values and malformed --inject specs. The property, as EXPERIENCE.md asks of every error:
// the command ends in bounded time with exit 0, 1 or 2 — never 3 (an internal error) and never a
// hang — and an exit 2 is exactly one line on stderr, naming the field or the flag, with no stack.
// The CLI's main() runs in this process with its output captured (spawning node per case would
// take seconds each); cli.test.ts spawns the real executable for the same kinds of errors.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import fc from 'fast-check';
import { stringify } from 'yaml';
import { describe, expect, it } from 'vitest';
import { main } from '../dist/cli-main.js';

const fixture = fileURLToPath(new URL('./fixtures/fuzz-base.yaml', import.meta.url));
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'svmsim-fuzz-'));
const BASE = {
  name: 'fuzz-base',
  duration: '2ms',
  machine: { frames: 64, swapPages: 32 },
  devices: [{ id: 'mirror0' }, { id: 'gpu0', kind: 'gpu', policy: 'userptr' }],
  processes: [{ name: 'app', vmas: [{ name: 'buf', pages: 4, gpu: 'gpu0' }] }],
  phases: [
    { workload: { process: 'app', ops: 6, vmas: ['buf'], mix: { store: 2, load: 1, dmirror_read: 1, gpu_submit: 1 } } },
    { script: { process: 'app', steps: [{ store: { vma: 'buf', page: 0, pages: 2 } }, { dmirror: { device: 'mirror0', cmd: 'read', vma: 'buf', pages: 2 } }] } },
  ],
} as const;
/** Where the schema has a field: each mutant replaces (or removes) one of them. */
const PATHS: (string | number)[][] = [
  ['name'], ['duration'], ['seed'], ['timeScale'], ['report'], ['machine'], ['machine', 'frames'], ['machine', 'swapPages'], ['machine', 'movableFrames'],
  ['machine', 'kernel'], ['machine', 'lockupTimeout'], ['machine', 'watermarks'], ['machine', 'costs'], ['machine', 'nvme'], ['machine', 'diskLatency'],
  ['devices'], ['devices', 0], ['devices', 0, 'id'], ['devices', 1, 'kind'], ['devices', 1, 'policy'], ['devices', 0, 'devicePages'], ['devices', 1, 'waves'],
  ['processes'], ['processes', 0, 'vmas', 0, 'pages'], ['processes', 0, 'vmas', 0, 'prot'], ['processes', 0, 'vmas', 0, 'gpu'], ['processes', 0, 'memlock'],
  ['phases'], ['phases', 0, 'workload', 'ops'], ['phases', 0, 'workload', 'threads'], ['phases', 0, 'workload', 'mix'], ['phases', 0, 'workload', 'mix', 'store'],
  ['phases', 0, 'workload', 'pattern'], ['phases', 1, 'script', 'steps', 0], ['phases', 1, 'script', 'steps', 0, 'store', 'pages'], ['phases', 1, 'script', 'steps', 1, 'dmirror', 'cmd'],
  ['faults'], ['faults', 0], ['faults', 0, 'kill'], ['faults', 0, 'at'], ['files'], ['files', 0, 'pages'],
];
/** Values that break a field: wrong types, limits, overflow, odd strings. */
const nasty = fc.oneof(
  fc.constantFrom<unknown>(-1, 0, 1, 0.5, 2 ** 20, 2 ** 20 - 4095, 2 ** 24 + 1, 2 ** 31, 2 ** 32 + 1, 2 ** 53, 2 ** 53 + 2, 1e300, -1e300, '', ' ', 'x', '12', '-5ms', '1e400s', '100000d', 'NaN', true, false, null, [], {}, [1, 2], { a: 1 }, 'kill', 'gpu0', 'MMU_NOTIFY_CLEAR'),
  fc.integer(), fc.double(), fc.string({ maxLength: 12 }), fc.constant(undefined),
  fc.dictionary(fc.string({ maxLength: 6 }), fc.oneof(fc.integer(), fc.string({ maxLength: 6 })), { maxKeys: 3 }),
);
/** Faults are the newest block: give it entries to mutate. */
const withFaults = (s: Record<string, unknown>) => ({ ...s, faults: [{ kill: 'gpu0', at: '1ms' }] });

function setPath(obj: unknown, p: (string | number)[], v: unknown): unknown {
  const root = structuredClone(obj) as Record<string | number, unknown>;
  let cur: Record<string | number, unknown> = root;
  for (let i = 0; i < p.length - 1; i++) {
    const next = cur[p[i]];
    if (next === null || typeof next !== 'object') cur[p[i]] = typeof p[i + 1] === 'number' ? [] : {};
    cur = cur[p[i]] as Record<string | number, unknown>;
  }
  if (v === undefined) delete cur[p[p.length - 1]];
  else cur[p[p.length - 1]] = v;
  return root;
}

const scenarioMutant = fc.record({
  faults: fc.boolean(),
  edits: fc.array(fc.tuple(fc.constantFrom(...PATHS), nasty), { minLength: 1, maxLength: 3 }),
  extraKey: fc.option(fc.tuple(fc.constantFrom<(string | number)[]>([], ['machine'], ['devices', 0], ['phases', 0, 'workload'], ['processes', 0, 'vmas', 0]), fc.string({ minLength: 1, maxLength: 8 })), { nil: undefined }),
  json: fc.boolean(),
});

interface Outcome { code: number; out: string; err: string; ms: number }
let runs = 0;
/** Exit codes seen, per test: a fuzz that never reaches a valid run (or never an error) tests little. */
const seen = new Map<string, Map<number, number>>();
const tally = (test: string, code: number) => {
  const m = seen.get(test) ?? new Map<number, number>();
  seen.set(test, m.set(code, (m.get(code) ?? 0) + 1));
};
/** main() with stdout and stderr captured; bounded in time. */
async function svmsim(args: string[]): Promise<Outcome> {
  const out: string[] = [];
  const err: string[] = [];
  const ow = process.stdout.write;
  const ew = process.stderr.write;
  process.stdout.write = ((s: string | Uint8Array) => (out.push(String(s)), true)) as typeof process.stdout.write;
  process.stderr.write = ((s: string | Uint8Array) => (err.push(String(s)), true)) as typeof process.stderr.write;
  const t0 = performance.now();
  let timer: NodeJS.Timeout | undefined;
  try {
    const code = await Promise.race([main(['node', 'svmsim', ...args]), new Promise<number>((_, rej) => (timer = setTimeout(() => rej(new Error(`hung: svmsim ${args.join(' ')}`)), 20_000)))]);
    return { code, out: out.join(''), err: err.join(''), ms: performance.now() - t0 };
  } finally {
    clearTimeout(timer);
    process.stdout.write = ow;
    process.stderr.write = ew;
  }
}

/** The property every outcome must have. `names`: what an exit-2 line must mention (one of). */
function expectClean(o: Outcome, what: string, names: RegExp): void {
  expect([0, 1, 2], `${what}: exit ${o.code}\n${o.err}`).toContain(o.code);
  expect(o.err, what).not.toMatch(/\n\s+at .*\(.*:\d+:\d+\)|^\s+at /m); // no stack frames
  if (o.code === 2) {
    const lines = o.err.split('\n').filter((l) => l !== '');
    expect(lines, `${what}:\n${o.err}`).toHaveLength(1);
    expect(lines[0], what).toMatch(names);
  }
  expect(o.ms, what).toBeLessThan(20_000);
}

describe('fuzzing what a user gives svmsim (fast-check, seeded)', () => {
  it('scenario files: structured mutants of a valid scenario', async () => {
    await fc.assert(
      fc.asyncProperty(scenarioMutant, async (mu) => {
        let s: unknown = mu.faults ? withFaults(BASE) : BASE;
        for (const [p, v] of mu.edits) s = setPath(s, p, v);
        if (mu.extraKey) s = setPath(s, [...mu.extraKey[0], mu.extraKey[1]], 1);
        const file = path.join(dir, `m${runs++}.${mu.json ? 'json' : 'yaml'}`);
        fs.writeFileSync(file, mu.json ? JSON.stringify(s) : stringify(s));
        const o = await svmsim(['run', file, '--trace', path.join(dir, 't')]);
        tally('structured', o.code);
        // One line: the file, then where in it (a field path, or line:col of a syntax error), then what.
        expectClean(o, `${fs.readFileSync(file, 'utf8')}`, new RegExp(`^${file.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}(:\\d+:\\d+)?: `));
      }),
      { seed: 20261207, numRuns: 300 },
    );
    expect(seen.get('structured')!.get(2)).toBeGreaterThan(100);
    expect(seen.get('structured')!.get(0)).toBeGreaterThan(0);
  });

  it('scenario files: byte-level garbage, and a valid file with bytes flipped', async () => {
    const valid = fs.readFileSync(fixture);
    await fc.assert(
      fc.asyncProperty(
        fc.oneof(
          fc.uint8Array({ maxLength: 300 }).map((b) => Buffer.from(b)),
          fc.array(fc.tuple(fc.nat(valid.length - 1), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 6 }).map((flips) => {
            const b = Buffer.from(valid);
            for (const [i, v] of flips) b[i] = v;
            return b;
          }),
        ),
        fc.boolean(),
        async (bytes, json) => {
          const file = path.join(dir, `g${runs++}.${json ? 'json' : 'yaml'}`);
          fs.writeFileSync(file, bytes);
          const o = await svmsim(['run', file, '--trace', path.join(dir, 't')]);
          expectClean(o, `${bytes.toString('latin1')}`, new RegExp(`^${file.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}(:\\d+:\\d+)?: `));
        },
      ),
      { seed: 7, numRuns: 200 },
    );
  });

  it('command-line flags: garbage values, unknown flags, malformed --inject', async () => {
    const value = fc.oneof(fc.string({ maxLength: 10 }), fc.constantFrom('', '-1', '0', '1e3', '0x10', '9007199254740993', '1..', 'NaN', '100000d', '5ms', 'mirror0=safe', 'gpu0=pin', 'x=y', 'v4.9', 'v9'));
    const inject = fc.oneof(
      fc.string({ maxLength: 16 }),
      fc.tuple(fc.constantFrom('kill', 'hang-fence', 'stop-invalidate-acks', 'delay', 'reorder', 'boom', ''), fc.constantFrom('gpu0', 'mirror0', 'mm', 'nope', ''), fc.constantFrom('', '@1ms', '@-1', '@x', ',job=1', ',job=0', ',job=x', ',timeout=5ms', ',from=mm,to=gpu0,ns=1us', ',probability=2', ',ns=1us,ns=2us'))
        .map(([k, t, r]) => (k === 'delay' || k === 'reorder' ? `${k}:${r.slice(1)}` : `${k}:${t}${r}`)),
    );
    const flag = fc.oneof(
      fc.tuple(fc.constantFrom('--seed', '--policy', '--duration', '--time-scale', '--kernel'), value).map(([f, v]) => [f, v]),
      inject.map((v) => ['--inject', v]),
      fc.constantFrom(['--bogus'], ['--seed'], ['-x'], ['--json'], ['--deterministic']),
    );
    await fc.assert(
      fc.asyncProperty(fc.array(flag, { minLength: 1, maxLength: 3 }), async (flags) => {
        const args = ['run', fixture, ...flags.flat(), '--trace', path.join(dir, `f${runs++}`)];
        const o = await svmsim(args);
        tally('flags', o.code);
        const named = new Set(flags.map((f) => f[0]));
        // The line names the flag (or says which option commander could not take).
        expectClean(o, args.join(' '), new RegExp(`${[...named].map((n) => n.replace(/[-]/g, '\\-')).join('|')}|unknown option|argument missing|too many arguments|${fixture.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}`));
      }),
      { seed: 42, numRuns: 300 },
    );
    expect(seen.get('flags')!.get(2)).toBeGreaterThan(100);
    expect(seen.get('flags')!.get(0)).toBeGreaterThan(5);
  });
});
