// The scenario file's schema (zod): what a YAML or JSON scenario may say, the defaults it leaves
// out, and the checks between its parts (a step's VMA exists, a device is declared, …). Parsing
// yields exactly the `Scenario` of types.ts, which the runner consumes without further checks.
//
// The file is written for people, so it is terser than types.ts: a step is keyed by its operation
// (`- store: {vma: buf, page: 0}` becomes `{name: 'store 3', action: {op: 'store', vma: 'buf', page:
// 0, pages: 1, value: 'unique'}}`), a phase by its kind (`- workload: {…}` becomes `{kind:
// 'workload', …}`), times are "50ms" strings. Normalisation happens in zod transforms so that every
// error path is the path in the user's file (phases[1].script.steps[3].store.vma).
//
// Errors are built for one line each (load.ts prints the first): every object is strict with a
// did-you-mean against its keys, enums and name references suggest the closest allowed value, and
// formatIssue turns zod's issues into "<path>: <value> is not … (did you mean …?)".
import { ETIMEDOUT, HMM_DMIRROR_CMDS, type HmmDmirrorCmdName } from '@svmsim/kernel-mm/dmirror';
import { DEFAULT_COSTS } from '@svmsim/kernel-mm/kernel';
import { VPN_LIMIT } from '@svmsim/kernel-mm/page-table';
import { MMAP_BASE_VPN } from '@svmsim/kernel-mm/process';
import { ERRNO_NAMES } from '@svmsim/kernel-mm/protocol';
import { CMB_PAGES_LIMIT, NVME_ACTOR_NAMESPACE_BLOCKS, NVME_COST_LIMIT_NS, NVME_POLICIES, NVME_QUEUE_DEPTH_LIMIT } from '@svmsim/nvme';
import { IBV_WC_STATUSES } from '@svmsim/rdma-odp/rdma-protocol';
import { DEFAULT_KERNEL_ERA, KERNEL_ERAS } from '@svmsim/gpu-driver/kernel-era';
import { DEFAULT_GPU_COST_PROFILE, GPU_COST_KEYS, GPU_COST_PROFILE_NAMES } from '@svmsim/gpu-driver/cost-profiles';
import { DEFAULT_GPU_COSTS, MULTIPASS_POLICIES } from '@svmsim/gpu-driver';
import { z } from 'zod';
import {
  OP_KINDS,
  RDMA_ACCESS_FLAGS,
  RDMA_ADVICE,
  RDMA_OPS,
  GUP_FLAVOURS,
  type Action,
  type BufferFill,
  type RawAddr,
  type ActionStep,
  type DeviceSpec,
  type Expect,
  type FaultSpec,
  type FileSpec,
  type Machine,
  type OpKind,
  type Phase,
  type ProcessSpec,
  type Scenario,
  type ScriptPhase,
  type Step,
  type VmaSpec,
  type WorkloadPhase,
} from './types.js';
import { COLUMNS } from '../report/table.js';
import { PROT_SPELLINGS, closest, didYouMean, parseDuration, parseProt, show } from './units.js';

// =====================================================================================
// Vocabulary
// =====================================================================================

/** Coherence policies of the dmirror device (DeviceSpec.policy). */
export const DEVICE_POLICIES = ['safe', 'unsafe-skip-read-retry', 'unsafe-skip-owner-check'] as const;
export const DEVICE_KINDS = ['dmirror', 'gpu', 'rdma', 'nvme'] as const;
/** Each device kind's policies, its default first. */
export const POLICIES_BY_KIND: Record<(typeof DEVICE_KINDS)[number], readonly string[]> = {
  dmirror: DEVICE_POLICIES,
  // Then the report variants (gpu-driver GPU_REPORT_VARIANTS): compared only where a scenario names them.
  gpu: ['userptr', 'pin', 'preempt', 'svm-fault', 'kfd-svm', 'uvm', 'gpusvm', 'unsafe-userptr', 'unsafe-svm', 'unsafe-uvm', 'unsafe-gpusvm', 'kfd-svm-read-begin-outside-loop', 'unsafe-lock-not-pinned', 'uvm-thrashing-off'],
  rdma: ['odp', 'pinned-mr', 'implicit-odp', 'dmabuf', 'unsafe-odp'],
  // The safe driver against a healthy controller, or one that fails at failAt in one of three
  // ways (selected like a policy, so that `compare` runs each as a row); and the unsafe twin.
  nvme: NVME_POLICIES,
};
/** Keys of a device spec that only an nvme device takes. */
const NVME_DEVICE_KEYS = ['failAt', 'ioTimeout', 'cmbPages', 'p2pQueue', 'blocks', 'dmabufImporter', 'nvmet'] as const;
export const PCI_SLOTS = ['switch', 'switch-acs', 'root-port'] as const;
/** Keys of a device spec that only an rdma device takes. */
const RDMA_DEVICE_KEYS = ['qps', 'qpType', 'rnrRetry', 'minRnrTimer', 'retryCnt', 'timeout', 'rkeyFaultResponse', 'exporter'] as const;
/** expect.status: an IBV_WC_* name, with or without the prefix. */
const WC_PREFIX = 'IBV_WC_';
export const GPU_QUEUES = ['gfx', 'compute'] as const;
/** svm-fault: whether a GPU fault asks for write access by the GPU's access (nouveau) or the VMA's permission (kfd). */
export const FAULT_PERMISSIONS = ['access', 'vma'] as const;
export const VMA_KINDS = ['anon', 'shared-anon', 'file'] as const;
export const PATTERNS = ['sequential', 'random', 'hot-cold', 'strided'] as const;
export const MADVISE_ADVICE = ['dontneed', 'mergeable', 'pageout', 'free'] as const;
/** errno names an expect.ret may give: protocol.ts ERRNO_NAMES, and ETIMEDOUT (dmirror's request timeout). */
export const ERRNO_LIST: readonly string[] = [...Object.values(ERRNO_NAMES), ...(ERRNO_NAMES[ETIMEDOUT] ? [] : ['ETIMEDOUT'])];
/** Names of vmas, files, devices, processes. */
export const NAME_RE = /^[A-Za-z][A-Za-z0-9_-]*$/;
/** Actor ids the runner uses; a device may not take one. */
export const RESERVED_ACTOR_IDS = ['mm', 'app', 'ramdisk', 'nvme'] as const;
/** dmirror commands that return words (read, or written for WRITE): expect.data applies, as to load and store. */
const DMIRROR_DATA_CMDS: readonly string[] = ['HMM_DMIRROR_READ', 'HMM_DMIRROR_WRITE', 'HMM_DMIRROR_MIGRATE_TO_DEV', 'HMM_DMIRROR_EXCLUSIVE'];
const CMD_PREFIX = 'HMM_DMIRROR_';

// =====================================================================================
// Building blocks with one-line messages
// =====================================================================================

const list = (xs: readonly string[]) => xs.join(', ');

/** A strict object whose unknown key reports the allowed keys and the closest one. */
function strict<T extends z.core.$ZodLooseShape>(shape: T) {
  const keys = Object.keys(shape);
  return z.strictObject(shape, {
    error: (iss) => {
      if (iss.code !== 'unrecognized_keys') return undefined;
      const key = iss.keys[0];
      return `unknown key ${JSON.stringify(key)}; allowed keys: ${list(keys)}${didYouMean(key, keys)}`;
    },
  });
}

/** An enum whose message lists the values and the closest one. */
function oneOf<const T extends readonly [string, ...string[]]>(values: T) {
  return z.enum(values, {
    error: (iss) => (iss.code === 'invalid_value' ? notOneOf(iss.input, values) : undefined),
  });
}

function notOneOf(input: unknown, values: readonly string[]): string {
  if (input === undefined) return `missing; expected one of ${list(values)}`;
  return `${show(input)} is not one of ${list(values)}${typeof input === 'string' ? didYouMean(input, values) : ''}`;
}

/** A converted value: `fn` throws an Error whose message becomes the issue's. */
function converted<I, O>(accepts: (v: unknown) => v is I, what: string, fn: (v: I) => O) {
  return z
    .custom<I>((v) => accepts(v), {
      error: (iss) => (iss.input === undefined ? `missing; expected ${what}` : `${show(iss.input)} is not ${what}`),
    })
    .transform((v, ctx): O => {
      try {
        return fn(v);
      } catch (e) {
        ctx.issues.push({ code: 'custom', message: (e as Error).message, input: v });
        return z.NEVER;
      }
    });
}

const isStringOrNumber = (v: unknown): v is string | number => typeof v === 'string' || typeof v === 'number';

/** A duration: "50ms", "1.5s", "2m 30s", or a number of ns → ns. */
export const durationSchema = converted(isStringOrNumber, 'a duration (a number of ns or a string such as "50ms")', parseDuration);

/** A protection: "rw", "r", "none", "rwx", … (kept as written; parseProt gives the bits). */
export const protSchema = converted(
  (v): v is string => typeof v === 'string',
  `a protection (${PROT_SPELLINGS})`,
  (v) => (parseProt(v), v),
);

/** A name of a vma, file, device or process. */
export const nameSchema = converted(
  (v): v is string => typeof v === 'string',
  'a name (a string)',
  (v) => {
    if (!NAME_RE.test(v)) throw new Error(`${show(v)} is not a valid name: a name starts with a letter and holds letters, digits, _ and -`);
    return v;
  },
);

const label = z.string().min(1).max(256);
/**
 * Limits (README, "Limits"): every count has one, so a number past it is a one-line error naming
 * the field (exit 2), never a run that dies allocating (exit 3). Frames, swap slots, file pages,
 * device pages: at most 2^24 (64 GiB of 4 KiB pages). A VMA and a step's page range: at most 2^20
 * pages, the address space of one process (kernel-mm page-table.ts VPN_LIMIT).
 */
export const COUNT_MAX = 2 ** 24;
export const VMA_PAGES_MAX = VPN_LIMIT;
/** A process's VMAs together: its address space above mmap_base (kernel-mm process.ts MMAP_BASE_VPN). */
export const PROCESS_PAGES_MAX = VPN_LIMIT - MMAP_BASE_VPN;
const count = (min: number, max: number = COUNT_MAX) => z.int().min(min).max(max);
const flag = z.boolean();

/** expect.ret: a number, or an errno name (a leading "-", as the kernel writes -EPERM, is dropped). */
const retSchema = converted(isStringOrNumber, 'a return code (a number or an errno name such as "EFAULT")', (v): number | string => {
  if (typeof v === 'number') {
    if (!Number.isInteger(v)) throw new Error(`${v} is not a return code: expected an integer or an errno name`);
    return v;
  }
  const name = v.startsWith('-') ? v.slice(1) : v;
  if (!ERRNO_LIST.includes(name)) {
    throw new Error(`${show(v)} is not an errno name; expected a number or one of ${list(ERRNO_LIST)}${didYouMean(name, ERRNO_LIST)}`);
  }
  return name;
});

