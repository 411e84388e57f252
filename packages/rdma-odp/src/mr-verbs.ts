// Registering and deregistering MRs (drivers/infiniband/hw/mlx5/mr.c and odp.c, v6.1;
// drivers/infiniband/core/uverbs_cmd.c, include/rdma/ib_verbs.h ib_check_mr_access):
//
//   ib_check_mr_access   unknown flags, or REMOTE_WRITE / REMOTE_ATOMIC without LOCAL_WRITE → -EINVAL
//   mlx5_ib_reg_user_mr  addr 0 and length SIZE_MAX with ON_DEMAND → mlx5_ib_alloc_implicit_mr;
//                        ON_DEMAND → create_user_odp_mr: ib_umem_odp_get, then mlx5_ib_init_odp_mr
//                        (pagefault_real_mr with SNAPSHOT | ENABLE: the pages already present are
//                        mapped, with their own permission); else ib_umem_get (pinned) and
//                        create_real_mr (the MTT written with the mkey)
//   reg_user_mr_dmabuf   ib_umem_dmabuf_get, then mlx5_ib_init_dmabuf_mr (everything mapped)
//   mlx5_ib_dereg_mr     the mkey leaves odp_mkeys (the hardware and the fault handler no longer
//                        find it), wait for its references (mlx5r_deref_wait_odp_mkey: faults and
//                        prefetches in progress), revoke it (a ZAP that waits for DMA in flight),
//                        then release the umem: unpin (pinned), unmap and remove the notifier (ODP),
//                        deregister every child (implicit: mlx5_ib_free_odp_mr), unmap and detach
//                        (dma-buf).
import { EINVAL, ERRNO_NAMES, PAGE_SIZE } from '@svmsim/kernel-mm';
import type { Envelope, Message } from '@svmsim/runtime';
import { freeImplicitChildren } from './implicit-odp.js';
import { MLX5_IMR_KSM_ENTRIES, TASK_SIZE, mrWaitIdle, newMr, pageSpan, withMtt, type LeafMr, type Mr, type MrKind } from './mr.js';
import { bump, type NicHost } from './nic.js';
import { pagefault_real_mr } from './page-fault.js';
import {
  IBV_ACCESS_LOCAL_WRITE, IBV_ACCESS_ON_DEMAND, IBV_ACCESS_REMOTE_ATOMIC, IBV_ACCESS_REMOTE_WRITE, IBV_ACCESS_SUPPORTED, SIZE_MAX, ib_access_writable,
  type IbvDeregMr, type IbvRegDmabufMr, type IbvRegMr,
} from './rdma-protocol.js';
import { ib_umem_get, ib_umem_release } from './umem.js';
import { ib_umem_dmabuf_get, ib_umem_dmabuf_release, pagefault_dmabuf_mr } from './umem-dmabuf.js';
import { ib_umem_odp_get, ib_umem_odp_release, ib_umem_odp_unmap_dma_pages } from './umem-odp.js';
import { umrPopulate, umrZap } from './umr.js';

const errName = (ret: number): string => ERRNO_NAMES[ret] ?? String(ret);

/** ib_check_mr_access: 0 or -EINVAL. */
export function ib_check_mr_access(access: number): number {
  if (!Number.isInteger(access) || access & ~IBV_ACCESS_SUPPORTED) return EINVAL;
  if (access & (IBV_ACCESS_REMOTE_ATOMIC | IBV_ACCESS_REMOTE_WRITE) && !(access & IBV_ACCESS_LOCAL_WRITE)) return EINVAL;
  return 0;
}

function replier(host: NicHost, env: Envelope<Message>) {
  return {
    ok: (mr: Mr): void => {
      host.mkeys.set(mr);
      host.stats.mrsRegistered++;
      bump(host.stats.mrsByKind, mr.kind);
      host.trace('rdma_reg_mr', { key: mr.key, kind: mr.kind, pid: mr.pid, iova: mr.iova, length: mr.length, access: mr.access });
      host.reply(env, { type: 'ibv_reg_mr_result', ret: 0, lkey: mr.key, rkey: mr.key });
    },
    fail: (ret: number): void => {
      bump(host.stats.regErrors, errName(ret));
      host.reply(env, { type: 'ibv_reg_mr_result', ret, lkey: 0, rkey: 0 });
    },
  };
}

