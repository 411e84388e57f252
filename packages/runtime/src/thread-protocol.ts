// Messages between the ThreadScheduler (main thread) and each actor's worker, over a dedicated
// control MessagePort. Actor-to-actor traffic never goes through here.
//
//   main                         worker
//   run task(ActorTask) ──────►  load actor, open trace
//                       ◄──────  ready (or the task rejects: the module did not load)
//   start{epochMs}      ──────►  actor.start(), then serve its ports
//                       ◄──────  stopRun{reason}        (an actor ended the run)
//                       ◄──────  died{error, during}    (receive threw; the worker stays up)
//   actorDied{actor}    ──────►  answer pending requests on it, tell the actor
//   kill                ──────►  (fault injection) flush the trace, process.exit: the worker really exits
//   stop                ──────►  flush batches and trace
//                       ◄──────  stopped{summary, counters}; the task resolves
import type { MessagePort } from 'node:worker_threads';
import type { FaultPlan } from './faults.js';
import type { ActorId, ActorSpec } from './types.js';

export interface ActorTask {
  spec: ActorSpec;
  seed: number;
  timeScale: number;
  traceFile: string | null;
  control: MessagePort;
  /** One port per other actor, keyed by its id. */
  peers: Record<ActorId, MessagePort>;
  /** The run's fault plan (faults.ts): this worker applies the message faults to what it sends. */
  faults?: FaultPlan;
}

export type ToWorker =
  | { kind: 'start'; epochMs: number }
  | { kind: 'actorDied'; actor: ActorId; error: string }
  | { kind: 'kill'; error: string }
  | { kind: 'stop' };

export interface WorkerCounters {
  sent: number;
  received: number;
  lateReplies: number;
  pendingRequests: number;
  faultDrops: number;
  faultHolds: number;
}

export type FromWorker =
  | { kind: 'ready' }
  | { kind: 'stopRun'; reason: string }
  | { kind: 'died'; error: string; during: string; stack?: string }
  | { kind: 'stopped'; summary: Record<string, unknown>; counters: WorkerCounters; endNs: number };
