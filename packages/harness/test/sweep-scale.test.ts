// Sweeps beyond one process: shards written by `sweep --shard K/N --out DIR` (with the index from
// the flag, Slurm's or Kubernetes' environment) and merged by `sweep-merge` into exactly what one
// sweep prints; a BullMQ queue against a real redis-server with two `svmsim worker` processes, one
// killed mid-job (every seed reported once); Ctrl-C of a sweep and of a thread-mode run (exit 130,
// the partial result printed, no process left).
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { resolveShard, shardSeeds } from '../src/commands/sweep-shard.js';

const cli = fileURLToPath(new URL('../dist/cli.js', import.meta.url));
const tmp = () => fs.mkdtempSync(path.join(os.tmpdir(), 'svmsim-scale-'));
const UNSAFE = ['--policy', 'mirror0=unsafe-skip-read-retry'];

function svmsim(args: string[], env: Record<string, string> = {}): { code: number; out: string; err: string } {
  const r = spawnSync(process.execPath, [cli, ...args], { cwd: tmp(), encoding: 'utf8', timeout: 120_000, env: { ...process.env, ...env } });
  return { code: r.status ?? -1, out: r.stdout, err: r.stderr };
}

function start(args: string[]): { p: ChildProcess; out: () => string; err: () => string; exit: Promise<number> } {
  const p = spawn(process.execPath, [cli, ...args], { cwd: tmp(), stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  p.stdout!.on('data', (d) => (out += d));
  p.stderr!.on('data', (d) => (err += d));
  const exit = new Promise<number>((resolve) => p.on('exit', (code, signal) => resolve(code ?? (signal === 'SIGKILL' ? 137 : -1))));
  return { p, out: () => out, err: () => err, exit };
}

async function until(what: string, cond: () => boolean, ms = 60_000): Promise<void> {
  const t0 = Date.now();
  while (!cond()) {
    if (Date.now() - t0 > ms) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe('shards', () => {
  it('K of N takes a contiguous share; the shares cover the seeds once', () => {
    const shares = [1, 2, 3].map((index) => shardSeeds(1, 10, { index, count: 3 }));
    expect(shares).toEqual([{ from: 1, to: 3 }, { from: 4, to: 6 }, { from: 7, to: 10 }]);
    expect(shardSeeds(5, 6, { index: 3, count: 4 })).toEqual({ from: 6, to: 5 }); // more shards than seeds: empty
  });

  it('the index comes from --shard, Slurm or a Kubernetes Indexed Job; a bad one names where it came from', () => {
    expect(resolveShard('2/5', {})).toEqual({ index: 2, count: 5 });
    expect(resolveShard(undefined, { SLURM_ARRAY_TASK_ID: '7', SLURM_ARRAY_TASK_MIN: '5', SLURM_ARRAY_TASK_COUNT: '4' })).toEqual({ index: 3, count: 4 });
    expect(resolveShard('8', { JOB_COMPLETION_INDEX: '0' })).toEqual({ index: 1, count: 8 });
    expect(resolveShard(undefined, {})).toBeUndefined();
    expect(() => resolveShard('6/5', {})).toThrow('--shard 6/5: shard 6 of 5 does not exist; expected 1 to 5');
    expect(() => resolveShard('8', {})).toThrow('--shard 8: which shard is this?');
    expect(() => resolveShard(undefined, { JOB_COMPLETION_INDEX: '3' })).toThrow('JOB_COMPLETION_INDEX=3 is set but the shard count is not: pass --shard N');
    expect(() => resolveShard('4', { JOB_COMPLETION_INDEX: 'x' })).toThrow('JOB_COMPLETION_INDEX=x: expected a whole number');
  });

  it('merged shards print what one sweep prints; a missing shard is named and fails; a foreign one is refused', () => {
    const whole = svmsim(['sweep', 'mirror-race', ...UNSAFE, '--seeds', '1..8', '--jobs', '2']);
    expect(whole.code).toBe(1);
    const dir = tmp();
    const seeds = ['--seeds', '1..8', '--jobs', '1', '--out', dir];
    const s1 = svmsim(['sweep', 'mirror-race', ...UNSAFE, ...seeds, '--shard', '1/3']);
    expect(s1.out).toMatch(/^shard 1 of 3: seeds 1\.\.2, 2 runs, \d failing → .*shard-1-of-3\.json\n$/);
    svmsim(['sweep', 'mirror-race', ...UNSAFE, ...seeds], { SLURM_ARRAY_TASK_ID: '3', SLURM_ARRAY_TASK_MIN: '1', SLURM_ARRAY_TASK_COUNT: '3' });
    const partial = svmsim(['sweep-merge', dir]);
    expect(partial.code).toBe(3);
    expect(partial.out).toContain('3 seeds not run: shard 2 of 3 left no results in');
    svmsim(['sweep', 'mirror-race', ...UNSAFE, ...seeds, '--shard', '3'], { JOB_COMPLETION_INDEX: '1' });
    const merged = svmsim(['sweep-merge', dir]);
    expect(merged.code).toBe(1);
    expect(merged.out).toBe(whole.out);

    svmsim(['sweep', 'mirror-race', '--seeds', '1..8', '--jobs', '1', '--out', dir, '--shard', '2/3']); // the safe policy: shard-2-of-3 overwritten by another sweep
    const foreign = svmsim(['sweep-merge', dir]);
    expect(foreign.code).toBe(2);
    expect(foreign.err).toMatch(/shard-2-of-3\.json: not a shard of the same sweep as .*mirror0=safe .* vs .*mirror0=unsafe-skip-read-retry/);
  });

  it('usage errors name the flag', () => {
    expect(svmsim(['sweep', 'mirror-race', '--seeds', '1..4', '--shard', '2/3'])).toMatchObject({ code: 2, err: expect.stringContaining('--shard 2/3: where do the results go? Add --out DIR') });
    expect(svmsim(['sweep', 'mirror-race', '--seeds', '1..4', '--chunk', '5'])).toMatchObject({ code: 2, err: expect.stringContaining('--chunk: only with --queue') });
    expect(svmsim(['sweep', 'mirror-race', '--seeds', '1..4', '--queue', 'http://x:1'])).toMatchObject({ code: 2, err: expect.stringContaining('--queue http://x:1: expected redis://HOST:PORT') });
    expect(svmsim(['sweep-merge', tmp()])).toMatchObject({ code: 2, err: expect.stringContaining('no shard results (shard-K-of-N.json) in it') });
    expect(svmsim(['worker', '--queue', 'redis://127.0.0.1:6379', '--lock-duration', '10ms'])).toMatchObject({ code: 2, err: expect.stringContaining('--lock-duration 10ms: expected from 500 ms') });
  });
});

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer().listen(0, '127.0.0.1', () => {
      const port = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(port));
    });
    s.on('error', reject);
  });
}

