// The trace's part of `npm run bench`: records written per second and analysed per second, each
// beside a plain baseline measured in the same run on the same records.
//
//   written   the records of a real run (gup-vs-readonly: big pfn arrays and small messages),
//             encoded with the trace writer; baseline: the same lines as NDJSON (JSON.stringify
//             and a write), what the trace cost before it was binary.
//   analysed  a trace of RECORDS_BIG records (that run's records over and over, shifted in time and
//             in their ids) read by `svmsim analyze`'s pass (every collector); beside it the same
//             file only decoded, and its NDJSON form only split into lines (plain line reading, no
//             parsing) — the floor of any analysis of a text trace.
//   memory    the heap the analysis holds, measured after it: bounded by the simulated system
//             (pages, requests and invalidations in flight), not by the trace's length.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import v8 from 'node:v8';
import vm from 'node:vm';
import { forEachTraceLine, readTrace, type TraceLine } from '@svmsim/runtime';
import { TraceSink } from '@svmsim/runtime/trace';
import { readModel } from '../analysis/model.js';
import { runScenario } from '../run/run-scenario.js';
import { loadScenario } from '../scenario/load.js';

/** Records in the trace the analysis is timed on. */
const RECORDS_BIG = 2_000_000;
const REPS = 3;
/** Copies of the run's records written per timed repetition. */
const WRITE_COPIES = 5;

v8.setFlagsFromString('--expose-gc');
const gc = vm.runInNewContext('gc') as () => void;

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const perSec = (n: number, ms: number): number => Math.round(n / (ms / 1e3));

function timed(fn: () => void): number {
  const t0 = performance.now();
  fn();
  return performance.now() - t0;
}

/** Writes `lines` as trace records (their send/recv/after/event form) into `file`. */
function encode(file: string, lines: TraceLine[], copies: number, span: number, idSpan: number, invSpan: number): number {
  const sink = new TraceSink(file);
  let n = 0;
  for (let k = 0; k < copies; k++) {
    const dt = k * span, di = k * idSpan, dv = k * invSpan;
    for (const l of lines) {
      const e = sink.encoder;
      switch (l.ev) {
        case 'send':
          e.send(l.t + dt, l.actor, l.to as string, (l.id as number) + di, l.replyTo ? (l.replyTo as number) + di : 0, l.request === true, l.msg as object);
          break;
        case 'recv':
          e.recv(l.t + dt, l.actor, l.from as string, (l.id as number) + di, l.replyTo ? (l.replyTo as number) + di : 0);
          break;
        case 'after':
          e.after(l.t + dt, l.actor, (l.id as number) + di, (l.at as number) + dt, l.msg as object);
          break;
        default: {
          const { t, actor, ev, ...fields } = l;
          if (typeof fields.inv === 'number') fields.inv += dv;
          e.event(t + dt, actor, ev, fields);
        }
      }
      sink.maybeFlush();
      n++;
    }
  }
  sink.close();
  return n;
}