/** dmirror cmd: a name of HMM_DMIRROR_CMDS, with or without its HMM_DMIRROR_ prefix, any case, - for _ ("migrate-to-dev"). */
const cmdSchema = converted((v): v is string => typeof v === 'string', 'a dmirror command', (v): HmmDmirrorCmdName => {
  const upper = v.toUpperCase().replace(/-/g, '_');
  const full = upper.startsWith(CMD_PREFIX) ? upper : CMD_PREFIX + upper;
  const found = HMM_DMIRROR_CMDS.find((c) => c === full);
  if (found) return found;
  const short = HMM_DMIRROR_CMDS.map((c) => c.slice(CMD_PREFIX.length));
  const near = closest(upper.startsWith(CMD_PREFIX) ? upper.slice(CMD_PREFIX.length) : upper, short);
  throw new Error(
    `${show(v)} is not one of ${list(HMM_DMIRROR_CMDS)} (the ${CMD_PREFIX} prefix may be left out, any case)` +
      (near === undefined ? '' : ` (did you mean ${CMD_PREFIX}${near}?)`),
  );
});

const storeScalar = z.custom<number | 'unique' | 'index'>((v) => (typeof v === 'number' && Number.isFinite(v)) || v === 'unique' || v === 'index', {
  error: (iss) => `${show(iss.input)} is not a value to store: expected a number, "unique", "index" (each page its page number in the VMA) or a list of words`,
});

/**
 * A list of words, each item a number, "A..B" (every whole number from A to B, up or down:
 * "0..1023", "-0..-1023") or "V*N" (V, N times: "0*2"), so a selftest's 1024-word pattern is one
 * line. At most 2^20 words in all.
 */
const words = z.preprocess((v) => (Array.isArray(v) ? expandWords(v) : v), z.array(z.number()).max(VPN_LIMIT));

function expandWords(items: unknown[]): unknown[] {
  const out: unknown[] = [];
  for (const it of items) {
    if (typeof it !== 'string') {
      out.push(it);
      continue;
    }
    const range = /^\s*(-?\d+)\s*\.\.\s*(-?\d+)\s*$/.exec(it);
    const times = /^\s*(-?\d+(?:\.\d+)?)\s*\*\s*(\d+)\s*$/.exec(it);
    // Past the limit: leave the item for the array check to report (the list is too long).
    if (range) {
      const [a, b] = [Number(range[1]), Number(range[2])];
      if (Math.abs(b - a) >= VPN_LIMIT) return [...out, ...new Array(VPN_LIMIT + 1).fill(0)];
      for (let x = a; a <= b ? x <= b : x >= b; x += a <= b ? 1 : -1) out.push(x);
    } else if (times) {
      if (Number(times[2]) > VPN_LIMIT) return [...out, ...new Array(VPN_LIMIT + 1).fill(0)];
      for (let i = 0; i < Number(times[2]); i++) out.push(Number(times[1]));
    } else out.push(it); // not a number: the array check names it
  }
  return out;
}

/**
 * A raw address (dmirror `addr`): a number of bytes, or "vma + bytes" / "vma - bytes" (hex 0x… or
 * decimal), unaligned allowed: the driver's own checks answer it. Numbers are whole and below 2^53.
 */
const rawAddrSchema = converted(isStringOrNumber, 'an address (a number, or "vma + bytes")', (v): RawAddr => {
  if (typeof v === 'number') {
    if (!Number.isSafeInteger(v) || v < 0) throw new Error(`${v} is not an address: expected a whole number from 0 to 2^53 - 1`);
    return v;
  }
  const m = /^\s*([A-Za-z][A-Za-z0-9_-]*)\s*(?:([+-])\s*(0x[0-9a-fA-F]+|\d+)\s*)?$/.exec(v);
  if (!m) throw new Error(`${show(v)} is not an address: expected a number, a VMA name, or "vma + bytes" / "vma - bytes"`);
  const bytes = m[3] === undefined ? 0 : Number(m[3]);
  if (!Number.isSafeInteger(bytes)) throw new Error(`${show(v)}: the offset ${m[3]} is past 2^53`);
  return { vma: m[1], offset: m[2] === '-' ? -bytes : bytes };
});

/** A user buffer's fill: a list of words, one number for all, "index" (i) or "minus-index" (-i). */
const fillSchema = z.custom<BufferFill>((v) => v === 'index' || v === 'minus-index' || (typeof v === 'number' && Number.isFinite(v)) || (Array.isArray(v) && v.every((w) => typeof w === 'number' && Number.isFinite(w))), {
  error: (iss) => `${show(iss.input)} is not a fill: expected a list of numbers, a number, "index" or "minus-index"`,
});

/** `- kill: child` or `- kill: {child: child}` (also wait, read_buffer, counters). */
const named = <K extends string>(key: K) =>
  z.preprocess((v) => (typeof v === 'string' ? { [key]: v } : v), strict({ [key]: nameSchema } as { [P in K]: typeof nameSchema }));

// =====================================================================================
// Machine, files, devices, processes
// =====================================================================================

const COST_KEYS = Object.keys(DEFAULT_COSTS);
const costsSchema = strict(Object.fromEntries(COST_KEYS.map((k) => [k, durationSchema.optional()])) as Record<string, z.ZodOptional<typeof durationSchema>>)
  .transform((c): Record<string, number> => Object.fromEntries(Object.entries(c).filter(([, v]) => v !== undefined)) as Record<string, number>);

/**
 * machine.nvme: the NVMe controller behind file pages and swap. Costs are durations (ns or "80us");
 * absent, every command costs diskLatency with no per-byte cost, as before the controller.
 */
const nvmeCostDuration = durationSchema.refine((v) => v <= NVME_COST_LIMIT_NS, { error: `past the limit of ${NVME_COST_LIMIT_NS} ns (10 s): a command that long is a hang, not a cost` });
const nvmeSchema = strict({
  queueDepth: count(2).max(NVME_QUEUE_DEPTH_LIMIT).optional(),
  channels: count(1).max(1024).optional(),
  costs: strict({
    readCommand: nvmeCostDuration.optional(),
    writeCommand: nvmeCostDuration.optional(),
    flushCommand: nvmeCostDuration.optional(),
    transferPerKiB: nvmeCostDuration.optional(),
    prpListPage: nvmeCostDuration.optional(),
  }).optional(),
});

/**
 * amdgpu's lockup_timeout module parameter per ring type, ms, with its meaning: a negative value is
 * infinite (MAX_SCHEDULE_TIMEOUT), 0 keeps the era's default. Bounded by a day: past that the
 * timeout is as good as infinite, and a typo (seconds for ms ×1000) should not pass unseen.
 */
const LOCKUP_TIMEOUT_MS_MAX = 86_400_000;
const lockupMs = z.int().min(-LOCKUP_TIMEOUT_MS_MAX).max(LOCKUP_TIMEOUT_MS_MAX);

/** A period: more than 0 (a scan every 0 ns would never let the run go on). */
const positiveDuration = durationSchema.refine((ns) => ns > 0, 'must be more than 0');

const machineSchema = strict({
  kernel: oneOf(KERNEL_ERAS as unknown as readonly [string, ...string[]]).default(DEFAULT_KERNEL_ERA),
  // The GPUs' cost profile (gpu-driver cost-profiles.ts): a named set of cited figures; a gpu's own `costs:` win over it.
  profile: oneOf(GPU_COST_PROFILE_NAMES as unknown as readonly [string, ...string[]]).default(DEFAULT_GPU_COST_PROFILE),
  lockupTimeout: strict({ gfx: lockupMs.optional(), compute: lockupMs.optional(), sdma: lockupMs.optional() }).optional(),
  frames: count(16).default(1024),
  movableFrames: count(0).default(0),
  swapPages: count(0).default(1024),
  watermarks: strict({ min: count(1), low: count(1), high: count(1) }).optional(),
  writebackInterval: durationSchema.optional(),
  kswapd: flag.default(true),
  numaBalancing: strict({ scanDelay: durationSchema.optional(), scanPeriod: positiveDuration.optional(), scanSize: count(1).optional() }).optional(),
  diskLatency: durationSchema.default(10_000),
  costs: costsSchema.prefault({}),
  dmabufMoveNotify: flag.default(false),
  // kernel-mm's notifierPasses: 1 mainline mn_itree_invalidate, 2 the two-pass RFC (invalidate.ts).
  notifierPasses: z.union([z.literal(1), z.literal(2)]).default(1),
  nvme: nvmeSchema.optional(),
  /** The PCI root complex, for P2P between nvme devices: on host_bridge_whitelist; an AMD Zen CPU (cpu_supports_p2pdma). */
  pci: strict({ hostBridgeWhitelisted: flag.default(false), cpuSupportsP2pdma: flag.default(false) }).optional(),
}).superRefine((m, ctx) => {
  if (m.movableFrames >= m.frames) {
    ctx.addIssue({ continue: false, code: 'custom', path: ['movableFrames'], input: m.movableFrames, message: `${m.movableFrames} is not less than frames (${m.frames})` });
  }
  const w = m.watermarks;
  if (w && !(w.min < w.low && w.low < w.high && w.high < m.frames)) {
    ctx.addIssue({ continue: false,
      code: 'custom', path: ['watermarks'], input: w,
      message: `${show(w)}: expected min < low < high < frames (${m.frames})`,
    });
  }
});

const fileSchema = strict({ name: nameSchema, pages: count(1) });

/**
 * gpu, policy uvm: NVIDIA UVM's module parameters (packages/gpu-driver/src/policy-uvm.ts,
 * uvm-thrashing.ts), each with UVM's default when left out; the ranges are the ones UVM accepts.
 */
const uvmSchema = strict({
  batchCount: count(1).optional(),
  prefetch: flag.optional(),
  prefetchThreshold: z.int().min(0).max(100).optional(),
  thrashing: strict({
    enable: flag.optional(),
    threshold: z.int().min(1).max(7).optional(),
    pinThreshold: z.int().min(1).max(255).optional(),
    lapse: durationSchema.refine((v) => v >= 1_000, { error: 'must be at least 1us' }).optional(),
    nap: z.int().min(1).max(100).optional(),
    epoch: count(1).optional(),
    pin: count(0).optional(),
    maxResets: count(0).optional(),
  }).optional(),
});

/** A gpu's `costs:`: any of the profile keys, each a duration. */
const gpuCostsSchema = strict(Object.fromEntries(GPU_COST_KEYS.map((k) => [k, durationSchema.optional()])) as Record<string, z.ZodOptional<typeof durationSchema>>)
  .transform((c): Record<string, number> => Object.fromEntries(Object.entries(c).filter(([, v]) => v !== undefined)) as Record<string, number>);

