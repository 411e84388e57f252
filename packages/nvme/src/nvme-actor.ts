// The `nvme` actor: the NVMe controller as the block device behind mm's bios (bio_submit /
// bio_done, kernel-mm protocol.ts). Page-cache reads, writeback and swap-out/in become READ and
// WRITE commands on I/O queue 1; each bio's `dev` (a file's block device, or `swap`) is a
// namespace of its own. The controller runs on the scheduler's clock: the actor runs its events
// up to now on every message and sets one timer for the next.
// Followed: drivers/nvme/host/pci.c, core.c of v6.6.
import { rejectBadMessage } from '@svmsim/runtime';
import { NVME_SHAPES } from './message-shapes.js';
import type { Actor, ActorId, Ctx, Envelope, Message } from '@svmsim/runtime';
import { NvmeController, type NvmeConfig, type NvmeFailure } from './controller.js';
import { DEFAULT_NVME_COSTS, type NvmeCosts } from './cost.js';
import { nvme_cmd_read, nvme_cmd_write } from './protocol.js';
import { DirectIoHost, p2pmemPool, p2pmemReceive } from './blkdev-dio.js';
import { pciTopology, type PciNode } from './p2pdma.js';
import { P2pMemProvider } from './cmb.js';
import { NvmetTarget, type NvmetConfig } from './nvmet-rdma.js';

/** Blocks per namespace in the actor (file blocks and swap slots): 2^20 = 4 GiB each. */
export const NVME_ACTOR_NAMESPACE_BLOCKS = 1 << 20;
/** The most namespaces (block devices) the actor creates. */
export const NVME_ACTOR_NAMESPACES_LIMIT = 64;

export interface NvmeActorConfig {
  readonly queueDepth?: number;
  readonly channels?: number;
  readonly costs?: Partial<NvmeCosts>;
  /** The controller fails this way at `failAtNs` (the nvme-reset scenario). */
  readonly failure?: NvmeFailure;
  readonly failAtNs?: number;
  readonly ioTimeoutNs?: number;
  readonly resetNs?: number;
  /**
   * A controller of the scenario's `devices` (kind nvme): O_DIRECT requests of the process on its
   * raw namespace (blkdev-dio.ts). Absent for the `nvme` actor behind mm's bios.
   */
  readonly dio?: {
    readonly unsafe?: boolean;
    /** Blocks of the raw namespace (default 65536). */
    readonly blocks?: number;
    /** The queue supports P2P (BLK_FEAT_PCI_P2PDMA); default true. */
    readonly queueSupportsP2p?: boolean;
    /** The out-of-tree dma-buf importer (I/O into a GPU's VRAM BO). */
    readonly dmabufImporter?: boolean;
    /** The machine's PCI topology (p2pdma.ts), for P2P requests. */
    readonly pci?: { readonly nodes: readonly PciNode[]; readonly whitelisted: readonly string[]; readonly cpuSupportsP2pdma: boolean };
    /** The in-kernel NVMe-oF target exporting the raw namespace over RDMA (nvmet-rdma.ts). */
    readonly nvmet?: NvmetConfig;
  };
  /** Pages of the controller's CMB, published as p2pmem (nvme_map_cmb → pci_p2pmem_publish); 0: none. */
  readonly cmbPages?: number;
  /** mm's actor id (DMA and unpins of direct I/O). */
  readonly mm?: string;
}

interface BioSubmit { type: 'bio_submit'; op: 'read' | 'write'; dev: string; block: number; value?: number }

/** A bio in the controller: its envelope, the timer set for its finish, its result once known. */
interface Pending {
  /** The bio's request; undefined for a direct I/O's wake-up (blkdev-dio.ts answers it itself). */
  readonly env: Envelope<Message> | undefined;
  /** The timer of the command's expected finish; its handler sends the reply. */
  timer: number;
  timerAt: number;
  result?: Message;
}

