// Named cost profiles: a machine's GPU figures in one place, each figure with where it comes from.
//
// A profile overrides some of the GPU's cost constants (policy.ts DEFAULT_GPU_COSTS, the preempt
// timings of policy-preempt.ts, job-timeout.ts's recovery costs, vram-bos.ts's copy cost); what it
// leaves out keeps svmsim's default. The precedence, lowest first:
//
//   svmsim's defaults  <  the profile (machine.profile, --profile)  <  the device's own `costs:`
//
// Every figure a profile sets names its source: a simulator's configuration, a vendor figure and
// the arithmetic that turns it into a per-page cost. Where no published figure was found the
// profile does not set the key: the default's comment says why its value is an estimate.
import type { GpuCosts } from './policy.js';
import type { PreemptOptions } from './policy-preempt.js';
import type { RecoveryCosts } from './job-timeout.js';
import type { VramBoOptions } from './vram-bos.js';

/** The cost keys a profile or a device's `costs:` may set, ns each. */
export const GPU_COST_KEYS = [
  'walkPerPageNs', 'ptePerPageNs', 'rebindPerPageNs', 'tlbFlushNs', 'tlbInvalIssueNs', 'tlbFlushHeavyweightNs', 'submitNs',
  'faultInterruptNs', 'faultPerPageNs', 'replayNs', 'migratePerPageNs',
  'preemptNs', 'resumeNs', 'softRecoveryNs', 'gpuResetNs', 'vramCopyPerPageNs',
] as const;
export type GpuCostKey = (typeof GPU_COST_KEYS)[number];
export type GpuCostOverrides = Partial<Record<GpuCostKey, number>>;

/** One figure and where it comes from. */
export interface CitedNs {
  ns: number;
  source: string;
}

export interface GpuCostProfile {
  name: string;
  /** What machine it stands for, in a line. */
  summary: string;
  figures: Partial<Record<GpuCostKey, CitedNs>>;
}

/** GeForce GTX 1080 Ti core clock in GPGPU-Sim UVM Smart's config, MHz: turns its cycle counts into time. */
const UVM_SMART_CORE_MHZ = 1481;
/** GPGPU-Sim UVM Smart's -page_fault_latency default, core cycles ("Average fault latency (in core cycle)"). */
const UVM_SMART_FAULT_CYCLES = 66645;
/** GPGPU-Sim UVM Smart's -pcie_bandwidth default (PCIe 3.0 x16, per direction), bytes/s. */
const UVM_SMART_PCIE_BYTES_PER_S = 16e9;
/** MI300A's HBM3 bandwidth, bytes/s (Chips and Cheese, below). */
const MI300A_HBM_BYTES_PER_S = 5.3e12;
const PAGE_BYTES = 4096;

const UVM_SMART_SRC = 'GPGPU-Sim UVM Smart (Ganguly et al., ISCA 2019; github.com/DebashisGanguly/gpgpu-sim_UVMSmart)';
const MI300A_SRC = 'Chips and Cheese, "Inside the AMD Radeon Instinct MI300A\'s Giant Memory Subsystem", https://chipsandcheese.com/p/inside-the-amd-radeon-instinct-mi300as ("5.3 TB/s of HBM3 bandwidth")';

/** Copying one 4 KiB page within HBM: read and written, so twice its bytes at the peak bandwidth, rounded up to a whole ns. */
const mi300aCopyPerPageNs = Math.ceil(((2 * PAGE_BYTES) / MI300A_HBM_BYTES_PER_S) * 1e9);
/** One 4 KiB page across PCIe at UVM Smart's bandwidth (its per-transfer curve-fit setup time is not modelled). */
const pcieCopyPerPageNs = Math.round((PAGE_BYTES / UVM_SMART_PCIE_BYTES_PER_S) * 1e9);

