// A namespace: its logical blocks, each holding one page's content token (0: never written).
// The backing store behind file pages and swap slots. Writes land when the command completes,
// as data reaches the media (or the volatile write cache: FLUSH makes it durable).

/** The largest namespace a scenario may ask for, in blocks (2^26 blocks of 4 KiB = 256 GiB). */
export const NVME_NAMESPACE_BLOCKS_LIMIT = 1 << 26;

export class NvmeNamespace {
  readonly nsid: number;
  readonly blocks: number;
  /** Per block: the content token last written there. */
  readonly content: Float64Array;
  /** Per block: written since the last FLUSH (in the volatile write cache). */
  readonly unflushed: Uint8Array;

  constructor(nsid: number, blocks: number) {
    if (!Number.isInteger(blocks) || blocks < 1 || blocks > NVME_NAMESPACE_BLOCKS_LIMIT) {
      throw new RangeError(`nvme namespace ${nsid}: blocks ${blocks} must be an integer in [1, ${NVME_NAMESPACE_BLOCKS_LIMIT}]`);
    }
    this.nsid = nsid;
    this.blocks = blocks;
    this.content = new Float64Array(blocks);
    this.unflushed = new Uint8Array(blocks);
  }

  /** The LBA range is inside the namespace (else the controller returns LBA Out of Range). */
  inRange(slba: number, nlb: number): boolean {
    return Number.isInteger(slba) && Number.isInteger(nlb) && slba >= 0 && nlb >= 0 && slba + nlb <= this.blocks;
  }

  read(slba: number, nlb: number): Float64Array {
    return this.content.slice(slba, slba + nlb);
  }

  write(slba: number, data: Float64Array): void {
    this.content.set(data, slba);
    this.unflushed.fill(1, slba, slba + data.length);
  }

  flush(): void {
    this.unflushed.fill(0);
  }
}
