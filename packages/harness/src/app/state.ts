// What the app knows while it runs: the scenario, its processes (pid, VMAs with the addresses mm
// chose, open device files, pins held), the file ids mm gave, the counter of unique store values,
// and whether the run is ending. Every part of the app (setup, workload, script, end of run) works
// on one App.
import type { Ctx, Message } from '@svmsim/runtime';
import type { DeviceSpec, Scenario, StepResult, VmaSpec } from '../scenario/types.js';
import { Requests } from './requests.js';
import type { PhaseSummary } from './types.js';

/** A VMA of a process, where mm put it. */
export interface VmaRecord {
  name: string;
  addr: number;
  pages: number;
  kind: VmaSpec['kind'];
  prot: number;
  shared: boolean;
  /** mm's file id (file mappings). */
  file?: number;
  /** File offset in pages. */
  offset: number;
  /** The userptr BOs setup created over the whole VMA (VmaSpec.gpu / gpus): device and handle of each, one per device. */
  bos?: { device: string; handle: number }[];
  /** The MR setup registered over the VMA (VmaSpec.rdma): its device and key (the implicit MR's: shared by the process's VMAs). */
  mr?: { device: string; lkey: number };
}

/** A QP setup connected to an rdma device's peer, and what the connection told about the peer's MR. */
export interface QpRecord {
  qpn: number;
  remoteQpn: number;
  remoteAddr: number;
  remoteRkey: number;
  remotePages: number;
}

/** A page a script's `pin` or `gup` step holds, released by a later `unpin` step: a FOLL_PIN pin or a FOLL_GET reference. */
export interface Pin {
  pfn: number;
  write: boolean;
  /** pin_user_pages* (true) or get_user_pages* (false: put_page releases it). */
  pin: boolean;
}

/** A child a `fork` with wait: false left running beside its parent. */
export interface RunningChild {
  proc: Proc;
  /** Its steps are done (it then waits to be killed or waited for). */
  stepsDone: boolean;
  /** A kill or wait asked it to stop: no further step starts; it exits after the current one. */
  stopping: boolean;
  /** Called once the child has exited. */
  onExit: (() => void)[];
  exiting: boolean;
  exited: boolean;
}

/** Where VRAM BOs are mapped in a process's GPU address space (1 TiB: clear of mm's mmap range). */
export const GPU_VA_BASE = 2 ** 40;

/** A process of the run: a scenario's, or a child a script's `fork` made. */
export class Proc {
  /** VMA name → where it is (a child starts with a copy of its parent's). */
  readonly vmas = new Map<string, VmaRecord>();
  /** Device id → the fd of this process's open file on it. */
  readonly files = new Map<string, number>();
  /** Page address → pins held on that page, oldest first. */
  readonly pins = new Map<number, Pin[]>();
  /** VRAM BOs gpu_alloc made: name → device and handle. */
  /** VRAM buffers (gpu_alloc); `fd` once exported as a dma-buf (a dio_dmabuf step). */
  readonly buffers = new Map<string, { device: string; handle: number; fd?: number }>();
  /** The GPU virtual address the next VRAM BO of this process is mapped at: above any CPU mapping. */
  nextGpuVa = GPU_VA_BASE;
  /** p2pmem provider → the address of this process's mapping of its whole p2pmem (dio_p2p, rdma_reg_mr). */
  readonly p2pmem = new Map<string, number>();
  /** MRs a script's rdma_reg_mr made (deregistered at the end of the run). */
  readonly mrs: { device: string; lkey: number }[] = [];
  /** rdma device id → the QPs setup connected for this process. */
  readonly qps = new Map<string, QpRecord[]>();
  /** User buffers (`buffer` steps): name → its words, one per page (malloc'd memory the kernel reaches with copy_to_user). */
  readonly userBuffers = new Map<string, number[]>();
  /** Children left running by a `fork` with wait: false, by name. */
  readonly children = new Map<string, RunningChild>();
  exited = false;

  constructor(
    readonly pid: number,
    readonly name: string,
  ) {}

  /** The child of a fork: same VMAs (same addresses), a copy of the user buffers, no open files, no pins. */
  child(pid: number): Proc {
    const c = new Proc(pid, `${this.name}[${pid}]`);
    for (const [n, v] of this.vmas) c.vmas.set(n, v);
    for (const [n, b] of this.userBuffers) c.userBuffers.set(n, [...b]);
    for (const [n, a] of this.p2pmem) c.p2pmem.set(n, a);
    return c;
  }
}

export class App {
  /** The current delivery's ctx (set by the actor before anything runs). */
  ctx!: Ctx<Message>;
  readonly io: Requests;
  readonly mm = 'mm';
  /** File name → mm's file id. */
  readonly files = new Map<string, number>();
  /** Every process by pid, fork children included. */
  readonly procs = new Map<number, Proc>();
  /** Scenario process name → its process. */
  readonly named = new Map<string, Proc>();
  readonly phases: PhaseSummary[] = [];
  readonly steps: StepResult[] = [];
  /** Set at the end of the last phase or at scenario.duration: nothing new starts. */
  ending = false;
  private nextValue = 1;
  /** Jobs submitted so far per gpu device (a hang-fence fault names the N-th, from 1). */
  private readonly jobsSubmitted = new Map<string, number>();
  /** Devices killed by a fault: the rest of the run goes on without them. */
  readonly deadDevices = new Set<string>();

  /** The next job on `device` is counted; true if a hang-fence fault makes it the one that hangs. */
  nextJobHangs(device: string): boolean {
    const n = (this.jobsSubmitted.get(device) ?? 0) + 1;
    this.jobsSubmitted.set(device, n);
    const hang = (this.scenario.faults ?? []).some((f) => f.kind === 'hang-fence' && f.device === device && f.job === n);
    if (hang) this.trace('fault_hang_fence', { device, job: n });
    return hang;
  }

  /** Is `actor` a device a kill fault names? */
  killable(actor: string): boolean {
    return (this.scenario.faults ?? []).some((f) => f.kind === 'kill' && f.device === actor);
  }

  constructor(readonly scenario: Scenario) {
    this.io = new Requests(() => this.ctx);
  }

  /** A store value no other store of the run used (the oracle follows each one). */
  unique(): number {
    return this.nextValue++;
  }

  device(id: string): DeviceSpec | undefined {
    return this.scenario.devices.find((d) => d.id === id);
  }

  /** The gpu device actors of the scenario. */
  gpus(): string[] {
    return this.scenario.devices.filter((d) => d.kind === 'gpu').map((d) => d.id);
  }

  /** The rdma device actors of the scenario. */
  rdmas(): string[] {
    return this.scenario.devices.filter((d) => d.kind === 'rdma').map((d) => d.id);
  }

  /** The dmirror device actors of the scenario. */
  dmirrors(): string[] {
    return this.scenario.devices.filter((d) => d.kind === 'dmirror').map((d) => d.id);
  }

  register(p: Proc): Proc {
    this.procs.set(p.pid, p);
    return p;
  }

  trace(ev: string, fields: Record<string, unknown> = {}): void {
    if (this.ctx.tracing) this.ctx.trace(ev, fields);
  }
}
