// A process whose threads race the test mirror device (dmirror) against everything mm does to
// their memory: CPU loads and stores, dmirror reads and writes, munmap and re-mmap, mprotect, fork
// (the child stores and exits), migration, reclaim and MADV_PAGEOUT, KSM merging, writeback,
// migration to and from device memory. Each of `threads` keeps one operation in flight; operations
// are drawn from ctx.rng, so a seed under LocalScheduler replays exactly.
//
// At the end (after `ops` operations, or `durationNs` of simulated time) it waits for what is in
// flight, asks mm for its dump, resolves device-private pages with the device, and ends the run;
// its summary carries the final pages for the checker (checker.ts).
import type { Actor, Ctx, Incoming, Message } from '@svmsim/runtime';
import {
  FOLL_WRITE, MADV_DONTNEED, MADV_MERGEABLE, MADV_PAGEOUT, MAP_ANONYMOUS, MAP_FIXED, MAP_PRIVATE, MAP_SHARED, PAGE_SIZE, PROT_READ, PROT_WRITE,
  type DumpResult,
} from '../protocol.js';

export interface MirrorStressConfig {
  mm?: string;
  dmirror?: string;
  /** Operations to issue in all (default 400); or stop after durationNs of simulated time. */
  ops?: number;
  durationNs?: number;
  /** Operations in flight at once (default 4). */
  threads?: number;
  /** Pages of the anonymous region and of the shared file region (default 32 and 8). */
  anonPages?: number;
  filePages?: number;
}

const ANON = 16 * 1024 * 1024;
const FILE = 64 * 1024 * 1024;
const RW = PROT_READ | PROT_WRITE;

type Op = { to: string; msg: Message } | { sleep: true };