const redisServer = spawnSync('sh', ['-c', 'command -v redis-server'], { encoding: 'utf8' }).stdout.trim();
if (!redisServer && process.env.SVMSIM_REQUIRE_REDIS === '1') throw new Error('SVMSIM_REQUIRE_REDIS=1 but redis-server is not installed (apt-get install -y redis-server)');
if (!redisServer) console.warn('redis-server is not installed: the queued-sweep tests are skipped (apt-get install -y redis-server runs them)');

describe.skipIf(!redisServer)('a queued sweep on a real redis-server', () => {
  let redis: ChildProcess;
  let url = '';
  beforeAll(async () => {
    const port = await freePort();
    url = `redis://127.0.0.1:${port}`;
    redis = spawn(redisServer, ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let log = '';
    redis.stdout!.on('data', (d) => (log += d));
    await until('redis-server to listen', () => /Ready to accept connections/.test(log), 15_000);
  });
  afterAll(() => {
    redis?.kill('SIGKILL');
  });

  it('two workers, one killed mid-job: every seed reported once, the same failures as a sweep here', async () => {
    const here = svmsim(['sweep', 'mirror-race', ...UNSAFE, '--seeds', '1..24', '--jobs', '2', '--json']);
    const producer = start(['sweep', 'mirror-race', ...UNSAFE, '--seeds', '1..24', '--queue', url, '--queue-name', 'kill-test', '--chunk', '4', '--json']);
    await until('the jobs to be queued', () => producer.err().includes('24 seeds in 6 jobs'));
    const doomed = start(['worker', '--queue', url, '--queue-name', 'kill-test', '--jobs', '1', '--lock-duration', '1s']);
    await until('the first worker to start a job', () => / started/.test(doomed.err()));
    const taken = / job (\S+): seeds (\d+)\.\.(\d+) started/.exec(doomed.err())!;
    doomed.p.kill('SIGKILL');
    expect(await doomed.exit).toBe(137);
    const survivor = start(['worker', '--queue', url, '--queue-name', 'kill-test', '--jobs', '1', '--lock-duration', '1s', '--exit-when-idle']);
    const code = await producer.exit;
    expect(code, producer.err()).toBe(1);
    const got = JSON.parse(producer.out());
    const want = JSON.parse(here.out);
    expect(got.runs).toBe(24);
    expect(got.failed.map((f: { seed: number }) => f.seed)).toEqual(want.failed.map((f: { seed: number }) => f.seed));
    expect(got.failed).toEqual(want.failed);
    // The killed worker's job ran again, on the survivor.
    expect(survivor.err()).toContain(`job ${taken[1]}: seeds ${taken[2]}..${taken[3]} done`);
    expect(await survivor.exit).toBe(0);
  }, 120_000);

  it('a server that does not answer is one line and exit 3, not a wait', async () => {
    const port = await freePort();
    const r = svmsim(['sweep', 'mirror-race', '--seeds', '1..4', '--queue', `redis://127.0.0.1:${port}`]);
    expect(r.code).toBe(3);
    expect(r.err).toMatch(new RegExp(`^svmsim: cannot reach redis://127\\.0\\.0\\.1:${port}: .*ECONNREFUSED.*\\n$`));
  });
});

describe('Ctrl-C', () => {
  it('a sweep stops its workers, prints the seeds done so far and exits 130', async () => {
    const s = start(['sweep', 'mirror-race', '--seeds', '1..5000', '--jobs', '2']);
    await new Promise((r) => setTimeout(r, 2500));
    s.p.kill('SIGINT');
    expect(await s.exit).toBe(130);
    expect(s.out()).toMatch(/^svmsim sweep mirror-race --policy mirror0=safe --seeds 1\.\.5000: (\d+) runs, 0 failing\n(\d+) seeds not run: interrupted \(Ctrl-C\) after \1 of 5000\n$/);
  }, 60_000);

  it('a thread-mode run stops its actors and prints the report of what ran (exit 130)', async () => {
    const dir = tmp();
    // v4.9: no compute job timeout, so the hour-long job runs (36 s of wall time at this scale) until Ctrl-C.
    const s = start(['run', 'kswapd-vs-compute', '--kernel', 'v4.9', '--threads', '--time-scale', '100', '--trace', dir]);
    await new Promise((r) => setTimeout(r, 3000));
    s.p.kill('SIGINT');
    expect(await s.exit).toBe(130);
    expect(s.out()).toMatch(/ interrupted\n/); // the verdict column
    expect(s.out()).toContain('run failed: interrupted (Ctrl-C) before the run finished');
    expect(JSON.parse(fs.readFileSync(path.join(dir, 'report.json'), 'utf8'))).toMatchObject({ endedBy: 'interrupted' });
  }, 60_000);
});
