// One script action (all but `fork`, which script.ts runs since it runs steps): the requests it
// makes, and what it got — ret (0, or the first -errno of its requests) and what the operation
// returns: `data` (loads and dmirror reads: the words read; stores and dmirror writes: the words
// written), `faults`, `cpages`, `snapshot`, and positive results under a name of their own (`addr`
// of an mmap, `pinned`, `unpinned`, `migrated`, `reclaimed`, `merged`, `written`).
//   store / load   one cpu_access per page, one after another (a thread's loop); `value: 'unique'`
//                  stores a fresh unique value in each page
//   dmirror        dmirror_cmd on the device with the VMA's address + page * 4096 (or `addr` raw,
//                  unchecked: the driver answers); a WRITE without `data` or `ptr` writes fresh
//                  unique values; `cmd` is "READ" or "HMM_DMIRROR_READ" alike. With `ptr`, the
//                  user buffer is cmd.ptr: a WRITE's words come from it, and what the kernel copies
//                  back (a READ's words on success, a SNAPSHOT's bytes as far as they got) land in
//                  it; got.buffer is its content after the step
//   buffer         malloc of a user buffer, filled; read_buffer: its words (got.data)
//   counters       the device's counters (got: one field each)
//   mremap         mremap of the VMA's pages (MREMAP_FIXED: to a VMA's address + toPage pages);
//                  the moved range is then the VMA `as` (default: the VMA itself): got.addr
//   gup            get_user_pages / _fast (FOLL_GET) or pin_user_pages / _fast (FOLL_PIN), held
//                  until an unpin step releases them (pins.ts): got.pinned
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
//   nvmet          a remote NVMe-oF host's read or write of that namespace through the in-kernel
//                  target over RDMA (nvme.ts): the same result
//   rdma           one RDMA operation on the VMA's MR (rdma.ts): ret 0 and the work completion's
//                  `status`, `data` the words moved; rdma_advise: ibv_advise_mr of the pages
// A VMA name the process does not have gives ret -EINVAL and an `error` (a failure of the step).
import {
  EINVAL, FOLL_FORCE, FOLL_LONGTERM, FOLL_WRITE, MAP_FIXED, MREMAP_DONTUNMAP, MREMAP_FIXED, MREMAP_MAYMOVE, PAGE_SIZE, PM_PRESENT, PM_SOFT_DIRTY,
  type CpuAccess, type Exit, type Mremap, type GetUserPages, type Madvise, type MigratePages, type Mprotect, type Munmap,
} from '@svmsim/kernel-mm';
import { HMM_DMIRROR_CMDS, type DmirrorCmd, type DmirrorStats, type HmmDmirrorCmdName } from '@svmsim/kernel-mm/dmirror';
import { VPN_LIMIT } from '@svmsim/kernel-mm/page-table';
import type { GpuBoCreate, GpuBoFree, GpuSubmit, GpuWait } from '@svmsim/gpu-driver';
import type { Action, BufferFill } from '../scenario/types.js';
import { ensureOpen } from './device-files.js';
import type { Got } from './expectations.js';
import { ADVICE, parseProt } from './mapping.js';
import type { PhaseStats } from './phase-stats.js';
import { holdPins, releasePins } from './pins.js';
import { dioDmabuf, dioHost, dioP2p, nvmetIo } from './nvme.js';
import { rdmaAdvise, rdmaOp, rdmaRegMrP2pmem } from './rdma.js';
import type { Reply, Request } from './requests.js';
import { mmapOf, vmaRecord } from './setup.js';
import type { App, Proc, VmaRecord } from './state.js';

