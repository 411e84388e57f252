// One script action (all but `fork`, which script.ts runs since it runs steps): the requests it
// makes, and what it got — ret (0, or the first -errno of its requests) and what the operation
// returns: `data` (loads and dmirror reads: the words read; stores and dmirror writes: the words
// written), `faults`, `cpages`, `snapshot`, and positive results under a name of their own (`addr`
// of an mmap, `pinned`, `unpinned`, `migrated`, `reclaimed`, `merged`, `written`).
//   store / load   one cpu_access per page, one after another (a thread's loop); `value: 'unique'`
//                  stores a fresh unique value in each page
//   dmirror        dmirror_cmd on the device with the VMA's address + page * 4096; a WRITE without
//                  `data` writes fresh unique values; `cmd` is "READ" or "HMM_DMIRROR_READ" alike
//   mmap           at an address mm chooses, recorded under `vma` (`fixed`: MAP_FIXED over the
//                  process's VMA of that name, in place)
//   gpu            gpu_submit of one job over the BO of `vma` (VmaSpec.gpu) on `device`, then
//                  gpu_wait for it: ret is the submit's -errno, else the wait's (0, or -EFAULT for
//                  a job that took a GPU page fault); also `job`, `pagesWalked`, `resubmissions`.
//                  `wait: false` returns once the job is queued (the submit's ret). `buffer`
//                  instead of `vma`: the job runs on a VRAM BO of gpu_alloc.
//   gpu_alloc      gpu_bo_create of a VRAM BO, mapped at the process's next GPU virtual address
//                  (from GPU_VA_BASE); gpu_free: gpu_bo_free of it
//   pin / unpin    pin_user_pages (FOLL_WRITE if write, FOLL_LONGTERM if longterm), held until an
//                  unpin step releases them (pins.ts)
//   dio / dio_p2p  O_DIRECT read or write on an nvme device's raw namespace (nvme.ts): ret 0 and
//                  `moved` (blocks), `data` the words a read returned
//   rdma           one RDMA operation on the VMA's MR (rdma.ts): ret 0 and the work completion's
//                  `status`, `data` the words moved; rdma_advise: ibv_advise_mr of the pages
// A VMA name the process does not have gives ret -EINVAL and an `error` (a failure of the step).
import {
  EINVAL, FOLL_LONGTERM, FOLL_WRITE, MAP_FIXED, PAGE_SIZE, PM_PRESENT, PM_SOFT_DIRTY,
  type CpuAccess, type Exit, type GetUserPages, type Madvise, type MigratePages, type Mprotect, type Munmap,
} from '@svmsim/kernel-mm';
import { HMM_DMIRROR_CMDS, type DmirrorCmd, type HmmDmirrorCmdName } from '@svmsim/kernel-mm/dmirror';
import type { GpuBoCreate, GpuBoFree, GpuSubmit, GpuWait } from '@svmsim/gpu-driver';
import type { Action } from '../scenario/types.js';
import { ensureOpen } from './device-files.js';
import type { Got } from './expectations.js';
import { ADVICE, parseProt } from './mapping.js';
import type { PhaseStats } from './phase-stats.js';
import { holdPins, releasePins } from './pins.js';
import { dioDmabuf, dioHost, dioP2p } from './nvme.js';
import { rdmaAdvise, rdmaOp } from './rdma.js';
import type { Reply, Request } from './requests.js';
import { mmapOf, vmaRecord } from './setup.js';
import type { App, Proc, VmaRecord } from './state.js';

export type PlainAction = Exclude<Action, { op: 'fork' }>;

/** The name an action counts under in its phase's counts and errors (workload names where they exist). */
export function actionKind(a: Action): string {
  switch (a.op) {
    case 'mmap':
      return a.fixed ? 'mmap_fixed' : 'mmap';
    case 'madvise':
      return `madvise_${a.advice}`;
    case 'dmirror': {
      const cmd = dmirrorCmd(a.cmd);
      return cmd ? `dmirror_${cmd.slice('HMM_DMIRROR_'.length).toLowerCase()}` : 'dmirror';
    }
    case 'rdma':
      return `rdma_${a.verb.replace('-', '_')}`;
    case 'rdma_advise':
      return 'rdma_prefetch';
    case 'dio':
    case 'dio_p2p':
    case 'dio_dmabuf':
      return `dio_${a.io}`;
    default:
      return a.op;
  }
}

