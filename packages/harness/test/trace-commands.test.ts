// The trace commands on real runs, spawned as a user types them: analyze names the pages that
// ping-pong and both actors behind them; check prints the kernel's hung-task report down to the
// compute job's fence (and none when the policy does not block); the Perfetto export of every
// built-in run opens (its structure holds); the HTML report renders its plots in Chromium.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { beforeAll, describe, expect, it } from 'vitest';
import { perfettoProblems } from './perfetto-structure.js';

const cli = fileURLToPath(new URL('../dist/cli.js', import.meta.url));
const tmp = () => fs.mkdtempSync(path.join(os.tmpdir(), 'svmsim-trace-cmd-'));

function svmsim(...args: string[]): { code: number; out: string; err: string } {
  const r = spawnSync(process.execPath, [cli, ...args], { cwd: tmp(), encoding: 'utf8', timeout: 240_000, maxBuffer: 1 << 28 });
  return { code: r.status ?? -1, out: r.stdout, err: r.stderr };
}

/** A deterministic run of a built-in, its trace in a fresh directory. */
function run(scenario: string, ...flags: string[]): string {
  const dir = tmp();
  const r = svmsim('run', scenario, '--trace', dir, ...flags);
  expect(r.code, `${scenario} ${flags.join(' ')}: ${r.err}`).toBeLessThanOrEqual(1);
  return dir;
}

