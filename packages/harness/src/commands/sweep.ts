// `svmsim sweep`: deterministic runs of one scenario over a range of seeds; prints each failing seed
// with the exact command that replays it. Exit 1 if any failed. Three ways to run the seeds:
//   here, on a piscina pool (--jobs threads);
//   as shard K of N of a batch job (--shard, --out DIR: sweep-shard.ts), merged by sweep-merge;
//   on a BullMQ queue (--queue redis://…: sweep-queue.ts), run by `svmsim worker` anywhere.
// Ctrl-C stops the workers and prints the seeds done so far (exit 130).
import os from 'node:os';
import { performance } from 'node:perf_hooks';
import { UsageError, applyPolicies } from '../run/actors.js';
import { parseScenario, readScenarioText } from '../scenario/load.js';
import { parseSeedRange, wholeNumber, withProfile } from './common.js';
import { EXIT_INTERRUPTED, onInterrupt } from './interrupt.js';
import { progressBar } from './progress.js';
import { DEFAULT_QUEUE_NAME, parseRedisUrl } from './redis-url.js';
import { runSeeds, seedPool } from './sweep-pool.js';
import { defaultChunk, MAX_CHUNK_SEEDS } from './sweep-queue-protocol.js';
import { runQueuedSweep } from './sweep-queue.js';
import { printSweep, sweepExitCode, SweepTally, type SweepResult } from './sweep-result.js';
import { resolveShard, scenarioSha256, SHARD_FORMAT, SHARD_FORMAT_VERSION, shardSeeds, writeShardFile } from './sweep-shard.js';
import { SVMSIM_VERSION } from './version.js';

export interface SweepOptions {
  seeds: string;
  jobs?: number;
  policy: Record<string, string>;
  json: boolean;
  /** `K/N`, or `N` with the index from the environment. */
  shard?: string;
  out?: string;
  queue?: string;
  queueName?: string;
  chunk?: string;
  /** --profile: the GPU cost profile instead of the scenario's machine.profile. */
  profile?: string;
}

export async function sweepCommand(source: string, o: SweepOptions): Promise<number> {
  const { from, to } = parseSeedRange(o.seeds);
  const text = readScenarioText(source);
  const s = withProfile(applyPolicies(parseScenario(text.text, text.sourceName), o.policy), o.profile); // validates the scenario, policies and profile before any worker starts
  const policies = Object.fromEntries(s.devices.map((d) => [d.id, d.policy]));
  // The environment names a shard only for a sweep that writes shard results: a plain sweep run
  // inside a Slurm array task is still a plain sweep.
  const shard = o.shard !== undefined || o.out !== undefined ? (resolveShard(o.shard) ?? { index: 1, count: 1 }) : undefined;
  if (o.queue !== undefined && (shard !== undefined || o.out !== undefined)) throw new UsageError('--queue: a queued sweep is not also sharded (--shard, --out): its workers share the seeds by themselves');
  if (shard !== undefined && o.out === undefined) throw new UsageError(`--shard ${o.shard ?? `${shard.index}/${shard.count}`}: where do the results go? Add --out DIR (the directory sweep-merge reads)`);
  if (o.queue !== undefined && o.profile !== undefined) throw new UsageError('--profile: not with --queue (queued workers run the scenario file as it is: set machine.profile in it)');
  if (o.queue === undefined && o.chunk !== undefined) throw new UsageError('--chunk: only with --queue');
  const result: SweepResult = { source, scenario: s.name, policies, from, to, runs: 0, failed: [], failedDropped: 0, ...(o.profile !== undefined && { profile: o.profile }) };
  const interrupt = onInterrupt();
  const t0 = performance.now();
  try {
    let tally: SweepTally;
    let interrupted: boolean;
    if (o.queue !== undefined) {
      const target = parseRedisUrl('--queue', o.queue);
      const chunk = o.chunk === undefined ? defaultChunk(to - from + 1) : wholeNumber('--chunk', o.chunk, 1, MAX_CHUNK_SEEDS);
      const log = (line: string) => process.stderr.write(`${line}\n`);
      ({ tally, interrupted } = await runQueuedSweep({ target, queueName: o.queueName ?? DEFAULT_QUEUE_NAME, scenario: text, policies: o.policy, from, to, chunk, signal: interrupt.signal, log }));
    } else {
      const share = shard === undefined ? { from, to } : shardSeeds(from, to, shard);
      tally = new SweepTally(from, to);
      const pool = seedPool(o.jobs ?? Math.max(1, os.availableParallelism()));
      const bar = progressBar(Math.max(0, share.to - share.from + 1), 'seeds');
      try {
        ({ interrupted } = await runSeeds(pool, text, o.policy, share, (r) => tally.add(r) && bar.tick(`${tally.failing} failing`), interrupt.signal, o.profile));
      } finally {
        bar.done();
        await pool.close();
      }
      if (shard !== undefined && !interrupted) {
        const file = writeShardFile(o.out!, {
          format: SHARD_FORMAT, formatVersion: SHARD_FORMAT_VERSION, svmsim: SVMSIM_VERSION, source, scenario: s.name, scenarioSha256: scenarioSha256(text), policies,
          seeds: { from, to }, shard: { ...shard, ...share }, runs: tally.runs, failed: tally.failed, failedDropped: tally.failedDropped, wallMs: Math.round(performance.now() - t0),
        });
        if (!o.json) process.stdout.write(`shard ${shard.index} of ${shard.count}: seeds ${share.from}..${share.to}, ${tally.runs} runs, ${tally.failing} failing → ${file}\n`);
        return sweepExitCode({ ...result, from: share.from, to: share.to, runs: tally.runs, failed: tally.failed, failedDropped: tally.failedDropped });
      }
      if (shard !== undefined) {
        result.from = share.from;
        result.to = share.to;
      }
    }
    Object.assign(result, { runs: tally.runs, failed: tally.failed, failedDropped: tally.failedDropped });
    const expected = result.to - result.from + 1;
    if (interrupted) result.missing = { seeds: expected - tally.runs, why: `interrupted (Ctrl-C) after ${tally.runs} of ${expected}${shard ? '; no shard results file was written' : ''}` };
    printSweep(result, o.json);
    return interrupted ? EXIT_INTERRUPTED : sweepExitCode(result);
  } finally {
    interrupt.dispose();
  }
}
