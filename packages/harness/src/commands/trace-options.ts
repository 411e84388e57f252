// The options every trace command shares: the thrashing parameters (UVM's), hung_task_timeout_secs,
// how many pages to list. A bad value is a usage error naming the flag (exit 2).
import { HUNG_TASK_DEFAULTS } from '../analysis/hung-tasks.js';
import { MODEL_DEFAULTS, type ModelOptions } from '../analysis/model.js';
import { THRASHING_THRESHOLD_MAX, UVM_THRASHING } from '../analysis/thrashing.js';
import { UsageError } from '../run/actors.js';
import { durationOption, wholeNumber } from './common.js';

export interface TraceCommandOptions {
  threshold?: string;
  lapse?: string;
  hungTaskTimeout?: string;
  top?: string;
}

/** Pages listed by default, and at most. */
export const TOP_PAGES = 10;
const TOP_PAGES_MAX = 10_000;

export function traceOptions(o: TraceCommandOptions): { model: Partial<ModelOptions>; top: number } {
  const threshold = o.threshold === undefined ? UVM_THRASHING.threshold : wholeNumber('--threshold', o.threshold, 1, THRASHING_THRESHOLD_MAX, ` (UVM's counter has 3 bits; its default is ${UVM_THRASHING.threshold})`);
  const lapseNs = o.lapse === undefined ? UVM_THRASHING.lapseNs : durationOption(o.lapse, '--lapse');
  if (!(lapseNs > 0)) throw new UsageError(`--lapse ${o.lapse}: expected a positive time, e.g. 500us`);
  const timeoutNs = o.hungTaskTimeout === undefined ? HUNG_TASK_DEFAULTS.timeoutNs : durationOption(o.hungTaskTimeout, '--hung-task-timeout');
  if (!(timeoutNs > 0)) throw new UsageError(`--hung-task-timeout ${o.hungTaskTimeout}: expected a positive time, e.g. 120s`);
  const top = o.top === undefined ? TOP_PAGES : wholeNumber('--top', o.top, 1, TOP_PAGES_MAX);
  return { model: { ...MODEL_DEFAULTS, thrashing: { threshold, lapseNs }, hungTask: { ...HUNG_TASK_DEFAULTS, timeoutNs } }, top };
}
