// The counters by which each unsafe twin says its bug was exercised in a run: the denominator of
// the soak's "caught" figure. A seed where the bug's path was never taken cannot be caught, and a
// seed where it was taken must be (the checker sees every access and every lost write).
//
//   unsafeBugPaths       a device that counts exactly the accesses its bug makes (rdma unsafe-odp:
//                        DMAs issued after the driver acked the invalidation of their entry, at a
//                        seq older than its cur_seq — not DMAs merely in flight at a zap, which
//                        may reach mm before the ack and be legal; nvme unsafe-nvme: requests
//                        whose pages it released before their DMA) says so itself;
//   readRetriesSkipped   dmirror unsafe-skip-read-retry, gpu unsafe-svm and unsafe-uvm: read_retry said stale
//                        and the driver mapped anyway;
//   unsafeEarlyAcks      gpu unsafe-userptr: an invalidation acked while a job used the BO;
//   pagesValidSkipped    gpu unsafe-gpusvm: drm_gpusvm_range_pages_valid said an invalidation had
//                        unmapped the range's pages since get_pages, and the driver bound them anyway.
export const UNSAFE_PATH_COUNTERS: readonly string[] = ['readRetriesSkipped', 'unsafeEarlyAcks', 'pagesValidSkipped'];

/** The unsafe-path count of a run: per device its own unsafeBugPaths if it has one, else the sum of the others. */
export function unsafePathsTaken(devices: Record<string, Record<string, unknown>>): number {
  let n = 0;
  for (const d of Object.values(devices)) {
    if (typeof d.unsafeBugPaths === 'number') n += d.unsafeBugPaths;
    else for (const k of UNSAFE_PATH_COUNTERS) if (typeof d[k] === 'number') n += d[k] as number;
  }
  return n;
}
