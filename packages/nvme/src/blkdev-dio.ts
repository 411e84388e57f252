// O_DIRECT on the raw namespace, in the controller's actor: block/fops.c blkdev_direct_IO →
// __blkdev_direct_IO (one bio per request here) → submit_bio → nvme_queue_rq, and the bio's end
// (blkdev_bio_end_io → bio_release_pages). Followed: v6.6 (block/fops.c, block/bio.c,
// drivers/nvme/host/pci.c nvme_map_data, drivers/pci/p2pdma.c).
//
// The process pinned the pages already (dio-protocol.ts); what happens here, per request:
//
//   app                         nvme0 (this file)                       mm
//   pin_user_pages ───────────────────────────────────────────────────▶ pincount++
//   nvme_dio(pfns) ──────────▶  WRITE: DMA reads of the pages ───────▶ dma_read (pinned)
//                               nvme_queue_rq … the command is served
//                               READ: DMA writes of the data ────────▶ dma_write (pinned)
//                               bio_release_pages: unpin, dirty reads ▶ pincount--
//               ◀──────────────  nvme_dio_result
//
// The DMA and the unpin leave on the same channel, so mm applies the DMA first. A write's data
// is read out of memory when the request arrives, before it is queued (the device fetches it
// during service in the kernel; both lie inside the pinned window, which is what the rule is
// about). A reset requeues the command with its data and its pins; only the final completion,
// success or error, releases them. The `unsafe-nvme` twin unpins at arrival, before any DMA: the
// checker's unpinned_dma rule must catch it.
//
// P2P memory (a CMB page of another controller, mapped by the process: p2pmem_alloc_mmap in mm): the
// process pinned it through mm's gup with FOLL_PCI_P2PDMA (a queue without BLK_FEAT_PCI_P2PDMA
// never sets it, and gup then refuses the MEMORY_DEVICE_PCI_P2PDMA pages with -EREMOTEIO before a
// request is made), so the bio owns those pins as it owns host pages' and releases them the same way;
// the data moves to and from the provider (p2pmem_write / p2pmem_read). A provider the PCI path
// cannot reach makes nvme_map_data fail with -EREMOTEIO (BLK_STS_TARGET). No fallback through
// system memory (research/errata.md §4). Followed for the p2pmem part: v6.2–v6.15.
import type { Ctx, Envelope, Message } from '@svmsim/runtime';
import type { NvmeController } from './controller.js';
import { segmentsOf } from './dio.js';
import type { NvmeDio, NvmeDioResult, P2pMemRead, P2pMemReadResult, P2pMemWrite } from './dio-protocol.js';
import type { P2pMemProvider } from './cmb.js';
import { calc_map_type_and_dist, type PciTopology } from './p2pdma.js';
import { EINVAL, EREMOTEIO, nvme_cmd_read, nvme_cmd_write, NVME_CTRL_PAGE_SIZE, type NvmeCompletion } from './protocol.js';

/** The nvme device policies of a scenario: the safe driver against a healthy controller or one failing at failAt; the unsafe twin. */
export const NVME_FAILURE_POLICIES = ['lost-interrupts', 'hang', 'dead'] as const;
export const NVME_POLICIES = ['safe', ...NVME_FAILURE_POLICIES, 'unsafe-nvme'] as const;

/** The most blocks one O_DIRECT request moves (max_sectors_kb 1280 KiB rounds to 320 pages; 256 here). */
export const DIO_PAGES_MAX = 256;
const EIO_ = -5;
const EOPNOTSUPP = -95;
const ENOMEM = -12;