/**
 * gpu, policy gpusvm: xe's DRM GPU SVM settings (packages/gpu-driver/src/policy-gpusvm.ts), each
 * with xe's default when left out: the svm_notifier_size module parameter (MiB), the fault chunk
 * sizes (KiB, largest first, powers of two ending with a 4 KiB page, none above the notifier) and
 * atomic_svm_timeslice_ms (debugfs).
 */
/** A sane bound on svm_notifier_size: 4 GiB per notifier is 8x xe's default of 512 MiB. */
const GPUSVM_NOTIFIER_SIZE_MIB_MAX = 4096;
const gpusvmSchema = strict({
  notifierSizeMiB: z.int().min(2).max(GPUSVM_NOTIFIER_SIZE_MIB_MAX).refine((v) => (v & (v - 1)) === 0, { error: 'must be a power of two' }).optional(),
  chunkSizesKiB: z.array(z.int().min(4).max(1 << 20).refine((v) => (v & (v - 1)) === 0, { error: 'must be a power of two' })).min(1).max(8)
    .refine((a) => a[a.length - 1] === 4, { error: 'must end with 4 (a page)' })
    .refine((a) => a.every((v, i) => i === 0 || v < a[i - 1]), { error: 'must be in descending order' })
    .optional(),
  atomicTimesliceMs: z.int().min(0).max(60_000).optional(),
}).superRefine((g, ctx) => {
  const top = g.chunkSizesKiB?.[0];
  if (top !== undefined && top > (g.notifierSizeMiB ?? 512) * 1024) ctx.addIssue({ continue: false, code: 'custom', path: ['chunkSizesKiB'], input: top, message: `${top}: a chunk larger than the notifier (${g.notifierSizeMiB ?? 512} MiB)` });
});

const deviceSchema = strict({
  id: nameSchema,
  kind: oneOf(DEVICE_KINDS).default('dmirror'),
  policy: z.string().optional(),
  devicePages: count(0).optional(),
  faultWindowPages: count(1).optional(),
  faultPermission: oneOf(FAULT_PERMISSIONS).optional(),
  waves: count(1).optional(),
  vramBoPages: count(1).optional(),
  xnack: flag.optional(),
  // kfd-svm: amdgpu's svm_default_granularity (log2 pages, default 9: 2 MiB; the kernel clamps
  // larger values to 0x1B) and the AMDGPU_SVM_RANGE_RETRY_FAULT_PENDING window (default 2ms).
  granularity: z.int().min(0).max(0x1b).optional(),
  retryFaultPending: durationSchema.optional(),
  uvm: uvmSchema.optional(),
  // gpu: cost overrides (gpu-driver cost-profiles.ts GPU_COST_KEYS), durations; they win over machine.profile.
  costs: gpuCostsSchema.optional(),
  // gpu: the notifier has invalidate_multipass (svm-fault, userptr).
  invalidateMultipass: flag.optional(),
  gpusvm: gpusvmSchema.optional(),
  compare: z.array(z.string()).min(1).optional(),
  qps: z.int().min(1).max(64).optional(),
  qpType: oneOf(['rc', 'ud']).optional(),
  rnrRetry: z.int().min(0).max(7).optional(),
  minRnrTimer: z.int().min(0).max(31).optional(),
  retryCnt: z.int().min(0).max(7).optional(),
  timeout: z.int().min(0).max(31).optional(),
  rkeyFaultResponse: oneOf(['rnr-nak', 'drop']).optional(),
  exporter: nameSchema.optional(),
  failAt: durationSchema.optional(),
  ioTimeout: durationSchema.refine((v) => v >= 1_000_000 && v <= 3_600_000_000_000, { error: 'must be between 1ms and 1h (nvme io_timeout)' }).optional(),
  slot: oneOf(PCI_SLOTS).optional(),
  cmbPages: z.int().min(1).max(CMB_PAGES_LIMIT).optional(),
  p2pQueue: flag.optional(),
  blocks: z.int().min(1).max(NVME_ACTOR_NAMESPACE_BLOCKS).optional(),
  dmabufImporter: flag.optional(),
  // The in-kernel NVMe-oF target exporting the namespace over `nic` (packages/nvme/src/nvmet-rdma.ts);
  // p2pmem is the namespace's configfs attribute: off (default), auto, or a provider's id.
  nvmet: strict({ nic: nameSchema, p2pmem: nameSchema.default('off') }).optional(),
})
  .superRefine((d, ctx) => {
    if (d.slot !== undefined && d.kind !== 'nvme' && d.kind !== 'rdma') ctx.addIssue({ continue: false, code: 'custom', path: ['slot'], input: d.slot, message: `${show(d.slot)}: slot applies to nvme and rdma devices only` });
    for (const k of NVME_DEVICE_KEYS) {
      if (d[k] !== undefined && d.kind !== 'nvme') ctx.addIssue({ continue: false, code: 'custom', path: [k], input: d[k], message: `${show(d[k])}: ${k} applies to nvme devices only` });
    }
    // Policies are per kind: a gpu policy on a dmirror is as wrong as a misspelling.
    const known = POLICIES_BY_KIND[d.kind];
    if (d.policy !== undefined && !known.includes(d.policy)) {
      ctx.addIssue({ continue: false, code: 'custom', path: ['policy'], input: d.policy, message: notOneOf(d.policy, known) });
    }
    d.compare?.forEach((p, i) => {
      if (!known.includes(p)) ctx.addIssue({ continue: false, code: 'custom', path: ['compare', i], input: p, message: notOneOf(p, known) });
    });
    for (const k of RDMA_DEVICE_KEYS) {
      if (d[k] !== undefined && d.kind !== 'rdma') ctx.addIssue({ continue: false, code: 'custom', path: [k], input: d[k], message: `${show(d[k])}: ${k} applies to rdma devices only` });
    }
    if (d.kind === 'rdma' && d.policy === 'dmabuf' && d.exporter === undefined) {
      ctx.addIssue({ continue: false, code: 'custom', path: ['exporter'], message: 'missing; policy dmabuf registers MRs over VRAM BOs of a gpu: name it (exporter: <gpu id>)' });
    }
    if (d.devicePages === 0 && d.kind === 'dmirror') ctx.addIssue({ continue: false, code: 'custom', path: ['devicePages'], input: 0, message: '0: a dmirror needs at least 1 device page (0 turns VRAM off on a gpu only)' });
    for (const k of ['faultWindowPages', 'faultPermission', 'waves', 'vramBoPages', 'xnack', 'uvm', 'gpusvm', 'invalidateMultipass'] as const) {
      if (d[k] !== undefined && d.kind !== 'gpu') ctx.addIssue({ continue: false, code: 'custom', path: [k], input: d[k], message: `${d[k]}: ${k} applies to gpu devices only` });
    }
    if (d.costs !== undefined && d.kind !== 'gpu') ctx.addIssue({ continue: false, code: 'custom', path: ['costs'], input: d.costs, message: `${show(d.costs)}: costs applies to gpu devices only (nvme costs are machine.nvme.costs)` });
    if (d.invalidateMultipass && d.kind === 'gpu' && d.policy !== undefined && !(MULTIPASS_POLICIES as readonly string[]).includes(d.policy)) {
      ctx.addIssue({ continue: false, code: 'custom', path: ['invalidateMultipass'], input: true, message: `true: policy ${d.policy} has no two-pass notifier (only ${MULTIPASS_POLICIES.join(', ')})` });
    }
    // No profile sets either figure (cost-profiles.ts), so the device's own or the default decide.
    const flush = d.costs?.tlbFlushNs ?? DEFAULT_GPU_COSTS.tlbFlushNs, issue = d.costs?.tlbInvalIssueNs ?? DEFAULT_GPU_COSTS.tlbInvalIssueNs;
    if (d.kind === 'gpu' && issue > flush) {
      ctx.addIssue({ continue: false, code: 'custom', path: ['costs', 'tlbInvalIssueNs'], input: issue, message: `${issue} ns is more than tlbFlushNs (${flush} ns): issuing is part of the flush` });
    }
    for (const k of ['granularity', 'retryFaultPending'] as const) {
      if (d[k] !== undefined && d.kind !== 'gpu') ctx.addIssue({ continue: false, code: 'custom', path: [k], input: d[k], message: `${d[k]}: ${k} applies to gpu devices (policy kfd-svm) only` });
    }
  })
  .transform((d) => ({
    id: d.id,
    kind: d.kind,
    policy: d.policy ?? POLICIES_BY_KIND[d.kind][0],
    devicePages: d.devicePages ?? DEFAULT_DEVICE_PAGES[d.kind],
    ...(d.faultWindowPages !== undefined && { faultWindowPages: d.faultWindowPages }),
    ...(d.faultPermission !== undefined && { faultPermission: d.faultPermission }),
    ...(d.waves !== undefined && { waves: d.waves }),
    ...(d.vramBoPages !== undefined && { vramBoPages: d.vramBoPages }),
    ...(d.xnack !== undefined && { xnack: d.xnack }),
    ...(d.granularity !== undefined && { granularity: d.granularity }),
    ...(d.retryFaultPending !== undefined && { retryFaultPending: d.retryFaultPending }),
    ...(d.uvm !== undefined && { uvm: d.uvm }),
    ...(d.costs !== undefined && { costs: d.costs }),
    ...(d.invalidateMultipass !== undefined && { invalidateMultipass: d.invalidateMultipass }),
    ...(d.gpusvm !== undefined && { gpusvm: d.gpusvm }),
    ...(d.compare !== undefined && { compare: d.compare }),
    ...Object.fromEntries(RDMA_DEVICE_KEYS.filter((k) => d[k] !== undefined).map((k) => [k, d[k]])),
    ...Object.fromEntries(NVME_DEVICE_KEYS.filter((k) => d[k] !== undefined).map((k) => [k, d[k]])),
    ...(d.slot !== undefined && { slot: d.slot }),
  }));
/** The most GPUs one VMA can be mirrored by (each its own BO). */
const VMA_GPUS_MAX = 8;

/** Device memory by default: dmirror's device-private pages; the GPU's VRAM (svm-fault); none on a NIC. */
const DEFAULT_DEVICE_PAGES = { dmirror: 256, gpu: 64, rdma: 0, nvme: 0 } as const;

