// The scenario format: what a user writes (YAML or JSON) and the built-in scenarios ship as.
// schema.ts validates a file against it (zod) and yields exactly these types, with defaults filled.
//
// Units: times are strings with a unit ("50ms", "2s", "1h", "300us", "120ns") or numbers of ns;
// sizes are pages (4 KiB). Names (vma, file, device, process) are identifiers: [A-Za-z][A-Za-z0-9_-]*.

/** Simulated nanoseconds, after parsing "50ms" and the like. */
export type Ns = number;

export interface Scenario {
  name: string;
  description: string;
  /** Default seed (the CLI's --seed overrides it). */
  seed: number;
  /** Stop the run after this much simulated time even if phases remain. */
  duration: Ns;
  /** Thread mode's simulated ns per wall ns for this scenario (an hour-long job wants 1000s); --time-scale overrides. */
  timeScale?: number;
  /** The report's columns (ids of report/table.ts COLUMNS), the scenario's story first; default: the generic ones. */
  report?: string[];
  machine: Machine;
  files: FileSpec[];
  devices: DeviceSpec[];
  processes: ProcessSpec[];
  /** Run one after another by the process actor `app`. */
  phases: Phase[];
  /** Faults to inject (run/faults.ts); `--inject` flags add to them. */
  faults: FaultSpec[];
}

/**
 * One injected fault (run/faults.ts says what each does and its defined outcome).
 *   kill                  the device's actor dies at `atNs` (thread mode: its worker exits)
 *   hang-fence            the device's `job`-th job (1-based, counted per device) never signals its
 *                         fence; `timeoutMs` overrides machine.lockupTimeout's gfx and compute
 *   stop-invalidate-acks  from `atNs` on the device's invalidate_acks never reach mm
 *   delay                 envelopes from `from` to `to` arrive `ns` + [0, jitterNs) later
 *   reorder               each envelope between two actors is held, with `probability`, up to `maxNs`
 */
export type FaultSpec =
  | { kind: 'kill'; device: string; atNs: Ns }
  | { kind: 'hang-fence'; device: string; job: number; timeoutMs?: number; restore?: undefined }
  /** hang-fence with `restore: N`: the N-th restore worker run's page-table update fence never signals (kfd-svm, XNACK off). */
  | { kind: 'hang-fence'; device: string; restore: number; job?: undefined; timeoutMs?: undefined }
  | { kind: 'stop-invalidate-acks'; device: string; atNs: Ns }
  | { kind: 'delay'; from: string; to: string; ns: Ns; jitterNs: Ns }
  | { kind: 'reorder'; probability: number; maxNs: Ns };

export interface Machine {
  /** The kernel era (gpu-driver kernel-era.ts: v4.9, v6.6, v6.15, latest): the defaults that changed across versions. */
  kernel: string;
  /** The GPUs' cost profile (gpu-driver cost-profiles.ts: default, mi300-xnack, uvm-pcie); a gpu's `costs` win over it. */
  profile: string;
  /** amdgpu's lockup_timeout per ring type, ms (negative: infinite; 0 or absent: the era's default). */
  lockupTimeout?: { gfx?: number; compute?: number; sdma?: number };
  /** Page frames of RAM. */
  frames: number;
  /** Frames at the top that form ZONE_MOVABLE (0: none). */
  movableFrames: number;
  swapPages: number;
  /** Watermarks in frames; absent: derived from frames as the kernel does. */
  watermarks?: { min: number; low: number; high: number };
  /** Periodic writeback (dirty_writeback_centisecs); absent: only on a `writeback` step. */
  writebackInterval?: Ns;
  kswapd: boolean;
  /**
   * Automatic NUMA balancing (kernel-mm numa-balancing.ts); absent: off. Its fields default to the
   * kernel's sysctls: scanDelay 1 s, scanPeriod 1 s (scan_period_min), scanSize 65536 pages (256 MB).
   */
  numaBalancing?: { scanDelay?: Ns; scanPeriod?: Ns; scanSize?: number };
  /** Block device latency per page (ns). */
  diskLatency: Ns;
  /** Overrides of mm's cost table (MmCosts, ns). */
  costs: Record<string, number>;
  /**
   * CONFIG_DMABUF_MOVE_NOTIFY (default off, as the kernel's Kconfig): on, a GPU may evict a VRAM BO
   * an RDMA dma-buf MR imports (move_notify first); off, the BO is pinned while the NIC maps it.
   */
  dmabufMoveNotify: boolean;
  /**
   * kernel-mm's notifierPasses: 1 (default) mainline, each interval notifier called in turn and
   * blocking; 2 the two-pass RFC: drivers with invalidate_multipass (gpu `invalidateMultipass`)
   * start in a first pass and are waited for in a second.
   */
  notifierPasses: 1 | 2;
  /** The NVMe controller behind file pages and swap (packages/nvme); absent: diskLatency per command. */
  nvme?: NvmeMachineSpec;
  /** The PCI root complex, for P2P between nvme devices (drivers/pci/p2pdma.c). */
  pci?: { hostBridgeWhitelisted: boolean; cpuSupportsP2pdma: boolean };
}

