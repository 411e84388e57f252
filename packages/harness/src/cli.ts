#!/usr/bin/env node
// svmsim — the executable: cli-main.ts is the command line. Exit codes: 0 ok, 1 an invariant was
// violated (or an expect unmet), 2 bad usage or input, 3 the run failed (an actor crashed or hung).
import { main } from './cli-main.js';

// A closed pipe (`svmsim … | head`) ends quietly; any other failure to write stdout is one line.
process.stdout.on('error', (e: NodeJS.ErrnoException) => {
  if (e.code !== 'EPIPE') process.stderr.write(`svmsim: cannot write the output: ${e.message}\n`);
  process.exit(e.code === 'EPIPE' ? 0 : 3);
});

process.exitCode = await main(process.argv);