export function createMirrorStress(config: unknown): Actor<Message> {
  const cfg = (config ?? {}) as MirrorStressConfig;
  const mm = cfg.mm ?? 'mm';
  const dev = cfg.dmirror ?? 'dmirror0';
  const totalOps = cfg.ops ?? 400;
  const threads = cfg.threads ?? 4;
  const anonPages = cfg.anonPages ?? 32;
  const filePages = cfg.filePages ?? 8;
  let phase: 'setup' | 'run' | 'drain' | 'dump' | 'devmem' | 'done' = 'setup';
  let setupStep = 0;
  let issued = 0;
  let inFlight = 0;
  let nextValue = 1;
  const errors: Record<string, number> = {};
  const counts: Record<string, number> = {};
  let finalPages: { pid: number; addr: number; value: number }[] = [];
  let devicePages: { index: number; devPfn: number }[] = [];
  let stopped = false;
  /** What each request in flight was, by request id. */
  const kinds = new Map<number, string>();

  const setup: Message[] = [
    { type: 'process_create' },
    { type: 'mmap', pid: 1, addr: ANON, length: anonPages * PAGE_SIZE, prot: RW, flags: MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED },
    { type: 'madvise', pid: 1, addr: ANON, length: anonPages * PAGE_SIZE, advice: MADV_MERGEABLE },
    { type: 'file_create', name: 'stress', pages: filePages },
    { type: 'mmap', pid: 1, addr: FILE, length: filePages * PAGE_SIZE, prot: RW, flags: MAP_SHARED | MAP_FIXED, file: 1, offset: 0 },
    { type: 'dmirror_open', pid: 1 },
  ] as unknown as Message[];
  const setupTo = (i: number) => (i === setup.length - 1 ? dev : mm);

  const value = () => nextValue++;
  const anonAddr = (ctx: Ctx<Message>) => ANON + ctx.rng.int(anonPages) * PAGE_SIZE;
  const anyAddr = (ctx: Ctx<Message>) => (ctx.rng.int(4) === 0 ? FILE + ctx.rng.int(filePages) * PAGE_SIZE : anonAddr(ctx));
  const span = (ctx: Ctx<Message>, max: number) => {
    const n = 1 + ctx.rng.int(max);
    const first = ctx.rng.int(anonPages - n + 1);
    return { addr: ANON + first * PAGE_SIZE, n };
  };

  function pick(ctx: Ctx<Message>): Op {
    const r = ctx.rng.int(100);
    const m = (msg: Record<string, unknown>, to = mm): Op => ({ to, msg: msg as unknown as Message });
    if (r < 28) return m({ type: 'cpu_access', pid: 1, addr: anyAddr(ctx), write: true, value: value() }, mm);
    if (r < 40) return m({ type: 'cpu_access', pid: 1, addr: anyAddr(ctx), write: false });
    if (r < 52) {
      const s = span(ctx, 8);
      return m({ type: 'dmirror_cmd', cmd: 'HMM_DMIRROR_WRITE', pid: 1, addr: s.addr, npages: s.n, data: Array.from({ length: s.n }, value) }, dev);
    }
    if (r < 62) {
      const s = span(ctx, 8);
      return m({ type: 'dmirror_cmd', cmd: 'HMM_DMIRROR_READ', pid: 1, addr: s.addr, npages: s.n }, dev);
    }
    if (r < 66) {
      // munmap then a fresh MAP_FIXED mapping in its place (two operations, one after the other).
      const s = span(ctx, 4);
      return m({ type: 'mmap', pid: 1, addr: s.addr, length: s.n * PAGE_SIZE, prot: RW, flags: MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED });
    }
    if (r < 70) {
      const s = span(ctx, 4);
      return m({ type: 'mprotect', pid: 1, addr: s.addr, length: s.n * PAGE_SIZE, prot: ctx.rng.int(2) ? PROT_READ : RW });
    }
    if (r < 73) return m({ type: 'fork', pid: 1 });
    if (r < 76) {
      const s = span(ctx, 4);
      return m({ type: 'migrate_pages', pid: 1, addr: s.addr, nr_pages: s.n });
    }
    if (r < 79) {
      const s = span(ctx, 4);
      return m({ type: 'madvise', pid: 1, addr: s.addr, length: s.n * PAGE_SIZE, advice: ctx.rng.int(2) ? MADV_PAGEOUT : MADV_DONTNEED });
    }
    if (r < 81) return m({ type: 'reclaim', nr_pages: 8 });
    if (r < 84) return m({ type: 'ksm_scan' });
    if (r < 87) return m({ type: 'writeback' });
    if (r < 91) {
      const s = span(ctx, 4);
      return m({ type: 'dmirror_cmd', cmd: 'HMM_DMIRROR_MIGRATE_TO_DEV', pid: 1, addr: s.addr, npages: s.n }, dev);
    }
    if (r < 94) {
      const s = span(ctx, 4);
      return m({ type: 'dmirror_cmd', cmd: 'HMM_DMIRROR_MIGRATE_TO_SYS', pid: 1, addr: s.addr, npages: s.n }, dev);
    }
    if (r < 96) {
      const s = span(ctx, 2);
      return m({ type: 'get_user_pages', pid: 1, start: s.addr, nr_pages: s.n, gup_flags: FOLL_WRITE, pin: true });
    }
    const s = span(ctx, 4);
    return m({ type: 'dmirror_cmd', cmd: 'HMM_DMIRROR_SNAPSHOT', pid: 1, addr: s.addr, npages: s.n }, dev);
  }

  function issue(ctx: Ctx<Message>): void {
    while (phase === 'run' && inFlight < threads) {
      const outOfTime = cfg.durationNs !== undefined ? ctx.now() >= cfg.durationNs : issued >= totalOps;
      if (outOfTime) {
        phase = 'drain';
        break;
      }
      const op = pick(ctx);
      if ('sleep' in op) continue;
      issued++;
      inFlight++;
      const kind = op.msg.type === 'dmirror_cmd' ? (op.msg as unknown as { cmd: string }).cmd : op.msg.type;
      counts[kind] = (counts[kind] ?? 0) + 1;
      kinds.set(ctx.request(op.to, op.msg), kind);
    }
    if (phase === 'drain' && inFlight === 0) {
      phase = 'dump';
      ctx.request(mm, { type: 'dump' } as Message);
    }
  }

  return {
    start(ctx) {
      ctx.request(setupTo(0), setup[0]);
    },
    receive(env: Incoming<Message>, ctx) {
      if (stopped) return;
      const m = env.msg as unknown as { type: string; ret: number; pages?: DumpResult['pages']; values?: number[]; pfns?: Float64Array };
      if (m.type === 'signal') return; // SIGKILL by the OOM killer: the dump will tell
      if (env.replyTo === 0) return;
      if (m.type === 'request_timeout' || m.type === 'actor_died') {
        errors[m.type] = (errors[m.type] ?? 0) + 1;
        stopped = true;
        ctx.stopRun(`mirror-stress: ${m.type}`);
        return;
      }
      switch (phase) {
        case 'setup':
          if (m.ret < 0) {
            stopped = true;
            ctx.stopRun(`mirror-stress: setup step ${setupStep} failed with ${m.ret}`);
            return;
          }
          if (++setupStep < setup.length) return void ctx.request(setupTo(setupStep), setup[setupStep]);
          phase = 'run';
          return issue(ctx);
        case 'run':
        case 'drain': {
          inFlight--;
          const kind = kinds.get(env.replyTo);
          kinds.delete(env.replyTo);
          const what = kind?.startsWith('child_store') ? 'child_store' : kind;
          if (m.ret < 0) errors[`${what} ${m.ret}`] = (errors[`${what} ${m.ret}`] ?? 0) + 1;
          // A fork's child stores once, then exits.
          if (kind === 'fork' && m.ret > 0) {
            const child = m.ret;
            inFlight++;
            kinds.set(ctx.request(mm, { type: 'cpu_access', pid: child, addr: anonAddr(ctx), write: true, value: value() } as unknown as Message), `child_store ${child}`);
          }
          if (kind?.startsWith('child_store ')) {
            inFlight++;
            kinds.set(ctx.request(mm, { type: 'exit', pid: Number(kind.split(' ')[1]) } as unknown as Message), 'child_exit');
          }
          if (m.type === 'get_user_pages_result' && m.ret > 0) {
            // Pinned briefly, as a DIO would: unpin at once, dirtying.
            ctx.send(mm, { type: 'unpin_user_pages', pfns: m.pfns!.slice(0, m.ret), make_dirty: true, pin: true } as unknown as Message);
          }
          return issue(ctx);
        }
        case 'dump': {
          finalPages = m.pages!.map(({ pid, addr, value }) => ({ pid, addr, value }));
          devicePages = m.pages!.flatMap((p, index) => (p.where === 'device' ? [{ index, devPfn: p.value }] : []));
          if (devicePages.length === 0) {
            phase = 'done';
            stopped = true;
            return ctx.stopRun('mirror-stress done');
          }
          phase = 'devmem';
          return void ctx.request(dev, { type: 'dmirror_devmem_read', dev_pfns: devicePages.map((d) => d.devPfn) } as unknown as Message);
        }
        case 'devmem':
          devicePages.forEach((d, i) => (finalPages[d.index].value = m.values![i]));
          phase = 'done';
          stopped = true;
          return ctx.stopRun('mirror-stress done');
      }
    },
    summary: () => ({ issued, counts, errors, finalPages, phase }),
  };
}
