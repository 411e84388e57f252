// gpu-driver's part of `npm run bench`, all under LocalScheduler (deterministic, one thread, no
// trace: no traceDir, so ctx.tracing is false), each figure the median of REPS runs:
//   submissions         one process, one N-page userptr BO its CPU stores populated first; a driver
//                       submits short jobs (touch 1%, write) and waits for each, K times, under each
//                       safe policy: submissions per wall second, and pages walked per submission
//                       (userptr walks the whole BO at every submit; the others walk nothing).
//   deviceFaults        svm-fault: each round a fresh BO over pages not mapped in GPUVM yet (CPU-
//                       populated), one job touching all of it, so every access raises a retry
//                       fault: faults resolved per wall second, VRAM off and on, 1-page and 16-page
//                       fault windows.
// beside the raw baselines of the same run: request/reply round trips per second between two
// trivial actors, and hmm_range_fault pages per second (snapshots of populated pages: the walk
// userptr makes at each submit), both from kernel-mm's bench. Every figure also counts the
// scheduler deliveries of its timed part, so its deliveries per second sit beside the baseline's.
// The bench checks what it ran (jobs done, no job errors, no cancelled faults), never how fast.
import { LocalScheduler, type Message } from '@svmsim/runtime';
import { medianOf, mediansInterleaved, metered, planDriver, round, type Meter, type Plan as RuntimePlan, type PlanCall } from '@svmsim/runtime/bench/index';
import { MAP_ANONYMOUS, MAP_FIXED, MAP_PRIVATE, PAGE_SIZE, PROT_READ, PROT_WRITE, createMm, createRamdisk } from '@svmsim/kernel-mm';
import { echoRoundTrips, hmmPages } from '@svmsim/kernel-mm/bench/mm-bench';
import { createGpu, type GpuConfig, type GpuPolicyName } from '../gpu-actor.js';
import type { GpuSubmitResult, GpuWaitResult } from '../gpu-protocol.js';

/** Each measurement is repeated and its median run kept: two cores make single runs noisy. */
const REPS = 3;
const PID = 1;
const BASE = 16 * 1024 * 1024;

const SUBMIT = {
  boPages: 1024,
  submissions: 1500,
  touch: 0.01,
  jobDurationNs: 10_000,
};
const SAFE_POLICIES: readonly GpuPolicyName[] = ['pin', 'userptr', 'preempt', 'svm-fault'];

const FAULT = {
  boPages: 2048,
  rounds: 4,
  jobDurationNs: 100_000,
};

// ---- a sequential driver (runtime's planDriver) ----

type Call = PlanCall;
type Plan = RuntimePlan;

const mm = (msg: object): Call => ({ to: 'mm', msg: msg as Message });
const gpu = (msg: object): Call => ({ to: 'gpu0', msg: msg as Message });

/** process_create, mmap of `pages` at BASE, a CPU store to each page (64 in flight). */
export function* populate(pages: number): Plan {
  yield mm({ type: 'process_create' });
  yield mm({ type: 'mmap', pid: PID, addr: BASE, length: pages * PAGE_SIZE, prot: PROT_READ | PROT_WRITE, flags: MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED });
  for (let i = 0; i < pages; i += 64) {
    const group: Call[] = [];
    for (let p = i; p < Math.min(pages, i + 64); p++) group.push(mm({ type: 'cpu_access', pid: PID, addr: BASE + p * PAGE_SIZE, write: true, value: p + 1 }));
    yield { group };
  }
}

function gc(): void {
  (globalThis as { gc?: () => void }).gc?.();
}

/** One LocalScheduler run of mm + ramdisk + gpu0 + the driver; the measured wall seconds and the GPU's summary. */
async function runPlan(pages: number, gpuConfig: GpuConfig, plan: Plan): Promise<{ sec: number; deliveries: number; gpu: Record<string, any> }> {
  const meter: Meter = { on: false, deliveries: 0 };
  const app = planDriver(plan, meter, 'gpu bench');
  const actors = {
    mm: createMm({ frames: pages + 4096, swapPages: 0, kswapd: false, wmarkMin: 64, wmarkLow: 128, wmarkHigh: 256 }, 'mm'),
    ramdisk: createRamdisk({}),
    gpu0: createGpu(gpuConfig, 'gpu0'),
    app,
  };
  gc();
  const r = await new LocalScheduler().run({ actors: Object.entries(actors).map(([id, a]) => ({ id, actor: metered(a, meter) })), seed: 1 });
  if (app.error()) throw app.error();
  if (r.endedBy !== 'stopRun' || r.reason !== 'app: done') throw new Error(`gpu bench run ended by ${r.endedBy}: ${r.reason}`);
  return { sec: app.measuredSec(), deliveries: meter.deliveries, gpu: r.summaries.gpu0 as Record<string, any> };
}

