// What the NIC actor offers the files that model its parts (umem, ODP, faults, QPs…): its context,
// its cost table and its statistics. Costs are simulated ns, one table, overridable by a scenario.
import type { Ctx, Envelope, Message } from '@svmsim/runtime';
import type { InvalidateAck, MmRequest } from '@svmsim/kernel-mm';
import type { DmaBufMoveNotifyDone, DmaBufRequest } from '@svmsim/gpu-driver/dma-buf-protocol';
import type { WireMessage } from './ib-wire.js';
import type { RdmaReply } from './rdma-protocol.js';
import type { P2pMemRead, P2pMemWrite, RdmaRwDone } from '@svmsim/nvme';
import type { LeafMr, MkeyTable } from './mr.js';
import type { WireCosts } from './link.js';
import type { PinnedVm } from './umem.js';

export type Reply = Message & { ret?: number };

/** Everything the NIC sends: to mm, to a dma-buf exporter, to the peer, and its replies to the process. */
export type NicOut = MmRequest | InvalidateAck | DmaBufRequest | DmaBufMoveNotifyDone | WireMessage | RdmaReply | RdmaRwDone | P2pMemWrite | P2pMemRead;

export interface NicCosts extends WireCosts {
  /** ibv_reg_mr / ibv_dereg_mr: the syscall and mkey set-up, besides pinning and UMRs. */
  regMrNs: number;
  /** One UMR WQE posted and its completion waited for (mlx5r_umr_post_send_wait). */
  umrNs: number;
  /** Each MTT entry a UMR writes or zaps. */
  umrPerEntryNs: number;
  /** ib_dma_map_page / ib_dma_unmap_page, per page. */
  dmaMapPerPageNs: number;
  /** The NIC's DMA of one page between translation and the PCIe transaction. */
  dmaPerPageNs: number;
  /** From a page-fault EQE to its work item running (mlx5_ib_eq_pf_int → mlx5_ib_eqe_pf_action). */
  pfInterruptNs: number;
  /** MLX5_CMD_OP_PAGE_FAULT_RESUME: the command that lets the QP go on. */
  pfResumeNs: number;
  /** An asynchronous prefetch's work item starting (queue_work on system_unbound_wq). */
  workQueueNs: number;
  /** A WQE's doorbell and the NIC fetching it. */
  postNs: number;
}
export const DEFAULT_NIC_COSTS: NicCosts = {
  wireLatencyNs: 1_000, wirePerPageNs: 330, regMrNs: 5_000, umrNs: 1_500, umrPerEntryNs: 2, dmaMapPerPageNs: 40,
  dmaPerPageNs: 200, pfInterruptNs: 3_000, pfResumeNs: 1_000, workQueueNs: 2_000, postNs: 200,
};

export interface NicStats {
  mrsRegistered: number;
  mrsDeregistered: number;
  mrsByKind: Record<string, number>;
  regErrors: Record<string, number>;
  pagesPinned: number;
  pagesUnpinned: number;
  /** RDMA messages completed (either direction, every opcode): requests our NIC answered or completed. */
  rdmaMessages: number;
  rdmaMessagesByOpcode: Record<string, number>;
  /** When the first and last message completed (ns; -1: none): the NIC's busy span. */
  firstMessageAt: number;
  lastMessageAt: number;
  pagesTransferred: number;
  /** ODP page faults raised by the hardware (EQEs), by subtype; and those the handler resolved. */
  odpFaults: number;
  odpFaultsByType: Record<string, number>;
  odpFaultsResolved: number;
  /** Resumed with error (the QP goes to error). */
  odpFaultErrors: number;
  /** Pages ib_umem_odp_map_dma_and_lock mapped for faults (not prefetch). */
  odpFaultPages: number;
  faultLatencyNs: number[];
  /** hmm_range_fault -EBUSY: read_begin again; mmu_interval_read_retry said stale: again. */
  ebusyRetries: number;
  readRetries: number;
  /** Responder: RNR NAKs sent (no receive WQE, or an ODP fault outstanding); requests dropped instead. */
  rnrNaksSent: number;
  requestsDroppedOnFault: number;
  /** UD receives dropped (no receive WQE, or a fault). */
  udDrops: number;
  /** Completions in error this NIC delivered, by status. */
  wqeErrors: Record<string, number>;
  invalidations: number;
  invalidationsByEvent: Record<string, number>;
  invalidationsRefused: number;
  /** MTT entries zapped by invalidations; pages dma-unmapped; of those, mapped writable (set_page_dirty). */
  pagesInvalidated: number;
  pagesUnmapped: number;
  pagesDirtiedAtUnmap: number;
  /** Time each blockable invalidate callback took before acking (lock, zap UMR, DMA drain, unmap), ns. */
  invalidateWaitNs: number[];
  /** ZAP UMRs that had to wait for DMA in flight through the entries they zapped. */
  zapsWaitedForDma: number;
  /** unsafe-odp: acks sent while DMA through the zapped entries was still in flight. */
  unsafeEarlyAcks: number;
  /**
   * unsafe-odp: DMAs issued through an entry whose invalidation (move_notify) the driver had already
   * acked, at a seq (generation) older than that invalidation's: each one the checker must catch.
   */
  unsafeBugPaths: number;
  umrs: number;
  mttEntriesWritten: number;
  prefetches: number;
  prefetchPages: number;
  implicitChildrenCreated: number;
  implicitChildrenDestroyed: number;
  /** implicit_get_child_mr lost the __xa_cmpxchg to a concurrent fault and used the winner's child. */
  implicitChildRaces: number;
  dmabufMoveNotifies: number;
  dmabufRemaps: number;
  warnings: number;
}

