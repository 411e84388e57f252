// The counter by which each unsafe twin says its bug was exercised in a run: the denominator of
// the soak's "caught" figure. A seed where the bug's act never happened cannot be caught, and a
// seed where it happened must be (the checker sees every access and every lost write).
//
// Every device with an unsafe twin reports `unsafeBugPaths`, counting the act, never the window:
//   rdma unsafe-odp       DMAs issued after the driver acked the invalidation of their MTT entry, at
//                         a seq older than its cur_seq (not DMAs merely in flight at a zap: those
//                         may reach mm before the ack and are legal);
//   dmirror unsafe-*, gpu unsafe-userptr / unsafe-svm / unsafe-uvm / unsafe-gpusvm
//                         DMAs through a mirror translation whose page's invalidation the driver had
//                         acked at a newer seq (kernel-mm acked-invalidations.ts). Not "read_retry
//                         said stale" (the invalidation may have covered other pages of the
//                         subscription) nor "acked while a job ran" (the job may touch nothing after);
//   nvme unsafe-nvme      requests whose pages it released before their DMA.

/** The unsafe-path count of a run: the devices' unsafeBugPaths summed. */
export function unsafePathsTaken(devices: Record<string, Record<string, unknown>>): number {
  let n = 0;
  for (const d of Object.values(devices)) if (typeof d.unsafeBugPaths === 'number') n += d.unsafeBugPaths;
  return n;
}
