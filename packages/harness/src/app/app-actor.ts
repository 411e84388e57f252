// `app`: the process actor. Its CPU threads run a scenario (scenario/types.ts): setup (files,
// processes, VMAs, device files), then the phases one after another (workload.ts, script.ts), then
// the end-of-run protocol of kernel-mm's mirror stress: wait for what is in flight, dump, resolve
// device pages, stopRun. The run ends after the last phase or at scenario.duration of simulated
// time, whichever first (at the deadline nothing new starts, sleeps are cut short, requests in
// flight are waited for). Setup failures, a phase that cannot run, a request_timeout or an
// actor_died end the run at once with stopRun and a reason naming them — except the death of a
// device a kill fault names (run/faults.ts): then the phases stop, the requests it left
// unanswered fail with -EIO, and the end of the run (drain, free, dump) goes on without it.
//
// Config: { scenario, seed? } (AppConfig): the scenario validated and normalized. Actors it talks
// to: `mm`, and each device by its DeviceSpec id.
import type { FinalPage } from '@svmsim/kernel-mm/checker';
import type { Actor, ActorDied, ActorId, Ctx, Incoming, Message, RequestTimeout } from '@svmsim/runtime';
import type { Phase } from '../scenario/types.js';

/** -EIO: what a request to a dead device returns. */
const EIO = -5;
import { dumpFinalPages } from './end-of-run.js';
import { readRdmaCounters } from './rdma.js';
import { PhaseStats } from './phase-stats.js';
import { recordNotRun, runScript } from './script.js';
import { runSetup } from './setup.js';
import { App } from './state.js';
import type { AppConfig, AppState, AppSummary } from './types.js';
import { runWorkload } from './workload.js';

export type { AppConfig, AppSummary, PhaseSummary } from './types.js';

/** The timer that ends the run at scenario.duration. */
const DEADLINE = 'app_deadline';

