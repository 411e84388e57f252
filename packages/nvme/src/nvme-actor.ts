// The `nvme` actor: the NVMe controller as the block device behind mm's bios (bio_submit /
// bio_done, kernel-mm protocol.ts). Page-cache reads, writeback and swap-out/in become READ and
// WRITE commands on I/O queue 1; each bio's `dev` (a file's block device, or `swap`) is a
// namespace of its own. The controller runs on the scheduler's clock: the actor runs its events
// up to now on every message and sets one timer for the next.
// Followed: drivers/nvme/host/pci.c, core.c of v6.6.
import type { Actor, Envelope, Message } from '@svmsim/runtime';
import { NvmeController, type NvmeConfig, type NvmeFailure } from './controller.js';
import { DEFAULT_NVME_COSTS, type NvmeCosts } from './cost.js';
import { nvme_cmd_read, nvme_cmd_write } from './protocol.js';

/** Blocks per namespace in the actor (file blocks and swap slots): 2^20 = 4 GiB each. */
export const NVME_ACTOR_NAMESPACE_BLOCKS = 1 << 20;
/** The most namespaces (block devices) the actor creates. */
export const NVME_ACTOR_NAMESPACES_LIMIT = 64;

export interface NvmeActorConfig {
  readonly queueDepth?: number;
  readonly channels?: number;
  readonly costs?: Partial<NvmeCosts>;
  /** The controller fails this way at `failAtNs` (the nvme-reset scenario). */
  readonly failure?: NvmeFailure;
  readonly failAtNs?: number;
  readonly ioTimeoutNs?: number;
  readonly resetNs?: number;
}

interface BioSubmit { type: 'bio_submit'; op: 'read' | 'write'; dev: string; block: number; value?: number }

export function createNvme(config: unknown): Actor<Message> {
  const cfg = (config ?? {}) as NvmeActorConfig;
  const partial: Partial<NvmeConfig> = {
    costs: { ...DEFAULT_NVME_COSTS, ...cfg.costs },
    namespaceBlocks: Array.from({ length: NVME_ACTOR_NAMESPACES_LIMIT }, () => NVME_ACTOR_NAMESPACE_BLOCKS),
    ...(cfg.queueDepth !== undefined ? { queueDepth: cfg.queueDepth } : {}),
    ...(cfg.channels !== undefined ? { channels: cfg.channels } : {}),
    ...(cfg.ioTimeoutNs !== undefined ? { ioTimeoutNs: cfg.ioTimeoutNs } : {}),
    ...(cfg.resetNs !== undefined ? { resetNs: cfg.resetNs } : {}),
  };
  // Namespaces are allocated lazily by the typed arrays' first touch only in spirit: 64 × 2^20
  // Float64 would be 512 MiB, so the actor creates each namespace on first use instead.
  const ctrl = new NvmeController({ ...partial, namespaceBlocks: [1] });
  if (cfg.failure) ctrl.failAt(cfg.failAtNs ?? 0, cfg.failure);
  const nsidOf = new Map<string, number>();
  let timer = -1;
  let timerAt = Infinity;

  function nsid(dev: string): number {
    let id = nsidOf.get(dev);
    if (id === undefined) {
      if (nsidOf.size >= NVME_ACTOR_NAMESPACES_LIMIT) return -1;
      ctrl.addNamespace(NVME_ACTOR_NAMESPACE_BLOCKS);
      id = ctrl.namespaces.length;
      nsidOf.set(dev, id);
    }
    return id;
  }

  return {
    receive(env, ctx) {
      const m = env.msg as BioSubmit | { type: 'nvme_tick' } | Message;
      ctrl.run(ctx.now());
      if (m.type === 'bio_submit') {
        const bio = m as BioSubmit;
        const id = Number.isInteger(bio.block) && bio.block >= 0 && (bio.op === 'read' || bio.op === 'write') ? nsid(bio.dev) : -1;
        if (id < 0) {
          ctx.reply(env as Envelope<Message>, { type: 'bio_done', ret: -22, value: 0 } as Message);
        } else {
          const isWrite = bio.op === 'write';
          ctrl.submit(1, { opcode: isWrite ? nvme_cmd_write : nvme_cmd_read, nsid: id, slba: bio.block, nlb: 1, ...(isWrite ? { data: Float64Array.of(bio.value ?? 0) } : {}) },
            { segs: [{ addr: 0, len: 4096 }] },
            (c) => ctx.reply(env as Envelope<Message>, { type: 'bio_done', ret: c.ret, value: isWrite ? (bio.value ?? 0) : (c.data?.[0] ?? 0) } as Message));
        }
      } else if (m.type === 'nvme_tick') {
        timer = -1;
        timerAt = Infinity;
      } else if (m.type !== 'actor_died') {
        throw new Error(`nvme: unknown message '${m.type}' from ${env.from}`);
      }
      const next = ctrl.nextEventNs();
      if (next < timerAt) {
        if (timer >= 0) ctx.cancel(timer);
        timer = ctx.after(Math.max(0, next - ctx.now()), { type: 'nvme_tick' } as Message);
        timerAt = next;
      }
    },
    summary: () => ({
      completed: ctrl.stats.completed,
      ioErrors: ctrl.stats.ioErrors,
      failedWrites: ctrl.stats.failedWrites,
      timeouts: ctrl.stats.timeouts,
      aborts: ctrl.stats.aborts,
      resets: ctrl.stats.resets,
      retries: ctrl.stats.retries,
      submitWaits: ctrl.stats.submitWaits,
      outstanding: ctrl.outstanding,
      ...latencyFigures(ctrl.stats.latenciesNs, ctrl.now),
    }),
  };
}

/** IOPS over the run, and latency p50/p99 in ns. */
export function latencyFigures(latenciesNs: readonly number[], elapsedNs: number): { iops: number; latencyP50Ns: number; latencyP99Ns: number } {
  const sorted = [...latenciesNs].sort((a, b) => a - b);
  const at = (q: number) => (sorted.length ? sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]! : 0);
  return { iops: elapsedNs > 0 ? Math.round((sorted.length * 1e9) / elapsedNs) : 0, latencyP50Ns: at(0.5), latencyP99Ns: at(0.99) };
}
