// Reading a trace back. A LocalScheduler trace is one file in delivery order; a ThreadScheduler
// trace is one file per actor (plus the scheduler's), merged here by simulated time `t` (stable:
// lines of one file keep their order, which is that actor's real order).
import fs from 'node:fs';
import path from 'node:path';

export interface TraceLine {
  t: number;
  actor: string;
  ev: string;
  [field: string]: unknown;
}

export function readTraceFile(file: string): TraceLine[] {
  const text = fs.readFileSync(file, 'utf8');
  const lines: TraceLine[] = [];
  let lineNo = 0;
  for (const raw of text.split('\n')) {
    lineNo++;
    if (raw.length === 0) continue;
    let v: TraceLine;
    try {
      v = JSON.parse(raw) as TraceLine;
    } catch {
      throw new Error(`${file}:${lineNo}: not a JSON line: ${raw.slice(0, 120)}`);
    }
    if (typeof v.t !== 'number' || typeof v.actor !== 'string' || typeof v.ev !== 'string') {
      throw new Error(`${file}:${lineNo}: a trace line needs numeric t, string actor and ev: ${raw.slice(0, 120)}`);
    }
    lines.push(v);
  }
  return lines;
}

export function readTrace(dir: string): TraceLine[] {
  const files = fs
    .readdirSync(dir)
    .filter((f) => f.endsWith('.ndjson'))
    .sort();
  if (files.length === 0) throw new Error(`${dir}: no .ndjson trace files`);
  const all = files.map((f) => readTraceFile(path.join(dir, f)));
  if (all.length === 1) return all[0];
  // k-way merge by t, ties to the earlier file: stable within each file.
  const out: TraceLine[] = [];
  const pos = all.map(() => 0);
  for (;;) {
    let best = -1;
    for (let k = 0; k < all.length; k++) {
      if (pos[k] < all[k].length && (best < 0 || all[k][pos[k]].t < all[best][pos[best]].t)) best = k;
    }
    if (best < 0) return out;
    out.push(all[best][pos[best]++]);
  }
}