interface Mapping { kind?: VmaSpec['kind']; file?: string; shared: boolean; offset: number }
/** kind, file, shared and offset agree (a VMA of the process or an mmap step). */
function checkMapping(m: Mapping, ctx: z.RefinementCtx): void {
  const kind = m.kind ?? (m.file !== undefined ? 'file' : 'anon');
  if (kind === 'file' && m.file === undefined) {
    ctx.addIssue({ continue: false, code: 'custom', path: ['file'], message: 'missing; a file mapping (kind: file) names one of the files' });
  } else if (kind !== 'file' && m.file !== undefined) {
    ctx.addIssue({ continue: false, code: 'custom', path: ['kind'], input: kind, message: `"${kind}" maps no file; use kind: file (or leave kind out) with file` });
  } else if (kind !== 'file' && m.shared) {
    ctx.addIssue({ continue: false, code: 'custom', path: ['shared'], input: true, message: 'true applies to file mappings; use kind: shared-anon for shared anonymous memory' });
  } else if (kind !== 'file' && m.offset !== 0) {
    ctx.addIssue({ continue: false, code: 'custom', path: ['offset'], input: m.offset, message: `${m.offset}: an offset applies to file mappings only` });
  }
}
const kindOf = (m: { kind?: VmaSpec['kind']; file?: string }): VmaSpec['kind'] => m.kind ?? (m.file !== undefined ? 'file' : 'anon');

const vmaSchema = strict({
  name: nameSchema,
  kind: oneOf(VMA_KINDS).optional(),
  pages: count(1, VMA_PAGES_MAX),
  prot: protSchema.default('rw'),
  shared: flag.default(false),
  file: nameSchema.optional(),
  offset: count(0).default(0),
  mergeable: flag.default(false),
  // One gpu, or several: each creates its own userptr BO over the whole VMA (GPUs mirroring one buffer).
  gpu: z.union([nameSchema, z.array(nameSchema).min(1).max(VMA_GPUS_MAX)]).optional(),
  rdma: nameSchema.optional(),
  rdmaAccess: z.array(oneOf(RDMA_ACCESS_FLAGS)).optional(),
})
  .superRefine(checkMapping)
  .transform((v) => ({
    name: v.name,
    kind: kindOf(v),
    pages: v.pages,
    prot: v.prot,
    shared: v.shared,
    ...(v.file !== undefined && { file: v.file }),
    offset: v.offset,
    mergeable: v.mergeable,
    ...(v.gpu !== undefined && { gpu: typeof v.gpu === 'string' ? v.gpu : v.gpu[0] }),
    ...(Array.isArray(v.gpu) && v.gpu.length > 1 && { gpus: v.gpu }),
    ...(v.rdma !== undefined && { rdma: v.rdma }),
    ...(v.rdmaAccess !== undefined && { rdmaAccess: v.rdmaAccess }),
  }));

const processSchema = strict({ name: nameSchema, vmas: z.array(vmaSchema).default([]), memlock: count(0).default(2048), capIpcLock: flag.default(false) });

// =====================================================================================
// Steps
// =====================================================================================

const range = { vma: nameSchema, page: count(0, VMA_PAGES_MAX).default(0), pages: count(1, VMA_PAGES_MAX).default(1) };
/** `- exit:` (null) or `- exit: {}`. */
const noArgs = z.preprocess((v) => (v === null ? {} : v), strict({}));

const expectSchema = strict({
  ret: retSchema.optional(),
  cpages: count(0).optional(),
  faults: count(0).optional(),
  data: words.optional(),
  snapshot: z.array(count(0)).optional(),
  softDirty: z.array(z.int().min(0).max(1)).optional(),
  status: converted((v): v is string => typeof v === 'string', 'a work completion status (an IBV_WC_* name)', (v): string => {
    const full = v.startsWith(WC_PREFIX) ? v : WC_PREFIX + v;
    if (!(IBV_WC_STATUSES as readonly string[]).includes(full)) throw new Error(`${show(v)} is not one of ${list(IBV_WC_STATUSES)}${didYouMean(full, IBV_WC_STATUSES)}`);
    return full;
  }).optional(),
  buffer: words.optional(),
  got: z.record(z.string().regex(/^[A-Za-z][A-Za-z0-9_]*$/), z.number()).optional(),
  onlyIfOk: flag.optional(),
});

/** A step's delay: a duration, or "A..B" (a seeded draw from the range, both durations). */
const delaySchema = converted(isStringOrNumber, 'a delay (a duration, or "min..max" such as "0..32us")', (v): { min: number; max: number } => {
  const parts = typeof v === 'string' && v.includes('..') ? v.split('..') : [v, v];
  const [min, max] = parts.map((x) => parseDuration(typeof x === 'string' ? x.trim() : x));
  if (max < min) throw new Error(`${show(v)}: the range ends before it starts`);
  return { min, max };
});

// Fork's steps are steps (recursively, groups too); the annotation breaks the type cycle.
const forkSteps: z.ZodType<Step[], unknown> = z.lazy(() => stepList(stepSchema));

/** One schema per operation, each yielding its member of the Action union. */
const OPS = {
  mmap: strict({
    vma: nameSchema,
    kind: oneOf(VMA_KINDS).optional(),
    pages: count(1).default(1),
    prot: protSchema.default('rw'),
    shared: flag.default(false),
    file: nameSchema.optional(),
    offset: count(0).default(0),
    fixed: flag.optional(),
  })
    .superRefine(checkMapping)
    .transform((b) => ({
      op: 'mmap' as const,
      vma: b.vma,
      kind: kindOf(b),
      pages: b.pages,
      prot: b.prot,
      shared: b.shared,
      ...(b.file !== undefined && { file: b.file }),
      offset: b.offset,
      ...(b.fixed !== undefined && { fixed: b.fixed }),
    })),
  munmap: strict(range).transform((b) => ({ op: 'munmap' as const, ...b })),
  mprotect: strict({ ...range, prot: protSchema }).transform((b) => ({ op: 'mprotect' as const, ...b })),
  madvise: strict({ ...range, advice: oneOf(MADVISE_ADVICE) }).transform((b) => ({ op: 'madvise' as const, ...b })),
  store: strict({ ...range, value: z.union([storeScalar, words]).default('unique') }).transform((b) => ({ op: 'store' as const, ...b })),
  load: strict(range).transform((b) => ({ op: 'load' as const, ...b })),
  fork: z
    .preprocess((v) => (v === null ? {} : Array.isArray(v) ? { steps: v } : v), strict({ steps: forkSteps.default([]), wait: flag.default(true), child: nameSchema.optional() }))
    .superRefine((b, ctx) => {
      if (!b.wait && b.child === undefined) ctx.addIssue({ continue: false, code: 'custom', path: ['child'], message: 'missing; a fork with wait: false names its child (for a later kill or wait step)' });
      if (b.wait && b.child !== undefined) ctx.addIssue({ continue: false, code: 'custom', path: ['child'], input: b.child, message: 'a fork that waits for its child needs no name; give wait: false to keep the child running beside the parent' });
    })
    .transform((b) => ({ op: 'fork' as const, steps: b.steps, wait: b.wait, ...(b.child !== undefined && { child: b.child }) })),
  exit: noArgs.transform(() => ({ op: 'exit' as const })),
  kill: named('child').transform((b) => ({ op: 'kill' as const, child: b.child })),
  wait: named('child').transform((b) => ({ op: 'wait' as const, child: b.child })),
  // The ioctl's address: a VMA's page (vma, page, pages) or raw (addr, npages: cmd.npages as given, 0 and past 2^20 allowed).
  dmirror: strict({
    device: nameSchema,
    cmd: cmdSchema,
    vma: nameSchema.optional(),
    page: count(0, VMA_PAGES_MAX).default(0),
    pages: count(1, VMA_PAGES_MAX).optional(),
    addr: rawAddrSchema.optional(),
    npages: z.int().min(0).max(Number.MAX_SAFE_INTEGER).optional(),
    data: words.optional(),
    ptr: nameSchema.optional(),
  })
    .superRefine((b, ctx) => {
      if ((b.vma === undefined) === (b.addr === undefined)) ctx.addIssue({ continue: false, code: 'custom', path: ['vma'], message: 'give the ioctl one address: vma (with page, pages) or addr (raw, with npages)' });
      else if (b.addr !== undefined && b.pages !== undefined) ctx.addIssue({ continue: false, code: 'custom', path: ['pages'], input: b.pages, message: 'with a raw addr, the page count is npages (cmd.npages)' });
      else if (b.vma !== undefined && b.npages !== undefined) ctx.addIssue({ continue: false, code: 'custom', path: ['npages'], input: b.npages, message: 'npages goes with a raw addr; with vma, give pages' });
    })
    .transform((b) => ({
      op: 'dmirror' as const,
      device: b.device,
      cmd: b.cmd,
      vma: b.vma ?? (typeof b.addr === 'object' ? b.addr.vma : ''),
      page: b.page,
      pages: b.addr !== undefined ? (b.npages ?? 1) : (b.pages ?? 1),
      ...(b.addr !== undefined && { addr: b.addr }),
      ...(b.data !== undefined && { data: b.data }),
      ...(b.ptr !== undefined && { ptr: b.ptr }),
    })),
  buffer: strict({ name: nameSchema, pages: count(1, VMA_PAGES_MAX).default(1), fill: fillSchema.default(0) })
    .transform((b) => ({ op: 'buffer' as const, buffer: b.name, pages: b.pages, fill: b.fill })),
  read_buffer: named('buffer').transform((b) => ({ op: 'read_buffer' as const, buffer: b.buffer })),
  counters: named('device').transform((b) => ({ op: 'counters' as const, device: b.device })),
  gup: strict({ ...range, flavour: oneOf(GUP_FLAVOURS).default('pin_user_pages'), write: flag.default(false), longterm: flag.default(false), force: flag.default(false) })
    .transform((b) => ({ op: 'gup' as const, ...b })),
  mremap: strict({
    ...range,
    newPages: count(1, VMA_PAGES_MAX).optional(),
    maymove: flag.default(false),
    fixed: flag.default(false),
    dontunmap: flag.default(false),
    to: nameSchema.optional(),
    toPage: count(0, VMA_PAGES_MAX).default(0),
    as: nameSchema.optional(),
  })
    .superRefine((b, ctx) => {
      if (b.fixed && b.to === undefined) ctx.addIssue({ continue: false, code: 'custom', path: ['to'], message: 'missing; MREMAP_FIXED moves the pages to a VMA: give to (and toPage)' });
      if (!b.fixed && b.to !== undefined) ctx.addIssue({ continue: false, code: 'custom', path: ['to'], input: b.to, message: 'a destination needs fixed: true (MREMAP_FIXED)' });
    })
    .transform((b) => ({
      op: 'mremap' as const,
      vma: b.vma,
      page: b.page,
      pages: b.pages,
      newPages: b.newPages ?? b.pages,
      maymove: b.maymove,
      fixed: b.fixed,
      dontunmap: b.dontunmap,
      ...(b.to !== undefined && { to: b.to }),
      toPage: b.toPage,
      ...(b.as !== undefined && { as: b.as }),
    })),
  gpu: strict({
    device: nameSchema,
    vma: nameSchema.optional(),
    buffer: nameSchema.optional(),
    touch: z.number().gt(0).max(1).default(0.01),
    write: flag.default(true),
    atomic: flag.default(false),
    duration: durationSchema.default(100_000),
    queue: oneOf(GPU_QUEUES).default('gfx'),
    wait: flag.default(true),
  })
    .superRefine((b, ctx) => {
      if ((b.vma === undefined) === (b.buffer === undefined)) {
        ctx.addIssue({ continue: false, code: 'custom', path: ['vma'], message: 'give the job one BO: vma (the userptr BO over a VMA) or buffer (a VRAM BO from gpu_alloc)' });
      }
    })
    .transform((b) => ({ op: 'gpu' as const, ...b })),
  gpu_alloc: strict({ device: nameSchema, buffer: nameSchema, pages: count(1) }).transform((b) => ({ op: 'gpu_alloc' as const, ...b })),
  gpu_free: strict({ buffer: nameSchema }).transform((b) => ({ op: 'gpu_free' as const, ...b })),
  pin: strict({ ...range, write: flag.default(false), longterm: flag.default(false) }).transform((b) => ({ op: 'pin' as const, ...b })),
  unpin: strict(range).transform((b) => ({ op: 'unpin' as const, ...b })),
  rdma: strict({ device: nameSchema, ...range, verb: oneOf(RDMA_OPS) }).transform((b) => ({ op: 'rdma' as const, ...b })),
  rdma_advise: strict({ device: nameSchema, ...range, advice: oneOf(RDMA_ADVICE).default('prefetch-write'), flush: flag.default(true) })
    .transform((b) => ({ op: 'rdma_advise' as const, ...b })),
  // O_DIRECT on an nvme device's raw namespace (blkdev-dio.ts): the buffer is `pages` pages of the VMA
  // from `page`, or (p2p) pages of another nvme device's CMB; `block` the first block (default: page).
  dio: strict({ device: nameSchema, io: oneOf(['read', 'write']), ...range, block: count(0).optional() })
    .transform((b) => ({ op: 'dio' as const, ...b, block: b.block ?? b.page })),
  dio_p2p: strict({ device: nameSchema, io: oneOf(['read', 'write']), provider: nameSchema, page: count(0).default(0), pages: count(1).default(1), block: count(0).default(0) })
    .transform((b) => ({ op: 'dio_p2p' as const, ...b })),
  // ibv_reg_mr (a pinned MR: no IBV_ACCESS_ON_DEMAND) over pages of the process's mapping of another
  // nvme device's p2pmem, as dio_p2p maps it: ib_umem_get's FOLL_LONGTERM pin is refused (-EREMOTEIO).
  rdma_reg_mr: strict({ device: nameSchema, provider: nameSchema, page: count(0).default(0), pages: count(1).default(1) })
    .transform((b) => ({ op: 'rdma_reg_mr' as const, ...b })),
  // O_DIRECT into (or out of) a VRAM buffer of gpu_alloc through the out-of-tree NVMe dma-buf importer.
  // A remote NVMe-oF host's read or write of `pages` blocks from `block` on an nvme device's namespace
  // exported over RDMA (its `nvmet`); a write carries the host's words, one per page.
  nvmet: strict({ device: nameSchema, io: oneOf(['read', 'write']), block: count(0).default(0), pages: count(1).default(1), values: words.optional() })
    .transform((b) => ({ op: 'nvmet' as const, ...b })),
  dio_dmabuf: strict({ device: nameSchema, io: oneOf(['read', 'write']), buffer: nameSchema, page: count(0).default(0), pages: count(1).default(1), block: count(0).default(0) })
    .transform((b) => ({ op: 'dio_dmabuf' as const, ...b })),
  migrate_pages: strict(range).transform((b) => ({ op: 'migrate_pages' as const, ...b })),
  reclaim: z.preprocess((v) => (v === null ? {} : v), strict({ pages: count(1).default(1) })).transform((b) => ({ op: 'reclaim' as const, ...b })),
  ksm_scan: noArgs.transform(() => ({ op: 'ksm_scan' as const })),
  writeback: noArgs.transform(() => ({ op: 'writeback' as const })),
  // `- clear_refs: 4` (soft-dirty: fs/proc/task_mmu.c); the other values of clear_refs are not modelled.
  clear_refs: z.preprocess((v) => (typeof v === 'number' ? String(v) : v), converted((v): v is string => v === '4', '4 (CLEAR_REFS_SOFT_DIRTY; 1, 2, 3 and 5 are not modelled)', (v): string => v))
    .transform((value) => ({ op: 'clear_refs' as const, value })),
  pagemap: strict(range).transform((b) => ({ op: 'pagemap' as const, ...b })),
  numa_scan: noArgs.transform(() => ({ op: 'numa_scan' as const })),
  // `- sleep: 5ms` or `- sleep: {duration: 5ms}`.
  sleep: z
    .preprocess((v) => (isStringOrNumber(v) ? { duration: v } : v), strict({ duration: durationSchema }))
    .transform((b) => ({ op: 'sleep' as const, duration: b.duration })),
};
type OpName = keyof typeof OPS;
export const STEP_OPS = Object.keys(OPS) as OpName[];

