import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { expect, it } from 'vitest';
import { LocalScheduler, readTrace } from '@svmsim/runtime';
import { createMm, createRamdisk } from '@svmsim/kernel-mm';
import { createDmirror } from '@svmsim/kernel-mm/dmirror';
import { checkTrace, formatViolation } from '@svmsim/kernel-mm/checker';
import { createMirrorStress } from '@svmsim/kernel-mm/testing/mirror-stress';
it('one seed', async () => {
  for (let seed = 1; seed <= 5; seed++) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'stress-'));
  const r = await new LocalScheduler().run({ actors: [
    { id: 'mm', actor: createMm({ frames: 64, swapPages: 64, checkInvariants: true }, 'mm') }, { id: 'ramdisk', actor: createRamdisk({}) },
    { id: 'dmirror0', actor: createDmirror({}, 'dmirror0') }, { id: 'app', actor: createMirrorStress({ ops: 300 }) }], seed, traceDir: dir });
  const s = r.summaries.app as any;
  console.log(seed, r.reason, JSON.stringify(s.counts), JSON.stringify(s.errors), s.finalPages.length);
  const c = checkTrace(readTrace(dir), s.finalPages);
  console.log(c.violations.slice(0, 5).map(formatViolation).join('\n'), JSON.stringify(c.stats));
  }
});
