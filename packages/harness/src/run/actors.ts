// From a scenario to the actors of a run: mm, its block device, the devices with their policies
// (and the actors a device brings along: the RDMA NIC's remote peer), and the process actor `app`.
// Specs name compiled modules so that both schedulers can load them. Adding a device kind is one
// entry in DEVICE_KINDS.
import { fileURLToPath } from 'node:url';
import type { ActorSpec } from '@svmsim/runtime';
import { splitCostOverrides } from '@svmsim/gpu-driver/cost-profiles';
import { NVME_FAILURE_POLICIES, NVME_POLICIES, slotTopologyNodes } from '@svmsim/nvme';
import type { DeviceSpec, NvmeMachineSpec, Scenario } from '../scenario/types.js';

const kernelMm = (file: string) => fileURLToPath(import.meta.resolve(`@svmsim/kernel-mm/${file}`));
const gpuDriver = (file: string) => fileURLToPath(import.meta.resolve(`@svmsim/gpu-driver/${file}`));
const nvmeModule = (file: string) => fileURLToPath(import.meta.resolve(`@svmsim/nvme/${file}`));
const rdmaOdp = (file: string) => fileURLToPath(import.meta.resolve(`@svmsim/rdma-odp/${file}`));
const harness = (file: string) => fileURLToPath(new URL(`../${file}.js`, import.meta.url));

export interface DeviceKind {
  module: () => string;
  exportName: string;
  policies: string[];
  /** Its config from the spec and the scenario (machine settings). */
  config: (d: DeviceSpec, s: Scenario) => unknown;
  /** Actors it brings along (their ids are the device's id plus a suffix). */
  companions?: (d: DeviceSpec) => ActorSpec[];
}

/** The remote peer of an rdma device: another node's NIC and application, at the other end of its QPs. */
export const rdmaPeerId = (device: string): string => `${device}.peer`;

/**
 * Policies that reproduce one real report each (scenarios/reports/, gpu-driver GPU_REPORT_VARIANTS):
 * left out of every default set (`svmsim compare`, soak) like the unsafe twins; a scenario's
 * `compare:` or `--policy` selects them.
 */
export const REPORT_VARIANTS: readonly string[] = ['kfd-svm-read-begin-outside-loop', 'unsafe-lock-not-pinned', 'uvm-thrashing-off'];
/** The policies a default comparison runs: neither an unsafe twin nor a report variant. */
export const defaultComparePolicies = (known: readonly string[]): string[] => known.filter((p) => !p.startsWith('unsafe') && !REPORT_VARIANTS.includes(p));

/** A `hang-fence: DEV` fault's `restore: N` (run/faults.ts): the restore run whose update fence never signals. */
const hangRestoreOf = (id: string, s: Scenario): number | undefined => {
  for (const f of s.faults) if (f.kind === 'hang-fence' && f.device === id && f.restore !== undefined) return f.restore;
  return undefined;
};

