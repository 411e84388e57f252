// The trace: one record per message sent, per message received, per timer set and per domain
// event. Every record has `t` (simulated ns), `actor` and `ev`; the format is binary (trace-format.ts,
// documented in README.md), read back as the same line objects by read-trace.ts, and `svmsim trace
// cat` prints it as NDJSON for grep and jq.
//
// Records are encoded into an in-memory buffer and written with writeSync as one chunk when it
// passes FLUSH_BYTES, on `flush()`, at shutdown and when an actor crashes: a trace is never left
// half-written by a crash of the simulated system (only by a crash of the process itself, which
// leaves whole chunks).
import fs from 'node:fs';
import path from 'node:path';
import { TraceEncoder, type StrRef } from './trace-encoder.js';
import { TRACE_HEADER_BYTES, TRACE_MAGIC, TRACE_VERSION } from './trace-format.js';
import type { ActorId, Envelope } from './types.js';

const FLUSH_BYTES = 1 << 20;

/**
 * An append-only binary trace: a file (one writer thread per file), or, with no file, chunks kept in
 * memory (`memoryTrace()`) for a run whose trace is read once and dropped, as a seed sweep's is.
 */
export class TraceSink {
  private fd = -1;
  readonly encoder = new TraceEncoder();
  /** In memory: the chunks taken so far (each a buffer the encoder handed over). */
  private readonly chunks: Uint8Array[] | undefined;

  constructor(readonly file: string | undefined) {
    if (file === undefined) {
      this.chunks = [];
      return;
    }
    fs.mkdirSync(path.dirname(file), { recursive: true });
    this.fd = fs.openSync(file, 'w');
    const header = Buffer.alloc(TRACE_HEADER_BYTES);
    header.write(TRACE_MAGIC, 0, 'latin1');
    header.writeUInt32LE(TRACE_VERSION, 8);
    fs.writeSync(this.fd, header);
  }

  get recordsWritten(): number {
    return this.encoder.records;
  }

  /** After each record: write a chunk once the buffer is big enough. */
  maybeFlush(): void {
    if (this.encoder.length >= FLUSH_BYTES) this.flush();
  }

  /** A domain event of an actor or of the scheduler itself. */
  event(t: number, actor: string, ev: string, fields: Record<string, unknown>): void {
    this.encoder.event(t, actor, ev, fields);
    this.maybeFlush();
  }

  flush(): void {
    if (this.encoder.length === 0) return;
    if (this.chunks !== undefined) {
      this.chunks.push(this.encoder.detach());
      return;
    }
    if (this.fd < 0) return;
    const payload = this.encoder.take();
    const len = Buffer.alloc(4);
    len.writeUInt32LE(payload.length, 0);
    fs.writevSync(this.fd, [len, payload]);
  }

  close(): void {
    this.flush();
    if (this.fd < 0) return;
    fs.closeSync(this.fd);
    this.fd = -1;
  }

  /** A sink without a file, once closed: its chunks, read back by forEachTraceLine. */
  memoryTrace(): MemoryTrace {
    if (this.chunks === undefined) throw new Error(`trace sink ${this.file}: writes a file, not a memory trace`);
    this.flush();
    return new MemoryTrace(this.chunks);
  }
}

/** The chunk payloads of a trace kept in memory (TraceSink without a file): what a file holds past its header. */
export class MemoryTrace {
  constructor(readonly chunks: readonly Uint8Array[]) {}

  get bytes(): number {
    return this.chunks.reduce((sum, c) => sum + c.length, 0);
  }
}

/** Actor ids name trace files and appear unquoted in reports: letters, digits and `_.-` only. */
export const ACTOR_ID_PATTERN = /^[A-Za-z][A-Za-z0-9_.-]{0,63}$/;

/** The trace records of one actor. `clock` gives the simulated time stamped on each record. */
export class ActorTracer {
  private readonly enc: TraceEncoder;
  private readonly self: StrRef;
  /** The actors it has named, with their ids in this file: found by identity, no map lookup. */
  private readonly peers: StrRef[] = [];

  constructor(
    private readonly sink: TraceSink,
    actor: ActorId,
    private readonly clock: () => number,
  ) {
    if (!ACTOR_ID_PATTERN.test(actor)) throw new Error(`actor id ${JSON.stringify(actor)} must match ${ACTOR_ID_PATTERN}`);
    this.enc = sink.encoder;
    this.self = this.enc.ref(actor);
  }

  private peer(id: ActorId): StrRef {
    const peers = this.peers;
    for (let i = 0; i < peers.length; i++) if (peers[i].s === id) return peers[i];
    const r = this.enc.ref(id);
    peers.push(r);
    return r;
  }

  sent(env: Envelope, request: boolean): void {
    this.enc.send(env.t, this.self, this.peer(env.to), env.id, env.replyTo, request, env.msg);
    this.sink.maybeFlush();
  }

  timerSet(env: Envelope): void {
    this.enc.after(this.clock(), this.self, env.id, env.t, env.msg);
    this.sink.maybeFlush();
  }

  received(env: Envelope): void {
    this.enc.recv(this.clock(), this.self, this.peer(env.from), env.id, env.replyTo);
    this.sink.maybeFlush();
  }

  event(ev: string, fields?: Record<string, unknown>): void {
    if (fields !== undefined && ('t' in fields || 'actor' in fields || 'ev' in fields)) throw new Error(`trace event '${ev}': fields t, actor and ev are the line's own`);
    this.enc.event(this.clock(), this.self, ev, fields ?? {});
    this.sink.maybeFlush();
  }
}
