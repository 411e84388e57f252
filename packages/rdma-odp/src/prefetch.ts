// ibv_advise_mr (mlx5_ib_advise_mr → mlx5_ib_advise_mr_prefetch, mlx5/odp.c v6.1; errata 18):
//   PREFETCH           pagefault_mr with MLX5_PF_FLAGS_DOWNGRADE: faulted read-only (the MTT
//                      entries are read-only, a later remote write faults again, and an entry
//                      already writable is resynced read-only)
//   PREFETCH_WRITE     faulted writable (-EPERM if the MR is not writable)
//   PREFETCH_NO_FAULT  MLX5_PF_FLAGS_SNAPSHOT: maps only pages already present
//   FLUSH              synchronous (mlx5_ib_prefetch_sg_list: the first error is returned);
//                      without it the prefetch is a work item on system_unbound_wq
//                      (mlx5_ib_prefetch_mr_work, errors ignored) and the call returns 0 at once
// get_prefetchable_mr: the lkey must be an ODP MR of the caller (not in odp_mkeys → -ENOENT, another
// protection domain → -EPERM); each MR keeps a reference until its part is done.
import { EINVAL, ENOENT, EOPNOTSUPP, EPERM } from '@svmsim/kernel-mm';
import type { Envelope, Message } from '@svmsim/runtime';
import { mrGet, mrPut, type Mr } from './mr.js';
import type { NicHost } from './nic.js';
import { pagefault_mr, type PfFlags } from './page-fault.js';
import {
  IBV_ADVISE_MR_ADVICE_PREFETCH, IBV_ADVISE_MR_ADVICE_PREFETCH_NO_FAULT, IBV_ADVISE_MR_ADVICE_PREFETCH_WRITE, IBV_ADVISE_MR_FLAG_FLUSH, type IbvAdviseMr,
} from './rdma-protocol.js';

/** SGEs one call takes (the uverbs attribute's bound is the message size; a simulation bound here). */
export const ADVISE_SGE_MAX = 64;

export function mlx5_ib_advise_mr(host: NicHost, env: Envelope<Message>, m: IbvAdviseMr): void {
  const reply = (ret: number) => host.reply(env, { type: 'ibv_result', ret });
  if (m.advice !== IBV_ADVISE_MR_ADVICE_PREFETCH && m.advice !== IBV_ADVISE_MR_ADVICE_PREFETCH_WRITE && m.advice !== IBV_ADVISE_MR_ADVICE_PREFETCH_NO_FAULT) return reply(EOPNOTSUPP);
  if (!Number.isInteger(m.flags) || m.flags & ~IBV_ADVISE_MR_FLAG_FLUSH) return reply(EINVAL);
  if (!Array.isArray(m.sg_list) || m.sg_list.length === 0 || m.sg_list.length > ADVISE_SGE_MAX) return reply(EINVAL);
  const flags: PfFlags = { downgrade: m.advice === IBV_ADVISE_MR_ADVICE_PREFETCH, snapshot: m.advice === IBV_ADVISE_MR_ADVICE_PREFETCH_NO_FAULT };
  // get_prefetchable_mr for every SGE first, as init_prefetch_work does.
  const mrs: Mr[] = [];
  for (const sge of m.sg_list) {
    const mr = host.mkeys.get(sge?.lkey);
    let err = 0;
    if (!mr || mr.kind === 'pinned') err = ENOENT;
    else if (mr.pid !== m.pid) err = EPERM;
    else if (m.advice === IBV_ADVISE_MR_ADVICE_PREFETCH_WRITE && !mr.writable) err = EPERM;
    else if (!(Number.isFinite(sge.addr) && Number.isFinite(sge.length) && sge.length > 0)) err = EINVAL;
    if (err) {
      for (const t of mrs) mrPut(t);
      return reply(err);
    }
    mrGet(mr!);
    mrs.push(mr!);
  }
  host.stats.prefetches++;
  const flush = (m.flags & IBV_ADVISE_MR_FLAG_FLUSH) !== 0;
  const run = (i: number, finished: (ret: number) => void): void => {
    if (i === mrs.length) return finished(0);
    const sge = m.sg_list[i];
    pagefault_mr(host, mrs[i], sge.addr, sge.length, flags, (ret) => {
      mrPut(mrs[i]);
      if (ret > 0) host.stats.prefetchPages += ret; // mlx5_update_odp_stats(mr, prefetch, ret)
      if (ret < 0 && flush) {
        for (const t of mrs.slice(i + 1)) mrPut(t);
        return finished(ret);
      }
      run(i + 1, finished);
    });
  };
  if (flush) return run(0, (ret) => reply(Math.min(0, ret)));
  reply(0);
  host.sleep(host.costs.workQueueNs, () => run(0, () => {}));
}
