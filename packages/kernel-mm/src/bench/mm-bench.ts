// kernel-mm's part of `npm run bench`, all under LocalScheduler (deterministic, one thread):
//   cpuFaultsPerSec       write faults on fresh anonymous pages, 32 accesses in flight
//   hmmPagesPerSec        hmm_range_fault over 512-page ranges: faulting them in, then a snapshot
//   bytesPerPage          memory per simulated page with 2^20 frames and a 2^20-page process touched
// beside the raw baseline of the same run: request/reply round trips per second between two
// trivial actors (a fault or an hmm_range_fault call is one request/reply plus mm's work).
import { LocalScheduler, type Actor, type Ctx, type Message } from '@svmsim/runtime';
import { createMm } from '../mm-actor.js';
import { createRamdisk } from '../ramdisk.js';
import { HMM_PFN_REQ_FAULT, HMM_PFN_REQ_WRITE, MAP_ANONYMOUS, MAP_PRIVATE, PAGE_SIZE, PROT_READ, PROT_WRITE } from '../protocol.js';

type Reply = Message & { ret: number; seq?: number; sub?: number };

/**
 * A driver that sends `setup` one request at a time, then keeps `window` requests built by `issue`
 * in flight until `total` have been answered. Callback-based: LocalScheduler's loop is synchronous.
 */
function windowed(
  total: number,
  window: number,
  issue: (i: number, ctx: Ctx<Message>) => Message,
  setup: Message[],
  onReply?: (r: Reply) => void,
): Actor<Message> & { measuredSec: () => number } {
  let sent = 0;
  let done = 0;
  let setupLeft = setup.length;
  // Wall time of the measured part only: from the end of the setup to the last answer.
  let t0 = 0;
  let t1 = 0;
  return {
    measuredSec: () => (t1 - t0) / 1e3,
    start(ctx) {
      for (const m of setup.slice(0, 1)) ctx.request('mm', m);
    },
    receive(env, ctx) {
      if (env.replyTo === 0) return;
      if (setupLeft > 0) {
        const ret = (env.msg as Reply).ret;
        if (typeof ret === 'number' && ret < 0) throw new Error(`bench setup step ${setup.length - setupLeft} failed with ${ret}`);
        setupLeft--;
        if (setupLeft > 0) return void ctx.request('mm', setup[setup.length - setupLeft]);
        t0 = performance.now();
        while (sent < Math.min(window, total)) ctx.request('mm', issue(sent++, ctx));
        return;
      }
      onReply?.(env.msg as Reply);
      done++;
      if (sent < total) ctx.request('mm', issue(sent++, ctx));
      else if (done === total) {
        t1 = performance.now();
        ctx.stopRun('done');
      }
    },
    summary: () => ({ done }),
  };
}

const BASE = 16 * 1024 * 1024;
const mmap = (pages: number): Message => ({ type: 'mmap', pid: 1, addr: 0, length: pages * PAGE_SIZE, prot: PROT_READ | PROT_WRITE, flags: MAP_PRIVATE | MAP_ANONYMOUS }) as Message;

async function timed(actors: { id: string; actor: Actor<Message> }[], app: { measuredSec: () => number }): Promise<number> {
  const r = await new LocalScheduler().run({ actors, seed: 1 });
  if (r.endedBy !== 'stopRun') throw new Error(`mm bench run ended by ${r.endedBy}: ${r.reason}`);
  return app.measuredSec();
}

function mmActors(frames: number, app: Actor<Message>) {
  return [
    { id: 'mm', actor: createMm({ frames, swapPages: 0, kswapd: false, wmarkMin: 64, wmarkLow: 128, wmarkHigh: 256 }, 'mm') },
    { id: 'ramdisk', actor: createRamdisk({}) },
    { id: 'app', actor: app },
  ];
}

/** Write faults on fresh anonymous pages. */
export async function cpuFaults(pages: number): Promise<{ faultsPerSec: number; faults: number }> {
  const app = windowed(pages, 32, (i) => ({ type: 'cpu_access', pid: 1, addr: BASE + i * PAGE_SIZE, write: true, value: i + 1 }) as Message, [{ type: 'process_create' } as Message, mmap(pages)]);
  const s = await timed(mmActors(2 * pages + 4096, app), app);
  return { faultsPerSec: Math.round(pages / s), faults: pages };
}

