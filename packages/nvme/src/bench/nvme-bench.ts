// nvme's part of `npm run bench`, under LocalScheduler (deterministic, one thread, no trace), each
// figure the median of REPS runs:
//   actorIops       4 KiB bios (the messages mm sends for page-cache reads, writeback and swap)
//                   to the `nvme` actor, QD 32 in flight, 70 % reads: bios completed per wall second
//   controllerIops  the same mix straight into the controller model (no scheduler): commands per
//                   wall second, the cost of the queue, PRP and event machinery alone
// beside the raw baseline of the same run: request/reply round trips per wall second between two
// trivial actors (kernel-mm bench echoRoundTrips). Simulated IOPS (the drive's own figure under
// the default cost table) is reported too. The bench checks every I/O completed, never how fast.
import { LocalScheduler, type Actor, type Message } from '@svmsim/runtime';
import { medianOf, round } from '@svmsim/runtime/bench/index';
import { echoRoundTrips } from '@svmsim/kernel-mm/bench/mm-bench';
import { NvmeController } from '../controller.js';
import { createNvme } from '../nvme-actor.js';
import { nvme_cmd_read, nvme_cmd_write } from '../protocol.js';

const REPS = 3;
const QD = 32;
const BLOCKS = 1 << 16;

/** `count` bios to the nvme actor, QD in flight. */
export async function actorIops(count: number): Promise<{ iopsPerWallSec: number; simIops: number; wallMs: number }> {
  let done = 0;
  let sent = 0;
  let x = 12345;
  const next = (): Message => {
    x = (Math.imul(x, 1103515245) + 12345) >>> 0;
    const block = x % BLOCKS;
    sent++;
    return (x & 0xff) < 179 ? ({ type: 'bio_submit', op: 'read', dev: 'bench', block } as Message) : ({ type: 'bio_submit', op: 'write', dev: 'bench', block, value: sent } as Message);
  };
  const client: Actor<Message> = {
    start: (ctx) => {
      for (let i = 0; i < QD; i++) ctx.request('nvme', next());
    },
    receive(env, ctx) {
      if ((env.msg as { ret?: number }).ret !== 0) throw new Error(`nvme bench: bio failed: ${JSON.stringify(env.msg)}`);
      if (++done === count) return ctx.stopRun('done');
      if (sent < count) ctx.request('nvme', next());
    },
    summary: () => ({}),
  };
  (globalThis as { gc?: () => void }).gc?.();
  const t0 = performance.now();
  const r = await new LocalScheduler().run({ actors: [{ id: 'client', actor: client }, { id: 'nvme', actor: createNvme({}) }], seed: 1 });
  const sec = (performance.now() - t0) / 1e3;
  if (done !== count) throw new Error(`nvme bench: ${done} of ${count} bios completed (${r.endedBy})`);
  return { iopsPerWallSec: round(count / sec), simIops: (r.summaries.nvme as { iops: number }).iops, wallMs: round(sec * 1e3, 1) };
}

/** `count` commands into the controller model, QD in flight, no scheduler. */
export function controllerIops(count: number): { iopsPerWallSec: number; simIops: number; wallMs: number } {
  const ctrl = new NvmeController({ namespaceBlocks: [BLOCKS], queueDepth: 1024 });
  let done = 0;
  let x = 12345;
  const one = (): void => {
    x = (Math.imul(x, 1103515245) + 12345) >>> 0;
    const slba = x % BLOCKS;
    const write = (x & 0xff) >= 179;
    ctrl.submit(1, { opcode: write ? nvme_cmd_write : nvme_cmd_read, nsid: 1, slba, nlb: 1, ...(write ? { data: Float64Array.of(x) } : {}) }, { segs: [{ addr: 0, len: 4096 }] }, (c) => {
      if (c.ret !== 0) throw new Error(`nvme bench: command failed (${c.status})`);
      done++;
    });
  };
  const t0 = performance.now();
  for (let i = 0; i < QD; i++) one();
  let issued = QD;
  while (done < count) {
    const before = done;
    ctrl.run(ctrl.nextEventNs());
    for (let k = before; k < done && issued < count; k++, issued++) one();
  }
  const sec = (performance.now() - t0) / 1e3;
  return { iopsPerWallSec: round(count / sec), simIops: Math.round((count * 1e9) / ctrl.now), wallMs: round(sec * 1e3, 1) };
}

export async function nvmeBench(progress: (line: string) => void): Promise<Record<string, unknown>> {
  const log = (line: string) => progress(`nvme: ${line}`);
  await actorIops(20_000); // warm-up
  controllerIops(20_000);
  const echo = await medianOf(REPS, log, 'baseline request/reply', 'roundTripsPerSec', () => echoRoundTrips(400_000));
  const actor = await medianOf(REPS, log, 'nvme actor IOPS', 'iopsPerWallSec', () => actorIops(200_000));
  const ctrl = await medianOf(REPS, log, 'nvme controller IOPS', 'iopsPerWallSec', async () => controllerIops(200_000));
  return {
    reps: REPS,
    baseline: { localRequestReply: { ...echo, what: 'request/reply round trips per wall second between two trivial actors under LocalScheduler, 32 in flight (kernel-mm bench echoRoundTrips)' } },
    actorIops: { ...actor, vsBaselineRoundTrips: round(actor.iopsPerWallSec / echo.roundTripsPerSec, 3), what: `4 KiB bios to the nvme actor under LocalScheduler, QD ${QD}, 70 % reads, default cost table; simIops is the drive's simulated IOPS` },
    controllerIops: { ...ctrl, what: `the same mix into the controller model directly (no scheduler), QD ${QD}` },
  };
}
