// Writing trace records (trace-format.ts) into a growing byte buffer, one buffer per trace file.
// The hot path is `send`/`recv`: a few fixed-width fields and the message, whose keys are a shape
// written once per key list and whose strings are interned once per file.
import {
  INTERN_CHARS_MAX, REC_AFTER, REC_EVENT, REC_RECV, REC_SEND, REF_NEW, SEND_FLAG_REQUEST, SHAPES_PER_NAME_MAX,
  SHAPE_KEYS_MAX, SHAPES_MAX, STRINGS_MAX, V_ARR, V_FALSE, V_FLOAT, V_FLOAT_ARR, V_INLINE_STR, V_INT, V_INT_ARR, V_JSON, V_NULL, V_OBJ,
  V_STR, V_TRUE, V_UNDEF,
} from './trace-format.js';

interface Shape {
  id: number;
  keys: string[];
  /** Writes the values of an object of this shape, in key order (compiled once per shape: see `writerFor`). */
  write: (enc: TraceEncoder, o: Record<string, unknown>) => void;
}

/**
 * A function writing `o[key]` for each key in turn, with each key a constant in its own code, so
 * that every property load has a cache of its own; a loop over `o[keys[i]]` would be one load
 * site for every key of every message type, slow as no cache serves it. Keys come from the
 * simulation's own messages and are quoted with JSON.stringify.
 */
function writerFor(keys: string[], name: string | undefined): Shape['write'] {
  // A message's `type` is the name its shape was found by: its string id is kept with the writer.
  const body = keys.map((k) => (k === 'type' && name !== undefined ? `e.typeValue(o.type, ref);` : `e.value(o[${JSON.stringify(k)}]);`)).join('\n');
  const make = new Function('ref', `return function write(e, o) {\n${body}\n};`) as (ref: StrRef) => Shape['write'];
  return make({ s: name ?? '', id: -1 });
}

const INITIAL_BYTES = 1 << 21;
const utf8 = new TextEncoder();

/** Does `o` have exactly `keys`, in that order? */
function hasKeys(o: object, keys: string[]): boolean {
  let i = 0;
  for (const k in o) if (keys[i++] !== k) return false;
  return i === keys.length;
}

/** -0 counts as 0: it is written as JSON would write it. */
function isInt32(v: number): boolean {
  return (v | 0) === v;
}

/**
 * A string the writer names often (an actor id), with its id in this file once written: a tracer
 * keeps one per actor it names, so that the record need not look the string up.
 */
export interface StrRef {
  readonly s: string;
  /** -1 until the string has been written to this file. */
  id: number;
}

/** A record's actor or peer: a string, or a StrRef that remembers its id. */
type Name = string | StrRef;

export class TraceEncoder {
  private buf = new Uint8Array(INITIAL_BYTES);
  private dv = new DataView(this.buf.buffer);
  private pos = 0;
  private readonly strings = new Map<string, number>();
  /** Shapes by message type / event name; objects without a name are keyed by their joined keys. */
  private readonly shapesByName = new Map<string, Shape[]>();
  private nextShape = 0;
  private mruName0: string | undefined;
  private mruList0: Shape[] | undefined;
  private mruName1: string | undefined;
  private mruList1: Shape[] | undefined;
  records = 0;

  /** Bytes waiting to be taken. */
  get length(): number {
    return this.pos;
  }

  /**
   * The bytes written since the last take (a chunk's payload), and a fresh start. The bytes are a
   * view of the buffer, valid until the next record is written: the sink writes them at once.
   */
  take(): Uint8Array {
    const out = this.buf.subarray(0, this.pos);
    this.pos = 0;
    return out;
  }

  /**
   * The bytes written since the last take, handed over rather than viewed: the encoder writes its
   * next record into a new buffer, so a trace kept in memory holds its chunks without copying them.
   */
  detach(): Uint8Array {
    const out = this.buf.subarray(0, this.pos);
    this.buf = new Uint8Array(0);
    this.dv = new DataView(this.buf.buffer);
    this.pos = 0;
    return out;
  }

  /** A reference to `s` for this file: give it back to send/recv/after/event in place of the string. */
  ref(s: string): StrRef {
    return { s, id: this.strings.get(s) ?? -1 };
  }

