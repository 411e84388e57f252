// ODP page faults (drivers/infiniband/hw/mlx5/odp.c, v6.1; research/drivers.md §4, errata 16–18).
// A QP that meets an MTT entry it cannot use stops and the NIC raises a page-fault EQE; the QP
// stays stopped until the driver answers PAGE_FAULT_RESUME.
//
//   mlx5_ib_eq_pf_int / _process   the EQE (MLX5_IB_NUM_PF_EQE = 0x1000 entries) becomes one work
//                                  item on the `mlx5_ib_page_fault` workqueue (WQ_HIGHPRI |
//                                  WQ_UNBOUND, max_active MLX5_NUM_CMD_EQE = 32): up to 32 run at once
//   mlx5_ib_mr_wqe_pfault_handler  a WQE fault (requester: our send WQE's local buffer; responder: the
//                                  receive WQE a SEND lands in): every data segment of the WQE
//   mlx5_ib_mr_rdma_pfault_handler an RDMA fault (a remote READ / WRITE / atomic hit an rkey's page):
//                                  rdma_op_len bytes at rdma_va. (The op_len-0 case, one packet then
//                                  a prefetch after the resume, is not modelled: our messages always
//                                  carry their length.)
//   pagefault_single_data_segment  the mkey from odp_mkeys (one that is not there, a pinned MR or one
//                                  being deregistered, counts as mapped: ret 0), a reference on it,
//                                  pagefault_mr
//   pagefault_mr                   explicit → pagefault_real_mr; implicit → pagefault_implicit_mr;
//                                  dma-buf → pagefault_dmabuf_mr
//   pagefault_real_mr              access READ | WRITE if the umem is writable and not a PREFETCH
//                                  downgrade (so a NIC read of a writable MR write-faults: errata 13);
//                                  ib_umem_odp_map_dma_and_lock; mlx5r_umr_update_xlt of the pages;
//                                  unlock
//   mlx5_ib_page_fault_resume      error 0: the QP goes on (and faults again if an invalidation won
//                                  the race: -EAGAIN resumes without error); error 1: the QP goes to
//                                  the error state
import { EAGAIN, EFAULT, PAGE_SIZE } from '@svmsim/kernel-mm';
import { bump, type NicHost } from './nic.js';
import { pagefault_implicit_mr } from './implicit-odp.js';
import { mrGet, mrPut, type LeafMr, type Mr } from './mr.js';
import { pagefault_dmabuf_mr } from './umem-dmabuf.js';
import { ib_umem_odp_map_dma_and_lock } from './umem-odp.js';
import { umrPopulate } from './umr.js';

/** MLX5_IB_NUM_PF_EQE: the page-fault EQ's entries. */
export const PF_EQ_ENTRIES = 0x1000;
/** max_active of the mlx5_ib_page_fault workqueue (MLX5_NUM_CMD_EQE). */
export const PF_WORKERS_MAX = 32;

/** MLX5_PF_FLAGS_*: how pagefault_mr maps. */
export interface PfFlags {
  /** PREFETCH: map read-only (access READ only). */
  downgrade: boolean;
  /** PREFETCH_NO_FAULT and the registration's pass: map only pages present, with their own permission. */
  snapshot: boolean;
}
const FAULT_FLAGS: PfFlags = { downgrade: false, snapshot: false };

export type FaultType = 'wqe-requester' | 'wqe-responder' | 'rdma';

/** A data segment to fault: bytes [va, va + bcnt) of mkey `key`. */
export interface FaultSegment { key: number; va: number; bcnt: number }

export interface PageFault {
  type: FaultType;
  qpn: number;
  segments: FaultSegment[];
  /** PAGE_FAULT_RESUME: error false lets the QP go on, true sends it to the error state. */
  resume: (error: boolean) => void;
}

/** The page-fault EQ and its workqueue. */
export class PageFaults {
  private readonly eq: (PageFault & { raisedAt: number })[] = [];
  private running = 0;
  outstandingMax = 0;

  constructor(private readonly host: NicHost) {}