export function newNicStats(): NicStats {
  return {
    mrsRegistered: 0, mrsDeregistered: 0, mrsByKind: {}, regErrors: {}, pagesPinned: 0, pagesUnpinned: 0, rdmaMessages: 0,
    rdmaMessagesByOpcode: {}, firstMessageAt: -1, lastMessageAt: -1, pagesTransferred: 0, odpFaults: 0, odpFaultsByType: {},
    odpFaultsResolved: 0, odpFaultErrors: 0, odpFaultPages: 0, faultLatencyNs: [], ebusyRetries: 0, readRetries: 0, rnrNaksSent: 0,
    requestsDroppedOnFault: 0, udDrops: 0, wqeErrors: {}, invalidations: 0, invalidationsByEvent: {}, invalidationsRefused: 0,
    pagesInvalidated: 0, pagesUnmapped: 0, pagesDirtiedAtUnmap: 0, invalidateWaitNs: [], zapsWaitedForDma: 0, unsafeEarlyAcks: 0, unsafeBugPaths: 0, umrs: 0, mttEntriesWritten: 0,
    prefetches: 0, prefetchPages: 0, implicitChildrenCreated: 0, implicitChildrenDestroyed: 0, implicitChildRaces: 0,
    dmabufMoveNotifies: 0, dmabufRemaps: 0, warnings: 0,
  };
}

export const bump = (r: Record<string, number>, k: string, n = 1): void => {
  r[k] = (r[k] ?? 0) + n;
};

/** What the NIC's parts use of the actor. */
export interface NicHost {
  readonly id: string;
  readonly mm: string;
  readonly ctx: Ctx<Message>;
  readonly costs: NicCosts;
  readonly stats: NicStats;
  readonly mkeys: MkeyTable;
  /** Interval-notifier subscriptions → the ODP umem (an explicit MR or an implicit child). */
  readonly bySub: Map<number, LeafMr>;
  /** mm->pinned_vm per process (umem.ts). */
  readonly pinnedVm: PinnedVm;
  /** unsafe-odp: invalidations and move_notify ack before the DMA in flight drains. */
  readonly unsafe: boolean;
  /** A request to mm (or, for dma-buf, the exporter); `then` gets the reply (or request_timeout / actor_died). */
  call(to: string, msg: NicOut, then: (r: Reply) => void): void;
  /** Fire and forget. */
  send(to: string, msg: NicOut): void;
  /** Answer a request. */
  reply(env: Envelope<Message>, msg: NicOut): void;
  /** `then` after ns of simulated time (at once, synchronously, when ns <= 0). */
  sleep(ns: number, then: () => void): void;
  /** A timer that can be cancelled (never runs within this delivery). */
  timer(ns: number, then: () => void): number;
  cancelTimer(id: number): void;
  trace(ev: string, fields: Record<string, unknown>): void;
  warn(what: string, fields?: Record<string, unknown>): void;
}

/** The errno of a reply: its `ret`, or -EIO when no answer came (request_timeout, actor_died). */
export function retOf(r: Reply): number {
  return typeof r.ret === 'number' ? r.ret : -5;
}
