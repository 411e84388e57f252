// The kernel's RDMA read/write API for in-kernel ULPs (drivers/infiniband/core/rw.c:
// rdma_rw_ctx_init, rdma_rw_ctx_post, rdma_rw_ctx_destroy), as the NVMe-oF target uses it
// (packages/nvme/src/nvmet-rdma.ts): an RDMA READ pulls the remote host's buffer into a local SGL,
// an RDMA WRITE pushes a local SGL to the host. The SGL is the ULP's: system memory (its words
// travel with the request and the answer) or a provider's p2pmem, which the NIC reaches by PCI
// peer-to-peer DMA: writes into the provider's BAR (p2pmem_write), and before the completion a
// read of the last page (PCIe ordering: the read's completion pushes the posted writes ahead of it,
// so the data is in the CMB before the ULP submits the bio from it).
//
// The P2P path was checked by the ULP (nvmet chose its p2p device with pci_p2pmem_find_many over
// this NIC and the namespace; rw.c's DMA mapping of a p2pdma SGL, pci_p2pdma_map_sg /
// dma_map_sgtable, does not refuse it then). The remote host is the far end of the link, not the
// peer actor: its words come with a READ and go back in the answer of a WRITE (the link's
// serialisation and latency are paid as on any RC message). Followed: torvalds/linux master (2025).
import type { Envelope, Message } from '@svmsim/runtime';
import { EINVAL, EIO } from '@svmsim/kernel-mm';
import type { P2pMemReadResult, RdmaRwCtx } from '@svmsim/nvme';
import type { QpHost } from './qp.js';

/** The most pages one rdma_rw_ctx moves (nvmet-rdma's largest transfer: mdts 1 MiB, 256 pages). */
export const RDMA_RW_PAGES_MAX = 256;

export interface RdmaRwStats {
  rdmaRwReads: number;
  rdmaRwWrites: number;
  /** Pages the NIC moved to or from p2pmem (a provider's BAR) rather than system memory. */
  rdmaRwP2pPages: number;
}

export const newRdmaRwStats = (): RdmaRwStats => ({ rdmaRwReads: 0, rdmaRwWrites: 0, rdmaRwP2pPages: 0 });

/** rdma_rw_ctx_init + rdma_rw_ctx_post for one transfer, answered rdma_rw_done when it completes. */
export function rdma_rw_ctx_post(host: QpHost, stats: RdmaRwStats, env: Envelope<Message>, m: RdmaRwCtx): void {
  const done = (ret: number, values?: Float64Array) =>
    host.reply(env, { type: 'rdma_rw_done', ret, ...(values ? { values } : {}) });
  const n = m.pages;
  // A READ carries the host's words; a WRITE carries the words to send unless they sit in p2pmem.
  const valuesOk = (m.dir === 'write' && m.p2p !== undefined) || m.values?.length === n;
  if (!Number.isInteger(n) || n < 1 || n > RDMA_RW_PAGES_MAX || !valuesOk) return done(EINVAL);
  if (m.p2p) stats.rdmaRwP2pPages += n;
  if (m.dir === 'read') {
    stats.rdmaRwReads++;
    // The READ request goes out, the response brings n pages back.
    return host.link.send(0, () => host.link.send(n, () => {
      if (!m.p2p) return done(0, Float64Array.from(m.values!));
      const p2p = m.p2p;
      host.send(p2p.provider, { type: 'p2pmem_write', dev: host.id, page: p2p.page, values: Float64Array.from(m.values!) });
      host.call(p2p.provider, { type: 'p2pmem_read', dev: host.id, page: p2p.page + n - 1, nlb: 1 }, (r) => {
        done((r as unknown as P2pMemReadResult).ret < 0 ? EIO : 0);
      });
    }));
  }
  stats.rdmaRwWrites++;
  const push = (values: Float64Array) => host.link.send(n, () => host.link.send(0, () => done(0, values)));
  if (!m.p2p) return push(Float64Array.from(m.values!));
  host.call(m.p2p.provider, { type: 'p2pmem_read', dev: host.id, page: m.p2p.page, nlb: n }, (r) => {
    const rr = r as unknown as P2pMemReadResult;
    if (rr.type !== 'p2pmem_read_result' || rr.ret < 0) return done(EIO);
    push(rr.values);
  });
}
