// The process's side of an NVMe controller (@svmsim/nvme): O_DIRECT on its raw namespace, as
// pread/pwrite on open("/dev/nvme0n1", O_DIRECT) reach blkdev_direct_IO (block/fops.c, v6.6).
//   host memory  pin_user_pages_fast of the buffer through mm (FOLL_PIN; FOLL_WRITE for a read:
//                the device writes the pages, ITER_DEST), then the pfns to the controller. The bio
//                owns the pins from then on: the controller's completion unpins them (bio_release_pages,
//                dirtying a read's pages) before it answers, on every path (blkdev-dio.ts). A pin that
//                covers fewer pages than asked makes a shorter I/O (bio_iov_iter_get_pages' short
//                extraction; the caller sees a short read or write).
//   P2P memory   pages of another controller's CMB, through the process's mapping of its published
//                p2pmem (p2pmem_alloc_mmap in mm): pinned through mm like host memory, with
//                FOLL_PCI_P2PDMA when the queue supports P2P (else mm's gup: -EREMOTEIO); the
//                controller checks the PCI path (-EREMOTEIO when it refuses).
// The result: ret 0 (or -errno) and `moved`, the blocks moved; `data` the words a read returned.
import { FOLL_PCI_P2PDMA, FOLL_WRITE, MAP_SHARED, PAGE_SIZE, PROT_READ, PROT_WRITE, type GetUserPages, type GupP2pdma, type Mmap } from '@svmsim/kernel-mm';
import type { Message } from '@svmsim/runtime';
import type { NvmeDio } from '@svmsim/nvme/dio-protocol';
import type { NvmetRdmaCmd } from '@svmsim/nvme/nvmet-protocol';
import type { Got } from './expectations.js';
import type { Reply, Request } from './requests.js';
import type { App, Proc } from './state.js';

type Call = (to: string, msg: Request, then: (r: Reply) => void) => void;

/** An O_DIRECT read or write of `pages` pages of host memory from `addr`, at block `block` of `device`. */
export function dioHost(app: App, proc: Proc, device: string, io: 'read' | 'write', addr: number, pages: number, block: number, call: Call, done: (got: Got) => void): void {
  const gup: GetUserPages = { type: 'get_user_pages', pid: proc.pid, start: addr, nr_pages: pages, gup_flags: io === 'read' ? FOLL_WRITE : 0, pin: true };
  call(app.mm, gup, (r) => {
    if (r.ret <= 0) return done({ ret: r.ret < 0 ? r.ret : -14 });
    const pfns = (r.pfns as Float64Array).slice(0, r.ret);
    const m: NvmeDio = { type: 'nvme_dio', op: io, pid: proc.pid, addr, pfns, slba: block };
    call(device, m, (res) => finished(res, done));
  });
}

/**
 * An O_DIRECT read or write of pages [page, page + pages) of the process's mapping of `provider`'s
 * p2pmem, at block `block` of `device`. The first use maps the provider's whole CMB
 * (mmap(MAP_SHARED) of /sys/bus/pci/devices/<provider>/p2pmem/allocate: mm's p2pmem_alloc_mmap);
 * then the I/O is bio_iov_iter_get_pages on that VMA: pin_user_pages through mm with
 * FOLL_PCI_P2PDMA only when the queue has BLK_FEAT_PCI_P2PDMA (without it mm's gup refuses the
 * p2pdma pages: -EREMOTEIO, and no request reaches the controller), and the bio owns the pins.
 */