/** hmm_range_fault over `pages` in chunks of 512: first faulting every page in, then a snapshot of them. */
export async function hmmPages(pages: number, snapshot: boolean): Promise<{ pagesPerSec: number; pages: number }> {
  const CHUNK = 512;
  const calls = pages / CHUNK;
  // The subscription's seq: inserted while idle it is mm's seq - 1 = 1, and nothing invalidates it.
  const seq = 1;
  const setup: Message[] = [{ type: 'process_create' } as Message, mmap(pages), { type: 'mmu_interval_notifier_insert', pid: 1, start: BASE, length: pages * PAGE_SIZE } as Message, { type: 'mmu_interval_read_begin', sub: 1 } as Message, { type: 'mmap_read_lock', pid: 1 } as Message];
  const pre: Message[] = snapshot ? [{ type: 'hmm_range_fault', sub: 1, notifier_seq: 1, start: BASE, end: BASE + pages * PAGE_SIZE, default_flags: HMM_PFN_REQ_FAULT | HMM_PFN_REQ_WRITE, pfn_flags_mask: 0, dev_private_owner: null } as Message] : [];
  const app = windowed(
    calls,
    1,
    (i) => ({ type: 'hmm_range_fault', sub: 1, notifier_seq: seq, start: BASE + i * CHUNK * PAGE_SIZE, end: BASE + (i + 1) * CHUNK * PAGE_SIZE, default_flags: snapshot ? 0 : HMM_PFN_REQ_FAULT | HMM_PFN_REQ_WRITE, pfn_flags_mask: 0, dev_private_owner: null }) as Message,
    [...setup, ...pre],
    (r) => {
      if (r.ret !== 0) throw new Error(`hmm_range_fault returned ${r.ret}`);
    },
  );
  const total = await timed(mmActors(2 * pages + 4096, app), app);
  return { pagesPerSec: Math.round(pages / total), pages };
}

/** Memory per simulated page: 2^20 frames, one process with 2^20 pages, every page touched. */
export async function bytesPerPage(pages: number): Promise<{ bytesPerPage: number; pages: number; mib: number }> {
  const gc = (globalThis as { gc?: () => void }).gc;
  gc?.();
  const before = process.memoryUsage();
  const mm = createMm({ frames: pages + 4096, swapPages: 0, kswapd: false, wmarkMin: 64, wmarkLow: 128, wmarkHigh: 256 }, 'mm');
  const app = windowed(pages, 64, (i) => ({ type: 'cpu_access', pid: 1, addr: BASE + i * PAGE_SIZE, write: true, value: i + 1 }) as Message, [{ type: 'process_create' } as Message, mmap(pages)]);
  const r = await new LocalScheduler().run({ actors: [{ id: 'mm', actor: mm }, { id: 'ramdisk', actor: createRamdisk({}) }, { id: 'app', actor: app }], seed: 1 });
  const mmSummary = r.summaries.mm as { cpuFaults: number; oomKills: number };
  if (mmSummary.cpuFaults !== pages || mmSummary.oomKills !== 0) throw new Error(`memory bench: ${mmSummary.cpuFaults} faults of ${pages}, ${mmSummary.oomKills} OOM kills`);
  gc?.();
  const after = process.memoryUsage();
  const bytes = after.heapUsed + after.arrayBuffers - (before.heapUsed + before.arrayBuffers);
  void mm; // kept alive until measured
  return { bytesPerPage: Math.round(bytes / pages), pages, mib: Math.round(bytes / 2 ** 20) };
}

/** Baseline: request/reply round trips per second between two trivial actors. */
export async function echoRoundTrips(count: number): Promise<{ roundTripsPerSec: number }> {
  let n = 0;
  const server: Actor<Message> = { receive: (env, ctx) => ctx.reply(env, { type: 'pong' }), summary: () => ({}) };
  const client: Actor<Message> = {
    start: (ctx) => {
      for (let i = 0; i < 32; i++) ctx.request('server', { type: 'ping' });
    },
    receive(_env, ctx) {
      if (++n === count) return ctx.stopRun('done');
      if (n + 32 <= count) ctx.request('server', { type: 'ping' });
    },
    summary: () => ({}),
  };
  const t0 = performance.now();
  await new LocalScheduler().run({ actors: [{ id: 'client', actor: client }, { id: 'server', actor: server }], seed: 1 });
  return { roundTripsPerSec: Math.round(count / ((performance.now() - t0) / 1e3)) };
}

export async function mmBench(progress: (line: string) => void): Promise<Record<string, unknown>> {
  await cpuFaults(20_000); // warm-up
  const baseline = await echoRoundTrips(400_000);
  progress(`mm: baseline ${JSON.stringify(baseline)}`);
  const faults = await cpuFaults(200_000);
  progress(`mm: cpu faults ${JSON.stringify(faults)}`);
  const hmmFault = await hmmPages(262_144, false);
  const hmmSnap = await hmmPages(262_144, true);
  progress(`mm: hmm ${JSON.stringify({ hmmFault, hmmSnap })}`);
  // The whole address space above MMAP_BASE: 2^20 pages less the first 16 MiB.
  const mem = await bytesPerPage((1 << 20) - 4096);
  progress(`mm: memory ${JSON.stringify(mem)}`);
  return {
    cpuFaults: { ...faults, baseline: { localRequestReply: baseline } },
    hmmRangeFault: { faultingIn: hmmFault, snapshot: hmmSnap, baseline: { localRequestReply: baseline } },
    memory: { ...mem, note: 'heap + ArrayBuffers after touching every page, per page; frames, page tables, rmap and LRU included' },
  };
}

