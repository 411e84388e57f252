// A script phase: steps in order, each waiting for the previous one, as a kernel selftest is
// written. A `group` issues its steps at once and waits for all of them. A `fork` step forks, runs
// its nested steps (groups too) in the child (after the fork returned, with the child's pid),
// closes the child's device files and exits the child (unless a step did), then completes: the
// parent waits for the child, as a selftest's waitpid. With `wait: false` the fork step completes
// at once and the child, named `child`, runs on beside the parent; after its steps it stays alive
// (a selftest child looping until it is killed) until a `kill` step (SIGKILL: it stops after the
// step it is in and exits) or a `wait` step (it exits after its steps: waitpid); both complete
// once the child has exited, and the phase's end stops any child still running. Every action
// step yields a StepResult, in script order (its slot is taken when it starts); an unmet
// expectation is recorded, and the script goes on. Once the run is ending no new step starts.
import { EINVAL, type Exit, type Fork } from '@svmsim/kernel-mm';
import type { ActionStep, ScriptPhase, Step } from '../scenario/types.js';
import { actionKind, runAction } from './actions.js';
import { closeAll } from './device-files.js';
import { unmet, type Got } from './expectations.js';
import type { PhaseStats } from './phase-stats.js';
import type { App, Proc, RunningChild } from './state.js';

interface ScriptRun {
  app: App;
  phase: ScriptPhase;
  stats: PhaseStats;
}

/** Run the phase; `done()` when its last step completed, `done(reason)` at once if it cannot run. */
export function runScript(app: App, phase: ScriptPhase, stats: PhaseStats, done: (failure?: string) => void): void {
  const proc = app.named.get(phase.process);
  if (!proc) return done(`script ${phase.name}: no process "${phase.process}"`);
  const run = { app, phase, stats };
  runSteps(run, proc, phase.steps, '', () => stopChildren(run, proc, () => done()));
}

/** `steps` one after another in `proc`; step names are reported as prefix + name. `stop` ends them early (a killed child). */
function runSteps(run: ScriptRun, proc: Proc, steps: Step[], prefix: string, done: () => void, stop: () => boolean = () => false): void {
  const next = (i: number): void => {
    if (i < steps.length && (run.app.ending || stop())) notRun(run, steps.slice(i), prefix, !run.app.ending);
    if (i === steps.length || run.app.ending || stop()) return done();
    const s = steps[i];
    if ('group' in s) {
      let left = s.group.length;
      if (left === 0) return next(i + 1);
      for (const a of s.group) runStep(run, proc, a, `${prefix}${s.name}/`, () => --left === 0 && next(i + 1));
      return;
    }
    runStep(run, proc, s, prefix, () => next(i + 1));
  };
  next(0);
}

/** A whole script phase the run ended before. */
export function recordNotRun(app: App, phase: ScriptPhase): void {
  notRun({ app, phase, stats: undefined as never }, phase.steps, '');
}

/** Steps the run ended before: each is a failure, so that a cut-short script never passes (a killed child's are only listed). */
function notRun(run: ScriptRun, steps: Step[], prefix: string, killed = false): void {
  for (const s of steps) {
    const members = 'group' in s ? s.group.map((a) => ({ name: `${prefix}${s.name}/${a.name}` })) : [{ name: prefix + s.name }];
    for (const m of members) run.app.steps.push({ phase: run.phase.name, step: m.name, got: {}, failures: killed ? [] : ['not run: the run ended (the scenario duration) before this step'] });
  }
}

function runStep(run: ScriptRun, proc: Proc, step: ActionStep, prefix: string, done: () => void): void {
  const d = step.delay;
  if (d !== undefined && d.max > 0) {
    const ns = d.min + (d.max > d.min ? run.app.ctx.rng.int(d.max - d.min + 1) : 0);
    return run.app.io.sleep(ns, () => startStep(run, proc, step, prefix, done));
  }
  startStep(run, proc, step, prefix, done);
}

function startStep(run: ScriptRun, proc: Proc, step: ActionStep, prefix: string, done: () => void): void {
  const { app, phase, stats } = run;
  const name = prefix + step.name;
  const slot = app.steps.length;
  app.steps.push({ phase: phase.name, step: name, got: {}, failures: ['did not complete'] });
  const record = (got: Got): void => {
    const failures = unmet(step.expect, got);
    app.steps[slot] = { phase: phase.name, step: name, got, failures };
    app.trace('app_step', { phase: phase.name, step: name, pid: proc.pid, ret: got.ret, failures: failures.length });
  };
  const a = step.action;
  stats.op(actionKind(a));
  if (a.op === 'kill' || a.op === 'wait') {
    const c = proc.children.get(a.child);
    if (!c) {
      record({ ret: EINVAL, error: `no running child "${a.child}" of ${proc.name}` });
      return done();
    }
    proc.children.delete(a.child);
    if (a.op === 'kill') c.stopping = true;
    return whenExited(run, c, () => {
      record({ ret: 0, pid: c.proc.pid });
      done();
    });
  }
  if (a.op !== 'fork') {
    return runAction(app, proc, a, stats, (got) => {
      record(got);
      done();
    });
  }
  app.io.call(app.mm, { type: 'fork', pid: proc.pid } satisfies Fork, (r) => {
    stats.result('fork', r.ret);
    if (r.ret < 0) {
      record({ ret: r.ret });
      return done();
    }
    record({ ret: 0, pid: r.ret });
    const child = app.register(proc.child(r.ret));
    if (a.wait !== false) return runSteps(run, child, a.steps, `${name}/`, () => stopChildren(run, child, () => endChild(run, child, done)));
    // Left running: the parent goes on now.
    const c: RunningChild = { proc: child, stepsDone: false, stopping: false, onExit: [], exiting: false, exited: false };
    proc.children.set(a.child!, c);
    runSteps(run, child, a.steps, `${name}/`, () => {
      c.stepsDone = true;
      if (c.stopping || c.onExit.length > 0) exitRunning(run, c);
    }, () => c.stopping);
    done();
  });
}

/** `then` once the running child has exited; a child whose steps are done exits now, one still in them after its last (or, stopping, its current) step. */
function whenExited(run: ScriptRun, c: RunningChild, then: () => void): void {
  if (c.exited) return then();
  c.onExit.push(then);
  if (c.stepsDone) exitRunning(run, c);
}

function exitRunning(run: ScriptRun, c: RunningChild): void {
  if (c.exiting) return;
  c.exiting = true;
  stopChildren(run, c.proc, () => endChild(run, c.proc, () => {
    c.exited = true;
    for (const f of c.onExit.splice(0)) f();
  }));
}

/** Stop (SIGKILL) every child `proc` left running: the end of its steps or phase; one after another. */
function stopChildren(run: ScriptRun, proc: Proc, done: () => void): void {
  const left = [...proc.children.values()];
  proc.children.clear();
  for (const c of left) c.stopping = true;
  const next = (i: number): void => (i === left.length ? done() : whenExited(run, left[i], () => next(i + 1)));
  next(0);
}

/** The child's end: close its device files, exit (unless a step exited it). */
function endChild(run: ScriptRun, child: Proc, done: () => void): void {
  const { app, stats } = run;
  closeAll(app, child, () => {
    if (child.exited) return done();
    app.io.call(app.mm, { type: 'exit', pid: child.pid } satisfies Exit, (r) => {
      stats.result('fork', r.ret);
      child.exited = true;
      done();
    });
  });
}