export function createNvme(config: unknown, id: ActorId = 'nvme'): Actor<Message> {
  const cfg = (config ?? {}) as NvmeActorConfig;
  const ctrl = new NvmeController({
    costs: { ...DEFAULT_NVME_COSTS, ...cfg.costs },
    // nsid 1 is unused; each block device gets a namespace on first use (nsid 2, 3, ...).
    namespaceBlocks: [1],
    ...(cfg.queueDepth !== undefined ? { queueDepth: cfg.queueDepth } : {}),
    ...(cfg.channels !== undefined ? { channels: cfg.channels } : {}),
    ...(cfg.ioTimeoutNs !== undefined ? { ioTimeoutNs: cfg.ioTimeoutNs } : {}),
    ...(cfg.resetNs !== undefined ? { resetNs: cfg.resetNs } : {}),
    // A controller that cannot fail never times out: no timeout timers, and the actor sets one
    // timer per command (its finish), as many messages as a fixed-latency disk.
    armTimeouts: cfg.failure !== undefined,
  });
  const canFail = cfg.failure !== undefined;
  if (cfg.failure) ctrl.failAt(cfg.failAtNs ?? 0, cfg.failure);
  const nsidOf = new Map<string, number>();
  const byTimer = new Map<number, Pending>();
  let tick = -1;
  let tickAt = Infinity;
  let cur: Ctx<Message> | undefined;
  const dioBlocks = cfg.dio?.blocks ?? 1 << 16;
  const topology = cfg.dio?.pci ? pciTopology(cfg.dio.pci.nodes, cfg.dio.pci.whitelisted, cfg.dio.pci.cpuSupportsP2pdma) : undefined;
  const dio = cfg.dio
    ? new DirectIoHost(ctrl, ctrl.addNamespace(dioBlocks), {
      unsafe: cfg.dio.unsafe === true,
      queueSupportsP2p: cfg.dio.queueSupportsP2p !== false,
      blocks: dioBlocks,
      dmabufImporter: cfg.dio.dmabufImporter === true,
      ...(topology ? { topology } : {}),
    }, cfg.mm ?? 'mm', (finishNs) => {
      const ctx = cur!;
      const p: Pending = { env: undefined, timer: ctx.after(Math.max(0, finishNs - ctx.now()), { type: 'nvme_cqe' } as Message), timerAt: finishNs };
      byTimer.set(p.timer, p);
    })
    : undefined;
  const cmb = cfg.cmbPages ? new P2pMemProvider('self', cfg.cmbPages) : undefined;
  cmb?.publish(true);
  // Warnings of the target's setup wait for the first delivery's ctx (the trace is the ctx's).
  const setupWarnings: string[] = [];
  const nvmet = dio && cfg.dio?.nvmet
    ? new NvmetTarget(cfg.dio.nvmet, dio, topology, cfg.dio.queueSupportsP2p !== false, id, (w) => setupWarnings.push(`nvmet: ${w}`))
    : undefined;

  function nsid(dev: string): number {
    let id = nsidOf.get(dev);
    if (id === undefined) {
      if (nsidOf.size >= NVME_ACTOR_NAMESPACES_LIMIT) return -1;
      id = ctrl.addNamespace(NVME_ACTOR_NAMESPACE_BLOCKS);
      nsidOf.set(dev, id);
    }
    return id;
  }

  function submit(env: Envelope<Message>, bio: BioSubmit, ctx: Ctx<Message>): void {
    const id = Number.isInteger(bio.block) && bio.block >= 0 && (bio.op === 'read' || bio.op === 'write') ? nsid(bio.dev) : -1;
    if (id < 0) return ctx.reply(env, { type: 'bio_done', ret: -22, value: 0 } as Message);
    const isWrite = bio.op === 'write';
    const p: Pending = { env, timer: -1, timerAt: -1 };
    ctrl.submit(
      1,
      { opcode: isWrite ? nvme_cmd_write : nvme_cmd_read, nsid: id, slba: bio.block, nlb: 1, ...(isWrite ? { data: Float64Array.of(bio.value ?? 0) } : {}) },
      {
        segs: [{ addr: 0, len: 4096 }],
        sent: (finishNs) => {
          p.timer = ctx.after(Math.max(0, finishNs - ctx.now()), { type: 'nvme_cqe' } as Message);
          p.timerAt = finishNs;
          byTimer.set(p.timer, p);
        },
      },
      (c) => {
        const reply = { type: 'bio_done', ret: c.ret, value: isWrite ? (bio.value ?? 0) : (c.data?.[0] ?? 0) } as Message;
        // Completed at its expected finish: answered from that timer's handler. Otherwise
        // (a timeout's poll, a reset, a dead controller) answered now.
        if (p.timerAt >= ctx.now() && byTimer.has(p.timer)) p.result = reply;
        else {
          if (p.timer >= 0) byTimer.delete(p.timer);
          ctx.reply(env, reply);
        }
      },
    );
  }

  /** A message of a feature this controller was not given (no O_DIRECT path, no published CMB): refused like a malformed one. */
  const notConfigured = (m: Message): string | undefined => {
    if ((m.type === 'nvme_dio' || m.type === 'dma_buf_move_notify' || m.type === 'nvme_drain') && !dio) return 'this controller serves no direct I/O';
    if (m.type === 'nvmet_rdma_cmd' && !nvmet) return 'this controller\'s namespace is not exported by an NVMe-oF target';
    if ((m.type === 'p2pmem_write' || m.type === 'p2pmem_read' || m.type === 'p2pmem_alloc' || m.type === 'p2pdma_page_free') && !cmb) return 'this controller publishes no CMB';
    return undefined;
  };

  return {
    receive(env, ctx) {
      cur = ctx;
      if (setupWarnings.length > 0) for (const what of setupWarnings.splice(0)) ctx.trace('warn', { what });
      // The boundary: a malformed bio is answered bad_message and changes nothing (message-shapes.ts).
      if (rejectBadMessage(env as Envelope<Message>, ctx, NVME_SHAPES, notConfigured)) return;
      const m = env.msg as Message;
      // A command's own timer means its finish has come, even if a thread-mode clock reads a
      // hair earlier than the simulated finish.
      const cqe = m.type === 'nvme_cqe' ? byTimer.get(env.id) : undefined;
      ctrl.run(Math.max(ctx.now(), cqe?.timerAt ?? 0));
      if (m.type === 'bio_submit') submit(env as Envelope<Message>, m as unknown as BioSubmit, ctx);
      else if (nvmet?.receive(env as Envelope<Message>, ctx)) { /* nvmet-rdma.ts */ }
      else if (dio?.receive(env as Envelope<Message>, ctx)) { /* blkdev-dio.ts */ }
      else if (cmb && p2pmemReceive(cmb.content, env as Envelope<Message>, ctx)) { /* a peer's DMA into our CMB */ }
      else if (cmb && p2pmemPool(cmb, env as Envelope<Message>, ctx)) { /* mm's p2pmem_alloc_mmap of our CMB, or the free of one of its pages */ }
      else if (m.type === 'nvme_cqe') {
        const p = cqe;
        if (p) {
          byTimer.delete(env.id);
          if (p.result && p.env) ctx.reply(p.env, p.result);
        }
      } else if (m.type === 'nvme_tick') {
        tick = -1;
        tickAt = Infinity;
      } else if (m.type !== 'actor_died') {
        throw new Error(`nvme: unknown message '${m.type}' from ${env.from}`);
      }
      if (!canFail) return;
      const next = ctrl.nextEventNs();
      if (next < tickAt) {
        if (tick >= 0) ctx.cancel(tick);
        tick = ctx.after(Math.max(0, next - ctx.now()), { type: 'nvme_tick' } as Message);
        tickAt = next;
      }
    },
    summary: () => ({
      completed: ctrl.stats.completed,
      ioErrors: ctrl.stats.ioErrors,
      failedWrites: ctrl.stats.failedWrites,
      timeouts: ctrl.stats.timeouts,
      aborts: ctrl.stats.aborts,
      resets: ctrl.stats.resets,
      retries: ctrl.stats.retries,
      submitWaits: ctrl.stats.submitWaits,
      outstanding: ctrl.outstanding,
      ...latencyFigures(ctrl.stats.latenciesNs, ctrl.now),
      ...(dio ? dioSummary(dio) : {}),
      ...(nvmet ? nvmetSummary(nvmet) : {}),
      // A published CMB's pages handed out now (p2pmem mappings, nvmet SGLs): 0 once every user freed them.
      ...(cmb ? { cmbPagesAllocated: cmb.allocated.reduce((a, b) => a + b, 0) } : {}),
    }),
  };
}