  send(t: number, actor: Name, to: Name, id: number, replyTo: number, request: boolean, msg: object): void {
    if (typeof actor !== 'string' && actor.id >= 0 && typeof to !== 'string' && to.id >= 0) {
      // The common case, both names known: the fixed part written in one go.
      this.ensure(26);
      const dv = this.dv, p = this.pos;
      dv.setUint8(p, REC_SEND);
      dv.setFloat64(p + 1, t, true);
      dv.setUint32(p + 9, actor.id, true);
      dv.setUint32(p + 13, to.id, true);
      dv.setUint32(p + 17, id, true);
      dv.setUint32(p + 21, replyTo, true);
      dv.setUint8(p + 25, request ? SEND_FLAG_REQUEST : 0);
      this.pos = p + 26;
      this.value(msg);
      this.records++;
      return;
    }
    this.head(REC_SEND, t);
    this.name(actor);
    this.name(to);
    this.ensure(9);
    const dv = this.dv, p = this.pos;
    dv.setUint32(p, id, true);
    dv.setUint32(p + 4, replyTo, true);
    dv.setUint8(p + 8, request ? SEND_FLAG_REQUEST : 0);
    this.pos = p + 9;
    this.value(msg);
    this.records++;
  }

  recv(t: number, actor: Name, from: Name, id: number, replyTo: number): void {
    if (typeof actor !== 'string' && actor.id >= 0 && typeof from !== 'string' && from.id >= 0) {
      this.ensure(25);
      const dv = this.dv, p = this.pos;
      dv.setUint8(p, REC_RECV);
      dv.setFloat64(p + 1, t, true);
      dv.setUint32(p + 9, actor.id, true);
      dv.setUint32(p + 13, from.id, true);
      dv.setUint32(p + 17, id, true);
      dv.setUint32(p + 21, replyTo, true);
      this.pos = p + 25;
      this.records++;
      return;
    }
    this.head(REC_RECV, t);
    this.name(actor);
    this.name(from);
    this.ensure(8);
    this.dv.setUint32(this.pos, id, true);
    this.dv.setUint32(this.pos + 4, replyTo, true);
    this.pos += 8;
    this.records++;
  }

  after(t: number, actor: Name, id: number, at: number, msg: object): void {
    this.head(REC_AFTER, t);
    this.name(actor);
    this.ensure(12);
    this.dv.setUint32(this.pos, id, true);
    this.dv.setFloat64(this.pos + 4, at, true);
    this.pos += 12;
    this.value(msg);
    this.records++;
  }

  event(t: number, actor: Name, ev: string, fields: Record<string, unknown>): void {
    this.head(REC_EVENT, t);
    this.name(actor);
    this.str(ev);
    this.object(fields, ev);
    this.records++;
  }

  private head(tag: number, t: number): void {
    this.ensure(9);
    this.dv.setUint8(this.pos, tag);
    this.dv.setFloat64(this.pos + 1, t, true);
    this.pos += 9;
  }

  // ---- values ----

  /** One value (the shape writers call it: not for use outside this file). */
  value(v: unknown): void {
    switch (typeof v) {
      case 'number':
        this.ensure(9);
        if (isInt32(v)) {
          this.dv.setUint8(this.pos, V_INT);
          this.dv.setInt32(this.pos + 1, v, true);
          this.pos += 5;
        } else {
          this.dv.setUint8(this.pos, V_FLOAT);
          this.dv.setFloat64(this.pos + 1, v, true);
          this.pos += 9;
        }
        return;
      case 'string':
        return this.stringValue(v);
      case 'boolean':
        return this.tag(v ? V_TRUE : V_FALSE);
      case 'undefined':
        return this.tag(V_UNDEF);
      case 'object':
        if (v === null) return this.tag(V_NULL);
        if (Array.isArray(v)) return this.array(v);
        if (ArrayBuffer.isView(v) && !(v instanceof DataView) && !(v instanceof BigInt64Array) && !(v instanceof BigUint64Array)) {
          return this.numbers(v as unknown as ArrayLike<number>);
        }
        if (v.constructor === Object || Object.getPrototypeOf(v) === null) {
          const type = (v as { type?: unknown }).type;
          return this.object(v as Record<string, unknown>, typeof type === 'string' ? type : undefined);
        }
        return this.json(v);
      default:
        return this.json(v);
    }
  }

  private tag(tag: number): void {
    this.ensure(1);
    this.dv.setUint8(this.pos++, tag);
  }

  /** A message's `type` (the shape writers call it): `ref` remembers its string id. */
  typeValue(v: unknown, ref: StrRef): void {
    if (v !== ref.s) return this.value(v);
    this.tag(V_STR);
    this.name(ref);
  }

  private stringValue(s: string): void {
    if (s.length <= INTERN_CHARS_MAX && (this.strings.size < STRINGS_MAX || this.strings.has(s))) {
      this.tag(V_STR);
      this.str(s);
      return;
    }
    this.tag(V_INLINE_STR);
    this.utf8(s);
  }

  private array(a: unknown[]): void {
    let numeric = a.length > 0;
    for (let i = 0; numeric && i < a.length; i++) numeric = typeof a[i] === 'number';
    if (numeric) return this.numbers(a as number[]);
    this.ensure(5);
    this.dv.setUint8(this.pos, V_ARR);
    this.dv.setUint32(this.pos + 1, a.length, true);
    this.pos += 5;
    for (const x of a) this.value(x === undefined ? null : x); // JSON writes an undefined element as null
  }

