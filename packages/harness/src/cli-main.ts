// svmsim — the command line, as a function: `main(argv)` parses and runs one command and returns
// its exit code (cli.ts is the executable that calls it; tests call it with captured output).
// Exit codes: 0 ok, 1 an invariant was violated (or an expect unmet), 2 bad usage or input (one
// line), 3 the run failed (an actor crashed or hung).
import { hmmTestsCommand } from './commands/hmm-tests.js';
import os from 'node:os';
import { Command, CommanderError, Option } from 'commander';
import { collectInject, collectPolicy, EXIT_USAGE, parseJobs, parsePositive, parseSeed, reportError, THREAD_TIME_SCALE } from './commands/common.js';
import { analyzeCommand } from './commands/analyze.js';
import { checkCommand } from './commands/check.js';
import { compareCommand } from './commands/compare.js';
import { reportCommand } from './commands/report.js';
import { exportCommand } from './commands/export.js';
import { collectList, traceCatCommand } from './commands/trace-cat.js';
import { replayCommand } from './commands/replay.js';
import { runCommand } from './commands/run.js';
import { sweepCommand } from './commands/sweep.js';
import { sweepMergeCommand } from './commands/sweep-merge.js';
import { queueWorkerCommand } from './commands/queue-worker.js';
import { DEFAULT_QUEUE_NAME, parseRedisUrl } from './commands/redis-url.js';
import { DEFAULT_LOCK_DURATION_MS, lockDurationOption } from './commands/sweep-queue-protocol.js';
import { listBuiltinScenarios, listReportScenarios } from './scenario/load.js';
import { GPU_COST_PROFILE_NAMES } from '@svmsim/gpu-driver/cost-profiles';

