// Requests and sleeps in continuation-passing style: a thread of the process sends a request and
// says what to do with the reply; it sleeps and says what to do on waking. The actor hands every
// reply and timer to `resume`. `idle` tells the end-of-run protocol that nothing is in flight.
import type { MmRequest } from '@svmsim/kernel-mm';
import type { DmirrorRequest } from '@svmsim/kernel-mm/dmirror';
import type { GpuRequest } from '@svmsim/gpu-driver';
import type { DmaBufExport } from '@svmsim/gpu-driver/dma-buf-protocol';
import type { PeerRequest, RdmaRequest } from '@svmsim/rdma-odp';
import type { NvmeDio, NvmeDrain } from '@svmsim/nvme/dio-protocol';
import type { NvmetRdmaCmd } from '@svmsim/nvme/nvmet-protocol';
import { Continuations, type Ctx, type Envelope, type Message } from '@svmsim/runtime';

/** What the app sends: mm's requests, the dmirror and gpu devices' ioctls, the rdma devices' verbs and their peers' posts. */
export type Request = MmRequest | DmirrorRequest | GpuRequest | DmaBufExport | RdmaRequest | PeerRequest | NvmeDio | NvmetRdmaCmd | NvmeDrain;

/** A reply from mm or a device: every one carries `ret` (>= 0 or -errno); the rest depends on its type. */
export type Reply = Message & { ret: number } & Record<string, unknown>;

/** The timer message of a sleep. */
export const SLEEP_DONE = 'app_sleep_done';

export class Requests {
  private readonly waits: Continuations<Reply>;
  /** Requests given up (forget): their answers, if they come, are swallowed. */
  private readonly forgotten = new Set<number>();

  constructor(private readonly ctxOf: () => Ctx<Message>) {
    this.waits = new Continuations<Reply>(ctxOf, SLEEP_DONE);
  }

  /** Send `msg` to `to`; `then` runs with the reply. Returns the request's id. */
  call(to: string, msg: Request, then: (r: Reply) => void): number {
    return this.waits.request(to, msg, then);
  }

  /**
   * Stop waiting for request `id` (a receive posted for a SEND that failed: it stays on the QP until
   * another SEND or the QP's end): nothing in flight for the end of the run, its answer swallowed.
   */
  forget(id: number): void {
    if (this.waits.forget(id)) this.forgotten.add(id);
  }

  /** Fire and forget (unpin_user_pages). */
  send(to: string, msg: Request): void {
    this.ctxOf().send(to, msg);
  }

  /** `then` runs after `ns` of simulated time (never within this delivery). */
  sleep(ns: number, then: () => void): void {
    this.waits.after(ns, then);
  }

  /** Run the continuation `env` answers (a reply or a sleep's timer); false if it is none of ours. */
  resume(env: Envelope<Message>): boolean {
    if (env.replyTo !== 0 && this.forgotten.delete(env.replyTo)) return true;
    return this.waits.resume(env);
  }

  /** Wake every sleeper now (the run is ending: sleeps are cut short, requests are waited for). */
  wakeAll(): void {
    this.waits.fireAll();
  }

  /** Nothing in flight: no request unanswered, no sleeper. */
  get idle(): boolean {
    return this.waits.pendingRequests === 0 && this.waits.pendingTimers === 0;
  }
}
