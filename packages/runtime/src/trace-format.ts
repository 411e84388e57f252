// The binary trace format (`.svmt`): what the trace writer (trace-encoder.ts) emits and the reader
// (trace-decoder.ts) takes back, line for line the same objects the NDJSON trace had. Why binary:
// a JSON line per small message cost ~650 ns, more than delivering the message; a record here
// costs ~100 ns, because a message's keys are written once per shape and its strings once per
// file. A real run's records, many of them long pfn arrays where the numbers are most of the work
// either way, are written about twice as fast as NDJSON lines (`npm run bench`, `trace.written`).
//
//   file    := header chunk*
//   header  := "SVMTRACE" u32 version
//   chunk   := u32 byteLength payload          (written at once: a crash leaves whole chunks)
//   payload := record*
//   record  := u8 tag, then by tag:
//     SEND    f64 t, str actor, str to, u32 id, u32 replyTo, u8 flags, value msg    flags: 1 = request
//     RECV    f64 t, str actor, str from, u32 id, u32 replyTo
//     AFTER   f64 t, str actor, u32 id, f64 at, value msg
//     EVENT   f64 t, str actor, str ev, value fields      a domain event: {t, actor, ev, ...fields}
//   str     := u32 id                          a string defined earlier in the file
//            | u32 NEW, u32 byteLength, utf8   a new string: it takes the next id (0, 1, 2, …)
//   shape   := u32 id | u32 NEW, u8 nKeys, str × nKeys     an object's key list, ids likewise
//   value   := u8 tag, then by tag:
//     UNDEF | NULL | FALSE | TRUE                 (an undefined field is left out, as JSON does)
//     INT i32 | FLOAT f64 | STR str | INLINE_STR u32 byteLength utf8
//     OBJ shape, value × nKeys | ARR u32 n, value × n
//     INT_ARR u32 n, i32 × n | FLOAT_ARR u32 n, f64 × n    (number arrays and typed arrays)
//     JSON u32 byteLength, utf8                   (anything else, as JSON)
// All numbers little-endian. String and shape ids are per file and defined where first used, so a
// file decodes front to back in one pass. Actor ids, message types, field names and short strings
// are interned; long strings are inline, so the string table stays small however long the run.

export const TRACE_MAGIC = 'SVMTRACE';
export const TRACE_VERSION = 1;
export const TRACE_HEADER_BYTES = 12;
/** The file name extension of a binary trace. */
export const TRACE_EXT = '.svmt';

export const REC_SEND = 16;
export const REC_RECV = 17;
export const REC_AFTER = 18;
export const REC_EVENT = 19;

export const SEND_FLAG_REQUEST = 1;
/** In a `str` or `shape` reference: a definition follows. */
export const REF_NEW = 0xffffffff;

export const V_UNDEF = 0;
export const V_NULL = 1;
export const V_FALSE = 2;
export const V_TRUE = 3;
export const V_INT = 4;
export const V_FLOAT = 5;
export const V_STR = 6;
export const V_INLINE_STR = 7;
export const V_OBJ = 8;
export const V_ARR = 9;
export const V_INT_ARR = 10;
export const V_FLOAT_ARR = 11;
export const V_JSON = 12;

/** Strings longer than this are written inline rather than interned. */
export const INTERN_CHARS_MAX = 48;
/** Past this many interned strings per file, new strings are written inline. */
export const STRINGS_MAX = 1 << 16;
/** Distinct key lists kept per message type or event name; past it, objects of that name are JSON. */
export const SHAPES_PER_NAME_MAX = 32;
/** Shapes per file (each compiles a writer); past it, objects of a new key list are JSON. */
export const SHAPES_MAX = 1 << 14;
/** Keys per object shape (u8); objects with more are JSON. */
export const SHAPE_KEYS_MAX = 255;

/** A trace file that cannot be read: names the file and the byte offset. */
export class TraceFormatError extends Error {
  override name = 'TraceFormatError';
}
