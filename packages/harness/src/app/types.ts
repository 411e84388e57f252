// The process actor `app`: its configuration and the summary it returns at the end of a run.
import type { FinalPage } from '@svmsim/kernel-mm/checker';
import type { Phase, Scenario, StepResult } from '../scenario/types.js';

/** createApp's config: a scenario already validated and normalized (defaults filled, times in ns). */
export interface AppConfig {
  scenario: Scenario;
  /**
   * The run's seed, for the record only: the operations are drawn from ctx.rng, which the scheduler
   * seeds (per run and actor id).
   */
  seed?: number;
}

/** One phase as it ran. */
export interface PhaseSummary {
  name: string;
  kind: Phase['kind'];
  /** Operations issued (workload) or action steps run, those of fork children included (script). */
  ops: number;
  /** Per operation kind (OP_KINDS names; script actions likewise, plus `mmap`, `exit`, `unpin`, `sleep`). */
  counts: Record<string, number>;
  /** Per "kind ERRNO" (e.g. "store EFAULT"): requests of that operation answered with that error. */
  errors: Record<string, number>;
  /** Simulated time from the phase's start to the completion of its last operation. */
  durationNs: number;
  /** Each rdma device's counters (its summary's figures) read when the phase ended. */
  counters?: Record<string, Record<string, number>>;
  /** Pages migrate_pages operations asked for and migration left where they were (pinned, locked, not present). */
  migratePagesLeft?: number;
}

/** How far the run got: `done` once the end-of-run protocol (drain, dump, device memory) completed. */
export type AppState = 'setup' | 'phases' | 'drain' | 'dump' | 'devmem' | 'done' | 'failed';

export interface AppSummary {
  phases: PhaseSummary[];
  /** Every script step's outcome, in script order (a group's steps in their order, a fork's child steps after it). */
  steps: StepResult[];
  /** Unmet expectations, summed over every step (one per failure line). */
  expectFailures: number;
  /** mm's dump with device pages resolved: what checkTrace compares its model with. */
  /** Present only when the run ended cleanly (state 'done'). */
  finalPages?: FinalPage[];
  /** Scenario process name → pid. */
  pids: Record<string, number>;
  /** "process.vma" → start address, for the scenario's VMAs and those script steps mapped. */
  vmas: Record<string, number>;
  /** Not in the brief's list: how far the run got (the CLI tells a clean end from a stopped one). */
  state: AppState;
}