  /** The hardware raises a fault. Each QP has at most one outstanding, so the EQ cannot overflow with fewer QPs than entries. */
  raise(pf: PageFault): void {
    const s = this.host.stats;
    if (this.eq.length >= PF_EQ_ENTRIES) throw new Error(`${this.host.id}: page-fault EQ overflow (${PF_EQ_ENTRIES} entries)`);
    s.odpFaults++;
    bump(s.odpFaultsByType, pf.type);
    this.eq.push({ ...pf, raisedAt: this.host.ctx.now() });
    this.outstandingMax = Math.max(this.outstandingMax, this.eq.length + this.running);
    this.host.trace('rdma_page_fault', { type: pf.type, qpn: pf.qpn, key: pf.segments[0]?.key, va: pf.segments[0]?.va, bcnt: pf.segments[0]?.bcnt });
    this.host.sleep(this.host.costs.pfInterruptNs, () => this.dispatch());
  }

  private dispatch(): void {
    while (this.running < PF_WORKERS_MAX && this.eq.length > 0) {
      const pf = this.eq.shift()!;
      this.running++;
      this.work(pf, () => {
        this.running--;
        this.dispatch();
      });
    }
  }

  /** mlx5_ib_eqe_pf_action: fault every segment in turn, then resume. */
  private work(pf: PageFault & { raisedAt: number }, finished: () => void): void {
    const host = this.host;
    const resume = (ret: number): void => {
      // -EAGAIN: raced an invalidation; resume without error and let the hardware fault again.
      const error = ret < 0 && ret !== EAGAIN;
      host.sleep(host.costs.pfResumeNs, () => {
        if (error) host.stats.odpFaultErrors++;
        else host.stats.odpFaultsResolved++;
        host.stats.faultLatencyNs.push(host.ctx.now() - pf.raisedAt);
        host.trace('rdma_page_fault_resume', { type: pf.type, qpn: pf.qpn, ret, error });
        finished();
        pf.resume(error);
      });
    };
    const segment = (i: number): void => {
      if (i === pf.segments.length) return resume(0);
      const g = pf.segments[i];
      pagefault_single_data_segment(host, g.key, g.va, g.bcnt, FAULT_FLAGS, (ret) => {
        if (ret < 0) return resume(ret);
        host.stats.odpFaultPages += ret;
        segment(i + 1);
      });
    };
    segment(0);
  }
}

/** pagefault_single_data_segment: done(pages mapped; 0 for a key that is not an ODP MR) or done(-errno). */
export function pagefault_single_data_segment(host: NicHost, key: number, va: number, bcnt: number, flags: PfFlags, done: (ret: number) => void): void {
  const mr = host.mkeys.get(key);
  // "skipping non ODP MR": a pinned MR, or a key not (any more) in odp_mkeys, counts as mapped.
  if (!mr || mr.kind === 'pinned') return done(0);
  mrGet(mr);
  pagefault_mr(host, mr, va, bcnt, flags, (ret) => {
    mrPut(mr);
    done(ret);
  });
}

/** pagefault_mr: -EFAULT outside the MR; else by the MR's kind. */
export function pagefault_mr(host: NicHost, mr: Mr, va: number, bcnt: number, flags: PfFlags, done: (ret: number) => void): void {
  if (va < mr.iova) return done(EFAULT);
  switch (mr.kind) {
    case 'dmabuf':
      return pagefault_dmabuf_mr(host, mr as LeafMr, done);
    case 'odp':
      if (va + bcnt > mr.iova + mr.length) return done(EFAULT);
      return pagefault_real_mr(host, mr as LeafMr, va, bcnt, flags, done);
    case 'implicit':
      return pagefault_implicit_mr(host, mr, va, bcnt, (child, cva, cbcnt, then) => pagefault_real_mr(host, child, cva, cbcnt, flags, then), done);
    case 'pinned':
      return done(0);
  }
}

/** pagefault_real_mr: map and write the MTT; done(pages) or done(-errno). */
export function pagefault_real_mr(host: NicHost, mr: LeafMr, va: number, bcnt: number, flags: PfFlags, done: (ret: number) => void): void {
  const write = mr.writable && !flags.downgrade;
  ib_umem_odp_map_dma_and_lock(host, mr, va, bcnt, write, !flags.snapshot, (np) => {
    if (np < 0) return done(np);
    const from = Math.floor((va - mr.startVa) / PAGE_SIZE);
    umrPopulate(host, mr, from, np, () => {
      mr.umemMutex.unlock();
      done(np);
    });
  });
}
