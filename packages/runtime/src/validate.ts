// Checking what crosses a boundary: every actor's entry point checks a message from another actor
// against the shape of its type before acting on it. A message that does not fit (an unknown
// `type`, a field of the wrong type, a number out of its range, an address range that wraps or
// overflows 2^53, an array past its limit) is answered with one `bad_message` reply that says
// exactly what is wrong, and nothing else happens: the actor's state is as it was.
//
//   <the request's own reply type> { ret: -EINVAL, error: "mm: hmm_range_fault.end: 1.5 is not an integer", requestType, …its other fields zero }
//   bad_message { ret: -EINVAL, error, requestType }     (an unknown type, or a message that has no reply)
//
// Answering in the request's own reply type keeps a requester's code as it is: it sees -EINVAL
// where it looks for an errno, as from the kernel's own argument checks.
//
// The shapes are data (one table per actor, beside its protocol.ts), so a reader sees in one place
// what each boundary accepts. Replies to the actor's own requests, timers and the runtime's own
// messages (request_timeout, actor_died) are not checked here: replies reach an actor only if it
// is waiting for them (the cell drops a reply to nothing as `late_reply`), and the continuation
// that waits is the one that knows their shape.
import type { Ctx, Envelope, Message } from './types.js';

/** -EINVAL, as the kernel returns it. */
export const BAD_MESSAGE_RET = -22;
/** Every simulated address is below 2^52 (kernel-mm protocol.ts); lengths are at most that. */
export const ADDR_LIMIT = 2 ** 52;
/** The most elements an array field may hold (a pfn array of 64 GiB of pages). */
export const ARRAY_LIMIT = 2 ** 24;
/** The longest string field. */
export const STRING_LIMIT = 4096;

export interface BadMessage {
  readonly type: 'bad_message';
  readonly ret: number;
  /** "<actor>: <type>.<field>: <value> is not …" — one line. */
  readonly error: string;
  readonly requestType: string;
}

/**
 * A field's kind; `?` after it makes the field optional (absent or undefined).
 *   int     a safe integer            count   an integer from 0 to 2^32
 *   id      an integer from 0 to 2^53 (pids, subscription ids, handles, pfns)
 *   addr    an integer from 0 to 2^52 (a byte address)        len  the same (a byte length)
 *   num     a finite number            str     a string (at most STRING_LIMIT)
 *   bool    true or false              str|null  a string or null
 *   f64s    a Float64Array or an array of finite numbers (at most ARRAY_LIMIT)
 *   u8s     a Uint8Array or an array of integers 0–255          any   anything
 * A function is a custom check: it returns what is wrong, or undefined.
 */
export type FieldKind = 'int' | 'count' | 'id' | 'addr' | 'len' | 'num' | 'str' | 'bool' | 'str|null' | 'f64s' | 'u8s' | 'any';
export type FieldSpec = FieldKind | `${FieldKind}?` | ((v: unknown) => string | undefined);

export interface MessageShape {
  fields: Record<string, FieldSpec>;
  /** Checks between fields (a range that wraps, an end before its start), after the fields passed. */
  check?: (m: Record<string, unknown>) => string | undefined;
  /** The reply this request gets (its type, its other fields at zero); absent: a bad one is answered bad_message. */
  reply?: { type: string } & Record<string, unknown>;
}

export type Shapes = Record<string, MessageShape>;

const show = (v: unknown): string => {
  if (typeof v === 'string') return JSON.stringify(v.length > 40 ? `${v.slice(0, 40)}…` : v);
  if (typeof v === 'number' || typeof v === 'boolean' || v === null || v === undefined) return String(v);
  if (Array.isArray(v)) return `a list of ${v.length}`;
  if (ArrayBuffer.isView(v)) return `a ${v.constructor.name}`;
  return typeof v === 'object' ? 'a mapping' : typeof v;
};

const isInt = (v: unknown): v is number => typeof v === 'number' && Number.isSafeInteger(v);

function checkNumbers(v: unknown, what: string, ok: (x: number) => boolean, typed: (v: unknown) => boolean): string | undefined {
  if (!Array.isArray(v) && !typed(v)) return `${show(v)} is not ${what}`;
  const a = v as ArrayLike<number>;
  if (a.length > ARRAY_LIMIT) return `${a.length} elements; at most ${ARRAY_LIMIT}`;
  for (let i = 0; i < a.length; i++) if (!ok(a[i])) return `element ${i}: ${show(a[i])} is not valid in ${what}`;
  return undefined;
}

