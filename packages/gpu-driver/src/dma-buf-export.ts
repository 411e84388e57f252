// The GPU as dma-buf exporter of its VRAM BOs: amdgpu_dma_buf.c (amdgpu_gem_prime_export,
// amdgpu_dma_buf_attach, _pin, _map) with the dma-buf core's rules (drivers/dma-buf/dma-buf.c,
// v6.6; research/drivers.md §5, errata 12). The protocol is dma-buf-protocol.ts.
//
//   export   DRM_IOCTL_PRIME_HANDLE_TO_FD of a VRAM BO (a userptr BO is refused, -EPERM, as
//            amdgpu_gem_prime_export refuses BOs with a user mm)
//   attach   a dynamic importer (move_notify) or a static one; a static importer of this dynamic
//            exporter gets the buffer pinned at attach (dma_buf_attach pins and maps it then)
//   map      CONFIG_DMABUF_MOVE_NOTIFY off (`moveNotify: false`, the Kconfig default): a dynamic
//            exporter pins the buffer at map (dma_buf_map_attachment → ops->pin), in VRAM since the
//            importer allows peer2peer; unmap unpins. A pinned BO is never evicted. On: nothing is
//            pinned; the answer waits while a move of the BO is under way (the importer waits on
//            the move fence)
//   move     before TTM moves the BO (amdgpu_bo_move → amdgpu_bo_move_notify →
//            dma_buf_move_notify): every dynamic attachment's move_notify, answered by its importer
//            once it stopped using the mapping; only then the copy (vram-bos.ts), and the buffer's
//            generation (its placement) changes
//   access   an importer's DMA to the BO: applied to the BO's memory if it went through a mapping
//            of the current generation; through an older one it hit memory the BO has left: a write
//            is lost, a read returns 0. Each access is traced (`p2p_access`, with the generation
//            used) and each move (`dmabuf_move`, with the new one) for the checker.
//   free     GEM_CLOSE drops the handle; the dma-buf keeps the BO until its last attachment goes.
import { EBADF, EINVAL, ENOENT, EPERM } from '@svmsim/kernel-mm';
import type { Envelope, Message } from '@svmsim/runtime';
import type { Bo } from './bo.js';
import type { DmaBufAccess, DmaBufAttach, DmaBufDetach, DmaBufExport, DmaBufMapAttachment, DmaBufMoveNotify, DmaBufReply, DmaBufUnmapAttachment } from './dma-buf-protocol.js';

interface Exported {
  fd: number;
  bo: Bo;
  attachments: Set<number>;
  /** GEM_CLOSE came: the BO goes with the last attachment. */
  closed: (() => void) | null;
}

interface Attachment {
  id: number;
  fd: number;
  importer: string;
  dynamic: boolean;
  mapped: boolean;
  /** This attachment holds a pin (a static importer, or a map without move_notify). */
  pinned: boolean;
}

/** What the exporter needs of the GPU actor. */
export interface ExporterHost {
  readonly id: string;
  bo(handle: number): Bo | undefined;
  reply(env: Envelope<Message>, msg: DmaBufReply): void;
  /** A request to an importer; `then` with its answer. */
  request(to: string, msg: DmaBufMoveNotify, then: () => void): void;
  trace(ev: string, fields: Record<string, unknown>): void;
}

export class DmaBufExporter {
  private readonly byFd = new Map<number, Exported>();
  private readonly byBo = new Map<Bo, Exported>();
  private readonly atts = new Map<number, Attachment>();
  /** Pins per BO (attachments holding one). */
  private readonly pins = new Map<Bo, number>();
  /** Placement generation per BO, and maps waiting for a move to end. */
  private readonly generation = new Map<Bo, number>();
  private readonly mapWaiters = new Map<Bo, (() => void)[]>();
  private nextFd = 3;
  private nextAtt = 1;
  readonly stats = { dmabufExports: 0, dmabufAttachments: 0, dmabufMoveNotifies: 0, dmabufMoves: 0, p2pWrites: 0, p2pReads: 0, p2pStaleAccesses: 0 };

  constructor(private readonly host: ExporterHost, readonly moveNotify: boolean) {}

  export(env: Envelope<Message>, m: DmaBufExport): void {
    const bo = this.host.bo(m.handle);
    if (!bo || bo.freeing) return this.host.reply(env, { type: 'dma_buf_export_result', ret: ENOENT, fd: -1, pages: 0 });
    if (bo.domain !== 'vram') return this.host.reply(env, { type: 'dma_buf_export_result', ret: EPERM, fd: -1, pages: 0 });
    let e = this.byBo.get(bo);
    if (!e) {
      e = { fd: this.nextFd++, bo, attachments: new Set(), closed: null };
      this.byFd.set(e.fd, e);
      this.byBo.set(bo, e);
      this.generation.set(bo, 1);
      this.stats.dmabufExports++;
    }
    this.host.reply(env, { type: 'dma_buf_export_result', ret: 0, fd: e.fd, pages: bo.pages });
  }

  attach(env: Envelope<Message>, m: DmaBufAttach): void {
    const e = this.byFd.get(m.fd);
    if (!e) return this.host.reply(env, { type: 'dma_buf_attach_result', ret: EBADF, attachment: 0, pages: 0 });
    const a: Attachment = { id: this.nextAtt++, fd: e.fd, importer: env.from, dynamic: m.dynamic === true, mapped: false, pinned: false };
    if (!a.dynamic) this.pin(a, e.bo);
    this.atts.set(a.id, a);
    e.attachments.add(a.id);
    this.stats.dmabufAttachments++;
    this.host.reply(env, { type: 'dma_buf_attach_result', ret: 0, attachment: a.id, pages: e.bo.pages });
  }

