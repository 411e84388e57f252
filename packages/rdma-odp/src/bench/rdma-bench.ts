// rdma-odp's part of `npm run bench`, all under LocalScheduler (deterministic, one thread, no trace),
// each figure the median of REPS runs, their repetitions interleaved:
//   odpFaults     a fresh (never touched) ODP MR, explicit or implicit; the peer RDMA-WRITEs one
//                 page to every page of it, in a shuffled order, 8 QPs at once: every write is a
//                 device page fault (RNR NAK, the fault served, the retry). ODP faults resolved per
//                 wall second.
//   messages      the same writes over and over into an MR whose pages are all mapped (pinned, or
//                 ODP after a synchronous PREFETCH_WRITE): RDMA messages per wall second.
// beside the raw baselines of the same run: request/reply round trips per second between two
// trivial actors, and hmm_range_fault pages per second, from kernel-mm's bench. Every figure also
// counts the scheduler deliveries of its timed part and sets their rate beside the baseline's.
// The bench checks what it ran (every write completed, every fault resolved), never how fast.
import { LocalScheduler, type Message } from '@svmsim/runtime';
import { medianOf, mediansInterleaved, metered, planDriver, round, type Meter, type Plan, type PlanCall } from '@svmsim/runtime/bench/index';
import { MAP_ANONYMOUS, MAP_FIXED, MAP_PRIVATE, PAGE_SIZE, PROT_READ, PROT_WRITE, createMm, createRamdisk } from '@svmsim/kernel-mm';
import { echoRoundTrips, hmmPages } from '@svmsim/kernel-mm/bench/mm-bench';
import { DEFAULT_QP_ATTRS } from '../ib-wire.js';
import { createPeer } from '../peer.js';
import { createRdma } from '../rdma-actor.js';
import {
  IBV_ACCESS_ALL_REMOTE, IBV_ACCESS_ON_DEMAND, IBV_ADVISE_MR_ADVICE_PREFETCH_WRITE, IBV_ADVISE_MR_FLAG_FLUSH, SIZE_MAX,
  type IbvCreateQpResult, type IbvRegMrResult,
} from '../rdma-protocol.js';

const REPS = 3;
const PID = 1;
const BASE = 16 * 1024 * 1024;
const QPS = 8;
const FAULT_PAGES = 2048;
const MSG = { pages: 256, messages: 16_384 };

type Kind = 'pinned' | 'odp' | 'implicit' | 'odp-prefetched';

const mm = (msg: object): PlanCall => ({ to: 'mm', msg: msg as Message });
const nic = (msg: object): PlanCall => ({ to: 'rdma0', msg: msg as Message });
const peer = (msg: object): PlanCall => ({ to: 'rdma0.peer', msg: msg as Message });

/** A process, `pages` pages mapped at BASE (stored to if `populate`), an MR of `kind` and QPS QPs; yields their keys and QPs. */
function* setup(kind: Kind, pages: number, populate: boolean, got: { key: number; qps: number[] }): Plan {
  yield mm({ type: 'process_create' });
  yield mm({ type: 'mmap', pid: PID, addr: BASE, length: pages * PAGE_SIZE, prot: PROT_READ | PROT_WRITE, flags: MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED });
  if (populate) for (let i = 0; i < pages; i += 64) yield { group: Array.from({ length: Math.min(64, pages - i) }, (_, j) => mm({ type: 'cpu_access', pid: PID, addr: BASE + (i + j) * PAGE_SIZE, write: true, value: i + j + 1 })) };
  const implicit = kind === 'implicit';
  const r = (yield nic({
    type: 'ibv_reg_mr', pid: PID, addr: implicit ? 0 : BASE, length: implicit ? SIZE_MAX : pages * PAGE_SIZE,
    access: IBV_ACCESS_ALL_REMOTE | (kind === 'pinned' ? 0 : IBV_ACCESS_ON_DEMAND), memlock_limit_pages: pages, cap_ipc_lock: false,
  })) as unknown as IbvRegMrResult;
  got.key = r.lkey;
  if (kind === 'odp-prefetched') {
    yield nic({ type: 'ibv_advise_mr', pid: PID, advice: IBV_ADVISE_MR_ADVICE_PREFETCH_WRITE, flags: IBV_ADVISE_MR_FLAG_FLUSH, sg_list: [{ addr: BASE, length: pages * PAGE_SIZE, lkey: r.lkey }] });
  }
  for (let q = 0; q < QPS; q++) {
    // min_rnr_timer 1 (10 µs): the faults' RNR waits cost simulated time, not wall time, either way.
    const c = (yield nic({ type: 'ibv_create_qp', pid: PID, qp_type: 'RC', ...DEFAULT_QP_ATTRS, min_rnr_timer: 1 })) as unknown as IbvCreateQpResult;
    got.qps.push(c.remote_qpn);
  }
}

