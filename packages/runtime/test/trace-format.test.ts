// The binary trace: what is written reads back as the same line objects an NDJSON trace parsed to,
// across chunks and files; a cut or foreign file is a clear error or warning, never a wrong line.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { TraceFormatError, forEachTraceLine, readTrace, type TraceLine } from '@svmsim/runtime';
import { TraceSink } from '@svmsim/runtime/trace';

const tmp = () => fs.mkdtempSync(path.join(os.tmpdir(), 'svmsim-tracefmt-'));

function write(file: string, fn: (s: TraceSink) => void): void {
  const s = new TraceSink(file);
  fn(s);
  s.close();
}

describe('binary trace format', () => {
  it('kept in memory, reads back as the same lines as the file, across chunks', () => {
    const dir = tmp();
    const records = (s: TraceSink) => {
      // Past FLUSH_BYTES (1 MiB) more than once: several chunks.
      for (let i = 0; i < 40_000; i++) {
        s.event(i, 'mm', 'page_fault', { pid: 1, vpn: i, write: i % 2 === 0, note: `fault ${i % 7}` });
        s.encoder.send(i, 'app', 'mm', i + 1, 0, true, { type: 'cpu_access', addr: i * 4096, data: [i, i + 1] });
      }
    };
    write(path.join(dir, 'trace.svmt'), records);
    const memory = new TraceSink(undefined);
    records(memory);
    memory.close();
    const trace = memory.memoryTrace();
    expect(trace.chunks.length).toBeGreaterThan(2);
    const lines: TraceLine[] = [];
    forEachTraceLine(trace, (l) => lines.push(l));
    expect(lines).toEqual(readTrace(dir));
  });

  it('reads back every kind of value as JSON would give it', () => {
    const dir = tmp();
    const msg = {
      type: 'weird',
      int: 7, neg: -3, big: 2 ** 40, frac: 0.25, negZero: -0, huge: 1e300,
      short: 'MMU_NOTIFY_CLEAR', long: 'x'.repeat(500), unicode: 'µs → ✓',
      yes: true, no: false, none: null, gone: undefined,
      nested: { a: 1, b: [1, 'two', { c: null }] },
      ints: [1, 2, 3], floats: [0.5, 1.5], mixed: [1, 'a', undefined], empty: [],
      typed: new Int32Array([4, -5]), f64: new Float64Array([1.5, 2 ** 33]), u8: new Uint8Array([3, 255]),
    };
    write(path.join(dir, 'trace.svmt'), (s) => {
      s.encoder.send(10, 'app', 'mm', 1, 0, true, msg);
      s.encoder.recv(11, 'mm', 'app', 1, 0);
      s.encoder.send(12, 'mm', 'app', 2, 1, false, { type: 'syscall_result', ret: 0 });
      s.encoder.after(13, 'mm', 3, 500, { type: 'mm_reply_due' });
      s.event(14, 'mm', 'invalidate_start', { inv: 1, subs: [2, 3], task: 'kswapd0' });
      s.event(15, 'mm', 'no_fields', {});
    });
    const lines = readTrace(dir);
    const expected = JSON.parse(JSON.stringify([
      { t: 10, actor: 'app', ev: 'send', to: 'mm', id: 1, request: true, msg: { ...msg, typed: [4, -5], f64: [1.5, 2 ** 33], u8: [3, 255] } },
      { t: 11, actor: 'mm', ev: 'recv', from: 'app', id: 1 },
      { t: 12, actor: 'mm', ev: 'send', to: 'app', id: 2, replyTo: 1, msg: { type: 'syscall_result', ret: 0 } },
      { t: 13, actor: 'mm', ev: 'after', id: 3, at: 500, msg: { type: 'mm_reply_due' } },
      { t: 14, actor: 'mm', ev: 'invalidate_start', inv: 1, subs: [2, 3], task: 'kswapd0' },
      { t: 15, actor: 'mm', ev: 'no_fields' },
    ]));
    expect(lines).toEqual(expected);
    expect(Object.is((lines[0].msg as { negZero: number }).negZero, 0)).toBe(true); // as JSON writes -0
  });

  it('keeps messages of one type with different keys apart, and objects past the shape limits as JSON', () => {
    const dir = tmp();
    const many = Object.fromEntries(Array.from({ length: 300 }, (_, i) => [`k${i}`, i]));
    const variants = Array.from({ length: 40 }, (_, i) => ({ type: 'v', [`f${i}`]: i }));
    write(path.join(dir, 'trace.svmt'), (s) => {
      s.encoder.send(1, 'a', 'b', 1, 0, false, { type: 'm', x: 1 });
      s.encoder.send(2, 'a', 'b', 2, 0, false, { type: 'm', y: 'two', x: 2 });
      s.encoder.send(3, 'a', 'b', 3, 0, false, { type: 'm', x: 3 });
      s.encoder.send(4, 'a', 'b', 4, 0, false, { type: 'wide', ...many });
      variants.forEach((v, i) => s.encoder.send(5 + i, 'a', 'b', 5 + i, 0, false, v));
    });
    const msgs = readTrace(dir).map((l) => l.msg);
    expect(msgs.slice(0, 3)).toEqual([{ type: 'm', x: 1 }, { type: 'm', y: 'two', x: 2 }, { type: 'm', x: 3 }]);
    expect(msgs[3]).toEqual({ type: 'wide', ...many });
    expect(msgs.slice(4)).toEqual(variants);
  });

  it('streams a trace of many chunks in order, and merges thread-mode files by time', () => {
    const dir = tmp();
    const n = 200_000;
    write(path.join(dir, 'a.svmt'), (s) => {
      for (let i = 0; i < n; i++) {
        s.encoder.send(2 * i, 'a', 'b', i + 1, 0, false, { type: 'ping', n: i, pad: 'p'.repeat(i % 20) });
        s.maybeFlush();
      }
    });
    write(path.join(dir, 'b.svmt'), (s) => {
      for (let i = 0; i < 1000; i++) s.event(2 * i + 1, 'b', 'tick', { i });
    });
    expect(fs.statSync(path.join(dir, 'a.svmt')).size).toBeGreaterThan(3 << 20); // several 1 MiB chunks
    let last = -1, count = 0, ticks = 0, outOfOrder = 0, badIndex = 0;
    const r = forEachTraceLine(dir, (l, i) => {
      if (i !== count++) badIndex++;
      if (l.t < last) outOfOrder++;
      last = l.t;
      if (l.ev === 'tick') ticks++;
    });
    expect({ count, outOfOrder, badIndex }).toEqual({ count: n + 1000, outOfOrder: 0, badIndex: 0 });
    expect(ticks).toBe(1000);
    expect(r.lines).toBe(n + 1000);
    expect(r.warnings).toEqual([]);
  });

  it('reads a file cut inside a chunk up to its last whole chunk, with a warning naming it', () => {
    const dir = tmp();
    const file = path.join(dir, 'trace.svmt');
    write(file, (s) => {
      for (let i = 0; i < 100_000; i++) {
        s.encoder.send(i, 'a', 'b', i + 1, 0, false, { type: 'ping', n: i });
        s.maybeFlush();
      }
    });
    const whole = readTrace(dir).length;
    fs.truncateSync(file, fs.statSync(file).size - 100);
    const seen: TraceLine[] = [];
    const r = forEachTraceLine(dir, (l) => seen.push(l));
    expect(seen.length).toBeGreaterThan(0);
    expect(seen.length).toBeLessThan(whole);
    expect(seen.every((l, i) => l.msg && (l.msg as { n: number }).n === i)).toBe(true);
    expect(r.warnings).toHaveLength(1);
    expect(r.warnings[0]).toMatch(/trace\.svmt: ends inside a chunk at byte \d+/);
  });

  it('refuses a file that is not a trace, and a directory without one, naming them', () => {
    const dir = tmp();
    fs.writeFileSync(path.join(dir, 'trace.svmt'), 'not a trace at all');
    expect(() => readTrace(dir)).toThrow(TraceFormatError);
    expect(() => readTrace(dir)).toThrow(/trace\.svmt: not an svmsim trace/);
    const empty = tmp();
    expect(() => readTrace(empty)).toThrow(/no trace files/);
    expect(() => readTrace(path.join(empty, 'missing'))).toThrow(/no such trace directory or file/);
  });

  it('still reads NDJSON traces written before the binary format', () => {
    const dir = tmp();
    fs.writeFileSync(path.join(dir, 'trace.ndjson'), '{"t":0,"actor":"a","ev":"send","to":"b","id":1,"msg":{"type":"x"}}\n{"t":5,"actor":"b","ev":"recv","from":"a","id":1}\n');
    expect(readTrace(dir)).toEqual([
      { t: 0, actor: 'a', ev: 'send', to: 'b', id: 1, msg: { type: 'x' } },
      { t: 5, actor: 'b', ev: 'recv', from: 'a', id: 1 },
    ]);
    fs.writeFileSync(path.join(dir, 'trace.ndjson'), '{"t":0,"actor":"a"}\n');
    expect(() => readTrace(dir)).toThrow(/trace\.ndjson:1: a trace line needs numeric t, string actor and ev/);
  });
});
