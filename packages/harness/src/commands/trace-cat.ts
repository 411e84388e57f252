// `svmsim trace cat TRACE`: the trace as NDJSON, one line per record in trace order (the lines the
// trace held when it was NDJSON), for grep and jq; filters by actor, event or message type, time.
import { forEachTraceLine, type TraceLine } from '@svmsim/runtime';
import { EXIT_OK } from './common.js';
import { durationOption } from './common.js';

export interface TraceCatOptions {
  actor: string[];
  ev: string[];
  type: string[];
  from?: string;
  to?: string;
}

const collect = (v: string, prev: string[]): string[] => [...prev, ...v.split(',').filter(Boolean)];
export { collect as collectList };

export async function traceCatCommand(target: string, o: TraceCatOptions): Promise<number> {
  const from = o.from === undefined ? -Infinity : durationOption(o.from, '--from');
  const to = o.to === undefined ? Infinity : durationOption(o.to, '--to');
  const keep = (l: TraceLine): boolean =>
    l.t >= from && l.t <= to && (o.actor.length === 0 || o.actor.includes(l.actor)) && (o.ev.length === 0 || o.ev.includes(l.ev)) &&
    (o.type.length === 0 || o.type.includes(String((l.msg as { type?: string } | undefined)?.type)));
  let buf = '';
  forEachTraceLine(target, (l) => {
    if (!keep(l)) return;
    buf += JSON.stringify(l) + '\n';
    if (buf.length >= 1 << 16) {
      process.stdout.write(buf);
      buf = '';
    }
  });
  process.stdout.write(buf);
  return EXIT_OK;
}