type OptionalOps = { [K in OpName]: z.ZodOptional<(typeof OPS)[K]> };
const optionalOps = Object.fromEntries(STEP_OPS.map((k) => [k, OPS[k].optional()])) as unknown as OptionalOps;

function stepOps(s: Partial<Record<OpName, unknown>>): OpName[] {
  return STEP_OPS.filter((k) => s[k] !== undefined);
}

function checkOneAction(s: Partial<Record<OpName | 'group', unknown>> & { expect?: unknown }, ctx: z.RefinementCtx, groupAllowed: boolean): void {
  const found: string[] = stepOps(s);
  if (s.group !== undefined) found.push('group');
  const choices = `${list(STEP_OPS)}${groupAllowed ? ' or group' : ''}`;
  if (found.length === 0) ctx.addIssue({ continue: false, code: 'custom', message: `a step needs an action: one of ${choices}` });
  else if (found.length > 1) ctx.addIssue({ continue: false, code: 'custom', message: `a step has one action; found ${found.join(' and ')}` });
  else if (found[0] === 'group' && s.expect !== undefined) {
    ctx.addIssue({ continue: false, code: 'custom', path: ['expect'], message: 'a group takes no expect; give each step in it its own' });
  }
}

/** A step list (at least `min` steps): default names "<op> <index>" / "group <index>" (the index in this list). */
function stepList<T extends { name?: string | undefined }>(item: z.ZodType<T, unknown>, min = 0) {
  return z.array(item).min(min).transform((steps) =>
    steps.map((s, i) => ({ ...s, name: s.name ?? `${'action' in s ? (s.action as Action).op : 'group'} ${i}` })),
  );
}

const actionStepSchema = strict({ name: label.optional(), expect: expectSchema.optional(), delay: delaySchema.optional(), ...optionalOps })
  .superRefine((s, ctx) => checkOneAction(s, ctx, false))
  .transform((s) => {
    const action: Action = s[stepOps(s)[0]]!;
    return { name: s.name, action, ...(s.expect !== undefined && { expect: s.expect }), ...(s.delay !== undefined && { delay: s.delay }) };
  });

const stepSchema = strict({
  name: label.optional(),
  expect: expectSchema.optional(),
  delay: delaySchema.optional(),
  group: stepList(actionStepSchema, 1).optional(),
  ...optionalOps,
})
  .superRefine((s, ctx) => {
    checkOneAction(s, ctx, true);
    if (s.group !== undefined && s.delay !== undefined) ctx.addIssue({ continue: false, code: 'custom', path: ['delay'], message: 'a group takes no delay; give it to the steps in it' });
  })
  .transform((s): { name: string | undefined; group: ActionStep[] } | { name: string | undefined; action: Action; expect?: Expect; delay?: { min: number; max: number } } => {
    if (s.group !== undefined) return { name: s.name, group: s.group };
    const action: Action = s[stepOps(s)[0]]!;
    return { name: s.name, action, ...(s.expect !== undefined && { expect: s.expect }), ...(s.delay !== undefined && { delay: s.delay }) };
  });

// =====================================================================================
// Phases
// =====================================================================================

type OptionalKinds = { [K in OpKind]: z.ZodOptional<z.ZodNumber> };
const mixSchema = strict(Object.fromEntries(OP_KINDS.map((k) => [k, z.number().min(0).max(1e9).optional()])) as unknown as OptionalKinds).superRefine((m, ctx) => {
  if (!Object.values(m).some((w) => w !== undefined && w > 0)) {
    ctx.addIssue({ continue: false, code: 'custom', input: m, message: `${show(m)}: no operation has a positive weight; give one of ${list(OP_KINDS)} a weight` });
  }
});

const workloadSchema = strict({
  name: label.optional(),
  process: nameSchema,
  threads: count(1).default(1),
  ops: count(1).optional(),
  duration: durationSchema.optional(),
  mix: mixSchema,
  pattern: oneOf(PATTERNS).default('random'),
  hotShare: z.number().min(0).max(1).default(0.9),
  stride: count(1).default(1),
  vmas: z.array(nameSchema).min(1).optional(),
  device: nameSchema.optional(),
  gpuTouch: z.number().gt(0).max(1).default(0.01),
  gpuJob: durationSchema.default(100_000),
  gpuWrite: flag.default(true),
  gpuQueue: oneOf(GPU_QUEUES).default('gfx'),
  rdmaPages: count(1).default(1),
  rdmaAdvice: oneOf(RDMA_ADVICE).default('prefetch-write'),
  rdmaFlush: flag.default(true),
  dioPages: count(1).max(256).default(8),
}).superRefine((w, ctx) => {
  if (w.ops === undefined && w.duration === undefined) {
    ctx.addIssue({ continue: false, code: 'custom', message: 'a workload needs ops or duration (or both) to end' });
  }
});

const scriptSchema = strict({
  name: label.optional(),
  process: nameSchema,
  steps: stepList(stepSchema, 1),
});

const phaseSchema = strict({ workload: workloadSchema.optional(), script: scriptSchema.optional() })
  .superRefine((p, ctx) => {
    if (p.workload === undefined && p.script === undefined) ctx.addIssue({ continue: false, code: 'custom', message: 'a phase is a workload or a script: `- workload: {…}` or `- script: {…}`' });
    else if (p.workload !== undefined && p.script !== undefined) ctx.addIssue({ continue: false, code: 'custom', message: 'a phase is one workload or one script; found both' });
  })
  .transform((p) =>
    p.workload !== undefined
      ? { kind: 'workload' as const, name: undefined as string | undefined, ...p.workload }
      : { kind: 'script' as const, name: undefined as string | undefined, ...p.script! },
  );