export function mlx5_ib_reg_user_mr(host: NicHost, env: Envelope<Message>, m: IbvRegMr): void {
  const { ok, fail } = replier(host, env);
  const bad = ib_check_mr_access(m.access);
  if (bad) return fail(bad);
  const odp = (m.access & IBV_ACCESS_ON_DEMAND) !== 0;
  const writable = ib_access_writable(m.access);
  if (m.addr === 0 && m.length === SIZE_MAX) {
    if (!odp) return fail(EINVAL);
    // mlx5_ib_alloc_implicit_mr: the KSM mkey, every entry the null mkey (one ZAP | ENABLE UMR).
    const imr = newMr(host.mkeys.alloc(), 'implicit', m.pid, m.access, 0, TASK_SIZE, writable);
    host.stats.umrs++;
    return host.sleep(host.costs.regMrNs + host.costs.umrNs + MLX5_IMR_KSM_ENTRIES * host.costs.umrPerEntryNs, () => ok(imr));
  }
  if (!(Number.isInteger(m.addr) && m.addr >= 0 && Number.isInteger(m.length) && m.length > 0 && m.addr + m.length <= TASK_SIZE)) return fail(EINVAL);
  const { first, pages } = pageSpan(m.addr, m.length);
  const mr = withMtt(newMr(host.mkeys.alloc(), odp ? 'odp' : 'pinned', m.pid, m.access, m.addr, m.length, writable), first * PAGE_SIZE, pages);
  host.sleep(host.costs.regMrNs, () => {
    if (odp) return createUserOdpMr(host, mr, ok, fail);
    if (!(Number.isInteger(m.memlock_limit_pages) && m.memlock_limit_pages >= 0)) return fail(EINVAL);
    ib_umem_get(host, host.pinnedVm, m.pid, mr.startVa, pages, writable, { limitPages: m.memlock_limit_pages, capIpcLock: m.cap_ipc_lock === true }, (ret, pfns) => {
      if (ret < 0) return fail(ret);
      mr.pinnedPfns = pfns!;
      for (let i = 0; i < pages; i++) mr.mtt.mapDma(i, pfns![i], 0, writable);
      umrPopulate(host, mr, 0, pages, () => ok(mr));
    });
  });
}

/** create_user_odp_mr: the notifier, then the snapshot of what is present (mlx5_ib_init_odp_mr). */
function createUserOdpMr(host: NicHost, mr: LeafMr, ok: (mr: Mr) => void, fail: (ret: number) => void): void {
  ib_umem_odp_get(host, mr, (ret) => {
    if (ret < 0) return fail(ret);
    pagefault_real_mr(host, mr, mr.iova, mr.length, { downgrade: false, snapshot: true }, (np) => {
      if (np < 0) return releaseLeaf(host, mr, () => fail(np));
      ok(mr);
    });
  });
}

export function mlx5_ib_reg_user_mr_dmabuf(host: NicHost, env: Envelope<Message>, m: IbvRegDmabufMr): void {
  const { ok, fail } = replier(host, env);
  const bad = ib_check_mr_access(m.access);
  if (bad) return fail(bad);
  if (m.access & IBV_ACCESS_ON_DEMAND) return fail(EINVAL);
  const int = (v: number) => Number.isInteger(v) && v >= 0;
  if (!(int(m.offset) && int(m.iova) && int(m.length) && m.length > 0 && Number.isInteger(m.fd)) || m.offset % PAGE_SIZE !== 0 || (m.iova - m.offset) % PAGE_SIZE !== 0 || typeof m.exporter !== 'string') {
    return fail(EINVAL);
  }
  const { first, pages } = pageSpan(m.iova, m.length);
  const mr = withMtt(newMr(host.mkeys.alloc(), 'dmabuf', m.pid, m.access, m.iova, m.length, ib_access_writable(m.access)), first * PAGE_SIZE, pages);
  host.sleep(host.costs.regMrNs, () =>
    ib_umem_dmabuf_get(host, mr, m.exporter, m.fd, m.offset, (ret) => {
      if (ret < 0) return fail(ret);
      // mlx5_ib_init_dmabuf_mr
      pagefault_dmabuf_mr(host, mr, (np) => {
        if (np < 0) return ib_umem_dmabuf_release(host, mr, () => fail(np));
        ok(mr);
      });
    }),
  );
}

export function mlx5_ib_dereg_mr(host: NicHost, env: Envelope<Message>, m: IbvDeregMr): void {
  const mr = host.mkeys.get(m.lkey);
  if (!mr || mr.parent) return host.reply(env, { type: 'ibv_result', ret: EINVAL });
  mr.revoked = true;
  mrWaitIdle(mr, () =>
    releaseMr(host, mr, () => {
      host.mkeys.delete(mr.key);
      host.stats.mrsDeregistered++;
      host.trace('rdma_dereg_mr', { key: mr.key, kind: mr.kind });
      host.sleep(host.costs.regMrNs, () => host.reply(env, { type: 'ibv_result', ret: 0 }));
    }),
  );
}

/** Revoke the MR's translations and release its umem, by kind; then done. */
function releaseMr(host: NicHost, mr: Mr, done: () => void): void {
  const kind: MrKind = mr.kind;
  switch (kind) {
    case 'implicit':
      return freeImplicitChildren(host, mr, done);
    case 'dmabuf':
      return ib_umem_dmabuf_release(host, mr as LeafMr, done);
    case 'odp':
    case 'pinned':
      return releaseLeaf(host, mr as LeafMr, done);
  }
}

/** A pinned or explicit ODP MR: the revoking ZAP under umem_mutex, then unpin / unmap and notifier remove. */
function releaseLeaf(host: NicHost, mr: LeafMr, done: () => void): void {
  mr.revoked = true;
  mr.umemMutex.lock(() =>
    umrZap(host, mr, 0, mr.mtt.entries, () => {
      if (mr.kind === 'pinned') {
        mr.umemMutex.unlock();
        if (mr.pinnedPfns) ib_umem_release(host, host.pinnedVm, mr.pid, mr.pinnedPfns, mr.writable);
        return done();
      }
      const n = ib_umem_odp_unmap_dma_pages(host, mr, 0, mr.mtt.entries);
      host.sleep(n * host.costs.dmaMapPerPageNs, () => {
        mr.umemMutex.unlock();
        ib_umem_odp_release(host, mr, done);
      });
    }),
  );
}
