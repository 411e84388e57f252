// Every figure of `svmsim analyze` and `check` on small hand-made traces whose right answers are
// worked out by hand in the comments.
import { describe, expect, it } from 'vitest';
import { FOLL_LONGTERM, FOLL_PIN, FOLL_WRITE, HMM_PFN_VALID, HMM_PFN_WRITE } from '@svmsim/kernel-mm';
import { histLines } from '../src/analysis/bpftrace-hist.js';
import { BlockedTime } from '../src/analysis/blocked-time.js';
import { checkTraceDir } from '../src/analysis/check.js';
import { Distribution, EXACT_SAMPLES_MAX, pow2Buckets } from '../src/analysis/distribution.js';
import { readModel } from '../src/analysis/model.js';
import { Series } from '../src/analysis/series.js';
import { HEAT_BINS } from '../src/analysis/thrashing.js';
import { summarize } from '../src/analysis/summary.js';
import { TraceBuilder } from './trace-builder.js';

const analyze = (dir: string, opts = {}) => summarize(dir, readModel(dir, opts), 10);
const US = 1e3;

describe('distributions and histograms', () => {
  it('gives exact nearest-rank percentiles while small, and within 1/64 once bucketed', () => {
    const d = new Distribution();
    for (const v of [300, 100, 400, 200]) d.add(v);
    expect(d.summary()).toMatchObject({ count: 4, p50: 200, p99: 400, max: 400, sum: 1000, exact: true });
    const big = new Distribution();
    const n = EXACT_SAMPLES_MAX + 30_000;
    for (let i = 1; i <= n; i++) big.add(i);
    const s = big.summary();
    expect(s.exact).toBe(false);
    expect(Math.abs(s.p50 - Math.ceil(n / 2)) / (n / 2)).toBeLessThan(1 / 64);
    expect(Math.abs(s.p99 - Math.ceil(n * 0.99)) / n).toBeLessThan(1 / 64);
    expect(s.max).toBe(n);
  });

  it('prints power-of-two buckets as bpftrace hist() does', () => {
    const d = new Distribution();
    for (const v of [0, 1, 3, 4096, 5000]) d.add(v);
    expect(pow2Buckets(d).map((b) => [b.lo, b.count])).toEqual([[0, 1], [1, 1], [2, 1], [4, 0], [8, 0], [16, 0], [32, 0], [64, 0], [128, 0], [256, 0], [512, 0], [1024, 0], [2048, 0], [4096, 2]]);
    const lines = histLines('lat_ns', pow2Buckets(d));
    expect(lines[0]).toBe('@lat_ns:');
    expect(lines[1]).toBe(`[0]                    1 |${'@'.repeat(26).padEnd(52)}|`);
    expect(lines[3]).toBe(`[2, 4)                 1 |${'@'.repeat(26).padEnd(52)}|`);
    expect(lines[lines.length - 1]).toBe(`[4K, 8K)               2 |${'@'.repeat(52)}|`);
  });

  it('keeps a series bounded, thinned evenly, without losing its peaks', () => {
    const s = new Series('max', 16);
    for (let i = 0; i < 1000; i++) s.add(i, i === 500 ? 99 : 1);
    const p = s.points();
    expect(p.t.length).toBeLessThanOrEqual(32);
    expect(Math.max(...p.v)).toBe(99);
  });
});

