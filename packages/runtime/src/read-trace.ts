// Reading a trace back, streamed: a file is read one chunk (about 1 MiB) at a time, so a trace of
// any size is read in memory bounded by its number of files × one chunk.
//
// A LocalScheduler trace is one file in delivery order; a ThreadScheduler trace is one file per
// actor (plus the scheduler's), merged here by simulated time `t` (stable: lines of one file keep
// their order, which is that actor's real order, and ties go to the file that sorts first).
// Binary traces (`.svmt`, trace-format.ts) and the NDJSON traces of earlier versions (`.ndjson`)
// read the same way, as the same line objects.
import fs from 'node:fs';
import path from 'node:path';
import { StringDecoder } from 'node:string_decoder';
import { TraceDecoder } from './trace-decoder.js';
import { MemoryTrace } from './trace.js';
import { TRACE_EXT, TRACE_HEADER_BYTES, TRACE_MAGIC, TRACE_VERSION, TraceFormatError } from './trace-format.js';

export { TraceFormatError } from './trace-format.js';

export interface TraceLine {
  t: number;
  actor: string;
  ev: string;
  [field: string]: unknown;
}

const NDJSON_EXT = '.ndjson';
const READ_BYTES = 1 << 20;

/** One file's lines, a chunk at a time. */
interface Cursor {
  readonly file: string;
  /** The next line, or undefined at the end. */
  peek(): TraceLine | undefined;
  take(): TraceLine;
  close(): void;
}

/** The lines of a binary trace file. A chunk cut short by a killed writer ends the file with a warning. */
class BinaryCursor implements Cursor {
  private fd: number;
  private offset = TRACE_HEADER_BYTES;
  private line: TraceLine | undefined;
  private readonly decoder: TraceDecoder;
  private readonly size: number;

  constructor(readonly file: string, private readonly warn: (w: string) => void) {
    this.fd = fs.openSync(file, 'r');
    this.size = fs.fstatSync(this.fd).size;
    const header = Buffer.alloc(TRACE_HEADER_BYTES);
    const got = fs.readSync(this.fd, header, 0, TRACE_HEADER_BYTES, 0);
    if (got < TRACE_HEADER_BYTES || header.toString('latin1', 0, 8) !== TRACE_MAGIC) {
      fs.closeSync(this.fd);
      throw new TraceFormatError(`${file}: not an svmsim trace (no ${TRACE_MAGIC} header)`);
    }
    const version = header.readUInt32LE(8);
    if (version !== TRACE_VERSION) {
      fs.closeSync(this.fd);
      throw new TraceFormatError(`${file}: trace format version ${version}; this svmsim reads version ${TRACE_VERSION}`);
    }
    this.decoder = new TraceDecoder(file);
  }

  peek(): TraceLine | undefined {
    while (this.line === undefined) {
      this.line = this.decoder.next();
      if (this.line === undefined && !this.fill()) return undefined;
    }
    return this.line;
  }

  take(): TraceLine {
    const l = this.line!;
    this.line = undefined;
    return l;
  }

  close(): void {
    if (this.fd >= 0) fs.closeSync(this.fd);
    this.fd = -1;
  }

  /** Reads the next chunk into the decoder; false at the end of the file. */
  private fill(): boolean {
    if (this.fd < 0 || this.offset >= this.size) return false;
    const len = Buffer.alloc(4);
    if (this.offset + 4 > this.size || fs.readSync(this.fd, len, 0, 4, this.offset) < 4) return this.cut();
    const n = len.readUInt32LE(0);
    if (this.offset + 4 + n > this.size) return this.cut();
    const payload = Buffer.alloc(n);
    fs.readSync(this.fd, payload, 0, n, this.offset + 4);
    this.decoder.begin(payload, this.offset + 4);
    this.offset += 4 + n;
    return true;
  }

  private cut(): false {
    this.warn(`${this.file}: ends inside a chunk at byte ${this.offset} (the writing process was killed?): read up to there`);
    this.close();
    return false;
  }
}

/** The lines of an NDJSON trace (the format before binary traces). */
class NdjsonCursor implements Cursor {
  private fd: number;
  private rest = '';
  private lines: TraceLine[] = [];
  private at = 0;
  private lineNo = 0;
  private readonly block = Buffer.alloc(READ_BYTES);
  /** Keeps a character cut by a block's end for the next block. */
  private readonly utf8 = new StringDecoder('utf8');

  constructor(readonly file: string) {
    this.fd = fs.openSync(file, 'r');
  }

  peek(): TraceLine | undefined {
    while (this.at === this.lines.length) if (!this.fill()) return undefined;
    return this.lines[this.at];
  }

  take(): TraceLine {
    return this.lines[this.at++];
  }

  close(): void {
    if (this.fd >= 0) fs.closeSync(this.fd);
    this.fd = -1;
  }

  private fill(): boolean {
    if (this.fd < 0) return false;
    const n = fs.readSync(this.fd, this.block, 0, READ_BYTES, null);
    let text: string;
    if (n === 0) {
      this.close();
      if (this.rest.length === 0) return false;
      text = this.rest + this.utf8.end() + '\n';
    } else text = this.rest + this.utf8.write(this.block.subarray(0, n));
    const last = text.lastIndexOf('\n');
    this.rest = last < 0 ? text : text.slice(last + 1);
    this.lines = [];
    this.at = 0;
    if (last >= 0) for (const raw of text.slice(0, last).split('\n')) this.parse(raw);
    return true;
  }

