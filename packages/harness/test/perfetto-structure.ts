// What a Chrome trace-event JSON file from `svmsim export --perfetto` must be for Perfetto to
// open it whole: every event of a shape this JSON schema allows (the events the exporter emits),
// every track's complete slices properly nested, every flow with both ends, each end inside a
// slice of its track (so it binds), and every process and thread named.
import AjvModule from 'ajv';

const Ajv = (AjvModule as unknown as { default?: typeof AjvModule }).default ?? AjvModule;

const int = { type: 'integer', minimum: 0 };
const time = { type: 'number', minimum: 0 };

/** A JSON schema of the file: {displayTimeUnit, traceEvents: [event…], metadata}. */
export const PERFETTO_SCHEMA = {
  type: 'object',
  required: ['traceEvents'],
  properties: {
    displayTimeUnit: { enum: ['ns', 'ms'] },
    metadata: { type: 'object' },
    traceEvents: {
      type: 'array',
      items: {
        oneOf: [
          {
            type: 'object', additionalProperties: false, required: ['ph', 'name', 'pid', 'args'],
            properties: { ph: { const: 'M' }, name: { enum: ['process_name', 'thread_name', 'process_sort_index', 'thread_sort_index'] }, pid: int, tid: int, args: { type: 'object' } },
          },
          {
            type: 'object', additionalProperties: false, required: ['ph', 'name', 'cat', 'ts', 'dur', 'pid', 'tid'],
            properties: { ph: { const: 'X' }, name: { type: 'string' }, cat: { type: 'string' }, ts: time, dur: { type: 'number', exclusiveMinimum: 0 }, pid: int, tid: int, args: { type: 'object' } },
          },
          {
            type: 'object', additionalProperties: false, required: ['ph', 'name', 'cat', 'id', 'ts', 'pid', 'tid'],
            properties: { ph: { enum: ['s', 'f'] }, name: { type: 'string' }, cat: { type: 'string' }, id: int, ts: time, pid: int, tid: int, bp: { const: 'e' } },
          },
          {
            type: 'object', additionalProperties: false, required: ['ph', 'name', 'ts', 'pid', 'args'],
            properties: { ph: { const: 'C' }, name: { type: 'string' }, ts: time, pid: int, args: { type: 'object', additionalProperties: { type: 'number' } } },
          },
        ],
      },
    },
  },
} as const;

interface Ev {
  ph: string;
  name: string;
  ts: number;
  dur: number;
  pid: number;
  tid: number;
  id: number;
  bp?: string;
  /** Its place in the file (Perfetto keeps file order among events of one time stamp). */
  at?: number;
}

/** The problems of a parsed export (empty: Perfetto opens it whole), and its counts. */
export function perfettoProblems(doc: unknown): { problems: string[]; slices: number; flows: number; counters: number } {
  const problems: string[] = [];
  const validate = new Ajv({ allErrors: false }).compile(PERFETTO_SCHEMA);
  if (!validate(doc)) return { problems: [`schema: ${JSON.stringify(validate.errors?.slice(0, 3))}`], slices: 0, flows: 0, counters: 0 };
  const events = (doc as { traceEvents: Ev[] }).traceEvents;
  const nsOf = (us: number) => Math.round(us * 1000);
  const tracks = new Map<string, { a: number; b: number }[]>();
  const named = new Set<string>();
  const processes = new Set<number>();
  const flows = new Map<number, Ev[]>();
  let counters = 0;
  events.forEach((e, i) => (e.at = i));
  for (const e of events) {
    const key = `${e.pid}/${e.tid}`;
    if (e.ph === 'M' && e.name === 'thread_name') named.add(key);
    else if (e.ph === 'M' && e.name === 'process_name') processes.add(e.pid);
    else if (e.ph === 'X') {
      let t = tracks.get(key);
      if (!t) tracks.set(key, (t = []));
      t.push({ a: nsOf(e.ts), b: nsOf(e.ts) + nsOf(e.dur) });
    } else if (e.ph === 's' || e.ph === 'f') {
      const f = flows.get(e.id) ?? [];
      f.push(e);
      flows.set(e.id, f);
    } else if (e.ph === 'C') counters++;
    if (e.ph !== 'M' && !processes.has(e.pid)) problems.push(`${e.ph} event on pid ${e.pid} before (or without) its process_name`);
  }
  let slices = 0;
  for (const [key, list] of tracks) {
    if (!named.has(key)) problems.push(`track ${key} has slices but no thread_name`);
    list.sort((x, y) => x.a - y.a || y.b - x.b);
    slices += list.length;
    const stack: { a: number; b: number }[] = [];
    for (const s of list) {
      while (stack.length > 0 && stack[stack.length - 1].b <= s.a) stack.pop();
      const top = stack[stack.length - 1];
      if (top && s.b > top.b) {
        problems.push(`track ${key}: slice [${s.a}, ${s.b}) overlaps [${top.a}, ${top.b}) without nesting`);
        if (problems.length > 20) return { problems, slices, flows: flows.size, counters };
      }
      stack.push(s);
    }
  }
  const inside = (e: Ev): boolean => {
    const list = tracks.get(`${e.pid}/${e.tid}`);
    const p = nsOf(e.ts);
    if (!list) return false;
    let lo = 0, hi = list.length - 1, best = -1;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      if (list[mid].a <= p) (best = mid), (lo = mid + 1);
      else hi = mid - 1;
    }
    // Slices are sorted by start; any slice starting at or before p may enclose it (nested ones too).
    for (let i = best; i >= 0 && i > best - 64; i--) if (list[i].a <= p && p < list[i].b) return true;
    return false;
  };
  for (const [id, ends] of flows) {
    const s = ends.filter((e) => e.ph === 's'), f = ends.filter((e) => e.ph === 'f');
    if (s.length !== 1 || f.length !== 1) problems.push(`flow ${id}: ${s.length} start(s) and ${f.length} end(s)`);
    for (const e of ends) if (!inside(e)) problems.push(`flow ${id}: its ${e.ph} at ${e.ts} µs on ${e.pid}/${e.tid} is inside no slice of that track`);
    if (f[0] && f[0].bp !== 'e') problems.push(`flow ${id}: its end does not bind to the enclosing slice (bp: "e")`);
    // Read in (ts, file order): an end read before its start is an end without a start.
    if (s[0] && f[0] && (f[0].ts < s[0].ts || (f[0].ts === s[0].ts && f[0].at! < s[0].at!))) problems.push(`flow ${id}: its end comes before its start`);
    if (problems.length > 20) break;
  }
  return { problems, slices, flows: flows.size, counters };
}