  detach(env: Envelope<Message>, m: DmaBufDetach): void {
    const a = this.atts.get(m.attachment);
    if (!a) return this.host.reply(env, { type: 'dma_buf_result', ret: EINVAL });
    const e = this.byFd.get(a.fd)!;
    if (a.pinned) this.unpin(a, e.bo);
    this.atts.delete(a.id);
    e.attachments.delete(a.id);
    this.host.reply(env, { type: 'dma_buf_result', ret: 0 });
    if (e.attachments.size === 0 && e.closed) this.release(e);
  }

  map(env: Envelope<Message>, m: DmaBufMapAttachment): void {
    const a = this.atts.get(m.attachment);
    if (!a) return this.host.reply(env, { type: 'dma_buf_map_result', ret: EINVAL, generation: 0, pinned: false });
    const bo = this.byFd.get(a.fd)!.bo;
    if (bo.local?.moving) return void this.waitersOf(bo).push(() => this.map(env, m));
    if (a.dynamic && !this.moveNotify && !a.pinned) this.pin(a, bo);
    a.mapped = true;
    this.host.reply(env, { type: 'dma_buf_map_result', ret: 0, generation: this.generation.get(bo)!, pinned: a.pinned });
  }

  unmap(m: DmaBufUnmapAttachment): void {
    const a = this.atts.get(m.attachment);
    if (!a) return;
    a.mapped = false;
    if (a.dynamic && a.pinned) this.unpin(a, this.byFd.get(a.fd)!.bo);
  }

  access(env: Envelope<Message>, m: DmaBufAccess): void {
    const a = this.atts.get(m.attachment);
    const bo = a ? this.byFd.get(a.fd)?.bo : undefined;
    const mem = bo?.local;
    if (!a || !bo || !mem || !(Number.isInteger(m.page) && m.page >= 0 && m.page < bo.pages)) {
      if (!m.write) this.host.reply(env, { type: 'dma_buf_access_result', ret: EINVAL, value: 0 });
      return;
    }
    const current = this.generation.get(bo)!;
    const stale = m.generation !== current;
    if (stale) this.stats.p2pStaleAccesses++;
    this.host.trace('p2p_access', { dev: m.dev, exporter: this.host.id, buf: a.fd, page: m.page, gen: m.generation, write: m.write, value: m.write ? m.value : mem.content[m.page] });
    if (m.write) {
      this.stats.p2pWrites++;
      if (!stale) mem.content[m.page] = m.value!;
      return;
    }
    this.stats.p2pReads++;
    this.host.reply(env, { type: 'dma_buf_access_result', ret: 0, value: stale ? 0 : mem.content[m.page] });
  }

  /** TTM may evict the BO: no attachment holds a pin. */
  movable(bo: Bo): boolean {
    return (this.pins.get(bo) ?? 0) === 0;
  }

  /** The BO has importers that may map it (the KFD restore leaves those where they are). */
  exported(bo: Bo): boolean {
    return (this.byBo.get(bo)?.attachments.size ?? 0) > 0;
  }

  /** dma_buf_move_notify before the BO moves: every dynamic importer answers; then the generation changes and `then`. */
  beforeMove(bo: Bo, then: () => void): void {
    const e = this.byBo.get(bo);
    if (!e) return then();
    const dynamic = [...e.attachments].map((id) => this.atts.get(id)!).filter((a) => a.dynamic);
    let left = dynamic.length;
    const moved = (): void => {
      const gen = this.generation.get(bo)! + 1;
      this.generation.set(bo, gen);
      this.stats.dmabufMoves++;
      this.host.trace('dmabuf_move', { exporter: this.host.id, buf: e.fd, gen });
      then();
    };
    if (left === 0) return moved();
    for (const a of dynamic) {
      this.stats.dmabufMoveNotifies++;
      this.host.request(a.importer, { type: 'dma_buf_move_notify', attachment: a.id }, () => --left === 0 && moved());
    }
  }

  /** The move is over: maps that waited for it are answered. */
  afterMove(bo: Bo): void {
    const w = this.mapWaiters.get(bo);
    this.mapWaiters.delete(bo);
    w?.forEach((f) => f());
  }

  /** GEM_CLOSE of the BO: `free` now, or when the dma-buf's last attachment goes. */
  close(bo: Bo, free: () => void): void {
    const e = this.byBo.get(bo);
    if (!e) return free();
    e.closed = free;
    if (e.attachments.size === 0) this.release(e);
  }

  private release(e: Exported): void {
    this.byFd.delete(e.fd);
    this.byBo.delete(e.bo);
    this.generation.delete(e.bo);
    this.pins.delete(e.bo);
    e.closed!();
  }

  private pin(a: Attachment, bo: Bo): void {
    a.pinned = true;
    this.pins.set(bo, (this.pins.get(bo) ?? 0) + 1);
  }

  private unpin(a: Attachment, bo: Bo): void {
    a.pinned = false;
    this.pins.set(bo, this.pins.get(bo)! - 1);
  }

  private waitersOf(bo: Bo): (() => void)[] {
    let w = this.mapWaiters.get(bo);
    if (!w) this.mapWaiters.set(bo, (w = []));
    return w;
  }
}

