// The soak's denominator for an unsafe twin (unsafe-path-counters.ts): a seed counts when the twin
// made the access its bug is about — a DMA through a translation whose page's invalidation it had
// already acked at a newer seq (kernel-mm acked-invalidations.ts) — not when read_retry merely said
// stale or an ack merely came early. Such a seed must be caught, and no other seed may be: the
// counter and the checker's stale_translation rule must agree seed by seed.
import { describe, expect, it } from 'vitest';
import sweepOne from '@svmsim/harness/commands/sweep-worker';
import { readScenarioText } from '@svmsim/harness/scenario/load';

const CASES: { scenario: string; policies: Record<string, string>; seeds: number }[] = [
  // read_retry skipped in dmirror_range_fault: ksm's write-protect and writeback's clean races.
  { scenario: 'ksm', policies: { mirror0: 'unsafe-skip-read-retry' }, seeds: 10 },
  { scenario: 'writeback', policies: { mirror0: 'unsafe-skip-read-retry' }, seeds: 10 },
  // userptr acking without waiting for the job's fence.
  { scenario: 'gup-vs-readonly', policies: { gpu0: 'unsafe-userptr' }, seeds: 4 },
];

describe('unsafe twins: the seeds whose bug path was taken are exactly the seeds the checker catches', () => {
  for (const c of CASES) {
    const [dev, policy] = Object.entries(c.policies)[0];
    it(`${c.scenario} under ${dev}=${policy}, seeds 1..${c.seeds}`, async () => {
      const text = readScenarioText(c.scenario);
      let taken = 0;
      for (let seed = 1; seed <= c.seeds; seed++) {
        const o = await sweepOne({ scenario: text, policies: c.policies, seed });
        expect(o.error, `seed ${seed}`).toBeUndefined();
        const stale = o.violations.some((v) => v.includes('stale'));
        expect((o.bugPaths ?? 0) > 0, `seed ${seed}: ${o.bugPaths} bug paths, ${o.violationCount} violations (${o.violations[0] ?? 'none'})`).toBe(o.violationCount > 0);
        if ((o.bugPaths ?? 0) > 0) {
          expect(stale, `seed ${seed}: caught as a stale translation`).toBe(true);
          taken++;
        }
      }
      expect(taken, 'the bug path is taken in some seeds').toBeGreaterThan(0);
    }, 120_000);
  }
});
