// The in-kernel NVMe-oF target over RDMA exporting this controller's namespace (the raw namespace
// of blkdev-dio.ts, the one the process does O_DIRECT on): the only mainline path on which a NIC
// writes into a CMB (research/errata.md §11). Followed: drivers/nvme/target/core.c, rdma.c,
// io-cmd-bdev.c, configfs.c of torvalds/linux master (2025; the p2pmem code is unchanged since v6.6).
//
//   namespace enable (nvmet_p2pmem_ns_enable): with the configfs attribute `p2pmem` set, the
//     namespace's queue must support P2P (blk_queue_pci_p2pdma) and a provider must be reachable
//     from it (a named one by pci_p2pdma_distance, `auto` by pci_p2pmem_find); else -EINVAL.
//   controller setup (nvmet_p2pmem_ns_add_p2p, at the host's connect): the p2p device for the
//     namespace is a named provider the NIC (ctrl->p2p_client) can reach, or for `auto` the
//     closest provider of both the NIC and the namespace (pci_p2pmem_find_many); none: the
//     target logs "no peer-to-peer memory is available…" and uses system memory.
//   a command (nvmet_rdma_handle_command): a small write's in-capsule data sits in the queue's
//     inline pages (nvmet_rdma_map_sgl_inline); otherwise the data buffer is allocated from the
//     p2p device (nvmet_req_alloc_p2pmem_sgls → pci_p2pmem_alloc_sgl) or, when that fails or there
//     is none, from system memory (sgl_alloc). A write first pulls the host's data with an RDMA
//     READ into that buffer (nvmet_rdma_need_data_in → rdma_rw_ctx_post), then submits the bio
//     (nvmet_bdev_execute_rw); a read submits the bio, then pushes the buffer to the host with an
//     RDMA WRITE (nvmet_rdma_queue_response). The buffer is freed after the response
//     (nvmet_req_free_sgls → pci_p2pmem_free_sgl).
import type { Ctx, Envelope, Message } from '@svmsim/runtime';
import { pci_p2pmem_find_many } from './cmb.js';
import type { DirectIoHost } from './blkdev-dio.js';
import { pci_p2pdma_distance_many, type PciTopology } from './p2pdma.js';
import { EINVAL, EIO, NVME_LBA_SIZE } from './protocol.js';
import type { NvmetRdmaCmd, NvmetRdmaResult, NvmetSgl, RdmaRwCtx, RdmaRwDone } from './nvmet-protocol.js';

/** NVMET_RDMA_DEFAULT_INLINE_DATA_SIZE (drivers/nvme/target/rdma.c): one page of in-capsule data. */
export const NVMET_RDMA_DEFAULT_INLINE_DATA_SIZE = 4096;

export interface NvmetConfig {
  /** The NIC of the target's port (the RDMA device whose dma_device is ctrl->p2p_client). */
  readonly nic: string;
  /** The namespace's configfs `p2pmem`: off (the default: use_p2pmem false), auto, or a provider's id. */
  readonly p2pmem: string;
  /** The machine's published p2pmem providers (controllers with a CMB). */
  readonly providers: readonly string[];
  readonly inlineDataSize?: number;
}

type Reply = (r: Message) => void;

export class NvmetTarget {
  /** The namespace's enable result (nvmet_p2pmem_ns_enable); 0 when it is exported. */
  readonly enableRet: number;
  /** The p2p device of the controller for this namespace (ctrl->p2p_ns_map), once the host connected. */
  private p2pDev: string | undefined;
  private connected = false;
  private readonly waits = new Map<number, Reply>();
  readonly figures = { cmds: 0, p2pmemSgls: 0, systemSgls: 0, inlineSgls: 0, p2pAllocFailed: 0, errors: 0, rdmaReads: 0, rdmaWrites: 0 };

  constructor(
    private readonly cfg: NvmetConfig,
    private readonly dio: DirectIoHost,
    private readonly topology: PciTopology | undefined,
    private readonly queueSupportsP2p: boolean,
    private readonly self: string,
    warn: (what: string) => void,
  ) {
    this.enableRet = this.nsEnable(warn);
  }