export interface DioHostConfig {
  /** `unsafe-nvme`: release the pins when the request arrives, before the DMA. */
  readonly unsafe: boolean;
  /** The queue has BLK_FEAT_PCI_P2PDMA (QUEUE_FLAG_PCI_P2PDMA before v6.11). */
  readonly queueSupportsP2p: boolean;
  /** The PCI topology of the machine's controllers (for P2P requests). */
  readonly topology?: PciTopology;
  /** The namespace's size in blocks. */
  readonly blocks: number;
  /** The out-of-tree dma-buf importer is built in (NvmeDio.dmabuf); else such a request gets -EOPNOTSUPP. */
  readonly dmabufImporter?: boolean;
}

/**
 * One dma-buf this controller imports (an out-of-tree importer: mainline has none, errata §3),
 * followed on drivers/dma-buf/dma-buf.c of v6.6: dma_buf_dynamic_attach with importer_ops whose
 * move_notify the exporter calls under the BO's reservation lock before the BO moves. The
 * importer destroys its mapping there (the next I/O maps again: dma_buf_map_attachment, which
 * waits out a move under way) and, as a real importer adds its I/O's fence to the reservation
 * (dma_resv_add_fence, DMA_RESV_USAGE_BOOKKEEP) that TTM's eviction waits for, answers only once no
 * I/O through the old mapping is in flight. The `unsafe-nvme` twin answers at once: the DMA still
 * in flight then goes through a placement the BO has left (the checker's stale p2p access).
 */
interface Import {
  attachment: number;
  /** Placement generation of the current mapping; mapped false after move_notify. */
  generation: number;
  mapped: boolean;
  /** I/Os whose DMA goes through the mapping (the fences the reservation holds). */
  inflight: number;
  /** move_notify requests waiting for those fences. */
  readonly notifies: Envelope<Message>[];
  /** Requests waiting for the attach or a map to come back. */
  readonly waiting: (() => void)[];
  busy: boolean;
}

export interface DioFigures {
  dioReads: number;
  dioWrites: number;
  dioErrors: number;
  /** `unsafe-nvme`: requests whose pages it released before their DMA (each one the checker must catch). */
  unsafeBugPaths: number;
  dioFailedWrites: number;
  dioEremoteio: number;
  pinsHeldMax: number;
  /** ∫ pins held dt / the span from the first request to the last completion. */
  pinsHeldTimeWeighted: number;
  p2pReads: number;
  p2pWrites: number;
  readonly latenciesNs: number[];
  firstIoAt: number;
  lastIoAt: number;
}

type Reply = (msg: Message) => void;

export class DirectIoHost {
  readonly figures: DioFigures = {
    dioReads: 0, dioWrites: 0, dioErrors: 0, unsafeBugPaths: 0, dioFailedWrites: 0, dioEremoteio: 0, pinsHeldMax: 0, pinsHeldTimeWeighted: 0,
    p2pReads: 0, p2pWrites: 0, latenciesNs: [], firstIoAt: -1, lastIoAt: -1,
  };
  private pinsHeld = 0;
  private pinPageNs = 0;
  private lastPinChangeNs = 0;
  /** Replies we wait for (DMA reads from mm, p2pmem reads from a provider), by request id. */
  private readonly waits = new Map<number, Reply>();
  /** dma-bufs imported, by "exporter/fd", and by attachment id for move_notify. */
  private readonly imports = new Map<string, Import>();
  private readonly byAttachment = new Map<string, Import>();
  moveNotifies = 0;
  moveNotifyWaits = 0;
  /** A process this controller served (the drain's vma_lookup names it; its answer is not used). */
  private lastPid = 1;

  constructor(
    private readonly ctrl: NvmeController,
    private readonly nsid: number,
    private readonly cfg: DioHostConfig,
    private readonly mm: string,
    /** The controller will finish a command at this time: the actor wakes then (nvme-actor.ts). */
    private readonly wake: (finishNs: number) => void,
  ) {}