/** machine.nvme: queue depth, media channels, and the cost table (ns; transferPerKiB per KiB moved). */
export interface NvmeMachineSpec {
  queueDepth?: number;
  channels?: number;
  costs?: { readCommand?: Ns; writeCommand?: Ns; flushCommand?: Ns; transferPerKiB?: Ns; prpListPage?: Ns };
}

export interface FileSpec {
  name: string;
  pages: number;
}

/**
 * A device and the coherence policy it runs: the HMM selftests' `dmirror`, an amdgpu-like `gpu`
 * (@svmsim/gpu-driver), or an mlx5-like RDMA NIC `rdma` (@svmsim/rdma-odp) with its remote peer.
 */
export interface DeviceSpec {
  id: string;
  kind: 'dmirror' | 'gpu' | 'rdma' | 'nvme';
  /**
   * dmirror: `safe` (default), or `unsafe-skip-read-retry` (the bug the checker must catch).
   * gpu: `userptr` (default), `pin`, `preempt`, `svm-fault`, `kfd-svm`, `uvm`, `gpusvm`, or `unsafe-userptr` / `unsafe-svm` / `unsafe-uvm` / `unsafe-gpusvm` (the bugs the checker must catch).
   *   Report variants (scenarios/reports/): `kfd-svm-read-begin-outside-loop`, `unsafe-lock-not-pinned`, `uvm-thrashing-off`.
   * rdma: the kind of MR the process registers over its VMAs: `odp` (default), `pinned-mr`,
   * `implicit-odp`, `dmabuf` (over a VRAM BO of `exporter`), or `unsafe-odp` (the bug the checker must catch).
   */
  policy: string;
  /** The policies `svmsim compare` runs this device under (default: every safe policy of its kind). */
  compare?: string[];
  /** Device memory in pages: dmirror's device-private pages (default 256); the GPU's VRAM under svm-fault (default 64; 0: no VRAM). */
  devicePages: number;
  /** gpu, svm-fault: pages hmm_range_fault maps per retry fault (default 1, as nouveau since v5.x per fault). */
  faultWindowPages?: number;
  /**
   * gpu, svm-fault: whether a fault asks hmm_range_fault for write access: `access` (default, nouveau)
   * for GPU writes only; `vma` (kfd) whenever the VMA is writable, so GPU reads break COW and KSM sharing.
   */
  faultPermission?: 'access' | 'vma';
  /** gpu: waves a job runs as, i.e. how many faults a job can have outstanding (default 16). */
  waves?: number;
  /** gpu: VRAM for VRAM BOs (gpu_alloc), pages (default 4096); TTM evicts to make room. */
  vramBoPages?: number;
  /** gpu, policy kfd-svm: XNACK (retry faults) on (default) or off (queue eviction and restore). */
  xnack?: boolean;
  /** gpu: cost overrides, ns by key (gpu-driver cost-profiles.ts GPU_COST_KEYS); they win over machine.profile. */
  costs?: Record<string, number>;
  /** gpu, policy svm-fault or userptr: the notifier has invalidate_multipass (the two-pass RFC; used under machine.notifierPasses 2). */
  invalidateMultipass?: boolean;
  /** gpu, policy uvm: UVM's module parameters (uvm_perf_fault_batch_count, uvm_perf_prefetch_*, uvm_perf_thrashing_*); UVM's defaults when absent. */
  uvm?: UvmDeviceSpec;
  /** gpu, policy gpusvm: xe's svm_notifier_size (MiB), fault chunk sizes (KiB) and atomic_svm_timeslice_ms; xe's defaults when absent. */
  gpusvm?: { notifierSizeMiB?: number; chunkSizesKiB?: number[]; atomicTimesliceMs?: number };
  /** rdma: the RC (or UD) QPs setup connects per process to the peer (default 4); workload threads take them in turn. */
  qps?: number;
  qpType?: 'rc' | 'ud';
  /** rdma: the QPs' attributes (ibv_modify_qp): rnr_retry (0..7, 7 for ever; default 7), min_rnr_timer (0..31, default 12), retry_cnt (default 7), timeout (default 14). */
  rnrRetry?: number;
  minRnrTimer?: number;
  retryCnt?: number;
  timeout?: number;
  /** rdma: a responder's rkey fault on RDMA READ / WRITE / atomics: `rnr-nak` (default) or `drop` (the requester retransmits). */
  rkeyFaultResponse?: 'rnr-nak' | 'drop';
  /** rdma, policy dmabuf: the gpu whose VRAM BOs the MRs import. */
  exporter?: string;
  /** nvme, policies lost-interrupts / hang / dead: when the controller fails (default 2 ms). */
  failAt?: number;
  /** nvme: io_timeout (default 30 s). */
  ioTimeout?: number;
  /** nvme, rdma: where it sits on the PCI bus (default switch): behind the one switch, on its ACS-redirecting downstream port, or on a root port of its own. */
  slot?: 'switch' | 'switch-acs' | 'root-port';
  /** nvme: pages of its CMB, published as p2pmem for the other controllers' direct I/O (none by default). */
  cmbPages?: number;
  /** nvme: its queue supports P2P (BLK_FEAT_PCI_P2PDMA; default true). */
  p2pQueue?: boolean;
  /** nvme: blocks of its raw namespace (default 65536). */
  blocks?: number;
  /** nvme: the out-of-tree dma-buf importer (dio_dmabuf steps into a GPU's VRAM BO); default false. */
  dmabufImporter?: boolean;
  /** gpu, kfd-svm: svm_default_granularity, log2 pages (default 9). */
  granularity?: number;
  /** gpu, kfd-svm: AMDGPU_SVM_RANGE_RETRY_FAULT_PENDING, ns (default 2 ms). */
  retryFaultPending?: number;
  /** nvme: the in-kernel NVMe-oF target exporting its namespace over an rdma device (nvmet steps). */
  nvmet?: { nic: string; p2pmem: string };
}