/** What is wrong with `v` as a `kind`, or undefined. */
export function checkField(kind: FieldKind, v: unknown): string | undefined {
  switch (kind) {
    case 'int':
      return isInt(v) ? undefined : `${show(v)} is not an integer`;
    case 'count':
      return isInt(v) && v >= 0 && v <= 2 ** 32 ? undefined : `${show(v)} is not a count (an integer from 0 to 2^32)`;
    case 'id':
      return isInt(v) && v >= 0 ? undefined : `${show(v)} is not an id (an integer from 0 to 2^53)`;
    case 'addr':
      return isInt(v) && v >= 0 && v < ADDR_LIMIT ? undefined : `${show(v)} is not an address (an integer from 0 to 2^52)`;
    case 'len':
      return isInt(v) && v >= 0 && v <= ADDR_LIMIT ? undefined : `${show(v)} is not a length (an integer from 0 to 2^52)`;
    case 'num':
      return typeof v === 'number' && Number.isFinite(v) ? undefined : `${show(v)} is not a finite number`;
    case 'str':
      return typeof v === 'string' && v.length <= STRING_LIMIT ? undefined : `${show(v)} is not a string (at most ${STRING_LIMIT} characters)`;
    case 'str|null':
      return v === null || (typeof v === 'string' && v.length <= STRING_LIMIT) ? undefined : `${show(v)} is not a string or null`;
    case 'bool':
      return typeof v === 'boolean' ? undefined : `${show(v)} is not true or false`;
    case 'f64s':
      return checkNumbers(v, 'a list of numbers', (x) => typeof x === 'number' && Number.isFinite(x), (x) => x instanceof Float64Array);
    case 'u8s':
      return checkNumbers(v, 'a list of bytes', (x) => isInt(x) && x >= 0 && x <= 255, (x) => x instanceof Uint8Array);
    case 'any':
      return undefined;
  }
}

/** What is wrong with `msg` as the actor `self` takes it, or undefined if it fits its shape. */
export function checkMessageShape(self: string, msg: Message, shapes: Shapes): string | undefined {
  const shape = Object.prototype.hasOwnProperty.call(shapes, msg.type) ? shapes[msg.type] : undefined;
  if (shape === undefined) {
    const known = Object.keys(shapes);
    return `${self}: unknown message type ${show(msg.type)}; ${self} takes ${known.join(', ')}`;
  }
  const m = msg as unknown as Record<string, unknown>;
  for (const [field, spec] of Object.entries(shape.fields)) {
    const v = m[field];
    let why: string | undefined;
    if (typeof spec === 'function') why = spec(v);
    else {
      const optional = spec.endsWith('?');
      if (v === undefined) why = optional ? undefined : 'missing';
      else why = checkField((optional ? spec.slice(0, -1) : spec) as FieldKind, v);
    }
    if (why !== undefined) return `${self}: ${msg.type}.${field}: ${why}`;
  }
  const cross = shape.check?.(m);
  return cross === undefined ? undefined : `${self}: ${msg.type}: ${cross}`;
}

/**
 * At the top of an actor's receive: true if `env` was a bad message from another actor, now
 * answered with bad_message (the caller then returns without touching its state). `extra` is the
 * actor's own check that needs its state (an unpin of a frame that holds no pin).
 */
export function rejectBadMessage(env: Envelope<Message>, ctx: Ctx<any>, shapes: Shapes, extra?: (m: Message) => string | undefined): boolean {
  if (env.replyTo !== 0 || env.from === ctx.self) return false;
  const t = env.msg.type;
  if (t === 'actor_died' || t === 'request_timeout') return false;
  const error = checkMessageShape(ctx.self, env.msg, shapes) ?? (extra ? prefixed(ctx.self, t, extra(env.msg)) : undefined);
  if (error === undefined) return false;
  ctx.trace('bad_message', { from: env.from, id: env.id, type: t, error });
  const template = Object.prototype.hasOwnProperty.call(shapes, t) ? shapes[t].reply : undefined;
  const reply: BadMessage = { type: 'bad_message', ret: BAD_MESSAGE_RET, error, requestType: t };
  ctx.reply(env, template ? { ...template, ret: BAD_MESSAGE_RET, error, requestType: t } : reply);
  return true;
}

function prefixed(self: string, type: string, why: string | undefined): string | undefined {
  return why === undefined ? undefined : `${self}: ${type}: ${why}`;
}

/** Range checks shared by the shapes: [start, end) ordered, page-aligned if asked. */
export function rangeCheck(startKey: string, endKey: string, align = 1): (m: Record<string, unknown>) => string | undefined {
  return (m) => {
    const s = m[startKey] as number;
    const e = m[endKey] as number;
    if (e < s) return `${endKey} ${e} is below ${startKey} ${s}`;
    if (align > 1 && (s % align !== 0 || e % align !== 0)) return `[${s}, ${e}) is not aligned to ${align} bytes`;
    return undefined;
  };
}

/** addr + length must not pass 2^52 (nor wrap). */
export function spanCheck(addrKey: string, lenKey: string): (m: Record<string, unknown>) => string | undefined {
  return (m) => {
    const a = m[addrKey] as number;
    const l = m[lenKey] as number;
    return a + l > ADDR_LIMIT ? `${addrKey} + ${lenKey} = ${a + l} passes 2^52, the end of the address space` : undefined;
  };
}