/** `count` one-page remote writes to pages `order(i)`, QPS at a time (one per QP), timed. */
function* writes(count: number, order: (i: number) => number, got: { key: number; qps: number[] }): Plan {
  yield { mark: 'start' };
  for (let i = 0; i < count; i += QPS) {
    const group = got.qps.slice(0, Math.min(QPS, count - i)).map((qpn, q) =>
      peer({ type: 'peer_post', qpn, opcode: 'IBV_WR_RDMA_WRITE', remote_addr: BASE + order(i + q) * PAGE_SIZE, rkey: got.key, pages: 1, values: [i + q + 1] }),
    );
    yield { group };
  }
  yield { mark: 'stop' };
  // One read at the end: the writes before it have all completed (RC, in order).
  yield peer({ type: 'peer_post', qpn: got.qps[0], opcode: 'IBV_WR_RDMA_READ', remote_addr: BASE, rkey: got.key, pages: 1 });
}

async function runPlan(pages: number, plan: Plan): Promise<{ sec: number; deliveries: number; nic: Record<string, any>; peer: Record<string, any> }> {
  const meter: Meter = { on: false, deliveries: 0 };
  const app = planDriver(plan, meter, 'rdma bench');
  const actors = {
    mm: createMm({ frames: pages + 4096, swapPages: 0, kswapd: false, wmarkMin: 64, wmarkLow: 128, wmarkHigh: 256 }, 'mm'),
    ramdisk: createRamdisk({}),
    rdma0: createRdma({ mrKind: 'odp' }, 'rdma0'),
    'rdma0.peer': createPeer({ nic: 'rdma0', pages: 64 }, 'rdma0.peer'),
    app,
  };
  (globalThis as { gc?: () => void }).gc?.();
  const r = await new LocalScheduler().run({ actors: Object.entries(actors).map(([id, a]) => ({ id, actor: metered(a, meter) })), seed: 1 });
  if (app.error()) throw app.error();
  if (r.endedBy !== 'stopRun' || r.reason !== 'app: done') throw new Error(`rdma bench run ended by ${r.endedBy}: ${r.reason}`);
  return { sec: app.measuredSec(), deliveries: meter.deliveries, nic: r.summaries.rdma0 as Record<string, any>, peer: r.summaries['rdma0.peer'] as Record<string, any> };
}

/** A permutation of 0..n-1 (a fixed LCG: the same order every run). */
function shuffled(n: number): number[] {
  const a = Array.from({ length: n }, (_, i) => i);
  let x = 12345;
  for (let i = n - 1; i > 0; i--) {
    x = (Math.imul(x, 1103515245) + 12345) >>> 0;
    const j = x % (i + 1);
    [a[i], a[j]] = [a[j], a[i]];
  }
  return a;
}

/** Every page of a fresh ODP MR written once: each write a fault. */
export async function odpFaults(kind: 'odp' | 'implicit') {
  const order = shuffled(FAULT_PAGES);
  const got = { key: 0, qps: [] as number[] };
  const plan = function* (): Plan {
    yield* setup(kind, FAULT_PAGES, false, got);
    yield* writes(FAULT_PAGES, (i) => order[i], got);
  };
  const { sec, deliveries, nic: n, peer: p } = await runPlan(FAULT_PAGES, plan());
  const ok = (p.completions as Record<string, number>).IBV_WC_SUCCESS ?? 0;
  if (n.odpFaultsResolved < FAULT_PAGES || ok !== FAULT_PAGES + 1 || n.odpFaultErrors !== 0) {
    throw new Error(`rdma bench faults ${kind}: ${n.odpFaultsResolved} faults resolved of ${FAULT_PAGES}, ${ok} writes completed`);
  }
  return {
    odpFaultsResolvedPerSec: round(n.odpFaultsResolved / sec),
    odpFaultsResolved: n.odpFaultsResolved as number,
    rnrNaks: n.rnrNaksSent as number,
    simFaultLatencyP50Ns: n.faultLatencyP50Ns as number,
    deliveriesPerFault: round(deliveries / n.odpFaultsResolved, 1),
    deliveriesPerSec: round(deliveries / sec),
    wallMs: round(sec * 1e3, 1),
  };
}