const phaseList = z
  .array(phaseSchema)
  .min(1)
  .transform((phases) => phases.map((p, i) => ({ ...p, name: p.name ?? `${p.kind} ${i}` })));

// =====================================================================================
// Faults (run/faults.ts): `- kill: gpu0` with `at: 5ms`, `- hang-fence: gpu0` with `job: 2`,
// `- stop-invalidate-acks: rdma0` with `at`, `- delay: {from, to, ns, jitterNs}`,
// `- reorder: {probability, maxNs}`. The same entries come from `--inject` flags.
// =====================================================================================

/** The longest delay, jitter or hold a fault may ask for: an hour (runtime faults.ts DELAY_NS_MAX). */
export const FAULT_DELAY_MAX_NS = 3.6e12;
/** At most this many faults in one run (runtime faults.ts FAULTS_MAX). */
export const FAULTS_MAX = 256;
export const FAULT_KINDS = ['kill', 'hang-fence', 'stop-invalidate-acks', 'delay', 'reorder'] as const;
/**
 * Besides its kind, what each fault entry takes: `at` for kill and stop-invalidate-acks, `job` (and
 * `timeout`) or `restore` for hang-fence (`restore: N`: the page-table update fence of the N-th
 * restore worker run, kfd-svm with XNACK off; policy-preempt.ts).
 */
const FAULT_MODIFIERS: Record<(typeof FAULT_KINDS)[number], readonly string[]> = {
  kill: ['at'], 'hang-fence': ['job', 'timeout', 'restore'], 'stop-invalidate-acks': ['at'], delay: [], reorder: [],
};
const faultDelay = durationSchema.refine((v) => v <= FAULT_DELAY_MAX_NS, { error: `past the limit of ${FAULT_DELAY_MAX_NS} ns (1h)` });
const faultSchema = strict({
  kill: nameSchema.optional(),
  'hang-fence': nameSchema.optional(),
  'stop-invalidate-acks': nameSchema.optional(),
  delay: strict({ from: nameOrPeer(), to: nameOrPeer(), ns: faultDelay, jitterNs: faultDelay.default(0) }).optional(),
  reorder: strict({ probability: z.number().min(0).max(1), maxNs: faultDelay.default(10_000) }).optional(),
  at: durationSchema.optional(),
  job: count(1).max(1_000_000).optional(),
  restore: count(1).max(1_000_000).optional(),
  timeout: durationSchema.refine((v) => v >= 1e6 && v <= LOCKUP_TIMEOUT_MS_MAX * 1e6, { error: `expected from 1ms to ${LOCKUP_TIMEOUT_MS_MAX} ms (amdgpu's lockup_timeout is in ms)` }).optional(),
})
  .superRefine((f, ctx) => {
    const kinds = FAULT_KINDS.filter((k) => f[k] !== undefined);
    if (kinds.length !== 1) {
      ctx.addIssue({ continue: false, code: 'custom', message: kinds.length === 0 ? `a fault needs a kind: one of ${list(FAULT_KINDS)}` : `a fault has one kind; found ${kinds.join(' and ')}` });
      return;
    }
    const kind = kinds[0];
    for (const m of ['at', 'job', 'timeout', 'restore'] as const) {
      if (f[m] !== undefined && !FAULT_MODIFIERS[kind].includes(m)) {
        ctx.addIssue({ continue: false, code: 'custom', path: [m], input: f[m], message: `${kind} takes no ${m}${FAULT_MODIFIERS[kind].length ? ` (it takes ${list(FAULT_MODIFIERS[kind])})` : ''}` });
        return;
      }
    }
    if ((kind === 'kill' || kind === 'stop-invalidate-acks') && f.at === undefined) ctx.addIssue({ continue: false, code: 'custom', path: ['at'], message: `missing; ${kind} needs at: the time it happens (e.g. at: 5ms)` });
    if (kind === 'hang-fence' && f.job !== undefined && f.restore !== undefined) ctx.addIssue({ continue: false, code: 'custom', path: ['restore'], message: 'hang-fence takes job or restore, not both' });
    if (kind === 'hang-fence' && f.job === undefined && f.restore === undefined) ctx.addIssue({ continue: false, code: 'custom', path: ['job'], message: 'missing; hang-fence needs job: which of the device\'s jobs hangs (1 for the first)' });
  })
  .transform((f): FaultSpec => {
    if (f.kill !== undefined) return { kind: 'kill', device: f.kill, atNs: f.at! };
    if (f['hang-fence'] !== undefined && f.restore !== undefined) return { kind: 'hang-fence', device: f['hang-fence'], restore: f.restore };
    if (f['hang-fence'] !== undefined) return { kind: 'hang-fence', device: f['hang-fence'], job: f.job!, ...(f.timeout !== undefined && { timeoutMs: Math.round(f.timeout / 1e6) }) };
    if (f['stop-invalidate-acks'] !== undefined) return { kind: 'stop-invalidate-acks', device: f['stop-invalidate-acks'], atNs: f.at! };
    if (f.delay !== undefined) return { kind: 'delay', ...f.delay };
    return { kind: 'reorder', ...f.reorder! };
  });

/** An actor id in a delay: a name, or an rdma device's peer (`rdma0.peer`). */
function nameOrPeer() {
  return converted((v): v is string => typeof v === 'string', 'an actor id (mm, app, nvme, a device, or an rdma device\'s <id>.peer)', (v) => {
    const base = v.endsWith('.peer') ? v.slice(0, -'.peer'.length) : v;
    if (!NAME_RE.test(base)) throw new Error(`${show(v)} is not an actor id: mm, app, nvme, a device's id, or <rdma device>.peer`);
    return v;
  });
}

/** The faults list: each entry checked alone here, against the devices in crossCheck. */
export const faultListSchema = z.array(faultSchema).max(FAULTS_MAX);

// =====================================================================================
// The scenario, and the checks between its parts
// =====================================================================================

/** The scenario file's schema; a file without `name` is called `defaultName` (load.ts: its base name). */
export function makeScenarioSchema(defaultName: string) {
  return scenarioObject(defaultName).superRefine(crossCheck);
}
export const scenarioSchema = makeScenarioSchema('scenario');

/** The scenario's fields, before the checks between them. */
function scenarioObject(defaultName: string) {
  return strict({
    name: label.default(defaultName),
    description: z.string().default(''),
    seed: z.int().min(0).max(Number.MAX_SAFE_INTEGER).default(1),
    duration: durationSchema.default(1e9),
    timeScale: z.number().positive().max(1e9).optional(),
    report: z.array(oneOf(Object.keys(COLUMNS) as [string, ...string[]])).min(1).optional(),
    machine: machineSchema.prefault({}),
    files: z.array(fileSchema).default([]),
    devices: z.array(deviceSchema).default([]),
    processes: z.array(processSchema).min(1),
    phases: phaseList,
    faults: faultListSchema.default([]),
  });
}

type Path = (string | number)[];

/** Every reference names something declared (or created by an earlier mmap step); names are unique. */
function crossCheck(s: z.output<ReturnType<typeof scenarioObject>>, ctx: z.RefinementCtx): void {
  if (ctx.issues.length > 0) return; // the parts are not all there yet
  const issue = (path: Path, input: unknown, message: string) => {
    ctx.addIssue({ continue: false, code: 'custom', path, input, message });
    throw STOP;
  };
  try {
    crossCheckOrThrow(s, issue);
  } catch (e) {
    if (e !== STOP) throw e;
  }
}
const STOP = Symbol('stop');

/** Each fault names a device of the scenario (of the kind it needs); a delay names actors of the run. */
export function checkFaults(s: Scenario, issue: (path: Path, input: unknown, message: string) => never): void {
  const ids = s.devices.map((d) => d.id);
  const actors = ['mm', 'app', 'nvme', ...s.devices.flatMap((d) => (d.kind === 'rdma' ? [d.id, `${d.id}.peer`] : [d.id]))];
  s.faults.forEach((f, i) => {
    if (f.kind === 'delay' || f.kind === 'reorder') {
      if (f.kind === 'delay') {
        for (const end of ['from', 'to'] as const) {
          if (!actors.includes(f[end])) issue(['faults', i, 'delay', end], f[end], `${show(f[end])} is not an actor of this run; expected one of ${list(actors)}${didYouMean(f[end], actors)}`);
        }
        if (f.from === f.to) issue(['faults', i, 'delay', 'to'], f.to, `${show(f.to)}: a delay is between two different actors`);
      }
      return;
    }
    const dev = s.devices.find((d) => d.id === f.device);
    if (!dev) issue(['faults', i, f.kind], f.device, `${show(f.device)} is not a device of this scenario${ids.length ? `; devices: ${list(ids)}${didYouMean(f.device, ids)}` : ' (it has none)'}`);
    if (f.kind === 'hang-fence' && dev!.kind !== 'gpu') issue(['faults', i, f.kind], f.device, `${show(f.device)} is a ${dev!.kind} device; hang-fence needs a gpu (its jobs have fences)`);
  });
  const kills = new Map<string, number>();
  s.faults.forEach((f, i) => {
    if (f.kind !== 'kill') return;
    if (kills.has(f.device)) issue(['faults', i, 'kill'], f.device, `${show(f.device)} is killed twice (also faults[${kills.get(f.device)}])`);
    kills.set(f.device, i);
  });
  if (s.faults.filter((f) => f.kind === 'reorder').length > 1) issue(['faults'], s.faults, 'at most one reorder fault');
}

