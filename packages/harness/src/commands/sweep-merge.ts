// `svmsim sweep-merge DIR`: the shards of one sweep added up into what one sweep of all the seeds
// prints (the same summary line, failing seeds and replay commands, the same exit codes), with
// the shards that are not there named: their seeds were not run, so the sweep proves nothing of them.
import { UsageError } from '../run/actors.js';
import { readShardFiles, shardSeeds, type ShardFile } from './sweep-shard.js';
import { MAX_FAILED_KEPT, printSweep, sweepExitCode, type SweepResult } from './sweep-result.js';

export interface SweepMergeOptions {
  json: boolean;
}

/** The shard indexes listed in a message: the first few, then how many more. */
const MISSING_LISTED = 20;

export async function sweepMergeCommand(dir: string, o: SweepMergeOptions): Promise<number> {
  const files = readShardFiles(dir);
  const first = files[0].shard;
  const same = (f: ShardFile) =>
    f.source === first.source && f.scenarioSha256 === first.scenarioSha256 && JSON.stringify(f.policies) === JSON.stringify(first.policies) &&
    f.seeds.from === first.seeds.from && f.seeds.to === first.seeds.to && f.shard.count === first.shard.count && f.svmsim === first.svmsim;
  for (const { file, shard } of files) {
    if (!same(shard)) {
      throw new UsageError(
        `${file}: not a shard of the same sweep as ${files[0].file} (${describe(shard)} vs ${describe(first)}); put each sweep's shards in a directory of its own`,
      );
    }
    const share = shardSeeds(first.seeds.from, first.seeds.to, shard.shard);
    if (share.from !== shard.shard.from || share.to !== shard.shard.to) throw new UsageError(`${file}: shard ${shard.shard.index} of ${shard.shard.count} ran seeds ${shard.shard.from}..${shard.shard.to}, not its share ${share.from}..${share.to}`);
  }
  const have = new Set(files.map((f) => f.shard.shard.index));
  const missing: number[] = [];
  for (let k = 1; k <= first.shard.count; k++) if (!have.has(k)) missing.push(k);
  const failed = files.flatMap((f) => f.shard.failed);
  const kept = failed.slice(0, MAX_FAILED_KEPT);
  const result: SweepResult = {
    source: first.source,
    scenario: first.scenario,
    policies: first.policies,
    from: first.seeds.from,
    to: first.seeds.to,
    runs: files.reduce((n, f) => n + f.shard.runs, 0),
    failed: kept,
    failedDropped: failed.length - kept.length + files.reduce((n, f) => n + f.shard.failedDropped, 0),
  };
  if (missing.length > 0) {
    const seeds = missing.reduce((n, k) => {
      const s = shardSeeds(first.seeds.from, first.seeds.to, { index: k, count: first.shard.count });
      return n + Math.max(0, s.to - s.from + 1);
    }, 0);
    const list = missing.slice(0, MISSING_LISTED).join(', ') + (missing.length > MISSING_LISTED ? ` and ${missing.length - MISSING_LISTED} more` : '');
    result.missing = { seeds, why: `shard${missing.length === 1 ? '' : 's'} ${list} of ${first.shard.count} left no results in ${dir}` };
  }
  printSweep(result, o.json);
  return sweepExitCode(result);
}

function describe(f: ShardFile): string {
  const pol = Object.entries(f.policies).map(([d, p]) => `${d}=${p}`).join(',');
  return `${f.source}${pol ? ` ${pol}` : ''} seeds ${f.seeds.from}..${f.seeds.to} in ${f.shard.count} shards, svmsim ${f.svmsim}`;
}