/** Runs one svmsim command line (argv as process.argv: node, script, args…); returns the exit code. */
export async function main(argv: string[]): Promise<number> {
  const program = new Command('svmsim')
    .description('Simulate how Linux keeps device page tables coherent with the CPU page table.')
    .option('--debug', 'print stack traces of internal errors')
    .exitOverride()
    // A usage error is one line, the pointer to --help on it (commander would add a second line).
    .configureOutput({ writeErr: (s) => process.stderr.write(s), outputError: (s, write) => write(`${s.trimEnd()} (svmsim --help lists the commands)\n`) });


  let exitCode = 0;
  const debug = () => Boolean(program.opts().debug);
  const action =
    <A extends unknown[]>(fn: (...args: A) => Promise<number>) =>
    async (...args: A) => {
      exitCode = await fn(...args);
    };

  program
    .command('run')
    .description('run one scenario (a built-in name or a YAML/JSON file) and print its report')
    .argument('<scenario>', 'built-in scenario name or path to a scenario file')
    .option('--policy <dev=policy>', 'device policy, repeatable (e.g. --policy mirror0=unsafe-skip-read-retry)', collectPolicy, {})
    .option('--seed <n>', 'seed (default: the scenario\'s)', parseSeed)
    .addOption(new Option('--deterministic', 'one thread, seeded interleaving, exact virtual time (default)').conflicts('threads'))
    .option('--threads', 'each actor in its own worker thread: real races, wall-clock time')
    .option('--time-scale <x>', `thread mode: simulated ns per wall ns (default: the scenario's timeScale, else ${THREAD_TIME_SCALE}); a message between threads takes tens of µs, so costs of a few µs need a slower clock (1000 runs an hour-long job in seconds)`, (v) => parsePositive('--time-scale', v))
    .option('--duration <time>', 'override the scenario\'s duration (e.g. 50ms)')
    .option('--trace <dir>', 'where the trace and report.json go (default: runs/<time>/<run>)')
    .option('--kernel <era>', 'the kernel era to simulate, overriding machine.kernel: v4.9, v6.6, v6.15, latest')
    .option('--profile <name>', `the GPU cost profile, overriding machine.profile: ${GPU_COST_PROFILE_NAMES.join(', ')} (a gpu's own costs: still win)`)
    .option('--inject <fault>', 'inject a fault, repeatable: kill:DEV@TIME, hang-fence:DEV,job=N[,timeout=T], stop-invalidate-acks:DEV@TIME, delay:from=A,to=B,ns=T[,jitterNs=T], reorder:probability=P[,maxNs=T]', collectInject, [])
    .option('--json', 'print the report as JSON')
    .addHelpText('after', '\nExamples:\n  svmsim run mirror-race\n  svmsim run userptr-walk --inject kill:gpu0@5ms\n  svmsim run mirror-race --policy mirror0=unsafe-skip-read-retry --seed 7\n  svmsim run kswapd-vs-compute --kernel v4.9\n  svmsim run my-scenario.yaml --threads --time-scale 1000 --json\n')
    .action(action((scenario: string, o) => runCommand(scenario, { policy: o.policy, seed: o.seed, threads: Boolean(o.threads), timeScale: o.timeScale, duration: o.duration, trace: o.trace, json: Boolean(o.json), kernel: o.kernel, profile: o.profile, inject: o.inject })));

  program
    .command('compare')
    .description('run scenarios under each policy of their device and print one table per scenario')
    .argument('[scenarios...]', 'scenario names or files (default: every built-in scenario)')
    .option('--policies <list>', 'only these policies, comma-separated (unsafe twins are included only if named)')
    .option('--seed <n>', 'seed for every run (default: each scenario\'s)', parseSeed)
    .option('--threads', 'thread mode instead of deterministic')
    .option('--time-scale <x>', `thread mode: simulated ns per wall ns (default: the scenario's timeScale, else ${THREAD_TIME_SCALE}); a message between threads takes tens of µs, so costs of a few µs need a slower clock (1000 runs an hour-long job in seconds)`, (v) => parsePositive('--time-scale', v))
    .option('--json', 'print every report as JSON')
    .option('--html <dir>', 'also write DIR/index.html: the policies side by side and every run\'s plots')
    .option('--profile <names>', `run each policy under each of these GPU cost profiles, one section per profile, then which policy wins each scenario's headline figure under each (comma-separated: ${GPU_COST_PROFILE_NAMES.join(', ')})`)
    .option('--kernel <eras>', 'run each policy under each of these kernel eras, side by side (comma-separated: v4.9, v6.6, v6.15, latest; default: the scenario\'s machine.kernel)')
    .option('--passes <list>', 'run each policy with each of these machine.notifierPasses, side by side (1: mainline, 2: the two-pass notifier RFC; e.g. 1,2)')
    .addHelpText('after', '\nExamples:\n  svmsim compare\n  svmsim compare mirror-race ksm --policies safe,unsafe-skip-read-retry\n  svmsim compare kswapd-vs-compute --kernel v4.9,latest\n  svmsim compare two-gpu-munmap --passes 1,2\n  svmsim compare kswapd-vs-compute gup-vs-readonly --html out/\n')
    .action(action((scenarios: string[], o) => compareCommand(scenarios, { policies: o.policies, seed: o.seed, threads: Boolean(o.threads), timeScale: o.timeScale, json: Boolean(o.json), html: o.html, kernels: o.kernel, profiles: o.profile, passes: o.passes })));

  program
    .command('sweep')
    .description('deterministic runs over a range of seeds in parallel; prints each failing seed and how to replay it')
    .argument('<scenario>', 'built-in scenario name or path to a scenario file')
    .requiredOption('--seeds <from..to>', 'seeds to run, e.g. 1..500')
    .option('--jobs <n>', 'worker threads (default: the number of cores)', parseJobs)
    .option('--policy <dev=policy>', 'device policy, repeatable', collectPolicy, {})
    .option('--json', 'print the failures as JSON')
    .option('--shard <K/N>', 'run shard K of N only (a contiguous share of the seeds) and write its results into --out; N alone takes K from SLURM_ARRAY_TASK_ID or JOB_COMPLETION_INDEX')
    .option('--out <dir>', 'with --shard: the directory of results files that `svmsim sweep-merge` reads (in a Slurm array job the shard comes from SLURM_ARRAY_TASK_ID)')
    .option('--queue <redis://host:port>', 'put the seeds on a BullMQ queue in redis and print the results `svmsim worker --queue …` processes return')
    .option('--queue-name <name>', 'with --queue: the BullMQ queue (default svmsim-sweep)')
    .option('--profile <name>', `the GPU cost profile, overriding machine.profile: ${GPU_COST_PROFILE_NAMES.join(', ')}`)
    .option('--chunk <seeds>', 'with --queue: seeds per job (default 20, more for sweeps past 100 000 seeds: at most 5000 jobs)')
    .addHelpText(
      'after',
      '\nExamples:\n  svmsim sweep mirror-race --policy mirror0=unsafe-skip-read-retry --seeds 1..200\n  svmsim sweep mirror-race --seeds 1..1000000 --shard 3/100 --out results/   # then: svmsim sweep-merge results/\n  svmsim sweep mirror-race --seeds 1..1000000 --queue redis://10.0.0.5:6379   # with: svmsim worker --queue redis://10.0.0.5:6379\n',
    )
    .action(action((scenario: string, o) => sweepCommand(scenario, { seeds: o.seeds, jobs: o.jobs, policy: o.policy, json: Boolean(o.json), shard: o.shard, out: o.out, queue: o.queue, queueName: o.queueName, chunk: o.chunk, profile: o.profile })));

  program
    .command('hmm-tests')
    .description("the kernel's HMM selftests (hmm-tests.c) as built-in scenarios, over seeds: kselftest TAP output, one line per test, the tests svmsim does not model skipped with the reason")
    .option('--seeds <from..to>', 'seeds each test runs under', '1..1')
    .option('--threads', 'also run each test once in thread mode')
    .option('--jobs <n>', 'worker threads (default: the number of cores)', parseJobs)
    .option('--policy <dev=policy>', 'device policy, repeatable (e.g. mirror0=unsafe-skip-owner-check)', collectPolicy, {})
    .option('--filter <text>', 'only the tests whose name contains it')
    .addHelpText('after', '\nExamples:\n  svmsim hmm-tests\n  svmsim hmm-tests --seeds 1..100 --threads\n  svmsim hmm-tests --policy mirror0=unsafe-skip-read-retry --filter anon_teardown\n')
    .action(action((o) => hmmTestsCommand({ seeds: o.seeds, jobs: o.jobs, policy: o.policy, threads: Boolean(o.threads), filter: o.filter })));

  program
    .command('sweep-merge')
    .description('add up the results files of a sharded sweep (svmsim sweep --shard K/N --out DIR) into one sweep\'s summary, failing seeds and replay commands; names the shards that are missing')
    .argument('<dir>', 'the --out directory of the shards')
    .option('--json', 'print the merged result as JSON')
    .addHelpText('after', '\nExample:\n  svmsim sweep-merge results/\n')
    .action(action((dir: string, o) => sweepMergeCommand(dir, { json: Boolean(o.json) })));

  program
    .command('worker')
    .description('run the seeds that queued sweeps (svmsim sweep … --queue) put on a BullMQ queue, on this machine\'s cores, until Ctrl-C')
    .requiredOption('--queue <redis://host:port>', 'the redis server of the queue')
    .option('--queue-name <name>', 'the BullMQ queue (default svmsim-sweep)')
    .option('--jobs <n>', 'worker threads (default: the number of cores)', parseJobs)
    .option('--lock-duration <time>', 'a job whose worker stopped renewing its lock this long ago is run again elsewhere (default 30s)')
    .option('--exit-when-idle', 'exit once the queue has no job left (a batch job\'s worker)')
    .addHelpText('after', '\nExample:\n  svmsim worker --queue redis://10.0.0.5:6379 --jobs 16\n')
    .action(
      action((o) =>
        queueWorkerCommand({
          target: parseRedisUrl('--queue', o.queue),
          queueName: o.queueName ?? DEFAULT_QUEUE_NAME,
          jobs: o.jobs ?? Math.max(1, os.availableParallelism()),
          lockDurationMs: o.lockDuration === undefined ? DEFAULT_LOCK_DURATION_MS : lockDurationOption(o.lockDuration),
          exitWhenIdle: Boolean(o.exitWhenIdle),
        }),
      ),
    );

  program
    .command('replay')
    .description('re-run one seed deterministically, keep its full trace and show the events around the first violation')
    .argument('<scenario>', 'built-in scenario name or path to a scenario file')
    .requiredOption('--seed <n>', 'the seed to replay', parseSeed)
    .option('--duration <time>', 'override the scenario\'s duration, as the run being replayed did')
    .option('--policy <dev=policy>', 'device policy, repeatable', collectPolicy, {})
    .option('--trace <dir>', 'where the trace goes (default: runs/<time>/replay.<run>)')
    .option('--kernel <era>', 'the kernel era the run being replayed used: v4.9, v6.6, v6.15, latest')
    .option('--profile <name>', `the GPU cost profile the run being replayed used: ${GPU_COST_PROFILE_NAMES.join(', ')}`)
    .option('--json', 'print the report as JSON')
    .addHelpText('after', '\nExample:\n  svmsim replay mirror-race --policy mirror0=unsafe-skip-read-retry --seed 7 --trace out/\n')
    .action(action((scenario: string, o) => replayCommand(scenario, { seed: o.seed, duration: o.duration, policy: o.policy, trace: o.trace, json: Boolean(o.json), kernel: o.kernel, profile: o.profile })));

  const traceFlags = (c: Command) =>
    c
      .option('--threshold <n>', 'thrashing: consecutive invalidate/remap events of a page that make it thrash (UVM uvm_perf_thrashing_threshold, default 3, at most 7)')
      .option('--lapse <time>', 'thrashing: most time between two events of a page for them to be consecutive (UVM uvm_perf_thrashing_lapse_usec, default 500us)')
      .option('--hung-task-timeout <time>', 'report a task blocked longer than this (hung_task_timeout_secs, default 120s)')
      .option('--top <n>', 'pages to list (default 10)');

  traceFlags(
    program
      .command('analyze')
      .description('summarise a trace: messages, request latencies, faults, invalidations (who waited on whom), pins, reclaim, OOM kills, ping-pong pages')
      .argument('<trace>', 'a run\'s trace directory (runs/…/<run>) or one trace file'),
  )
    .option('--hist', 'print the distributions as bpftrace-style power-of-two histograms')
    .option('--json', 'print the figures as JSON')
    .addHelpText('after', '\nExamples:\n  svmsim analyze runs/2026-…/gup-vs-readonly.userptr.seed1\n  svmsim analyze out/ --hist --lapse 1ms --threshold 4\n  svmsim analyze out/ --json | jq .thrashing.top\n')
    .action(action((trace: string, o) => analyzeCommand(trace, o)));

  traceFlags(
    program
      .command('check')
      .description('the invariant checker over a trace alone: lost writes, stale translations (each with the lines that prove it), hung tasks as the kernel reports them, requests never answered with who waits for whom; exit 1 on a violation')
      .argument('<trace>', 'a run\'s trace directory (runs/…/<run>) or one trace file'),
  )
    .option('--json', 'print the result as JSON')
    .addHelpText('after', '\nExamples:\n  svmsim check runs/2026-…/kswapd-vs-compute.userptr.seed1\n  svmsim check out/ --hung-task-timeout 10s --json\n')
    .action(action((trace: string, o) => checkCommand(trace, o)));

  program
    .command('trace')
    .description('work with trace files')
    .command('cat')
    .description('print a trace as NDJSON (one line per record, in trace order) for grep and jq')
    .argument('<trace>', 'a run\'s trace directory or one trace file')
    .option('--actor <ids>', 'only lines of these actors (comma-separated, repeatable)', collectList, [])
    .option('--ev <names>', 'only these kinds of line: send, recv, after, or an event name (comma-separated, repeatable)', collectList, [])
    .option('--type <names>', 'only messages of these types (comma-separated, repeatable)', collectList, [])
    .option('--from <time>', 'only lines at or after this simulated time (e.g. 10ms)')
    .option('--to <time>', 'only lines at or before this simulated time')
    .addHelpText('after', '\nExamples:\n  svmsim trace cat out/ | jq -c \'select(.ev == "invalidate_start")\'\n  svmsim trace cat out/ --actor gpu0 --ev gpu_invalidate_wait,gpu_job_start\n  svmsim trace cat out/ --type hmm_range_fault --from 1ms --to 2ms\n')
    .action(action((trace: string, o) => traceCatCommand(trace, o)));

  program
    .command('export')
    .description('convert a trace for a viewer: --perfetto writes Chrome trace-event JSON (slices, flows, counters) for ui.perfetto.dev or chrome://tracing')
    .argument('<trace>', 'a run\'s trace directory or one trace file')
    .option('--perfetto', 'Chrome trace-event JSON, as Perfetto and chrome://tracing read it')
    .option('-o, --output <file>', 'the file to write')
    .addHelpText('after', '\nExample:\n  svmsim export runs/2026-…/gup-vs-readonly.userptr.seed1 --perfetto -o gup.json\n')
    .action(action((trace: string, o) => exportCommand(trace, o)));

  traceFlags(
    program
      .command('report')
      .description('a self-contained HTML page of a run\'s plots: notifier wait over time, fault latency histograms, free and pinned memory, a ping-pong heat map')
      .argument('<trace>', 'a run\'s trace directory or one trace file'),
  )
    .option('-o, --output <file>', 'the HTML file to write')
    .addHelpText('after', '\nExample:\n  svmsim report runs/2026-…/gup-vs-readonly.userptr.seed1 -o gup.html\n')
    .action(action((trace: string, o) => reportCommand(trace, o)));

  program
    .command('list')
    .description('list the built-in scenarios')
    .action(async () => {
      for (const b of listBuiltinScenarios()) process.stdout.write(`${b.name.padEnd(20)} ${b.description}\n`);
      const reports = listReportScenarios();
      if (reports.length > 0) {
        // Not in `svmsim compare`'s default set: run them by name (harness README, "Real reports").
        process.stdout.write('\nreal reports (svmsim run NAME; not in compare\'s default set):\n');
        for (const b of reports) process.stdout.write(`${b.name.padEnd(24)} ${b.description}\n`);
      }
    });

  try {
    await program.parseAsync(argv);
    return exitCode;
  } catch (e) {
    if (e instanceof CommanderError) {
      // --help exits 0; a usage error has already been printed by commander.
      return e.exitCode === 0 ? 0 : EXIT_USAGE;
    }
    return reportError(e, debug());
  }
}