/** MSG.messages one-page writes over an MR whose pages are all mapped. */
export async function messages(kind: 'pinned' | 'odp-prefetched') {
  const got = { key: 0, qps: [] as number[] };
  const plan = function* (): Plan {
    yield* setup(kind, MSG.pages, true, got);
    yield* writes(MSG.messages, (i) => (i * 7) % MSG.pages, got);
  };
  const { sec, deliveries, nic: n, peer: p } = await runPlan(MSG.pages, plan());
  const ok = (p.completions as Record<string, number>).IBV_WC_SUCCESS ?? 0;
  if (ok !== MSG.messages + 1 || n.odpFaults !== 0) throw new Error(`rdma bench messages ${kind}: ${ok} completed of ${MSG.messages + 1}, ${n.odpFaults} faults`);
  return {
    rdmaMessagesPerSec: round(MSG.messages / sec),
    deliveriesPerMessage: round(deliveries / MSG.messages, 1),
    deliveriesPerSec: round(deliveries / sec),
    wallMs: round(sec * 1e3, 1),
  };
}

export async function rdmaBench(progress: (line: string) => void): Promise<Record<string, unknown>> {
  const started = performance.now();
  const log = (line: string) => progress(`rdma: ${line}`);
  // Warm-up, untimed: every path once, long enough for the JIT.
  await odpFaults('odp');
  await messages('pinned');
  await messages('odp-prefetched');

  const echo = await medianOf(REPS, log, 'baseline request/reply', 'roundTripsPerSec', () => echoRoundTrips(400_000));
  const hmm = await medianOf(REPS, log, 'baseline hmm_range_fault snapshot', 'pagesPerSec', () => hmmPages(262_144, true));
  const baselineDeliveriesPerSec = 2 * echo.roundTripsPerSec;
  const vsBaseline = <T extends { deliveriesPerSec: number }>(r: T) => ({ ...r, deliveryRateVsBaseline: round(r.deliveriesPerSec / baselineDeliveriesPerSec, 3) });
  const baseline = {
    localRequestReply: { ...echo, deliveriesPerSec: baselineDeliveriesPerSec, what: 'request/reply round trips per wall second between two trivial actors under LocalScheduler, 32 in flight (kernel-mm bench echoRoundTrips); deliveriesPerSec = 2 per round trip' },
    hmmRangeFaultSnapshot: { ...hmm, what: 'hmm_range_fault pages per wall second over 512-page ranges of populated pages (kernel-mm bench hmmPages)' },
  };

  const faults = await mediansInterleaved(REPS, log, 'ODP faults', 'odpFaultsResolvedPerSec', ['odp', 'implicit'], (k) => odpFaults(k as 'odp' | 'implicit'));
  const msgs = await mediansInterleaved(REPS, log, 'RDMA messages', 'rdmaMessagesPerSec', ['pinned', 'odp-prefetched'], (k) => messages(k as 'pinned' | 'odp-prefetched'));

  return {
    reps: REPS,
    odpFaults: {
      what: `ODP page faults resolved (the NIC summary's odpFaultsResolved) per wall second: a fresh ${FAULT_PAGES}-page MR, the peer writing one page to each page in a shuffled order, ${QPS} QPs at once, so every write faults (EQE, the worker's read_begin / hmm_range_fault / umem_mutex / MTT UMR, PAGE_FAULT_RESUME, the RNR NAK and the retry)`,
      byKind: { odp: vsBaseline(faults.odp), implicit: vsBaseline(faults.implicit) },
      note: 'implicit: the first fault also makes the 1 GiB child MR (its 262144-entry UMR costs simulated, not wall, time)',
      legend: {
        odpFaultsResolvedPerSec: 'faults resolved per wall second of the timed part (first write posted to last completion)',
        rnrNaks: 'RNR NAKs the NIC sent (a write arriving while its fault is served)',
        simFaultLatencyP50Ns: 'simulated (not wall) ns from the EQE to the resume, median',
        deliveriesPerFault: 'scheduler deliveries (messages and timers, every actor) per fault in the timed part',
        deliveryRateVsBaseline: 'deliveriesPerSec / the baseline deliveriesPerSec: below 1, the actors work per delivery beyond a bare echo',
      },
      baseline,
    },
    rdmaMessages: {
      what: `RDMA WRITE messages (one page each) per wall second, ${QPS} QPs at once, ${MSG.messages} of them into a ${MSG.pages}-page MR whose pages are all mapped: pinned, or ODP after ibv_advise_mr(PREFETCH_WRITE, FLUSH)`,
      byKind: { pinned: vsBaseline(msgs.pinned), odpPrefetched: vsBaseline(msgs['odp-prefetched']) },
      legend: {
        rdmaMessagesPerSec: 'messages per wall second of the timed part (peer_post → wire → MTT translation → DMA to mm → ACK → completion)',
        deliveriesPerMessage: 'scheduler deliveries per message in the timed part',
        deliveryRateVsBaseline: 'deliveriesPerSec / the baseline deliveriesPerSec',
      },
      baseline,
    },
    benchSeconds: round((performance.now() - started) / 1e3, 1),
  };
}
