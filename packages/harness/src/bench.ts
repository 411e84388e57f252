// `npm run bench`: one JSON object on stdout with every figure the issues name, each beside the raw
// baseline measured in the same run; progress lines on stderr.
import { gpuBench } from '@svmsim/gpu-driver/bench/gpu-bench';
import { mmBench } from '@svmsim/kernel-mm/bench/mm-bench';
import { nvmeBench } from '@svmsim/nvme/bench/nvme-bench';
import { rdmaBench } from '@svmsim/rdma-odp/bench/rdma-bench';
import { progress, runtimeBench } from '@svmsim/runtime/bench/index';
import { sweepBench } from './bench/sweep-bench.js';
import { traceBenchInProcess } from './bench/trace-bench-process.js';

async function main(): Promise<void> {
  const runtime = await runtimeBench();
  const mm = await mmBench(progress);
  const gpu = await gpuBench(progress);
  const rdma = await rdmaBench(progress);
  const nvme = await nvmeBench(progress);
  const trace = await traceBenchInProcess();
  const sweep = await sweepBench(progress, (runtime.localDelivery as { traceOff: { msgsPerSec: number } }).traceOff.msgsPerSec);
  process.stdout.write(JSON.stringify({ runtime, mm, gpu, rdma, nvme, trace, sweep }, null, 2) + '\n');
}

main().catch((e: unknown) => {
  progress(`failed: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}`);
  process.exitCode = 1;
});
