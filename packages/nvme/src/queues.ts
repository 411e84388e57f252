// A submission/completion queue pair with its blk-mq tag set (drivers/nvme/host/pci.c
// nvme_queue_rq / nvme_handle_cqe, block/blk-mq-tag.c, v6.6). A request needs a free tag to be
// submitted; without one the submitter waits in FIFO order (blk_mq_get_tag sleeps), or gets
// -EAGAIN with REQ_NOWAIT. Never a silent drop. Tags are indices into typed arrays.

/** io_queue_depth default (1024), capped by CAP.MQES + 1 (nvme_pci_enable). */
export const NVME_IO_QUEUE_DEPTH_DEFAULT = 1024;
/** The largest depth a scenario may ask for: CAP.MQES is 16 bits (65536 entries). */
export const NVME_QUEUE_DEPTH_LIMIT = 65536;

export type TagState = 0 | 1 | 2;
export const TAG_FREE: TagState = 0;
export const TAG_IN_FLIGHT: TagState = 1;
/** Cancelled by a reset, waiting to be sent again (nvme_retry_req → requeue). */
export const TAG_REQUEUED: TagState = 2;

export class NvmeQueuePair {
  readonly qid: number;
  readonly depth: number;
  /** Per tag: TAG_FREE / TAG_IN_FLIGHT / TAG_REQUEUED. */
  readonly state: Uint8Array;
  /** Per tag: the time its command was (last) sent, ns. */
  readonly sentNs: Float64Array;
  /** Per tag: the time the device finishes it, ns (Infinity: the device will never answer). */
  readonly finishNs: Float64Array;
  /** Per tag: attempts so far (nvme_req(req)->retries + 1). */
  readonly attempts: Uint8Array;
  /** Per tag: an Abort was sent for it (the timeout's second strike resets). */
  readonly aborted: Uint8Array;
  private readonly freeTags: Int32Array;
  private freeCount: number;
  /** Submitters waiting for a tag, in arrival order. */
  private readonly waiters: Array<(tag: number) => void> = [];
  maxWaiting = 0;

  constructor(qid: number, depth: number) {
    if (!Number.isInteger(depth) || depth < 2 || depth > NVME_QUEUE_DEPTH_LIMIT) {
      throw new RangeError(`nvme queue depth ${depth}: must be an integer in [2, ${NVME_QUEUE_DEPTH_LIMIT}]`);
    }
    this.qid = qid;
    this.depth = depth;
    this.state = new Uint8Array(depth);
    this.sentNs = new Float64Array(depth);
    this.finishNs = new Float64Array(depth);
    this.attempts = new Uint8Array(depth);
    this.aborted = new Uint8Array(depth);
    this.freeTags = new Int32Array(depth);
    for (let i = 0; i < depth; i++) this.freeTags[i] = depth - 1 - i;
    this.freeCount = depth;
  }

  get inFlight(): number {
    return this.depth - this.freeCount;
  }

  get waiting(): number {
    return this.waiters.length;
  }

  /** blk_mq_get_tag with BLK_MQ_REQ_NOWAIT: a tag, or -1 when the queue is full. */
  tryGetTag(): number {
    if (this.freeCount === 0) return -1;
    const tag = this.freeTags[--this.freeCount]!;
    this.attempts[tag] = 0;
    this.aborted[tag] = 0;
    return tag;
  }

  /** blk_mq_get_tag: a tag now, or the callback runs when one is freed (FIFO). */
  getTag(onTag: (tag: number) => void): void {
    const tag = this.tryGetTag();
    if (tag >= 0) return onTag(tag);
    this.waiters.push(onTag);
    if (this.waiters.length > this.maxWaiting) this.maxWaiting = this.waiters.length;
  }

  /** blk_mq_put_tag: the tag goes to the first waiter, else back to the free list. */
  putTag(tag: number): void {
    if (this.state[tag] === TAG_FREE && this.freeTags.subarray(0, this.freeCount).includes(tag)) {
      throw new Error(`nvme q${this.qid}: tag ${tag} freed twice`);
    }
    this.state[tag] = TAG_FREE;
    const next = this.waiters.shift();
    if (next) {
      this.attempts[tag] = 0;
      this.aborted[tag] = 0;
      next(tag);
      return;
    }
    this.freeTags[this.freeCount++] = tag;
  }
}
