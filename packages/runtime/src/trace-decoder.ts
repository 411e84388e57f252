// Reading trace records (trace-format.ts) back into the trace's line objects: the same
// `{t, actor, ev, …}` an NDJSON trace line parses to. One decoder per file: it keeps the file's
// string and shape tables, which grow as the records define them.
import type { TraceLine } from './read-trace.js';
import {
  REC_AFTER, REC_EVENT, REC_RECV, REC_SEND, REF_NEW, SEND_FLAG_REQUEST, TraceFormatError, V_ARR, V_FALSE, V_FLOAT, V_FLOAT_ARR,
  V_INLINE_STR, V_INT, V_INT_ARR, V_JSON, V_NULL, V_OBJ, V_STR, V_TRUE, V_UNDEF,
} from './trace-format.js';

const utf8 = new TextDecoder();
/** A value slot that is left out of its object (an undefined field). */
const ABSENT = Symbol('absent');

export class TraceDecoder {
  private readonly strings: string[] = [];
  private readonly shapes: string[][] = [];
  private buf: Uint8Array = new Uint8Array(0);
  private dv: DataView = new DataView(this.buf.buffer);
  private pos = 0;

  private chunkOffset = 0;

  constructor(private readonly file: string) {}

  /**
   * Starts on one chunk's payload; `chunkOffset` (its place in the file) only names errors. Lines
   * are then decoded one at a time by `next`, so that each is garbage as soon as its reader is done
   * with it (decoding a whole chunk ahead would keep tens of thousands alive at once).
   */
  begin(payload: Uint8Array, chunkOffset: number): void {
    this.buf = payload;
    this.dv = new DataView(payload.buffer, payload.byteOffset, payload.byteLength);
    this.pos = 0;
    this.chunkOffset = chunkOffset;
  }

  /** The next line of the chunk, or undefined at its end. */
  next(): TraceLine | undefined {
    if (this.pos >= this.buf.length) return undefined;
    try {
      return this.record();
    } catch (e) {
      if (e instanceof TraceFormatError) throw e;
      throw new TraceFormatError(`${this.file}: byte ${this.chunkOffset + this.pos}: ${e instanceof RangeError ? 'a record runs past its chunk' : String(e)}`);
    }
  }

  private record(): TraceLine {
    const tag = this.u8();
    const t = this.f64();
    const actor = this.str();
    switch (tag) {
      case REC_SEND: {
        const to = this.str(), id = this.u32(), replyTo = this.u32(), flags = this.u8();
        const msg = this.value();
        const l: TraceLine = { t, actor, ev: 'send', to, id };
        if (replyTo !== 0) l.replyTo = replyTo;
        if (flags & SEND_FLAG_REQUEST) l.request = true;
        l.msg = msg;
        return l;
      }
      case REC_RECV: {
        const from = this.str(), id = this.u32(), replyTo = this.u32();
        const l: TraceLine = { t, actor, ev: 'recv', from, id };
        if (replyTo !== 0) l.replyTo = replyTo;
        return l;
      }
      case REC_AFTER: {
        const id = this.u32(), at = this.f64();
        return { t, actor, ev: 'after', id, at, msg: this.value() };
      }
      case REC_EVENT: {
        const ev = this.str();
        const l: TraceLine = { t, actor, ev };
        if (this.buf[this.pos] !== V_OBJ) {
          const fields = this.value(); // written as JSON (past the shape limits)
          return typeof fields === 'object' && fields !== null ? { ...l, ...(fields as object) } : l;
        }
        this.pos++;
        this.fields(l); // straight into the line: no object to copy
        return l;
      }
      default:
        throw new TraceFormatError(`${this.file}: byte ${this.pos - 13}: unknown record tag ${tag}`);
    }
  }

  private value(): unknown {
    const tag = this.u8();
    switch (tag) {
      case V_UNDEF:
        return ABSENT;
      case V_NULL:
        return null;
      case V_FALSE:
        return false;
      case V_TRUE:
        return true;
      case V_INT: {
        const v = this.dv.getInt32(this.pos, true);
        this.pos += 4;
        return v;
      }
      case V_FLOAT:
        return this.f64();
      case V_STR:
        return this.str();
      case V_INLINE_STR:
        return this.utf8();
      case V_OBJ: {
        const o: Record<string, unknown> = {};
        this.fields(o);
        return o;
      }
      case V_ARR: {
        const n = this.u32();
        const a = new Array<unknown>(n);
        for (let i = 0; i < n; i++) a[i] = this.value();
        return a;
      }
      case V_INT_ARR: {
        const n = this.u32();
        const a = new Array<number>(n);
        for (let i = 0; i < n; i++, this.pos += 4) a[i] = this.dv.getInt32(this.pos, true);
        return a;
      }
      case V_FLOAT_ARR: {
        const n = this.u32();
        const a = new Array<number>(n);
        for (let i = 0; i < n; i++) a[i] = this.f64();
        return a;
      }
      case V_JSON:
        return JSON.parse(this.utf8());
      default:
        throw new TraceFormatError(`${this.file}: byte ${this.pos - 1}: unknown value tag ${tag}`);
    }
  }

  /** An object's shape reference and values, into `o`. */
  private fields(o: Record<string, unknown>): void {
    const keys = this.shape();
    for (let i = 0; i < keys.length; i++) {
      const v = this.value();
      if (v !== ABSENT) o[keys[i]] = v;
    }
  }

  private str(): string {
    const id = this.u32();
    if (id !== REF_NEW) {
      const s = this.strings[id];
      if (s === undefined) throw new TraceFormatError(`${this.file}: byte ${this.pos - 4}: string ${id} used before it is defined`);
      return s;
    }
    const s = this.utf8();
    this.strings.push(s);
    return s;
  }

  private shape(): string[] {
    const id = this.u32();
    if (id !== REF_NEW) {
      const keys = this.shapes[id];
      if (keys === undefined) throw new TraceFormatError(`${this.file}: byte ${this.pos - 4}: shape ${id} used before it is defined`);
      return keys;
    }
    const n = this.u8();
    const keys: string[] = [];
    for (let i = 0; i < n; i++) keys.push(this.str());
    this.shapes.push(keys);
    return keys;
  }

  private utf8(): string {
    const n = this.u32();
    if (this.pos + n > this.buf.length) throw new RangeError('string past the chunk');
    const s = utf8.decode(this.buf.subarray(this.pos, this.pos + n));
    this.pos += n;
    return s;
  }

  private u8(): number {
    return this.dv.getUint8(this.pos++);
  }

  private u32(): number {
    const v = this.dv.getUint32(this.pos, true);
    this.pos += 4;
    return v;
  }

  private f64(): number {
    const v = this.dv.getFloat64(this.pos, true);
    this.pos += 8;
    return v;
  }
}