  private parse(raw: string): void {
    this.lineNo++;
    if (raw.length === 0) return;
    let v: TraceLine;
    try {
      v = JSON.parse(raw) as TraceLine;
    } catch {
      throw new TraceFormatError(`${this.file}:${this.lineNo}: not a JSON line: ${raw.slice(0, 120)}`);
    }
    if (typeof v.t !== 'number' || typeof v.actor !== 'string' || typeof v.ev !== 'string') {
      throw new TraceFormatError(`${this.file}:${this.lineNo}: a trace line needs numeric t, string actor and ev: ${raw.slice(0, 120)}`);
    }
    this.lines.push(v);
  }
}

/**
 * The trace files of a run: `target` is a trace directory (binary files, or NDJSON ones from
 * earlier versions) or one trace file.
 */
export function traceFiles(target: string): string[] {
  let st: fs.Stats;
  try {
    st = fs.statSync(target);
  } catch {
    throw new TraceFormatError(`${target}: no such trace directory or file`);
  }
  if (st.isFile()) return [target];
  const names = fs.readdirSync(target).sort();
  const binary = names.filter((f) => f.endsWith(TRACE_EXT));
  const files = binary.length > 0 ? binary : names.filter((f) => f.endsWith(NDJSON_EXT));
  if (files.length === 0) throw new TraceFormatError(`${target}: no trace files (*${TRACE_EXT} or *${NDJSON_EXT})`);
  return files.map((f) => path.join(target, f));
}

/**
 * Does the trace mark its requests (`request: true` on their send lines)? Binary traces always do;
 * an NDJSON one does if it was printed by `svmsim trace cat` from one (its first MiB says so), not
 * if it was written before requests were marked.
 */
export function traceMarksRequests(target: string | MemoryTrace): boolean {
  if (target instanceof MemoryTrace) return true; // binary
  return traceFiles(target).every((f) => {
    if (!f.endsWith(NDJSON_EXT)) return true;
    const fd = fs.openSync(f, 'r');
    try {
      const head = Buffer.alloc(READ_BYTES);
      const n = fs.readSync(fd, head, 0, READ_BYTES, 0);
      return head.toString('utf8', 0, n).includes('"request":true');
    } finally {
      fs.closeSync(fd);
    }
  });
}

function openCursor(file: string, warn: (w: string) => void): Cursor {
  return file.endsWith(NDJSON_EXT) ? new NdjsonCursor(file) : new BinaryCursor(file, warn);
}

export interface TraceReadStats {
  files: string[];
  lines: number;
  bytes: number;
  /** Files cut short by a killed writer: read up to their last whole chunk. */
  warnings: string[];
}

/**
 * Calls `fn` for every line of the trace in order (`index` counts from 0), streaming. `target` is
 * a trace directory or file, or a trace kept in memory (LocalScheduler traceInMemory). `fn` may keep
 * the line objects it is given: each is a fresh object.
 */
export function forEachTraceLine(target: string | MemoryTrace, fn: (l: TraceLine, index: number) => void): TraceReadStats {
  if (target instanceof MemoryTrace) return forEachMemoryTraceLine(target, fn);
  const files = traceFiles(target);
  const warnings: string[] = [];
  const cursors = files.map((f) => openCursor(f, (w) => warnings.push(w)));
  let index = 0;
  try {
    if (cursors.length === 1) {
      const c = cursors[0];
      while (c.peek() !== undefined) fn(c.take(), index++);
    } else {
      for (;;) {
        let best: Cursor | undefined, bestT = Infinity;
        for (const c of cursors) {
          const l = c.peek();
          if (l !== undefined && (best === undefined || l.t < bestT)) (best = c), (bestT = l.t);
        }
        if (best === undefined) break;
        fn(best.take(), index++);
      }
    }
  } finally {
    for (const c of cursors) c.close();
  }
  const bytes = files.reduce((sum, f) => sum + fs.statSync(f).size, 0);
  return { files, lines: index, bytes, warnings };
}

/** The lines of a trace kept in memory: one writer, so one stream of chunks, decoded as a file's are. */
function forEachMemoryTraceLine(trace: MemoryTrace, fn: (l: TraceLine, index: number) => void): TraceReadStats {
  const decoder = new TraceDecoder('(trace in memory)');
  let index = 0, offset = 0;
  for (const chunk of trace.chunks) {
    decoder.begin(chunk, offset);
    for (let l = decoder.next(); l !== undefined; l = decoder.next()) fn(l, index++);
    offset += chunk.length;
  }
  return { files: [], lines: index, bytes: offset, warnings: [] };
}

/** Every line of a trace directory or file, merged (tests and small traces; analysis streams with forEachTraceLine). */
export function readTrace(target: string): TraceLine[] {
  const out: TraceLine[] = [];
  forEachTraceLine(target, (l) => out.push(l));
  return out;
}