/** The direct-I/O figures: IOPS over the span from the first request to the last completion. */
function dioSummary(dio: DirectIoHost): Record<string, number | string> {
  const f = dio.figures;
  const span = f.lastIoAt - f.firstIoAt;
  const lat = latencyFigures(f.latenciesNs, span);
  return {
    kind: 'nvme', dioReads: f.dioReads, dioWrites: f.dioWrites, dioErrors: f.dioErrors, unsafeBugPaths: f.unsafeBugPaths, dioFailedWrites: f.dioFailedWrites,
    dioEremoteio: f.dioEremoteio, dioIops: lat.iops, dioLatencyP50Ns: lat.latencyP50Ns, dioLatencyP99Ns: lat.latencyP99Ns,
    pinsHeldMax: f.pinsHeldMax, pinsHeldTimeWeighted: Math.round(f.pinsHeldTimeWeighted * 100) / 100,
    p2pReads: f.p2pReads, p2pWrites: f.p2pWrites, dioWaits: dio.outstandingWaits, pinsHeld: dio.pinsHeldNow,
    dmabufMoveNotifies: dio.moveNotifies, dmabufMoveNotifyWaits: dio.moveNotifyWaits,
  };
}

/** The NVMe-oF target's figures: commands, where their data was staged, and its p2p device. */
function nvmetSummary(t: NvmetTarget): Record<string, number | string> {
  const f = t.figures;
  return {
    nvmetCmds: f.cmds, nvmetP2pmemSgls: f.p2pmemSgls, nvmetSystemSgls: f.systemSgls, nvmetInlineSgls: f.inlineSgls,
    nvmetP2pAllocFailed: f.p2pAllocFailed, nvmetErrors: f.errors, nvmetP2pDev: t.p2pDevice ?? 'none', nvmetEnableRet: t.enableRet,
  };
}

/** IOPS over the run, and latency p50/p99 in ns. */
export function latencyFigures(latenciesNs: readonly number[], elapsedNs: number): { iops: number; latencyP50Ns: number; latencyP99Ns: number } {
  const sorted = [...latenciesNs].sort((a, b) => a - b);
  const at = (q: number) => (sorted.length ? sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]! : 0);
  return { iops: elapsedNs > 0 ? Math.round((sorted.length * 1e9) / elapsedNs) : 0, latencyP50Ns: at(0.5), latencyP99Ns: at(0.99) };
}