  /** Handles what is the direct-I/O path's; false for anything else. */
  receive(env: Envelope<Message>, ctx: Ctx<Message>): boolean {
    const m = env.msg;
    if (env.replyTo) {
      const w = this.waits.get(env.replyTo);
      if (!w) return false;
      this.waits.delete(env.replyTo);
      w(m);
      return true;
    }
    if (m.type === 'nvme_dio') {
      const dio = m as unknown as NvmeDio;
      // A system-memory buffer is the kernel's own (kernelBio); a process names pinned pages.
      if (dio.kbuf !== undefined) ctx.reply(env, { type: 'nvme_dio_result', ret: -EINVAL } satisfies NvmeDioResult as unknown as Message);
      else this.dio(dio, ctx, (r) => ctx.reply(env, r as unknown as Message));
      return true;
    }
    if (m.type === 'dma_buf_move_notify') {
      this.moveNotify(env, (m as unknown as { attachment: number }).attachment, ctx);
      return true;
    }
    if (m.type === 'nvme_drain') {
      // Any answer of mm proves it has handled what this controller sent it before (FIFO per pair).
      const id = ctx.request(this.mm, { type: 'vma_lookup', pid: this.lastPid, addr: 0 } as unknown as Message);
      this.waits.set(id, () => ctx.reply(env, { type: 'nvme_drain_done', ret: 0 } as unknown as Message));
      return true;
    }
    return false;
  }

  /** Pages whose pins a bio of ours holds now (0 at the end of a run: every path released them). */
  get pinsHeldNow(): number {
    return this.pinsHeld;
  }

  get outstandingWaits(): number {
    return this.waits.size;
  }

  private account(nowNs: number, delta: number): void {
    this.pinPageNs += this.pinsHeld * (nowNs - this.lastPinChangeNs);
    this.lastPinChangeNs = nowNs;
    this.pinsHeld += delta;
    if (this.pinsHeld < 0) throw new Error(`nvme direct I/O: pins held went negative (${this.pinsHeld})`);
    if (this.pinsHeld > this.figures.pinsHeldMax) this.figures.pinsHeldMax = this.pinsHeld;
    const span = nowNs - Math.max(0, this.figures.firstIoAt);
    this.figures.pinsHeldTimeWeighted = span > 0 ? this.pinPageNs / span : 0;
  }

  /**
   * A bio of an in-kernel user of this block device (nvmet's nvmet_bdev_execute_rw: submit_bio of
   * its SGL, p2pmem or system memory `kbuf`): the same path as O_DIRECT's, with no pins to release.
   */
  kernelBio(m: NvmeDio, ctx: Ctx<Message>, done: (r: NvmeDioResult) => void): void {
    this.dio(m, ctx, done);
  }

