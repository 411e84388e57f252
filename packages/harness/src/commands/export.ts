// `svmsim export TRACE --perfetto -o out.json`: Chrome trace-event JSON for Perfetto (analysis/perfetto.ts).
import { traceMarksRequests } from '@svmsim/runtime';
import { readModel } from '../analysis/model.js';
import { PerfettoExporter } from '../analysis/perfetto.js';
import { UsageError } from '../run/actors.js';
import { EXIT_OK, writableOutput } from './common.js';

export async function exportCommand(target: string, o: { perfetto?: boolean; output?: string }): Promise<number> {
  if (!o.perfetto) throw new UsageError('svmsim export: say which format: --perfetto (Chrome trace-event JSON for ui.perfetto.dev)');
  if (!o.output) throw new UsageError('svmsim export: -o FILE is required (where the JSON goes)');
  const exporter = new PerfettoExporter(writableOutput(o.output), traceMarksRequests(target));
  const run = readModel(target, { observer: exporter, collect: 'waits' });
  for (const w of run.read.warnings) process.stderr.write(`svmsim: warning: ${w}\n`);
  const r = exporter.finish({ source: target, lines: run.read.lines, simulatedNs: run.model.tEnd, exporter: 'svmsim export --perfetto' });
  process.stderr.write(`${o.output}: ${r.events} events (${r.slices} slices, ${r.flows} flows) from ${run.read.lines} trace lines; open it at https://ui.perfetto.dev\n`);
  return EXIT_OK;
}
