// The counters by which each unsafe twin says its bug was exercised in a run: the denominator of
// the soak's "caught" figure. A seed where the bug's path was never taken cannot be caught, and a
// seed where it was taken must be (the checker sees every access and every lost write).
//
//   readRetriesSkipped   dmirror unsafe-skip-read-retry, gpu unsafe-svm: read_retry said stale
//                        and the driver mapped anyway;
//   unsafeEarlyAcks      gpu unsafe-userptr: an invalidation acked while a job used the BO;
//                        rdma unsafe-odp: acked with DMA in flight through the zapped entries;
//   unsafeEarlyUnpins    nvme unsafe-nvme: pages unpinned with the I/O's DMA still to come.
export const UNSAFE_PATH_COUNTERS: readonly string[] = ['readRetriesSkipped', 'unsafeEarlyAcks', 'unsafeEarlyUnpins'];

/** The sum of the unsafe-path counters over a run's device summaries. */
export function unsafePathsTaken(devices: Record<string, Record<string, unknown>>): number {
  let n = 0;
  for (const d of Object.values(devices)) for (const k of UNSAFE_PATH_COUNTERS) if (typeof d[k] === 'number') n += d[k] as number;
  return n;
}
