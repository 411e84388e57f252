// Setup, one request at a time, in this order: file_create for each file (mm answers its id),
// process_create for each process (mm answers its pid), mmap of each VMA of each process at an
// address mm chooses (madvise(MADV_MERGEABLE) right after when asked), and dmirror_open of every
// dmirror device by every process, and gpu_bo_create of a userptr BO over each VMA that names a gpu
// device (`gpu:`; its handle is kept in the VMA's record). The first failure ends setup with a
// message naming the step and the errno, except a BO the GPU refuses (pin_user_pages(FOLL_LONGTERM)
// of a file mapping, say): that is a result, not a broken run. It is traced (`bo_refused`), the
// GPU counts it, and the VMA goes on without a BO. Last, each process's QPs and MRs on the rdma
// devices its VMAs name (rdma.ts); an MR the NIC refuses is, likewise, a result.
import { MADV_MERGEABLE, PAGE_SIZE, PROT_WRITE, type Madvise, type Mmap } from '@svmsim/kernel-mm';
import type { DmirrorOpen } from '@svmsim/kernel-mm/dmirror';
import type { GpuBoCreate } from '@svmsim/gpu-driver';
import type { VmaSpec } from '../scenario/types.js';
import { errnoName, mapFlags, parseProt } from './mapping.js';
import { rdmaSetupSteps } from './rdma.js';
import type { Reply, Request } from './requests.js';
import { Proc, type App, type VmaRecord } from './state.js';


/** One setup step: a request, what to do with its answer. */
export interface SetupStep {
  /** What the step does, for the failure message: "mmap main.buf". */
  what: string;
  to: string;
  /** Built when the step runs (it may need a pid or file id an earlier step got); a string is a failure. */
  msg: () => Request | string;
  /** The reply's ret was >= 0. */
  ok: (r: Reply) => void;
  /** A failure that does not end setup: what to do with it (absent: setup fails). */
  refused?: (ret: number) => void;
  /** The step does not apply (an earlier one was refused): skip it. */
  skip?: () => boolean;
}

/** Run setup; `done(undefined)` when every step succeeded, `done(reason)` at the first failure. */
export function runSetup(app: App, done: (failure?: string) => void): void {
  const steps = setupSteps(app);
  const next = (i: number): void => {
    if (i === steps.length) return done();
    if (app.ending) return done('the scenario duration ran out during setup');
    const s = steps[i];
    if (s.skip?.()) return next(i + 1);
    const msg = s.msg();
    if (typeof msg === 'string') return done(`setup: ${s.what}: ${msg}`);
    app.io.call(s.to, msg, (r) => {
      if (!(r.ret >= 0)) {
        if (!s.refused || typeof r.ret !== 'number') return done(`setup: ${s.what} failed with ${errnoName(r.ret)}`);
        s.refused(r.ret);
        return next(i + 1);
      }
      s.ok(r);
      next(i + 1);
    });
  };
  next(0);
}

function setupSteps(app: App): SetupStep[] {
  const { scenario, mm } = app;
  const steps: SetupStep[] = [];
  for (const f of scenario.files) {
    steps.push({ what: `file_create ${f.name}`, to: mm, msg: () => ({ type: 'file_create', name: f.name, pages: f.pages }), ok: (r) => app.files.set(f.name, r.ret) });
  }
  for (const p of scenario.processes) {
    steps.push({ what: `process_create ${p.name}`, to: mm, msg: () => ({ type: 'process_create', comm: p.name }), ok: (r) => app.named.set(p.name, app.register(new Proc(r.ret, p.name))) });
  }
  for (const p of scenario.processes) {
    const proc = () => app.named.get(p.name)!;
    for (const v of p.vmas) {
      steps.push({
        what: `mmap ${p.name}.${v.name}`,
        to: mm,
        msg: () => mmapOf(app, proc().pid, v),
        ok: (r) => proc().vmas.set(v.name, vmaRecord(app, v, r.ret)),
      });
      if (v.mergeable) {
        steps.push({
          what: `madvise(MADV_MERGEABLE) ${p.name}.${v.name}`,
          to: mm,
          msg: (): Madvise => ({ type: 'madvise', pid: proc().pid, addr: proc().vmas.get(v.name)!.addr, length: v.pages * PAGE_SIZE, advice: MADV_MERGEABLE }),
          ok: () => {},
        });
      }
    }
  }
  for (const p of scenario.processes) {
    for (const dev of app.dmirrors()) {
      const proc = () => app.named.get(p.name)!;
      steps.push({ what: `dmirror_open ${dev} by ${p.name}`, to: dev, msg: (): DmirrorOpen => ({ type: 'dmirror_open', pid: proc().pid }), ok: (r) => proc().files.set(dev, r.ret) });
    }
  }
  for (const p of scenario.processes) {
    const proc = () => app.named.get(p.name)!;
    for (const v of p.vmas) {
      for (const dev of v.gpus ?? (v.gpu !== undefined ? [v.gpu] : [])) steps.push({
        what: `gpu_bo_create ${p.name}.${v.name} on ${dev}`,
        to: dev,
        msg: (): GpuBoCreate => {
          const rec = proc().vmas.get(v.name)!;
          return { type: 'gpu_bo_create', pid: proc().pid, addr: rec.addr, pages: rec.pages, readonly: (rec.prot & PROT_WRITE) === 0 };
        },
        ok: (r) => {
          const rec = proc().vmas.get(v.name)!;
          rec.bos = [...(rec.bos ?? []), { device: dev, handle: r.ret }];
        },
        refused: (ret) => {
          if (app.ctx.tracing) app.ctx.trace('bo_refused', { process: p.name, vma: v.name, device: dev, ret, errno: errnoName(ret) });
        },
      });
    }
  }
  for (const p of scenario.processes) steps.push(...rdmaSetupSteps(app, p));
  return steps;
}

/** The mmap of a VMA spec at an address mm chooses; a string says why it cannot be made. */
export function mmapOf(app: App, pid: number, v: Pick<VmaSpec, 'kind' | 'pages' | 'prot' | 'shared' | 'file' | 'offset'>, addr = 0, fixed = 0): Mmap | string {
  const prot = parseProt(v.prot);
  if (prot === undefined) return `bad prot "${v.prot}"`;
  const m: Mmap = { type: 'mmap', pid, addr, length: v.pages * PAGE_SIZE, prot, flags: mapFlags(v.kind, v.shared) | fixed };
  if (v.kind === 'file') {
    const id = v.file === undefined ? undefined : app.files.get(v.file);
    if (id === undefined) return `no file "${v.file}"`;
    m.file = id;
    m.offset = v.offset * PAGE_SIZE;
  }
  return m;
}

/** What the app remembers of a VMA mm mapped at `addr`. */
export function vmaRecord(app: App, v: Pick<VmaSpec, 'name' | 'kind' | 'pages' | 'prot' | 'shared' | 'file' | 'offset'>, addr: number): VmaRecord {
  return {
    name: v.name,
    addr,
    pages: v.pages,
    kind: v.kind,
    prot: parseProt(v.prot) ?? 0,
    shared: v.kind === 'shared-anon' ? true : v.kind === 'anon' ? false : v.shared,
    file: v.kind === 'file' && v.file !== undefined ? app.files.get(v.file) : undefined,
    offset: v.kind === 'file' ? v.offset : 0,
  };
}
