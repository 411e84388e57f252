// `svmsim trace cat TRACE`: the trace as NDJSON, one line per record in trace order (the lines the
// trace held when it was NDJSON), for grep and jq; filters by actor, event or message type, time.
// Written with writeSync, so that a closed pipe (`| head`) ends the reading at once.
import fs from 'node:fs';
import { forEachTraceLine, type TraceLine } from '@svmsim/runtime';
import { UsageError } from '../run/actors.js';
import { durationOption, EXIT_OK } from './common.js';

export interface TraceCatOptions {
  actor: string[];
  ev: string[];
  type: string[];
  from?: string;
  to?: string;
}

/** A repeatable, comma-separated list option. */
export const collectList = (v: string, prev: string[]): string[] => [...prev, ...v.split(',').filter(Boolean)];

/** Thrown from the line callback to stop reading once stdout is gone. */
class StdoutClosed extends Error {}

export async function traceCatCommand(target: string, o: TraceCatOptions): Promise<number> {
  const from = o.from === undefined ? -Infinity : durationOption(o.from, '--from');
  const to = o.to === undefined ? Infinity : durationOption(o.to, '--to');
  if (from > to) throw new UsageError(`--from ${o.from} is after --to ${o.to}: no line can be in between`);
  const keep = (l: TraceLine): boolean =>
    l.t >= from && l.t <= to && (o.actor.length === 0 || o.actor.includes(l.actor)) && (o.ev.length === 0 || o.ev.includes(l.ev)) &&
    (o.type.length === 0 || o.type.includes(String((l.msg as { type?: string } | undefined)?.type)));
  let buf = '';
  const write = (): void => {
    try {
      fs.writeSync(1, buf);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'EPIPE') throw new StdoutClosed();
      throw e;
    }
    buf = '';
  };
  try {
    const r = forEachTraceLine(target, (l) => {
      if (!keep(l)) return;
      buf += JSON.stringify(l) + '\n';
      if (buf.length >= 1 << 16) write();
    });
    write();
    for (const w of r.warnings) process.stderr.write(`svmsim: warning: ${w}\n`);
  } catch (e) {
    if (!(e instanceof StdoutClosed)) throw e;
  }
  return EXIT_OK;
}