function crossCheckOrThrow(s: Scenario, issue: (path: Path, input: unknown, message: string) => never): void {
  checkFaults(s, issue);
  s.processes.forEach((p, i) => {
    const pages = p.vmas.reduce((n, v) => n + v.pages, 0);
    if (pages > PROCESS_PAGES_MAX) issue(['processes', i, 'vmas'], pages, `${pages} pages of VMAs; a process's address space holds at most ${PROCESS_PAGES_MAX} (2^20 pages less the ${MMAP_BASE_VPN} below mmap_base)`);
  });
  const unique = (items: { name: string }[], at: Path, key: string, what: string) => {
    const seen = new Map<string, number>();
    items.forEach((it, i) => {
      const j = seen.get(it.name);
      if (j !== undefined) issue([...at, i, key], it.name, `${show(it.name)} names two ${what} (also ${formatPath([...at, j])})`);
      seen.set(it.name, i);
    });
  };
  unique(s.files, ['files'], 'name', 'files');
  unique(s.devices.map((d) => ({ name: d.id })), ['devices'], 'id', 'devices');
  unique(s.processes, ['processes'], 'name', 'processes');
  s.devices.forEach((d, i) => {
    if ((RESERVED_ACTOR_IDS as readonly string[]).includes(d.id)) {
      issue(['devices', i, 'id'], d.id, `${show(d.id)} is taken by the simulator (${list(RESERVED_ACTOR_IDS)}); choose another id`);
    }
  });

  const files = s.files.map((f) => f.name);
  const devices = s.devices.map((d) => d.id);
  const dmirrors = s.devices.filter((d) => d.kind === 'dmirror').map((d) => d.id);
  const gpus = s.devices.filter((d) => d.kind === 'gpu').map((d) => d.id);
  const rdmas = s.devices.filter((d) => d.kind === 'rdma').map((d) => d.id);
  const nvmes = s.devices.filter((d) => d.kind === 'nvme').map((d) => d.id);
  const cmbs = s.devices.filter((d) => d.kind === 'nvme' && d.cmbPages !== undefined).map((d) => d.id);
  const importers = s.devices.filter((d) => d.kind === 'nvme' && d.dmabufImporter === true).map((d) => d.id);
  const nvmetTargets = s.devices.filter((d) => d.kind === 'nvme' && d.nvmet !== undefined).map((d) => d.id);
  /** Per process, its VMAs backed by a GPU BO, and by an RDMA MR. */
  const gpuVmasOf = new Map<string, Set<string>>();
  const rdmaVmasOf = new Map<string, Set<string>>();
  const processes = s.processes.map((p) => p.name);
  const ref = (path: Path, name: string, names: string[], what: string, plural: string) => {
    if (names.includes(name)) return;
    const known = names.length ? `${plural}: ${list(names)}` : `no ${plural} are declared`;
    issue(path, name, `${show(name)} is not ${what}; ${known}${didYouMean(name, names)}`);
  };
  s.devices.forEach((d, i) => {
    if (d.exporter !== undefined) ref(['devices', i, 'exporter'], d.exporter, gpus, 'a declared gpu device', 'gpu devices');
    if (d.nvmet !== undefined) {
      ref(['devices', i, 'nvmet', 'nic'], d.nvmet.nic, rdmas, 'a declared rdma device', 'rdma devices');
      const p2p = d.nvmet.p2pmem;
      if (p2p !== 'off' && p2p !== 'auto') ref(['devices', i, 'nvmet', 'p2pmem'], p2p, cmbs, 'off, auto, or an nvme device with a CMB (cmbPages)', 'nvme devices with one');
    }
  });

  /** VMA names per process: declared ones, and those later phases can see after a script's mmap. */
  const vmasOf = new Map<string, Set<string>>();
  s.processes.forEach((p, i) => {
    unique(p.vmas, ['processes', i, 'vmas'], 'name', 'VMAs of the process');
    p.vmas.forEach((v, j) => {
      if (v.file !== undefined) ref(['processes', i, 'vmas', j, 'file'], v.file, files, 'a declared file', 'files');
      if (v.gpus !== undefined) {
        v.gpus.forEach((id, g) => {
          const first = v.gpus!.indexOf(id);
          if (first < g) issue(['processes', i, 'vmas', j, 'gpu', g], id, `${show(id)} is named twice (one BO per gpu; also at ${first})`);
          else ref(['processes', i, 'vmas', j, 'gpu', g], id, gpus, 'a declared gpu device', 'gpu devices');
        });
      } else if (v.gpu !== undefined) ref(['processes', i, 'vmas', j, 'gpu'], v.gpu, gpus, 'a declared gpu device', 'gpu devices');
      if (v.rdma !== undefined) ref(['processes', i, 'vmas', j, 'rdma'], v.rdma, rdmas, 'a declared rdma device', 'rdma devices');
    });
    gpuVmasOf.set(p.name, new Set(p.vmas.filter((v) => v.gpu !== undefined).map((v) => v.name)));
    rdmaVmasOf.set(p.name, new Set(p.vmas.filter((v) => v.rdma !== undefined).map((v) => v.name)));
    vmasOf.set(p.name, new Set(p.vmas.map((v) => v.name)));
  });

  /** VRAM buffers per process: those gpu_alloc steps made, visible to the steps and phases after them. */
  const buffers = new Map<string, Set<string>>();
  const buffersOf = (proc: string): Set<string> => {
    let b = buffers.get(proc);
    if (!b) buffers.set(proc, (b = new Set()));
    return b;
  };

  /** A script's user buffers (`buffer` steps) and running children (`fork` with wait: false), per process scope. */
  interface Locals { buffers: Set<string>; children: Set<string> }
  const userBuffers = new Map<string, Locals>();
  const localsOf = (proc: string): Locals => {
    let l = userBuffers.get(proc);
    if (!l) userBuffers.set(proc, (l = { buffers: new Set(), children: new Set() }));
    return l;
  };

  const vmaRef = (path: Path, name: string, scope: Set<string>, proc: string) =>
    ref(path, name, [...scope], `a VMA of process ${proc}`, 'its VMAs');

  s.phases.forEach((phase, i) => {
    const at: Path = ['phases', i, phase.kind];
    ref([...at, 'process'], phase.process, processes, 'a declared process', 'processes');
    const scope = vmasOf.get(phase.process)!;
    if (phase.kind === 'workload') {
      checkWorkload(phase, at, scope);
    } else {
      walk(phase.steps, [...at, 'steps'], scope, phase.process);
    }
  });

  function checkWorkload(w: WorkloadPhase, at: Path, scope: Set<string>): void {
    w.vmas?.forEach((v, j) => vmaRef([...at, 'vmas', j], v, scope, w.process));
    if (w.vmas === undefined && scope.size === 0) {
      issue([...at, 'process'], w.process, `process ${w.process} has no VMAs for the workload to touch; declare some under its vmas`);
    }
    const dio = Object.keys(w.mix).some((k) => k.startsWith('dio_'));
    if (w.device !== undefined) {
      if (dio) ref([...at, 'device'], w.device, nvmes, 'a declared nvme device', 'nvme devices');
      else ref([...at, 'device'], w.device, dmirrors, 'a declared dmirror device', 'dmirror devices');
    }
    for (const k of Object.keys(w.mix)) {
      if (k.startsWith('dio_') && nvmes.length === 0) issue([...at, 'mix', k], w.mix[k as OpKind], `${k} needs an nvme device; declare one under devices (kind: nvme)`);
      if (k.startsWith('dmirror_') && dmirrors.length === 0) {
        issue([...at, 'mix', k], w.mix[k as OpKind], `${k} needs a dmirror device; declare one under devices`);
      }
      if (k === 'gpu_submit' && !(w.vmas ?? [...scope]).some((v) => gpuVmasOf.get(w.process)?.has(v))) {
        issue([...at, 'mix', k], w.mix[k as OpKind], `gpu_submit needs a VMA of the phase backed by a GPU BO; give one of ${w.process}'s VMAs gpu: <device id>`);
      }
      if (k.startsWith('rdma_') && !(w.vmas ?? [...scope]).some((v) => rdmaVmasOf.get(w.process)?.has(v))) {
        issue([...at, 'mix', k], w.mix[k as OpKind], `${k} needs a VMA of the phase with an RDMA MR; give one of ${w.process}'s VMAs rdma: <device id>`);
      }
    }
  }

  /** Steps in order; an mmap makes its VMA visible to the steps after it (a fork's, to the child's only). */
  function walk(steps: (Step | ActionStep)[], at: Path, scope: Set<string>, proc: string, locals: Locals = localsOf(proc)): void {
    steps.forEach((st, i) => {
      if ('group' in st) st.group.forEach((g, j) => action(g, [...at, i, 'group', j], scope, proc, locals));
      else action(st, [...at, i], scope, proc, locals);
    });
  }

  function action(st: ActionStep, at: Path, scope: Set<string>, proc: string, locals: Locals): void {
    const a = st.action;
    const ap: Path = [...at, a.op];
    const bufferRef = (path: Path, name: string) => ref(path, name, [...locals.buffers], `a user buffer of process ${proc} (made by an earlier buffer step)`, 'its buffers');
    switch (a.op) {
      case 'mmap':
        if (a.file !== undefined) ref([...ap, 'file'], a.file, files, 'a declared file', 'files');
        scope.add(a.vma);
        break;
      case 'fork':
        // The child has a copy of the parent's memory, user buffers too; its own children are its own.
        walk(a.steps, [...ap, 'steps'], new Set(scope), proc, { buffers: new Set(locals.buffers), children: new Set() });
        if (a.child !== undefined) {
          if (locals.children.has(a.child)) issue([...ap, 'child'], a.child, `${show(a.child)} names a running child already; give each fork its own name`);
          locals.children.add(a.child);
        }
        break;
      case 'kill':
      case 'wait':
        ref([...ap, 'child'], a.child, [...locals.children], `a child of process ${proc} left running (fork with wait: false and child: name)`, 'its running children');
        break;
      case 'store':
        vmaRef([...ap, 'vma'], a.vma, scope, proc);
        if (Array.isArray(a.value) && a.value.length !== a.pages) issue([...ap, 'value'], a.value, `${n(a.value.length, 'word')} for ${n(a.pages, 'page')}; give one word per page`);
        break;
      case 'buffer':
        if (Array.isArray(a.fill) && a.fill.length !== a.pages) issue([...ap, 'fill'], a.fill, `${n(a.fill.length, 'word')} for ${n(a.pages, 'page')}; give one word per page`);
        locals.buffers.add(a.buffer);
        break;
      case 'read_buffer':
        bufferRef([...ap, 'buffer'], a.buffer);
        break;
      case 'counters':
        ref([...ap, 'device'], a.device, devices, 'a declared device', 'devices');
        break;
      case 'mremap':
        vmaRef([...ap, 'vma'], a.vma, scope, proc);
        if (a.to !== undefined) vmaRef([...ap, 'to'], a.to, scope, proc);
        if (a.as !== undefined) scope.add(a.as);
        break;
      case 'dmirror':
        ref([...ap, 'device'], a.device, devices, 'a declared device', 'devices');
        if (a.addr === undefined || typeof a.addr === 'object') vmaRef([...ap, a.addr === undefined ? 'vma' : 'addr'], a.vma, scope, proc);
        if (a.ptr !== undefined) bufferRef([...ap, 'ptr'], a.ptr);
        if (a.data !== undefined && a.ptr !== undefined) issue([...ap, 'data'], a.data, 'give the words to write as data or as the ptr buffer, not both');
        if (a.data !== undefined) {
          if (a.cmd !== 'HMM_DMIRROR_WRITE') issue([...ap, 'data'], a.data, `data is the bounce buffer of HMM_DMIRROR_WRITE; ${a.cmd} takes none`);
          if (a.data.length !== a.pages) issue([...ap, 'data'], a.data, `${n(a.data.length, 'word')} for ${n(a.pages, 'page')}; give one word per page`);
        }
        break;
      case 'gpu':
        ref([...ap, 'device'], a.device, gpus, 'a declared gpu device', 'gpu devices');
        if (a.vma !== undefined) vmaRef([...ap, 'vma'], a.vma, scope, proc);
        if (a.buffer !== undefined) ref([...ap, 'buffer'], a.buffer, [...buffersOf(proc)], `a VRAM buffer of process ${proc} (made by an earlier gpu_alloc)`, 'its buffers');
        break;
      case 'gpu_alloc':
        ref([...ap, 'device'], a.device, gpus, 'a declared gpu device', 'gpu devices');
        buffersOf(proc).add(a.buffer);
        break;
      case 'gpu_free':
        ref([...ap, 'buffer'], a.buffer, [...buffersOf(proc)], `a VRAM buffer of process ${proc} (made by an earlier gpu_alloc)`, 'its buffers');
        break;
      case 'dio':
        ref([...ap, 'device'], a.device, nvmes, 'a declared nvme device', 'nvme devices');
        vmaRef([...ap, 'vma'], a.vma, scope, proc);
        break;
      case 'dio_dmabuf':
        ref([...ap, 'device'], a.device, importers, 'an nvme device with the dma-buf importer (dmabufImporter: true, out of tree)', 'nvme devices with one');
        ref([...ap, 'buffer'], a.buffer, [...buffersOf(proc)], `a VRAM buffer of process ${proc} (made by an earlier gpu_alloc)`, 'its buffers');
        break;
      case 'dio_p2p': {
        ref([...ap, 'device'], a.device, nvmes, 'a declared nvme device', 'nvme devices');
        ref([...ap, 'provider'], a.provider, cmbs, 'an nvme device with a CMB (cmbPages)', 'nvme devices with one');
        const cmbPages = s.devices.find((d) => d.id === a.provider)?.cmbPages ?? 0;
        if (cmbs.includes(a.provider) && a.page + a.pages > cmbPages) issue([...ap, 'pages'], a.pages, `pages [${a.page}, ${a.page + a.pages}) are outside the ${cmbPages}-page CMB of ${a.provider}`);
        break;
      }
      case 'nvmet':
        ref([...ap, 'device'], a.device, nvmetTargets, 'an nvme device exported by an NVMe-oF target (nvmet: {nic})', 'nvme devices with one');
        if (a.io === 'write' && a.values?.length !== a.pages) issue([...ap, 'values'], a.values, `a write carries the host's words, one per page: ${n(a.pages, 'word')}`);
        if (a.io === 'read' && a.values !== undefined) issue([...ap, 'values'], a.values, 'a read carries no words (expect.data checks what it returns)');
        break;
      case 'rdma_reg_mr': {
        ref([...ap, 'device'], a.device, rdmas, 'a declared rdma device', 'rdma devices');
        ref([...ap, 'provider'], a.provider, cmbs, 'an nvme device with a CMB (cmbPages)', 'nvme devices with one');
        const cmbPages = s.devices.find((d) => d.id === a.provider)?.cmbPages ?? 0;
        if (cmbs.includes(a.provider) && a.page + a.pages > cmbPages) issue([...ap, 'pages'], a.pages, `pages [${a.page}, ${a.page + a.pages}) are outside the ${cmbPages}-page CMB of ${a.provider}`);
        break;
      }
      case 'rdma':
      case 'rdma_advise':
        ref([...ap, 'device'], a.device, rdmas, 'a declared rdma device', 'rdma devices');
        ref([...ap, 'vma'], a.vma, [...(rdmaVmasOf.get(proc) ?? [])], `a VMA of process ${proc} with an MR (rdma: <device id>)`, 'its VMAs with one');
        break;
      default:
        if ('vma' in a) vmaRef([...ap, 'vma'], a.vma, scope, proc);
    }
    const e = st.expect;
    if (e === undefined) return;
    const ep: Path = [...at, 'expect'];
    if (e.data !== undefined) {
      const words = a.op === 'load' || a.op === 'store' || a.op === 'read_buffer' || (a.op === 'dmirror' && DMIRROR_DATA_CMDS.includes(a.cmd)) || ((a.op === 'dio' || a.op === 'dio_p2p' || a.op === 'dio_dmabuf' || a.op === 'nvmet') && a.io === 'read');
      if (!words) issue([...ep, 'data'], e.data, `${describe(a)} returns no data; expect.data applies to load, store, read_buffer, dio and nvmet reads and dmirror ${list(DMIRROR_DATA_CMDS)}`);
      const pages = (a as { pages?: number }).pages;
      if (pages !== undefined && e.data.length !== pages) issue([...ep, 'data'], e.data, `${n(e.data.length, 'word')} for ${n(pages, 'page')}; expect one word per page`);
    }
    if (e.softDirty !== undefined) {
      if (a.op !== 'pagemap') issue([...ep, 'softDirty'], e.softDirty, `${describe(a)} reads no pagemap; expect.softDirty applies to pagemap steps`);
      else if (e.softDirty.length !== a.pages) issue([...ep, 'softDirty'], e.softDirty, `${n(e.softDirty.length, 'entry', 'entries')} for ${n(a.pages, 'page')}; expect one per page`);
    }
    if (e.status !== undefined && a.op !== 'rdma') issue([...ep, 'status'], e.status, `${describe(a)} has no work completion; expect.status applies to rdma steps`);
    if (e.snapshot !== undefined) {
      if (a.op !== 'dmirror' || a.cmd !== 'HMM_DMIRROR_SNAPSHOT') issue([...ep, 'snapshot'], e.snapshot, `${describe(a)} returns no snapshot; expect.snapshot applies to dmirror HMM_DMIRROR_SNAPSHOT`);
      else if (e.snapshot.length !== a.pages) issue([...ep, 'snapshot'], e.snapshot, `${n(e.snapshot.length, 'entry', 'entries')} for ${n(a.pages, 'page')}; expect one per page`);
    }
    if (e.buffer !== undefined && (a.op !== 'dmirror' || a.ptr === undefined)) issue([...ep, 'buffer'], e.buffer, `${describe(a)} has no user buffer; expect.buffer applies to dmirror steps with ptr (read_buffer's words are its data)`);
  }
}

