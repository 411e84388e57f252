// Actors that misbehave on purpose, for the tests of crash, exit, hang and timeout handling.
import type { Actor } from '../types.js';

export interface FaultyConfig {
  /** What to do on the first message: throw, exit the thread, never answer, or spin forever. */
  mode: 'throw' | 'exit' | 'silent' | 'spin';
}

export function createFaulty(config: unknown): Actor {
  const cfg = config as FaultyConfig;
  let received = 0;
  return {
    receive(env) {
      received++;
      switch (cfg.mode) {
        case 'throw':
          throw new Error(`planted failure on '${env.msg.type}'`);
        case 'exit':
          process.exit(7);
          break;
        case 'silent':
          return;
        case 'spin':
          for (;;);
      }
    },
    summary: () => ({ received }),
  };
}
