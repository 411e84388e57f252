// What a phase counts: operations per kind and errors per kind and errno; its summary line.
import type { Phase } from '../scenario/types.js';
import { errnoName } from './mapping.js';
import type { PhaseSummary } from './types.js';

export class PhaseStats {
  readonly summary: PhaseSummary;
  private readonly startNs: number;

  constructor(phase: Phase, nowNs: number) {
    this.summary = { name: phase.name, kind: phase.kind, ops: 0, counts: {}, errors: {}, durationNs: 0 };
    this.startNs = nowNs;
  }

  /** An operation (workload) or action step (script) of `kind` starts. */
  op(kind: string): void {
    this.summary.ops++;
    this.summary.counts[kind] = (this.summary.counts[kind] ?? 0) + 1;
  }

  /** A request made for an operation of `kind` came back with `ret`: counted if an error. */
  result(kind: string, ret: number): void {
    if (!(ret < 0)) return;
    const key = `${kind} ${errnoName(ret)}`;
    this.summary.errors[key] = (this.summary.errors[key] ?? 0) + 1;
  }

  /** A work completion of an operation of `kind` came back with `status`: counted if an error. */
  status(kind: string, status: string): void {
    if (status === 'IBV_WC_SUCCESS') return;
    const key = `${kind} ${status}`;
    this.summary.errors[key] = (this.summary.errors[key] ?? 0) + 1;
  }

  finish(nowNs: number): void {
    this.summary.durationNs = nowNs - this.startNs;
  }
}
