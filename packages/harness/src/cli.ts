#!/usr/bin/env node
// svmsim — the command line. Until the harness lands, it runs a short thread-mode demo of the
// actor runtime and prints its summary.
import { runDemo } from './demo.js';

const code = await runDemo(process.argv.slice(2));
process.exitCode = code;
