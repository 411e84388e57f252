// A script phase: steps in order, each waiting for the previous one, as a kernel selftest is
// written. A `group` issues its steps at once and waits for all of them. A `fork` step forks, runs
// its nested steps in the child (after the fork returned, with the child's pid), closes the
// child's device files and exits the child (unless a step did), then completes: the parent waits
// for the child, as a selftest's waitpid. Every action step yields a StepResult, in script order
// (its slot is taken when it starts); an unmet expectation is recorded, and the script goes on.
// Once the run is ending no new step starts.
import type { Exit, Fork } from '@svmsim/kernel-mm';
import type { ActionStep, ScriptPhase, Step } from '../scenario/types.js';
import { actionKind, runAction } from './actions.js';
import { closeAll } from './device-files.js';
import { unmet, type Got } from './expectations.js';
import type { PhaseStats } from './phase-stats.js';
import type { App, Proc } from './state.js';

interface ScriptRun {
  app: App;
  phase: ScriptPhase;
  stats: PhaseStats;
}

/** Run the phase; `done()` when its last step completed, `done(reason)` at once if it cannot run. */
export function runScript(app: App, phase: ScriptPhase, stats: PhaseStats, done: (failure?: string) => void): void {
  const proc = app.named.get(phase.process);
  if (!proc) return done(`script ${phase.name}: no process "${phase.process}"`);
  runSteps({ app, phase, stats }, proc, phase.steps, '', () => done());
}

/** `steps` one after another in `proc`; step names are reported as prefix + name. */
function runSteps(run: ScriptRun, proc: Proc, steps: Step[], prefix: string, done: () => void): void {
  const next = (i: number): void => {
    if (i < steps.length && run.app.ending) notRun(run, steps.slice(i), prefix);
    if (i === steps.length || run.app.ending) return done();
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

/** Steps the run ended before: each is a failure, so that a cut-short script never passes. */
function notRun(run: ScriptRun, steps: Step[], prefix: string): void {
  for (const s of steps) {
    const members = 'group' in s ? s.group.map((a) => ({ name: `${prefix}${s.name}/${a.name}` })) : [{ name: prefix + s.name }];
    for (const m of members) run.app.steps.push({ phase: run.phase.name, step: m.name, got: {}, failures: ['not run: the run ended (the scenario duration) before this step'] });
  }
}

function runStep(run: ScriptRun, proc: Proc, step: ActionStep, prefix: string, done: () => void): void {
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
    runSteps(run, child, a.steps, `${name}/`, () => endChild(run, child, done));
  });
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