  /** nvmet_p2pmem_ns_enable: -EINVAL when p2pmem is asked for and cannot be had. */
  private nsEnable(warn: (what: string) => void): number {
    if (this.cfg.p2pmem === 'off') return 0;
    if (!this.queueSupportsP2p || !this.topology) {
      warn(`peer-to-peer DMA is not supported by the driver of ${this.self}`);
      return -EINVAL;
    }
    if (this.cfg.p2pmem !== 'auto') {
      if (this.distance(this.cfg.p2pmem, [this.self]) < 0) {
        warn(`p2pmem ${this.cfg.p2pmem} is not reachable from ${this.self} (pci_p2pdma_distance)`);
        return -EINVAL;
      }
      return 0;
    }
    if (!this.find([this.self])) {
      warn(`no peer-to-peer memory is available for ${this.self}`);
      return -EINVAL;
    }
    return 0;
  }

  /** nvmet_p2pmem_ns_add_p2p, when the host's controller is set up (its first command here). */
  private addP2p(warn: (what: string) => void): void {
    this.connected = true;
    if (this.cfg.p2pmem === 'off' || this.enableRet < 0) return;
    if (this.cfg.p2pmem !== 'auto') {
      if (this.distance(this.cfg.p2pmem, [this.cfg.nic]) >= 0) this.p2pDev = this.cfg.p2pmem;
      return;
    }
    this.p2pDev = this.find([this.cfg.nic, this.self]);
    if (!this.p2pDev) warn(`no peer-to-peer memory is available that's supported by ${this.cfg.nic} and ${this.self}`);
  }

  private distance(provider: string, clients: readonly string[]): number {
    if (!this.topology || !this.cfg.providers.includes(provider)) return -1;
    return pci_p2pdma_distance_many(this.topology, provider, clients);
  }

  /** pci_p2pmem_find_many over the machine's published providers. */
  private find(clients: readonly string[]): string | undefined {
    if (!this.topology) return undefined;
    return pci_p2pmem_find_many(this.topology, this.cfg.providers.map((device) => ({ device, published: true })), clients)?.device;
  }

  /** The p2p device chosen for this namespace (undefined: system memory). */
  get p2pDevice(): string | undefined {
    return this.p2pDev;
  }

  /** Handles the answers to our requests and the host's commands; false for anything else. */
  receive(env: Envelope<Message>, ctx: Ctx<Message>): boolean {
    if (env.replyTo) {
      const w = this.waits.get(env.replyTo);
      if (!w) return false;
      this.waits.delete(env.replyTo);
      w(env.msg);
      return true;
    }
    if (env.msg.type !== 'nvmet_rdma_cmd') return false;
    this.command(env.msg as unknown as NvmetRdmaCmd, ctx, (r) => ctx.reply(env, r as unknown as Message));
    return true;
  }

  private request(ctx: Ctx<Message>, to: string, msg: object, then: Reply): void {
    this.waits.set(ctx.request(to, msg as Message), then);
  }