  /** blkdev_direct_IO for one request (or an in-kernel bio: kernelBio). */
  private dio(m: NvmeDio, ctx: Ctx<Message>, answer: (r: NvmeDioResult) => void): void {
    const now = ctx.now();
    if (this.figures.firstIoAt < 0) {
      this.figures.firstIoAt = now;
      this.lastPinChangeNs = now;
    }
    const isRead = m.op === 'read';
    if (m.pid > 0) this.lastPid = m.pid;
    const pfns = m.pfns instanceof Float64Array ? m.pfns : new Float64Array(0);
    const nlb = m.p2p ? m.p2p.nlb : m.dmabuf ? m.dmabuf.nlb : m.kbuf ? m.kbuf.nlb : pfns.length;
    // The bio owns the pins it was given: every path below releases them exactly once.
    let released = pfns.length === 0;
    const release = (): void => {
      if (released) return;
      released = true;
      this.account(ctx.now(), -pfns.length);
      ctx.send(this.mm, { type: 'unpin_user_pages', pfns, make_dirty: isRead, pin: true } as unknown as Message);
    };
    this.account(now, pfns.length);
    const finish = (ret: number, data?: Float64Array): void => {
      release();
      if (ret < 0) this.figures.dioErrors++;
      this.figures.lastIoAt = ctx.now();
      answer({ type: 'nvme_dio_result', ret, ...(data ? { data } : {}) });
    };
    const valid = (m.op === 'read' || m.op === 'write') && Number.isInteger(m.slba) && m.slba >= 0 && Number.isInteger(nlb) && nlb >= 1 &&
      nlb <= DIO_PAGES_MAX && m.slba + nlb <= this.cfg.blocks && (m.dmabuf === undefined || pfns.length === 0) &&
      (m.p2p === undefined || pfns.length === 0 || pfns.length === m.p2p.nlb) &&
      (m.kbuf === undefined || (pfns.length === 0 && !m.p2p && !m.dmabuf && (isRead || m.kbuf.data?.length === nlb)));
    if (!valid) return finish(-EINVAL);
    if (this.cfg.unsafe) {
      if (pfns.length > 0) this.figures.unsafeBugPaths++;
      release(); // the twin's bug: the pages may move before the DMA
    }
    if (m.p2p) {
      const p2p = m.p2p;
      // A P2P buffer on a queue without BLK_FEAT_PCI_P2PDMA: mm's gup refuses such pages without
      // FOLL_PCI_P2PDMA before a request is made; a request that still names one is refused here.
      if (!this.cfg.queueSupportsP2p || !this.cfg.topology) return this.refused(finish);
      const { map } = calc_map_type_and_dist(this.cfg.topology, p2p.provider, ctx.self);
      if (map === 'PCI_P2PDMA_MAP_NOT_SUPPORTED') return this.refused(finish);
    }
    // A read's DMA writes are posted; the completion must not overtake them (PCIe ordering: a read
    // completion pushes the posted writes before it). The controller ends the request only after a
    // read of the buffer's last page comes back, so mm has applied every write before the unpin and
    // the answer (a load or the final dump right after it sees the data).
    const flush = { done: true, then: undefined as (() => void) | undefined };
    if (m.dmabuf) {
      if (!this.cfg.dmabufImporter) return finish(-EOPNOTSUPP);
      return this.withMapping(m.dmabuf.exporter, m.dmabuf.fd, ctx, (imp) => {
        if (!imp) return finish(-EIO_);
        this.dmabufIo(m, imp, nlb, finish, ctx);
      });
    }
    const submit = (data?: Float64Array): void => {
      this.ctrl.run(ctx.now());
      this.ctrl.submit(
        1,
        { opcode: isRead ? nvme_cmd_read : nvme_cmd_write, nsid: this.nsid, slba: m.slba, nlb, ...(data ? { data } : {}) },
        {
          // P2P segments are bus addresses of the CMB, a kernel buffer one contiguous run: their
          // layout does not change the cost.
          segs: m.p2p || m.kbuf ? [{ addr: 0, len: nlb * NVME_CTRL_PAGE_SIZE }] : segmentsOf(Array.from(pfns)),
          deposit: (_t, words) => this.deposit(m, pfns, words, flush, ctx),
          sent: (finishNs) => this.wake(finishNs),
        },
        (c) => {
          // Traced now, in the order the media was read and written; answered once the flush is back.
          this.ended(m, c, nlb, data, ctx);
          const end = () => finish(c.ret < 0 ? c.ret : nlb, isRead && c.ret === 0 ? c.data : undefined);
          if (flush.done) end();
          else flush.then = end;
        },
      );
    };
    if (isRead) return submit();
    // A write's data: DMA reads of the host pages (or of the provider's p2pmem, or the kernel's buffer).
    if (m.kbuf) return submit(Float64Array.from(m.kbuf.data!));
    const data = new Float64Array(nlb);
    if (m.p2p) {
      this.figures.p2pReads++;
      const id = ctx.request(m.p2p.provider, { type: 'p2pmem_read', dev: ctx.self, page: m.p2p.page, nlb } satisfies P2pMemRead as unknown as Message);
      this.waits.set(id, (r) => {
        const rr = r as unknown as P2pMemReadResult;
        if (rr.type !== 'p2pmem_read_result' || rr.ret < 0) return finish(-5);
        submit(rr.values);
      });
      return;
    }
    let left = nlb;
    let failed = false;
    for (let i = 0; i < nlb; i++) {
      const id = ctx.request(this.mm, { type: 'dma_access', dev: ctx.self, pid: m.pid, addr: m.addr + i * NVME_CTRL_PAGE_SIZE, pfn: pfns[i]!, write: false, tr: { via: 'pin' }, bio: true } as unknown as Message);
      this.waits.set(id, (r) => {
        const rr = r as unknown as { type: string; ret: number; value: number };
        if (rr.type !== 'dma_read_result' || rr.ret < 0) failed = true;
        else data[i] = rr.value;
        if (--left === 0) {
          if (failed) finish(-5);
          else submit(data);
        }
      });
    }
  }

