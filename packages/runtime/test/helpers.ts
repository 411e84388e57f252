import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { ActorSpec } from '@svmsim/runtime';

/** The compiled module of an example actor: workers load JavaScript, so tests use dist/. */
export function example(file: string): string {
  return fileURLToPath(new URL(`../dist/examples/${file}.js`, import.meta.url));
}

export function spec(id: string, file: string, exportName: string, config?: unknown): ActorSpec {
  return { id, module: example(file), exportName, config };
}

export function tempDir(prefix: string): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), `svmsim-${prefix}-`));
}

export function echoPair(count: number, window = 1, timeoutNs?: number): ActorSpec[] {
  return [
    spec('client', 'echo', 'createEchoClient', { server: 'server', count, window, timeoutNs }),
    spec('server', 'echo', 'createEchoServer'),
  ];
}

export function sequencePair(senders: number, count: number, chunk = 1): ActorSpec[] {
  const specs: ActorSpec[] = [spec('checker', 'sequence', 'createSequenceChecker', { senders })];
  for (let i = 0; i < senders; i++) specs.push(spec(`sender${i}`, 'sequence', 'createSequenceSender', { to: 'checker', count, chunk }));
  return specs;
}