// ---- submissions ----

/** K × (gpu_submit of a job touching 1% of the BO, gpu_wait), timed from the first submit to the last wait's reply. */
export async function submissions(policy: GpuPolicyName, count: number) {
  const { boPages, touch, jobDurationNs } = SUBMIT;
  let walked = 0;
  let failedWaits = 0;
  function* plan(): Plan {
    yield* populate(boPages);
    const handle = (yield gpu({ type: 'gpu_bo_create', pid: PID, addr: BASE, pages: boPages }))!.ret;
    yield { mark: 'start' };
    for (let i = 0; i < count; i++) {
      const s = (yield gpu({ type: 'gpu_submit', bos: [handle], pattern: { touch, write: true }, durationNs: jobDurationNs, queue: 'gfx' })) as unknown as GpuSubmitResult;
      walked += s.pagesWalked;
      const w = (yield gpu({ type: 'gpu_wait', job: s.job })) as unknown as GpuWaitResult;
      if (w.ret !== 0) failedWaits++;
    }
    yield { mark: 'stop' };
    yield gpu({ type: 'gpu_bo_free', handle });
  }
  // svm-fault with VRAM off: its accesses go to mm as every other policy's do.
  const { sec, deliveries, gpu: g } = await runPlan(boPages, { policy, svm: { vramPages: 0 } }, plan());
  if (failedWaits > 0 || g.jobErrors !== 0 || g.jobsDone !== count) throw new Error(`gpu bench ${policy}: ${g.jobsDone} jobs done of ${count}, ${g.jobErrors} in error`);
  return {
    submissionsPerSec: round(count / sec),
    pagesWalkedPerSubmission: round(walked / count, 1),
    pagesWalkedPerSec: round(walked / sec),
    deviceFaults: (g.deviceFaults as number | undefined) ?? 0,
    deliveriesPerSubmission: round(deliveries / count, 1),
    deliveriesPerSec: round(deliveries / sec),
    wallMs: round(sec * 1e3, 1),
  };
}

// ---- device faults ----

interface FaultVariant {
  faultWindowPages: number;
  vramPages: number;
  hotThreshold?: number;
}

/**
 * svm-fault: `rounds` × (a fresh BO over the next `boPages` CPU-populated pages, one job writing
 * every page of it, gpu_wait, gpu_bo_free). Only submit → wait is timed.
 */
export async function deviceFaults(v: FaultVariant) {
  const { boPages, rounds, jobDurationNs } = FAULT;
  const pages = boPages * rounds;
  function* plan(): Plan {
    yield* populate(pages);
    for (let r = 0; r < rounds; r++) {
      const handle = (yield gpu({ type: 'gpu_bo_create', pid: PID, addr: BASE + r * boPages * PAGE_SIZE, pages: boPages }))!.ret;
      yield { mark: 'start' };
      const s = (yield gpu({ type: 'gpu_submit', bos: [handle], pattern: { touch: 1, write: true }, durationNs: jobDurationNs, queue: 'compute' })) as unknown as GpuSubmitResult;
      const w = (yield gpu({ type: 'gpu_wait', job: s.job })) as unknown as GpuWaitResult;
      yield { mark: 'stop' };
      if (w.ret !== 0) throw new Error(`gpu bench faults: job ${s.job} ended with ${w.ret}`);
      yield gpu({ type: 'gpu_bo_free', handle });
    }
  }
  const { sec, deliveries, gpu: g } = await runPlan(pages, { policy: 'svm-fault', svm: { ...v } }, plan());
  const resolved = g.deviceFaultsResolved as number;
  if (g.deviceFaultsCancelled !== 0 || g.jobErrors !== 0 || g.dmaWrites + g.vramWrites !== pages) {
    throw new Error(`gpu bench faults: ${g.deviceFaultsCancelled} cancelled, ${g.jobErrors} job errors, ${g.dmaWrites} + ${g.vramWrites} writes of ${pages}`);
  }
  return {
    deviceFaultsResolvedPerSec: round(resolved / sec),
    pagesMappedPerSec: round(g.pagesFaulted / sec),
    deviceFaultsResolved: resolved,
    faultBatches: g.faultBatches as number,
    hmmRangeFaults: g.hmmRangeFaults as number,
    pagesMigratedToVram: g.migratedToVram as number,
    simFaultLatencyP50Ns: g.faultLatencyP50Ns as number,
    deliveriesPerFault: round(deliveries / resolved, 1),
    deliveriesPerSec: round(deliveries / sec),
    wallMs: round(sec * 1e3, 1),
  };
}