export function createApp(config: unknown, _id: ActorId): Actor<Message> {
  const cfg = validateConfig(config);
  const app = new App(cfg.scenario);
  const phases = cfg.scenario.phases;
  let state: AppState = 'setup';
  let stopped = false;
  let deadline: number | undefined;
  let endReason = '';
  let finalPages: FinalPage[] = [];

  const stop = (reason: string): void => {
    if (stopped) return;
    stopped = true;
    app.ctx.stopRun(reason);
  };
  const fail = (reason: string): void => {
    state = 'failed';
    stop(reason);
  };

  /** Nothing new starts from now on; the end-of-run protocol follows once nothing is in flight. */
  const beginEnd = (reason: string): void => {
    if (app.ending) return;
    if (state === 'setup') return fail(`the scenario's duration ran out before its setup finished (${reason})`);
    app.ending = true;
    endReason = reason;
    if (state === 'phases') state = 'drain';
    if (deadline !== undefined) app.ctx.cancel(deadline);
    app.trace('app_ending', { reason });
    app.io.wakeAll();
  };

  const runPhase = (i: number): void => {
    if (app.ending) {
      // The deadline came while the previous phase finished: later scripts' steps did not run.
      for (const p of phases.slice(i)) if (p.kind === 'script') recordNotRun(app, p);
      return;
    }
    if (i === phases.length) return beginEnd('phases complete');
    const phase: Phase = phases[i];
    const stats = new PhaseStats(phase, app.ctx.now());
    app.phases.push(stats.summary);
    app.trace('app_phase', { phase: phase.name, kind: phase.kind });
    const finished = (failure?: string): void => {
      stats.finish(app.ctx.now());
      if (failure !== undefined) return fail(failure);
      // The NICs' counters at the phase's end (a phase's own figures are the difference with the last).
      readRdmaCounters(app, (counters) => {
        if (counters) stats.summary.counters = counters;
        runPhase(i + 1);
      });
    };
    if (phase.kind === 'workload') runWorkload(app, phase, stats, finished);
    else runScript(app, phase, stats, finished);
  };

  /** After every delivery: once draining and idle, dump and stop. */
  const checkDrain = (): void => {
    if (state !== 'drain' || !app.io.idle) return;
    dumpFinalPages(
      app,
      (s) => (state = s),
      (pages) => {
        finalPages = pages;
        // The final memory, for `svmsim check` to compare its model with from the trace alone;
        // taken after every BO, MR and QP was freed (end-of-run.ts): every pin must be back by now.
        if (app.ctx.tracing) {
          app.ctx.trace('final_pages', {
            buffersFreed: true,
            pid: Float64Array.from(pages, (p) => p.pid), addr: Float64Array.from(pages, (p) => p.addr), value: Float64Array.from(pages, (p) => p.value),
          });
        }
        state = 'done';
        stop(`done (${endReason})`);
      },
      fail,
    );
  };

  return {
    start(ctx: Ctx<Message>) {
      app.ctx = ctx;
      const d = cfg.scenario.duration;
      if (d > 0 && Number.isFinite(d)) deadline = ctx.after(d, { type: DEADLINE });
      runSetup(app, (failure) => {
        if (failure !== undefined) return fail(failure);
        state = 'phases';
        runPhase(0);
      });
      checkDrain();
    },

    receive(env: Incoming<Message>, ctx: Ctx<Message>) {
      app.ctx = ctx;
      if (stopped) return;
      const m = env.msg;
      switch (m.type) {
        case 'request_timeout': {
          const t = m as RequestTimeout;
          return fail(`request_timeout: ${t.to} did not answer ${t.requestType} within ${t.timeoutNs} ns`);
        }
        case 'actor_died': {
          const d = m as ActorDied;
          if (!app.killable(d.actor)) return fail(`actor_died: ${d.actor} died (${d.error})`);
          if (env.replyTo !== 0) {
            // A request the dead device will never answer: it fails as an I/O error would.
            if (!app.io.resume({ ...env, msg: { ...d, ret: EIO } as Message })) app.trace('warn', { what: `app: actor_died for a request not waited for, from ${d.actor}` });
            break;
          }
          app.deadDevices.add(d.actor);
          app.trace('app_device_died', { device: d.actor, error: d.error });
          beginEnd(`${d.actor} died (${d.error})`);
          break;
        }
        case 'signal': {
          // SIGKILL from the OOM killer: mm exits the process (its later requests fail with ESRCH).
          const pid = (m as unknown as { pid: number }).pid;
          const proc = app.procs.get(pid);
          if (proc) proc.exited = true;
          app.trace('app_killed', { pid });
          break;
        }
        case DEADLINE:
          if (env.id === deadline) {
            deadline = undefined;
            beginEnd('scenario duration reached');
          }
          break;
        default:
          if (!app.io.resume(env)) app.trace('warn', { what: `app: unexpected ${m.type} from ${env.from}` });
      }
      checkDrain();
    },

    summary() {
      const pids: Record<string, number> = {};
      const vmas: Record<string, number> = {};
      for (const [name, p] of app.named) {
        pids[name] = p.pid;
        for (const [v, rec] of p.vmas) vmas[`${name}.${v}`] = rec.addr;
      }
      const s: AppSummary = {
        phases: app.phases,
        steps: app.steps,
        expectFailures: app.steps.reduce((n, st) => n + st.failures.length, 0),
        // Only a run that ended cleanly has final contents to check; absent otherwise.
        ...(state === 'done' ? { finalPages } : {}),
        pids,
        vmas,
        state,
      };
      return { ...s };
    },
  };
}

function validateConfig(config: unknown): AppConfig {
  const c = (config ?? {}) as Partial<AppConfig>;
  const s = c.scenario;
  if (!s || !Array.isArray(s.phases) || !Array.isArray(s.processes) || !Array.isArray(s.files) || !Array.isArray(s.devices)) {
    throw new Error('app config: { scenario } must be a validated Scenario (files, devices, processes, phases)');
  }
  return c as AppConfig;
}