/** Each device kind: its module, factory, the policies it knows, and its config from the spec. */
export const DEVICE_KINDS: Record<DeviceSpec['kind'], DeviceKind> = {
  dmirror: {
    module: () => kernelMm('dmirror'),
    exportName: 'createDmirror',
    policies: ['safe', 'unsafe-skip-read-retry', 'unsafe-skip-owner-check'],
    config: (d, s) => ({ devicePages: d.devicePages, ramPages: s.machine.frames, ...(d.policy.startsWith('unsafe-') ? { unsafe: d.policy.slice('unsafe-'.length) } : {}) }),
  },
  gpu: {
    module: () => gpuDriver('gpu-actor'),
    exportName: 'createGpu',
    policies: ['userptr', 'pin', 'preempt', 'svm-fault', 'kfd-svm', 'uvm', 'gpusvm', 'unsafe-userptr', 'unsafe-svm', 'unsafe-uvm', 'unsafe-gpusvm', ...REPORT_VARIANTS],
    config: (d, s) => ({
      policy: d.policy,
      waves: d.waves,
      svm: { vramPages: d.devicePages, faultWindowPages: d.faultWindowPages, faultPermission: d.faultPermission },
      ...(d.vramBoPages !== undefined && { vramBos: { pages: d.vramBoPages } }),
      ...(d.xnack !== undefined && { xnack: d.xnack }),
      ...((d.granularity !== undefined || d.retryFaultPending !== undefined || hangRestoreOf(d.id, s) !== undefined) && {
        kfd: { granularity: d.granularity, retryFaultPendingNs: d.retryFaultPending, hangRestoreFence: hangRestoreOf(d.id, s) },
      }),
      ...(d.uvm !== undefined && { uvm: uvmConfig(d.uvm) }),
      ...(d.gpusvm !== undefined && { gpusvm: d.gpusvm }),
      dmabufMoveNotify: s.machine.dmabufMoveNotify,
      ...(d.invalidateMultipass !== undefined && { invalidateMultipass: d.invalidateMultipass }),
      kernel: s.machine.kernel,
      profile: s.machine.profile,
      // The device's own costs, split into the driver's tables; each wins over the profile's figure.
      ...(d.costs !== undefined && gpuCostConfig(d.costs, d.vramBoPages)),
      // 0 keeps the default, as the module parameter does.
      lockupTimeoutMs: Object.fromEntries(Object.entries(s.machine.lockupTimeout ?? {}).filter(([, v]) => v !== 0)),
    }),
  },
  rdma: {
    module: () => rdmaOdp('rdma-actor'),
    exportName: 'createRdma',
    policies: ['odp', 'pinned-mr', 'implicit-odp', 'dmabuf', 'unsafe-odp'],
    config: (d) => ({ mrKind: d.policy, peer: rdmaPeerId(d.id), ...(d.rkeyFaultResponse !== undefined && { rkeyFaultResponse: d.rkeyFaultResponse }) }),
    companions: (d) => [{ id: rdmaPeerId(d.id), module: rdmaOdp('peer'), exportName: 'createPeer', config: { nic: d.id } }],
  },
  // A controller of its own (not the `nvme` behind mm's bios): the process's O_DIRECT on its raw
  // namespace (packages/nvme/src/blkdev-dio.ts), its CMB as p2pmem for the others.
  nvme: {
    module: () => nvmeModule('nvme-actor'),
    exportName: 'createNvme',
    policies: [...NVME_POLICIES],
    config: (d, s) => {
      const failure = (NVME_FAILURE_POLICIES as readonly string[]).includes(d.policy) ? d.policy : undefined;
      // Every device on the PCI bus by its slot: the controllers, and the NICs an NVMe-oF target uses.
      const onBus = s.devices.filter((x) => x.kind === 'nvme' || x.kind === 'rdma').map((x) => ({ id: x.id, slot: x.slot ?? 'switch' }));
      const providers = s.devices.filter((x) => x.kind === 'nvme' && x.cmbPages !== undefined).map((x) => x.id);
      return {
        ...(failure !== undefined && { failure, failAtNs: d.failAt ?? 2_000_000 }),
        ...(d.ioTimeout !== undefined && { ioTimeoutNs: d.ioTimeout }),
        ...(d.cmbPages !== undefined && { cmbPages: d.cmbPages }),
        dio: {
          unsafe: d.policy === 'unsafe-nvme',
          ...(d.blocks !== undefined && { blocks: d.blocks }),
          queueSupportsP2p: d.p2pQueue !== false,
          dmabufImporter: d.dmabufImporter === true,
          pci: { nodes: slotTopologyNodes(onBus), whitelisted: s.machine.pci?.hostBridgeWhitelisted ? ['rc0'] : [], cpuSupportsP2pdma: s.machine.pci?.cpuSupportsP2pdma === true },
          ...(d.nvmet !== undefined && { nvmet: { nic: d.nvmet.nic, p2pmem: d.nvmet.p2pmem, providers } }),
        },
        mm: 'mm',
      };
    },
  },
};

/** A gpu's `costs:` as the driver's config keys (costs, preempt, recovery, vramBos), with vramBoPages kept beside the copy cost. */
function gpuCostConfig(costs: Record<string, number>, vramBoPages: number | undefined) {
  const parts = splitCostOverrides(costs);
  return { costs: parts.costs, preempt: parts.preempt, recovery: parts.recovery, vramBos: { ...parts.vramBos, ...(vramBoPages !== undefined && { pages: vramBoPages }) } };
}