describe('svmsim analyze / check on real runs', () => {
  let gup: string;
  beforeAll(() => {
    gup = run('gup-vs-readonly', '--policy', 'gpu0=userptr');
  });

  it('analyze names the pages that ping-pong under userptr and both actors behind them', () => {
    const r = svmsim('analyze', gup, '--json');
    expect(r.code, r.err).toBe(0);
    const a = JSON.parse(r.out);
    expect(a.thrashing.thrashing.gpu0).toBeGreaterThan(0);
    const pairs = a.thrashing.pairs.map((p: { takenBy: string; mappedBy: string }) => `${p.takenBy} → ${p.mappedBy}`);
    expect(pairs).toContain('mm ksmd write_protect_page → gpu0 hmm_range_fault');
    // The gfx userptr BO over the file mapping was refused (ANONONLY): writeback has no GPU page to clean.
    expect(pairs).not.toContain('mm kworker/flush page_vma_mkclean_one → gpu0 hmm_range_fault');
    const top = a.thrashing.top[0];
    expect(top).toMatchObject({ dev: 'gpu0', pid: 1 });
    expect(top.detections).toBeGreaterThan(0);
    expect(Object.keys(top.takenBy)[0]).toMatch(/^mm ksmd write_protect_page$/);
    expect(Object.keys(top.mappedBy)).toEqual(['gpu0 hmm_range_fault']);
    // The text says the same in the terminal.
    const text = svmsim('analyze', gup, '--hist');
    expect(text.code).toBe(0);
    expect(text.out).toMatch(/== ping-pong: UVM thrashing \(threshold 3, lapse 500 µs\) ==/);
    expect(text.out).toMatch(/mm ksmd write_protect_page → gpu0 hmm_range_fault\s+\d+/);
    expect(text.out).toMatch(/@notifier_wait_ns\[gpu0\]:\n\s+\[0\]\s+\d+ \|/);
    expect(text.out).toMatch(/who waited on whom/);
  });

  it('analyze names writeback behind the ping-pong under KFD userptr (preempt), which takes the file mapping (v6.6: -EBUSY retried within its budget)', () => {
    const r = svmsim('analyze', run('gup-vs-readonly', '--policy', 'gpu0=preempt', '--kernel', 'v6.6'), '--json');
    expect(r.code, r.err).toBe(0);
    const a = JSON.parse(r.out);
    expect(a.thrashing.thrashing.gpu0).toBeGreaterThan(0);
    const pairs = a.thrashing.pairs.map((p: { takenBy: string; mappedBy: string }) => `${p.takenBy} → ${p.mappedBy}`);
    expect(pairs).toContain('mm kworker/flush page_vma_mkclean_one → gpu0 hmm_range_fault');
  });

  it('check prints the hung-task report of kswapd-vs-compute under userptr on v4.9 (no compute job timeout), down to the compute job\'s fence', () => {
    const dir = run('kswapd-vs-compute', '--policy', 'gpu0=userptr', '--kernel', 'v4.9');
    const r = svmsim('check', dir);
    expect(r.code, r.err).toBe(0);
    expect(r.out).toContain('INFO: task kswapd0 blocked for more than 120 seconds.');
    expect(r.out).toMatch(/INFO: task kswapd0 is blocked on mmu_notifier invalidate of \[0x[0-9a-f]+, 0x[0-9a-f]+\) \(clear\) likely waited by gpu0/);
    expect(r.out).toMatch(/gpu0: amdgpu_hmm_invalidate_gfx waits for fence 1 of job 1 \(compute, running since t=[\d.]+ µs/);
    expect(r.out).toMatch(/INFO: task other:2 blocked for more than 120 seconds\./);
    expect(r.out).toContain('violations: none');
    const report = JSON.parse(fs.readFileSync(path.join(dir, 'report.json'), 'utf8'));
    expect(report.check.hungTasks).toBe(3);
  });

  it('check reads a thread-mode trace (a file per actor) and finds the same hung kswapd0, whatever the interleaving', () => {
    const dir = run('kswapd-vs-compute', '--policy', 'gpu0=userptr', '--kernel', 'v4.9', '--threads');
    expect(fs.readdirSync(dir).filter((f) => f.endsWith('.svmt')).sort()).toEqual(['app.svmt', 'gpu0.svmt', 'mm.svmt', 'nvme.svmt', 'scheduler.svmt']);
    const r = svmsim('check', dir);
    expect(r.code, r.err).toBe(0);
    expect(r.out).toContain('INFO: task kswapd0 blocked for more than 120 seconds.');
    expect(r.out).toMatch(/gpu0: amdgpu_hmm_invalidate_gfx waits for fence 1 of job 1 \(compute, running since/);
  });

  it('check prints no hung task for kswapd-vs-compute under userptr on the latest kernel: the stall ends at the 2 s lockup timeout, the job soft-recovered (amdgpu_job_timedout)', () => {
    const dir = run('kswapd-vs-compute', '--policy', 'gpu0=userptr');
    const r = svmsim('check', dir);
    expect(r.code, r.err).toBe(0);
    expect(r.out).toContain('hung tasks: none blocked longer than 2m');
    const report = JSON.parse(fs.readFileSync(path.join(dir, 'report.json'), 'utf8'));
    expect(report.kernel).toBe('latest');
    expect(report.mm.kswapdBlockedNs).toBeGreaterThan(1.9e9);
    expect(report.mm.kswapdBlockedNs).toBeLessThan(2.1e9);
    expect(report.devices.gpu0.softRecoveries).toBe(1);
    expect(report.devices.gpu0.jobsLost).toEqual({ ENODATA: 1 });
    const timedOut = svmsim('trace', 'cat', dir, '--ev', 'gpu_job_timedout');
    expect(timedOut.out).toMatch(/"fn":"amdgpu_job_timedout"/);
    expect(timedOut.out).toMatch(/"timeoutNs":2000000000/);
  });

  it('check prints no hung task for kswapd-vs-compute under svm-fault', () => {
    const dir = run('kswapd-vs-compute', '--policy', 'gpu0=svm-fault');
    const r = svmsim('check', dir);
    expect(r.code, r.err).toBe(0);
    expect(r.out).toContain('hung tasks: none blocked longer than 2m');
    expect(r.out).not.toContain('INFO: task');
  });

  it('check fails an unsafe policy\'s trace and shows the lines that prove it', () => {
    const dir = run('gup-vs-readonly', '--policy', 'gpu0=unsafe-userptr');
    const r = svmsim('check', dir);
    expect(r.code).toBe(1);
    expect(r.out).toMatch(/stale_translation: gpu0 dma_(read|write)/);
    expect(r.out).toMatch(/#\d+ \{"t":[\d.]+,"actor":"mm","ev":"invalidate_start"/);
    expect(r.out).toMatch(/#\d+ \{"t":[\d.]+,"actor":"mm","ev":"invalidate_ack"/);
    expect(r.out).toContain('check: FAILED');
  });

  it('trace cat prints the trace as NDJSON, filtered', () => {
    const r = svmsim('trace', 'cat', gup, '--ev', 'invalidate_start', '--to', '2ms');
    expect(r.code, r.err).toBe(0);
    const lines = r.out.trim().split('\n').map((l) => JSON.parse(l));
    expect(lines.length).toBeGreaterThan(0);
    expect(lines.every((l) => l.ev === 'invalidate_start' && l.t <= 2e6 && typeof l.task === 'string')).toBe(true);
  });

  it('gives one-line errors for bad traces and flags (exit 2)', () => {
    for (const [args, msg] of [
      [['analyze', '/nonexistent/run'], /\/nonexistent\/run: no such trace directory or file/],
      [['analyze', gup, '--threshold', '8'], /--threshold 8: expected a whole number from 1 to 7/],
      [['analyze', gup, '--lapse', 'soon'], /--lapse: /],
      [['check', gup, '--hung-task-timeout', '-5s'], /--hung-task-timeout/],
      [['export', gup], /say which format: --perfetto/],
      [['export', gup, '--perfetto'], /-o FILE is required/],
      [['report', gup], /-o FILE is required/],
    ] as const) {
      const r = svmsim(...args);
      expect(r.code, args.join(' ')).toBe(2);
      expect(r.err.trim().split('\n')).toHaveLength(1);
      expect(r.err).toMatch(msg);
    }
  });
});

describe('the README\'s examples of the trace commands', () => {
  const readme = fs.readFileSync(fileURLToPath(new URL('../README.md', import.meta.url)), 'utf8');
  /** The lines of the README's example under `heading` that carry figures of a deterministic run. */
  const documented = (heading: string, keep: RegExp): string[] => {
    const part = readme.slice(readme.indexOf(heading));
    const block = part.slice(part.indexOf('```') + 3, part.indexOf('```', part.indexOf('```') + 3));
    return block.split('\n').filter((l) => keep.test(l) && !l.includes('…'));
  };

  it('analyze prints what the README shows for gup-vs-readonly', () => {
    // The gfx userptr run (kernel latest): only the KSM BO exists, its first page at 0x1040000.
    const lines = documented('### `svmsim analyze`', /thrashing detections|→ gpu0 hmm_range_fault|^\s+(kworker\/flush|ksmd) +gpu0 |^\s+gpu0 +1 +0x1040000 /);
    expect(lines.length).toBeGreaterThanOrEqual(4);
    const out = svmsim('analyze', run('gup-vs-readonly')).out.split('\n');
    for (const l of lines) expect(out, l).toContain(l);
  });

  it('check prints what the README shows for kswapd-vs-compute', () => {
    const lines = documented('### `svmsim check`', /^(INFO: task|gpu0: amdgpu|task:|"echo 0)/);
    expect(lines.length).toBeGreaterThanOrEqual(5);
    const out = svmsim('check', run('kswapd-vs-compute', '--kernel', 'v4.9')).out.split('\n');
    for (const l of lines) expect(out, l).toContain(l);
  });
});

describe('svmsim export --perfetto', () => {
  const builtins = svmsimList();

  function svmsimList(): string[] {
    const r = spawnSync(process.execPath, [cli, 'list'], { encoding: 'utf8' });
    // The first block only: the real reports below it (reports.test.ts) run simulated minutes and some end hung by design.
    return r.stdout.trim().split('\n\n')[0].split('\n').map((l) => l.split(/\s+/)[0]);
  }

  it('lists the built-in scenarios', () => expect(builtins.length).toBeGreaterThanOrEqual(9));

  it.each(builtins)('the export of %s opens: schema, nesting, flows with both ends bound inside slices', (scenario) => {
    const dir = run(scenario);
    const out = path.join(tmp(), 'trace.json');
    const r = svmsim('export', dir, '--perfetto', '-o', out);
    expect(r.code, r.err).toBe(0);
    const { problems, slices, flows } = perfettoProblems(JSON.parse(fs.readFileSync(out, 'utf8')));
    expect(problems).toEqual([]);
    expect(slices).toBeGreaterThan(0);
    expect(flows).toBeGreaterThan(0);
  });

  it('catches what Perfetto would reject (the structure check itself can fail)', () => {
    const bad = {
      traceEvents: [
        { ph: 'M', name: 'process_name', pid: 1, args: { name: 'mm' } },
        { ph: 'M', name: 'thread_name', pid: 1, tid: 1, args: { name: 't' } },
        { ph: 'X', name: 'a', cat: 'c', ts: 0, dur: 10, pid: 1, tid: 1 },
        { ph: 'X', name: 'b', cat: 'c', ts: 5, dur: 10, pid: 1, tid: 1 },
        { ph: 's', name: 'm', cat: 'flow', id: 1, ts: 1, pid: 1, tid: 1 },
        { ph: 's', name: 'm', cat: 'flow', id: 2, ts: 50, pid: 1, tid: 1 },
        { ph: 'f', bp: 'e', name: 'm', cat: 'flow', id: 2, ts: 6, pid: 1, tid: 1 },
        { ph: 'f', bp: 'e', name: 'm', cat: 'flow', id: 3, ts: 2, pid: 1, tid: 1 },
        { ph: 's', name: 'm', cat: 'flow', id: 3, ts: 2, pid: 1, tid: 1 },
      ],
    };
    const { problems } = perfettoProblems(bad);
    expect(problems.some((p) => /overlaps .* without nesting/.test(p))).toBe(true);
    expect(problems).toContain('flow 1: 1 start(s) and 0 end(s)');
    expect(problems.some((p) => /flow 2: its s at 50 µs .* inside no slice/.test(p))).toBe(true);
    expect(problems).toContain('flow 3: its end comes before its start');
    expect(perfettoProblems({ traceEvents: [{ ph: 'B', name: 'x' }] }).problems[0]).toMatch(/^schema/);
  });
});

describe('svmsim report (HTML) in Chromium', () => {
  const chromium = ['/usr/bin/chromium', '/usr/bin/chromium-browser'].find((p) => fs.existsSync(p));

  /** Each figure of a page, with how many data marks (not axes or grid lines) its plot drew. */
  async function renderedPlots(html: string): Promise<{ errors: string[]; figs: { plot: string; marks: number; empty: boolean }[] }> {
    const { chromium: pw } = await import('playwright-core');
    const browser = await pw.launch({
      executablePath: chromium,
      args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    });
    try {
      const page = await browser.newPage();
      const errors: string[] = [];
      page.on('console', (m) => m.type() === 'error' && errors.push(m.text()));
      page.on('pageerror', (e) => errors.push(String(e)));
      // Anything fetched from the network would be a bug: the page must be self-contained.
      await page.route('**/*', (route) => (route.request().url().startsWith('file:') ? route.continue() : route.abort()));
      await page.goto(`file://${html}`);
      await page.waitForSelector('body[data-rendered="true"]', { timeout: 30_000 });
      const figs = await page.$$eval('figure[data-plot]', (fs) => fs.map((f) => ({
        plot: (f as HTMLElement).dataset.plot!,
        marks: f.querySelectorAll('svg g[aria-label="dot"] circle, svg g[aria-label="bar"] rect, svg g[aria-label="line"] path').length,
        empty: f.querySelector('[data-empty]') !== null,
      })));
      return { errors, figs };
    } finally {
      await browser.close();
    }
  }

  it.skipIf(chromium === undefined)('renders every plot of a run\'s report with its data, and no console error', async () => {
    const dir = run('gup-vs-readonly');
    const html = path.join(tmp(), 'report.html');
    const r = svmsim('report', dir, '-o', html);
    expect(r.code, r.err).toBe(0);
    expect(fs.readFileSync(html, 'utf8')).not.toMatch(/<script[^>]+src=|<link[^>]+href="http/); // self-contained
    const { errors, figs } = await renderedPlots(html);
    expect(errors).toEqual([]);
    expect(figs.map((f) => f.plot)).toEqual(['notifier-wait', 'fault-latency', 'memory', 'ping-pong']);
    for (const f of figs) expect(f.marks, f.plot).toBeGreaterThan(0);
    expect(figs[0].marks).toBeGreaterThan(100); // a dot per invalidation's ack (thinned to at most 4096)
  });

  it.skipIf(chromium === undefined)('renders compare --html with a bar per policy', async () => {
    const out = tmp();
    expect(svmsim('compare', 'kswapd-vs-compute', '--html', out).code).toBe(0);
    const { errors, figs } = await renderedPlots(path.join(out, 'index.html'));
    expect(errors).toEqual([]);
    const bars = figs.filter((f) => f.plot === 'compare');
    expect(bars.length).toBeGreaterThan(0);
    for (const b of bars) expect(b.marks).toBe(7); // userptr, pin, preempt, svm-fault, kfd-svm, uvm, gpusvm
    expect(figs.filter((f) => f.plot === 'notifier-wait')).toHaveLength(7); // one section per run (a policy each)
  });

  it.skipIf(chromium !== undefined)('is skipped: no Chromium at /usr/bin/chromium (apt-get install chromium; .ci/run installs it)', () => {
    // CI sets SVMSIM_REQUIRE_CHROMIUM: there the browser test must run, never skip.
    expect(process.env.SVMSIM_REQUIRE_CHROMIUM, 'Chromium is required here but not installed').toBeUndefined();
  });

  it('compare --html writes one page with the policies side by side', () => {
    const out = tmp();
    const r = svmsim('compare', 'kswapd-vs-compute', '--kernel', 'v4.9', '--html', out);
    expect(r.code, r.err).toBe(0);
    expect(r.out).toMatch(/HTML: .*index\.html/);
    const page = fs.readFileSync(path.join(out, 'index.html'), 'utf8');
    const data = JSON.parse(page.match(/<script type="application\/json" id="svmsim-data">([\s\S]*?)<\/script>/)![1]);
    expect(data.runs.map((x: { name: string }) => x.name)).toEqual(expect.arrayContaining([expect.stringMatching(/^kswapd-vs-compute · userptr/)]));
    const kswapd = data.comparison.filter((c: { figure: string }) => c.figure === 'kswapd blocked in notifiers');
    expect(kswapd.find((c: { policy: string }) => c.policy === 'userptr').value).toBeGreaterThan(3000); // an hour, in s
    expect(kswapd.find((c: { policy: string }) => c.policy === 'svm-fault').value).toBe(0);
  });
});