  /** Attach (once) and map (after a move_notify) the dma-buf; `then(imp)` with a current mapping, or undefined on an error. */
  private withMapping(exporter: string, fd: number, ctx: Ctx<Message>, then: (imp: Import | undefined) => void): void {
    const key = `${exporter}/${fd}`;
    let imp = this.imports.get(key);
    if (imp && imp.mapped && !imp.busy) return then(imp);
    if (imp?.busy) return void imp.waiting.push(() => this.withMapping(exporter, fd, ctx, then));
    const map = (i: Import): void => {
      i.busy = true;
      const id = ctx.request(exporter, { type: 'dma_buf_map_attachment', attachment: i.attachment } as unknown as Message);
      this.waits.set(id, (r) => {
        const mr = r as unknown as { ret: number; generation: number };
        i.busy = false;
        if (mr.ret < 0) {
          then(undefined);
        } else {
          i.mapped = true;
          i.generation = mr.generation;
          then(i);
        }
        i.waiting.splice(0).forEach((f) => f());
      });
    };
    if (imp) return map(imp);
    const id = ctx.request(exporter, { type: 'dma_buf_attach', fd, dynamic: true, allow_peer2peer: true } as unknown as Message);
    const placeholder: Import = { attachment: -1, generation: 0, mapped: false, inflight: 0, notifies: [], waiting: [], busy: true };
    this.imports.set(key, placeholder);
    this.waits.set(id, (r) => {
      const ar = r as unknown as { ret: number; attachment: number };
      if (ar.ret < 0) {
        this.imports.delete(key);
        then(undefined);
        return placeholder.waiting.splice(0).forEach((f) => f());
      }
      placeholder.attachment = ar.attachment;
      this.byAttachment.set(`${exporter}/${ar.attachment}`, placeholder);
      map(placeholder);
    });
  }

  /** The exporter's move_notify: drop the mapping; answer once no I/O through it is in flight (unsafe: at once). */
  private moveNotify(env: Envelope<Message>, attachment: number, ctx: Ctx<Message>): void {
    this.moveNotifies++;
    const imp = this.byAttachment.get(`${env.from}/${attachment}`);
    const done = () => ctx.reply(env, { type: 'dma_buf_move_notify_done', attachment } as unknown as Message);
    if (!imp) return done();
    imp.mapped = false;
    if (imp.inflight === 0 || this.cfg.unsafe) return done();
    this.moveNotifyWaits++;
    imp.notifies.push(env);
  }

