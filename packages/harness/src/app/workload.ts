// A workload phase: `threads` CPU threads of the phase's process, each keeping one operation in
// flight. Each operation's kind is drawn from `mix` by weight with ctx.rng, so a seed replays
// exactly under LocalScheduler. Threads stop taking new operations once `ops` have been issued or
// `duration` has passed since the phase started, the run is ending, or the process is gone (its
// requests answer ESRCH at no cost in time: without this a duration-bound phase would spin); the
// phase is over when every thread's last operation has completed.
import { OP_KINDS, type OpKind, type WorkloadPhase } from '../scenario/types.js';
import { PagePicker } from './pages.js';
import type { PhaseStats } from './phase-stats.js';
import type { App } from './state.js';
import { isDmirrorOp, runOp, type OpThread } from './workload-ops.js';

/**
 * Run the phase; `done()` when it is over, or `done(reason)` at once if it cannot run (a VMA or
 * device it names does not exist, or its mix is empty).
 */
/** Simulated time a thread waits after an operation that took none. */
const THINK_TIME_NS = 1_000;

export function runWorkload(app: App, phase: WorkloadPhase, stats: PhaseStats, done: (failure?: string) => void): void {
  const proc = app.named.get(phase.process);
  if (!proc) return done(`workload ${phase.name}: no process "${phase.process}"`);
  const vmas = phase.vmas ?? [...proc.vmas.keys()];
  const missing = vmas.filter((v) => !proc.vmas.has(v));
  if (vmas.length === 0 || missing.length > 0) return done(`workload ${phase.name}: no VMA ${missing.length ? `"${missing.join('", "')}"` : 'to touch'} in ${phase.process}`);
  // The mix in OP_KINDS order (not the object's), so that the draw never depends on key order.
  const mix = OP_KINDS.flatMap((k): [OpKind, number][] => ((phase.mix[k] ?? 0) > 0 ? [[k, phase.mix[k]!]] : []));
  const total = mix.reduce((s, [, w]) => s + w, 0);
  if (!(total > 0)) return done(`workload ${phase.name}: empty mix`);
  // dio_ operations go to the phase's device if it is an nvme, else the first nvme device (none: each
  // counts an ENOENT error, as rdma operations without an MR do).
  const named = phase.device !== undefined ? app.device(phase.device) : undefined;
  const nvme = named?.kind === 'nvme' ? named.id : app.scenario.devices.find((d) => d.kind === 'nvme')?.id;
  const device = named?.kind === 'nvme' ? app.dmirrors()[0] : (phase.device ?? app.dmirrors()[0]);
  if (mix.some(([k]) => isDmirrorOp(k)) && (device === undefined || !app.device(device))) {
    return done(`workload ${phase.name}: dmirror operations but no device${device === undefined ? '' : ` "${device}"`}`);
  }

  const startNs = app.ctx.now();
  let issued = 0;
  let running = phase.threads;
  const over = () =>
    app.ending || proc.exited || (phase.ops !== undefined && issued >= phase.ops) || (phase.duration !== undefined && app.ctx.now() - startNs >= phase.duration);

  /** An operation kind drawn by weight. */
  const draw = (): OpKind => {
    let r = app.ctx.rng.next() * total;
    for (const [k, w] of mix) if ((r -= w) < 0) return k;
    return mix[mix.length - 1][0];
  };

  const thread = (t: OpThread): void => {
    if (over()) {
      if (--running === 0) done();
      return;
    }
    issued++;
    const kind = draw();
    stats.op(kind);
    const startedNs = app.ctx.now();
    // An operation that took no simulated time (a scan with nothing to do, an access refused at
    // once) is followed by a short think time, or a duration-bound phase would spin at one instant.
    runOp(t, kind, () => (app.ctx.now() > startedNs ? thread(t) : app.io.sleep(THINK_TIME_NS, () => thread(t))));
  };

  if (running <= 0) return done();
  for (let i = 0; i < phase.threads; i++) {
    thread({
      app, proc, vmas, device, picker: new PagePicker(phase, () => app.ctx.rng), stats, index: i,
      gpu: { touch: phase.gpuTouch, durationNs: phase.gpuJob, write: phase.gpuWrite, queue: phase.gpuQueue },
      rdma: { pages: phase.rdmaPages, advice: phase.rdmaAdvice, flush: phase.rdmaFlush },
      dio: { device: nvme, pages: phase.dioPages },
    });
  }
}
