// A block device in memory behind the bio messages mm sends (bio_submit / bio_done): the store
// for file blocks and swap slots until the nvme actor takes that role. Every read and write takes
// `latencyNs` (a seek-free device; default 10 µs, an NVMe-class read). Unwritten blocks read 0.
import type { Actor, Incoming, Message } from '@svmsim/runtime';
import type { BioSubmit } from './protocol.js';

export interface RamdiskConfig {
  latencyNs?: number;
}

type RamdiskMsg = BioSubmit | { type: 'ramdisk_done' };

export function createRamdisk(config: unknown): Actor<Message> {
  const cfg = (config ?? {}) as RamdiskConfig;
  const latencyNs = cfg.latencyNs ?? 10_000;
  const blocks = new Map<string, Map<number, number>>();
  const inFlight = new Map<number, Incoming<RamdiskMsg>>();
  let reads = 0;
  let writes = 0;
  return {
    receive(env, ctx) {
      const m = env.msg as RamdiskMsg;
      switch (m.type) {
        case 'bio_submit': {
          if (!Number.isInteger(m.block) || m.block < 0 || (m.op !== 'read' && m.op !== 'write')) {
            ctx.reply(env, { type: 'bio_done', ret: -22, value: 0 } as Message);
            return;
          }
          inFlight.set(ctx.after(latencyNs, { type: 'ramdisk_done' }), env as Incoming<RamdiskMsg>);
          return;
        }
        case 'ramdisk_done': {
          const req = inFlight.get(env.id)!;
          inFlight.delete(env.id);
          const bio = req.msg as BioSubmit;
          let dev = blocks.get(bio.dev);
          if (!dev) blocks.set(bio.dev, (dev = new Map()));
          if (bio.op === 'write') {
            writes++;
            dev.set(bio.block, bio.value ?? 0);
            ctx.reply(req, { type: 'bio_done', ret: 0, value: bio.value ?? 0 } as Message);
          } else {
            reads++;
            ctx.reply(req, { type: 'bio_done', ret: 0, value: dev.get(bio.block) ?? 0 } as Message);
          }
          return;
        }
        default:
          if ((env.msg as Message).type === 'actor_died') return;
          throw new Error(`ramdisk: unknown message '${(env.msg as Message).type}' from ${env.from}`);
      }
    },
    summary: () => ({ reads, writes, inFlight: inFlight.size }),
  };
}
