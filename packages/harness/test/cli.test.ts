// The CLI end to end, spawned as a user would run it: exit codes, one-line errors, reports, sweeps
// that find a planted unsafe mirror and the replay they print, scripted expectations.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const cli = fileURLToPath(new URL('../dist/cli.js', import.meta.url));
const fixture = (f: string) => fileURLToPath(new URL(`./fixtures/${f}`, import.meta.url));
const tmp = () => fs.mkdtempSync(path.join(os.tmpdir(), 'svmsim-cli-'));

function svmsim(...args: string[]): { code: number; out: string; err: string } {
  const cwd = tmp(); // runs/ lands here
  const r = spawnSync(process.execPath, [cli, ...args], { cwd, encoding: 'utf8', timeout: 120_000 });
  return { code: r.status ?? -1, out: r.stdout, err: r.stderr };
}

describe('svmsim', () => {
  it('has --help on every command, with examples', () => {
    const top = svmsim('--help');
    expect(top.code).toBe(0);
    for (const cmd of ['run', 'compare', 'sweep', 'sweep-merge', 'worker', 'replay', 'analyze', 'check', 'export', 'report', 'trace cat']) {
      expect(top.out).toContain(cmd.split(' ')[0]);
      const h = svmsim(...cmd.split(' '), '--help');
      expect(h.code, cmd).toBe(0);
      expect(h.out, cmd).toMatch(/Example/);
    }
  });

  it('runs a built-in scenario, prints the report and writes the trace with report.json', () => {
    const dir = tmp();
    const r = svmsim('run', 'hmm-selftest', '--trace', dir);
    expect(r.code, r.err).toBe(0);
    expect(r.out).toMatch(/policy .* verdict/);
    expect(r.out).toMatch(/safe .* ok\n/);
    const report = JSON.parse(fs.readFileSync(path.join(dir, 'report.json'), 'utf8'));
    expect(report).toMatchObject({ scenario: 'hmm-selftest', expectFailures: 0, check: { ok: true } });
    expect(report.steps.length).toBeGreaterThan(10);
    expect(fs.readdirSync(dir).some((f) => f.endsWith('.svmt'))).toBe(true);
  });

  it('prints JSON with --json, in thread mode too', () => {
    const r = svmsim('run', 'mirror-race', '--threads', '--json', '--trace', tmp());
    expect(r.code, r.err).toBe(0);
    const report = JSON.parse(r.out);
    expect(report).toMatchObject({ mode: 'threads', check: { ok: true } });
    expect(report.mm.invalidations).toBeGreaterThan(0);
  });

  it('answers a bad scenario file with one line naming the field, the value and what is allowed; exit 2', () => {
    const bad = path.join(tmp(), 'bad.yaml');
    fs.writeFileSync(bad, 'name: x\ndevices:\n  - id: mirror0\n    kind: dmirror\n    policy: saef\n');
    const r = svmsim('run', bad);
    expect(r.code).toBe(2);
    expect(r.err.trim().split('\n')).toEqual([`${bad}: devices[0].policy: "saef" is not one of safe, unsafe-skip-read-retry, unsafe-skip-owner-check (did you mean safe?)`]);
    expect(r.out).toBe('');
  });

  it('answers bad flags and unknown scenarios with exit 2, never a stack trace', () => {
    for (const args of [['run', 'mirror-race', '--seed', 'x'], ['run', 'no-such-scenario'], ['run', 'mirror-race', '--duration', '5xs'], ['run', 'mirror-race', '--policy', 'gpu9=pin'], ['frobnicate']]) {
      const r = svmsim(...args);
      expect(r.code, args.join(' ')).toBe(2);
      expect(r.err, args.join(' ')).not.toMatch(/\n\s+at /);
    }
  });

  it('a run under --kernel prints a replay under the same kernel, and the replay runs it', () => {
    const r = svmsim('run', 'gup-vs-readonly', '--policy', 'gpu0=unsafe-userptr', '--kernel', 'v6.6', '--trace', tmp());
    expect(r.code, r.out + r.err).toBe(1);
    const m = /replay: svmsim (replay gup-vs-readonly --policy gpu0=unsafe-userptr --kernel v6.6 --seed \d+) --trace out\//.exec(r.out);
    expect(m, r.out).not.toBeNull();
    const replay = svmsim(...m![1].split(' '), '--trace', tmp());
    expect(replay.code).toBe(1);
    expect(replay.out).toMatch(/deterministic, kernel v6\.6/);
    const bad = svmsim('replay', 'mirror-race', '--seed', '1', '--kernel', 'v5.0');
    expect(bad.code).toBe(2);
    expect(bad.err).toMatch(/--kernel: "v5.0" is not one of/);
  });

  it('sweeps seeds, finds a planted unsafe mirror, prints the replay command; the replay reproduces it', () => {
    const r = svmsim('sweep', 'mirror-race', '--policy', 'mirror0=unsafe-skip-read-retry', '--seeds', '1..6', '--jobs', '2');
    expect(r.code).toBe(1);
    const m = /seed (\d+): stale_translation: .*\n\s+replay: svmsim (replay mirror-race --policy mirror0=unsafe-skip-read-retry --seed \d+) --trace out\//.exec(r.out);
    expect(m, r.out).not.toBeNull();
    const replay = svmsim(...m![2].split(' '), '--trace', tmp());
    expect(replay.code).toBe(1);
    expect(replay.out).toContain(`seed ${m![1]}`);
    expect(replay.out).toMatch(/stale_translation/);
    // The safe mirror over the same seeds: nothing.
    const safe = svmsim('sweep', 'mirror-race', '--seeds', '1..6', '--jobs', '2');
    expect(safe.code, safe.out).toBe(0);
    expect(safe.out).toMatch(/6 runs, 0 failing/);
  });

  it('fails a scripted scenario whose expect is not met, naming the step; exit 1', () => {
    const r = svmsim('run', fixture('wrong-expect.yaml'), '--trace', tmp());
    expect(r.code).toBe(1);
    expect(r.out).toMatch(/step "device reads the stored word" \(phase selftest\): .*data.*8.*7/);
    expect(r.out).toMatch(/1 expect failed/);
  });

  it('runs the scripted scenario README.md shows', () => {
    const readme = fs.readFileSync(fileURLToPath(new URL('../README.md', import.meta.url)), 'utf8');
    const yaml = /```yaml\n([\s\S]*?)```/.exec(readme)![1];
    const file = path.join(tmp(), 'readme.yaml');
    fs.writeFileSync(file, yaml);
    const r = svmsim('run', file, '--trace', tmp());
    expect(r.code, r.out + r.err).toBe(0);
    expect(r.out).toMatch(/steps: 5, 0 with an unmet expect/);
  });

  it('compares scenarios under their policies', () => {
    const r = svmsim('compare', 'hmm-selftest', 'ksm', '--policies', 'safe,unsafe-skip-read-retry', '--seed', '3');
    expect(r.code).toBe(1); // the unsafe twin is caught in at least one of them
    expect(r.out).toMatch(/hmm-selftest — /);
    expect(r.out).toMatch(/ksm — /);
    expect((r.out.match(/^unsafe-skip-read-retry /gm) ?? []).length).toBe(2);
  });
});
