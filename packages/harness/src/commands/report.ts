// `svmsim report TRACE -o report.html`: one run's plots and summary as a self-contained HTML page.
import fs from 'node:fs';
import path from 'node:path';
import { renderHtml, runPlots } from '../analysis/html-report.js';
import { readModel } from '../analysis/model.js';
import { summarize } from '../analysis/summary.js';
import { UsageError } from '../run/actors.js';
import { EXIT_OK, writableOutput } from './common.js';
import { traceOptions, type TraceCommandOptions } from './trace-options.js';

export async function reportCommand(target: string, o: TraceCommandOptions & { output?: string }): Promise<number> {
  if (!o.output) throw new UsageError('svmsim report: -o FILE is required (where the HTML page goes)');
  const { model, top } = traceOptions(o);
  writableOutput(o.output);
  const run = readModel(target, model);
  const a = summarize(target, run, Math.max(top, 40));
  const name = path.basename(path.resolve(target));
  fs.writeFileSync(o.output, renderHtml({ title: `svmsim report — ${name}`, subtitle: `${target}: ${a.trace.lines} trace lines`, runs: [{ name, analysis: a, plots: runPlots(run, a) }] }));
  process.stderr.write(`${o.output}: the plots of ${target} (a self-contained page: open it in any browser)\n`);
  return EXIT_OK;
}
