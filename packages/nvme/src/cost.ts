// The controller's latency model: a fixed cost per command and a cost per byte moved, by opcode.
// A scenario's `nvme.costs` table overrides these; every field is named with its unit.
// The defaults are of the order of a datacenter TLC drive (4 KiB random read ≈ 80 µs, write ≈ 20 µs
// into the drive's write cache, ≈ 3 GB/s sequential), not a measurement of one drive.
import { nvme_cmd_flush, nvme_cmd_read, type NvmeOpcode } from './protocol.js';

export interface NvmeCosts {
  readonly readCommandNs: number;
  readonly writeCommandNs: number;
  readonly flushCommandNs: number;
  /** Transfer cost per KiB on the link and media, both directions. */
  readonly transferNsPerKiB: number;
  /** Time the driver spends per PRP list page it builds (dma_pool_alloc and the fill). */
  readonly prpListPageNs: number;
}

export const DEFAULT_NVME_COSTS: NvmeCosts = {
  readCommandNs: 80_000,
  writeCommandNs: 20_000,
  flushCommandNs: 500_000,
  transferNsPerKiB: 330,
  prpListPageNs: 200,
};

/** The largest cost a scenario may give one field: 10 s, past which a command is a hang, not a cost. */
export const NVME_COST_LIMIT_NS = 10_000_000_000;

/** Checks a cost table; returns the first invalid field's name, or undefined. */
export function invalidCostField(costs: Partial<Record<keyof NvmeCosts, unknown>>): string | undefined {
  for (const [field, value] of Object.entries(costs)) {
    if (!(field in DEFAULT_NVME_COSTS)) return field;
    if (typeof value !== 'number' || !Number.isFinite(value) || value < 0 || value > NVME_COST_LIMIT_NS) return field;
  }
  return undefined;
}

/** Service time of one command in ns: its fixed cost, its bytes, its PRP list pages. */
export function commandNs(costs: NvmeCosts, opcode: NvmeOpcode, bytes: number, prpListPages: number): number {
  const fixed = opcode === nvme_cmd_read ? costs.readCommandNs : opcode === nvme_cmd_flush ? costs.flushCommandNs : costs.writeCommandNs;
  return fixed + Math.ceil((bytes / 1024) * costs.transferNsPerKiB) + prpListPages * costs.prpListPageNs;
}
