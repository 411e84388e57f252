// What each workload operation kind (OP_KINDS) sends, as the mirror stress of kernel-mm does
// (packages/kernel-mm/src/testing/mirror-stress.ts). Pages come from the thread's PagePicker in a
// VMA drawn uniformly from the phase's; spans are 1..N pages (N below). Every store, and every page
// of a dmirror WRITE, writes a fresh unique value. Errors of every request of an operation count
// under the operation's kind.
//   load, store              cpu_access of one page
//   mmap_fixed               mmap MAP_FIXED of a span (≤ 4) in place, same kind, prot and file offset
//   munmap                   munmap of a span (≤ 4), then the same MAP_FIXED mmap back in place
//   mprotect                 a span (≤ 4) to PROT_READ or back to the VMA's own prot
//   madvise_dontneed/pageout a span (≤ 4)
//   fork                     fork; the child stores once (a picked page) and exits
//   migrate_pages            a span (≤ 4)
//   reclaim                  8 pages; ksm_scan; writeback
//   pin                      pin_user_pages(FOLL_WRITE) of a span (≤ 2), then at once
//                            unpin_user_pages_dirty_lock (make_dirty), as a direct I/O would
//   dmirror_read/_write      HMM_DMIRROR_READ / _WRITE of a span (≤ 8)
//   dmirror_migrate_to_dev/_sys, dmirror_snapshot   a span (≤ 4)
//   gpu_submit               one job per gpu device over the BOs of the phase's VMAs that have one
//                            (DRM_IOCTL_AMDGPU_CS: writes (gpuWrite) or reads `gpuTouch` of each BO's
//                            pages, evenly spread from a random start, running `gpuJob` on
//                            `gpuQueue`), then WAIT_CS for it before the thread's next op
//   rdma_<verb>_<in|out>     one RDMA operation (rdma.ts) on a span (≤ rdmaPages) of one of the
//                            phase's VMAs with an MR, over the thread's QP (threads take the
//                            process's QPs in turn), waiting for its work completion; completions in
//                            error count under the kind and their IBV_WC_ status
//   dio_read / dio_write     O_DIRECT of a span (≤ dioPages) on the phase's nvme device (nvme.ts), at
//                            the block of the span's page index in its VMA
//   rdma_prefetch            ibv_advise_mr (rdmaAdvice, FLUSH if rdmaFlush) of such a span
import {
  ESRCH, FOLL_WRITE, MADV_DONTNEED, MADV_PAGEOUT, MAP_FIXED, PAGE_SIZE, PROT_READ,
  type CpuAccess, type Exit, type Fork, type GetUserPages, type Madvise, type MigratePages, type Mmap, type Mprotect, type Munmap, type UnpinUserPages,
} from '@svmsim/kernel-mm';
import type { DmirrorCmd, HmmDmirrorCmdName } from '@svmsim/kernel-mm/dmirror';
import type { GpuSubmit, GpuWait } from '@svmsim/gpu-driver';
import type { OpKind, RdmaAdvice, RdmaOp } from '../scenario/types.js';
import { mapFlags } from './mapping.js';
import type { PagePicker } from './pages.js';
import type { PhaseStats } from './phase-stats.js';
import { dioHost } from './nvme.js';
import { rdmaAdvise, rdmaOp } from './rdma.js';
import type { Reply, Request } from './requests.js';
import type { App, Proc, VmaRecord } from './state.js';

/** One workload thread: the process it runs in and how it picks pages. */
export interface OpThread {
  app: App;
  proc: Proc;
  /** VMA names the operations touch. */
  vmas: string[];
  /** The dmirror device of dmirror operations (undefined: the phase has none in its mix). */
  device: string | undefined;
  picker: PagePicker;
  stats: PhaseStats;
  /** gpu_submit jobs: the fraction of each BO's pages touched, how long a job runs (ns), whether it writes, its queue. */
  gpu: { touch: number; durationNs: number; write: boolean; queue: 'gfx' | 'compute' };
  /** dio_ operations: the nvme device and the largest request (pages). */
  dio: { device: string | undefined; pages: number };
  /** The thread's index in its phase: which of the process's QPs its RDMA operations use. */
  index: number;
  /** rdma operations: the largest message (pages), the prefetch's advice and whether it is synchronous. */
  rdma: { pages: number; advice: RdmaAdvice; flush: boolean };
}