describe('analyze on hand-made traces', () => {
  it('measures request latency at the requester and counts messages; a request never answered is open', () => {
    const b = new TraceBuilder();
    const id = b.request(100, 'gpu0', 'mm', { type: 'hmm_range_fault', sub: 1, start: 0x1000, end: 0x3000 }, 150);
    b.reply(300, 'mm', 'gpu0', id, { type: 'hmm_range_fault_result', ret: 0, pfns: [5, 6], flags: [3, 3] }, 350);
    b.request(400, 'app', 'mm', { type: 'cpu_access', pid: 1, addr: 0x1000, write: false });
    b.send(410, 'gpu0', 'mm', { type: 'dma_access', dev: 'gpu0', pid: 1, addr: 0x1000, pfn: 5, write: true, value: 9 });
    const a = analyze(b.write());
    expect(a.requests).toEqual([expect.objectContaining({ type: 'hmm_range_fault', requester: 'gpu0', handler: 'mm', count: 1, p50: 250, p99: 250, max: 250 })]);
    expect(a.openRequests).toBe(1);
    expect(a.actors.gpu0).toEqual({ out: { hmm_range_fault: 1, dma_access: 1 }, in: { hmm_range_fault_result: 1 } });
    expect(a.actors.mm.in).toEqual({ hmm_range_fault: 1, cpu_access: 1, dma_access: 1 });
  });

  it('counts a task blocked in overlapping waits once', () => {
    const b = new BlockedTime();
    b.begin('kworker/flush', 0);
    b.begin('kworker/flush', 5);
    b.end('kworker/flush', 10);
    b.end('kworker/flush', 20);
    b.begin('kworker/flush', 30);
    b.begin('ksmd', 31);
    expect(Object.fromEntries(b.byTask(40))).toEqual({ 'kworker/flush': 30, ksmd: 9 });
  });

  it('says who waited on whom in each invalidation, by event, device and task', () => {
    const b = new TraceBuilder();
    b.event(0, 'mm', 'mmu_interval_notifier_insert', { sub: 1, pid: 1, start: 0, last: 0xfffff, dev: 'gpu0' });
    b.event(0, 'mm', 'mmu_interval_notifier_insert', { sub: 2, pid: 1, start: 0, last: 0xfffff, dev: 'mirror0' });
    const inv = { pid: 1, start: 0x1000, end: 0x2000, blockable: true, owner: null, cur_seq: 3 };
    b.event(1000, 'mm', 'invalidate_start', { inv: 1, ...inv, event: 'MMU_NOTIFY_CLEAR', subs: [1, 2], task: 'kswapd0', caller: 'try_to_unmap_one' });
    b.event(3000, 'mm', 'invalidate_ack', { inv: 1, sub: 2, dev: 'mirror0', ok: true });
    b.event(11000, 'mm', 'invalidate_ack', { inv: 1, sub: 1, dev: 'gpu0', ok: true });
    b.event(11000, 'mm', 'invalidate_end', { inv: 1 });
    b.event(20000, 'mm', 'invalidate_start', { inv: 2, ...inv, event: 'MMU_NOTIFY_UNMAP', subs: [1], task: 'app:1', caller: 'unmap_vmas' });
    b.event(20500, 'mm', 'invalidate_ack', { inv: 2, sub: 1, dev: 'gpu0', ok: true });
    b.event(21000, 'mm', 'invalidate_end', { inv: 2 });
    b.event(22000, 'mm', 'invalidate_start', { inv: 3, ...inv, event: 'MMU_NOTIFY_CLEAR', subs: [], task: 'ksmd', caller: 'write_protect_page' });
    const a = analyze(b.write());
    const who = Object.fromEntries(a.invalidations.whoWaitedOnWhom.map((w) => [`${w.task}→${w.dev}`, [w.wait.count, w.wait.max]]));
    expect(who).toEqual({ 'kswapd0→gpu0': [1, 10000], 'kswapd0→mirror0': [1, 2000], 'app:1→gpu0': [1, 500] });
    expect(a.invalidations).toMatchObject({ total: 3, byEvent: { clear: 2, unmap: 1 }, withSubscribers: 2, withoutSubscribers: 1, refused: 0 });
    expect(a.invalidations.duration).toMatchObject({ count: 2, p50: 1000, max: 10000 });
    expect(a.invalidations.blockedByTaskNs).toEqual({ kswapd0: 10000, 'app:1': 500 });
  });

  /**
   * Page 0x1000 of gpu0 (sub 1), in one 2 MiB block; events at these µs (r = remap by an
   * hmm_range_fault answer marking it valid, v = revoke by an acked invalidation):
   *   0 r: the block has no history → per-page tracking not started (uvm_perf_thrashing.c)
   *  100 v: the block's last event was another processor's within the lapse → tracking starts; page stamped
   *  200 r: count 1     250 r again: already mapped, not an event
   *  300 v: 2    400 r: 3 = threshold → one detection    500 v: 4
   * 2000 r: 1500 µs after its last event, a thrashing page is reset     2100 v: stamped     2200 r: 1
   * With threshold 7 the count never gets there; with 5 it does at 2100, since a page below the
   * threshold keeps its count across the long gap (as UVM does).
   */
  function pingPong(): string {
    const b = new TraceBuilder();
    b.event(0, 'mm', 'mmu_interval_notifier_insert', { sub: 1, pid: 1, start: 0, last: 0x7fffffff, dev: 'gpu0' });
    let inv = 0;
    const remap = (us: number, page = 0x1000) => {
      const id = b.request(us * US, 'gpu0', 'mm', { type: 'hmm_range_fault', sub: 1, start: page, end: page + 0x1000 });
      b.reply(us * US, 'mm', 'gpu0', id, { type: 'hmm_range_fault_result', ret: 0, pfns: [7], flags: [HMM_PFN_VALID | HMM_PFN_WRITE] });
    };
    const revoke = (us: number, page = 0x1000) => {
      inv++;
      b.event(us * US, 'mm', 'invalidate_start', { inv, pid: 1, start: page, end: page + 0x1000, event: 'MMU_NOTIFY_PROTECTION_PAGE', blockable: true, owner: null, cur_seq: 2 * inv + 1, subs: [1], task: 'kworker/flush', caller: 'page_vma_mkclean_one' });
      b.event(us * US, 'mm', 'invalidate_ack', { inv, sub: 1, dev: 'gpu0', ok: true });
      b.event(us * US, 'mm', 'invalidate_end', { inv });
    };
    remap(0); revoke(100); remap(200); remap(250); revoke(300); remap(400); revoke(500); remap(2000); revoke(2100); remap(2200);
    // Another block: two events, never tracked.
    remap(10, 0x300000); revoke(20, 0x300000);
    return b.write();
  }

  it('detects thrashing as UVM does, and names who took each page and who mapped it again', () => {
    const a = analyze(pingPong());
    const t = a.thrashing;
    expect(t.options).toEqual({ threshold: 3, lapseNs: 500_000 });
    expect(t.thrashing).toEqual({ gpu0: 1 });
    expect(t.events).toBe(11);
    expect(t.top[0]).toMatchObject({ dev: 'gpu0', pid: 1, addr: 0x1000, events: 9, revokes: 4, remaps: 5, detections: 1, firstT: 0, lastT: 2200 * US });
    expect(t.top[0].ratePerS).toBeCloseTo((8 / (2200 * US)) * 1e9, 6);
    expect(t.top[0].takenBy).toEqual({ 'mm kworker/flush page_vma_mkclean_one': 4 });
    expect(t.top[0].mappedBy).toEqual({ 'gpu0 hmm_range_fault': 5 });
    expect(t.pairs).toEqual([{ takenBy: 'mm kworker/flush page_vma_mkclean_one', mappedBy: 'gpu0 hmm_range_fault', count: 4 }]);
    expect(t.top[1]).toMatchObject({ addr: 0x300000, events: 2, detections: 0 });
  });

  it('keeps its heat map to HEAT_BINS slices of the whole span, pages that moved once included', () => {
    const b = new TraceBuilder();
    b.event(0, 'mm', 'mmu_interval_notifier_insert', { sub: 1, pid: 1, start: 0, last: 0x7fffffff, dev: 'gpu0' });
    const remap = (t: number, page: number) => {
      const id = b.request(t, 'gpu0', 'mm', { type: 'hmm_range_fault', sub: 1, start: page, end: page + 0x1000 });
      b.reply(t, 'mm', 'gpu0', id, { type: 'hmm_range_fault_result', ret: 0, pfns: [7], flags: [HMM_PFN_VALID] });
    };
    remap(0, 0x1000);
    remap(3.6e12, 0x2000); // an hour later, another page, once
    const dir = b.write();
    const run = readModel(dir);
    const top = summarize(dir, run, 10).thrashing.top;
    const hm = run.model.thrashing.heatMap(top);
    expect(hm.rows.map((r) => r.counts.length)).toEqual([HEAT_BINS, HEAT_BINS]);
    expect(hm.rows.map((r) => r.counts.reduce((x, y) => x + y, 0))).toEqual([1, 1]);
    expect(hm.binNs * HEAT_BINS).toBeGreaterThan(3.6e12);
  });

  it('takes threshold and lapse as options', () => {
    const dir = pingPong();
    expect(analyze(dir, { thrashing: { threshold: 7, lapseNs: 500_000 } }).thrashing.thrashing).toEqual({});
    expect(analyze(dir, { thrashing: { threshold: 5, lapseNs: 500_000 } }).thrashing.top[0].detections).toBe(1);
    // A lapse shorter than every gap: nothing is ever consecutive.
    expect(analyze(dir, { thrashing: { threshold: 1, lapseNs: 50_000 } }).thrashing.thrashing).toEqual({});
  });

  it('counts gup and pins and measures how long each frame stayed pinned', () => {
    const b = new TraceBuilder();
    b.event(0, 'mm', 'pin_user_pages', { pid: 1, start: 0x1000, nr_pages: 2, gup_flags: FOLL_PIN | FOLL_LONGTERM | FOLL_WRITE, by: 'gpu0', pfns: [5, 6] });
    b.event(100, 'mm', 'get_user_pages', { pid: 1, start: 0x1000, nr_pages: 1, gup_flags: 0, by: 'nvme0', pfns: [5] });
    b.event(1000, 'mm', 'unpin_user_pages', { by: 'gpu0', pfns: [5], make_dirty: true });
    b.event(1100, 'mm', 'put_user_pages', { by: 'nvme0', pfns: [5], make_dirty: false });
    // Two takers pin frame 7; the later one lets go first: each hold is its own taker's.
    b.event(2000, 'mm', 'pin_user_pages', { pid: 1, start: 0x9000, nr_pages: 1, gup_flags: FOLL_PIN, by: 'gpu1', pfns: [7] });
    b.event(2100, 'mm', 'pin_user_pages', { pid: 1, start: 0x9000, nr_pages: 1, gup_flags: FOLL_PIN, by: 'nvme1', pfns: [7] });
    b.event(2200, 'mm', 'unpin_user_pages', { by: 'nvme1', pfns: [7], make_dirty: false });
    b.event(4000, 'mm', 'unpin_user_pages', { by: 'gpu1', pfns: [7], make_dirty: false });
    b.event(5000, 'mm', 'mm_counters', { free: 10, pinned: 1, swap_used: 0, rss_anon: 2, rss_file: 0 });
    const a = analyze(b.write());
    expect(a.pins.byRequester.gpu1.pin.hold).toMatchObject({ count: 1, max: 2000 });
    expect(a.pins.byRequester.nvme1.pin.hold).toMatchObject({ count: 1, max: 100 });
    expect(a.pins.byRequester.gpu0.pin).toMatchObject({ calls: 1, pages: 2, longterm: 1, hold: { count: 1, max: 1000 } });
    expect(a.pins.byRequester.nvme0.get).toMatchObject({ calls: 1, pages: 1, longterm: 0, hold: { count: 1, max: 1000 } });
    expect(a.pins.stillHeld).toEqual({ 'gpu0 pin': expect.objectContaining({ count: 1, max: 5000 }) });
  });

  it('follows reclaim, allocation stalls, the OOM killer and faults', () => {
    const b = new TraceBuilder();
    b.event(0, 'mm', 'mm_vmscan_kswapd_wake', { free: 3, low: 6 });
    b.event(100, 'mm', 'mm_vmscan_direct_reclaim_begin', { task: 'other:2', free: 1 });
    b.event(900, 'mm', 'mm_vmscan_direct_reclaim_end', { task: 'other:2', nr_reclaimed: 4, free: 5 });
    b.event(900, 'mm', 'alloc_stall', { task: 'other:2', ns: 3000, ok: true });
    b.event(7000, 'mm', 'mm_vmscan_kswapd_sleep', { free: 20, failures: 0, nr_reclaimed: 32 });
    b.event(8000, 'mm', 'oom_kill', { pid: 3, comm: 'hog', badness: 900, rss: 120, free: 0 });
    b.event(8000, 'mm', 'page_fault', { pid: 1, addr: 0x1000, write: true, remote: false, kind: 'anonymous', ret: 0, ns: 100 });
    b.event(8100, 'mm', 'page_fault', { pid: 1, addr: 0x2000, write: true, remote: false, kind: 'anonymous', ret: 0, ns: 300 });
    b.event(8200, 'mm', 'page_fault', { pid: 1, addr: 0x3000, write: true, remote: true, kind: 'write_protect', ret: 0, ns: 50 });
    b.event(8300, 'gpu0', 'gpu_retry_fault', { job: 1, pid: 1, addr: 0x4000, write: false });
    b.event(8300, 'gpu0', 'gpu_retry_fault', { job: 1, pid: 1, addr: 0x5000, write: false });
    b.event(9200, 'gpu0', 'gpu_fault_replay', { faults: 2, resolved: 2, ns: [700, 900] });
    const a = analyze(b.write());
    expect(a.reclaim.kswapd).toEqual({ runs: 1, awakeNs: 7000, reclaimed: 32, blockedNs: 0 });
    expect(a.reclaim.direct).toEqual({ rounds: 1, reclaimed: 4, byTask: { 'other:2': { rounds: 1, reclaimed: 4 } } });
    expect(a.reclaim.allocStall).toMatchObject({ count: 1, max: 3000 });
    expect(a.oom.kills).toEqual([{ t: 8000, pid: 3, comm: 'hog', rss: 120, badness: 900 }]);
    expect(a.faults.cpu.anonymous).toMatchObject({ count: 2, p50: 100, max: 300 });
    expect(a.faults.remote.write_protect).toMatchObject({ count: 1, max: 50 });
    expect(a.faults.device.gpu0).toMatchObject({ raised: 2, batches: 1, resolved: 2, latency: { count: 2, p50: 700, max: 900 } });
  });
});