/** A gpu's `uvm:` key as the policy's options (policy-uvm.ts): the lapse is lapseNs there. */
function uvmConfig(u: NonNullable<DeviceSpec['uvm']>) {
  const { lapse, ...thrashing } = u.thrashing ?? {};
  return { ...u, ...(u.thrashing && { thrashing: { ...thrashing, ...(lapse !== undefined && { lapseNs: lapse }) } }) };
}

export interface RunActorsOptions {
  seed: number;
  /** Check mm's invariants after every message (deterministic runs of small machines). */
  checkInvariants: boolean;
}

export function scenarioActors(s: Scenario, opts: RunActorsOptions): ActorSpec[] {
  const m = s.machine;
  const mmConfig = {
    frames: m.frames,
    movableStart: m.movableFrames > 0 ? m.frames - m.movableFrames : undefined,
    wmarkMin: m.watermarks?.min,
    wmarkLow: m.watermarks?.low,
    wmarkHigh: m.watermarks?.high,
    swapPages: m.swapPages,
    kswapd: m.kswapd,
    writebackIntervalNs: m.writebackInterval,
    numaBalancing: m.numaBalancing && { scanDelayNs: m.numaBalancing.scanDelay, scanPeriodNs: m.numaBalancing.scanPeriod, scanSizePages: m.numaBalancing.scanSize },
    costs: m.costs,
    notifierPasses: m.notifierPasses,
    // File pages and swap live on the NVMe controller (issue 12); the ramdisk is a test double only.
    blockdev: 'nvme',
    checkInvariants: opts.checkInvariants,
  };
  return [
    { id: 'mm', module: kernelMm('mm-actor'), exportName: 'createMm', config: mmConfig },
    { id: 'nvme', module: nvmeModule('nvme-actor'), exportName: 'createNvme', config: nvmeConfig(m.diskLatency, m.nvme) },
    ...s.devices.flatMap((d) => {
      const kind = DEVICE_KINDS[d.kind];
      return [{ id: d.id, module: kind.module(), exportName: kind.exportName, config: kind.config(d, s) }, ...(kind.companions?.(d) ?? [])];
    }),
    { id: 'app', module: harness('app/app-actor'), exportName: 'createApp', config: { scenario: s, seed: opts.seed } },
  ];
}

/**
 * The NVMe controller behind mm's bios. Without `machine.nvme`, every command costs the machine's
 * `diskLatency`, with no per-byte cost and as many channels as tags, so scenarios that predate the
 * controller keep the timing of the ramdisk they were written against.
 */
function nvmeConfig(diskLatencyNs: number, n: NvmeMachineSpec | undefined) {
  const c = n?.costs ?? {};
  return {
    costs: {
      readCommandNs: c.readCommand ?? diskLatencyNs,
      writeCommandNs: c.writeCommand ?? diskLatencyNs,
      ...(c.flushCommand !== undefined ? { flushCommandNs: c.flushCommand } : {}),
      transferNsPerKiB: c.transferPerKiB ?? 0,
      prpListPageNs: c.prpListPage ?? 0,
    },
    channels: n?.channels ?? 1024,
    ...(n?.queueDepth !== undefined ? { queueDepth: n.queueDepth } : {}),
  };
}

/** `--policy dev=policy` overrides, checked against the device's kind. */
export function applyPolicies(s: Scenario, overrides: Record<string, string>): Scenario {
  const devices = s.devices.map((d) => {
    const p = overrides[d.id];
    if (p === undefined) return d;
    const known = DEVICE_KINDS[d.kind].policies;
    if (!known.includes(p)) throw new UsageError(`--policy ${d.id}=${p}: "${p}" is not one of ${known.join(', ')}`);
    return { ...d, policy: p };
  });
  for (const id of Object.keys(overrides)) {
    if (!s.devices.some((d) => d.id === id)) throw new UsageError(`--policy ${id}=…: scenario ${s.name} has no device ${id} (devices: ${s.devices.map((d) => d.id).join(', ') || 'none'})`);
  }
  return { ...s, devices };
}

/** A mistake in how the command was used: exit 2 with one line. */
export class UsageError extends Error {
  override name = 'UsageError';
}