export interface ProcessSpec {
  name: string;
  vmas: VmaSpec[];
  /** RLIMIT_MEMLOCK in pages (default 2048: 8 MiB, the kernel's MLOCK_LIMIT since v5.16): what pinned MRs may pin. */
  memlock: number;
  /** CAP_IPC_LOCK: pinned MRs ignore RLIMIT_MEMLOCK. */
  capIpcLock: boolean;
}

export interface VmaSpec {
  name: string;
  /** anon: private anonymous; shared-anon: MAP_SHARED|MAP_ANONYMOUS; file: a mapping of `file`. */
  kind: 'anon' | 'shared-anon' | 'file';
  pages: number;
  /** "rw", "r", "none", "rwx", … */
  prot: string;
  /** file mappings: MAP_SHARED (true) or MAP_PRIVATE (false). */
  shared: boolean;
  file?: string;
  /** File offset in pages. */
  offset: number;
  /** madvise(MADV_MERGEABLE) right after the mmap. */
  mergeable: boolean;
  /** A gpu device id: setup creates one userptr BO over the whole VMA on it (gpu_bo_create). With `gpus`, the first of them. */
  gpu?: string;
  /** `gpu: [a, b, …]` in the file: every gpu that creates a BO over the whole VMA (GPUs mirroring one buffer). */
  gpus?: string[];
  /** An rdma device id: setup registers an MR of the device's kind over the whole VMA (ibv_reg_mr). */
  rdma?: string;
  /** The MR's access flags (default all four: local-write, remote-read, remote-write, remote-atomic). */
  rdmaAccess?: RdmaAccessFlag[];
}