// ---- the whole block ----

/** Progress lines of this block, prefixed. */
const gpuLog = (progress: (line: string) => void) => (line: string) => progress(`gpu: ${line}`);

export async function gpuBench(progress: (line: string) => void): Promise<Record<string, unknown>> {
  const started = performance.now();
  // Warm-up, untimed: every policy's code path and the fault path, long enough for the JIT (the first
  // runs of a process are several times slower than later ones).
  for (const p of SAFE_POLICIES) await submissions(p, 500);
  await deviceFaults({ faultWindowPages: 1, vramPages: 0 });
  await deviceFaults({ faultWindowPages: 1, vramPages: 1024, hotThreshold: 1 });

  const echo = await medianOf(REPS, gpuLog(progress), 'baseline request/reply', 'roundTripsPerSec', () => echoRoundTrips(400_000));
  const hmm = await medianOf(REPS, gpuLog(progress), 'baseline hmm_range_fault snapshot', 'pagesPerSec', () => hmmPages(262_144, true));
  const baseline = {
    localRequestReply: { ...echo, deliveriesPerSec: 2 * echo.roundTripsPerSec, what: 'request/reply round trips per wall second between two trivial actors under LocalScheduler, 32 in flight (kernel-mm bench echoRoundTrips); deliveriesPerSec = 2 per round trip' },
    hmmRangeFaultSnapshot: { ...hmm, what: 'hmm_range_fault pages per wall second over 512-page ranges of populated pages, one call at a time: the walk userptr does at each submit (kernel-mm bench hmmPages)' },
  };

  // The baseline's deliveries per wall second (a round trip is two: the request and the reply), to set
  // each figure's own deliveries per second beside: ~1 means the GPU run costs what its messages cost.
  const baselineDeliveriesPerSec = 2 * echo.roundTripsPerSec;
  const vsBaseline = <T extends { deliveriesPerSec: number }>(r: T) => ({ ...r, deliveryRateVsBaseline: round(r.deliveriesPerSec / baselineDeliveriesPerSec, 3) });

  const subs = await mediansInterleaved(REPS, gpuLog(progress), 'submissions', 'submissionsPerSec', SAFE_POLICIES, (p) => submissions(p as GpuPolicyName, SUBMIT.submissions));
  const perPolicy: Record<string, Awaited<ReturnType<typeof submissions>> & { deliveryRateVsBaseline: number }> = {};
  for (const p of SAFE_POLICIES) perPolicy[p] = vsBaseline(subs[p]);
  const vsPin = (p: GpuPolicyName) => round(perPolicy[p].submissionsPerSec / perPolicy.pin.submissionsPerSec, 3);

  const variants: Record<string, FaultVariant> = {
    vramOff: { faultWindowPages: 1, vramPages: 0 },
    vramOffWindow16: { faultWindowPages: 16, vramPages: 0 },
    // Every faulting page hot at once, and VRAM for all of it: each fault migrates its window to VRAM, then maps it.
    vramOn: { faultWindowPages: 1, vramPages: FAULT.boPages * FAULT.rounds, hotThreshold: 1 },
  };
  const faultRuns = await mediansInterleaved(REPS, gpuLog(progress), 'device faults', 'deviceFaultsResolvedPerSec', Object.keys(variants), (name) => deviceFaults(variants[name]));
  const faults: Record<string, unknown> = {};
  for (const [name, v] of Object.entries(variants)) faults[name] = { svm: v, ...vsBaseline(faultRuns[name]) };

  return {
    reps: REPS,
    submissions: {
      what: 'gpu_submit + gpu_wait pairs per wall second, one at a time, each job writing 1% of one userptr BO (populated by CPU stores first); pagesWalkedPerSubmission from the submit replies',
      bo: { pages: SUBMIT.boPages, bytes: SUBMIT.boPages * PAGE_SIZE },
      submissions: SUBMIT.submissions,
      jobTouch: SUBMIT.touch,
      jobDurationNs: SUBMIT.jobDurationNs,
      note: 'svm-fault here has VRAM off (svm.vramPages 0) so its accesses go to mm like the others; its first job faults its pages in, later ones find them mapped',
      byPolicy: perPolicy,
      legend: {
        submissionsPerSec: 'submit + wait pairs per wall second over the timed part (first submit to last wait reply)',
        pagesWalkedPerSubmission: "pages the submit walked (hmm_range_fault) per submission, from gpu_submit_result's pagesWalked",
        pagesWalkedPerSec: 'pages walked per wall second of the timed part',
        deviceFaults: 'GPU retry faults raised in the run (svm-fault only)',
        deliveriesPerSubmission: 'scheduler deliveries (messages and timers, to every actor) per submission in the timed part',
        deliveriesPerSec: 'those deliveries per wall second',
        deliveryRateVsBaseline: 'deliveriesPerSec / the baseline deliveriesPerSec: below 1, the actors work per delivery beyond a bare echo',
        wallMs: 'wall ms of the timed part of the median run',
      },
      ratios: {
        what: 'submissionsPerSec of each policy / that of pin (medians of interleaved runs)',
        userptrVsPin: vsPin('userptr'),
        preemptVsPin: vsPin('preempt'),
        svmFaultVsPin: vsPin('svm-fault'),
        userptrWalkOnlySubmissionsPerSec: round(hmm.pagesPerSec / SUBMIT.boPages),
        userptrWalkOnlyWhat: "baseline hmmRangeFaultSnapshot pagesPerSec / BO pages: userptr's submissions per second if walking the BO were all it did",
      },
      baseline,
    },
    deviceFaults: {
      what: "svm-fault retry faults resolved (the GPU summary's deviceFaultsResolved) per wall second from gpu_submit to gpu_wait's reply: each round a fresh BO over CPU-populated pages GPUVM does not map, one job writing every page (16 waves), so every access faults",
      bo: { pages: FAULT.boPages, bytes: FAULT.boPages * PAGE_SIZE },
      rounds: FAULT.rounds,
      jobDurationNs: FAULT.jobDurationNs,
      byVariant: faults,
      legend: {
        deviceFaultsResolvedPerSec: "deviceFaultsResolved per wall second, from each round's gpu_submit to its gpu_wait reply",
        pagesMappedPerSec: "the GPU summary's pagesFaulted (pages the handler mapped) per wall second",
        faultBatches: 'fault handler runs: one batch per run, up to one fault per wave (16)',
        hmmRangeFaults: 'hmm_range_fault calls the handler made (one per fault window not yet mapped)',
        pagesMigratedToVram: 'pages migrate_vma moved to VRAM before being mapped',
        simFaultLatencyP50Ns: 'simulated (not wall) ns from a fault to its replay, median',
        deliveriesPerFault: 'scheduler deliveries (messages and timers, to every actor) per resolved fault in the timed part',
        deliveriesPerSec: 'those deliveries per wall second',
        deliveryRateVsBaseline: 'deliveriesPerSec / the baseline deliveriesPerSec',
        wallMs: 'wall ms of the timed part of the median run',
      },
      note: "faultWindowPages 16 maps a window per hmm_range_fault, but the 16 waves fault on 16 consecutive pages at once, so each batch's other 15 faults are covered by the first and still count as resolved: the fault count stays one per page, fewer hmm_range_fault calls is the difference. vramOn: hotThreshold 1 and VRAM for every page, so each fault first migrates its page to VRAM (migrate_vma_setup, copy, finalize) and then maps it",
      baseline,
    },
    benchSeconds: round((performance.now() - started) / 1e3, 1),
  };
}
