// A short thread-mode demo of the runtime: three senders stream numbered messages to a checker and
// an echo client makes round trips, each actor in its own worker thread. It prints what each actor
// did and the trace directory.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { ActorDiedError, RunSetupError, ThreadScheduler, readTrace, type ActorSpec } from '@svmsim/runtime';

const examples = (file: string) => fileURLToPath(import.meta.resolve(`@svmsim/runtime/examples/${file}`));

export async function runDemo(_args: string[]): Promise<number> {
  const traceDir = fs.mkdtempSync(path.join(os.tmpdir(), 'svmsim-demo-'));
  const actors: ActorSpec[] = [
    { id: 'checker', module: examples('sequence'), exportName: 'createSequenceChecker', config: { senders: 3 } },
    ...[0, 1, 2].map((i) => ({ id: `sender${i}`, module: examples('sequence'), exportName: 'createSequenceSender', config: { to: 'checker', count: 20_000, chunk: 200 } })),
    { id: 'client', module: examples('echo'), exportName: 'createEchoClient', config: { server: 'server', count: 1_000_000, window: 4 } },
    { id: 'server', module: examples('echo'), exportName: 'createEchoServer' },
  ];
  process.stdout.write(`svmsim demo — ${actors.length} actors, one worker thread each (svmsim ${'run'} arrives with the harness)\n`);
  const t0 = performance.now();
  try {
    const r = await new ThreadScheduler().run({ actors, seed: 1, traceDir });
    const wallMs = performance.now() - t0;
    for (const [id, s] of Object.entries(r.summaries)) process.stdout.write(`  ${id.padEnd(8)} ${JSON.stringify(s)}\n`);
    const lines = readTrace(traceDir).length;
    process.stdout.write(`ended by ${r.endedBy} (${r.reason}) after ${(r.endNs / 1e6).toFixed(1)} ms simulated, ${wallMs.toFixed(0)} ms wall; ${r.delivered} messages delivered\n`);
    process.stdout.write(`trace: ${traceDir} (${lines} lines)\n`);
    const checker = r.summaries.checker as { outOfOrder: number; received: number };
    return checker.outOfOrder === 0 && checker.received === 60_000 ? 0 : 1;
  } catch (e) {
    if (e instanceof ActorDiedError || e instanceof RunSetupError) {
      process.stderr.write(`svmsim: ${e.message}\n`);
      return 3;
    }
    throw e;
  }
}