export const RDMA_ACCESS_FLAGS = ['local-write', 'remote-read', 'remote-write', 'remote-atomic'] as const;
export type RdmaAccessFlag = (typeof RDMA_ACCESS_FLAGS)[number];
/** ibv_advise_mr's advice, as a scenario writes it. */
export const RDMA_ADVICE = ['prefetch', 'prefetch-write', 'prefetch-no-fault'] as const;
export type RdmaAdvice = (typeof RDMA_ADVICE)[number];
/**
 * One RDMA operation on a VMA's MR: `-in` ones the remote peer does to us (a SEND into a receive we
 * post, an RDMA WRITE / READ of our MR, an atomic on it), `-out` ones our process posts towards the peer.
 */
export const RDMA_OPS = ['write-in', 'read-in', 'send-in', 'atomic-in', 'write-out', 'read-out', 'send-out', 'atomic-out'] as const;
export type RdmaOp = (typeof RDMA_OPS)[number];

export type Phase = WorkloadPhase | ScriptPhase;

/** Random operations drawn from `mix` by `threads` CPU threads, each keeping one in flight. */
export interface WorkloadPhase {
  kind: 'workload';
  name: string;
  /** The process whose threads run it. */
  process: string;
  threads: number;
  /** End after this many operations, or after `duration` of simulated time (whichever first). */
  ops?: number;
  duration?: Ns;
  /** Weights per operation kind; see OP_KINDS. */
  mix: Partial<Record<OpKind, number>>;
  /** Which pages of a VMA an operation picks. */
  pattern: 'sequential' | 'random' | 'hot-cold' | 'strided';
  /** hot-cold: share of accesses that go to the hot 10% of pages (0..1). strided: the stride in pages. */
  hotShare: number;
  stride: number;
  /** VMAs the operations touch (default: every VMA of the process). */
  vmas?: string[];
  /** dio_read / dio_write: the largest request, in pages (each op picks 1..dioPages). Default 8. */
  dioPages: number;
  /** The device dmirror operations go to (default: the first dmirror device); for dio_ operations, the nvme device (default: the first). */
  device?: string;
  /** gpu_submit: the fraction (0, 1] of each BO's pages a job touches. Default 0.01. */
  gpuTouch: number;
  /** gpu_submit: how long a job runs on the GPU. Default 100us. */
  gpuJob: Ns;
  /** gpu_submit: whether jobs write their pages (DMA writes) or only read them. Default true. */
  gpuWrite: boolean;
  /** gpu_submit: the queue jobs go to. Default gfx. */
  gpuQueue: 'gfx' | 'compute';
  /** rdma ops: the largest message, in pages (each op picks 1..rdmaPages). Default 1. */
  rdmaPages: number;
  /** rdma_prefetch: its advice, and whether it is synchronous (FLUSH). Default prefetch-write, true. */
  rdmaAdvice: RdmaAdvice;
  rdmaFlush: boolean;
}

export const OP_KINDS = [
  'load', 'store', 'mmap_fixed', 'munmap', 'mprotect', 'madvise_dontneed', 'madvise_pageout', 'fork',
  'migrate_pages', 'reclaim', 'ksm_scan', 'writeback', 'pin',
  'dmirror_read', 'dmirror_write', 'dmirror_migrate_to_dev', 'dmirror_migrate_to_sys', 'dmirror_snapshot',
  'gpu_submit',
  'rdma_write_in', 'rdma_read_in', 'rdma_send_in', 'rdma_atomic_in', 'rdma_write_out', 'rdma_read_out', 'rdma_send_out', 'rdma_atomic_out', 'rdma_prefetch',
  'dio_read', 'dio_write',
] as const;
export type OpKind = (typeof OP_KINDS)[number];

/** Ordered steps, as a kernel selftest is written; `group` runs its steps concurrently. */
export interface ScriptPhase {
  kind: 'script';
  name: string;
  process: string;
  steps: Step[];
}

export type Step = ActionStep | GroupStep;

export interface GroupStep {
  /** A label for reports; default "group N". */
  name: string;
  group: ActionStep[];
}

export interface ActionStep {
  /** A label for reports; default "<action> N". */
  name: string;
  action: Action;
  expect?: Expect;
  /** Wait this long before the step starts: a time drawn (seeded) from [min, max] (a group's member after the others began, as a selftest thread's nanosleep). */
  delay?: { min: Ns; max: Ns };
}