/** Every action but those script.ts runs itself (they run steps, or wait for children). */
export type PlainAction = Exclude<Action, { op: 'fork' | 'kill' | 'wait' }>;

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
    case 'nvmet':
      return `nvmet_${a.io}`;
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
      let i = a.page;
      let w = 0;
      const words = a.op === 'store' && Array.isArray(a.value) ? a.value : undefined;
      const value = a.op !== 'store' ? undefined : a.value === 'unique' ? () => app.unique() : a.value === 'index' ? () => i++ : words ? () => words[w++] ?? 0 : () => a.value as number;
      return accessPages(app, pid, r.addr, a.pages, value, call, done);
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
      let addr: number;
      if (a.addr === undefined) {
        const r = at(a.vma, a.page);
        if (!r) return;
        addr = r.addr;
      } else if (typeof a.addr === 'number') addr = a.addr;
      else {
        const v = proc.vmas.get(a.addr.vma);
        if (!v) return fail(`no VMA "${a.addr.vma}" in ${proc.name} (pid ${pid})`);
        addr = v.addr + a.addr.offset;
      }
      const buf = a.ptr === undefined ? undefined : proc.userBuffers.get(a.ptr);
      if (a.ptr !== undefined && !buf) return fail(`no user buffer "${a.ptr}" in ${proc.name}`);
      return ensureOpen(app, proc, a.device, (fd, ret) => {
        if (fd === undefined) {
          stats.result(kind, ret);
          return done({ ret });
        }
        const m: DmirrorCmd = { type: 'dmirror_cmd', cmd, pid, fd, addr, npages: a.pages };
        if (buf) m.ptrPages = buf.length;
        const data = buf && cmd === 'HMM_DMIRROR_WRITE'
          ? buf.slice(0, a.pages)
          : (a.data ?? (cmd === 'HMM_DMIRROR_WRITE' && a.pages <= VPN_LIMIT ? Array.from({ length: a.pages }, () => app.unique()) : undefined));
        if (data) m.data = data;
        call(a.device, m, (res) => {
          const got: Got = { ret: Math.min(0, res.ret), cpages: res.cpages, faults: res.faults };
          if (res.data !== undefined) got.data = [...(res.data as number[])];
          else if (cmd === 'HMM_DMIRROR_WRITE' && data && res.ret === 0) got.data = data;
          if (res.snapshot !== undefined) got.snapshot = [...(res.snapshot as number[])];
          if (buf) {
            // What copy_to_user put in the buffer: a read's words on success, a snapshot's bytes as far as it got.
            const back = cmd === 'HMM_DMIRROR_WRITE' ? undefined : ((res.snapshot ?? (res.ret === 0 ? res.data : undefined)) as number[] | undefined);
            back?.forEach((w, i) => (buf[i] = w));
            got.buffer = [...buf];
          }
          done(got);
        });
      });
    }
    case 'buffer':
      proc.userBuffers.set(a.buffer, fillOf(a.fill, a.pages));
      return done({ ret: 0 });
    case 'read_buffer': {
      const buf = proc.userBuffers.get(a.buffer);
      if (!buf) return fail(`no user buffer "${a.buffer}" in ${proc.name}`);
      return done({ ret: 0, data: [...buf] });
    }
    case 'counters': {
      if (app.device(a.device)?.kind !== 'dmirror') return fail(`no dmirror device "${a.device}"`);
      return call(a.device, { type: 'dmirror_stats' } satisfies DmirrorStats, (r) => done({ ret: Math.min(0, r.ret), ...(r.counters as Record<string, number>) }));
    }
    case 'pin':
    case 'gup': {
      // `pin` is pin_user_pages: the gup step's default flavour, without FOLL_FORCE.
      const r = at(a.vma, a.page);
      if (!r) return;
      const flavour = a.op === 'gup' ? a.flavour : 'pin_user_pages';
      const pin = flavour.startsWith('pin_');
      const gup_flags = (a.write ? FOLL_WRITE : 0) | (a.longterm ? FOLL_LONGTERM : 0) | (a.op === 'gup' && a.force ? FOLL_FORCE : 0);
      const m: GetUserPages = { type: 'get_user_pages', pid, start: r.addr, nr_pages: a.pages, gup_flags, pin, ...(flavour.endsWith('_fast') && { fast: true }) };
      return call(mm, m, (res) => {
        if (res.ret < 0) return done({ ret: res.ret });
        holdPins(proc, r.addr, res.pfns as Float64Array, res.ret, a.write, pin);
        done({ ret: 0, pinned: res.ret });
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
        const bo = v.bos?.find((b) => b.device === a.device);
        if (!bo) return fail(`VMA "${a.vma}" has no BO on ${a.device} (give the VMA gpu: ${a.device})`);
        handle = bo.handle;
      }
      const m: GpuSubmit = { type: 'gpu_submit', bos: [handle], pattern: { touch: a.touch, write: a.write || a.atomic, ...(a.atomic && { atomic: true }) }, durationNs: a.duration, queue: a.queue, ...(app.nextJobHangs(a.device) && { hang: true }) };
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
    case 'unpin': {
      const r = at(a.vma, a.page);
      if (!r) return;
      const got = releasePins(app, proc, r.addr, a.pages);
      stats.result(kind, got.ret);
      return done(got);
    }
    case 'mremap': {
      const r = at(a.vma, a.page);
      if (!r) return;
      let new_addr: number | undefined;
      if (a.fixed) {
        const t = proc.vmas.get(a.to!);
        if (!t) return fail(`no VMA "${a.to}" in ${proc.name} (pid ${pid})`);
        new_addr = t.addr + a.toPage * PAGE_SIZE;
      }
      const flags = (a.maymove ? MREMAP_MAYMOVE : 0) | (a.fixed ? MREMAP_FIXED : 0) | (a.dontunmap ? MREMAP_DONTUNMAP : 0);
      const m: Mremap = { type: 'mremap', pid, addr: r.addr, old_len: a.pages * PAGE_SIZE, new_len: a.newPages * PAGE_SIZE, flags, ...(new_addr !== undefined && { new_addr }) };
      return call(mm, m, (res) => {
        if (res.ret < 0) return done({ ret: res.ret });
        // The moved range is a VMA of its own name from now on (or takes over the old one's).
        const name = a.as ?? a.vma;
        proc.vmas.set(name, { ...r.v, name, addr: res.ret, pages: a.newPages, offset: r.v.offset + a.page });
        done({ ret: 0, addr: res.ret });
      });
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
      return dioP2p(app, proc, a.device, a.io, a.provider, a.page, a.pages, a.block, call, done);
    case 'nvmet':
      if (app.device(a.device)?.kind !== 'nvme') return fail(`no nvme device "${a.device}"`);
      return nvmetIo(a.device, a.io, a.block, a.pages, a.values, call, done);
    case 'rdma_reg_mr':
      if (app.device(a.device)?.kind !== 'rdma') return fail(`no rdma device "${a.device}"`);
      return rdmaRegMrP2pmem(app, proc, a.device, a.provider, a.page, a.pages, call, done);
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

/** A user buffer's initial words (hmm-tests fills with i, or -i to tell untouched words). */
function fillOf(fill: BufferFill, pages: number): number[] {
  if (Array.isArray(fill)) return [...fill];
  return Array.from({ length: pages }, (_, i) => (fill === 'index' ? i : fill === 'minus-index' ? -i : fill));
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
