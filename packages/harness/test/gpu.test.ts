// The GPU device from the CLI, spawned as a user would run it: the built-in userptr-walk under pin
// and userptr, and what each walks per submission (pin: nothing; userptr: the whole 256-page BO).
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const cli = fileURLToPath(new URL('../dist/cli.js', import.meta.url));
const tmp = () => fs.mkdtempSync(path.join(os.tmpdir(), 'svmsim-gpu-'));

function svmsim(...args: string[]): { code: number; out: string; err: string } {
  const r = spawnSync(process.execPath, [cli, ...args], { cwd: tmp(), encoding: 'utf8', timeout: 120_000 });
  return { code: r.status ?? -1, out: r.stdout, err: r.stderr };
}

describe('svmsim with a gpu device', () => {
  for (const [policy, walked] of [['pin', 0], ['userptr', 256]] as const) {
    it(`runs userptr-walk under ${policy}: checker ok, ${walked} pages walked per submission`, () => {
      const dir = tmp();
      const r = svmsim('run', 'userptr-walk', '--policy', `gpu0=${policy}`, '--trace', dir);
      expect(r.code, r.err + r.out).toBe(0);
      expect(r.out).toMatch(new RegExp(`gpu0 \\(${policy}\\): \\d+ submissions, .*${walked} pages walked per submission`));
      const report = JSON.parse(fs.readFileSync(path.join(dir, 'report.json'), 'utf8'));
      expect(report).toMatchObject({ scenario: 'userptr-walk', policies: { gpu0: policy }, check: { ok: true } });
      const gpu = report.devices.gpu0;
      expect(gpu.policy).toBe(policy);
      expect(gpu.submissions).toBeGreaterThan(10);
      expect(gpu.jobsDone).toBe(gpu.submissions);
      expect(gpu.jobErrors).toBe(0);
      expect(gpu.pagesWalkedPerSubmissionMean).toBe(walked);
      // The BO was freed before the dump: pin's pages unpinned, nothing left on the GPU.
      expect(gpu.bosFreed).toBe(1);
      expect(gpu.pagesUnpinned).toBe(gpu.pagesPinned);
      expect(gpu.bos).toBe(0);
    });
  }
  // Not asserted: `sweep userptr-walk --policy gpu0=unsafe-userptr` is not caught — the scenario
  // has no invalidations (no munmap, reclaim, migration…), so the unsafe early ack never happens.
});