export type Action =
  | { op: 'mmap'; vma: string; kind: VmaSpec['kind']; pages: number; prot: string; shared: boolean; file?: string; offset: number; fixed?: boolean }
  | { op: 'munmap'; vma: string; page: number; pages: number }
  | { op: 'mprotect'; vma: string; page: number; pages: number; prot: string }
  | { op: 'madvise'; vma: string; page: number; pages: number; advice: 'dontneed' | 'mergeable' | 'pageout' | 'free' }
  /** `value`: one number for every page, a fresh unique one per page, or `index`: each page's number in the VMA (hmm-tests' ptr[i] = i). */
  | { op: 'store'; vma: string; page: number; pages: number; value: number | 'unique' | 'index' | number[] }
  | { op: 'load'; vma: string; page: number; pages: number }
  /** `wait` (default true): the parent waits for the child's steps and exit; false: the child runs on beside the parent, as `child` (for `kill` / `wait`). */
  | { op: 'fork'; steps: Step[]; wait: boolean; child?: string }
  | { op: 'exit' }
  /**
   * One ioctl on the device. Its `addr`: the VMA's page `page`, or `addr` given raw (a number, or
   * "vma + bytes" / "vma - bytes", unaligned allowed) so the driver's own checks answer; `pages` is
   * cmd.npages. `ptr`: the user buffer (a `buffer` step's) the ioctl copies to or from.
   */
  | { op: 'dmirror'; device: string; cmd: string; vma: string; page: number; pages: number; data?: number[]; addr?: RawAddr; ptr?: string }
  /** malloc of a user buffer `buffer` of `pages` words (one per page, as a VMA's pages hold), filled with `fill`. */
  | { op: 'buffer'; buffer: string; pages: number; fill: BufferFill }
  /** The words the user buffer holds now (got.data). */
  | { op: 'read_buffer'; buffer: string }
  /** The device's counters (got: each counter by name; expect.got compares them). */
  | { op: 'counters'; device: string }
  /**
   * One call of the get_user_pages family on pages [page, page + pages) of `vma`: FOLL_GET
   * references (get_user_pages, get_user_pages_fast) or FOLL_PIN pins (pin_user_pages,
   * pin_user_pages_fast), FOLL_WRITE / FOLL_LONGTERM / FOLL_FORCE as asked; held until an `unpin`
   * step releases them (put_page for a reference, unpin_user_page for a pin).
   */
  | { op: 'gup'; vma: string; page: number; pages: number; flavour: GupFlavour; write: boolean; longterm: boolean; force: boolean }
  /** kill(child, SIGKILL) of a child a `fork` with `wait: false` left running; the parent waits for it to be gone. */
  | { op: 'kill'; child: string }
  /** waitpid for a child a `fork` with `wait: false` left running, until its steps are done and it has exited. */
  | { op: 'wait'; child: string }
  /**
   * mremap(old_address, old_size, new_size, flags[, new_address]) of pages [page, page + pages) of
   * `vma` to `newPages` pages; MREMAP_FIXED puts them at `to` (a VMA's address, plus `toPage`
   * pages). The moved range is then the VMA `as` (default: `vma` itself).
   */
  | { op: 'mremap'; vma: string; page: number; pages: number; newPages: number; maymove: boolean; fixed: boolean; dontunmap: boolean; to?: string; toPage: number; as?: string }
  /**
   * A GPU job over one BO: the userptr BO of `vma` (VmaSpec.gpu) or the VRAM BO `buffer` (gpu_alloc):
   * gpu_submit, then gpu_wait for it unless `wait: false` (the job runs on; the BO's free at the end
   * of the run waits for it).
   */
  | { op: 'gpu'; device: string; vma?: string; buffer?: string; touch: number; write: boolean; atomic: boolean; duration: Ns; queue: 'gfx' | 'compute'; wait: boolean }
  /** A VRAM BO of `pages` on `device` (GEM_CREATE in VRAM), named `buffer` in the process; TTM may evict others to place it. */
  | { op: 'gpu_alloc'; device: string; buffer: string; pages: number }
  /** GEM_CLOSE of the VRAM BO `buffer` (after its jobs). */
  | { op: 'gpu_free'; buffer: string }
  | { op: 'pin'; vma: string; page: number; pages: number; write: boolean; longterm: boolean }
  | { op: 'unpin'; vma: string; page: number; pages: number }
  | { op: 'migrate_pages'; vma: string; page: number; pages: number }
  | { op: 'reclaim'; pages: number }
  | { op: 'ksm_scan' }
  | { op: 'writeback' }
  | { op: 'sleep'; duration: Ns }
  /** echo VALUE > /proc/PID/clear_refs (only "4", CLEAR_REFS_SOFT_DIRTY, is modelled). */
  | { op: 'clear_refs'; value: string }
  /** A read of /proc/PID/pagemap over pages [page, page + pages) of `vma`: got softDirty (bit 55) and present (bit 63), 0/1 per page. */
  | { op: 'pagemap'; vma: string; page: number; pages: number }
  /** One task_numa_work pass over the process now (whatever machine.numaBalancing says); got `updated`: PTEs made NUMA hinting entries. */
  | { op: 'numa_scan' }
  /** One RDMA operation on the MR over `vma` (VmaSpec.rdma) of `device`: pages [page, page + pages). ret 0 and `status` (IBV_WC_*). */
  | { op: 'rdma'; device: string; vma: string; verb: RdmaOp; page: number; pages: number }
  | { op: 'dio'; device: string; io: 'read' | 'write'; vma: string; page: number; pages: number; block: number }
  | { op: 'dio_p2p'; device: string; io: 'read' | 'write'; provider: string; page: number; pages: number; block: number }
  | { op: 'nvmet'; device: string; io: 'read' | 'write'; block: number; pages: number; values?: number[] }
  | { op: 'dio_dmabuf'; device: string; io: 'read' | 'write'; buffer: string; page: number; pages: number; block: number }
  /** ibv_reg_mr of a pinned MR on `device` over pages [page, page + pages) of the process's mapping of `provider`'s p2pmem. ret 0 or -errno. */
  | { op: 'rdma_reg_mr'; device: string; provider: string; page: number; pages: number }
  /** ibv_advise_mr over pages [page, page + pages) of the VMA's MR. */
  | { op: 'rdma_advise'; device: string; vma: string; page: number; pages: number; advice: RdmaAdvice; flush: boolean };

