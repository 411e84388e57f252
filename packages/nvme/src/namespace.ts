// A namespace: its logical blocks, each holding one page's content token (0: never written).
// The backing store behind file pages and swap slots. Writes land when the command completes,
// as data reaches the media (or the volatile write cache: FLUSH makes it durable).

/** The largest namespace a scenario may ask for, in blocks (2^26 blocks of 4 KiB = 256 GiB). */
export const NVME_NAMESPACE_BLOCKS_LIMIT = 1 << 26;

/**
 * Blocks per chunk of storage. A namespace is allocated a chunk at a time, on the first write into
 * it: a run touches a few hundred blocks of a 2^16-block namespace, and a seed sweep makes a
 * namespace per run, so allocating (and zeroing) every block up front cost more than the I/O.
 */
const CHUNK_SHIFT = 12;
const CHUNK_BLOCKS = 1 << CHUNK_SHIFT;
const CHUNK_MASK = CHUNK_BLOCKS - 1;

export class NvmeNamespace {
  readonly nsid: number;
  readonly blocks: number;
  /** Per block, by chunk: the content token last written there (an absent chunk reads 0). */
  private readonly content: (Float64Array | undefined)[];
  /** Per block, by chunk: written since the last FLUSH (in the volatile write cache). */
  private readonly unflushed: (Uint8Array | undefined)[];

  constructor(nsid: number, blocks: number) {
    if (!Number.isInteger(blocks) || blocks < 1 || blocks > NVME_NAMESPACE_BLOCKS_LIMIT) {
      throw new RangeError(`nvme namespace ${nsid}: blocks ${blocks} must be an integer in [1, ${NVME_NAMESPACE_BLOCKS_LIMIT}]`);
    }
    this.nsid = nsid;
    this.blocks = blocks;
    const chunks = Math.ceil(blocks / CHUNK_BLOCKS);
    this.content = new Array<Float64Array | undefined>(chunks).fill(undefined);
    this.unflushed = new Array<Uint8Array | undefined>(chunks).fill(undefined);
  }

  /** The LBA range is inside the namespace (else the controller returns LBA Out of Range). */
  inRange(slba: number, nlb: number): boolean {
    return Number.isInteger(slba) && Number.isInteger(nlb) && slba >= 0 && nlb >= 0 && slba + nlb <= this.blocks;
  }

  /** The content token of one block (0: never written). */
  block(lba: number): number {
    return this.content[lba >> CHUNK_SHIFT]?.[lba & CHUNK_MASK] ?? 0;
  }

  read(slba: number, nlb: number): Float64Array {
    const out = new Float64Array(nlb);
    for (let i = 0; i < nlb; i++) out[i] = this.block(slba + i);
    return out;
  }

  write(slba: number, data: ArrayLike<number>): void {
    for (let i = 0; i < data.length; i++) {
      const lba = slba + i;
      const c = lba >> CHUNK_SHIFT;
      (this.content[c] ??= new Float64Array(CHUNK_BLOCKS))[lba & CHUNK_MASK] = data[i];
      (this.unflushed[c] ??= new Uint8Array(CHUNK_BLOCKS))[lba & CHUNK_MASK] = 1;
    }
  }

  flush(): void {
    this.unflushed.fill(undefined);
  }
}
