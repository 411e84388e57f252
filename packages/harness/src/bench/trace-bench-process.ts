// The trace bench in a process of its own: run after the other benches in one process, its figures
// came out at half (the JIT's view of the shared decoder and collectors, and the heap, shaped by
// what ran before). The child prints its JSON on stdout; its progress lines pass through stderr.
import { fork } from 'node:child_process';
import { fileURLToPath } from 'node:url';

/** In the child: run the bench and print its figures. */
export async function childMain(): Promise<void> {
  const { traceBench } = await import('./trace-bench.js');
  const { progress } = await import('@svmsim/runtime/bench/index');
  process.stdout.write(JSON.stringify(await traceBench(progress)));
}

export function traceBenchInProcess(): Promise<Record<string, unknown>> {
  return new Promise((resolve, reject) => {
    const child = fork(fileURLToPath(import.meta.url), ['--child'], { stdio: ['ignore', 'pipe', 'inherit', 'ipc'], execArgv: ['--expose-gc'] });
    let out = '';
    child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
    child.on('error', reject);
    child.on('exit', (code) => {
      if (code !== 0) return reject(new Error(`the trace bench's process exited with ${code}`));
      try {
        resolve(JSON.parse(out) as Record<string, unknown>);
      } catch (e) {
        reject(new Error(`the trace bench printed no figures: ${String(e)}`));
      }
    });
  });
}

if (process.argv.includes('--child') && process.argv[1] === fileURLToPath(import.meta.url)) {
  childMain().catch((e: unknown) => {
    process.stderr.write(`trace bench failed: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
    process.exit(1);
  });
}