  private numbers(a: ArrayLike<number>): void {
    const n = a.length;
    let ints = true;
    for (let i = 0; ints && i < n; i++) ints = isInt32(a[i]);
    this.ensure(5 + n * (ints ? 4 : 8));
    const dv = this.dv;
    dv.setUint8(this.pos, ints ? V_INT_ARR : V_FLOAT_ARR);
    dv.setUint32(this.pos + 1, n, true);
    let p = this.pos + 5;
    if (ints) for (let i = 0; i < n; i++, p += 4) dv.setInt32(p, a[i], true);
    else for (let i = 0; i < n; i++, p += 8) dv.setFloat64(p, a[i], true);
    this.pos = p;
  }

  private object(o: Record<string, unknown>, name: string | undefined): void {
    const shape = this.shape(o, name);
    if (shape === undefined) return this.json(o);
    shape.write(this, o);
  }

  private json(v: unknown): void {
    let text: string;
    try {
      text = JSON.stringify(v) ?? 'null';
    } catch (e) {
      text = JSON.stringify(`unserialisable: ${e instanceof Error ? e.message : String(e)}`);
    }
    this.tag(V_JSON);
    this.utf8(text);
  }

  // ---- definitions, written where first used ----

  /**
   * Writes OBJ and the shape reference for `o`'s keys (defining the shape if new) and returns the
   * shape; writes nothing and returns undefined if `o` must be written as JSON.
   */
  private shape(o: object, name: string | undefined): Shape | undefined {
    let list: Shape[] | undefined;
    let key = name;
    // Senders alternate between a few message types: the last two are found by identity.
    if (name !== undefined && name === this.mruName0) list = this.mruList0;
    else if (name !== undefined && name === this.mruName1) list = this.mruList1;
    else {
      key ??= Object.keys(o).join('\u0000');
      list = this.shapesByName.get(key);
      if (name !== undefined && list !== undefined) {
        this.mruName1 = this.mruName0;
        this.mruList1 = this.mruList0;
        this.mruName0 = name;
        this.mruList0 = list;
      }
    }
    if (list !== undefined) {
      for (let i = 0; i < list.length; i++) {
        if (!hasKeys(o, list[i].keys)) continue;
        this.ensure(5);
        this.dv.setUint8(this.pos, V_OBJ);
        this.dv.setUint32(this.pos + 1, list[i].id, true);
        this.pos += 5;
        return list[i];
      }
      if (list.length >= SHAPES_PER_NAME_MAX) return undefined;
    } else this.shapesByName.set(key!, (list = []));
    const keys = Object.keys(o);
    if (keys.length > SHAPE_KEYS_MAX || this.nextShape >= SHAPES_MAX) return undefined;
    const shape: Shape = { id: this.nextShape++, keys, write: writerFor(keys, name) };
    list.push(shape);
    this.ensure(6);
    this.dv.setUint8(this.pos, V_OBJ);
    this.dv.setUint32(this.pos + 1, REF_NEW, true);
    this.dv.setUint8(this.pos + 5, keys.length);
    this.pos += 6;
    for (const k of keys) this.str(k);
    return shape;
  }

  /** A record's name: a known id straight away, else as any string (and the ref learns its id). */
  private name(n: Name): void {
    if (typeof n === 'string') return this.str(n);
    if (n.id >= 0) {
      this.ensure(4);
      this.dv.setUint32(this.pos, n.id, true);
      this.pos += 4;
      return;
    }
    this.str(n.s);
    n.id = this.strings.get(n.s)!;
  }

  /** A string reference: its id, or its definition if new. */
  private str(s: string): void {
    const id = this.strings.get(s);
    this.ensure(4);
    if (id !== undefined) {
      this.dv.setUint32(this.pos, id, true);
      this.pos += 4;
      return;
    }
    this.strings.set(s, this.strings.size);
    this.dv.setUint32(this.pos, REF_NEW, true);
    this.pos += 4;
    this.utf8(s);
  }

  private utf8(s: string): void {
    this.ensure(4 + s.length * 3);
    const { written } = utf8.encodeInto(s, this.buf.subarray(this.pos + 4));
    this.dv.setUint32(this.pos, written, true);
    this.pos += 4 + written;
  }

  private ensure(n: number): void {
    if (this.pos + n <= this.buf.length) return;
    let size = Math.max(this.buf.length * 2, INITIAL_BYTES);
    while (size < this.pos + n) size *= 2;
    const next = new Uint8Array(size);
    next.set(this.buf.subarray(0, this.pos));
    this.buf = next;
    this.dv = new DataView(next.buffer);
  }
}