export const GPU_COST_PROFILES: readonly GpuCostProfile[] = [
  {
    name: 'default',
    summary: "svmsim's own figures (policy.ts, policy-preempt.ts, job-timeout.ts, vram-bos.ts: each constant's comment says where it comes from)",
    figures: {},
  },
  {
    name: 'mi300-xnack',
    summary: 'an MI300A-class APU with XNACK on: GPU and CPU share one HBM3, so a "migration" is a copy within it',
    figures: {
      migratePerPageNs: {
        ns: mi300aCopyPerPageNs,
        source: `${MI300A_SRC}: 8 KiB moved per 4 KiB page (read + write) at 5.3 TB/s = 1.55 ns, rounded up. No published figure was found for MI300's retry-fault interrupt, TLB flush or queue preemption: those keep the defaults`,
      },
      vramCopyPerPageNs: { ns: mi300aCopyPerPageNs, source: `${MI300A_SRC}: as migratePerPageNs (VRAM and GTT are the same HBM on the APU)` },
    },
  },
  {
    name: 'uvm-pcie',
    summary: 'a discrete UVM GPU on PCIe 3.0 x16 (GTX 1080 Ti class), as GPGPU-Sim UVM Smart models it',
    figures: {
      faultInterruptNs: {
        ns: Math.round((UVM_SMART_FAULT_CYCLES / UVM_SMART_CORE_MHZ) * 1e3),
        source:
          `${UVM_SMART_SRC}: src/gpgpu-sim/gpu-sim.cc -page_fault_latency default 66645 core cycles ("Average fault latency"), ` +
          'at configs/GeForceGTX1080Ti/gpgpusim.config -gpgpu_clock_domains 1481 MHz = 45.0 µs, the fixed far-fault handling cost apart from the PCIe transfer; ' +
          'svmsim charges it from the fault to its handler, the handler\'s own work (faultPerPageNs, ptePerPageNs, replayNs) comes on top',
      },
      migratePerPageNs: {
        ns: pcieCopyPerPageNs,
        source: `${UVM_SMART_SRC}: gpu-sim.cc -pcie_bandwidth default 16.0 GB/s per direction; 4 KiB / 16 GB/s = 256 ns`,
      },
      vramCopyPerPageNs: { ns: pcieCopyPerPageNs, source: `${UVM_SMART_SRC}: as migratePerPageNs (VRAM to GTT crosses the same PCIe link)` },
    },
  },
];

export const GPU_COST_PROFILE_NAMES: readonly string[] = GPU_COST_PROFILES.map((p) => p.name);
export const DEFAULT_GPU_COST_PROFILE = 'default';

export function gpuCostProfile(name: string): GpuCostProfile {
  const p = GPU_COST_PROFILES.find((x) => x.name === name);
  if (!p) throw new Error(`gpu config: profile must be one of ${GPU_COST_PROFILE_NAMES.join(', ')}, got ${JSON.stringify(name)}`);
  return p;
}

/** A profile's figures as plain overrides (ns by key). */
export function profileOverrides(name: string): GpuCostOverrides {
  return Object.fromEntries(Object.entries(gpuCostProfile(name).figures).map(([k, f]) => [k, f.ns]));
}

/** Overrides split into the tables that hold them: the GPU's costs, preempt's timings, recovery, VRAM BOs. */
export interface GpuCostParts {
  costs: Partial<GpuCosts>;
  preempt: Partial<PreemptOptions>;
  recovery: Partial<RecoveryCosts>;
  vramBos: Partial<VramBoOptions>;
}

export function splitCostOverrides(o: GpuCostOverrides): GpuCostParts {
  const parts: GpuCostParts = { costs: {}, preempt: {}, recovery: {}, vramBos: {} };
  for (const [k, ns] of Object.entries(o) as [GpuCostKey, number | undefined][]) {
    if (ns === undefined) continue;
    if (!(ns >= 0) || !Number.isFinite(ns)) throw new Error(`gpu config: cost ${k} must be a finite number of ns >= 0, got ${ns}`);
    if (k === 'preemptNs' || k === 'resumeNs') parts.preempt[k] = ns;
    else if (k === 'softRecoveryNs' || k === 'gpuResetNs') parts.recovery[k] = ns;
    else if (k === 'vramCopyPerPageNs') parts.vramBos.copyPerPageNs = ns;
    else if ((GPU_COST_KEYS as readonly string[]).includes(k)) parts.costs[k] = ns;
    else throw new Error(`gpu config: unknown cost ${JSON.stringify(k)}; known: ${GPU_COST_KEYS.join(', ')}`);
  }
  return parts;
}