/** "read", "READ", "HMM_DMIRROR_READ", "migrate-to-dev" → the ioctl's name; undefined if none. */
export function dmirrorCmd(cmd: string): HmmDmirrorCmdName | undefined {
  let c = cmd.toUpperCase().replace(/-/g, '_');
  if (!c.startsWith('HMM_DMIRROR_')) c = `HMM_DMIRROR_${c}`;
  return (HMM_DMIRROR_CMDS as readonly string[]).includes(c) ? (c as HmmDmirrorCmdName) : undefined;
}

/** Run `a` in process `proc`; `done(got)` when its last request is answered. */
export function runAction(app: App, proc: Proc, a: PlainAction, stats: PhaseStats, done: (got: Got) => void): void {
  const { mm } = app;
  const pid = proc.pid;
  const kind = actionKind(a);
  const call = (to: string, msg: Request, then: (r: Reply) => void): void =>
    void app.io.call(to, msg, (r) => {
      stats.result(kind, r.ret);
      then(r);
    });
  /** A single request whose ret is the step's (positive results under `as`). */
  const simple = (to: string, msg: Request, as?: string): void =>
    call(to, msg, (r) => done(r.ret < 0 || as === undefined ? { ret: Math.min(0, r.ret) } : { ret: 0, [as]: r.ret }));
  const fail = (error: string): void => done({ ret: EINVAL, error });
  /** The VMA `name` and the address of its page `page`, or a failure. */
  const at = (name: string, page: number): { v: VmaRecord; addr: number } | undefined => {
    const v = proc.vmas.get(name);
    if (!v) {
      fail(`no VMA "${name}" in ${proc.name} (pid ${pid})`);
      return undefined;
    }
    // A step's pages stay inside its VMA: running past it would touch whatever is mapped next.
    const pages = 'pages' in a && typeof a.pages === 'number' ? a.pages : 1;
    if (page < 0 || page + pages > v.pages) {
      fail(`pages [${page}, ${page + pages}) are outside VMA "${name}" of ${v.pages} pages`);
      return undefined;
    }
    return { v, addr: v.addr + page * PAGE_SIZE };
  };

  switch (a.op) {
    case 'store':
    case 'load': {
      const r = at(a.vma, a.page);
      if (!r) return;
      return accessPages(app, pid, r.addr, a.pages, a.op === 'store' ? (a.value === 'unique' ? () => app.unique() : () => a.value as number) : undefined, call, done);
    }
    case 'mmap': {
      let addr = 0;
      if (a.fixed) {
        const r = at(a.vma, 0);
        if (!r) return;
        addr = r.addr;
      }
      const m = mmapOf(app, pid, a, addr, a.fixed ? MAP_FIXED : 0);
      if (typeof m === 'string') return fail(m);
      return call(mm, m, (r) => {
        if (r.ret < 0) return done({ ret: r.ret });
        proc.vmas.set(a.vma, vmaRecord(app, { ...a, name: a.vma }, r.ret));
        done({ ret: 0, addr: r.ret });
      });
    }
    case 'munmap': {
      const r = at(a.vma, a.page);
      return r && simple(mm, { type: 'munmap', pid, addr: r.addr, length: a.pages * PAGE_SIZE } satisfies Munmap);
    }
    case 'mprotect': {
      const r = at(a.vma, a.page);
      if (!r) return;
      const prot = parseProt(a.prot);
      if (prot === undefined) return fail(`bad prot "${a.prot}"`);
      return simple(mm, { type: 'mprotect', pid, addr: r.addr, length: a.pages * PAGE_SIZE, prot } satisfies Mprotect);
    }
    case 'madvise': {
      const r = at(a.vma, a.page);
      return r && simple(mm, { type: 'madvise', pid, addr: r.addr, length: a.pages * PAGE_SIZE, advice: ADVICE[a.advice] } satisfies Madvise);
    }
    case 'dmirror': {
      const cmd = dmirrorCmd(a.cmd);
      if (!cmd) return fail(`no dmirror command "${a.cmd}"`);
      if (!app.device(a.device)) return fail(`no device "${a.device}"`);
      const r = at(a.vma, a.page);
      if (!r) return;
      return ensureOpen(app, proc, a.device, (fd, ret) => {
        if (fd === undefined) {
          stats.result(kind, ret);
          return done({ ret });
        }
        const m: DmirrorCmd = { type: 'dmirror_cmd', cmd, pid, fd, addr: r.addr, npages: a.pages };
        const data = a.data ?? (cmd === 'HMM_DMIRROR_WRITE' ? Array.from({ length: a.pages }, () => app.unique()) : undefined);
        if (data) m.data = data;
        call(a.device, m, (res) => {
          const got: Got = { ret: Math.min(0, res.ret), cpages: res.cpages, faults: res.faults };
          if (res.data !== undefined) got.data = [...(res.data as number[])];
          else if (cmd === 'HMM_DMIRROR_WRITE' && data && res.ret === 0) got.data = data;
          if (res.snapshot !== undefined) got.snapshot = [...(res.snapshot as number[])];
          done(got);
        });
      });
    }
    case 'gpu': {
      if (app.device(a.device)?.kind !== 'gpu') return fail(`no gpu device "${a.device}"`);
      let handle: number;
      if (a.buffer !== undefined) {
        const b = proc.buffers.get(a.buffer);
        if (!b || b.device !== a.device) return fail(`no VRAM buffer "${a.buffer}" of ${proc.name} on ${a.device}`);
        handle = b.handle;
      } else {
        const v = proc.vmas.get(a.vma!);
        if (!v) return fail(`no VMA "${a.vma}" in ${proc.name} (pid ${pid})`);
        if (!v.bo || v.bo.device !== a.device) return fail(`VMA "${a.vma}" has no BO on ${a.device} (give the VMA gpu: ${a.device})`);
        handle = v.bo.handle;
      }
      const m: GpuSubmit = { type: 'gpu_submit', bos: [handle], pattern: { touch: a.touch, write: a.write }, durationNs: a.duration, queue: a.queue, ...(app.nextJobHangs(a.device) && { hang: true }) };
      return call(a.device, m, (s) => {
        const got: Got = { ret: Math.min(0, s.ret), job: s.job, pagesWalked: s.pagesWalked, resubmissions: s.resubmissions };
        if (s.ret < 0 || !a.wait) return done(got);
        call(a.device, { type: 'gpu_wait', job: s.job as number } satisfies GpuWait, (w) => done({ ...got, ret: Math.min(0, w.ret) }));
      });
    }
    case 'gpu_alloc': {
      if (app.device(a.device)?.kind !== 'gpu') return fail(`no gpu device "${a.device}"`);
      if (proc.buffers.has(a.buffer)) return fail(`${proc.name} already has a VRAM buffer "${a.buffer}"`);
      const addr = proc.nextGpuVa;
      proc.nextGpuVa += a.pages * PAGE_SIZE;
      return call(a.device, { type: 'gpu_bo_create', pid, addr, pages: a.pages, vram: true } satisfies GpuBoCreate, (r) => {
        if (r.ret > 0) proc.buffers.set(a.buffer, { device: a.device, handle: r.ret });
        done({ ret: Math.min(0, r.ret) });
      });
    }
    case 'gpu_free': {
      const b = proc.buffers.get(a.buffer);
      if (!b) return fail(`no VRAM buffer "${a.buffer}" in ${proc.name}`);
      proc.buffers.delete(a.buffer);
      return simple(b.device, { type: 'gpu_bo_free', handle: b.handle } satisfies GpuBoFree);
    }
    case 'pin': {
      const r = at(a.vma, a.page);
      if (!r) return;
      const gup_flags = (a.write ? FOLL_WRITE : 0) | (a.longterm ? FOLL_LONGTERM : 0);
      return call(mm, { type: 'get_user_pages', pid, start: r.addr, nr_pages: a.pages, gup_flags, pin: true } satisfies GetUserPages, (res) => {
        if (res.ret < 0) return done({ ret: res.ret });
        holdPins(proc, r.addr, res.pfns as Float64Array, res.ret, a.write);
        done({ ret: 0, pinned: res.ret });
      });
    }
    case 'unpin': {
      const r = at(a.vma, a.page);
      if (!r) return;
      const got = releasePins(app, proc, r.addr, a.pages);
      stats.result(kind, got.ret);
      return done(got);
    }
    case 'migrate_pages': {
      const r = at(a.vma, a.page);
      return r && simple(mm, { type: 'migrate_pages', pid, addr: r.addr, nr_pages: a.pages } satisfies MigratePages, 'migrated');
    }
    case 'reclaim':
      return simple(mm, { type: 'reclaim', nr_pages: a.pages }, 'reclaimed');
    case 'ksm_scan':
      return simple(mm, { type: 'ksm_scan' }, 'merged');
    case 'writeback':
      return simple(mm, { type: 'writeback' }, 'written');
    case 'clear_refs':
      return simple(mm, { type: 'clear_refs', pid, value: a.value });
    case 'numa_scan':
      return simple(mm, { type: 'numa_scan', pid }, 'updated');
    case 'pagemap': {
      const r = at(a.vma, a.page);
      if (!r) return;
      return call(mm, { type: 'pagemap_read', pid, addr: r.addr, nr_pages: a.pages }, (res) => {
        if (res.ret < 0) return done({ ret: res.ret });
        const e = [...(res.entries as Uint8Array)];
        done({ ret: 0, softDirty: e.map((x) => (x & PM_SOFT_DIRTY ? 1 : 0)), present: e.map((x) => (x & PM_PRESENT ? 1 : 0)) });
      });
    }
    case 'exit':
      return call(mm, { type: 'exit', pid } satisfies Exit, (r) => {
        if (r.ret >= 0) proc.exited = true;
        done({ ret: Math.min(0, r.ret) });
      });
    case 'sleep':
      return app.io.sleep(a.duration, () => done({ ret: 0 }));
    case 'dio': {
      if (app.device(a.device)?.kind !== 'nvme') return fail(`no nvme device "${a.device}"`);
      const r = at(a.vma, a.page);
      if (!r) return;
      return dioHost(app, proc, a.device, a.io, r.addr, a.pages, a.block, call, done);
    }
    case 'dio_p2p':
      if (app.device(a.device)?.kind !== 'nvme') return fail(`no nvme device "${a.device}"`);
      return dioP2p(proc, a.device, a.io, a.provider, a.page, a.pages, a.block, call, done);
    case 'dio_dmabuf': {
      if (app.device(a.device)?.kind !== 'nvme') return fail(`no nvme device "${a.device}"`);
      const b = proc.buffers.get(a.buffer);
      if (!b) return fail(`no VRAM buffer "${a.buffer}" in ${proc.name}`);
      return dioDmabuf(proc, a.device, a.io, b, a.page, a.pages, a.block, call, done);
    }
    case 'rdma':
    case 'rdma_advise': {
      if (app.device(a.device)?.kind !== 'rdma') return fail(`no rdma device "${a.device}"`);
      const r = at(a.vma, a.page);
      if (!r) return;
      const finished = (got: Got) => {
        if (typeof got.status === 'string') stats.status(kind, got.status);
        done(got);
      };
      if (a.op === 'rdma_advise') return rdmaAdvise(proc, a.device, r.v, a.page, a.pages, a.advice, a.flush, call, finished);
      return rdmaOp(app, proc, a.device, r.v, a.verb, a.page, a.pages, 0, call, finished);
    }
  }
}

/** Loads (store undefined) or stores of `pages` pages from `addr`, one after another. */
function accessPages(
  app: App, pid: number, addr: number, pages: number, store: (() => number) | undefined,
  call: (to: string, msg: Request, then: (r: Reply) => void) => void, done: (got: Got) => void,
): void {
  const data: number[] = [];
  let ret = 0;
  let faults = 0;
  const next = (i: number): void => {
    if (i === pages) return done({ ret, faults, data });
    const value = store?.();
    const m: CpuAccess = { type: 'cpu_access', pid, addr: addr + i * PAGE_SIZE, write: store !== undefined };
    if (value !== undefined) m.value = value;
    call(app.mm, m, (r) => {
      if (r.ret < 0 && ret === 0) ret = r.ret;
      faults += typeof r.faults === 'number' ? r.faults : 0;
      data.push(value ?? (r.value as number));
      next(i + 1);
    });
  };
  next(0);
}