  /** nvmet_rdma_handle_command for one I/O command. */
  private command(m: NvmetRdmaCmd, ctx: Ctx<Message>, answer: (r: NvmetRdmaResult) => void): void {
    const warn = (what: string) => ctx.trace('warn', { what: `nvmet: ${what}` });
    if (!this.connected) this.addP2p(warn);
    this.figures.cmds++;
    const fail = (ret: number) => {
      this.figures.errors++;
      answer({ type: 'nvmet_rdma_result', ret });
    };
    if (this.enableRet < 0) return fail(this.enableRet);
    const isWrite = m.op === 'write';
    if (isWrite && m.values?.length !== m.nlb) return fail(-EINVAL);
    if (isWrite && m.nlb * NVME_LBA_SIZE <= (this.cfg.inlineDataSize ?? NVMET_RDMA_DEFAULT_INLINE_DATA_SIZE)) {
      // nvmet_rdma_map_sgl_inline: the data came in the capsule, into the queue's own pages.
      this.figures.inlineSgls++;
      return this.bio(m, 'inline', { nlb: m.nlb, data: m.values! }, undefined, ctx, answer);
    }
    this.allocSgl(m.nlb, ctx, (sgl) => {
      const free = () => this.freeSgl(sgl, m.nlb, ctx);
      const done = (r: NvmetRdmaResult) => {
        free();
        if (r.ret < 0) this.figures.errors++;
        answer(r);
      };
      const where: NvmetSgl = sgl ? 'p2pmem' : 'system';
      if (!isWrite) return this.bio(m, where, sgl ? undefined : { nlb: m.nlb }, sgl, ctx, (r) => {
        if (r.ret < 0) return done(r);
        // nvmet_rdma_queue_response: RDMA WRITE of the buffer to the host, then the response.
        this.rdmaRw(ctx, { type: 'rdma_rw_ctx', dir: 'write', pages: m.nlb, ...(sgl ? { p2p: sgl } : { values: r.data! }) }, (w) => {
          done(w.ret < 0 ? { type: 'nvmet_rdma_result', ret: w.ret } : { ...r, data: w.values! });
        });
      });
      // nvmet_rdma_need_data_in: RDMA READ of the host's data into the buffer, then the bio.
      this.rdmaRw(ctx, { type: 'rdma_rw_ctx', dir: 'read', pages: m.nlb, values: m.values!, ...(sgl ? { p2p: sgl } : {}) }, (rd) => {
        if (rd.ret < 0) return done({ type: 'nvmet_rdma_result', ret: rd.ret });
        this.bio(m, where, sgl ? undefined : { nlb: m.nlb, data: rd.values! }, sgl, ctx, done);
      });
    });
  }

  /** nvmet_req_alloc_sgls: from the p2p device if there is one and it has room, else system memory. */
  private allocSgl(nlb: number, ctx: Ctx<Message>, then: (sgl: { provider: string; page: number } | undefined) => void): void {
    const provider = this.p2pDev;
    if (!provider) {
      this.figures.systemSgls++;
      return then(undefined);
    }
    this.request(ctx, provider, { type: 'p2pmem_alloc', nr_pages: nlb }, (r) => {
      const a = r as unknown as { ret: number; page: number };
      if (a.ret < 0) {
        // pci_p2pmem_alloc_sgl returned NULL: the fallback to sgl_alloc.
        this.figures.p2pAllocFailed++;
        this.figures.systemSgls++;
        return then(undefined);
      }
      this.figures.p2pmemSgls++;
      then({ provider, page: a.page });
    });
  }

  /** nvmet_req_free_sgls → pci_p2pmem_free_sgl: every page back to the provider's pool. */
  private freeSgl(sgl: { provider: string; page: number } | undefined, nlb: number, ctx: Ctx<Message>): void {
    if (!sgl) return;
    for (let i = 0; i < nlb; i++) ctx.send(sgl.provider, { type: 'p2pdma_page_free', page: sgl.page + i } as unknown as Message);
  }

  private rdmaRw(ctx: Ctx<Message>, msg: RdmaRwCtx, then: (r: RdmaRwDone) => void): void {
    if (msg.dir === 'read') this.figures.rdmaReads++;
    else this.figures.rdmaWrites++;
    this.request(ctx, this.cfg.nic, msg, (r) => {
      const d = r as unknown as RdmaRwDone;
      then(d.type === 'rdma_rw_done' ? d : { type: 'rdma_rw_done', ret: -EIO });
    });
  }

  /** nvmet_bdev_execute_rw: the bio over the command's buffer, on this controller's namespace. */
  private bio(
    m: NvmetRdmaCmd,
    sgl: NvmetSgl,
    kbuf: { nlb: number; data?: Float64Array } | undefined,
    p2p: { provider: string; page: number } | undefined,
    ctx: Ctx<Message>,
    done: (r: NvmetRdmaResult) => void,
  ): void {
    this.dio.kernelBio(
      {
        type: 'nvme_dio', op: m.op, pid: 0, addr: 0, pfns: new Float64Array(0), slba: m.slba,
        ...(p2p ? { p2p: { provider: p2p.provider, page: p2p.page, nlb: m.nlb } } : { kbuf: kbuf! }),
      },
      ctx,
      (r) => done({
        type: 'nvmet_rdma_result', ret: r.ret, sgl, ...(p2p ? { provider: p2p.provider } : {}), ...(r.data ? { data: r.data } : {}),
      }),
    );
  }
}
