// `svmsim check TRACE`: the invariant checker over a trace alone (analysis/check.ts); exit 1 on a violation.
import { checkTraceDir } from '../analysis/check.js';
import { checkJson, checkText } from '../analysis/check-text.js';
import { EXIT_OK, EXIT_VIOLATION } from './common.js';
import { traceOptions, type TraceCommandOptions } from './trace-options.js';

export async function checkCommand(target: string, o: TraceCommandOptions & { json: boolean }): Promise<number> {
  const c = checkTraceDir(target, traceOptions(o).model);
  process.stdout.write(o.json ? JSON.stringify(checkJson(target, c), null, 2) + '\n' : checkText(target, c));
  return c.ok ? EXIT_OK : EXIT_VIOLATION;
}