/** A raw address: a number, or a VMA's start plus (or minus) a byte offset. */
export type RawAddr = number | { vma: string; offset: number };

/** A user buffer's initial words: a list (one per page), one value for all, or i / -i of each page's index i (hmm-tests' pattern). */
export type BufferFill = number[] | number | 'index' | 'minus-index';

export const GUP_FLAVOURS = ['get_user_pages', 'get_user_pages_fast', 'pin_user_pages', 'pin_user_pages_fast'] as const;
export type GupFlavour = (typeof GUP_FLAVOURS)[number];

/** What a step must return. Every field given is compared; an unmet one fails the run (exit 1). */
export interface Expect {
  /** Return code: a number, or an errno name such as "EFAULT" (negated as the kernel returns it). */
  ret?: number | string;
  cpages?: number;
  faults?: number;
  /** Loads and dmirror reads: the words read, one per page. */
  data?: number[];
  /** dmirror SNAPSHOT: the HMM_DMIRROR_PROT_* byte per page. */
  snapshot?: number[];
  /** pagemap: the soft-dirty bit (pagemap bit 55) per page, 0 or 1. */
  softDirty?: number[];
  /** rdma: the work completion's status, e.g. "IBV_WC_RNR_RETRY_EXC_ERR" (the IBV_WC_ prefix may be left out). */
  status?: string;
  /** A dmirror step with `ptr`: the words its user buffer holds after the step. */
  buffer?: number[];
  /** Any other number the step returned, by name: pinned, migrated, a device's counters (a `counters` step)… */
  got?: Record<string, number>;
  /** The other fields are checked only if the step returned 0 (hmm-tests' `if (rc == 0)` around a racing read). */
  onlyIfOk?: boolean;
}

/** One step's outcome, as the report lists it. */
export interface StepResult {
  phase: string;
  step: string;
  /** What came back: ret and whatever else the operation returns. */
  got: Record<string, unknown>;
  /** The unmet expectations, one line each; empty when met (or nothing expected). */
  failures: string[];
}

/** A gpu's `uvm:` key: NVIDIA UVM's module parameters (lapse in ns; nap, epoch and pin in lapses, as UVM's). */
export interface UvmDeviceSpec {
  batchCount?: number;
  prefetch?: boolean;
  prefetchThreshold?: number;
  thrashing?: { enable?: boolean; threshold?: number; pinThreshold?: number; lapse?: number; nap?: number; epoch?: number; pin?: number; maxResets?: number };
}