  /** An O_DIRECT read into (or write from) a dma-buf through the mapping of `imp`. */
  private dmabufIo(m: NvmeDio, imp: Import, nlb: number, finish: (ret: number, data?: Float64Array) => void, ctx: Ctx<Message>): void {
    const d = m.dmabuf!;
    const generation = imp.generation;
    const isRead = m.op === 'read';
    imp.inflight++;
    const access = (i: number, write: boolean, value?: number) =>
      ({ type: 'dma_buf_access', dev: ctx.self, attachment: imp.attachment, generation, page: d.page + i, write, ...(write ? { value } : {}) }) as unknown as Message;
    const release = (): void => {
      if (--imp.inflight > 0) return;
      imp.notifies.splice(0).forEach((env) => ctx.reply(env, { type: 'dma_buf_move_notify_done', attachment: imp.attachment } as unknown as Message));
    };
    const flush = { done: true, then: undefined as (() => void) | undefined };
    const submit = (data?: Float64Array): void => {
      this.ctrl.run(ctx.now());
      this.ctrl.submit(1, { opcode: isRead ? nvme_cmd_read : nvme_cmd_write, nsid: this.nsid, slba: m.slba, nlb, ...(data ? { data } : {}) }, {
        segs: [{ addr: 0, len: nlb * NVME_CTRL_PAGE_SIZE }],
        deposit: (_t, words) => {
          this.figures.p2pWrites++;
          for (let i = 0; i < nlb; i++) ctx.send(d.exporter, access(i, true, words[i]!));
          flush.done = false;
          const id = ctx.request(d.exporter, access(nlb - 1, false));
          this.waits.set(id, () => {
            flush.done = true;
            flush.then?.();
          });
        },
        sent: (finishNs) => this.wake(finishNs),
      }, (c) => {
        this.ended(m, c, nlb, data, ctx);
        const end = () => {
          release();
          finish(c.ret < 0 ? c.ret : nlb, isRead && c.ret === 0 ? c.data : undefined);
        };
        if (flush.done) end();
        else flush.then = end;
      });
    };
    if (isRead) return submit();
    this.figures.p2pReads++;
    const data = new Float64Array(nlb);
    let left = nlb;
    for (let i = 0; i < nlb; i++) {
      const id = ctx.request(d.exporter, access(i, false));
      this.waits.set(id, (r) => {
        data[i] = (r as unknown as { value: number }).value ?? 0;
        if (--left === 0) submit(data);
      });
    }
  }

  private refused(finish: (ret: number) => void): void {
    this.figures.dioEremoteio++;
    finish(-EREMOTEIO);
  }

  /** The device writes the words read into the buffer: DMA writes to host pages, or into the provider's p2pmem. */
  private deposit(m: NvmeDio, pfns: Float64Array, words: Float64Array, flush: { done: boolean; then: (() => void) | undefined }, ctx: Ctx<Message>): void {
    // A kernel buffer in system memory: the words come back with the completion (c.data).
    if (m.kbuf) return;
    let id: number;
    if (m.p2p) {
      this.figures.p2pWrites++;
      ctx.send(m.p2p.provider, { type: 'p2pmem_write', dev: ctx.self, page: m.p2p.page, values: Float64Array.from(words) } satisfies P2pMemWrite as unknown as Message);
      id = ctx.request(m.p2p.provider, { type: 'p2pmem_read', dev: ctx.self, page: m.p2p.page + m.p2p.nlb - 1, nlb: 1 } satisfies P2pMemRead as unknown as Message);
    } else {
      const dma = (i: number, write: boolean) => ({
        type: 'dma_access', dev: ctx.self, pid: m.pid, addr: m.addr + i * NVME_CTRL_PAGE_SIZE, pfn: pfns[i]!, write, ...(write ? { value: words[i]! } : {}), tr: { via: 'pin' }, bio: true,
      }) as unknown as Message;
      for (let i = 0; i < pfns.length; i++) ctx.send(this.mm, dma(i, true));
      id = ctx.request(this.mm, dma(pfns.length - 1, false));
    }
    flush.done = false;
    this.waits.set(id, () => {
      flush.done = true;
      flush.then?.();
    });
  }