const n = (k: number, one: string, many = `${one}s`) => `${k} ${k === 1 ? one : many}`;
const describe = (a: Action) => (a.op === 'dmirror' ? `dmirror ${a.cmd}` : a.op);

// =====================================================================================
// Messages
// =====================================================================================

/** `devices[0].policy`, `phases[1].script.steps[3]`, `machine.costs["odd key"]`; "" for the root. */
export function formatPath(path: readonly PropertyKey[]): string {
  let out = '';
  for (const k of path) {
    if (typeof k === 'number') out += `[${k}]`;
    else if (typeof k === 'string' && /^[A-Za-z_][A-Za-z0-9_]*$/.test(k)) out += out === '' ? k : `.${k}`;
    else out += `[${JSON.stringify(String(k))}]`;
  }
  return out;
}

const EXPECTED: Record<string, string> = {
  object: 'a mapping', array: 'a list', string: 'a string', number: 'a number', int: 'an integer',
  boolean: 'true or false', nan: 'a number',
};

/** The first problem of a failed parse, as { path, message }; the message names the value and what is allowed. */
export function firstIssue(error: z.ZodError): { path: string; message: string } {
  let iss = error.issues[0];
  // A misspelt key shows up as a missing one too: report the spelling, which says what was meant.
  if (iss.code === 'invalid_type' && iss.input === undefined) {
    const parent = JSON.stringify(iss.path.slice(0, -1));
    const typo = error.issues.find((j) => j.code === 'unrecognized_keys' && JSON.stringify(j.path) === parent);
    if (typo) iss = typo;
  }
  return { path: formatPath(iss.path), message: issueMessage(iss) };
}

function issueMessage(iss: z.core.$ZodIssue): string {
  const input = iss.input;
  switch (iss.code) {
    case 'invalid_type': {
      const want = EXPECTED[iss.expected] ?? iss.expected;
      if (input === undefined) return `missing; expected ${want}`;
      return `${show(input)} is not ${want}`;
    }
    case 'invalid_value':
      return notOneOf(input, iss.values.map(String));
    case 'too_small': {
      const min = Number(iss.minimum);
      if (iss.origin === 'array') return min === 1 ? 'an empty list; expected at least one item' : `${(input as unknown[]).length} items; expected at least ${min}`;
      if (iss.origin === 'string') return `${show(input)} is too short; expected at least ${min} character${min === 1 ? '' : 's'}`;
      return `${show(input)} is too small; expected ${iss.inclusive ? 'at least' : 'more than'} ${min}`;
    }
    case 'too_big': {
      const max = Number(iss.maximum);
      if (iss.origin === 'array') return `${(input as unknown[]).length} items; expected at most ${max}`;
      return `${show(input)} is too big; expected ${iss.inclusive ? 'at most' : 'less than'} ${max}`;
    }
    default:
      return iss.message;
  }
}

// =====================================================================================
// Compile-time checks: what the schema yields is what types.ts promises
// =====================================================================================

type Assignable<A, B extends A> = B;
type NoExtraKeys<Out, T> = Exclude<keyof Out, keyof T> extends never ? true : never;
type OpsOut = { [K in OpName]: z.output<(typeof OPS)[K]> }[OpName];
export type ScenarioOutput = z.output<typeof scenarioSchema>;
// Each line fails to compile if the parsed type does not fit the contract.
type _checks = [
  Assignable<Scenario, ScenarioOutput>,
  NoExtraKeys<ScenarioOutput, Scenario>,
  Assignable<Machine, z.output<typeof machineSchema>>,
  NoExtraKeys<z.output<typeof machineSchema>, Machine>,
  Assignable<FileSpec, z.output<typeof fileSchema>>,
  Assignable<DeviceSpec, z.output<typeof deviceSchema>>,
  NoExtraKeys<z.output<typeof deviceSchema>, DeviceSpec>,
  Assignable<ProcessSpec, z.output<typeof processSchema>>,
  Assignable<VmaSpec, z.output<typeof vmaSchema>>,
  NoExtraKeys<z.output<typeof vmaSchema>, VmaSpec>,
  Assignable<Phase[], z.output<typeof phaseList>>,
  Assignable<WorkloadPhase, Extract<z.output<typeof phaseList>[number], { kind: 'workload' }>>,
  NoExtraKeys<Extract<z.output<typeof phaseList>[number], { kind: 'workload' }>, WorkloadPhase>,
  Assignable<ScriptPhase, Extract<z.output<typeof phaseList>[number], { kind: 'script' }>>,
  Assignable<Expect, z.output<typeof expectSchema>>,
  NoExtraKeys<z.output<typeof expectSchema>, Expect>,
  Assignable<Action, OpsOut>,
  // Every operation of the Action union has a schema, and no schema is for an unknown one.
  Assignable<Action['op'], OpName>,
  Assignable<OpName, Action['op']>,
];
