// The trace: NDJSON, one line per message sent, per message received and per domain event.
// Every line has `t` (simulated ns), `actor` and `ev`; the format is documented in README.md and
// is the input of all later analysis.
//
// Hot lines (send, recv, after) are formatted by hand; domain events go through pino, configured so
// that a line carries `actor` and `t` in place of pino's `level` and `time`.
// Lines are buffered in memory and written with writeSync when the buffer passes FLUSH_BYTES, on
// `flush()`, at shutdown and when an actor crashes: a trace is never left half-written by a crash
// of the simulated system (only by a crash of the process itself).
import fs from 'node:fs';
import path from 'node:path';
import { pino, type Logger } from 'pino';
import type { ActorId, Envelope } from './types.js';

const FLUSH_BYTES = 1 << 20;

/**
 * An append-only NDJSON file with an in-memory buffer. One writer thread per file. Lines are
 * appended to one string (V8 ropes make `+=` cheap) and written when it passes FLUSH_BYTES.
 */
export class TraceSink {
  private fd: number;
  private pending = '';
  linesWritten = 0;

  constructor(readonly file: string) {
    fs.mkdirSync(path.dirname(file), { recursive: true });
    this.fd = fs.openSync(file, 'w');
  }

  write(line: string): void {
    this.pending += line;
    this.linesWritten++;
    if (this.pending.length >= FLUSH_BYTES) this.flush();
  }

  flush(): void {
    if (this.pending.length === 0 || this.fd < 0) return;
    fs.writeSync(this.fd, this.pending);
    this.pending = '';
  }

  close(): void {
    if (this.fd < 0) return;
    this.flush();
    fs.closeSync(this.fd);
    this.fd = -1;
  }
}

/**
 * Typed arrays in messages (pfn arrays, flags) are written as JSON arrays, not `{"0":…}` objects.
 * A replacer function would do it but doubles the cost of every line; instead the typed arrays'
 * common prototype gets a toJSON, which JSON.stringify consults only for typed arrays.
 */
const typedArrayProto = Object.getPrototypeOf(Uint8Array.prototype) as { toJSON?: () => unknown };
if (typedArrayProto.toJSON === undefined) {
  Object.defineProperty(typedArrayProto, 'toJSON', {
    value: function toJSON(this: ArrayLike<number>) {
      return Array.from(this);
    },
    configurable: true,
    writable: true,
  });
}

export function messageJson(msg: unknown): string {
  return JSON.stringify(msg);
}

/** Actor ids go into hand-built JSON, so they are restricted to characters that need no escaping. */
export const ACTOR_ID_PATTERN = /^[A-Za-z][A-Za-z0-9_.-]{0,63}$/;

/** The trace lines of one actor. `clock` gives the simulated time stamped on each line. */
export class ActorTracer {
  private readonly prefix: string;
  private readonly log: Logger;

  constructor(
    private readonly sink: TraceSink,
    actor: ActorId,
    private readonly clock: () => number,
  ) {
    if (!ACTOR_ID_PATTERN.test(actor)) throw new Error(`actor id ${JSON.stringify(actor)} must match ${ACTOR_ID_PATTERN}`);
    this.prefix = `,"actor":"${actor}","ev":`;
    // pino caches what the level formatter returns, so only constant fields may go there (the
    // actor); `t` comes from the timestamp hook, which pino calls for every line.
    this.log = pino(
      { base: null, timestamp: () => `,"t":${this.clock()}`, formatters: { level: () => ({ actor }) } },
      { write: (line: string) => this.sink.write(line) },
    );
  }

  sent(env: Envelope): void {
    const reply = env.replyTo === 0 ? '' : `,"replyTo":${env.replyTo}`;
    this.sink.write(`{"t":${env.t}${this.prefix}"send","to":"${env.to}","id":${env.id}${reply},"msg":${messageJson(env.msg)}}\n`);
  }

  timerSet(env: Envelope): void {
    this.sink.write(`{"t":${this.clock()}${this.prefix}"after","id":${env.id},"at":${env.t},"msg":${messageJson(env.msg)}}\n`);
  }

  received(env: Envelope): void {
    const reply = env.replyTo === 0 ? '' : `,"replyTo":${env.replyTo}`;
    this.sink.write(`{"t":${this.clock()}${this.prefix}"recv","from":"${env.from}","id":${env.id}${reply}}\n`);
  }

  event(ev: string, fields?: Record<string, unknown>): void {
    if (fields === undefined) return this.log.info({ ev });
    if ('t' in fields || 'actor' in fields || 'ev' in fields) throw new Error(`trace event '${ev}': fields t, actor and ev are the line's own`);
    this.log.info({ ev, ...fields });
  }
}