  /** The request's final completion (blk_mq_end_request → the bio's end_io). */
  private ended(m: NvmeDio, c: NvmeCompletion, nlb: number, written: Float64Array | undefined, ctx: Ctx<Message>): void {
    const isRead = m.op === 'read';
    if (isRead) this.figures.dioReads++;
    else this.figures.dioWrites++;
    if (c.ret === 0) this.figures.latenciesNs.push(c.completedNs - c.submittedNs);
    else if (!isRead) this.figures.dioFailedWrites++;
    // The media's side, for the checker (oracle-events.ts EvBlk*): what a read found, and whether a
    // write is acknowledged (its words are on the media) or failed (the blocks' content unknown).
    if (ctx.tracing) {
      const values = isRead ? c.data : written;
      ctx.trace(isRead ? 'blk_read' : 'blk_write', {
        dev: ctx.self, nsid: this.nsid, slba: m.slba, nlb, ret: c.ret, attempts: c.attempts,
        ...(values && c.ret === 0 ? { values: Array.from(values) } : {}),
      });
    }
  }
}

/** A provider's published CMB (cmb.ts) as the target of peers' DMA: p2pmem_write / p2pmem_read. */
export function p2pmemReceive(content: Float64Array, env: Envelope<Message>, ctx: Ctx<Message>): boolean {
  const m = env.msg as unknown as P2pMemWrite | P2pMemRead;
  if (m.type !== 'p2pmem_write' && m.type !== 'p2pmem_read') return false;
  const n = m.type === 'p2pmem_write' ? m.values.length : m.nlb;
  const ok = Number.isInteger(m.page) && m.page >= 0 && m.page + n <= content.length;
  if (m.type === 'p2pmem_write') {
    if (!ok) {
      ctx.trace('warn', { what: `${m.dev} P2P write to pages [${m.page}, ${m.page + n}) of a CMB of ${content.length} pages` });
      return true;
    }
    for (let i = 0; i < n; i++) {
      content[m.page + i] = m.values[i]!;
      if (ctx.tracing) ctx.trace('p2p_access', { dev: m.dev, exporter: ctx.self, buf: 0, page: m.page + i, gen: 0, write: true, value: m.values[i]! });
    }
    return true;
  }
  const values = new Float64Array(ok ? n : 0);
  for (let i = 0; ok && i < n; i++) {
    values[i] = content[m.page + i]!;
    if (ctx.tracing) ctx.trace('p2p_access', { dev: m.dev, exporter: ctx.self, buf: 0, page: m.page + i, gen: 0, write: false, value: values[i]! });
  }
  ctx.reply(env, { type: 'p2pmem_read_result', ret: ok ? 0 : -EINVAL, values } satisfies P2pMemReadResult as unknown as Message);
  return true;
}

/**
 * A provider's p2pmem pool as mm's p2pmem_alloc_mmap uses it (drivers/pci/p2pdma.c v6.2–v6.15):
 * `p2pmem_alloc` is the gen_pool_alloc_owner of a process's mmap of p2pmem/allocate (-ENOMEM when
 * no run of that many pages is free), `p2pdma_page_free` the page's return to the pool when its
 * last reference goes (p2pdma_page_free → gen_pool_free_owner).
 */
export function p2pmemPool(cmb: P2pMemProvider, env: Envelope<Message>, ctx: Ctx<Message>): boolean {
  const m = env.msg as unknown as { type: string; nr_pages?: number; page?: number };
  if (m.type === 'p2pmem_alloc') {
    const n = m.nr_pages!;
    const page = n >= 1 && n <= cmb.pages ? cmb.alloc(n) : -1;
    ctx.reply(env, { type: 'p2pmem_alloc_result', ret: page < 0 ? ENOMEM : 0, page: Math.max(0, page) } as unknown as Message);
    return true;
  }
  if (m.type === 'p2pdma_page_free') {
    const page = m.page!;
    if (page < cmb.pages && cmb.allocated[page]) cmb.free(page, 1);
    else ctx.trace('warn', { what: `p2pdma_page_free of page ${page}, not allocated in a CMB of ${cmb.pages} pages` });
    return true;
  }
  return false;
}