export function dioP2p(app: App, proc: Proc, device: string, io: 'read' | 'write', provider: string, page: number, pages: number, block: number, call: Call, done: (got: Got) => void): void {
  p2pmemMapping(app, proc, provider, call, (ret, addr) => {
    if (ret < 0) return done({ ret });
    const queueP2p = app.device(device)?.p2pQueue !== false;
    const gup: GetUserPages = {
      type: 'get_user_pages', pid: proc.pid, start: addr + page * PAGE_SIZE, nr_pages: pages, gup_flags: (io === 'read' ? FOLL_WRITE : 0) | (queueP2p ? FOLL_PCI_P2PDMA : 0), pin: true,
    };
    call(app.mm, gup, (r) => {
      if (r.ret <= 0) return done({ ret: r.ret < 0 ? r.ret : -14 });
      const pfns = (r.pfns as Float64Array).slice(0, r.ret);
      const at = r.p2pdma as GupP2pdma | undefined;
      if (!at) {
        // Not p2pdma pages: the mapping is not the provider's (cannot happen for a mapping made here).
        app.ctx.send(app.mm, { type: 'unpin_user_pages', pfns, make_dirty: false, pin: true } as unknown as Message);
        return done({ ret: -14 });
      }
      const m: NvmeDio = { type: 'nvme_dio', op: io, pid: proc.pid, addr: addr + page * PAGE_SIZE, pfns, slba: block, p2p: { provider: at.provider, page: at.page, nlb: r.ret } };
      call(device, m, (res) => finished(res, done));
    });
  });
}

/**
 * The process's mapping of `provider`'s whole p2pmem (made at the first use, kept for the run):
 * then(0, addr), or then(-errno) when mm refuses it (-ENOMEM: the CMB's pages are taken).
 */
export function p2pmemMapping(app: App, proc: Proc, provider: string, call: Call, then: (ret: number, addr: number) => void): void {
  const have = proc.p2pmem.get(provider);
  if (have !== undefined) return then(0, have);
  const pages = app.device(provider)?.cmbPages ?? 0;
  const m: Mmap = { type: 'mmap', pid: proc.pid, addr: 0, length: pages * PAGE_SIZE, prot: PROT_READ | PROT_WRITE, flags: MAP_SHARED, p2pmem: provider };
  call(app.mm, m, (r) => {
    if (r.ret < 0) return then(r.ret, 0);
    proc.p2pmem.set(provider, r.ret);
    then(0, r.ret);
  });
}

/**
 * An O_DIRECT read or write of pages [page, page + pages) of a VRAM buffer (gpu_alloc), exported
 * as a dma-buf (DRM_IOCTL_PRIME_HANDLE_TO_FD, once per buffer) and imported by the controller: the
 * out-of-tree NVMe dma-buf importer (packages/nvme/src/blkdev-dio.ts), opt-in with the device's
 * `dmabufImporter`.
 */
export function dioDmabuf(proc: Proc, device: string, io: 'read' | 'write', buffer: { device: string; handle: number; fd?: number }, page: number, pages: number, block: number, call: Call, done: (got: Got) => void): void {
  const go = (fd: number): void => {
    const m: NvmeDio = { type: 'nvme_dio', op: io, pid: proc.pid, addr: 0, pfns: new Float64Array(0), slba: block, dmabuf: { exporter: buffer.device, fd, page, nlb: pages } };
    call(device, m, (res) => finished(res, done));
  };
  if (buffer.fd !== undefined) return go(buffer.fd);
  call(buffer.device, { type: 'dma_buf_export', handle: buffer.handle }, (r) => {
    if (r.ret < 0) return done({ ret: r.ret });
    buffer.fd = r.fd as number;
    go(buffer.fd);
  });
}

/**
 * A remote NVMe-oF host's read or write of `pages` blocks from `block` of `device`'s namespace,
 * exported by the in-kernel target over RDMA (packages/nvme/src/nvmet-rdma.ts): the command capsule
 * arrives at the target, which stages the data in p2pmem or system memory and moves it with RDMA
 * READ / WRITE on its NIC. The process stands for the remote host here; no page of it is touched.
 */
export function nvmetIo(device: string, io: 'read' | 'write', block: number, pages: number, values: readonly number[] | undefined, call: Call, done: (got: Got) => void): void {
  const m: NvmetRdmaCmd = { type: 'nvmet_rdma_cmd', op: io, slba: block, nlb: pages, ...(values ? { values: Float64Array.from(values) } : {}) };
  call(device, m, (res) => finished(res, done));
}

function finished(res: Reply, done: (got: Got) => void): void {
  if (res.ret < 0) return done({ ret: res.ret });
  const got: Got = { ret: 0, moved: res.ret };
  if (res.data !== undefined) got.data = Array.from(res.data as Float64Array);
  done(got);
}

export const dioAddr = (vmaAddr: number, page: number): number => vmaAddr + page * PAGE_SIZE;