export async function traceBench(progress: (s: string) => void): Promise<Record<string, unknown>> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'svmsim-trace-bench-'));
  try {
    const runDir = path.join(dir, 'run');
    await runScenario(loadScenario('gup-vs-readonly'), { seed: 1, mode: 'deterministic', timeScale: 1, traceDir: runDir });
    const lines = readTrace(runDir).filter((l) => l.actor !== 'scheduler' && l.ev !== 'final_pages');
    const span = lines[lines.length - 1].t + 1;
    const idSpan = Math.max(...lines.map((l) => (typeof l.id === 'number' ? l.id : 0))) + 1;
    const invSpan = Math.max(...lines.map((l) => (typeof l.inv === 'number' ? l.inv : 0))) + 1;
    progress(`trace bench: a gup-vs-readonly run gives ${lines.length} records`);

    // Written: the run's records WRITE_COPIES times, binary vs NDJSON lines, after a warm-up of each.
    const bin = path.join(dir, 'w.svmt');
    const writeNdjson = () => {
      const fd = fs.openSync(path.join(dir, 'w.ndjson'), 'w');
      let buf = '';
      for (let k = 0; k < WRITE_COPIES; k++) {
        for (const l of lines) {
          buf += JSON.stringify(l) + '\n';
          if (buf.length >= 1 << 20) (fs.writeSync(fd, buf), (buf = ''));
        }
      }
      fs.writeSync(fd, buf);
      fs.closeSync(fd);
    };
    encode(bin, lines, 1, span, idSpan, invSpan);
    writeNdjson();
    const writes: number[] = [], jsonWrites: number[] = [];
    for (let r = 0; r < REPS; r++) {
      gc();
      writes.push(timed(() => encode(bin, lines, WRITE_COPIES, span, idSpan, invSpan)));
      gc();
      jsonWrites.push(timed(writeNdjson));
    }
    const n = lines.length * WRITE_COPIES;
    const written = { recordsPerSec: perSec(n, median(writes)), baselineNdjsonLinesPerSec: perSec(n, median(jsonWrites)) };
    progress(`trace bench: written ${JSON.stringify(written)}`);

    // Analysed: a big trace, three ways.
    const big = path.join(dir, 'big');
    fs.mkdirSync(big);
    const copies = Math.ceil(RECORDS_BIG / lines.length);
    const records = encode(path.join(big, 'trace.svmt'), lines, copies, span, idSpan, invSpan);
    const bigBytes = fs.statSync(path.join(big, 'trace.svmt')).size;
    const text = path.join(dir, 'big.ndjson');
    const fd = fs.openSync(text, 'w');
    let buf = '';
    forEachTraceLine(big, (l) => {
      buf += JSON.stringify(l) + '\n';
      if (buf.length >= 1 << 22) (fs.writeSync(fd, buf), (buf = ''));
    });
    fs.writeSync(fd, buf);
    fs.closeSync(fd);
    const textBytes = fs.statSync(text).size;
    progress(`trace bench: ${records} records, ${(bigBytes / 2 ** 20).toFixed(0)} MiB binary, ${(textBytes / 2 ** 20).toFixed(0)} MiB as NDJSON`);
    const analysed: number[] = [], decoded: number[] = [], lineRead: number[] = [];
    let heapAfterMB = 0;
    for (let r = 0; r < REPS; r++) {
      gc();
      const heap0 = process.memoryUsage().heapUsed;
      let kept: unknown;
      analysed.push(timed(() => (kept = readModel(big).model)));
      gc();
      heapAfterMB = Math.max(heapAfterMB, (process.memoryUsage().heapUsed - heap0) / 2 ** 20);
      kept = undefined;
      void kept;
      gc();
      decoded.push(timed(() => forEachTraceLine(big, () => {})));
      gc();
      lineRead.push(timed(() => {
        const block = Buffer.alloc(1 << 20);
        const f = fs.openSync(text, 'r');
        let n = 0, rest = '';
        for (let got = fs.readSync(f, block); got > 0; got = fs.readSync(f, block)) {
          const parts = (rest + block.toString('utf8', 0, got)).split('\n');
          rest = parts.pop()!;
          n += parts.length;
        }
        fs.closeSync(f);
        if (n !== records) throw new Error(`line reading counted ${n} lines, not ${records}`);
      }));
      progress(`trace bench: analysed #${r + 1} in ${analysed[r].toFixed(0)} ms, decoded ${decoded[r].toFixed(0)} ms, lines read ${lineRead[r].toFixed(0)} ms`);
    }
    const analysedPerSec = perSec(records, median(analysed));
    return {
      recordsInRun: lines.length,
      written,
      writtenVsNdjson: Math.round((written.recordsPerSec / written.baselineNdjsonLinesPerSec) * 100) / 100,
      analysed: {
        records,
        binaryMB: Math.round(bigBytes / 2 ** 20),
        ndjsonMB: Math.round(textBytes / 2 ** 20),
        recordsPerSec: analysedPerSec,
        decodeOnlyRecordsPerSec: perSec(records, median(decoded)),
        baselinePlainLineReadingPerSec: perSec(records, median(lineRead)),
        modelHeapMB: Math.round(heapAfterMB * 10) / 10,
      },
      targets: { analysedRecordsPerSec: { value: analysedPerSec, op: '>=', target: 1_000_000, met: analysedPerSec >= 1_000_000 } },
    };
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}