describe('check on hand-made traces', () => {
  /** kswapd0 waits from t=1 µs in an invalidation gpu0 acks only when job 4 (the second job on its compute ring) ends, an hour later. */
  function hungKswapd(ackAtNs: number): string {
    const b = new TraceBuilder();
    b.event(0, 'mm', 'mmu_interval_notifier_insert', { sub: 1, pid: 1, start: 0x7f0000000000, last: 0x7f00000fffff, dev: 'gpu0' });
    b.event(0, 'gpu0', 'gpu_job_queued', { job: 3, queue: 'gfx', bos: [1] });
    b.event(5, 'gpu0', 'gpu_job_queued', { job: 9, queue: 'compute', bos: [2] });
    b.event(10, 'gpu0', 'gpu_job_queued', { job: 4, queue: 'compute', bos: [1] });
    b.event(50, 'gpu0', 'gpu_job_start', { job: 4, queue: 'compute', durationNs: 3.6e12, waves: 16 });
    b.event(1000, 'mm', 'invalidate_start', { inv: 7, pid: 1, start: 0x7f0000000000, end: 0x7f0000001000, event: 'MMU_NOTIFY_CLEAR', blockable: true, owner: null, cur_seq: 3, subs: [1], task: 'kswapd0', caller: 'try_to_unmap_one' });
    b.event(1000, 'gpu0', 'gpu_invalidate_wait', { fn: 'amdgpu_hmm_invalidate_gfx', sub: 1, handle: 1, jobs: [4] });
    b.event(2000, 'mm', 'invalidate_start', { inv: 8, pid: 1, start: 0x7f0000001000, end: 0x7f0000002000, event: 'MMU_NOTIFY_CLEAR', blockable: true, owner: null, cur_seq: 3, subs: [1], task: 'ksmd', caller: 'write_protect_page' });
    b.event(3000, 'mm', 'invalidate_ack', { inv: 8, sub: 1, dev: 'gpu0', ok: true });
    b.event(3000, 'mm', 'invalidate_end', { inv: 8 });
    b.event(200e9, 'mm', 'mm_counters', { free: 1, pinned: 0, swap_used: 0, rss_anon: 0, rss_file: 0 });
    b.event(ackAtNs, 'gpu0', 'gpu_job_end', { job: 4, queue: 'compute', accesses: 1, faults: 0 });
    b.event(ackAtNs, 'gpu0', 'gpu_invalidate_done', { sub: 1, handle: 1, cleared: 1, waitedNs: ackAtNs - 1000 });
    b.event(ackAtNs, 'mm', 'invalidate_ack', { inv: 7, sub: 1, dev: 'gpu0', ok: true });
    b.event(ackAtNs, 'mm', 'invalidate_end', { inv: 7 });
    return b.write();
  }

  it('reports a task blocked past hung_task_timeout_secs as the kernel does, with its chain down to the fence', () => {
    const c = checkTraceDir(hungKswapd(3.6e12 + 50));
    expect(c.hung).toHaveLength(1);
    const h = c.hung[0];
    expect(h).toMatchObject({ task: 'kswapd0', inv: 7, blockedSinceT: 1000, reportedAtT: 120e9 + 1000, blockedNs: 3.6e12 + 50 - 1000, stillBlockedAtEnd: false, waitedBy: ['gpu0'] });
    expect(h.text[0]).toBe('INFO: task kswapd0 blocked for more than 120 seconds.');
    expect(h.text).toContain('"echo 0 > /proc/sys/kernel/hung_task_timeout_secs" disables this message.');
    expect(h.text).toContain(' try_to_unmap_one');
    expect(h.text).toContain('INFO: task kswapd0 is blocked on mmu_notifier invalidate of [0x7f0000000000, 0x7f0000001000) (clear) likely waited by gpu0');
    expect(h.text.some((l) => l.startsWith('gpu0: amdgpu_hmm_invalidate_gfx waits for fence 2 of job 4 (compute, running since t=50 ns'))).toBe(true);
    expect(c.ok).toBe(true); // a warning, not a violation
    // hung_task_timeout_secs as an option: an hour is more than kswapd0 waited.
    expect(checkTraceDir(hungKswapd(3.6e12 + 50), { hungTask: { timeoutNs: 3.6e12, warningsMax: 10 } }).hung).toHaveLength(0);
  });

  it('keeps in memory only the waits still open, however many invalidations the trace holds', () => {
    const b = new TraceBuilder();
    b.event(0, 'mm', 'mmu_interval_notifier_insert', { sub: 1, pid: 1, start: 0, last: 0xffff, dev: 'gpu0' });
    for (let inv = 1; inv <= 30_000; inv++) {
      b.event(inv * 10, 'mm', 'invalidate_start', { inv, pid: 1, start: 0, end: 0x1000, event: 'MMU_NOTIFY_CLEAR', blockable: true, owner: null, cur_seq: 1, subs: [1], task: 'ksmd', caller: 'write_protect_page' });
      b.event(inv * 10 + 5, 'mm', 'invalidate_ack', { inv, sub: 1, dev: 'gpu0', ok: true });
      b.event(inv * 10 + 5, 'mm', 'invalidate_end', { inv });
    }
    const { model } = readModel(b.write());
    expect(model.invalidations.open.size).toBe(0);
    expect((model.hung as unknown as { queue: unknown[] }).queue.length).toBeLessThan(10_000);
    expect(model.invalidations.duration.count).toBe(30_000);
  });

  /** mm waits for gpu0's ack while gpu0 waits for mm: a cycle, the trace ending `endNs` later. */
  function cycle(endNs: number): string {
    const b = new TraceBuilder();
    b.event(0, 'mm', 'mmu_interval_notifier_insert', { sub: 1, pid: 1, start: 0, last: 0xffff, dev: 'gpu0' });
    b.event(10, 'mm', 'invalidate_start', { inv: 1, pid: 1, start: 0, end: 0x1000, event: 'MMU_NOTIFY_CLEAR', blockable: true, owner: null, cur_seq: 1, subs: [1], task: 'app:1', caller: 'zap_page_range_single' });
    b.request(10, 'mm', 'gpu0', { type: 'invalidate', sub: 1, pid: 1, start: 0, end: 0x1000, event: 'MMU_NOTIFY_CLEAR', blockable: true, owner: null, cur_seq: 1 });
    b.request(20, 'gpu0', 'mm', { type: 'hmm_range_fault', sub: 1, start: 0, end: 0x1000 });
    b.event(20 + endNs, 'app', 'app_ending', {});
    return b.write();
  }

  it('names a cycle of waits among the requests never answered, and fails it once it has lasted past the timeout', () => {
    const young = checkTraceDir(cycle(10));
    const inv = young.unanswered.find((u) => u.request.type === 'invalidate')!;
    expect(inv.chain!.deadlock).toBe(true);
    expect(inv.chain!.lines.join('\n')).toMatch(/gpu0: waits for mm: hmm_range_fault[\s\S]*already in this chain: a cycle/);
    expect(inv.fails).toBe(false); // 10 ns: merely in flight as far as the trace can tell
    expect(young.ok).toBe(true);
    const old = checkTraceDir(cycle(200e9));
    expect(old.unanswered.every((u) => u.fails && u.chain!.deadlock)).toBe(true);
    expect(old.ok).toBe(false);
  });

  it('lists a request merely in flight when the run stopped without failing the check', () => {
    const b = new TraceBuilder();
    b.request(10, 'mm', 'ramdisk', { type: 'bio_submit', op: 'write', dev: 'swap', block: 1, value: 3 });
    b.event(12, 'app', 'app_ending', {});
    const c = checkTraceDir(b.write());
    expect(c.unanswered).toHaveLength(1);
    expect(c.unanswered[0]).toMatchObject({ fails: false, ageNs: 2 });
    expect(c.ok).toBe(true);
  });

  it('proves each violation with the trace lines behind it', () => {
    const b = new TraceBuilder();
    b.event(0, 'mm', 'mmap', { pid: 1, start: 0x1000000, end: 0x1002000, prot: 3, shared: false, file: null, pgoff: 0 });
    b.event(0, 'mm', 'mmu_interval_notifier_insert', { sub: 1, pid: 1, start: 0x1000000, last: 0x1001fff, dev: 'gpu0' });
    b.event(10, 'mm', 'cpu_store', { pid: 1, addr: 0x1000000, pfn: 3, value: 5 });
    b.event(20, 'mm', 'invalidate_start', { inv: 1, pid: 1, start: 0x1001000, end: 0x1002000, event: 'MMU_NOTIFY_CLEAR', blockable: true, owner: null, cur_seq: 3, subs: [1], task: 'kswapd0', caller: 'try_to_unmap_one' });
    b.event(30, 'mm', 'invalidate_ack', { inv: 1, sub: 1, dev: 'gpu0', ok: true });
    b.event(31, 'mm', 'invalidate_end', { inv: 1 });
    const dma = { dev: 'gpu0', pid: 1, addr: 0x1001000, pfn: 4, value: 8, via: 'mirror', sub: 1, seq: 1, pte_ok: true, writable: true, pinned: false, file: null, idx: null };
    b.event(40, 'mm', 'dma_write', dma);
    b.event(50, 'app', 'final_pages', { pid: [1, 1], addr: [0x1000000, 0x1001000], value: [4, 0] });
    const c = checkTraceDir(b.write());
    expect(c.ok).toBe(false);
    expect(c.oracle.violations.map((v) => v.kind)).toEqual(['stale_translation', 'lost_write']);
    const [stale, lost] = c.oracle.violations;
    expect(stale.lines.map((i) => c.proof.get(i)!.ev)).toEqual(['invalidate_start', 'invalidate_ack', 'dma_write']);
    expect(lost.lines.map((i) => c.proof.get(i)!.ev)).toEqual(['cpu_store', 'final_pages']);
    expect(lost).toMatchObject({ expected: 5, found: 4, addr: 0x1000000 });
  });
});
