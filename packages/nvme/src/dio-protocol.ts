// The messages of an O_DIRECT read or write on an NVMe namespace opened as a raw block device
// (open("/dev/nvme0n1", O_DIRECT); pread/pwrite), between the process (`app`), the controller's
// actor and, for P2P memory, the controller whose CMB holds the buffer. Followed: v6.6
// (block/fops.c blkdev_direct_IO, block/bio.c, drivers/pci/p2pdma.c).
//
// The process pins its buffer first (pin_user_pages_fast through mm, FOLL_PIN, FOLL_WRITE for a
// read: what bio_iov_iter_get_pages does in the process's context), then hands the pfns to the
// controller. From then on the bio owns the pins: the controller's completion path releases them
// (bio_release_pages, dirtying for a read) before it answers, on every path, errors and resets
// included. The unpin travels on the same channel as the DMA before it (nvme → mm, FIFO), so mm
// sees the DMA while the page is still pinned.

/** An O_DIRECT read (device → memory) or write (memory → device) of `pfns.length` blocks at `slba`. Reply: nvme_dio_result. */
export interface NvmeDio {
  type: 'nvme_dio';
  op: 'read' | 'write';
  pid: number;
  /** The buffer's first virtual address (page aligned): pfns[i] backs addr + i * 4096. */
  addr: number;
  /**
   * The pages pin_user_pages returned; the bio owns their pins from now on. For P2P memory the
   * MEMORY_DEVICE_PCI_P2PDMA pages pinned with FOLL_PCI_P2PDMA (or none: an in-kernel buffer).
   */
  pfns: Float64Array;
  /** First block of the namespace. */
  slba: number;
  /**
   * The buffer is P2P memory (MEMORY_DEVICE_PCI_P2PDMA) of another controller's published CMB
   * (a user mapping of its p2pmem, p2pmem_alloc_mmap): pages [page, page + nlb) of `provider`, as
   * mm's gup named them (get_user_pages_result.p2pdma).
   */
  p2p?: { provider: string; page: number; nlb: number };
  /**
   * The buffer is pages [page, page + nlb) of a dma-buf (a GPU VRAM BO exported by `exporter` as
   * `fd`): the out-of-tree NVMe dma-buf importer (research/errata.md §3), opt-in per device.
   */
  dmabuf?: { exporter: string; fd: number; page: number; nlb: number };
  /**
   * An in-kernel bio over `nlb` pages of system memory the kernel allocated (nvmet's sgl_alloc):
   * a write's words in `data`, a read's in the result. Only from inside the actor (kernelBio); a
   * process's request naming one is refused (-EINVAL).
   */
  kbuf?: { nlb: number; data?: Float64Array };
}

export interface NvmeDioResult {
  type: 'nvme_dio_result';
  /** Blocks moved, or -errno (-EIO: the I/O failed; -EREMOTEIO: P2P refused). */
  ret: number;
  /** For a read: the words read from the media. */
  data?: Float64Array;
}

/** A DMA of a peer into a provider's published p2pmem (the CMB): fire and forget. */
export interface P2pMemWrite { type: 'p2pmem_write'; dev: string; page: number; values: Float64Array }
/** A DMA of a peer out of a provider's p2pmem. Reply: p2pmem_read_result. */
export interface P2pMemRead { type: 'p2pmem_read'; dev: string; page: number; nlb: number }
export interface P2pMemReadResult { type: 'p2pmem_read_result'; ret: number; values: Float64Array }

/**
 * The run's teardown asks each controller to drain: answered nvme_drain_done once every unpin it
 * sent mm before has reached mm (a round trip to mm on the same channel, behind them). A bio's
 * completion wakes the caller before it releases the pages (blkdev_bio_end_io, block/fops.c v6.15),
 * so the caller's next request to mm can overtake the unpin; a leak check must wait for it.
 */
export interface NvmeDrain { type: 'nvme_drain' }

export type NvmeDioMessage = NvmeDio | NvmeDioResult | P2pMemWrite | P2pMemRead | P2pMemReadResult | NvmeDrain;
