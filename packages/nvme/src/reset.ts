// What happens to each outstanding request when the controller is disabled (nvme_dev_disable →
// nvme_cancel_tagset → nvme_cancel_request, drivers/nvme/host/core.c and pci.c, v6.6): it is
// completed with NVME_SC_HOST_ABORTED_CMD, which has no DNR bit, so nvme_decide_disposition
// says RETRY and the request is requeued, to be sent again when nvme_reset_work unquiesces the
// queues. Its pages stay pinned; only the DMA mapping is undone and redone. The caller sees
// -EIO only for REQ_FAILFAST_* requests, after nvme_max_retries attempts, or when the
// controller is dead (the reset failed: nvme_remove_dead_ctrl marks the disks dead).
import { NVME_SC_DNR } from './protocol.js';

/** nvme_max_retries module parameter default. */
export const NVME_MAX_RETRIES = 5;

export type Disposition = 'COMPLETE' | 'RETRY';

export function nvme_decide_disposition(status: number, retries: number, failfast: boolean, dying: boolean, maxRetries = NVME_MAX_RETRIES): Disposition {
  if (status === 0) return 'COMPLETE';
  if (failfast || (status & NVME_SC_DNR) !== 0 || retries >= maxRetries) return 'COMPLETE';
  if (dying) return 'COMPLETE';
  return 'RETRY';
}