/** The dmirror ioctl of each dmirror operation kind, and the largest span it takes. */
const DMIRROR_OPS: Partial<Record<OpKind, [HmmDmirrorCmdName, number]>> = {
  dmirror_read: ['HMM_DMIRROR_READ', 8],
  dmirror_write: ['HMM_DMIRROR_WRITE', 8],
  dmirror_migrate_to_dev: ['HMM_DMIRROR_MIGRATE_TO_DEV', 4],
  dmirror_migrate_to_sys: ['HMM_DMIRROR_MIGRATE_TO_SYS', 4],
  dmirror_snapshot: ['HMM_DMIRROR_SNAPSHOT', 4],
};

export const isDmirrorOp = (kind: OpKind): boolean => kind in DMIRROR_OPS;

interface Span {
  v: VmaRecord;
  first: number;
  n: number;
  addr: number;
  length: number;
}

/** Run one operation of `kind`; `done` when its last request is answered. */
export function runOp(t: OpThread, kind: OpKind, done: () => void): void {
  const { app, proc, stats } = t;
  const { mm } = app;
  const pid = proc.pid;
  const rng = () => app.ctx.rng;
  const vma = (): VmaRecord => proc.vmas.get(t.vmas[t.vmas.length === 1 ? 0 : rng().int(t.vmas.length)])!;
  const page = (): number => {
    const v = vma();
    return v.addr + t.picker.pick(v.pages) * PAGE_SIZE;
  };
  const span = (max: number): Span => {
    const v = vma();
    const n = Math.min(v.pages, 1 + rng().int(max));
    const first = t.picker.pick(v.pages, n);
    return { v, first, n, addr: v.addr + first * PAGE_SIZE, length: n * PAGE_SIZE };
  };
  /** A request of this operation; `then` (default: the operation is done) gets the reply. */
  const call = (to: string, msg: Request, then: (r: Reply) => void = done): void =>
    void app.io.call(to, msg, (r) => {
      stats.result(kind, r.ret);
      // The process is gone (a script's exit, the OOM killer): its threads stop (workload.ts).
      if (r.ret === ESRCH && 'pid' in msg && msg.pid === pid) proc.exited = true;
      then(r);
    });

  const dm = DMIRROR_OPS[kind];
  if (dm) {
    const [cmd, max] = dm;
    const s = span(max);
    const m: DmirrorCmd = { type: 'dmirror_cmd', cmd, pid, addr: s.addr, npages: s.n };
    if (cmd === 'HMM_DMIRROR_WRITE') m.data = Array.from({ length: s.n }, () => app.unique());
    return call(t.device!, m);
  }
  switch (kind) {
    case 'load':
      return call(mm, { type: 'cpu_access', pid, addr: page(), write: false } satisfies CpuAccess);
    case 'store':
      return call(mm, { type: 'cpu_access', pid, addr: page(), write: true, value: app.unique() } satisfies CpuAccess);
    case 'mmap_fixed':
      return call(mm, remap(pid, span(4)));
    case 'munmap': {
      const s = span(4);
      return call(mm, { type: 'munmap', pid, addr: s.addr, length: s.length } satisfies Munmap, () => call(mm, remap(pid, s)));
    }
    case 'mprotect': {
      const s = span(4);
      return call(mm, { type: 'mprotect', pid, addr: s.addr, length: s.length, prot: rng().int(2) ? PROT_READ : s.v.prot } satisfies Mprotect);
    }
    case 'madvise_dontneed':
    case 'madvise_pageout': {
      const s = span(4);
      return call(mm, { type: 'madvise', pid, addr: s.addr, length: s.length, advice: kind === 'madvise_dontneed' ? MADV_DONTNEED : MADV_PAGEOUT } satisfies Madvise);
    }
    case 'fork':
      return call(mm, { type: 'fork', pid } satisfies Fork, (r) => {
        if (!(r.ret > 0)) return done();
        const child = r.ret;
        call(mm, { type: 'cpu_access', pid: child, addr: page(), write: true, value: app.unique() } satisfies CpuAccess, () =>
          call(mm, { type: 'exit', pid: child } satisfies Exit),
        );
      });
    case 'migrate_pages': {
      const s = span(4);
      return call(mm, { type: 'migrate_pages', pid, addr: s.addr, nr_pages: s.n } satisfies MigratePages, (r) => {
        // Pages of the span migration left where they were (pinned, locked, not present): the report's migration column.
        stats.summary.migratePagesLeft = (stats.summary.migratePagesLeft ?? 0) + s.n - Math.max(0, r.ret);
        done();
      });
    }
    case 'reclaim':
      return call(mm, { type: 'reclaim', nr_pages: 8 });
    case 'ksm_scan':
      return call(mm, { type: 'ksm_scan' });
    case 'writeback':
      return call(mm, { type: 'writeback' });
    case 'pin': {
      const s = span(2);
      return call(mm, { type: 'get_user_pages', pid, start: s.addr, nr_pages: s.n, gup_flags: FOLL_WRITE, pin: true } satisfies GetUserPages, (r) => {
        // Pinned briefly, as a direct I/O would: unpin at once, dirtying.
        if (r.ret > 0) app.io.send(mm, { type: 'unpin_user_pages', pfns: (r.pfns as Float64Array).slice(0, r.ret), make_dirty: true, pin: true } satisfies UnpinUserPages);
        done();
      });
    }
    case 'gpu_submit': {
      // The BOs of the phase's VMAs, per device: one job per device, each waited for, in turn.
      const byDevice = new Map<string, number[]>();
      for (const name of t.vmas) {
        for (const bo of proc.vmas.get(name)?.bos ?? []) byDevice.set(bo.device, [...(byDevice.get(bo.device) ?? []), bo.handle]);
      }
      const jobs = [...byDevice];
      const next = (i: number): void => {
        if (i === jobs.length || app.ending) return done();
        const [device, bos] = jobs[i];
        const m: GpuSubmit = { type: 'gpu_submit', bos, pattern: { touch: t.gpu.touch, write: t.gpu.write, shift: app.ctx.rng.next() }, durationNs: t.gpu.durationNs, queue: t.gpu.queue, ...(app.nextJobHangs(device) && { hang: true }) };
        call(device, m, (r) => {
          if (r.ret < 0) return next(i + 1);
          call(device, { type: 'gpu_wait', job: r.job as number } satisfies GpuWait, () => next(i + 1));
        });
      };
      return next(0);
    }
    case 'rdma_prefetch':
    case 'rdma_write_in': case 'rdma_read_in': case 'rdma_send_in': case 'rdma_atomic_in':
    case 'rdma_write_out': case 'rdma_read_out': case 'rdma_send_out': case 'rdma_atomic_out': {
      const withMr = t.vmas.map((n) => proc.vmas.get(n)!).filter((v) => v.mr);
      if (withMr.length === 0) {
        stats.result(kind, -2);
        return done();
      }
      const v = withMr[withMr.length === 1 ? 0 : rng().int(withMr.length)];
      const n = Math.min(v.pages, 1 + rng().int(t.rdma.pages));
      const first = t.picker.pick(v.pages, n);
      const finished = (got: { ret: number; status?: unknown }) => {
        if (typeof got.status === 'string') stats.status(kind, got.status);
        done();
      };
      if (kind === 'rdma_prefetch') return rdmaAdvise(proc, v.mr!.device, v, first, n, t.rdma.advice, t.rdma.flush, call, finished);
      const verb = kind.slice('rdma_'.length).replace('_', '-') as RdmaOp;
      return rdmaOp(app, proc, v.mr!.device, v, verb, first, n, t.index, call, finished);
    }
    case 'dio_read':
    case 'dio_write': {
      // The block is the span's page index: reads and writes of a VMA page meet on one block.
      if (t.dio.device === undefined) {
        stats.result(kind, -2);
        return done();
      }
      const s = span(t.dio.pages);
      return dioHost(app, proc, t.dio.device!, kind === 'dio_read' ? 'read' : 'write', s.addr, s.n, s.first, call, () => done());
    }
    default:
      throw new Error(`app: no workload operation '${kind}'`);
  }
}

/** A fresh mapping of a span in place (MAP_FIXED), of the VMA's kind, prot and file offset. */
function remap(pid: number, s: Span): Mmap {
  const m: Mmap = { type: 'mmap', pid, addr: s.addr, length: s.length, prot: s.v.prot, flags: mapFlags(s.v.kind, s.v.shared) | MAP_FIXED };
  if (s.v.kind === 'file') {
    m.file = s.v.file;
    m.offset = (s.v.offset + s.first) * PAGE_SIZE;
  }
  return m;
}
