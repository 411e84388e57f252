// `svmsim analyze TRACE`: the summary of a trace (analysis/summary.ts), text or --json.
import { readModel } from '../analysis/model.js';
import { summarize } from '../analysis/summary.js';
import { analysisText } from '../analysis/summary-text.js';
import { EXIT_OK } from './common.js';
import { traceOptions, type TraceCommandOptions } from './trace-options.js';

export interface AnalyzeOptions extends TraceCommandOptions {
  json: boolean;
  top: string;
  hist: boolean;
}

export async function analyzeCommand(target: string, o: AnalyzeOptions): Promise<number> {
  const { model: modelOptions, top } = traceOptions(o);
  const run = readModel(target, modelOptions);
  const a = summarize(target, run, top);
  process.stdout.write(o.json ? JSON.stringify(a, null, 2) + '\n' : analysisText(a, { hist: o.hist }));
  return EXIT_OK;
}
